"""What `a2k stylize` and `a2k grid` share: per-item results, the summary, exit codes.

Exit codes: 0 every output written; 1 some item failed or was skipped (an existing output
without `--overwrite`); 2 usage errors (bad option values, `-o FILE` with several contents).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import typer

from a2k_cli.cli.app import console as stdout_console
from a2k_cli.cli.app import err_console, fail, one_line, plain, print_error

WRITTEN, FAILED, EXISTS = "written", "failed", "exists"
KEPT = "kept"  # an earlier run's output, reused as it is (grid)


@dataclass
class ItemResult:
    content: str
    style: str
    output: str | None
    status: str = FAILED
    message: str = ""


def report_failure(item: ItemResult, message: str, status: str = FAILED) -> None:
    """Mark `item` as not written and say why in one line, as it happens."""
    item.status, item.message = status, message
    print_error("skipped" if status == EXISTS else "error", message)


def check_options(alpha: float, quality: int = 92, fmt: str | None = None) -> None:
    """Option values Typer cannot check itself, as one-line usage errors (exit 2)."""
    from a2k_cli.imaging import ImageError, format_suffix

    if not 0.0 <= alpha <= 1.0:
        fail(f"--alpha must be between 0 and 1, got {alpha:g}", code=2)
    if not 1 <= quality <= 100:
        fail(f"--quality must be between 1 and 100, got {quality}", code=2)
    if fmt is not None:
        try:
            format_suffix(fmt)
        except ImageError as exc:
            fail(str(exc), code=2)


def style_blend(styles: list[Path], weights: list[float] | None) -> list[tuple[Path, float]]:
    """The --style files (or named styles' files) with their --style-weight (1 each when
    none are given)."""
    from a2k_cli.styles import StyleNotFoundError, resolve_style

    try:
        styles = [resolve_style(s) for s in styles]
    except StyleNotFoundError as exc:
        fail(f"style: {exc}")
    if weights and len(weights) != len(styles):
        fail(f"{len(weights)} --style-weight for {len(styles)} --style; give one per style", 2)
    if weights and (min(weights) < 0 or sum(weights) <= 0):
        fail("--style-weight values must be >= 0 and not all 0", code=2)
    return list(zip(styles, weights or [1.0] * len(styles)))


def open_stylizer(model: str, device: str, precision: str = "auto") -> Any:
    """The engine, or a one-line error for a missing/bad model or an unusable device.

    The command owns its process, so it also keeps freed memory for reuse (`a2k_cli.allocator`).
    """
    from a2k_cli.allocator import STYLIZE_UP_TO, keep_freed_memory
    from a2k_cli.engine import Stylizer
    from a2k_cli.paths import style_cache_dir
    from a2k_cli.weights import WeightsError

    keep_freed_memory(up_to=STYLIZE_UP_TO)
    try:
        return Stylizer(model, device=device, style_cache=style_cache_dir(), precision=precision)
    except (WeightsError, ValueError, RuntimeError) as exc:
        fail(one_line(exc))


def finish(
    results: list[ItemResult],
    seconds: float,
    as_json: bool,
    extra: dict | None = None,
    to_stderr: bool = False,
    quiet: bool = False,
):
    """Print the summary (table or JSON; on stderr when stdout carries an image; nothing
    when `quiet`, as on every torchrun rank but 0) and exit with the documented code."""
    counts = {status: sum(r.status == status for r in results) for status in (WRITTEN, FAILED)}
    counts["skipped"] = sum(r.status == EXISTS for r in results)
    counts[KEPT] = sum(r.status == KEPT for r in results)
    if not quiet:
        console = err_console if to_stderr else stdout_console
        print_summary(console, results, counts, seconds, as_json, extra or {})
    if counts[WRITTEN] + counts[KEPT] != len(results):
        raise typer.Exit(1)


def print_summary(
    console: Any,
    results: list[ItemResult],
    counts: dict,
    seconds: float,
    as_json: bool,
    extra: dict,
) -> None:
    written = counts[WRITTEN]
    if as_json:
        summary = {**counts, "seconds": round(seconds, 3), **extra}
        summary["seconds_per_image"] = round(seconds / written, 3) if written else None
        summary["items"] = [asdict(r) for r in results]
        console.print_json(json.dumps(summary))
        return
    if len(results) > 1:
        from rich.table import Table

        table = Table("content", "style", "output", "result")
        for r in results:
            ok = r.status in (WRITTEN, KEPT)
            shown = r.status if ok else f"[red]{r.status}[/]: {plain(r.message)}"
            table.add_row(plain(r.content), plain(r.style), plain(r.output or "-"), shown)
        console.print(table)
    per_image = f" ({seconds / written:.2f} s/image)" if written else ""
    kept = f", {counts[KEPT]} kept from an earlier run" if counts[KEPT] else ""
    console.print(
        f"{written} written, {counts[FAILED]} failed, {counts['skipped']} skipped{kept} "
        f"in {seconds:.1f} s{per_image}",
        highlight=False,
    )
    written_to = [r.output for r in results if r.status == WRITTEN and r.output]
    if len(written_to) == 1:
        where = "standard output" if written_to[0] == "-" else plain(written_to[0])
        console.print(f"wrote {where}", highlight=False, soft_wrap=True)
    elif written_to:
        folders = ", ".join(dict.fromkeys(plain(Path(p).parent) for p in written_to))
        console.print(f"outputs in {folders}", highlight=False, soft_wrap=True)
    for path in extra.values():
        console.print(f"wrote {plain(path)}", highlight=False, soft_wrap=True)
