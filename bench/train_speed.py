"""Training throughput of `a2k train` (lite preset) on this machine's CPU.

Runs the real command for a few steps on a small sample of the shared datasets (so the
folder scan at start-up stays short) and reads the per-step `it_s` the trainer logs in
RUN_DIR/log.jsonl; the first `--warmup` steps (allocator and data-loader start-up) are
left out. Reported: steps/s and images/s (steps/s x batch), median over the other steps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import (
    A2K,
    CONTENT_DIR,
    STYLE_DIR,
    bench_model,
    checked,
    dataset_files,
    markdown_table,
    median,
    publish,
    require_shared,
    run_child,
)

SAMPLE = 64  # images per folder


def sample(folder: Path, dest: Path) -> Path:
    dest.mkdir()
    for f in dataset_files(folder)[:SAMPLE]:
        (dest / f.name).symlink_to(f)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="encoder source (model name or file) [default: lite]")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=256)
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir = tmp / "run"
        cmd = [
            *A2K, "train", "--data", sample(CONTENT_DIR, tmp / "c"),
            "--styles", sample(STYLE_DIR, tmp / "s"), "--encoder", model, "--out", run_dir,
            "--steps", args.steps, "--batch", args.batch, "--crop", args.crop,
            "--device", "cpu", "--save-every", 10**6, "--preview-every", 10**6,
        ]  # fmt: skip
        run = checked(run_child(cmd), "a2k train")
        log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    rates = [r["it_s"] for r in log[args.warmup :]]
    steps_s = median(rates)
    result = {
        "model": model_note,
        "preset": "lite",
        "batch": args.batch,
        "crop": args.crop,
        "steps": args.steps,
        "warmup": args.warmup,
        "steps_per_s": steps_s,
        "images_per_s": steps_s * args.batch,
        "s_per_step": 1 / steps_s,
        "process_seconds": run["seconds"],
        "peak_mib": run["peak_mib"],
    }
    headers = ["preset", "batch x crop", "steps/s", "images/s", "s/step", "peak MiB"]
    row = ("lite", f"{args.batch} x {args.crop}²", steps_s, steps_s * args.batch, 1 / steps_s)
    publish("train_speed", result, markdown_table(headers, [(*row, run["peak_mib"])]))


if __name__ == "__main__":
    main()
