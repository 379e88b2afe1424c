"""Rendering scenes with manim in a subprocess, cached per theme, aspect, size, frame rate and output kind.

Each render runs ``python -m scripts.export.manim_worker`` (manim's own command line plus a section/number recorder,
see :mod:`scripts.export.manim_worker`) with ``EXPLAINER_THEME`` set and ``-r W,H`` from
``shared.layout.PIXEL_SIZES`` or the export's own size. Output goes to
``<media>/cache/<topic>/<kind>-<theme>-<aspect>-<W>x<H>-<fps>fps/`` and is reused while the arguments, manim's version
and the contents of every project file the render imported (recorded by the worker), the fonts, the run logs and
``manim.cfg`` are unchanged (``stamp.json`` holds their hashes). A render is written to a
``.partial`` folder and renamed into place, so an interrupted render never looks finished.

Kinds: ``probe`` (no frames: manim's ``-s`` fast-forwards every animation, which is enough to learn the sections and
their durations), ``frames`` (``--format png-sequence``: every frame as a lossless PNG), ``sections``
(``--save_sections``: one H.264 video per section), ``movie`` (the plain MP4, what ``manim`` itself writes).
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from scripts.export import ROOT, ExportError, media_root, slug
from scripts.export.scenes import SceneRef
from scripts.export.tools import tail

KINDS = ("probe", "frames", "sections", "movie")
THEMES = ("dark", "light")
PROBE_SIZE = (320, 180)  # probes draw one frame; any 16:9 size gives the same sections
# Intermediate section videos are encoded again for the short video, so keep them near-lossless (manim's default
# crf 23 would be compressed twice).
SECTION_VIDEO_CRF = 12
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class RenderSpec:
    """What to render: scene, theme, aspect, pixel size, frame rate and kind."""

    scene: SceneRef
    theme: str = "dark"
    aspect: str = "16:9"
    width: int = 854
    height: int = 480
    fps: float = 15.0
    kind: str = "frames"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        if self.theme not in THEMES:
            raise ExportError(f"Unknown theme {self.theme!r}; use one of: {', '.join(THEMES)}.")

    @property
    def folder_name(self) -> str:
        aspect = self.aspect.replace(":", "x")
        return f"{self.kind}-{self.theme}-{aspect}-{self.width}x{self.height}-{self.fps:g}fps"

    def manim_args(self, media_dir: Path) -> list[str]:
        args = [
            str(self.scene.path),
            self.scene.class_name,
            "-r", f"{self.width},{self.height}",
            "--fps", f"{self.fps:g}",
            "--media_dir", str(media_dir),
            "--progress_bar", "none",
            "-v", "WARNING",
        ]
        if self.kind == "probe":
            args += ["-s"]
        elif self.kind == "frames":
            args += ["--format", "png-sequence", "-0", "6"]
        elif self.kind == "sections":
            args += ["--save_sections", "--encoder-option", f"crf={SECTION_VIDEO_CRF}"]
        return args


@dataclass
class RenderResult:
    """A finished render: its folder, the scene record, and where its files are."""

    spec: RenderSpec
    folder: Path
    record: dict
    frames_dir: Path | None = None
    section_videos: list[Path] = field(default_factory=list)
    movie: Path | None = None

    @property
    def sections(self) -> list[dict]:
        return self.record["sections"]

    def frame_path(self, index: int) -> Path:
        return self.frames_dir / f"{index:06d}.png"


def _args_key(spec: RenderSpec) -> str:
    import manim

    return hashlib.sha256(json.dumps([spec.folder_name, spec.scene.class_name, spec.manim_args(Path("/")),
                                      manim.__version__]).encode()).hexdigest()


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


def _cache_valid(spec: RenderSpec, stamp: dict) -> bool:
    """The cached render is valid when its arguments match and no file it read has changed since."""
    if stamp.get("args") != _args_key(spec):
        return False
    recorded = stamp.get("files", {})
    paths = set(recorded) | {str(p) for p in _always_hashed(spec)}
    return _file_hashes(sorted(paths)) == {p: recorded.get(p) for p in sorted(paths)}


def cache_folder(spec: RenderSpec) -> Path:
    return media_root() / "cache" / slug(spec.scene.topic) / spec.folder_name


def _locate(spec: RenderSpec, folder: Path, record: dict) -> RenderResult:
    result = RenderResult(spec, folder, record)
    manim_dir = folder / "manim"
    if spec.kind == "frames":
        dirs = [d for d in (manim_dir / "images").glob(f"*/{spec.scene.class_name}") if d.is_dir()]
        if not dirs:
            raise ExportError(f"manim wrote no frames for {spec.scene.class_name} in {manim_dir}.")
        result.frames_dir = dirs[0]
    if spec.kind in ("sections", "movie"):
        movies = list((manim_dir / "videos").glob(f"*/*/{spec.scene.class_name}.mp4"))
        result.movie = movies[0] if movies else None
    if spec.kind == "sections":
        indexes = list((manim_dir / "videos").glob(f"*/*/sections/{spec.scene.class_name}.json"))
        if not indexes:
            raise ExportError(f"manim wrote no section index for {spec.scene.class_name} in {manim_dir}.")
        entries = json.loads(indexes[0].read_text())
        by_name = collections.defaultdict(list)
        for entry in entries:
            by_name[entry["name"]].append(indexes[0].parent / entry["video"])
        # manim may add an "autocreated" section for anything played before the first next_section
        for section in record["sections"]:
            videos = by_name.get(section["name"])
            if not videos:
                raise ExportError(f"manim wrote no video for section {section['name']!r}.")
            result.section_videos.append(videos.pop(0))
    return result


def render(spec: RenderSpec, *, expected_frames: int | None = None, console=None, force: bool = False) -> RenderResult:
    """Render ``spec`` (or reuse the cached render); show a progress bar when ``expected_frames`` is known."""
    folder = cache_folder(spec)
    stamp = folder / "stamp.json"
    if not force and stamp.is_file():
        try:
            if _cache_valid(spec, json.loads(stamp.read_text())):
                return _locate(spec, folder, json.loads((folder / "record.json").read_text()))
        except (OSError, ValueError, ExportError):
            pass  # damaged cache: render again
    before = _file_hashes(_always_hashed(spec))
    partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        _run_manim(spec, partial, expected_frames, console)
        record_path = partial / "record.json"
        if not record_path.is_file():
            raise ExportError(
                f"{spec.scene.path.name}: manim finished but recorded no sections. Does "
                f"{spec.scene.class_name}.construct() call self.next_section(...)?"
            )
        record = json.loads(record_path.read_text())
        # Hash what the render read; a file changed during the render then simply fails the next check.
        files = {**before, **_file_hashes(record.get("source_files", []))}
        (partial / "stamp.json").write_text(json.dumps({"args": _args_key(spec), "files": files}, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return _locate(spec, folder, json.loads((folder / "record.json").read_text()))


def _run_manim(spec: RenderSpec, folder: Path, expected_frames: int | None, console) -> None:
    from scripts.export.manim_worker import PROGRESS_PREFIX

    env = dict(os.environ)
    env.update(
        EXPLAINER_THEME=spec.theme,
        EXPLAINER_RECORD=str(folder / "record.json"),
        EXPLAINER_PROGRESS="1",
        PYTHONUNBUFFERED="1",
    )
    cmd = [sys.executable, "-m", "scripts.export.manim_worker", *spec.manim_args(folder / "manim")]
    log = collections.deque(maxlen=LOG_TAIL_LINES)
    description = (
        f"{spec.scene.topic}: reading sections" if spec.kind == "probe"
        else f"{spec.scene.topic}: rendering {spec.kind} {spec.width}×{spec.height} {spec.theme} {spec.fps:g} fps"
    )
    with _progress(console, description, expected_frames) as advance:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        for line in proc.stdout:
            if line.startswith(PROGRESS_PREFIX):
                advance(int(line[len(PROGRESS_PREFIX):]))
            else:
                log.append(line.rstrip())
        code = proc.wait()
    if code != 0:
        raise ExportError(
            f"manim failed rendering {spec.scene.class_name} from {spec.scene.path} ({spec.kind}, "
            f"{spec.width}×{spec.height}, theme {spec.theme}; exit {code}). Last lines:\n{tail(chr(10).join(log))}"
        )


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


def probe(scene: SceneRef, theme: str = "dark", console=None) -> dict:
    """The scene's record without rendering frames: sections (name, start, end in seconds) and numbers.

    Sections do not depend on the theme, so every theme shares the dark probe.
    """
    width, height = PROBE_SIZE
    spec = RenderSpec(scene, "dark", "16:9", width, height, 15.0, "probe")
    return render(spec, console=console).record


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


def render_movie(scene_spec: str, *, quality: str = "h", aspect: str = "16:9", theme: str = "dark",
                 fps: float | None = None, out: Path | None = None, console=None) -> Path:
    """``explainer render``: the scene as one MP4 (manim's own encode), copied atomically to ``out``."""
    from scripts.export import ensure_writable_dir
    from scripts.export.scenes import resolve_scene
    from shared.files import atomic_path

    scene = resolve_scene(scene_spec)
    width, height = pixel_size(aspect, quality)
    fps = fps or DEFAULT_FPS[quality]
    aspect_slug = aspect.replace(":", "x")
    out = Path(out) if out else (
        media_root() / "videos" / slug(scene.topic) / f"{scene.class_name}-{aspect_slug}-{theme}-{width}x{height}.mp4"
    )
    if out.resolve() == scene.path.resolve():
        raise ExportError(f"--out {out} is the scene file itself.")
    ensure_writable_dir(out.parent)
    record = probe(scene, theme, console=console)
    duration = record["sections"][-1]["end"] if record["sections"] else None
    spec = RenderSpec(scene, theme, aspect, width, height, fps, "movie")
    result = render(spec, expected_frames=None if duration is None else int(duration * fps) + 1, console=console)
    if result.movie is None or not result.movie.is_file():
        raise ExportError(f"manim wrote no movie for {scene.class_name} (does it play any animation?).")
    with atomic_path(out) as tmp:
        shutil.copyfile(result.movie, tmp)
    return out
