"""Dry runs of every scene in scenes/, once per (scene, aspect) for the whole test session."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from scene_catalog import scene_classes
from shared.checks import dry_run
from shared.voice import VOICE_ENV

_cache: dict[tuple[str, str, str | None], tuple] = {}


@pytest.fixture(scope="session")
def scene_run(tmp_path_factory):
    """scene_run(topic, aspect, voice=None) → (record, problems, frames), computed once; frames: section → last full
    frame. With ``voice`` (an engine name) the scene runs narrated: beats last their speech, subtitles are drawn."""
    classes = scene_classes()
    # Under xdist every worker has its own basetemp below a shared folder: a dry run noted there twice means two
    # workers computed it, i.e. the (scene, aspect) groups were not applied (see pytest_collection_modifyitems).
    shared = tmp_path_factory.getbasetemp().parent if os.environ.get("PYTEST_XDIST_WORKER") else None

    def run(topic: str, aspect: str, voice: str | None = None):
        key = (topic, aspect, voice)
        if key not in _cache:
            if shared is not None:
                try:
                    os.close(os.open(shared / f"dry-run-{topic}-{aspect.replace(':', 'x')}-{voice}",
                                     os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    warnings.warn(f"The dry run of {topic} in {aspect} ran in two pytest-xdist workers: the test groups "
                                  "were not applied (a pytest / pytest-xdist version that does not work together?)")
            (cls,) = classes[topic]
            frames = {}
            saved = os.environ.get(VOICE_ENV)
            os.environ[VOICE_ENV] = voice or ""
            try:
                record, problems = dry_run(cls, aspect, frames=None if voice else frames)
            finally:
                os.environ.pop(VOICE_ENV) if saved is None else os.environ.__setitem__(VOICE_ENV, saved)
            _cache[key] = (record, problems, frames)
        return _cache[key]

    return run


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (``--dist loadgroup``), every test of one scene runs in the worker that holds its dry runs
    (some tests compare two aspects): parametrized tests by their ``topic`` parameter, a scene's own test file
    (``test_<topic>_scene.py``) by its name."""
    topics = set(scene_classes())
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        topic = params.get("topic")
        if topic is None:
            stem = Path(str(item.fspath)).stem
            topic = next((t for t in topics if stem == f"test_{t}_scene"), None)
        if topic is not None:
            item.add_marker(pytest.mark.xdist_group(topic))
