"""`a2k grid`: every pair named by the rule, the contact sheet, bad files, overwrite."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from a2k_cli.cli import app

runner = CliRunner()


def folder(path, names, width=48, height=32):
    path.mkdir()
    for seed, name in enumerate(names):
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / name)
    return path


def grid(tiny_weights, contents, styles, out, *extra):
    args = ["grid", str(contents), str(styles), "-o", str(out), "--model", str(tiny_weights)]
    return runner.invoke(app, [*args, "--size", "64", "--style-size", "64", "--tile", "48", *extra])


def test_every_pair_and_the_sheet(tmp_path, tiny_weights):
    contents = folder(tmp_path / "contents", ["a.jpg", "b.png"])
    styles = folder(tmp_path / "styles", ["s1.png", "s2.jpg", "s3.png"], 64, 64)
    out = tmp_path / "out"
    result = grid(tiny_weights, contents, styles, out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["written"] == 6 and summary["sheet"] == str(out / "grid.png")
    names = {f"{c}_{s}.png" for c in "ab" for s in ("s1", "s2", "s3")}
    assert {p.name for p in out.iterdir()} == names | {"grid.png"}
    assert Image.open(out / "a_s1.png").size == (64, 43)
    sheet = Image.open(out / "grid.png")
    assert sheet.width == 4 + 4 * 52 and sheet.height > 3 * 52  # 3 styles + label column


def test_bad_content_is_skipped_and_reported(tmp_path, tiny_weights):
    contents = folder(tmp_path / "contents", ["a.jpg"])
    (contents / "broken.png").write_bytes(b"")
    styles = folder(tmp_path / "styles", ["s.png"], 64, 64)
    out = tmp_path / "out"
    result = grid(tiny_weights, contents, styles, out)
    assert result.exit_code == 1 and "broken.png" in result.stderr
    assert {p.name for p in out.iterdir()} == {"a_s.png", "grid.png"}


def test_existing_outputs_need_overwrite(tmp_path, tiny_weights):
    contents = folder(tmp_path / "contents", ["a.jpg"])
    styles = folder(tmp_path / "styles", ["s.png"], 64, 64)
    out = tmp_path / "out"
    assert grid(tiny_weights, contents, styles, out).exit_code == 0
    again = grid(tiny_weights, contents, styles, out)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert grid(tiny_weights, contents, styles, out, "--overwrite").exit_code == 0
