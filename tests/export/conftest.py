"""Shared fixtures for the export tests: a private media folder for the whole session (renders are cached there and
reused across tests), the CLI runner, synthetic audio, the fixture scene's GIFs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # synth.py, fixture_scene.py

from fixture_scene import FIXTURE_SCENE  # noqa: E402

from scripts.export import MEDIA_ENV  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: renders at 1080×1920 or runs a browser (seconds, not milliseconds)")


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    previous = os.environ.get(MEDIA_ENV)
    os.environ[MEDIA_ENV] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop(MEDIA_ENV, None)
    else:
        os.environ[MEDIA_ENV] = previous


@pytest.fixture(scope="session")
def cli(media):
    """Run ``explainer ARGS...`` in-process; returns click's Result (exit_code, output)."""
    from scripts.cli import main

    def run(*args):
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture(scope="session")
def audio(tmp_path_factory):
    """Synthetic narration per section (1.2 s, 3.0 s, 2.6 s; named by number, number-name and name), music, a long
    single narration track and a corrupt file."""
    from synth import corrupt, music, speech

    folder = tmp_path_factory.mktemp("audio")
    narration = folder / "narration"
    narration.mkdir()
    speech(narration / "01.wav", 1.2, seed=1)
    speech(narration / "2-旋转.wav", 3.0, seed=2)
    speech(narration / "结论.wav", 2.6, seed=3)
    (narration / ".DS_Store").write_bytes(b"\0")  # hidden files are ignored
    return {
        "narration_dir": narration,
        "narration_seconds": [1.2, 3.0, 2.6],
        "bgm": music(folder / "bgm.wav", 2.0),
        "long_track": speech(folder / "track.wav", 6.2, seed=4),
        "long_track_seconds": 6.2,
        "corrupt": corrupt(folder / "corrupt.wav"),
    }


@pytest.fixture(scope="session")
def failing_scene(tmp_path_factory):
    """A scene file whose construct() fails at once: a command that reports a bad option with this scene checked
    the option before rendering (else the error would be manim's)."""
    path = tmp_path_factory.mktemp("failing") / "failing_scene.py"
    path.write_text(
        "from shared.scene import ExplainerScene\n\n\n"
        "class FailingScene(ExplainerScene):\n"
        "    def construct(self):\n"
        "        raise RuntimeError('rendering started')\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def dark_gifs(cli, media):
    """`explainer gif` of the fixture, dark theme, default budget and aspect (article), with posters."""
    out = media / "gifs" / "dark"
    result = cli("gif", FIXTURE_SCENE, "--out", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def light_gifs(cli, media):
    out = media / "gifs" / "light"
    result = cli("gif", FIXTURE_SCENE, "--theme", "light", "--out", out)
    assert result.exit_code == 0, result.output
    return out
