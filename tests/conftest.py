"""Shared fixtures: the read-only `../shared` material (skipped when absent), tiny nets, and
the pictures, broken files, ffmpeg runs and error checks that many test files need.

Test files use these through fixtures only, never by importing this module or each other.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]  # tests/test_training.py imports this name
SHARED = ROOT.parent / "shared"


def find_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared material is not beside this checkout)")
    return path


def make_picture(
    width: int, height: int, seed: int = 0, mode: str = "RGB", color=None
) -> Image.Image:
    """Random pixels from `seed` (the same seed, the same picture), or flat `color`."""
    if color is not None:
        return Image.new(mode, (width, height), color)
    channels = 4 if mode == "RGBA" else 3
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), np.uint8)
    return Image.fromarray(pixels).convert(mode)


def make_image_folder(
    folder: Path, names: int | Sequence[str] = 4, width: int = 96, height: int = 96
) -> Path:
    """A new folder of random pictures: the given file names, or `0.png`..`{n-1}.png`;
    the i-th picture has seed i."""
    folder.mkdir()
    if isinstance(names, int):
        names = [f"{i}.png" for i in range(names)]
    for seed, name in enumerate(names):
        make_picture(width, height, seed).save(folder / name)
    return folder


def write_truncated_jpeg(path: Path) -> None:
    """A JPEG whose header reads but whose pixels are cut off."""
    make_picture(64, 64).save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[:300])


def write_huge_png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims `width` x `height` but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat))


def check_one_line_error(result) -> str:
    """A CliRunner result that failed with exactly one `error:` line and no traceback; the line."""
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


@pytest.fixture(autouse=True)
def _isolated_user_dir(tmp_path_factory, monkeypatch):
    """Never touch the real user weights folder."""
    monkeypatch.setenv("A2K_HOME", str(tmp_path_factory.mktemp("a2k_home")))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A randomly initialised lite model saved in our format (fast stand-in for real weights)."""
    import torch

    from a2k_cli.model import A2KNet
    from a2k_cli.weights import save

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-lite.safetensors"
    return save(A2KNet.from_preset("lite"), path, preset="lite", provenance="random init (tests)")


@pytest.fixture(scope="session")
def shared_path():
    """`shared_path(*parts)`: that path under ../shared; the test skips where it is absent."""
    return find_shared


@pytest.fixture(scope="session")
def picture():
    """`picture(width, height, seed=0, mode="RGB", color=None)`: a PIL image of random
    pixels (or of one flat colour)."""
    return make_picture


@pytest.fixture(scope="session")
def image_folder():
    """`image_folder(folder, names=4, width=96, height=96)`: `folder` made and filled with
    random pictures (a count gives 0.png, 1.png, ...)."""
    return make_image_folder


@pytest.fixture(scope="session")
def truncated_jpeg():
    """`truncated_jpeg(path)`: writes a JPEG cut off after its header."""
    return write_truncated_jpeg


@pytest.fixture(scope="session")
def huge_png_header():
    """`huge_png_header(path, width, height)`: writes a PNG header claiming that size."""
    return write_huge_png_header


@pytest.fixture(scope="session")
def one_line_error():
    """`one_line_error(result)`: asserts a CliRunner result is one error line; returns it."""
    return check_one_line_error


@pytest.fixture(scope="session")
def ffmpeg_exe() -> str:
    """The ffmpeg executable the `video` command itself runs."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="session")
def ffmpeg(ffmpeg_exe):
    """`ffmpeg(*args)`: runs ffmpeg quietly, overwriting outputs; fails the test on error."""

    def run(*args: str) -> None:
        subprocess.run([ffmpeg_exe, "-y", "-v", "error", "-nostdin", *args], check=True)

    return run
