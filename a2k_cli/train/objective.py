"""The training objective as one module, so DistributedDataParallel can wrap its forward."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from a2k_cli.model import A2KNet
from a2k_cli.train.losses import (
    attention_style_loss,
    attention_style_targets,
    content_loss,
    global_style_loss,
)


class StyleTransferObjective(nn.Module):
    """content, style -> (weighted total, {term: value}, output image).

    Encoder features of the content and style are computed once and serve the attention
    targets, the style keys and the losses alike.
    """

    def __init__(
        self, net: A2KNet, lambda_global: float, lambda_attn: float, lambda_content: float
    ):
        super().__init__()
        self.net = net
        self.weights = {"global": lambda_global, "attn": lambda_attn, "content": lambda_content}

    def forward(self, content: Tensor, style: Tensor) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        net = self.net
        with torch.no_grad():
            c_feats, s_feats = net.encode(content), net.encode(style)
            targets = attention_style_targets(c_feats, s_feats)
        state = net.prepare_style(s_feats)
        output = net.decode(*net.stylize_features(c_feats, [(state, 1.0)]))
        o_feats = net.encode(output)
        terms = {
            "global": global_style_loss(o_feats[:4], s_feats[:4]),
            "attn": attention_style_loss(o_feats, targets),
        }
        if self.weights["content"]:
            terms["content"] = content_loss(o_feats[3:], c_feats[3:])
        if self.weights["recon"]:
            # warm-up only: a freshly initialised decoder first learns to invert the shallow
            # features, so style losses start from images rather than from noise
            terms["recon"] = sum(F.mse_loss(o, c) for o, c in zip(o_feats[:3], c_feats[:3]))
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, terms, output
