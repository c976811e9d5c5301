"""`a2k sheet`: one photo painted in every named style (or the given ones) on one labelled
image, to choose a style at a glance. Encoded styles are cached between runs."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import typer

from a2k_cli.cli import options
from a2k_cli.cli.app import (
    app,
    console,
    fail,
    one_line,
    output_problem,
    plain,
    progress_bar,
)
from a2k_cli.cli.batch import check_options, open_stylizer


@app.command()
def sheet(
    photo: Path = typer.Argument(..., help="The photo to paint."),
    style: list[str] = typer.Option(
        None,
        "--style",
        "-s",
        help="Style image or name; repeat for several \\[default: every style `a2k styles` lists].",
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Sheet file \\[default: <photo>_sheet.jpg beside the photo]."
    ),
    size: int = typer.Option(
        512, min=64, help="Largest longer side each style is painted at, pixels."
    ),
    tile: int = typer.Option(320, min=64, max=1024, help="Longer side of each tile, pixels."),
    columns: int = typer.Option(0, min=0, help="Tiles per row \\[default: about square]."),
    style_size: int = options.STYLE_SIZE,
    alpha: float = options.ALPHA,
    model: str = options.MODEL,
    device: str = options.DEVICE,
    precision: str = options.PRECISION,
    quality: int = options.QUALITY,
    overwrite: bool = options.OVERWRITE,
    as_json: bool = options.AS_JSON,
) -> None:
    """Paint PHOTO in many styles at once, on one labelled sheet.

    Example: `a2k sheet photo.jpg` (all styles), `a2k sheet photo.jpg -s great-wave -s my.jpg`.
    """
    check_options(alpha, quality)
    from a2k_cli.contact_sheet import gallery
    from a2k_cli.imaging import ImageError, format_suffix, read_image, write_image
    from a2k_cli.styles import StyleNotFoundError, named_styles, resolve_style

    target = output or photo.with_name(f"{photo.stem}_sheet.jpg")
    try:  # before painting: a name that cannot be written is a usage error
        format_suffix(target.suffix)
    except ImageError as exc:
        fail(f"-o {target}: {exc}", code=2)
    if problem := output_problem(target, overwrite, photo):
        fail(problem)
    known = named_styles()
    try:
        chosen = [resolve_style(s) for s in style] if style else [s.path for s in known.values()]
    except StyleNotFoundError as exc:
        fail(str(exc), code=2)
    by_path = {s.path: s for s in known.values()}
    try:
        content = read_image(photo).rgb
        paintings = [read_image(path).rgb for path in chosen]
    except ImageError as exc:
        fail(str(exc))

    tic = time.perf_counter()
    stylizer = open_stylizer(model, device, precision)
    items = [("original", photo.name, content, None)]
    try:
        encoded = [stylizer.encode_style(p, style_size) for p in paintings]  # decoded once
        with progress_bar("painting", quiet=as_json) as bar:
            task = bar.add_task("sheet", total=len(chosen))
            painted = stylizer.paint([content], encoded, alpha=alpha, size=size)
            for path, painting, (_, _, image) in zip(chosen, paintings, painted):
                about = by_path.get(path)
                title = about.title if about else path.stem
                credit = ", ".join(filter(None, (about.artist, about.date))) if about else path.name
                items.append((title, credit, image, painting))
                bar.advance(task)
    except (RuntimeError, ValueError) as exc:
        fail(f"{photo}: {one_line(exc)}")
    per_row = columns or math.ceil(math.sqrt(len(items)))
    try:
        write_image(gallery(items, per_row, tile), target, quality=quality, overwrite=True)
    except OSError as exc:
        fail(f"{target}: cannot write ({exc.strerror or exc})")
    seconds = time.perf_counter() - tic
    if as_json:
        report = {"sheet": str(target), "styles": [str(p) for p in chosen], "seconds": seconds}
        console.print_json(json.dumps(report))
    else:
        console.print(
            f"{len(chosen)} styles in {seconds:.1f} s; wrote {plain(target)}", highlight=False
        )
