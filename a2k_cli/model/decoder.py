"""The transform (A2K at relu4_1 and relu5_1, merged) and the decoder of Table 1.

Both use the official module layout (`nn.Sequential` indices included) so that the
authors' `latest_net_transform.pth` and `latest_net_decoder.pth` load by key.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a2k_cli.model.attention import A2K, StyleKeys


def _conv(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


def _up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


class Transform(nn.Module):
    """A2K at relu4_1 and relu5_1; relu5_1's result upsampled, added, merged by a 3x3 conv.

    Table 1 prints a ReLU after the merge conv; the official weights were trained without
    it, so there is none.
    """

    def __init__(self, c4: int, c5: int, block4: int = 8, block5: int = 4) -> None:
        super().__init__()
        self.attn_adain_4_1 = A2K(c4, block4)
        self.attn_adain_5_1 = A2K(c5, block5)
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(c4, c4, 3)

    def merge(self, f4: Tensor, f5: Tensor) -> Tensor:
        return self.merge_conv(self.merge_conv_pad(f4 + F.interpolate(f5, scale_factor=2.0)))

    def forward(self, c4: Tensor, s4: Tensor, c5: Tensor, s5: Tensor) -> Tensor:
        return self.merge(self.attn_adain_4_1(c4, s4), self.attn_adain_5_1(c5, s5))

    def prepare_style(self, s4: Tensor, s5: Tensor) -> tuple[StyleKeys, StyleKeys]:
        return self.attn_adain_4_1.prepare_style(s4), self.attn_adain_5_1.prepare_style(s5)


class Decoder(nn.Module):
    """Merged relu4_1-level features + stylized relu3_1 -> RGB image."""

    def __init__(self, widths: tuple[int, int, int, int, int]) -> None:
        super().__init__()
        c1, c2, c3, c4, _ = widths
        self.decoder_layer_1 = nn.Sequential(*_conv(c4, c3), _up())
        self.decoder_layer_2 = nn.Sequential(
            *_conv(2 * c3, c3),
            *_conv(c3, c3),
            *_conv(c3, c3),
            *_conv(c3, c2),
            _up(),
            *_conv(c2, c2),
            *_conv(c2, c1),
            _up(),
            *_conv(c1, c1),
            *_conv(c1, 3, relu=False),
        )

    def forward(self, merged: Tensor, f3cs: Tensor) -> Tensor:
        return self.decoder_layer_2(torch.cat((self.decoder_layer_1(merged), f3cs), 1))
