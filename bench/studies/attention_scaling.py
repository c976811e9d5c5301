"""Why A2K exists: its cost against all-to-all attention as the content grows (paper Fig. 3).

Both run at the relu3_1 level of the lite preset (C = 64, features at 1/4 of the image)
with a 512 px style (128 x 128 style positions):
- `a2k`: the learned A2K module (8 heads, 8 x 8 blocks, chunked to its memory budget);
- `all-to-all`: every content position attends to every style position (the SANet /
  AdaAttN pattern, one head, same 1x1 projections and width), written here without any
  chunking, so its Nc x Ns attention matrix is materialised as such methods do.
Each (method, size) runs in a fresh process so its peak memory (ru_maxrss) is its own;
"working MiB" is that peak minus the process's peak before the first forward (inputs
and weights already allocated), i.e. what the attention itself needs.
Sizes whose estimated all-to-all matrix memory exceeds `--cap-gib` are recorded as
"OOM-skipped" instead of run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py
from common import PYTHON, checked, markdown_table, median, publish, run_child

CHANNELS, BLOCK, SCALE = 64, 8, 4  # relu3_1 of the lite preset
STYLE_PX = 512
SIZES = {  # image sizes (W, H), already padded to multiples of 64 as the engine does
    "256": (256, 256),
    "512": (512, 512),
    "1024": (1024, 1024),
    "2048": (2048, 2048),
    "4K": (3840, 2176),
}


def all_to_all_bytes(size: tuple[int, int]) -> int:
    """Logits, their softmax and one temporary of the same size, fp32."""
    nc = (size[0] // SCALE) * (size[1] // SCALE)
    ns = (STYLE_PX // SCALE) ** 2
    return 3 * nc * ns * 4


def build(method: str):
    import torch
    from torch import nn

    from a2k_cli.model.attention import A2K, mvn

    class AllToAll(nn.Module):
        """softmax(q(mvn Fc) k(mvn Fs)^T) v(Fs), projected and added to Fc: one big matrix."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.q, self.k, self.v, self.out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

        def forward(self, content, style):
            b, c, h, w = content.shape
            q = self.q(mvn(content)).flatten(2).transpose(1, 2)  # (B, Nc, C)
            k = self.k(mvn(style)).flatten(2)  # (B, C, Ns)
            v = self.v(style).flatten(2).transpose(1, 2)  # (B, Ns, C)
            attn = torch.bmm(q, k).softmax(-1)  # (B, Nc, Ns)
            return self.out(torch.bmm(attn, v).transpose(1, 2).reshape(b, c, h, w)) + content

    torch.manual_seed(0)
    return (A2K(CHANNELS, BLOCK) if method == "a2k" else AllToAll(CHANNELS)).eval()


def worker(method: str, size_name: str, repeats: int) -> dict:
    """Runs inside the child process: times the module's forward, reports its own peak."""
    import resource

    import torch

    from a2k_cli.device import configure_threads

    configure_threads()
    w, h = SIZES[size_name]
    module = build(method)
    content = torch.rand(1, CHANNELS, h // SCALE, w // SCALE)
    style = torch.rand(1, CHANNELS, STYLE_PX // SCALE, STYLE_PX // SCALE)
    idle_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    with torch.inference_mode():
        module(torch.rand(1, CHANNELS, 16, 16), style)  # thread pools and kernels warmed up
        for _ in range(repeats):
            tic = time.perf_counter()
            module(content, style)
            times.append(time.perf_counter() - tic)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": median(times), "extra_peak_mib": round((peak_kib - idle_kib) / 1024, 1)}


def measure(method: str, size_name: str, repeats: int, cap_gib: float) -> dict:
    size = SIZES[size_name]
    row = {"method": method, "size": size_name, "image": f"{size[0]}x{size[1]}"}
    row["positions"] = (size[0] // SCALE) * (size[1] // SCALE)
    if method == "all-to-all" and all_to_all_bytes(size) > cap_gib * 2**30:
        need = all_to_all_bytes(size) / 2**30
        return row | {"status": f"OOM-skipped (needs ~{need:.0f} GiB > cap {cap_gib:g} GiB)"}
    cmd = [PYTHON, __file__, "--worker", method, size_name, "--repeats", str(repeats)]
    result = checked(run_child(cmd), f"{method} at {size_name}")
    return row | {"status": "ok", "peak_mib": result["peak_mib"], **json.loads(result["stdout"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="Comma-separated subset.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cap-gib", type=float, default=8.0, help="All-to-all memory cap.")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.repeats)))
        return
    sizes = args.sizes.split(",")
    rows = [measure(m, s, args.repeats, args.cap_gib) for s in sizes for m in ("a2k", "all-to-all")]
    by = {(r["method"], r["size"]): r for r in rows}
    table_rows = []
    for s in sizes:
        a, b = by["a2k", s], by["all-to-all", s]
        ok = b["status"] == "ok"
        table_rows.append(
            (
                f"{s} ({a['image']})",
                a["seconds"],
                b["seconds"] if ok else b["status"],
                a["extra_peak_mib"],
                b["extra_peak_mib"] if ok else "—",
            )
        )
    headers = [
        "content (style 512 px)",
        "A2K s",
        "all-to-all s",
        "A2K working MiB",
        "all-to-all working MiB",
    ]
    setup = {"channels": CHANNELS, "block": BLOCK, "feature_scale": 1 / SCALE, "style_px": STYLE_PX}
    publish(
        "attention_scaling",
        {"setup": setup, "cap_gib": args.cap_gib, "repeats": args.repeats, "rows": rows},
        markdown_table(headers, table_rows),
    )


if __name__ == "__main__":
    sys.exit(main())
