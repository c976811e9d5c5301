"""`a2k grid`: every content x style pair, plus a labelled contact sheet `grid.png`.

Pairs already in the output folder are kept, not repainted (unless `--overwrite`), and the
sheet is rebuilt from all of them: adding one style to a grid paints only its column.

Each style is encoded once and each content once (rendered in every style from the same
features). Pairs are named as `a2k stylize` names them, `<content-stem>_<style-stem>.<fmt>`,
which is the rule `a2k eval` uses to match outputs to their sources.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import typer

from a2k_cli.cli import options
from a2k_cli.cli.app import (
    app,
    exists_message,
    fail,
    make_folder,
    one_line,
    progress_bar,
)
from a2k_cli.cli.batch import (
    EXISTS,
    KEPT,
    WRITTEN,
    ItemResult,
    check_options,
    finish,
    open_stylizer,
    report_failure,
)
from a2k_cli.cli.shards import gather, my_share, rank_and_world, shard_device

SHEET = "grid.png"  # rebuilt on every run from all pairs, old and new


def thumbnail(image: Any, tile: int) -> Any:
    small = image.copy()
    small.thumbnail((tile, tile))
    return small


def kept_tile(pair: ItemResult, tile: int) -> Any:
    """The tile of a pair painted by an earlier run (kept, not repainted), or None after
    reporting that the file there cannot be read."""
    from a2k_cli.imaging import ImageError, read_image

    try:
        image = read_image(pair.output).rgb
    except ImageError as exc:
        report_failure(pair, f"{exc}; pass --overwrite to repaint it", EXISTS)
        return None
    pair.status = KEPT
    return thumbnail(image, tile)


def readable(paths: list[Path], results: list[ItemResult], what: str) -> list[tuple[Path, Any]]:
    """(path, LoadedImage) for each image that decodes; the others are reported, recorded as
    failed items in `results`, and left out."""
    from a2k_cli.imaging import ImageError, read_image

    loaded = []
    for path in paths:
        try:
            loaded.append((path, read_image(path)))
        except ImageError as exc:
            content, style = (str(path), "-") if what == "content" else ("-", str(path))
            item = ItemResult(content, style, None)
            results.append(item)
            report_failure(item, f"{what} {exc}")
    return loaded


@app.command()
def grid(
    contents_dir: Path = typer.Argument(..., help="Folder (or file) of content images."),
    styles_dir: Path = typer.Argument(
        ...,
        help="Folder of style images, one image or style name, or `builtin` for every "
        "built-in style.",
    ),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the pairs and grid.png."),
    tile: int = typer.Option(
        256, min=32, max=2048, help="Side of each square tile in grid.png, pixels."
    ),
    size: int = typer.Option(
        1024, min=0, help="Largest longer side of each pair, pixels; 0 keeps the content's size."
    ),
    upscale: bool = options.UPSCALE,
    style_size: int = options.STYLE_SIZE,
    alpha: float = options.ALPHA,
    preserve_color: bool = options.PRESERVE_COLOR,
    model: str = options.MODEL,
    device: str = options.DEVICE,
    precision: str = options.PRECISION,
    fmt: str = typer.Option("png", "--format", help="png, jpg or webp, for the pairs."),
    quality: int = options.QUALITY,
    overwrite: bool = options.OVERWRITE,
    as_json: bool = options.AS_JSON,
) -> None:
    """Stylize every content with every style; exit code 0 all written, 1 some not, 2 usage.

    Example: `a2k grid photos/ builtin -o grid/` (every built-in style; grid/grid.png).
    """
    check_options(alpha, quality, fmt)
    from a2k_cli.contact_sheet import contact_sheet
    from a2k_cli.imaging import MAX_PIXELS, ImageError, image_files, output_name, write_image
    from a2k_cli.styles import StyleNotFoundError, resolve_styles_folder

    if not contents_dir.exists():
        fail(f"{contents_dir}: no such file or folder", code=2)
    make_folder(output)
    sheet_path = output / SHEET
    try:
        style_paths = resolve_styles_folder(styles_dir)
    except StyleNotFoundError as exc:
        fail(str(exc), code=2)

    tic = time.perf_counter()
    stylizer = open_stylizer(model, shard_device(device), precision)
    style_failures: list[ItemResult] = []
    styles = readable(style_paths, style_failures, "style")
    if not styles:
        fail(f"{styles_dir}: no readable style images")
    encoded = []
    for path, loaded in list(styles):  # one style too large must not sink the grid
        try:
            encoded.append(stylizer.encode_style(loaded.rgb, style_size))
        except (RuntimeError, ValueError) as exc:
            styles.remove((path, loaded))
            item = ItemResult("-", str(path), None)
            style_failures.append(item)
            report_failure(item, f"style {path}: {one_line(exc)}")
    if not styles:
        fail(f"{styles_dir}: no style image can be used")
    content_paths = image_files(contents_dir)
    if not content_paths:
        fail(f"{contents_dir}: no content images")
    sheet_pixels = (len(styles) + 1) * (len(content_paths) + 1) * tile**2
    if sheet_pixels > MAX_PIXELS:  # checked before painting: the sheet is made last
        fail(
            f"grid.png would be {sheet_pixels / 1e6:.0f} megapixels (at most "
            f"{MAX_PIXELS / 1e6:.0f}); give a smaller --tile or fewer images",
            code=2,
        )

    rank, _ = rank_and_world()
    mine = my_share(len(content_paths))  # under torchrun: this process's rows
    rows: list[tuple[str, Any]] = [(content.name, None) for content in content_paths]
    tiles: list[list] = [[None] * len(styles) for _ in content_paths]
    keyed: list[tuple[tuple[int, int], ItemResult]] = []  # ((content, style), result)
    try:
        with progress_bar("grid", quiet=as_json or rank > 0) as bar:
            task = bar.add_task("grid", total=len(mine))
            for i in mine:
                content, row = content_paths[i], tiles[i]
                unreadable: list[ItemResult] = []
                loaded = readable([content], unreadable, "content")
                keyed += [((i, -1), item) for item in unreadable]
                if not loaded:
                    bar.advance(task)
                    continue
                rows[i] = (content.name, loaded[0][1].rgb)
                pairs = [
                    ItemResult(
                        str(content), str(path), str(output / output_name(content, path, fmt))
                    )
                    for path, _ in styles
                ]
                keyed += [((i, j), pair) for j, pair in enumerate(pairs)]
                todo = [
                    j for j, pair in enumerate(pairs) if overwrite or not Path(pair.output).exists()
                ]
                for j, pair in enumerate(pairs):
                    if j not in todo:
                        row[j] = kept_tile(pair, tile)
                try:  # an empty `todo` (every pair kept) paints nothing, decodes nothing
                    painted = [  # painted here, so that a failure is caught here
                        image
                        for _, _, image in stylizer.paint(
                            [loaded[0][1].rgb],
                            [encoded[j] for j in todo],
                            alpha=alpha,
                            preserve_color=preserve_color,
                            size=size,
                            upscale=upscale,
                        )
                    ]
                except (RuntimeError, ValueError, ImageError) as exc:
                    for j in todo:
                        report_failure(pairs[j], f"{content}: {one_line(exc)}")
                    painted = []
                for j, image in zip(todo, painted):
                    try:
                        write_image(
                            image,
                            pairs[j].output,
                            quality=quality,
                            alpha=loaded[0][1].alpha,
                            overwrite=overwrite,
                        )
                    except FileExistsError:  # written by another process since the check
                        report_failure(pairs[j], exists_message(pairs[j].output), EXISTS)
                        continue
                    except OSError as exc:
                        report_failure(
                            pairs[j], f"{pairs[j].output}: cannot write ({exc.strerror or exc})"
                        )
                        continue
                    pairs[j].status = WRITTEN
                    row[j] = thumbnail(image, tile)
                bar.advance(task)
    except KeyboardInterrupt:  # each pair is written whole or not at all
        done = sum(r.status == WRITTEN for _, r in keyed)
        fail(f"interrupted: {done} pairs written; grid.png not written", code=130)
    results = style_failures + gather(keyed)  # every process read the same styles
    if rank == 0:
        others = [i for i in range(len(content_paths)) if i not in set(mine)]
        fill_from_disk(others, content_paths, results, styles, rows, tiles, tile)
        labels = [(path.name, loaded.rgb) for path, loaded in styles]
        try:
            write_image(contact_sheet(rows, labels, tiles, tile), sheet_path, overwrite=True)
        except OSError as exc:
            fail(f"{sheet_path}: cannot write ({exc.strerror or exc})")
    seconds = time.perf_counter() - tic
    finish(results, seconds, as_json, {"sheet": str(sheet_path)}, quiet=rank > 0)


def fill_from_disk(
    indices: list[int],
    content_paths: list[Path],
    results: list[ItemResult],
    styles: list[tuple[Path, Any]],
    rows: list[tuple[str, Any]],
    tiles: list[list],
    tile: int,
) -> None:
    """The sheet's rows that other processes painted (under torchrun), read back from the
    files they wrote; a row or tile that cannot be read stays blank."""
    from a2k_cli.imaging import ImageError, read_image

    column = {str(path): j for j, (path, _) in enumerate(styles)}
    for i in indices:
        content = content_paths[i]
        try:
            rows[i] = (content.name, read_image(content).rgb)
        except ImageError:
            continue
        for pair in results:
            if pair.content == str(content) and pair.status in (WRITTEN, KEPT) and pair.output:
                with contextlib.suppress(ImageError):
                    tiles[i][column[pair.style]] = thumbnail(read_image(pair.output).rgb, tile)
