"""Build the vendored CJK font subset in ``shared/fonts/`` from upstream Noto Sans CJK SC.

Regenerate with::

    python scripts/make_font_subset.py            # fetches Debian's fonts-noto-cjk with `apt-get download`
    python scripts/make_font_subset.py --ttc-dir /usr/share/fonts/opentype/noto   # or use an installed copy

The subset keeps GB2312 (all 6,763 hanzi and its symbols), CJK punctuation, fullwidth forms, Latin, Greek and the
math/arrow blocks, plus ``EXTRA_CHARS`` below. The family is renamed to "Explainer Sans SC" so that a system-wide
Noto install can never be picked instead of this file (output must be identical on every machine). Licence: SIL OFL
1.1, see ``shared/fonts/OFL.txt``; the upstream has no Reserved Font Name for "Noto".
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import click
from fontTools import subset
from fontTools.ttLib import TTCollection

ROOT = Path(__file__).resolve().parents[1]
FONT_DIR = ROOT / "shared" / "fonts"
FAMILY = "Explainer Sans SC"
DEBIAN_PACKAGE = "fonts-noto-cjk"
SC_FACE_NAME = "Noto Sans CJK SC"  # the face we take out of each .ttc collection
WEIGHTS = {"Regular": "NotoSansCJK-Regular.ttc", "Bold": "NotoSansCJK-Bold.ttc"}

# Unicode blocks kept in full (start, end inclusive).
BLOCKS = [
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00FF),  # Latin-1 supplement
    (0x0370, 0x03FF),  # Greek
    (0x2000, 0x206F),  # general punctuation
    (0x2070, 0x209F),  # super- and subscripts
    (0x2100, 0x218F),  # letterlike symbols, number forms
    (0x2190, 0x21FF),  # arrows
    (0x2200, 0x22FF),  # mathematical operators
    (0x2460, 0x24FF),  # enclosed alphanumerics ①②③
    (0x25A0, 0x25FF),  # geometric shapes ●▲■
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # fullwidth forms
]
# Characters outside GB2312 that the explainers use. Add here, rerun, commit the fonts.
EXTRA_CHARS = "⟂≈≤≥√∑∏∞·×÷±→←↔⇒…—–‘’“”"


def gb2312_chars() -> set[str]:
    """Every character of GB2312 (rows 0xA1–0xF7, cells 0xA1–0xFE), decoded by Python's codec."""
    chars = set()
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.add(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def wanted_codepoints() -> list[int]:
    chars = gb2312_chars() | set(EXTRA_CHARS)
    for start, end in BLOCKS:
        chars |= {chr(c) for c in range(start, end + 1)}
    return sorted(ord(c) for c in chars)


def fetch_debian_ttcs(workdir: Path) -> Path:
    """Download and unpack Debian's fonts-noto-cjk; return the folder with the .ttc files."""
    subprocess.run(["apt-get", "download", DEBIAN_PACKAGE], cwd=workdir, check=True)
    deb = next(workdir.glob(f"{DEBIAN_PACKAGE}_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "root")], check=True)
    return workdir / "root" / "usr" / "share" / "fonts" / "opentype" / "noto"


def rename_family(font, weight: str) -> None:
    """Give the subset its own family name (OFL: a Modified Version; avoids clashing with installed Noto)."""
    names = font["name"]
    postscript = f"{FAMILY.replace(' ', '')}-{weight}"
    for record in list(names.names):
        if record.nameID in (1, 4, 6, 16, 17, 3):
            names.removeNames(nameID=record.nameID)
    names.setName(FAMILY, 1, 3, 1, 0x409)
    names.setName(weight, 2, 3, 1, 0x409)
    names.setName(f"{postscript};subset of Noto Sans CJK SC", 3, 3, 1, 0x409)
    names.setName(f"{FAMILY} {weight}", 4, 3, 1, 0x409)
    names.setName(postscript, 6, 3, 1, 0x409)
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [postscript]
        top = cff.topDictIndex[0]
        top.FamilyName = FAMILY
        top.FullName = f"{FAMILY} {weight}"


def build(ttc_dir: Path, out_dir: Path) -> list[Path]:
    codepoints = wanted_codepoints()
    written = []
    for weight, ttc_name in WEIGHTS.items():
        ttc_path = ttc_dir / ttc_name
        collection = TTCollection(str(ttc_path))
        font = next(f for f in collection.fonts if f["name"].getDebugName(1) == SC_FACE_NAME)
        options = subset.Options()
        options.name_IDs = ["*"]
        options.name_languages = ["*"]
        options.layout_features = ["*"]
        options.notdef_outline = True
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes=codepoints)
        subsetter.subset(font)
        rename_family(font, weight)
        target = out_dir / f"{FAMILY.replace(' ', '')}-{weight}.otf"
        with tempfile.NamedTemporaryFile(dir=out_dir, suffix=".otf.tmp", delete=False) as tmp:
            font.save(tmp.name)
        Path(tmp.name).chmod(0o644)
        Path(tmp.name).replace(target)
        digest = hashlib.sha256(ttc_path.read_bytes()).hexdigest()[:16]
        click.echo(f"{target.relative_to(ROOT)}: {target.stat().st_size / 1e6:.2f} MB "
                   f"({len(codepoints)} code points wanted; from {ttc_name} sha256 {digest})")
        written.append(target)
    return written


@click.command()
@click.option("--ttc-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Folder holding NotoSansCJK-Regular.ttc / -Bold.ttc. Default: fetch Debian's fonts-noto-cjk.")
def main(ttc_dir: Path | None) -> None:
    """Rebuild shared/fonts/ExplainerSansSC-{Regular,Bold}.otf."""
    FONT_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        if ttc_dir is None:
            ttc_dir = fetch_debian_ttcs(Path(work))
        build(ttc_dir, FONT_DIR)


if __name__ == "__main__":
    sys.exit(main())
