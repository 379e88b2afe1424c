"""CLI behaviour without rendering much: scene and section lookup, clear errors, the installed console script,
`explainer list` and `explainer doctor`, the narration-file rule."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixture_scene import FIXTURE_SCENE
from scripts.export import ExportError
from scripts.export.audio import narration_files
from scripts.export.scenes import select_sections

SECTIONS = [{"name": "开场", "start": 0, "end": 2}, {"name": "旋转", "start": 2, "end": 3.5},
            {"name": "结论", "start": 3.5, "end": 5}]


def test_unknown_scene_lists_topics(cli):
    result = cli("gif", "no-such-topic")
    assert result.exit_code != 0
    assert "Unknown scene 'no-such-topic'" in result.output and "Topics in scenes/" in result.output


def test_missing_scene_file(cli, tmp_path):
    result = cli("short", tmp_path / "missing.py")
    assert result.exit_code != 0 and "does not exist" in result.output


def test_file_without_explainer_scene(cli, tmp_path):
    path = tmp_path / "plain.py"
    path.write_text("from manim import Scene\n\nclass Plain(Scene):\n    pass\n")
    result = cli("gif", path)
    assert result.exit_code != 0 and "no ExplainerScene subclass" in result.output


def test_unknown_section_lists_sections(cli, tmp_path):
    result = cli("gif", FIXTURE_SCENE, "--section", "不存在", "--out", tmp_path)
    assert result.exit_code != 0
    assert "Unknown section '不存在'" in result.output and "1. 开场" in result.output and "3. 结论" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, out", [("render", "sub/x.mp4"), ("short", "sub/x.mp4"), ("cover", "sub")])
def test_unwritable_output_fails_before_rendering(cli, failing_scene, tmp_path, command, out):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli(command, failing_scene, "--out", blocker / out)
    assert result.exit_code != 0 and "Cannot write" in result.output
    assert "rendering started" not in result.output


def test_render_refuses_a_non_mp4_name_before_rendering(cli, failing_scene, tmp_path):
    result = cli("render", failing_scene, "--out", tmp_path / "x.mov")
    assert result.exit_code != 0 and ".mp4" in result.output and "rendering started" not in result.output


def test_jobs_must_be_positive(cli, failing_scene, tmp_path):
    result = cli("render", failing_scene, "--jobs", "0", "--out", tmp_path / "x.mp4")
    assert result.exit_code != 0 and "--jobs" in result.output


def test_aspect_choices_come_from_the_layout_presets(cli):
    from shared.layout import ASPECTS

    for command in ("render", "gif"):
        result = cli(command, "--help")
        assert all(name in result.output for name in ASPECTS), result.output


def test_list_shows_sections(cli):
    result = cli("list", FIXTURE_SCENE)
    assert result.exit_code == 0, result.output
    for name in ("开场", "旋转", "结论", "ExportFixture"):
        assert name in result.output


def test_console_script_reports_errors(media):
    script = Path(sys.executable).parent / "explainer"
    if not script.exists():
        script = shutil.which("explainer")
    assert script, "the `explainer` console script is not installed (pip install -e .)"
    proc = subprocess.run([str(script), "gif", "no-such-topic"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Error: Unknown scene 'no-such-topic'" in proc.stderr


def test_select_sections_by_name_and_number():
    assert select_sections(SECTIONS, []) == [0, 1, 2]
    assert select_sections(SECTIONS, ["3", "开场"]) == [2, 0]
    with pytest.raises(ExportError, match="Unknown section '4'"):
        select_sections(SECTIONS, ["4"])


def test_narration_file_rule(tmp_path):
    for name in ("01.wav", "2-旋转.mp3", "结论.m4a", ".hidden.wav", ".DS_Store"):
        (tmp_path / name).write_bytes(b"")
    found = narration_files(tmp_path, SECTIONS, [0, 1, 2])
    assert {i: p.name for i, p in found.items()} == {0: "01.wav", 1: "2-旋转.mp3", 2: "结论.m4a"}
    assert set(narration_files(tmp_path, SECTIONS, [1])) == {1}  # files of sections not chosen are left out
    (tmp_path / "1_again.wav").write_bytes(b"")
    with pytest.raises(ExportError, match="Several narration files"):
        narration_files(tmp_path, SECTIONS, [0, 1, 2])


@pytest.mark.parametrize("stray", ["readme.txt", "02-旋转.wav.bak", "originals/"])
def test_narration_folder_refuses_what_is_not_audio(tmp_path, stray):
    (tmp_path / "01.wav").write_bytes(b"")
    if stray.endswith("/"):
        (tmp_path / stray).mkdir()
    else:
        (tmp_path / stray).write_text("notes")
    with pytest.raises(ExportError) as error:
        narration_files(tmp_path, SECTIONS, [0, 1, 2])
    assert stray in str(error.value) and "not audio" in str(error.value) and ".wav" in str(error.value)


def test_doctor_passes_here(cli):
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    assert "ffmpeg" in result.output and "Ready" in result.output


def test_doctor_fails_without_the_font(cli, monkeypatch):
    import shared.text

    def no_font():
        raise FileNotFoundError("Vendored font missing: ExplainerSansSC-Regular.otf")

    monkeypatch.setattr(shared.text, "font_codepoints", no_font)
    result = cli("doctor")
    assert result.exit_code == 1
    assert "CJK font" in result.output and "MISSING" in result.output and "make_font_subset" in result.output


def test_narration_after_a_held_frame_moves_by_the_hold():
    """A section starting 10 s into the video that holds a frame for 1.5 s after its first 2 s: what it says before
    the hold plays at once, what it says from the hold on plays 1.5 s later."""
    from scripts.export.narration import Placement

    where = Placement(10.0, hold_after_s=2.0, held_s=1.5)
    assert [where.time(t) for t in (0.0, 1.9, 2.0, 3.0)] == pytest.approx([10.0, 11.9, 13.5, 14.5])
    assert Placement(4.0).time(3.0) == pytest.approx(7.0)
