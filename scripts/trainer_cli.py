"""Command-line options the translator trainers share (``train-translator``, ``train-lora``): one option per field of
the run's config dataclass, and the options of a run (its name and folder, device, threads, checkpoints, ``--force``,
``--quiet``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import click

from shared.runs import ROOT


def _apply(func, options):
    for option in reversed(options):
        func = option(func)
    return func


def config_options(config_class, choices: dict[str, Sequence[str]] | None = None):
    """One option per field of ``config_class`` with its default and type (``--d-model 16``); a field named in
    ``choices`` takes one of those values."""
    choices = choices or {}

    def option(field: dataclasses.Field):
        kind = click.Choice(list(choices[field.name])) if field.name in choices else type(field.default)
        return click.option(f"--{field.name.replace('_', '-')}", field.name, type=kind, default=field.default)

    return lambda func: _apply(func, [option(field) for field in dataclasses.fields(config_class)])


def run_options(*, out_dir: Path, checkpoint_dir: Path, checkpoint_every: int, name_default: str | None,
                name_help: str):
    """``--name --out-dir --device --threads --checkpoint --checkpoint-every --no-checkpoint --stop-after --force
    --quiet``, as every translator trainer takes them."""
    return lambda func: _apply(func, [
        click.option("--name", default=name_default, help=name_help),
        click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=out_dir),
        click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default="auto",
                     help="auto = CUDA when available"),
        click.option("--threads", type=int, default=1, help="CPU threads for torch (one leaves the others free)"),
        click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help=f"resume from / save to [default: {checkpoint_dir.relative_to(ROOT)}/NAME.pt]"),
        click.option("--checkpoint-every", type=int, default=checkpoint_every, help="steps between checkpoints"),
        click.option("--no-checkpoint", is_flag=True, help="neither resume nor save checkpoints"),
        click.option("--stop-after", type=int, default=None,
                     help="save a checkpoint after this step and exit (resume later)"),
        click.option("--force", is_flag=True, help="overwrite an existing run (a committed one included)"),
        click.option("--quiet", is_flag=True, help="no progress bar"),
    ])
