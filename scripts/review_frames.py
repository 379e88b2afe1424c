"""Contact sheets for reviewing a scene: render it at -ql with sections, then save, per section, three frames side by
side (at 35 %, 70 % and just before the end) as PNGs you can open.

    python scripts/review_frames.py scenes/rope.py OUTDIR                     # 16:9
    python scripts/review_frames.py scenes/rope.py OUTDIR --aspect 9:16       # portrait short
    python scripts/review_frames.py scenes/rope.py OUTDIR --aspect article --phone   # as a reader sees the GIF
    EXPLAINER_THEME=light python scripts/review_frames.py scenes/rope.py OUTDIR

``--phone`` shrinks each frame to the width it is shown at on a phone, in CSS px (an article GIF: 343 px), so the
sheet shows text at the size a reader sees it. ``--portrait`` is kept as a short form of ``--aspect 9:16``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import click
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.layout import ASPECTS, PIXEL_SIZES  # noqa: E402


@click.command()
@click.argument("scene_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--aspect", type=click.Choice(list(ASPECTS)), default="16:9", show_default=True)
@click.option("--portrait", is_flag=True, help="Same as --aspect 9:16.")
@click.option("--phone", is_flag=True, help="Shrink frames to the CSS px width they are seen at on a phone.")
@click.option("--section", "sections", multiple=True, help="Only sections whose name contains this (repeatable).")
def main(scene_file: Path, out_dir: Path, aspect: str, portrait: bool, phone: bool, sections) -> None:
    aspect = "9:16" if portrait else aspect
    out_dir.mkdir(parents=True, exist_ok=True)
    media = Path(tempfile.mkdtemp(prefix="review-"))
    try:
        width, height = PIXEL_SIZES[aspect]["l"]
        cmd = [sys.executable, "-m", "manim", "-ql", "--save_sections", "--media_dir", str(media),
               "-r", f"{width},{height}", str(scene_file.resolve())]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if result.returncode:
            raise click.ClickException(f"manim failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        index = sorted(media.glob("videos/*/*/sections/*.json"))
        names = {}
        if index:
            import json

            for entry in json.loads(index[0].read_text()):
                names[entry["video"]] = entry["name"]
        for video in sorted(media.glob("videos/*/*/sections/*.mp4")):
            name = names.get(video.name, video.stem)
            if sections and not any(s in name for s in sections):
                continue
            with av.open(str(video)) as container:
                frames = [f.to_image() for f in container.decode(video=0)]
            picks = sorted({int(len(frames) * 0.35), int(len(frames) * 0.7), max(len(frames) - 10, 0)})
            if phone:
                shown_w = round(ASPECTS[aspect].display_width_css)
                frames = [f.resize((shown_w, round(f.height * shown_w / f.width)), Image.LANCZOS) for f in frames]
            w, h = frames[0].size
            sheet = Image.new("RGB", (len(picks) * (w + 10) - 10, h), "red")
            for i, pick in enumerate(picks):
                sheet.paste(frames[pick], (i * (w + 10), 0))
            target = out_dir / f"{video.stem}.png"
            sheet.save(target)
            click.echo(f"{target}  ({len(frames)} frames)")
    finally:
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
