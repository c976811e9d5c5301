"""A labelled contact sheet, like the paper's figure: styles across the top, contents down
the side, each stylized pair where its row and column meet. PIL only (no torch)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont, ImageOps

BACKGROUND = (255, 255, 255)
MISSING = (220, 220, 220)  # a pair that failed or was skipped
GAP = 4


def fit(image: Image.Image | None, tile: int) -> Image.Image:
    """`image` scaled to fit a tile x tile square, centred; a grey square when missing."""
    cell = Image.new("RGB", (tile, tile), BACKGROUND if image is not None else MISSING)
    if image is not None:
        thumb = ImageOps.contain(image.convert("RGB"), (tile, tile), Image.LANCZOS)
        cell.paste(thumb, ((tile - thumb.width) // 2, (tile - thumb.height) // 2))
    return cell


def shorten(text: str, font: ImageFont.ImageFont, width: int) -> str:
    """`text`, cut with an ellipsis so that it fits `width` pixels; accents are dropped
    (Pillow's built-in font has no glyphs for ō or é)."""
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def contact_sheet(
    contents: Sequence[tuple[str, Image.Image | None]],
    styles: Sequence[tuple[str, Image.Image | None]],
    tiles: Sequence[Sequence[Image.Image | None]],
    tile: int = 256,
) -> Image.Image:
    """contents/styles: (label, thumbnail); tiles[i][j]: content i in style j (or None).

    Style names sit above their column; content names on a white band across the bottom
    of their thumbnail, so the grid itself stays square and unlabelled.
    """
    font = ImageFont.load_default(size=max(10, tile // 14))
    band = int(font.size * 1.6)
    step = tile + GAP
    sheet = Image.new(
        "RGB", (GAP + step * (len(styles) + 1), band + GAP + step * (len(contents) + 1)), BACKGROUND
    )
    draw = ImageDraw.Draw(sheet)

    def corner(col: int, row: int) -> tuple[int, int]:
        return GAP + col * step, band + GAP + row * step

    def caption(text: str, x: int, y: int) -> None:
        draw.rectangle((x, y, x + tile - 1, y + band - 1), fill=BACKGROUND)
        draw.text((x + 2, y + band // 5), shorten(text, font, tile - 4), fill=(0, 0, 0), font=font)

    for col, (label, image) in enumerate(styles, start=1):
        x, y = corner(col, 0)
        sheet.paste(fit(image, tile), (x, y))
        caption(label, x, y - band)
    for row, (label, image) in enumerate(contents, start=1):
        x, y = corner(0, row)
        sheet.paste(fit(image, tile), (x, y))
        caption(label, x, y + tile - band)
        for col, painted in enumerate(tiles[row - 1], start=1):
            sheet.paste(fit(painted, tile), corner(col, row))
    return sheet


def gallery(
    items: Sequence[tuple[str, str, Image.Image | None, Image.Image | None]],
    columns: int = 4,
    tile: int = 320,
) -> Image.Image:
    """items: (title, subtitle, picture, inset) laid out in rows of `columns`, each picture
    fitted to the first one's aspect within tile x tile, captioned below; `inset` (the
    painting) sits small in the picture's corner so each tile shows what made it."""
    first = next((p for _, _, p, _ in items if p is not None), None)
    width, height = ImageOps.contain(first, (tile, tile)).size if first else (tile, tile)
    font = ImageFont.load_default(size=max(10, tile // 20))
    small = ImageFont.load_default(size=max(9, tile // 26))
    band = int(font.size * 1.5 + small.size * 1.5)
    rows = -(-len(items) // columns)
    sheet = Image.new(
        "RGB",
        (GAP + (width + GAP) * min(columns, len(items)), GAP + (height + band + GAP) * rows),
        BACKGROUND,
    )
    draw = ImageDraw.Draw(sheet)
    for index, (title, subtitle, picture, inset) in enumerate(items):
        x = GAP + (index % columns) * (width + GAP)
        y = GAP + (index // columns) * (height + band + GAP)
        cell = Image.new("RGB", (width, height), MISSING)
        if picture is not None:
            cell = ImageOps.fit(picture.convert("RGB"), (width, height), Image.LANCZOS)
        if inset is not None:
            thumb = ImageOps.contain(inset.convert("RGB"), (width // 4, height // 4))
            framed = ImageOps.expand(thumb, border=2, fill=BACKGROUND)
            cell.paste(framed, (width - framed.width - GAP, height - framed.height - GAP))
        sheet.paste(cell, (x, y))
        draw.text((x + 2, y + height + 2), shorten(title, font, width - 4), (0, 0, 0), font)
        under = y + height + 2 + int(font.size * 1.4)
        draw.text((x + 2, under), shorten(subtitle, small, width - 4), (90, 90, 90), small)
    return sheet
