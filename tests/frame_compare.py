"""Frame comparison against committed control images (manim's frames_comparison idea, as plain PNGs).

Controls live in ``tests/graphical/control_data/``. Regenerate them deliberately, then look at them and commit:

    REGENERATE_CONTROLS=1 .venv/bin/pytest tests/graphical tests/scenes
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

CONTROL_DIR = Path(__file__).resolve().parent / "graphical" / "control_data"
REGENERATE = os.environ.get("REGENERATE_CONTROLS") == "1"
# Cairo output is deterministic for a given build; the tolerance only absorbs antialiasing differences.
MEAN_ABS_TOLERANCE = 1.5  # grey levels
CHANGED_PIXEL_FRACTION = 0.005  # pixels differing by more than 48 levels


def assert_matches_control(frame: np.ndarray, name: str) -> None:
    """Compare an RGB(A) frame with ``control_data/<name>.png``; on mismatch save the frame beside the test run."""
    rgb = np.asarray(frame)[..., :3].astype(np.uint8)
    path = CONTROL_DIR / f"{name}.png"
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(path, optimize=True)
        return
    assert path.exists(), f"No control frame {path}; create it with REGENERATE_CONTROLS=1 (see {__file__})"
    control = np.asarray(Image.open(path).convert("RGB"))
    assert control.shape == rgb.shape, f"{name}: frame is {rgb.shape}, control {control.shape}"
    diff = np.abs(control.astype(int) - rgb.astype(int))
    mean, changed = diff.mean(), (diff.max(axis=-1) > 48).mean()
    if mean > MEAN_ABS_TOLERANCE or changed > CHANGED_PIXEL_FRACTION:
        out = Path(os.environ.get("TMPDIR", "/tmp")) / "frame_mismatch" / f"{name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(out)
        raise AssertionError(
            f"{name}: differs from its control (mean |Δ| {mean:.2f}, {changed:.2%} pixels changed); "
            f"this frame was saved to {out}"
        )
