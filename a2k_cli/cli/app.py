"""The Typer app, shared console helpers and the one-line error rule."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

from a2k_cli import __version__

app = typer.Typer(
    name="a2k",
    help="Arbitrary neural style transfer with All-to-key Attention (StyA2K, ICCV 2023).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit: bad input never shows a traceback."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"a2k {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Paint photos, folders and videos in the style of any artwork, offline, on CPU or GPU."""
