"""`a2k eval`: the paper's content and style losses for a folder of stylized outputs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from a2k_cli.cli.app import app, console, err_console, fail


@app.command("eval")
def eval_command(
    contents: Path = typer.Argument(..., help="Content image or folder the outputs came from."),
    styles: Path = typer.Argument(..., help="Style image or folder the outputs came from."),
    outputs: Path = typer.Argument(
        ..., help="Stylized image or folder; names `<content-stem>_<style-stem>.<ext>`."
    ),
    model: str = typer.Option("lite", help="Measure with this model's encoder (name or file)."),
    vgg: Path = typer.Option(
        None, help="Measure with the authors' vgg_normalised.pth (comparable with the paper)."
    ),
    encoder: Path = typer.Option(
        None, help="Measure with a plain encoder file (keys conv0 … conv51, e.g. a teacher)."
    ),
    size: int = typer.Option(
        512, min=0, help="Evaluate outputs and styles at this longer side (0: the output's size)."
    ),
    device: str = typer.Option("cpu", help="cpu, cuda, mps or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Content loss (relu4_1 + relu5_1) and style loss (relu1_1 … relu5_1) per pair and mean."""
    from a2k_cli import evaluate as ev
    from a2k_cli.device import pick_device
    from a2k_cli.imaging import image_files
    from a2k_cli.weights import WeightsError

    for folder in (contents, styles, outputs):
        if not folder.exists():
            fail(f"{folder}: no such file or folder")
    if vgg is not None and encoder is not None:
        fail("give --vgg or --encoder, not both")
    triples, unmatched = ev.match_outputs(
        image_files(contents), image_files(styles), image_files(outputs)
    )
    if not triples:
        fail(f"{outputs}: no output named <content-stem>_<style-stem> for these contents/styles")
    try:
        network, label = ev.loss_network(model, vgg, encoder)
        network.to(pick_device(device))
    except (WeightsError, ValueError, OSError) as exc:
        fail(str(exc).splitlines()[0])
    scores, failed = ev.evaluate(triples, network, size)
    result = ev.report(scores, unmatched, failed, label, size)
    if as_json:
        console.print_json(json.dumps(result))
    else:
        show(result)
    if failed:
        raise typer.Exit(1)


def show(result: dict) -> None:
    table = Table(
        "output", "content loss", "style loss", title=f"Loss network: {result['loss_network']}"
    )
    for pair in result["pairs"]:
        table.add_row(
            Path(pair["output"]).name, f"{pair['content_loss']:.4f}", f"{pair['style_loss']:.4f}"
        )
    mean = result["mean"]
    if mean["count"]:
        table.add_section()
        table.add_row(
            f"mean of {mean['count']}", f"{mean['content_loss']:.4f}", f"{mean['style_loss']:.4f}"
        )
    console.print(table)
    for path in result["unmatched"]:
        err_console.print(
            f"[yellow]unmatched:[/] {path} (no single content/style pair has this name)"
        )
    for item in result["failed"]:
        err_console.print(f"[bold red]failed:[/] {item['output']}: {item['error']}")
