"""Stylized video: frames streamed through ffmpeg, painted in order, audio carried over.

Frames are decoded by the ffmpeg that ships with imageio-ffmpeg (anything it reads: MP4,
MOV, WebM, AVI, GIF, ...), resized there, stylized a few at a time through the shared
`Stylizer` (the style is encoded once), stabilised (`a2k_cli.temporal`) and piped into a
second ffmpeg that encodes H.264 yuv420p; no more than one batch of frames is ever held in
memory. A final remux copies the input's audio streams unchanged into the MP4 (only codecs
that MP4 players do not play, such as PCM, are re-encoded to AAC) and moves the index to the
front for web playback. Everything is written beside the output and renamed onto it at the
very end, so an error or Ctrl-C leaves nothing behind.

Sizes: `size` is the output's longer side (0 keeps the input's); the other side keeps the
aspect ratio and is rounded to even. H.264 yuv420p needs even sides, so an odd side left
over (an odd `size`, or an odd input kept at its size) loses its last column or row.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import imageio_ffmpeg
import numpy as np
import torch

from a2k_cli.atomic import atomic_path
from a2k_cli.errors import A2KError, first_line
from a2k_cli.imaging import fitted_size
from a2k_cli.temporal import FlickerMeter, Stabilizer

if TYPE_CHECKING:
    from a2k_cli.engine import StyleSpec, Stylizer

# imageio-ffmpeg warns whenever the decoded size differs from the source's: that is our resize.
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)

DEFAULT_FPS = 25.0  # for the rare input (some GIFs) whose frame rate ffmpeg cannot tell
Progress = Callable[[int, int], None]
# Audio codecs that MP4 players (browsers, QuickTime, phones) play: copied unchanged.
PLAYABLE_IN_MP4 = {"aac", "mp3", "ac3", "eac3", "opus", "alac", "flac"}


class VideoError(A2KError):
    """A video that cannot be read or written; the message is one line for the user."""


@dataclass(frozen=True)
class Clip:
    """What the decoder will produce: frame size after resizing, rate, and what comes along."""

    width: int
    height: int
    fps: Fraction
    expected_frames: int
    audio_codec: str | None  # of the first audio stream, as ffmpeg names it

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


@dataclass
class VideoReport:
    frames: int
    fps: float  # the clip's frame rate (kept in the output)
    size: tuple[int, int]  # output width, height
    seconds: float  # wall time of the whole job
    audio: str  # "copied", "re-encoded to AAC" or "none"
    expected_frames: int  # what the input's duration promised
    flicker: dict[str, float] | None = None  # FlickerMeter.score() when asked

    @property
    def missing_frames(self) -> int:
        """Frames the input's duration promised and its data did not hold (a cut file);
        one frame and 1 % of slack cover rounding of durations."""
        missing = self.expected_frames - self.frames
        return missing if missing > 1 + self.expected_frames // 100 else 0

    @property
    def frames_per_second(self) -> float:
        """Processing throughput (not the clip's rate)."""
        return self.frames / self.seconds if self.seconds else 0.0


def exact_frame_rate(fps: float) -> Fraction:
    """ffmpeg prints rates rounded (29.97, 23.98): recover the NTSC n*1000/1001 ones exactly."""
    if fps <= 0:
        fps = DEFAULT_FPS
    ntsc = Fraction(round(fps * 1.001) * 1000, 1001)
    if abs(fps - round(fps)) > 0.006 and abs(float(ntsc) - fps) < 0.006:
        return ntsc
    return Fraction(fps).limit_denominator(1000)


def _scale_filter(size: int, upscale: bool = False) -> str:
    """ffmpeg filter: longer side to `size` (0: unchanged; a smaller input kept unless
    `upscale`), then crop odd sides to even."""
    even = "crop=trunc(iw/2)*2:trunc(ih/2)*2:0:0"
    if not size:
        return even
    w, h = (str(size), str(size)) if upscale else (f"min({size},iw)", f"min({size},ih)")
    scale = f"scale='if(gte(iw,ih),{w},-2)':'if(gte(iw,ih),-2,{h})':flags=lanczos"
    return f"{scale},{even}"


def _ffmpeg_reason(stderr: str) -> str:
    """The useful part of ffmpeg's complaint, on one line."""
    if "matches no streams" in stderr:
        return "it has no video stream"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "ffmpeg failed"
    return last.rsplit(": ", 1)[-1] if ": " in last else last


@contextlib.contextmanager
def open_frames(
    src: Path,
    size: int = 0,
    start: float = 0.0,
    duration: float | None = None,
    check_size: Callable[[int, int], None] | None = None,
    upscale: bool = False,
) -> Iterator[tuple[Clip, Iterator[np.ndarray]]]:
    """Decode `src` as (clip, frames): HxWx3 uint8 RGB arrays, streamed one by one.
    `check_size(height, width)` vets the output frame size before any frame is decoded."""
    if not src.is_file():
        raise VideoError(f"{src}: no such file")
    if src.stat().st_size == 0:
        raise VideoError(f"{src}: empty file")
    seek = ["-ss", f"{start:.6f}"] if start else []
    limit = ["-t", f"{duration:.6f}"] if duration is not None else []
    probed = _probe(src)
    fps = exact_frame_rate(probed.get("fps") or 0.0)
    if check_size is not None and probed.get("source_size"):
        width, height = fitted_size(*probed["source_size"], size, upscale)
        check_size(height, width)
    # Frames are resampled to one constant rate (ffmpeg's average rate of the stream): a
    # variable-rate phone clip keeps its duration and its sync with the audio.
    filters = f"{_scale_filter(size, upscale)},fps={fps.numerator}/{fps.denominator}"
    reader = imageio_ffmpeg.read_frames(
        str(src), input_params=seek, output_params=["-map", "0:v:0", "-vf", filters, *limit]
    )
    try:
        meta = _first(src, reader)
        width, height = meta["size"]
        seconds = max(meta.get("duration") or 0.0, 0.0) - start
        if duration is not None:
            seconds = min(seconds, duration)
        frames = max(round(seconds * fps), 0)
        clip = Clip(width, height, fps, frames, meta.get("audio_codec"))
        yield clip, _frames(src, reader, width, height)
    finally:
        reader.close()


def _first(src: Path, reader: Iterator) -> dict:
    """The reader's metadata, or a one-line VideoError for a file ffmpeg cannot read."""
    try:
        return next(reader)
    except (OSError, RuntimeError, ValueError, IndexError) as exc:
        raise VideoError(f"{src}: not a readable video ({_ffmpeg_reason(str(exc))})") from None


def _probe(src: Path) -> dict:
    """The stream's metadata (frame rate, duration) before any frame is decoded."""
    reader = imageio_ffmpeg.read_frames(str(src), output_params=["-map", "0:v:0"])
    try:
        return _first(src, reader)
    finally:
        reader.close()


def _frames(src: Path, reader: Iterator[bytes], width: int, height: int) -> Iterator[np.ndarray]:
    try:
        for data in reader:
            yield np.frombuffer(data, np.uint8).reshape(height, width, 3)
    except RuntimeError as exc:
        raise VideoError(f"{src}: video data ends mid-frame ({_ffmpeg_reason(str(exc))})") from None


@contextlib.contextmanager
def frame_writer(path: Path, clip: Clip, crf: int) -> Iterator[Callable[[np.ndarray], None]]:
    """An H.264 yuv420p encoder fed HxWx3 uint8 frames; BT.709 colour, tagged as such.

    x264's `veryfast` preset: the encoder shares the cores with the network, and at the same
    CRF it costs half the CPU of the default for files of about the same size
    (bench/results/design-measurements.md)."""
    writer = imageio_ffmpeg.write_frames(
        str(path),
        (clip.width, clip.height),
        fps=clip.fps,
        codec="libx264",
        quality=None,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=[
            "-crf",
            str(crf),
            "-preset",
            "veryfast",
            "-vf",
            "scale=out_color_matrix=bt709:out_range=tv",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],  # fmt: skip
    )
    writer.send(None)

    def write(frame: np.ndarray) -> None:
        try:
            writer.send(np.ascontiguousarray(frame))
        except OSError as exc:
            raise VideoError(f"{path}: the encoder stopped ({first_line(exc)})") from None

    try:
        yield write
    finally:
        writer.close()


def _run_ffmpeg(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-nostdin", *args]
    return subprocess.run(cmd, capture_output=True, text=True)


def mux(video: Path, src: Path, dst: Path, clip: Clip, start: float, duration: float | None) -> str:
    """Put the encoded `video` and the audio of `src` (same span) into the MP4 `dst`.

    Audio that MP4 players play is copied bit for bit; anything else (PCM from AVI/MOV,
    Vorbis from WebM, ...), or a copy that ffmpeg refuses, is re-encoded to AAC. Returns how
    the audio came over: "copied", "re-encoded to AAC" or "none".
    """
    span = (["-ss", f"{start:.6f}"] if start else []) + (
        ["-t", f"{duration:.6f}"] if duration is not None else []
    )
    inputs = ["-i", str(video)] + ([*span, "-i", str(src)] if clip.has_audio else [])
    maps = ["-map", "0:v:0"] + (["-map", "1:a?"] if clip.has_audio else [])
    # the encoder's BT.709 tags do not survive the stream copy: written into the H.264 stream
    tags = [
        "-bsf:v",
        "h264_metadata=colour_primaries=1:transfer_characteristics=1:matrix_coefficients=1",
    ]
    tail = ["-c:v", "copy", *tags, "-movflags", "+faststart", "-f", "mp4", str(dst)]
    copy = [("copied", ["-c:a", "copy"])] if clip.audio_codec in PLAYABLE_IN_MP4 else []
    attempts = [*copy, ("re-encoded to AAC", ["-c:a", "aac", "-b:a", "192k"])]
    if not clip.has_audio:
        attempts = [("none", [])]
    for how, audio in attempts:
        result = _run_ffmpeg([*inputs, *maps, *audio, *tail])
        if result.returncode == 0:
            return how
    raise VideoError(f"{dst}: could not write the video ({_ffmpeg_reason(result.stderr)})")


def _to_tensor(frames: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float().div_(255)


def _to_frames(images: torch.Tensor) -> np.ndarray:
    return images.clamp(0, 1).mul(255).round_().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _batches(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for frame in frames:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def stylize_video(
    src: str | Path,
    dst: str | Path,
    stylizer: Stylizer,
    style: StyleSpec,
    *,
    size: int = 0,
    upscale: bool = False,
    style_size: int = 512,
    alpha: float = 1.0,
    preserve_color: bool = False,
    start: float = 0.0,
    duration: float | None = None,
    crf: int = 23,
    stabilize: bool = True,
    measure_flicker: bool = False,
    batch_size: int | None = None,
    overwrite: bool = True,
    progress: Progress | None = None,
) -> VideoReport:
    """Stylize `src` frame by frame into the MP4 `dst` with `stylizer` (an engine.Stylizer).

    `style` is anything `stylizer.encode_style` takes. `progress(done, expected)` is called
    after every batch. Raises VideoError (one-line message) for unreadable input or a failed
    write; whatever happens, `dst` is either the complete video or untouched. Without
    `overwrite`, an existing `dst` (even one written meanwhile) raises FileExistsError.
    """
    src, dst = Path(src), Path(dst)
    stabilizer = Stabilizer() if stabilize else None
    meter = FlickerMeter() if measure_flicker else None
    tic = time.perf_counter()
    with (
        atomic_path(dst, replace=overwrite) as final,
        open_frames(src, size, start, duration, stylizer.check_size, upscale) as (clip, frames),
        tempfile.TemporaryDirectory(prefix=".a2k-video-", dir=dst.parent) as scratch,
    ):
        encoded = stylizer.encode_style(style, style_size)
        video_only = Path(scratch) / "video.mp4"
        done = 0
        batch = batch_size or stylizer.batch_size(clip.width * clip.height)
        with frame_writer(video_only, clip, crf) as write:
            for chunk in _batches(frames, batch):
                content = _to_tensor(chunk)
                rendered = stylizer.render(
                    content, [encoded], alpha=alpha, preserve_color=preserve_color
                )
                painted = next(rendered)
                if stabilizer is not None:
                    painted = stabilizer(content, painted)
                if meter is not None:
                    meter.update(content, painted)
                for frame in _to_frames(painted):
                    write(frame)
                done += len(chunk)
                if progress is not None:
                    progress(done, max(done, clip.expected_frames))
        if not done:
            where = f" after {start:g} s" if start else ""
            raise VideoError(f"{src}: no video frames{where}")
        audio = mux(video_only, src, final, clip, start, duration)
    return VideoReport(
        frames=done,
        fps=float(clip.fps),
        size=(clip.width, clip.height),
        seconds=time.perf_counter() - tic,
        audio=audio,
        expected_frames=clip.expected_frames,
        flicker=meter.score() if meter is not None else None,
    )
