"""The README's pictures, made with a2k's own commands: re-run whenever the model changes.

- docs/examples-grid.jpg: `a2k grid` of five example photos (examples/photos) in every
  built-in style, the README's first picture;
- docs/sheet-parrots.jpg: `a2k sheet` of one photo in every built-in style.

Usage: python bench/readme_pictures.py [--model NAME_OR_FILE]
"""

from __future__ import annotations

import argparse
import shutil

from common import A2K, CACHE, ROOT, checked, run_child
from PIL import Image

PHOTOS = ("lighthouse", "parrots", "red-barn", "old-town", "mountain-stream")
DOCS = ROOT / "docs"
SIZE = "512"  # painting size of each pair: the tiles are small, the sheet shows the style
TILE = "192"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite", help="a2k model name or file")
    args = parser.parse_args()
    work = CACHE / "readme"
    shutil.rmtree(work, ignore_errors=True)
    photos = work / "photos"
    photos.mkdir(parents=True)
    for name in PHOTOS:
        (photos / f"{name}.jpg").symlink_to(ROOT / "examples" / "photos" / f"{name}.jpg")
    DOCS.mkdir(exist_ok=True)
    grid = [*A2K, "grid", photos, "builtin", "-o", work / "grid", "--model", args.model]
    checked(run_child([*grid, "--size", SIZE, "--tile", TILE, "--format", "jpg"]), "a2k grid")
    Image.open(work / "grid" / "grid.png").convert("RGB").save(
        DOCS / "examples-grid.jpg", quality=85, optimize=True, progressive=True
    )
    sheet = [*A2K, "sheet", ROOT / "examples" / "photos" / "parrots.jpg", "--model", args.model]
    out = DOCS / "sheet-parrots.jpg"
    checked(
        run_child([*sheet, "-o", out, "--overwrite", "--tile", "256", "--quality", "85"]), "sheet"
    )
    print(f"wrote {DOCS / 'examples-grid.jpg'} and {out}")


if __name__ == "__main__":
    main()
