"""The training objective as one module, so DistributedDataParallel can wrap its forward."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a2k_cli.measures import content_loss, global_style_loss
from a2k_cli.model import A2KNet, StyleState
from a2k_cli.model.encoder import Encoder
from a2k_cli.train.losses import (
    attention_style_loss,
    attention_style_targets,
    colour_distribution_loss,
    flat_areas,
    gradient_distribution_loss,
    lattice_penalty,
    sorted_distribution_loss,
    total_variation,
)

DISTRIBUTION_LEVELS = 2  # relu1_1, relu2_1: colours and the finest strokes

# spread of the noise the stability term adds to contents (0-1 scale): about a photo's own
# sensor and JPEG noise, which the decoder otherwise paints up into a maze on flat areas
STABILITY_NOISE = 0.02


class StyleTransferObjective(nn.Module):
    """content, style -> (weighted total, {term: value}, output image).

    The global style loss covers relu1_1 … relu{global_levels}_1: the paper stops at
    relu4_1, which leaves the mean and spread of relu5_1 features free to drift.

    The losses are measured with `loss_network` when one is given, else with the model's
    own encoder. A separate loss network matters for a distilled encoder: the decoder learns
    to exploit whatever the student gets wrong (grid textures its deep features miss), and
    a frozen reference network closes that loophole.
    """

    def __init__(
        self,
        net: A2KNet,
        lambda_global: float,
        lambda_attn: float,
        lambda_content: float,
        loss_network: Encoder | None = None,
        global_levels: int = 4,
        lambda_tv: float = 0.0,
        lambda_distribution: float = 0.0,
        lambda_identity_pixel: float = 0.0,
        lambda_identity_feature: float = 0.0,
        lambda_lattice: float = 0.0,
        lambda_colour: float = 0.0,
        lattice_periods: Sequence[int] = (2,),
        attn_target_grids: int | Sequence[int] = 1,
        lambda_gradient: float = 0.0,
        lambda_stability: float = 0.0,
        stability_flat: float = 0.0,
    ):
        super().__init__()
        self.attn_target_grids = attn_target_grids
        self.net = net
        self.loss_network = loss_network
        self.global_levels = global_levels
        self.lattice_periods = tuple(lattice_periods)
        self.stability_flat = stability_flat
        self.weights = {
            "global": lambda_global,
            "attn": lambda_attn,
            "content": lambda_content,
            "tv": lambda_tv,
            "distribution": lambda_distribution,
            "identity_pixel": lambda_identity_pixel,
            "identity_feature": lambda_identity_feature,
            "lattice": lambda_lattice,
            "colour": lambda_colour,
            "gradient": lambda_gradient,
            "stability": lambda_stability,
            "recon": 0.0,  # the trainer's warm-up sets it per step
        }

    def forward(self, content: Tensor, style: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        net = self.net
        judge = net.encoder if self.loss_network is None else self.loss_network
        with torch.no_grad():
            c_feats, s_feats = net.encode(content), net.encode(style)
            own = judge is net.encoder
            c_ref, s_ref = (c_feats, s_feats) if own else (judge(content), judge(style))
            targets = attention_style_targets(c_ref, s_ref, grids=self.attn_target_grids)
        state = net.prepare_style(s_feats)
        output = net.decode(*net.stylize_features(c_feats, [(state, 1.0)]))
        o_feats = judge(output)
        n = self.global_levels
        terms = {
            "global": global_style_loss(o_feats[:n], s_ref[:n]),
            "attn": attention_style_loss(o_feats, targets),
        }
        if self.weights["content"]:
            terms["content"] = content_loss(o_feats[3:], c_ref[3:])
        if self.weights["tv"]:
            terms["tv"] = total_variation(output)
        if self.weights["distribution"]:
            k = DISTRIBUTION_LEVELS
            terms["distribution"] = sorted_distribution_loss(o_feats[:k], s_ref[:k])
        if self.weights["colour"]:
            terms["colour"] = colour_distribution_loss(output, style)
        if self.weights["gradient"]:
            terms["gradient"] = gradient_distribution_loss(output, style)
        if self.weights["lattice"]:
            terms["lattice"] = lattice_penalty(output, self.lattice_periods)
        if self.weights["stability"]:
            terms["stability"] = self.stability_term(content, state, output)
        if self.weights["identity_pixel"] or self.weights["identity_feature"]:
            terms |= self.identity_terms(content, style, c_feats, s_feats, c_ref, s_ref)
        if self.weights["recon"]:
            # warm-up only: a freshly initialised decoder first learns to invert the shallow
            # features, so style losses start from images rather than from noise
            terms["recon"] = sum(F.mse_loss(o, c) for o, c in zip(o_feats[:3], c_ref[:3]))
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, terms, output

    def stability_term(self, content: Tensor, state: StyleState, output: Tensor) -> Tensor:
        """Gupta et al.'s stability loss: faint noise on the content must not change the
        output. It penalises painting strokes from a photo's noise (the maze on flat areas);
        with `stability_flat` only on the content's flat areas, so textured ones keep theirs."""
        net = self.net
        noisy = content + STABILITY_NOISE * torch.randn_like(content)
        with torch.no_grad():
            feats = net.encode(noisy)
            weight = flat_areas(content, self.stability_flat) if self.stability_flat else 1.0
        change = net.decode(*net.stylize_features(feats, [(state, 1.0)])) - output
        return (weight * change**2).mean()

    def identity_terms(self, content, style, c_feats, s_feats, c_ref, s_ref) -> dict[str, Tensor]:
        """SANet's identity losses: a content restyled with itself (and a style with itself)
        must come back unchanged, in pixels and in features. They penalise what the decoder
        adds that no input has (the maze of strokes in flat areas, halos at edges)."""
        net, judge = self.net, self.net.encoder if self.loss_network is None else self.loss_network
        pixel, feature = content.new_zeros(()), content.new_zeros(())
        for image, feats, ref in ((content, c_feats, c_ref), (style, s_feats, s_ref)):
            same = net.decode(*net.stylize_features(feats, [(net.prepare_style(feats), 1.0)]))
            pixel = pixel + F.mse_loss(same, image)
            feature = feature + sum(F.mse_loss(o, r) for o, r in zip(judge(same), ref))
        return {"identity_pixel": pixel, "identity_feature": feature}
