"""Encoder distillation: a lite encoder, randomly initialised, learns the teacher's taps.

The loss is the metric we report: per-level relative error ‖student − teacher‖² / ‖teacher‖²,
averaged over relu1_1..relu5_1, so no level dominates by its scale. The loop, run directory,
checkpoints, Ctrl-C and torchrun processes are the shared scaffold's (`a2k_cli.train.run`).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from a2k_cli.atomic import atomic_path
from a2k_cli.model import PRESETS, Encoder
from a2k_cli.train.config import DistillConfig
from a2k_cli.train.data import centre_crops, random_crop, scan_images, split
from a2k_cli.train.run import Record, TrainingRun, decode_picked, loader, step_indices
from a2k_cli.weights import WeightsError, load_encoder_state

LEVELS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


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


class DistillObjective(nn.Module):
    """crops -> (loss, per-level relative errors of the student against the teacher).

    Each student segment also learns from the teacher's own previous tap, so deep segments
    get a clean signal before the earlier ones have converged.
    """

    def __init__(self, student: Encoder, teacher: Encoder) -> None:
        super().__init__()
        self.student, self.teacher = student, teacher

    def forward(self, crops: Tensor) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            target = self.teacher(crops)
        errors = relative_errors(self.student(crops), target)
        forced = [self.student.segment(k, target[k - 1]) for k in range(1, 5)]
        return errors.mean() + relative_errors(forced, target[1:]).mean(), errors


class CropDataset(Dataset):
    """Item i: a random crop of a random file, drawn from a generator seeded by (seed, i), so
    a resumed run sees exactly the crops an uninterrupted one would, whatever the workers."""

    def __init__(self, files: list[Path], cfg: DistillConfig) -> None:
        self.files, self.cfg = files, cfg

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        """(crop, files skipped to get it)."""
        rng = random.Random(f"{self.cfg.seed}-{index}")
        (image,), failures = decode_picked(
            [rng.choice(self.files)], lambda: [rng.choice(self.files)]
        )
        return random_crop(image, self.cfg.load, self.cfg.crop, rng), failures


@torch.no_grad()
def validate(
    student: Encoder, teacher: Encoder, files: list[Path], device: torch.device, size: int = 256
) -> list[float]:
    num, den = torch.zeros(5), torch.zeros(5)
    for start in range(0, len(files), 8):
        batch, _ = centre_crops(files[start : start + 8], size)
        if not len(batch):
            continue
        s, t = student(batch.to(device)), teacher(batch.to(device))
        num += torch.stack([(a - b).pow(2).sum() for a, b in zip(s, t)]).cpu()
        den += torch.stack([b.pow(2).sum() for b in t]).cpu()
    return (num / den).tolist()


class Distiller(TrainingRun):
    """Distils a lite encoder from a teacher into one run directory (OUT/encoder.safetensors)."""

    cfg: DistillConfig

    def __init__(self, cfg: DistillConfig, resume: bool = False) -> None:
        super().__init__(cfg, resume)
        self.teacher, self.model = self.build_networks()
        self.train_files, self.val_files, self.skipped_files = self.build_data()
        self.objective = self.ddp.wrap(DistillObjective(self.model, self.teacher))
        self.optim, self.sched = self.build_optimiser()
        self.begin()

    # -- builders --------------------------------------------------------------------------
    def build_data(self) -> tuple[list[Path], list[Path], int]:
        """Training and held-out images of every folder, and how many files were skipped."""
        files: list[Path] = []
        skipped = 0
        for root in self.cfg.data:
            found, bad = scan_images(root)
            files += found
            skipped += bad
        train = split(files, self.cfg.val_percent, False)
        if not train:
            raise WeightsError(f"{', '.join(self.cfg.data)}: no usable training images")
        return train, split(files, self.cfg.val_percent, True), skipped

    def build_networks(self) -> tuple[Encoder, Encoder]:
        """The frozen teacher and the student (caffe preprocessing, or `init`'s encoder)."""
        teacher = load_teacher(self.cfg.teacher)
        student = init_student(Encoder(PRESETS["lite"].widths))
        # a resume takes the student from its checkpoint: an --init moved since is not read
        if self.cfg.init and not self.resume:
            load_lite_encoder(student, self.cfg.init)
        return teacher.to(self.device), student.to(self.device)

    def build_optimiser(self) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
        optim = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)
        steps = self.cfg.steps
        cosine = torch.optim.lr_scheduler.LambdaLR(
            optim, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
        )
        return optim, cosine

    # -- the scaffold's hooks ----------------------------------------------------------------
    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        cfg = self.cfg
        indices = step_indices(self.step, cfg.batch, self.ddp)
        yield from loader(CropDataset(self.train_files, cfg), indices, cfg.batch, cfg.workers)

    def state_dict(self) -> dict[str, Any]:
        return {
            "student": self.model.state_dict(),
            "optim": self.optim.state_dict(),
            "sched": self.sched.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["student"])
        self.optim.load_state_dict(state["optim"])
        self.sched.load_state_dict(state["sched"])

    def train_step(self, crops: Tensor) -> Record:
        crops = crops.to(self.device, memory_format=torch.channels_last, non_blocking=True)
        loss, errors = self.objective(crops)
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        self.optim.step()
        self.sched.step()
        return {"loss": loss.item(), "levels": errors.tolist()}

    def export(self) -> dict[str, Any]:
        """encoder.safetensors, with the validation errors and the config in its metadata."""
        val = validate(
            self.model, self.teacher, self.val_files or self.train_files[:16], self.device
        )
        summary = {
            "steps": self.step,
            "train_images": len(self.train_files),
            "val_images": len(self.val_files),
            "skipped_files": self.skipped_files,
            "val_relative_error": dict(zip(LEVELS, val)),
            "config": asdict(self.cfg),
        }
        meta = {"kind": "encoder", "preset": "lite", "distillation": json.dumps(summary)}
        path = self.out / "encoder.safetensors"
        state = {k: v.contiguous().cpu() for k, v in self.model.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata=meta)
        return summary | {"encoder": str(path)}
