"""Image-folder datasets for training: recursive scan, safe decoding, random crops.

Every image is decoded by `a2k_cli.imaging.read_image`, the same policy as stylizing
(formats, EXIF orientation, 16-bit, the decompression-bomb limit); a file that fails is
skipped and counted, never fatal."""

from __future__ import annotations

import random
import zlib
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torch import Tensor

from a2k_cli.imaging import header_size, is_image_path, read_image, to_tensor

MIN_SIDE = 32  # images smaller than this carry no usable texture and are skipped
UNREADABLE = (OSError, ValueError)  # what decoding a bad file raises (ImageError included)


def is_validation(path: Path, percent: int) -> bool:
    """A stable hold-out split: the same file is always on the same side, on any machine."""
    return zlib.crc32(path.name.encode()) % 100 < percent


def scan_images(root: str | Path) -> tuple[list[Path], int]:
    """Usable images under `root` (recursive, sorted) and how many files were skipped."""
    files, skipped = [], 0
    for path in sorted(Path(root).rglob("*")):
        if not is_image_path(path) or not path.is_file():
            continue
        found = header_size(path)  # the header only: a broken body is caught when decoded
        if found and min(found) >= MIN_SIDE:
            files.append(path)
        else:
            skipped += 1
    return files, skipped


def split(files: list[Path], val_percent: int, validation: bool) -> list[Path]:
    return [f for f in files if is_validation(f, val_percent) == validation]


def load_rgb(path: Path) -> Image.Image:
    return read_image(path).rgb


def random_crop(image: Image.Image, load_size: int, crop_size: int, rng: random.Random) -> Tensor:
    """Shorter side to `load_size`, a random `crop_size` square, a random horizontal flip."""
    scale = load_size / min(image.size)
    w, h = (max(crop_size, round(s * scale)) for s in image.size)
    image = image.resize((w, h), Image.BICUBIC)
    x, y = rng.randint(0, w - crop_size), rng.randint(0, h - crop_size)
    tensor = to_tensor(image.crop((x, y, x + crop_size, y + crop_size)))
    return tensor.flip(-1) if rng.random() < 0.5 else tensor


def centre_crops(files: list[Path], size: int, limit: int | None = None) -> tuple[Tensor, int]:
    """Centre crops (N, 3, size, size) of the first `limit` files that decode (all by
    default), for validation and previews, and how many files were skipped."""
    crops, skipped = [], 0
    for path in files:
        if limit is not None and len(crops) == limit:
            break
        try:
            image = load_rgb(path)
        except UNREADABLE:
            skipped += 1
            continue
        crops.append(to_tensor(ImageOps.fit(image, (size, size), Image.BICUBIC)))
    if not crops:
        return torch.empty(0, 3, size, size), skipped
    return torch.stack(crops), skipped
