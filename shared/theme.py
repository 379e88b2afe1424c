"""Palette, text sizes and timing: every colour, size and duration a scene uses is named here.

The theme is chosen with the environment variable ``EXPLAINER_THEME`` (``dark``, the default, or ``light`` for white
WeChat article pages); the CLI sets it for you. Text sizes are fractions of the frame height per aspect, so a scene
never pastes a font size that only works in one frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

THEME_ENV = "EXPLAINER_THEME"


@dataclass(frozen=True)
class Palette:
    """Semantic colours. Scenes ask for a role (``query``, ``key``...), never for a hex value."""

    name: str
    background: str
    text: str
    muted: str  # secondary text, axes, small print
    grid: str  # faint guides, ticks
    panel: str  # filled boxes behind content
    query: str  # Q vectors, the "current" token
    key: str  # K vectors, the "other" token
    value: str  # V vectors, success, train curves
    accent: str  # emphasis, the thing to look at now
    warning: str  # errors, failure, the wd = 0 run
    extra: str  # a fifth series colour

    @property
    def series(self) -> list[str]:
        """Distinct colours for several series on one chart."""
        return [self.query, self.key, self.value, self.extra, self.accent, self.warning]


DARK = Palette(
    name="dark",
    background="#0F1117",
    text="#ECEFF4",
    muted="#9AA3B2",
    grid="#3A4150",
    panel="#1B1F2A",
    query="#5AA9FF",
    key="#FFA94D",
    value="#51CF66",
    accent="#FFD43B",
    warning="#FF6B6B",
    extra="#CC8DFF",
)

LIGHT = Palette(
    name="light",
    background="#FFFFFF",
    text="#1F2328",
    muted="#57606A",
    grid="#C9D1D9",
    panel="#F3F5F8",
    query="#0B69D4",
    key="#C25E00",
    value="#1A7F37",
    accent="#9A6700",
    warning="#CF222E",
    extra="#8250DF",
)

PALETTES = {p.name: p for p in (DARK, LIGHT)}


def palette(name: str | None = None) -> Palette:
    """The palette named ``name``, else the one ``EXPLAINER_THEME`` selects (default dark)."""
    name = (name or os.environ.get(THEME_ENV) or "dark").strip().lower()
    if name not in PALETTES:
        raise ValueError(f"Unknown theme {name!r} (from {THEME_ENV}); use one of: {', '.join(PALETTES)}.")
    return PALETTES[name]


# --- text sizes -------------------------------------------------------------------------------------------------
# Legibility is measured in CSS px on the screen an aspect is made for (``Aspect.display_width_css``: an article GIF
# is 343 CSS px wide on a phone, a portrait short 375, a landscape video 667). Article body text is 15–17 CSS px and
# below about 11 a reader squints, so: titles, captions and body text ≥ 14 CSS px; labels, ticks, cell values, small
# print ≥ 11 CSS px.
MIN_TEXT_CSS = {"title": 14.0, "body": 14.0, "label": 11.0, "small": 11.0, "subtitle": 14.0}

# Em size (the height of a CJK character box) as a fraction of the frame height, per aspect. At the display widths
# above: 16:9 body 19.7, small 15.6 CSS px; 9:16 body 21.5, small 16.7; 1:1 body 15.0, small 11.7; article body 15.8,
# label 12.4, small 11.7 (a text scaled down to fit may lose ~5 % before it fails the check).
TEXT_EM = {
    #         title    body     label    small
    "16:9": {"title": 1 / 13, "body": 1 / 19, "label": 1 / 22, "small": 1 / 24},
    "9:16": {"title": 1 / 22, "body": 1 / 31, "label": 1 / 36, "small": 1 / 40},
    "1:1": {"title": 1 / 17, "body": 1 / 25, "label": 1 / 29, "small": 1 / 32},
    "article": {"title": 1 / 21, "body": 1 / 29, "label": 1 / 37, "small": 1 / 39},
}
TEXT_ROLES = ("title", "body", "label", "small", "subtitle")  # subtitle: sized by shared.layout.subtitle_em
# Roles that count as reading lines (labels on charts and small print don't).
PROSE_ROLES = ("title", "body")

# At most this many characters per line (a CJK character counts 1, a Latin one 1/2) and prose lines on screen.
MAX_LINE_CHARS = {"16:9": 18, "9:16": 14, "1:1": 16, "article": 18}
MAX_PROSE_LINES = 4

# --- strokes and shapes -----------------------------------------------------------------------------------------
STROKE_THIN = 2.0
STROKE = 4.0
STROKE_BOLD = 6.0
VECTOR_TIP = 0.22  # arrow tip length, frame units
CORNER_RADIUS = 0.12

# --- timing (seconds) -------------------------------------------------------------------------------------------
BEAT = 1.0  # a normal animation
QUICK = 0.5  # a small change
SLOW = 2.0  # a motion the eye should follow
HOLD = 1.5  # let a result sit on screen
DEFAULT_WAIT = 1.0  # manim's default wait
READ_SECONDS_PER_CHAR = 0.12  # reading time for a caption, roughly 8 Chinese characters a second
MAX_SECTION_SECONDS = 20.0  # a section is one article GIF (≤ 300 frames at 15 fps) or one short cut


def reading_time(text: str) -> float:
    """Seconds to leave a caption of ``text`` on screen: at least a beat, else ~8 characters per second."""
    return max(BEAT, READ_SECONDS_PER_CHAR * len(text.replace(" ", "")))
