"""Synthetic test audio: speech-like narration (voiced tones with syllable envelopes and pauses) and music (chords
with a beat and a little noise), written as 16-bit WAV with the standard library, so loudness tests need no
recordings."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48_000


def _write(path: Path, signal: np.ndarray, rate: int = RATE) -> Path:
    signal = np.clip(signal, -1, 1)
    stereo = np.repeat((signal * 32767).astype("<i2")[:, None], 2, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(stereo.tobytes())
    return Path(path)


def speech(path: Path, seconds: float, seed: int = 0, level: float = 0.3) -> Path:
    """Narration-like audio: ~4 syllables a second, pitch gliding around 140 Hz with harmonics, pauses between
    phrases, breath noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = 140 + 25 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 6)), 0, None) ** 0.6
    phrase = (np.sin(2 * np.pi * 0.4 * t + rng.uniform(0, 6)) > -0.6).astype(float)
    envelope = syllables * phrase
    breath = rng.normal(0, 0.05, t.size)
    return _write(path, level * (voice * envelope + breath * envelope) / 2.5)


def music(path: Path, seconds: float, seed: int = 1, level: float = 0.5) -> Path:
    """Music-like audio: a chord progression (A minor, F, C, G), a kick on every beat at 100 bpm, soft noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    chords = [(220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (130.8, 164.8, 196.0), (196.0, 246.9, 293.7)]
    bar = (t // 2.4).astype(int) % len(chords)
    tone = np.zeros_like(t)
    for i, chord in enumerate(chords):
        mask = bar == i
        tone[mask] = sum(np.sin(2 * np.pi * f * t[mask]) for f in chord) / 3
    beat = np.exp(-((t % 0.6) / 0.05)) * np.sin(2 * np.pi * 60 * t)
    return _write(path, level * (0.6 * tone + 0.5 * beat + rng.normal(0, 0.02, t.size)))


def corrupt(path: Path) -> Path:
    """A file named like audio that holds random bytes after a fake RIFF header."""
    rng = np.random.default_rng(7)
    Path(path).write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    return Path(path)
