"""`a2k stylize` through the CLI: the bad-input battery, batches, naming, overwrite, options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from a2k_cli.cli import app

runner = CliRunner()


@pytest.fixture
def style(tmp_path, picture):
    path = tmp_path / "style.png"
    picture(64, 64, 7).save(path)
    return path


def run(tiny_weights, *args, input: bytes | None = None):
    cli = ["stylize", *map(str, args), "--model", str(tiny_weights), "--size", "64"]
    return runner.invoke(app, [*cli, "--style-size", "64"], input=input)


@pytest.fixture
def bad_content(picture, truncated_jpeg, huge_png_header):
    """File name -> what writes that broken content there."""
    return {
        "missing.jpg": lambda p: None,
        "empty.jpg": lambda p: p.write_bytes(b""),
        "truncated.jpg": truncated_jpeg,
        "text.jpg": lambda p: p.write_text("just text"),
        "image.xyz": lambda p: picture(32, 32).save(p, format="PNG"),
        "tiny.png": lambda p: picture(8, 40).save(p),
        "bomb.png": lambda p: huge_png_header(p, 100_000, 100_000),
    }


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.jpg", "no such file"),
        ("empty.jpg", "empty file"),
        ("truncated.jpg", "cannot decode"),
        ("text.jpg", "not an image"),
        ("image.xyz", "unsupported extension"),
        ("tiny.png", "too small"),
        ("bomb.png", "too large"),
    ],
)
def test_bad_content_is_one_line_error_and_no_output(
    tmp_path, tiny_weights, style, name, message, bad_content, one_line_error
):
    bad_content[name](tmp_path / name)
    before = set(tmp_path.iterdir())
    result = run(tiny_weights, tmp_path / name, "--style", style, "-o", tmp_path / "out.png")
    assert message in one_line_error(result)
    assert result.exit_code == 1
    assert set(tmp_path.iterdir()) == before  # no output, no temp file


@pytest.mark.parametrize(
    "mode, suffix, alpha", [("CMYK", ".jpg", False), ("P", ".png", False),
                            ("L", ".png", False), ("RGBA", ".png", True)]
)  # fmt: skip
def test_unusual_modes_are_stylized(tmp_path, tiny_weights, style, mode, suffix, alpha, picture):
    source = tmp_path / f"in{suffix}"
    picture(48, 32).convert(mode).save(source)
    result = run(tiny_weights, source, "--style", style, "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (48, 32) and ("A" in out.getbands()) == alpha


def test_sixteen_bit_png(tmp_path, tiny_weights, style):
    wide = np.linspace(0, 65535, 40 * 40).reshape(40, 40).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    assert run(tiny_weights, tmp_path / "deep.png", "--style", style).exit_code == 0
    assert (tmp_path / "deep_style.png").is_file()  # default: beside the content


def test_exif_rotated_photo_keeps_its_orientation(tmp_path, tiny_weights, style, picture):
    image, source = picture(64, 32), tmp_path / "phone.jpg"
    exif = image.getexif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise on display
    image.save(source, exif=exif)
    result = run(tiny_weights, source, "--style", style, "-o", tmp_path / "o.jpg")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "o.jpg") as out:
        assert out.size == (32, 64) and out.format == "JPEG"


def test_batch_with_a_bad_file_writes_the_rest(tmp_path, tiny_weights, style, picture):
    contents = tmp_path / "contents"
    contents.mkdir()
    for i in range(3):
        picture(64, 40, i).save(contents / f"c{i}.jpg")
    (contents / "broken.jpg").write_text("not an image")
    (contents / "notes.txt").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    result = run(tiny_weights, contents, "--style", style, "-o", out, "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["written"], summary["failed"]) == (3, 1)
    assert sorted(p.name for p in out.iterdir()) == ["c0_style.png", "c1_style.png", "c2_style.png"]
    assert "broken.jpg" in result.stderr


def test_too_big_for_free_memory_is_skipped_with_a_size_hint(
    tmp_path, tiny_weights, style, monkeypatch, picture
):
    from a2k_cli import engine

    monkeypatch.setattr(engine, "available_memory", lambda device: 400 * 2**20)
    picture(2000, 1500, 0).save(tmp_path / "big.png")
    picture(64, 40, 1).save(tmp_path / "small.png")
    cli = ["stylize", str(tmp_path / "big.png"), str(tmp_path / "small.png"), "--style", str(style)]
    cli += ["--model", str(tiny_weights), "--size", "0", "--style-size", "64", "-o", "out"]
    result = runner.invoke(app, [*cli[:-1], str(tmp_path / "out")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "big.png: 2000×1500 needs about" in result.stderr and "(--size " in result.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["small_style.png"]


def test_existing_outputs_need_overwrite(tmp_path, tiny_weights, style, picture):
    picture(64, 40).save(tmp_path / "c.jpg")
    target = tmp_path / "done.png"
    target.write_bytes(b"keep me")
    result = run(tiny_weights, tmp_path / "c.jpg", "--style", style, "-o", target)
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert target.read_bytes() == b"keep me"
    result = run(tiny_weights, tmp_path / "c.jpg", "--style", style, "-o", target, "--overwrite")
    assert result.exit_code == 0 and Image.open(target).size == (64, 40)


def test_original_size_and_formats(tmp_path, tiny_weights, style, picture):
    picture(333, 517).save(tmp_path / "odd.png")
    cli = ["stylize", str(tmp_path / "odd.png"), "--style", str(style), "--size", "0"]
    cli += ["--model", str(tiny_weights), "--style-size", "64", "--format", "webp", "-o", "out"]
    result = runner.invoke(app, [*cli[:-1], str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "odd_style.webp") as out:
        assert out.size == (333, 517) and out.format == "WEBP"


def test_blended_styles_are_named_and_weighed(
    tmp_path, tiny_weights, style, picture, one_line_error
):
    picture(64, 40).save(tmp_path / "c.png")
    other = tmp_path / "other.png"
    picture(64, 64, 3).save(other)
    args = [tmp_path / "c.png", "--style", style, "--style", other, "-w", "0.7", "-w", "0.3"]
    assert run(tiny_weights, *args).exit_code == 0
    assert (tmp_path / "c_style@0.70+other@0.30.png").is_file()
    mismatch = run(tiny_weights, tmp_path / "c.png", "--style", style, "--style", other, "-w", "1")
    assert mismatch.exit_code == 2 and "--style-weight" in one_line_error(mismatch)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--alpha", "1.5"], "--alpha"),
        (["--quality", "0"], "--quality"),
        (["--format", "gif"], "format"),
    ],
)
def test_bad_options_are_usage_errors(
    tmp_path, tiny_weights, style, args, message, picture, one_line_error
):
    picture(64, 40).save(tmp_path / "c.png")
    result = run(tiny_weights, tmp_path / "c.png", "--style", style, *args)
    assert result.exit_code == 2 and message in one_line_error(result)


def test_one_output_file_for_several_contents_is_a_usage_error(
    tmp_path, tiny_weights, style, picture, one_line_error
):
    for name in ("a.png", "b.png"):
        picture(32, 32).save(tmp_path / name)
    result = run(tiny_weights, tmp_path / "a.png", tmp_path / "b.png", "--style", style,
                 "-o", tmp_path / "x.png")  # fmt: skip
    assert result.exit_code == 2 and "folder" in one_line_error(result)


def test_bad_style_and_unknown_model(tmp_path, tiny_weights, style, picture, one_line_error):
    picture(64, 40).save(tmp_path / "c.png")
    (tmp_path / "s.jpg").write_bytes(b"")
    result = run(tiny_weights, tmp_path / "c.png", "--style", tmp_path / "s.jpg")
    assert result.exit_code == 1 and "style" in one_line_error(result)
    result = runner.invoke(
        app, ["stylize", str(tmp_path / "c.png"), "--style", str(style), "--model", "no-such"]
    )
    assert result.exit_code == 1 and "no-such" in one_line_error(result)


def test_a_folder_paints_in_the_engines_order_and_reports_in_the_given_order(
    tmp_path, tiny_weights, style, picture, monkeypatch
):
    from a2k_cli.engine import Stylizer

    folder = tmp_path / "in"
    folder.mkdir()
    sizes = {"a.png": (40, 20), "b.png": (64, 64), "c.png": (20, 40), "d.png": (30, 60)}
    for name, size in sizes.items():
        picture(*size).save(folder / name)
    (folder / "e.png").write_text("unreadable: goes last, its read reports it")
    names = [*sizes, "e.png"]
    painted: list[tuple[int, int]] = []
    paint = Stylizer.paint

    def spy(self, images, *args, **kwargs):
        painted.extend(image.size for image in images)
        yield from paint(self, images, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "paint", spy)
    result = run(tiny_weights, folder, "--style", style, "-o", tmp_path / "out", "--json")
    summary = json.loads(result.stdout)
    assert (summary["written"], summary["failed"]) == (4, 1)
    assert painted == [(64, 64), (30, 60), (40, 20), (20, 40)]  # header sizes, largest first
    assert [item["content"] for item in summary["items"]] == [str(folder / n) for n in names]


def test_size_caps_the_longer_side_and_enlarges_only_when_asked(
    tmp_path, tiny_weights, style, picture
):
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    picture(48, 32).save(small)
    picture(96, 80).save(large)
    for source, upscale, expected in (
        (small, [], (48, 32)),
        (large, [], (64, 53)),
        (small, ["--upscale"], (64, 43)),
    ):
        target = tmp_path / f"out-{source.stem}-{len(upscale)}.png"
        result = run(tiny_weights, source, "--style", style, "-o", target, *upscale)
        assert result.exit_code == 0, result.output
        assert Image.open(target).size == expected


def test_a_folder_goes_to_a_new_folder_and_a_rerun_never_paints_outputs(
    tmp_path, tiny_weights, picture
):
    photos = tmp_path / "photos"
    photos.mkdir()
    picture(48, 32).save(photos / "a.png")
    styles = tmp_path / "styles"
    styles.mkdir()
    picture(64, 64).save(styles / "s.png")
    picture(64, 64).save(styles / "t.png")
    first = run(tiny_weights, photos, "--style", styles / "s.png", "--json")
    assert first.exit_code == 0, first.output
    made = tmp_path / "photos_s" / "a_s.png"
    assert made.is_file() and sorted(p.name for p in photos.iterdir()) == ["a.png"]
    # outputs written into the content folder itself are left out of the next run
    into_photos = run(tiny_weights, photos, "--style", styles / "s.png", "-o", photos)
    assert into_photos.exit_code == 0, into_photos.output
    again = run(tiny_weights, photos, "--style", styles / "t.png", "-o", photos, "--json")
    assert "left out 1 image" in again.stderr
    assert [Path(i["content"]).name for i in json.loads(again.stdout)["items"]] == ["a.png"]
    blend = ["--style", styles / "s.png", "--style", styles / "t.png", "-w", "1", "-w", "3"]
    weighted = run(tiny_weights, photos / "a.png", *blend)
    assert weighted.exit_code == 0 and (photos / "a_s@0.25+t@0.75.png").is_file()
    assert str(photos / "a_s@0.25+t@0.75.png") in weighted.stdout  # says where it went


def test_dash_reads_standard_input_and_writes_standard_output(
    tmp_path, tiny_weights, style, picture
):
    import io

    source = tmp_path / "in.jpg"
    picture(48, 32).save(source)
    piped = run(tiny_weights, "-", "--style", style, input=source.read_bytes())
    assert piped.exit_code == 0, piped.stderr
    image = Image.open(io.BytesIO(piped.stdout_bytes))
    assert image.format == "PNG" and image.size == (48, 32)
    assert "wrote standard output" in piped.stderr  # the summary keeps off the image
    as_jpeg = run(tiny_weights, source, "--style", style, "-o", "-", "--format", "jpg")
    assert Image.open(io.BytesIO(as_jpeg.stdout_bytes)).format == "JPEG"
    to_file = run(tiny_weights, "-", "--style", style, "-o", tmp_path / "o.webp", input=b"")
    assert to_file.exit_code == 1 and "stdin: empty" in to_file.stderr
    (tmp_path / "kept.png").write_bytes(b"mine")  # checked before standard input is read
    kept = run(tiny_weights, "-", "--style", style, "-o", tmp_path / "kept.png", input=b"")
    assert kept.exit_code == 1 and "exists" in kept.stderr and "stdin" not in kept.stderr
    assert (tmp_path / "kept.png").read_bytes() == b"mine"
    two = run(tiny_weights, "-", source, "--style", style)
    assert two.exit_code == 2 and "exactly one content" in two.stderr


def test_precision_bf16_paints_close_to_fp32_and_bad_values_are_one_line(
    tmp_path, tiny_weights, style, picture, one_line_error
):
    source = tmp_path / "in.png"
    picture(48, 32).save(source)
    outputs = {}
    for precision in ("fp32", "bf16"):
        target = tmp_path / f"{precision}.png"
        result = run(tiny_weights, source, "--style", style, "-o", target, "--precision", precision)
        assert result.exit_code == 0, result.output
        outputs[precision] = np.asarray(Image.open(target), float)
    assert np.abs(outputs["fp32"] - outputs["bf16"]).mean() < 8  # 8-bit levels
    for bad, message in (("fp16", "fp16 runs on GPUs only"), ("int8", "precision must be")):
        refused = run(tiny_weights, source, "--style", style, "--precision", bad)
        assert refused.exit_code == 1 and message in one_line_error(refused)


def test_torchrun_shares_a_folder_between_processes_with_one_summary(
    tmp_path, tiny_weights, style, picture
):
    import os
    import subprocess
    import sys

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        picture(40 + 8 * i, 32, i).save(photos / f"p{i}.png")
    out = tmp_path / "out"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = [
        *launcher,
        "-m",
        "a2k_cli",
        "stylize",
        str(photos),
        "--style",
        str(style),
        "-o",
        str(out),
    ]
    cmd += ["--model", str(tiny_weights), "--size", "64", "--style-size", "64", "--json"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)  # one summary: rank 1 prints nothing
    assert summary["written"] == 5
    assert [Path(i["content"]).name for i in summary["items"]] == [f"p{i}.png" for i in range(5)]
    assert sorted(p.name for p in out.iterdir()) == [f"p{i}_style.png" for i in range(5)]
