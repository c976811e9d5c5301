"""Training the A2K modules and decoder: data, networks, optimiser, previews and export.

The loop, run directory, checkpoints, Ctrl-C and torchrun processes are the shared scaffold's
(`a2k_cli.train.run`). `torchrun --nproc_per_node N -m a2k_cli train …` runs N processes
with DistributedDataParallel (NCCL on CUDA, gloo on CPU). A run directory holds config.json,
log.jsonl, previews/, checkpoint.pt and, at the end, model.safetensors.
"""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from a2k_cli.device import pick_dtype
from a2k_cli.errors import first_line
from a2k_cli.model import A2KNet, Preset, grids_per_level
from a2k_cli.train.config import TrainConfig
from a2k_cli.train.data import centre_crops, random_crop, scan_images, split
from a2k_cli.train.objective import StyleTransferObjective
from a2k_cli.train.run import Distributed, Record, TrainingRun, decode_picked, loader
from a2k_cli.weights import (
    WeightsError,
    encoder_from_state,
    load,
    load_encoder_state,
    read_metadata,
    save,
    vgg_encoder_state,
)


class PairDataset(Dataset):
    """Item i of epoch e: a content crop and a randomly paired style crop.

    Every draw comes from a generator seeded by (seed, epoch, i), so a resumed run sees
    exactly the batches an uninterrupted one would, whatever the number of workers.
    """

    def __init__(self, contents: list[Path], styles: list[Path], cfg: TrainConfig) -> None:
        self.contents, self.styles, self.cfg, self.epoch = contents, styles, cfg, 0

    def __len__(self) -> int:
        return len(self.contents)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        """(content crop, style crop, files skipped to get them): workers are other
        processes, so the count travels with the batch."""
        rng = random.Random(f"{self.cfg.seed}-{self.epoch}-{index}")
        first = [self.contents[index], rng.choice(self.styles)]
        (content, style), failures = decode_picked(
            first, lambda: [rng.choice(self.contents), rng.choice(self.styles)]
        )
        crop = (self.cfg.load, self.cfg.crop, rng)
        return random_crop(content, *crop), random_crop(style, *crop), failures


def preview_crops(files: list[Path], size: int, count: int) -> Tensor:
    """`count` centre crops of the first readable files (repeated when there are fewer)."""
    crops, _ = centre_crops(files, size, count)
    if not len(crops):
        raise ValueError(f"none of the {len(files)} validation images can be read")
    return crops[torch.arange(count) % len(crops)]


def build_network(cfg: TrainConfig) -> A2KNet:
    """The network to train: `init`'s weights or a fresh one (from the run's seed), with
    the requested upsamplings and block grids and the frozen encoder the preset asks for."""
    net = load(cfg.init) if cfg.init else A2KNet.from_preset(cfg.preset)
    wanted = replace(
        net.preset,
        upsample=cfg.upsample or net.preset.upsample,
        block_grids=grids_per_level(cfg.block_grids, 3)
        if cfg.block_grids
        else net.preset.block_grids,
        merge=cfg.merge or net.preset.merge,
    )
    if wanted != net.preset:  # the same weights, computed another way
        state = net.state_dict()
        net = A2KNet(wanted)
        net.load_state_dict(state)
    if cfg.preset == "paper":
        if not cfg.vgg:
            raise ValueError("the paper preset needs --vgg vgg_normalised.pth")
        net.encoder.load_state_dict(vgg_encoder_state(cfg.vgg))
    elif cfg.encoder or not cfg.init:
        net.encoder.load_state_dict(load_encoder_state(cfg.encoder or "a2k-lite"))
    net.encoder.requires_grad_(False)
    return net.train()


def checkpoint_network(preset: Mapping[str, Any], run: Path) -> A2KNet:
    """A resumed run's network as its checkpoint describes it, weights to come from there: no
    file is read again, so an --init moved or replaced since cannot stop or change the run."""
    try:
        return A2KNet(Preset(**preset)).train()
    except (TypeError, ValueError) as exc:
        path, reason = run / "checkpoint.pt", first_line(exc)
        raise WeightsError(f"{path}: not a checkpoint of this run ({reason})") from None


def lr_factor(step: int, steps: int) -> float:
    """The official shape scaled to any length: constant for 40 %, then x0.3 per 20 %."""
    return 0.3 ** max(0.0, (step - 0.4 * steps) / (0.2 * steps))


def code_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def epoch_batches(
    dataset: PairDataset, cfg: TrainConfig, ddp: Distributed, step: int
) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """Endless batches from `step` on: epochs of a DistributedSampler, resumed mid-epoch."""
    sampler = DistributedSampler(
        dataset, ddp.world, ddp.rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    per_epoch = len(sampler) // cfg.batch
    epoch, skip = divmod(step, per_epoch)
    while True:
        sampler.set_epoch(epoch)
        dataset.epoch = epoch
        indices = list(sampler)[skip * cfg.batch : per_epoch * cfg.batch]
        yield from loader(dataset, indices, cfg.batch, cfg.workers)
        epoch, skip = epoch + 1, 0


class Trainer(TrainingRun):
    """Trains the A2K modules and decoder of one run directory; `run()` goes to `cfg.steps`
    or Ctrl-C."""

    cfg: TrainConfig

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        super().__init__(cfg, resume)
        self.dataset, self.preview_pairs, self.data_counts = self.build_data()
        self.model, self.plain_objective = self.build_networks()
        self.objective = self.ddp.wrap(self.plain_objective)
        self.optim, self.sched = self.build_optimiser()
        self.autocast, self.scaler = self.build_precision()
        self.begin()

    # -- builders --------------------------------------------------------------------------
    def build_data(self) -> tuple[PairDataset, tuple[Tensor, Tensor], dict[str, int]]:
        """The training pairs, the fixed held-out preview pairs, and the counts the model's
        metadata records."""
        cfg = self.cfg
        contents, skipped_c = scan_images(cfg.data)
        styles, skipped_s = scan_images(cfg.styles)
        train_c, val_c = (
            split(contents, cfg.val_percent, False),
            split(contents, cfg.val_percent, True),
        )
        train_s, val_s = split(styles, cfg.val_percent, False), split(styles, cfg.val_percent, True)
        if not train_c or not train_s:
            raise ValueError("no usable training images (check --data and --styles)")
        world = self.ddp.world
        if len(train_c) < cfg.batch * world:
            raise ValueError(
                f"--batch {cfg.batch} x {world} process(es) needs at least {cfg.batch * world} "
                f"training contents, found {len(train_c)}"
            )
        previews = (
            preview_crops(val_c or train_c, cfg.crop, cfg.previews),
            preview_crops(val_s or train_s, cfg.crop, cfg.previews),
        )
        counts = {
            "content_train": len(train_c),
            "content_val": len(val_c),
            "style_train": len(train_s),
            "style_val": len(val_s),
            "skipped_files": skipped_c + skipped_s,
        }
        return PairDataset(train_c, train_s, cfg), previews, counts

    def build_networks(self) -> tuple[A2KNet, StyleTransferObjective]:
        """The network and the objective that measures it (with the loss network if one is
        given)."""
        cfg = self.cfg
        preset = self.checkpoint.get("preset")  # checkpoints from before it: build as at start
        net = checkpoint_network(preset, self.out) if preset else build_network(cfg)
        net = net.to(self.device, memory_format=torch.channels_last)
        loss_network = None
        if cfg.loss_network:
            loss_network = encoder_from_state(load_encoder_state(cfg.loss_network))
            loss_network.to(self.device, memory_format=torch.channels_last)
        objective = StyleTransferObjective(
            net,
            cfg.lambda_global,
            cfg.lambda_attn,
            cfg.lambda_content,
            loss_network,
            cfg.global_levels,
            cfg.lambda_tv,
            cfg.lambda_distribution,
            cfg.lambda_identity_pixel,
            cfg.lambda_identity_feature,
            cfg.lambda_lattice,
            cfg.lambda_colour,
            cfg.lattice_periods,
            cfg.attn_target_grids,
            cfg.lambda_gradient,
            cfg.lambda_stability,
            cfg.stability_flat,
        )
        return net, objective

    def build_optimiser(self) -> tuple[torch.optim.Adam, torch.optim.lr_scheduler.LambdaLR]:
        params = [p for m in self.model.trainable() for p in m.parameters()]
        optim = torch.optim.Adam(params, lr=self.cfg.lr)
        steps = self.cfg.steps
        return optim, torch.optim.lr_scheduler.LambdaLR(optim, lambda s: lr_factor(s, steps))

    def build_precision(self) -> tuple[torch.dtype | None, torch.amp.GradScaler]:
        """The autocast dtype (None: fp32) and the loss scaler fp16 needs."""
        # painting's `auto` (bf16 on CPUs that compute it) was judged on pictures; training
        # in bf16 is opt-in (`--precision bf16`)
        cpu_auto = self.cfg.precision == "auto" and self.device.type != "cuda"
        dtype = pick_dtype(self.device, "fp32" if cpu_auto else self.cfg.precision)
        fp16 = dtype == torch.float16  # bf16 has fp32's range and needs no scaling
        scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        return (dtype if dtype != torch.float32 else None), scaler

    @property
    def precision(self) -> str:
        return {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(self.autocast, "fp32")

    # -- the scaffold's hooks ----------------------------------------------------------------
    def batches(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        return epoch_batches(self.dataset, self.cfg, self.ddp, self.step)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optim": self.optim.state_dict(),
            "sched": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "preset": asdict(self.model.preset),  # what a resume builds (`checkpoint_network`)
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optim.load_state_dict(state["optim"])
        self.sched.load_state_dict(state["sched"])
        self.scaler.load_state_dict(state["scaler"])

    def train_step(self, content: Tensor, style: Tensor) -> Record:
        warm = self.cfg.warmup
        fade = max(0.0, 1 - self.step / warm) if warm else 0.0
        self.plain_objective.weights["recon"] = self.cfg.lambda_recon * fade
        content = content.to(self.device, memory_format=torch.channels_last, non_blocking=True)
        style = style.to(self.device, memory_format=torch.channels_last, non_blocking=True)
        with torch.autocast(
            self.device.type, dtype=self.autocast, enabled=self.autocast is not None
        ):
            total, terms, _ = self.objective(content, style)
        self.optim.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optim)
        self.scaler.update()
        self.sched.step()
        return {"loss": total.item()} | {k: v.item() for k, v in terms.items()}

    def after_step(self) -> Record:
        return self.preview() if self.step % self.cfg.preview_every == 0 else {}

    @torch.no_grad()
    def preview(self) -> Record:
        """Validation losses on fixed held-out pairs, and a content / style / output sheet."""
        from PIL import Image

        from a2k_cli.imaging import write_image

        self.model.eval()
        self.plain_objective.weights["recon"] = 0.0
        content, style = (t.to(self.device) for t in self.preview_pairs)
        total, terms, output = self.plain_objective(content, style)
        self.model.train()
        folder = self.out / "previews"
        folder.mkdir(exist_ok=True)
        tiles = F.pad(torch.stack([content, style, output.clamp(0, 1)]).float().cpu(), (2,) * 4)
        rows, n, _, height, width = tiles.shape  # one row each: contents, styles, outputs
        sheet = tiles.permute(0, 3, 1, 4, 2).reshape(rows * height, n * width, 3)
        pixels = sheet.mul(255).round().to(torch.uint8).numpy()
        write_image(Image.fromarray(pixels), folder / f"step_{self.step:06d}.jpg")
        return {"val_loss": total.item()} | {f"val_{k}": v.item() for k, v in terms.items()}

    def export(self) -> dict[str, Any]:
        """model.safetensors with how it was made: data, steps, losses, time, encoder source."""
        records = [json.loads(line) for line in (self.out / "log.jsonl").read_text().splitlines()]
        last = records[-1] if records else {}
        validation = [r for r in records if "val_loss" in r]
        summary = {
            "steps": self.step,
            "batch": self.cfg.batch * self.ddp.world,
            "crop": self.cfg.crop,
            "final_losses": {k: v for k, v in last.items() if k not in {"step", "it_s", "lr"}},
            "last_validation": validation[-1] if validation else None,
            "train_hours": sum(1 / r["it_s"] for r in records) / 3600,
            "data": self.data_counts | {"skipped_while_training": self.skipped},
            "code_revision": code_revision(),
            "device": str(self.device),
        }
        meta = {"preset": self.cfg.preset, "training": summary, "config": asdict(self.cfg)}
        if self.cfg.encoder:
            source = read_metadata(self.cfg.encoder)
            meta["encoder_source"] = {"file": Path(self.cfg.encoder).name} | {
                k: json.loads(v) for k, v in source.items() if k == "distillation"
            }
        return {"model": str(save(self.model, self.out / "model.safetensors", **meta))}
