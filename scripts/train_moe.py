"""Train a small Mixture-of-Experts layer and log how tokens spread over the experts (``media/runs/moe/NAME.json``).

The task makes routing matter: tokens come from ``n_clusters`` Gaussian clusters, and each cluster has its own
target function (a random linear map followed by tanh). A layer of ``n_experts`` small MLP experts with top-k routing
learns it best when different experts specialise on different clusters. Three balancing strategies:

- ``none``      Mixtral-style softmax top-k gating, no balancing term: watch for "winner takes all".
- ``aux_loss``  the same gating plus α · N·Σ f_i·P_i (Switch Transformer / HF ``load_balancing_loss_func``).
- ``bias``      DeepSeek-V3 auxiliary-loss-free balancing: sigmoid affinities, a per-expert bias used only to choose
                the top-k, updated after every step by ±γ from the measured load; the weights ignore the bias.

Run (each committed log's exact command is in ``media/runs/moe/README.md``)::

    python -m scripts.train_moe --strategy none
    python -m scripts.train_moe --strategy aux_loss --aux-coef 0.01
    python -m scripts.train_moe --strategy bias --bias-gamma 0.001

CPU-friendly (seconds to minutes); uses CUDA when present. Deterministic for a seed: the initial weights, the task,
the evaluation set and every step's batch come from random streams of their own (:func:`stream_seed`), so a resumed
run (``--resume``, the default, from ``media/checkpoints/moe/``) gives the same log as an uninterrupted one. An
existing log (the committed ones included) is overwritten only with ``--force``.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = ROOT / "media" / "runs" / "moe"
CHECKPOINT_DIR = ROOT / "media" / "checkpoints" / "moe"  # ignored by git (only media/runs/ is committed)
STRATEGIES = ("none", "aux_loss", "bias")
# The random streams of a run. Each gets its seed from numpy's SeedSequence(seed, spawn_key=(purpose, *index)): distinct
# keys give independent streams, so the task, the evaluation set, the initial weights and every step's batch never
# share a seed (not within a run, nor across runs with other seeds), and the task is the same for every strategy.
STREAMS = {"init": 0, "task": 1, "eval": 2, "batch": 3}


def stream_seed(seed: int, purpose: str, *index: int) -> int:
    """The torch seed (64 bits) of one random stream of the run with this ``seed``: ``purpose`` is a key of
    :data:`STREAMS`, ``index`` the step for ``"batch"``. References: ``numpy.random.SeedSequence`` (spawn keys)."""
    import numpy as np

    return int(np.random.SeedSequence(seed, spawn_key=(STREAMS[purpose], *index)).generate_state(1, np.uint64)[0])


@dataclass(frozen=True)
class MoETrainConfig:
    """Every hyperparameter of a run; logged verbatim as the log's ``config``."""

    strategy: str = "none"  # none | aux_loss | bias
    seed: int = 0
    n_experts: int = 8
    top_k: int = 2
    d_model: int = 16  # token width (input and output)
    d_expert: int = 16  # hidden width of each expert MLP: small, so one expert cannot serve every cluster well
    n_clusters: int = 8  # input clusters, each with its own target function
    cluster_radius: float = 3.0  # distance of cluster centres from the origin
    cluster_noise: float = 1.0  # std of a token around its cluster centre
    # Length of one vector added to every token, as LLM hidden states share a common direction. It is what makes the
    # unbalanced router collapse here: with 0.0 the `none` run leaves no expert idle, if far from even
    # (media/runs/moe/README.md).
    input_offset: float = 8.0
    batch_size: int = 256  # tokens per step
    steps: int = 3000
    lr: float = 3e-3  # Adam
    router_init_std: float = 0.02  # std of the router's initial weights (larger → more confident first choices)
    aux_coef: float = 0.01  # α for aux_loss (Switch Transformer: 0.01)
    bias_gamma: float = 0.001  # γ for bias (DeepSeek-V3: 0.001)
    eval_tokens: int = 2048  # fixed evaluation set, drawn once
    log_every: int = 25  # steps between history records

    def __post_init__(self):
        """Refuse a config that cannot train, naming each bad option (before any work starts)."""
        at_least_one = ("n_experts", "d_model", "d_expert", "n_clusters", "batch_size", "steps", "eval_tokens",
                        "log_every")  # fmt: skip
        problems = [f"{_flag(k)} must be at least 1, got {getattr(self, k)}" for k in at_least_one
                    if getattr(self, k) < 1]  # fmt: skip
        if self.strategy not in STRATEGIES:
            problems.append(f"--strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if not 1 <= self.top_k <= max(self.n_experts, 1):
            problems.append(f"--top-k must be between 1 and --n-experts ({self.n_experts}), got {self.top_k}")
        if self.seed < 0:
            problems.append(f"--seed must be 0 or more, got {self.seed}")
        problems += [f"{_flag(k)} must be more than 0, got {getattr(self, k)}" for k in ("cluster_radius", "lr")
                     if not getattr(self, k) > 0]  # fmt: skip
        problems += [f"{_flag(k)} must be 0 or more, got {getattr(self, k)}"
                     for k in ("cluster_noise", "input_offset", "router_init_std", "aux_coef", "bias_gamma")
                     if not getattr(self, k) >= 0]  # fmt: skip
        if problems:
            raise ValueError("; ".join(problems))


def _flag(field_name: str) -> str:
    return f"--{field_name.replace('_', '-')}"


# --- the task ------------------------------------------------------------------------------------------------------


def make_task(cfg: MoETrainConfig):
    """Cluster centres (n_clusters, d), per-cluster target maps (n_clusters, d, d) and the shared offset (d,)."""
    import torch

    gen = torch.Generator().manual_seed(stream_seed(cfg.seed, "task"))
    directions = torch.randn(cfg.n_clusters, cfg.d_model, generator=gen, dtype=torch.float64)
    centres = cfg.cluster_radius * directions / directions.norm(dim=-1, keepdim=True)
    # Entries ~ N(0, 1/d): each map keeps the scale of x, so tanh neither saturates nor stays linear.
    maps = torch.randn(cfg.n_clusters, cfg.d_model, cfg.d_model, generator=gen, dtype=torch.float64)
    maps = maps / cfg.d_model**0.5
    offset = torch.randn(cfg.d_model, generator=gen, dtype=torch.float64)
    offset = cfg.input_offset * offset / offset.norm()
    return centres.float(), maps.float(), offset.float()


def sample_tokens(cfg: MoETrainConfig, task, n_tokens: int, seed: int):
    """(x (n, d), y (n, d), cluster (n,)) drawn with a generator seeded by ``seed`` (a :func:`stream_seed`):
    z ~ N(centre_c, noise²·I), x = z + offset, y = tanh(A_c z / radius).

    The offset moves every input the same way and leaves the targets alone: it changes only what the router sees.
    """
    import torch

    centres, maps, offset = task
    gen = torch.Generator().manual_seed(seed)
    cluster = torch.randint(cfg.n_clusters, (n_tokens,), generator=gen)
    z = centres[cluster] + cfg.cluster_noise * torch.randn(n_tokens, cfg.d_model, generator=gen)
    y = torch.tanh(torch.einsum("nij,nj->ni", maps[cluster], z) / cfg.cluster_radius)
    return z + offset, y, cluster


# --- the MoE layer -------------------------------------------------------------------------------------------------


def build_model(cfg: MoETrainConfig):
    import torch
    from torch import nn

    class SmallMoE(nn.Module):
        """Router + ``n_experts`` two-layer ReLU MLPs; output = Σ over the k chosen experts of weight · expert(x).

        All experts are evaluated densely and the chosen outputs gathered: with these tiny sizes that is faster than
        dispatching, and forward values and gradients are the same as a sparse layer's (unchosen outputs are unused).
        """

        def __init__(self):
            super().__init__()
            e, d, h = cfg.n_experts, cfg.d_model, cfg.d_expert
            self.router = nn.Linear(d, e, bias=False)
            nn.init.normal_(self.router.weight, std=cfg.router_init_std)
            self.w_in = nn.Parameter(torch.randn(e, d, h) / d**0.5)  # (experts, d, h)
            self.b_in = nn.Parameter(torch.zeros(e, h))
            self.w_out = nn.Parameter(torch.randn(e, h, d) / h**0.5)  # (experts, h, d)
            self.b_out = nn.Parameter(torch.zeros(e, d))
            # DeepSeek-V3's balancing bias: state, not a parameter (no gradient ever reaches it).
            self.register_buffer("balance_bias", torch.zeros(e))

        def route(self, logits):
            """(indices (n, k), weights (n, k)) — the torch twins of shared.math.moe's routing functions."""
            if cfg.strategy == "bias":  # bias_balanced_routing
                affinity = torch.sigmoid(logits)
                indices = torch.topk(affinity + self.balance_bias, cfg.top_k, dim=-1).indices
                chosen = affinity.gather(-1, indices)
                return indices, chosen / chosen.sum(dim=-1, keepdim=True)
            probs = torch.softmax(logits, dim=-1)  # top_k_routing
            weights, indices = torch.topk(probs, cfg.top_k, dim=-1)
            return indices, weights / weights.sum(dim=-1, keepdim=True)

        def forward(self, x):  # x: (n, d)
            logits = self.router(x)  # (n, experts)
            indices, weights = self.route(logits)  # (n, k) each
            hidden = torch.relu(torch.einsum("nd,edh->neh", x, self.w_in) + self.b_in)  # (n, experts, h)
            every_expert = torch.einsum("neh,ehd->ned", hidden, self.w_out) + self.b_out  # (n, experts, d)
            chosen = every_expert.gather(1, indices[..., None].expand(-1, -1, x.shape[-1]))  # (n, k, d)
            return (weights[..., None] * chosen).sum(dim=1), logits, indices

    return SmallMoE()


def load_balancing_loss_torch(logits, n_experts: int, k: int):
    """N·Σ f_i·P_i as HF ``load_balancing_loss_func`` (the torch twin of shared.math.moe.load_balancing_loss)."""
    import torch

    probs = torch.softmax(logits, dim=-1)
    chosen = torch.topk(probs, k, dim=-1).indices
    fraction_routed = torch.nn.functional.one_hot(chosen, n_experts).to(probs.dtype).sum(dim=1).mean(dim=0)
    return n_experts * torch.sum(fraction_routed * probs.mean(dim=0))


def tokens_per_expert(indices, n_experts: int):
    """The torch twin of shared.math.moe.expert_load."""
    import torch

    return torch.bincount(indices.flatten(), minlength=n_experts)


# --- training ------------------------------------------------------------------------------------------------------


def command_line(cfg: MoETrainConfig, name: str) -> str:
    """The command that reproduces this run (options that differ from the defaults, plus the name)."""
    default = MoETrainConfig()
    parts = ["python", "-m", "scripts.train_moe"]
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        if field.name == "strategy" or value != getattr(default, field.name):
            parts += [_flag(field.name), str(value)]
    parts += ["--name", name]
    return shlex.join(parts)


def train(
    cfg: MoETrainConfig,
    name: str,
    device: str = "auto",
    resume: bool = True,
    progress: bool = True,
    checkpoint_every: int = 500,
    force: bool = False,
) -> Path:
    """Run (or resume) one training run and write its log ``RUNS_DIR/NAME.json``; returns the log's path.

    A checkpoint (``CHECKPOINT_DIR/NAME.pt``) is saved every ``checkpoint_every`` steps (it does not change the
    results) and deleted at the end; with ``resume`` an existing one is continued. Without ``force`` a run that would
    start over an existing log is refused (:func:`shared.runs.refuse_overwrite`); resuming its checkpoint is not.
    """
    from shared.runs import deterministic_torch, pick_device, refuse_overwrite

    if not name or Path(name).name != name or name.startswith("."):
        raise click.BadParameter(f"--name must be a plain file name (no folder), got {name!r}")
    if checkpoint_every < 1:
        raise click.BadParameter(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
    log_path, checkpoint_path = RUNS_DIR / f"{name}.json", CHECKPOINT_DIR / f"{name}.pt"
    refuse_overwrite([log_path], resuming=resume and checkpoint_path.exists(), force=force)
    device = pick_device(device)
    # one thread on the CPU: tiny matrices, where threads only add contention on a shared machine
    with deterministic_torch(threads=1 if device == "cpu" else None, warn_only=False):
        return _train(cfg, name, log_path, checkpoint_path, device, resume, progress, checkpoint_every)


def _train(cfg, name, log_path, checkpoint_path, device, resume, progress, checkpoint_every) -> Path:
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from shared.files import atomic_path
    from shared.runs import resume_provenance, start_provenance, write_run_log

    config = dataclasses.asdict(cfg)
    task = make_task(cfg)
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's global generator
        torch.manual_seed(stream_seed(cfg.seed, "init"))
        model = build_model(cfg)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    eval_x, eval_y, eval_cluster = sample_tokens(cfg, task, cfg.eval_tokens, stream_seed(cfg.seed, "eval"))
    eval_x, eval_y = eval_x.to(device), eval_y.to(device)

    history: list[dict] = []
    start_step, wall_before = 0, 0.0
    load_window = torch.zeros(cfg.n_experts, dtype=torch.int64, device=device)
    provenance = start_provenance(device)
    if resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if state["config"] != config:
            differ = sorted(k for k in config if state["config"].get(k) != config[k])
            raise click.ClickException(f"Checkpoint {checkpoint_path} was made with a different config (differs in: "
                                       f"{', '.join(differ)}); delete it or use --fresh.")  # fmt: skip
        if "provenance" not in state:
            raise click.ClickException(f"Checkpoint {checkpoint_path} was written by an older version of this "
                                       "trainer (other random streams); delete it or use --fresh.")  # fmt: skip
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_step, wall_before = state["history"], state["step"], state["wall_seconds"]
        load_window = state["load_window"].to(device)
        provenance = resume_provenance(state["provenance"], device, start_step)

    def evaluate(step: int, loss: float, aux: float, load, load_window) -> dict:
        """One history record: this step's batch, the steps since the last record, and the fixed eval set."""
        with torch.no_grad():
            prediction, _, indices = model(eval_x)
            record = {
                "step": step,
                "loss": round(loss, 6),  # task MSE on this step's batch
                "load": [int(v) for v in load],  # tokens per expert in this step's batch (sums to batch·k)
                "load_window": [int(v) for v in load_window],  # summed over the steps since the previous record
                "eval_loss": round(float(torch.mean((prediction - eval_y) ** 2)), 6),
                "eval_load": [int(v) for v in tokens_per_expert(indices, cfg.n_experts).cpu()],
            }
            if cfg.strategy != "bias":  # N·Σ f_i·P_i of this batch (unscaled); meaningless for sigmoid routing
                record["aux_loss"] = round(aux, 6)
            else:
                record["bias"] = [round(float(b), 6) for b in model.balance_bias.cpu()]
        return record

    def save_checkpoint(step: int, wall: float) -> None:
        state = {
            "config": config, "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "history": history, "wall_seconds": wall, "provenance": provenance, "load_window": load_window.cpu(),
        }  # fmt: skip
        with atomic_path(checkpoint_path) as tmp:
            torch.save(state, tmp)

    started = time.perf_counter()
    columns = [
        TextColumn(f"[bold]{name}[/] ({cfg.strategy})"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
    ]  # fmt: skip
    with Progress(*columns, disable=not progress) as bar:
        bar_task = bar.add_task("train", total=cfg.steps, completed=start_step, status="")
        for step in range(start_step, cfg.steps + 1):
            x, y, _ = sample_tokens(cfg, task, cfg.batch_size, stream_seed(cfg.seed, "batch", step))
            x, y = x.to(device), y.to(device)
            prediction, logits, indices = model(x)
            loss = torch.mean((prediction - y) ** 2)
            aux = load_balancing_loss_torch(logits, cfg.n_experts, cfg.top_k)
            load = tokens_per_expert(indices, cfg.n_experts)
            load_window += load
            if step % cfg.log_every == 0 or step == cfg.steps:
                history.append(evaluate(step, loss.item(), aux.item(), load.cpu(), load_window.cpu()))
                load_window.zero_()
                share = float(load.max()) / (cfg.batch_size * cfg.top_k)
                bar.update(bar_task, status=f"loss {loss.item():.4f}  busiest expert {share:.0%}")
            if step == cfg.steps:
                break  # the last record is the state after `steps` updates
            total = loss + cfg.aux_coef * aux if cfg.strategy == "aux_loss" else loss
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            if cfg.strategy == "bias":  # update_balance_bias, from this step's measured load
                with torch.no_grad():
                    model.balance_bias -= cfg.bias_gamma * torch.sign(load.float() - load.float().mean())
            bar.advance(bar_task)
            if (step + 1) % checkpoint_every == 0 and step + 1 < cfg.steps:
                save_checkpoint(step + 1, wall_before + time.perf_counter() - started)

    with torch.no_grad():  # which expert serves which cluster, on the eval set at the end
        _, _, indices = model(eval_x)
    routing = torch.zeros(cfg.n_clusters, cfg.n_experts, dtype=torch.int64)
    routing.index_put_((eval_cluster[:, None].expand_as(indices).flatten(), indices.cpu().flatten()),
                       torch.ones(indices.numel(), dtype=torch.int64), accumulate=True)  # fmt: skip
    provenance["wall_seconds"] = round(wall_before + time.perf_counter() - started, 2)
    log = {
        "kind": "moe",
        "command": command_line(cfg, name),
        "config": config,
        "provenance": provenance,
        "history": history,
        "routing_by_cluster": routing.tolist(),  # [cluster][expert] → eval token-slots, after the last step
    }
    write_run_log(log_path, log)
    checkpoint_path.unlink(missing_ok=True)
    return log_path


def _option(field: dataclasses.Field, **extra):
    default = field.default
    kind = {int: int, float: float, str: str}[type(default)]
    return click.option(_flag(field.name), field.name, type=kind, default=default, show_default=True, **extra)


def _config_options(func):
    for field in reversed(dataclasses.fields(MoETrainConfig)):
        if field.name == "strategy":
            func = click.option(
                "--strategy", type=click.Choice(STRATEGIES), default=field.default, show_default=True,
                help="none: no balancing; aux_loss: Switch/Mixtral auxiliary loss; bias: DeepSeek-V3 bias.",
            )(func)  # fmt: skip
        else:
            func = _option(field)(func)
    return func


@click.command(context_settings={"show_default": True})
@_config_options
@click.option("--name", default=None, help="Log name: media/runs/moe/NAME.json (default: the strategy).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--resume/--fresh", default=True, help="Continue from media/checkpoints/moe/NAME.pt when present.")
@click.option("--checkpoint-every", default=500, help="Steps between checkpoints (results do not depend on it).")
@click.option("--force", is_flag=True, help="Overwrite an existing log (a committed run included).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def main(name, device, resume, checkpoint_every, force, quiet, **options):
    """Train a small MoE layer with one balancing strategy and write media/runs/moe/NAME.json."""
    try:
        cfg = MoETrainConfig(**options)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    path = train(cfg, name or cfg.strategy, device=device, resume=resume, progress=not quiet,
                 checkpoint_every=checkpoint_every, force=force)  # fmt: skip
    click.echo(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    sys.exit(main())
