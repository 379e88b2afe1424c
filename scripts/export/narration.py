"""Narrated renders: the voice a render is made with, and the narration track and subtitles built from its record.

A render with a voice (``explainer short|render --voice espeak``) runs the scene with ``EXPLAINER_VOICE`` set
(:mod:`shared.voice`): every ``voice()`` beat is synthesised sentence by sentence, lasts at least as long as its
speech, and the scene burns the subtitles into its frames (:mod:`shared.mobjects.subtitle_track`). Its record holds,
per section, the beats with each sentence's audio file and start, and the subtitle cues (scene seconds).

Here those are placed on the exported video's timeline. Scene times are only compared within one section (a parallel
render's workers skip the sections before their own, and manim advances a skipped animation by its exact run time but
a drawn one by whole frames, so a section's start is not the same in every worker): a sentence said ``t`` seconds
into its section plays ``t`` seconds after the section's first frame.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from scripts.export import ExportError


@dataclass(frozen=True)
class Voice:
    """The voice a render is made with: an engine of :data:`shared.voice.ENGINES`, its voice (None: the engine's
    default) and whether the scene burns subtitles into the frames."""

    engine: str
    name: str | None = None
    subtitles: bool = True

    def check(self):
        """The engine, ready to speak; :class:`ExportError` naming the install command when it is unknown or missing
        (call before rendering)."""
        from shared.voice import VoiceError, get_engine

        try:
            return get_engine(self.engine, self.name)
        except VoiceError as error:
            raise ExportError(f"--voice {self.engine}: {error}") from None

    def _engine(self):
        from shared.voice import ENGINES

        return ENGINES[self.engine](self.name)

    @property
    def key(self) -> str:
        """This voice in a render cache folder's name (the engine's settings: a voiced render never reuses an
        unvoiced one, nor one made with another voice)."""
        return re.sub(r"[^\w.-]+", "_", f"{self.engine}-{self._engine().settings}") + \
            ("" if self.subtitles else "-nosubs")

    def describe(self) -> dict:
        """For manifests."""
        engine = self._engine()
        return {"engine": self.engine, "voice": engine.voice, "settings": engine.settings,
                "subtitles_burned_in": self.subtitles}


def voice_environment(voice: Voice | None) -> dict[str, str | None]:
    """The variables of :mod:`shared.voice` a render runs with: set (str) or cleared (None; an unvoiced render ignores
    a voice set in the shell)."""
    from shared.voice import SUBTITLES_ENV, VOICE_ENV, VOICE_NAME_ENV

    if voice is None:
        return dict.fromkeys((VOICE_ENV, VOICE_NAME_ENV, SUBTITLES_ENV))
    return {VOICE_ENV: voice.engine, VOICE_NAME_ENV: voice.name or "", SUBTITLES_ENV: "1" if voice.subtitles else "0"}


# --- what a section says, on the output timeline -----------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where a section plays in the output: its first frame is ``start_s`` into the video; ``held_s`` seconds of a
    held frame are inserted after ``hold_after_s`` seconds of the section (None: no hold inside it)."""

    start_s: float
    hold_after_s: float | None = None
    held_s: float = 0.0

    def time(self, section_s: float) -> float:
        """Output time of a moment ``section_s`` seconds into the section."""
        held = self.held_s if self.hold_after_s is not None and section_s >= self.hold_after_s - 1e-9 else 0.0
        return self.start_s + section_s + held


def spoken_beats(record: dict, placement: Placement) -> list[dict]:
    """The section's beats (``record``: a section of the scene's record) on the output timeline: text, start, end
    and each sentence's text, start, duration and audio file."""
    origin = record["start"]
    beats = []
    for beat in record.get("narration", []):
        sentences = [{"text": s["text"], "start": round(placement.time(s["start"] - origin), 4),
                      "duration": s["duration"], "audio": s["audio"]} for s in beat["sentences"]]
        if sentences:
            beats.append({"text": beat["text"], "start": round(placement.time(beat["start"] - origin), 4),
                          "end": round(placement.time(beat["end"] - origin), 4), "sentences": sentences})
    return beats


def section_cues(record: dict, placement: Placement) -> list:
    """The section's subtitle cues (the scene records them whether or not it burns them in) on the output
    timeline."""
    from shared.subtitles import Cue

    origin = record["start"]
    cues = [Cue(c["start"], c["end"], tuple(c["lines"]), tuple(c["lines"])) for c in record.get("subtitles", [])]
    return [Cue(placement.time(c.start - origin), placement.time(c.end - origin), c.lines, c.marked) for c in cues]


def check_audio(record: dict) -> list[str]:
    """Sentences of the scene's record whose audio file is gone or no longer lasts what the render timed (the voice
    cache was cleared, or the engine changed since): such a render must be made again."""
    from shared.voice import wav_duration

    stale = []
    for beat in record.get("narration", []):
        for sentence in beat["sentences"]:
            path = Path(sentence["audio"])
            if not path.is_file() or abs(wav_duration(path) - sentence["duration"]) > 1e-3:
                stale.append(sentence["text"])
    return stale


def voice_clips(beats: list[dict]) -> list[tuple[int, object]]:
    """Each sentence's audio as ``(position in ms, pydub segment)``, for :func:`scripts.export.audio.mix`."""
    from scripts.export.audio import decode

    decoded: dict[str, object] = {}
    placed = []
    for beat in beats:
        for sentence in beat["sentences"]:
            if sentence["audio"] not in decoded:
                decoded[sentence["audio"]] = decode(Path(sentence["audio"]), "Synthesised narration")
            placed.append((round(sentence["start"] * 1000), decoded[sentence["audio"]]))
    return placed


def write_srt(path: Path, cues: list) -> Path | None:
    """The cues as ``path`` (an SRT file, UTF-8), written atomically; without cues, no file (one left by an earlier
    narrated export would not match the new video)."""
    from shared.files import write_text_atomic
    from shared.subtitles import srt

    if not cues:
        path.unlink(missing_ok=True)
        return None
    return write_text_atomic(path, srt(cues))
