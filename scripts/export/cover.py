"""Cover images: one frame of a chosen section, as PNGs for 9:16 channels (1080×1920) and the 16:10 video cover
(1146×717).

9:16 is rendered in the portrait layout at 1080×1920 exactly. 16:10 has no layout preset of its own; the nearest is
16:9 (ratio 1.78 vs 1.60), so the scene is laid out in 16:9 at the cover's width (1146×645) and **letterboxed**: bands
of the theme's background colour fill the 72 remaining rows (36 above, 36 below). Nothing is cropped, so nothing the
scene keeps inside its safe area can be cut, and the bands are the scene's own background, so they don't show as bars.

Only the chosen section is rendered, at :data:`COVER_FPS` (a cover needs one frame, not smooth motion); ``--at``
picks the nearest frame, and by default the cover shows the section's finished picture (its last settled frame that
still shows the section's content, :mod:`scripts.export.frames`), not an emptied stage.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from scripts.export import ExportError, ensure_writable_dir, media_root, slug

COVER_FPS = 10.0
PORTRAIT_COVER = (1080, 1920)
LANDSCAPE_COVER = (1146, 717)  # 16:10


@dataclass(frozen=True)
class CoverTarget:
    name: str  # used in the file name
    size: tuple[int, int]
    aspect: str  # the layout preset rendered


TARGETS = (CoverTarget("9x16", PORTRAIT_COVER, "9:16"), CoverTarget("16x10", LANDSCAPE_COVER, "16:9"))


def letterbox(image, size: tuple[int, int], background: str):
    """``image`` centred on a ``size`` canvas of ``background``; refuses to crop (the image must fit)."""
    from PIL import Image

    width, height = size
    if image.width > width or image.height > height:
        raise ExportError(f"A {image.width}×{image.height} frame does not fit a {width}×{height} cover without cropping.")
    canvas = Image.new("RGB", size, background)
    canvas.paste(image.convert("RGB"), ((width - image.width) // 2, (height - image.height) // 2))
    return canvas


def make_covers(scene_spec: str, *, section: str | None = None, at: float | None = None, theme: str = "dark",
                out_dir: Path | None = None, jobs: int | None = None, console=None) -> list[Path]:
    """``explainer cover``: the 9:16 and 16:10 PNGs of one frame of one section (default: section 1's finished
    picture, :func:`scripts.export.frames.finished_frame`). Both are rendered before either file is written."""
    from PIL import Image

    from scripts.export.frames import finished_frame, png_content
    from scripts.export.render import RenderSpec, probe, render, size_for_width
    from scripts.export.scenes import resolve_scene, select_sections
    from shared.files import atomic_path, write_json_atomic

    scene = resolve_scene(scene_spec)
    out_dir = ensure_writable_dir(out_dir or media_root() / "covers" / slug(scene.topic))
    covers, frames_used = {}, {}
    for target in TARGETS:
        plan = probe(scene, target.aspect, console=console)
        index = select_sections(plan["sections"], [section] if section else ["1"], scene.class_name)[0]
        probed = plan["sections"][index]
        duration = probed["end"] - probed["start"]
        if at is not None and not 0 <= at <= duration + 1e-9:
            raise ExportError(
                f"--at {at:g} s is outside section {index + 1} ({probed['name']}), which lasts {duration:.2f} s; "
                f"give a time from 0 to {duration:.2f} (seconds from the section's start)."
            )
        width, height = target.size if target.aspect == "9:16" else size_for_width(target.aspect, target.size[0])
        spec = RenderSpec(scene, theme, target.aspect, width, height, COVER_FPS, "frames")
        result = render(spec, [index], plan, jobs=jobs, console=console)
        rendered = result.section(index)
        if rendered.frames == 0:
            raise ExportError(f"Section {probed['name']!r} has no frames to make a cover from.")
        background = result.record["background"]
        if at is None:
            frame = finished_frame(rendered.frames, rendered.settled_frames(),
                                   lambda i: png_content(rendered.frame_path(i), background))
        else:
            frame = min(rendered.frames - 1, round(at * COVER_FPS))
        with Image.open(rendered.frame_path(frame)) as image:
            covers[target.name] = letterbox(image, target.size, background)
        frames_used[target.name] = {"rendered": [width, height], "size": list(target.size),
                                    "fit": "exact" if (width, height) == target.size else "letterbox",
                                    "time_in_section_s": round(frame / COVER_FPS, 3)}
    written = []
    for target in TARGETS:
        path = out_dir / f"{slug(scene.topic)}-cover-{target.name}.png"
        with atomic_path(path) as tmp:
            covers[target.name].save(tmp, format="PNG")
        written.append(path)
    write_json_atomic(out_dir / f"{slug(scene.topic)}-cover.json", {
        "kind": "explainer-cover", "scene": scene.class_name, "scene_source_sha256": scene.source_hash(),
        "section": probed["name"], "section_number": index + 1, "theme": theme, "covers": frames_used,
        "frame": "--at" if at is not None else "finished picture (last settled frame with the section's content)",
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    return written
