"""The export tests' fixture scene and its expected timing. (A module of its own, not conftest.py: test files in
several folders importing ``conftest`` would get whichever folder's conftest was loaded last.)"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SCENE = ROOT / "tests" / "fixtures" / "export_fixture.py"


def expected_section_seconds() -> list[float]:
    """The fixture's section lengths, from its own config and the theme's timing constants (not from a render)."""
    from shared import theme

    step = theme.BEAT
    return [2 * step, theme.QUICK + step, theme.QUICK + step + theme.QUICK]
