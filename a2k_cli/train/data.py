"""Image-folder datasets for training: recursive scan, safe decoding, random crops."""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from a2k_cli.engine import to_tensor

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
MIN_SIDE = 32  # images smaller than this carry no usable texture and are skipped
Image.MAX_IMAGE_PIXELS = 64 * 2**20  # refuse decompression bombs while scanning


def is_validation(path: Path, percent: int) -> bool:
    """A stable hold-out split: the same file is always on the same side, on any machine."""
    return zlib.crc32(path.name.encode()) % 100 < percent


def scan_images(root: str | Path) -> tuple[list[Path], int]:
    """Usable images under `root` (recursive, sorted) and how many files were skipped."""
    files, skipped = [], 0
    for path in sorted(Path(root).rglob("*")):
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            continue
        try:
            with Image.open(path) as im:
                usable = min(im.size) >= MIN_SIDE
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
            usable = False
        if usable:
            files.append(path)
        else:
            skipped += 1
    return files, skipped


def split(files: list[Path], val_percent: int, validation: bool) -> list[Path]:
    return [f for f in files if is_validation(f, val_percent) == validation]


def load_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def random_crop(image: Image.Image, load_size: int, crop_size: int, rng: random.Random) -> Tensor:
    """Shorter side to `load_size`, a random `crop_size` square, a random horizontal flip."""
    scale = load_size / min(image.size)
    w, h = (max(crop_size, round(s * scale)) for s in image.size)
    image = image.resize((w, h), Image.BICUBIC)
    x, y = rng.randint(0, w - crop_size), rng.randint(0, h - crop_size)
    tensor = to_tensor(image.crop((x, y, x + crop_size, y + crop_size)))
    return tensor.flip(-1) if rng.random() < 0.5 else tensor


class CropStream(IterableDataset):
    """An endless stream of random crops from a list of images.

    Each (rank, worker) pair draws from its own seeded generator, so streams differ across
    workers and processes yet replay exactly for a given seed. Files that fail to decode
    are skipped and counted, never fatal.
    """

    def __init__(self, files: list[Path], load_size: int, crop_size: int, seed: int) -> None:
        if not files:
            raise ValueError("no usable images")
        self.files, self.load_size, self.crop_size, self.seed = files, load_size, crop_size, seed
        self.failures = 0

    def __iter__(self) -> Iterator[Tensor]:
        worker = get_worker_info()
        rng = random.Random(self.seed * 1000 + (worker.id if worker else 0))
        while True:
            path = rng.choice(self.files)
            try:
                image = load_rgb(path)
            except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError):
                self.failures += 1
                continue
            yield random_crop(image, self.load_size, self.crop_size, rng)


class ImageList(Dataset):
    """Deterministic centre crops, for validation and previews."""

    def __init__(self, files: list[Path], size: int) -> None:
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Tensor:
        image = ImageOps.fit(load_rgb(self.files[index]), (self.size, self.size), Image.BICUBIC)
        return to_tensor(image)
