"""`a2k video`: stylize a video frame by frame, keeping its length, frame rate and sound."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import typer
from rich.progress import (
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from a2k_cli.cli import options
from a2k_cli.cli.app import (
    app,
    console,
    exists_message,
    fail,
    make_folder,
    one_line,
    output_problem,
    plain,
    progress_bar,
)
from a2k_cli.cli.batch import check_options, open_stylizer, style_blend


class Pace:
    """Says once, after the first batches, how long the whole video will take (the bar's
    ETA is easy to miss, and a long CPU job should be stoppable before it starts in earnest)."""

    AFTER_SECONDS = 3.0  # long enough for a steady rate

    def __init__(self) -> None:
        self.start, self.said = time.perf_counter(), False

    def estimate(self, done: int, total: int) -> str | None:
        elapsed = time.perf_counter() - self.start
        if self.said or elapsed < self.AFTER_SECONDS or done >= total:
            return None
        self.said = True
        left = round(elapsed / done * (total - done))
        return f"about {left // 60} min {left % 60:02d} s more for {total} frames (Ctrl-C stops)"


class FramesPerSecondColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} fps" if speed else "– fps", style="progress.data.speed")


def output_path(
    source: Path, styles: list[Path], output: Path | None, weights: list[float] | None = None
) -> Path:
    """`<in-stem>_<style>.mp4` (`imaging.style_label`) beside the input, or inside `output`
    when it is a folder."""
    from a2k_cli.imaging import style_label

    name = f"{source.stem}_{style_label(styles, weights)}.mp4"
    if output is None:
        return source.with_name(name)
    if output.is_dir():
        return output / name
    if output.suffix.lower() != ".mp4":
        fail(f"{output}: the output is an H.264 MP4, give it the .mp4 suffix")
    return output


@app.command("video")
def video_command(
    source: Path = typer.Argument(
        ..., help="Video to stylize: MP4, MOV, WebM, AVI, GIF, ... (anything ffmpeg reads)."
    ),
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
        help="Output .mp4 or folder (default: <in-stem>_<style-stem>.mp4 beside the input).",
    ),
    size: int = typer.Option(
        640,
        min=0,
        help="Largest longer side of the output, pixels (640: a CPU paints several frames a "
        "second); 0 keeps the input's size.",
    ),
    upscale: bool = options.UPSCALE,
    style_size: int = options.STYLE_SIZE,
    alpha: float = options.ALPHA,
    preserve_color: bool = options.PRESERVE_COLOR,
    model: str = options.MODEL,
    device: str = options.DEVICE,
    precision: str = options.PRECISION,
    start: float = typer.Option(0.0, min=0.0, help="Start this many seconds into the input."),
    duration: float = typer.Option(
        None, min=0.0, help="Stylize at most this many seconds (default: to the end)."
    ),
    crf: int = typer.Option(
        23, min=0, max=51, help="H.264 quality: lower is better and bigger (18 looks lossless)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    stabilize: bool = typer.Option(
        True,
        "--stabilize/--no-stabilize",
        help="Steady the texture where the scene stands still (reduces flicker).",
    ),
    as_json: bool = options.AS_JSON,
) -> None:
    """Stylize a video; the output keeps its frame count, frame rate and audio.

    Example: `a2k video clip.mp4 -s starry-night` writes clip_starry-night.mp4 at 640 px.
    """
    check_options(alpha)
    blend = style_blend(style, style_weight)
    if not source.is_file():
        fail(f"{source}: no such file")
    style = [path for path, _ in blend]
    for path in style:
        if not path.is_file():
            fail(f"{path}: no such style image")
    target = output_path(source, style, output, [w for _, w in blend])
    if problem := output_problem(target, overwrite, source):
        fail(problem)
    make_folder(target.parent)

    from a2k_cli.video import VideoError, stylize_video

    columns = (
        TextColumn("frames"),
        FramesPerSecondColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    stylizer = open_stylizer(model, device, precision)
    pace = Pace()
    try:
        # the name goes in as the task's description: a label is formatted, and a name
        # may hold braces
        with progress_bar("[bold]{task.description}", *columns, quiet=as_json) as bar:
            task = bar.add_task(plain(source.name), total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)
                if not as_json and (estimate := pace.estimate(done, total)):
                    bar.console.print(estimate, highlight=False)

            report = stylize_video(
                source,
                target,
                stylizer,
                blend,
                size=size,
                upscale=upscale,
                style_size=style_size,
                alpha=alpha,
                preserve_color=preserve_color,
                start=start,
                duration=duration,
                crf=crf,
                stabilize=stabilize,
                overwrite=overwrite,
                progress=progress,
            )
    except KeyboardInterrupt:
        fail("interrupted; no output written", code=130)
    except FileExistsError:  # another process wrote it while this one painted
        fail(exists_message(target))
    except (VideoError, ValueError, OSError) as exc:
        fail(one_line(exc))
    width, height = report.size
    if as_json:
        rates = {"frames_per_second": report.frames_per_second}
        console.print_json(json.dumps({"output": str(target), **asdict(report), **rates}))
    else:
        console.print(
            f"wrote {plain(target)}: {report.frames} frames, {width}×{height} at "
            f"{report.fps:g} fps, audio {report.audio}, {report.frames_per_second:.1f} frames/s",
            highlight=False,
            soft_wrap=True,
        )
    if report.missing_frames:
        fail(
            f"{source}: the video ends early: {report.frames} of {report.expected_frames} "
            "expected frames could be read (the output holds what was there)"
        )
