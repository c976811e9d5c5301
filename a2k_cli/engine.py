"""Stylizer: one model and one style cache serving stylize, grid, sheet and video.

`encode_style` once, then `paint` any number of images (PIL in, PIL out: the engine owns
sizing, padding, batching and order); `render` is the tensor core under it, for video
frames. Why it is shaped this way:
- the network needs sides that are multiples of 64; images are reflect-padded up to that
  and cropped back, so any size and aspect comes back at exactly its own size;
- `size` caps an image's longer side; a smaller image keeps its own unless `upscale`
  (enlarging invents no detail and costs time);
- a style's keys do not depend on the content, so each (style file, style size) is
  encoded once and reused for every content and video frame;
- a content's features do not depend on the style, so `render` encodes a batch of
  contents once and renders it with several styles (the grid's rows);
- same-sized contents are stacked into batches (up to a pixel budget), and the
  encoder's full-resolution taps are freed before decoding, which keeps 4K within a few GB.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from a2k_cli.colour import preserve_colour
from a2k_cli.device import available_memory, configure_threads, pick_device, pick_dtype
from a2k_cli.errors import A2KError
from a2k_cli.imaging import as_rgb, fitted_size, resize_longer_side, to_image, to_tensor
from a2k_cli.model import MULTIPLE, A2KNet, StyleKeys, StyleState
from a2k_cli.styles import resolve_style
from a2k_cli.weights import load, resolve

ImageSource = str | Path | Image.Image | np.ndarray  # a path may also name a style
StyleSpec = ImageSource | Sequence[tuple[ImageSource, float]]

# pixels stacked per batch: batching amortises per-layer overhead even on CPU, and memory
# (not speed) sets the cap
BATCH_PIXELS = {"cpu": 1024 * 1024, "cuda": 4 * 1024 * 1024, "mps": 2 * 1024 * 1024}

# Working memory of a stylization beyond the attention's fixed budget, in full-resolution
# maps of the encoder's first width: the network's own peak plus the output copies a
# command holds, with room for how the kept memory fragments (checked against measured
# peaks by bench/studies/memory_peaks.py; whole-process peaks in bench/RESULTS.md)
PEAK_MAPS = 6

# encoded styles a Stylizer keeps in memory for reuse, least recently used dropped first:
# a long-lived process (a server, a notebook) must not grow with every style it meets
STYLES_KEPT = 16


class TooLargeError(A2KError, ValueError):
    """An image bigger than the free memory can stylize: refused before the OOM killer acts."""


@dataclass(frozen=True)
class EncodedStyle:
    """A style, or a weighted blend of styles, encoded once (`Stylizer.encode_style`)."""

    parts: tuple[tuple[StyleState, float], ...]


class Stylizer:
    """Arbitrary style transfer with a loaded A2K model on one device."""

    def __init__(
        self,
        model: str | Path | A2KNet = "lite",
        device: str = "auto",
        dtype: torch.dtype | None = None,
        style_cache: str | Path | None = None,
        precision: str = "auto",
    ) -> None:
        """`precision`: auto, fp32, bf16 or fp16 (`a2k_cli.device.pick_dtype`; an explicit
        `dtype` wins). `style_cache`: a folder where encoded styles are kept between
        processes (only for a model loaded from a file, whose identity is part of the key)."""
        configure_threads()
        self.device = pick_device(device)
        self.dtype = dtype or pick_dtype(self.device, precision)
        net = model if isinstance(model, A2KNet) else load(model)
        self.net = net.eval().to(self.device, self.dtype, memory_format=torch.channels_last)
        self._styles: OrderedDict[tuple, StyleState] = OrderedDict()  # most recent last
        self._disk = None
        if style_cache is not None and not isinstance(model, A2KNet):
            model_key = (_identity(resolve(model)), str(self.dtype), self.device.type)
            self._disk = StyleDiskCache(Path(style_cache), model_key)

    # ---- styles -------------------------------------------------------------------------

    def encode_style(self, style: StyleSpec, style_size: int = 512) -> EncodedStyle:
        """A style (path, name as `a2k styles` lists them, PIL or numpy array) or a weighted
        blend [(style, weight), …] encoded once, to paint any number of contents with.

        Each style is resized to `style_size` on its longer side and cached per (style,
        size); weights must be non-negative with a positive sum (the network normalises them).
        """
        single = isinstance(style, (str, Path, Image.Image, np.ndarray))
        pairs = [(style, 1.0)] if single else list(style)
        if not pairs:
            raise ValueError("no style given")
        weights = [float(w) for _, w in pairs]
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"style weights must be >= 0 with a positive sum, got {weights}")
        return EncodedStyle(
            tuple((self._encode_one(src, style_size), w) for (src, _), w in zip(pairs, weights))
        )

    def _encode_one(self, source: ImageSource, style_size: int) -> StyleState:
        if isinstance(source, (str, Path)):
            source = resolve_style(source)
        elif isinstance(source, np.ndarray):
            source = as_rgb(source)
        key = (_identity(source), style_size)
        if key in self._styles:
            self._styles.move_to_end(key)
            return self._styles[key]
        state = self._disk.get(key, self.device) if self._disk else None
        if state is None:
            image = as_rgb(source)
            self.check_size(*reversed(fitted_size(*image.size, style_size)))
            tensor = to_tensor(resize_longer_side(image.convert("RGB"), style_size))[None]
            with torch.inference_mode():
                feats = self.net.encode(self._network_input(tensor))
                state = self.net.prepare_style(feats)
            if self._disk:
                self._disk.put(key, state)
        self._styles[key] = state
        while len(self._styles) > STYLES_KEPT:
            self._styles.popitem(last=False)
        return state

    # ---- images: the entry point --------------------------------------------------------

    def batches(
        self, sizes: Sequence[tuple[int, int]], size: int = 1024, upscale: bool = False
    ) -> list[list[int]]:
        """Indices of contents of the given (width, height) in painting order, grouped into
        batches: equal output sizes share a batch up to the device's pixel budget, and the
        largest run first, so memory grows once to what the biggest needs and the smaller
        ones reuse it (measured in bench/RESULTS.md). A folder reader calls this with header
        sizes to decide what to decode together; `paint` applies it to what it is given."""
        # a size of (0, 0) stands for "unknown" (an unreadable header): it goes last
        outputs = [fitted_size(w, h, size, upscale) if w and h else (0, 0) for w, h in sizes]
        groups: dict[tuple[int, int], list[int]] = {}
        for index in sorted(range(len(sizes)), key=lambda i: -math.prod(outputs[i])):
            groups.setdefault(outputs[index], []).append(index)
        planned = []
        for (width, height), indices in groups.items():
            limit = self.batch_size(width * height)
            planned += [indices[i : i + limit] for i in range(0, len(indices), limit)]
        return planned

    def batch_size(self, pixels: int) -> int:
        """How many contents of `pixels` each to stack into one batch."""
        return max(1, BATCH_PIXELS.get(self.device.type, 1) // max(pixels, 1))

    def paint(
        self,
        images: Sequence[Image.Image],
        styles: Sequence[EncodedStyle],
        *,
        alpha: float = 1.0,
        preserve_color: bool = False,
        size: int = 1024,
        upscale: bool = False,
    ) -> Iterator[tuple[int, int, Image.Image]]:
        """Every image in every style: yields (image index, style index, painted PIL RGB)
        as each is ready, in the order of `batches`.

        `size` caps an output's longer side (0: each image's own size); a smaller image keeps
        its size unless `upscale`. Every size is checked against free memory before the first
        one paints; each batch of contents is encoded once for all the styles.
        """
        if not styles:
            return
        for image in images:
            self.check_size(*reversed(fitted_size(*image.size, size, upscale)))
        for indices in self.batches([image.size for image in images], size, upscale):
            resized = [resize_longer_side(images[i].convert("RGB"), size, upscale) for i in indices]
            batch = torch.stack([to_tensor(image) for image in resized])
            rendered = self.render(batch, styles, alpha=alpha, preserve_color=preserve_color)
            for j, painted in enumerate(rendered):
                for i, tensor in zip(indices, painted):
                    yield i, j, to_image(tensor)

    def stylize(
        self,
        content: ImageSource,
        style: StyleSpec | EncodedStyle,
        *,
        alpha: float = 1.0,
        preserve_color: bool = False,
        size: int = 1024,
        style_size: int = 512,
        upscale: bool = False,
    ) -> Image.Image:
        """One content (path, PIL or numpy array) in one style or blend -> PIL RGB: `paint`
        for a single image, encoding the style first unless it already is."""
        if not isinstance(style, EncodedStyle):
            style = self.encode_style(style, style_size)
        painted = self.paint(
            [as_rgb(content)],
            [style],
            alpha=alpha,
            preserve_color=preserve_color,
            size=size,
            upscale=upscale,
        )
        return next(painted)[2]

    # ---- tensors: the core under `paint` -------------------------------------------------

    def render(
        self,
        images: Tensor,
        styles: Sequence[EncodedStyle],
        *,
        alpha: float = 1.0,
        preserve_color: bool = False,
    ) -> Iterator[Tensor]:
        """(B,3,H,W) float [0,1] on CPU, any H, W, rendered once per style: yields
        (B,3,H,W) float [0,1] on CPU, the contents encoded once. For callers that hold
        tensors of their final size already (video frames); no resizing happens here."""
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got shape {tuple(images.shape)}")
        height, width = images.shape[-2:]
        # inference mode is entered and left around each step, never held across a yield:
        # a generator suspended (or dropped) inside it would leave the caller's thread in it
        with torch.inference_mode():
            feats = self.net.encode(self._network_input(images))
            feats[0] = feats[1] = None  # full-resolution taps the stylization never reads
        for style in styles:
            with torch.inference_mode():
                batch = [(_expand(state, images.shape[0]), w) for state, w in style.parts]
                f3, merged = self.net.stylize_features(feats, batch, alpha)
                out = self.net.decode(f3, merged)[..., :height, :width]
                del f3, merged  # not held across the yield: one style's maps at a time
                # pixels stay interleaved (HWC) as the network made them: image writers want that
                out = out.float().clamp_(0, 1).cpu().contiguous(memory_format=torch.channels_last)
                out = preserve_colour(out, images) if preserve_color else out
            yield out

    def _network_input(self, images: Tensor) -> Tensor:
        """Checked against free memory, on the device in channels-last, padded to 64."""
        self.check_size(*images.shape[-2:], batch=images.shape[0])
        images = images.to(self.device, self.dtype, non_blocking=True)
        return self._pad(images.contiguous(memory_format=torch.channels_last))

    def check_size(self, height: int, width: int, batch: int = 1) -> None:
        """Refuse a batch whose working memory exceeds what the device has free (called with
        the target size before an image is resized, and again on the tensor itself)."""
        free = available_memory(self.device)
        if free is None:
            return
        needed = self._needed(batch, height, width)
        if needed > free:
            longer = max(height, width)
            # a first guess from the pixel ratio, then down until the padded sizes fit too
            side = int(longer * (free / needed) ** 0.5) // MULTIPLE * MULTIPLE
            while (
                side > 0
                and self._needed(batch, *(round(s * side / longer) for s in (height, width))) > free
            ):
                side -= MULTIPLE
            count = f"{batch} images of " if batch > 1 else ""
            hint = f"resize to a longer side of at most {side} px (--size {side})"
            raise TooLargeError(
                f"{count}{width}×{height} needs about {needed / 2**30:.1f} GiB to stylize and "
                f"{free / 2**30:.1f} GiB is free: {hint if side > 0 else 'free some memory first'}"
            )

    def _needed(self, batch: int, height: int, width: int) -> int:
        """Bytes a batch needs: PEAK_MAPS maps at the padded size plus the attention budget."""
        pixels = batch * (height + -height % MULTIPLE) * (width + -width % MULTIPLE)
        itemsize = torch.finfo(self.dtype).bits // 8
        return pixels * PEAK_MAPS * self.net.preset.widths[0] * itemsize + self.net.a2k.budget_bytes

    @staticmethod
    def _pad(images: Tensor) -> Tensor:
        """Reflect-pad bottom/right to multiples of 64, in steps when a side is too short
        for one reflection (a reflection pad must be smaller than the side it mirrors)."""
        height, width = images.shape[-2:]
        while height % MULTIPLE or width % MULTIPLE:
            pad_h = min(-height % MULTIPLE, height - 1)
            pad_w = min(-width % MULTIPLE, width - 1)
            if not (pad_h or pad_w):  # a 1-px side has nothing to mirror: repeat it
                pad = (0, -width % MULTIPLE, 0, -height % MULTIPLE)
                return F.pad(images, pad, mode="replicate")
            images = F.pad(images, (0, pad_w, 0, pad_h), mode="reflect")
            height, width = height + pad_h, width + pad_w
        return images


def _identity(source: ImageSource) -> tuple:
    """A cache key that changes when the file (or the image's pixels) change."""
    if isinstance(source, Image.Image):
        digest = hashlib.blake2b(source.tobytes(), digest_size=16).hexdigest()
        return ("pixels", source.mode, source.size, digest)
    path = Path(source)
    try:
        stat = path.stat()
    except OSError:
        return ("path", str(path))
    return ("file", str(path.resolve()), stat.st_mtime_ns, stat.st_size)


class StyleDiskCache:
    """Encoded styles kept as files between processes, keyed by model, style and size; the
    oldest files go once there are more than `keep` (encoded styles are large). A file that
    cannot be read is encoded again: the cache can only make a run faster, never fail it."""

    def __init__(self, folder: Path, model_key: tuple, keep: int = 32) -> None:
        self.folder, self.model_key, self.keep = folder, model_key, keep

    def _file(self, key: tuple) -> Path:
        digest = hashlib.blake2b(repr((self.model_key, key)).encode(), digest_size=16)
        return self.folder / f"{digest.hexdigest()}.safetensors"

    def get(self, key: tuple, device: torch.device) -> StyleState | None:
        from safetensors.torch import load_file

        path = self._file(key)
        if not path.is_file():
            return None
        try:
            flat = load_file(path, device=str(device))
            return StyleState(
                *(
                    StyleKeys(*(flat[f"{level}.{part}"] for part in StyleKeys._fields))
                    for level in StyleState._fields
                )
            )
        except Exception:  # any damage to a cache file means: encode again
            return None

    def put(self, key: tuple, state: StyleState) -> None:
        from safetensors.torch import save_file

        from a2k_cli.atomic import atomic_path

        flat = {
            f"{level}.{part}": tensor.contiguous()
            for level, keys in zip(StyleState._fields, state)
            for part, tensor in zip(StyleKeys._fields, keys)
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self._file(key)) as tmp:
                save_file(flat, str(tmp))
            files = [f for f in self.folder.glob("*.safetensors") if not f.name.startswith(".")]
            files.sort(key=lambda f: f.stat().st_mtime)
            for old in files[: max(0, len(files) - self.keep)]:
                old.unlink(missing_ok=True)
        except OSError:  # a read-only or full disk only costs the next run the encoding
            pass


def _expand(state: StyleState, batch: int) -> StyleState:
    """A style encoded once, viewed (not copied) as `batch` identical samples."""
    if batch == 1:
        return state
    return StyleState(
        *(StyleKeys(*(t.expand(batch, *t.shape[1:]) for t in keys)) for keys in state)
    )
