"""Narrated exports (`explainer short|render --voice espeak`) of tests/fixtures/narrated_fixture.py, rendered small.

Checked from the outputs alone, against independent measurements: each sentence is synthesised again here and found
in the decoded AAC track by cross-correlation; the .srt is parsed and its cues must start and end within one frame of
their sentence's audio and follow the reading rules (line length, two lines, seven seconds, never inside a jieba word,
glyphs in the vendored font); the burned-in subtitles, read from the decoded frames, change exactly where the .srt's
cues do; loudness is measured with pyloudnorm. Bad voices fail before rendering, with exit status 1 and no file.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import correlate, resample_poly

from fixture_scene import ROOT
from test_short import loudness, probe_mp4

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export-narrated"),
              pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make installs it)")]

NARRATED_SCENE = ROOT / "tests" / "fixtures" / "narrated_fixture.py"
RATE = 48_000
SHORT_FPS = 30
LANDSCAPE_FPS = 15  # -q l


@pytest.fixture(scope="session")
def short(cli, media):
    out = media / "narrated" / "short.mp4"
    result = cli("short", NARRATED_SCENE, "--voice", "espeak", "--width", 270, "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def landscape(cli, media):
    out = media / "narrated" / "landscape.mp4"
    result = cli("render", NARRATED_SCENE, "--voice", "espeak", "--aspect", "16:9", "-q", "l", "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def sentences(tmp_path_factory):
    """The fixture's sentences in order, each with its audio synthesised here: (text, samples at 48 kHz, seconds)."""
    from shared.checks import dry_run
    from shared.voice import get_engine, speak

    spec = importlib.util.spec_from_file_location("narrated_fixture", NARRATED_SCENE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    record, _ = dry_run(module.NarratedFixture, "9:16")  # no voice: the beats' texts as written
    found = []
    for beat in (b for s in record.sections for b in s.narration):
        for spoken in speak(beat["text"], get_engine("espeak"), tmp_path_factory.mktemp("voice")):
            with wave.open(str(spoken.audio)) as audio:
                samples = np.frombuffer(audio.readframes(audio.getnframes()), "<i2").astype(float)
                rate = audio.getframerate()
            found.append((spoken.text, resample_poly(samples, RATE, rate), spoken.duration))
    return found


def read_srt(path: Path) -> list[tuple[float, float, list[str]]]:
    def seconds(stamp: str) -> float:
        h, m, s, ms = map(int, re.split("[:,]", stamp))
        return h * 3600 + m * 60 + s + ms / 1000

    cues = []
    for number, block in enumerate(path.read_text(encoding="utf-8").strip().split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(number), block
        start, end = lines[1].split(" --> ")
        cues.append((seconds(start), seconds(end), lines[2:]))
    return cues


def decoded_audio(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1).mean(axis=0)


def onset(track: np.ndarray, sentence: np.ndarray) -> tuple[float, float]:
    """Where ``sentence`` starts in ``track`` (seconds) and how well it matches there (normalised correlation)."""
    corr = correlate(track, sentence, mode="valid", method="fft")
    lag = int(np.argmax(np.abs(corr)))
    window = track[lag:lag + len(sentence)]
    return lag / RATE, float(abs(corr[lag]) / (np.linalg.norm(window) * np.linalg.norm(sentence) + 1e-12))


def _plain(text: str) -> str:
    return re.sub(r"[\s，。？！：；、,.?!:;]", "", text)


def cues_per_sentence(cues, sentences) -> list[list]:
    """The .srt's cues grouped by the sentence they show, in order; every cue belongs to one sentence."""
    groups, position = [], 0
    for text, _, _ in sentences:
        want, shown, group = _plain(text), "", []
        while shown != want:
            assert position < len(cues), f"no cue left for {text!r} (shown so far {shown!r})"
            shown += _plain("".join(cues[position][2]))
            assert want.startswith(shown), f"cue {cues[position]} does not continue {text!r}"
            group.append(cues[position])
            position += 1
        groups.append(group)
    assert position == len(cues), f"cues left over: {cues[position:]}"
    return groups


def assert_in_sync(video: Path, sentences, fps: float) -> list[float]:
    """Each sentence's first cue starts, and its last cue ends, within one frame of its audio; returns the errors
    in frames."""
    track = decoded_audio(video)
    groups = cues_per_sentence(read_srt(video.with_suffix(".srt")), sentences)
    errors = []
    for (text, samples, seconds), group in zip(sentences, groups):
        start, match = onset(track, samples)
        assert match > 0.9, f"{text!r} is not in the audio (best match {match:.2f})"
        errors += [(group[0][0] - start) * fps, (group[-1][1] - (start + seconds)) * fps]
        assert abs(errors[-2]) <= 1 and abs(errors[-1]) <= 1, (text, start, seconds, group)
    return errors


def assert_reading_rules(video: Path, sentences, max_chars: int) -> None:
    """At most ``max_chars`` characters a line, two lines and seven seconds a cue, glyphs in the vendored font, and
    every line starts and ends between two of jieba's words of its sentence, never inside a number or a term."""
    import jieba

    from shared.subtitles import MAX_CUE_SECONDS
    from shared.text import font_codepoints

    cues = read_srt(video.with_suffix(".srt"))
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(cues, cues[1:])), "cues overlap or are out of order"
    for (text, _, _), group in zip(sentences, cues_per_sentence(cues, sentences)):
        bounds, position = {0}, 0
        for word in jieba.lcut(text, HMM=True):
            position += len(word)
            bounds.add(position)
        terms = [m.span() for m in re.finditer(r"[A-Za-z0-9][A-Za-z0-9.\-]*[A-Za-z0-9]", text)]
        position = 0
        for start, end, lines in group:
            assert 0 < end - start <= MAX_CUE_SECONDS + 1e-3 and 1 <= len(lines) <= 2, (start, end, lines)
            for line in lines:
                assert 0 < len(line) <= max_chars, line
                assert all(ord(ch) in font_codepoints() for ch in line if not ch.isspace()), line
                a = text.index(line, position)
                b = a + len(line)
                assert a in bounds and (b in bounds or text[b] in "，。？！：；"), f"{line!r} splits a word of {text!r}"
                assert not any(x < a < y or x < b < y for x, y in terms), f"{line!r} splits a number in {text!r}"
                position = b


def band_activity(video: Path, aspect_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, in the subtitle band: the share of pixels off the background colour (something is drawn there),
    and the share that changed since the frame before (0 for the first frame)."""
    from shared.layout import ASPECTS, layout_for
    from shared.theme import DARK

    aspect = ASPECTS[aspect_name]
    band = layout_for(aspect, subtitles=True).subtitle
    background = np.array([int(DARK.background[i:i + 2], 16) for i in (1, 3, 5)], np.int16)
    drawn, changed, previous = [], [], None
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            top = int((aspect.frame_height / 2 - band.top) / aspect.frame_height * frame.height)
            bottom = int(np.ceil((aspect.frame_height / 2 - band.bottom) / aspect.frame_height * frame.height))
            pixels = frame.to_ndarray(format="rgb24")[top:bottom].astype(np.int16)
            drawn.append((np.abs(pixels - background).max(axis=2) > 40).mean())
            changed.append(0.0 if previous is None else (np.abs(pixels - previous).max(axis=2) > 40).mean())
            previous = pixels
    return np.array(drawn), np.array(changed)


def assert_subtitles_follow_the_srt(video: Path, aspect_name: str, fps: float) -> None:
    """A cue is in the picture on exactly the frames its .srt times cover (frame i shows time i/fps); the picture
    of the band changes only where a cue starts or ends. A frame within one frame of a cue boundary may go either
    way."""
    drawn, changed = band_activity(video, aspect_name)
    shown, changed = drawn > 0.003, changed > 0.003
    cues = read_srt(video.with_suffix(".srt"))
    boundaries = np.array([t for start, end, _ in cues for t in (start, end)]) * fps
    for i in range(len(shown)):
        near = np.abs(boundaries - i).min() <= 1
        expected = any(start <= i / fps < end for start, end, _ in cues)
        assert near or shown[i] == expected, f"frame {i} ({i / fps:.2f} s): subtitle shown {shown[i]}"
        assert near or not changed[i], f"frame {i} ({i / fps:.2f} s): the subtitle changed off a cue"
    for t in boundaries[boundaries < len(shown) - 1]:
        window = changed[max(0, int(np.floor(t)) - 1):int(np.ceil(t)) + 2]
        assert window.any(), f"nothing changes in the band at {t / fps:.3f} s, where a cue starts or ends"


# --- 9:16 short ---------------------------------------------------------------------------------------------------


def test_short_format_and_loudness(short):
    info = probe_mp4(short)
    assert (info["codec"], info["width"], info["height"], info["pix_fmt"]) == ("h264", 270, 480, "yuv420p")
    assert (info["audio_codec"], info["sample_rate"], info["channels"]) == ("aac", 48000, 2)
    integrated, true_peak = loudness(info["samples"], 48000)
    assert abs(integrated + 14.0) <= 1.0 and true_peak <= -1.0, (integrated, true_peak)


def test_short_voice_and_subtitles_in_sync(short, sentences):
    assert_in_sync(short, sentences, SHORT_FPS)


def test_short_subtitles_follow_the_reading_rules(short, sentences):
    assert_reading_rules(short, sentences, 16)


def test_burned_in_subtitles_change_with_the_srt(short):
    assert_subtitles_follow_the_srt(short, "9:16", SHORT_FPS)


def test_short_manifest_names_the_voice_and_every_beat_lasts_its_speech(short, sentences):
    manifest = json.loads(short.with_suffix(".json").read_text())
    assert manifest["voice"]["engine"] == "espeak" and manifest["voice"]["voice"] == "cmn-latn-pinyin"
    assert manifest["voice"]["subtitles_burned_in"] and manifest["srt"] == "short.srt"
    beats = [beat for section in manifest["sections"] for beat in section["narration"]]
    assert [s["text"] for b in beats for s in b["sentences"]] == [text for text, _, _ in sentences]
    for beat in beats:
        assert beat["end"] - beat["start"] >= sum(s["duration"] for s in beat["sentences"]) - 1e-3, beat
    assert manifest["duration_s"] >= beats[-1]["end"] - 1e-3


# --- 16:9 render ----------------------------------------------------------------------------------------------------


def test_landscape_render_is_narrated_in_sync(landscape, sentences):
    info = probe_mp4(landscape)
    assert (info["codec"], info["width"], info["height"], info["audio_codec"]) == ("h264", 854, 480, "aac")
    integrated, true_peak = loudness(info["samples"], 48000)
    assert abs(integrated + 14.0) <= 1.0 and true_peak <= -1.0, (integrated, true_peak)
    assert_in_sync(landscape, sentences, LANDSCAPE_FPS)
    assert_reading_rules(landscape, sentences, 22)
    assert_subtitles_follow_the_srt(landscape, "16:9", LANDSCAPE_FPS)


# --- options --------------------------------------------------------------------------------------------------------


def test_no_subtitles_still_writes_the_srt(cli, media, sentences):
    out = media / "narrated" / "plain.mp4"
    result = cli("short", NARRATED_SCENE, "--voice", "espeak", "--no-subtitles", "--width", 270, "--out", out)
    assert result.exit_code == 0, result.output
    drawn, _ = band_activity(out, "9:16")  # where subtitles would be (without them, captions may come this low)
    first_start, first_end, _ = read_srt(out.with_suffix(".srt"))[0]
    during_first_cue = drawn[int(first_start * SHORT_FPS) + 1:int(first_end * SHORT_FPS) - 1]  # before any caption
    assert len(during_first_cue) and during_first_cue.max() < 0.001, "subtitles drawn with --no-subtitles"
    assert_in_sync(out, sentences, SHORT_FPS)
    assert_reading_rules(out, sentences, 16)
    assert json.loads(out.with_suffix(".json").read_text())["voice"]["subtitles_burned_in"] is False


def test_a_recorded_file_takes_precedence_for_its_section(cli, media, short, sentences, tmp_path):
    """Section 2 has a recording (7 s, longer than its 6 s of picture): it plays instead of the synthesised voice,
    and the picture holds; section 1 keeps its synthesised sentences."""
    from synth import speech

    folder = tmp_path / "voice"
    folder.mkdir()
    speech(folder / "02.wav", 7.0, seed=5)
    out = media / "narrated" / "recorded.mp4"
    result = cli("short", NARRATED_SCENE, "--voice", "espeak", "--narration-dir", folder, "--width", 270,
                 "--out", out)
    assert result.exit_code == 0, result.output
    manifest = json.loads(out.with_suffix(".json").read_text())
    first, second = manifest["sections"]
    assert (first["voice"], second["voice"]) == ("espeak", "recorded")
    assert second["frames"] + second["held_frames"] == int(np.ceil(7.0 * SHORT_FPS - 1e-9))
    track = decoded_audio(out)
    said_in_second = {s["text"] for beat in second["narration"] for s in beat["sentences"]}
    for text, samples, _ in sentences:
        _, match = onset(track, samples)
        assert (match < 0.5) if text in said_in_second else (match > 0.9), (text, match)


# --- bad input ------------------------------------------------------------------------------------------------------


def _nothing_written(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


@pytest.mark.parametrize("engine, message", [("robot", "Unknown voice engine 'robot'"), ("espeak", "apt-get install")])
def test_unknown_or_missing_engine_fails_before_rendering(cli, failing_scene, tmp_path, monkeypatch, engine, message):
    if engine == "espeak":
        monkeypatch.setenv("PATH", "/nonexistent")  # espeak-ng not installed
    for command in ("short", "render"):
        out = tmp_path / command / "x.mp4"
        result = cli(command, failing_scene, "--voice", engine, "--out", out)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "rendering started" not in result.output and _nothing_written(out.parent)


@pytest.mark.parametrize("narration, message", [("  ", "Empty narration"), ("→ ≈ ……", "cannot speak")])
def test_narration_the_voice_cannot_read_is_a_clear_error(cli, media, tmp_path, narration, message):
    scene = tmp_path / "bad_narration.py"
    scene.write_text(
        "from manim import Circle, Create\nfrom shared.scene import ExplainerScene\n\n\n"
        "class BadNarration(ExplainerScene):\n"
        "    def construct(self):\n"
        "        self.next_section('开场')\n"
        f"        with self.voice({narration!r}):\n"
        "            self.play(Create(Circle()))\n", encoding="utf-8")
    out = tmp_path / "out" / "x.mp4"
    result = cli("short", scene, "--voice", "espeak", "--width", 270, "--out", out)
    assert result.exit_code == 1 and message in result.output and "BadNarration" in result.output, result.output
    assert "Traceback" not in result.output and _nothing_written(out.parent)


def test_voice_options_need_a_voice(cli, tmp_path):
    result = cli("short", NARRATED_SCENE, "--no-subtitles", "--out", tmp_path / "x.mp4")
    assert result.exit_code != 0 and "--no-subtitles needs --voice" in result.output
