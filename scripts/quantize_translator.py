"""Quantize the trained translator's weights and measure what it costs (``media/runs/quant/NAME.json``).

Every weight matrix of the translator run (``shared.runs.load_translator``: embeddings, attention and FFN projections,
output projection; biases and LayerNorm γ, β stay float32, as weight-only schemes such as GPTQ keep them) is quantized
and dequantized with :mod:`shared.math.quant`, in every combination of

- format: INT8, INT4, INT3, INT2 (symmetric signed codes, scale amax / ((2^b − 1) / 2) as torch's observers), FP8
  E4M3FN, FP8 E5M2 and FP4 E2M1 (scale amax / the format's largest finite value, so the largest weight lands on it);
- granularity: one scale per tensor, per output channel, or per group of ``--group-size`` consecutive inputs of a
  channel (GPTQ's groups; NVFP4 shares one scale per 16 values, MXFP4 per 32). Scales are float32 throughout.

A matrix is seen as (channels, inputs), torch's ``Linear.weight`` layout: a linear weight of the numpy model
(``[in, out]``, ``x @ w``) is transposed; an embedding (``[tokens, d]``) is taken as it is, one channel per token
(torch quantizes embeddings per row). For each setting the log holds every matrix's relative RMS error ‖ŵ − w‖ / ‖w‖
and largest absolute error, the same over all quantized weights, and the model's test exact match (greedy numpy
decoding), token accuracy and loss (teacher forcing) with the dequantized weights.

It also logs what the quantization explainer (``scenes/quantization.py``) draws: per matrix, whether the tiny model
has outliers (largest |w| / standard deviation, excess kurtosis); the number line of one real weight row at INT8
and INT4 (scale, zero point, codes before and after clamping); a constructed outlier (one real weight of a real row
set to ``--outlier-factor`` × the row's largest |w|, labelled as constructed) and what it does to the INT4 grid per
tensor, per channel and per group; and the weights relative to their block's largest |w|, which decides whether the
uneven FP4 grid beats the even INT4 one.

Run it as ``python -m scripts.quantize_translator`` (or ``explainer quantize-translator``); ``media/runs/quant/
README.md`` has the exact command of the committed run. Nothing is random: the same weights give the same log (only
``provenance`` changes). numpy on the CPU does all the work. ``tests/runs/test_quant_run.py`` checks every rounding of
the committed log against torch's own (fake quantization, float8 casts, torch's FP4 reference encoder).
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from scripts.train_translator import rounded
from shared.math.quant import (
    affine_params,
    dequantize_affine,
    float_format_max,
    fp4_e2m1_values,
    quantize_affine,
    quantize_groupwise,
    round_to_fp4_e2m1,
    round_to_fp8,
)
from shared.math.tiny_transformer import EOS, Translator, weights_from_arrays, weights_to_arrays
from shared.runs import ROOT, refuse_overwrite, start_provenance, write_run_log

QUANT_DIR = ROOT / "media" / "runs" / "quant"
DEFAULT_NAME = "translator"
INT_BITS = {"int8": 8, "int4": 4, "int3": 3, "int2": 2}
FLOAT_BITS = {"fp8_e4m3fn": 8, "fp8_e5m2": 8, "fp4_e2m1": 4}
FLOAT_MAX = {name: float_format_max(name.split("_")[1]) for name in FLOAT_BITS}  # 448, 57344, 6
FORMATS = (*INT_BITS, *FLOAT_BITS)
GRANULARITIES = ("tensor", "channel", "group")
# What the explainer draws: the number line's row comes from EXAMPLE_MATRIX, the constructed outlier goes into a row
# of OUTLIER_MATRIX (the FFN down-projection: 64 inputs per channel, so a group is a small part of its row).
EXAMPLE_MATRIX = "encoder_layers/0/self_attention/w_q"
OUTLIER_MATRIX = "decoder_layers/0/feed_forward/w_2"
OUTLIER_CHANNEL = 0
OUTLIER_BITS = 4
HISTOGRAM_BINS = 20  # weights / their block's largest |w|, over [−1, 1]
_EPS = np.finfo(np.float32).eps  # the smallest scale, as shared.math.quant's observers


# --- quantization ----------------------------------------------------------------------------------------------------


def channel_layout(name: str, array: np.ndarray) -> np.ndarray:
    """A weight matrix as (channels, inputs), float32: linear weights transposed, embeddings as they are. Applying it
    twice gives the matrix back."""
    return np.asarray(array, dtype=np.float32) if name.endswith("_embedding") else np.asarray(array, np.float32).T


def weight_matrices(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The quantized weights: every 2-D array of the model, as (channels, inputs)."""
    return {name: channel_layout(name, a) for name, a in arrays.items() if np.ndim(a) == 2}


def _blocks(x: np.ndarray, granularity: str, group_size: int) -> np.ndarray:
    """x reshaped so that the values sharing one scale lie along the last axis."""
    if granularity == "tensor":
        return x.reshape(1, -1)
    if granularity == "channel":
        return x
    return x.reshape(x.shape[0], -1, group_size)


def quantize(x: np.ndarray, fmt: str, granularity: str, group_size: int) -> np.ndarray:
    """Quantize and dequantize a (channels, inputs) float32 matrix; returns float32 of the same shape.

    Integer formats: symmetric codes with :func:`shared.math.quant.affine_params` (per tensor, or per channel along
    axis 0) or :func:`~shared.math.quant.quantize_groupwise`, as ``torch.fake_quantize_per_tensor_affine`` /
    ``fake_quantize_per_channel_affine``. Float formats: scale = amax / largest finite value per block, then x / scale
    rounded (``round_to_fp8``: ``(x / s).to(torch.float8_*).float() * s``; ``round_to_fp4_e2m1`` with the block
    scale, as torch's FP4 reference encoder).
    """
    if fmt in INT_BITS:
        bits = INT_BITS[fmt]
        if granularity == "group":
            return quantize_groupwise(x, bits, group_size).dequantized
        p = affine_params(x, bits, symmetric=True, axis=None if granularity == "tensor" else 0)
        return dequantize_affine(quantize_affine(x, p.scale, p.zero_point, p.qmin, p.qmax), p.scale, p.zero_point)
    blocks = _blocks(x, granularity, group_size)
    scale = np.maximum(np.abs(blocks).max(axis=-1, keepdims=True) / np.float32(FLOAT_MAX[fmt]), _EPS)
    scale = scale.astype(np.float32)
    if fmt == "fp4_e2m1":
        return round_to_fp4_e2m1(blocks, scale).reshape(x.shape)
    return (round_to_fp8(blocks / scale, fmt.removeprefix("fp8_")) * scale).reshape(x.shape)


def errors(quantized: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(relative RMS error ‖q − x‖ / ‖x‖, largest |q − x|), in float64."""
    diff = quantized.astype(np.float64) - x
    return float(np.sqrt((diff**2).sum() / (x.astype(np.float64) ** 2).sum())), float(np.abs(diff).max())


# --- measurements ------------------------------------------------------------------------------------------------


def evaluate(model: Translator, pairs) -> dict[str, float]:
    """Exact match of greedy decoding, and token accuracy and mean cross-entropy with teacher forcing (every target
    word and the final <eos>), as ``scripts.train_translator.evaluate`` measures them in torch."""
    vocab = model.config.target_vocab
    exact, correct, losses = 0, [], []
    for pair in pairs:
        exact += model.translate(pair.source) == tuple(pair.target)
        logits = model.activations(pair.source, pair.target).logits
        ids = np.array([vocab.index(t) for t in (*pair.target, EOS)])
        top = logits.max(axis=-1)
        log_z = top + np.log(np.exp(logits - top[:, None]).sum(axis=-1))
        correct += (logits.argmax(axis=-1) == ids).tolist()
        losses += (log_z - logits[np.arange(len(ids)), ids]).tolist()
    return {"test_exact_match": exact / len(pairs), "test_token_accuracy": float(np.mean(correct)),
            "test_loss": float(np.mean(losses))}  # fmt: skip


def outlier_statistics(x: np.ndarray) -> dict[str, float]:
    """Largest |w| over the standard deviation, and excess kurtosis E[(w − μ)⁴] / σ⁴ − 3 (0 for a normal
    distribution; ``scipy.stats.kurtosis``'s default, Fisher's definition)."""
    w = x.astype(np.float64).ravel()
    centred = w - w.mean()
    std = np.sqrt((centred**2).mean())
    return {"max_over_std": float(np.abs(w).max() / std), "excess_kurtosis": float((centred**4).mean() / std**4 - 3)}


def number_line_row(x: np.ndarray) -> dict:
    """The explainer's number line: the first channel of ``x`` where INT4 rounding clamps a weight (so the clamp
    shows), with its INT8 and INT4 symmetric per-channel quantization: scale, zero point, codes before and after
    clamping, dequantized values."""
    quantized = {}
    for bits in (8, 4):
        p = affine_params(x, bits, symmetric=True, axis=0)
        unclamped = np.rint(x * (np.float32(1) / p.scale)) + p.zero_point  # quantize_affine before its clamp
        codes = quantize_affine(x, p.scale, p.zero_point, p.qmin, p.qmax)
        quantized[bits] = (p, unclamped, codes, dequantize_affine(codes, p.scale, p.zero_point))
    clamps = np.flatnonzero((quantized[4][1] != quantized[4][2]).any(axis=1))
    channel = int(clamps[0]) if len(clamps) else 0
    out = {"channel": channel, "weights": x[channel].tolist()}
    for bits, (p, unclamped, codes, dequantized) in quantized.items():
        out[f"int{bits}"] = {"scale": float(p.scale[channel, 0]), "zero_point": int(p.zero_point[channel, 0]),
                             "qmin": p.qmin, "qmax": p.qmax, "unclamped_codes": unclamped[channel].astype(int).tolist(),
                             "codes": codes[channel].tolist(), "dequantized": dequantized[channel].tolist(),
                             "max_abs_error": errors(dequantized[channel], x[channel])[1]}  # fmt: skip
    return out


def outlier_demo(x: np.ndarray, factor: float, group_size: int) -> dict:
    """A constructed outlier: weight (OUTLIER_CHANNEL, j) of the real matrix ``x``, j where that row's |w| is largest,
    set to ``factor`` × its value. For INT4 per tensor, per channel and per group, with and without it: the scale(s)
    of the row, the row's codes, how many distinct codes the row's other weights and all the matrix's other weights
    use (per tensor: levels of one grid), and the relative RMS error of both."""
    row = x[OUTLIER_CHANNEL]
    j = int(np.argmax(np.abs(row)))
    stretched = x.copy()
    stretched[OUTLIER_CHANNEL, j] = np.float32(factor) * row[j]
    others = np.ones(x.shape, dtype=bool)
    others[OUTLIER_CHANNEL, j] = False
    row_others = others[OUTLIER_CHANNEL]
    out = {"matrix": OUTLIER_MATRIX, "channel": OUTLIER_CHANNEL, "input": j, "factor": factor,
           "original": float(row[j]), "value": float(stretched[OUTLIER_CHANNEL, j]), "row": row.tolist(),
           "bits": OUTLIER_BITS}  # fmt: skip
    for label, matrix in (("with_outlier", stretched), ("without_outlier", x)):
        out[label] = {}
        for granularity in GRANULARITIES:
            if granularity == "group":
                q = quantize_groupwise(matrix, OUTLIER_BITS, group_size)
                scales, codes, dequantized = q.scales[OUTLIER_CHANNEL], q.codes, q.dequantized
            else:
                p = affine_params(matrix, OUTLIER_BITS, symmetric=True, axis=None if granularity == "tensor" else 0)
                codes = quantize_affine(matrix, p.scale, p.zero_point, p.qmin, p.qmax)
                dequantized = dequantize_affine(codes, p.scale, p.zero_point)
                scales = np.broadcast_to(p.scale, (x.shape[0], 1))[OUTLIER_CHANNEL]
            out[label][granularity] = {
                "scales": np.atleast_1d(scales).tolist(),
                "codes": codes[OUTLIER_CHANNEL].tolist(),
                "codes_used_by_row_others": int(np.unique(codes[OUTLIER_CHANNEL][row_others]).size),
                "codes_used_by_matrix_others": int(np.unique(codes[others]).size),
                "row_others_relative_rms_error": errors(dequantized[OUTLIER_CHANNEL][row_others], row[row_others])[0],
                "matrix_others_relative_rms_error": errors(dequantized[others], x[others])[0],
            }
    return out


def grid_comparison(matrices: dict[str, np.ndarray], group_size: int) -> dict:
    """Why FP4's uneven grid wins or loses against INT4's even one on these weights.

    With the block's largest |w| as the unit, FP4 E2M1 (scale amax / 6) has the levels ±{0, 0.5, …, 6} / 6 and INT4
    (scale amax / 7.5) the levels −8 … 7 over 7.5. FP4's steps are finer than INT4's below ``fp4_finer_below`` (in
    units of amax) and coarser above. Per granularity: the share of weights below it, and a histogram of w / amax.
    """
    levels = np.unique(np.abs(fp4_e2m1_values())) / FLOAT_MAX["fp4_e2m1"]
    int4_step = 1 / ((2**4 - 1) / 2)
    finer = levels[1:][np.diff(levels) < int4_step]
    out = {"fp4_levels": levels.tolist(), "int4_step": int4_step, "fp4_finer_below": float(finer.max()),
           "bins": np.linspace(-1, 1, HISTOGRAM_BINS + 1).tolist()}  # fmt: skip
    for granularity in GRANULARITIES:
        relative = np.concatenate([
            (b / np.abs(b).max(axis=-1, keepdims=True)).ravel()
            for b in (_blocks(x, granularity, group_size) for x in matrices.values())
        ])  # fmt: skip
        out[granularity] = {"share_fp4_finer": float(np.mean(np.abs(relative) < out["fp4_finer_below"])),
                            "histogram": np.histogram(relative, bins=out["bins"])[0].tolist()}  # fmt: skip
    return out


# --- the run -----------------------------------------------------------------------------------------------------


def command_line(name: str, group_size: int, outlier_factor: float, sentences: int | None, formats) -> str:
    """The command that reproduces this run: the options that differ from the defaults."""
    parts = ["python -m scripts.quantize_translator"]
    if name != DEFAULT_NAME:
        parts.append(f"--name {name}")
    if group_size != 8:
        parts.append(f"--group-size {group_size}")
    if outlier_factor != 20.0:
        parts.append(f"--outlier-factor {outlier_factor:g}")
    if sentences is not None:
        parts.append(f"--sentences {sentences}")
    if tuple(formats) != FORMATS:
        parts += [f"--format {f}" for f in formats]
    return " ".join(parts)


def _rounded(obj):
    """Floats of a log to 6 significant digits (the translator run's convention)."""
    if isinstance(obj, float):
        return rounded(obj)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rounded(v) for v in obj]
    return obj


def run(out_path: str | Path, *, group_size: int = 8, outlier_factor: float = 20.0, sentences: int | None = None,
        formats=FORMATS, progress: bool = True, force: bool = False) -> dict:
    """Quantize the committed translator in every setting, measure, and write the log to ``out_path``; return it.

    Raises
    ------
    click.UsageError
        For a group size that does not divide every matrix's inputs, a format not in :data:`FORMATS`, a
        non-positive sentence count or outlier factor, before any work.
    shared.runs.RunExistsError
        When ``out_path`` exists and ``force`` is not set.
    """
    from shared.runs import load_translator

    out_path = Path(out_path)
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise click.UsageError(f"unknown format(s) {unknown}: choose from {', '.join(FORMATS)}")
    if sentences is not None and sentences < 1 or not outlier_factor > 0:
        raise click.UsageError("--sentences must be at least 1 and --outlier-factor positive")
    refuse_overwrite([out_path], resuming=False, force=force)
    source = load_translator()
    arrays = weights_to_arrays(source.model.weights)
    matrices = weight_matrices(arrays)
    bad = sorted({x.shape[1] for x in matrices.values() if group_size < 1 or x.shape[1] % group_size})
    if bad:
        raise click.UsageError(f"--group-size {group_size} must divide every matrix's inputs ({bad} do not divide)")
    pairs = source.test_split[:sentences]
    provenance = start_provenance("cpu")
    started = time.perf_counter()

    def model_with(quantized: dict[str, np.ndarray]) -> Translator:
        new = {**arrays, **{k: channel_layout(k, v) for k, v in quantized.items()}}
        return Translator(source.model.config, weights_from_arrays(source.model.config, new))

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    settings = [(f, g) for f in formats for g in GRANULARITIES]
    history = []
    columns = [TextColumn(out_path.stem), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("{task.fields[setting]}")]  # fmt: skip
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("quantize", total=len(settings) + 1, setting="float32")
        baseline = evaluate(source.model, pairs)
        bar.advance(task)
        for fmt, granularity in settings:
            bar.update(task, setting=f"{fmt} per {granularity}")
            quantized = {k: quantize(x, fmt, granularity, group_size) for k, x in matrices.items()}
            everything = np.concatenate([q.ravel() for q in quantized.values()])
            originals = np.concatenate([x.ravel() for x in matrices.values()])
            relative_rms, max_abs = errors(everything, originals)
            history.append({
                "format": fmt, "granularity": granularity, "bits": {**INT_BITS, **FLOAT_BITS}[fmt],
                "relative_rms_error": relative_rms, "max_abs_error": max_abs,
                **evaluate(model_with(quantized), pairs),
                "matrices": {k: list(errors(q, matrices[k])) for k, q in quantized.items()},
            })  # fmt: skip
            bar.advance(task)

    n_quantized = sum(x.size for x in matrices.values())
    log = {
        "kind": "quantization",
        "command": command_line(out_path.stem, group_size, outlier_factor, sentences, formats),
        "config": {"source_run": "zh_en", "source_weights_sha256": source.log["weights"]["sha256"],
                   "formats": list(formats), "granularities": list(GRANULARITIES), "group_size": group_size,
                   "outlier_factor": outlier_factor, "n_test": len(pairs)},  # fmt: skip
        "provenance": {**provenance, "wall_seconds": round(time.perf_counter() - started, 2)},
        "history": history,
        "baseline": baseline,
        "parameters": {"quantized": n_quantized, "total": sum(np.size(a) for a in arrays.values())},
        "matrices": {k: {"shape": list(x.shape), **outlier_statistics(x)} for k, x in matrices.items()},
        "number_line": {"matrix": EXAMPLE_MATRIX, **number_line_row(matrices[EXAMPLE_MATRIX])},
        "outlier": outlier_demo(matrices[OUTLIER_MATRIX], outlier_factor, group_size),
        "grids": grid_comparison(matrices, group_size),
    }
    log = _rounded(log)
    write_run_log(out_path, log)
    return log


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@click.option("--name", default=DEFAULT_NAME, help="the log: OUT_DIR/NAME.json")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=QUANT_DIR)
@click.option("--group-size", type=int, default=8, help="weights per scale in the group-wise settings")
@click.option("--outlier-factor", type=float, default=20.0, help="the constructed outlier, × its row's largest |w|")
@click.option("--sentences", type=int, default=None, help="evaluate on the first N test sentences [default: all]")
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="only these formats (repeat the option) [default: all]")
@click.option("--force", is_flag=True, help="overwrite an existing log (the committed one included)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def main(name, out_dir, group_size, outlier_factor, sentences, formats, force, quiet):
    """Quantize the tiny translator's weights in every format and granularity; write OUT_DIR/NAME.json."""
    out = Path(out_dir) / f"{name}.json"
    log = run(out, group_size=group_size, outlier_factor=outlier_factor, sentences=sentences,
              formats=formats or FORMATS, progress=not quiet, force=force)  # fmt: skip
    worst = max(log["history"], key=lambda r: r["relative_rms_error"])
    click.echo(f"Wrote {out}: {len(log['history'])} settings on {log['config']['n_test']} test sentences in "
               f"{log['provenance']['wall_seconds']} s; worst {worst['format']} per {worst['granularity']}: relative "
               f"RMS error {worst['relative_rms_error']}, exact match {worst['test_exact_match']}.")  # fmt: skip


if __name__ == "__main__":
    main()
