"""The weights file format, the bundled/user registry, and the official-checkpoint import.

One `.safetensors` file per model: every tensor of `A2KNet` under its module path, plus
string metadata (format version, preset widths and block sizes, provenance). Loading
rebuilds the network from the metadata and checks every key and shape before use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from a2k_cli.atomic import atomic_path
from a2k_cli.errors import A2KError, first_line
from a2k_cli.model import A2KNet, Preset, grids_per_level
from a2k_cli.model.encoder import Encoder
from a2k_cli.paths import bundled_weights_dir, user_weights_dir

# "2": the network is not computed as the paper's (another upsampling or merge, two grids),
# which early version-1 readers did not know and would paint wrongly, so they must refuse
# it. Files computed as the paper's keep "1".
FORMAT_VERSIONS = ("1", "2")
SUFFIX = ".safetensors"
DEFAULT_MODEL = "a2k-lite"


class WeightsError(A2KError, ValueError):
    """A weights file that cannot be used; the message is one line naming the file."""


def save(net: A2KNet, path: str | Path, **meta: Any) -> Path:
    """Write `net` atomically; extra metadata values are stored as JSON strings."""
    path = Path(path)
    preset = net.preset
    as_paper = (preset.block_grids, preset.upsample, preset.merge) == (
        (1, 1, 1),
        "nearest",
        "nearest",
    )
    header = {
        "format_version": "1" if as_paper else "2",
        "widths": json.dumps(list(net.preset.widths)),
        "blocks": json.dumps(list(net.preset.blocks)),
        "upsample": net.preset.upsample,
        "block_grids": json.dumps(list(net.preset.block_grids)),
        "merge": net.preset.merge,
    }
    header |= {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def available() -> dict[str, Path]:
    """Model names -> files: user models first, so a user file may shadow nothing bundled."""
    found: dict[str, Path] = {}
    for folder in (bundled_weights_dir(), user_weights_dir()):
        if folder.is_dir():
            for path in sorted(folder.glob(f"*{SUFFIX}")):
                found.setdefault(path.stem, path)
    return found


def resolve(path_or_name: str | Path) -> Path:
    """A file path as given, or a registered model name ('lite' is short for 'a2k-lite')."""
    path = Path(path_or_name)
    if path.suffix == SUFFIX or path.exists():
        if not path.is_file():
            raise WeightsError(f"{path}: no such weights file")
        return path
    models = available()
    name = str(path_or_name)
    for candidate in (name, f"a2k-{name}"):
        if candidate in models:
            return models[candidate]
    known = ", ".join(models) or "none"
    raise WeightsError(f"{name}: unknown model (available: {known})")


def read_metadata(path: str | Path) -> dict[str, str]:
    path = resolve(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None


def describe(meta: dict[str, str]) -> str:
    """How a weights file was made, in one line, from its metadata."""

    def parsed(key: str) -> dict:
        try:
            value = json.loads(meta.get(key, "{}"))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {"note": value}

    made, config = parsed("training"), parsed("config")
    if made:
        start = f" from {Path(config['init']).parent.name}" if config.get("init") else ""
        hours = f", {made['train_hours']:.1f} h" if "train_hours" in made else ""
        code = f", code {made['code_revision']}" if "code_revision" in made else ""
        steps = made.get("steps", "?")
        return f"trained {steps} steps{start} on {made.get('device', '?')}{hours}{code}"
    provenance = parsed("provenance")
    if provenance:
        return ", ".join(f"{v}" for v in provenance.values())
    return "no record"


def load(path_or_name: str | Path = DEFAULT_MODEL) -> A2KNet:
    """Build the network a weights file describes and load it, checking every tensor."""
    path = resolve(path_or_name)
    meta = read_metadata(path)
    if meta.get("format_version") not in FORMAT_VERSIONS:
        raise WeightsError(f"{path}: unsupported format version {meta.get('format_version')!r}")
    try:
        preset = Preset(
            tuple(json.loads(meta["widths"])),
            tuple(json.loads(meta["blocks"])),
            meta.get("upsample", "nearest"),  # files from before the option: the paper's
            grids_per_level(json.loads(meta.get("block_grids", "1")), 3),
            meta.get("merge", "nearest"),
        )
        if not all(isinstance(v, int) and v > 0 for v in preset.widths + preset.blocks):
            raise ValueError("widths and blocks must be positive integers")
        with torch.device("meta"):  # shapes only: nothing is allocated before the file agrees,
            net = A2KNet(preset)  # then the file's tensors become its parameters
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        reason = first_line(exc)
        raise WeightsError(f"{path}: bad model description in metadata ({reason})") from None
    with safe_open(str(path), framework="pt") as f:
        check_state(net.state_dict(), {k: f.get_slice(k).get_shape() for k in f.keys()}, path)
        state = {k: f.get_tensor(k) for k in f.keys()}
    net.load_state_dict(state, assign=True)
    net.meta = meta
    return net.eval()


def check_state(
    expected: Mapping[str, Tensor], found: Mapping[str, Tensor | list[int]], source: Path | str
) -> None:
    """Raise a one-line WeightsError for the first missing, unexpected or misshapen tensor
    (`found` may hold tensors or just their shapes)."""
    for key, tensor in expected.items():
        if key not in found:
            raise WeightsError(f"{source}: missing tensor {key!r}")
        shape = tuple(getattr(found[key], "shape", found[key]))
        if shape != tuple(tensor.shape):
            raise WeightsError(
                f"{source}: tensor {key!r} has shape {shape}, expected {tuple(tensor.shape)}"
            )
    for key in found:
        if key not in expected:
            raise WeightsError(f"{source}: unexpected tensor {key!r}")


def load_encoder_state(path: str | Path) -> dict[str, Tensor]:
    """Encoder tensors (conv0 … conv51) from a full model file, a model name, or a plain
    encoder file such as the distillation output or the teacher (its `*_aux` heads dropped)."""
    path = resolve(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: not a readable safetensors file ({exc})") from None
    if any(k.startswith("encoder.") for k in state):
        return {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    return {k: v for k, v in state.items() if "_aux" not in k}


ENCODER_WIDTH_KEYS = ("conv11", "conv21", "conv31", "conv41", "conv51")  # first conv per stage


def encoder_from_state(state: dict[str, Tensor]) -> Encoder:
    """A frozen encoder whose widths are read off the tensors (lite, paper, teacher)."""
    try:
        widths = tuple(int(state[f"{key}.weight"].shape[0]) for key in ENCODER_WIDTH_KEYS)
    except KeyError as exc:
        raise WeightsError(f"not an encoder: missing tensor {exc.args[0]!r}") from None
    encoder = Encoder(widths)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"encoder tensors do not fit: {first_line(exc)}") from None
    return encoder.eval().requires_grad_(False)


def vgg_encoder_state(vgg: str | Path) -> dict[str, Tensor]:
    """Encoder tensors from the authors' `vgg_normalised.pth` (paper widths)."""
    vgg = Path(vgg)
    vgg_state = torch_load_state(vgg)
    state: dict[str, Tensor] = {}
    for name, index in OFFICIAL_VGG_INDEX.items():
        for kind in ("weight", "bias"):
            key = f"{index}.{kind}"
            if key not in vgg_state:
                raise WeightsError(f"{vgg}: missing tensor {key!r} (not a vgg_normalised file?)")
            state[f"{name}.{kind}"] = vgg_state[key]
    return state


# Official `vgg_normalised.pth` nn.Sequential indices of the encoder convs we use.
OFFICIAL_VGG_INDEX = {
    "conv0": 0, "conv11": 2, "conv12": 5, "conv21": 9, "conv22": 12,
    "conv31": 16, "conv32": 19, "conv33": 22, "conv34": 25,
    "conv41": 29, "conv42": 32, "conv43": 35, "conv44": 38, "conv51": 42,
}  # fmt: skip
OFFICIAL_FILES = {
    "a2k": "latest_net_A2K.pth",
    "transform": "latest_net_transform.pth",
    "decoder": "latest_net_decoder.pth",
}


def load_checkpoint(path: str | Path) -> Mapping[str, Any]:
    """The only place a pickle is read (official checkpoints, training checkpoints), and only
    with weights_only=True: tensors and plain containers, never code from the file."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad or truncated pickles
        raise WeightsError(f"{path}: cannot read checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path}: expected a dict, found {type(state).__name__}")
    return state


def torch_load_state(path: Path) -> dict[str, Tensor]:
    return {k.removeprefix("module."): v for k, v in load_checkpoint(path).items()}


def official_state(vgg: Path, checkpoints: Path) -> dict[str, Tensor]:
    """Our state-dict keys from the authors' VGG file and their three checkpoint files."""
    state = {f"encoder.{k}": v for k, v in vgg_encoder_state(vgg).items()}
    for prefix, filename in OFFICIAL_FILES.items():
        path = checkpoints / filename
        if not path.is_file():
            raise WeightsError(f"{path}: missing (expected the authors' {filename})")
        state |= {f"{prefix}.{k}": v for k, v in torch_load_state(path).items()}
    return state


def import_official(vgg: str | Path, checkpoints: str | Path, out: str | Path) -> Path:
    """Convert the authors' paper-preset files into one weights file of ours."""
    vgg, checkpoints = Path(vgg), Path(checkpoints)
    net = A2KNet.from_preset("paper")
    state = official_state(vgg, checkpoints)
    check_state(net.state_dict(), state, checkpoints)
    net.load_state_dict(state)
    provenance = {
        "source": "official StyA2K checkpoints",
        "vgg": vgg.name,
        "checkpoints": str(checkpoints),
    }
    return save(net, out, preset="paper", provenance=provenance)


__all__ = [
    "WeightsError",
    "available",
    "import_official",
    "load",
    "load_encoder_state",
    "read_metadata",
    "save",
    "vgg_encoder_state",
]
