"""Layout check of a frame: what a reviewer would catch on a phone, as code.

:func:`layout_problems` looks at the mobjects on screen and reports, in words:

- anything visible outside the safe area (portrait: the 9:16 safe band; others: the frame less a margin);
- text smaller than ``theme.MIN_TEXT_CSS`` for its role, measured in CSS px at the width the aspect is seen at on a
  phone (``Aspect.display_width_css``: 343 px for an article GIF);
- digits drawn that no recording call made (``shared.numbers``: every number on screen carries its name and value);
- more prose lines on screen than ``theme.MAX_PROSE_LINES``;
- two pieces of text overlapping, or side by side closer than ``MIN_TEXT_GAP_EM`` (they would read as one word).

Mark a mobject ``mob.layout_exempt = True`` for decoration that may bleed off the frame on purpose.
"""

from __future__ import annotations

import numpy as np
from manim import Mobject, VMobject
from manim.mobject.types.image_mobject import AbstractImageMobject

from shared import theme
from shared.layout import Layout, current_layout
from shared.text import em_size, is_text

TOLERANCE = 0.02  # frame units
MIN_TEXT_GAP_EM = 0.15  # side-by-side texts closer than this (in ems of the smaller) read as one run of text


def _visible(mob: Mobject) -> bool:
    if isinstance(mob, AbstractImageMobject):
        return len(mob.points) > 0 and mob.get_opacity() > 0.01 if hasattr(mob, "get_opacity") else True
    if not isinstance(mob, VMobject) or len(mob.points) == 0:
        return False
    fill = np.max(mob.get_fill_opacities()) if len(mob.get_fill_opacities()) else 0
    stroke = np.max(mob.get_stroke_opacities()) if len(mob.get_stroke_opacities()) else 0
    return fill > 0.01 or (stroke > 0.01 and mob.get_stroke_width() > 0)


def _box(mobs) -> tuple[float, float, float, float] | None:
    points = [m.points for m in mobs if len(m.points)]
    if not points:
        return None
    pts = np.concatenate(points)
    return pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max()


def _walk(mob: Mobject, exempt: bool = False):
    """Yield (mobject, exempt) for the whole family, stopping at text (checked as one piece)."""
    exempt = exempt or getattr(mob, "layout_exempt", False)
    yield mob, exempt
    if is_text(mob):
        return
    for sub in mob.submobjects:
        yield from _walk(sub, exempt)


def _visible_leaves(text: Mobject) -> list[Mobject]:
    return [m for m in text.family_members_with_points() if _visible(m)]


def visible_texts(mobjects) -> list[Mobject]:
    """The text mobjects among ``mobjects`` (and their families) that draw something now."""
    return [mob for top in mobjects for mob, _ in _walk(top) if is_text(mob) and _visible_leaves(mob)]


def _describe(mob: Mobject) -> str:
    if is_text(mob):
        return f"text {mob.source_text!r}"
    return type(mob).__name__


def text_css_px(mob: Mobject, layout: Layout) -> float:
    """The em size of a text mobject in CSS px on the screen its aspect is made for."""
    return layout.css_px(em_size(mob))


def layout_problems(mobjects, layout: Layout | None = None) -> list[str]:
    """Problems with the frame made of ``mobjects`` (a scene's ``mobjects``), as sentences; empty when all is well."""
    layout = layout or current_layout()
    aspect = layout.aspect
    problems: list[str] = []
    texts = []
    for top in mobjects:
        for mob, exempt in _walk(top):
            if is_text(mob):
                leaves = _visible_leaves(mob)
                if not leaves:
                    continue
                box = _box(leaves)
                texts.append((mob, box))
                size, minimum = text_css_px(mob, layout), theme.MIN_TEXT_CSS[mob.text_role]
                if size < minimum - 1e-6:
                    problems.append(
                        f"{_describe(mob)} ({mob.text_role}) is {size:.1f} CSS px at {aspect.display_width_css:g} px "
                        f"wide ({aspect.name}); it must be at least {minimum:g}"
                    )
                stray = getattr(mob, "untraced", "") or ""
                if stray:
                    problems.append(
                        f"{_describe(mob)} draws digits {stray!r} that no recording call made: draw numbers with "
                        f"num()/fill()/term() (shared.numbers) or LiveNumber(name=...)"
                    )
            elif _visible(mob):
                box = _box([mob])
            else:
                continue
            if exempt or box is None:
                continue
            if not layout.safe.contains(*box, tol=TOLERANCE):
                problems.append(
                    f"{_describe(mob)} spans x {box[0]:.2f}..{box[1]:.2f}, y {box[2]:.2f}..{box[3]:.2f}, outside the "
                    f"{aspect.name} safe area x {layout.safe.left:.2f}..{layout.safe.right:.2f}, "
                    f"y {layout.safe.bottom:.2f}..{layout.safe.top:.2f}"
                )
    lines = sum(getattr(mob, "prose_lines", 0) for mob, _ in texts)
    if lines > theme.MAX_PROSE_LINES:
        problems.append(f"{lines} lines of prose on screen; at most {theme.MAX_PROSE_LINES} read well on a phone")
    for i, (a, box_a) in enumerate(texts):
        for b, box_b in texts[i + 1 :]:
            dx = min(box_a[1], box_b[1]) - max(box_a[0], box_b[0])
            dy = min(box_a[3], box_b[3]) - max(box_a[2], box_b[2])
            if dx > TOLERANCE and dy > TOLERANCE:
                problems.append(f"{_describe(a)} overlaps {_describe(b)}")
                continue
            gap = MIN_TEXT_GAP_EM * min(em_size(a), em_size(b))
            if dy > TOLERANCE and dx > -gap:  # side by side on one line with no space between: read as one word
                problems.append(f"{_describe(a)} touches {_describe(b)} (less than {MIN_TEXT_GAP_EM:g} em apart)")
    return problems


# --- dry runs ------------------------------------------------------------------------------------------------------


def dry_run(scene_class, aspect: str = "16:9", *, check_layout: bool = True, quality: str = "l",
            frames: dict | None = None):
    """Run ``scene_class`` without writing video, in ``aspect``; return ``(record, problems)``.

    ``record`` is the scene's :class:`shared.scene.SceneRecord` (sections with durations, numbers shown);
    ``problems`` maps each section name to the distinct :func:`layout_problems` found on any of its settled frames
    (after every play/wait, so the end of each section is included), plus one for a section longer than
    ``theme.MAX_SECTION_SECONDS``.

    Pass a dict as ``frames`` to receive, per section, the pixels (H×W×4 uint8) of its last settled frame that still
    had something on screen (the frame before the stage is cleared): what a reviewer would look at.
    """
    from manim import tempconfig

    from shared.layout import PIXEL_SIZES
    from shared.scene import ExplainerScene

    width, height = PIXEL_SIZES[aspect][quality]
    problems: dict[str, list[str]] = {}

    def check(scene, section_name):
        found = problems.setdefault(section_name, [])
        for problem in layout_problems(scene.mobjects, scene.layout):
            if problem not in found:
                found.append(problem)

    def capture(scene, section_name):
        if scene.mobjects:
            scene.renderer.camera.reset()
            scene.renderer.camera.capture_mobjects(scene.mobjects)
            frames[section_name] = scene.renderer.camera.pixel_array.copy()

    hooks = ExplainerScene.frame_hooks
    ExplainerScene.frame_hooks = [*hooks, *([check] if check_layout else []), *([capture] if frames is not None else [])]
    settings = {"dry_run": True, "pixel_width": width, "pixel_height": height, "frame_rate": 15,
                "verbosity": "WARNING", "progress_bar": "none"}
    try:
        with tempconfig(settings):
            scene = scene_class()
            scene.render()
    finally:
        ExplainerScene.frame_hooks = hooks
    for section in scene.record.sections:
        found = problems.setdefault(section.name, [])
        voiced = scene.narrator is not None  # a narrated cut lasts as long as its speech; the limit is for GIFs
        if not voiced and section.duration is not None and section.duration > theme.MAX_SECTION_SECONDS + 1e-6:
            found.append(f"lasts {section.duration:.1f} s; a section is at most {theme.MAX_SECTION_SECONDS:g} s")
    return scene.record, problems
