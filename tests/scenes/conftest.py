"""Dry runs of every scene in scenes/, once per (scene, aspect) for the whole test session."""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

from shared.checks import dry_run
from shared.scene import ExplainerScene

SCENES_DIR = Path(__file__).resolve().parents[2] / "scenes"
ASPECTS = ("16:9", "9:16", "article", "1:1")  # every aspect a scene is advertised in, each checked the same way


@functools.cache
def scene_classes() -> dict[str, list[type]]:
    """topic name → its one ExplainerScene subclass."""
    found = {}
    for path in sorted(SCENES_DIR.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"scene_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses in the scene file look their module up
        spec.loader.exec_module(module)
        classes = [c for _, c in inspect.getmembers(module, inspect.isclass)
                   if issubclass(c, ExplainerScene) and c is not ExplainerScene and c.__module__ == module.__name__]
        found[path.stem] = classes
    return found


_cache: dict[tuple[str, str], tuple] = {}


@pytest.fixture(scope="session")
def scene_run():
    """scene_run(topic, aspect) → (record, problems, frames), computed once; frames: section → last full frame."""
    classes = scene_classes()

    def run(topic: str, aspect: str):
        key = (topic, aspect)
        if key not in _cache:
            (cls,) = classes[topic]
            frames = {}
            record, problems = dry_run(cls, aspect, frames=frames)
            _cache[key] = (record, problems, frames)
        return _cache[key]

    return run
