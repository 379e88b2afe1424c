"""LiveBars follows its data every frame (geometry read back from the mobjects), and interpolate_rows interpolates."""

from __future__ import annotations

import numpy as np
import pytest
from manim import ValueTracker, tempconfig

from shared.layout import PIXEL_SIZES, configure_frame, current_layout
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.histogram import LiveBars, interpolate_rows

ROWS = np.array([[0.0, 10.0, -4.0], [8.0, 2.0, 4.0], [4.0, 6.0, 0.0]])


def test_interpolate_rows():
    np.testing.assert_array_equal(interpolate_rows(ROWS, 1), ROWS[1])
    np.testing.assert_allclose(interpolate_rows(ROWS, 0.25), 0.75 * ROWS[0] + 0.25 * ROWS[1])
    np.testing.assert_allclose(interpolate_rows(ROWS, 1.5), (ROWS[1] + ROWS[2]) / 2)
    np.testing.assert_array_equal(interpolate_rows(ROWS, -3), ROWS[0])  # clipped
    np.testing.assert_array_equal(interpolate_rows(ROWS, 99), ROWS[-1])


@pytest.mark.parametrize("aspect", ["16:9", "9:16"])
def test_bars_follow_the_tracker(aspect):
    width, height = PIXEL_SIZES[aspect]["l"]
    with tempconfig({"pixel_width": width, "pixel_height": height, "verbosity": "WARNING"}):
        configure_frame()
        chart = Chart(current_layout().figure, AxisSpec(-0.5, 2.5, [(0, "a"), (1, "b"), (2, "c")]),
                      AxisSpec(-5, 10, [(-5, "−5"), (0, "0"), (10, "10")], "值"))
        t = ValueTracker(0)
        bars = LiveBars(chart, [0, 1, 2], lambda: interpolate_rows(ROWS, t.get_value()), "#FF0000", baseline=0.0,
                        label_fmt="{:.1f}", label_name="heights")
        assert [label.number_name for label in bars.labels] == ["heights[0]", "heights[1]", "heights[2]"]
        for value in (0.0, 0.5, 2.0):
            t.set_value(value)
            bars.update(0)
            expected = interpolate_rows(ROWS, value)
            for i, (bar, label) in enumerate(zip(bars.bars, bars.labels)):
                zero, end = chart.c2p(i, 0.0), chart.c2p(i, expected[i])
                assert bar.get_center()[0] == pytest.approx(zero[0])
                if abs(expected[i]) > 1e-9:
                    assert bar.height == pytest.approx(abs(end[1] - zero[1]), abs=1e-6)
                    # Upward bars from the baseline, downward ones below it, the number at the far end.
                    low, high = sorted((zero[1], end[1]))
                    assert bar.get_bottom()[1] == pytest.approx(low) and bar.get_top()[1] == pytest.approx(high)
                    if expected[i] > 0:
                        assert label.get_bottom()[1] > bar.get_top()[1]
                    else:
                        assert label.get_top()[1] < bar.get_bottom()[1]
                else:
                    assert bar.height < 1e-2  # a hairline, never a degenerate path
                assert label.text() == f"{expected[i]:.1f}".replace("-", "−")


def test_written_numbers_need_a_name():
    """Numbers a chart writes are recorded under a name, so the scene's inventory can say what each one is."""
    from shared.mobjects.heatmap import ColorScale, Heatmap

    with tempconfig({"verbosity": "WARNING"}):
        configure_frame()
        chart = Chart(current_layout().figure, AxisSpec(-0.5, 2.5, [(0, "a"), (1, "b"), (2, "c")]),
                      AxisSpec(-5, 10, [(-5, "−5"), (0, "0"), (10, "10")], "值"))
        with pytest.raises(ValueError, match="label_name"):
            LiveBars(chart, [0, 1, 2], lambda: ROWS[0], "#FF0000", label_fmt="{:.1f}")
        with pytest.raises(ValueError, match="needs a name"):
            Heatmap(ROWS, ColorScale.sequential(10.0), cell_width=0.5, numbers="{:.1f}")
