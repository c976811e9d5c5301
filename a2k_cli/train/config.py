"""The settings of `a2k train` and `a2k distill`, each written once with its help text.

A field's metadata is what its command-line option shows and checks (help, flags, bounds, a
rule); `a2k_cli.cli.train` builds both commands' options from these classes, so this module
stays free of torch (`a2k --help` must not load it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from a2k_cli.atomic import atomic_path
from a2k_cli.errors import A2KError, first_line


class SettingsError(A2KError, ValueError):
    """A setting with a value its rule refuses, or one a resumed run cannot change."""


class RunError(A2KError, ValueError):
    """A run directory that cannot be started or resumed; the message names it."""


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    flags: tuple[str, ...] = (),
    metavar: str | None = None,
    show_default: str | None = None,
    min: int | None = None,
    max: int | None = None,
    rule: tuple[Callable[[Any], bool], str] | None = None,
    parse: tuple[Callable[[str], Any], str] | None = None,
    resumable: bool = False,
    cli: bool = True,
) -> Any:
    """A dataclass field with what its option needs: `flags` (default `--field-name`),
    `rule` (test, "what it must be"), `parse` (text to value, the text default) for values
    typed as text, `resumable` for the few a resumed run may change, `cli=False` for fields
    the command line does not set."""
    meta = {
        "help": help,
        "flags": flags,
        "metavar": metavar,
        "show_default": show_default,
        "min": min,
        "max": max,
        "rule": rule,
        "parse": parse,
        "resumable": resumable,
        "cli": cli,
    }
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# The network's choices (`GRID_CHOICES`, `UPSAMPLE_MODES`, `MERGE_MODES`), spelled out so
# that `a2k train --help` needs no torch; a test keeps them equal to the model's.
BLOCK_GRIDS = (1, 2, 4)
UPSAMPLES = ("nearest", "bilinear", "bilinear-last", "bilinear-last-two")
MERGES = ("nearest", "bilinear")


def one_of(choices: tuple[Any, ...], optional: bool = False) -> tuple[Callable[[Any], bool], str]:
    """A `setting` rule: one of `choices`, or None (the --init model's) when `optional`."""
    names = [str(choice) for choice in choices]
    return (
        lambda value: (optional and value is None) or value in choices,
        f"{', '.join(names[:-1])} or {names[-1]}",
    )


def int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",")]


def grid_counts(levels: int, optional: bool = False) -> tuple[Callable[[Any], bool], str]:
    """A `setting` rule: block grids for all `levels` at once or one count per level."""

    def test(grids: list[int] | int | None) -> bool:
        if grids is None:
            return optional
        grids = [grids] if isinstance(grids, int) else grids
        return len(grids) in (1, levels) and all(g in BLOCK_GRIDS for g in grids)

    choices = ", ".join(map(str, BLOCK_GRIDS))
    return test, f"one or {levels} of {choices}, comma-separated"


def even_periods(periods: list[int]) -> bool:
    return bool(periods) and all(p >= 2 and p % 2 == 0 for p in periods)


def as_text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


@dataclass
class TrainConfig:
    data: str = setting(help="Folder of content photos (searched recursively).", metavar="DIR")
    styles: str = setting(help="Folder of style artworks (searched recursively).", metavar="DIR")
    out: str = setting("runs/a2k", "Run directory.", flags=("--out", "-o"), metavar="DIR")
    preset: str = setting("lite", "lite (¼ width, CPU friendly) or paper (VGG-19 widths).")
    encoder: str | None = setting(
        None, "lite: encoder source (model name or file).", show_default="a2k-lite"
    )
    vgg: str | None = setting(None, "paper: the authors' vgg_normalised.pth.", metavar="FILE")
    init: str | None = setting(None, "Start from these weights (model name or file).")
    loss_network: str | None = setting(
        None,
        "Measure the losses with this encoder file (e.g. the distillation teacher) instead of "
        "the model's own encoder.",
        metavar="FILE",
    )
    steps: int = setting(
        20000, "Total steps; with --resume, the run's new length.", min=1, resumable=True
    )
    batch: int = setting(8, "Images per step (per process).", min=1)
    lr: float = setting(2e-4, "Adam learning rate (constant for 40 %, then x0.3 per 20 %).")
    crop: int = setting(
        256,
        "Training crop side (multiple of 64).",
        min=64,
        rule=(lambda side: side % 64 == 0, "a multiple of 64"),
    )
    load: int = setting(512, "Shorter side before cropping.", flags=("--load-size",))
    lambda_global: float = setting(10.0, "Weight of the global (mean/std) style loss.")
    lambda_attn: float = setting(1.25, "Weight of the attention-weighted style loss.")
    attn_target_grids: list[int] = setting(
        help="Block grids of the parameter-free A2K that makes the attention loss's targets, "
        "at relu2_1 … relu5_1 (one number for all): 1 (the paper's), or 2 or 4 shifted "
        "diagonally by block/n and averaged.",
        factory=lambda: [1],
        parse=(int_list, "1"),
        rule=grid_counts(4),
    )
    lambda_content: float = setting(0.0, "Weight of the content loss (off by default).")
    lambda_tv: float = setting(
        0.0, "Weight of the output's total variation, for smoother outputs (not in the paper)."
    )
    lambda_distribution: float = setting(
        0.0, "Weight of the sorted match of relu1_1/relu2_1 distributions (colour, strokes)."
    )
    lambda_identity_pixel: float = setting(
        0.0, "Weight of the identity loss on pixels (SANet's: 50)."
    )
    lambda_identity_feature: float = setting(
        0.0, "Weight of the identity loss on features (SANet's: 1)."
    )
    lambda_lattice: float = setting(
        0.0, "Weight of the penalty on periodic patterns (see --lattice-periods)."
    )
    lattice_periods: list[int] = setting(
        help="Periods the lattice penalty watches, comma-separated: 2 (the last upsampling), "
        "32 (the attention's block seams).",
        factory=lambda: [2],
        parse=(int_list, "2"),
        rule=(even_periods, "even numbers >= 2"),
    )
    lambda_colour: float = setting(
        0.0, "Weight of the sliced match of the output's Lab colours to the style's."
    )
    lambda_gradient: float = setting(
        0.0, "Weight of the match of the output's lightness steps (1, 2, 4 px) to the style's."
    )
    lambda_stability: float = setting(
        0.0, "Weight of the output's change when faint noise is added to the content."
    )
    stability_flat: float = setting(
        0.0,
        "Limit the stability term to the content's flat areas: the lightness step (0-1) "
        "over which its weight falls off (0.01: sky and walls count, texture does not); "
        "0 = everywhere.",
        rule=(lambda scale: scale >= 0, "0 or more"),
    )
    upsample: str | None = setting(
        None,
        "The decoder's 2x upsamplings: nearest (the paper's), bilinear, bilinear-last (only "
        "the last one bilinear: no 2-px lattice) or bilinear-last-two (no 4-px pattern either).",
        show_default="the --init model's, else nearest",
        rule=one_of(UPSAMPLES, optional=True),
    )
    merge: str | None = setting(
        None,
        "How relu5_1's result is upsampled onto relu4_1's: nearest (the paper's) or "
        "bilinear (no 16-px blocks).",
        show_default="the --init model's, else nearest",
        rule=one_of(MERGES, optional=True),
    )
    block_grids: list[int] | None = setting(
        None,
        "Progressive attention's block grids at relu3_1, relu4_1, relu5_1 (one number for "
        "all): 1 (the paper's), or 2 or 4 grids shifted diagonally by block/n and averaged.",
        show_default="the --init model's, else 1",
        parse=(lambda text: int_list(text) if text else None, ""),
        rule=grid_counts(3, optional=True),
    )
    global_levels: int = setting(
        4, "Global style loss over relu1_1 … reluN_1 (the paper's N: 4).", min=1, max=5
    )
    warmup: int = setting(
        0, "Steps of fading feature reconstruction first (0 = the paper's recipe).", min=0
    )
    lambda_recon: float = setting(10.0, "Warm-up reconstruction weight at step 0.")
    seed: int = setting(0, "Random seed (data order, crops, init).")
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, mps.", resumable=True)
    precision: str = setting(
        "auto", "auto (fp16 autocast on CUDA, else fp32), fp32, bf16 (CPUs with AVX512-BF16)."
    )
    workers: int = setting(1, "Background data-loading processes.", min=0, resumable=True)
    val_percent: int = setting(5, "Share of each folder held out (by file name).", cli=False)
    save_every: int = setting(500, "Checkpoint interval (steps).", min=1)
    preview_every: int = setting(500, "Preview image and validation interval.", min=1)
    previews: int = setting(4, "Held-out pairs in each preview sheet.", cli=False)
    extra: dict = setting(help="Free-form notes kept with the run.", factory=dict, cli=False)

    def __post_init__(self) -> None:
        check(self)
        if max(self.lattice_periods) >= self.crop:  # no boundary of that period in a crop
            raise SettingsError(
                f"--lattice-periods must be smaller than --crop {self.crop}, "
                f"got {as_text(self.lattice_periods)}"
            )


@dataclass
class DistillConfig:
    teacher: str = setting(help="Teacher encoder (safetensors, lite widths).", metavar="FILE")
    data: list[str] = setting(
        help="Image folder(s) to crop from; repeat the option.", metavar="DIR"
    )
    out: str = setting("runs/distill-lite", "Run directory.", flags=("--out", "-o"), metavar="DIR")
    steps: int = setting(
        3000, "Total steps; with --resume, the run's new length.", min=1, resumable=True
    )
    batch: int = setting(8, "Crops per step.", min=1)
    # the shipped encoder's recipe (weights/HISTORY.md section 1)
    crop: int = setting(128, "Random crop side, pixels.", min=32)
    load: int = setting(256, "Shorter side before cropping.", flags=("--load-size",))
    lr: float = setting(1e-3, "Adam learning rate (cosine decay over the run).")
    seed: int = setting(0, "Random seed (data order, crops).")
    val_percent: int = setting(5, "Share of the images held out (by file name).", cli=False)
    save_every: int = setting(250, "Checkpoint interval (steps).", min=1)
    workers: int = setting(1, "Background data-loading processes.", min=0, resumable=True)
    init: str | None = setting(
        None,
        "Start from this encoder (e.g. an earlier run's) with a fresh lr schedule.",
        metavar="FILE",
    )
    device: str = setting("auto", "auto, cpu, cuda, cuda:1, mps.", resumable=True)

    def __post_init__(self) -> None:
        check(self)


Config = TypeVar("Config", TrainConfig, DistillConfig)


def flag(spec: Field) -> str:
    """The option's name as a user types it."""
    return (spec.metadata["flags"] or ("--" + spec.name.replace("_", "-"),))[0]


def check(cfg: TrainConfig | DistillConfig) -> None:
    """SettingsError for the first value its field's rule refuses (run by every config as
    it is made)."""
    for spec in fields(cfg):
        rule, value = spec.metadata["rule"], getattr(cfg, spec.name)
        if rule and not rule[0](value):
            raise SettingsError(f"{flag(spec)} must be {rule[1]}, got {as_text(value)}")


def write_config(cfg: TrainConfig | DistillConfig, run_dir: str | Path) -> None:
    with atomic_path(Path(run_dir) / "config.json") as tmp:
        tmp.write_text(json.dumps(asdict(cfg), indent=2))


def resumable_flags(cls: type[TrainConfig | DistillConfig]) -> list[str]:
    """The options a resumed run may change: its length and where it runs."""
    return [flag(spec) for spec in fields(cls) if spec.metadata["resumable"]]


def read_config(cls: type[Config], run_dir: Path) -> Config:
    """The config.json of the run in `run_dir`, its `out` that directory."""
    config_file = run_dir / "config.json"
    try:
        return replace(cls(**json.loads(config_file.read_text())), out=str(run_dir))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise RunError(f"{config_file}: not a run's config ({first_line(exc)})") from None


def resume_config(cls: type[Config], run_dir: str | Path, typed: Mapping[str, Any]) -> Config:
    """The config of the run in `run_dir` with the `typed` settings; those that differ from
    the run's must be resumable (a SettingsError names the others). Every process of a job
    calls it, so it writes nothing: the resumed run records a new length (`record_length`)."""
    run_dir = Path(run_dir)
    if not (run_dir / "checkpoint.pt").is_file() or not (run_dir / "config.json").is_file():
        raise RunError(f"{run_dir}: no checkpoint.pt/config.json to resume from")
    stored = read_config(cls, run_dir)
    specs = {spec.name: spec for spec in fields(cls)}
    changes = {name: value for name, value in typed.items() if value != getattr(stored, name)}
    fixed = [flag(specs[name]) for name in changes if not specs[name].metadata["resumable"]]
    if fixed:
        raise SettingsError(
            f"--resume continues a run as it was set up: {', '.join(fixed)} cannot change "
            f"(only {', '.join(resumable_flags(cls))} can)"
        )
    return replace(stored, **changes)


def record_length(cfg: TrainConfig | DistillConfig) -> None:
    """Save a resumed run's new length in its config.json, so a later resume keeps it; the
    other resumable settings say where this resume runs, not how the run is set up."""
    stored = read_config(type(cfg), Path(cfg.out))
    if stored.steps != cfg.steps:
        write_config(replace(stored, steps=cfg.steps), cfg.out)
