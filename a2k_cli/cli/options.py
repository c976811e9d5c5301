"""Options that mean the same in every stylizing command (stylize, grid, video)."""

from __future__ import annotations

import typer

STYLE_SIZE = typer.Option(512, min=16, help="Longer side the style is encoded at.")
# checked by the commands themselves, so that a bad value is a one-line error
ALPHA = typer.Option(1.0, help="Style strength, 0…1: 0 keeps the content, 1 is fully stylized.")
PRESERVE_COLOR = typer.Option(
    False, "--preserve-color", help="Keep the content's own colours, take the style's texture."
)
MODEL = typer.Option("lite", help="Bundled model name or weights file.")
DEVICE = typer.Option("auto", help="auto, cpu, cuda or mps.")
PRECISION = typer.Option(
    "auto",
    help="auto, fp32, bf16 or fp16: the compute precision (`a2k info` says what auto picks).",
)
QUALITY = typer.Option(92, help="JPEG/WebP quality, 1-100.")
OVERWRITE = typer.Option(False, "--overwrite", help="Replace existing outputs.")
UPSCALE = typer.Option(
    False, "--upscale", help="Enlarge images smaller than --size (by default never enlarged)."
)
AS_JSON = typer.Option(False, "--json", help="Print a JSON summary.")
