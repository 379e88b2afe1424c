"""`explainer short`: 1080×1920 H.264 yuv420p + AAC 48 kHz with faststart; held frames while narration runs on;
loudness −14 LUFS ±1 LU and true peak ≤ −1 dBTP measured independently (pyloudnorm, 4× oversampled peak); bad audio
and bad output paths fail cleanly."""

from __future__ import annotations

import math
import struct

import av
import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from fixture_scene import FIXTURE_SCENE, expected_section_seconds

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export-short")]  # one worker renders the shorts
FPS = 30


@pytest.fixture(scope="session")
def narrated(cli, media, audio):
    out = media / "shorts" / "narrated.mp4"
    result = cli("short", FIXTURE_SCENE, "--narration-dir", audio["narration_dir"], "--bgm", audio["bgm"],
                 "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def silent(cli, media):
    out = media / "shorts" / "silent.mp4"
    result = cli("short", FIXTURE_SCENE, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def probe_mp4(path):
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        info = {
            "codec": video.codec_context.name, "width": video.codec_context.width,
            "height": video.codec_context.height, "pix_fmt": video.codec_context.pix_fmt,
            "rate": float(video.average_rate), "audio_codec": audio.codec_context.name,
            "sample_rate": audio.codec_context.sample_rate, "channels": audio.codec_context.layout.nb_channels,
        }
        info["frames"] = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1).T
    info["samples"] = samples.astype(np.float64)
    return info


def top_level_boxes(path):
    boxes, data = [], path.read_bytes()
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        offset += size
    return boxes


def expected_frames(section_seconds, narration_seconds):
    """Each section lasts max(video, narration), in whole frames."""
    return sum(max(round(v * FPS), math.ceil(n * FPS - 1e-9)) for v, n in zip(section_seconds, narration_seconds))


def loudness(samples, rate):
    integrated = pyloudnorm.Meter(rate).integrated_loudness(samples)
    true_peak = 20 * np.log10(np.max(np.abs(resample_poly(samples, 4, 1, axis=0))))  # BS.1770 4× oversampling
    return integrated, true_peak


def test_narrated_short_format(narrated):
    info = probe_mp4(narrated)
    assert (info["codec"], info["width"], info["height"], info["pix_fmt"]) == ("h264", 1080, 1920, "yuv420p")
    assert info["rate"] == FPS
    assert (info["audio_codec"], info["sample_rate"], info["channels"]) == ("aac", 48000, 2)
    boxes = top_level_boxes(narrated)
    assert boxes.index("moov") < boxes.index("mdat"), f"not faststart: {boxes}"


def test_narrated_short_holds_frames_for_longer_narration(narrated, audio):
    info = probe_mp4(narrated)
    frames = expected_frames(expected_section_seconds(), audio["narration_seconds"])
    assert frames > round(sum(expected_section_seconds()) * FPS)  # narration is longer in sections 2 and 3
    assert info["frames"] == frames
    assert len(info["samples"]) / 48000 == pytest.approx(frames / FPS, abs=0.05)


def _content(frame, background):
    """Share of pixels that differ clearly from the background colour."""
    return float((np.abs(frame.astype(int) - background).max(axis=2) > 40).mean())


def test_hold_shows_the_finished_picture_not_the_fade_out(narrated, audio):
    """Section 3 fades everything out at its end; while its longer narration finishes, the hold must show the
    settled picture before the fade, and the fade-out must still play at the very end."""
    from shared.theme import DARK

    background = np.array([int(DARK.background[i:i + 2], 16) for i in (1, 3, 5)])
    seconds, voice = expected_section_seconds(), audio["narration_seconds"]
    start = sum(max(round(v * FPS), math.ceil(n * FPS - 1e-9)) for v, n in zip(seconds[:2], voice[:2]))
    held = math.ceil(voice[2] * FPS - 1e-9) - round(seconds[2] * FPS)
    assert held > 0
    with av.open(str(narrated)) as container:
        frames = [f.to_ndarray(format="rgb24")[::8, ::8] for f in container.decode(video=0)]
    section = [_content(f, background) for f in frames[start:]]
    peak = max(section)
    fade_frames = round(0.5 * FPS)  # theme.QUICK
    hold_region = section[-fade_frames - held: -fade_frames]
    assert len(hold_region) == held and min(hold_region) >= 0.5 * peak, "the hold shows a faded frame"
    assert section[-1] < 0.1 * peak, "the closing fade-out did not play"


def test_narrated_short_loudness(narrated):
    samples = probe_mp4(narrated)["samples"]
    integrated, true_peak = loudness(samples, 48000)
    assert abs(integrated - (-14.0)) <= 1.0, integrated
    assert true_peak <= -1.0, true_peak


def test_single_track_on_chosen_sections_holds_the_end(cli, media, audio):
    out = media / "shorts" / "track.mp4"
    result = cli("short", FIXTURE_SCENE, "--sections", "1", "--sections", "结论", "--narration",
                 audio["long_track"], "--out", out)
    assert result.exit_code == 0, result.output
    info = probe_mp4(out)
    seconds = expected_section_seconds()
    video_frames = round((seconds[0] + seconds[2]) * FPS)
    track_frames = math.ceil(audio["long_track_seconds"] * FPS - 1e-9)
    assert track_frames > video_frames
    assert info["frames"] == track_frames
    integrated, true_peak = loudness(info["samples"], 48000)
    assert abs(integrated + 14.0) <= 1.0 and true_peak <= -1.0


def test_silent_short_has_a_silent_aac_track(silent):
    info = probe_mp4(silent)
    assert (info["audio_codec"], info["sample_rate"]) == ("aac", 48000)
    assert info["frames"] == round(sum(expected_section_seconds()) * FPS)
    assert np.max(np.abs(info["samples"])) < 1e-4


def _no_mp4(folder):
    return not folder.exists() or not [p for p in folder.iterdir() if p.suffix in (".mp4", ".json") or p.name.startswith(".")]


def test_missing_narration_file(cli, media, tmp_path):
    out = tmp_path / "out" / "x.mp4"
    result = cli("short", FIXTURE_SCENE, "--narration", tmp_path / "nope.wav", "--out", out)
    assert result.exit_code != 0 and "nope.wav" in result.output and "does not exist" in result.output
    assert _no_mp4(out.parent)


def test_corrupt_music_file(cli, media, audio, tmp_path):
    out = tmp_path / "out" / "x.mp4"
    result = cli("short", FIXTURE_SCENE, "--bgm", audio["corrupt"], "--out", out)
    assert result.exit_code != 0 and "corrupt.wav" in result.output and "not readable audio" in result.output
    assert _no_mp4(out.parent)


def test_corrupt_narration_in_folder(cli, media, audio, tmp_path):
    folder = tmp_path / "narration"
    folder.mkdir()
    (folder / "01.wav").write_bytes(audio["corrupt"].read_bytes())
    out = tmp_path / "out" / "x.mp4"
    result = cli("short", FIXTURE_SCENE, "--narration-dir", folder, "--out", out)
    assert result.exit_code != 0 and "01.wav" in result.output
    assert _no_mp4(out.parent)


def test_narration_file_matching_no_section(cli, media, audio, tmp_path):
    folder = tmp_path / "narration"
    folder.mkdir()
    (folder / "07-extra.wav").write_bytes(audio["bgm"].read_bytes())
    result = cli("short", FIXTURE_SCENE, "--narration-dir", folder, "--out", tmp_path / "x.mp4")
    assert result.exit_code != 0 and "07-extra.wav" in result.output and "1. 开场" in result.output


def test_output_never_overwrites_an_input(cli, media, audio, tmp_path):
    track = tmp_path / "voice.mp4"  # narration may come in an .mp4; --out naming it must not replace it
    track.write_bytes(audio["long_track"].read_bytes())
    before = track.read_bytes()
    result = cli("short", FIXTURE_SCENE, "--narration", track, "--out", track)
    assert result.exit_code != 0 and "one of the inputs" in result.output
    assert track.read_bytes() == before


def test_output_must_be_mp4(cli, media, tmp_path):
    result = cli("short", FIXTURE_SCENE, "--out", tmp_path / "x.mov")
    assert result.exit_code != 0 and ".mp4" in result.output


def test_unwritable_output_folder(cli, media, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("a file, not a folder")
    result = cli("short", FIXTURE_SCENE, "--out", blocker / "sub" / "x.mp4")
    assert result.exit_code != 0 and "Cannot write" in result.output
    assert blocker.read_text() == "a file, not a folder"
