"""`explainer gallery` in a real headless browser (Debian's chromium): every GIF loads inside the 375 px column,
in-budget GIFs show no warning, an over-budget one does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export-gifs")]  # shares the GIF fixtures

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Flags for a sandbox-less machine with no network (see the project's machine notes).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=10000"]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install -y chromium")


def chromium(page, tmp_path, *extra):
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    proc = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="session")
def over_budget(media, dark_gifs):
    """A copy of one GIF whose manifest says the budget was 0.01 MB: the page must flag it."""
    folder = media / "gifs" / "over"
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = sorted(dark_gifs.glob("*.json"))[0]
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    shutil.copy(dark_gifs / manifest["gif"], folder / "over.gif")
    manifest.update(gif="over.gif", section="超预算")
    manifest["budget"]["max_mb"] = 0.01
    (folder / "over.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def page(cli, media, dark_gifs, light_gifs, over_budget):
    result = cli("gallery")
    assert result.exit_code == 0, result.output
    assert "7 GIFs, 1 over budget" in result.output
    return media / "gallery" / "index.html"


def figures(dom):
    return re.findall(r'<figure data-section="([^"]*)">(.*?)</figure>', dom, flags=re.S)


@needs_chromium
def test_images_load_and_only_over_budget_warns(page, tmp_path):
    dom = chromium(page, tmp_path, "--dump-dom")
    assert 'data-ready="1"' in dom
    assert 'data-images-ok="7"' in dom and 'data-images-failed="0"' in dom
    found = figures(dom)
    assert len(found) == 7
    for section, body in found:
        warned = 'class="warning"' in body
        assert warned == (section == "超预算"), f"{section}: warning shown = {warned}"


@needs_chromium
def test_screenshot_shows_gifs_in_the_phone_column(page, tmp_path):
    shot = tmp_path / "gallery.png"
    chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=375,1400")
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[1] == 375
    # The first GIF (dark theme, 343 px wide inside 16 px margins) shows as a dark block in the white column.
    dark_rows = np.where((image[:, 16:359].mean(axis=(1, 2)) < 60))[0]
    assert len(dark_rows) >= 150, "no GIF visible in the screenshot"
    assert image[:, :8].mean() > 200  # the article margin stays white


def test_page_shows_each_caption_under_its_gif(page):
    """The 图注 (the section's small print) sits under its GIF; sections without small print get none."""
    dom = page.read_text(encoding="utf-8")
    found = dict(figures(dom))
    assert '<p class="caption">转 120°，逆时针</p>' in found["旋转"]
    assert 'class="caption"' not in found["开场"] and 'class="caption"' not in found["结论"]


def test_unreadable_manifest_is_reported(cli, media, dark_gifs, tmp_path):
    folder = tmp_path / "gifs"
    shutil.copytree(dark_gifs, folder)
    (folder / "broken.json").write_text("{not json", encoding="utf-8")
    result = cli("gallery", "--from", folder, "--out", tmp_path / "page" / "index.html")
    assert result.exit_code == 0, result.output
    assert "3 GIFs" in result.output and "skipped" in result.output and "broken.json" in result.output
