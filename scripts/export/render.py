"""Rendering scenes with manim: only the sections asked for, in parallel worker processes, cached per section.

A render first *probes* the scene (every animation skipped, one tiny frame): its sections, their durations and how
long each section's code takes to run. The sections asked for are then split into at most ``--jobs`` runs of
consecutive sections, balanced on the estimated time of each worker (:func:`plan_workers`), and each run is rendered
by its own ``python -m scripts.export.manim_worker`` process. A worker runs the scene's code from the start but
draws only its own sections (manim's section skipping, see :mod:`scripts.export.manim_worker`), so the frames are
the frames a serial render draws; the tests compare their hashes.

Each drawn section is kept in ``<media>/cache/<topic>/<kind>-<theme>-<aspect>-<W>x<H>-<fps>fps/sections/``: a
folder of PNG frames (kind ``frames``) or a video (``sections``: near-lossless H.264 for the short video;
``movie``: manim's default encode, joined by :func:`render_movie` without re-encoding), beside a JSON file with the
section's record (numbers drawn, small print, settled times, narration and subtitles) and frame count. A render with a
voice (:mod:`scripts.export.narration`) has its own folders, named after the engine's settings, and its sections are
drawn again when a sentence's audio has left the voice cache. The cache is valid while the arguments,
manim's version and the contents of every project file the render imported, the fonts, the run logs
(``media/runs/**/*.json``) and ``manim.cfg`` are unchanged (``stamp.json`` holds their hashes); a later command
renders only the sections still missing. Workers write into a private folder; finished sections are moved into the
cache with their JSON last, so an interrupted render never looks finished.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from scripts.export import ROOT, ExportError, media_root, scratch_dir, slug
from scripts.export.narration import Voice, check_audio, voice_environment, write_srt
from scripts.export.scenes import SceneRef
from scripts.export.tools import run_ffmpeg, tail

KINDS = ("probe", "frames", "sections", "movie")
THEMES = ("dark", "light")
PROBE_WIDTH = 240  # px; a probe draws one frame, in the aspect it probes
LOG_TAIL_LINES = 25
WORKER_START_S = 3.0  # starting Python and importing manim, before the scene's code runs (about 2.5 s measured)
# CPU seconds to draw and encode one megapixel of one frame: rope at 1920×1080 took 26 ms a frame (9 ms drawing in
# manim's thread, 17 ms converting to yuv420p and encoding H.264 in its encoder threads).
DRAW_S_PER_MEGAPIXEL = 0.0125


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class RenderSpec:
    """What to render: scene, theme, aspect, pixel size, frame rate, kind and voice (None: the scene as written,
    without narration audio or subtitles)."""

    scene: SceneRef
    theme: str = "dark"
    aspect: str = "16:9"
    width: int = 854
    height: int = 480
    fps: float = 15.0
    kind: str = "frames"
    voice: Voice | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.theme not in THEMES:
            raise ExportError(f"Unknown theme {self.theme!r}; use one of: {', '.join(THEMES)}.")
        if not self.fps > 0:
            raise ExportError(f"The frame rate must be positive, not {self.fps:g}.")

    @property
    def folder_name(self) -> str:
        aspect = self.aspect.replace(":", "x")
        voice = f"-{self.voice.key}" if self.voice else ""
        return f"{self.kind}-{self.theme}-{aspect}-{self.width}x{self.height}-{self.fps:g}fps{voice}"

    def job(self, sections: list[int], out: Path) -> dict:
        return {"scene": str(self.scene.path), "class": self.scene.class_name, "width": self.width,
                "height": self.height, "fps": self.fps, "kind": self.kind, "sections": sections, "out": str(out)}


@dataclass
class SectionRender:
    """One rendered section: its record, frame count and media (a folder of PNGs or a video)."""

    index: int
    record: dict
    frames: int
    path: Path | None  # None when the section plays nothing (no video)
    fps: float
    run_logs: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.record["name"]

    def frame_path(self, i: int) -> Path:
        """PNG of frame ``i`` (0-based in the section; kind ``frames``)."""
        return self.path / f"{i:06d}.png"

    def settled_frames(self) -> list[int]:
        """0-based frames of the section where a ``play``/``wait`` ended (the record keeps scene times)."""
        start = self.record["start"]
        frames = {min(self.frames, round((t - start) * self.fps)) - 1 for t in self.record.get("settled", [])}
        return sorted(f for f in frames if f >= 0)


@dataclass
class RenderResult:
    """The rendered sections of one spec (only those asked for) and the scene-wide record fields."""

    spec: RenderSpec
    folder: Path
    record: dict  # scene, fps, pixel size, aspect, theme, background
    sections: dict[int, SectionRender]

    def section(self, index: int) -> SectionRender:
        return self.sections[index]


# --- cache stamps ------------------------------------------------------------------------------------------------


def _args_key(spec: RenderSpec) -> str:
    import manim

    from scripts.export.manim_worker import ENCODINGS

    return hashlib.sha256(json.dumps([spec.folder_name, spec.scene.class_name, str(spec.scene.path),
                                      ENCODINGS[spec.kind], manim.__version__]).encode()).hexdigest()


def _always_hashed(spec: RenderSpec) -> list[Path]:
    """Files every render depends on besides the modules it imports: the scene, fonts, run logs, manim.cfg."""
    files = [spec.scene.path, ROOT / "manim.cfg"]
    for folder, pattern in ((ROOT / "shared" / "fonts", "*"), (ROOT / "media" / "runs", "*.json")):
        if folder.is_dir():
            files += sorted(p for p in folder.rglob(pattern) if p.is_file())
    return files


def _file_hashes(paths) -> dict[str, str | None]:
    hashes = {}
    for path in paths:
        path = Path(path)
        hashes[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return hashes


def _stamp_valid(spec: RenderSpec, folder: Path) -> bool:
    """The cached render is valid when its arguments match and no file it read has changed since."""
    try:
        stamp = json.loads((folder / "stamp.json").read_text())
    except (OSError, ValueError):
        return False
    if stamp.get("args") != _args_key(spec):
        return False
    recorded = stamp.get("files", {})
    paths = sorted(set(recorded) | {str(p) for p in _always_hashed(spec)})
    return _file_hashes(paths) == {p: recorded.get(p) for p in paths}


def cache_folder(spec: RenderSpec) -> Path:
    return media_root() / "cache" / slug(spec.scene.topic) / spec.folder_name


# --- planning ------------------------------------------------------------------------------------------------------


def section_frames(section: dict, fps: float) -> int:
    """Frames a section of the probe's record will have at ``fps`` (manim draws whole frames)."""
    return max(0, round((section["end"] - section["start"]) * fps))


def plan_workers(wanted: list[int], construct_s: list[float], draw_s: list[float], jobs: int) -> list[list[int]]:
    """Split ``wanted`` (section indices) into at most ``jobs`` runs of consecutive sections, one per worker,
    minimising the slowest worker's estimated time.

    A worker whose last section is ``L`` runs the code of sections ``0..L`` (``construct_s``: seconds each, drawing
    nothing, from the probe) and draws its own sections (``draw_s``: seconds each), after :data:`WORKER_START_S`.
    Exact minimax over contiguous splits by dynamic programming (``wanted`` has a few dozen sections at most).
    """
    wanted = sorted(wanted)
    n = len(wanted)
    if n == 0:
        return []
    jobs = max(1, min(jobs, n))

    def cost(a: int, b: int) -> float:  # worker drawing wanted[a:b]
        return worker_seconds(wanted[a:b], construct_s, draw_s)

    # best[k][j]: (slowest worker, split points) for wanted[:j] over k workers
    best = [[(0.0, [])] + [(float("inf"), [])] * n]
    for k in range(1, jobs + 1):
        row = [(float("inf"), [])] * (n + 1)
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                previous, cuts = best[k - 1][i]
                slowest = max(previous, cost(i, j))
                if slowest < row[j][0] - 1e-12:
                    row[j] = (slowest, [*cuts, i])
        best.append(row)
    _, cuts = min((best[k][n] for k in range(1, jobs + 1)), key=lambda entry: entry[0])
    bounds = [*cuts, n]
    return [wanted[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def worker_seconds(sections: list[int], construct_s: list[float], draw_s: list[float]) -> float:
    """Estimated seconds of a worker drawing ``sections`` (sorted): start, the code of every section up to its last
    one, and drawing its own."""
    return WORKER_START_S + sum(construct_s[: sections[-1] + 1]) + sum(draw_s[i] for i in sections)


# --- running workers -----------------------------------------------------------------------------------------------


class _Worker:
    """One worker process; a thread reads its output (progress lines, the rest kept for errors)."""

    def __init__(self, spec: RenderSpec, sections: list[int], out: Path):
        from scripts.export.manim_worker import PROGRESS_PREFIX

        out.mkdir(parents=True)
        job_file = out / "job.json"
        job_file.write_text(json.dumps(spec.job(sections, out), ensure_ascii=False))
        env = dict(os.environ)
        # One BLAS thread everywhere: the same arithmetic whatever --jobs is (and no oversubscribed cores).
        env.update(EXPLAINER_THEME=spec.theme, EXPLAINER_RECORD=str(out / "record.json"), EXPLAINER_PROGRESS="1",
                   PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        for name, value in voice_environment(spec.voice).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        self.sections, self.out, self.frames, self.error = sections, out, 0, None
        self.log = collections.deque(maxlen=LOG_TAIL_LINES)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scripts.export.manim_worker", str(job_file)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        )
        self.reader = threading.Thread(target=self._read, args=(PROGRESS_PREFIX,), daemon=True)
        self.reader.start()

    def _read(self, prefix: str) -> None:
        from scripts.export.manim_worker import ERROR_PREFIX

        for line in self.proc.stdout:
            if line.startswith(prefix):
                self.frames = int(line[len(prefix):])
            elif line.startswith(ERROR_PREFIX):
                self.error = line[len(ERROR_PREFIX):].strip()
            else:
                self.log.append(line.rstrip())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _run_workers(spec: RenderSpec, groups: list[list[int]], work: Path, expected_frames: int | None, console,
                 description: str) -> list[_Worker]:
    """Run one worker per group at once; raise :class:`ExportError` with the log of the first that fails."""
    import time

    workers = []
    try:
        for number, group in enumerate(groups):
            workers.append(_Worker(spec, group, work / f"worker-{number}"))
        with _progress(console, description, expected_frames) as advance:
            while True:
                advance(sum(w.frames for w in workers))
                failed = [w for w in workers if w.proc.poll() not in (None, 0)]
                if failed or all(w.proc.poll() == 0 for w in workers):
                    break
                time.sleep(0.1)
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    for worker in workers:
        if worker.proc.poll() is None and failed:
            worker.stop()
        worker.reader.join(timeout=10)
    if failed:
        worker = failed[0]
        if worker.error:  # a problem the scene's writer can fix (its narration): the message alone
            raise ExportError(f"{spec.scene.class_name} ({spec.scene.path.name}): {worker.error}")
        sections = ", ".join(str(i + 1) for i in worker.sections) or "none (probe)"
        raise ExportError(
            f"manim failed rendering {spec.scene.class_name} from {spec.scene.path} ({spec.kind}, "
            f"{spec.width}×{spec.height}, theme {spec.theme}, sections {sections}; exit {worker.proc.returncode}). "
            f"Last lines:\n{tail(chr(10).join(worker.log))}"
        )
    return workers


class _progress:
    """A rich progress bar of frames rendered (a spinner when the total is unknown)."""

    def __init__(self, console, description: str, total: int | None):
        self.console, self.description, self.total = console, description, total

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}")]
        if self.total is not None:
            columns += [BarColumn(), MofNCompleteColumn()]
        self.bar = Progress(*columns, TimeElapsedColumn(), console=self.console, transient=self.total is None)
        self.bar.__enter__()
        self.task = self.bar.add_task(self.description, total=self.total)
        return lambda frames: self.bar.update(self.task, completed=frames)

    def __exit__(self, *exc):
        if self.total is not None and exc[0] is None:
            self.bar.update(self.task, completed=self.total)
        self.bar.__exit__(*exc)
        return False


# --- probing and rendering -----------------------------------------------------------------------------------------


def probe(scene: SceneRef, aspect: str = "16:9", console=None, voice: Voice | None = None) -> dict:
    """The scene's record without drawing: sections (name, start, end in seconds; numbers, small print) plus, per
    section, ``construct_s`` (seconds its code takes, drawing nothing) and ``first_play``.

    Sections do not depend on the theme, so every theme shares the dark probe; the aspect may change the layout,
    so each aspect has its own; so does each voice (a voiced beat lasts as long as its speech).
    """
    width, height = size_for_width(aspect, PROBE_WIDTH)
    spec = RenderSpec(scene, "dark", aspect, width, height, 15.0, "probe", voice)
    folder = cache_folder(spec)
    if not _stamp_valid(spec, folder):
        before = _file_hashes(_always_hashed(spec))
        work = _fresh_work_folder(folder)
        try:
            (worker,) = _run_workers(spec, [[]], work, None, console, f"{scene.topic}: reading sections")
            record, info = _worker_output(spec, worker)
            for section, extra in zip(record["sections"], info["sections"]):
                section.update(construct_s=extra["wall_s"], first_play=extra["first_play"], end_play=extra["end_play"])
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            (folder / "record.json").write_text(json.dumps(record, ensure_ascii=False, indent=1))
            _write_stamp(spec, folder, before, info["source_files"])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    record = json.loads((folder / "record.json").read_text())
    if not record["sections"]:
        raise ExportError(f"Scene {scene.class_name} has no sections; split it with self.next_section(\"名字\").")
    return record


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _fresh_work_folder(folder: Path) -> Path:
    """An empty ``<folder>.work-<pid>`` beside the cache folder; work folders of processes that died are removed."""
    for stale in folder.parent.glob(f"{folder.name}.work-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    work = folder.with_name(f"{folder.name}.work-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return work


def _worker_output(spec: RenderSpec, worker: _Worker) -> tuple[dict, dict]:
    from scripts.export.manim_worker import WORKER_FILE

    try:
        record = json.loads((worker.out / "record.json").read_text())
        info = json.loads((worker.out / WORKER_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ExportError(
            f"{spec.scene.path.name}: manim finished but left no record ({error}). Does "
            f"{spec.scene.class_name} derive from shared.scene.ExplainerScene?"
        ) from error
    return record, info


def _write_stamp(spec: RenderSpec, folder: Path, before: dict, source_files: list[str]) -> None:
    # Hash what the render read; a file changed during the render then simply fails the next check.
    files = {**before, **_file_hashes(source_files)}
    (folder / "stamp.json").write_text(json.dumps({"args": _args_key(spec), "files": files}, indent=1))


SCENE_FIELDS = ("scene", "fps", "pixel_width", "pixel_height", "aspect", "theme", "background")


def render(spec: RenderSpec, sections: list[int], plan: dict, *, jobs: int | None = None, console=None,
           force: bool = False) -> RenderResult:
    """Render the ``sections`` (0-based) of ``spec`` that the cache lacks, in up to ``jobs`` workers at once.

    ``plan`` is the scene's :func:`probe` record (section durations and construct times, to balance the workers).
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ExportError(f"--jobs must be at least 1, not {jobs}.")
    folder = cache_folder(spec)
    valid = not force and _stamp_valid(spec, folder)
    missing = [i for i in sorted(set(sections)) if not (valid and (folder / "sections" / f"{i:03d}.json").is_file())]
    if missing:
        _render_missing(spec, missing, plan, jobs, folder, keep=valid, console=console)
    scene_record = json.loads((folder / "record.json").read_text())
    found = _load_sections(spec, folder, sections)
    unheard = [i for i, section in found.items() if check_audio(section.record)]
    if unheard:  # its timing was made with audio that is gone: draw those sections again with fresh audio
        _render_missing(spec, unheard, plan, jobs, folder, keep=True, console=console)
        found = _load_sections(spec, folder, sections)
        for index in unheard:
            lost = check_audio(found[index].record)
            if lost:
                raise ExportError(f"Section {index + 1} of {spec.scene.class_name}: the audio of {lost[0]!r} changed "
                                  f"or vanished right after it was synthesised. Is something else clearing "
                                  f"{media_root() / 'cache' / 'voice'}?")
    return RenderResult(spec, folder, scene_record, found)


def _load_sections(spec: RenderSpec, folder: Path, sections: list[int]) -> dict[int, SectionRender]:
    found = {}
    for index in sections:
        data = json.loads((folder / "sections" / f"{index:03d}.json").read_text())
        path = folder / "sections" / data["media"] if data["media"] else None
        found[index] = SectionRender(index, data["record"], data["frames"], path, spec.fps, data["run_logs"])
    return found


def _render_missing(spec: RenderSpec, missing: list[int], plan: dict, jobs: int, folder: Path, *, keep: bool,
                    console) -> None:
    probed = plan["sections"]
    draw_s = [section_frames(s, spec.fps) * spec.width * spec.height / 1e6 * DRAW_S_PER_MEGAPIXEL for s in probed]
    construct_s = [s.get("construct_s", 0.0) for s in probed]
    groups = plan_workers(missing, construct_s, draw_s, jobs)
    estimates = [worker_seconds(group, construct_s, draw_s) for group in groups]
    expected = sum(section_frames(probed[i], spec.fps) for i in missing)
    before = _file_hashes(_always_hashed(spec))
    work = _fresh_work_folder(folder)
    workers_note = f", {len(groups)} workers" if len(groups) > 1 else ""
    description = (f"{spec.scene.topic}: rendering {len(missing)} section(s) {spec.width}×{spec.height} "
                   f"{spec.theme} {spec.fps:g} fps{workers_note}")
    try:
        workers = _run_workers(spec, groups, work, expected, console, description)
        outputs = [_worker_output(spec, worker) for worker in workers]
        if not keep:
            (folder / "stamp.json").unlink(missing_ok=True)  # no stamp while the folder is rebuilt
            shutil.rmtree(folder / "sections", ignore_errors=True)
        (folder / "sections").mkdir(parents=True, exist_ok=True)
        source_files = set()
        for worker, (record, info) in zip(workers, outputs):
            source_files.update(info["source_files"])
            for index in worker.sections:
                drawn = info["drawn"][str(index)]
                media = None
                if drawn["media"]:
                    media = f"{index:03d}{Path(drawn['media']).suffix}"
                    target = folder / "sections" / media
                    shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
                    (worker.out / drawn["media"]).rename(target)
                data = {"record": record["sections"][index], "frames": drawn["frames"], "media": media,
                        "run_logs": info["sections"][index].get("run_logs", [])}
                (folder / "sections" / f"{index:03d}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1))
        record = outputs[0][0]
        (folder / "record.json").write_text(json.dumps({k: record.get(k) for k in SCENE_FIELDS}, ensure_ascii=False))
        # How the work was split and how long each worker took: to check the balance (scripts/bench_render.py).
        (folder / "workers.json").write_text(json.dumps(
            [{"sections": worker.sections, "wall_s": info["wall_s"], "estimated_s": round(estimate, 2)}
             for worker, (_, info), estimate in zip(workers, outputs, estimates)], indent=1))
        if not keep:
            _write_stamp(spec, folder, before, sorted(source_files))
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- sizes and the render command ----------------------------------------------------------------------------------


def pixel_size(aspect: str, quality: str) -> tuple[int, int]:
    """``shared.layout.PIXEL_SIZES`` with a clear error for an unknown aspect or quality."""
    from shared.layout import PIXEL_SIZES

    if aspect not in PIXEL_SIZES:
        raise ExportError(f"Unknown aspect {aspect!r}; use one of: {', '.join(PIXEL_SIZES)}.")
    if quality not in PIXEL_SIZES[aspect]:
        raise ExportError(f"Unknown quality {quality!r}; use one of: {', '.join(PIXEL_SIZES[aspect])}.")
    return PIXEL_SIZES[aspect][quality]


def size_for_width(aspect: str, width: int, *, even: bool = False) -> tuple[int, int]:
    """Pixel size of ``aspect`` at ``width``; ``even`` rounds the height to even, which H.264 in yuv420p needs."""
    from shared.layout import ASPECTS

    if aspect not in ASPECTS:
        raise ExportError(f"Unknown aspect {aspect!r}; use one of: {', '.join(ASPECTS)}.")
    ratio = ASPECTS[aspect].ratio
    height = int(round(width / ratio / 2)) * 2 if even else int(round(width / ratio))
    return width, height


DEFAULT_FPS = {"l": 15.0, "m": 30.0, "h": 60.0, "k": 60.0}  # manim's own frame rate per quality flag


def join_videos(videos: list[Path], out: Path) -> None:
    """Concatenate videos of identical encoding without re-encoding (ffmpeg's concat demuxer, ``-c copy``)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="explainer-join-") as scratch:
        listing = Path(scratch) / "videos.txt"
        quoted = (str(Path(v).resolve()).replace("'", "'\\''") for v in videos)
        listing.write_text("".join(f"file '{path}'\n" for path in quoted), encoding="utf-8")
        run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-map", "0:v", "-c", "copy",
                    "-movflags", "+faststart", "-f", "mp4", str(out)], f"Joining {len(videos)} section videos")


def render_movie(scene_spec: str, *, quality: str = "h", aspect: str = "16:9", theme: str = "dark",
                 fps: float | None = None, sections=(), out: Path | None = None, jobs: int | None = None,
                 force: bool = False, voice: Voice | None = None, console=None) -> Path:
    """``explainer render``: the chosen sections (default all) as one MP4, section videos joined without
    re-encoding, copied atomically to ``out``. With a ``voice``, the narration is mixed into an AAC track at the
    platforms' loudness (:mod:`scripts.export.audio`) and its subtitles are written beside the video
    (``<video>.srt``)."""
    from scripts.export import ensure_writable_dir
    from scripts.export.scenes import resolve_scene, select_sections
    from shared.files import atomic_path

    if voice:
        voice.check()
    scene = resolve_scene(scene_spec)
    width, height = pixel_size(aspect, quality)
    fps = fps or DEFAULT_FPS[quality]
    spec = RenderSpec(scene, theme, aspect, width, height, fps, "movie", voice)
    aspect_slug = aspect.replace(":", "x")
    out = Path(out) if out else (
        media_root() / "videos" / slug(scene.topic) / f"{scene.class_name}-{aspect_slug}-{theme}-{width}x{height}.mp4"
    )
    if out.suffix.lower() != ".mp4":
        raise ExportError(f"--out {out}: give a file name ending in .mp4.")
    if out.exists() and out.resolve() == scene.path.resolve():
        raise ExportError(f"--out {out} is the scene file itself.")
    ensure_writable_dir(out.parent)
    plan = probe(scene, aspect, console=console, voice=voice)
    chosen = select_sections(plan["sections"], sections, scene.class_name)
    result = render(spec, chosen, plan, jobs=jobs, console=console, force=force)
    drawn = [result.section(i) for i in chosen if result.section(i).frames > 0]
    if not drawn:
        raise ExportError(f"{scene.class_name} draws no frame in the chosen sections (does it play any animation?).")
    srt_path = out.with_suffix(".srt")
    with atomic_path(out) as tmp:
        if voice is None:
            join_videos([section.path for section in drawn], tmp)
            write_srt(srt_path, [])
        else:
            _narrated_movie(drawn, fps, tmp, srt_path)
    return out


def _narrated_movie(drawn: list[SectionRender], fps: float, out: Path, srt_path: Path) -> None:
    """Join the sections, mix their synthesised sentences where they are said and mux the two; write the .srt."""
    from scripts.export.audio import AUDIO_BITRATE, SAMPLE_RATE, encode_at_loudness, mix
    from scripts.export.narration import Placement, section_cues, spoken_beats, voice_clips

    placed, cues, frames = [], [], 0
    for section in drawn:
        where = Placement(frames / fps)
        placed += voice_clips(spoken_beats(section.record, where))
        cues += section_cues(section.record, where)
        frames += section.frames
    with scratch_dir("movie-") as scratch:
        joined, mixed = scratch / "joined.mp4", scratch / "mix.wav"
        join_videos([section.path for section in drawn], joined)
        mix(round(frames / fps * 1000), placed).export(mixed, format="wav")

        def mux(audio: Path, target: Path) -> None:
            run_ffmpeg(["-i", str(joined), "-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                        "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2",
                        "-t", f"{frames / fps:.6f}", "-movflags", "+faststart", "-f", "mp4", str(target)],
                       "Adding the narration track")

        encoded, _ = encode_at_loudness(mixed, scratch, mux)
        shutil.copyfile(encoded, out)
    write_srt(srt_path, cues)
