"""Side-by-side: manim's own ``--format gif`` against ``explainer gif`` on the same section: why the export
encodes its own GIFs.

Both GIFs are made from the same render settings (size, frame rate, theme) and measured against the same reference:
the section's frames rendered losslessly (``explainer``'s ``frames`` render) at that size and frame rate. manim's GIF
of just that section comes from rendering only the section's animations (``-n first,last``); ours is the
palettegen/paletteuse encode that ``explainer gif`` makes at that frame rate and width.

    python scripts/compare_gif.py rope --section 2
    python scripts/compare_gif.py tests/fixtures/export_fixture.py --section 旋转 --json out.json
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from scripts.export import ROOT, ExportError, scratch_dir
from scripts.export.gif import MB, Candidate, SectionEncoder, measure_psnr
from scripts.export.render import RenderSpec, probe, render, size_for_width
from scripts.export.scenes import resolve_scene, select_sections
from scripts.export.tools import tail


def manim_gif(scene, theme: str, width: int, height: int, fps: float, first_play: int, last_play: int, work: Path) -> Path:
    """manim's own GIF of plays ``first_play..last_play`` (inclusive), rendered by manim's command line."""
    env = dict(os.environ, EXPLAINER_THEME=theme)
    cmd = [sys.executable, "-m", "manim", "render", str(scene.path), scene.class_name, "--format", "gif",
           "-r", f"{width},{height}", "--fps", f"{fps:g}", "-n", f"{first_play},{last_play}",
           "--media_dir", str(work), "--progress_bar", "none", "-v", "WARNING"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExportError(f"manim --format gif failed:\n{tail(proc.stdout + proc.stderr)}")
    gifs = sorted(work.rglob("*.gif"))
    if not gifs:
        raise ExportError(f"manim --format gif wrote no GIF under {work}.")
    return gifs[0]


def compare(scene_spec: str, section: str, width: int = 720, fps: float = 20.0, theme: str = "dark",
            aspect: str = "16:9") -> dict:
    scene = resolve_scene(scene_spec)
    plan = probe(scene, aspect)
    index = select_sections(plan["sections"], [section], scene.class_name)[0]
    # Even height: manim encodes its GIF from H.264 segments in yuv420p, which refuse odd sizes (720×405).
    width, height = size_for_width(aspect, width, even=True)
    sec = render(RenderSpec(scene, theme, aspect, width, height, fps, "frames"), [index], plan).section(index)
    frames = [sec.frame_path(i) for i in range(sec.frames)]
    first_play, end_play = plan["sections"][index]["first_play"], plan["sections"][index]["end_play"]
    with scratch_dir("compare-") as work:
        (work / "ours").mkdir()
        ours_measured, _ = SectionEncoder(frames, fps, width, work / "ours", "none").trial(Candidate(width, fps, 256))
        theirs = manim_gif(scene, theme, width, height, fps, first_play, end_play - 1, work / "manim")
        theirs_bytes = theirs.stat().st_size
        try:
            theirs_psnr, theirs_worst, theirs_frames = measure_psnr(theirs, frames, fps)
        except ExportError as error:
            raise ExportError(f"manim's GIF does not line up with the rendered frames: {error}") from None
    return {
        "scene": scene.class_name, "section": sec.name, "section_number": index + 1,
        "width": width, "height": height, "fps": fps, "theme": theme, "frames": len(frames),
        "manim_gif": {"bytes": theirs_bytes, "psnr_db": round(theirs_psnr, 2), "min_frame_psnr_db": round(theirs_worst, 2),
                      "frames": theirs_frames},
        "ours": {"bytes": ours_measured.bytes, "psnr_db": round(ours_measured.psnr_db, 2),
                 "min_frame_psnr_db": round(ours_measured.min_frame_psnr_db, 2), "frames": ours_measured.frames},
        "size_ratio": round(ours_measured.bytes / theirs_bytes, 4),
    }


@click.command()
@click.argument("scene")
@click.option("--section", "-s", default="1", show_default=True, help="Section name or number (from 1).")
@click.option("--width", type=int, default=720, show_default=True)
@click.option("--fps", type=float, default=20.0, show_default=True)
@click.option("--theme", type=click.Choice(["dark", "light"]), default="dark", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the numbers as JSON here.")
def main(scene, section, width, fps, theme, json_out):
    """Compare manim's --format gif with ours on one section of SCENE: sizes and PSNR vs the same frames."""
    try:
        numbers = compare(scene, section, width, fps, theme)
    except ExportError as error:
        raise click.ClickException(str(error)) from None
    m, o = numbers["manim_gif"], numbers["ours"]
    click.echo(f"{numbers['scene']} · section {numbers['section_number']} {numbers['section']}: "
               f"{numbers['frames']} frames, {numbers['width']}×{numbers['height']} at {numbers['fps']:g} fps, "
               f"theme {numbers['theme']}")
    click.echo(f"  manim --format gif : {m['bytes'] / MB:7.3f} MB  PSNR {m['psnr_db']:5.1f} dB "
               f"(worst frame {m['min_frame_psnr_db']:.1f})  {m['frames']} frames")
    click.echo(f"  explainer gif      : {o['bytes'] / MB:7.3f} MB  PSNR {o['psnr_db']:5.1f} dB "
               f"(worst frame {o['min_frame_psnr_db']:.1f})  {o['frames']} frames")
    click.echo(f"  ours / manim size  : {numbers['size_ratio']:.3f}  "
               f"({'meets' if numbers['size_ratio'] <= 1 / 3 and o['psnr_db'] > m['psnr_db'] else 'misses'} "
               f"the ≤ 1/3 size at higher PSNR target)")
    if json_out:
        from shared.files import write_json_atomic

        write_json_atomic(json_out, numbers)


if __name__ == "__main__":
    main()
