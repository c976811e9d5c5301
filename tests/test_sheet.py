"""`a2k sheet`: one photo in many styles on one labelled image; styles cached on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from a2k_cli.cli import app

runner = CliRunner()


@pytest.fixture
def photo(tmp_path, picture):
    path = tmp_path / "photo.jpg"
    picture(90, 60).save(path)
    return path


def sheet(tiny_weights, photo, *extra):
    args = ["sheet", str(photo), "--model", str(tiny_weights), "--size", "64", "--tile", "64"]
    return runner.invoke(app, [*args, "--style-size", "64", *extra])


def test_every_named_style_on_one_sheet_beside_the_photo(tiny_weights, photo):
    result = sheet(tiny_weights, photo, "--json", "--columns", "4")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sheet"] == str(photo.with_name("photo_sheet.jpg"))
    assert len(report["styles"]) == 10
    image = Image.open(report["sheet"])
    # the original + 10 styles in rows of 4: 4 tiles of 64 x 43 across, 3 rows down
    assert image.width == 4 + 4 * (64 + 4) and image.height > 3 * 43
    again = sheet(tiny_weights, photo)
    assert again.exit_code == 1 and "--overwrite" in again.stderr


def test_given_styles_and_the_encodings_kept_for_the_next_sheet(tiny_weights, photo, tmp_path):
    from a2k_cli.paths import style_cache_dir

    out = tmp_path / "two.png"
    args = ["-s", "great-wave", "-s", "the-scream", "-o", str(out)]
    assert sheet(tiny_weights, photo, *args).exit_code == 0
    cached = sorted(style_cache_dir().glob("*.safetensors"))
    assert len(cached) == 2
    first = np.asarray(Image.open(out))
    stamps = [f.stat().st_mtime_ns for f in cached]
    assert sheet(tiny_weights, photo, *args, "--overwrite").exit_code == 0
    assert [f.stat().st_mtime_ns for f in cached] == stamps  # read, not written again
    assert np.array_equal(np.asarray(Image.open(out)), first)  # and they paint the same


def test_a_damaged_cache_file_is_encoded_again(tiny_weights, photo, tmp_path):
    from a2k_cli.paths import style_cache_dir

    out = tmp_path / "one.png"
    assert sheet(tiny_weights, photo, "-s", "great-wave", "-o", str(out)).exit_code == 0
    first = np.asarray(Image.open(out))
    (cached,) = style_cache_dir().glob("*.safetensors")
    cached.write_bytes(b"garbage")
    result = sheet(tiny_weights, photo, "-s", "great-wave", "-o", str(out), "--overwrite")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(Image.open(out)), first)
    assert cached.stat().st_size > 1000


def test_an_output_name_that_cannot_be_written_is_refused_before_painting(
    tiny_weights, photo, tmp_path
):
    result = sheet(tiny_weights, photo, "-o", str(tmp_path / "sheet.gif"))
    assert result.exit_code == 2 and "unknown output format" in result.output
    assert not (tmp_path / "sheet.gif").exists()
