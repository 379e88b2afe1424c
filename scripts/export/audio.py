"""Audio for short videos: reading narration and music, placing narration per section, ducking the music under it,
and bringing the mix to the platforms' loudness.

pydub mixes (``AudioSegment.converter`` is imageio-ffmpeg's binary); every input is first
decoded by that ffmpeg to a 48 kHz WAV, which pydub reads without ffprobe. Loudness is EBU R128 / ITU-R BS.1770:
ffmpeg's ``loudnorm`` in two passes (measure, then normalise with the measured values) brings the mix to
−14 LUFS integrated with the true peak under −1 dBTP, and ``ebur128`` (``peak=true``) measures the result.

Narration files in ``--narration-dir`` are matched to sections by file name (extension any of :data:`AUDIO_SUFFIXES`):

- the section's number, counting from 1 as ``explainer list`` shows it, alone or zero-padded: ``1.wav``, ``01.mp3``;
- or that number followed by ``-``, ``_``, ``.`` or a space and anything: ``02-多频率时钟.m4a``;
- or the section's name exactly: ``相对位置.wav``.

A section with no file has no narration. Two files for one section, an audio file that matches no section, or anything
else in the folder (a ``.txt``, a subfolder) is an error, so a typo never goes silent; only hidden files (``.DS_Store``)
are ignored.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from scripts.export import ExportError
from scripts.export.tools import ffmpeg, run_ffmpeg, tail

SAMPLE_RATE = 48_000
CHANNELS = 2
AUDIO_BITRATE = "192k"  # AAC-LC, what the video files carry
AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".wma", ".aiff", ".aif")


@dataclass(frozen=True)
class MixSettings:
    """Levels and timings of the narration + music mix (before the final loudness normalisation)."""

    narration_dbfs: float = -20.0  # RMS level each narration clip is set to
    bgm_dbfs: float = -30.0  # music bed while nobody speaks: 10 dB under the voice
    duck_db: float = 12.0  # further music cut under narration
    duck_ramp_ms: int = 300  # how fast the music dips and comes back
    duck_hold_ms: int = 200  # music stays down this long around each narration clip
    bgm_fade_in_ms: int = 1000
    bgm_fade_out_ms: int = 2000
    target_lufs: float = -14.0  # integrated loudness, ±1 LU (what the platforms normalise to)
    loudness_tolerance_lu: float = 1.0
    max_true_peak_dbtp: float = -1.0
    # Aim under the limit: AAC encoding adds peak (+0.5 dB on rope's espeak narration: aimed at −1.5 it measured
    # −1.04 dBTP, at −2.0 it measures −1.44), and meters differ by a few hundredths.
    true_peak_target_dbtp: float = -2.0
    loudness_range_lu: float = 11.0  # loudnorm's LRA target (speech over music)


def _pydub():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # pydub warns when ffmpeg is not on PATH; we set it below
        from pydub import AudioSegment
    AudioSegment.converter = ffmpeg()
    return AudioSegment


def decode(path: Path, what: str):
    """Read any audio file ffmpeg understands as a 48 kHz stereo pydub segment; clear errors for bad files."""
    AudioSegment = _pydub()
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{what} {path} does not exist.")
    if not path.is_file():
        raise ExportError(f"{what} {path} is not a file.")
    with tempfile.TemporaryDirectory(prefix="explainer-audio-") as scratch:
        wav = Path(scratch) / "decoded.wav"
        try:
            run_ffmpeg(
                ["-v", "error", "-i", str(path), "-map", "0:a:0", "-vn", "-ac", str(CHANNELS), "-ar", str(SAMPLE_RATE),
                 "-c:a", "pcm_s16le", "-f", "wav", str(wav)],
                f"Reading {what.lower()} {path}",
            )
        except ExportError as error:
            raise ExportError(
                f"{what} {path} is not readable audio (corrupt, empty or not an audio format). {error}"
            ) from None
        segment = AudioSegment.from_file(wav, format="wav")
    if len(segment) == 0:
        raise ExportError(f"{what} {path} holds no audio (0 s).")
    return segment.set_sample_width(4)  # 32-bit: headroom while mixing


def narration_files(folder: Path, sections: list[dict], chosen: list[int]) -> dict[int, Path]:
    """Section index (0-based) → narration file in ``folder``, by the rule in this module's docstring."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"Narration folder {folder} does not exist or is not a folder.")
    names = [s["name"] for s in sections]
    found: dict[int, list[Path]] = {}
    unmatched = []
    not_audio = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue  # .DS_Store and editors' hidden files
        if path.suffix.lower() not in AUDIO_SUFFIXES or not path.is_file():
            not_audio.append(path.name + ("/" if path.is_dir() else ""))
            continue
        stem = path.stem
        index = None
        match = re.fullmatch(r"0*(\d+)(?:[-_. ].*)?", stem)
        if stem in names:
            index = names.index(stem)
        elif match and 1 <= int(match.group(1)) <= len(sections):
            index = int(match.group(1)) - 1
        if index is None:
            unmatched.append(path.name)
        else:
            found.setdefault(index, []).append(path)
    listing = "; ".join(f"{i + 1}. {n}" for i, n in enumerate(names))
    if not_audio:
        raise ExportError(
            f"{', '.join(not_audio)} in the narration folder {folder} {'is' if len(not_audio) == 1 else 'are'} not "
            f"audio: the folder holds one audio file per section ({', '.join(AUDIO_SUFFIXES)}). Move other files "
            f"elsewhere (hidden files are ignored)."
        )
    if unmatched:
        raise ExportError(
            f"Narration file(s) {', '.join(unmatched)} in {folder} match no section. Name each file by the section's "
            f"number (01.wav, 2-名字.mp3) or its exact name. Sections: {listing}."
        )
    doubles = {i: paths for i, paths in found.items() if len(paths) > 1}
    if doubles:
        described = "; ".join(f"section {i + 1} ({names[i]}): {', '.join(p.name for p in ps)}" for i, ps in doubles.items())
        raise ExportError(f"Several narration files for one section in {folder}: {described}. Keep one per section.")
    return {i: paths[0] for i, paths in found.items() if i in chosen}


def _level(segment, dbfs: float):
    if segment.dBFS == -math.inf:
        return segment
    return segment.apply_gain(dbfs - segment.dBFS)


def _intervals(placed: list[tuple[int, object]], hold_ms: int, total_ms: int) -> list[tuple[int, int]]:
    """Merged [start, end) spans in ms where narration plays (widened by ``hold_ms``)."""
    spans = sorted((max(0, at - hold_ms), min(total_ms, at + len(seg) + hold_ms)) for at, seg in placed)
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [tuple(span) for span in merged]


def mix(total_ms: int, narration: list[tuple[int, object]], bgm=None, settings: MixSettings = MixSettings()):
    """Narration clips placed at their offsets (ms) over music looped to ``total_ms``, faded and ducked."""
    AudioSegment = _pydub()
    base = AudioSegment.silent(duration=total_ms, frame_rate=SAMPLE_RATE).set_channels(CHANNELS).set_sample_width(4)
    if bgm is not None:
        music = _level(bgm, settings.bgm_dbfs)
        music = (music * math.ceil(total_ms / len(music)))[:total_ms]
        fade_in = min(settings.bgm_fade_in_ms, total_ms // 4)
        fade_out = min(settings.bgm_fade_out_ms, total_ms // 4)
        music = music.fade_in(fade_in).fade_out(fade_out)
        for start, end in _intervals(narration, settings.duck_hold_ms, total_ms):
            ramp_in = min(settings.duck_ramp_ms, start)
            music = music.fade(to_gain=-settings.duck_db, start=start - ramp_in, end=start) if ramp_in else \
                music[:start] + music[start:].apply_gain(-settings.duck_db)
            ramp_out = min(settings.duck_ramp_ms, total_ms - end)
            if ramp_out:
                music = music.fade(from_gain=0, to_gain=settings.duck_db, start=end, end=end + ramp_out)
        base = base.overlay(music)
    for at, clip in narration:
        base = base.overlay(_level(clip, settings.narration_dbfs), position=at)
    return base


# --- loudness ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float
    loudness_range_lu: float


def measure_loudness(path: Path) -> Loudness:
    """EBU R128 integrated loudness, true peak (4× oversampled) and range of ``path``'s audio (ffmpeg ebur128)."""
    log = run_ffmpeg(["-nostats", "-i", str(path), "-vn", "-af", "ebur128=peak=true", "-f", "null", "-"],
                     f"Measuring loudness of {path.name}")
    summary = log[log.rfind("Summary:"):]
    def value(label: str) -> float:
        match = re.search(rf"{label}:\s+(-?[\d.]+|-inf)", summary)
        if not match:
            raise ExportError(f"Could not read '{label}' from ffmpeg's ebur128 summary:\n{tail(summary)}")
        return -math.inf if match.group(1) == "-inf" else float(match.group(1))
    return Loudness(value("I"), value("Peak"), value("LRA"))


def normalise_loudness(source: Path, target: Path, settings: MixSettings = MixSettings(),
                       true_peak_target: float | None = None) -> dict:
    """Two-pass ``loudnorm`` of ``source`` into ``target`` (48 kHz PCM WAV); returns the first pass's measurements."""
    tp = settings.true_peak_target_dbtp if true_peak_target is None else true_peak_target
    base = f"loudnorm=I={settings.target_lufs}:TP={tp}:LRA={settings.loudness_range_lu}"
    log = run_ffmpeg(["-nostats", "-i", str(source), "-af", f"{base}:print_format=json", "-f", "null", "-"],
                     "Measuring the mix's loudness (loudnorm pass 1)")
    start = log.rfind("{")
    try:
        measured = json.loads(log[start: log.rfind("}") + 1])
    except ValueError:
        raise ExportError(f"Could not read loudnorm's measurements:\n{tail(log)}") from None
    if measured.get("input_i") in ("-inf", None) or float(measured["input_i"]) == -math.inf:
        raise ExportError("The audio mix is silent; check the narration and music files.")
    second = (
        f"{base}:measured_I={measured['input_i']}:measured_TP={measured['input_tp']}:"
        f"measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}:"
        f"offset={measured['target_offset']}:linear=true"
    )
    run_ffmpeg(["-nostats", "-i", str(source), "-af", second, "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s24le",
                str(target)], "Normalising the mix's loudness (loudnorm pass 2)")
    return measured


def encode_at_loudness(mixed: Path, scratch: Path, encode, settings: MixSettings = MixSettings(),
                       attempts: int = 3) -> tuple[Path, Loudness]:
    """Normalise ``mixed`` (:func:`normalise_loudness`), ``encode(normalised_wav, out)``, measure the encoded file;
    aim the true peak lower and try again while AAC encoding pushes it over the limit. Returns the encoded file (in
    ``scratch``) and its loudness; :class:`ExportError` when ``attempts`` tries miss the target."""
    tp_target = settings.true_peak_target_dbtp
    for attempt in range(attempts):
        normalised, encoded = scratch / f"normalised-{attempt}.wav", scratch / f"encoded-{attempt}.mp4"
        normalise_loudness(mixed, normalised, settings, true_peak_target=tp_target)
        encode(normalised, encoded)
        loudness = measure_loudness(encoded)
        off_target = abs(loudness.integrated_lufs - settings.target_lufs) > settings.loudness_tolerance_lu
        too_loud_peak = loudness.true_peak_dbtp > settings.max_true_peak_dbtp
        if not (off_target or too_loud_peak):
            return encoded, loudness
        tp_target -= max(0.3, loudness.true_peak_dbtp - settings.max_true_peak_dbtp + 0.3)
    raise ExportError(
        f"Could not bring the audio to {settings.target_lufs:g} LUFS ±{settings.loudness_tolerance_lu:g} LU "
        f"with true peak ≤ {settings.max_true_peak_dbtp:g} dBTP: measured {loudness.integrated_lufs:.1f} "
        f"LUFS, {loudness.true_peak_dbtp:.1f} dBTP. Very peaky audio (clicks, hard transients) limits "
        f"this: check the narration and music files."
    )
