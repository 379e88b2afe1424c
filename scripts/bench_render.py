"""Serial against parallel ``explainer render``: wall time, CPU use and seconds per video second.

    python scripts/bench_render.py rope              # -q h, --jobs 1 then --jobs <CPU count>
    python scripts/bench_render.py rope -q l --jobs 3 --json bench.json

Each run is the whole command a writer types (probe included), in a fresh media folder so nothing is reused from a
cache. CPU time is the user + system time of the command and every process it started (``getrusage`` of children);
CPU use is that divided by the wall time (2.0 = two cores busy the whole time); each worker's sections and time
(from the cache's ``workers.json``) show how well the work was balanced. The two MP4s are then decoded and
their frames compared (ffmpeg's ``framemd5``): the parallel render must draw exactly the serial frames.

Other work on the machine slows both runs unevenly: the load average before each run is printed; measure when it
is low.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def frame_md5s(movie: Path) -> list[str]:
    """MD5 of every decoded frame (ffmpeg's framemd5 muxer)."""
    from scripts.export.tools import ffmpeg

    proc = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(movie), "-map", "0:v",
                           "-f", "framemd5", "-"], capture_output=True, text=True, check=True)
    return [line.rsplit(",", 1)[1].strip() for line in proc.stdout.splitlines() if line and not line.startswith("#")]


def video_seconds(movie: Path) -> float:
    import av

    with av.open(str(movie)) as container:
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for _ in container.decode(stream))
        return frames / float(stream.average_rate)


def run_render(scene: str, quality: str, aspect: str, jobs: int, folder: Path) -> dict:
    out = folder / "render.mp4"
    cmd = [sys.executable, "-m", "scripts.cli", "--media-dir", str(folder / "media"), "render", scene, "-q", quality,
           "--aspect", aspect, "--jobs", str(jobs), "--out", str(out)]
    load = os.getloadavg()[0]
    cpu_before, started = children_cpu_s(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu = children_cpu_s() - cpu_before
    if proc.returncode != 0:
        raise click.ClickException(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    seconds = video_seconds(out)
    workers = [json.loads(p.read_text()) for p in (folder / "media" / "cache").glob("*/movie-*/workers.json")]
    return {"jobs": jobs, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "cpu_use": round(cpu / wall, 2),
            "video_s": round(seconds, 3), "s_per_video_s": round(wall / seconds, 3), "load_before": round(load, 2),
            "workers": workers[0] if workers else [], "movie": out}


@click.command()
@click.argument("scene")
@click.option("--quality", "-q", type=click.Choice(["l", "m", "h", "k"]), default="h", show_default=True)
@click.option("--aspect", default="16:9", show_default=True)
@click.option("--jobs", "-j", type=click.IntRange(min=2), default=None,
              help="Workers of the parallel run (default: the CPU count, at least 2).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the figures as JSON here.")
def main(scene, quality, aspect, jobs, json_out):
    """Render SCENE serially (--jobs 1) and in parallel; print wall time, CPU use and s per video second."""
    from scripts.export.render import default_jobs

    jobs = jobs or max(2, default_jobs())
    click.echo(f"{scene} -q {quality} {aspect}: {default_jobs()} CPUs; load average now {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-render-") as scratch:
        runs = []
        for n in (1, jobs):
            folder = Path(scratch) / f"jobs-{n}"
            folder.mkdir()
            runs.append(run_render(scene, quality, aspect, n, folder))
            r = runs[-1]
            click.echo(f"  --jobs {n}: {r['wall_s']:7.1f} s wall, {r['cpu_s']:7.1f} s CPU (CPU use {r['cpu_use']:.2f}),"
                       f" {r['s_per_video_s']:.2f} s per video second ({r['video_s']:.1f} s of video; load before "
                       f"{r['load_before']:.2f})")
            for worker in r["workers"]:
                numbers = ", ".join(str(i + 1) for i in worker["sections"])
                click.echo(f"      worker drawing sections {numbers}: {worker['wall_s']:.1f} s "
                           f"(estimated {worker['estimated_s']:.1f} s)")
        same = frame_md5s(runs[0]["movie"]) == frame_md5s(runs[1]["movie"])
    ratio = runs[1]["wall_s"] / runs[0]["wall_s"]
    click.echo(f"  parallel / serial wall time: {ratio:.2f}; frames {'identical' if same else 'DIFFER'}")
    if json_out:
        from shared.files import write_json_atomic

        figures = {"scene": scene, "quality": quality, "aspect": aspect, "cpus": default_jobs(),
                   "runs": [{k: v for k, v in r.items() if k != "movie"} for r in runs],
                   "parallel_over_serial": round(ratio, 3), "frames_identical": same}
        write_json_atomic(json_out, figures)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
