"""The only way scenes make text: Chinese labels, mixed markup and formulas, all through Typst.

Every string is typeset with the vendored font ``Explainer Sans SC`` (a subset of Noto Sans CJK SC in
``shared/fonts/``) and Typst's embedded New Computer Modern Math; system fonts are ignored, so a frame is identical
on every machine, with or without a CJK font installed. Before typesetting, every non-ASCII character is checked
against the font: a character it lacks raises :class:`MissingGlyphError` naming it (manim would draw an empty box).

Sizes are roles (``title``, ``body``, ``label``, ``small``) resolved per aspect by ``shared.theme.TEXT_EM``. Each text
mobject remembers its role and em size, so the layout check can measure it after any scaling (:func:`em_size`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import string
import unicodedata
from pathlib import Path

import numpy as np
from manim import VGroup, VMobject
from manim.mobject.text import typst_mobject
from manim.mobject.text.typst_mobject import MathTypst, Typst
from manim.utils import typst_file_writing

from shared import theme
from shared.layout import current_layout
from shared.numbers import Drawn, format_number, split_marked, untraced_digits

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT_FAMILY = "Explainer Sans SC"
FONT_FILES = {"regular": FONT_DIR / "ExplainerSansSC-Regular.otf", "bold": FONT_DIR / "ExplainerSansSC-Bold.otf"}
MATH_FONT = "New Computer Modern Math"  # embedded in the typst package
# Manim's Typst font_size is 96 × the em size in frame units (a 1em box at font_size 48 is 0.5 units tall).
FONT_SIZE_PER_EM_UNIT = 96.0
LINE_LEADING_EM = 0.45
REGENERATE_FONT = "python scripts/make_font_subset.py"


class MissingGlyphError(ValueError):
    """Raised for text with characters the vendored font cannot draw."""


# --- fonts ---------------------------------------------------------------------------------------------------------


@functools.cache
def font_codepoints() -> frozenset[int]:
    """Code points the vendored font draws (its cmap)."""
    from fontTools.ttLib import TTFont

    missing = [p for p in FONT_FILES.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"Vendored font missing: {', '.join(map(str, missing))}. Restore it from git or run `{REGENERATE_FONT}`."
        )
    cmap = TTFont(FONT_FILES["regular"], lazy=True).getBestCmap()
    return frozenset(cmap)


@functools.cache
def _font_digest() -> str:
    digest = hashlib.sha256()
    for path in FONT_FILES.values():
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@functools.cache
def _typst_fonts():
    import typst

    return typst.Fonts(include_system_fonts=False, include_embedded_fonts=True, font_paths=[str(FONT_DIR)])


def _compile_with_vendored_fonts(typst_code: str, preamble: str = "", text_size: float = 10, font_paths=None) -> Path:
    """Manim's ``typst_to_svg_file``, but with system fonts ignored and the vendored ones loaded once.

    Manim's helper offers no ``ignore_system_fonts``; without it an installed font of the same family could change
    the output. The font digest goes into the cached file's key, so a new font subset re-typesets everything.
    """
    import typst
    from manim import config

    source = typst_file_writing.TYPST_TEMPLATE.format(text_size=text_size, preamble=preamble, body=typst_code)
    key = hashlib.sha256(f"{_font_digest()}\n{source}".encode()).hexdigest()[:16]
    folder = config.get_dir("tex_dir")
    folder.mkdir(parents=True, exist_ok=True)
    svg = folder / f"{key}.svg"
    if not svg.exists():
        data = typst.compile(source.encode(), format="svg", font_paths=_typst_fonts())
        tmp = svg.with_suffix(f".{np.random.randint(1 << 30)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(svg)
    return _private_link(svg)


@functools.cache
def _private_dir() -> Path:
    import atexit
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="explainer-svg-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _private_link(svg: Path) -> Path:
    """``svg`` seen through a path of this process's own. manim's SVG loader writes ``<name>_.svg`` beside the file
    and deletes it after parsing, so two processes loading one cached file (parallel renders, test workers) would
    delete each other's."""
    private = _private_dir() / svg.name
    if not private.exists():
        try:
            os.link(svg, private)
        except OSError:  # another file system: a copy does as well
            shutil.copyfile(svg, private)
    return private


typst_mobject.typst_to_svg_file = _compile_with_vendored_fonts


def check_glyphs(text: str) -> None:
    """Raise :class:`MissingGlyphError` if the vendored font lacks any character of ``text``.

    ASCII is always present (Typst markup and math names are ASCII); everything else is looked up in the font.
    """
    have = font_codepoints()
    lacking = sorted({ch for ch in text if ord(ch) > 0x7E and ch not in "\n\t" and ord(ch) not in have})
    if lacking:
        listed = ", ".join(f"'{ch}' (U+{ord(ch):04X} {unicodedata.name(ch, '?')})" for ch in lacking)
        raise MissingGlyphError(
            f"The vendored font '{FONT_FAMILY}' has no glyph for {listed} in {text!r}. "
            f"Use another character (for math, a Typst name such as `theta`), or add it to EXTRA_CHARS in "
            f"scripts/make_font_subset.py, run `{REGENERATE_FONT}` and commit shared/fonts/."
        )


# --- text mobjects -------------------------------------------------------------------------------------------------


def _typst_string(text: str) -> str:
    """``text`` as a Typst string literal, so no character is read as markup."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'#"{escaped}"'


def line_chars(line: str) -> float:
    """Width of a line in Chinese characters: a wide (CJK) character counts 1, anything else 1/2."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.5 for ch in line)


def _preamble(bold: bool) -> str:
    weight = "bold" if bold else "regular"
    return (
        f'#set text(font: "{FONT_FAMILY}", weight: "{weight}", fallback: false, top-edge: "cap-height", '
        f'bottom-edge: "baseline")\n'
        f"#set par(leading: {LINE_LEADING_EM}em)\n"
        f'#show math.equation: set text(font: ("{MATH_FONT}", "{FONT_FAMILY}"), fallback: false)'
    )


TEXT_TAGS = ("text_role", "em_at_creation", "width_at_creation", "source_text", "prose_lines", "drawn_numbers",
             "untraced")


def _forget_parsed_paths(mob: VMobject) -> VMobject:
    """Drop each glyph's parsed SVG path (``path_obj``): manim reads it only while making the glyph's points, but
    every copy (each FadeIn, FadeOut and Transform copies its mobjects) deep-copied it, most of a text's copy time:
    rope's whole scene ran its code, drawing nothing, in 4.9 s instead of 8.4 s."""
    for part in mob.get_family():
        if getattr(part, "path_obj", None) is not None:
            part.path_obj = None
    return mob


def _tag(mob: VMobject, role: str, em: float, source: str, prose_lines: int, prose: bool | None = None,
         drawn: tuple[Drawn, ...] = (), untraced: str = "") -> VMobject:
    _forget_parsed_paths(mob)
    mob.text_role = role
    mob.em_at_creation = em
    mob.width_at_creation = mob.width
    mob.source_text = source
    prose = role in theme.PROSE_ROLES if prose is None else prose
    mob.prose_lines = prose_lines if prose else 0
    mob.drawn_numbers = tuple(drawn)  # the recorded numbers this text draws (shared.numbers)
    mob.untraced = untraced  # digits it draws that no recording call made (the layout check reports them)
    return mob


def text_numbers(mob) -> tuple[Drawn, ...]:
    """The recorded numbers a text mobject draws now (a LiveNumber's change from frame to frame)."""
    current = getattr(mob, "current_numbers", None)
    return tuple(current()) if current else getattr(mob, "drawn_numbers", ())


# Typst code that is not drawn as written: the arguments of a function call such as #text(fill: rgb("#5AA9FF")).
_MARKUP_CALL = re.compile(r'#[A-Za-z][\w.-]*\((?:[^()"]|"[^"]*"|\((?:[^()"]|"[^"]*")*\))*\)')


def _markup_visible(markup: str) -> str:
    """Roughly the characters Typst markup draws (for messages and reading time): calls, brackets, $ removed."""
    text = _MARKUP_CALL.sub("", markup)
    return re.sub(r"[$\[\]\\]|#\w+", "", text)


def _role_em(role: str) -> float:
    if role not in theme.TEXT_ROLES:
        raise ValueError(f"Unknown text role {role!r}; use one of {', '.join(theme.TEXT_ROLES)}.")
    return current_layout().text_em(role)


def _check_line_lengths(text: str, role: str) -> None:
    """Refuse lines wider than a phone reads comfortably: ``theme.MAX_LINE_CHARS`` at body size, proportionally
    more for the smaller roles (the limit is the physical width of the line)."""
    layout = current_layout()
    aspect = layout.aspect.name
    if role == "subtitle":  # a subtitle line is counted in characters, every one (shared.subtitles)
        from shared.layout import subtitle_line_chars

        limit, width = subtitle_line_chars(layout.aspect), len
    else:
        limit = theme.MAX_LINE_CHARS[aspect] * layout.text_em("body") / layout.text_em(role)
        width = line_chars
    for line in text.split("\n"):
        if width(line) > limit + 1e-9:
            raise ValueError(
                f"Line {line!r} is {width(line):g} characters wide; at most {limit:.0f} fit a phone as {role} "
                f"text in {aspect}. Break it with '\\n' or shorten it."
            )


def zh(text: str, role: str = "body", *, color=None, bold: bool = False, prose: bool | None = None) -> Typst:
    """Plain text (Chinese, English, numbers): nothing in it is read as markup.

    Parameters
    ----------
    text
        The text; ``\\n`` breaks lines.
    role
        ``title``, ``body``, ``label`` or ``small``: sets the size for the current aspect (``shared.theme.TEXT_EM``).
    color
        Any manim colour; default the palette's text colour.
    bold
        Bold weight of the vendored font.
    prose
        Whether it counts as reading lines on screen (``theme.MAX_PROSE_LINES``); default: title and body do,
        labels and small print don't. Pass False for body-sized words that are part of a figure (tokens).
    """
    plain, spans = split_marked(text)
    check_glyphs(plain)
    _check_line_lengths(plain, role)
    mob = _typeset(_typst_string(plain), role, color=color, bold=bold)
    return _tag(mob, role, mob.em_at_creation, plain, plain.count("\n") + 1, prose,
                tuple(d for *_, d in spans), untraced_digits(plain, spans))


def rich(markup: str, role: str = "body", *, color=None, bold: bool = False, prose: bool | None = None) -> Typst:
    """Typst markup mixing Chinese and inline math, e.g. ``"位置 $m$ 转过 $m theta$"``.

    Colour parts with ``#text(fill: rgb("#hex"))[...]``; uncoloured parts take ``color``. ``\n`` breaks the line
    (as in :func:`zh`; in Typst a bare newline would only be a space). Numbers go in marked (``shared.numbers``).
    """
    markup, spans = split_marked(markup)
    check_glyphs(markup)
    ignore = [m.span() for m in _MARKUP_CALL.finditer(markup)]
    untraced = untraced_digits(markup, spans, ignore)
    markup = re.sub(r"(?<!\\)\n", "\\\\\n", markup)  # a newline not already escaped → Typst line break
    mob = _typeset(markup, role, color=color, bold=bold)
    visible = _markup_visible(markup)
    return _tag(mob, role, mob.em_at_creation, visible, visible.count("\n") + 1, prose,
                tuple(d for *_, d in spans), untraced)


def _typeset(markup: str, role: str, *, color=None, bold: bool = False) -> Typst:
    em = _role_em(role)
    mob = Typst(markup, typst_preamble=_preamble(bold), font_size=em * FONT_SIZE_PER_EM_UNIT,
                color=color or theme.palette().text)
    mob.em_at_creation = em
    return mob


def formula(math: str, role: str = "body", *, color=None) -> MathTypst:
    """Display math in Typst syntax, e.g. ``"theta_i = 10000^(-2i \\/ d)"``; Chinese goes in quotes.

    ``{{ part : name }}`` groups can be picked out later with ``.select(name)`` (manim's MathTypst). Numbers go in
    marked (``shared.numbers``): ``f"theta_i = {num('base', 10000)}^(..)"``.
    """
    math, spans = split_marked(math)
    check_glyphs(math)
    em = _role_em(role)
    color = color or theme.palette().text
    mob = MathTypst(math, typst_preamble=_preamble(False), font_size=em * FONT_SIZE_PER_EM_UNIT, color=color)
    return _tag(mob, role, em, math, 1, None, tuple(d for *_, d in spans), untraced_digits(math, spans))


def em_size(mob: VMobject) -> float:
    """The em size in frame units a text mobject has now (after any scaling since it was made)."""
    if hasattr(mob, "em_now"):
        return mob.em_now
    if mob.width_at_creation <= 0:
        return mob.em_at_creation
    return mob.em_at_creation * mob.width / mob.width_at_creation


def is_text(mob) -> bool:
    return hasattr(mob, "text_role")


# --- numbers that change every frame --------------------------------------------------------------------------------

# Characters a LiveNumber can draw (one Typst render, split into glyphs): digits, signs, Latin and a few Greek.
NUMBER_CHARS = "0123456789.,:+-−=×·/()[]|%°abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZθΔλσμε"


@functools.cache
def _glyph_table(role: str, aspect_name: str, em: float) -> dict[str, tuple[np.ndarray, float]]:
    """For each character of ``NUMBER_CHARS``: its outline points with the origin at its left end on the baseline,
    and its advance width (from the font's hmtx), at em size ``em``."""
    from fontTools.ttLib import TTFont

    mob = Typst(_typst_string(NUMBER_CHARS), typst_preamble=_preamble(False), font_size=em * FONT_SIZE_PER_EM_UNIT)
    glyphs = mob.submobjects
    if len(glyphs) != len(NUMBER_CHARS):
        raise RuntimeError(f"Expected {len(NUMBER_CHARS)} glyphs for the number table, Typst gave {len(glyphs)}.")
    font = TTFont(FONT_FILES["regular"], lazy=True)
    cmap, hmtx, upem = font.getBestCmap(), font["hmtx"], font["head"].unitsPerEm
    baseline = glyphs[0].get_bottom()[1]  # '0' sits on the baseline
    table = {}
    for ch, glyph in zip(NUMBER_CHARS, glyphs):
        advance_units, left_bearing = hmtx[cmap[ord(ch)]]
        advance = advance_units / upem * em
        # Put the glyph's ink where the font puts it: left edge at its left side bearing, on the baseline.
        origin = np.array([glyph.get_left()[0] - left_bearing / upem * em, baseline, 0.0])
        table[ch] = (glyph.points - origin, advance)
    return table


class LiveNumber(VGroup):
    """A recorded number redrawn every frame from cached glyph outlines (no typesetting, no mobject copies per frame).

    ``LiveNumber(lambda: value, "m = {:.1f}", name="position")`` keeps showing ``value`` as it changes and reports it
    as the recorded number ``name`` on every settled frame (``shared.numbers``): the scene's inventory lists the values
    it settled on. ``fmt`` has one field and may add characters of ``NUMBER_CHARS`` but no digits of its own; or pass
    ``formatter`` (value → string) instead. Move, scale or ``next_to`` it like any mobject: an invisible baseline
    marker carries its position and size from frame to frame.
    """

    def __init__(self, value, fmt: str = "{:.2f}", role: str = "label", *, name: str, color=None, formatter=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not name:
            raise ValueError("A LiveNumber needs a name: the recorded number it shows.")
        self.value_fn = value if callable(value) else (lambda v=value: v)
        self.number_name = name
        if formatter is None:
            fields = [f for f in string.Formatter().parse(fmt) if f[1] is not None]
            if len(fields) != 1:
                raise ValueError(f"LiveNumber format {fmt!r} needs exactly one field, e.g. 'm = {{:.1f}}'.")
            before, field, spec, conversion = fields[0]
            after = fmt[fmt.rindex("}") + 1:]
            value_fmt = "{" + (f"!{conversion}" if conversion else "") + f":{spec}}}"
            format_number(0, before + after)  # refuses digits of the format's own
            formatter = lambda v: format_number(v, value_fmt)  # noqa: E731
            self._affixes = (before, after)
        else:
            self._affixes = ("", "")
        self.formatter = formatter
        self.fmt = fmt
        em = _role_em(role)
        self._table = _glyph_table(role, current_layout().aspect.name, em)
        # Left end at the text's origin on the baseline; its length is 1/100 em, so it tracks scaling.
        self.marker = VMobject().set_points_as_corners([np.zeros(3), np.array([em / 100, 0, 0])])
        self.marker.set_stroke(opacity=0)
        self.ink = VMobject(fill_color=color or theme.palette().text, fill_opacity=1, stroke_width=0)
        self._em = em
        self.add(self.marker, self.ink)
        _tag(self, role, em, "", 0)
        self._rebuild()
        self.add_updater(lambda m: m._rebuild())

    def __deepcopy__(self, memo):
        # Animations copy their mobjects; the glyph table is read-only and shared, so never copy it.
        memo[id(self._table)] = self._table
        return super().__deepcopy__(memo)

    def value_text(self) -> str:
        return self.formatter(self.value_fn())

    def text(self) -> str:
        before, after = self._affixes
        return f"{before}{self.value_text()}{after}"

    def current_numbers(self) -> tuple[Drawn, ...]:
        """What it draws now, as a recorded number (nothing when it draws no digits, e.g. a masked cell)."""
        shown = self.value_text()
        return (Drawn(self.number_name, self.value_fn(), shown),) if shown else ()

    @property
    def em_now(self) -> float:
        return float(np.linalg.norm(self.marker.get_end() - self.marker.get_start())) * 100

    def _rebuild(self):
        text = self.text()
        self.source_text = text
        lacking = [ch for ch in text if ch not in self._table and ch != " "]
        if lacking:
            raise ValueError(f"LiveNumber can only draw {NUMBER_CHARS!r} and spaces, not {''.join(lacking)!r}.")
        scale = self.em_now / self._em
        origin = self.marker.get_start()
        outlines, x = [], 0.0
        for ch in text:
            if ch == " ":
                x += self._table["0"][1] / 2
                continue
            points, advance = self._table[ch]
            outlines.append(points + np.array([x, 0.0, 0.0]))
            x += advance
        self.ink.points = np.concatenate(outlines) * scale + origin if outlines else np.zeros((0, 3))
        return self
