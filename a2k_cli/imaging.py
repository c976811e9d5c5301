"""Reading and writing images safely: every way a file can be bad becomes one `ImageError`.

Reading returns upright 8-bit RGB plus the alpha channel, if any. Why each rule:
- EXIF orientation is applied, so a portrait phone photo comes back portrait;
- CMYK, palette, grayscale, 16-bit and float images are converted to 8-bit RGB (16-bit
  values are scaled, not clipped), because the network sees RGB in [0, 1];
- alpha (RGBA, LA, palette transparency) is returned separately: it is written back onto
  the stylized image for PNG and WebP outputs and dropped for JPEG, which has none;
- a decompression bomb (more than `MAX_PIXELS`) is refused before its pixels are decoded;
- images under `MIN_SIDE` pixels a side are refused: they hold too little for a style.

Writing is atomic (`a2k_cli.atomic.atomic_path`), so an output is complete or absent, and
tags the file as a2k's (`made_by_a2k`).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from a2k_cli.atomic import atomic_path
from a2k_cli.errors import A2KError, first_line

if TYPE_CHECKING:
    from torch import Tensor

EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp"}
ALPHA_FORMATS = (".png", ".webp")
MIN_SIDE = 16
# Pillow's default decompression-bomb limit (2 x its warning level: 179 MP, more than
# cameras write in practice), checked from the header before decoding. a2k never changes
# Pillow's process-wide setting; where an application has lowered it, Pillow's stops first.
MAX_PIXELS = 2 * 89_478_485
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
SOFTWARE = "a2k"  # the tag on every image a2k writes (PNG text chunk, EXIF elsewhere)
EXIF_SOFTWARE = 0x0131
EXIF_ORIENTATION = 0x0112  # values 5-8 turn the picture a quarter: width and height swap


class ImageError(A2KError, ValueError):
    """A file that cannot be used as an image; the message is one line naming the file."""


@dataclass(frozen=True)
class LoadedImage:
    rgb: Image.Image  # mode "RGB", upright
    alpha: Image.Image | None  # mode "L", same size, or None when the file has none


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in EXTENSIONS


def image_files(path: Path) -> list[Path]:
    """A file as given, or the images directly inside a folder (sorted; not recursive)."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p))
    return [path]


def read_image(path: str | Path) -> LoadedImage:
    """Decode `path` into upright 8-bit RGB (+ alpha), or raise a one-line ImageError."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if not is_image_path(path):
        known = " ".join(EXTENSIONS)
        raise ImageError(f"{path}: unsupported extension {path.suffix!r} (expected {known})")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    return _decode(path, str(path))


def read_image_bytes(data: bytes, label: str = "stdin") -> LoadedImage:
    """`read_image` for an encoded image held in memory (standard input); any format Pillow
    reads, since there is no extension to check."""
    if not data:
        raise ImageError(f"{label}: empty")
    return _decode(io.BytesIO(data), label)


def _decode(source: Path | io.BytesIO, label: str) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(source) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{label}: {width}x{height} is too large "
                        f"(more than {MAX_PIXELS / 1e6:.0f} megapixels)"
                    )
                im.load()
                loaded = _to_rgb(ImageOps.exif_transpose(im))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not an image, or a format that cannot be read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = f"more than {(Image.MAX_IMAGE_PIXELS or MAX_PIXELS // 2) * 2 / 1e6:.0f} megapixels"
        raise ImageError(f"{label}: too large to decode safely ({limit})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = first_line(exc)
        raise ImageError(f"{label}: cannot decode ({reason})") from None
    width, height = loaded.rgb.size
    if min(width, height) < MIN_SIDE:
        raise ImageError(f"{label}: {width}x{height} is too small (at least {MIN_SIDE} px a side)")
    return loaded


def as_rgb(source: str | Path | Image.Image | np.ndarray) -> Image.Image:
    """A file, PIL image or numpy array (H×W or H×W×3/4; uint8, or float in 0…1) as PIL RGB."""
    if isinstance(source, Image.Image):
        return source.convert("RGB")
    if isinstance(source, np.ndarray):
        array = source
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
            raise ImageError(f"an array of shape {array.shape} is not an image (H×W×3 expected)")
        if array.dtype != np.uint8:
            array = np.clip(np.nan_to_num(array.astype(np.float32)), 0, 1) * 255 + 0.5
            array = array.astype(np.uint8)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[..., 0]
        if min(array.shape[:2]) < MIN_SIDE:
            raise ImageError(f"an array of shape {array.shape} is too small")
        return Image.fromarray(np.ascontiguousarray(array)).convert("RGB")
    return read_image(source).rgb


def _to_rgb(im: Image.Image) -> LoadedImage:
    if im.mode in SIXTEEN_BIT_MODES:
        wide = np.asarray(im, dtype=np.float32)
        if im.mode.startswith("I;16") or wide.max(initial=0) > 255:
            wide = wide / 257.0
        gray = Image.fromarray(np.clip(wide + 0.5, 0, 255).astype(np.uint8), "L")
        return LoadedImage(gray.convert("RGB"), None)
    if im.mode == "F":
        gray = Image.fromarray(np.clip(np.asarray(im) * 255 + 0.5, 0, 255).astype(np.uint8))
        return LoadedImage(gray.convert("RGB"), None)
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        return LoadedImage(rgba.convert("RGB"), rgba.getchannel("A"))
    return LoadedImage(im.convert("RGB"), None)


def fitted_size(width: int, height: int, size: int, upscale: bool = True) -> tuple[int, int]:
    """(width, height) scaled so the longer side is `size`; 0 keeps it, and so does a
    smaller image unless `upscale`."""
    if size <= 0 or max(width, height) == size or (not upscale and max(width, height) < size):
        return width, height
    scale = size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_longer_side(image: Image.Image, size: int, upscale: bool = True) -> Image.Image:
    """Scale so the longer side is `size` (see `fitted_size`); 0 keeps it."""
    new = fitted_size(*image.size, size, upscale)
    return image if new == image.size else image.resize(new, Image.LANCZOS)


def made_by_a2k(path: Path) -> bool:
    """Whether a2k wrote this image (its outputs are tagged): folders of contents leave
    them out, so a second run never paints the first run's outputs."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                software = im.info.get("Software"), im.getexif().get(EXIF_SOFTWARE)
                return SOFTWARE in software
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return False


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) as `read_image` will return it (EXIF orientation applied), read from
    the file's header alone; None when it cannot be read (`read_image` then says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                size = im.size
                try:  # damaged EXIF: the size as stored (decoding will judge the file)
                    turned = im.getexif().get(EXIF_ORIENTATION) in (5, 6, 7, 8)
                except (OSError, SyntaxError, ValueError, EOFError):
                    turned = False
                return (size[1], size[0]) if turned else size
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None


def format_suffix(fmt: str) -> str:
    """'png' | 'jpg' | 'jpeg' | 'webp' (with or without a dot) -> the file suffix."""
    key = fmt.lower().lstrip(".")
    if key not in FORMATS:
        raise ImageError(f"unknown output format {fmt!r} (choose png, jpg or webp)")
    return FORMATS[key]


def style_label(styles: Sequence[str | Path], weights: Sequence[float] | None = None) -> str:
    """The style part of output names: stems joined by `+`, each with its share of the
    blend (`great-wave@0.25+the-scream@0.75`) unless the weights are equal, so trying other
    weights never collides with an earlier output."""
    stems = [Path(s).stem for s in styles]
    if weights and len(set(weights)) > 1:
        total = sum(weights)
        stems = [f"{stem}@{w / total:.2f}" for stem, w in zip(stems, weights)]
    return "+".join(stems)


def output_name(
    content_path: str | Path,
    style_path: str | Path | Sequence[str | Path],
    fmt: str = "png",
    weights: Sequence[float] | None = None,
) -> str:
    """The file name `a2k stylize` and `a2k grid` give a pair: `<content-stem>_<style>.<fmt>`
    (`style_label`). `a2k eval` matches outputs to their sources by this rule."""
    styles = [style_path] if isinstance(style_path, (str, Path)) else list(style_path)
    return f"{Path(content_path).stem}_{style_label(styles, weights)}{format_suffix(fmt)}"


def write_image(
    image: Image.Image,
    path: str | Path,
    *,
    quality: int = 92,
    alpha: Image.Image | None = None,
    overwrite: bool = True,
) -> Path:
    """Save atomically in the format the suffix names; alpha is kept for PNG and WebP only.
    Without `overwrite`, an existing file (even one another process just wrote) raises
    FileExistsError and stays as it was."""
    path = Path(path)
    data = encode_image(image, format_suffix(path.suffix), quality, alpha)
    with atomic_path(path, replace=overwrite) as tmp:
        tmp.write_bytes(data)
    return path


def encode_image(
    image: Image.Image, suffix: str, quality: int = 92, alpha: Image.Image | None = None
) -> bytes:
    """The file's bytes for `.png`, `.jpg` or `.webp`, tagged as a2k's (`made_by_a2k`)."""
    if alpha is not None and suffix in ALPHA_FORMATS:
        if alpha.size != image.size:
            alpha = alpha.resize(image.size, Image.LANCZOS)
        image = image.convert("RGBA")
        image.putalpha(alpha)
    if suffix == ".png":
        return png_bytes(image)
    exif = Image.Exif()
    exif[EXIF_SOFTWARE] = SOFTWARE
    buffer = io.BytesIO()
    kind = {".jpg": "JPEG", ".webp": "WEBP"}[suffix]
    image.save(buffer, format=kind, quality=quality, exif=exif.tobytes())
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    """An 8-bit RGB(A) PNG, every row "Up"-filtered and zlib level 1 run-length coded.

    Pillow tries all five PNG filters on every row; the writes run beside the network and
    take their CPU from it, and one fixed filter is several times cheaper for slightly
    bigger files (bench/results/design-measurements.md).
    """
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGB")
    pixels = np.asarray(image)
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    scanlines = np.empty((height, rows.shape[1] + 1), np.uint8)
    scanlines[:, 0] = 2  # filter type "Up": each byte minus the one above it (mod 256)
    scanlines[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=scanlines[1:, 1:])
    packer = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    data = packer.compress(scanlines) + packer.flush()
    colour_type = 6 if channels == 4 else 2
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    made_by = b"Software\0" + SOFTWARE.encode()
    chunks = ((b"IHDR", header), (b"tEXt", made_by), (b"IDAT", data), (b"IEND", b""))
    return PNG_SIGNATURE + b"".join(_png_chunk(kind, body) for kind, body in chunks)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def to_tensor(image: Image.Image) -> Tensor:
    """PIL RGB -> (3, H, W) float in [0, 1]."""
    import torch

    data = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return data.view(image.height, image.width, 3).permute(2, 0, 1).float().div_(255)


def to_image(tensor: Tensor) -> Image.Image:
    """(3, H, W) float in [0, 1] -> PIL RGB."""
    import torch

    pixels = tensor.mul(255).round_().to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(pixels.numpy(), "RGB")
