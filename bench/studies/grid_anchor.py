"""Which part of the 16-px block ratio a2k's own grid makes, and which the photo brings.

Each held-out pair is stylized twice, as is and with the photo padded by 8 px at the top
and left (reflected) and the output cropped back: the network's grid then lies 8 px
(half a period) further on the photo, so in the average of the two outputs any pattern
tied to that grid falls equally on both sides of the ratio and cancels, and what is left
comes from the photo (its own texture and the cycle its enlargement to 512 px leaves).
Photos are enlarged or shrunk to 512 px as `bench/quality.py` paints them. `--grids`
runs the same weights with other per-level block grids (relu3_1, relu4_1, relu5_1).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/common.py
from common import CONTENT_DIR, STYLE_DIR, bench_model, markdown_table, publish, require_shared
from quality import validation_files

SIZE = 512
SHIFT = 8  # half the 16-px period
PERIOD = 16
PHOTOS_WORST = 1.0372  # the photos' own worst 16-px ratio as files (bench/results/quality.json)


def painted(stylizer, photo: np.ndarray, style, shift: int) -> np.ndarray:
    padded = np.pad(photo, ((shift, 0), (shift, 0), (0, 0)), mode="reflect")
    out = stylizer.stylize(Image.fromarray(padded), style, size=0)
    return np.asarray(out, dtype=np.float32)[shift:, shift:]


def ratio(image: np.ndarray) -> float:
    from a2k_cli.imaging import to_tensor
    from a2k_cli.measures import lattice_ratio

    return lattice_ratio(to_tensor(Image.fromarray(image.round().astype(np.uint8))), PERIOD)


def summary(values: list[float]) -> dict:
    v = np.array(values)
    return {
        "max": float(v.max()),
        "mean": float(v.mean()),
        "above_photos": int((v > PHOTOS_WORST).sum()),
    }


def measure(stylizer, grids: tuple[int, int, int], photos: list[Path], styles: list[Path]) -> dict:
    from a2k_cli.imaging import resize_longer_side
    from a2k_cli.model.attention import GRID_CHOICES

    net = stylizer.net
    for module, count in zip(
        (net.a2k, net.transform.attn_adain_4_1, net.transform.attn_adain_5_1), grids
    ):
        if count not in GRID_CHOICES or module.block_size % count:  # as A2K's own check
            raise SystemExit(f"block grids must be one of {GRID_CHOICES} and divide the block")
        module.grids = count
    plain, averaged, own = [], [], []
    for style_path in styles:
        style = stylizer.encode_style(style_path, SIZE)
        for photo_path in photos:
            photo = np.asarray(resize_longer_side(Image.open(photo_path).convert("RGB"), SIZE))
            first, shifted = (painted(stylizer, photo, style, s) for s in (0, SHIFT))
            plain.append(ratio(first))
            averaged.append(ratio((first + shifted) / 2))
            own.append(ratio(photo.astype(np.float32)))
    return {
        "grids": list(grids),
        "as_painted": summary(plain),
        "grid_cancelled": summary(averaged),
        "photo_enlarged": summary(own),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--grids", nargs="+", default=["2,2,2", "4,2,2"], help="N3,N4,N5 each")
    parser.add_argument("--contents", type=int, default=16)
    parser.add_argument("--styles", type=int, default=16)
    parser.add_argument("--precision", default="auto")
    args = parser.parse_args()
    require_shared()
    from a2k_cli.engine import Stylizer

    model, model_note = bench_model(args.model)
    photos = validation_files(CONTENT_DIR, args.contents)
    styles = validation_files(STYLE_DIR, args.styles)
    layouts = [tuple(int(n) for n in g.split(",")) for g in args.grids]
    stylizer = Stylizer(model, precision=args.precision)
    rows = [measure(stylizer, g, photos, styles) for g in layouts]
    result = {
        "model": model_note,
        "precision": args.precision,
        "pairs": len(photos) * len(styles),
        "photos_worst_as_files": PHOTOS_WORST,
        "layouts": rows,
    }
    table = markdown_table(
        [
            "block grids",
            "as painted: max / mean",
            "grid cancelled: max / mean",
            "photo enlarged: max",
        ],
        [
            [
                ",".join(map(str, r["grids"])),
                f"{r['as_painted']['max']:.4f} / {r['as_painted']['mean']:.4f}",
                f"{r['grid_cancelled']['max']:.4f} / {r['grid_cancelled']['mean']:.4f}",
                f"{r['photo_enlarged']['max']:.3f}",
            ]
            for r in rows
        ],
    )
    publish("grid_anchor", result, table)


if __name__ == "__main__":
    main()
