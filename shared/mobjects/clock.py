"""A dial with one hand whose angle follows a function: RoPE's "clock" for one pair of features."""

from __future__ import annotations

from typing import Callable

from manim import ORIGIN, Circle, Dot, Line, VGroup

from shared import theme
from shared.mobjects.vectors import PolarArrow


class Clock(VGroup):
    """A dial of ``radius`` with a hand at ``angle()`` radians (counter-clockwise from 3 o'clock, like the math).

    The hand follows ``angle`` every frame, so it turns as whatever it reads (a ValueTracker) changes.
    """

    def __init__(self, radius: float, angle: Callable[[], float], color, **kwargs):
        super().__init__(**kwargs)
        pal = theme.palette()
        self.dial = Circle(radius=radius, color=pal.grid, stroke_width=theme.STROKE_THIN)
        self.zero_mark = Line([radius * 0.82, 0, 0], [radius, 0, 0], color=pal.muted, stroke_width=theme.STROKE_THIN)
        self.hand = PolarArrow(ORIGIN, 0.88 * radius, angle, color, tip_length=0.22 * radius)
        self.pivot = Dot(radius=radius * 0.07, color=color)
        self.add(self.dial, self.zero_mark, self.hand, self.pivot)
