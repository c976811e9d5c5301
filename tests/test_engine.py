"""Stylizer: sizes, padding, batching, style cache, blending, alpha, colour preservation.

Random-init weights (the `tiny_weights` fixture): only properties that hold for any
weights are asserted.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from a2k_cli import engine
from a2k_cli.colour import preserve_colour, rgb_to_ycbcr
from a2k_cli.engine import Stylizer, TooLargeError


@pytest.fixture(scope="module")
def stylizer(tiny_weights) -> Stylizer:
    """fp32, so the engine's invariants can be checked to float precision on any CPU."""
    return Stylizer(tiny_weights, device="cpu", precision="fp32")


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(tiny_weights, monkeypatch):
    from a2k_cli import device

    for native, expected in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(device, "native_bf16", lambda native=native: native)
        auto = Stylizer(tiny_weights, device="cpu")
        assert auto.device.type == "cpu" and auto.dtype == expected
        assert not auto.net.training


def test_odd_size_comes_back_exactly(stylizer, picture):
    out = stylizer.stylize(picture(333, 517, 0), picture(64, 48, 1), size=0, style_size=64)
    assert out.size == (333, 517) and out.mode == "RGB"


def test_size_sets_the_longer_side(stylizer, picture):
    out = stylizer.stylize(picture(120, 80, 0), picture(64, 64, 1), size=90, style_size=64)
    assert out.size == (90, 60)


def render_one(stylizer, images, style, **options):
    """`images` rendered in the one encoded `style`."""
    return next(stylizer.render(images, [style], **options))


@pytest.mark.parametrize("height, width", [(16, 16), (17, 130), (65, 20)])
def test_short_sides_pad_in_steps(stylizer, height, width, picture):
    style = stylizer.encode_style(picture(64, 64, 1), 64)
    out = render_one(stylizer, torch.rand(1, 3, height, width), style)
    assert out.shape == (1, 3, height, width) and out.min() >= 0 and out.max() <= 1


def test_batch_equals_one_at_a_time(stylizer, picture):
    style = stylizer.encode_style(picture(64, 64, 1), 64)
    images = torch.rand(3, 3, 40, 72)
    together = render_one(stylizer, images, style)
    alone = torch.cat([render_one(stylizer, images[i : i + 1], style) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_paint_keeps_every_image_at_its_size_and_equals_stylize(stylizer, picture):
    images = [picture(64, 48, 0), picture(64, 48, 1), picture(48, 64, 2), picture(64, 48, 3)]
    style = stylizer.encode_style(picture(64, 64, 9), 64)
    outs = {i: image for i, _, image in stylizer.paint(images, [style], size=0)}
    assert sorted(outs) == [0, 1, 2, 3]
    assert [outs[i].size for i in range(4)] == [i.size for i in images]
    single = stylizer.stylize(images[2], picture(64, 64, 9), size=0, style_size=64)
    assert np.array_equal(np.asarray(outs[2]), np.asarray(single))


def test_style_cache_reuses_and_notices_changes(stylizer, tmp_path, picture):
    path = tmp_path / "s.png"
    picture(64, 64, 1).save(path)
    first = stylizer.encode_style(path, 64).parts[0][0]
    assert stylizer.encode_style(path, 64).parts[0][0] is first
    assert stylizer.encode_style(path, 128).parts[0][0] is not first  # another size
    picture(64, 64, 2).save(path)
    import os

    os.utime(path, ns=(1, 1))
    assert stylizer.encode_style(path, 64).parts[0][0] is not first


def test_style_memory_keeps_the_most_recently_used_styles(stylizer, picture, monkeypatch):
    from a2k_cli import engine

    monkeypatch.setattr(engine, "STYLES_KEPT", 2)
    a, b, c = (picture(32, 32, seed) for seed in (1, 2, 3))
    first_a = stylizer.encode_style(a, 32).parts[0][0]
    stylizer.encode_style(b, 32)
    assert stylizer.encode_style(a, 32).parts[0][0] is first_a  # used again: now the newest
    stylizer.encode_style(c, 32)  # drops b, the least recently used
    assert stylizer.encode_style(a, 32).parts[0][0] is first_a
    assert len(stylizer._styles) == 2


def test_style_weights_blend_and_normalise(stylizer, picture):
    content = torch.rand(1, 3, 64, 64)
    a, b = picture(64, 64, 1), picture(64, 64, 2)
    only_a = render_one(stylizer, content, stylizer.encode_style(a, 64))
    weighted = render_one(stylizer, content, stylizer.encode_style([(a, 1.0), (b, 0.0)], 64))
    torch.testing.assert_close(only_a, weighted)
    half = render_one(stylizer, content, stylizer.encode_style([(a, 1), (b, 1)], 64))
    double = render_one(stylizer, content, stylizer.encode_style([(a, 2), (b, 2)], 64))
    torch.testing.assert_close(half, double)
    with pytest.raises(ValueError, match="weights"):
        stylizer.encode_style([(a, -1.0), (b, 2.0)], 64)


def test_alpha_zero_ignores_the_style(stylizer, picture):
    content = torch.rand(1, 3, 64, 96)
    one = render_one(stylizer, content, stylizer.encode_style(picture(64, 64, 1), 64), alpha=0)
    two = render_one(stylizer, content, stylizer.encode_style(picture(80, 48, 2), 64), alpha=0)
    torch.testing.assert_close(one, two)
    with pytest.raises(ValueError, match="alpha"):
        render_one(stylizer, content, stylizer.encode_style(picture(64, 64, 1), 64), alpha=1.5)


def test_paint_in_several_styles_matches_stylize_per_style(stylizer, picture):
    content, styles = picture(70, 50, 0), [picture(64, 64, 1), picture(64, 64, 2)]
    encoded = [stylizer.encode_style(style, 64) for style in styles]
    rows = {j: image for _, j, image in stylizer.paint([content], encoded, size=0)}
    for j, style in enumerate(styles):
        single = stylizer.stylize(content, style, size=0, style_size=64)
        assert np.array_equal(np.asarray(rows[j]), np.asarray(single))


def test_preserve_color_keeps_the_content_chroma(stylizer, picture):
    content = 0.4 + 0.2 * torch.rand(1, 3, 64, 64)  # mid-range: no clamping on the way back
    stylized = 0.4 + 0.2 * torch.rand(1, 3, 64, 64)
    kept = preserve_colour(stylized, content)
    ycc_kept, ycc_content, ycc_stylized = map(rgb_to_ycbcr, (kept, content, stylized))
    torch.testing.assert_close(ycc_kept[:, 1:], ycc_content[:, 1:], atol=1e-5, rtol=0)
    torch.testing.assert_close(ycc_kept[:, :1], ycc_stylized[:, :1], atol=1e-5, rtol=0)
    style = stylizer.encode_style(picture(64, 64, 1), 64)
    kept = render_one(stylizer, content, style, preserve_color=True)
    plain = render_one(stylizer, content, style)
    torch.testing.assert_close(kept, preserve_colour(plain, content))


def test_more_than_the_free_memory_is_refused_with_a_size_that_fits(stylizer, monkeypatch, picture):
    monkeypatch.setattr(engine, "available_memory", lambda device: 600 * 2**20)
    with pytest.raises(TooLargeError, match=r"needs about [\d.]+ GiB .*\(--size \d+\)") as refused:
        stylizer.stylize(picture(4000, 3000, 0), picture(64, 64, 1), size=0)
    side = int(re.search(r"--size (\d+)", str(refused.value)).group(1))
    assert 64 <= side < 4000
    assert max(stylizer.stylize(picture(4000, 3000, 0), picture(64, 64, 1), size=side).size) == side


def test_no_free_memory_at_all_says_so(stylizer, monkeypatch, picture):
    monkeypatch.setattr(engine, "available_memory", lambda device: 0)
    with pytest.raises(TooLargeError, match="free some memory first"):
        stylizer.stylize(picture(64, 64, 0), picture(64, 64, 1))


def test_batches_run_largest_first_with_equal_output_sizes_together(stylizer):
    sizes = [(32, 24), (64, 48), (32, 24), (0, 0), (48, 64)]
    assert stylizer.batches(sizes, size=0) == [[1], [4], [0, 2], [3]]  # unknown size last
    # enlarged to 64 px, the small ones match the big landscape one
    assert stylizer.batches(sizes, size=64, upscale=True) == [[0, 1, 2], [4], [3]]
    assert stylizer.batches([(64, 48)] * 5, size=0) == [[0, 1, 2, 3, 4]]
    limit = stylizer.batch_size(1024 * 1024)
    assert stylizer.batches([(1024, 1024)] * (limit + 1), size=0)[0] == list(range(limit))


def test_paint_yields_each_batch_as_it_is_painted(stylizer, picture):
    images = [picture(32, 24, 0), picture(64, 48, 1), picture(32, 24, 2)]
    style = stylizer.encode_style(picture(64, 64, 9), 64)
    order = [i for i, _, _ in stylizer.paint(images, [style], size=0)]
    assert order == [1, 0, 2]  # the large image alone, then the two small ones together


def test_size_caps_and_enlarges_only_when_asked(stylizer, picture):
    style = picture(64, 64, 1)
    assert stylizer.stylize(picture(60, 40, 0), style, size=90, style_size=64).size == (60, 40)
    enlarged = stylizer.stylize(picture(60, 40, 0), style, size=90, style_size=64, upscale=True)
    assert enlarged.size == (90, 60)
