"""A2KNet presets, shapes, the style cache path, and the training-loss targets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from a2k_cli.measures import global_style_loss
from a2k_cli.model import A2KNet
from a2k_cli.model.decoder import upsample_conv
from a2k_cli.train.losses import attention_style_targets


@pytest.mark.parametrize(
    "preset, widths", [("lite", (16, 32, 64, 128, 128)), ("paper", (64, 128, 256, 512, 512))]
)
def test_presets_have_spec_widths(preset, widths):
    net = A2KNet.from_preset(preset)
    assert net.encoder.widths == widths
    assert net.transform.merge_conv.weight.shape == (widths[3], widths[3], 3, 3)
    assert net.decoder.decoder_layer_2[1].weight.shape == (widths[2], 2 * widths[2], 3, 3)
    assert not any(p.requires_grad for p in net.encoder.parameters())


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_decoder_equals_the_official_layer_by_layer_computation(layout):
    """The fused upsample+conv path computes exactly what the Sequential layers would."""
    torch.manual_seed(0)
    decoder = A2KNet.from_preset("lite").decoder
    for p in decoder.parameters():  # trained-like magnitudes, not the tiny init
        p.data.normal_(0, 0.1)
    merged = torch.rand(2, 128, 6, 10).contiguous(memory_format=layout)
    f3cs = torch.rand(2, 64, 12, 20).contiguous(memory_format=layout)
    with torch.no_grad():
        plain = decoder.decoder_layer_2(torch.cat((decoder.decoder_layer_1(merged), f3cs), 1))
        fused = decoder(merged, f3cs)
    assert fused.shape == (2, 3, 48, 80)
    assert (fused - plain).abs().max() < 1e-5 * plain.abs().max()  # float rounding only


@pytest.mark.parametrize(
    ("mode", "smoothed"), [("bilinear-last", [-6]), ("bilinear-last-two", [-6, -13])]
)
def test_bilinear_last_modes_smooth_only_the_decoders_last_upsamplings(mode, smoothed):
    torch.manual_seed(0)
    decoder = A2KNet.from_preset("lite").decoder
    for p in decoder.parameters():
        p.data.normal_(0, 0.1)
    merged, f3cs = torch.rand(1, 128, 6, 10), torch.rand(1, 64, 12, 20)
    decoder.upsample = mode
    for index in smoothed:  # the last nn.Upsamples, in the plain layers
        assert isinstance(decoder.decoder_layer_2[index], torch.nn.Upsample)
        decoder.decoder_layer_2[index].mode = "bilinear"
    with torch.no_grad():
        plain = decoder.decoder_layer_2(torch.cat((decoder.decoder_layer_1(merged), f3cs), 1))
        fused = decoder(merged, f3cs)
    assert (fused - plain).abs().max() < 1e-5 * plain.abs().max()


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 5, 1, 1), (1, 5, 2, 6)])
def test_fused_upsample_convs_match_the_plain_computation_and_its_gradients(mode, shape):
    """Values and gradients, the border rows and columns included (the bilinear path
    computes those apart), down to 1-pixel inputs."""
    from a2k_cli.model.decoder import UPSAMPLE_CONV

    torch.manual_seed(0)
    x, w, b = (torch.randn(*s, requires_grad=True) for s in (shape, (4, 5, 3, 3), (4,)))
    up = F.interpolate(x, scale_factor=2.0, mode=mode)
    plain = F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), w, b)
    fused = UPSAMPLE_CONV[mode](x, w, b)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    for g_fused, g_plain in zip(
        torch.autograd.grad(fused.sin().sum(), (x, w, b)),
        torch.autograd.grad(plain.sin().sum(), (x, w, b)),
    ):
        torch.testing.assert_close(g_fused, g_plain, rtol=1e-4, atol=1e-4)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset"):
        A2KNet.from_preset("huge")


@torch.no_grad()
def test_lite_net_maps_images_to_images_of_any_multiple_of_64():
    torch.manual_seed(0)
    net = A2KNet.from_preset("lite").eval()
    content, style = torch.rand(2, 3, 128, 192), torch.rand(2, 3, 64, 256)
    out = net(content, style)
    assert out.shape == content.shape and torch.isfinite(out).all()
    # the cached-style path is the same computation as forward()
    state = net.prepare_style(net.encode(style))
    again = net.decode(*net.stylize_features(net.encode(content), [(state, 1.0)]))
    torch.testing.assert_close(again, out)


@torch.no_grad()
def test_alpha_zero_keeps_content_features_and_weights_blend_styles():
    torch.manual_seed(0)
    net = A2KNet.from_preset("lite").eval()
    content, s1, s2 = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
    feats = net.encode(content)
    a, b = (net.prepare_style(net.encode(s)) for s in (s1, s2))
    f3, _ = net.stylize_features(feats, [(a, 1.0)], alpha=0.0)
    torch.testing.assert_close(f3, feats[2])
    only_a = net.stylize_features(feats, [(a, 3.0), (b, 0.0)])
    torch.testing.assert_close(only_a[0], net.stylize_features(feats, [(a, 1.0)])[0])
    half = net.stylize_features(feats, [(a, 1.0), (b, 1.0)])[0]
    mean = (
        net.stylize_features(feats, [(a, 1.0)])[0] + net.stylize_features(feats, [(b, 1.0)])[0]
    ) / 2
    torch.testing.assert_close(half, mean)


def test_attention_style_targets_reproduce_reference(shared_path):
    from safetensors.torch import load_file

    ref = load_file(str(shared_path("fixtures", "a2k_reference_vectors.safetensors")))
    content = [ref[f"loss.content_feat{i}"] for i in range(1, 6)]
    style = [ref[f"loss.style_feat{i}"] for i in range(1, 6)]
    targets = attention_style_targets(content, style)
    for level, target in zip(range(2, 6), targets):
        torch.testing.assert_close(target, ref[f"loss.target{level}"], atol=1e-4, rtol=0)
    chunked = attention_style_targets(content, style, budget_bytes=1)
    for a, b in zip(chunked, targets):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_global_style_loss_is_zero_for_identical_statistics_and_positive_otherwise():
    feats = [torch.rand(2, 4, 8, 8)]
    assert global_style_loss(feats, feats).item() == 0.0
    # a spatial permutation keeps means and stds: still zero
    shuffled = [feats[0].flatten(2)[..., torch.randperm(64)].view(2, 4, 8, 8)]
    assert global_style_loss(shuffled, feats).item() == pytest.approx(0.0, abs=1e-10)
    assert global_style_loss([feats[0] * 2], feats).item() > 0.01


def test_bilinear_upsampling_uses_the_same_weights_and_leaves_no_lattice(tmp_path):
    from dataclasses import replace

    from a2k_cli.measures import lattice_ratio
    from a2k_cli.model.decoder import Decoder, bilinear_upsample_conv
    from a2k_cli.weights import load, save

    torch.manual_seed(0)
    nearest = A2KNet.from_preset("lite").eval()
    smooth = A2KNet(replace(nearest.preset, upsample="bilinear")).eval()
    smooth.load_state_dict(nearest.state_dict())  # the same tensors, by key and shape
    x = torch.rand(1, 16, 8, 8)
    w = torch.randn(4, 16, 3, 3)
    expected = F.conv2d(
        F.pad(F.interpolate(x, scale_factor=2, mode="bilinear"), (1, 1, 1, 1), mode="reflect"), w
    )
    torch.testing.assert_close(bilinear_upsample_conv(x, w), expected, rtol=1e-5, atol=1e-5)
    # a 3x3 identity kernel shows the interpolation itself: nearest copies each pixel into a
    # 2x2 block (steps only between blocks), bilinear keeps a smooth image smooth
    identity = torch.zeros(3, 3, 3, 3)
    identity[range(3), range(3), 1, 1] = 1
    coarse = F.interpolate(torch.rand(1, 3, 8, 8), size=(64, 64), mode="bicubic")  # smooth
    assert lattice_ratio(upsample_conv(coarse, identity)[0], 2) == float("inf")
    assert lattice_ratio(bilinear_upsample_conv(coarse, identity)[0], 2) == pytest.approx(
        1, abs=0.05
    )
    path = save(smooth, tmp_path / "smooth.safetensors", preset="lite")
    assert load(path).decoder.upsample == "bilinear"
    assert (
        load(save(nearest, tmp_path / "n.safetensors", preset="lite")).decoder.upsample == "nearest"
    )
    with pytest.raises(ValueError, match="upsample"):
        Decoder((16, 32, 64, 128, 128), "bicubic")


def test_bilinear_merge_leaves_no_16px_blocks_where_nearest_does():
    """relu5_1's result meets relu4_1's at twice its size: copied, every 2x2 cell of the
    merged map is one step (16 px in the image); interpolated, a smooth map stays smooth."""
    from a2k_cli.measures import lattice_ratio
    from a2k_cli.model.decoder import Transform

    torch.manual_seed(0)
    f5 = F.interpolate(torch.rand(1, 3, 4, 4), size=(32, 32), mode="bicubic")
    f4 = torch.zeros(1, 3, 64, 64)
    ratios = {}
    for mode in ("nearest", "bilinear"):
        transform = Transform(3 * 8, 3 * 8, merge=mode)
        transform.merge_conv = torch.nn.Identity()  # the upsampled sum itself
        transform.merge_conv_pad = torch.nn.Identity()
        ratios[mode] = lattice_ratio(transform.merge(f4, f5)[0], 2)
    assert ratios["nearest"] == float("inf")
    assert ratios["bilinear"] == pytest.approx(1, abs=0.05)
    with pytest.raises(ValueError, match="merge"):
        Transform(8, 8, merge="bicubic")
