"""Numbers drawn on screen: each one carries its name and value from where it was computed to the frame.

The promise of the project is that every number on screen is true. This module makes that checkable:

- :func:`num` formats one value and returns the string with an invisible mark around it that names the value;
  :func:`fill` does the same for every field of a template (``fill("走了 {steps} 步", steps=40)``); :func:`term`
  marks digits that are part of a name, not a quantity (``term("Llama-3-8B")``). The marked strings go into any text
  factory of :mod:`shared.text` (``zh``, ``rich``, ``formula``, chart ticks, heatmap labels), which strips the marks,
  typesets the plain text and remembers which characters came from which recorded value.
- :class:`shared.text.LiveNumber` takes a ``name`` and reports its current value the same way.
- :class:`shared.scene.ExplainerScene` records, on every settled frame, the numbers of every text on screen, per
  section: ``name → (value, exact string)``. That inventory is what manifests list as the numbers a scene showed.
- The layout check (:mod:`shared.checks`) fails on a digit drawn on a settled frame that no recording call made: a
  number typed by hand, or one formatted separately from the value it claims to show.

A mark is ``OPEN + json([name, value, kind]) + SEP + text + CLOSE``, with three code points of Unicode's private use
area that no font draws; marked strings survive f-strings and concatenation, so scenes compose text freely.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any

OPEN, SEP, CLOSE = "\ue000", "\ue001", "\ue002"
_MARK = re.compile(f"{OPEN}([^{SEP}]*){SEP}([^{CLOSE}]*){CLOSE}")
_DIGIT = re.compile(r"\d")
MINUS = "−"  # U+2212: a real minus sign, as typeset maths has it (a hyphen reads as a dash)


@dataclass(frozen=True)
class Drawn:
    """One recorded number: its name, the value it came from, and the exact string drawn.

    ``kind`` is ``"number"`` for a quantity and ``"term"`` for digits that belong to a name (``Llama-3-8B``, ``H100``).
    """

    name: str
    value: Any
    text: str
    kind: str = "number"


def jsonable(value):
    """``value`` with numpy scalars and arrays turned into Python numbers and lists (JSON can hold it)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def _literal_digits(fmt: str) -> str:
    return "".join(_DIGIT.findall("".join(literal for literal, *_ in string.Formatter().parse(fmt))))


def format_number(value, fmt: str = "{}") -> str:
    """``fmt.format(value)`` with a real minus sign before digits, and "−0.00" written "0.00" (it reads as another
    number). ``fmt`` may add words or symbols (``"÷{:g}"``) but no digits of its own: those would not be the value's."""
    literal = _literal_digits(fmt)
    if literal:
        raise ValueError(f"Format {fmt!r} writes digits ({literal!r}) that are not the value's; pass them as values.")
    text = fmt.format(value)
    text = re.sub(r"-(?=[\d.])", MINUS, text)
    if re.fullmatch(f"{MINUS}[0.]*", text.strip()) and _DIGIT.search(text):
        text = text.replace(MINUS, "", 1)
    return text


def mark(drawn: Drawn) -> str:
    """The marked string of a recorded number (what :func:`num` returns for it)."""
    key = json.dumps([drawn.name, jsonable(drawn.value), drawn.kind], ensure_ascii=False, allow_nan=True)
    if any(ch in key for ch in (OPEN, SEP, CLOSE)):
        raise ValueError(f"Number name or value {drawn.name!r} contains a reserved character.")
    return f"{OPEN}{key}{SEP}{drawn.text}{CLOSE}"


def num(name: str, value, fmt: str = "{}") -> str:
    """The string for ``value`` formatted with ``fmt``, marked as the recorded number ``name``.

    >>> zh(f"d = {num('head_dim', CFG.head_dim)}")       # draws "d = 128" and records head_dim = 128 → "128"
    """
    if not name:
        raise ValueError("A drawn number needs a name (what it is: 'head_dim', 'final_test_acc').")
    return mark(Drawn(name, value, format_number(value, fmt)))


def num_vector(name: str, values, fmt: str = "{:.2f}") -> str:
    """A vector drawn as ``(0.41, −1.20, …)``, marked as one recorded number (its value the list)."""
    values = [float(v) for v in values]
    return mark(Drawn(name, values, "(" + ", ".join(format_number(v, fmt) for v in values) + ")"))


def term(text: str) -> str:
    """``text`` marked as a name whose digits are not a quantity (a model, a GPU, a format): ``term("FP8")``."""
    return mark(Drawn(text, text, text, "term"))


def fill(template: str, *, prefix: str = "", **values) -> str:
    """``template`` with each ``{field:spec}`` replaced by :func:`num` of ``values[field]`` (named ``prefix + field``).

    A value that is already a marked string (from :func:`num` or :func:`term`) is inserted as it is.

    >>> fill("走了 {steps} 步，只转了 {angle:.2f}°", steps=40, angle=2.29)
    """
    out = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        out.append(literal)
        if field is None:
            continue
        if field not in values:
            raise KeyError(f"Template {template!r} needs a value for {{{field}}}.")
        value = values[field]
        if isinstance(value, str) and OPEN in value:
            out.append(value)
        else:
            out.append(num(prefix + field, value, "{" + (f"!{conversion}" if conversion else "") + f":{spec}}}"))
    return "".join(out)


def split_marked(text: str) -> tuple[str, list[tuple[int, int, Drawn]]]:
    """Remove the marks: the plain text, and ``(start, end, Drawn)`` for each marked span of it."""
    plain, spans, last = [], [], 0
    position = 0
    for match in _MARK.finditer(text):
        before = text[last : match.start()]
        plain.append(before)
        position += len(before)
        name, value, kind = json.loads(match.group(1))
        shown = match.group(2)
        spans.append((position, position + len(shown), Drawn(name, value, shown, kind)))
        plain.append(shown)
        position += len(shown)
        last = match.end()
    plain.append(text[last:])
    result = "".join(plain)
    if any(ch in result for ch in (OPEN, SEP, CLOSE)):
        raise ValueError(f"Broken number mark in {text!r} (a marked string was cut).")
    return result, spans


def strip_marks(text: str) -> str:
    """The plain text of a possibly marked string (for file names, section names, logs)."""
    return split_marked(text)[0]


def untraced_digits(plain: str, spans, ignore: list[tuple[int, int]] = ()) -> str:
    """The digits of ``plain`` outside every marked span (and outside ``ignore`` ranges, e.g. markup colours)."""
    covered = [False] * len(plain)
    for start, end, *_ in [*spans, *ignore]:
        for i in range(start, end):
            covered[i] = True
    return "".join(ch for i, ch in enumerate(plain) if ch.isdigit() and not covered[i])
