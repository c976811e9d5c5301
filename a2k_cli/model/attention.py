"""All-to-key attention: distributed attention (DA) plus progressive attention (PA).

The learned `A2K` module and the parameter-free version used by the training loss share
one functional core, `a2k_attend`, so both are chunked over content blocks the same way:
the attention's working memory is bounded by a byte budget, never by image size, and no
Nc x Ns matrix is ever built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_BUDGET_BYTES = 256 * 2**20
# PA's block grids: the paper's one, or n copies shifted diagonally by block/n and averaged:
# each seam is 1/n as high and seams fall every block/n positions, a finer, fainter pattern
GRID_CHOICES = (1, 2, 4)
FUSED_WIDTH = 16  # head widths the fused attention kernel is fastest at (multiples of)


def grids_per_level(grids: int | Sequence[int], levels: int) -> tuple[int, ...]:
    """Block grids for each of `levels` attention levels, from one count for all (as files
    from before per-level grids store it) or one per level."""
    grids = [grids] if isinstance(grids, int) else list(grids)
    grids = grids * levels if len(grids) == 1 else grids
    if len(grids) != levels or not all(isinstance(g, int) for g in grids):
        raise ValueError(f"block grids must be 1 or {levels} integers, got {grids}")
    return tuple(grids)


def mvn(x: Tensor, eps: float = 1e-5) -> Tensor:
    """Per-sample, per-channel mean-variance normalisation over space (unbiased var).

    Two passes (mean, then the centred squares) rather than `torch.var`, whose one-pass
    reduction over a channels-last map's spatial dims is much slower on CPU
    (bench/results/design-measurements.md).
    """
    centred = x - x.mean((2, 3), keepdim=True)
    var = centred.square().sum((2, 3), keepdim=True) / (x.shape[2] * x.shape[3] - 1)
    return centred / (var + eps).sqrt()


def to_blocks(x: Tensor, block: int, heads: int) -> Tensor:
    """(B, C, H, W) -> (B, heads, n, r, C/heads): p x p blocks in row-major order."""
    b, c, h, w = x.shape
    if h % block or w % block:
        raise ValueError(f"feature size {h}x{w} is not a multiple of the block size {block}")
    # (B, C, H/p, p, W/p, p) -> (B, heads, d, H/p, W/p, p, p) -> (B, heads, n, r, d)
    x = x.view(b, heads, c // heads, h // block, block, w // block, block)
    x = x.permute(0, 1, 3, 5, 4, 6, 2)
    return x.reshape(b, heads, (h // block) * (w // block), block * block, c // heads)


def from_blocks(x: Tensor, block: int, height: int, width: int) -> Tensor:
    """Inverse of `to_blocks`: (B, heads, n, r, d) -> (B, heads * d, H, W)."""
    b, heads, _, _, d = x.shape
    x = x.view(b, heads, height // block, width // block, block, block, d)
    # (B, H/p, p, W/p, p, heads, d): laid out channels-last, as the convolutions want it
    x = x.permute(0, 2, 4, 3, 5, 1, 6).reshape(b, height, width, heads * d)
    return x.permute(0, 3, 1, 2)


class StyleKeys(NamedTuple):
    """What the attention needs from a style, computed once and reused for every content."""

    agg_keys: Tensor  # (B, h, ns, dk) DA aggregated keys
    agg_values: Tensor  # (B, h, ns, dv) DA aggregated values
    block_keys: Tensor  # (B, h, ns, r, dk) PA keys
    block_values: Tensor  # (B, h, ns, r, dv) PA values


def aggregate_style(
    k: Tensor,
    v: Tensor,
    k2: Tensor,
    v2: Tensor,
    block: int,
    heads: int,
    sim_alpha: Tensor | float = 1.0,
    sim_beta: Tensor | float = 0.0,
) -> StyleKeys:
    """DA step 1 (regional aggregation of each style block) and PA blocking of the style."""
    kb, vb = to_blocks(k, block, heads), to_blocks(v, block, heads)
    r = kb.shape[-2]
    kc, vc = kb.mean(-2), vb.mean(-2)  # (B, h, ns, d)
    s = torch.sigmoid(sim_beta + sim_alpha * torch.einsum("bhnrd,bhnd->bhnr", kb, kc))
    agg_k = (torch.einsum("bhnr,bhnrd->bhnd", s, kb) + kc) / (r + 1)
    agg_v = (torch.einsum("bhnr,bhnrd->bhnd", s, vb) + vc) / (r + 1)
    return StyleKeys(agg_k, agg_v, to_blocks(k2, block, heads), to_blocks(v2, block, heads))


def blocks_per_chunk(style: StyleKeys, budget_bytes: int) -> int:
    """Content blocks per chunk so that a chunk's logits fit the budget: DA's (r x ns) and
    PA's (r x r) per block, each with its softmax and a temporary of the same size."""
    b, h, ns, r, _ = style.block_keys.shape
    itemsize = style.block_keys.element_size()
    per_block = 3 * b * h * r * (ns + r) * itemsize
    return max(1, budget_bytes // max(per_block, 1))


def a2k_attend(
    q: Tensor,
    q2: Tensor,
    style: StyleKeys,
    block: int,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    grids: int = 1,
) -> tuple[Tensor, Tensor]:
    """DA step 2 and PA for content queries; returns the (DA, PA) outputs as (B, C, H, W).

    Content positions are processed in chunks; each chunk's result does not depend on the
    others, so the output is identical to the unchunked computation. `grids` picks PA's
    block grids (`GRID_CHOICES`; 1: the paper's computation).
    """
    b, _, height, width = q.shape
    heads, dv = style.agg_values.shape[1], style.agg_values.shape[-1]
    step = blocks_per_chunk(style, budget_bytes)
    # DA: every content position over all aggregated style keys (no 1/sqrt(d) scaling).
    # The order of positions does not matter, so DA reads the map as it lies, unblocked,
    # and writes its result straight into channels-last order.
    queries = q.flatten(2).unflatten(1, (heads, -1)).transpose(-1, -2)  # (B, h, HW, d)
    da = q.new_empty(b, height * width, heads, dv)
    rows = step * block * block  # a block's r positions each have a row of logits
    for start in range(0, height * width, rows):
        out = attention(queries[:, :, start : start + rows], style.agg_keys, style.agg_values)
        da[:, start : start + rows] = out.transpose(1, 2)
    da = da.view(b, height, width, heads * dv).permute(0, 3, 1, 2)
    shifts = range(0, block, block // grids)
    return da, sum(pa_on_shifted_grid(q2, style, block, step, k, k) for k in shifts) / grids


def pa_on_shifted_grid(
    q2: Tensor, style: StyleKeys, block: int, step: int, dy: int, dx: int
) -> Tensor:
    """PA over the block grid shifted by (dy, dx): reflect-padded, computed, cropped back."""
    if not (dy or dx):
        return progressive_attention(q2, style, block, step)
    height, width = q2.shape[-2:]
    padded = F.pad(q2, (dx, -dx % block, dy, -dy % block), mode="reflect")
    return progressive_attention(padded, style, block, step)[..., dy : dy + height, dx : dx + width]


def progressive_attention(q2: Tensor, style: StyleKeys, block: int, step: int) -> Tensor:
    """PA: each content block attends inside the one style block it matches best; `step`
    blocks at a time. Returns (B, C, H, W)."""
    heads = style.block_keys.shape[1]
    rows = step * block * block
    # PA step 1: each content block matched to a style block by summed position-wise
    # similarity. A block has one row of scores where it has r rows of logits, so the
    # scores run in chunks of `rows` blocks: the style's keys (copied per sample when a
    # batch shares one style) are read once or a few times instead of once per chunk.
    q2b = to_blocks(q2, block, heads)
    q2_flat, k2_flat = q2b.flatten(-2), style.block_keys.flatten(-2)  # (B, h, n|ns, r*dk)
    match = torch.cat(
        [
            torch.einsum("bhnk,bhzk->bhnz", q2_flat[:, :, start : start + rows], k2_flat).argmax(-1)
            for start in range(0, q2b.shape[2], rows)
        ],
        2,
    )
    # PA step 2: local attention inside the matched style block
    pa_out = []
    for start in range(0, q2b.shape[2], step):
        keys = gather_blocks(style.block_keys, match[:, :, start : start + step])
        values = gather_blocks(style.block_values, match[:, :, start : start + step])
        pa_out.append(softmax_attention(q2b[:, :, start : start + step], keys, values))
    return from_blocks(torch.cat(pa_out, 2), block, *q2.shape[-2:])


def attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q kᵀ) v over the last two dims, unscaled, as the authors compute it.

    For DA's long query sequences PyTorch's fused kernel is faster on CPU and never holds
    the whole logits matrix, but only when keys and values share a head width (the learned
    modules); the loss's parameter-free version has wider keys and takes the plain path.
    """
    width = q.shape[-1]
    if width != v.shape[-1]:
        return softmax_attention(q, k, v)
    lead = q.shape[:-2]  # the fused kernel wants 4-d (batch, heads, length, width)
    # zero-padding the head width to a 16-float vector adds nothing to q·k and only zero
    # output columns, and the kernel runs faster on 16-wide heads than on 8-wide ones
    q, k, v = (t.reshape(-1, *t.shape[-3:]) for t in (q, k, v))
    if width % FUSED_WIDTH:
        q, k, v = (F.pad(t, (0, -width % FUSED_WIDTH)) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, scale=1.0)[..., :width]
    return out.reshape(*lead, *out.shape[-2:])


def softmax_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """`attention` as two batched matmuls: faster than the fused kernel for PA's many
    small (r x r) blocks, whose per-block overhead it cannot amortise.

    The second product is taken transposed, (vᵀ wᵀ)ᵀ: MKL's batched kernel runs PA's
    (64 x 64) @ (64 x 8) faster with the long side last (bench/results/design-measurements.md).
    """
    weights = torch.matmul(q, k.transpose(-1, -2)).softmax(-1)
    return torch.matmul(v.transpose(-1, -2), weights.transpose(-1, -2)).transpose(-1, -2)


def gather_blocks(blocks: Tensor, index: Tensor) -> Tensor:
    """blocks (B, h, ns, r, d) indexed by index (B, h, n) -> (B, h, n, r, d)."""
    b, h, n = index.shape
    idx = index.view(b, h, n, 1, 1).expand(-1, -1, -1, *blocks.shape[-2:])
    return blocks.gather(2, idx)


class A2K(nn.Module):
    """The learned all-to-key attention module at one feature level (official key names)."""

    def __init__(self, channels: int, block_size: int, heads: int = 8, grids: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        if grids not in GRID_CHOICES or block_size % grids:
            raise ValueError(
                f"grids must be one of {GRID_CHOICES} and divide the block size, got {grids}"
            )
        self.block_size, self.heads, self.grids = block_size, heads, grids
        self.budget_bytes = DEFAULT_BUDGET_BYTES
        for name in ("q", "k", "v", "q2", "k2", "v2", "fusion1", "fusion2"):
            setattr(self, name, nn.Conv2d(channels, channels, 1))
        self.sim_alpha = nn.Parameter(torch.ones(1))
        self.sim_beta = nn.Parameter(torch.zeros(1))

    def prepare_style(self, style: Tensor) -> StyleKeys:
        """Keys and values of a style, reusable across contents and video frames."""
        norm = mvn(style)
        return aggregate_style(
            self.k(norm),
            self.v(style),
            self.k2(norm),
            self.v2(style),
            self.block_size,
            self.heads,
            self.sim_alpha,
            self.sim_beta,
        )

    def attend(self, content: Tensor, style: StyleKeys) -> Tensor:
        norm = mvn(content)
        q, q2 = self.q(norm), self.q2(norm)
        da, pa = a2k_attend(q, q2, style, self.block_size, self.budget_bytes, self.grids)
        return self.fusion1(da) + self.fusion2(pa) + content

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        return self.attend(content, self.prepare_style(style))
