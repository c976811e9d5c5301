"""`a2k stylize`: contents (files or folders) in one style or a weighted blend of styles.

Output names: `<content-stem>_<style-stem>.<format>` (blended styles join their stems
with `+`) beside each content file, in a new `<folder>_<style>` folder beside each content
folder, or inside `-o DIR`; one content with `-o FILE` writes that file. Folders contribute
the images directly inside them (not recursive), except images a2k wrote.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from a2k_cli.cli import options
from a2k_cli.cli.app import (
    app,
    err_console,
    exists_message,
    fail,
    make_folder,
    one_line,
    output_problem,
    progress_bar,
)
from a2k_cli.cli.batch import (
    EXISTS,
    FAILED,
    WRITTEN,
    ItemResult,
    check_options,
    finish,
    open_stylizer,
    report_failure,
    style_blend,
)
from a2k_cli.cli.shards import gather, my_share, rank_and_world, shard_device

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from a2k_cli.engine import EncodedStyle, Stylizer

STDIO = Path("-")  # a content or output of `-`: standard input or output
DECODED = 8  # contents decoded at a time, at their full size: a cap on the memory they hold


def piped_job(contents: list[Path], output: Path | None) -> list[tuple[Path, Path]]:
    """`-` as the content reads standard input, as the output (or by default for piped
    input) writes standard output: one image, encoded as --format (png by default)."""
    if len(contents) != 1:
        fail("`-` stands for one image: give exactly one content with it", code=2)
    if output is not None and output != STDIO and output.suffix == "":
        fail(f"-o {output}: give a file name (a folder has no name for standard input)", 2)
    return [(contents[0], output or STDIO)]


def plan_outputs(
    contents: list[Path],
    styles: list[Path],
    output: Path | None,
    fmt: str | None,
    weights: list[float] | None = None,
) -> list[tuple[Path, Path]]:
    """(content, target) pairs by the naming rule; usage errors exit 2.

    Without `-o`, a content file's output goes beside it and a folder's outputs into a new
    folder beside it, `<folder>_<style>`; images a2k made are left out of folders, so
    running twice never paints the first run's outputs.
    """
    from a2k_cli.imaging import (
        ImageError,
        format_suffix,
        image_files,
        made_by_a2k,
        output_name,
        style_label,
    )

    label = style_label(styles, weights)
    files, folders, left_out = [], [], 0
    for given in contents:
        if given.is_dir():
            listed = image_files(given)
            found = [f for f in listed if not made_by_a2k(f)]
            left_out += len(listed) - len(found)
            beside = given.resolve().parent / f"{given.resolve().name}_{label}"
            files += found
            folders += [output or beside] * len(found)
        else:
            files.append(given)
            folders.append(output or given.parent)
    if left_out:
        err_console.print(
            f"left out {left_out} image(s) that a2k made (earlier outputs)", highlight=False
        )
    if not files:
        fail("no images found in the given folders", code=2)
    to_file = output is not None and not output.is_dir() and output.suffix != ""
    if to_file:
        if len(files) != 1:
            fail(f"-o {output}: one output file for {len(files)} contents; give a folder", 2)
        try:
            suffix = format_suffix(output.suffix)
        except ImageError as exc:
            fail(f"-o {output}: {exc}", code=2)
        if fmt is not None and format_suffix(fmt) != suffix:
            fail(f"-o {output} does not match --format {fmt}", code=2)
        return [(files[0], output)]
    for folder in dict.fromkeys(folders):
        make_folder(folder)
    names = [output_name(f, styles, fmt or "png", weights) for f in files]
    return [(f, folder / name) for f, folder, name in zip(files, folders, names)]


@app.command()
def stylize(
    contents: list[Path] = typer.Argument(..., help="Content images and/or folders of images."),
    style: list[Path] = typer.Option(
        ...,
        "--style",
        "-s",
        help="Style image or name (`a2k styles`); repeat to blend several styles.",
    ),
    style_weight: list[float] = typer.Option(
        None, "--style-weight", "-w", help="Weight of each --style, in order (normalised)."
    ),
    output: Path = typer.Option(
        None,
        "--output",
        "-o",
        help="Output file (one content) or folder \\[default: beside each content file; "
        "a new <folder>_<style> folder for a folder].",
    ),
    size: int = typer.Option(
        1024, min=0, help="Largest longer side of an output, pixels; 0 keeps each content's size."
    ),
    upscale: bool = options.UPSCALE,
    style_size: int = options.STYLE_SIZE,
    alpha: float = options.ALPHA,
    preserve_color: bool = options.PRESERVE_COLOR,
    model: str = options.MODEL,
    device: str = options.DEVICE,
    precision: str = options.PRECISION,
    fmt: str = typer.Option(None, "--format", help="png, jpg or webp \\[default: png]."),
    quality: int = options.QUALITY,
    overwrite: bool = options.OVERWRITE,
    as_json: bool = options.AS_JSON,
) -> None:
    """Stylize images or folders; exit code 0 all written, 1 some failed or skipped, 2 usage.

    Example: `a2k stylize photo.jpg -s starry-night` writes photo_starry-night.png.
    """
    check_options(alpha, quality, fmt)
    blend = style_blend(style, style_weight)
    style = [path for path, _ in blend]
    piped = STDIO in contents or output == STDIO
    if piped:
        jobs = piped_job(contents, output)
    else:
        jobs = plan_outputs(contents, style, output, fmt, [w for _, w in blend])
    from a2k_cli.imaging import ImageError, format_suffix, read_image

    tic = time.perf_counter()
    try:  # before the model loads: a bad style file fails at once
        blend = [(read_image(path).rgb, weight) for path, weight in blend]
    except ImageError as exc:
        fail(f"style: {exc}")
    rank, _ = rank_and_world()
    share = my_share(len(jobs))  # under torchrun: this process's share (see cli/shards.py)
    jobs = [jobs[i] for i in share]
    stylizer = open_stylizer(model, shard_device(device), precision)
    try:
        encoded = stylizer.encode_style(blend, style_size)
    except ValueError as exc:
        fail(f"style: {exc}")
    label = "+".join(p.name for p in style)
    results = [ItemResult(str(c), label, str(t)) for c, t in jobs]
    suffix = format_suffix(fmt or "png")
    run = Run(stylizer, encoded, alpha, preserve_color, size, upscale, quality, overwrite, suffix)
    try:
        paint_all(run, list(zip(jobs, results)), quiet=len(jobs) == 1 or as_json or rank > 0)
    except KeyboardInterrupt:  # outputs already handed to the writer were finished, whole
        done = sum(r.status == WRITTEN for r in results)
        fail(f"interrupted: {done} of {len(results)} outputs written, the rest not", code=130)
    results = gather(list(zip(share, results)))
    seconds = time.perf_counter() - tic
    finish(results, seconds, as_json, to_stderr=piped, quiet=rank > 0)


def paint_all(run: Run, items: list[tuple[tuple[Path, Path], ItemResult]], quiet: bool) -> None:
    """Paint every (content, target) in the engine's order, decoding one batch at a time;
    outputs are encoded and saved on a thread while the next batch paints."""
    from concurrent.futures import ThreadPoolExecutor

    from a2k_cli.imaging import header_size

    # header sizes decide what is decoded together; unreadable files come last (reading
    # them reports why). The summary keeps the given order.
    sizes = [header_size(content) or (0, 0) for (content, _), _ in items]
    writes = []
    with (
        progress_bar("stylizing", quiet=quiet) as bar,
        ThreadPoolExecutor(max_workers=1) as writer,
    ):
        task = bar.add_task("stylize", total=len(items))
        batches = run.stylizer.batches(sizes, run.size, run.upscale)
        for indices in (b[i : i + DECODED] for b in batches for i in range(0, len(b), DECODED)):
            pending = []
            for (content, target), result in (items[i] for i in indices):
                loaded = read_content(content, target, run.overwrite, result)
                if loaded is None:
                    bar.advance(task)
                else:
                    pending.append((loaded, target, result))
            writes += paint_batch(run, writer, pending, lambda: bar.advance(task))
    for write in writes:
        write.result()  # an unexpected error while writing surfaces here, not silently


def read_content(content: Path, target: Path, overwrite: bool, result: ItemResult):
    """The decoded content, or None after reporting why this item is skipped."""
    from a2k_cli.imaging import ImageError, read_image, read_image_bytes

    try:
        if target != STDIO and (problem := output_problem(target, overwrite, content)):
            skipped = problem == exists_message(target)  # exists: skipped, not failed
            report_failure(result, problem, EXISTS if skipped else FAILED)
            return None
        if content == STDIO:
            return read_image_bytes(sys.stdin.buffer.read())
        return read_image(content)
    except ImageError as exc:
        report_failure(result, str(exc))
        return None


@dataclass(frozen=True)
class Run:
    """What every content of one `a2k stylize` is painted and saved with."""

    stylizer: Stylizer
    style: EncodedStyle
    alpha: float
    preserve_color: bool
    size: int
    upscale: bool
    quality: int
    overwrite: bool
    stdout_suffix: str  # the format written to standard output


def paint_batch(run: Run, writer: Executor, pending: list, advance: Callable[[], None]) -> list:
    """Paint decoded contents together and hand each output to the run's writer, returning
    its futures; when the batch fails, each item is tried alone so only the culprit is
    reported (one image too big for memory must not sink the others)."""
    if not pending:
        return []
    writes, handed = [], set()
    try:
        painted = run.stylizer.paint(
            [loaded.rgb for loaded, _, _ in pending],
            [run.style],
            alpha=run.alpha,
            preserve_color=run.preserve_color,
            size=run.size,
            upscale=run.upscale,
        )
        for i, _, image in painted:
            handed.add(i)
            writes.append(writer.submit(save_output, image, *pending[i], run))
            advance()
    except (RuntimeError, ValueError) as exc:
        rest = [item for i, item in enumerate(pending) if i not in handed]
        if len(rest) > 1:
            return writes + [w for item in rest for w in paint_batch(run, writer, [item], advance)]
        for _, _, result in rest:
            report_failure(result, f"{result.content}: {one_line(exc)}")
            advance()
    return writes


def save_output(image, loaded, target: Path, result: ItemResult, run: Run) -> None:
    from a2k_cli.imaging import encode_image, write_image

    try:
        if target == STDIO:
            sys.stdout.buffer.write(
                encode_image(image, run.stdout_suffix, run.quality, loaded.alpha)
            )
            sys.stdout.buffer.flush()
        else:
            write_image(
                image, target, quality=run.quality, alpha=loaded.alpha, overwrite=run.overwrite
            )
        result.status = WRITTEN
    except FileExistsError:  # another process wrote it since the check before painting
        report_failure(result, exists_message(target), EXISTS)
    except OSError as exc:
        report_failure(result, f"{target}: cannot write ({exc.strerror or exc})")
