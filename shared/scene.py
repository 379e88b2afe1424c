"""``ExplainerScene``: the base every topic scene derives from.

It sizes the frame from the render's pixel size (so ``-r 1080,1920`` gives a real 9:16 frame), paints the theme's
background, keeps a record of sections (name, start, duration) and of the numbers the scene shows, and runs
``frame_hooks`` on every settled frame: after each ``play``/``wait``, which includes the last frame of every section
(tests use them for the layout check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from manim import FadeIn, FadeOut, Scene, config


from shared import theme
from shared.layout import configure_frame, current_layout
from shared.text import TEXT_TAGS, is_text, zh


def carry_text_tags(animation) -> None:
    """After ``Transform(a, b)`` of text into text, ``a`` shows ``b``: give it ``b``'s role, size and source, so the
    layout check measures what is on screen."""
    target = getattr(animation, "target_mobject", None)
    mobject = getattr(animation, "mobject", None)
    if target is not None and mobject is not None and is_text(target) and is_text(mobject) and target is not mobject:
        for tag in TEXT_TAGS:
            setattr(mobject, tag, getattr(target, tag))


@dataclass
class SectionRecord:
    name: str
    start: float
    end: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass
class SceneRecord:
    """What a scene did, for tests, manifests and ``explainer list``."""

    sections: list[SectionRecord] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)  # every number shown on screen, by name


class ExplainerScene(Scene):
    """Base scene: aspect-aware frame, themed background, section and number bookkeeping."""

    # Called as hook(scene, section_name) after every play() and wait(), on the frame the animation settled on.
    frame_hooks: list[Callable[["ExplainerScene", str], None]] = []
    # Called as hook(scene, section_name) when a section ends (the export tools save section records with it).
    section_end_hooks: list[Callable[["ExplainerScene", str], None]] = []

    def __init__(self, **kwargs):
        self.aspect = configure_frame(config)
        self.palette = theme.palette()
        config.background_color = self.palette.background
        self.record = SceneRecord()
        super().__init__(**kwargs)

    def setup(self):
        self.layout = current_layout()
        self.camera.background_color = self.palette.background

    @property
    def is_portrait(self) -> bool:
        return self.aspect.is_portrait

    # --- sections ------------------------------------------------------------------------------------------------

    def next_section(self, name: str = "unnamed", *args, **kwargs) -> None:
        """Start a section (≤ ``theme.MAX_SECTION_SECONDS``); it is the unit of GIFs and short-video cuts."""
        self._end_current_section()
        self.record.sections.append(SectionRecord(name, self.renderer.time))
        super().next_section(name, *args, **kwargs)

    def _end_current_section(self) -> None:
        if self.record.sections and self.record.sections[-1].end is None:
            self.record.sections[-1].end = self.renderer.time
            for hook in type(self).section_end_hooks:
                hook(self, self.record.sections[-1].name)

    @property
    def section_name(self) -> str:
        return self.record.sections[-1].name if self.record.sections else ""

    def play(self, *args, **kwargs):
        super().play(*args, **kwargs)
        for animation in args:
            carry_text_tags(animation)
        for hook in type(self).frame_hooks:
            hook(self, self.section_name)

    def wait(self, *args, **kwargs):
        super().wait(*args, **kwargs)
        for hook in type(self).frame_hooks:
            hook(self, self.section_name)

    def tear_down(self):
        self._end_current_section()
        super().tear_down()

    # --- numbers on screen ---------------------------------------------------------------------------------------

    def show_number(self, name: str, value):
        """Record a number the scene puts on screen (for the manifest and for tests); returns ``value``."""
        self.record.numbers[name] = value
        return value

    # --- the recurring pieces of a section: title, caption, clearing the stage -------------------------------------

    def show_title(self, text, run_time: float = theme.QUICK):
        """Put ``text`` (a string, or a ready text mobject such as ``rich(..., "title")``) in the title band,
        replacing the current title."""
        title = zh(text, "title", bold=True) if isinstance(text, str) else text
        self.layout.title.place(title, align="left")
        old = getattr(self, "title_mob", None)
        self.play(*([FadeOut(old)] if old in self.mobjects else []), FadeIn(title), run_time=run_time)
        self.title_mob = title
        return title

    def say(self, text, *, color=None, run_time: float = theme.QUICK, hold: bool = False):
        """Show ``text`` (a string, or a ready text mobject such as a formula) as the caption, replacing the current
        one; with ``hold``, wait its reading time."""
        caption = zh(text, "body", color=color) if isinstance(text, str) else text
        self.layout.caption.place(caption)
        old = getattr(self, "caption_mob", None)
        if old in self.mobjects:  # one after the other: two captions cross-fading in one place are unreadable
            self.play(FadeOut(old), run_time=run_time / 2)
            run_time /= 2
        self.play(FadeIn(caption), run_time=run_time)
        self.caption_mob = caption
        if hold:
            self.wait(theme.reading_time(caption.source_text))
        return caption

    def clear_stage(self, run_time: float = theme.QUICK):
        """Fade out everything on screen (between sections)."""
        if self.mobjects:
            self.play(*[FadeOut(m) for m in self.mobjects], run_time=run_time)
        self.clear()
