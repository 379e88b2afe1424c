"""`explainer gif`: budget, frame limit, PSNR (re-measured with an independent decoder), posters, captions, themes,
manifests, only the chosen sections rendered, and the search / failure paths."""

from __future__ import annotations

import hashlib
import itertools
import json
import math

import numpy as np
import pytest
from PIL import Image, ImageSequence

from fixture_scene import FIXTURE_SCENE, expected_section_seconds
from scripts.export import MEDIA_ENV
from scripts.export.gif import MB, GifBudget, pick_frames
from scripts.export.render import RenderSpec, plan_workers, probe, render
from scripts.export.scenes import resolve_scene
from shared import theme
from shared.theme import DARK

# Under pytest-xdist these tests and the gallery's run in one worker, which renders the GIF fixtures once.
pytestmark = pytest.mark.xdist_group("export-gifs")

WIDTH, HEIGHT = 720, 960  # article GIFs are 720 px wide; the article aspect is 3:4
FPS = 20  # the default --fps-max, which the fixture's sections fit


def manifests(folder):
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


def gif_frames(path, fps):
    """Frames on the GIF's timeline through Pillow (the CLI decodes with ffmpeg: two decoders, one answer); a frame
    shown for n steps is repeated n times."""
    frames = []
    with Image.open(path) as image:
        step = 1000 / fps
        for frame in ImageSequence.Iterator(image):
            frames += [np.asarray(frame.convert("RGB"), dtype=np.float64)] * round(frame.info["duration"] / step)
    return frames


def rendered_section(theme_name, manifest):
    """The section's rendered frames, straight from the render cache (the export rendered them: returns at once)."""
    scene = resolve_scene(str(FIXTURE_SCENE))
    r = manifest["rendered"]
    spec = RenderSpec(scene, theme_name, manifest["aspect"], r["width"], r["height"], r["fps"], "frames")
    index = manifest["section_number"] - 1
    return render(spec, [index], probe(scene, manifest["aspect"])).section(index)


def load(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)


def reference_frames(theme_name, manifest):
    """What the GIF should show, computed from the rendered PNGs and the manifest's poster: the poster held, a
    linear cross-fade into the section's first frame, then the section at the GIF's frame times."""
    section = rendered_section(theme_name, manifest)
    assert manifest["width"] == manifest["rendered"]["width"], "re-measure expects an unscaled GIF"
    frames = [load(section.frame_path(i)) for i in pick_frames(section.frames, manifest["rendered"]["fps"],
                                                                manifest["fps"])]
    poster = manifest["poster"]
    if poster:
        still = load(section.frame_path(poster["frame"]))
        fade = poster["crossfade_frames"]
        blends = [np.rint((1 - k / (fade + 1)) * still + k / (fade + 1) * frames[0]) for k in range(1, fade + 1)]
        frames = [still] * poster["hold_frames"] + blends + frames
    return frames


def psnr(a, b):
    mse = np.mean([np.mean((x - y) ** 2) for x, y in zip(a, b)])
    return math.inf if mse == 0 else 10 * math.log10(255**2 / mse)


def content(frame, background=DARK.background):
    """Share of pixels that differ clearly from the background colour."""
    bg = np.array([int(background[i:i + 2], 16) for i in (1, 3, 5)])
    return float((np.abs(frame - bg).max(axis=2) > 40).mean())


def test_one_gif_per_section_within_budget(dark_gifs):
    found = manifests(dark_gifs)
    assert [m["section"] for m in found] == ["开场", "旋转", "结论"]
    for m in found:
        gif = dark_gifs / m["gif"]
        assert gif.stat().st_size == m["bytes"] <= GifBudget().max_mb * MB
        assert m["frames"] <= 300
        assert m["psnr_db"] >= 40
        assert (m["width"], m["height"]) == (WIDTH, HEIGHT) and m["aspect"] == "article"
        with Image.open(gif) as image:
            assert image.size == (WIDTH, HEIGHT)
            assert image.n_frames == m["frames"] <= m["timeline_frames"]
            assert image.info.get("loop") == 0  # loops forever
            delays = []
            for index in range(image.n_frames):
                image.seek(index)
                delays.append(image.info["duration"])
        step_ms = 1000 / m["fps"]
        assert all(d % round(step_ms) == 0 for d in delays)  # whole steps (a held frame is one longer frame)
        assert sum(delays) == pytest.approx(m["timeline_frames"] * step_ms, abs=1)


def test_gif_duration_matches_section(dark_gifs):
    for m, seconds in zip(manifests(dark_gifs), expected_section_seconds()):
        assert m["section_frames"] / m["fps"] == pytest.approx(seconds, abs=1 / m["fps"])
        hold, fade = round(1.0 * m["fps"]), round(0.5 * m["fps"])  # the poster: 1 s held, 0.5 s cross-fade
        assert (m["poster"]["hold_frames"], m["poster"]["crossfade_frames"]) == (hold, fade)
        assert m["timeline_frames"] == hold + fade + m["section_frames"]


def test_psnr_remeasured_with_pillow(dark_gifs):
    for m in manifests(dark_gifs):
        decoded = gif_frames(dark_gifs / m["gif"], m["fps"])
        reference = reference_frames("dark", m)
        assert len(decoded) == len(reference) == m["timeline_frames"]
        measured = psnr(decoded, reference)
        assert measured >= 40
        assert measured == pytest.approx(m["psnr_db"], abs=0.05)


def test_each_gif_opens_on_its_finished_picture(dark_gifs):
    """The poster is the last settled frame that still shows the section: the end of sections 1 and 2, and in
    section 3 (which ends by fading everything out) the frame after its wait, before the fade-out."""
    settled = [round(2 * theme.BEAT * FPS) - 1, round((theme.QUICK + theme.BEAT) * FPS) - 1,
               round((theme.QUICK + theme.BEAT) * FPS) - 1]
    for m, expected in zip(manifests(dark_gifs), settled):
        assert m["poster"]["frame"] == expected, m["section"]
        first = gif_frames(dark_gifs / m["gif"], m["fps"])[0]
        poster = load(rendered_section("dark", m).frame_path(expected))
        assert psnr([first], [poster]) >= 40
        with Image.open(dark_gifs / m["gif"]) as image:
            assert image.info["duration"] == 1000  # held one second as one GIF frame
        shown = gif_frames(dark_gifs / m["gif"], m["fps"])
        peak = max(content(f) for f in shown)
        assert content(first) >= 0.5 * peak, f"{m['gif']} opens on a near-empty frame"


def test_no_poster_starts_on_the_section(cli, media, dark_gifs):
    out = media / "gifs" / "no-poster"
    result = cli("gif", FIXTURE_SCENE, "--section", "1", "--no-poster", "--out", out)
    assert result.exit_code == 0, result.output
    (m,) = manifests(out)
    assert m["poster"] is None and m["timeline_frames"] == m["section_frames"] == round(2 * theme.BEAT * FPS)
    first = gif_frames(out / m["gif"], m["fps"])[0]
    assert psnr([first], [load(rendered_section("dark", m).frame_path(0))]) >= 40
    assert psnr(gif_frames(out / m["gif"], m["fps"]), reference_frames("dark", m)) >= 40


def test_poster_at_a_chosen_time(cli, media, dark_gifs):
    out = media / "gifs" / "poster-at"
    result = cli("gif", FIXTURE_SCENE, "--section", "2", "--poster-at", "0.5", "--out", out)
    assert result.exit_code == 0, result.output
    (m,) = manifests(out)
    assert m["poster"]["frame"] == round(0.5 * FPS) and "--poster-at" in m["poster"]["chosen"]
    assert psnr(gif_frames(out / m["gif"], m["fps"]), reference_frames("dark", m)) >= 40


def test_poster_time_outside_the_section(cli, media, tmp_path):
    result = cli("gif", FIXTURE_SCENE, "--section", "1", "--poster-at", "9", "--out", tmp_path)
    assert result.exit_code != 0 and "--poster-at 9" in result.output and "lasts 2.00 s" in result.output
    assert list(tmp_path.iterdir()) == []


def test_manifest_lists_what_was_drawn(dark_gifs):
    digest = hashlib.sha256(FIXTURE_SCENE.read_bytes()).hexdigest()
    for m in manifests(dark_gifs):
        assert m["scene"] == "ExportFixture"
        assert m["scene_source_sha256"] == digest
        assert m["run_logs"] == {}  # the fixture reads no run log
        assert m["theme"] == "dark" and m["aspect"] == "article"
        if m["section"] == "旋转":
            # the live angle, drawn at rest before and after the turn; the small print is not drawn in an
            # article GIF, so its number is not listed
            angle = m["numbers"]["arrow_angle_degrees"]
            assert angle["text"] == ["0", "120"]
            assert angle["value"] == pytest.approx([0.0, 120.0])
            assert set(m["numbers"]) == {"arrow_angle_degrees"}
        else:
            assert m["numbers"] == {}


def test_caption_files_hold_the_small_print(dark_gifs):
    for m in manifests(dark_gifs):
        caption = (dark_gifs / m["caption_file"]).read_text(encoding="utf-8")
        assert m["caption_file"] == m["gif"].replace(".gif", ".caption.txt")
        if m["section"] == "旋转":
            assert caption == "转 120°，逆时针\n" and m["caption"] == "转 120°，逆时针"
        else:
            assert caption == "" and m["caption"] == ""


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
    # Section 1 lasts 2 s and changes every frame: 40 frames at 20 fps; with --no-poster a 25-frame limit forces
    # 12.5 fps (25 frames, 8 cs per frame).
    result = cli("gif", FIXTURE_SCENE, "--section", "1", "--no-poster", "--max-frames", "25", "--out", out)
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
    assert list(out.iterdir()) == []  # no GIF, no caption, no manifest, no temp file


def test_impossible_frame_limit(cli, media, dark_gifs):
    out = media / "gifs" / "impossible-frames"
    result = cli("gif", FIXTURE_SCENE, "--section", "1", "--max-frames", "5", "--out", out)
    assert result.exit_code != 0
    assert "开场" in result.output and "frames" in result.output and "next_section" in result.output
    assert list(out.iterdir()) == []


def test_budget_over_hard_cap_refused(cli, media):
    result = cli("gif", FIXTURE_SCENE, "--max-mb", "12", "--out", media / "gifs" / "cap")
    assert result.exit_code != 0 and "10 MB" in result.output


def test_no_frame_rate_in_range_fails_before_rendering(cli, failing_scene, tmp_path):
    """15 fps is no GIF rate (100/15 cs is not whole): refused with the nearest rates, before manim starts."""
    result = cli("gif", failing_scene, "--fps-min", "15", "--fps-max", "15", "--out", tmp_path / "gifs")
    assert result.exit_code != 0
    assert "No GIF frame rate" in result.output and "14.3" in result.output and "16.7" in result.output
    assert "rendering started" not in result.output and not (tmp_path / "gifs").exists()


@pytest.mark.parametrize("args, message", [(["--width", "10"], "--width 10"),
                                           (["--aspect", "4:3"], "4:3"),
                                           (["--no-poster", "--poster-at", "1"], "contradict")])
def test_bad_gif_options_fail_before_rendering(cli, failing_scene, tmp_path, args, message):
    result = cli("gif", failing_scene, *args, "--out", tmp_path / "gifs")
    assert result.exit_code != 0 and message in result.output
    assert "rendering started" not in result.output


def test_unwritable_gif_folder_fails_before_rendering(cli, failing_scene, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("gif", failing_scene, "--out", blocker / "gifs")
    assert result.exit_code != 0 and "Cannot write to the output folder" in result.output
    assert "rendering started" not in result.output


def test_only_the_chosen_sections_are_rendered(cli, tmp_path, monkeypatch):
    monkeypatch.setenv(MEDIA_ENV, str(tmp_path / "media"))
    result = cli("gif", FIXTURE_SCENE, "--section", "2", "--out", tmp_path / "gifs")
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "media" / "cache" / "export_fixture").glob("frames-*")
    assert sorted(p.name for p in (folder / "sections").iterdir()) == ["001", "001.json"]
    assert [m["section"] for m in manifests(tmp_path / "gifs")] == ["旋转"]


def test_work_folders_of_dead_renders_are_removed(tmp_path, monkeypatch):
    """A render killed half-way leaves its work folder; the next render of that scene removes it."""
    import subprocess
    import sys

    monkeypatch.setenv(MEDIA_ENV, str(tmp_path / "media"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    scene = resolve_scene(str(FIXTURE_SCENE))
    probe_folder = tmp_path / "media" / "cache" / "export_fixture" / "probe-dark-16x9-240x135-15fps"
    stale = probe_folder.with_name(f"{probe_folder.name}.work-{dead.stdout.strip()}")
    (stale / "worker-0").mkdir(parents=True)
    probe(scene, "16:9")
    assert probe_folder.is_dir() and not stale.exists()


@pytest.mark.slow
def test_parallel_render_draws_the_serial_frames(media):
    """Three workers, each skipping the sections before its own, draw exactly the frames of one serial render."""
    scene = resolve_scene(str(FIXTURE_SCENE))
    plan = probe(scene, "16:9")
    spec = RenderSpec(scene, "dark", "16:9", 320, 180, 10.0, "frames")

    def hashes(jobs):
        result = render(spec, [0, 1, 2], plan, jobs=jobs, force=True)
        return {i: [hashlib.sha256(s.frame_path(k).read_bytes()).hexdigest() for k in range(s.frames)]
                for i, s in result.sections.items()}, {i: s.record for i, s in result.sections.items()}

    serial, serial_records = hashes(1)
    parallel, parallel_records = hashes(3)
    assert [len(serial[i]) for i in range(3)] == [round(s * 10) for s in expected_section_seconds()]
    assert parallel == serial
    for i in range(3):  # same numbers and small print; times may differ in the last bits (skipped plays sum)
        assert parallel_records[i]["numbers"] == serial_records[i]["numbers"]
        assert parallel_records[i]["fine_print"] == serial_records[i]["fine_print"]


def test_plan_workers_minimises_the_slowest_worker():
    """The split matches a brute-force search over every way to cut the sections into consecutive runs."""
    from scripts.export.render import WORKER_START_S

    construct = [2.0, 0.5, 0.5, 3.0, 0.2, 1.0]
    draw = [10.0, 4.0, 12.0, 6.0, 9.0, 2.0]
    wanted = [0, 1, 2, 3, 4, 5]

    def slowest(groups):
        return max(WORKER_START_S + sum(construct[: g[-1] + 1]) + sum(draw[i] for i in g) for g in groups)

    for jobs in (1, 2, 3, 4):
        best = min(slowest([wanted[a:b] for a, b in zip((0, *cuts), (*cuts, 6))])
                   for k in range(jobs) for cuts in itertools.combinations(range(1, 6), k))
        groups = plan_workers(wanted, construct, draw, jobs)
        assert len(groups) <= jobs and sorted(sum(groups, [])) == wanted
        assert slowest(groups) == pytest.approx(best)
    assert plan_workers([4, 1], construct, draw, 8) in ([[1], [4]], [[1, 4]])
    assert plan_workers([], construct, draw, 2) == []
