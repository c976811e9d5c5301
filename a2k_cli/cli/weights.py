"""`a2k weights …`: list models and import the authors' checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from a2k_cli.cli.app import app, console, fail, one_line, plain

weights_app = typer.Typer(
    help="List models and import the authors' checkpoints.", no_args_is_help=True
)
app.add_typer(weights_app, name="weights")


@weights_app.command("list")
def list_models() -> None:
    """Show bundled and user models with how they were made.

    Example: `a2k weights list`.
    """
    from a2k_cli.paths import user_weights_dir
    from a2k_cli.weights import WeightsError, available, describe, read_metadata

    table = Table("name", "preset", "how it was made", "file")
    for name, path in available().items():
        try:
            meta = read_metadata(path)
            preset, made = plain(meta.get("preset", "?")), plain(describe(meta))
        except WeightsError as exc:
            preset, made = "[red]unreadable[/]", plain(one_line(exc))
        table.add_row(plain(name), preset, made, plain(path))
    console.print(table)
    console.print(f"your own models: {plain(user_weights_dir())}", highlight=False, soft_wrap=True)


@weights_app.command("import-official")
def import_official(
    vgg: Path = typer.Option(..., help="The authors' vgg_normalised.pth."),
    checkpoints: Path = typer.Option(
        ...,
        help="Folder with latest_net_A2K.pth, latest_net_transform.pth, latest_net_decoder.pth.",
    ),
    out: Path = typer.Option(
        None, "-o", "--out", help="Output file (default: user weights dir, a2k-paper)."
    ),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Convert the official StyA2K checkpoints into one a2k weights file (paper preset).

    Example: `a2k weights import-official --vgg vgg_normalised.pth --checkpoints ckpt/`.
    """
    from a2k_cli.paths import user_weights_dir
    from a2k_cli.weights import WeightsError
    from a2k_cli.weights import import_official as convert

    if out is None:
        out = user_weights_dir() / "a2k-paper.safetensors"
        out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not overwrite:
        fail(f"{out} exists (use --overwrite to replace it)")
    if not out.parent.is_dir():
        fail(f"{out.parent}: output folder does not exist")
    try:
        convert(vgg, checkpoints, out)
    except WeightsError as exc:
        fail(one_line(exc))
    except OSError as exc:  # a full disk or an unwritable folder
        fail(f"{out}: cannot write ({exc.strerror or one_line(exc)})")
    if as_json:
        console.print_json(json.dumps({"output": str(out), "preset": "paper"}))
    else:
        console.print(f"wrote {plain(out)} (preset paper); use it with --model {plain(out)}")
