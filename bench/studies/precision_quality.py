"""Does bf16 change the pictures? The network-free measures of two `bench/quality.py` runs
of one model (fp32 and bf16) compared pair by pair, against the measures' own noise.

The noise is the spread a mean over these pairs has anyway: the bootstrap standard error
of the fp32 mean (resampling pairs). bf16 passes where the mean paired difference stays
under it. The pixels: per pair the mean |Δ| and the share of pixels off by more than 16
levels (where an attention block's best match flipped), from the two runs' outputs.

Usage: python bench/studies/precision_quality.py FP32_NAME BF16_NAME (bench/results/NAME.json)
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py
from common import CACHE, RESULTS, publish

MEASURES = ("palette", "texture", "edge_correlation", "lattice_2")
RESAMPLES = 2000


def bootstrap_se(values: list[float], seed: int = 0) -> float:
    rng = random.Random(seed)
    n = len(values)
    means = [sum(rng.choices(values, k=n)) / n for _ in range(RESAMPLES)]
    centre = sum(means) / RESAMPLES
    return (sum((m - centre) ** 2 for m in means) / (RESAMPLES - 1)) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fp32_name", help="the fp32 run: bench/results/FP32_NAME.json")
    parser.add_argument("bf16_name", help="the bf16 run: bench/results/BF16_NAME.json")
    args = parser.parse_args()
    fp32_name, bf16_name = args.fp32_name, args.bf16_name
    runs = [json.loads((RESULTS / f"{n}.json").read_text()) for n in (fp32_name, bf16_name)]
    pairs = [
        {p["output"].rsplit("/", 1)[-1]: p for p in r["methods"]["a2k"]["pairs"]} for r in runs
    ]
    shared = sorted(set(pairs[0]) & set(pairs[1]))
    rows, result = [], {"pairs": len(shared), "runs": [fp32_name, bf16_name], "measures": {}}
    for m in MEASURES:
        a = [pairs[0][k][m] for k in shared]
        b = [pairs[1][k][m] for k in shared]
        diff = sum(y - x for x, y in zip(a, b)) / len(shared)
        noise = bootstrap_se(a)
        result["measures"][m] = {
            "fp32": sum(a) / len(a),
            "bf16": sum(b) / len(b),
            "mean_difference": diff,
            "noise": noise,
            "within_noise": abs(diff) < noise,
        }
        rows.append(
            (m, f"{sum(a) / len(a):.4f}", f"{sum(b) / len(b):.4f}", f"{diff:+.4f}", f"{noise:.4f}")
        )
    folders = [CACHE / "quality" / name / "a2k" for name in (fp32_name, bf16_name)]
    mean_abs, flipped = [], []
    for key in shared:
        a, b = (np.asarray(Image.open(f / key), np.int16) for f in folders)
        delta = np.abs(a - b)
        mean_abs.append(float(delta.mean()))
        flipped.append(float((delta.max(-1) > 16).mean()))
    result["pixels"] = {
        "mean_abs_median": float(np.median(mean_abs)),
        "mean_abs_max": max(mean_abs),
        "flipped_share_median": float(np.median(flipped)),
        "flipped_share_max": max(flipped),
        "pairs_with_over_1pct_flipped": sum(f > 0.01 for f in flipped),
    }
    head = "| measure | fp32 | bf16 | mean paired difference | noise (bootstrap SE) |"
    table = (
        head + "\n|---|---|---|---|---|\n" + "\n".join("| " + " | ".join(r) + " |" for r in rows)
    )
    publish("precision_quality", result, table)


if __name__ == "__main__":
    main()
