"""Render the two example images from code, so they are ours to give away (CC0).

photo.jpg    a photo-like landscape: sky gradient, sun glow, layered hills, trees, a lake
painting.jpg a bold graphic composition of circles, lines and colour fields (after Kandinsky)

Run: python examples/make_examples.py  (PIL + numpy, seeded: the same files every time)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def landscape(width: int = 768, height: int = 512, seed: int = 1) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (y / height)[..., None]
    sky = (1 - t) * np.array([70, 120, 200]) + t * np.array([250, 200, 150])
    sun_x, sun_y = 0.72 * width, 0.30 * height
    glow = np.exp(-((x - sun_x) ** 2 + (y - sun_y) ** 2) / (2 * (0.12 * width) ** 2))[..., None]
    sky = sky + glow * np.array([90, 60, 10])
    sky[np.hypot(x - sun_x, y - sun_y) < 0.045 * width] = (255, 245, 215)
    image = np.clip(sky, 0, 255)
    hills = [(0.52, 0.06, (95, 120, 150)), (0.62, 0.05, (60, 110, 70)), (0.74, 0.04, (40, 85, 45))]
    for level, amplitude, colour in hills:
        phase = rng.uniform(0, 6.28, 3)
        ridge = level * height + amplitude * height * (
            np.sin(x[0] / width * 5 + phase[0])
            + 0.5 * np.sin(x[0] / width * 13 + phase[1])
            + 0.25 * np.sin(x[0] / width * 31 + phase[2])
        )
        below = y > ridge[None, :]
        shade = 1 - 0.35 * np.clip((y - ridge[None, :]) / (0.3 * height), 0, 1)
        image = np.where(below[..., None], np.array(colour) * shade[..., None], image)
    lake = y > 0.86 * height
    image[lake] = image[(2 * int(0.86 * height) - y[lake]).astype(int), x[lake].astype(int)] * 0.8
    image += rng.normal(0, 3, image.shape)  # sensor grain
    picture = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(40):
        tx, base = rng.uniform(0, width), rng.uniform(0.70, 0.84) * height
        tall = rng.uniform(30, 70)
        draw.rectangle((tx - 2, base - tall * 0.3, tx + 2, base), fill=(70, 50, 30))
        green = (int(rng.uniform(20, 50)), int(rng.uniform(70, 110)), int(rng.uniform(30, 50)))
        draw.polygon([(tx, base - tall), (tx - tall * 0.3, base - tall * 0.2),
                      (tx + tall * 0.3, base - tall * 0.2)], fill=green)  # fmt: skip
    return picture.filter(ImageFilter.GaussianBlur(0.8))


def composition(side: int = 512, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    palette = [(230, 57, 70), (241, 196, 15), (29, 53, 87), (69, 123, 157), (20, 20, 20),
               (244, 162, 97), (42, 157, 143), (168, 218, 220)]  # fmt: skip
    picture = Image.new("RGB", (side, side), (240, 230, 205))
    draw = ImageDraw.Draw(picture)
    for _ in range(7):  # colour fields
        x0, y0 = rng.uniform(-0.2, 0.8, 2) * side
        w, h = rng.uniform(0.2, 0.5, 2) * side
        draw.rectangle((x0, y0, x0 + w, y0 + h), fill=palette[rng.integers(len(palette))])
    for _ in range(9):  # circles, some with rings
        cx, cy = rng.uniform(0.1, 0.9, 2) * side
        r = rng.uniform(0.04, 0.18) * side
        colour = palette[rng.integers(len(palette))]
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, outline=(20, 20, 20), width=4)
        if rng.random() < 0.5:
            inner = r * 0.5
            draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner),
                         fill=palette[rng.integers(len(palette))])  # fmt: skip
    for _ in range(14):  # lines and arcs
        a, b = rng.uniform(0, 1, 2) * side, rng.uniform(0, 1, 2) * side
        draw.line((*a, *b), fill=(20, 20, 20), width=int(rng.integers(2, 9)))
    for _ in range(4):
        box = sorted(rng.uniform(0, 1, 2) * side), sorted(rng.uniform(0, 1, 2) * side)
        draw.arc((box[0][0], box[1][0], box[0][1], box[1][1]), 0, 200, fill=(20, 20, 20), width=5)
    return picture


def main() -> None:
    landscape().save(HERE / "photo.jpg", quality=92)
    composition().save(HERE / "painting.jpg", quality=92)


if __name__ == "__main__":
    main()
