"""Training losses: the paper's attention-weighted style loss and the extra terms a2k's
recipes add. The global style and content losses are shared with `a2k eval` and live in
`a2k_cli.measures`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from a2k_cli.measures import rgb_to_lab
from a2k_cli.model.attention import (
    DEFAULT_BUDGET_BYTES,
    a2k_attend,
    aggregate_style,
    grids_per_level,
    mvn,
)

LOSS_BLOCKS = (16, 8, 8, 4)  # parameter-free A2K block sizes at relu2_1 .. relu5_1
LOSS_HEADS = 8


def total_variation(image: Tensor) -> Tensor:
    """Mean absolute difference of neighbouring pixels, down and across.

    Not one of the paper's losses: at ¼ width the decoder fills flat regions with a fine
    maze of texture that no style has, and this L1 penalty pulls toward flat regions (in
    short fine-tunes it trades style loss for content loss; MODEL_CARD section 5).
    """
    down = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return down + (image[..., 1:] - image[..., :-1]).abs().mean()


def sorted_distribution_loss(
    out_feats: Sequence[Tensor], style_feats: Sequence[Tensor], seed: int = 0
) -> Tensor:
    """Sliced 1-D Wasserstein match of feature distributions (sorted random projections).

    Mean/std of deep features barely weigh colour; the whole distribution of shallow
    features (relu1_1: colour, relu2_1: small strokes) does. Output and style crops must
    have the same number of pixels. Projections are fixed per level by `seed`.
    """
    total = out_feats[0].new_zeros(())
    generator = torch.Generator().manual_seed(seed)
    for o, s in zip(out_feats, style_feats):
        channels = o.shape[1]
        proj = F.normalize(torch.randn(channels, channels, generator=generator), dim=0)
        proj = proj.to(o.device, o.dtype)
        po = torch.einsum("bchw,cp->bphw", o, proj).flatten(2)
        ps = torch.einsum("bchw,cp->bphw", s, proj).flatten(2)
        total = total + F.mse_loss(po.sort(-1).values, ps.sort(-1).values)
    return total


COLOUR_PROJECTIONS = 16  # random Lab directions per step (fresh each step: all are covered)


def colour_distribution_loss(output: Tensor, style: Tensor) -> Tensor:
    """Sliced Wasserstein-1 between the Lab pixel colours of each output and its style.

    Feature statistics let the decoder keep the photo's colours under a style's strokes;
    matching the colour distribution itself, in a perceptual space, paints in the
    style's palette without asking for its textures everywhere. Same-sized crops.
    """
    directions = F.normalize(torch.randn(COLOUR_PROJECTIONS, 3, device=output.device), dim=1)
    po = torch.einsum("pc,bcn->bpn", directions, rgb_to_lab(output).flatten(2))
    ps = torch.einsum("pc,bcn->bpn", directions, rgb_to_lab(style).flatten(2))
    return F.l1_loss(po.sort(-1).values, ps.sort(-1).values)


GRADIENT_SCALES = (1, 2, 4)  # average-pooling factors: single-pixel grain up to small strokes


def gradient_distribution_loss(output: Tensor, style: Tensor) -> Tensor:
    """Wasserstein-1 between the signed one-pixel lightness (L*) differences of each output
    and its style, across and down, at full, ½ and ¼ scale (average-pooled), in L* units.

    Feature statistics from the loss network leave the pixel grain free: the decoder comes
    out too smooth at one pixel and too busy at four (the maze). Matching the distribution
    of lightness steps asks for the style's own strokes wherever they fall. Same-sized crops.
    """
    total = output.new_zeros(())
    lo, ls = rgb_to_lab(output)[:, :1], rgb_to_lab(style)[:, :1]
    for scale in GRADIENT_SCALES:
        steps = []
        for luma in (lo, ls):
            pooled = F.avg_pool2d(luma, scale) if scale > 1 else luma
            across, down = pooled.diff(dim=-1).flatten(1), pooled.diff(dim=-2).flatten(1)
            steps.append(torch.cat([across, down], 1).sort(-1).values)
        total = total + F.l1_loss(*steps)
    return total / len(GRADIENT_SCALES)


FLAT_BLUR = 5  # box (px) over the luma and over its steps: noise reads flat, stripes do not


def flat_areas(images: Tensor, scale: float) -> Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) weights exp(-(activity / scale)^2), activity being the
    local mean step of the blurred luma: about 1 on flat areas (sky, walls, backgrounds:
    where the maze grows), about 0 near edges and in texture, where strokes follow the photo."""
    r = FLAT_BLUR // 2

    def box(x: Tensor) -> Tensor:
        return F.avg_pool2d(F.pad(x, (r,) * 4, mode="replicate"), FLAT_BLUR, stride=1)

    luma = box((images * images.new_tensor([0.299, 0.587, 0.114])[:, None, None]).sum(1, True))
    p = F.pad(luma, (1,) * 4, mode="replicate")
    steps = torch.hypot(p[..., 1:-1, 2:] - p[..., 1:-1, :-2], p[..., 2:, 1:-1] - p[..., :-2, 1:-1])
    return torch.exp(-((box(steps) / scale) ** 2))


def lattice_penalty(image: Tensor, periods: Sequence[int] = (2,)) -> Tensor:
    """Squared log-ratio of the mean |step| across pixel boundaries j % p = p - 1 (between
    blocks) to that across j % p = p/2 - 1, rows and columns, summed over the periods p
    and averaged over the images (0 = no lattice).

    The decoder's nearest-neighbour upsampling leaves a 2-px lattice in flat areas and the
    attention's 32-px blocks can leave seams; the paper's losses, feature statistics,
    barely change with faint periodic patterns. Each image is judged on its own, as the
    lattice ratio of `a2k eval` judges each output: a batch's pooled ratio lets the busy
    images hide a flat one's pattern.
    """
    total = image.new_zeros(image.shape[0])
    luma = image.mean(1)
    for period in periods:
        for steps in (luma.diff(dim=-1).abs(), luma.diff(dim=-2).abs().transpose(-1, -2)):
            across = steps[..., period - 1 :: period].mean((-2, -1))
            within = steps[..., period // 2 - 1 :: period].mean((-2, -1))
            total = total + (across.add(1e-6).log() - within.add(1e-6).log()) ** 2
    return total.mean()


def attention_keys(feats: Sequence[Tensor], level: int) -> Tensor:
    """K̂_l: normalised features of every level up to l, resized to level l's size."""
    size = feats[level].shape[-2:]
    parts = [mvn(F.interpolate(f, size=size, mode="nearest")) for f in feats[:level]]
    return torch.cat(parts + [mvn(feats[level])], 1)


@torch.no_grad()
def attention_style_targets(
    content_feats: Sequence[Tensor],
    style_feats: Sequence[Tensor],
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    grids: int | Sequence[int] = 1,
) -> list[Tensor]:
    """T_2..T_5: what a parameter-free A2K makes of the content at each level (no grad).

    With one block grid (the paper's) the targets step at every block boundary where
    neighbouring blocks matched different style blocks; n grids (one count for all levels
    or one per level) leave steps 1/n as high, every block/n positions.
    """
    targets = []
    for level, block, level_grids in zip(range(1, 5), LOSS_BLOCKS, grids_per_level(grids, 4)):
        q, k = attention_keys(content_feats, level), attention_keys(style_feats, level)
        v = style_feats[level]
        keys = aggregate_style(k, v, k, v, block, LOSS_HEADS)
        da, pa = a2k_attend(q, q, keys, block, budget_bytes, level_grids)
        targets.append(da + pa + content_feats[level])
    return targets


def attention_style_loss(out_feats: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """Σ_l MSE(φ_l(I_cs), T_l) for l = 2..5."""
    return sum(F.mse_loss(o, t) for o, t in zip(out_feats[1:], targets))
