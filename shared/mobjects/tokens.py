"""A row of tokens in rounded boxes, e.g. 狗 咬 人."""

from __future__ import annotations

from manim import RIGHT, RoundedRectangle, VGroup

from shared import theme
from shared.text import zh


class TokenRow(VGroup):
    """Tokens as labelled boxes in a row. ``row[i]`` is a VGroup(box, label); ``row.labels[i]`` the text."""

    def __init__(self, tokens, role: str = "body", color=None, gap_em: float = 0.35, **kwargs):
        super().__init__(**kwargs)
        pal = theme.palette()
        self.labels = [zh(t, role, color=pal.text, prose=False) for t in tokens]
        em = self.labels[0].em_at_creation if self.labels else 1
        height = 1.7 * em
        for label in self.labels:
            box = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=max(label.width + 0.8 * em, height),
                                   height=height, stroke_color=color or pal.muted, stroke_width=theme.STROKE_THIN)
            box.set_fill(pal.panel, 1)
            label.move_to(box)
            self.add(VGroup(box, label))
        self.arrange(RIGHT, buff=gap_em * em)
