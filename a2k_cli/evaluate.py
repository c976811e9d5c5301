"""Quality of stylized images: network-free measures, and the paper's content and style loss.

The network-free measures (`a2k_cli.measures`: palette and texture distance to the style,
edge correlation with the content, lattice ratios) use no network any model was trained
with, so they are the yardstick; the losses below need a loss network.

Both are measured on the features of a frozen encoder (the "loss network"):
- content loss: Σ over relu4_1, relu5_1 of MSE(mvn(φ(output)), mvn(φ(content)));
- style loss: Σ over relu1_1 … relu5_1 of MSE of channel means + MSE of channel stds.

The numbers depend on the loss network, so every report names it. With the authors'
VGG-19 (`vgg_normalised.pth`) they are comparable with the paper's Table 2; with the lite
encoder or the lite teacher they are only comparable with each other.

Sizes (why fixed: methods write outputs at different sizes, and feature statistics
change with scale): each output is resized so its longer side is `size` (0 keeps it),
its content is resized to exactly the output's evaluated size, and its style so its
longer side is `size` (0: the output's longer side), keeping the style's aspect.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from a2k_cli import measures
from a2k_cli.imaging import ImageError, output_name, read_image, resize_longer_side, to_tensor
from a2k_cli.measures import content_loss, global_style_loss
from a2k_cli.model.encoder import Encoder
from a2k_cli.weights import encoder_from_state, load_encoder_state, vgg_encoder_state

DEFAULT_SIZE = 512
CONTENT_LEVELS = slice(3, 5)  # relu4_1, relu5_1


@dataclass(frozen=True)
class Triple:
    """One stylized output and the two images it was made from."""

    content: Path
    style: Path
    output: Path


@dataclass(frozen=True)
class PairScore:
    content: str
    style: str
    output: str
    palette: float
    texture: float
    edge_correlation: float
    lattice_2: float
    lattice_8: float
    lattice_16: float
    lattice_32: float
    content_loss: float
    style_loss: float


MEASURES = tuple(
    f for f in PairScore.__dataclass_fields__ if f not in {"content", "style", "output"}
)


def output_stem(content: Path, style: Path) -> str:
    """The naming rule `a2k stylize` and `a2k grid` write, without the format's suffix."""
    return Path(output_name(content, style)).stem


def match_outputs(
    contents: Sequence[Path], styles: Sequence[Path], outputs: Sequence[Path]
) -> tuple[list[Triple], list[Path]]:
    """Pair each output with its content and style by name; return (matched, unmatched).

    Stems containing `_` can make two pairs share one name (`a_b` + `c` and `a` + `b_c`);
    such an output is ambiguous and is reported as unmatched rather than guessed.
    """
    by_stem: dict[str, list[tuple[Path, Path]]] = {}
    for content in contents:
        for style in styles:
            by_stem.setdefault(output_stem(content, style), []).append((content, style))
    matched, unmatched = [], []
    for output in outputs:
        sources = by_stem.get(Path(output).stem, [])
        if len(sources) == 1:
            matched.append(Triple(*sources[0], Path(output)))
        else:
            unmatched.append(Path(output))
    return matched, unmatched


def loss_network(
    model: str | Path = "lite", vgg: Path | None = None, encoder: Path | None = None
) -> tuple[Encoder, str]:
    """The encoder to measure with and a label for reports: `vgg`, else `encoder`, else the
    model's own encoder."""
    if vgg is not None:
        return encoder_from_state(vgg_encoder_state(vgg)), f"VGG-19 ({Path(vgg).name})"
    if encoder is not None:
        return encoder_from_state(load_encoder_state(encoder)), f"encoder {Path(encoder).name}"
    return encoder_from_state(load_encoder_state(model)), f"encoder of model {model}"


def evaluation_images(triple: Triple, size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(content, style, output) as (1, 3, H, W) tensors at the documented evaluation sizes,
    and the output as written (3, H, W), which the lattice ratios are measured on."""
    written = read_image(triple.output).rgb
    output = resize_longer_side(written, size)
    content = read_image(triple.content).rgb
    if content.size != output.size:
        content = content.resize(output.size, Image.LANCZOS)
    style = resize_longer_side(read_image(triple.style).rgb, size or max(output.size))
    resized = tuple(to_tensor(im)[None] for im in (content, style, output))
    return (*resized, to_tensor(written))


def network_free(content: Tensor, style: Tensor, output: Tensor, written: Tensor) -> dict:
    """The four measures of `a2k_cli.measures` for one (1, 3, H, W) triple."""
    content, style, output = content[0].cpu(), style[0].cpu(), output[0].cpu()
    lattice = {f"lattice_{p}": measures.lattice_ratio(written, p) for p in measures.LATTICE_PERIODS}
    return {
        "palette": measures.palette_distance(output, style),
        "texture": measures.texture_distance(output, style),
        "edge_correlation": measures.edge_correlation(content, output),
    } | lattice


@torch.no_grad()
def losses(encoder: Encoder, content: Tensor, style: Tensor, output: Tensor) -> tuple[float, float]:
    """(content loss, style loss) of one output against its content and style."""
    out_feats = encoder(output)
    c = content_loss(out_feats[CONTENT_LEVELS], encoder(content)[CONTENT_LEVELS])
    s = global_style_loss(out_feats, encoder(style))
    return float(c), float(s)


def score(triple: Triple, encoder: Encoder, size: int = DEFAULT_SIZE) -> PairScore:
    device = next(encoder.parameters()).device
    *images, written = evaluation_images(triple, size)
    free = network_free(*images, written)
    c, s = losses(encoder, *(t.to(device) for t in images))
    names = (str(triple.content), str(triple.style), str(triple.output))
    return PairScore(*names, **free, content_loss=c, style_loss=s)


def evaluate(
    triples: Iterable[Triple], encoder: Encoder, size: int = DEFAULT_SIZE
) -> tuple[list[PairScore], list[tuple[Path, str]]]:
    """Scores of the readable triples, and (output, reason) for those that failed."""
    scores, failed = [], []
    for triple in triples:
        try:
            scores.append(score(triple, encoder, size))
        except ImageError as exc:
            failed.append((triple.output, str(exc)))
    return scores, failed


def summary(scores: Sequence[PairScore]) -> dict[str, float | int | None]:
    """Means over all pairs (None when there are none), and the worst 2-px lattice ratio."""
    n = len(scores)
    means = {m: sum(getattr(s, m) for s in scores) / n if n else None for m in MEASURES}
    worst = max((s.lattice_2 for s in scores), default=None)
    return {"count": n} | means | {"lattice_2_max": worst}


def report(
    scores: Sequence[PairScore],
    unmatched: Sequence[Path],
    failed: Sequence[tuple[Path, str]],
    network: str,
    size: int,
) -> dict:
    """The `a2k eval --json` document (schema checked by tests/test_eval.py)."""
    return {
        "loss_network": network,
        "size": size,
        "mean": summary(scores),
        "pairs": [asdict(s) for s in scores],
        "unmatched": [str(p) for p in unmatched],
        "failed": [{"output": str(p), "error": why} for p, why in failed],
    }
