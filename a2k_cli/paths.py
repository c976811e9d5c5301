"""Where things live: weights and paintings bundled with the package, the user's own
models and styles, and the style cache. A2K_HOME overrides the platform's folders."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def bundled_weights_dir() -> Path:
    """`a2k_cli/_bundled` in an installed wheel; the repository's `weights/` in a checkout."""
    installed = PACKAGE / "_bundled"
    return installed if installed.is_dir() else PACKAGE.parent / "weights"


def _user_dir(name: str, cache: bool = False) -> Path:
    """A2K_HOME/[cache/]name, else the platform's data (or cache) folder for a2k / name."""
    if home := os.environ.get("A2K_HOME"):
        return Path(home) / ("cache" if cache else "") / name
    from platformdirs import user_cache_dir, user_data_dir

    return Path((user_cache_dir if cache else user_data_dir)("a2k", appauthor=False)) / name


def user_weights_dir() -> Path:
    """Imported and trained models."""
    return _user_dir("weights")


def user_styles_dir() -> Path:
    """The user's own named styles (image files; an optional styles.json gives titles)."""
    return _user_dir("styles")


def style_cache_dir() -> Path:
    """Encoded styles kept between runs (safe to delete)."""
    return _user_dir("styles", cache=True)
