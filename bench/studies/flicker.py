"""Flicker of `a2k video` with and without stabilisation, on real clips and a synthetic pan.

For each clip (the first `--seconds` of `../shared/datasets/video/*`, and a slow pan over a
dataset photo made here) the video is stylized twice, `--no-stabilize` and the default
stabilised mode, and `a2k_cli.temporal.FlickerMeter` scores both: flicker = mean output
change over pixels whose input stood still, relative to the input's own (lower is better);
motion = mean output change where the input clearly moved (a stabiliser must keep it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py
from common import (
    CLIP_FPS,
    STYLE_DIR,
    VIDEO_DIR,
    bench_model,
    dataset_files,
    markdown_table,
    pan_clip,
    publish,
    require_shared,
)

PAN_SIZE = (640, 360)


def clips(seconds: float) -> list[Path]:
    real = sorted(p for p in VIDEO_DIR.iterdir() if p.suffix.lower() in {".avi", ".mp4"})
    return [*real, pan_clip(PAN_SIZE, round(seconds * CLIP_FPS))]


def measure(stylizer, style: Path, clip: Path, size: int, seconds: float) -> dict:
    from a2k_cli.video import stylize_video

    row = {"clip": clip.name}
    with tempfile.TemporaryDirectory() as tmp:
        for stabilize in (False, True):
            report = stylize_video(
                clip,
                Path(tmp) / f"{stabilize}.mp4",
                stylizer,
                style,
                size=size,
                duration=seconds,
                stabilize=stabilize,
                measure_flicker=True,
            )
            key = "stabilized" if stabilize else "unstabilized"
            row[key] = {**report.flicker, "frames_per_second": report.frames_per_second}
    row["frames"], row["size"] = report.frames, list(report.size)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--size", type=int, default=360, help="longer side of the frames")
    parser.add_argument("--seconds", type=float, default=3.0, help="length used of each clip")
    args = parser.parse_args()
    require_shared()
    from a2k_cli.engine import Stylizer

    model, model_note = bench_model(args.model)
    style = dataset_files(STYLE_DIR)[0]
    stylizer = Stylizer(model, device="cpu")
    rows = [measure(stylizer, style, clip, args.size, args.seconds) for clip in clips(args.seconds)]
    result = {"model": model_note, "style": style.name, "size": args.size, "clips": rows}
    table = markdown_table(
        ["clip", "frames", "flicker (off)", "flicker (on)", "motion (off)", "motion (on)"],
        [
            [
                row["clip"],
                row["frames"],
                row["unstabilized"]["flicker"],
                row["stabilized"]["flicker"],
                row["unstabilized"]["output_moving_change"],
                row["stabilized"]["output_moving_change"],
            ]
            for row in rows
        ],
    )
    publish("flicker", result, table)


if __name__ == "__main__":
    main()
