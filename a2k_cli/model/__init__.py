"""Pure network modules: no file or device handling lives here."""

from a2k_cli.model.attention import A2K, StyleKeys, grids_per_level, mvn
from a2k_cli.model.encoder import Encoder
from a2k_cli.model.network import MULTIPLE, PRESETS, A2KNet, Preset, StyleState

__all__ = [
    "A2K",
    "A2KNet",
    "Encoder",
    "MULTIPLE",
    "PRESETS",
    "Preset",
    "StyleKeys",
    "StyleState",
    "grids_per_level",
    "mvn",
]
