"""The scenes under test: every topic file in scenes/ and its one ExplainerScene, and the aspects each is checked in.
(A module of its own, not conftest.py: test files in several folders importing ``conftest`` would get whichever
folder's conftest was loaded last.)"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import sys
from pathlib import Path

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
