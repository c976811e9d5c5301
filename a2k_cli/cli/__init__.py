"""The `a2k` command line: one small module per command, registered on one Typer app.

Command modules import torch (and the engine) inside their functions only, so that
`a2k --help` and `a2k --version` never pay for it.
"""

from __future__ import annotations

import os
import sys

from a2k_cli.cli import eval as _eval  # noqa: F401  (registers commands)
from a2k_cli.cli import grid as _grid  # noqa: F401
from a2k_cli.cli import info as _info  # noqa: F401
from a2k_cli.cli import sheet as _sheet  # noqa: F401
from a2k_cli.cli import styles as _styles  # noqa: F401
from a2k_cli.cli import stylize as _stylize  # noqa: F401
from a2k_cli.cli import train as _train  # noqa: F401
from a2k_cli.cli import video as _video  # noqa: F401
from a2k_cli.cli import weights as _weights  # noqa: F401
from a2k_cli.cli.app import app


def main() -> None:
    """Run a command; once torch is loaded, end the process without the interpreter's
    teardown.

    Unloading torch (its modules and thread pools) takes ~0.4 s on a 2-core machine, more
    than the rest of a one-image run outside the network. By the time a command returns,
    its outputs are written atomically and closed, so only the streams need flushing.
    """
    try:
        app()
        code = 0
    except SystemExit as exc:
        code = exc.code
    if "torch" not in sys.modules or not isinstance(code, int | None):
        sys.exit(code)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
