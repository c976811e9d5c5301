"""`a2k info`: version, torch, the device that `auto` picks, and the available models."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from a2k_cli import __version__
from a2k_cli.cli.app import app, console, one_line, plain


@app.command()
def info(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show versions, the compute device and the models a2k can use.

    Example: `a2k info --json`.
    """
    import torch

    from a2k_cli.device import auto_precision, native_bf16, pick_device
    from a2k_cli.weights import WeightsError, available, read_metadata

    device = pick_device("auto")
    models = {}
    for name, path in available().items():
        try:
            preset = read_metadata(path).get("preset", "?")
        except WeightsError as exc:  # listed, not fatal: the others are still usable
            preset = f"unreadable ({one_line(exc)})"
        models[name] = {"path": str(path), "preset": preset}
    report = {
        "a2k": __version__,
        "torch": torch.__version__,
        "device": str(device),
        "precision": dict(zip(("auto", "why"), auto_precision(device))),
        "cpu_bf16": native_bf16(),
        "threads": torch.get_num_threads(),
        "models": models,
    }
    if as_json:
        console.print_json(json.dumps(report))
        return
    console.print(f"a2k {__version__} · torch {torch.__version__} · device [bold]{device}[/]")
    precision = report["precision"]
    console.print(f"precision auto: {precision['auto']} ({precision['why']})", highlight=False)
    table = Table("model", "preset", "file", title="Available models")
    for name, m in models.items():
        table.add_row(plain(name), plain(m["preset"]), plain(m["path"]))
    console.print(table)
