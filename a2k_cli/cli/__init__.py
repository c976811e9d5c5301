"""The `a2k` command line: one small module per command, registered on one Typer app.

Command modules import torch (and the engine) inside their functions only, so that
`a2k --help` and `a2k --version` never pay for it.
"""

from __future__ import annotations

from a2k_cli.cli import eval as _eval  # noqa: F401  (registers commands)
from a2k_cli.cli import grid as _grid  # noqa: F401
from a2k_cli.cli import info as _info  # noqa: F401
from a2k_cli.cli import stylize as _stylize  # noqa: F401
from a2k_cli.cli import train as _train  # noqa: F401
from a2k_cli.cli import video as _video  # noqa: F401
from a2k_cli.cli import weights as _weights  # noqa: F401
from a2k_cli.cli.app import app


def main() -> None:
    app()
