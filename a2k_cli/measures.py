"""Quality measures as pure functions, shared by `a2k eval` and training.

The network-free measures, judged by no network any model here was trained with, take
(3, H, W) RGB tensors in [0, 1] and return floats:
- `palette_distance(output, style)`: sliced Wasserstein-1 distance between the pixel
  colours in CIELAB, scaled so a uniform shift by ΔE = d reads ≈ d (lower: closer palette);
- `texture_distance(output, style)`: 1-D Wasserstein-1 distance between the distributions
  of log(1 + |∇L*|) at 1, 2 and 4 px steps, averaged (lower: closer strokes and edges);
- `edge_correlation(content, output)`: Pearson correlation of the gradient magnitudes of
  the σ = 2 px blurred luminances (1: the content's structure kept, whatever the colours);
- `lattice_ratio(image, period)`: mean |L* step| across pixel boundaries j % p = p − 1 over
  that across j % p = p/2 − 1, rows and columns (1: no pattern of that period).
Sampling is seeded, so the same images always give the same numbers.

The paper's feature statistics, `global_style_loss` and `content_loss`, take the features
of an encoder (relu1_1 … relu5_1): training minimises them, `a2k eval` reports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from a2k_cli.model.attention import mvn

PROJECTIONS = 32  # random directions in Lab for the sliced distance (a 3-D space needs few)
MAX_PIXELS = 16384  # pixels sampled per image for the distribution distances (seeded)
QUANTILES = 1024  # points at which two 1-D distributions are compared
TEXTURE_STEPS = (1, 2, 4)
EDGE_SIGMA = 2.0
LATTICE_PERIODS = (2, 8, 16, 32)
SEED = 0

# sRGB (D65) -> XYZ, and the D65 white point
_RGB_TO_XYZ = torch.tensor(
    [[0.412456, 0.357576, 0.180438], [0.212673, 0.715152, 0.072175], [0.019334, 0.119192, 0.950304]]
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """(..., 3, H, W) sRGB in [0, 1] -> CIELAB (L* in 0..100); differentiable inside [0, 1]."""
    rgb = rgb.float().clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    white = _WHITE.to(rgb.device)[:, None, None]
    xyz = torch.einsum("ij,...jhw->...ihw", _RGB_TO_XYZ.to(rgb.device), linear) / white
    eps = (6 / 29) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    x, y, z = f.unbind(-3)
    return torch.stack((116 * y - 16, 500 * (x - y), 200 * (y - z)), -3)


def lightness(rgb: Tensor) -> Tensor:
    """(3, H, W) sRGB -> (H, W) L*."""
    return rgb_to_lab(rgb)[0]


def _sample(values: Tensor, seed: int) -> Tensor:
    """(C, N) -> (C, ≤ MAX_PIXELS): a seeded subset of the columns (all when N is small)."""
    n = values.shape[1]
    if n <= MAX_PIXELS:
        return values
    generator = torch.Generator().manual_seed(seed)
    return values[:, torch.randperm(n, generator=generator)[:MAX_PIXELS]]


def _quantiles(values: Tensor) -> Tensor:
    """(..., N) -> (..., QUANTILES): the sorted values at evenly spaced ranks."""
    ordered = values.sort(-1).values
    ranks = ((torch.arange(QUANTILES) + 0.5) * ordered.shape[-1] / QUANTILES).long()
    return ordered[..., ranks]


def wasserstein_1d(a: Tensor, b: Tensor) -> Tensor:
    """W1 between the empirical distributions along the last axis (any sample counts)."""
    return (_quantiles(a) - _quantiles(b)).abs().mean(-1)


def palette_distance(output: Tensor, style: Tensor, seed: int = SEED) -> float:
    """Sliced W1 between Lab colours; ×2 because E|θ·v| = |v|/2 for θ uniform on the sphere."""
    generator = torch.Generator().manual_seed(seed)
    directions = F.normalize(torch.randn(PROJECTIONS, 3, generator=generator))
    a, b = (_sample(rgb_to_lab(im).flatten(1), seed) for im in (output, style))
    return float(2 * wasserstein_1d(directions @ a, directions @ b).mean())


def _log_gradients(luma: Tensor, step: int) -> Tensor:
    """log(1 + |∇L*|) with finite differences over `step` pixels, flattened."""
    dx = luma[:-step, step:] - luma[:-step, :-step]
    dy = luma[step:, :-step] - luma[:-step, :-step]
    return torch.log1p(torch.sqrt(dx**2 + dy**2)).flatten()[None]


def texture_distance(output: Tensor, style: Tensor, seed: int = SEED) -> float:
    la, lb = lightness(output), lightness(style)
    distances = [
        wasserstein_1d(_sample(_log_gradients(la, s), seed), _sample(_log_gradients(lb, s), seed))
        for s in TEXTURE_STEPS
    ]
    return float(torch.cat(distances).mean())


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """(H, W) blurred with a separable Gaussian (radius 3σ, edge pixels repeated)."""
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(image[None, None], (radius,) * 4, mode="replicate")
    out = F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return out[0, 0]


def gradient_magnitude(luma: Tensor) -> Tensor:
    dx = luma[1:-1, 2:] - luma[1:-1, :-2]
    dy = luma[2:, 1:-1] - luma[:-2, 1:-1]
    return torch.sqrt(dx**2 + dy**2)


def edge_correlation(content: Tensor, output: Tensor) -> float:
    """Pearson r of the blurred luminances' gradient magnitudes (same-size images)."""
    if content.shape != output.shape:
        raise ValueError(f"content {tuple(content.shape)} and output {tuple(output.shape)} differ")
    a, b = (
        gradient_magnitude(gaussian_blur(lightness(im), EDGE_SIGMA)).flatten()
        for im in (content, output)
    )
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.norm() * b.norm()).item()
    return float((a @ b) / denominator) if denominator else 0.0


def lattice_ratio(image: Tensor, period: int) -> float:
    """Boundary steps at j % p = p − 1 over those at j % p = p/2 − 1, rows and columns."""
    if period < 2 or period % 2:
        raise ValueError(f"the period must be even and at least 2, got {period}")
    luma = lightness(image)
    across = within = 0.0
    for steps in (luma.diff(dim=1).abs(), luma.diff(dim=0).abs().T):
        across += float(steps[:, period - 1 :: period].mean())
        within += float(steps[:, period // 2 - 1 :: period].mean())
    if not within:
        return math.inf if across else 1.0
    return across / within


# ---- the paper's feature statistics ------------------------------------------------------


def mean_std(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    flat = x.flatten(2)
    return flat.mean(-1), (flat.var(-1) + eps).sqrt()


def global_style_loss(out_feats: Sequence[Tensor], style_feats: Sequence[Tensor]) -> Tensor:
    """Sum over the given levels of MSE between channel means and between channel stds."""
    total = out_feats[0].new_zeros(())
    for o, s in zip(out_feats, style_feats):
        (om, os), (sm, ss) = mean_std(o), mean_std(s)
        total = total + F.mse_loss(om, sm) + F.mse_loss(os, ss)
    return total


def content_loss(out_feats: Sequence[Tensor], content_feats: Sequence[Tensor]) -> Tensor:
    """MSE of mean-variance-normalised features (the paper uses relu4_1 and relu5_1)."""
    return sum(F.mse_loss(mvn(o), mvn(c)) for o, c in zip(out_feats, content_feats))
