"""Memory figures of this machine, which tests must not assert:
`python bench/studies/memory_peaks.py [--model NAME_OR_FILE]` prints them as one JSON object
(Linux: reads /proc/self/status).

Each figure comes from its own child process, since a peak is the high-water mark of a whole
process:
- stylize: the extra peak of `Stylizer.render` on one 1536x1024 content, with freed memory
  kept as the commands keep it, against the engine's own estimate (`PEAK_MAPS`), read from
  the refusal `check_size` gives a batch too big to fit; fp32 and bf16;
- attention: the extra peak of the A2K module on a 1024 px content x 512 px style at relu3_1
  (256² x 128² positions) with a 64 MiB budget; one fp32 Nc x Ns matrix per head would take
  32 GiB;
- absurd_size: how much the peak grows while `Stylizer.stylize` refuses `size=100000`
  with upscaling (the resize alone would take ~22 GB);
- allocator: minor page faults of writing a freed 64 MiB buffer again, per
  `keep_freed_memory` setting (a fresh mapping faults in every page).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys

import numpy as np
import torch

from a2k_cli.allocator import STYLIZE_UP_TO, keep_freed_memory
from a2k_cli.engine import Stylizer, TooLargeError

MiB, GiB = 2**20, 2**30
BUFFER = 64 * MiB


def status(key: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))


def max_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def random_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)


def engine_estimate(stylizer: Stylizer, height: int, width: int) -> float | None:
    """The bytes the engine expects one image to need: `check_size` states a refused batch's
    need in GiB, and a batch needs `batch` times the maps plus one attention budget."""
    budget = stylizer.net.a2k.budget_bytes
    for batch in (2**i for i in range(24)):
        try:
            stylizer.check_size(height, width, batch)
        except TooLargeError as refused:
            total = float(re.search(r"about ([\d.]+) GiB", str(refused)).group(1)) * GiB
            return budget + (total - budget) / batch
    return None  # the free memory is unknown here: nothing is ever refused


def stylize(model: str, precision: str) -> dict:
    keep_freed_memory(up_to=STYLIZE_UP_TO)  # as the commands run: the higher peak
    stylizer = Stylizer(model, device="cpu", precision=precision)
    style = stylizer.encode_style(random_image(64, 64), 64)  # small: its peak stays below
    content = torch.rand(1, 3, 1536, 1024)
    before = status("VmRSS:")
    next(stylizer.render(content, [style]))
    peak = status("VmHWM:") - before
    estimate = engine_estimate(stylizer, 1536, 1024)
    return {
        "peak_gib": round(peak / GiB, 3),
        "estimate_gib": estimate and round(estimate / GiB, 3),
        "estimate_over_peak": estimate and round(estimate / peak, 2),
    }


def attention() -> dict:
    from a2k_cli.model import A2K

    torch.set_num_threads(1)
    module = A2K(64, 8).eval()
    module.budget_bytes = 64 * MiB
    content, style = torch.randn(1, 64, 256, 256), torch.randn(1, 64, 128, 128)
    with torch.no_grad():
        module(content[:, :, :64, :64], style)  # warm up the allocator and kernels
        before = max_rss()
        module(content, style)
    all_to_all = 256**2 * 128**2 * 4 * 8
    peak = max_rss() - before
    return {"peak_mib": round(peak / MiB), "all_to_all_gib": all_to_all / GiB}


def absurd_size(model: str) -> dict:
    stylizer = Stylizer(model, device="cpu")
    content, style = random_image(64, 64, 4), random_image(64, 64, 3)
    before = max_rss()
    try:
        stylizer.stylize(content, style, size=100_000, style_size=64, upscale=True)
        refused = False
    except TooLargeError:
        refused = True
    return {"refused": refused, "peak_growth_mib": round((max_rss() - before) / MiB)}


def allocator(setting: str) -> dict:
    up_to = {"off": None, "on": None, "up to 128 MiB": 128 * MiB, "up to 32 MiB": 32 * MiB}
    if setting != "off":
        keep_freed_memory(up_to=up_to[setting])

    def touch() -> None:
        buffer = bytearray(b"\1") * BUFFER  # malloc'ed and written, every page
        del buffer

    touch()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    touch()
    return {"faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}


def child(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="a2k-lite", help="weights to stylize with")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, *rest = args.child
        print(json.dumps(globals()[name](*rest)))
        return
    settings = ("off", "on", "up to 128 MiB", "up to 32 MiB")
    report = {
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__, "model": args.model},
        "stylize_1536x1024": {p: child("stylize", args.model, p) for p in ("fp32", "bf16")},
        "attention_1024_content_512_style": child("attention"),
        "absurd_size": child("absurd_size", args.model),
        "allocator_64mib_refault": {
            "pages": BUFFER // os.sysconf("SC_PAGE_SIZE"),
            **{s: child("allocator", s)["faults"] for s in settings},
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
