"""Aspect presets, safe areas and the regions a scene places its content in.

A scene never pastes coordinates: it asks :func:`current_layout` for regions (``title``, ``figure``, ``caption``,
``panels(n)``) and places mobjects in them. The aspect comes from the render's pixel size, so the same scene re-lays
itself out for 16:9 (1920×1080), 9:16 (1080×1920, ``-r 1080,1920``), 1:1 and the 3:4 ``article`` preset of
article GIFs (``-r 1080,1440``); a pixel size of any other shape is refused.

Manim keeps ``frame_height = 8`` and ``frame_width = 14.2`` whatever ``-r`` says (manim issue #3604), so
:func:`configure_frame` sets the frame size from the pixel size before a scene builds its camera
(:class:`shared.scene.ExplainerScene` calls it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class Aspect:
    """A frame preset: its name, frame size in manim units and the margins content keeps (frame units)."""

    name: str
    frame_width: float
    frame_height: float
    # margins: left, right, bottom, top
    margins: tuple[float, float, float, float]
    # How wide the frame is seen, in CSS px, on the screen it is made for (the legibility rule is measured there).
    display_width_css: float
    # Whether small print (provenance, seeds) is drawn; an article GIF moves it to a caption line under the image.
    shows_fine_print: bool = True

    @property
    def css_px_per_unit(self) -> float:
        return self.display_width_css / self.frame_width

    @property
    def ratio(self) -> float:
        return self.frame_width / self.frame_height

    @property
    def is_portrait(self) -> bool:
        return self.frame_height > self.frame_width


EDGE_MARGIN = 0.35  # frame units kept clear on every edge, so nothing touches the border

# Portrait safe band for 1080×1920 (what 视频号 / Douyin overlay on a short): avoid the top ~250 px (status bar, title overlay), the bottom
# ~500 px (captions, buttons) and the right ~180 px (like/share column). 1920 px = 16 units, so 120 px per unit.
PORTRAIT_PX_PER_UNIT = 1920 / 16
PORTRAIT_UNSAFE_PX = {"top": 250, "bottom": 500, "right": 180}

# Display widths in CSS px. A WeChat article column is about 343 CSS px wide on a phone (375 px screen less the
# page margins); a portrait short fills a 375 px phone; a landscape video fills a phone turned sideways (667 px, the
# narrowest common one); a square post fills the phone's width.
ARTICLE_WIDTH_CSS = 343
PHONE_WIDTH_CSS = 375
PHONE_LANDSCAPE_WIDTH_CSS = 667

LANDSCAPE = Aspect("16:9", 16 * 8 / 9, 8.0, (EDGE_MARGIN,) * 4, PHONE_LANDSCAPE_WIDTH_CSS)
PORTRAIT = Aspect(
    "9:16",
    9.0,
    16.0,
    (
        EDGE_MARGIN,
        PORTRAIT_UNSAFE_PX["right"] / PORTRAIT_PX_PER_UNIT,
        PORTRAIT_UNSAFE_PX["bottom"] / PORTRAIT_PX_PER_UNIT,
        PORTRAIT_UNSAFE_PX["top"] / PORTRAIT_PX_PER_UNIT,
    ),
    PHONE_WIDTH_CSS,
)
SQUARE = Aspect("1:1", 10.0, 10.0, (EDGE_MARGIN,) * 4, PHONE_WIDTH_CSS)
# The article GIF: 3:4, the tallest of the phone-column shapes (1:1, 4:5, 3:4). At 343 CSS px wide it is 457 px
# tall and still fits a 375×667 phone screen with the text above it; against 1:1 it gives the figure ~1.5× the
# height at the same text size, which the measured layouts needed (stacked panels, captions of 2–3 lines ≥ 14 px).
ARTICLE = Aspect("article", 9.0, 12.0, (EDGE_MARGIN,) * 4, ARTICLE_WIDTH_CSS, shows_fine_print=False)
ASPECTS = {a.name: a for a in (LANDSCAPE, PORTRAIT, SQUARE, ARTICLE)}
# Pixel sizes the CLI renders each aspect at, per manim quality flag.
PIXEL_SIZES = {
    "16:9": {"l": (854, 480), "m": (1280, 720), "h": (1920, 1080), "k": (3840, 2160)},
    "9:16": {"l": (480, 854), "m": (720, 1280), "h": (1080, 1920), "k": (2160, 3840)},
    "1:1": {"l": (480, 480), "m": (720, 720), "h": (1080, 1080), "k": (2160, 2160)},
    "article": {"l": (480, 640), "m": (720, 960), "h": (1080, 1440), "k": (2160, 2880)},
}
# A pixel size may differ from its preset's shape by rounding (a GIF scaled to 80 %), not more.
ASPECT_TOLERANCE = 0.02


def aspect_for_pixels(pixel_width: int, pixel_height: int) -> Aspect:
    """The preset of the shape ``pixel_width × pixel_height``.

    Raises
    ------
    ValueError
        When no preset has that shape (within rounding): laying a scene out for one shape and showing it in another
        would stretch it.
    """
    ratio = np.log(pixel_width / pixel_height)
    aspect = min(ASPECTS.values(), key=lambda a: abs(np.log(a.ratio) - ratio))
    if abs(np.log(aspect.ratio) - ratio) > np.log1p(ASPECT_TOLERANCE):
        sizes = ", ".join(f"{name} ({w}×{h})" for name, q in PIXEL_SIZES.items() for w, h in [q["h"]])
        raise ValueError(
            f"{pixel_width}×{pixel_height} px has no layout: scenes are laid out for {sizes}. "
            f"Render at one of those shapes (e.g. -r {PIXEL_SIZES['9:16']['h'][0]},{PIXEL_SIZES['9:16']['h'][1]})."
        )
    return aspect


def configure_frame(config=None) -> Aspect:
    """Set ``config.frame_width/height`` from its pixel size (manim issue #3604) and return the aspect."""
    if config is None:
        from manim import config
    aspect = aspect_for_pixels(config.pixel_width, config.pixel_height)
    config.frame_width = aspect.frame_width
    config.frame_height = aspect.frame_height
    return aspect


@dataclass(frozen=True)
class Region:
    """An axis-aligned box in frame units, with helpers to cut it up and to place mobjects in it."""

    left: float
    right: float
    bottom: float
    top: float

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.top - self.bottom

    @property
    def center(self) -> np.ndarray:
        return np.array([(self.left + self.right) / 2, (self.bottom + self.top) / 2, 0.0])

    def point(self, x: float, y: float) -> np.ndarray:
        """The point at fractions (x, y) of the box: (0, 0) bottom-left, (1, 1) top-right."""
        return np.array([self.left + x * self.width, self.bottom + y * self.height, 0.0])

    @property
    def top_center(self) -> np.ndarray:
        return self.point(0.5, 1.0)

    @property
    def bottom_center(self) -> np.ndarray:
        return self.point(0.5, 0.0)

    def inset(self, dx: float, dy: float | None = None) -> "Region":
        dy = dx if dy is None else dy
        return Region(self.left + dx, self.right - dx, self.bottom + dy, self.top - dy)

    def contains(self, left: float, right: float, bottom: float, top: float, tol: float = 1e-6) -> bool:
        return (
            left >= self.left - tol and right <= self.right + tol and bottom >= self.bottom - tol and top <= self.top + tol
        )

    def rows(self, weights: Iterable[float] | int, gap: float = 0.0) -> list["Region"]:
        """Split top-to-bottom into rows sized by ``weights`` (or ``n`` equal rows), ``gap`` units apart."""
        weights = [1.0] * weights if isinstance(weights, int) else list(weights)
        usable = self.height - gap * (len(weights) - 1)
        regions, top = [], self.top
        for w in weights:
            h = usable * w / sum(weights)
            regions.append(Region(self.left, self.right, top - h, top))
            top -= h + gap
        return regions

    def cols(self, weights: Iterable[float] | int, gap: float = 0.0) -> list["Region"]:
        """Split left-to-right into columns sized by ``weights`` (or ``n`` equal columns), ``gap`` units apart."""
        weights = [1.0] * weights if isinstance(weights, int) else list(weights)
        usable = self.width - gap * (len(weights) - 1)
        regions, left = [], self.left
        for w in weights:
            wd = usable * w / sum(weights)
            regions.append(Region(left, left + wd, self.bottom, self.top))
            left += wd + gap
        return regions

    def split_off(self, height: float, gap: float = 0.0, at: str = "top") -> tuple["Region", "Region"]:
        """Cut in two, top part first: a strip ``height`` tall at the ``top`` or ``bottom``, and the rest."""
        if at == "top":
            return tuple(self.rows([height, self.height - height - gap], gap=gap))
        return tuple(self.rows([self.height - height - gap, height], gap=gap))

    def fit(self, mobject, *, align: str = "center", max_grow: float = 1.0, buff: float = 0.0):
        """Scale ``mobject`` down to fit inside the box less ``buff`` (or up, by at most ``max_grow``), then place it.

        ``align`` is ``center``, ``top``, ``bottom``, ``left`` or ``right``: which edge of the box it sits against.
        Returns the mobject.
        """
        box = self.inset(buff)
        if mobject.width > 0 and mobject.height > 0:
            factor = min(box.width / mobject.width, box.height / mobject.height, max_grow)
            if factor != 1:
                mobject.scale(factor)
        return self.place(mobject, align=align, buff=buff)

    def place(self, mobject, *, align: str = "center", buff: float = 0.0):
        """Move ``mobject`` (without scaling) to the box's centre or against one of its edges."""
        box = self.inset(buff)
        if align == "center":
            mobject.move_to(box.center)
        elif align == "top":
            mobject.move_to(box.top_center, aligned_edge=np.array([0, 1, 0]))
        elif align == "bottom":
            mobject.move_to(box.bottom_center, aligned_edge=np.array([0, -1, 0]))
        elif align == "left":
            mobject.move_to(box.point(0, 0.5), aligned_edge=np.array([-1, 0, 0]))
        elif align == "right":
            mobject.move_to(box.point(1, 0.5), aligned_edge=np.array([1, 0, 0]))
        else:
            raise ValueError(f"align must be center, top, bottom, left or right, not {align!r}")
        return mobject


# Band heights as fractions of the safe area's height: title on top, caption below, figure between.
TITLE_BAND = {"16:9": 0.15, "9:16": 0.11, "1:1": 0.13, "article": 0.085}
CAPTION_BAND = {"16:9": 0.17, "9:16": 0.20, "1:1": 0.18, "article": 0.17}
BAND_GAP = 0.15  # frame units between bands


@dataclass(frozen=True)
class Layout:
    """The regions of one frame. Get it with :func:`current_layout`."""

    aspect: Aspect
    frame: Region
    safe: Region
    title: Region
    figure: Region
    caption: Region
    panel_gap: float = field(default=0.4)
    subtitle: Region | None = None  # the subtitle band, when the render has a voice

    @property
    def is_portrait(self) -> bool:
        return self.aspect.is_portrait

    @property
    def shows_fine_print(self) -> bool:
        return self.aspect.shows_fine_print

    @property
    def stacked(self) -> bool:
        """Whether two panels of the figure go one above the other: in portrait frames and in the square one, whose
        figure is not even twice as wide as it is tall (side by side, each panel would be narrower than tall)."""
        return self.figure.width < 2 * self.figure.height

    def css_px(self, units: float) -> float:
        """A length in frame units as CSS px on the screen this aspect is made for."""
        return units * self.aspect.css_px_per_unit

    def role_at_least(self, css_px: float, roles=("small", "label", "body")) -> str:
        """The smallest of ``roles`` whose text reads at ``css_px`` or more here: figure text a caption talks about
        (values, legends) at 14 CSS px is ``label`` in a video and ``body`` in a 343 px article GIF."""
        for role in roles:
            if self.css_px(self.text_em(role)) >= css_px:
                return role
        return roles[-1]

    def panels(self, n: int, region: Region | None = None, weights: Iterable[float] | None = None) -> list[Region]:
        """``n`` panels in ``region`` (default: the figure): side by side in landscape/square, stacked in portrait."""
        region = region or self.figure
        split = region.rows if self.is_portrait else region.cols
        return split(list(weights) if weights is not None else n, gap=self.panel_gap)

    def text_em(self, role: str) -> float:
        """Em size in frame units of the text role (``title``, ``body``, ``label``, ``small``, ``subtitle``) in this
        aspect."""
        from shared.theme import TEXT_EM

        if role == "subtitle":
            return subtitle_em(self.aspect)
        return TEXT_EM[self.aspect.name][role] * self.aspect.frame_height


# With a voice, subtitles take a band at the bottom of the safe area (in 9:16 just above the platform's bottom UI):
# two lines at the subtitle size, plus padding; the title, figure and caption share what is left above it.
SUBTITLE_LINES = 2
SUBTITLE_LEADING = 1.45  # line pitch in ems
SUBTITLE_PAD_EM = 0.6


def subtitle_line_chars(aspect: Aspect) -> int:
    """At most this many characters on a subtitle line: 16 in 9:16, 22 in 16:9 (16 elsewhere)."""
    from shared.subtitles import DEFAULT_MAX_LINE_CHARS, MAX_LINE_CHARS

    return MAX_LINE_CHARS.get(aspect.name, DEFAULT_MAX_LINE_CHARS)


def subtitle_em(aspect: Aspect) -> float:
    """Em size of subtitles: body size, or less where a full line of CJK characters would not fit the safe width."""
    from shared.theme import TEXT_EM

    ml, mr, _, _ = aspect.margins
    width = aspect.frame_width - ml - mr
    return min(TEXT_EM[aspect.name]["body"] * aspect.frame_height, 0.94 * width / subtitle_line_chars(aspect))


def layout_for(aspect: Aspect, subtitles: bool = False) -> Layout:
    """The regions of ``aspect``; with ``subtitles``, a subtitle band at the bottom of the safe area."""
    w, h = aspect.frame_width / 2, aspect.frame_height / 2
    frame = Region(-w, w, -h, h)
    ml, mr, mb, mt = aspect.margins
    safe = Region(-w + ml, w - mr, -h + mb, h - mt)
    subtitle = None
    content = safe
    if subtitles:
        em = subtitle_em(aspect)
        band = em * (SUBTITLE_LINES * SUBTITLE_LEADING + SUBTITLE_PAD_EM)
        subtitle = Region(safe.left, safe.right, safe.bottom, safe.bottom + band)
        content = Region(safe.left, safe.right, subtitle.top + BAND_GAP, safe.top)
    title_h = content.height * TITLE_BAND[aspect.name]
    caption_h = content.height * CAPTION_BAND[aspect.name]
    title = Region(content.left, content.right, content.top - title_h, content.top)
    caption = Region(content.left, content.right, content.bottom, content.bottom + caption_h)
    figure = Region(content.left, content.right, caption.top + BAND_GAP, title.bottom - BAND_GAP)
    return Layout(aspect, frame, safe, title, figure, caption, subtitle=subtitle)


def current_layout() -> Layout:
    """The layout for the frame manim is rendering now (from ``config``'s pixel size; with a subtitle band when the
    render has a voice, ``shared.voice``)."""
    from manim import config

    from shared.voice import subtitles_from_env

    return layout_for(aspect_for_pixels(config.pixel_width, config.pixel_height), subtitles_from_env())
