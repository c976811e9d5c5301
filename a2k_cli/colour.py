"""Colour preservation: the stylized image's luminance with the content's chroma.

Style transfer moves both texture and palette; users who want only the brushwork keep the
photo's colours. Luminance carries the texture, so the stylized Y channel is kept and the
content's Cb and Cr (BT.601, full range, as JPEG uses) replace the stylized ones.
"""

from __future__ import annotations

import torch
from torch import Tensor

_RGB_TO_YCBCR = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 1] -> Y in [0, 1], Cb and Cr centred on 0."""
    matrix = _RGB_TO_YCBCR.to(rgb.device, rgb.dtype)
    return torch.einsum("ij,bjhw->bihw", matrix, rgb)


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    matrix = torch.linalg.inv(_RGB_TO_YCBCR).to(ycbcr.device, ycbcr.dtype)
    return torch.einsum("ij,bjhw->bihw", matrix, ycbcr)


def preserve_colour(stylized: Tensor, content: Tensor) -> Tensor:
    """Stylized luminance + content chroma, clamped to [0, 1]; both (B, 3, H, W)."""
    luma = rgb_to_ycbcr(stylized)[:, :1]
    chroma = rgb_to_ycbcr(content)[:, 1:]
    return ycbcr_to_rgb(torch.cat((luma, chroma), 1)).clamp_(0, 1)
