"""Atomic file output: write beside the target, then rename over it in one step."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` on success.

    An exception (or Ctrl-C) inside the block removes the temporary file, so a reader never
    sees a half-written output. The suffix is kept so writers that pick a format from the
    name (PIL, ffmpeg) still do.
    """
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        # mkstemp makes 0600 (and some writers replace the file): give the usual permissions
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
