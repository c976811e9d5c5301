"""`a2k train` and `a2k distill`: options built from the settings classes, a live progress
bar, and Ctrl-C that saves the run."""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from a2k_cli.cli import options
from a2k_cli.cli.app import app, console, err_console, fail, one_line, plain, progress_bar
from a2k_cli.train.config import (
    Config,
    DistillConfig,
    SettingsError,
    TrainConfig,
    flag,
    resumable_flags,
    resume_config,
)

if TYPE_CHECKING:
    from a2k_cli.train.run import Record, TrainingRun

RESUME = typer.Option(
    None,
    metavar="DIR",
    help="Continue the run in this directory exactly; only "
    f"{', '.join(resumable_flags(TrainConfig))} may change.",
)


def required(spec: Field) -> bool:
    return spec.default is MISSING and spec.default_factory is MISSING


def setting_parameters(cls: type[Config]) -> list[inspect.Parameter]:
    """One keyword parameter per command-line field of `cls`, as typer reads them: the
    field's help, flags and bounds. Fields without a default are optional here (a resumed
    run needs none of them); the command checks them."""
    hints = typing.get_type_hints(cls)
    parameters = []
    for spec in fields(cls):
        meta = spec.metadata
        if not meta["cli"]:
            continue
        annotation = hints[spec.name]
        if meta["parse"]:  # typed as text, parsed by the command
            annotation, default = str, meta["parse"][1]
        elif required(spec):
            annotation, default = annotation | None, None
        else:
            default = spec.default if spec.default is not MISSING else spec.default_factory()
        shown = meta["show_default"]  # a default in words, for a value decided later
        option = typer.Option(
            default,
            *meta["flags"],
            help=meta["help"] + (f" \\[default: {shown}]" if shown else ""),
            metavar=meta["metavar"],
            show_default=not shown,
            min=meta["min"],
            max=meta["max"],
        )
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        parameters.append(inspect.Parameter(spec.name, kind, default=option, annotation=annotation))
    return parameters


def with_settings(cls: type[Config]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command one option per field of `cls`, its own options (after the context)
    shown right after --out; the fields' values arrive in the command's `**settings`."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        context, *own = inspect.signature(command).parameters.values()
        own = [p for p in own if p.kind is not inspect.Parameter.VAR_KEYWORD]
        settings = setting_parameters(cls)
        at = 1 + [p.name for p in settings].index("out")
        command.__signature__ = inspect.Signature([context, *settings[:at], *own, *settings[at:]])
        return command

    return decorate


def parsed(spec: Field, value: Any) -> Any:
    """A command-line value as the field holds it."""
    if spec.metadata["parse"]:
        try:
            return spec.metadata["parse"][0](value)
        except ValueError:
            rule = spec.metadata["rule"][1]
            raise SettingsError(f"{flag(spec)} must be {rule}, got {value}") from None
    return value


def make_config(
    cls: type[Config], ctx: typer.Context, resume: Path | None, settings: dict[str, Any]
) -> Config:
    """The typed settings over `cls`'s defaults, or with --resume the run's own config with
    the typed ones it may change. A value its rule refuses is a usage error (exit 2)."""
    specs = {spec.name: spec for spec in fields(cls)}
    try:
        if resume:
            typed = {
                name: parsed(specs[name], value)
                for name, value in settings.items()
                if ctx.get_parameter_source(name).name == "COMMANDLINE"
            }
            return resume_config(cls, resume, typed)
        missing = [flag(specs[n]) for n, v in settings.items() if required(specs[n]) and not v]
        if missing:
            fail(f"give {' and '.join(missing)} (or --resume RUN_DIR)")
        return cls(**{name: parsed(specs[name], value) for name, value in settings.items()})
    except SettingsError as exc:
        fail(one_line(exc), code=2)
    except ValueError as exc:  # a run directory that cannot be resumed
        fail(one_line(exc))


def worker_error(exc: BaseException) -> str:
    """The one line of an error, unwrapped when a data-loading worker raised it (torch
    re-raises it as "Caught ValueError in DataLoader worker process 0." + the traceback)."""
    lines = str(exc).strip().splitlines()
    if len(lines) > 1 and lines[0].startswith("Caught ") and "DataLoader worker" in lines[0]:
        return lines[-1].partition(": ")[2] or lines[-1]
    return one_line(exc)


def run_job(
    make: Callable[[], TrainingRun], label: str, describe: Callable[[Record], str], as_json: bool
) -> dict[str, Any] | None:
    """Build the job and run it (a progress bar on rank 0: `label`, then `describe(record)`
    after each step); errors are one line. Prints
    the JSON summary if asked; an interrupted run says how to resume and exits 130. Returns
    the summary on rank 0, None on the other ranks."""
    try:
        job = make()
    except (ValueError, OSError) as exc:
        fail(one_line(exc))
    finished = False
    try:
        summary = run_with_progress(job, label, describe)
        finished = True
    except OSError as exc:  # a full disk or a vanished run folder: the last checkpoint stands
        fail(f"{job.out}: cannot write the run ({exc.strerror or one_line(exc)})")
    except ValueError as exc:  # training images that keep failing to decode
        fail(worker_error(exc))
    finally:
        job.close(finished)
    if not job.ddp.main:
        return None
    if as_json:
        console.print_json(json.dumps(summary, default=str))
    if summary["interrupted"]:
        err_console.print(
            f"interrupted at step {summary['steps']}; resume with --resume {plain(job.out)}",
            soft_wrap=True,
        )
        raise typer.Exit(130)
    return summary


def run_with_progress(
    job: TrainingRun, label: str, describe: Callable[[Record], str]
) -> dict[str, Any]:
    if not job.ddp.main:
        return job.run()
    from rich.progress import TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("{task.fields[rate]:.2f} it/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
    )
    with progress_bar(label, *columns) as bar:
        task = bar.add_task("", total=job.cfg.steps, completed=job.step, rate=0.0, losses="")

        def on_step(step: int, record: Record) -> None:
            bar.update(task, completed=step, rate=record["it_s"], losses=describe(record))

        return job.run(on_step)


def format_losses(record: Record) -> str:
    keys = ("loss", "global", "attn", "content", "distribution", "identity_pixel", "lattice")
    return " ".join(f"{k} {record[k]:.3g}" for k in keys if k in record)


@app.command()
@with_settings(TrainConfig)
def train(
    ctx: typer.Context,
    resume: Path | None = RESUME,
    as_json: bool = options.AS_JSON,
    **settings: Any,
) -> None:
    """Train A2K modules and decoder on two image folders (torchrun for several GPUs).

    Example: `a2k train --data photos/ --styles paintings/ --out runs/mine`.

    Continue it with `a2k train --resume runs/mine`; Ctrl-C finishes the step and saves it.
    """
    cfg = make_config(TrainConfig, ctx, resume, settings)
    if not resume:
        for folder in (cfg.data, cfg.styles):
            if not Path(folder).is_dir():
                fail(f"{folder}: not a folder")

    from a2k_cli.allocator import keep_freed_memory
    from a2k_cli.train.trainer import Trainer

    keep_freed_memory()
    job = partial(Trainer, cfg, resume=resume is not None)
    summary = run_job(job, "train", format_losses, as_json)
    if summary and not as_json:
        ranks = f", {summary['ranks']} processes in sync" if summary["ranks"] > 1 else ""
        model = plain(summary["model"])
        console.print(f"done: {summary['steps']} steps{ranks}; model written to {model}")


@app.command()
@with_settings(DistillConfig)
def distill(
    ctx: typer.Context,
    resume: Path | None = RESUME,
    as_json: bool = options.AS_JSON,
    **settings: Any,
) -> None:
    """Distil a lite encoder from a teacher's relu*_1 features (writes OUT/encoder.safetensors).

    Example: `a2k distill --teacher teacher.safetensors --data photos/ --data paintings/`.

    Continue it with `a2k distill --resume runs/distill-lite`; Ctrl-C saves it.
    """
    cfg = make_config(DistillConfig, ctx, resume, settings)
    if not resume and not Path(cfg.teacher).is_file():
        fail(f"{cfg.teacher}: no such file")

    from a2k_cli.allocator import keep_freed_memory
    from a2k_cli.train.distill import Distiller

    keep_freed_memory()
    job = partial(Distiller, cfg, resume=resume is not None)
    summary = run_job(job, "distill", lambda r: f"rel err {r['loss']:.3f}", as_json)
    if summary and not as_json:
        console.print("validation relative error per level (‖student − teacher‖² / ‖teacher‖²):")
        console.print_json(json.dumps(summary["val_relative_error"]))
        console.print(f"encoder written to {plain(summary['encoder'])}")
