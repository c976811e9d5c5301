"""Encoder distillation: a lite encoder, randomly initialised, learns the teacher's taps.

The loss is the metric we report: per-level relative error ‖student − teacher‖² / ‖teacher‖²,
averaged over relu1_1..relu5_1, so no level dominates by its scale.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor
from torch.utils.data import DataLoader

from a2k_cli.atomic import atomic_path
from a2k_cli.errors import first_line
from a2k_cli.model import PRESETS, Encoder
from a2k_cli.train.data import CropStream, centre_crops, scan_images, split
from a2k_cli.weights import WeightsError, load_checkpoint, load_encoder_state


@dataclass
class DistillConfig:
    teacher: str
    data: tuple[str, ...]
    out: str
    steps: int = 3000
    batch: int = 8
    crop: int = 128  # the shipped encoder's recipe (weights/HISTORY.md 1), as the CLI's
    load: int = 256
    lr: float = 1e-3
    seed: int = 0
    val_percent: int = 5
    save_every: int = 250
    workers: int = 1
    init: str | None = None  # start from this encoder file: a fresh schedule on an earlier run


def load_lite_encoder(encoder: Encoder, path: str | Path) -> Encoder:
    """Load an encoder file into a lite encoder; other widths are a WeightsError."""
    try:
        encoder.load_state_dict(load_encoder_state(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1].strip()
        raise WeightsError(f"{path}: not a lite (16…128 channel) encoder ({reason})") from None
    return encoder


def load_teacher(path: str | Path) -> Encoder:
    """The teacher's encoder convs; its 1x1 `*_aux` heads are not needed for the taps."""
    return load_lite_encoder(Encoder(PRESETS["lite"].widths), path).eval().requires_grad_(False)


# conv0 is the fixed caffe preprocessing the VGG encoders expect (RGB->BGR, x255, minus the
# ImageNet BGR mean). Starting the student there rather than at random saves thousands of
# steps of Adam crawling toward weights of +-255; every other layer starts random.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


@torch.no_grad()
def init_student(student: Encoder) -> Encoder:
    student.conv0.weight.copy_(torch.eye(3).flip(0).view(3, 3, 1, 1) * 255)
    student.conv0.bias.copy_(-torch.tensor(CAFFE_BGR_MEAN))
    student.conv11.weight.div_(255)  # its input is 255x the [0, 1] scale the default init assumes
    return student


def relative_errors(student: list[Tensor], teacher: list[Tensor]) -> Tensor:
    """Per level: ‖s − t‖² / ‖t‖² over the whole batch."""
    return torch.stack(
        [(s - t).pow(2).sum() / t.pow(2).sum().clamp_min(1e-12) for s, t in zip(student, teacher)]
    )


@torch.no_grad()
def validate(student: Encoder, teacher: Encoder, files: list[Path], size: int = 256) -> list[float]:
    num, den = torch.zeros(5), torch.zeros(5)
    for start in range(0, len(files), 8):
        batch, _ = centre_crops(files[start : start + 8], size)
        if not len(batch):
            continue
        s, t = student(batch), teacher(batch)
        num += torch.stack([(a - b).pow(2).sum() for a, b in zip(s, t)])
        den += torch.stack([b.pow(2).sum() for b in t])
    return (num / den).tolist()


def distill(cfg: DistillConfig, on_step: Callable[[int, dict], None] | None = None) -> dict:
    """Run (or resume) a distillation into `cfg.out`; returns the final summary."""
    out = Path(cfg.out)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    teacher = load_teacher(cfg.teacher)
    student = init_student(Encoder(PRESETS["lite"].widths))
    if cfg.init:
        load_lite_encoder(student, cfg.init)
    files: list[Path] = []
    skipped = 0
    for root in cfg.data:
        found, bad = scan_images(root)
        files += found
        skipped += bad
    train_files, val_files = (
        split(files, cfg.val_percent, False),
        split(files, cfg.val_percent, True),
    )
    if not train_files:
        raise WeightsError(f"{', '.join(cfg.data)}: no usable training images")
    optim = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, cfg.steps) / cfg.steps))
    )
    ckpt_path, step = out / "checkpoint.pt", 0
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        try:
            student.load_state_dict(ckpt["student"])
            optim.load_state_dict(ckpt["optim"])
            sched.load_state_dict(ckpt["sched"])
            step = int(ckpt["step"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            reason = first_line(exc)
            raise WeightsError(f"{ckpt_path}: not a distillation checkpoint ({reason})") from None
    out.mkdir(parents=True, exist_ok=True)  # only once every input has been checked
    stream = CropStream(train_files, cfg.load, cfg.crop, cfg.seed + step)
    loader = iter(DataLoader(stream, batch_size=cfg.batch, num_workers=cfg.workers))
    log = (out / "log.jsonl").open("a")
    tic = time.time()
    while step < cfg.steps:
        batch = next(loader).contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            target = teacher(batch)
        errors = relative_errors(student(batch), target)
        # Each segment also learns from the teacher's own previous tap, so deep segments get a
        # clean signal before the earlier ones have converged.
        forced = [student.segment(k, target[k - 1]) for k in range(1, 5)]
        loss = errors.mean() + relative_errors(forced, target[1:]).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        sched.step()
        step += 1
        if step % 10 == 0:
            rate = 10 / (time.time() - tic)
            tic = time.time()
            record = {"step": step, "loss": loss.item(), "levels": errors.tolist(), "it_s": rate}
            log.write(json.dumps(record) + "\n")
            log.flush()
            if on_step:
                on_step(step, record)
        if step % cfg.save_every == 0 or step == cfg.steps:
            state = {"student": student.state_dict(), "optim": optim.state_dict()}
            state.update(sched=sched.state_dict(), step=step, config=asdict(cfg))
            with atomic_path(ckpt_path) as tmp:
                torch.save(state, tmp)
    val = validate(student.eval(), teacher, val_files or train_files[:16])
    summary = {
        "steps": step,
        "train_images": len(train_files),
        "val_images": len(val_files),
        "skipped_files": skipped,
        "val_relative_error": dict(
            zip(["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"], val)
        ),
        "config": asdict(cfg),
    }
    meta = {"kind": "encoder", "preset": "lite", "distillation": json.dumps(summary)}
    with atomic_path(out / "encoder.safetensors") as tmp:
        save_file(
            {k: v.contiguous() for k, v in student.state_dict().items()}, str(tmp), metadata=meta
        )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
