"""Arrows for 2D vectors."""

from __future__ import annotations

from typing import Callable

import numpy as np
from manim import RIGHT, Arrow

from shared import theme


class PolarArrow(Arrow):
    """An arrow of fixed length from ``center`` whose direction follows ``angle()`` (radians, counter-clockwise).

    It turns by rotating itself each frame, which is far cheaper than rebuilding an arrow; use it for anything that
    rotates without stretching (RoPE keeps lengths).
    """

    def __init__(self, center, length: float, angle: Callable[[], float], color, **kwargs):
        center = np.asarray(center, dtype=float)
        kwargs.setdefault("stroke_width", theme.STROKE)
        kwargs.setdefault("max_tip_length_to_length_ratio", 0.25)
        kwargs.setdefault("tip_length", min(theme.VECTOR_TIP, 0.25 * length))
        super().__init__(center, center + length * RIGHT, buff=0, color=color, **kwargs)
        self.angle_fn = angle
        self.pivot_point = center
        self.current_angle = 0.0
        self.add_updater(lambda a: a.follow())
        self.follow()

    def follow(self):
        angle = self.angle_fn()
        self.rotate(angle - self.current_angle, about_point=self.get_start())
        self.current_angle = angle
        return self
