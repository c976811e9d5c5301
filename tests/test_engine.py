"""Stylizer: sizes, padding, batching, style cache, blending, alpha, colour preservation.

Random-init weights (the `tiny_weights` fixture): only properties that hold for any
weights are asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from a2k_cli import engine
from a2k_cli.colour import preserve_colour, rgb_to_ycbcr
from a2k_cli.engine import Stylizer, TooLargeError


@pytest.fixture(scope="module")
def stylizer(tiny_weights) -> Stylizer:
    """fp32, so the engine's invariants can be checked to float precision on any CPU."""
    return Stylizer(tiny_weights, device="cpu", precision="fp32")


def picture(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(tiny_weights, monkeypatch):
    from a2k_cli import device

    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(device, "native_bf16", lambda native=native: native)
        auto = Stylizer(tiny_weights, device="cpu")
        assert auto.device.type == "cpu" and auto.dtype == expected
        assert not auto.net.training


def test_odd_size_comes_back_exactly(stylizer):
    out = stylizer.stylize(picture(333, 517, 0), picture(64, 48, 1), size=0, style_size=64)
    assert out.size == (333, 517) and out.mode == "RGB"


def test_size_sets_the_longer_side(stylizer):
    out = stylizer.stylize(picture(120, 80, 0), picture(64, 64, 1), size=90, style_size=64)
    assert out.size == (90, 60)


@pytest.mark.parametrize("height, width", [(16, 16), (17, 130), (65, 20)])
def test_short_sides_pad_in_steps(stylizer, height, width):
    styles = stylizer.style_state(picture(64, 64, 1), 64)
    out = stylizer.stylize_batch(torch.rand(1, 3, height, width), styles)
    assert out.shape == (1, 3, height, width) and out.min() >= 0 and out.max() <= 1


def test_batch_equals_one_at_a_time(stylizer):
    styles = stylizer.style_state(picture(64, 64, 1), 64)
    images = torch.rand(3, 3, 40, 72)
    together = stylizer.stylize_batch(images, styles)
    alone = torch.cat([stylizer.stylize_batch(images[i : i + 1], styles) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_stylize_images_keeps_order_across_sizes(stylizer):
    images = [picture(64, 48, 0), picture(64, 48, 1), picture(48, 64, 2), picture(64, 48, 3)]
    outs = stylizer.stylize_images(images, picture(64, 64, 9), size=0, style_size=64)
    assert [o.size for o in outs] == [i.size for i in images]
    single = stylizer.stylize(images[2], picture(64, 64, 9), size=0, style_size=64)
    assert np.array_equal(np.asarray(outs[2]), np.asarray(single))


def test_style_cache_reuses_and_notices_changes(stylizer, tmp_path):
    path = tmp_path / "s.png"
    picture(64, 64, 1).save(path)
    first = stylizer.style_state(path, 64)[0][0]
    assert stylizer.style_state(path, 64)[0][0] is first
    assert stylizer.style_state(path, 128)[0][0] is not first  # another size, another entry
    picture(64, 64, 2).save(path)
    import os

    os.utime(path, ns=(1, 1))
    assert stylizer.style_state(path, 64)[0][0] is not first


def test_style_weights_blend_and_normalise(stylizer):
    content = torch.rand(1, 3, 64, 64)
    a, b = picture(64, 64, 1), picture(64, 64, 2)
    only_a = stylizer.stylize_batch(content, stylizer.style_state(a, 64))
    weighted = stylizer.stylize_batch(content, stylizer.style_state([(a, 1.0), (b, 0.0)], 64))
    torch.testing.assert_close(only_a, weighted)
    half = stylizer.stylize_batch(content, stylizer.style_state([(a, 1), (b, 1)], 64))
    double = stylizer.stylize_batch(content, stylizer.style_state([(a, 2), (b, 2)], 64))
    torch.testing.assert_close(half, double)
    with pytest.raises(ValueError, match="weights"):
        stylizer.style_state([(a, -1.0), (b, 2.0)], 64)


def test_alpha_zero_ignores_the_style(stylizer):
    content = torch.rand(1, 3, 64, 96)
    one = stylizer.stylize_batch(content, stylizer.style_state(picture(64, 64, 1), 64), alpha=0)
    two = stylizer.stylize_batch(content, stylizer.style_state(picture(80, 48, 2), 64), alpha=0)
    torch.testing.assert_close(one, two)
    with pytest.raises(ValueError, match="alpha"):
        stylizer.stylize_batch(content, stylizer.style_state(picture(64, 64, 1), 64), alpha=1.5)


def test_stylize_styles_matches_stylize_per_style(stylizer):
    content, styles = picture(70, 50, 0), [picture(64, 64, 1), picture(64, 64, 2)]
    rows = list(stylizer.stylize_styles(content, styles, size=0, style_size=64))
    for style, row in zip(styles, rows):
        single = stylizer.stylize(content, style, size=0, style_size=64)
        assert np.array_equal(np.asarray(row), np.asarray(single))


def test_preserve_color_keeps_the_content_chroma(stylizer):
    content = 0.4 + 0.2 * torch.rand(1, 3, 64, 64)  # mid-range: no clamping on the way back
    stylized = 0.4 + 0.2 * torch.rand(1, 3, 64, 64)
    kept = preserve_colour(stylized, content)
    ycc_kept, ycc_content, ycc_stylized = map(rgb_to_ycbcr, (kept, content, stylized))
    torch.testing.assert_close(ycc_kept[:, 1:], ycc_content[:, 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(ycc_kept[:, :1], ycc_stylized[:, :1], atol=1e-5, rtol=0)
    styles = stylizer.style_state(picture(64, 64, 1), 64)
    kept = stylizer.stylize_batch(content, styles, preserve_color=True)
    plain = stylizer.stylize_batch(content, styles)
    torch.testing.assert_close(kept, preserve_colour(plain, content))


def test_more_than_the_free_memory_is_refused_with_a_size_that_fits(stylizer, monkeypatch):
    monkeypatch.setattr(engine, "available_memory", lambda device: 600 * 2**20)
    with pytest.raises(TooLargeError, match=r"needs about [\d.]+ GiB .*\(--size \d+\)") as refused:
        stylizer.stylize(picture(4000, 3000, 0), picture(64, 64, 1), size=0)
    side = int(re.search(r"--size (\d+)", str(refused.value)).group(1))
    assert 64 <= side < 4000
    assert max(stylizer.stylize(picture(4000, 3000, 0), picture(64, 64, 1), size=side).size) == side


def test_no_free_memory_at_all_says_so(stylizer, monkeypatch):
    monkeypatch.setattr(engine, "available_memory", lambda device: 0)
    with pytest.raises(TooLargeError, match="free some memory first"):
        stylizer.stylize(picture(64, 64, 0), picture(64, 64, 1))


MEASURE_PEAK = """
import sys, torch
from a2k_cli.allocator import STYLIZE_UP_TO, keep_freed_memory
from a2k_cli.engine import Stylizer
keep_freed_memory(up_to=STYLIZE_UP_TO)  # as the commands run: the higher peak
def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
stylizer = Stylizer(sys.argv[1], device="cpu", precision=sys.argv[3])
styles = stylizer.style_state(sys.argv[2], 64)  # small: its own peak stays below the content's
content = torch.rand(1, 3, 1536, 1024)
before = status("VmRSS:")
stylizer.stylize_batch(content, styles)
print(status("VmHWM:") - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_memory_estimate_covers_the_measured_peak(precision, tiny_weights, tmp_path, monkeypatch):
    picture(64, 64, 1).save(tmp_path / "style.png")
    run = [sys.executable, "-c", MEASURE_PEAK, str(tiny_weights), str(tmp_path / "style.png")]
    run.append(precision)
    measured = int(subprocess.run(run, capture_output=True, text=True, check=True).stdout)
    stylizer = Stylizer(tiny_weights, device="cpu", precision=precision)
    monkeypatch.setattr(engine, "available_memory", lambda device: 0)
    with pytest.raises(TooLargeError) as refused:
        stylizer.stylize_batch(torch.rand(1, 3, 1536, 1024), [])
    estimate = float(re.search(r"about ([\d.]+) GiB", str(refused.value)).group(1)) * 2**30
    assert measured < estimate - 0.05 * 2**30 < 2 * measured  # fits everything, not far off


def test_stylize_images_runs_largest_first_batching_equal_sizes(stylizer, monkeypatch):
    shapes = []
    real = Stylizer.stylize_batch

    def spy(self, images, *args, **kwargs):
        shapes.append(tuple(images.shape))
        return real(self, images, *args, **kwargs)

    monkeypatch.setattr(Stylizer, "stylize_batch", spy)
    images = [picture(32, 24, 0), picture(64, 48, 1), picture(32, 24, 2)]
    outs = stylizer.stylize_images(images, picture(64, 64, 9), size=0, style_size=64)
    assert shapes == [(1, 3, 48, 64), (2, 3, 24, 32)]
    assert [o.size for o in outs] == [i.size for i in images]


def test_progress_is_reported_per_batch(stylizer):
    images = [picture(32, 24, 0), picture(64, 48, 1), picture(32, 24, 2)]
    counts: list[int] = []
    stylizer.stylize_images(
        images, picture(64, 64, 9), size=0, style_size=64, progress=counts.append
    )
    assert counts == [1, 2]  # the large image alone, then the two small ones together


def test_size_caps_and_enlarges_only_when_asked(stylizer):
    style = picture(64, 64, 1)
    assert stylizer.stylize(picture(60, 40, 0), style, size=90, style_size=64).size == (60, 40)
    enlarged = stylizer.stylize(picture(60, 40, 0), style, size=90, style_size=64, upscale=True)
    assert enlarged.size == (90, 60)
