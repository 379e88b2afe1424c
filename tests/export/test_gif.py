"""`explainer gif`: budget, frame limit, PSNR (re-measured with an independent decoder), themes, manifests, and
the search / failure paths."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
from PIL import Image, ImageSequence

from conftest import FIXTURE_SCENE, expected_section_seconds
from scripts.export.gif import MB, GifBudget, pick_frames
from scripts.export.render import RenderSpec, render
from scripts.export.scenes import resolve_scene

WIDTH, HEIGHT = 720, 405  # DESIGN §5: 720 px wide; 16:9


def manifests(folder):
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def gif_frames(path, fps):
    """Frames on the GIF's timeline through Pillow (the CLI decodes with ffmpeg: two decoders, one answer); a frame
    shown for n steps (gifsicle merges unchanged frames) is repeated n times."""
    frames = []
    with Image.open(path) as image:
        step = 1000 / fps
        for frame in ImageSequence.Iterator(image):
            frames += [np.asarray(frame.convert("RGB"), dtype=np.float64)] * round(frame.info["duration"] / step)
    return frames


def reference_frames(theme, manifest):
    """The rendered PNG frames at the GIF's size and times, straight from the render cache."""
    scene = resolve_scene(str(FIXTURE_SCENE))
    spec = RenderSpec(scene, theme, "16:9", manifest["rendered"]["width"], manifest["rendered"]["height"],
                      manifest["rendered"]["fps"], "frames")
    result = render(spec)  # cached by the export: returns at once
    section = result.sections[manifest["section_number"] - 1]
    frames = list(range(section["start_frame"], section["end_frame"]))
    picked = pick_frames(len(frames), manifest["rendered"]["fps"], manifest["fps"])
    assert manifest["width"] == manifest["rendered"]["width"], "re-measure expects an unscaled GIF"
    return [np.asarray(Image.open(result.frame_path(frames[i])).convert("RGB"), dtype=np.float64) for i in picked]


def test_one_gif_per_section_within_budget(dark_gifs):
    found = manifests(dark_gifs)
    assert [m["section"] for m in found] == ["开场", "旋转", "结论"]
    for m in found:
        gif = dark_gifs / m["gif"]
        assert gif.stat().st_size == m["bytes"] <= GifBudget().max_mb * MB
        assert m["frames"] <= 300
        assert m["psnr_db"] >= 40
        assert (m["width"], m["height"]) == (WIDTH, HEIGHT)
        with Image.open(gif) as image:
            assert image.size == (WIDTH, HEIGHT)
            assert image.n_frames == m["frames"] <= m["timeline_frames"]
            assert image.info.get("loop") == 0  # loops forever
            delays = []
            for index in range(image.n_frames):
                image.seek(index)
                delays.append(image.info["duration"])
        step_ms = 1000 / m["fps"]
        assert all(d % round(step_ms) == 0 for d in delays)  # whole steps (gifsicle may merge unchanged frames)
        assert sum(delays) == pytest.approx(m["timeline_frames"] * step_ms, abs=1)


def test_gif_duration_matches_section(dark_gifs):
    for m, seconds in zip(manifests(dark_gifs), expected_section_seconds()):
        assert m["timeline_frames"] / m["fps"] == pytest.approx(seconds, abs=1 / m["fps"])


def test_psnr_remeasured_with_pillow(dark_gifs):
    for m in manifests(dark_gifs):
        decoded = gif_frames(dark_gifs / m["gif"], m["fps"])
        reference = reference_frames("dark", m)
        assert len(decoded) == len(reference) == m["timeline_frames"]
        mse = np.mean([np.mean((d - r) ** 2) for d, r in zip(decoded, reference)])
        psnr = math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
        assert psnr >= 40
        assert psnr == pytest.approx(m["psnr_db"], abs=0.05)


def test_manifest_provenance(dark_gifs):
    digest = hashlib.sha256(FIXTURE_SCENE.read_bytes()).hexdigest()
    for m in manifests(dark_gifs):
        assert m["scene"] == "ExportFixture"
        assert m["scene_source_sha256"] == digest
        assert m["scene_numbers"] == {"turn_degrees": 120.0}  # shown with show_number() in the fixture
        # ...during section 2 only, so only that section's manifest lists it
        assert m["numbers"] == ({"turn_degrees": 120.0} if m["section"] == "旋转" else {})
        assert m["run_logs"] == {}  # the fixture reads no run log
        assert m["theme"] == "dark" and m["aspect"] == "16:9"
        assert m["duration_s"] > 0


_CODES = np.arange(256) / 255.0
SRGB_TO_LINEAR = np.where(_CODES <= 0.04045, _CODES / 12.92, ((_CODES + 0.055) / 1.055) ** 2.4)


def _luminance(frame):
    """Rec. 709 relative luminance of sRGB pixels (IEC 61966-2-1 decoding), 0 (black) to 1 (white), averaged."""
    linear = SRGB_TO_LINEAR[frame.astype(np.uint8)]
    return float(np.mean(linear @ np.array([0.2126, 0.7152, 0.0722])))


def test_light_theme_is_light(light_gifs, dark_gifs):
    for light, dark in zip(manifests(light_gifs), manifests(dark_gifs)):
        assert light["theme"] == "light"
        assert light["psnr_db"] >= 40 and light["bytes"] <= 6 * MB
        light_lum = np.mean([_luminance(f) for f in gif_frames(light_gifs / light["gif"], light["fps"])])
        dark_lum = np.mean([_luminance(f) for f in gif_frames(dark_gifs / dark["gif"], dark["fps"])])
        assert light_lum > 0.8, f"light GIF {light['gif']} has mean luminance {light_lum:.2f}"
        assert dark_lum < 0.05, f"dark GIF {dark['gif']} has mean luminance {dark_lum:.2f}"


def test_frame_limit_lowers_the_frame_rate(cli, media, dark_gifs):
    out = media / "gifs" / "few-frames"
    # Section 1 lasts 2 s: 40 frames at 20 fps; a 25-frame limit forces 12.5 fps (25 frames, 8 cs per frame).
    result = cli("gif", FIXTURE_SCENE, "--section", "1", "--max-frames", "25", "--out", out)
    assert result.exit_code == 0, result.output
    (m,) = manifests(out)
    assert m["frames"] <= 25 and m["fps"] == pytest.approx(12.5)
    assert m["psnr_db"] >= 40


def test_frame_rates_are_whole_centiseconds():
    rates = GifBudget().frame_rates()
    assert rates[0] == 20 and rates[-1] == 10
    for rate in rates:
        assert (100 / rate) == pytest.approx(round(100 / rate))


def test_pick_frames_nearest_in_time():
    assert pick_frames(40, 20, 20) == list(range(40))
    assert pick_frames(40, 20, 10) == list(range(0, 40, 2))
    picked = pick_frames(40, 20, 12.5)  # times k * 0.08 s → rendered frames at 0.05 s steps
    assert len(picked) == 25
    assert all(abs(i / 20 - k / 12.5) <= 0.5 / 20 + 1e-9 for k, i in enumerate(picked))


def test_impossible_size_budget_names_section_and_writes_nothing(cli, media, dark_gifs):
    out = media / "gifs" / "impossible"
    result = cli("gif", FIXTURE_SCENE, "--section", "开场", "--max-mb", "0.001", "--out", out)
    assert result.exit_code != 0
    assert "开场" in result.output and "0.001 MB" in result.output and "--max-mb" in result.output
    assert list(out.iterdir()) == []  # no GIF, no manifest, no temp file


def test_impossible_frame_limit(cli, media, dark_gifs):
    out = media / "gifs" / "impossible-frames"
    result = cli("gif", FIXTURE_SCENE, "--section", "1", "--max-frames", "5", "--out", out)
    assert result.exit_code != 0
    assert "开场" in result.output and "frames" in result.output and "next_section" in result.output
    assert list(out.iterdir()) == []


def test_budget_over_hard_cap_refused(cli, media):
    result = cli("gif", FIXTURE_SCENE, "--max-mb", "12", "--out", media / "gifs" / "cap")
    assert result.exit_code != 0 and "10 MB" in result.output
