"""`a2k styles`: the named styles (built-in paintings and the user's own)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from a2k_cli.cli.app import app, console, plain


@app.command()
def styles(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the styles usable by name.

    Example: `a2k stylize photo.jpg --style starry-night`.

    Add your own: put images in the user styles folder shown below; the file name (without
    extension) is the style's name, and a user style replaces a built-in one of that name.
    """
    from a2k_cli.paths import user_styles_dir
    from a2k_cli.styles import named_styles

    found = named_styles()
    if as_json:
        rows = [
            {**vars(s), "path": str(s.path), "source": "built-in" if s.builtin else "user"}
            for s in found.values()
        ]
        console.print_json(json.dumps({"styles": rows, "user_folder": str(user_styles_dir())}))
        return
    table = Table()
    table.add_column("name", no_wrap=True)
    for heading in ("title", "artist", "date", "source"):
        table.add_column(heading)
    for s in found.values():
        source = "built-in" if s.builtin else "user"
        table.add_row(plain(s.name), plain(s.title), plain(s.artist), plain(s.date), source)
    console.print(table)
    console.print(f"your own styles: {plain(user_styles_dir())}", highlight=False)
