"""``media/gallery/index.html``: every exported GIF as a phone shows it inside a WeChat article.

The page is static (open it from disk, no server). Each GIF found by its manifest (see
:func:`scripts.export.gif.load_manifests`) sits in a 375 CSS px article column (an iPhone-width screen; WeChat's text
column is ~343 px inside it) with its size, frames, frame rate and PSNR, and a visible warning when it breaks its
budget: over its size budget or WeChat's 10 MB hard cap, more frames than allowed, PSNR under the floor, a missing
GIF, or a GIF changed since its manifest was written.

A small script marks the page when every image has loaded (``data-ready``, ``data-images-ok``,
``data-images-failed`` on ``<html>``), so a headless browser can check it. Under each GIF, in the article's own
caption style, is its 图注 (the ``caption`` of its manifest, the section's small print), then the GIF's numbers.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from scripts.export import ensure_writable_dir, media_root
from scripts.export.gif import HARD_CAP_MB, MB, load_manifests

COLUMN_CSS_PX = 375
ARTICLE_PADDING_CSS_PX = 16  # WeChat's article margins: 343 px of content in a 375 px screen


@dataclass
class GalleryItem:
    manifest: Path
    data: dict
    gif: Path
    warnings: list[str]

    @property
    def bytes(self) -> int:
        return self.gif.stat().st_size if self.gif.is_file() else 0


def budget_warnings(gif: Path, data: dict) -> list[str]:
    """What is wrong with an exported GIF, measured again from the file where possible."""
    budget = data.get("budget", {})
    warnings = []
    if not gif.is_file():
        return [f"GIF missing: {gif.name}"]
    size = gif.stat().st_size
    if size > HARD_CAP_MB * MB:
        warnings.append(f"{size / MB:.2f} MB is over WeChat's {HARD_CAP_MB:g} MB hard cap")
    elif "max_mb" in budget and size > budget["max_mb"] * MB:
        warnings.append(f"{size / MB:.2f} MB is over the {budget['max_mb']:g} MB budget")
    if "max_frames" in budget and data.get("frames", 0) > budget["max_frames"]:
        warnings.append(f"{data['frames']} frames is over the limit of {budget['max_frames']}")
    if "min_psnr_db" in budget and data.get("psnr_db", float("inf")) < budget["min_psnr_db"]:
        warnings.append(f"PSNR {data['psnr_db']:.1f} dB is under the {budget['min_psnr_db']:g} dB floor")
    if "bytes" in data and data["bytes"] != size:
        warnings.append("the GIF changed since its manifest was written: export it again")
    return warnings


def collect(folders, unreadable: list | None = None) -> list[GalleryItem]:
    items = []
    for path, data in load_manifests(folders, unreadable):
        gif = path.parent / data.get("gif", path.with_suffix(".gif").name)
        items.append(GalleryItem(path, data, gif, budget_warnings(gif, data)))
    return items


def _url(target: Path, page_dir: Path) -> str:
    relative = os.path.relpath(target, page_dir)
    return "/".join(urllib.parse.quote(part) for part in Path(relative).parts)


PAGE = """<!doctype html>
<html lang="zh-CN" data-ready="0">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GIF 预览 · {count} 个</title>
<style>
  @font-face {{ font-family: "Explainer Sans SC"; src: local("PingFang SC"), local("Noto Sans CJK SC"), url("{font}"); }}
  body {{ margin: 0; background: #ededed; font: 15px/1.6 -apple-system, "PingFang SC", "Explainer Sans SC", sans-serif; }}
  .phone {{ width: {column}px; margin: 0 auto; background: #fff; min-height: 100vh; }}
  article {{ padding: 12px {padding}px 32px; }}
  h1 {{ font-size: 20px; margin: 8px 0 4px; color: #1f2328; }}
  .lead {{ color: #57606a; font-size: 13px; margin: 0 0 16px; }}
  figure {{ margin: 0 0 28px; }}
  figure img {{ display: block; width: 100%; height: auto; }}
  .caption {{ font-size: 13px; color: #888; text-align: center; margin: 6px 0 0; }}
  figcaption {{ font-size: 12px; color: #57606a; margin-top: 6px; }}
  figcaption b {{ color: #1f2328; font-weight: 600; }}
  .warning {{ background: #ffebe9; color: #cf222e; border: 1px solid #cf222e; border-radius: 4px; padding: 4px 8px;
             font-size: 12px; margin: 6px 0 0; }}
  .empty {{ color: #57606a; }}
</style>
</head>
<body>
<div class="phone"><article>
<h1>GIF 预览</h1>
<p class="lead">{count} 个 GIF，按手机上公众号文章的宽度显示（{column} px 屏幕，正文 {content} px）。{summary}</p>
{figures}
</article></div>
<script>
(function () {{
  var images = Array.prototype.slice.call(document.querySelectorAll("figure img"));
  var root = document.documentElement, pending = images.length, ok = 0, failed = 0;
  function done() {{
    root.setAttribute("data-images-ok", ok);
    root.setAttribute("data-images-failed", failed);
    root.setAttribute("data-ready", "1");
  }}
  function settle(img) {{
    if (img.naturalWidth > 0) {{ ok++; }} else {{ failed++; img.setAttribute("data-failed", "1"); }}
    if (--pending === 0) {{ done(); }}
  }}
  if (!pending) {{ done(); }}
  images.forEach(function (img) {{
    if (img.complete) {{ settle(img); }}
    else {{
      img.addEventListener("load", function () {{ settle(img); }});
      img.addEventListener("error", function () {{ settle(img); }});
    }}
  }});
}})();
</script>
</body>
</html>
"""

FIGURE = """<figure data-section="{section}">
<img src="{src}" alt="{alt}" width="{width}" height="{height}">
{caption}<figcaption><b>{title}</b><br>{stats}</figcaption>
{warnings}</figure>"""
CAPTION = '<p class="caption">{text}</p>\n'  # the 图注 as it goes under the image in the article


def render_page(items: list[GalleryItem], page_dir: Path) -> str:
    figures = []
    for item in items:
        d = item.data
        title = f"{d.get('scene', '?')} · {d.get('section_number', '?')}. {d.get('section', '?')}"
        stats = (
            f"{item.bytes / MB:.2f} MB · {d.get('frames', '?')} 帧 · {d.get('fps', 0):.3g} fps · "
            f"{d.get('width', '?')}×{d.get('height', '?')} · PSNR {d.get('psnr_db', float('nan')):.1f} dB · "
            f"{d.get('theme', '?')}"
        )
        warnings = "".join(f'<p class="warning">⚠ {html.escape(w)}</p>\n' for w in item.warnings)
        figures.append(FIGURE.format(
            section=html.escape(str(d.get("section", ""))), src=_url(item.gif, page_dir), alt=html.escape(title),
            width=d.get("width", 0), height=d.get("height", 0), title=html.escape(title), stats=html.escape(stats),
            warnings=warnings, caption=CAPTION.format(text=html.escape(d["caption"])) if d.get("caption") else "",
        ))
    over = sum(1 for item in items if item.warnings)
    summary = f"{over} 个超出预算。" if over else ("全部在预算内。" if items else "")
    body = "\n".join(figures) or '<p class="empty">还没有导出的 GIF：先运行 <code>explainer gif SCENE</code>。</p>'
    from shared.text import FONT_FILES

    return PAGE.format(font=_url(FONT_FILES["regular"], page_dir), count=len(items), column=COLUMN_CSS_PX, padding=ARTICLE_PADDING_CSS_PX,
                       content=COLUMN_CSS_PX - 2 * ARTICLE_PADDING_CSS_PX, summary=summary, figures=body)


def build_gallery(folders=None, out: Path | None = None, unreadable: list | None = None) -> tuple[Path, list[GalleryItem]]:
    """``explainer gallery``: write the page (atomically) and return its path and items; JSON files that could not
    be read are appended to ``unreadable`` as ``(path, reason)``."""
    from shared.files import write_text_atomic

    folders = [Path(f) for f in folders] if folders else [media_root() / "gifs"]
    out = Path(out) if out else media_root() / "gallery" / "index.html"
    ensure_writable_dir(out.parent)
    items = collect(folders, unreadable)
    write_text_atomic(out, render_page(items, out.parent.resolve()))
    return out, items
