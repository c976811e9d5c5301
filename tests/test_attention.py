"""The A2K module: the authors' numbers, any sizes, batches and chunking (its memory peak is
measured by bench/studies/memory_peaks.py)."""

from __future__ import annotations

import pytest
import torch

from a2k_cli.model import A2K
from a2k_cli.model.attention import a2k_attend, aggregate_style, from_blocks, to_blocks


@pytest.fixture
def reference_vectors(shared_path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(shared_path("fixtures", "a2k_reference_vectors.safetensors")))


def test_official_relu3_checkpoint_reproduces_reference_output(reference_vectors, shared_path):
    ref = reference_vectors
    state = torch.load(shared_path("fixtures", "official_latest_net_A2K.pth"), weights_only=True)
    module = A2K(256, 8)
    module.load_state_dict(state, strict=True)
    with torch.no_grad():
        out = module(ref["a2k3.content"], ref["a2k3.style"])
    torch.testing.assert_close(out, ref["a2k3.output"], atol=1e-4, rtol=0)


def test_block4_module_reproduces_reference_output(reference_vectors):
    ref = reference_vectors
    module = A2K(64, 4)
    prefix = "a2k5.param."
    module.load_state_dict({k[len(prefix) :]: v for k, v in ref.items() if k.startswith(prefix)})
    with torch.no_grad():
        out = module(ref["a2k5.content"], ref["a2k5.style"])
    torch.testing.assert_close(out, ref["a2k5.output"], atol=1e-4, rtol=0)


def test_blocks_round_trip_and_match_unfold_order():
    x = torch.randn(2, 16, 8, 12)
    blocks = to_blocks(x, 4, 8)
    assert blocks.shape == (2, 8, 6, 16, 2)
    torch.testing.assert_close(from_blocks(blocks, 4, 8, 12), x)
    unfolded = torch.nn.functional.unfold(x, 4, stride=4).view(2, 8, 2, 16, 6)
    torch.testing.assert_close(blocks, unfolded.permute(0, 1, 4, 3, 2))


def random_module(channels=32, block=4) -> A2K:
    torch.manual_seed(1)
    module = A2K(channels, block)
    for p in module.parameters():
        torch.nn.init.normal_(p, 0, 0.2)
    return module.eval()


@torch.no_grad()
def test_content_and_style_of_different_sizes_and_aspects():
    module = random_module()
    content, style = torch.randn(1, 32, 12, 20), torch.randn(1, 32, 28, 8)
    out = module(content, style)
    assert out.shape == content.shape and torch.isfinite(out).all()
    # the style's spatial arrangement is irrelevant to DA; a different style changes the output
    assert not torch.allclose(out, module(content, torch.randn(1, 32, 28, 8)))


@torch.no_grad()
def test_batch_equals_items_one_by_one():
    module = random_module()
    content, style = torch.randn(3, 32, 16, 12), torch.randn(3, 32, 8, 16)
    batched = module(content, style)
    single = torch.cat([module(content[i : i + 1], style[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_chunking_gives_identical_results():
    module = random_module()
    content, style = torch.randn(2, 32, 32, 24), torch.randn(2, 32, 16, 16)
    whole = module(content, style)
    module.budget_bytes = 1  # one content block per chunk
    torch.testing.assert_close(module(content, style), whole, atol=1e-6, rtol=1e-6)


def all_to_all_reference(q, k, v, q2, k2, v2, block, heads):
    """A direct, loop-free but unchunked formulation of the spec, for cross-checking."""
    style = aggregate_style(k, v, k2, v2, block, heads)
    qb, q2b = to_blocks(q, block, heads), to_blocks(q2, block, heads)
    da = torch.softmax(
        qb @ style.agg_keys.unsqueeze(2).transpose(-1, -2), -1
    ) @ style.agg_values.unsqueeze(2)
    scores = q2b.flatten(-2) @ style.block_keys.flatten(-2).transpose(-1, -2)
    best = scores.argmax(-1)
    out = []
    for x in range(qb.shape[2]):
        keys = style.block_keys[0, torch.arange(heads), best[0, :, x]]
        vals = style.block_values[0, torch.arange(heads), best[0, :, x]]
        out.append(torch.softmax(q2b[0, :, x] @ keys.transpose(-1, -2), -1) @ vals)
    pa = torch.stack(out, 1).unsqueeze(0)
    h, w = q.shape[-2:]
    return from_blocks(da, block, h, w), from_blocks(pa, block, h, w)


@pytest.mark.parametrize("channels", [16, 64, 128])  # head widths 2, 8, 16: padded or not
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_attend_matches_direct_formulation(channels, layout):
    torch.manual_seed(0)
    tensors = [torch.randn(1, channels, 8, 12) for _ in range(2)] + [
        torch.randn(1, channels, 12, 8) for _ in range(4)
    ]
    q, q2, k, v, k2, v2 = (t.contiguous(memory_format=layout) for t in tensors)
    da, pa = a2k_attend(q, q2, aggregate_style(k, v, k2, v2, 4, 8), 4, budget_bytes=1)
    ref_da, ref_pa = all_to_all_reference(q, k, v, q2, k2, v2, 4, 8)
    torch.testing.assert_close(da, ref_da, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pa, ref_pa, atol=1e-5, rtol=1e-5)


def block_seam_ratio(x: torch.Tensor, block: int) -> float:
    """Mean |step| across block boundaries over that across block middles (1: no seams)."""
    steps = x.diff(dim=-1).abs()
    return (
        steps[..., block - 1 :: block].mean() / steps[..., block // 2 - 1 :: block].mean()
    ).item()


def test_more_block_grids_hide_the_seams_and_leave_da_alone():
    torch.manual_seed(0)
    module = A2K(32, 8)
    # a smooth content: a step across a block boundary of PA's output is a seam
    ramp = torch.linspace(0, 1, 64).expand(1, 32, 64, 64) + 0.05 * torch.randn(1, 32, 64, 64)
    style = module.prepare_style(torch.randn(1, 32, 32, 32))
    with torch.no_grad():
        q, q2 = module.q(ramp), module.q2(ramp)
        (da1, pa1), (da2, pa2), (da4, pa4) = (
            a2k_attend(q, q2, style, 8, grids=grids) for grids in (1, 2, 4)
        )
    assert block_seam_ratio(pa1, 8) > 1.2  # the paper's single grid leaves seams
    assert block_seam_ratio(pa2, 8) < 0.8 * block_seam_ratio(pa1, 8)
    # two grids leave half-height steps every half block, four quarter-height ones every
    # quarter block: then the half-block period sees a seam on both sides, and no pattern
    assert block_seam_ratio(pa2, 4) > 1.1
    assert abs(block_seam_ratio(pa4, 4) - 1) < 0.5 * (block_seam_ratio(pa2, 4) - 1)
    assert 1 < block_seam_ratio(pa4, 2) < block_seam_ratio(pa2, 4)
    torch.testing.assert_close(da1, da2)
    torch.testing.assert_close(da1, da4)
    with pytest.raises(ValueError, match="grids"):
        A2K(32, 8, grids=3)
    with pytest.raises(ValueError, match="divide the block size"):
        A2K(32, 2, grids=4)


def test_the_block_grids_travel_with_the_weights_file(tmp_path):
    from dataclasses import replace

    from safetensors.torch import save_file

    from a2k_cli.model import PRESETS, A2KNet
    from a2k_cli.weights import load, read_metadata, save

    net = A2KNet(replace(PRESETS["lite"], block_grids=(4, 2, 2)))
    levels = (net.a2k, net.transform.attn_adain_4_1, net.transform.attn_adain_5_1)
    assert [m.grids for m in levels] == [4, 2, 2]
    path = save(net, tmp_path / "mixed.safetensors")
    assert load(path).preset.block_grids == (4, 2, 2)
    # files from before per-level grids store one count for every level
    meta = read_metadata(path) | {"block_grids": "2"}
    save_file(net.state_dict(), str(tmp_path / "old.safetensors"), metadata=meta)
    assert load(tmp_path / "old.safetensors").preset.block_grids == (2, 2, 2)
