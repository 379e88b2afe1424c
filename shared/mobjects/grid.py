"""A large grid of two-colour cells (e.g. the 59 × 59 table of a + b mod p) drawn as two mobjects.

Thousands of Square mobjects cost seconds per frame; here every lit cell is one sub-path of a single VMobject and
every unlit cell one sub-path of another, so the whole table draws like two shapes. (manim 0.22's ImageMobject
fails with current Pillow, so an image is not an option.)
"""

from __future__ import annotations

import numpy as np
from manim import VGroup, VMobject


def _cells(mask: np.ndarray, cell: float, gap: float) -> VMobject:
    mob = VMobject(stroke_width=0)
    rows, cols = np.nonzero(mask)
    half = (cell - gap) / 2
    for r, c in zip(rows, cols):
        x, y = (c + 0.5) * cell, -(r + 0.5) * cell
        mob.start_new_path(np.array([x - half, y - half, 0.0]))
        mob.add_points_as_corners([np.array([x + half, y - half, 0.0]), np.array([x + half, y + half, 0.0]),
                                   np.array([x - half, y + half, 0.0]), np.array([x - half, y - half, 0.0])])
    return mob


class BinaryGrid(VGroup):
    """Row i, column j of ``mask`` at (j, −i): lit cells in ``on_color``, the rest in ``off_color``.

    ``grid.cell_center(i, j)`` gives a cell's centre after any moving or scaling.
    """

    def __init__(self, mask, on_color, off_color, cell: float = 0.1, gap_fraction: float = 0.12):
        super().__init__()
        mask = np.asarray(mask, dtype=bool)
        self.shape = mask.shape
        gap = cell * gap_fraction
        self.off = _cells(~mask, cell, gap).set_fill(off_color, 1)
        self.on = _cells(mask, cell, gap).set_fill(on_color, 1)
        self.add(self.off, self.on)
        # an invisible frame marking the grid's full extent, so position and size survive empty rows/columns
        self.frame = VMobject(stroke_width=0, fill_opacity=0).set_points_as_corners(
            [[0, 0, 0], [mask.shape[1] * cell, 0, 0], [mask.shape[1] * cell, -mask.shape[0] * cell, 0],
             [0, -mask.shape[0] * cell, 0], [0, 0, 0]])
        self.add(self.frame)

    def cell_center(self, row: int, col: int) -> np.ndarray:
        left, top = self.frame.get_left()[0], self.frame.get_top()[1]
        width = self.frame.width / self.shape[1]
        height = self.frame.height / self.shape[0]
        return np.array([left + (col + 0.5) * width, top - (row + 0.5) * height, 0.0])
