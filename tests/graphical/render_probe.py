"""Render one frame of text with the project's text factory and save it as PNG: ``python render_probe.py OUT.png``.

Run by tests in a subprocess whose fontconfig knows no fonts at all, to show the output does not depend on the
machine's fonts.
"""

import sys

import numpy as np
from manim import DOWN, Camera, VGroup, tempconfig
from PIL import Image


def render_probe() -> np.ndarray:
    from shared.text import formula, zh

    with tempconfig({"pixel_width": 480, "pixel_height": 270, "frame_rate": 15, "verbosity": "WARNING"}):
        from shared.layout import configure_frame

        configure_frame()
        group = VGroup(zh("旋转位置编码 RoPE", "title"), formula('theta_i = 10000^(-2i \\/ d) quad "第" i "对"'))
        group.arrange(DOWN)
        camera = Camera(background_color="#0F1117")
        camera.capture_mobject(group)
        return camera.pixel_array[..., :3].copy()


if __name__ == "__main__":
    Image.fromarray(render_probe()).save(sys.argv[1])
