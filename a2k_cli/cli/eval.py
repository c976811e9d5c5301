"""`a2k eval`: network-free measures and the paper's losses for a folder of stylized outputs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Column, Table

from a2k_cli.cli.app import app, console, err_console, fail, one_line, plain


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
    device: str = typer.Option("auto", help="auto, cpu, cuda or mps (for the loss network)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Per pair and mean: palette and texture distance to the style (lower is closer), edge
    correlation with the content (1: structure kept), 2-px lattice ratio (1: none), and the
    paper's content and style losses measured with a loss network.

    Example: `a2k eval photos/ paintings/ out/` (out/ named as `a2k grid` names pairs).
    """
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
        fail(one_line(exc))
    scores, failed = ev.evaluate(triples, network, size)
    result = ev.report(scores, unmatched, failed, label, size)
    if as_json:
        console.print_json(json.dumps(result))
    else:
        show(result)
    if failed:
        raise typer.Exit(1)


COLUMNS = {
    "palette": ("palette ↓", ".2f"),
    "texture": ("texture ↓", ".3f"),
    "edge_correlation": ("edges ↑", ".3f"),
    "lattice_2": ("lattice", ".3f"),
    "content_loss": ("content loss", ".4f"),
    "style_loss": ("style loss", ".4f"),
}


def show(result: dict) -> None:
    title = (
        f"size {result['size']}; lattice: 2-px lattice ratio (1: none); "
        f"losses measured with {plain(result['loss_network'])}"
    )
    table = Table(Column("output", no_wrap=True), *(label for label, _ in COLUMNS.values()))
    table.caption = title
    for pair in result["pairs"]:
        cells = (format(pair[key], spec) for key, (_, spec) in COLUMNS.items())
        table.add_row(plain(Path(pair["output"]).name), *cells)
    mean = result["mean"]
    if mean["count"]:
        table.add_section()
        cells = (format(mean[key], spec) for key, (_, spec) in COLUMNS.items())
        table.add_row(f"mean of {mean['count']}", *cells)
    console.print(table)
    for path in result["unmatched"]:
        err_console.print(
            f"[yellow]unmatched:[/] {plain(path)} (no single content/style pair has this name)"
        )
    for item in result["failed"]:
        err_console.print(f"[bold red]failed:[/] {plain(item['output'])}: {plain(item['error'])}")
