"""Where weights live: bundled with the package, and the user's own folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def bundled_weights_dir() -> Path:
    """`a2k_cli/_bundled` in an installed wheel; the repository's `weights/` in a checkout."""
    installed = PACKAGE / "_bundled"
    return installed if installed.is_dir() else PACKAGE.parent / "weights"


def user_weights_dir() -> Path:
    """Imported and trained models; A2K_HOME overrides the platform's data folder."""
    if home := os.environ.get("A2K_HOME"):
        return Path(home) / "weights"
    from platformdirs import user_data_dir

    return Path(user_data_dir("a2k", appauthor=False)) / "weights"


def user_styles_dir() -> Path:
    """The user's own named styles (image files; an optional styles.json gives titles)."""
    if home := os.environ.get("A2K_HOME"):
        return Path(home) / "styles"
    from platformdirs import user_data_dir

    return Path(user_data_dir("a2k", appauthor=False)) / "styles"


def style_cache_dir() -> Path:
    """Encoded styles kept between runs (safe to delete)."""
    if home := os.environ.get("A2K_HOME"):
        return Path(home) / "cache" / "styles"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("a2k", appauthor=False)) / "styles"
