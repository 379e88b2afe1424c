"""Heatmap behaviour: colour scales, value morphs (including masking), the numbers drawn in cells, text contrast."""

from __future__ import annotations

import numpy as np
import pytest
from manim import ManimColor, tempconfig

from shared import theme
from shared.layout import PIXEL_SIZES, configure_frame
from shared.mobjects.heatmap import ColorScale, Heatmap, contrast_ratio, readable_on


@pytest.fixture(autouse=True)
def landscape_frame():
    width, height = PIXEL_SIZES["16:9"]["l"]
    with tempconfig({"pixel_width": width, "pixel_height": height, "verbosity": "WARNING"}):
        configure_frame()
        yield


def hex_of(color) -> str:
    return ManimColor(color).to_hex().upper()


def test_color_scales():
    pal = theme.palette()
    div = ColorScale.diverging(np.array([[-3.0, 1.0], [2.0, -np.inf]]))
    assert div.limit == 3.0
    assert hex_of(div.color(0.0)) == hex_of(pal.panel)
    assert hex_of(div.color(3.0)) == hex_of(pal.query) and hex_of(div.color(-9.0)) == hex_of(pal.key)
    seq = ColorScale.sequential(1.0)
    assert hex_of(seq.color(-0.5)) == hex_of(pal.panel) and hex_of(seq.color(1.0)) == hex_of(pal.value)


def test_morph_masking_and_numbers():
    pal = theme.palette()
    values = np.array([[0.5, -0.25], [1.0, 0.0]])
    hm = Heatmap(values, ColorScale.diverging(values), cell_width=1.0, numbers="{:.2f}", masked_text="−∞",
                 row_labels=["a", "b"], col_labels=["c", "d"], name="scores")
    assert [n.text() for n in hm.numbers] == ["0.50", "−0.25", "1.00", "0.00"]
    assert [n.number_name for n in hm.numbers] == ["scores[0,0]", "scores[0,1]", "scores[1,0]", "scores[1,1]"]
    assert all(m.get_fill_opacity() == 0 for m in hm.marks)
    masked = np.array([[0.5, -np.inf], [1.0, 0.0]])
    hm.set_values(masked, rows=[0])
    np.testing.assert_array_equal(hm.values, masked)
    assert hm.number(0, 1).text() == "" and hm.mark(0, 1).get_fill_opacity() == 1
    assert hex_of(hm.cell(0, 1).get_fill_color()) == hex_of(pal.background)
    weights = np.array([[1.0, 0.0], [0.2, -0.004]])
    hm.set_values(weights, scale=ColorScale.sequential(1.0))  # unmask: the mark goes, the number comes back
    assert hm.mark(0, 1).get_fill_opacity() == 0 and hm.number(0, 1).text() == "0.00"
    assert hm.number(1, 1).text() == "0.00"  # −0.004 rounds to zero: no minus sign
    assert hex_of(hm.cell(0, 0).get_fill_color()) == hex_of(pal.value)


def test_rows_morph_independently():
    values = np.zeros((3, 2))
    hm = Heatmap(values, ColorScale.sequential(1.0), cell_width=0.5)
    hm.set_values(np.ones((3, 2)), rows=[1])
    np.testing.assert_array_equal(hm.values, [[0, 0], [1, 1], [0, 0]])


def test_numbers_pick_the_readable_colour():
    pal = theme.palette()
    for fill in (pal.panel, pal.query, pal.value, pal.accent, pal.key):
        chosen = readable_on(fill)
        assert chosen in (pal.text, pal.background)
        other = pal.background if chosen == pal.text else pal.text
        assert contrast_ratio(chosen, fill) >= contrast_ratio(other, fill)
    assert contrast_ratio("#FFFFFF", "#000000") == pytest.approx(21.0)
