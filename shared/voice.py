"""Narration read aloud: speech engines behind one small interface, synthesised per sentence and cached.

A scene writes its narration beside the animation it speaks for (``with self.voice("…"):`` in
:class:`shared.scene.ExplainerScene`). When a render asks for a voice (environment ``EXPLAINER_VOICE=espeak``, set by
``explainer short|render --voice``), every sentence is synthesised on its own, so its exact duration is known: a beat
lasts at least as long as its speech, and subtitles are timed from each sentence's audio.

Engines (``ENGINES``):

- ``espeak``: espeak-ng's Mandarin voice ``cmn`` (Debian package ``espeak-ng``): robotic, but offline everywhere.
- ``edge``: Microsoft Edge's online voices through the optional ``edge-tts`` package (``pip install edge-tts``);
  never required, and offline it fails with a message that says so.

Audio is cached under ``<media>/cache/voice/<engine>/<voice>/<hash of the text>.wav``: the same sentence is
synthesised once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

VOICE_ENV = "EXPLAINER_VOICE"  # engine name; unset or empty: no voice (timing as written, no subtitles)
VOICE_NAME_ENV = "EXPLAINER_VOICE_NAME"  # the engine's voice, default its Mandarin one
SUBTITLES_ENV = "EXPLAINER_SUBTITLES"  # "0" turns burned-in subtitles off when a voice is on

# A sentence ends at Chinese or Western sentence punctuation (kept with it) or a line break.
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;…])|\n")
# Something an engine can pronounce: a CJK character, a letter or a digit.
_SPEAKABLE = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbfA-Za-z0-9]")


class VoiceError(RuntimeError):
    """A voice that cannot be made: unknown or missing engine, empty narration, text an engine cannot speak."""


@dataclass(frozen=True)
class SpokenSentence:
    text: str
    audio: Path
    duration: float  # seconds


def sentence_ranges(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence of ``text``, with its closing punctuation, without surrounding spaces."""
    ranges, start = [], 0
    for match in list(_SENTENCE_END.finditer(text)) + [None]:
        end = match.start() if match else len(text)
        a, b = start, end
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            ranges.append((a, b))
        start = match.end() if match else end
    return ranges


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, each with its closing punctuation; empty pieces dropped."""
    return [text[a:b] for a, b in sentence_ranges(text)]


def wav_duration(path: Path) -> float:
    with wave.open(str(path)) as audio:
        return audio.getnframes() / audio.getframerate()


def _wav_is_silent(path: Path) -> bool:
    import numpy as np

    with wave.open(str(path)) as audio:
        if audio.getsampwidth() != 2:
            return False
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2")
    return samples.size == 0 or float(np.abs(samples.astype(float)).max()) < 64  # below −54 dBFS everywhere


class Engine:
    """One speech engine: ``synthesize(text, out_wav)``; ``missing()`` says how to install it, or None."""

    name: str = ""
    default_voice: str = ""
    install: str = ""

    def __init__(self, voice: str | None = None):
        self.voice = voice or self.default_voice

    def missing(self) -> str | None:
        raise NotImplementedError

    @property
    def settings(self) -> str:
        """Everything besides the text that changes the audio (the cache folder's name)."""
        return self.voice

    def synthesize(self, text: str, out: Path) -> None:
        raise NotImplementedError


class Espeak(Engine):
    name = "espeak"
    default_voice = "cmn"
    install = "apt-get install espeak-ng   (macOS: brew install espeak-ng)"

    def missing(self) -> str | None:
        return None if shutil.which("espeak-ng") else f"espeak-ng is not installed. Install it: {self.install}"

    # espeak-ng's default 175 words a minute reads Mandarin at about 3.3 syllables a second; narration runs nearer 4–5.
    words_per_minute = 230

    @property
    def settings(self) -> str:
        return f"{self.voice}-{self.words_per_minute}wpm"

    def synthesize(self, text: str, out: Path) -> None:
        result = subprocess.run(["espeak-ng", "-v", self.voice, "-s", str(self.words_per_minute), "-w", str(out), text],
                                capture_output=True, text=True)
        if result.returncode or not out.exists():
            raise VoiceError(f"espeak-ng could not speak {text!r} with voice {self.voice!r}: {result.stderr.strip()}")


class Edge(Engine):
    name = "edge"
    default_voice = "zh-CN-XiaoxiaoNeural"
    install = "pip install edge-tts   (an online service: needs a network connection)"

    def missing(self) -> str | None:
        import importlib.util

        return None if importlib.util.find_spec("edge_tts") else f"edge-tts is not installed. Install it: {self.install}"

    def synthesize(self, text: str, out: Path) -> None:
        import asyncio

        import edge_tts

        mp3 = out.with_suffix(".mp3")
        try:
            asyncio.run(edge_tts.Communicate(text, self.voice).save(str(mp3)))
        except Exception as error:  # the service is online: no network is the usual cause
            raise VoiceError(f"edge-tts could not reach Microsoft's service ({error}). It needs a network connection; "
                             f"offline, use --voice espeak.") from error
        _to_wav(mp3, out)
        mp3.unlink(missing_ok=True)


def _to_wav(source: Path, target: Path) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-ac", "1", str(target)],
                   check=True)


ENGINES: dict[str, type[Engine]] = {e.name: e for e in (Espeak, Edge)}


def get_engine(name: str, voice: str | None = None) -> Engine:
    """The engine called ``name``, ready to use.

    Raises
    ------
    VoiceError
        For an unknown name (listing the known ones) or an engine that is not installed (with its install command).
    """
    if name not in ENGINES:
        raise VoiceError(f"Unknown voice engine {name!r}; use one of: {', '.join(ENGINES)}.")
    engine = ENGINES[name](voice)
    problem = engine.missing()
    if problem:
        raise VoiceError(problem)
    return engine


def voice_from_env() -> Engine | None:
    """The engine ``EXPLAINER_VOICE`` asks for (None when unset)."""
    name = os.environ.get(VOICE_ENV, "").strip()
    return get_engine(name, os.environ.get(VOICE_NAME_ENV) or None) if name else None


def subtitles_from_env() -> bool:
    return bool(os.environ.get(VOICE_ENV, "").strip()) and os.environ.get(SUBTITLES_ENV, "1") != "0"


def voice_cache_dir() -> Path:
    from manim import config

    return Path(config.media_dir) / "cache" / "voice"


def speak(text: str | list[str], engine: Engine, cache_dir: Path | None = None) -> list[SpokenSentence]:
    """Synthesise ``text`` (or a list of its sentences) sentence by sentence, cached; each sentence's audio and exact
    duration.

    Raises
    ------
    VoiceError
        For empty narration, a sentence with nothing to pronounce, or audio that comes out silent.
    """
    sentences = split_sentences(text) if isinstance(text, str) else [s for s in text if s.strip()]
    if not sentences:
        raise VoiceError("Empty narration: a voice() beat needs something to say.")
    folder = (cache_dir or voice_cache_dir()) / engine.name / re.sub(r"[^\w.-]", "_", engine.settings)
    folder.mkdir(parents=True, exist_ok=True)
    spoken = []
    for sentence in sentences:
        if not _SPEAKABLE.search(sentence):
            raise VoiceError(f"The {engine.name} voice cannot speak {sentence!r}: it has no words (only punctuation or "
                             f"symbols). Write it out in words.")
        path = folder / f"{hashlib.sha256(sentence.encode()).hexdigest()[:20]}.wav"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
            try:
                engine.synthesize(sentence, tmp)
                if _wav_is_silent(tmp):
                    raise VoiceError(f"The {engine.name} voice produced silence for {sentence!r}.")
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
        spoken.append(SpokenSentence(sentence, path, wav_duration(path)))
    return spoken
