"""The Typer app, shared console helpers and the one-line error rule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from a2k_cli import __version__

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn

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


def exists_message(target: Path) -> str:
    return f"{target} exists; pass --overwrite to replace it"


def output_problem(target: Path, overwrite: bool, source: Path | None = None) -> str | None:
    """Why `target` must not be written (it would replace `source`, or exists without
    --overwrite), in the wording every command uses; None when it may be written."""
    if source is not None and target.resolve() == source.resolve():
        return f"{target}: the output would replace the input"
    if target.exists() and not overwrite:
        return exists_message(target)
    return None


def make_folder(folder: Path) -> None:
    """Create an output folder (and its parents), or exit with a one-line error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"{folder}: cannot create the output folder ({exc.strerror or exc})")


def progress_bar(label: str, *columns: ProgressColumn, quiet: bool = False) -> Progress:
    """The progress bar every command shows on stderr (stdout stays for results): label,
    bar, done/total, then `columns` (default: time remaining); gone when finished."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    shown = columns or (TimeRemainingColumn(),)
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        *shown,
        console=err_console,
        transient=True,
        disable=quiet,
    )


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
