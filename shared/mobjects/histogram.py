"""Bars whose heights follow data every frame (a histogram over training), and the interpolation that feeds them.

:class:`LiveBars` redraws its rectangles from corner points each frame (no new mobjects, no typesetting: numbers on
top are :class:`shared.text.LiveNumber`), so an 8-bar histogram playing through a run log costs next to nothing per
frame. Heights come from a function, usually :func:`interpolate_rows` over a log's records at a ValueTracker's value.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from manim import DOWN, UP, VGroup, VMobject

from shared.mobjects.chart import Chart
from shared.text import LiveNumber

BAR_WIDTH_OF_SPACING = 0.7  # bar width as a fraction of the distance between neighbouring bars
LABEL_GAP_EM = 0.2  # gap between a bar's end and its number, in label ems
MIN_VISIBLE_HEIGHT = 1e-3  # frame units: a zero bar stays a hairline on the baseline, never a degenerate path


def interpolate_rows(rows, t: float) -> np.ndarray:
    """Row ``t`` of ``rows`` (shape (records, values)), linearly interpolated between the two nearest records.

    ``t`` is clipped to ``[0, records − 1]``; integer ``t`` returns that record exactly.
    """
    rows = np.asarray(rows, dtype=float)
    t = float(np.clip(t, 0, len(rows) - 1))
    low = int(np.floor(t))
    high = min(low + 1, len(rows) - 1)
    return rows[low] + (t - low) * (rows[high] - rows[low])


class LiveBars(VGroup):
    """One bar per x position on ``chart``, from ``baseline`` to ``heights()[i]``, redrawn every frame.

    Parameters
    ----------
    chart
        The :class:`shared.mobjects.chart.Chart` whose data coordinates the bars use.
    xs
        Bar positions (data units).
    heights
        ``() -> sequence`` of bar values (data units), one per bar; called every frame.
    color
        One colour, or one per bar.
    baseline
        Where bars start (data units); default the y axis' low end. Values below it draw downwards.
    label_fmt
        If given, a number on each bar's end (above, or below for a bar under the baseline), formatted with this
        ``str.format`` pattern from ``label_value()`` (default: the heights).
    label_value
        ``() -> sequence`` of the numbers to print, when they differ from the heights.
    label_role
        Text role of the numbers.
    label_name
        What the numbers are: bar i's is recorded as ``label_name[i]`` (``shared.numbers``). Needed with
        ``label_fmt``.
    """

    def __init__(self, chart: Chart, xs, heights: Callable[[], Sequence[float]], color, *,
                 baseline: float | None = None, label_fmt: str | None = None,
                 label_value: Callable[[], Sequence[float]] | None = None, label_role: str = "label",
                 label_color=None, label_name: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if label_fmt is not None and not label_name:
            raise ValueError("Bar labels are recorded numbers: give LiveBars a label_name (bar i is label_name[i]).")
        self.chart = chart
        self.xs = np.asarray(xs, dtype=float)
        self.heights_fn = heights
        self.baseline = chart.y_spec.low if baseline is None else baseline
        colors = list(color) if isinstance(color, (list, tuple)) else [color] * len(self.xs)
        centers = chart.points_for(self.xs, np.full(len(self.xs), self.baseline))[:, 0]
        spacing = np.min(np.diff(centers)) if len(centers) > 1 else chart.box.width
        self.bar_width = BAR_WIDTH_OF_SPACING * spacing
        self.bars = VGroup(*(VMobject(stroke_width=0).set_fill(c, 0.9) for c in colors))
        self.add(self.bars)
        self.labels = VGroup()
        if label_fmt is not None:
            values = label_value or heights
            for i, c in enumerate(colors):
                self.labels.add(LiveNumber(lambda i=i: values()[i], label_fmt, label_role, color=label_color or c,
                                           name=f"{label_name}[{i}]"))
            self.add(self.labels)
        self.add_updater(lambda m: m.follow())
        self.follow()

    def bar_ends(self) -> np.ndarray:
        """(bars, 2, 3) frame points: each bar's baseline centre and value centre, at the current heights."""
        heights = np.asarray(self.heights_fn(), dtype=float)
        n = len(self.xs)
        base = self.chart.points_for(self.xs, np.full(n, self.baseline))
        top = self.chart.points_for(self.xs, heights)
        return np.stack([base, top], axis=1)

    def follow(self):
        half = self.bar_width / 2
        for i, (base, top) in enumerate(self.bar_ends()):
            direction = 1.0 if top[1] >= base[1] else -1.0
            end_y = base[1] + direction * max(abs(top[1] - base[1]), MIN_VISIBLE_HEIGHT)
            x, y0 = base[0], base[1]
            self.bars[i].set_points_as_corners(
                [[x - half, y0, 0], [x + half, y0, 0], [x + half, end_y, 0], [x - half, end_y, 0], [x - half, y0, 0]]
            )
            if len(self.labels):
                label = self.labels[i]
                label.update(0)  # redraw the digits first, so it is placed by its new width
                side = UP if direction > 0 else DOWN
                label.next_to([x, end_y, 0], side, buff=LABEL_GAP_EM * label.em_now)
        return self
