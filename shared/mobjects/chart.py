"""A chart sized to a layout region: axes, ticks and labels made with ``shared.text`` (no LaTeX), linear or log axes.

Charts draw data, never invent it: pass arrays from ``shared.math`` or a run log and map them with :meth:`Chart.c2p`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from manim import DOWN, LEFT, UP, Line, Rectangle, VGroup, VMobject

from shared import theme
from shared.layout import Region, current_layout
from shared.numbers import num
from shared.text import zh


@dataclass(frozen=True)
class AxisSpec:
    """One axis: its data range, its ticks (value, label) and a title; ``log`` maps data with log10."""

    low: float
    high: float
    ticks: Sequence[tuple[float, str]] = ()
    title: str = ""
    log: bool = False

    def unit(self, value) -> np.ndarray:
        """Data value(s) → 0..1 along the axis."""
        value = np.asarray(value, dtype=float)
        if self.log:
            return (np.log10(value) - np.log10(self.low)) / (np.log10(self.high) - np.log10(self.low))
        return (value - self.low) / (self.high - self.low)


def numeric_ticks(name: str, positions, fmt: str = "{:g}", shown=None) -> list[tuple[float, str]]:
    """Ticks at ``positions`` labelled with recorded numbers ``name``: the position itself, or ``shown[i]`` when the
    label differs from where it sits (a log2 axis labelled ``÷2, ÷4``: positions 1, 2, shown 2, 4)."""
    shown = positions if shown is None else shown
    return [(float(p), num(name, v, fmt)) for p, v in zip(positions, shown)]


class Chart(VGroup):
    """Axes in ``region`` with tick labels and axis titles, leaving room for the labels inside the region.

    Parameters
    ----------
    region
        Where the whole chart (labels included) must fit.
    x, y
        The axes.
    """

    def __init__(self, region: Region, x: AxisSpec, y: AxisSpec, **kwargs):
        super().__init__(**kwargs)
        self.x_spec, self.y_spec = x, y
        pal = theme.palette()
        em = current_layout().text_em("label")
        self.label_em = em
        tick_len = 0.35 * em
        # An empty tick text draws the tick without a label (e.g. an upper chart sharing the lower one's x axis).
        y_labels = [zh(text, "label", color=pal.muted) if text else VGroup() for _, text in y.ticks]
        x_labels = [zh(text, "label", color=pal.muted) if text else VGroup() for _, text in x.ticks]
        y_title = zh(y.title, "label", color=pal.muted) if y.title else None
        x_title = zh(x.title, "label", color=pal.muted) if x.title else None
        # The plot box: the region less room for tick labels (left, bottom) and titles (top, bottom).
        # Left: the y tick labels, or half the first x tick label, which is centred on the axis' left end.
        left_room = max(max((m.width for m in y_labels), default=0) + tick_len + 0.3 * em,
                        max((m.width for m in x_labels[:1]), default=0) / 2 + 0.1 * em)
        bottom_room = (em * 1.3 if any(text for _, text in x.ticks) else 0) + (em * 1.4 if x_title else 0) + tick_len
        top_room = em * 1.9 if y_title else 0.2 * em
        right_room = max((m.width for m in x_labels[-1:]), default=0) / 2 + 0.1 * em
        self.box = Region(region.left + left_room, region.right - right_room, region.bottom + bottom_room,
                          region.top - top_room)
        b = self.box
        stroke = dict(color=pal.muted, stroke_width=theme.STROKE_THIN)
        self.axes = VGroup(Line([b.left, b.bottom, 0], [b.right, b.bottom, 0], **stroke),
                           Line([b.left, b.bottom, 0], [b.left, b.top, 0], **stroke))
        ticks, labels = VGroup(), VGroup()
        for (value, _), label in zip(x.ticks, x_labels):
            p = self.c2p(value, y.low)
            ticks.add(Line(p, p + DOWN * tick_len, **stroke))
            labels.add(label.next_to(p + DOWN * tick_len, DOWN, buff=0.15 * em))
        for (value, _), label in zip(y.ticks, y_labels):
            p = self.c2p(x.low, value)
            ticks.add(Line(p, p + LEFT * tick_len, **stroke))
            labels.add(label.next_to(p + LEFT * tick_len, LEFT, buff=0.15 * em))
        self.ticks, self.tick_labels = ticks, labels
        self.add(self.axes, ticks, labels)
        if x_title:
            x_title.move_to([b.center[0], region.bottom, 0], aligned_edge=DOWN)
            self.x_title = x_title
            self.add(x_title)
        if y_title:
            y_title.move_to([region.left, region.top, 0], aligned_edge=UP + LEFT)
            self.y_title = y_title
            self.add(y_title)

    def c2p(self, x, y) -> np.ndarray:
        """Data coordinates → frame point (works on scalars)."""
        return self.box.point(float(self.x_spec.unit(x)), float(self.y_spec.unit(y)))

    def points_for(self, xs, ys) -> np.ndarray:
        """Data arrays → (n, 3) frame points."""
        ux, uy = self.x_spec.unit(xs), self.y_spec.unit(ys)
        b = self.box
        return np.column_stack([b.left + ux * b.width, b.bottom + uy * b.height, np.zeros(len(ux))])

    def polyline(self, xs, ys, color, stroke_width: float = theme.STROKE) -> VMobject:
        """A line through the data points, left to right (draw it progressively with ``Create``)."""
        line = VMobject().set_points_as_corners(self.points_for(xs, ys))
        return line.set_stroke(color, stroke_width).set_fill(opacity=0)

    def growing_polyline(self, xs, ys, color, until, stroke_width: float = theme.STROKE) -> VMobject:
        """A line through the data up to x = ``until()``, redrawn each frame: animate a tracker to draw a curve
        point by point in data order (e.g. training steps on a log axis), ending exactly on the data."""
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        points = self.points_for(xs, ys)
        line = VMobject().set_stroke(color, stroke_width).set_fill(opacity=0)

        def update(mob):
            x_end = until()
            k = int(np.searchsorted(xs, x_end, side="right"))
            if k == 0:
                mob.clear_points()
                return
            shown = points[:k]
            if k < len(xs) and x_end > xs[k - 1]:  # the partial segment towards the next point
                end = self.points_for([x_end], [np.interp(x_end, xs[k - 1 : k + 1], ys[k - 1 : k + 1])])
                shown = np.vstack([shown, end])
            if len(shown) < 2:
                shown = np.vstack([shown, shown])
            mob.set_points_as_corners(shown)

        line.add_updater(update)
        update(line)
        return line

    def bars(self, xs, heights, color, width: float | None = None, baseline: float | None = None) -> VGroup:
        """One rectangle per value, from ``baseline`` (default the y axis' low end) to the value."""
        xs = np.asarray(xs, dtype=float)
        baseline = self.y_spec.low if baseline is None else baseline
        if width is None:
            spacing = np.min(np.diff(self.points_for(xs, np.full(len(xs), baseline))[:, 0])) if len(xs) > 1 else 1
            width = 0.75 * spacing
        group = VGroup()
        for x, h in zip(xs, heights):
            base, top = self.c2p(x, baseline), self.c2p(x, h)
            height = max(abs(top[1] - base[1]), 1e-3)
            rect = Rectangle(width=width, height=height, stroke_width=0).set_fill(color, 0.9)
            rect.move_to([base[0], (base[1] + top[1]) / 2, 0])
            group.add(rect)
        return group

    def hline(self, y, color, dashed: bool = True) -> VMobject:
        from manim import DashedLine

        a, b = self.c2p(self.x_spec.low, y), self.c2p(self.x_spec.high, y)
        cls = DashedLine if dashed else Line
        return cls(a, b, color=color, stroke_width=theme.STROKE_THIN)

    def vline(self, x, color, dashed: bool = True) -> VMobject:
        from manim import DashedLine

        a, b = self.c2p(x, self.y_spec.low), self.c2p(x, self.y_spec.high)
        cls = DashedLine if dashed else Line
        return cls(a, b, color=color, stroke_width=theme.STROKE_THIN)
