"""Reusable mobjects against control frames, in both aspects."""

from __future__ import annotations

import numpy as np
import pytest
from frame_compare import assert_matches_control
from manim import Camera, VGroup, tempconfig

from shared import theme
from shared.layout import PIXEL_SIZES, configure_frame, current_layout
from shared.math.rope import rope_decay_curve
from shared.mobjects.chart import AxisSpec, Chart
from shared.mobjects.clock import Clock
from shared.mobjects.tokens import TokenRow


def render(build, aspect: str) -> np.ndarray:
    width, height = PIXEL_SIZES[aspect]["l"]
    with tempconfig({"pixel_width": width, "pixel_height": height, "verbosity": "WARNING"}):
        configure_frame()
        mob = build(current_layout())
        camera = Camera(background_color=theme.palette().background)
        camera.capture_mobject(mob)
        return camera.pixel_array


def tokens_and_clock(layout):
    pal = theme.palette()
    row = TokenRow(["我", "爱", "机器", "学习"])
    clocks = VGroup(*(Clock(0.8, lambda a=a: a, pal.query) for a in (0.0, 1.0, 2.5)))
    top, bottom = layout.figure.rows(2, gap=0.3)
    top.fit(row)
    bottom.fit(clocks.arrange())
    return VGroup(row, clocks)


def decay_chart(layout):
    d = np.arange(0, 257)
    chart = Chart(layout.figure, AxisSpec(0, 256, [(0, "0"), (128, "128"), (256, "256")], "相对距离"),
                  AxisSpec(0, 40, [(0, "0"), (20, "20"), (40, "40")], "上界"))
    return VGroup(chart, chart.polyline(d, rope_decay_curve(128, d), theme.palette().query))


@pytest.mark.parametrize("aspect", ["16:9", "9:16"])
@pytest.mark.parametrize("build", [tokens_and_clock, decay_chart])
def test_mobject_frames(build, aspect):
    assert_matches_control(render(build, aspect), f"mobjects/{build.__name__}_{aspect.replace(':', 'x')}")
