"""Chinese text without a system CJK font: glyph coverage, the missing-glyph error, and rendered frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from frame_compare import assert_matches_control
from PIL import Image

from shared import text
from shared.text import FONT_FAMILY, FONT_FILES, MissingGlyphError, check_glyphs, font_codepoints, zh

ROOT = Path(__file__).resolve().parents[2]


def gb2312() -> list[str]:
    chars = []
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def test_font_covers_gb2312_ascii_greek_and_punctuation():
    have = font_codepoints()
    wanted = gb2312() + [chr(c) for c in range(0x20, 0x7F)] + list("αβγδθλμσφωΔΣΩ，。、：；？！“”（）《》—…·√≈≤≥→")
    lacking = [c for c in wanted if ord(c) not in have]
    assert not lacking, f"font lacks {lacking[:20]}"
    assert len([c for c in gb2312() if "\u4e00" <= c <= "\u9fff"]) == 6763


def test_font_files_are_the_renamed_ofl_subset():
    for path in FONT_FILES.values():
        font = TTFont(path)
        assert font["name"].getDebugName(1) == FONT_FAMILY
        assert "Open Font License" in font["name"].getDebugName(13)
    assert (ROOT / "shared" / "fonts" / "OFL.txt").read_text().count("SIL OPEN FONT LICENSE") == 1


def test_missing_glyph_names_the_character_and_the_fix():
    rare = "龘"  # U+9F98, outside GB2312
    assert ord(rare) not in font_codepoints()
    with pytest.raises(MissingGlyphError) as err:
        zh(f"三条龙 {rare} 和 \U00020000")
    message = str(err.value)
    assert "'龘' (U+9F98" in message and "U+20000" in message
    assert "EXTRA_CHARS" in message and "scripts/make_font_subset.py" in message
    check_glyphs("旋转位置编码 RoPE θ·√d ≈ 1.0")  # all present: no error


def test_line_length_limit_is_enforced():
    with pytest.raises(ValueError, match="characters wide"):
        zh("这一行字实在是太长了手机屏幕上根本放不下这么多字")


def test_typst_ignores_system_fonts():
    fonts = text._typst_fonts()
    families = set(fonts.families())
    assert FONT_FAMILY in families
    # only the vendored font and typst's embedded ones: nothing from the machine
    assert all(f.path is None or Path(f.path).resolve().parent == text.FONT_DIR for f in fonts.fonts())


def test_chinese_glyphs_are_real_glyphs_not_boxes():
    """Tofu boxes would look alike; distinct characters must give distinct ink."""
    from manim import Camera, tempconfig

    inks = []
    with tempconfig({"pixel_width": 200, "pixel_height": 200, "frame_width": 2, "frame_height": 2}):
        for ch in "中国位":
            camera = Camera(background_color="#000000")
            camera.capture_mobject(zh(ch, "title", color="#FFFFFF").scale_to_fit_height(1.4).move_to([0, 0, 0]))
            ink = camera.pixel_array[..., 0] > 128
            assert 0.1 < ink.mean() < 0.6
            inks.append(ink)
    for a in range(3):
        for b in range(a + 1, 3):
            assert (inks[a] != inks[b]).mean() > 0.05


def test_frame_is_identical_without_any_system_font(tmp_path):
    """Render in a subprocess whose fontconfig has no fonts at all; compare with this process and the control."""
    empty = tmp_path / "fonts.conf"
    empty.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig></fontconfig>')
    env = {**os.environ, "FONTCONFIG_FILE": str(empty), "HOME": str(tmp_path)}
    out = tmp_path / "probe.png"
    subprocess.run([sys.executable, str(Path(__file__).with_name("render_probe.py")), str(out)], env=env,
                   cwd=tmp_path, check=True, timeout=120)
    isolated = np.asarray(Image.open(out).convert("RGB"))
    sys.path.insert(0, str(Path(__file__).parent))
    from render_probe import render_probe

    np.testing.assert_array_equal(isolated, render_probe())
    assert_matches_control(isolated, "text/probe")
