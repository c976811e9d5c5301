"""Atomic file output: write beside the target, then rename over it in one step."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; move it onto `target` on success.

    An exception (or Ctrl-C) inside the block removes the temporary file, so a reader never
    sees a half-written output. The suffix is kept so writers that pick a format from the
    name (PIL, ffmpeg) still do. With `replace=False` an existing target is never replaced,
    even by a process racing this one: the file is linked into place, which fails with
    FileExistsError if the name is taken (checking first and renaming after is not atomic).
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
        if replace:
            os.replace(tmp, target)
        else:
            _link_new(Path(tmp), target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _link_new(tmp: Path, target: Path) -> None:
    """Give `tmp`'s file the name `target` only if that name is free (FileExistsError)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: claim the name, then fill it
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(tmp, target)
