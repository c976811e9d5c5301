"""The Typer app, shared console helpers and the one-line error rule."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from a2k_cli import __version__

app = typer.Typer(
    name="a2k",
    help="Arbitrary neural style transfer with All-to-key Attention (StyA2K, ICCV 2023).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def plain(text: object) -> str:
    """User-supplied text (paths, names, library messages) as literal console text on one
    line: brackets are not markup, and a newline in a file name cannot split the line."""
    return escape(str(text).replace("\r", "\\r").replace("\n", "\\n"))


def one_line(exc: BaseException) -> str:
    """What went wrong, for a one-line error: a2k's own messages whole (a newline there can
    only come from a path), a library's first line, or the type's name if it said nothing."""
    from a2k_cli.errors import A2KError, first_line

    text = str(exc).strip()
    return text if text and isinstance(exc, A2KError) else first_line(exc)


def print_error(label: str, message: str) -> None:
    err_console.print(f"[bold red]{label}:[/] {plain(message)}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a one-line error and exit: bad input never shows a traceback."""
    print_error("error", message)
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
