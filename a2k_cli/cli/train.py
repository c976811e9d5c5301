"""`a2k train` and `a2k distill`: long jobs with a live progress bar and clean Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from a2k_cli.cli import options
from a2k_cli.cli.app import app, console, err_console, fail, one_line, plain


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} it/s"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[losses]}"),
        console=err_console,  # stdout stays for results (--json)
    )


def format_losses(record: dict[str, float]) -> str:
    keys = ("loss", "global", "attn", "content", "distribution", "identity_pixel", "lattice")
    return " ".join(f"{k} {record[k]:.3g}" for k in keys if k in record)


# what a resumed run may change: its length and where it runs; the rest is the run's recipe
CHANGEABLE_ON_RESUME = {"resume", "steps", "device", "workers", "as_json"}


def given_options(ctx: typer.Context) -> list[str]:
    """The parameters the user typed on the command line (not defaults)."""
    return [n for n in ctx.params if ctx.get_parameter_source(n).name == "COMMANDLINE"]


@app.command()
def train(
    ctx: typer.Context,
    data: Path = typer.Option(None, help="Folder of content photos (searched recursively)."),
    styles: Path = typer.Option(None, help="Folder of style artworks (searched recursively)."),
    out: Path = typer.Option(Path("runs/a2k"), "--out", "-o", help="Run directory."),
    resume: Path = typer.Option(None, help="Continue the run in this directory exactly."),
    preset: str = typer.Option(
        "lite", help="lite (¼ width, CPU friendly) or paper (VGG-19 widths)."
    ),
    encoder: str = typer.Option(
        None, help="lite: encoder source (model name or file) \\[default: a2k-lite]."
    ),
    vgg: Path = typer.Option(None, help="paper: the authors' vgg_normalised.pth."),
    init: str = typer.Option(None, help="Start from these weights (model name or file)."),
    loss_network: str = typer.Option(
        None,
        help="Measure the losses with this encoder file (e.g. the distillation teacher) "
        "instead of the model's own encoder.",
    ),
    steps: int = typer.Option(
        None, min=1, help="Total steps \\[default: 20000]; with --resume, changes the run's length."
    ),
    batch: int = typer.Option(8, min=1, help="Images per step (per process)."),
    lr: float = typer.Option(
        2e-4, help="Adam learning rate (constant for 40 %, then x0.3 per 20 %)."
    ),
    crop: int = typer.Option(256, min=64, help="Training crop side (multiple of 64)."),
    load_size: int = typer.Option(512, "--load-size", help="Shorter side before cropping."),
    lambda_global: float = typer.Option(10.0, help="Weight of the global (mean/std) style loss."),
    lambda_attn: float = typer.Option(1.25, help="Weight of the attention-weighted style loss."),
    lambda_content: float = typer.Option(0.0, help="Weight of the content loss (off by default)."),
    lambda_tv: float = typer.Option(
        0.0,
        help="Weight of the output's total variation, for smoother outputs (not in the paper).",
    ),
    lambda_distribution: float = typer.Option(
        0.0, help="Weight of the sorted match of relu1_1/relu2_1 distributions (colour, strokes)."
    ),
    lambda_identity_pixel: float = typer.Option(
        0.0, help="Weight of the identity loss on pixels (SANet's: 50)."
    ),
    lambda_identity_feature: float = typer.Option(
        0.0, help="Weight of the identity loss on features (SANet's: 1)."
    ),
    lambda_lattice: float = typer.Option(
        0.0, help="Weight of the penalty on the 2-px lattice of the last upsampling."
    ),
    lambda_colour: float = typer.Option(
        0.0, help="Weight of the sliced match of the output's Lab colours to the style's."
    ),
    upsample: str = typer.Option(
        None,
        help="The decoder's 2x upsampling: nearest (the paper's) or bilinear (no 2-px lattice) "
        "\\[default: the --init model's, else nearest].",
    ),
    global_levels: int = typer.Option(
        4, min=1, max=5, help="Global style loss over relu1_1 … reluN_1 (the paper's N: 4)."
    ),
    warmup: int = typer.Option(
        0, min=0, help="Steps of fading feature reconstruction first (0 = the paper's recipe)."
    ),
    lambda_recon: float = typer.Option(10.0, help="Warm-up reconstruction weight at step 0."),
    seed: int = typer.Option(0, help="Random seed (data order, crops, init)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1, mps."),
    precision: str = typer.Option(
        "auto", help="auto (fp16 autocast on CUDA, else fp32), fp32, bf16 (CPUs with AVX512-BF16)."
    ),
    workers: int = typer.Option(1, min=0, help="Background data-loading processes."),
    save_every: int = typer.Option(500, min=1, help="Checkpoint interval (steps)."),
    preview_every: int = typer.Option(500, min=1, help="Preview image and validation interval."),
    as_json: bool = options.AS_JSON,
) -> None:
    """Train A2K modules and decoder on two image folders (torchrun for several GPUs).

    Example: `a2k train --data photos/ --styles paintings/ --out runs/mine`; continue it
    with `a2k train --resume runs/mine`.
    """

    from a2k_cli.allocator import keep_freed_memory
    from a2k_cli.train.trainer import TrainConfig, Trainer, resume_config

    keep_freed_memory()
    if resume:
        fixed = [name for name in given_options(ctx) if name not in CHANGEABLE_ON_RESUME]
        if fixed:
            option = "--" + fixed[0].replace("_", "-")
            fail(f"--resume continues a run as it was set up; {option} cannot change", code=2)
        try:
            cfg = resume_config(resume, steps)
        except ValueError as exc:
            fail(one_line(exc))
        cfg.device, cfg.workers = device, workers
    else:
        if data is None or styles is None:
            fail("give --data and --styles (or --resume RUN_DIR)")
        for folder in (data, styles):
            if not folder.is_dir():
                fail(f"{folder}: not a folder")
        if upsample not in (None, "nearest", "bilinear"):
            fail(f"--upsample must be nearest or bilinear, got {upsample}", code=2)
        if crop % 64:
            fail(f"--crop must be a multiple of 64, got {crop}")
        if (out / "checkpoint.pt").exists():
            fail(f"{out} already holds a run; use --resume {out} or another --out")
        cfg = TrainConfig(
            data=str(data), styles=str(styles), out=str(out), preset=preset, encoder=encoder,
            vgg=str(vgg) if vgg else None, init=init, loss_network=loss_network,
            steps=steps or 20000, batch=batch, lr=lr,
            crop=crop, load=load_size, lambda_global=lambda_global, lambda_attn=lambda_attn,
            lambda_content=lambda_content, lambda_tv=lambda_tv, global_levels=global_levels,
            lambda_distribution=lambda_distribution, lambda_identity_pixel=lambda_identity_pixel,
            lambda_identity_feature=lambda_identity_feature, lambda_lattice=lambda_lattice,
            lambda_colour=lambda_colour, upsample=upsample,
            warmup=warmup, lambda_recon=lambda_recon, seed=seed, device=device, workers=workers,
            precision=precision,
            save_every=save_every, preview_every=preview_every,
        )  # fmt: skip
    try:
        trainer = Trainer(cfg, resume=resume is not None)
    except (ValueError, OSError) as exc:
        fail(one_line(exc))
    try:
        summary = run_with_progress(trainer)
    except OSError as exc:  # a full disk or a vanished run folder: the last checkpoint stands
        fail(f"{cfg.out}: cannot write the run ({exc.strerror or one_line(exc)})")
    finally:
        trainer.close()
    if trainer.ddp.main:
        if as_json:
            console.print_json(json.dumps(summary, default=str))
        if summary["interrupted"]:
            console.print(
                f"interrupted at step {summary['steps']}; resume with --resume {plain(cfg.out)}"
            )
            raise typer.Exit(130)
        ranks = f", {summary['ranks']} processes in sync" if summary["ranks"] > 1 else ""
        model = plain(summary["model"])
        if not as_json:
            console.print(f"done: {summary['steps']} steps{ranks}; model written to {model}")


def run_with_progress(trainer) -> dict:
    if not trainer.ddp.main:
        return trainer.run()
    with progress_bar() as bar:
        task = bar.add_task(
            "train", total=trainer.cfg.steps, completed=trainer.step, rate=0.0, losses=""
        )

        def on_step(step: int, record: dict[str, float]) -> None:
            bar.update(task, completed=step, rate=record["it_s"], losses=format_losses(record))

        return trainer.run(on_step)


@app.command()
def distill(
    teacher: Path = typer.Option(..., help="Teacher encoder (safetensors, lite widths)."),
    data: list[Path] = typer.Option(..., help="Image folder(s) to crop from; repeat the option."),
    out: Path = typer.Option(
        Path("runs/distill-lite"),
        "--out",
        "-o",
        help="Run directory (resumes if it holds a checkpoint).",
    ),
    steps: int = typer.Option(3000, min=1, help="Total steps (a resumed run continues to it)."),
    batch: int = typer.Option(8, min=1, help="Crops per step."),
    crop: int = typer.Option(128, min=32, help="Random crop side, pixels."),
    load_size: int = typer.Option(256, "--load-size", help="Shorter side before cropping."),
    lr: float = typer.Option(1e-3, help="Adam learning rate (decays over the run)."),
    seed: int = typer.Option(0, help="Random seed (data order, crops)."),
    init: Path | None = typer.Option(
        None, help="Start from this encoder (e.g. an earlier run's) with a fresh lr schedule."
    ),
    as_json: bool = options.AS_JSON,
) -> None:
    """Distil a lite encoder from a teacher's relu*_1 features (writes OUT/encoder.safetensors).

    Example: `a2k distill --teacher teacher.safetensors --data photos/ --data paintings/`.
    """

    from a2k_cli.allocator import keep_freed_memory
    from a2k_cli.train.distill import DistillConfig
    from a2k_cli.train.distill import distill as run

    keep_freed_memory()
    if not teacher.is_file():
        fail(f"{teacher}: no such file")
    cfg = DistillConfig(
        teacher=str(teacher), data=tuple(map(str, data)), out=str(out), steps=steps, batch=batch,
        crop=crop, load=load_size, lr=lr, seed=seed, init=str(init) if init else None,
    )  # fmt: skip
    with progress_bar() as bar:
        task = bar.add_task("distill", total=steps, rate=0.0, losses="")

        def on_step(step: int, record: dict) -> None:
            bar.update(
                task, completed=step, rate=record["it_s"], losses=f"rel err {record['loss']:.3f}"
            )

        try:
            summary = run(cfg, on_step)
        except (ValueError, OSError) as exc:  # unreadable teacher, --init, run files or data
            fail(one_line(exc))
    if as_json:
        console.print_json(json.dumps(summary, default=str))
        return
    console.print("validation relative error per level (‖student − teacher‖² / ‖teacher‖²):")
    console.print_json(json.dumps(summary["val_relative_error"]))
    console.print(f"encoder written to {plain(Path(cfg.out) / 'encoder.safetensors')}")
