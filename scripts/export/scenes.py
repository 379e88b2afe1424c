"""Finding scenes and their sections.

A SCENE argument is either a topic name (``rope`` → ``scenes/rope.py``; dashes may stand for underscores) or the path
of a ``.py`` file. The file must define exactly one :class:`shared.scene.ExplainerScene` subclass (one
Scene class per topic file; a base class that another class in the file extends does not count).

Sections are chosen by name or by number; numbers count from 1 in the order the scene plays them, as
``explainer list`` prints them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.export import SCENES_DIR, ExportError


@dataclass(frozen=True)
class SceneRef:
    """A scene file and its one ExplainerScene class."""

    path: Path
    class_name: str

    @property
    def topic(self) -> str:
        """The short name used in output file names (the file's stem)."""
        return self.path.stem

    def source_hash(self) -> str:
        """sha256 of the scene file, for manifests (which source produced an asset)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def topics() -> list[str]:
    """Topic names under ``scenes/`` (``rope``, ``moe``...)."""
    if not SCENES_DIR.is_dir():
        return []
    return sorted(p.stem for p in SCENES_DIR.glob("*.py") if not p.name.startswith("_"))


def _describe_topics() -> str:
    names = topics()
    return ", ".join(names) if names else f"none yet (no .py files in {SCENES_DIR})"


def scene_path(spec: str) -> Path:
    """The file a SCENE argument names; :class:`ExportError` listing the topics when there is none."""
    looks_like_path = spec.endswith(".py") or "/" in spec or "\\" in spec
    if looks_like_path:
        path = Path(spec).expanduser().resolve()
        if not path.is_file():
            raise ExportError(f"Scene file {spec!r} does not exist. Topics in scenes/: {_describe_topics()}.")
        return path
    for candidate in (spec, spec.replace("-", "_")):
        path = SCENES_DIR / f"{candidate}.py"
        if path.is_file():
            return path
    raise ExportError(
        f"Unknown scene {spec!r}. Topics in scenes/: {_describe_topics()}. Or give the path of a .py file."
    )


def _load_module(path: Path):
    name = "_explainer_scene_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ExportError(f"Could not import {path}: {type(error).__name__}: {error}") from error
    return module


def explainer_classes(path: Path) -> list[type]:
    """The ExplainerScene subclasses ``path`` defines, leaves only (a base that another one extends is skipped)."""
    from shared.scene import ExplainerScene

    module = _load_module(path)
    defined = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, ExplainerScene)
        and obj is not ExplainerScene
        and obj.__module__ == module.__name__
    ]
    return [cls for cls in defined if not any(other is not cls and issubclass(other, cls) for other in defined)]


def resolve_scene(spec: str) -> SceneRef:
    """The :class:`SceneRef` for a SCENE argument (topic name or path)."""
    path = scene_path(spec)
    classes = explainer_classes(path)
    if not classes:
        raise ExportError(
            f"{path} defines no ExplainerScene subclass. A topic file holds one class deriving from "
            f"shared.scene.ExplainerScene."
        )
    if len(classes) > 1:
        names = ", ".join(sorted(c.__name__ for c in classes))
        raise ExportError(f"{path} defines several scenes ({names}); a topic file holds exactly one.")
    return SceneRef(path, classes[0].__name__)


def describe_sections(sections) -> str:
    """``1. 开场 (2.0 s); 2. 旋转 (1.5 s)`` for messages."""
    parts = []
    for number, section in enumerate(sections, 1):
        duration = section.get("end", 0) - section.get("start", 0)
        parts.append(f"{number}. {section['name']} ({duration:.1f} s)")
    return "; ".join(parts)


def select_sections(sections: list[dict], wanted: tuple[str, ...] | list[str] | None, scene_name: str = "") -> list[int]:
    """Indices (0-based) into ``sections`` for the names or 1-based numbers in ``wanted``; all when empty.

    Raises :class:`ExportError` naming the unknown ones and listing what exists.
    """
    if not sections:
        raise ExportError(f"Scene {scene_name} has no sections; split it with self.next_section(\"名字\").")
    if not wanted:
        return list(range(len(sections)))
    names = [s["name"] for s in sections]
    chosen, unknown = [], []
    for item in wanted:
        item = str(item).strip()
        if item in names:
            index = names.index(item)
        elif item.isdigit() and 1 <= int(item) <= len(sections):
            index = int(item) - 1
        else:
            unknown.append(item)
            continue
        if index not in chosen:
            chosen.append(index)
    if unknown:
        raise ExportError(
            f"Unknown section {', '.join(map(repr, unknown))} in {scene_name or 'the scene'}. "
            f"Sections (by number or name): {describe_sections(sections)}."
        )
    return chosen
