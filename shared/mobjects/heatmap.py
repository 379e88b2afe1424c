"""Heatmaps: a matrix of coloured cells with optional numbers, row/column labels and a colour scale from the palette.

Built for attention matrices. The numbers are :class:`shared.text.LiveNumber` s that read the heatmap's current values,
so changing values (scores → softmax weights, one row at a time) is one cheap animation that recolours cells and
rolls the digits, with no re-typesetting per frame.

    scores = Heatmap(s, ColorScale.diverging(s), region=area, numbers="{:.2f}", row_labels=tokens, col_labels=tokens)
    self.play(scores.morph(weights, rows=[0], scale=ColorScale.sequential(1.0)))   # row 0 becomes its softmax

Non-finite values (−inf, NaN) are *masked* cells: drawn in the masked colour, with ``masked_text`` (e.g. "−∞") in
place of a number.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from manim import LEFT, UP, Animation, ManimColor, Rectangle, SurroundingRectangle, VGroup
from manim.utils.color import interpolate_color

from shared import theme
from shared.layout import Region
from shared.numbers import format_number
from shared.text import LiveNumber, zh

GAP_FRACTION = 0.08  # space between cells, as a fraction of the cell pitch
LABEL_BUFF_EM = 0.35  # labels to cells, in ems of the label text
MAX_CELL = 1.6  # default largest cell side, frame units (a 2×2 matrix should not fill the screen)


def relative_luminance(color) -> float:
    """WCAG 2.x relative luminance of a colour (0 black … 1 white)."""
    rgb = np.asarray(ManimColor(color).to_rgb(), dtype=float)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def contrast_ratio(a, b) -> float:
    """WCAG contrast ratio of two colours (1 … 21)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def readable_on(fill, palette=None) -> str:
    """The palette's text or background colour, whichever reads better on ``fill``."""
    pal = palette or theme.palette()
    return _readable_on(ManimColor(fill).to_hex(), pal.text, pal.background)


@functools.lru_cache(maxsize=4096)
def _readable_on(fill_hex: str, text: str, background: str) -> str:  # called per number per frame: cache it
    return max((text, background), key=lambda c: contrast_ratio(c, fill_hex))


@dataclass(frozen=True)
class ColorScale:
    """Value → colour. Diverging: ``negative`` at −limit, ``neutral`` at 0, ``positive`` at +limit (clipped beyond).
    Sequential (``negative`` None): ``neutral`` at 0 → ``positive`` at ``limit``."""

    limit: float
    positive: str
    neutral: str
    negative: str | None = None

    def color(self, value: float) -> ManimColor:
        t = float(np.clip(value / self.limit, -1.0, 1.0)) if self.limit > 0 else 0.0
        if t < 0 and self.negative is None:
            t = 0.0
        end = self.positive if t >= 0 else self.negative
        return interpolate_color(ManimColor(self.neutral), ManimColor(end), abs(t))

    @classmethod
    def diverging(cls, values, palette=None) -> "ColorScale":
        """Symmetric around 0, ``limit`` = the largest finite |value| (positive: query colour, negative: key colour)."""
        pal = palette or theme.palette()
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        limit = float(np.abs(finite).max()) if finite.size else 1.0
        return cls(limit or 1.0, pal.query, pal.panel, pal.key)

    @classmethod
    def sequential(cls, limit: float = 1.0, color=None, palette=None) -> "ColorScale":
        """0 → panel colour, ``limit`` → ``color`` (default the palette's value colour), e.g. softmax weights."""
        pal = palette or theme.palette()
        return cls(float(limit), color or pal.value, pal.panel, None)


def _number_text(value: float, fmt: str) -> str:
    """A cell's number: ``fmt`` with a real minus sign ("−0.00" written "0.00"); nothing for a masked cell."""
    return format_number(value, fmt) if np.isfinite(value) else ""


class _CellNumber(LiveNumber):
    """A LiveNumber whose copies share its glyph table (read-only outlines): animations copy the heatmap two or
    three times each, and deep-copying ~80 glyph outlines per cell made that the slowest part of a render."""

    def __deepcopy__(self, memo):
        memo[id(self._table)] = self._table
        return super().__deepcopy__(memo)


class Heatmap(VGroup):
    """A matrix of coloured cells with optional numbers and row/column labels.

    Parameters
    ----------
    values
        2-D array (rows × cols). Non-finite entries are masked cells.
    scale
        The :class:`ColorScale` for the initial values.
    region
        If given, the cells are sized to fit it with the labels (up to ``max_cell``); the caller places the heatmap.
    cell_width, cell_height
        Cell pitch in frame units (used when ``region`` is None; ``cell_height`` defaults to ``cell_width``).
    numbers
        A format such as ``"{:.2f}"`` to write each value in its cell, or None for colour only.
    name
        What the matrix is (``"cross_attention"``): cell (i, j) is recorded as the number ``name[i,j]``
        (``shared.numbers``). Needed with ``numbers``.
    number_role, label_role
        Text roles of the numbers and of the row/column labels.
    row_labels, col_labels
        Strings left of each row / above each column. Column labels wider than a cell are staggered on two levels.
    masked_text
        Written in masked cells (e.g. ``"−∞"``), or None.
    masked_color
        Fill of masked cells; default the background (they vanish, e.g. a causal triangle).
    """

    def __init__(
        self,
        values,
        scale: ColorScale,
        *,
        region: Region | None = None,
        cell_width: float | None = None,
        cell_height: float | None = None,
        max_cell: tuple[float, float] = (MAX_CELL, MAX_CELL),
        numbers: str | None = None,
        name: str | None = None,
        number_role: str = "small",
        row_labels: Sequence[str] = (),
        col_labels: Sequence[str] = (),
        label_role: str = "small",
        label_colors: Sequence | None = None,
        masked_text: str | None = None,
        masked_color=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.palette = pal = theme.palette()
        self.values = np.array(values, dtype=float)
        if self.values.ndim != 2:
            raise ValueError(f"Heatmap needs a 2-D array, got shape {self.values.shape}")
        n_rows, n_cols = self.values.shape
        self.color_scale = scale
        if numbers is not None and not name:
            raise ValueError("A heatmap that writes its numbers needs a name: its cells are recorded as name[i,j].")
        self.fmt = numbers
        self.name = name
        self.masked_color = ManimColor(masked_color or pal.background)
        self.masked_text = masked_text
        self.number_role = number_role

        self.row_labels = VGroup(*(zh(t, label_role, color=pal.muted, prose=False) for t in row_labels))
        self.col_labels = VGroup(*(zh(t, label_role, color=pal.muted, prose=False) for t in col_labels))
        if label_colors is not None:  # one colour per row label, e.g. the query colour
            for label, color in zip(self.row_labels, label_colors):
                label.set_color(color)
        label_em = self.row_labels[0].em_at_creation if len(self.row_labels) else (
            self.col_labels[0].em_at_creation if len(self.col_labels) else 0.3)
        self.label_buff = LABEL_BUFF_EM * label_em

        row_room = (max(m.width for m in self.row_labels) + self.label_buff) if len(self.row_labels) else 0.0
        if region is not None:
            cell_width = min(max_cell[0], (region.width - row_room) / n_cols)
            if len(self.col_labels):  # the last column's label may stick out past the last cell
                overhang = max(0.0, self.col_labels[-1].width / 2 - cell_width / 2)
                cell_width = min(cell_width, (region.width - row_room - overhang) / n_cols)
        elif cell_width is None:
            raise ValueError("Heatmap needs a region or a cell_width")
        self.stagger = bool(len(self.col_labels)) and max(m.width for m in self.col_labels) > 0.95 * cell_width
        col_levels = 2 if self.stagger else 1
        col_room = (col_levels * max(m.height for m in self.col_labels) * 1.25 + self.label_buff
                    if len(self.col_labels) else 0.0)
        if region is not None:
            cell_height = min(max_cell[1], (region.height - col_room) / n_rows)
        cell_height = cell_width if cell_height is None else cell_height
        if cell_width <= 0 or cell_height <= 0:
            raise ValueError("The region is too small for this heatmap's labels")
        self.cell_width, self.cell_height = cell_width, cell_height

        # Cells: row i at y = −i·pitch, column j at x = j·pitch (the whole group is moved later).
        self.cells = VGroup()
        for i in range(n_rows):
            row = VGroup()
            for j in range(n_cols):
                rect = Rectangle(width=cell_width * (1 - GAP_FRACTION), height=cell_height * (1 - GAP_FRACTION),
                                 stroke_width=0)
                rect.move_to([j * cell_width, -i * cell_height, 0])
                rect.set_fill(self._color_for(self.values[i, j], scale), 1)
                row.add(rect)
            self.cells.add(row)
        self.add(self.cells)

        for i, label in enumerate(self.row_labels):
            label.next_to(self.cells[i][0], LEFT, buff=self.label_buff)
        for j, label in enumerate(self.col_labels):
            label.next_to(self.cells[0][j], UP, buff=self.label_buff)
            if self.stagger and j % 2 == 1:
                label.shift(UP * label.height * 1.25)
        self.add(self.row_labels, self.col_labels)

        # Numbers: one LiveNumber per cell reading self.values; opacity per cell (for masking), colour by contrast.
        self.number_opacity = np.ones_like(self.values)
        self.numbers = VGroup()
        if numbers is not None:
            for i in range(n_rows):
                for j in range(n_cols):
                    self.numbers.add(self._live_number(i, j))
            self.add(self.numbers)

        self.marks = VGroup()  # masked_text marks, created for every cell, visible only where masked
        if masked_text is not None:
            for i in range(n_rows):
                for j in range(n_cols):
                    mark = zh(masked_text, number_role, color=pal.muted, prose=False).move_to(self.cells[i][j])
                    mark.set_opacity(0.0 if np.isfinite(self.values[i, j]) else 1.0)
                    self.marks.add(mark)
            self.add(self.marks)

    # --- cells, colours, numbers ----------------------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def cell(self, i: int, j: int) -> Rectangle:
        return self.cells[i][j]

    def number(self, i: int, j: int):
        return self.numbers[i * self.shape[1] + j]

    def mark(self, i: int, j: int):
        return self.marks[i * self.shape[1] + j]

    def _color_for(self, value: float, scale: ColorScale) -> ManimColor:
        return scale.color(value) if np.isfinite(value) else self.masked_color

    def _live_number(self, i: int, j: int) -> LiveNumber:
        fmt, cell = self.fmt, self.cells[i][j]
        number = _CellNumber(lambda: self.values[i, j], role=self.number_role, name=f"{self.name}[{i},{j}]",
                             formatter=lambda v: _number_text(v, fmt))

        def follow_cell(mob):  # centre the ink in the cell; pick the readable colour for the cell's fill
            opacity = self.number_opacity[i, j]
            mob.ink.set_fill(readable_on(cell.get_fill_color(), self.palette), opacity)
            if len(mob.ink.points):
                mob.shift(cell.get_center() - mob.ink.get_center())

        number.add_updater(follow_cell)
        follow_cell(number)
        return number

    # --- animations ------------------------------------------------------------------------------------------------

    def row_group(self, i: int) -> VGroup:
        """Row ``i``'s cells, numbers and masked marks (to reveal a matrix row by row)."""
        n_cols = self.shape[1]
        parts = [*self.cells[i]]
        if len(self.numbers):
            parts += [self.numbers[i * n_cols + j] for j in range(n_cols)]
        if len(self.marks):
            parts += [self.marks[i * n_cols + j] for j in range(n_cols)]
        return VGroup(*parts)

    def morph(self, new_values, rows: Iterable[int] | None = None, scale: ColorScale | None = None,
              **kwargs) -> Animation:
        """Animate ``rows`` (default all) to ``new_values`` (full-shape array; other rows ignored): colours blend,
        numbers roll, cells becoming masked lose their number and show ``masked_text`` (and the reverse)."""
        return _MorphValues(self, np.asarray(new_values, dtype=float), rows, scale or self.color_scale, **kwargs)

    def set_values(self, new_values, rows: Iterable[int] | None = None, scale: ColorScale | None = None) -> "Heatmap":
        """Jump to ``new_values`` without animation."""
        anim = self.morph(new_values, rows, scale)
        anim.begin()
        anim.interpolate(1.0)
        anim.finish()
        self.update(0)  # redraw the numbers now (a heatmap not yet in a scene gets no frame updates)
        return self

    def outline(self, rows=None, cols=None, color=None, buff: float = 0.04) -> SurroundingRectangle:
        """A frame around a block of cells: ``rows``/``cols`` are ranges or lists (default all)."""
        n_rows, n_cols = self.shape
        rows = list(range(n_rows)) if rows is None else list(rows)
        cols = list(range(n_cols)) if cols is None else list(cols)
        block = VGroup(*(self.cells[i][j] for i in rows for j in cols))
        return SurroundingRectangle(block, color=color or self.palette.accent, buff=buff,
                                    stroke_width=theme.STROKE, corner_radius=0.04)


class _MorphValues(Animation):
    """Interpolates a heatmap's values and cell colours for some rows; the LiveNumbers follow each frame."""

    def __init__(self, heatmap: Heatmap, new_values: np.ndarray, rows, scale: ColorScale, **kwargs):
        if new_values.shape != heatmap.values.shape:
            raise ValueError(f"new values have shape {new_values.shape}, the heatmap {heatmap.values.shape}")
        self.heatmap = heatmap
        self.target = new_values
        self.rows = list(range(heatmap.shape[0])) if rows is None else list(rows)
        self.new_scale = scale
        kwargs.setdefault("run_time", theme.BEAT)
        # The numbers are updaters of the heatmap's family: keep them running while the values change.
        super().__init__(heatmap, suspend_mobject_updating=False, **kwargs)

    def create_starting_mobject(self):  # interpolate_mobject needs no copy of the heatmap (copies are slow)
        return self.heatmap

    def begin(self):
        hm = self.heatmap
        self.start = hm.values.copy()
        self.start_colors = {(i, j): hm.cells[i][j].get_fill_color() for i in self.rows for j in range(hm.shape[1])}
        self.end_colors = {(i, j): hm._color_for(self.target[i, j], self.new_scale)
                           for i in self.rows for j in range(hm.shape[1])}
        super().begin()

    def interpolate_mobject(self, alpha: float) -> None:
        hm = self.heatmap
        for i in self.rows:
            for j in range(hm.shape[1]):
                a, b = self.start[i, j], self.target[i, j]
                hm.cells[i][j].set_fill(interpolate_color(self.start_colors[i, j], self.end_colors[i, j], alpha), 1)
                finite_a, finite_b = np.isfinite(a), np.isfinite(b)
                if finite_a and finite_b:
                    hm.values[i, j] = a + (b - a) * alpha
                    hm.number_opacity[i, j] = 1.0
                elif finite_a:  # becoming masked: the number fades out, the mark fades in
                    hm.values[i, j] = a if alpha < 1 else b
                    hm.number_opacity[i, j] = 1.0 - alpha
                elif finite_b:  # unmasked: the mark fades out, the number fades in
                    hm.values[i, j] = b
                    hm.number_opacity[i, j] = alpha
                else:
                    hm.values[i, j] = b
                if len(hm.marks):
                    masked_now = (0.0 if finite_a else 1.0) * (1 - alpha) + (0.0 if finite_b else 1.0) * alpha
                    hm.mark(i, j).set_opacity(masked_now)

    def finish(self):
        super().finish()
        self.heatmap.values[self.rows] = self.target[self.rows]
        self.heatmap.color_scale = self.new_scale
