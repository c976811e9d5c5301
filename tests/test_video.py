"""`a2k video`: frames, rate, size and audio survive; the stabiliser steadies; bad input fails."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from a2k_cli import video
from a2k_cli.cli import app
from a2k_cli.temporal import FlickerMeter, Stabilizer

runner = CliRunner()


@pytest.fixture(scope="session")
def audio_md5(ffmpeg_exe):
    """`audio_md5(path)`: checksum of the audio packets as stored; equal means the stream was
    copied unchanged."""

    def checksum(path: Path) -> str:
        args = [ffmpeg_exe, "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy"]
        done = subprocess.run([*args, "-f", "md5", "-"], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    return checksum


def probe(path: Path) -> tuple[video.Clip, int]:
    with video.open_frames(path) as (clip, frames):
        return clip, sum(1 for _ in frames)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, ffmpeg) -> Path:
    """16 frames of a moving test pattern at 10 fps, 128x72, with a 440 Hz AAC sound track."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=128x72:rate=10",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050",
        "-t", "1.6", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def style(tmp_path_factory, picture) -> Path:
    path = tmp_path_factory.mktemp("style") / "waves.png"
    picture(64, 64).save(path)
    return path


class Negative:
    """A stand-in stylizer for the I/O tests: fast, deterministic, visibly changes frames."""

    device = torch.device("cpu")

    def __init__(self, interrupt_at: int | None = None) -> None:
        self.calls = 0
        self.interrupt_at = interrupt_at

    def encode_style(self, style, style_size=512):
        return style

    def batch_size(self, pixels):
        return 2

    def check_size(self, height, width, batch=1):
        pass

    def render(self, images, styles, *, alpha=1.0, preserve_color=False):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        for _ in styles:
            yield 1 - images


def test_frames_rate_size_and_audio_survive(clip, style, tiny_weights, tmp_path, audio_md5):
    out = tmp_path / "out.mp4"
    args = ["video", str(clip), "--style", str(style), "-o", str(out), "--size", "64"]
    result = runner.invoke(app, [*args, "--model", str(tiny_weights), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    assert "16 frames" in summary and "audio copied" in summary
    made, frames = probe(out)
    assert frames == 16 and made.fps == 10 and (made.width, made.height) == (64, 36)
    assert made.has_audio and audio_md5(out) == audio_md5(clip)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]  # no temp files left


def test_default_name_no_overwrite_and_time_span(clip, style, tiny_weights, tmp_path):
    source = tmp_path / "holiday.mp4"
    source.write_bytes(clip.read_bytes())
    args = ["video", str(source), "--style", str(style), "--size", "64", "--device", "cpu"]
    args += ["--model", str(tiny_weights), "--start", "0.5", "--duration", "0.5"]
    assert runner.invoke(app, args).exit_code == 0
    made, frames = probe(tmp_path / "holiday_waves.mp4")
    assert frames == 5 and made.has_audio
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite", "--no-stabilize"]).exit_code == 0


def test_gif_input_with_odd_size_is_cropped_to_even(tmp_path, picture):
    gif = tmp_path / "odd.gif"
    frames = [picture(97, 61, seed) for seed in range(6)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    report = video.stylize_video(gif, tmp_path / "odd.mp4", Negative(), "style")
    assert (report.frames, report.size, report.fps, report.audio) == (6, (96, 60), 10.0, "none")
    made, count = probe(tmp_path / "odd.mp4")
    assert count == 6 and (made.width, made.height) == (96, 60)


def test_audio_mp4_cannot_hold_is_re_encoded_to_aac(tmp_path, ffmpeg):
    avi = tmp_path / "pcm.avi"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10", "-f", "lavfi", "-i", "sine",
        "-t", "0.5", "-c:v", "mpeg4", "-c:a", "pcm_s16le", str(avi),
    )  # fmt: skip
    report = video.stylize_video(avi, tmp_path / "pcm.mp4", Negative(), "style")
    assert report.frames == 5 and report.audio == "re-encoded to AAC"
    assert probe(tmp_path / "pcm.mp4")[0].has_audio


def noisy_still_with_moving_square(path: Path, frames: int = 12) -> None:
    """A still photo-like gradient with sensor noise, and a square sliding across it."""
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:64, 0:128]
    base = np.stack([x * 2, y * 3, 255 - x], axis=-1).astype(np.float32)
    clip = video.Clip(128, 64, Fraction(10), frames, audio_codec=None)
    with video.frame_writer(path, clip, crf=0) as write:
        for t in range(frames):
            frame = base + rng.normal(0, 3, base.shape)
            frame[20:44, 8 * t : 8 * t + 24] = (250, 40, 40)
            write(frame.clip(0, 255).astype(np.uint8))


def test_stabiliser_lowers_flicker_and_keeps_motion(style, tiny_weights, tmp_path):
    from a2k_cli.engine import Stylizer

    source = tmp_path / "still.mp4"
    noisy_still_with_moving_square(source)
    stylizer = Stylizer(tiny_weights, device="cpu")
    scores = {
        stabilize: video.stylize_video(
            source, tmp_path / f"{stabilize}.mp4", stylizer, style,
            stabilize=stabilize, measure_flicker=True,
        ).flicker
        for stabilize in (False, True)
    }  # fmt: skip
    assert scores[True]["flicker"] < 0.7 * scores[False]["flicker"]
    moving_kept = scores[True]["output_moving_change"] / scores[False]["output_moving_change"]
    assert moving_kept > 0.9


def test_stabiliser_blends_still_pixels_and_leaves_moving_ones():
    still = torch.full((1, 3, 32, 32), 0.5)
    moved = still.clone()
    moved[..., :, 16:] = 1.0  # the right half of the scene changed
    first, second = torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
    stabilizer = Stabilizer(strength=0.8, radius=1)
    assert torch.equal(stabilizer(still, first), first)
    out = stabilizer(moved, second)
    assert torch.allclose(out[..., :, :8], torch.full_like(out[..., :, :8], 0.2))  # 1 - 0.8
    assert torch.equal(out[..., :, 18:], second[..., :, 18:])


def test_flicker_meter_scores_relative_to_the_input():
    meter = FlickerMeter()
    content = torch.full((3, 3, 8, 8), 0.5)
    content[1] += 1 / 255  # the input's own noise: 1/255 on still pixels
    output = torch.stack([torch.zeros(3, 8, 8), torch.full((3, 8, 8), 0.1), torch.zeros(3, 8, 8)])
    meter.update(content, output)
    score = meter.score()
    assert score["input_still_change"] == pytest.approx(1 / 255)
    assert score["output_still_change"] == pytest.approx(0.1)
    assert score["flicker"] == pytest.approx(25.5)


def test_exact_frame_rates():
    assert video.exact_frame_rate(29.97) == Fraction(30000, 1001)
    assert video.exact_frame_rate(23.98) == Fraction(24000, 1001)
    assert video.exact_frame_rate(25.0) == 25 and video.exact_frame_rate(12.5) == Fraction(25, 2)
    assert video.exact_frame_rate(0.0) == 25


def test_interrupt_mid_stream_leaves_nothing(clip, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        video.stylize_video(clip, tmp_path / "out.mp4", Negative(interrupt_at=3), "style")
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_is_one_line_and_exit_130(clip, style, tiny_weights, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "stylize_video", interrupted)
    args = ["video", str(clip), "--style", str(style), "-o", str(tmp_path / "o.mp4")]
    result = runner.invoke(app, [*args, "--model", str(tiny_weights), "--device", "cpu"])
    assert result.exit_code == 130 and "interrupted" in result.output
    assert list(tmp_path.iterdir()) == []


def bad_inputs(folder: Path, clip: Path, ffmpeg) -> dict[str, tuple[Path, str]]:
    """name -> (input file, what the error must say)."""
    text = folder / "notes.mp4"
    text.write_text("not a video\n")
    empty = folder / "empty.mp4"
    empty.touch()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:4000])
    sound = folder / "sound.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine", "-t", "0.5", "-c:a", "aac", str(sound))
    return {
        "text": (text, "not a readable video"),
        "empty": (empty, "empty file"),
        "truncated": (truncated, "not a readable video"),
        "audio only": (sound, "no video stream"),
        "missing": (folder / "nowhere.mp4", "no such file"),
    }


@pytest.mark.parametrize("case", ["text", "empty", "truncated", "audio only", "missing"])
def test_bad_input_fails_in_one_line_and_leaves_nothing(
    case, clip, style, tiny_weights, tmp_path, ffmpeg
):
    source, message = bad_inputs(tmp_path, clip, ffmpeg)[case]
    before = sorted(tmp_path.iterdir())
    args = ["video", str(source), "--style", str(style), "--model", str(tiny_weights)]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert sorted(tmp_path.iterdir()) == before


def test_no_frames_after_start_fails_and_leaves_nothing(clip, tmp_path):
    with pytest.raises(video.VideoError, match="no video frames after 5 s"):
        video.stylize_video(clip, tmp_path / "late.mp4", Negative(), "style", start=5.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", ["missing style", "output folder is a file", "not mp4"])
def test_bad_style_or_output_fails_in_one_line(case, clip, style, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    style_arg, out = {
        "missing style": (tmp_path / "nope.png", tmp_path / "o.mp4"),
        "output folder is a file": (style, blocker / "o.mp4"),
        "not mp4": (style, tmp_path / "o.avi"),
    }[case]
    result = runner.invoke(app, ["video", str(clip), "--style", str(style_arg), "-o", str(out)])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_braces_in_a_file_name_are_shown_literally(clip, style, tiny_weights, tmp_path):
    import shutil

    odd = tmp_path / "clip {1} [x].mp4"
    shutil.copy(clip, odd)
    out = tmp_path / "out {0}.mp4"
    args = ["video", str(odd), "--style", str(style), "-o", str(out), "--size", "64"]
    result = runner.invoke(app, [*args, "--model", str(tiny_weights), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and probe(out)[1] == 16
