"""A2KNet: encoder + A2K at relu3_1 + transform (relu4_1, relu5_1) + decoder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from a2k_cli.model.attention import A2K, StyleKeys
from a2k_cli.model.decoder import Decoder, Transform
from a2k_cli.model.encoder import Encoder

MULTIPLE = 64  # relu5_1 is 1/16 scale with 4x4 blocks: image sides must be multiples of 64


@dataclass(frozen=True)
class Preset:
    widths: tuple[int, int, int, int, int]
    blocks: tuple[int, int, int] = (8, 8, 4)  # A2K block sizes at relu3_1, relu4_1, relu5_1
    upsample: str = "nearest"  # the decoder's interpolation (`Decoder`): the paper's default
    # PA's block grids at relu3_1, relu4_1, relu5_1 (`GRID_CHOICES`; 1: the paper's)
    block_grids: tuple[int, int, int] = (1, 1, 1)
    merge: str = "nearest"  # how relu5_1's result is upsampled onto relu4_1's (`Transform`)


PRESETS = {
    "paper": Preset((64, 128, 256, 512, 512)),
    "lite": Preset((16, 32, 64, 128, 128)),
}


class StyleState(NamedTuple):
    """A style encoded once: its A2K keys at relu3_1, relu4_1 and relu5_1."""

    level3: StyleKeys
    level4: StyleKeys
    level5: StyleKeys


class A2KNet(nn.Module):
    """The whole style-transfer network; RGB in [0, 1], sides multiples of 64."""

    def __init__(self, preset: Preset) -> None:
        super().__init__()
        self.preset = preset
        c1, c2, c3, c4, c5 = preset.widths
        b3, b4, b5 = preset.blocks
        g3, g4, g5 = preset.block_grids
        self.encoder = Encoder(preset.widths)
        self.a2k = A2K(c3, b3, grids=g3)
        self.transform = Transform(c4, c5, b4, b5, (g4, g5), preset.merge)
        self.decoder = Decoder(preset.widths, preset.upsample)
        self.encoder.requires_grad_(False)
        init_trainable(self)

    @classmethod
    def from_preset(cls, name: str) -> A2KNet:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        return cls(PRESETS[name])

    def trainable(self) -> list[nn.Module]:
        """The parts training updates; the encoder stays frozen."""
        return [self.a2k, self.transform, self.decoder]

    def set_attention_budget(self, budget_bytes: int) -> None:
        for module in self.modules():
            if isinstance(module, A2K):
                module.budget_bytes = budget_bytes

    def encode(self, image: Tensor) -> list[Tensor]:
        return self.encoder(image)

    def prepare_style(self, feats: Sequence[Tensor]) -> StyleState:
        level4, level5 = self.transform.prepare_style(feats[3], feats[4])
        return StyleState(self.a2k.prepare_style(feats[2]), level4, level5)

    def stylize_features(
        self,
        feats: Sequence[Tensor],
        styles: Sequence[tuple[StyleState, float]],
        alpha: float = 1.0,
    ) -> tuple[Tensor, Tensor]:
        """Stylized relu3_1 and merged relu4_1-level features, ready for the decoder.

        Several styles blend by their weights (normalised to sum 1) at every A2K level;
        `alpha` blends the stylized features with the content's own.
        """
        total = sum(w for _, w in styles)
        levels = []
        for level, (module, content) in enumerate(
            zip((self.a2k, self.transform.attn_adain_4_1, self.transform.attn_adain_5_1), feats[2:])
        ):
            out = sum(module.attend(content, state[level]) * (w / total) for state, w in styles)
            levels.append(alpha * out + (1 - alpha) * content if alpha != 1 else out)
        f3, f4, f5 = levels
        return f3, self.transform.merge(f4, f5)

    def decode(self, f3cs: Tensor, merged: Tensor) -> Tensor:
        return self.decoder(merged, f3cs)

    def forward(self, content: Tensor, style: Tensor, alpha: float = 1.0) -> Tensor:
        state = self.prepare_style(self.encode(style))
        return self.decode(*self.stylize_features(self.encode(content), [(state, 1.0)], alpha))


PAPER_WIDTH = PRESETS["paper"].widths[3]


@torch.no_grad()
def init_trainable(net: A2KNet) -> None:
    """The authors' normal(0, 0.02) conv weights, zero biases, at the paper's per-layer gain.

    A conv's output scale grows with sqrt(fan-in); at ¼ width the fan-in is 4x smaller, so
    the same std would shrink the signal ~2x more per layer and the 11-conv decoder would
    start out ~500x quieter (and learn correspondingly slowly). Scaling the std by
    sqrt(paper width / width) keeps the paper's gain; for the paper preset it is 0.02.
    """
    if next(net.parameters()).is_meta:  # shapes only, weights to come from a file: on meta
        return  # tensors torch routes normal_ through its compiler stack (seconds to import)
    std = 0.02 * (PAPER_WIDTH / net.preset.widths[3]) ** 0.5
    for part in net.trainable():
        for module in part.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, std)
                nn.init.zeros_(module.bias)
