"""The frozen VGG-19 "normalised" encoder (AdaIN layout), at any width."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

# (name, convs per stage); the stage's first conv output is its relu*_1 tap.
STAGES = (("1", 2), ("2", 2), ("3", 4), ("4", 4), ("5", 1))
CONV_NAMES = ("conv0",) + tuple(f"conv{s}{i}" for s, n in STAGES for i in range(1, n + 1))


def conv3x3(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3)


def pad_conv(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """Reflection-pad by 1 then convolve: every 3x3 conv of the encoder and decoder."""
    return conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


class Encoder(nn.Module):
    """RGB in [0, 1] -> [relu1_1, relu2_1, relu3_1, relu4_1, relu5_1].

    conv0 (1x1, 3->3) folds the original model's RGB->BGR, x255 and mean subtraction, so
    the network takes plain [0, 1] images.
    """

    def __init__(self, widths: tuple[int, int, int, int, int]) -> None:
        super().__init__()
        self.widths = tuple(widths)
        self.conv0 = nn.Conv2d(3, 3, 1)
        cin = 3
        for (stage, n), width in zip(STAGES, widths):
            for i in range(1, n + 1):
                setattr(self, f"conv{stage}{i}", conv3x3(cin, width))
                cin = width

    def segment(self, index: int, x: Tensor) -> Tensor:
        """From tap `index - 1` (or conv0's output) to tap `index` (relu{index+1}_1).

        Segment k runs the rest of stage k (its convs after the first), the pool, then the
        first conv of stage k+1; distillation trains segments on the teacher's own taps.
        """
        if index:
            stage, n = STAGES[index - 1]
            for i in range(2, n + 1):
                x = pad_conv(getattr(self, f"conv{stage}{i}"), x)
                if i < n:
                    x = F.relu(x, inplace=True)
            # ReLU commutes with max: after the pool it touches a quarter of the pixels
            x = F.relu(F.max_pool2d(x, 2, ceil_mode=True), inplace=True)
        return F.relu(pad_conv(getattr(self, f"conv{STAGES[index][0]}1"), x), inplace=True)

    def forward(self, x: Tensor, last: int = 5) -> list[Tensor]:
        """Features up to relu{last}_1 (earlier taps stop the pass early)."""
        x = self.conv0(x)
        feats = []
        for index in range(last):
            x = self.segment(index, x)
            feats.append(x)
        return feats
