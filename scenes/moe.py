"""MoE explainer: one big FFN vs many experts, how the router picks two, why loads collapse, how a loss or a bias
evens them out (and how even they are on data the router was not trained on), and why DeepSeek-V3 stores 671B
parameters but runs about 37B per token.

Render: ``manim -qh scenes/moe.py`` (16:9) or ``manim -qh -r 1080,1920 scenes/moe.py`` (9:16).
Routing numbers come from ``shared/math/moe.py`` on a seeded toy router; every histogram and every claim about
training is derived from the committed MoE run logs, read through ``shared/runs.py`` (``load_moe_run``,
``moe_claims``, ``moe_load_spread``); the total / activated split is counted from DeepSeek-V3's configuration by
``deepseek_v3_parameter_counts``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from manim import (
    DOWN,
    LEFT,
    RIGHT,
    UP,
    Arrow,
    Create,
    Dot,
    FadeIn,
    FadeOut,
    Indicate,
    Rectangle,
    RoundedRectangle,
    Transform,
    ValueTracker,
    VGroup,
    VMobject,
    linear,
)

from shared import theme
from shared.layout import Region
from shared.math.attention import softmax
from shared.math.moe import (
    DeepSeekV3Config,
    bias_balanced_routing,
    deepseek_v3_parameter_counts,
    load_balancing_loss,
    router_affinity,
    top_k_routing,
)
from shared.mobjects.chart import AxisSpec, Chart, numeric_ticks
from shared.mobjects.histogram import LiveBars, interpolate_rows
from shared.mobjects.tokens import TokenRow
from shared.numbers import fill, num, num_vector, term
from shared.runs import (
    EVEN_LOAD_TOLERANCE,
    load_moe_run,
    moe_claims,
    moe_idle_since,
    moe_load_spread,
    short_device_name,
)
from shared.scene import ExplainerScene
from shared.text import LiveNumber, formula, rich, zh


@dataclass(frozen=True)
class MoEConfig:
    """Everything the explainer computes from. Change a value and every number on screen follows."""

    # Toy router and experts for the routing sections (random, illustrative; said so in the small print).
    sentence: tuple[str, ...] = ("MoE", "怎么", "选", "专家")
    focus_token: int = 3  # the token whose routing is shown step by step
    toy_dim: int = 4  # d: token vectors and expert outputs, (tokens, d)
    toy_expert_hidden: int = 8  # each toy expert: d → hidden → d with ReLU
    toy_seed: int = 0
    router_std: float = 1.0  # router weights ~ N(0, router_std²), (d, N): logits of order ±2
    n_experts: int = 8  # same as the training runs
    top_k: int = 2
    # DeepSeek demo: an illustrative bias pushing the token's favourite expert down, as if it were overloaded.
    bias_demo_penalty: float = 0.5
    # Committed MoE run logs, by name (shared.runs.load_moe_run), and how they play.
    run_none: str = "none"
    run_none_no_offset: str = "none_no_offset"
    run_aux: str = "aux_loss"
    run_bias: str = "bias"
    early_phase_step: int = 200  # pacing only: the first play covers steps 0..this slowly, where loads move most
    early_play_seconds: float = 2.5
    late_play_seconds: float = 4.0
    compare_last_records: int = 10  # the comparison shows each measure's range over this many last log records
    # 671B vs 37B
    grid_columns: int = 16  # 256 routed experts as 16 × 16
    active_demo_seed: int = 1  # which 8 experts light up for the two demo tokens (illustrative)
    active_demo_tokens: int = 2


CFG = MoEConfig()
BILLION = 1e9
MILLION = 1e6
PERCENT = 100.0
SHARE_TICKS = (0.0, 25.0, 50.0, 75.0, 100.0)  # percent
BIAS_TICKS = 5  # about this many round values span the bias axis
RATIO_TICKS = 4  # about this many round values span the max/min axis of the comparison
TICK_SPACING_EM = 1.4  # least distance between two tick labels, in label ems
FLOW_TIP = 0.16  # arrow tip length in the block diagrams, frame units
ARROW_BUFF = 0.08
WIDE_FIGURE = 1.8  # a figure at least this many times wider than tall puts a chart's side column beside it
PORTRAIT_EXPERT_COLUMN = 0.6  # width of the "E1…E8" column of a portrait table, relative to a number column


# --- names and numbers of experts ----------------------------------------------------------------------------------


def expert_label(index: int) -> str:
    """The name of expert ``index`` on screen, E1 … E8 (helpers and logs count from 0): a name, not a quantity."""
    return term(f"E{int(index) + 1}")


def expert_pick(name: str, index: int) -> str:
    """An expert the data chose, drawn as E3 and recorded as ``name`` = the number drawn (``index + 1``)."""
    return num(name, int(index) + 1, "E{}")


def expert_picks(name: str, indices) -> str:
    """Several chosen experts, "E3、E5", recorded as ``name[0]``, ``name[1]`` …"""
    return "、".join(expert_pick(f"{name}[{i}]", e) for i, e in enumerate(indices))


# --- toy routing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToyRouting:
    """A seeded toy MoE layer applied to the sentence: what the routing sections show."""

    logits: np.ndarray  # (tokens, N) router logits x·W_r
    probs: np.ndarray  # (tokens, N) softmax over experts
    indices: np.ndarray  # (tokens, k) top-k experts, largest weight first
    weights: np.ndarray  # (tokens, k) renormalised top-k weights
    expert_outputs: np.ndarray  # (k, d) E_i(x) of the focus token's chosen experts
    output: np.ndarray  # (d,) Σ weight · E_i(x) for the focus token


def toy_routing(cfg: MoEConfig = CFG) -> ToyRouting:
    """Random token vectors, router and ReLU experts; routing by ``top_k_routing`` (Mixtral: softmax → top-k →
    renormalise), output = weighted sum of the chosen experts' outputs."""
    rng = np.random.default_rng(cfg.toy_seed)
    d, h, n = cfg.toy_dim, cfg.toy_expert_hidden, cfg.n_experts
    x = rng.normal(size=(len(cfg.sentence), d))  # (tokens, d)
    w_router = rng.normal(scale=cfg.router_std, size=(d, n))  # (d, N)
    w_in = rng.normal(scale=1 / np.sqrt(d), size=(n, d, h))  # (N, d, h)
    w_out = rng.normal(scale=1 / np.sqrt(h), size=(n, h, d))  # (N, h, d)
    logits = x @ w_router
    indices, weights = top_k_routing(logits, cfg.top_k)
    token = x[cfg.focus_token]
    outputs = np.stack([np.maximum(token @ w_in[e], 0) @ w_out[e] for e in indices[cfg.focus_token]])
    return ToyRouting(logits, softmax(logits, axis=-1), indices, weights, outputs,
                      weights[cfg.focus_token] @ outputs)


def covering_ticks(low: float, high: float, count: int) -> list[float]:
    """Round ticks (steps of 1, 2, 2.5 or 5 × 10^n, about ``count`` of them) from at or below ``low`` to at or
    above ``high``."""
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** np.floor(np.log10(raw))
    step = next(s * magnitude for s in (1, 2, 2.5, 5, 10) if s * magnitude >= raw - 1e-12)
    first, last = np.floor(low / step + 1e-9) * step, np.ceil(high / step - 1e-9) * step
    return [float(v) + 0.0 for v in np.round(np.arange(first, last + step / 2, step), 10)]


def token_shares(log: dict) -> np.ndarray:
    """(records, N) percent of the window's tokens that had each expert among their top-k (sums to k·100)."""
    rows = np.array([r["load_window"] for r in log["history"]], dtype=float)
    tokens = rows.sum(axis=1, keepdims=True) / log["config"]["top_k"]
    return rows / tokens * PERCENT


def record_index(log: dict, step: int) -> int:
    """Index of the first logged record at or after ``step`` (the last record when none is)."""
    return next((i for i, r in enumerate(log["history"]) if r["step"] >= step), len(log["history"]) - 1)


def ratio_stats(ratios) -> dict | None:
    """Lowest, highest and mean of max/min ratios; None when one of them is None (an expert got no token)."""
    if any(r is None for r in ratios):
        return None
    return {"low": min(ratios), "high": max(ratios), "mean": float(np.mean(ratios))}


def balance_words(log: dict, run: str) -> tuple[str, str]:
    """(caption, narration): when the training window's loads evened out for good, in words that say what "even"
    means, or that they had not by the last logged step; numbers recorded as ``run_…``."""
    claims = moe_claims(log)
    even = dict(even_tolerance=EVEN_LOAD_TOLERANCE)
    if claims["balance_step"] is None:
        when = dict(prefix=f"{run}_", final_step=claims["final_step"])
        return (fill("训练 batch：到第 {final_step} 步\n", **when) + fill("负载还没稳定在均值 ±{even_tolerance:.0%} 内", **even),
                fill("看训练 batch：到第 {final_step} 步", **when) +
                fill("，负载还没稳定在均值上下 {even_tolerance:.0%} 以内。", **even))
    when = dict(prefix=f"{run}_", balance_step=claims["balance_step"])
    return (fill("训练 batch：第 {balance_step} 步起\n", **when) + fill("每个专家都在均值 ±{even_tolerance:.0%} 内", **even),
            fill("看训练 batch：从第 {balance_step} 步起", **when) +
            fill("，每个专家的负载都在均值上下 {even_tolerance:.0%} 以内。", **even))


def spread_words(log: dict, run: str) -> tuple[str, str]:
    """(caption, narration): how uneven the last training window is (max/min), or that an expert got no token in it
    (no ratio then); numbers recorded as ``run_…``."""
    window = num(f"{run}_log_every", log["config"]["log_every"])
    ratio = moe_claims(log)["max_over_min"]
    if ratio is None:
        return f"最后 {window} 步：\n有专家没拿到 token", f"最后 {window} 步，还有专家一个 token 都没拿到。"
    ratio = num(f"{run}_max_over_min", ratio, "{:.2f}")
    return f"最后 {window} 步：最忙/最闲 {ratio}×", f"最后 {window} 步，最忙的专家是最闲的 {ratio} 倍。"


class MoERouting(ExplainerScene):
    """Mixture of Experts: routing with real numbers, load collapse and balancing from real runs, 671B vs 37B."""

    def construct(self):
        self.toy = toy_routing()
        self.dense_vs_sparse()
        self.router_scores()
        self.weighted_sum()
        self.winner_takes_all()
        self.balancing_loss()
        self.balancing_loss_run()
        self.bias_only_chooses()
        self.bias_run()
        self.held_out_comparison()
        self.total_vs_active()
        self.active_breakdown()

    # --- shared pieces ---------------------------------------------------------------------------------------------

    @property
    def stacked(self) -> bool:
        """Whether a chart's companions (small print, a second chart, a key) go under it rather than beside it: in
        portrait and in the squarish 1:1 figure."""
        return self.layout.figure.width < WIDE_FIGURE * self.layout.figure.height

    def box(self, text: str, width: float, height: float, *, color=None, fill=None, role: str = "label"):
        """A rounded box with a centred label (a token, the router, an expert)."""
        pal = self.palette
        rect = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=width, height=height,
                                stroke_color=color or pal.muted, stroke_width=theme.STROKE_THIN)
        rect.set_fill(fill or pal.panel, 1)
        label = zh(text, role, color=pal.text, prose=False)
        label.move_to(rect)
        return VGroup(rect, label)

    def arrow(self, start, end) -> Arrow:
        """A thin flow arrow whose tip has the same size whatever its length."""
        return Arrow(start, end, buff=ARROW_BUFF, color=self.palette.muted, stroke_width=theme.STROKE_THIN,
                     tip_length=FLOW_TIP, max_tip_length_to_length_ratio=1.0, max_stroke_width_to_length_ratio=100)

    def expert_grid(self, width: float, height: float, lit: dict[int, str]) -> VGroup:
        """N experts as a 2-row grid filling width × height; ``lit`` maps expert → colour."""
        pal = self.palette
        rows, cols = 2, CFG.n_experts // 2
        cell_w, cell_h = width / cols, height / rows
        grid = VGroup()
        for e in range(rows * cols):
            colour = lit.get(e)
            cell = self.box(expert_label(e), cell_w * 0.9, cell_h * 0.9, color=colour or pal.grid,
                            fill=pal.panel, role="small")
            if colour:
                cell[0].set_fill(colour, 0.45)
            cell.move_to([(e % cols - (cols - 1) / 2) * cell_w, ((rows - 1) / 2 - e // cols) * cell_h, 0])
            grid.add(cell)
        return grid

    def run_note(self, log: dict, run: str) -> VMobject:
        """Small print under a run: what ran, on what, how long (from the log's config and provenance)."""
        cfg, prov = log["config"], log["provenance"]
        return self.fine_print(fill(
            "真实训练：{n_experts} 专家 top-{top_k}，seed {seed}\n{device}，用时 {wall_seconds:.1f} 秒",
            prefix=f"{run}_", n_experts=cfg["n_experts"], top_k=cfg["top_k"], seed=cfg["seed"],
            device=term(short_device_name(prov["device"])), wall_seconds=prov["wall_seconds"]))

    def share_chart(self, region: Region, log: dict, compact: bool = False) -> Chart:
        """Percent of the training window's tokens per expert, 0–100 %, one bar slot per expert; ``compact``: no
        expert names under it (a chart under it names the experts)."""
        n = log["config"]["n_experts"]
        title = fill("近 {log_every} 步训练 token（%）", log_every=log["config"]["log_every"])

        def chart(ticks) -> Chart:
            return Chart(
                region,
                AxisSpec(-0.5, n - 0.5, [] if compact else [(float(e), expert_label(e)) for e in range(n)], ""),
                AxisSpec(0, PERCENT, numeric_ticks("share_tick", ticks, "{:.0f}"), title),
            )

        # The plot box does not depend on which ticks are labelled: every other one is dropped when their labels
        # would touch.
        box_height = chart(SHARE_TICKS).box.height
        spacing = box_height * (SHARE_TICKS[1] - SHARE_TICKS[0]) / PERCENT
        return chart(SHARE_TICKS if spacing >= TICK_SPACING_EM * self.layout.text_em("label") else SHARE_TICKS[::2])

    def fair_share(self, log: dict) -> float:
        """Each expert's share at perfect balance, k/N, in percent (from the log's claims)."""
        return moe_load_spread(log)["fair_token_share"] * PERCENT

    def share_chart_with_fair_line(self, region: Region, log: dict, compact: bool = False):
        """The share chart, leaving room on its right for the fair-share label at the end of the dashed line at
        k/N. Returns (chart, VGroup(line, label))."""
        fair = self.fair_share(log)
        label = zh(fill("均分\n{fair_share:.0f}%", fair_share=fair), "small", color=self.palette.accent)
        gap = 0.15
        chart = self.share_chart(Region(region.left, region.right - label.width - gap, region.bottom, region.top),
                                 log, compact)
        line = chart.hline(fair, self.palette.accent)
        label.next_to(line, RIGHT, buff=gap)
        return chart, VGroup(line, label)

    def play_run(self, log: dict, run: str, chart: Chart, color, role: str = "label"):
        """Bars of ``token_shares`` that follow a tracker over the log's records, and a step counter.

        Returns (bars, step readout, tracker).
        """
        shares = self.plotted(f"{run}_shares", token_shares(log))
        t = ValueTracker(0)
        bars = LiveBars(chart, np.arange(len(shares[0])), lambda: interpolate_rows(shares, t.get_value()), color)
        steps = np.array([r["step"] for r in log["history"]], dtype=float)
        step_readout = LiveNumber(lambda: np.interp(t.get_value(), np.arange(len(steps)), steps), "step {:.0f}",
                                  role, color=self.palette.accent, name=f"{run}_step")
        return bars, step_readout, t

    def place_step_readout(self, readout: LiveNumber, t: ValueTracker, records: int, chart: Chart,
                           right: float) -> None:
        """On the line of the y-axis title, above the plot, ending at ``right`` when it shows the last (widest)
        step."""
        t.set_value(records - 1)
        width = readout.update().width
        t.set_value(0)
        readout.update().move_to([right - width, chart.y_title.get_center()[1], 0], aligned_edge=LEFT)

    def run_stage(self, log: dict, run: str, color):
        """Chart, playing bars, fair line and small print of one run in the figure; returns what to animate."""
        note = self.run_note(log, run)
        if self.stacked:  # the chart with the step counter over it, then the small print under it
            chart_area = self.layout.figure
            if len(note):
                chart_area, note_area = chart_area.rows([chart_area.height - note.height, note.height], gap=0.3)
                note_area.place(note, align="left")
            chart, fair = self.share_chart_with_fair_line(chart_area, log)
            bars, step_readout, t = self.play_run(log, run, chart, color)
            self.place_step_readout(step_readout, t, len(log["history"]), chart, chart_area.right)
        else:  # chart on the left; step counter and small print in a column on the right
            chart_area, info_area = self.layout.figure.cols([0.6, 0.4], gap=0.5)
            chart, fair = self.share_chart_with_fair_line(chart_area, log)
            bars, step_readout, t = self.play_run(log, run, chart, color, role="body")
            step_readout.move_to(info_area.point(0, 1), aligned_edge=UP + LEFT)
            info = VGroup(step_readout)
            if len(note):
                info.add(note.next_to(step_readout, DOWN, buff=0.5, aligned_edge=LEFT))
            info.move_to(info_area.center, coor_mask=np.array([0, 1, 0]))
        return chart, bars, step_readout, t, fair, note

    def say_both(self, words: tuple[str, str], *, color=None) -> None:
        """A caption and the narration that says it, held for their reading (or speaking) time."""
        caption, speech = words
        with self.voice(speech):
            self.say(caption, color=color, hold=True)

    # --- 1 ---------------------------------------------------------------------------------------------------------

    def dense_vs_sparse(self):
        self.next_section("一个大 FFN vs 一群专家")
        pal = self.palette
        self.show_title("大 FFN 还是一群专家")
        n, k = CFG.n_experts, CFG.top_k
        chosen = self.plotted("lit_experts", self.toy.indices[CFG.focus_token].tolist())

        dense_area, moe_area = self.layout.figure.rows(2, gap=self.layout.panel_gap)
        label_em = self.layout.text_em("label")
        panels = []
        for area, name in ((dense_area, "稠密"), (moe_area, "MoE")):
            if self.is_portrait:
                head, flow = area.rows([0.2, 0.8], gap=0.1)
            else:
                head, flow = area.cols([0.12, 0.88], gap=0.2)
            panels.append((head.place(zh(name, "label", bold=True, color=pal.muted), align="left"), flow))
        # One set of columns for both flows, so the FFN and the expert grid have the same size and place.
        flow = panels[0][1]
        # Box and gap widths in label ems; portrait is narrow, so everything but the expert grid gets tighter.
        token_w = (1.8 if self.is_portrait else 2.2) * label_em
        router_w = (3.0 if self.is_portrait else 4.2) * label_em
        gap = (1.2 if self.is_portrait else 1.6) * label_em
        block_w = flow.width - 2 * token_w - router_w - 3 * gap
        cols = flow.cols([token_w, gap, router_w, gap, block_w, gap, token_w])
        block_h = min(flow.height * 0.9, block_w * (0.7 if self.is_portrait else 0.5))

        def at(col: Region, row_area: Region) -> np.ndarray:
            return np.array([col.center[0], row_area.center[1], 0.0])

        diagrams = []
        for (head, area), kind in zip(panels, ("dense", "moe")):
            x_box = self.box("x", token_w, 1.6 * label_em, role="label").move_to(at(cols[0], area))
            y_box = self.box("y", token_w, 1.6 * label_em, role="label").move_to(at(cols[6], area))
            if kind == "dense":
                block = self.box("FFN", block_w, block_h, color=pal.query, role="label")
                block[0].set_fill(pal.query, 0.45)
                block.move_to(at(cols[4], area))
                arrows = VGroup(self.arrow(x_box.get_right(), block.get_left()),
                                self.arrow(block.get_right(), y_box.get_left()))
                parts = VGroup(x_box, block, y_box, arrows)
                path = [x_box.get_center(), block.get_center(), y_box.get_center()]
            else:
                router_name = "路由" if self.is_portrait else "路由器"
                router = self.box(router_name, router_w, 1.6 * label_em, color=pal.accent).move_to(at(cols[2], area))
                block = self.expert_grid(block_w, block_h, {chosen[0]: pal.query, chosen[1]: pal.key})
                block.move_to(at(cols[4], area))
                arrows = VGroup(self.arrow(x_box.get_right(), router.get_left()),
                                self.arrow(router.get_right(), block.get_left()),
                                self.arrow(block.get_right(), y_box.get_left()))
                parts = VGroup(x_box, router, block, y_box, arrows)
                path = [x_box.get_center(), router.get_center(), block[chosen[0]].get_center(),
                        y_box.get_center()]
            diagrams.append((head, parts, path, block))

        (dense_head, dense, dense_path, ffn), (moe_head, moe, moe_path, grid) = diagrams
        with self.voice("普通的 Transformer 里，每个 token 都要走完整个 FFN，所有参数都要算一遍。"):
            self.play(FadeIn(dense_head), FadeIn(dense), run_time=theme.BEAT)
            self.say("稠密：每个 token\n都走完整个 FFN")
            dot = Dot(dense_path[0], color=pal.accent, radius=0.5 * label_em / 2)
            self.play(FadeIn(dot), run_time=theme.QUICK / 2)
            for point in dense_path[1:]:
                self.play(dot.animate.move_to(point), run_time=theme.QUICK, rate_func=linear)
            self.play(Indicate(ffn, color=pal.query, scale_factor=1.03), FadeOut(dot), run_time=theme.BEAT)
        with self.voice(fill("MoE 把它切成 {n_experts} 个小专家，前面放一个路由器，每个 token 只挑 {top_k} 个专家来算。",
                             n_experts=n, top_k=k)):
            self.play(FadeIn(moe_head), FadeIn(moe), run_time=theme.BEAT)
            self.say(fill("MoE：切成 {n_experts} 个专家\n路由器只挑 {top_k} 个", n_experts=n, top_k=k),
                     color=pal.accent)
            dots = [Dot(moe_path[0], color=pal.accent, radius=0.5 * label_em / 2) for _ in range(k)]
            self.play(*[FadeIn(d) for d in dots], run_time=theme.QUICK / 2)
            self.play(*[d.animate.move_to(moe_path[1]) for d in dots], run_time=theme.QUICK, rate_func=linear)
            self.play(*[d.animate.move_to(grid[e].get_center()) for d, e in zip(dots, chosen)], run_time=theme.QUICK,
                      rate_func=linear)
            self.play(*[Indicate(grid[e], scale_factor=1.08, color=c) for e, c in zip(chosen, (pal.query, pal.key))],
                      run_time=theme.BEAT)
            self.play(*[d.animate.move_to(moe_path[-1]) for d in dots], run_time=theme.QUICK, rate_func=linear)
            self.play(*[FadeOut(d) for d in dots], run_time=theme.QUICK / 2)
        with self.voice(fill("参数一样多，每个 token 却只算了 {n_experts} 份里的 {top_k} 份。", n_experts=n, top_k=k)):
            self.say(fill("参数一样多\n每个 token 只算 {top_k}/{n_experts}", top_k=k, n_experts=n), color=pal.value,
                     hold=True)
            self.wait(theme.HOLD)
        self.clear_stage()

    # --- 2 ---------------------------------------------------------------------------------------------------------

    def expert_table(self, region: Region, quantities: list[str], name_weight: float):
        """Cell centres of a quantities × experts table: experts across in 16:9, down in portrait.

        ``name_weight``: width of the column of quantity names (landscape), relative to one expert's column; in
        portrait the first column holds the short expert names instead.
        Returns (cell(q, e) → point, cell size (width, height), name mobjects, expert-label mobjects).
        """
        pal = self.palette
        n = CFG.n_experts
        if self.is_portrait:
            rows = region.rows(n + 1)
            cols = region.cols([PORTRAIT_EXPERT_COLUMN] + [1.0] * len(quantities))
            cell = lambda q, e: np.array([cols[q + 1].center[0], rows[e + 1].center[1], 0.0])  # noqa: E731
            name_at = lambda q: np.array([cols[q + 1].center[0], rows[0].center[1], 0.0])  # noqa: E731
            expert_at = lambda e: np.array([cols[0].center[0], rows[e + 1].center[1], 0.0])  # noqa: E731
        else:
            rows = region.rows(len(quantities) + 1)
            cols = region.cols([name_weight] + [1.0] * n)
            cell = lambda q, e: np.array([cols[e + 1].center[0], rows[q + 1].center[1], 0.0])  # noqa: E731
            name_at = lambda q: np.array([cols[0].center[0], rows[q + 1].center[1], 0.0])  # noqa: E731
            expert_at = lambda e: np.array([cols[e + 1].center[0], rows[0].center[1], 0.0])  # noqa: E731
        size = (cols[1].width, rows[1].height)
        names = [zh(q, "label", color=pal.muted).move_to(name_at(i)) for i, q in enumerate(quantities)]
        experts = [zh(expert_label(e), "label", color=pal.muted).move_to(expert_at(e)) for e in range(n)]
        return cell, size, names, experts

    def column_box(self, cell, size, e: int, q_from: int, q_to: int, color) -> VMobject:
        """A frame around expert ``e``'s cells from quantity ``q_from`` to ``q_to``."""
        a, b = cell(q_from, e), cell(q_to, e)
        w, h = size
        width = abs(b[0] - a[0]) + 0.92 * w
        height = abs(b[1] - a[1]) + 0.92 * h
        frame = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=width, height=height, stroke_color=color,
                                 stroke_width=theme.STROKE)
        return frame.move_to((a + b) / 2)

    def cells(self, cell, q: int, name: str, values, experts=None, colors=None) -> VGroup:
        """Row ``q`` of an expert table: ``values`` (two decimals, recorded as ``name[i]``) at experts ``experts``
        (default all, in order)."""
        experts = range(len(values)) if experts is None else experts
        colors = colors or [self.palette.text] * len(values)
        return VGroup(*(zh(num(f"{name}[{i}]", v, "{:.2f}"), "label", color=c).move_to(cell(q, e))
                        for i, (e, v, c) in enumerate(zip(experts, values, colors))))

    def table_and_note(self, note: VMobject) -> Region:
        """The figure for a table, less a line of small print under it when there is one (videos)."""
        table_area = self.layout.figure
        if len(note):
            table_area, note_area = table_area.rows([table_area.height - note.height, note.height], gap=0.2)
            note_area.place(note)
        return table_area

    def router_scores(self):
        self.next_section("路由打分")
        pal = self.palette
        self.show_title("路由器怎么选专家")
        toy, f, k = self.toy, CFG.focus_token, CFG.top_k
        logits, probs = toy.logits[f], toy.probs[f]
        chosen, weights = toy.indices[f], toy.weights[f]

        note = self.fine_print(fill("路由器权重随机（示意），d = {toy_dim}", toy_dim=CFG.toy_dim))
        tokens_area, table_area = self.table_and_note(note).rows([0.2, 0.8], gap=0.15)
        row = TokenRow(CFG.sentence)
        row[f][0].set_stroke(pal.query, theme.STROKE)
        tokens_area.fit(row, max_grow=1.0)
        cell, size, names, experts = self.expert_table(table_area, ["logit", "softmax", "权重"], 1.8)
        logit_cells = self.cells(cell, 0, "toy_logits", logits)
        prob_cells = self.cells(cell, 1, "toy_probs", probs)
        colours = (pal.query, pal.key)
        weight_cells = self.cells(cell, 2, "toy_top_k_weights", weights, chosen, colours)
        frames = VGroup(*(self.column_box(cell, size, e, 0, 2, c) for e, c in zip(chosen, colours)))

        picks = expert_picks("toy_top_k", chosen)
        weight_texts = [num(f"toy_top_k_weights[{i}]", w, "{:.2f}") for i, w in enumerate(weights)]
        weight_sum = num("toy_top_k_weight_sum", weights.sum(), "{:.2f}")
        with self.voice(f"路由器怎么挑专家？拿「{CFG.sentence[f]}」这个 token 来看。"):
            self.play(FadeIn(row), FadeIn(note), run_time=theme.BEAT)
            self.say(f"看「{CFG.sentence[f]}」这个 token")
        with self.voice(fill("路由器给 {n_experts} 个专家各打一个分：token 向量乘上路由矩阵，叫 logit。",
                             n_experts=CFG.n_experts)):
            self.play(FadeIn(VGroup(*experts)), FadeIn(names[0]), FadeIn(logit_cells, lag_ratio=0.1),
                      run_time=theme.BEAT)
            self.say(fill("路由器给 {n_experts} 个专家打分\nlogit = x · W_r", n_experts=CFG.n_experts))
            self.wait(theme.HOLD)
        with self.voice("再过一遍 softmax，分数变成概率。"):
            self.play(FadeIn(names[1]), FadeIn(prob_cells, lag_ratio=0.1), run_time=theme.BEAT)
            self.say("softmax：变成概率")
            self.wait(theme.HOLD)
        with self.voice(f"只留概率最大的 {num('top_k', k)} 个：{picks}。别的专家这次不算。"):
            self.play(Create(frames), run_time=theme.BEAT)
            self.say(f"只留最大的 {num('top_k', k)} 个：{picks}", color=pal.accent)
            self.wait(theme.HOLD)
        with self.voice(f"这 {num('top_k', k)} 个概率重新归一，{' 加 '.join(weight_texts)} 等于 {weight_sum}，"
                        "就是它们的权重。"):
            self.play(FadeIn(names[2]), FadeIn(weight_cells), run_time=theme.BEAT)
            self.say(f"{num('top_k', k)} 个重新归一\n{' + '.join(weight_texts)} = {weight_sum}", color=pal.value,
                     hold=True)
        self.clear_stage()

    def weighted_sum(self):
        self.next_section("加权求和")
        pal = self.palette
        toy, f, k = self.toy, CFG.focus_token, CFG.top_k
        self.show_title(fill("{top_k} 个专家，加权求和", top_k=k))
        chosen, weights = toy.indices[f], toy.weights[f]

        row = TokenRow(CFG.sentence)
        row[f][0].set_stroke(pal.query, theme.STROKE)
        tags = VGroup()
        for t, token_box in enumerate(row):
            tag = zh("\n".join(expert_pick(f"toy_sentence_top_k[{t}][{j}]", e) for j, e in enumerate(toy.indices[t])),
                     "small", color=pal.query if t == f else pal.muted)
            tags.add(tag.next_to(token_box, DOWN, buff=0.15))
        top_block = VGroup(row, tags)
        note = self.fine_print(fill("专家是随机的小网络（示意），d = {toy_dim}", toy_dim=CFG.toy_dim))
        # Rows sized by what they hold: the tokens with their tags, the note; the sum gets the rest.
        gap = 0.25
        figure = self.layout.figure
        tokens_area, sum_area = figure.rows([top_block.height, figure.height - top_block.height - gap], gap=gap)
        if len(note):
            sum_area, note_area = sum_area.rows([sum_area.height - note.height, note.height], gap=gap)
            note_area.place(note)
        tokens_area.place(top_block)
        tags.set_opacity(0)
        colours = (pal.query, pal.key)
        picks = [expert_pick(f"toy_top_k[{i}]", e) for i, e in enumerate(chosen)]
        # E_a(x) = (…), E_b(x) = (…), then y = w_a·E_a(x) + w_b·E_b(x) = (…)
        names = [zh(f"{p}(x) =", "label", color=c) for p, c in zip(picks, colours)]
        vectors = [zh(num_vector(f"toy_expert_outputs[{i}]", v), "label", color=c)
                   for i, (v, c) in enumerate(zip(toy.expert_outputs, colours))]
        mix = " + ".join(f"{num(f'toy_top_k_weights[{i}]', w, '{:.2f}')} × {p}(x)"
                         for i, (p, w) in enumerate(zip(picks, weights)))
        result_name = zh("y =", "label", color=pal.value)
        result_mix = zh(mix, "label", color=pal.value)
        equals = zh("=", "label", color=pal.value)
        result = zh(num_vector("toy_output", toy.output), "label", color=pal.value)
        if self.is_portrait:  # each name above its vector
            lines = VGroup(*(VGroup(n, v).arrange(DOWN, aligned_edge=LEFT, buff=0.12) for n, v in zip(names, vectors)),
                           VGroup(result_name, result_mix).arrange(RIGHT, buff=0.2),
                           VGroup(equals, result).arrange(RIGHT, buff=0.2))
            lines.arrange(DOWN, aligned_edge=LEFT, buff=0.3)
            lines[3].shift(RIGHT * (result_mix.get_left()[0] - equals.get_left()[0]))
        else:  # names right-aligned in a column, values beside them
            lines = VGroup(*names, result_name, equals, *vectors, result_mix, result)
            lines.arrange_in_grid(rows=4, cols=2, col_alignments="rl", flow_order="dr", buff=(0.3, 0.3))
        sum_area.fit(lines, max_grow=1.0 if self.is_portrait else 1.3)

        with self.voice(f"选中的 {'、'.join(picks)} 各自算一遍，得到两个输出向量。"):
            self.play(FadeIn(row), FadeIn(note), run_time=theme.QUICK)
            self.play(FadeIn(names[0]), FadeIn(vectors[0]), run_time=theme.BEAT)
            self.say(f"{'、'.join(picks)} 各算一遍")
            self.play(FadeIn(names[1]), FadeIn(vectors[1]), run_time=theme.BEAT)
            self.wait(theme.HOLD)
        with self.voice("按刚才的权重加起来，就是这一层的输出。"):
            self.play(FadeIn(result_name), FadeIn(result_mix), run_time=theme.BEAT)
            self.play(FadeIn(equals), FadeIn(result), run_time=theme.BEAT)
            self.say("按权重加起来，就是输出", color=pal.value)
            self.wait(theme.HOLD)
        with self.voice("句子里每个 token 都各挑各的专家。"):
            self.play(tags.animate.set_opacity(1), run_time=theme.BEAT)
            self.say("每个 token 各挑各的", color=pal.accent)
            self.wait(theme.HOLD)
        with self.voice(fill("其余 {idle_experts} 个专家，这个 token 根本不用算。", idle_experts=CFG.n_experts - k)):
            self.say(fill("其余 {idle_experts} 个专家\n这个 token 不用算", idle_experts=CFG.n_experts - k), hold=True)
        self.clear_stage()

    # --- 3 ---------------------------------------------------------------------------------------------------------

    def winner_takes_all(self):
        self.next_section("赢家通吃")
        pal = self.palette
        self.show_title("赢家通吃")
        run = "none"
        log = load_moe_run(CFG.run_none)
        claims = moe_claims(log)
        collapse = moe_idle_since(log)
        calm = moe_claims(load_moe_run(CFG.run_none_no_offset))
        chart, bars, step_readout, t, fair, note = self.run_stage(log, run, pal.warning)
        early = record_index(log, CFG.early_phase_step)
        settled = early if collapse is None else max(early, record_index(log, collapse))

        cfg = log["config"]
        with self.voice(fill("真的训练一次：{n_experts} 个专家，每个 token 选 {top_k} 个，不加任何约束，"
                             "看每个专家分到多少 token。", prefix="none_", n_experts=cfg["n_experts"],
                             top_k=cfg["top_k"])):
            self.play(FadeIn(chart), FadeIn(fair), FadeIn(note), FadeIn(bars), FadeIn(step_readout),
                      run_time=theme.BEAT)
            self.say("不加任何约束，直接训练")
        if collapse is None:
            early_spread = moe_load_spread(log, early)
            values = dict(prefix="none_early_", step=early_spread["step"], share=early_spread["busiest_token_share"])
            caption = fill("第 {step} 步：最忙的专家\n拿到 {share:.0%} 的 token", **values)
            speech = fill("到第 {step} 步，最忙的专家已经拿到 {share:.0%} 的 token。", **values)
        else:
            values = dict(prefix="none_", idle_since=collapse, idle_count=len(claims["idle_experts"]))
            caption = fill("第 {idle_since} 步起，{idle_count} 个专家\n再没拿到一个 token", **values)
            speech = fill("很快就分出了赢家：从第 {idle_since} 步起，{idle_count} 个专家再也没拿到一个 token。",
                          **values)
        with self.voice(speech):
            self.play(t.animate.set_value(early), run_time=CFG.early_play_seconds, rate_func=linear)
            if settled > early:
                self.play(t.animate.set_value(settled), run_time=theme.BEAT, rate_func=linear)
            self.say(caption, color=pal.warning)
        busiest = moe_load_spread(log)["busiest_experts"]  # a tie names them all
        who = f"{expert_picks('none_busiest_expert', busiest)} {'各' if len(busiest) > 1 else ''}"
        share = num("none_busiest_token_share", claims["busiest_token_share"], "{:.0%}")
        with self.voice(f"训练到最后，最忙的 {who}拿到了 {share} 的 token。"):
            self.play(t.animate.set_value(len(log["history"]) - 1), run_time=CFG.late_play_seconds,
                      rate_func=linear)
            self.say(f"最忙的 {who}拿到\n{share} 的 token", color=pal.warning, hold=True)
        # The task adds one offset to every input (media/runs/moe/README.md says why); the run without it says what
        # the offset does.
        offset = num("none_input_offset", cfg["input_offset"], "{:g}")
        with self.voice(f"要交代一句：这个任务给所有输入都加了同一个偏移，长度是 {offset}。"):
            self.say(f"这个任务的输入都加了\n同一个偏移（长 {offset}）", hold=True)
        if calm["idle_experts"]:
            values = dict(none_no_offset_idle_count=len(calm["idle_experts"]))
            caption = fill("不加偏移：也有 {none_no_offset_idle_count} 个专家\n一个 token 都没拿到", **values)
            speech = fill("不加偏移，也有 {none_no_offset_idle_count} 个专家一个 token 都没拿到。", **values)
        else:
            ratio = num("none_no_offset_max_over_min", calm["max_over_min"], "{:.1f}")
            caption = f"不加偏移：没有专家闲着\n最忙/最闲 {ratio}×"
            speech = f"不加偏移，没有专家闲着；最忙的是最闲的 {ratio} 倍。"
        with self.voice(speech):
            self.say(caption, hold=True)
        bars.clear_updaters()
        self.clear_stage()

    # --- 4 ---------------------------------------------------------------------------------------------------------

    def balancing_loss(self):
        self.next_section("负载均衡 loss")
        pal = self.palette
        self.show_title("负载均衡 loss")
        none_log, aux_log = load_moe_run(CFG.run_none), load_moe_run(CFG.run_aux)
        n, k = aux_log["config"]["n_experts"], aux_log["config"]["top_k"]
        # Perfect balance, computed with the loss itself: circulant logits give every expert the same share of the
        # top-k picks (f_i = k/N) and the same mean probability (P_i = 1/N).
        circulant = -((np.arange(n)[None, :] - np.arange(n)[:, None]) % n).astype(float)
        balanced = load_balancing_loss(circulant, k)
        collapsed = none_log["history"][-1]["aux_loss"]
        alpha = aux_log["config"]["aux_coef"]

        formula_area, terms_area = self.layout.figure.rows([0.35, 0.65], gap=0.2)
        loss = formula('L_"aux" = N dot sum_i f_i dot P_i', "title", color=pal.text)
        formula_area.fit(loss, max_grow=1.2)
        term_text = [
            ("$N$", fill("专家数（这里 {n_experts}）", n_experts=n), pal.text),
            ("$f_i$", "实际分给专家 i 的 token 比例\n（数出来的，不能求导）", pal.key),
            ("$P_i$", "路由器给专家 i 的平均概率\n（可以求导，梯度从这里走）", pal.query),
        ]
        terms = VGroup()
        for symbol, text, colour in term_text:
            terms.add(VGroup(rich(symbol, "label", color=colour), zh(text, "label", color=colour)))
        for term_row in terms:
            term_row.arrange(RIGHT, buff=0.4, aligned_edge=UP)
        terms.arrange(DOWN, aligned_edge=LEFT, buff=0.3)
        terms_area.fit(terms, max_grow=1.0)
        values = dict(aux_loss_balanced=balanced, aux_loss_none_final=collapsed)
        with self.voice("第一种办法：训练时在总 loss 里再加一项，负载均衡 loss。"):
            self.play(FadeIn(loss), run_time=theme.BEAT)
            self.say("训练时加进总 loss")
        with self.voice(fill("N 是专家数，这里是 {n_experts}。f 是实际分给每个专家的 token 比例，是数出来的，不能求导；"
                             "P 是路由器给它的平均概率，梯度从这里走。", n_experts=n)):
            self.play(FadeIn(terms[0]), run_time=theme.QUICK)
            self.play(FadeIn(terms[1]), run_time=theme.QUICK)
            self.play(FadeIn(terms[2]), run_time=theme.QUICK)
        with self.voice("哪个专家又忙、概率又高，它那一项就大。"):
            self.say("哪个专家又忙、概率又高\n它的项就大", color=pal.key, hold=True)
        with self.voice(fill("负载完全均分时，这一项等于 {aux_loss_balanced:g}；刚才塌缩的那次训练，最后是 "
                             "{aux_loss_none_final:.2f}。", **values)):
            self.say(fill("负载全部均分时 = {aux_loss_balanced:g}\n塌缩的 none 最后是 {aux_loss_none_final:.2f}",
                          **values), color=pal.value, hold=True)
        with self.voice(fill("乘上一个小系数 α，等于 {aux_coef:g}，梯度就把概率往闲的专家那边推。", aux_coef=alpha)):
            self.say(fill("乘一个小系数 α = {aux_coef:g}\n把概率往闲的专家推", aux_coef=alpha), hold=True)
        self.clear_stage()

    def balancing_loss_run(self):
        self.next_section("辅助 loss 拉平负载")
        pal = self.palette
        self.show_title("加上辅助 loss 之后")
        run = "aux"
        log = load_moe_run(CFG.run_aux)
        claims = moe_claims(log)
        none_claims = moe_claims(load_moe_run(CFG.run_none))
        chart, bars, step_readout, t, fair, note = self.run_stage(log, run, pal.key)

        alpha = dict(aux_coef=log["config"]["aux_coef"])
        with self.voice(fill("同样的任务，加上系数 {aux_coef:g} 的辅助 loss，再训练一次。", **alpha)):
            self.play(FadeIn(chart), FadeIn(fair), FadeIn(note), FadeIn(bars), FadeIn(step_readout),
                      run_time=theme.BEAT)
            self.say(fill("同样的任务，α = {aux_coef:g}", **alpha))
            self.play(t.animate.set_value(record_index(log, CFG.early_phase_step)), run_time=CFG.early_play_seconds,
                      rate_func=linear)
            self.play(t.animate.set_value(len(log["history"]) - 1), run_time=CFG.late_play_seconds,
                      rate_func=linear)
        self.say_both(balance_words(log, run), color=pal.key)
        self.say_both(spread_words(log, run), color=pal.value)
        losses = dict(aux_eval_loss=claims["final_eval_loss"], none_eval_loss=none_claims["final_eval_loss"])
        lower = claims["final_eval_loss"] < none_claims["final_eval_loss"]
        with self.voice(fill(("任务本身的 loss 也更低" if lower else "任务本身的 loss 却没有更低") +
                             "：{aux_eval_loss:.3f}，不加约束时是 {none_eval_loss:.3f}。", **losses)):
            self.say(fill("任务 loss " + ("也更低" if lower else "没有更低") +
                          "\n{aux_eval_loss:.3f}，none 是 {none_eval_loss:.3f}", **losses), color=pal.value, hold=True)
        bars.clear_updaters()
        self.clear_stage()

    # --- 5 ---------------------------------------------------------------------------------------------------------

    def bias_only_chooses(self):
        self.next_section("DeepSeek 不要辅助 loss")
        pal = self.palette
        self.show_title("DeepSeek 的偏置")
        toy, f, k = self.toy, CFG.focus_token, CFG.top_k
        logits = toy.logits[f : f + 1]  # (1, N): the same token as before
        scores = router_affinity(logits[0])
        no_bias = np.zeros(CFG.n_experts)
        plain, _ = bias_balanced_routing(logits, no_bias, k)
        favourite = int(plain[0, 0])
        bias = no_bias.copy()
        bias[favourite] = -CFG.bias_demo_penalty
        picked, weights = bias_balanced_routing(logits, bias, k)
        picked, weights = picked[0], weights[0]

        note = self.fine_print(f"同一个「{CFG.sentence[f]}」，b 是假设的（示意）")
        cell, size, names, experts = self.expert_table(self.table_and_note(note), ["s", "b", "s + b", "权重"], 1.2)
        s_cells = self.cells(cell, 0, "bias_demo_scores", scores)
        b_cells = self.cells(cell, 1, "bias_demo_bias", bias, colors=[pal.warning if v else pal.muted for v in bias])
        sb_cells = self.cells(cell, 2, "bias_demo_biased_scores", scores + bias)
        # The experts keep the colours they had in the softmax example; a newcomer gets another one.
        colour_of = dict(zip(toy.indices[f].tolist(), (pal.query, pal.key)))
        colours = [colour_of.get(int(e), pal.extra) for e in picked]
        w_cells = self.cells(cell, 3, "bias_demo_weights", weights, picked, colours)
        plain_frames = VGroup(*(self.column_box(cell, size, e, 0, 0, pal.muted) for e in plain[0]))
        frames = VGroup(*(self.column_box(cell, size, e, 2, 3, c) for e, c in zip(picked, colours)))

        model = term("DeepSeek-V3")
        with self.voice(f"第二种办法来自 {model}：还是同一个 token，路由器的分数改用 sigmoid。"):
            self.play(FadeIn(VGroup(*experts)), FadeIn(names[0]), FadeIn(s_cells), FadeIn(note),
                      run_time=theme.BEAT)
            self.say(f"{model}：打分\ns = sigmoid(logit)")
        plain_picks = expert_picks("bias_demo_plain_choice", plain[0])
        with self.voice(f"不加偏置，就按分数选 {plain_picks}。"):
            self.play(Create(plain_frames), run_time=theme.QUICK)
            self.say(f"不加偏置：选 {plain_picks}")
        newcomers = [e for e in picked if e not in plain[0]]
        busy = expert_pick("bias_demo_penalised", favourite)
        if newcomers:
            joined = expert_picks("bias_demo_newcomers", newcomers)
            caption = f"{busy} 太忙，b 被压低\n按 s + b 挑：换上 {joined}"
            speech = f"假如 {busy} 太忙，就把它的偏置 b 压低。按 s 加 b 来挑，{joined} 就换了上来。"
        else:
            caption = f"{busy} 太忙，b 被压低\n按 s + b 挑：还是它们"
            speech = f"假如 {busy} 太忙，就把它的偏置 b 压低。按 s 加 b 来挑，这回还是它们。"
        with self.voice(speech):
            self.play(FadeIn(names[1]), FadeIn(b_cells), FadeIn(names[2]), FadeIn(sb_cells), run_time=theme.BEAT)
            self.say(caption, color=pal.warning)
            self.play(FadeOut(plain_frames), Create(frames), run_time=theme.BEAT)
            self.wait(theme.HOLD)
        with self.voice("但权重只用原来的 s：偏置只管挑谁，不进输出。"):
            self.play(FadeIn(names[3]), FadeIn(w_cells), run_time=theme.BEAT)
            self.say("权重只用 s，b 不进输出", color=pal.value, hold=True)
        with self.voice("训练时每一步都调偏置：太忙的减一点，太闲的加一点。"):
            self.say(rich("太忙：$b_i <- b_i - gamma$ \\\n太闲：$b_i <- b_i + gamma$", "body", color=pal.accent),
                     hold=True)
        with self.voice("不加辅助 loss，也不碰梯度。"):
            self.say("不加辅助 loss，\n不碰梯度", color=pal.accent, hold=True)
        self.clear_stage()

    def bias_run(self):
        self.next_section("偏置拉平负载")
        pal = self.palette
        self.show_title("偏置拉平负载")
        run = "bias"
        log = load_moe_run(CFG.run_bias)
        biases = self.plotted("bias_history", np.array([r["bias"] for r in log["history"]]))  # (records, N)
        deepest = int(np.argmin(biases.min(axis=1)))  # the record where the lowest bias bottoms out
        penalised = int(np.argmin(biases[deepest]))

        cfg = log["config"]
        note = self.run_note(log, run)
        figure = self.layout.figure
        if len(note):
            figure, note_area = figure.rows([figure.height - note.height, note.height], gap=0.2)
            note_area.place(note, align="left")
        if self.stacked:  # loads, then biases under them; only the lower chart names the experts
            loads_area, bias_area = figure.rows([0.58, 0.42], gap=0.2)
        else:
            loads_area, bias_area = self.layout.panels(2, region=figure)
        n = cfg["n_experts"]
        x_ticks = [(float(e), expert_label(e)) for e in range(n)]
        # The bias axis spans round values around the data; which of them get a label depends on the room.
        ticks = covering_ticks(float(biases.min()), float(biases.max()), BIAS_TICKS)
        zero_index = ticks.index(0.0)

        # The bias axis is named at the right end of its zero line (as the fair share is on the chart above), which
        # leaves the plot the line a title would take.
        bias_name = zh("偏置 b", "small", color=pal.accent)
        name_gap = 0.15

        def bias_chart_in(region: Region, stride: int = 1) -> Chart:
            labelled = [v for i, v in enumerate(ticks) if (i - zero_index) % stride == 0]
            plot = Region(region.left, region.right - bias_name.width - name_gap, region.bottom, region.top)
            return Chart(plot, AxisSpec(-0.5, n - 0.5, x_ticks, ""),
                         AxisSpec(ticks[0], ticks[-1], numeric_ticks("bias_tick", labelled), ""))

        # Label every tick, or every 2nd, 3rd…, whatever leaves TICK_SPACING_EM between labels (the plot's height
        # does not depend on the labels).
        spacing = bias_chart_in(bias_area).box.height / (len(ticks) - 1)
        label_em = self.layout.text_em("label")
        stride = next(m for m in range(1, len(ticks)) if m * spacing >= TICK_SPACING_EM * label_em or
                      m == len(ticks) - 1)
        bias_chart = bias_chart_in(bias_area, stride)
        # Stacked, only the lower chart names the experts.
        chart, fair = self.share_chart_with_fair_line(loads_area, log, compact=self.stacked)
        if self.stacked:  # line the two plots up, bar over bar: move each inward to the narrower one's edges
            left, right = max(chart.box.left, bias_chart.box.left), min(chart.box.right, bias_chart.box.right)

            def moved(area: Region, box: Region) -> Region:
                return Region(area.left + left - box.left, area.right + right - box.right, area.bottom, area.top)

            chart, fair = self.share_chart_with_fair_line(moved(loads_area, chart.box), log, compact=True)
            bias_chart = bias_chart_in(moved(bias_area, bias_chart.box), stride)
        bars, step_readout, t = self.play_run(log, run, chart, pal.value)
        self.place_step_readout(step_readout, t, len(log["history"]), chart, loads_area.right)
        bias_bars = LiveBars(bias_chart, np.arange(n), lambda: interpolate_rows(biases, t.get_value()), pal.accent,
                             baseline=0.0)
        zero_line = bias_chart.hline(0.0, pal.muted, dashed=False)
        zero = VGroup(zero_line, bias_name.next_to(zero_line, RIGHT, buff=name_gap))

        gamma = dict(bias_gamma=cfg["bias_gamma"])
        with self.voice(fill("同样的任务，不加辅助 loss，只用偏置：每一步，偏置调 γ 这么多，γ 等于 {bias_gamma:g}。",
                             **gamma)):
            self.play(FadeIn(chart), FadeIn(fair), FadeIn(bars), FadeIn(step_readout), FadeIn(bias_chart),
                      FadeIn(zero), FadeIn(bias_bars), FadeIn(note), run_time=theme.BEAT)
            self.say(fill("同样的任务，只用偏置\nγ = {bias_gamma:g}", **gamma))
            # The first play runs until the most penalised bias bottoms out, where the caption names it.
            self.play(t.animate.set_value(deepest), run_time=CFG.early_play_seconds, rate_func=linear)
        busy = expert_pick("bias_most_penalised_expert", penalised)
        lowest = num("bias_lowest", biases[deepest, penalised], "{:.2f}")
        with self.voice(f"{busy} 太忙，它的偏置被压到 {lowest}，挑中它的 token 就少了。"):
            self.say(f"{busy} 太忙：它的 b\n压到 {lowest}", color=pal.accent)
            self.play(t.animate.set_value(len(log["history"]) - 1), run_time=CFG.late_play_seconds,
                      rate_func=linear)
        self.say_both(balance_words(log, run), color=pal.value)
        self.say_both(spread_words(log, run), color=pal.value)
        with self.voice("偏置一起涨、一起落，不影响挑谁；要紧的是它们之间的差。"):
            self.say("b 一起涨落不影响挑谁\n要紧的是差值", hold=True)
        bars.clear_updaters()
        bias_bars.clear_updaters()
        self.clear_stage()

    # --- 6 ---------------------------------------------------------------------------------------------------------

    def held_out_comparison(self):
        """Max/min load of the aux-loss and bias runs on two measures: the training window the runs balance on,
        and the fixed held-out set routed by the model of the moment; bars at the last record, whiskers over the
        last ``compare_last_records``."""
        self.next_section("训练 batch 与留出集")
        pal = self.palette
        self.show_title("换一批数据再看")
        runs = {"aux": load_moe_run(CFG.run_aux), "bias": load_moe_run(CFG.run_bias)}
        colours = {"aux": pal.key, "bias": pal.value}
        names = {"aux": "辅助 loss", "bias": "偏置"}
        last = CFG.compare_last_records
        measures = {"window": "load_window", "held_out": "eval_load"}  # the counts each measure reads
        final = {(run, m): moe_load_spread(log, counts=counts)["max_over_min"]
                 for run, log in runs.items() for m, counts in measures.items()}
        stats = {(run, m): ratio_stats([moe_load_spread(log, i, counts)["max_over_min"] for i in range(-last, 0)])
                 for run, log in runs.items() for m, counts in measures.items()}
        self.plotted("max_over_min_final", {f"{r}/{m}": v for (r, m), v in final.items()})
        self.plotted("max_over_min_last_records", {f"{r}/{m}": v for (r, m), v in stats.items()})
        aux_cfg = runs["aux"]["config"]
        group_names = {
            "window": zh(fill("训练 batch\n近 {log_every} 步合计", log_every=aux_cfg["log_every"]), "label",
                         color=pal.muted),
            "held_out": zh(fill("留出集\n{eval_tokens} 个", eval_tokens=aux_cfg["eval_tokens"]), "label",
                           color=pal.muted),
        }
        shown = [v for v in [*final.values(), *(s["high"] for s in stats.values() if s)] if v is not None]
        ticks = covering_ticks(1.0, max(shown), RATIO_TICKS)
        legend = VGroup(*(VGroup(Rectangle(width=0.6 * self.layout.text_em("label"),
                                           height=0.6 * self.layout.text_em("label"), stroke_width=0)
                                 .set_fill(colours[run], 0.9),
                                 zh(names[run], "label", color=colours[run])).arrange(RIGHT, buff=0.15)
                          for run in runs)).arrange(RIGHT, buff=0.6)
        range_note = zh(fill("细线：最后 {compare_last_records} 次记录的范围", compare_last_records=last), "small",
                        color=pal.muted)
        key = VGroup(legend, range_note).arrange(DOWN, aligned_edge=LEFT, buff=0.2)
        figure = self.layout.figure
        if self.stacked:  # the key over the chart
            key_area, chart_area = figure.rows([key.height, figure.height - key.height], gap=0.3)
            key_area.place(key, align="left")
        else:  # the key in a column beside the chart, which keeps the figure's height
            chart_area, key_area = figure.cols([figure.width - key.width - 0.6, key.width], gap=0.6)
            key.move_to(key_area.point(0, 1), aligned_edge=UP + LEFT)
        label_em = self.layout.text_em("label")
        names_room = max(g.height for g in group_names.values()) + 0.4 * label_em
        # The axis starts at 1× (every expert equally busy), so a bar's length is how far from even it is.
        chart = Chart(Region(chart_area.left, chart_area.right, chart_area.bottom + names_room, chart_area.top),
                      AxisSpec(-0.5, 1.5, [], ""),
                      AxisSpec(ticks[0], ticks[-1], numeric_ticks("ratio_tick", ticks, "{:g}×"),
                               fill("最忙/最闲，{even_ratio:g}× 是完全均匀", even_ratio=1.0)))
        for g, group in enumerate(measures):
            group_names[group].next_to(chart.c2p(g, ticks[0]), DOWN, buff=0.3 * label_em)
        width = 0.3  # bar width in x units (a group is 1 unit wide)
        groups = {}
        for g, measure in enumerate(measures):
            bars = VGroup()
            for offset, run in zip((-0.18, 0.18), runs):
                value, spread = final[(run, measure)], stats[(run, measure)]
                x = g + offset
                bar = VGroup()
                if value is not None:
                    base, top = chart.c2p(x, 1.0), chart.c2p(x, value)
                    half = (chart.c2p(x + width / 2, 1.0) - base)[0]
                    rect = Rectangle(width=2 * half, height=max(top[1] - base[1], 1e-3), stroke_width=0)
                    bar.add(rect.set_fill(colours[run], 0.9).move_to((base + top) / 2))
                if spread is not None:
                    low, high = chart.c2p(x, spread["low"]), chart.c2p(x, spread["high"])
                    whisker = VMobject(stroke_color=pal.text, stroke_width=theme.STROKE_THIN)
                    cap = 0.35 * half
                    whisker.set_points_as_corners([low + LEFT * cap, low + RIGHT * cap, low, high, high + LEFT * cap,
                                                   high + RIGHT * cap])
                    bar.add(whisker)
                top_y = max(chart.c2p(x, v)[1] for v in [value or 1.0, spread["high"] if spread else 1.0])
                text = "—" if value is None else f"{num(f'{run}_{measure}_max_over_min', value, '{:.2f}')}×"
                bar.add(zh(text, "label", color=colours[run]).move_to([chart.c2p(x, 1.0)[0], top_y, 0],
                                                                      aligned_edge=DOWN).shift(UP * 0.2 * label_em))
                bars.add(bar)
            groups[measure] = bars
        with self.voice(fill("前面说的均衡，看的都是训练 batch：近 {log_every} 步的 token 加在一起数。",
                             log_every=aux_cfg["log_every"])):
            self.play(FadeIn(key), FadeIn(chart), FadeIn(group_names["window"]), FadeIn(groups["window"]),
                      run_time=theme.BEAT)
        with self.voice(fill("换一批数据再看：固定的 {eval_tokens} 个留出 token，训练没见过，随时用当下的模型来路由。"
                             "细线是最后 {compare_last_records} 次记录的范围。", eval_tokens=aux_cfg["eval_tokens"],
                             compare_last_records=last)):
            self.play(FadeIn(group_names["held_out"]), FadeIn(groups["held_out"]), run_time=theme.BEAT)
            self.say("留出集：固定的一批 token\n用当下的模型路由", hold=True)

        def more_even(measure: str) -> str | None:
            """Which run's experts are more evenly loaded on this measure; None when an expert got no token."""
            aux, bias = final[("aux", measure)], final[("bias", measure)]
            return None if aux is None or bias is None else (names["bias"] if bias < aux else names["aux"])

        previous = None
        for measure, where, colour in (("window", "训练 batch", pal.value), ("held_out", "留出集", pal.accent)):
            winner = more_even(measure)
            if winner is None:
                self.say_both((f"{where}：有专家一个 token 都没有", f"看{where}：有专家一个 token 都没拿到。"),
                              color=colour)
                continue
            verdict = f"{winner}{' ' if winner.endswith('loss') else ''}{'也' if winner == previous else ''}更匀"
            ratios = {run: num(f"{run}_{measure}_max_over_min", final[(run, measure)], "{:.2f}") for run in runs}
            self.say_both((f"{where}：{verdict}\n偏置 {ratios['bias']}×，辅助 loss {ratios['aux']}×",
                           f"看{where}：{verdict}。最忙和最闲之比，偏置 {ratios['bias']}，辅助 loss {ratios['aux']}。"),
                          color=colour)
            previous = winner
        bias_stats, aux_stats = stats[("bias", "held_out")], stats[("aux", "held_out")]
        if bias_stats and aux_stats:
            means = dict(prefix="held_out_last_", n=last, bias_mean=bias_stats["mean"], aux_mean=aux_stats["mean"])
            self.say_both((fill("留出集最后 {n} 次平均：\n偏置 {bias_mean:.2f}×，辅助 loss {aux_mean:.2f}×", **means),
                           fill("留出集最后 {n} 次记录的平均：偏置 {bias_mean:.2f}，辅助 loss {aux_mean:.2f}。", **means)))
        self.clear_stage()

    # --- 7 ---------------------------------------------------------------------------------------------------------

    def total_vs_active(self):
        config = DeepSeekV3Config()
        counts = deepseek_v3_parameter_counts(config)
        total, active = counts["total"], counts["active"]
        headline = fill("{deepseek_total_b:.0f}B 与 {deepseek_active_b:.1f}B", deepseek_total_b=total / BILLION,
                        deepseek_active_b=active / BILLION)
        self.next_section(headline)
        pal = self.palette
        self.show_title(headline)

        # 256 routed experts drawn as one VMobject of squares (cheap to draw), the shared expert beside them; the
        # experts two demo tokens pick are lit on top. Built at unit size, then fitted to the region as one.
        n_routed, cols = config.n_routed_experts, CFG.grid_columns
        rows = int(np.ceil(n_routed / cols))
        side = 0.84  # square side as a fraction of the grid pitch
        centre = lambda e: np.array([e % cols, -(e // cols), 0.0])  # noqa: E731
        squares = VMobject(stroke_color=pal.grid, stroke_width=1.0).set_fill(pal.panel, 1)
        for e in range(n_routed):
            h = side / 2
            corners = [centre(e) + [dx, dy, 0] for dx, dy in ((-h, -h), (h, -h), (h, h), (-h, h), (-h, -h))]
            if e == 0:
                squares.set_points_as_corners(corners)
            else:
                squares.start_new_path(corners[0])
                squares.add_points_as_corners(corners[1:])
        shared_cells = 3  # the shared expert drawn 3 pitches wide, so it stands out
        shared = Rectangle(width=shared_cells * side, height=shared_cells * side, stroke_width=0)
        shared.set_fill(pal.value, 0.9).move_to([cols + shared_cells / 2, -(rows - 1) / 2, 0])
        rng = np.random.default_rng(CFG.active_demo_seed)
        token_sets = self.plotted("deepseek_demo_active_experts",
                                  [sorted(rng.choice(n_routed, config.num_experts_per_tok, replace=False).tolist())
                                   for _ in range(CFG.active_demo_tokens)])
        lit_sets = [VGroup(*(Rectangle(width=side, height=side, stroke_width=0).set_fill(c, 1).move_to(centre(e))
                             for e in chosen)) for chosen, c in zip(token_sets, (pal.query, pal.key))]
        shape = VGroup(squares, shared, *lit_sets)
        routed_label = zh(fill("{n_routed_experts} 个路由专家", n_routed_experts=n_routed), "small", color=pal.muted)
        shared_label = zh("共享", "small", color=pal.value)
        label_room = routed_label.height + 0.3

        def fit_grid(area: Region) -> None:
            Region(area.left, area.right, area.bottom + label_room, area.top).fit(shape, max_grow=100)
            routed_label.next_to(squares, DOWN, buff=0.15).align_to(squares, LEFT)
            shared_label.next_to(shared, DOWN, buff=0.15)

        total_line = VGroup(zh("总参数", "label", color=pal.muted),
                            zh(num("deepseek_total_b", total / BILLION, "{:.1f}B"), "title", color=pal.text,
                               prose=False))
        active_line = VGroup(zh("每个 token 激活", "label", color=pal.muted),
                             zh(num("deepseek_active_b", active / BILLION, "{:.1f}B"), "title", color=pal.accent,
                                prose=False))
        fraction = zh(fill("只占 {deepseek_active_fraction:.1%}", deepseek_active_fraction=active / total), "label",
                      color=pal.accent)
        # Name beside value where the figure is wide, name over value where it is not, so the grid keeps the room.
        for line in (total_line, active_line):
            if self.stacked:
                line.arrange(DOWN, buff=0.15, aligned_edge=LEFT)
            else:
                line.arrange(RIGHT, buff=0.3, aligned_edge=DOWN)
        if self.is_portrait:  # the two numbers side by side under the grid
            fraction.next_to(active_line, DOWN, aligned_edge=LEFT, buff=0.15)
            numbers = VGroup(total_line, VGroup(active_line, fraction)).arrange(RIGHT, aligned_edge=UP, buff=0.8)
        else:
            numbers = VGroup(total_line, active_line, fraction).arrange(DOWN, aligned_edge=LEFT, buff=0.35)
        figure = self.layout.figure
        if self.is_portrait:  # the grid takes the whole figure, then makes room for the numbers under it
            numbers_area = Region(figure.left, figure.right, figure.bottom, figure.bottom + numbers.height)
            grid_area = Region(figure.left, figure.right, numbers_area.top + 0.4, figure.top)
            fit_grid(grid_area)
            target = shape.copy()
            fit_grid(figure)
        elif self.stacked:  # squarish: the numbers in a narrow column, the grid in the rest
            grid_area, numbers_area = figure.cols([figure.width - numbers.width - 0.5, numbers.width], gap=0.5)
            fit_grid(grid_area)
        else:
            grid_area, numbers_area = self.layout.panels(2)
            fit_grid(grid_area)
        numbers_area.place(numbers, align="left" if not self.is_portrait else "center")
        grid = VGroup(squares, shared, routed_label, shared_label)

        experts = dict(model=term("DeepSeek-V3"), n_routed_experts=n_routed, n_shared_experts=config.n_shared_experts)
        with self.voice(fill("换到真实的大模型。{model} 每层有 {n_routed_experts} 个路由专家，另外还有 "
                             "{n_shared_experts} 个共享专家。", **experts)):
            self.play(FadeIn(grid), run_time=theme.BEAT)
            self.say(fill("{model} 每层：{n_routed_experts} 个\n路由专家 + {n_shared_experts} 个共享专家", **experts))
        chosen = dict(num_experts_per_tok=config.num_experts_per_tok)
        with self.voice(fill("每个 token 只挑 {num_experts_per_tok} 个路由专家，共享专家人人都用。", **chosen)):
            self.play(FadeIn(lit_sets[0], lag_ratio=0.1), Indicate(shared, color=pal.value), run_time=theme.BEAT)
            self.say(fill("每个 token 只挑 {num_experts_per_tok} 个\n共享专家人人都用", **chosen), color=pal.query,
                     hold=True)
        with self.voice("下一个 token，换一批。"):
            self.play(FadeOut(lit_sets[0]), FadeIn(lit_sets[1], lag_ratio=0.1), run_time=theme.BEAT)
            self.say("下一个 token，换一批")
        sizes = dict(deepseek_total_b=total / BILLION, deepseek_active_b=active / BILLION,
                     deepseek_active_fraction=active / total)
        with self.voice(fill("所以总参数是 {deepseek_total_b:.1f}B，每个 token 只激活 {deepseek_active_b:.1f}B，"
                             "只占 {deepseek_active_fraction:.1%}。", **sizes)):
            if self.is_portrait:  # the grid moves up and shrinks; its labels (text, never scaled) follow it
                routed_label.add_updater(lambda m: m.next_to(squares, DOWN, buff=0.15).align_to(squares, LEFT))
                shared_label.add_updater(lambda m: m.next_to(shared, DOWN, buff=0.15))
                self.play(Transform(squares, target[0]), Transform(shared, target[1]),
                          Transform(lit_sets[1], target[3]), run_time=theme.BEAT)
                routed_label.clear_updaters()
                shared_label.clear_updaters()
            self.play(FadeIn(total_line), run_time=theme.BEAT)
            self.play(FadeIn(active_line), FadeIn(fraction), run_time=theme.BEAT)
        with self.voice(fill("存的是 {deepseek_total_b:.0f}B，算的只有 {deepseek_active_b:.1f}B。", **sizes)):
            self.say(fill("存的是 {deepseek_total_b:.0f}B\n算的是 {deepseek_active_b:.1f}B", **sizes), color=pal.value,
                     hold=True)
            self.wait(theme.HOLD)
        self.clear_stage()

    def active_breakdown(self):
        self.next_section("激活参数拆开看")
        pal = self.palette
        config = DeepSeekV3Config()
        counts = deepseek_v3_parameter_counts(config)
        parts, active = counts["parts"], counts["active"]
        self.show_title(fill("{deepseek_active_b:.1f}B 里有什么", deepseek_active_b=active / BILLION))
        n_moe_layers = config.num_hidden_layers - config.first_k_dense_replace
        # One expert's parameters, from the helper's count of all routed experts.
        expert_params = parts["routed_experts"]["total"] // (n_moe_layers * config.n_routed_experts)
        matrices = expert_params // (config.hidden_size * config.moe_intermediate_size)  # gate, up, down
        breakdown = [
            ("routed", fill("{num_experts_per_tok} 个路由专家", num_experts_per_tok=config.num_experts_per_tok),
             parts["routed_experts"]["active"], pal.query),
            ("attention", "注意力（MLA）", parts["attention"]["active"], pal.key),
            ("shared_and_dense", fill("共享专家 + 前 {first_k_dense_replace} 层 FFN",
                                      first_k_dense_replace=config.first_k_dense_replace),
             parts["shared_experts"]["active"] + parts["dense_ffn"]["active"], pal.value),
            ("embedding_and_head", "词表 + 输出头", parts["embedding"]["active"] + parts["output_head"]["active"],
             pal.extra),
        ]
        breakdown.append(("routers_and_norms", "路由器和 norm", active - sum(v for *_, v, _ in breakdown), pal.muted))
        idle_experts = config.n_routed_experts - config.num_experts_per_tok
        idle = parts["routed_experts"]["total"] - parts["routed_experts"]["active"]
        self.plotted("deepseek_active_breakdown", {key: v for key, _, v, _ in breakdown})

        note = self.fine_print("参数按 config.json 逐项相加")
        bars_area = self.layout.figure
        if len(note):
            bars_area, note_area = bars_area.rows([bars_area.height - note.height, note.height], gap=0.3)
            note_area.place(note, align="left")
        names = [zh(name, "label", color=colour) for _, name, _, colour in breakdown]
        values = [zh(num(f"deepseek_active_part_b[{key}]", v / BILLION, "{:.1f}B"), "label", color=colour)
                  for key, _, v, colour in breakdown]
        label_em = self.layout.text_em("label")
        rows = bars_area.rows(len(breakdown), gap=0.1)
        if self.is_portrait:  # name above its bar
            bar_left = bars_area.left
            bar_max = bars_area.width - 3.5 * label_em
        else:  # names in a column, bars to their right
            name_width = max(n.width for n in names) + label_em
            bar_left = bars_area.left + name_width
            bar_max = bars_area.width - name_width - 3.5 * label_em
        largest = max(v for *_, v, _ in breakdown)
        if self.is_portrait:  # what the row leaves under its name, less a gap to the next row
            bar_h = min(1.4 * label_em, rows[0].height - names[0].height - 0.3)
        else:
            bar_h = min(1.05 * label_em, rows[0].height * 0.4)
        bars = VGroup()
        for (_, _, value, colour), name_mob, value_mob, row in zip(breakdown, names, values, rows):
            width = max(bar_max * value / largest, 0.03)
            bar = Rectangle(width=width, height=bar_h, stroke_width=0).set_fill(colour, 0.9)
            if self.is_portrait:  # the name right over its bar, the pair in the middle of its row
                VGroup(name_mob, bar).arrange(DOWN, aligned_edge=LEFT, buff=0.1).move_to(row.point(0, 0.5),
                                                                                         aligned_edge=LEFT)
            else:
                name_mob.move_to(row.point(0, 0.5), aligned_edge=LEFT)
                bar.move_to([bar_left, row.center[1], 0], aligned_edge=LEFT)
            value_mob.next_to(bar, RIGHT, buff=0.2)
            bars.add(VGroup(name_mob, bar, value_mob))

        total = dict(deepseek_active_b=active / BILLION)
        routed = num("deepseek_active_part_b[routed]", breakdown[0][2] / BILLION, "{:.1f}B")
        with self.voice(fill("这 {deepseek_active_b:.1f}B 里，大头是选中的路由专家，", **total) + f"{routed}；"
                        "其次是注意力，每个 token 都要算。"):
            self.play(FadeIn(bars, lag_ratio=0.2), FadeIn(note), run_time=theme.SLOW)
            self.say(fill("激活的 {deepseek_active_b:.1f}B：\n注意力每个 token 都要算", **total))
        size = dict(n_moe_layers=n_moe_layers, expert_matrices=matrices, hidden_size=config.hidden_size,
                    moe_intermediate_size=config.moe_intermediate_size, expert_params_m=expert_params / MILLION)
        with self.voice(fill("一共 {n_moe_layers} 个 MoE 层；每个专家是 {expert_matrices} 个 {hidden_size} 乘 "
                             "{moe_intermediate_size} 的矩阵，约 {expert_params_m:.0f}M 参数。", **size)):
            self.say(fill("{n_moe_layers} 个 MoE 层，每个专家\n"
                          "{expert_matrices}×{hidden_size}×{moe_intermediate_size} = {expert_params_m:.0f}M 参数",
                          **size), hold=True)
        idle_words = dict(idle_experts=idle_experts, deepseek_idle_routed_b=idle / BILLION)
        with self.voice(fill("没选中的 {idle_experts} 个专家，一共 {deepseek_idle_routed_b:.1f}B：存着，不算。",
                             **idle_words)):
            self.say(fill("没选中的 {idle_experts} 个专家\n{deepseek_idle_routed_b:.1f}B：存着，不算", **idle_words),
                     color=pal.accent, hold=True)
            self.wait(theme.HOLD)
        # the scene ends on this frame (what `manim -s` saves and a cover shows), so no clear_stage() here
