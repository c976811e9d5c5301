"""`a2k grid`: every pair named by the rule, the contact sheet, bad files, overwrite."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from a2k_cli.cli import app

runner = CliRunner()


def grid(tiny_weights, contents, styles, out, *extra):
    args = ["grid", str(contents), str(styles), "-o", str(out), "--model", str(tiny_weights)]
    return runner.invoke(app, [*args, "--size", "64", "--style-size", "64", "--tile", "48", *extra])


def test_every_pair_and_the_sheet(tmp_path, tiny_weights, image_folder):
    contents = image_folder(tmp_path / "contents", ["a.jpg", "b.png"], 48, 32)
    styles = image_folder(tmp_path / "styles", ["s1.png", "s2.jpg", "s3.png"], 64, 64)
    out = tmp_path / "out"
    result = grid(tiny_weights, contents, styles, out, "--json", "--upscale")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["written"] == 6 and summary["sheet"] == str(out / "grid.png")
    names = {f"{c}_{s}.png" for c in "ab" for s in ("s1", "s2", "s3")}
    assert {p.name for p in out.iterdir()} == names | {"grid.png"}
    assert Image.open(out / "a_s1.png").size == (64, 43)
    sheet = Image.open(out / "grid.png")
    assert sheet.width == 4 + 4 * 52 and sheet.height > 3 * 52  # 3 styles + label column


def test_bad_content_is_skipped_and_reported(tmp_path, tiny_weights, image_folder):
    contents = image_folder(tmp_path / "contents", ["a.jpg"], 48, 32)
    (contents / "broken.png").write_bytes(b"")
    styles = image_folder(tmp_path / "styles", ["s.png"], 64, 64)
    out = tmp_path / "out"
    result = grid(tiny_weights, contents, styles, out)
    assert result.exit_code == 1 and "broken.png" in result.stderr
    assert {p.name for p in out.iterdir()} == {"a_s.png", "grid.png"}


def test_a_second_run_paints_only_the_new_pairs_and_rebuilds_the_sheet(
    tmp_path, tiny_weights, picture, image_folder
):
    contents = image_folder(tmp_path / "contents", ["a.jpg", "b.png"], 48, 32)
    styles = image_folder(tmp_path / "styles", ["s1.png"], 64, 64)
    out = tmp_path / "out"
    assert grid(tiny_weights, contents, styles, out).exit_code == 0
    first = (out / "a_s1.png").stat().st_mtime_ns
    narrow = Image.open(out / "grid.png").size
    picture(64, 64, color=(200, 200, 200)).save(styles / "s2.png")
    again = grid(tiny_weights, contents, styles, out, "--json")
    assert again.exit_code == 0, again.output
    summary = json.loads(again.stdout)
    assert summary["written"] == 2 and summary["kept"] == 2
    assert {
        i["output"].rsplit("/", 1)[-1] for i in summary["items"] if i["status"] == "written"
    } == {
        "a_s2.png",
        "b_s2.png",
    }
    assert (out / "a_s1.png").stat().st_mtime_ns == first  # not repainted
    assert Image.open(out / "grid.png").width > narrow[0]  # the sheet has the new column
    repaint = grid(tiny_weights, contents, styles, out, "--overwrite", "--json")
    assert json.loads(repaint.stdout)["written"] == 4


def test_an_unreadable_earlier_pair_is_reported_not_replaced(tmp_path, tiny_weights, image_folder):
    contents = image_folder(tmp_path / "contents", ["a.jpg"], 48, 32)
    styles = image_folder(tmp_path / "styles", ["s.png"], 64, 64)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_s.png").write_bytes(b"not an image")
    result = grid(tiny_weights, contents, styles, out)
    assert result.exit_code == 1 and "--overwrite" in result.stderr
    assert (out / "a_s.png").read_bytes() == b"not an image"


def test_builtin_names_every_builtin_style(tmp_path, tiny_weights, image_folder):
    from a2k_cli.styles import builtin_styles

    contents = image_folder(tmp_path / "contents", ["a.jpg"], 48, 32)
    out = tmp_path / "out"
    result = grid(tiny_weights, contents, "builtin", out, "--json")
    assert result.exit_code == 0, result.output
    names = {f"a_{name}.png" for name in builtin_styles()}
    assert len(names) == 10 and {p.name for p in out.iterdir()} == names | {"grid.png"}


def test_torchrun_shares_the_rows_between_processes_with_one_sheet(
    tmp_path, tiny_weights, image_folder
):
    import os
    import subprocess
    import sys

    contents = image_folder(tmp_path / "contents", ["a.jpg", "b.png", "c.png"], 48, 32)
    styles = image_folder(tmp_path / "styles", ["s1.png", "s2.png"], 64, 64)
    out = tmp_path / "out"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [*launcher, "-m", "a2k_cli", "grid", str(contents), str(styles), "-o", str(out)]
    cmd += ["--model", str(tiny_weights), "--size", "64", "--style-size", "64", "--tile", "48"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)  # one summary: rank 1 prints nothing
    assert summary["written"] == 6
    pairs = [
        (i["content"].rsplit("/", 1)[-1], i["style"].rsplit("/", 1)[-1]) for i in summary["items"]
    ]
    assert pairs == [(c, s) for c in ("a.jpg", "b.png", "c.png") for s in ("s1.png", "s2.png")]
    # rank 0 painted rows a and c, rank 1 row b, read back from disk for the one sheet
    alone = tmp_path / "alone"
    assert grid(tiny_weights, contents, styles, alone).exit_code == 0
    shared, single = (np.asarray(Image.open(d / "grid.png"), float) for d in (out, alone))
    assert shared.shape == single.shape and np.abs(shared - single).mean() < 1


def test_a_style_that_cannot_be_encoded_is_reported_and_the_rest_painted(
    tmp_path, tiny_weights, image_folder, monkeypatch
):
    from a2k_cli.engine import Stylizer, TooLargeError

    contents = image_folder(tmp_path / "contents", ["a.jpg"], 48, 32)
    styles = image_folder(tmp_path / "styles", ["s1.png", "s2.png"], 64, 64)
    encode = Stylizer.encode_style
    calls = []

    def second_too_large(self, style, style_size=512):
        calls.append(style)
        if len(calls) == 2:
            raise TooLargeError("s2 needs about 9.9 GiB to stylize")
        return encode(self, style, style_size)

    monkeypatch.setattr(Stylizer, "encode_style", second_too_large)
    out = tmp_path / "out"
    result = grid(tiny_weights, contents, styles, out, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["written"] == 1 and summary["failed"] == 1
    assert {p.name for p in out.iterdir()} == {"a_s1.png", "grid.png"}
