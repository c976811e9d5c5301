"""The training loop: data, optimisation, logs, previews, atomic checkpoints, resume, DDP.

One process trains on CPU or one GPU; `torchrun --nproc_per_node N -m a2k_cli train …`
runs N processes with DistributedDataParallel (NCCL on CUDA, gloo on CPU). Only rank 0
writes files. A run directory holds config.json, log.jsonl, previews/, checkpoint.pt and,
at the end, model.safetensors.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from a2k_cli.atomic import atomic_path
from a2k_cli.device import pick_device, pick_dtype
from a2k_cli.errors import first_line
from a2k_cli.model import A2KNet
from a2k_cli.train.data import UNREADABLE, centre_crops, load_rgb, random_crop, scan_images, split
from a2k_cli.train.objective import StyleTransferObjective
from a2k_cli.weights import (
    WeightsError,
    encoder_from_state,
    load,
    load_checkpoint,
    load_encoder_state,
    read_metadata,
    save,
    vgg_encoder_state,
)


@dataclass
class TrainConfig:
    data: str
    styles: str
    out: str
    preset: str = "lite"
    encoder: str | None = None  # lite: encoder source (model name/file); default the bundled model
    vgg: str | None = None  # paper: the authors' vgg_normalised.pth
    init: str | None = None  # start from these weights instead of random A2K/decoder
    loss_network: str | None = None  # encoder file the losses are measured with (default: own)
    steps: int = 20000
    batch: int = 8
    lr: float = 2e-4
    crop: int = 256
    load: int = 512
    lambda_global: float = 10.0
    lambda_attn: float = 1.25
    lambda_content: float = 0.0
    lambda_tv: float = 0.0  # total variation of the output (not in the paper)
    lambda_distribution: float = 0.0  # sorted match of relu1_1/relu2_1 distributions (colour)
    lambda_identity_pixel: float = 0.0  # SANet identity loss on pixels (their weight: 50)
    lambda_identity_feature: float = 0.0  # SANet identity loss on features (their weight: 1)
    lambda_lattice: float = 0.0  # penalty on the 2-px lattice of the last upsampling
    lambda_colour: float = 0.0  # sliced match of the output's Lab colours to the style's
    upsample: str | None = None  # the decoder's upsampling (nearest, bilinear); None: --init's
    global_levels: int = 4  # the global style loss spans relu1_1 … relu{n}_1 (paper: 4)
    warmup: int = 0  # steps of fading feature reconstruction at the start (0 = paper recipe)
    lambda_recon: float = 10.0  # the reconstruction weight at step 0 of the warm-up
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # autocast: fp16 on CUDA (auto), fp32 on CPU unless bf16 is asked
    workers: int = 1
    val_percent: int = 5
    save_every: int = 500
    preview_every: int = 500
    previews: int = 4
    extra: dict = field(default_factory=dict)


def resume_config(run_dir: str | Path, steps: int | None = None) -> TrainConfig:
    """The config of the run in `run_dir`, its length changed to `steps` if given (and saved,
    so a later resume keeps it). A missing or corrupt file is a WeightsError naming it."""
    run_dir = Path(run_dir)
    config_file = run_dir / "config.json"
    if not (run_dir / "checkpoint.pt").is_file() or not config_file.is_file():
        raise WeightsError(f"{run_dir}: no checkpoint.pt/config.json to resume from")
    try:
        cfg = TrainConfig(**json.loads(config_file.read_text()))
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        reason = first_line(exc)
        raise WeightsError(f"{config_file}: not a run's config ({reason})") from None
    cfg.out = str(run_dir)
    if steps and steps != cfg.steps:
        cfg.steps = steps
        with atomic_path(config_file) as tmp:
            tmp.write_text(json.dumps(asdict(cfg), indent=2))
    return cfg


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
        content_path, style_path = self.contents[index], rng.choice(self.styles)
        failures = 0
        while True:  # a pair with a file that fails to decode is replaced, never fatal
            try:
                content, style = load_rgb(content_path), load_rgb(style_path)
                break
            except UNREADABLE:
                failures += 1
                if failures == 10:
                    raise ValueError("ten unreadable training pairs in a row") from None
                content_path, style_path = rng.choice(self.contents), rng.choice(self.styles)
        crop = (self.cfg.load, self.cfg.crop, rng)
        return random_crop(content, *crop), random_crop(style, *crop), failures


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Distributed:
    """torchrun sets WORLD_SIZE/RANK; without them this is a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), world)


def pick_train_device(name: str, rank: int) -> torch.device:
    device = pick_device(name)
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    return device


def preview_crops(files: list[Path], size: int, count: int) -> Tensor:
    """`count` centre crops of the first readable files (repeated when there are fewer)."""
    crops, _ = centre_crops(files, size, count)
    if not len(crops):
        raise ValueError(f"none of the {len(files)} validation images can be read")
    return crops[torch.arange(count) % len(crops)]


def build_network(cfg: TrainConfig) -> A2KNet:
    if cfg.init:
        net = load(cfg.init)
    else:
        torch.manual_seed(cfg.seed)
        net = A2KNet.from_preset(cfg.preset)
    if cfg.upsample and cfg.upsample != net.preset.upsample:  # same weights, other interpolation
        state = net.state_dict()
        net = A2KNet(replace(net.preset, upsample=cfg.upsample))
        net.load_state_dict(state)
    if cfg.preset == "paper":
        if not cfg.vgg:
            raise ValueError("the paper preset needs --vgg vgg_normalised.pth")
        net.encoder.load_state_dict(vgg_encoder_state(cfg.vgg))
    elif cfg.encoder or not cfg.init:
        net.encoder.load_state_dict(load_encoder_state(cfg.encoder or "a2k-lite"))
    net.encoder.requires_grad_(False)
    return net.train()


def lr_factor(step: int, steps: int) -> float:
    """The official shape scaled to any length: constant for 40 %, then x0.3 per 20 %."""
    return 0.3 ** max(0.0, (step - 0.4 * steps) / (0.2 * steps))


def stop_on_signals() -> Callable[[], None]:
    """SIGINT and SIGTERM end training the way Ctrl-C does (checkpoint, clean exit).

    Explicit handlers matter: a process started in the background by a shell inherits an
    ignored SIGINT, and `kill PID` sends SIGTERM. Returns a function restoring the old ones.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    return lambda: [signal.signal(sig, handler) for sig, handler in old.items()]


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


def batches(
    dataset: PairDataset, cfg: TrainConfig, ddp: Distributed, step: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """Endless batches from `step` on: epochs of a DistributedSampler, resumed mid-epoch."""
    sampler = DistributedSampler(
        dataset, ddp.world, ddp.rank, shuffle=True, seed=cfg.seed, drop_last=True
    )
    per_epoch = len(sampler) // cfg.batch
    if per_epoch == 0:
        raise ValueError(
            f"need at least {cfg.batch * ddp.world} training contents, found {len(dataset)}"
        )
    epoch, skip = divmod(step, per_epoch)
    while True:
        sampler.set_epoch(epoch)
        dataset.epoch = epoch
        indices = list(sampler)[skip * cfg.batch : per_epoch * cfg.batch]
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch,
            sampler=indices,
            num_workers=cfg.workers,
            prefetch_factor=2 if cfg.workers else None,
        )
        yield from loader
        epoch, skip = epoch + 1, 0


class Trainer:
    """Owns one run directory; `run()` trains until `cfg.steps` or Ctrl-C."""

    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cfg, self.out = cfg, Path(cfg.out)
        self.device = pick_train_device(cfg.device, int(os.environ.get("RANK", "0")))
        self.ddp = setup_distributed(self.device)
        contents, skipped_c = scan_images(cfg.data)
        styles, skipped_s = scan_images(cfg.styles)
        self.data_counts = {
            "content_train": len(split(contents, cfg.val_percent, False)),
            "content_val": len(split(contents, cfg.val_percent, True)),
            "style_train": len(split(styles, cfg.val_percent, False)),
            "style_val": len(split(styles, cfg.val_percent, True)),
            "skipped_files": skipped_c + skipped_s,
        }
        train_c, train_s = (
            split(contents, cfg.val_percent, False),
            split(styles, cfg.val_percent, False),
        )
        if not train_c or not train_s:
            raise ValueError("no usable training images (check --data and --styles)")
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if len(train_c) < cfg.batch * world:
            raise ValueError(
                f"--batch {cfg.batch} x {world} process(es) needs at least {cfg.batch * world} "
                f"training contents, found {len(train_c)}"
            )
        self.dataset = PairDataset(train_c, train_s, cfg)
        self.skipped = 0  # unreadable files met while training (replaced by others)
        val_c = split(contents, cfg.val_percent, True) or train_c
        val_s = split(styles, cfg.val_percent, True) or train_s
        self.preview_pairs = (
            preview_crops(val_c, cfg.crop, cfg.previews),
            preview_crops(val_s, cfg.crop, cfg.previews),
        )
        self.net = build_network(cfg).to(self.device, memory_format=torch.channels_last)
        loss_network = None
        if cfg.loss_network:
            loss_network = encoder_from_state(load_encoder_state(cfg.loss_network))
            loss_network.to(self.device, memory_format=torch.channels_last)
        self.plain_objective = StyleTransferObjective(
            self.net,
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
        )
        self.objective = self.plain_objective
        if self.ddp.world > 1:
            ids = [self.device] if self.device.type == "cuda" else None
            self.objective = DistributedDataParallel(self.plain_objective, device_ids=ids)
        params = [p for m in self.net.trainable() for p in m.parameters()]
        self.optim = torch.optim.Adam(params, lr=cfg.lr)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.optim, lambda s: lr_factor(s, cfg.steps)
        )
        # painting's `auto` (bf16 on CPUs that compute it) was judged on pictures; training
        # in bf16 is opt-in (`--precision bf16`)
        cpu_auto = cfg.precision == "auto" and self.device.type != "cuda"
        dtype = pick_dtype(self.device, "fp32" if cpu_auto else cfg.precision)
        self.autocast = dtype if dtype != torch.float32 else None
        self.amp = dtype == torch.float16  # fp16 needs loss scaling; bf16 has fp32's range
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.step = 0
        if resume:
            self.load_checkpoint()
        elif self.ddp.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    # -- checkpoints -------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {
            "model": self.net.state_dict(),
            "optim": self.optim.state_dict(),
            "sched": self.sched.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "skipped": self.skipped,
            "config": asdict(self.cfg),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()},
        }

    def save_checkpoint(self) -> None:
        if not self.ddp.main:
            return
        with atomic_path(self.out / "checkpoint.pt") as tmp:
            torch.save(self.checkpoint_state(), tmp)

    def load_checkpoint(self) -> None:
        path = self.out / "checkpoint.pt"
        ckpt = load_checkpoint(path)
        try:
            self.net.load_state_dict(ckpt["model"])
            self.optim.load_state_dict(ckpt["optim"])
            self.sched.load_state_dict(ckpt["sched"])
            self.scaler.load_state_dict(ckpt["scaler"])
            self.step = int(ckpt["step"])
            self.skipped = int(ckpt.get("skipped", 0))
            torch.set_rng_state(ckpt["rng"]["torch"])
            random.setstate(ckpt["rng"]["python"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            reason = first_line(exc)
            raise WeightsError(f"{path}: not a checkpoint of this run ({reason})") from None

    # -- one step ------------------------------------------------------------------------
    def train_step(self, content: Tensor, style: Tensor) -> dict[str, float]:
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
        self.step += 1
        return {"loss": total.item()} | {k: v.item() for k, v in terms.items()}

    @torch.no_grad()
    def preview(self) -> dict[str, float]:
        """Validation losses on fixed held-out pairs, and a content / style / output sheet."""
        from PIL import Image

        from a2k_cli.imaging import write_image

        self.net.eval()
        self.plain_objective.weights["recon"] = 0.0
        content, style = (t.to(self.device) for t in self.preview_pairs)
        total, terms, output = self.plain_objective(content, style)
        self.net.train()
        folder = self.out / "previews"
        folder.mkdir(exist_ok=True)
        tiles = F.pad(torch.stack([content, style, output.clamp(0, 1)]).float().cpu(), (2,) * 4)
        rows, n, _, height, width = tiles.shape  # one row each: contents, styles, outputs
        sheet = tiles.permute(0, 3, 1, 4, 2).reshape(rows * height, n * width, 3)
        pixels = sheet.mul(255).round().to(torch.uint8).numpy()
        write_image(Image.fromarray(pixels), folder / f"step_{self.step:06d}.jpg")
        return {"val_loss": total.item()} | {f"val_{k}": v.item() for k, v in terms.items()}

    # -- the loop --------------------------------------------------------------------------
    def run(self, on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict:
        """Train to `cfg.steps`; Ctrl-C saves a checkpoint and returns with `interrupted`."""
        cfg = self.cfg
        log = (self.out / "log.jsonl").open("a") if self.ddp.main else None
        stream = batches(self.dataset, cfg, self.ddp, self.step)
        interrupted, last = False, {}
        tic = time.perf_counter()
        restore = stop_on_signals()
        try:
            while self.step < cfg.steps:
                content, style, skipped = next(stream)
                self.skipped += int(skipped.sum())
                record = self.train_step(content, style) | {"skipped_images": self.skipped}
                now = time.perf_counter()
                record |= {
                    "step": self.step,
                    "lr": self.sched.get_last_lr()[0],
                    "it_s": 1 / (now - tic),
                }
                tic = now
                if self.ddp.main and self.step % cfg.preview_every == 0:
                    record |= self.preview()
                if log:
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                if self.step % cfg.save_every == 0:
                    self.save_checkpoint()
                last = record
                if on_step:
                    on_step(self.step, record)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            restore()
        self.save_checkpoint()
        if log:
            log.close()
        summary = {
            "steps": self.step,
            "interrupted": interrupted,
            "final": last,
            "ranks": self.ddp.world,
        }
        summary["ranks_in_sync"] = self.ranks_in_sync()
        if self.ddp.main:
            if not interrupted:
                summary["model"] = str(self.export())
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def ranks_in_sync(self) -> bool:
        """Every rank holds the same weights (DDP's promise, checked once at the end)."""
        if self.ddp.world == 1:
            return True
        checksum = (
            torch.stack([p.detach().double().sum() for p in self.net.parameters()]).sum().cpu()
        )
        gathered = [torch.zeros_like(checksum) for _ in range(self.ddp.world)]
        dist.all_gather(gathered, checksum)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    def export(self) -> Path:
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
        return save(self.net, self.out / "model.safetensors", **meta)

    def close(self) -> None:
        if self.ddp.world > 1:
            dist.barrier()  # rank 0 may still be exporting; gloo aborts if a peer leaves early
            dist.destroy_process_group()
