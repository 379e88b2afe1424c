"""``ExplainerScene``: the base every topic scene derives from.

It sizes the frame from the render's pixel size (so ``-r 1080,1920`` gives a real 9:16 frame), paints the theme's
background, keeps a record of sections (name, start, duration) and of the numbers the scene shows, and runs
``frame_hooks`` on every settled frame: after each ``play``/``wait``, which includes the last frame of every section
(tests use them for the layout check).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import contextlib
import math
import os
from typing import Any, Callable

from manim import AnimationGroup, FadeIn, FadeOut, Scene, VGroup, config

from shared import theme
from shared.checks import visible_texts
from shared.layout import Region, configure_frame, current_layout
from shared.files import write_json_atomic
from shared.layout import subtitle_line_chars
from shared.mobjects.subtitle_track import SubtitleTrack
from shared.numbers import Drawn, jsonable, num, split_marked, strip_marks, untraced_digits
from shared.subtitles import remark, sentence_cues
from shared.text import TEXT_TAGS, check_glyphs, em_size, is_text, text_numbers, zh
from shared.voice import VoiceError, sentence_ranges, speak, voice_from_env


def _frames_to_seconds(frames: int, fps: float) -> float:
    """A wait that manim renders as exactly ``frames`` frames (it takes floor(duration · fps))."""
    return (frames + 0.5) / fps


def crossfade(old, new, *, match: bool = True) -> AnimationGroup:
    """``old`` fades out as ``new`` fades in: the way text changes (a Transform between two texts morphs glyph
    outlines through garbled half-glyphs mid-animation). With ``match``, a text ``new`` takes ``old``'s size (em) and
    centre, so a value can be swapped for another in a layout that scaled the first."""
    if match and is_text(old) and is_text(new):
        new.scale(em_size(old) / em_size(new)).move_to(old)
    return AnimationGroup(FadeOut(old), FadeIn(new))


def carry_text_tags(animation) -> None:
    """After ``Transform(a, b)`` of text into text, ``a`` shows ``b``: give it ``b``'s role, size and source, so the
    layout check measures what is on screen."""
    target = getattr(animation, "target_mobject", None)
    mobject = getattr(animation, "mobject", None)
    if target is not None and mobject is not None and is_text(target) and is_text(mobject) and target is not mobject:
        for tag in TEXT_TAGS:
            setattr(mobject, tag, getattr(target, tag))

# When set, a scene writes its record (``ExplainerScene.record_json``) to this path as it ends (the export tools).
RECORD_ENV = "EXPLAINER_RECORD"


@dataclass
class SectionRecord:
    """One section: its name, start and end (seconds), and what it drew.

    ``numbers`` is the inventory of recorded numbers seen on its settled frames: name → ``{"value", "text"}`` (the
    exact string drawn), or lists of both when the number changed between settled frames (a LiveNumber, a heatmap
    cell morphing), plus ``"kind": "term"`` for digits that name something. ``fine_print`` holds the section's small
    print (provenance, seeds): drawn in videos, written beside an article GIF as its caption line instead.
    ``plotted`` holds data the section draws as geometry, not digits (bar heights, curve points).
    """

    name: str
    start: float
    end: float | None = None
    numbers: dict[str, dict] = field(default_factory=dict)
    plotted: dict[str, Any] = field(default_factory=dict)  # data drawn as geometry (bars, curves), by name
    narration: list[dict] = field(default_factory=list)  # beats: text, start, end, sentences (audio, start, duration)
    subtitles: list[dict] = field(default_factory=list)  # cues: start, end, lines
    fine_print: list[str] = field(default_factory=list)
    settled: list[float] = field(default_factory=list)  # scene time (s) of every settled frame: after play/wait

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def note_number(self, drawn: Drawn) -> None:
        """Add a number seen on screen to the inventory (a new value of a known name is appended)."""
        value, text = jsonable(drawn.value), drawn.text
        entry = self.numbers.get(drawn.name)
        if entry is None:
            self.numbers[drawn.name] = {"value": value, "text": text, **({"kind": "term"} if drawn.kind == "term"
                                                                         else {})}
            return
        pairs = entry.setdefault("_seen", [(entry["value"], entry["text"])])
        if any(t == text for _, t in pairs):  # the same string again: a value that moved below what is shown
            return
        pairs.append((value, text))
        entry["value"], entry["text"] = [v for v, _ in pairs], [t for _, t in pairs]

    def to_json(self) -> dict:
        numbers = {name: {k: v for k, v in entry.items() if k != "_seen"} for name, entry in self.numbers.items()}
        return {"name": self.name, "start": self.start, "end": self.end, "numbers": numbers,
                "plotted": jsonable(self.plotted), "fine_print": list(self.fine_print), "settled": list(self.settled),
                "narration": list(self.narration), "subtitles": list(self.subtitles)}


@dataclass
class SceneRecord:
    """What a scene did, for tests, manifests and ``explainer list``."""

    sections: list[SectionRecord] = field(default_factory=list)

    @property
    def numbers(self) -> dict[str, Any]:
        """Every recorded number drawn anywhere in the scene: name → value (a list of the values when it showed
        several, in order of appearance)."""
        flat: dict[str, list] = {}
        for section in self.sections:
            for name, entry in section.numbers.items():
                seen = flat.setdefault(name, [])
                values = [v for v, _ in entry["_seen"]] if "_seen" in entry else [entry["value"]]
                seen.extend(v for v in values if v not in seen)
        return {name: values[0] if len(values) == 1 else values for name, values in flat.items()}

    def section(self, name: str) -> SectionRecord:
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(f"no section {name!r}; sections: {[s.name for s in self.sections]}")

    def to_json(self) -> dict:
        return {"sections": [s.to_json() for s in self.sections]}


class ExplainerScene(Scene):
    """Base scene: aspect-aware frame, themed background, sections, and the inventory of numbers drawn."""

    # Called as hook(scene, section_name) after every play() and wait(), on the frame the animation settled on.
    frame_hooks: list[Callable[["ExplainerScene", str], None]] = []

    def __init__(self, **kwargs):
        self.aspect = configure_frame(config)
        self.palette = theme.palette()
        config.background_color = self.palette.background
        self.record = SceneRecord()
        self.narrator = voice_from_env()  # None: no voice, timing as written (article GIFs)
        self.subtitle_track: SubtitleTrack | None = None
        super().__init__(**kwargs)

    def setup(self):
        self.layout = current_layout()
        self.camera.background_color = self.palette.background

    @property
    def is_portrait(self) -> bool:
        return self.aspect.is_portrait

    # --- sections ------------------------------------------------------------------------------------------------

    def next_section(self, name: str = "unnamed", *args, **kwargs) -> None:
        """Start a section (≤ ``theme.MAX_SECTION_SECONDS``); it is the unit of GIFs and short-video cuts.

        A name with numbers in it marks them as any text does (``shared.numbers``): it becomes a file name."""
        plain, spans = split_marked(name)
        stray = untraced_digits(plain, spans)
        if stray:
            raise ValueError(f"Section name {plain!r} has digits ({stray!r}) no recording call made: use num()/fill().")
        self._end_current_section()
        self.record.sections.append(SectionRecord(plain, self.renderer.time))
        for _, _, drawn in spans:
            self.record.sections[-1].note_number(drawn)
        super().next_section(plain, *args, **kwargs)

    def _end_current_section(self) -> None:
        if self.record.sections and self.record.sections[-1].end is None:
            self.record.sections[-1].end = self.renderer.time

    @property
    def section_name(self) -> str:
        return self.record.sections[-1].name if self.record.sections else ""

    def play(self, *args, **kwargs):
        super().play(*args, **kwargs)
        for animation in args:
            carry_text_tags(animation)
        self._settled()

    def wait(self, duration: float = theme.DEFAULT_WAIT, *args, **kwargs):
        # A held frame is drawn once: with subtitles, hold piece by piece so each cue shows from the first frame at
        # or after the moment its words start. manim advances a wait by floor(duration · fps) frames.
        cuts = self.subtitle_track.boundaries() if self.subtitle_track and not args and not kwargs else []
        fps, start = config.frame_rate, self.renderer.time
        total = math.floor(duration * fps + 1e-9)
        pieces = sorted({math.ceil((c - start) * fps - 1e-9) for c in cuts} & set(range(1, total)) | {total})
        done = 0
        for frames in pieces if cuts else [None]:
            if frames is None:
                super().wait(duration, *args, **kwargs)
            else:
                super().wait(_frames_to_seconds(frames - done, fps))
                done = frames

    def wait_at_least(self, seconds: float) -> None:
        """Hold the picture for ``seconds`` or the next whole frame after it (never less: a voice must finish)."""
        if seconds > 1e-9:
            self.wait(_frames_to_seconds(math.ceil(seconds * config.frame_rate - 1e-9), config.frame_rate))

    def _settled(self) -> None:
        """On a settled frame: note the numbers on screen in the section's inventory, then run the frame hooks."""
        if self.subtitle_track is not None:
            self.subtitle_track.show(self.renderer.time)
        if self.record.sections:
            section = self.record.sections[-1]
            section.settled.append(self.renderer.time)
            for text in visible_texts(self.mobjects):
                for drawn in text_numbers(text):
                    section.note_number(drawn)
        for hook in type(self).frame_hooks:
            hook(self, self.section_name)

    def tear_down(self):
        self._end_current_section()
        super().tear_down()
        path = os.environ.get(RECORD_ENV)
        if path:
            write_json_atomic(path, self.record_json())

    def record_json(self) -> dict:
        """The scene's record as JSON: scene, frame rate, size, aspect, theme and every section's inventory."""
        return {
            "scene": type(self).__name__,
            "fps": config.frame_rate,
            "pixel_width": config.pixel_width,
            "pixel_height": config.pixel_height,
            "aspect": self.aspect.name,
            "theme": self.palette.name,
            "background": self.palette.background,
            **self.record.to_json(),
        }

    # --- narration ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def voice(self, text: str):
        """Narration for the animations played inside the ``with`` block (one beat), in the writer's words.

        Without a voice (``shared.voice``: no ``EXPLAINER_VOICE``) the block plays as written and the text is only
        recorded. With one, each sentence is synthesised, the beat lasts at least as long as its speech (the picture
        holds its final state while the voice finishes; it never runs ahead of it), and the sentences appear as
        subtitles timed from their audio. Numbers go in marked, as in any text: what is said is what is drawn.
        """
        plain, spans = split_marked(text)
        check_glyphs(plain)
        if not plain.strip():
            raise VoiceError("Empty narration: a voice() beat needs something to say.")
        section = self.record.sections[-1]
        for _, _, drawn in spans:
            section.note_number(drawn)
        beat = {"text": plain, "start": self.renderer.time, "sentences": []}
        section.narration.append(beat)
        speech_end = beat["start"]
        if self.narrator is not None:
            ranges = sentence_ranges(plain)
            spoken = speak([plain[a:b] for a, b in ranges], self.narrator)
            cues = []
            for (a, b), sentence in zip(ranges, spoken):
                beat["sentences"].append({"text": sentence.text, "start": speech_end, "duration": sentence.duration,
                                          "audio": str(sentence.audio)})
                cues += sentence_cues(remark(plain, spans, a, b), speech_end, sentence.duration,
                                      max_chars=subtitle_line_chars(self.aspect))
                speech_end += sentence.duration
            # Recorded for the .srt either way; burned in only where the layout has a subtitle band.
            section.subtitles += [{"start": c.start, "end": c.end, "lines": list(c.lines)} for c in cues]
            if cues and self.layout.subtitle is not None:
                if self.subtitle_track is None:
                    self.subtitle_track = SubtitleTrack(self.layout, lambda: self.renderer.time)
                self.subtitle_track.add_cues(cues)
                if self.subtitle_track not in self.mobjects:
                    self.add(self.subtitle_track)
        yield
        self.wait_at_least(speech_end - self.renderer.time)
        beat["end"] = self.renderer.time

    # --- numbers and small print ---------------------------------------------------------------------------------

    def number(self, name: str, value, fmt: str = "{}", role: str = "label", *, color=None, **kwargs):
        """A text mobject drawing ``value`` formatted with ``fmt``, recorded as ``name`` when it is on screen."""
        return zh(num(name, value, fmt), role, color=color, **kwargs)

    def plotted(self, name: str, values):
        """Record data this section draws as geometry (bar heights, a curve, arrow angles); returns ``values``."""
        self.record.sections[-1].plotted[name] = values
        return values

    def fine_print(self, text: str):
        """Small print (provenance, seed, device, wall time): recorded for the section's caption file, and drawn in
        the ``small`` role where the layout shows small print (videos), else an empty group (article GIFs, whose
        caption line carries it)."""
        self.record.sections[-1].fine_print.append(strip_marks(text))
        if not self.layout.shows_fine_print:
            return VGroup()
        return zh(text, "small", color=self.palette.muted)

    def note_under(self, region: Region, note, *, gap: float, align: str = "left") -> Region:
        """Place ``note`` (from :meth:`fine_print`) in a strip at the bottom of ``region``; return the rest. An
        empty note (the article layout) takes no room."""
        if not len(note):
            return region
        region, strip = region.split_off(note.height, gap, at="bottom")
        strip.place(note, align=align)
        return region

    # --- the recurring pieces of a section: title, caption, clearing the stage -------------------------------------

    def show_title(self, text, run_time: float = theme.QUICK):
        """Put ``text`` (a string, or a ready text mobject such as ``rich(..., "title")``) in the title band,
        replacing the current title."""
        title = zh(text, "title", bold=True) if isinstance(text, str) else text
        self.layout.title.place(title, align="left")
        old = getattr(self, "title_mob", None)
        self.play(*([FadeOut(old)] if old in self.mobjects else []), FadeIn(title), run_time=run_time)
        self.title_mob = title
        return title

    def say(self, text, *, color=None, run_time: float = theme.QUICK, hold: bool = False):
        """Show ``text`` (a string, or a ready text mobject such as a formula) as the caption, replacing the current
        one; with ``hold``, wait its reading time."""
        caption = zh(text, "body", color=color) if isinstance(text, str) else text
        self.layout.caption.place(caption)
        old = getattr(self, "caption_mob", None)
        if old in self.mobjects:  # one after the other: two captions cross-fading in one place are unreadable
            self.play(FadeOut(old), run_time=run_time / 2)
            run_time /= 2
        self.play(FadeIn(caption), run_time=run_time)
        self.caption_mob = caption
        if hold:
            self.wait(theme.reading_time(caption.source_text))
        return caption

    def clear_stage(self, run_time: float = theme.QUICK):
        """Fade out everything on screen (between sections); subtitles stay."""
        stage = [m for m in self.mobjects if m is not self.subtitle_track]
        if stage:
            self.play(*[FadeOut(m) for m in stage], run_time=run_time)
        self.remove(*stage)
