"""Block diagrams: labelled boxes, ⊕ circles, arrows between them and titled frames around groups.

    enc = BlockStack(["自注意力", "FFN"], width=3, color=pal.query, title="编码器")
    arrow = connect(tokens, enc, color=pal.muted)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from manim import DOWN, LEFT, RIGHT, UP, Arrow, Circle, Line, RoundedRectangle, VGroup, VMobject

from shared import theme
from shared.text import zh

PAD_EM = 0.8  # a block's label to its border, in ems (each side together)
ARROW_TIP_FRACTION = 0.6  # arrow tips in diagrams are this fraction of theme.VECTOR_TIP


class Block(VGroup):
    """A rounded box with a centred label: one sublayer in a block diagram. ``block.box``, ``block.label``."""

    def __init__(self, text: str, *, color=None, width: float | None = None, height: float | None = None,
                 role: str = "label", fill_opacity: float = 1.0, text_color=None, pad_em: float = PAD_EM, **kwargs):
        super().__init__(**kwargs)
        pal = theme.palette()
        self.label = zh(text, role, color=text_color or pal.text, prose=False)
        em = self.label.em_at_creation
        width = max(width or 0.0, self.label.width + pad_em * em)
        height = max(height or 0.0, self.label.height + pad_em * em)
        self.box = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=width, height=height,
                                    stroke_color=color or pal.muted, stroke_width=theme.STROKE_THIN)
        self.box.set_fill(pal.panel, fill_opacity)
        self.label.move_to(self.box)
        self.add(self.box, self.label)


class AddCircle(VGroup):
    """⊕, drawn with lines (the residual add)."""

    def __init__(self, radius: float, *, color=None, **kwargs):
        super().__init__(**kwargs)
        pal = theme.palette()
        color = color or pal.text
        circle = Circle(radius=radius, color=color, stroke_width=theme.STROKE_THIN).set_fill(pal.panel, 1)
        cross = VGroup(Line(LEFT * radius, RIGHT * radius), Line(DOWN * radius, UP * radius))
        cross.set_stroke(color, theme.STROKE_THIN)
        self.add(circle, cross)


def arrow(start, end, *, color=None, stroke_width: float = theme.STROKE_THIN) -> Arrow:
    """A thin diagram arrow from ``start`` to ``end`` (points)."""
    length = float(np.linalg.norm(np.asarray(end) - np.asarray(start)))
    tip = min(theme.VECTOR_TIP * ARROW_TIP_FRACTION, 0.45 * length) if length > 0 else 0.01
    return Arrow(start, end, buff=0, color=color or theme.palette().muted, stroke_width=stroke_width,
                 tip_length=tip, max_tip_length_to_length_ratio=0.5, max_stroke_width_to_length_ratio=100)


def connect(a, b, *, color=None, buff: float = 0.08) -> Arrow:
    """An arrow from mobject ``a`` to mobject ``b``, edge to edge along the axis on which they are farther apart."""
    delta = b.get_center() - a.get_center()
    if abs(delta[0]) > abs(delta[1]):
        direction = RIGHT if delta[0] > 0 else LEFT
    else:
        direction = UP if delta[1] > 0 else DOWN
    start = a.get_edge_center(direction) + direction * buff
    end = b.get_edge_center(-direction) - direction * buff
    # Straight along the chosen axis: keep the shared coordinate of the narrower of the two.
    axis = 1 if direction[0] != 0 else 0
    if a.length_over_dim(axis) <= b.length_over_dim(axis):
        end[axis] = start[axis]
    else:
        start[axis] = end[axis]
    return arrow(start, end, color=color)


def elbow(points: Sequence, *, color=None, with_tip: bool = True) -> VGroup:
    """A polyline through ``points`` (e.g. a skip connection going around a block), with an arrow tip at the end."""
    pal = theme.palette()
    color = color or pal.muted
    pts = [np.asarray(p, dtype=float) for p in points]
    path = VMobject().set_points_as_corners(pts[:-1] if with_tip else pts).set_stroke(color, theme.STROKE_THIN)
    group = VGroup(path)
    if with_tip:
        group.add(arrow(pts[-2], pts[-1], color=color))
    return group


def titled_frame(content, title: str, *, color=None, role: str = "label", buff: float = 0.25) -> VGroup:
    """A rounded frame around ``content`` with ``title`` inside its top-left corner. Returns VGroup(frame, title)."""
    pal = theme.palette()
    label = zh(title, role, color=color or pal.muted, prose=False)
    top_room = label.height + buff
    width = content.width + 2 * buff
    height = content.height + 2 * buff + top_room
    frame = RoundedRectangle(corner_radius=theme.CORNER_RADIUS, width=width, height=height,
                             stroke_color=color or pal.muted, stroke_width=theme.STROKE_THIN)
    frame.move_to(content.get_center() + UP * top_room / 2)
    label.move_to(frame.get_corner(UP + LEFT) + np.array([buff, -buff, 0]), aligned_edge=UP + LEFT)
    return VGroup(frame, label)


class BlockStack(VGroup):
    """Blocks stacked bottom → top with arrows between them, inside a titled frame (an encoder or decoder layer).

    ``stack.blocks[i]`` is the i-th block from the bottom; ``stack.frame``, ``stack.title``.
    """

    def __init__(self, labels: Sequence[str], *, width: float | None = None, color=None, title: str = "",
                 gap: float = 0.35, block_height: float | None = None, role: str = "label", direction=UP,
                 pad_em: float = PAD_EM, frame_buff: float = 0.25, arrows: bool = True, **kwargs):
        super().__init__(**kwargs)
        if width is None:  # all blocks as wide as the widest label needs
            width = max(Block(t, role=role, pad_em=pad_em).width for t in labels)
        self.blocks = VGroup(*(Block(t, color=color, width=width, height=block_height, role=role, pad_em=pad_em)
                               for t in labels))
        self.blocks.arrange(direction, buff=gap)
        # Arrows between blocks (leave them out when the blocks are too close for an arrow to read as one).
        pairs = zip(self.blocks[:-1], self.blocks[1:]) if arrows else ()
        self.arrows = VGroup(*(connect(a, b) for a, b in pairs))
        self.add(self.blocks, self.arrows)
        if title:
            self.frame, self.title = titled_frame(self.blocks, title, color=color, role=role, buff=frame_buff)
            self.add(self.frame, self.title)
