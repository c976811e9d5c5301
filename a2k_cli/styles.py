"""Named styles: the paintings bundled with a2k and the user's own folder of them.

Anywhere a style image is expected, a name works too: `--style starry-night`. A path that
exists always wins; otherwise the name is looked up in the user's styles folder first (so a
user can replace a built-in), then among the built-ins. Names are file stems.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from a2k_cli.errors import A2KError
from a2k_cli.paths import PACKAGE, user_styles_dir

BUILTIN_DIR = PACKAGE / "paintings"
CATALOGUE = "styles.json"  # {name: {"title", "artist", "date"}}, beside the images
ALL_BUILTIN = "builtin"  # where a folder of styles is expected: every built-in style


class StyleNotFoundError(A2KError, FileNotFoundError):
    """Neither a file nor a known style name."""


@dataclass(frozen=True)
class NamedStyle:
    name: str
    path: Path
    title: str
    artist: str
    date: str
    builtin: bool


def _folder_styles(folder: Path, builtin: bool) -> dict[str, NamedStyle]:
    from a2k_cli.imaging import image_files

    if not folder.is_dir():
        return {}
    try:
        catalogue = json.loads((folder / CATALOGUE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        catalogue = {}
    styles = {}
    for path in image_files(folder):
        about = catalogue.get(path.stem, {}) if isinstance(catalogue, dict) else {}
        about = about if isinstance(about, dict) else {}
        styles[path.stem] = NamedStyle(
            path.stem,
            path,
            str(about.get("title", path.stem)),
            str(about.get("artist", "")),
            str(about.get("date", "")),
            builtin,
        )
    return styles


def builtin_styles() -> dict[str, NamedStyle]:
    return _folder_styles(BUILTIN_DIR, builtin=True)


def named_styles() -> dict[str, NamedStyle]:
    """Every named style, user styles replacing built-ins of the same name."""
    return builtin_styles() | _folder_styles(user_styles_dir(), builtin=False)


def resolve_style(spec: str | Path) -> Path:
    """An existing file as given, else the named style's file."""
    path = Path(spec)
    if path.exists():
        return path
    found = named_styles().get(str(spec))
    if found is None:
        raise StyleNotFoundError(
            f"{spec}: no such file or style name (`a2k styles` lists the named styles)"
        )
    return found.path


def resolve_styles_folder(spec: Path) -> list[Path]:
    """A folder's images, one image or style name, or every built-in style for `builtin`."""
    from a2k_cli.imaging import image_files

    if spec.exists():
        return image_files(spec)
    if str(spec) == ALL_BUILTIN:
        return [s.path for s in builtin_styles().values()]
    return [resolve_style(spec)]
