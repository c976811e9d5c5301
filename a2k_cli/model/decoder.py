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


# Taps of a 3-tap kernel seen through a 2x nearest upsampling: output row 2m reads
# upsampled rows 2m-1, 2m, 2m+1 = input rows m-1, m, m; row 2m+1 reads m, m, m+1. As a
# stride-2 transposed convolution's 4 taps (row 2m+1's, row 2m's, row 2m+1's, row 2m's):
_UPSAMPLED_TAPS = torch.tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]])


def upsample_conv(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """conv3x3(reflect_pad(upsample_nearest_2x(x))) without building the upsampled map.

    One stride-2 transposed convolution of the input with the 3x3 kernel folded to 4x4
    does it, with fewer multiply-adds and no full-size intermediate maps (the speed-up:
    bench/results/design-measurements.md). A 1-pixel reflection of the upsampled map is
    the 1-pixel replication of the input, upsampled. Equal to the plain computation up to
    float rounding.
    """
    taps = _UPSAMPLED_TAPS.to(weight)
    kernel = torch.einsum("ay,oiyx,bx->ioab", taps, weight, taps)
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    return F.conv_transpose2d(padded, kernel, bias, stride=2, padding=3)


# Taps of a 3-tap kernel seen through a 2x bilinear upsampling (align_corners=False: row
# 2m is 1/4 of input row m-1 and 3/4 of row m, row 2m+1 3/4 of m and 1/4 of m+1), per
# output row parity: [parity, kernel tap, input row m-1, m, m+1].
_BILINEAR_TAPS = torch.tensor(
    [
        [[0.75, 0.25, 0], [0.25, 0.75, 0], [0, 0.75, 0.25]],
        [[0.25, 0.75, 0], [0, 0.75, 0.25], [0, 0.25, 0.75]],
    ]
)


def _plain_bilinear_upsample_conv(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return F.conv2d(F.pad(up, (1, 1, 1, 1), mode="reflect"), weight, bias)


def bilinear_upsample_conv(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """conv3x3(reflect_pad(upsample_bilinear_2x(x))): the smooth alternative, no lattice.

    Computed at the input's size: one 3x3 convolution with the kernel folded for each of
    the four output pixel parities, then a pixel shuffle, so the upsampled map is never
    built (faster: bench/results/design-measurements.md). The border rows and columns,
    where the reflection differs from the input's replication, come from the plain
    computation on 2-pixel strips. Equal to the plain computation up to float rounding.
    """
    taps = _BILINEAR_TAPS.to(weight)
    out_channels, in_channels = weight.shape[:2]
    kernel = torch.einsum("ayp,oiyx,bxq->oabipq", taps, weight, taps)
    kernel = kernel.reshape(4 * out_channels, in_channels, 3, 3)  # pixel_shuffle's order
    bias4 = bias.repeat_interleave(4) if bias is not None else None
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    out = F.pixel_shuffle(F.conv2d(padded, kernel, bias4), 2)
    out[..., :1, :] = _plain_bilinear_upsample_conv(x[..., :2, :], weight, bias)[..., :1, :]
    out[..., -1:, :] = _plain_bilinear_upsample_conv(x[..., -2:, :], weight, bias)[..., -1:, :]
    out[..., :1] = _plain_bilinear_upsample_conv(x[..., :2], weight, bias)[..., :1]
    out[..., -1:] = _plain_bilinear_upsample_conv(x[..., -2:], weight, bias)[..., -1:]
    return out


UPSAMPLE_CONV = {"nearest": upsample_conv, "bilinear": bilinear_upsample_conv}

# The decoder's upsampling modes: how each of its three 2x upsamplings interpolates. The
# 2-px lattice comes from the last one alone, so "bilinear-last" smooths only that one
# and keeps the coarser stages' nearest-neighbour copies, which carry texture; the middle
# one's copies leave a 4-px pattern, which "bilinear-last-two" smooths as well.
UPSAMPLE_MODES = {
    "nearest": ("nearest",) * 3,
    "bilinear": ("bilinear",) * 3,
    "bilinear-last": ("nearest", "nearest", "bilinear"),
    "bilinear-last-two": ("nearest", "bilinear", "bilinear"),
}
MERGE_MODES = ("nearest", "bilinear")  # the transform's upsampling of relu5_1's result


def run_layers(
    layers: nn.Sequential, x: Tensor, upsamples: tuple[str, ...] = ("nearest",) * 3
) -> Tensor:
    """Run a decoder stage, fusing each upsample with the padded conv that follows it.

    `upsamples` gives the interpolation of the stage's upsamples, in order.
    """
    modes = iter(upsamples)
    upsampled = False
    for layer in layers:
        if isinstance(layer, nn.Upsample):
            upsampled = True
        elif isinstance(layer, nn.ReflectionPad2d) and upsampled:
            continue
        elif isinstance(layer, nn.Conv2d) and upsampled:
            x, upsampled = UPSAMPLE_CONV[next(modes)](x, layer.weight, layer.bias), False
        else:
            x = layer(x)
    if upsampled:
        raise ValueError("a stage may not end with an upsample")
    return x


class Transform(nn.Module):
    """A2K at relu4_1 and relu5_1; relu5_1's result upsampled, added, merged by a 3x3 conv.

    Table 1 prints a ReLU after the merge conv; the official weights were trained without
    it, so there is none. `merge` "nearest" upsamples as the paper; "bilinear" leaves no
    16-px blocks where neighbouring relu5_1 positions differ.
    """

    def __init__(
        self,
        c4: int,
        c5: int,
        block4: int = 8,
        block5: int = 4,
        grids: tuple[int, int] = (1, 1),
        merge: str = "nearest",
    ) -> None:
        super().__init__()
        if merge not in MERGE_MODES:
            raise ValueError(f"merge must be one of {', '.join(MERGE_MODES)}, not {merge!r}")
        self.merge_mode = merge
        self.attn_adain_4_1 = A2K(c4, block4, grids=grids[0])
        self.attn_adain_5_1 = A2K(c5, block5, grids=grids[1])
        self.merge_conv_pad = nn.ReflectionPad2d(1)
        self.merge_conv = nn.Conv2d(c4, c4, 3)

    def merge(self, f4: Tensor, f5: Tensor) -> Tensor:
        f5 = F.interpolate(f5, scale_factor=2.0, mode=self.merge_mode)
        return self.merge_conv(self.merge_conv_pad(f4 + f5))

    def forward(self, c4: Tensor, s4: Tensor, c5: Tensor, s5: Tensor) -> Tensor:
        return self.merge(self.attn_adain_4_1(c4, s4), self.attn_adain_5_1(c5, s5))

    def prepare_style(self, s4: Tensor, s5: Tensor) -> tuple[StyleKeys, StyleKeys]:
        return self.attn_adain_4_1.prepare_style(s4), self.attn_adain_5_1.prepare_style(s5)


class Decoder(nn.Module):
    """Merged relu4_1-level features + stylized relu3_1 -> RGB image.

    `upsample` names how its three 2x upsamplings interpolate (`UPSAMPLE_MODES`): "nearest"
    as the paper (and the authors' weights); "bilinear" or "bilinear-last" leave no 2-px
    lattice on flat areas, which nearest neighbours followed by 3x3 convs do. The weights
    are the same either way.
    """

    def __init__(self, widths: tuple[int, int, int, int, int], upsample: str = "nearest") -> None:
        super().__init__()
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(
                f"upsample must be one of {', '.join(UPSAMPLE_MODES)}, not {upsample!r}"
            )
        self.upsample = upsample
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
        """decoder_layer_2(cat(decoder_layer_1(merged), f3cs)), its upsamples fused.

        The conv after the concatenation is split by input channels: its upsampled half
        goes through `upsample_conv`, the relu3_1 half through a plain padded conv.
        """
        x = run_layers(self.decoder_layer_1[:-1], merged)  # up to its final upsample
        first = self.decoder_layer_2[1]
        up_w, skip_w = first.weight.split(x.shape[1], 1)
        first_mode, *later_modes = UPSAMPLE_MODES[self.upsample]
        x = UPSAMPLE_CONV[first_mode](x, up_w, first.bias) + F.conv2d(
            F.pad(f3cs, (1, 1, 1, 1), "reflect"), skip_w
        )
        return run_layers(self.decoder_layer_2[3:], x.relu_(), tuple(later_modes))
