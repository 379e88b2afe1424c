"""``explainer``: render scenes and export them for WeChat articles and short-video channels.

Thin on purpose: each command parses its options and calls :mod:`scripts.export`; errors the writer can fix arrive as
:class:`scripts.export.ExportError` and leave with their message and exit status 1.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from pathlib import Path

import click

from scripts.export import MEDIA_ENV, ExportError

# Commands that live in their own scripts, added when the file exists (imported only when the command runs).
# name → module; the module's click command is its attribute `main` or `cli`, or the only click.Command it defines.
OPTIONAL_COMMANDS = {"train-grokking": "scripts.train_grokking", "train-moe": "scripts.train_moe",
                     "train-translator": "scripts.train_translator",
                     "quantize-translator": "scripts.quantize_translator", "train-lora": "scripts.train_lora"}

THEMES = click.Choice(["dark", "light"])


def _aspects() -> click.Choice:
    from shared.layout import ASPECTS

    return click.Choice(list(ASPECTS))


def _jobs_option(command):
    """``--jobs N``: worker processes rendering sections at once (default: the CPUs this machine gives us)."""
    from scripts.export.render import default_jobs

    return click.option("--jobs", "-j", type=click.IntRange(min=1), default=default_jobs(),
                        help="Sections are rendered by this many manim processes at once (default: the CPU count); "
                             "1 renders them one after another in one process.")(command)


def _voice_options(command):
    """``--voice ENGINE [--voice-name NAME] [--no-subtitles]``: narrate the render from the scene's own script."""
    command = click.option("--no-subtitles", is_flag=True,
                           help="With --voice: no subtitles in the picture (the .srt is still written).")(command)
    from shared.voice import ENGINES

    defaults = ", ".join(f"{name} {engine.default_voice}" for name, engine in ENGINES.items())
    command = click.option("--voice-name", default=None,
                           help=f"The engine's voice (default: {defaults}).")(command)
    return click.option("--voice", "voice_engine", metavar="|".join(ENGINES), default=None,
                        help="Read the scene's narration aloud with this engine: each beat lasts its speech, "
                             "subtitles are burned in and written beside the video as .srt.")(command)


def _voice(engine: str | None, name: str | None, no_subtitles: bool):
    from scripts.export.narration import Voice

    if engine is None:
        if name or no_subtitles:
            raise click.UsageError(f"{'--voice-name' if name else '--no-subtitles'} needs --voice.")
        return None
    return Voice(engine, name, subtitles=not no_subtitles)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def friendly_errors(command):
    """Turn ExportError into click's 'Error: ...' and exit status 1; Ctrl-C into a short note."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ExportError as error:
            raise click.ClickException(str(error)) from None
        except KeyboardInterrupt:
            raise click.ClickException("Interrupted; nothing half-written was left in place.") from None

    return wrapper


class ExplainerGroup(click.Group):
    """A click group that also lists :data:`OPTIONAL_COMMANDS` whose module exists, importing them on use."""

    def list_commands(self, ctx):
        optional = [name for name, module in OPTIONAL_COMMANDS.items() if _module_exists(module)]
        return sorted(set(super().list_commands(ctx)) | set(optional))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in OPTIONAL_COMMANDS and _module_exists(OPTIONAL_COMMANDS[name]):
            command = _load_command(OPTIONAL_COMMANDS[name])
        return command


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _load_command(module_name: str) -> click.Command:
    module = importlib.import_module(module_name)
    for attribute in ("main", "cli"):
        if isinstance(getattr(module, attribute, None), click.Command):
            return getattr(module, attribute)
    commands = [obj for obj in vars(module).values() if isinstance(obj, click.Command)]
    if len(commands) != 1:
        raise click.ClickException(f"{module_name} should define one click command (named main).")
    return commands[0]


@click.group(cls=ExplainerGroup, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--media-dir", type=click.Path(file_okay=False, path_type=Path), envvar=MEDIA_ENV, default=None,
              help=f"Where renders, caches and exports go (default: media/ in the repository; env {MEDIA_ENV}).")
def main(media_dir):
    """Render the explainers and export them: article GIFs, 9:16 shorts, covers, a phone preview page."""
    if media_dir:
        os.environ[MEDIA_ENV] = str(media_dir.resolve())


@main.command("list")
@click.argument("scenes", nargs=-1)
@friendly_errors
def list_scenes(scenes):
    """Scenes, their sections and durations (all topics in scenes/ when none is given)."""
    from rich.console import Console
    from rich.table import Table

    from scripts.export.render import probe
    from scripts.export.scenes import resolve_scene, topics

    console = _console()
    names = scenes or topics()
    if not names:
        click.echo("No scenes yet: scenes/ has no topic files.")
        return
    for name in names:
        scene = resolve_scene(name)
        record = probe(scene, console=console)
        out = Console()
        out.print(f"[bold]{scene.topic}[/] · {scene.class_name} ({scene.path})", soft_wrap=True)
        table = Table()
        table.add_column("#", justify="right")
        table.add_column("section")
        table.add_column("seconds", justify="right")
        for number, section in enumerate(record["sections"], 1):
            table.add_row(str(number), section["name"], f"{section['end'] - section['start']:.1f}")
        table.add_row("", "total", f"{record['sections'][-1]['end']:.1f}" if record["sections"] else "0")
        out.print(table)


@main.command()
@click.argument("scene")
@click.option("--quality", "-q", type=click.Choice(["l", "m", "h", "k"]), default="h",
              help="Pixel size from shared.layout.PIXEL_SIZES (h: 1920×1080 or 1080×1920).")
@click.option("--aspect", type=_aspects(), default="16:9")
@click.option("--theme", type=THEMES, default="dark")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Frame rate (default: manim's for the quality: 15/30/60/60).")
@click.option("--section", "-s", "sections", multiple=True,
              help="Section name or number (from 1); repeat. Default: all. Only these are rendered.")
@_jobs_option
@click.option("--force", is_flag=True, help="Render again even when the cache holds these sections.")
@_voice_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to put the MP4 (default: media/videos/<topic>/<Scene>-<aspect>-<theme>-<W>x<H>.mp4).")
@friendly_errors
def render(scene, quality, aspect, theme, fps, sections, jobs, force, voice_engine, voice_name, no_subtitles, out):
    """Render SCENE to MP4 with the right frame size and theme.  SCENE: topic name or .py path.

    Sections are rendered in parallel processes and joined without re-encoding; the frames are those of a serial
    render. With --voice, the narration is mixed in at −14 LUFS and the subtitles go beside the video (.srt)."""
    from scripts.export.render import render_movie

    voice = _voice(voice_engine, voice_name, no_subtitles)
    path = render_movie(scene, quality=quality, aspect=aspect, theme=theme, fps=fps, sections=sections, out=out,
                        jobs=jobs, force=force, voice=voice, console=_console())
    srt_path = path.with_suffix(".srt")
    click.echo(str(path) + (f"  subtitles: {srt_path}" if voice and srt_path.exists() else ""))


@main.command()
@click.argument("scene")
@click.option("--section", "-s", "sections", multiple=True, help="Section name or number (from 1); repeat. Default: all.")
@click.option("--width", type=int, default=720, help="GIF width in px (the search may go down to 80% of it).")
@click.option("--max-mb", type=float, default=6.0, help="Size budget per GIF in MB (WeChat's hard cap: 10).")
@click.option("--max-frames", type=int, default=300, help="Frame limit per GIF (WeChat's: 300).")
@click.option("--min-psnr", type=float, default=40.0, help="PSNR floor in dB against the rendered frames.")
@click.option("--fps-max", type=float, default=20.0, help="Highest frame rate tried (GIF rates are 100/n: 20, 16.7…).")
@click.option("--fps-min", type=float, default=10.0, help="Lowest frame rate tried.")
@click.option("--theme", type=THEMES, default="dark", help="light suits white article pages.")
@click.option("--aspect", type=_aspects(), default="article",
              help="article: 3:4, laid out for a phone's article column; 16:9, 9:16 or 1:1 reuse those layouts.")
@click.option("--poster-at", type=click.FloatRange(min=0), default=None,
              help="Open on the frame this many seconds into the section (default: its finished picture).")
@click.option("--no-poster", is_flag=True, help="Start on the section's first frame, with no poster hold or fade.")
@_jobs_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the GIFs, captions and manifests (default: media/gifs/<topic>/).")
@friendly_errors
def gif(scene, sections, width, max_mb, max_frames, min_psnr, fps_max, fps_min, theme, aspect, poster_at, no_poster,
        jobs, out):
    """One budgeted GIF per section of SCENE, for WeChat articles, with its caption (图注) and manifest.

    Each GIF opens on a poster (the section's finished picture), held, then cross-fades into the section."""
    from scripts.export.gif import GifBudget, Poster, export_gifs

    if no_poster and poster_at is not None:
        raise click.UsageError("--poster-at and --no-poster contradict each other; give one.")
    budget = GifBudget(width=width, min_width=int(round(width * 0.8)), max_mb=max_mb, max_frames=max_frames,
                       min_psnr=min_psnr, fps_max=fps_max, fps_min=fps_min)
    poster = None if no_poster else Poster(at_s=poster_at)
    export_gifs(scene, sections=sections, budget=budget, theme=theme, aspect=aspect, out_dir=out, poster=poster,
                jobs=jobs, console=_console())


@main.command()
@click.argument("scene")
@click.option("--sections", "--section", "-s", "sections", multiple=True,
              help="Section name or number (from 1); repeat. Default: all.")
@click.option("--narration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="One narration track for the whole video.")
@click.option("--narration-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="One file per section, named by section number (01.wav, 2-名字.mp3) or exact section name.")
@click.option("--bgm", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Background music: looped, faded, ducked under narration.")
@_voice_options
@click.option("--fps", type=float, default=30.0)
@click.option("--width", type=int, default=1080, help="Video width in px (height 16/9 of it); less for previews.")
@click.option("--theme", type=THEMES, default="dark")
@_jobs_option
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="MP4 path or folder (default: media/shorts/<topic>-short-<theme>.mp4).")
@friendly_errors
def short(scene, sections, narration, narration_dir, bgm, voice_engine, voice_name, no_subtitles, fps, width, theme,
          jobs, out):
    """A 1080×1920 H.264/AAC short video of SCENE's sections, at −14 LUFS. Only those sections are rendered.

    With --voice, the scene's own narration is read aloud (recorded files, where given, take precedence) and its
    subtitles are burned in and written beside the video (.srt)."""
    from scripts.export.short import make_short

    result = make_short(scene, sections=sections, narration=narration, narration_dir=narration_dir, bgm=bgm,
                        fps=fps, theme=theme, out=out, jobs=jobs, voice=_voice(voice_engine, voice_name, no_subtitles),
                        width=width, console=_console())
    loud = result.loudness
    note = "silent audio track" if loud is None else \
        f"{loud.integrated_lufs:.1f} LUFS, true peak {loud.true_peak_dbtp:.1f} dBTP"
    click.echo(f"{result.path}  {result.duration_s:.2f} s, {result.frames} frames, {note}" +
               (f"\nsubtitles: {result.srt}" if result.srt else ""))


@main.command()
@click.argument("scene")
@click.option("--section", "-s", default=None, help="Section name or number (default: 1).")
@click.option("--at", type=float, default=None,
              help="Seconds from the section's start (default: its finished picture, before any closing fade-out).")
@click.option("--theme", type=THEMES, default="dark")
@_jobs_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder (default: media/covers/<topic>/).")
@friendly_errors
def cover(scene, section, at, theme, jobs, out):
    """PNG covers of one frame: 1080×1920 (9:16) and 1146×717 (16:10, the 16:9 layout letterboxed)."""
    from scripts.export.cover import make_covers

    for path in make_covers(scene, section=section, at=at, theme=theme, out_dir=out, jobs=jobs, console=_console()):
        click.echo(str(path))


@main.command()
@click.option("--from", "folders", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folders to search for GIF manifests (default: media/gifs). Repeat.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Page to write (default: media/gallery/index.html).")
@friendly_errors
def gallery(folders, out):
    """A static page showing every exported GIF in a 375 px phone article column."""
    from scripts.export.gallery import build_gallery

    unreadable = []
    page, items = build_gallery(folders or None, out, unreadable=unreadable)
    over = [item for item in items if item.warnings]
    click.echo(f"{page}  ({len(items)} GIFs, {len(over)} over budget)")
    for item in over:
        click.echo(f"  ⚠ {item.gif.name}: {'; '.join(item.warnings)}")
    for path, reason in unreadable:
        click.echo(f"  ⚠ skipped {path}: not readable JSON ({reason})")


@main.command()
def doctor():
    """Check cairo/pango, ffmpeg, the CJK font, Typst, torch and CUDA; say what to fix."""
    from rich.console import Console
    from rich.table import Table

    from scripts.export.doctor import run_checks

    checks = run_checks()
    table = Table(title="explainer doctor", title_justify="left")
    for column in ("check", "status", "detail"):
        table.add_column(column)
    colour = {"ok": "green", "MISSING": "red", "optional": "yellow"}
    for check in checks:
        table.add_row(check.name, f"[{colour[check.status]}]{check.status}[/]", check.detail)
    console = Console()
    console.print(table)
    fixes = [check for check in checks if not check.ok]
    for check in fixes:
        console.print(f"[{'red' if check.required else 'yellow'}]{check.name}[/]: {check.fix}", soft_wrap=True)
    missing = [check.name for check in checks if check.required and not check.ok]
    if missing:
        console.print(f"[red]Missing: {', '.join(missing)}.[/]")
        sys.exit(1)
    console.print("[green]Ready to render and export.[/]")


if __name__ == "__main__":
    main()
