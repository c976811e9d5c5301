"""Video throughput: frames per second of `a2k_cli.video.stylize_video` at 360p and 720p.

The clip is synthetic and made here: a slow pan over a dataset photo, H.264, 25 fps
(`--frames` frames per size). The model is loaded and the style encoded before the clock
starts (as they are once per video); the timed part (stylize_video's own report) is the
whole per-frame pipeline: decoding, stylization with the default stabilisation, encoding
and muxing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import (
    CLIP_FPS,
    STYLE_DIR,
    bench_model,
    dataset_files,
    markdown_table,
    pan_clip,
    publish,
    require_shared,
)

SIZES = {"640x360": (640, 360), "1280x720": (1280, 720)}


def frames_per_second(model: str, style: Path, clip: Path) -> float:
    from a2k_cli.engine import Stylizer
    from a2k_cli.video import stylize_video

    stylizer = Stylizer(model, device="cpu")
    stylizer.encode_style(style)  # encoded once per video, outside the clock
    with tempfile.TemporaryDirectory() as tmp:
        report = stylize_video(clip, Path(tmp) / "out.mp4", stylizer=stylizer, style=style)
    return report.frames_per_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--sizes", default=",".join(SIZES))
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    style = dataset_files(STYLE_DIR)[0]
    fps = {}
    for name in args.sizes.split(","):
        fps[name] = frames_per_second(model, style, pan_clip(SIZES[name], args.frames))
    result = {"model": model_note, "frames": args.frames, "clip_fps": CLIP_FPS, "fps": fps}
    table = markdown_table(["frame size", "frames/s"], list(fps.items()))
    publish("video_speed", result, table)


if __name__ == "__main__":
    main()
