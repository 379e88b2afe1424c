"""Choosing a section's *finished picture*: the frame a GIF opens on (its poster), a short video holds while the
narration finishes, and a cover shows by default.

A section often ends by clearing the stage (a fade-out before the next section), so its last frame can be empty.
The finished picture is the last *settled* frame (where a ``play``/``wait`` ended; the scene records them) that
still shows at least :data:`FINISHED_SHARE` of the content of the fullest settled frame. Content is the share of
pixels that differ clearly from the theme's background, measured on a small copy of the frame.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

FINISHED_SHARE = 0.5  # a settled frame with at least this share of the section's peak content is finished
CONTENT_THRESHOLD = 40  # a pixel counts as content when a channel differs this much (0-255) from the background
CONTENT_PROBE_WIDTH = 108  # px: plenty to tell a full frame from a faded-out one


def background_rgb(background: str) -> np.ndarray:
    """``"#0F1117"`` → ``array([15, 17, 23])``."""
    return np.array([int(background[i:i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)


def content_share(frames: np.ndarray, background: str) -> np.ndarray:
    """Share of each frame's pixels (``frames``: ``(..., H, W, 3)`` uint8) that differ from ``background``."""
    difference = np.abs(frames.astype(np.int16) - background_rgb(background)).max(axis=-1)
    return (difference > CONTENT_THRESHOLD).mean(axis=(-2, -1))


def png_content(path, background: str) -> float:
    """:func:`content_share` of one PNG frame, measured at :data:`CONTENT_PROBE_WIDTH` px wide."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").resize(
            (CONTENT_PROBE_WIDTH, max(1, round(image.height * CONTENT_PROBE_WIDTH / image.width))), Image.NEAREST)
    return float(content_share(np.asarray(small), background))


def finished_frame(n_frames: int, settled: list[int], content: Callable[[int], float]) -> int:
    """The finished picture among ``n_frames`` frames (0-based): the last of the ``settled`` frames and the last
    frame whose ``content(frame)`` reaches :data:`FINISHED_SHARE` of the highest among them; the last frame when
    the section shows nothing."""
    if n_frames <= 0:
        raise ValueError("a section with no frames has no finished picture")
    candidates = sorted({f for f in settled if 0 <= f < n_frames} | {n_frames - 1})
    shares = {f: content(f) for f in candidates}
    peak = max(shares.values())
    if peak <= 0:
        return n_frames - 1
    return max(f for f in candidates if shares[f] >= FINISHED_SHARE * peak)
