"""Burned-in subtitles: the cue for the current scene time, in the layout's subtitle band, on a backing box.

The track is one mobject the scene keeps on top; :meth:`SubtitleTrack.show` picks the cue for a time. The scene calls
it every frame of an animation (an updater) and splits waits at cue boundaries, so a held frame shows the right cue
without re-rendering the whole frame each tick.
"""

from __future__ import annotations

from typing import Callable

from manim import DOWN, RoundedRectangle, VGroup

from shared import theme
from shared.layout import SUBTITLE_LEADING, Layout, subtitle_em
from shared.subtitles import Cue
from shared.text import zh

BOX_OPACITY = 0.78  # the background shows through a little, the words stay readable on any picture


class SubtitleTrack(VGroup):
    """Subtitles in ``layout.subtitle``; cues are added beat by beat with :meth:`add_cues`."""

    def __init__(self, layout: Layout, clock: Callable[[], float], **kwargs):
        super().__init__(**kwargs)
        if layout.subtitle is None:
            raise ValueError("This layout has no subtitle band: subtitles need a render with a voice.")
        self.layout = layout
        self.em = subtitle_em(layout.aspect)
        self.cues: list[tuple[Cue, VGroup]] = []
        self.current: VGroup | None = None
        self.add_updater(lambda m: m.show(clock()))

    def add_cues(self, cues: list[Cue]) -> None:
        pal = theme.palette()
        band = self.layout.subtitle
        for cue in cues:
            lines = [zh(line, "subtitle", color=pal.text, prose=False) for line in cue.marked]
            text = VGroup(*lines).arrange(DOWN, buff=(SUBTITLE_LEADING - 1) * self.em)  # centred lines
            box = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=text.width + self.em,
                                   height=text.height + 0.6 * self.em, stroke_width=0)
            box.set_fill(pal.background, BOX_OPACITY)
            group = VGroup(box, text.move_to(box))
            band.place(group, align="bottom")
            self.cues.append((cue, group))

    def cue_at(self, time: float) -> VGroup | None:
        for cue, group in self.cues:
            if cue.start - 1e-9 <= time < cue.end - 1e-9:
                return group
        return None

    def show(self, time: float) -> "SubtitleTrack":
        group = self.cue_at(time)
        if group is not self.current:
            if self.current is not None:
                # manim draws a play()'s moving mobjects from the family list it took when the play began: a cue
                # taken out of the track mid-play would still be drawn, so it also turns invisible.
                self.current.set_opacity(0)
            if group is not None:
                box, text = group
                box.set_fill(opacity=BOX_OPACITY)
                text.set_opacity(1)
            self.submobjects = [group] if group is not None else []
            self.current = group
        return self

    def boundaries(self) -> list[float]:
        return sorted({t for cue, _ in self.cues for t in (cue.start, cue.end)})
