"""Subtitles for narrated videos: sentences split into cues a phone viewer can read, timed from the audio.

Rules (a Chinese short video is expected to carry subtitles; many viewers watch muted):

- a cue belongs to one sentence (split at Chinese sentence punctuation) and is timed inside that sentence's audio:
  its first cue starts when the sentence starts, its last ends when it ends, the ones between share the time in
  proportion to what they say;
- at most ``max_chars`` characters a line (16 in 9:16, 22 in 16:9, every character counted, spaces too), at most
  two lines and seven seconds a cue;
- a line breaks only between words (jieba's segmentation of the sentence), never inside a number or an English term
  (a run of Latin letters, digits and their joiners such as ``Llama-3-8B`` or ``1.35``), and preferably after a
  comma; a line's closing comma or full stop is dropped, as subtitles are written.

Numbers stay marked (``shared.numbers``), so a subtitle drawn on screen records the numbers it shows like any text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from shared.numbers import mark, split_marked

MAX_LINE_CHARS = {"9:16": 16, "16:9": 22}
DEFAULT_MAX_LINE_CHARS = 16
MAX_LINES = 2
MAX_CUE_SECONDS = 7.0
_CLAUSE_END = "，：；,:;"
_DROP_AT_LINE_END = "，。、；,.;："
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+×·/%°'_]*[A-Za-z0-9%°]|[A-Za-z0-9]")


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    lines: tuple[str, ...]  # plain text, what the .srt holds
    marked: tuple[str, ...]  # the same lines with number marks, for drawing

    @property
    def duration(self) -> float:
        return self.end - self.start


@functools.cache
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def words(sentence: str) -> list[tuple[int, int]]:
    """Unbreakable pieces of a plain sentence as (start, end): jieba's words, with runs of Latin letters and digits
    (terms and numbers) and ``atomic`` spans merged into one piece."""
    return _pieces(sentence, [])


def _pieces(plain: str, atomic: list[tuple[int, int]]) -> list[tuple[int, int]]:
    bounds, position = [], 0
    for token in _jieba().lcut(plain, HMM=True):
        bounds.append((position, position + len(token)))
        position += len(token)
    locked = [m.span() for m in _TERM.finditer(plain)] + list(atomic)
    merged: list[list[int]] = []
    for start, end in bounds:
        if merged and any(a < start < b for a, b in locked):  # this word continues a term or number: join it
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def _weight(text: str) -> float:
    """How long a piece takes to say, roughly: characters without spaces (a CJK character is one syllable)."""
    return max(len(text.replace(" ", "")), 1)


LINE_COST = 20.0  # every extra line costs as much as this many squared characters of slack
MID_CLAUSE_BREAK_COST = 150.0  # a break that is not after a comma
LAST_LINE_SLACK_WEIGHT = 0.3  # a short last line is fine, a one-word widow is not


def _lines(plain: str, pieces: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    """Pack pieces into lines of at most ``max_chars`` characters: the fewest, most even lines, breaking after a
    comma where possible (a small dynamic programme over the break points, like TeX's line breaking)."""
    glued: list[list[int]] = []  # punctuation and spaces stay with the word before them: no line starts with them
    for a, b in pieces:
        if glued and not any(ch.isalnum() for ch in plain[a:b]):
            glued[-1][1] = b
        else:
            glued.append([a, b])
    n = len(glued)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of setting glued[:j]
    back = [0] * (n + 1)
    for j in range(1, n + 1):
        ends_clause = plain[glued[j - 1][0]:glued[j - 1][1]].rstrip()[-1:] in _CLAUSE_END
        last = j == n
        for i in range(j - 1, -1, -1):
            a, b = _trimmed(plain, glued[i][0], glued[j - 1][1])
            if b - a > max_chars:
                break
            slack = (max_chars - (b - a)) ** 2 * (LAST_LINE_SLACK_WEIGHT if last else 1.0)
            cost = best[i] + slack + LINE_COST + (0.0 if last or ends_clause else MID_CLAUSE_BREAK_COST)
            if cost < best[j]:
                best[j], back[j] = cost, i
    lines, j = [], n
    while j > 0:
        i = back[j]
        lines.append((glued[i][0], glued[j - 1][1]))
        j = i
    return lines[::-1]


def _trimmed(plain: str, a: int, b: int) -> tuple[int, int]:
    """``[a, b)`` without leading/trailing spaces and without a closing comma or full stop."""
    while a < b and plain[a].isspace():
        a += 1
    while b > a and (plain[b - 1].isspace() or plain[b - 1] in _DROP_AT_LINE_END):
        b -= 1
    return a, b


def sentence_cues(sentence: str, start: float, duration: float, *, max_chars: int = DEFAULT_MAX_LINE_CHARS,
                  max_lines: int = MAX_LINES, max_seconds: float = MAX_CUE_SECONDS) -> list[Cue]:
    """The cues of one (possibly marked) sentence spoken from ``start`` for ``duration`` seconds.

    Raises
    ------
    ValueError
        When one unbreakable piece (a long English term or number) is longer than a line.
    """
    plain, spans = split_marked(sentence)
    pieces = _pieces(plain, [(a, b) for a, b, _ in spans])
    for a, b in pieces:
        if len(plain[a:b].strip()) > max_chars:
            raise ValueError(f"{plain[a:b]!r} in {plain!r} is longer than a subtitle line ({max_chars} characters) "
                             f"and cannot be broken: shorten it.")
    lines = [_trimmed(plain, a, b) for a, b in _lines(plain, pieces, max_chars)]
    lines = [(a, b) for a, b in lines if b > a]
    groups = [lines[i:i + max_lines] for i in range(0, len(lines), max_lines)]
    # Time in proportion to what each cue says; a cue over max_seconds splits into single lines.
    total = sum(_weight(plain[a:b]) for a, b in lines) or 1.0
    seconds_per_weight = duration / total
    planned: list[list[tuple[int, int]]] = []
    for group in groups:
        if len(group) > 1 and sum(_weight(plain[a:b]) for a, b in group) * seconds_per_weight > max_seconds:
            planned += [[line] for line in group]
        else:
            planned.append(group)
    cues, t = [], start
    for k, group in enumerate(planned):
        length = sum(_weight(plain[a:b]) for a, b in group) * seconds_per_weight
        end = start + duration if k == len(planned) - 1 else t + length
        cues.append(Cue(t, end, tuple(plain[a:b] for a, b in group), tuple(remark(plain, spans, a, b) for a, b in group)))
        t = end
    return cues


def remark(plain: str, spans, a: int, b: int) -> str:
    """``plain[a:b]`` with the number marks of ``spans`` (from ``split_marked``) inside it put back."""
    out, position = [], a
    for start, end, drawn in spans:
        if a <= start and end <= b:
            out += [plain[position:start], mark(drawn)]
            position = end
    return "".join(out) + plain[position:b]


def srt(cues: list[Cue]) -> str:
    """The cues as an SRT file's text."""

    def stamp(seconds: float) -> str:
        ms = round(seconds * 1000)
        return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    blocks = [f"{i}\n{stamp(c.start)} --> {stamp(c.end)}\n" + "\n".join(c.lines) for i, c in enumerate(cues, 1)]
    return "\n\n".join(blocks) + "\n"
