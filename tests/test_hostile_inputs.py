"""Hostile and careless inputs across commands: pickles in run folders, console markup in
names, concurrent writers, thin images, absurd sizes, corrupt run files."""

from __future__ import annotations

import json
import pickle
import re
import subprocess

import pytest
from typer.testing import CliRunner

from a2k_cli.cli import app

runner = CliRunner()


class _Marker:
    """Unpickling this runs `open(path, "w")`: what a crafted checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def crafted_checkpoint(folder, marker) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "checkpoint.pt", "wb") as f:
        pickle.dump({"step": _Marker(marker)}, f)


def test_a_crafted_checkpoint_never_runs_code_on_resume(tmp_path, one_line_error, image_folder):
    run_dir, marker = tmp_path / "run", tmp_path / "marker"
    crafted_checkpoint(run_dir, marker)
    images = image_folder(tmp_path / "images")
    config = {
        "data": str(images),
        "styles": str(images),
        "out": str(run_dir),
        "crop": 64,
        "batch": 2,
    }
    (run_dir / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["train", "--resume", str(run_dir), "--device", "cpu"])
    assert not marker.exists()
    assert "checkpoint.pt" in one_line_error(result)


def test_a_crafted_checkpoint_never_runs_code_in_distill(
    tmp_path, tiny_weights, one_line_error, image_folder
):
    out, marker = tmp_path / "distill", tmp_path / "marker"
    crafted_checkpoint(out, marker)
    data = image_folder(tmp_path / "images")
    args = ["distill", "--teacher", tiny_weights, "--data", data, "--out", out, "--steps", "1"]
    result = runner.invoke(app, [*map(str, args), "--batch", "2", "--crop", "64"])
    assert not marker.exists()
    assert "checkpoint.pt" in one_line_error(result)


def test_bracketed_names_are_printed_literally_and_never_stop_a_batch(
    tmp_path, tiny_weights, picture, one_line_error, truncated_jpeg
):
    folder = tmp_path / "shots ["
    folder.mkdir()
    truncated_jpeg(folder / "bad].jpg")
    truncated_jpeg(folder / "Holiday [draft].jpg")
    picture(64, 64, 1).save(folder / "good.png")
    style = tmp_path / "style [b].png"
    picture(64, 64, 2).save(style)
    out = tmp_path / "out"
    args = [folder, "--style", style, "-o", out, "--model", tiny_weights, "--size", "64"]
    result = runner.invoke(app, ["stylize", *map(str, args)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (out / "good_style [b].png").is_file()
    assert "Holiday [draft].jpg" in result.output and "bad].jpg" in result.output
    # one image: the one-line error keeps the name
    single = runner.invoke(
        app, ["stylize", str(folder / "Holiday [draft].jpg"), "--style", str(style)]
    )
    assert "Holiday [draft].jpg" in one_line_error(single)


def test_a_newline_in_a_name_does_not_split_the_error(
    tmp_path, tiny_weights, picture, one_line_error, truncated_jpeg
):
    bad = tmp_path / "two\nlines.jpg"
    truncated_jpeg(bad)
    style = tmp_path / "style.png"
    picture(64, 64, 2).save(style)
    result = runner.invoke(app, ["stylize", str(bad), "--style", str(style)])
    line = one_line_error(result)
    assert "two\\nlines.jpg" in line and "cannot decode" in line


def test_the_error_of_an_exception_without_a_message_names_its_type():
    from a2k_cli.cli.app import one_line
    from a2k_cli.imaging import ImageError

    assert one_line(KeyError()) == "KeyError"
    assert one_line(RuntimeError("first\nsecond")) == "first"
    assert one_line(ImageError("a\nb.jpg: too small")) == "a\nb.jpg: too small"


def test_a_variable_rate_clip_keeps_its_duration_and_bt709_tags(
    tmp_path, tiny_weights, picture, ffmpeg, ffmpeg_exe
):
    # 15 frames 20 ms apart, then 15 frames 150 ms apart, as phones record
    source = tmp_path / "vfr.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=96x64:rate=30", "-frames:v", "30",
        "-vf", "setpts='if(lt(N,15),N*0.02,0.3+(N-15)*0.15)/TB'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(source),
    )  # fmt: skip
    style = tmp_path / "style.png"
    picture(64, 64, 3).save(style)
    out = tmp_path / "out.mp4"
    args = [source, "-s", style, "-s", style, "-w", "1", "-w", "2", "-o", out]
    result = runner.invoke(app, ["video", *map(str, args), "--model", str(tiny_weights)])
    assert result.exit_code == 0, result.output

    def described(path):
        info = subprocess.run([ffmpeg_exe, "-i", str(path)], capture_output=True, text=True).stderr
        return float(re.search(r"Duration: 00:00:(\d+\.\d+)", info).group(1)), info

    (before, _), (after, info) = described(source), described(out)
    assert abs(after - before) < 0.12 * before  # it came out 3.4x longer before the fix
    assert "bt709, progressive" in info  # matrix, primaries and transfer all BT.709


def test_a_cut_video_is_reported_and_exits_non_zero(
    tmp_path, tiny_weights, picture, one_line_error, ffmpeg
):
    whole = tmp_path / "whole.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10", "-t", "10",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(whole),
    )  # fmt: skip
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    style = tmp_path / "style.png"
    picture(64, 64, 3).save(style)
    args = ["video", str(cut), "-s", str(style), "-o", str(tmp_path / "o.mp4")]
    result = runner.invoke(app, [*args, "--model", str(tiny_weights)])
    line = one_line_error(result)
    assert "ends early" in line and "of 100 expected frames" in line


def test_video_option_errors_come_before_any_work(tmp_path, picture, one_line_error):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read before the options are checked")
    style = tmp_path / "style.png"
    picture(64, 64, 3).save(style)
    bad_alpha = runner.invoke(app, ["video", str(clip), "-s", str(style), "--alpha", "1.5"])
    assert bad_alpha.exit_code == 2 and "--alpha" in one_line_error(bad_alpha)
    weights = ["video", str(clip), "-s", str(style), "-w", "1", "-w", "2"]
    assert runner.invoke(app, weights).exit_code == 2


def test_a_thin_image_finishes_at_its_own_size(tmp_path, tiny_weights, picture):
    from PIL import Image

    thin = tmp_path / "thin.png"
    Image.new("RGB", (20000, 16), (90, 120, 200)).save(thin)
    style = tmp_path / "style.png"
    picture(64, 64, 3).save(style)
    out = tmp_path / "out.png"
    args = ["stylize", str(thin), "-s", str(style), "-o", str(out), "--model", str(tiny_weights)]
    result = runner.invoke(app, args)  # 1024 x 1 at the default size: it used to spin forever
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (1024, 1)


def test_absurd_sizes_are_refused_before_anything_is_allocated(
    tmp_path, tiny_weights, picture, one_line_error
):
    """Refused from the size alone, before a 100000 px resize (~22 GB) is attempted; how
    little memory the refusal takes is measured by bench/studies/memory_peaks.py."""
    style = tmp_path / "style.png"
    picture(64, 64, 3).save(style)
    content = tmp_path / "c.png"
    picture(64, 64, 4).save(content)
    args = ["stylize", str(content), "-s", str(style), "--model", str(tiny_weights)]
    result = runner.invoke(app, [*args, "--size", "100000", "--upscale"])
    assert "GiB to stylize" in one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "style.png"]  # no output
    tile = runner.invoke(app, ["grid", str(tmp_path), str(tmp_path), "--tile", "100000"])
    assert tile.exit_code == 2


def test_weights_whose_metadata_lies_are_refused_without_allocating(tmp_path, tiny_weights):
    import torch
    from safetensors.torch import load_file, save_file

    from a2k_cli.weights import WeightsError, load, read_metadata

    meta = read_metadata(tiny_weights)
    state = load_file(tiny_weights)
    for widths in ([16, 32, 64, 128, 100000], [16, 32, -64, 128, 128]):
        lying = tmp_path / f"lie{widths[2]}.safetensors"
        save_file({"x": torch.zeros(2)}, lying, metadata=meta | {"widths": json.dumps(widths)})
        try:
            load(lying)
            raise AssertionError("loaded")
        except WeightsError as exc:
            assert str(lying) in str(exc)
    assert len(state) > 10


def test_the_decompression_limit_is_pillows_own_179_megapixels(tmp_path, huge_png_header):
    from PIL import Image

    from a2k_cli.imaging import MAX_PIXELS, ImageError, read_image

    assert MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS  # Pillow's process-wide setting untouched
    assert round(MAX_PIXELS / 1e6) == 179
    header = tmp_path / "108mp.png"
    huge_png_header(header, 12000, 9000)  # 108 MP: a header Pillow alone would refuse
    try:
        read_image(header)
    except ImageError as exc:
        assert "too large" not in str(exc) and "cannot decode" in str(exc)
    huge_png_header(header, 17000, 16384)
    try:
        read_image(header)
    except ImageError as exc:
        assert "too large" in str(exc)


def test_two_writers_without_overwrite_exactly_one_wins(tmp_path):
    import threading

    from a2k_cli.atomic import atomic_path

    target, barrier, outcomes = tmp_path / "out.png", threading.Barrier(8), []

    def write(i: int) -> None:
        try:
            with atomic_path(target, replace=False) as tmp:
                tmp.write_text(str(i))
                barrier.wait()
            outcomes.append(i)
        except FileExistsError:
            outcomes.append(None)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i in outcomes if i is not None]
    assert len(winners) == 1 and target.read_text() == str(winners[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp files left


def test_an_output_written_by_another_process_meanwhile_is_kept(
    tmp_path, tiny_weights, monkeypatch, picture
):
    from a2k_cli.engine import Stylizer

    content, style, out = tmp_path / "c.png", tmp_path / "s.png", tmp_path / "out.png"
    picture(64, 64, 4).save(content)
    picture(64, 64, 5).save(style)
    paint = Stylizer.paint

    def racing(self, *args, **kwargs):
        out.write_bytes(b"the other process's output")
        yield from paint(self, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "paint", racing)
    args = ["stylize", str(content), "-s", str(style), "-o", str(out)]
    result = runner.invoke(app, [*args, "--model", str(tiny_weights), "--size", "64"])
    assert result.exit_code == 1 and "exists" in result.output
    assert out.read_bytes() == b"the other process's output"


def tmpfs(path, size: str = "256k"):
    """A small filesystem at `path` (root only; the test skips otherwise)."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)])
    if mounted.returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    return path


def test_a_full_disk_is_one_line_in_grid_and_train(
    tmp_path, tiny_weights, one_line_error, image_folder
):
    full = tmpfs(tmp_path / "full", "64k")
    try:
        images = image_folder(tmp_path / "images", 4)
        grid = ["grid", str(images), str(images), "-o", str(full), "--size", "256"]
        result = runner.invoke(app, [*grid, "--model", str(tiny_weights)])
        assert "No space left" in result.output and "Traceback" not in result.output
        assert result.exit_code == 1
        run = ["train", "--data", str(images), "--styles", str(images), "--out", str(full / "r")]
        trained = runner.invoke(app, [*run, "--crop", "64", "--batch", "2", "--steps", "2"])
        assert "No space left" in one_line_error(trained)
    finally:
        subprocess.run(["umount", str(full)])


def test_a_corrupt_or_truncated_run_is_one_line_on_resume(tmp_path, one_line_error, image_folder):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    (run_dir / "config.json").write_text("{not json")
    assert "config.json" in one_line_error(runner.invoke(app, ["train", "--resume", str(run_dir)]))
    config = {"data": str(tmp_path), "styles": str(tmp_path), "out": str(run_dir), "nope": 1}
    (run_dir / "config.json").write_text(json.dumps(config))
    assert "config.json" in one_line_error(runner.invoke(app, ["train", "--resume", str(run_dir)]))
    images = image_folder(tmp_path / "images")
    config = {"data": str(images), "styles": str(images), "out": str(run_dir), "batch": 2}
    (run_dir / "config.json").write_text(json.dumps(config))
    truncated = runner.invoke(app, ["train", "--resume", str(run_dir)])
    assert "cannot read checkpoint" in one_line_error(truncated)
    changed = runner.invoke(app, ["train", "--resume", str(run_dir), "--lr", "1"])
    assert changed.exit_code == 2 and "--lr" in changed.output


def test_info_lists_a_corrupt_user_model_without_failing(tmp_path, monkeypatch):
    from a2k_cli import paths

    (paths.user_weights_dir()).mkdir(parents=True, exist_ok=True)
    (paths.user_weights_dir() / "broken.safetensors").write_bytes(b"garbage")
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0 and "broken" in result.output and "unreadable" in result.output


def test_distill_refuses_a_wrong_teacher_or_no_images_before_creating_its_folder(
    tmp_path, tiny_weights, one_line_error, image_folder
):
    from safetensors.torch import save_file

    from a2k_cli.model.encoder import Encoder

    narrow = tmp_path / "narrow.safetensors"
    save_file(Encoder((8, 16, 32, 64, 64)).state_dict(), narrow)
    images, empty = image_folder(tmp_path / "images"), tmp_path / "empty"
    empty.mkdir()
    for teacher, data, expected in (
        (narrow, images, "not a lite"),
        (tiny_weights, empty, "no usable"),
    ):
        out = tmp_path / "never"
        args = ["distill", "--teacher", str(teacher), "--data", str(data), "--out", str(out)]
        assert expected in one_line_error(runner.invoke(app, args))
        assert not out.exists()


def test_training_skips_a_truncated_photo_and_refuses_fewer_contents_than_the_batch(
    tmp_path, tiny_weights, one_line_error, image_folder
):
    images = image_folder(tmp_path / "images", 6)
    for name in ("0.png", "1.png"):  # headers intact, bodies cut: found by the scan, not decodable
        path = images / name
        path.write_bytes(path.read_bytes()[:200])
    run = ["train", "--data", str(images), "--styles", str(images), "--init", str(tiny_weights)]
    run += ["--crop", "64", "--load-size", "64", "--preview-every", "1"]
    too_few = runner.invoke(app, [*run, "--out", str(tmp_path / "a"), "--batch", "16"])
    assert "at least 16 training contents" in one_line_error(too_few)
    out = tmp_path / "b"
    done = runner.invoke(app, [*run, "--out", str(out), "--batch", "2", "--steps", "2"])
    assert done.exit_code == 0, done.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["skipped_images"] > 0
    longer = runner.invoke(app, ["train", "--resume", str(out), "--steps", "3"])
    assert longer.exit_code == 0, longer.output
    assert json.loads((out / "config.json").read_text())["steps"] == 3  # kept for a later resume


def test_an_interrupted_stylize_says_what_was_written(tmp_path, tiny_weights, monkeypatch, picture):
    from a2k_cli.engine import Stylizer

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Stylizer, "paint", interrupted)
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    picture(64, 64, 4).save(content)
    picture(64, 64, 5).save(style)
    result = runner.invoke(
        app, ["stylize", str(content), "-s", str(style), "--model", str(tiny_weights)]
    )
    assert result.exit_code == 130 and "interrupted: 0 of 1 outputs written" in result.output


def test_an_absurd_video_size_is_refused_before_decoding(
    tmp_path, tiny_weights, picture, one_line_error, ffmpeg
):
    clip = tmp_path / "clip.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=96x64:rate=10",
        "-t",
        "1",
        "-pix_fmt",
        "yuv420p",
        str(clip),
    )
    style = tmp_path / "style.png"
    picture(64, 64, 3).save(style)
    args = ["video", str(clip), "-s", str(style), "--size", "100000", "--upscale"]
    args += ["--model", str(tiny_weights)]
    assert "GiB to stylize" in one_line_error(runner.invoke(app, args))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "style.png"]


def test_a_suspended_stylize_generator_leaves_inference_mode_off(tiny_weights):
    import torch
    from PIL import Image

    from a2k_cli.engine import Stylizer

    stylizer = Stylizer(tiny_weights, device="cpu")
    style = stylizer.encode_style(Image.new("RGB", (64, 64), (9, 99, 199)), 64)
    painting = stylizer.render(torch.rand(1, 3, 64, 64), [style, style])
    next(painting)  # suspended between its two outputs, as a caller that stops early leaves it
    assert not torch.is_inference_mode_enabled()
    del painting
    assert not torch.is_inference_mode_enabled()
