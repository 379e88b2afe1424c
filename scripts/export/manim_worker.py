"""Render chosen sections of one scene with manim, in this process.

``python -m scripts.export.manim_worker JOB.json`` (the CLI starts one such process per share of the work, see
:mod:`scripts.export.render`). ``JOB.json`` holds ``scene`` (file), ``class``, ``width``, ``height``, ``fps``,
``kind`` (see :data:`ENCODINGS`), ``sections`` (0-based indices to render; ``[]`` renders none: a probe) and ``out``
(a folder). The theme comes from ``$EXPLAINER_THEME`` and the voice, if any, from ``$EXPLAINER_VOICE``
(:mod:`shared.voice`; its audio is cached in the project's media folder, so manim's ``media_dir`` stays there while
everything manim writes goes to ``out``). The scene itself writes its record (sections, numbers drawn, small print,
settled times, narration) to ``$EXPLAINER_RECORD`` when it ends (:meth:`shared.scene.ExplainerScene.tear_down`).
A narration the voice cannot read (:class:`shared.voice.VoiceError`) is reported as one ``@@error`` line.

Only the chosen sections are drawn, through manim's own public machinery:

- ``Scene.next_section(name, skip_animations=True)`` for every other section: manim still runs the section's code,
  so every mobject reaches the state it has at the section's end, but draws and encodes no frame
  (``CairoRenderer.update_skipping_status``). The worker renders the scene through a subclass whose
  ``next_section`` asks for that skip; the scene's own code is untouched.
- after the last chosen section, ``config.upto_animation_number`` (manim's ``-n``) ends the scene at its next play,
  so later sections cost nothing;
- ``config.save_sections`` makes manim write each drawn section as its own video with an index JSON.

Frames for GIFs and covers (kind ``frames``) are encoded losslessly (QuickTime RLE, RGB) and decoded to one PNG per
frame of the timeline (manim's ``png-sequence`` writes a single file for a held frame, so it cannot give the
timeline). The worker writes ``out/worker.json``: per section the play counts at its start and end, the wall time
its code took (probes use it to balance parallel renders) and the run logs (``media/runs/``) the scene had opened by
its end, noted with a Python audit hook (``sys.addaudithook``, PEP 578) rather than by replacing ``open``; per drawn
section its media and frame count; the project's Python files the scene imported.

With ``$EXPLAINER_PROGRESS`` set, ``@@progress <frames>`` lines on stdout count the frames drawn so far, after every
``play``/``wait`` (the scene's public ``frame_hooks``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

PROGRESS_PREFIX = "@@progress "
ERROR_PREFIX = "@@error "  # a problem in the scene's narration (shared.voice.VoiceError), reported without a traceback
INFLIGHT_ENCODERS = 4
WORKER_FILE = "worker.json"

# kind → manim output settings. libx264's "veryfast" preset at crf 20 gives the quality of manim's default (crf 23,
# preset medium) in about 70% of the encoding CPU: re-encoding 12 s of rope at 1080p60 on one thread, 6.9 against
# 9.7 CPU-s, 44.5 against 45.3 dB PSNR, 425 against 416 kB. Encoding is most of a 1080p frame's cost, so the whole
# render gets faster. "sections" is near-lossless because the short video encodes it a second time; "frames" is
# lossless RGB.
ENCODINGS = {
    "probe": {"format": "png"},  # a still: manim skips every animation (like -s)
    "frames": {"format": "mov", "video_codec": "qtrle", "pixel_format": "rgb24", "video_encoder_options": {}},
    "sections": {"format": "mp4", "video_codec": "libx264", "pixel_format": "yuv420p",
                 "video_encoder_options": {"crf": "12", "preset": "veryfast"}},
    "movie": {"format": "mp4", "video_codec": "libx264", "pixel_format": "yuv420p",
              "video_encoder_options": {"crf": "20", "preset": "veryfast"}},
}


def _project_files(root: Path) -> list[str]:
    """The repository's Python files this render imported (the render cache is keyed on their contents)."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            path = os.path.realpath(path)
            if path.startswith(str(root) + os.sep) and f"{os.sep}.venv{os.sep}" not in path:
                files.add(path)
    return sorted(files)


def watch_run_logs(runs_dir: Path, opened: set) -> None:
    """Note every file under ``runs_dir`` this process opens, through the ``open`` audit event (PEP 578)."""
    prefix = os.path.realpath(runs_dir) + os.sep

    def hook(event, args):
        if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.path.realpath(os.fsdecode(args[0]))
            if path.startswith(prefix):
                opened.add(path)

    sys.addaudithook(hook)


def partial_scene(scene_class: type, wanted: list[int], fps: float, progress: bool, run_logs: set):
    """A subclass of ``scene_class`` that draws only the sections ``wanted`` (0-based) and notes, per section, the
    play count at its start, the wall time its code took and the run logs opened up to its end."""
    from manim import config

    wanted_set, last_wanted = set(wanted), max(wanted, default=-1)

    class Partial(scene_class):
        frame_hooks = [*scene_class.frame_hooks]

        def setup(self):
            super().setup()
            self.worker_sections: list[dict] = []
            self._drawn_frames = 0  # frames of finished drawn sections

        def next_section(self, name="unnamed", *args, **kwargs):
            self._close_worker_section()
            index = len(self.worker_sections)
            if index > last_wanted and self.renderer.num_plays > 0 and wanted:
                config.upto_animation_number = self.renderer.num_plays - 1  # stop at the next play
            self.worker_sections.append({"first_play": self.renderer.num_plays, "started": time.perf_counter(),
                                         "start_time": self.renderer.time, "drawn": index in wanted_set})
            skip = index not in wanted_set or kwargs.pop("skip_animations", False)
            if len(args) >= 2:  # manim's signature: (name, section_type, skip_animations)
                args = (args[0], skip or args[1], *args[2:])
            else:
                kwargs["skip_animations"] = skip
            super().next_section(name, *args, **kwargs)

        def _close_worker_section(self):
            if self.worker_sections and "wall_s" not in self.worker_sections[-1]:
                section = self.worker_sections[-1]
                section["wall_s"] = round(time.perf_counter() - section.pop("started"), 4)
                section["run_logs"] = sorted(run_logs)
                section["end_play"] = self.renderer.num_plays
                if section["drawn"]:
                    self._drawn_frames += round((self.renderer.time - section["start_time"]) * fps)

        def tear_down(self):
            self._close_worker_section()
            super().tear_down()

    def report(scene, _section_name):
        if not scene.worker_sections:
            raise RuntimeError(
                f"{scene_class.__name__} plays an animation before its first self.next_section(...): start "
                f"construct() with a section, so every frame belongs to one."
            )
        current = scene.worker_sections[-1]
        if progress and current["drawn"]:
            now = scene._drawn_frames + round((scene.renderer.time - current["start_time"]) * fps)
            print(f"{PROGRESS_PREFIX}{now}", flush=True)

    Partial.frame_hooks.append(report)
    Partial.__name__ = Partial.__qualname__ = scene_class.__name__  # manim names files after the class
    return Partial


def configure(job: dict, out: Path) -> None:
    from manim import config

    from scripts.export import media_root

    encoding = ENCODINGS[job["kind"]]
    config.input_file = str(job["scene"])
    config.pixel_width, config.pixel_height = int(job["width"]), int(job["height"])
    config.frame_rate = float(job["fps"])
    # manim's files go to the work folder; media_dir stays the project's, where shared.voice caches its audio (the
    # record names those files, and every render reuses them).
    config.media_dir = str(media_root())
    for key in ("video_dir", "images_dir", "tex_dir", "text_dir", "log_dir"):
        setattr(config, key, str(out / "manim" / key.removesuffix("_dir")))
    config.sections_dir = str(out / "manim" / "sections")
    config.progress_bar = "none"
    config.verbosity = "WARNING"
    config.disable_caching = True  # each play() would hash every mobject; our scenes gain nothing from it
    config.save_sections = encoding["format"] != "png"
    config.format = encoding["format"]
    # Encode up to 4 animations while drawing the next (manim's default.cfg suggests 4; its default 1 makes drawing
    # wait for each animation's encode): rope at 1920×1080 rendered in one process in 73 s instead of 90 s.
    config.max_inflight_encoders = INFLIGHT_ENCODERS
    for key in ("video_codec", "pixel_format", "video_encoder_options"):
        if key in encoding:
            setattr(config, key, encoding[key])


def count_frames(video: Path) -> int:
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        return stream.frames or sum(1 for _ in container.decode(stream))


def decode_to_pngs(video: Path, folder: Path) -> int:
    """Every frame of ``video`` as ``folder/000000.png``…; returns the count."""
    from scripts.export.tools import run_ffmpeg

    folder.mkdir(parents=True)
    run_ffmpeg(["-i", str(video), "-fps_mode", "passthrough", "-start_number", "0", "-compression_level", "1",
                str(folder / "%06d.png")], f"Decoding {video.name} to PNG frames")
    return len(list(folder.glob("*.png")))


def collect_sections(job: dict, out: Path, scene) -> dict[str, dict]:
    """Move each drawn section's media to ``out/section-NNN…`` and count its frames.

    manim lists the sections it wrote in an index JSON, in order; a section that plays nothing has no video there.
    """
    wanted = job["sections"]
    index_files = list((out / "manim" / "sections").glob("*.json"))
    entries = json.loads(index_files[0].read_text()) if index_files else []
    entries = [e for e in entries if e.get("name") != "autocreated"]
    media = {}
    for index in wanted:
        name = scene.record.sections[index].name
        if entries and entries[0]["name"] == name:
            video = index_files[0].parent / entries.pop(0)["video"]
        else:
            video = None  # nothing played in this section
        if job["kind"] == "frames":
            target = out / f"section-{index:03d}"
            frames = decode_to_pngs(video, target) if video else 0
            target.mkdir(exist_ok=True)
        elif video:
            target = out / f"section-{index:03d}{video.suffix}"
            shutil.move(video, target)
            frames = count_frames(target)
        else:
            target, frames = None, 0
        media[str(index)] = {"media": target.name if target else None, "frames": frames}
    if entries:
        raise RuntimeError(f"manim wrote sections {[e['name'] for e in entries]} that the scene's record lacks.")
    return media


def run(job: dict) -> None:
    from scripts.export import ROOT
    from scripts.export.scenes import explainer_classes
    from shared.voice import VoiceError

    out = Path(job["out"])
    run_logs: set[str] = set()
    watch_run_logs(ROOT / "media" / "runs", run_logs)
    configure(job, out)
    started = time.perf_counter()
    classes = {cls.__name__: cls for cls in explainer_classes(Path(job["scene"]))}
    scene_class = partial_scene(classes[job["class"]], list(job["sections"]), float(job["fps"]),
                                bool(os.environ.get("EXPLAINER_PROGRESS")), run_logs)
    try:
        scene = scene_class()
        scene.render()
    except VoiceError as error:
        print(f"{ERROR_PREFIX}{error}", flush=True)
        sys.exit(1)
    sections = [{k: v for k, v in s.items() if k in ("first_play", "end_play", "wall_s", "run_logs")}
                for s in scene.worker_sections]
    info = {
        "sections": sections,
        "drawn": collect_sections(job, out, scene),
        "source_files": _project_files(ROOT),
        "wall_s": round(time.perf_counter() - started, 3),
    }
    shutil.rmtree(out / "manim", ignore_errors=True)
    (out / WORKER_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1))


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m scripts.export.manim_worker JOB.json")
    run(json.loads(Path(sys.argv[1]).read_text()))


if __name__ == "__main__":
    main()
