"""Aspect detection, safe areas, regions, theme constants, and that the layout check really catches problems."""

from __future__ import annotations

import dataclasses

import pytest
from manim import ORIGIN, RIGHT, Square, VGroup, tempconfig

from shared import theme
from shared.checks import layout_problems
from shared.layout import (
    ARTICLE_WIDTH_CSS,
    ASPECTS,
    LANDSCAPE,
    PIXEL_SIZES,
    aspect_for_pixels,
    configure_frame,
    current_layout,
    layout_for,
)
from shared.text import em_size, zh


@pytest.mark.parametrize("pixels,name", [((1920, 1080), "16:9"), ((854, 480), "16:9"), ((1080, 1920), "9:16"),
                                         ((480, 854), "9:16"), ((1080, 1080), "1:1"), ((3840, 2160), "16:9"),
                                         ((720, 960), "article"), ((1080, 1440), "article"), ((576, 768), "article")])
def test_aspect_detected_from_pixels(pixels, name):
    assert aspect_for_pixels(*pixels).name == name


@pytest.mark.parametrize("pixels", [(1000, 300), (1280, 1024), (1080, 2400)])
def test_a_shape_with_no_layout_is_refused_not_stretched(pixels):
    """Laying a scene out for the nearest preset and showing it at another shape would stretch it."""
    with pytest.raises(ValueError, match="has no layout.*-r 1080,1920"):
        aspect_for_pixels(*pixels)


def test_portrait_frame_is_9_by_16_not_manims_default():
    """manim issue #3604: -r 1080,1920 alone leaves frame_width 14.2; configure_frame fixes it."""
    with tempconfig({"pixel_width": 1080, "pixel_height": 1920}):
        from manim import config

        aspect = configure_frame(config)
        assert (config.frame_width, config.frame_height) == (9.0, 16.0) and aspect.is_portrait


def test_portrait_safe_band_in_pixels():
    safe = layout_for(ASPECTS["9:16"]).safe
    px = 1920 / 16  # pixels per unit at 1080×1920
    assert round((8 - safe.top) * px) == 250 and round((safe.bottom + 8) * px) == 500
    assert round((4.5 - safe.right) * px) == 180


@pytest.mark.parametrize("name", list(ASPECTS))
def test_regions_stack_inside_the_safe_area(name):
    layout = layout_for(ASPECTS[name])
    assert layout.title.bottom > layout.figure.top > layout.figure.bottom > layout.caption.top
    for region in (layout.title, layout.figure, layout.caption):
        assert layout.safe.contains(region.left, region.right, region.bottom, region.top)
    a, b = layout.panels(2)
    if layout.is_portrait:
        assert a.bottom > b.top  # stacked
    else:
        assert a.right < b.left  # side by side


@pytest.mark.parametrize("aspect", list(ASPECTS))
def test_text_sizes_meet_the_css_px_minimum_in_every_aspect(aspect):
    """Every role, unscaled, is legible on the screen its aspect is made for (captions ≥ 14, the rest ≥ 11 CSS px)."""
    layout = layout_for(ASPECTS[aspect])
    for role in theme.TEXT_ROLES:
        assert layout.css_px(layout.text_em(role)) >= theme.MIN_TEXT_CSS[role], (aspect, role)
    sizes = theme.TEXT_EM[aspect]
    assert sizes["title"] > sizes["body"] > sizes["label"] >= sizes["small"]


def test_css_px_are_measured_at_the_display_width():
    """An article GIF is seen 343 CSS px wide: the 3:4 frame is 9 units wide, so a unit is 343 / 9 CSS px."""
    article = layout_for(ASPECTS["article"])
    assert article.css_px(9.0) == pytest.approx(343)
    assert ASPECTS["article"].ratio == pytest.approx(3 / 4) and not ASPECTS["article"].shows_fine_print
    # Today's 16:9 small print (1/24 of the height) seen in an article column would be 8 CSS px: too small there.
    landscape_small_in_article = 8.0 / 24 * 343 / LANDSCAPE.frame_width
    assert landscape_small_in_article < theme.MIN_TEXT_CSS["small"]


def test_old_16x9_small_print_fails_the_check_at_article_width():
    """The check in CSS px fails on the 16:9 notes shown in an article column (the old 1/24 rule passed them)."""
    article_width = {"16:9": dataclasses.replace(LANDSCAPE, display_width_css=ARTICLE_WIDTH_CSS)}
    width, height = PIXEL_SIZES["16:9"]["l"]
    with tempconfig({"pixel_width": width, "pixel_height": height}):
        configure_frame()
        note = zh("真实训练：8 专家", "small").move_to(ORIGIN)
        note.untraced = ""
        on_phone_landscape = layout_for(LANDSCAPE)
        assert layout_problems([note], on_phone_landscape) == []
        in_article = layout_for(article_width["16:9"])
        problems = layout_problems([note], in_article)
        assert any("CSS px" in p and "at least 11" in p for p in problems), problems


def test_theme_from_environment(monkeypatch):
    monkeypatch.setenv(theme.THEME_ENV, "light")
    assert theme.palette().name == "light"
    monkeypatch.setenv(theme.THEME_ENV, "dark")
    assert theme.palette().background == theme.DARK.background
    monkeypatch.setenv(theme.THEME_ENV, "sepia")
    with pytest.raises(ValueError, match="dark, light"):
        theme.palette()


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_light_theme_is_light_and_text_contrasts():
    assert _luminance(theme.LIGHT.background) > 0.9 > 0.1 > _luminance(theme.DARK.background)
    for pal in (theme.DARK, theme.LIGHT):
        assert abs(_luminance(pal.text) - _luminance(pal.background)) > 0.7


@pytest.mark.parametrize("aspect", ["16:9", "9:16"])
def test_layout_check_catches_problems(aspect):
    width, height = PIXEL_SIZES[aspect]["l"]
    with tempconfig({"pixel_width": width, "pixel_height": height}):
        configure_frame()
        layout = current_layout()
        good = layout.title.place(zh("标题", "title"))
        assert layout_problems([good], layout) == []
        outside = zh("出界了", "body").move_to([layout.frame.right, 0, 0])
        assert any("outside" in p for p in layout_problems([outside], layout))
        tiny = zh("小字", "small").scale(0.5)
        assert layout.css_px(em_size(tiny)) < theme.MIN_TEXT_CSS["small"]
        assert any("CSS px" in p for p in layout_problems([tiny], layout))
        a, b = zh("重叠", "body"), zh("重叠", "body").shift(0.1 * RIGHT)
        assert any("overlaps" in p for p in layout_problems([a, b], layout))
        # side by side with no gap reads as one word; a space's width apart reads as two
        touching = zh("挨着", "label", prose=False).next_to(a, RIGHT, buff=0.01)
        assert any("touches" in p for p in layout_problems([a, touching], layout))
        apart = zh("分开", "label", prose=False).next_to(a, RIGHT, buff=0.3 * em_size(a))
        assert layout_problems([a, apart], layout) == []
        lines = VGroup(*(zh(f"第{'一二三四五'[i]}行", "body") for i in range(5))).arrange(direction=[0, -1, 0])
        layout.figure.fit(lines)
        assert any("lines of prose" in p for p in layout_problems([lines], layout))
        shape = Square(side_length=100)
        assert any("Square" in p for p in layout_problems([shape], layout))
        shape.layout_exempt = True
        assert layout_problems([shape], layout) == []
