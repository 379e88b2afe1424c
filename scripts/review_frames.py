"""Contact sheets for reviewing a scene: render it at -ql with sections, then save, per section, three frames side by
side (at 35 %, 70 % and just before the end) as PNGs you can open.

    python scripts/review_frames.py scenes/rope.py OUTDIR            # 16:9
    python scripts/review_frames.py scenes/rope.py OUTDIR --portrait # 9:16
    EXPLAINER_THEME=light python scripts/review_frames.py scenes/rope.py OUTDIR
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


@click.command()
@click.argument("scene_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--portrait", is_flag=True, help="Render 9:16 (480×854) instead of 16:9.")
def main(scene_file: Path, out_dir: Path, portrait: bool) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    media = Path(tempfile.mkdtemp(prefix="review-"))
    try:
        size = ["-r", "480,854"] if portrait else []
        cmd = [sys.executable, "-m", "manim", "-ql", "--save_sections", "--media_dir", str(media), *size,
               str(scene_file.resolve())]
        result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if result.returncode:
            raise click.ClickException(f"manim failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        for video in sorted(media.glob("videos/*/*/sections/*.mp4")):
            with av.open(str(video)) as container:
                frames = [f.to_image() for f in container.decode(video=0)]
            picks = sorted({int(len(frames) * 0.35), int(len(frames) * 0.7), max(len(frames) - 10, 0)})
            w, h = frames[0].size
            sheet = Image.new("RGB", (len(picks) * (w + 10) - 10, h), "red")
            for i, index in enumerate(picks):
                sheet.paste(frames[index], (i * (w + 10), 0))
            target = out_dir / f"{video.stem}.png"
            sheet.save(target)
            click.echo(f"{target}  ({len(frames)} frames)")
    finally:
        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
