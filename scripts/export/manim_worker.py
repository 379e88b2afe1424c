"""Run manim's own command line, recording what the CLI needs from the render.

``python -m scripts.export.manim_worker <manim render arguments>`` behaves like ``python -m manim render ...`` with
three additions, all inside this subprocess:

- the scene's record (sections with start/end in seconds, frames and play numbers; numbers shown with
  ``show_number``) is written as JSON to ``$EXPLAINER_RECORD`` when the scene ends;
- ``--format png-sequence`` gets one PNG per frame of the timeline: manim 0.22 writes a single PNG for a held frame
  (``self.wait(2)`` gives one file, not 2 s of frames), so the repeats are added as hard links;
- with ``$EXPLAINER_PROGRESS`` set, a line ``@@progress <frames>`` goes to stdout as frames are written.

The record also lists, per section, the numbers ``show_number`` recorded during it and the frame counts at which
each ``play``/``wait`` ended (``settled_frames``: where a short video can hold a frame), and the run logs
(``media/runs/``) the scene opened, for the manifests' provenance.
"""

from __future__ import annotations

import json
import os
import sys
import time

PROGRESS_PREFIX = "@@progress "
PROGRESS_INTERVAL_S = 0.25


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _project_files() -> list[str]:
    """The repository's Python files this render imported (the render cache is keyed on their contents)."""
    from scripts.export import ROOT

    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path:
            continue
        path = os.path.realpath(path)
        if path.startswith(str(ROOT) + os.sep) and f"{os.sep}.venv{os.sep}" not in path:
            files.add(path)
    return sorted(files)


def _watch_run_logs(opened: set) -> None:
    """Note every file under ``media/runs/`` the scene opens (run logs: seeds, configs, provenance)."""
    import builtins
    import io

    from scripts.export import ROOT

    runs = os.path.join(str(ROOT), "media", "runs") + os.sep
    original_open = io.open

    def watching_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            path = os.path.realpath(os.fspath(file))
            if path.startswith(runs):
                opened.add(path)
        return original_open(file, *args, **kwargs)

    builtins.open = io.open = watching_open


def install_hooks(record_path: str | None, progress: bool) -> None:
    from manim import config
    from manim.scene.scene_file_writer import SceneFileWriter

    from shared.files import write_json_atomic
    from shared.scene import ExplainerScene

    state = {"frames": 0, "last_report": 0.0, "marks": [], "run_logs": set()}
    _watch_run_logs(state["run_logs"])

    def report(force: bool = False) -> None:
        now = time.monotonic()
        if progress and (force or now - state["last_report"] > PROGRESS_INTERVAL_S):
            state["last_report"] = now
            print(f"{PROGRESS_PREFIX}{state['frames']}", flush=True)

    original_write_frame = SceneFileWriter.write_frame

    def write_frame(self, pixels, *, repeat: int = 1):
        if self.output_spec.is_image_sequence and repeat > 1:
            first = self.frame_count
            original_write_frame(self, pixels, repeat=1)
            source = self.output_plan.image_frame_path(first)
            for _ in range(repeat - 1):
                os.link(source, self.output_plan.image_frame_path(self.frame_count))
                self.frame_count += 1
        else:
            original_write_frame(self, pixels, repeat=repeat)
        state["frames"] += repeat
        report()

    SceneFileWriter.write_frame = write_frame

    def close_section(scene) -> None:
        marks = state["marks"]
        if marks and "end_frame" not in marks[-1]:
            marks[-1].update(end_frame=state["frames"], end_play=scene.renderer.num_plays)

    original_play = ExplainerScene.play

    def play(self, *args, **kwargs):
        result = original_play(self, *args, **kwargs)
        if state["marks"]:
            settled = state["marks"][-1].setdefault("settled_frames", [])
            if not settled or settled[-1] != state["frames"]:
                settled.append(state["frames"])  # frames written so far: the last one is a settled frame
        return result

    ExplainerScene.play = play

    original_show_number = ExplainerScene.show_number

    def show_number(self, name, value):
        if state["marks"]:
            state["marks"][-1].setdefault("numbers", {})[name] = json.loads(json.dumps(value, default=_jsonable))
        return original_show_number(self, name, value)

    ExplainerScene.show_number = show_number

    def save_record(scene) -> None:
        sections = []
        for section, mark in zip(scene.record.sections, state["marks"]):
            sections.append({"name": section.name, "start": section.start, "end": section.end, **mark})
        record = {
            "scene": type(scene).__name__,
            "fps": config.frame_rate,
            "pixel_width": config.pixel_width,
            "pixel_height": config.pixel_height,
            "aspect": scene.aspect.name,
            "theme": scene.palette.name,
            "background": scene.palette.background,
            "frames": state["frames"],
            "sections": sections,
            "numbers": json.loads(json.dumps(scene.record.numbers, default=_jsonable)),
            "source_files": _project_files(),
            "run_logs": sorted(state["run_logs"]),
        }
        report(force=True)
        if record_path:
            write_json_atomic(record_path, record)

    # Wrap the two public methods that bound sections, so nothing depends on ExplainerScene's hook lists.
    original_next_section = ExplainerScene.next_section

    def next_section(self, name: str = "unnamed", *args, **kwargs):
        close_section(self)
        original_next_section(self, name, *args, **kwargs)
        state["marks"].append({"start_frame": state["frames"], "first_play": self.renderer.num_plays})

    ExplainerScene.next_section = next_section

    original_tear_down = ExplainerScene.tear_down

    def tear_down(self):
        original_tear_down(self)
        close_section(self)
        save_record(self)

    ExplainerScene.tear_down = tear_down


def main() -> None:
    install_hooks(os.environ.get("EXPLAINER_RECORD"), bool(os.environ.get("EXPLAINER_PROGRESS")))
    from manim.__main__ import main as manim_main

    sys.argv = ["manim", "--hide-splash", "render", *sys.argv[1:]]
    manim_main()


if __name__ == "__main__":
    main()
