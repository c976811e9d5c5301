"""The scaffold `a2k train` and `a2k distill` share: one run directory, its log and atomic
checkpoints, Ctrl-C and SIGTERM, and the processes of a torchrun job.

A run directory holds config.json (written when the run starts; a resume may lengthen it),
log.jsonl (one line per step, appended), checkpoint.pt (the job's state, its step, the
RNG states and what a resume cannot change) and whatever the job exports once it completes.
Only rank 0 writes files.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from PIL import Image
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from a2k_cli.atomic import atomic_path
from a2k_cli.device import pick_device
from a2k_cli.errors import first_line
from a2k_cli.train.config import (
    DistillConfig,
    RunError,
    TrainConfig,
    record_length,
    write_config,
)
from a2k_cli.train.data import UNREADABLE, load_rgb
from a2k_cli.weights import WeightsError, load_checkpoint

Record = dict[str, Any]  # one step's log line: losses, step, lr, it/s, skipped images
OnStep = Callable[[int, Record], None]


@dataclass
class Distributed:
    """This process's place in a torchrun job (rank 0 of 1 without torchrun) and its device."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device_name: str) -> Distributed:
        """torchrun sets WORLD_SIZE, RANK and LOCAL_RANK: one GPU per process with NCCL on
        CUDA, gloo elsewhere."""
        device = pick_device(device_name)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(device)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(device, dist.get_rank(), world)

    def wrap(self, module: nn.Module) -> nn.Module:
        """`module` under DistributedDataParallel when there are several processes."""
        if self.world == 1:
            return module
        ids = [self.device] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def anyone(self, flag: bool) -> bool:
        """Whether any process says yes: a stop request reaches the processes at different
        moments, and they must all stop after the same step."""
        if self.world == 1:
            return flag
        votes = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(votes, op=dist.ReduceOp.MAX)
        return bool(votes.item())

    def in_sync(self, module: nn.Module) -> bool:
        """Every process holds the same weights (DDP's promise, checked once at the end)."""
        if self.world == 1:
            return True
        checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum()
        gathered = [torch.zeros_like(checksum) for _ in range(self.world)]
        dist.all_gather(gathered, checksum)
        return all(torch.equal(g, gathered[0]) for g in gathered)

    def close(self, finished: bool = True) -> None:
        """Leave the job: after a normal end, wait for rank 0's export first (gloo aborts if
        a peer leaves early); after an error, no barrier, which the others may never reach."""
        if self.world > 1:
            if finished:
                dist.barrier()
            dist.destroy_process_group()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Inside the block, SIGINT (Ctrl-C) and SIGTERM (`kill`) set `requested` so the loop
    stops once the current step is done; a second signal stops at once.

    Explicit handlers matter: a process a shell starts in the background ignores SIGINT.
    """

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # where Python allows it
            self.previous = {sig: signal.signal(sig, self.handle) for sig in STOP_SIGNALS}
        return self

    def handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():  # None: not set from Python, the default
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def ignore_interrupts(worker_id: int) -> None:
    """Data-loading workers leave Ctrl-C and SIGTERM (sent to the whole process group by
    terminals, `docker stop`, schedulers) to the main process, which finishes its step."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def loader(dataset: Dataset, indices: Iterable[int], batch: int, workers: int) -> DataLoader:
    """Batches of `dataset`'s items in the order of `indices` (which may be endless).

    The loader draws its workers' seeds from a generator of its own: drawing them from the
    global one would shift the random numbers of a resumed run, which starts a new loader.
    """
    return DataLoader(
        dataset,
        batch_size=batch,
        sampler=indices,
        num_workers=workers,
        prefetch_factor=2 if workers else None,
        worker_init_fn=ignore_interrupts if workers else None,
        generator=torch.Generator().manual_seed(0),
    )


def step_indices(step: int, batch: int, ddp: Distributed) -> Iterator[int]:
    """Item indices from `step` on, endlessly: each step takes the next `batch` x world
    items and this process its share, so a resumed run draws what an uninterrupted one would."""
    for s in itertools.count(step):
        first = (s * ddp.world + ddp.rank) * batch
        yield from range(first, first + batch)


def decode_picked(
    paths: Sequence[Path], redraw: Callable[[], Sequence[Path]], tries: int = 10
) -> tuple[list[Image.Image], int]:
    """Decode `paths`, or what `redraw()` picks instead when one fails to decode (never
    fatal unless `tries` picks in a row fail); also returns how many picks failed."""
    failures = 0
    while True:
        try:
            return [load_rgb(path) for path in paths], failures
        except UNREADABLE:
            failures += 1
            if failures == tries:
                raise ValueError(f"{tries} unreadable training images in a row") from None
            paths = redraw()


def rng_states(device: torch.device) -> dict[str, Any]:
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def check_setup(run: Path, was: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """RunError when a resume would not continue the run as it went: on another device type
    or in another precision (the RNG streams and the loss scaler's state belong to them), or
    with another number of processes (each step takes --batch x processes items). Checkpoints
    from before this record hold none of it and resume as they are."""
    if "device" in was and (was["device"], was["precision"]) != (now["device"], now["precision"]):
        where = f"on {was['device']} in {was['precision']}"
        raise RunError(
            f"{run} was trained {where}; resume it {where} "
            f"(it cannot move to {now['device']} in {now['precision']})"
        )
    if "world" in was and was["world"] != now["world"]:
        raise RunError(
            f"{run} was trained by {was['world']} process(es); resume it with {was['world']}, "
            f"not {now['world']} (each step takes --batch x processes items)"
        )


def logged_step(line: str) -> float:
    """A log line's step; infinite for a line a crash cut short."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


def trim_log(path: Path, step: int) -> None:
    """Keep the log's lines up to the checkpoint's `step`: after a crash it also holds the
    steps since, which the resumed run logs again (a sum over the log would count them twice)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if logged_step(line) <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept))


class TrainingRun(ABC):
    """One run directory trained to `cfg.steps` by one process or a torchrun job.

    A subclass calls `super().__init__`, builds its data, networks and optimiser (setting
    `model`, the module it trains, and `optim`), then calls `begin()`. Its `batches()` yield
    (inputs…, skipped-file counts); `train_step(*inputs)` makes one optimiser step.
    """

    model: nn.Module
    optim: torch.optim.Optimizer

    def __init__(self, cfg: TrainConfig | DistillConfig, resume: bool = False) -> None:
        self.cfg, self.resume, self.out = cfg, resume, Path(cfg.out)
        checkpoint = self.out / "checkpoint.pt"
        if not resume and checkpoint.exists():
            raise RunError(
                f"{self.out} already holds a run (checkpoint.pt); "
                f"use --resume {self.out} or another --out"
            )
        self.ddp = Distributed.start(cfg.device)
        self.device = self.ddp.device
        # read before the job builds its networks, which a resume takes from it ({}: none)
        self.checkpoint: Mapping[str, Any] = load_checkpoint(checkpoint) if resume else {}
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.step = 0
        self.skipped = 0  # unreadable images met while training (replaced by others)

    def begin(self) -> None:
        """Continue from the run directory's checkpoint, or start the run directory."""
        if self.resume:
            self.load_checkpoint()
            self.checkpoint = {}  # its tensors are the job's now: no second copy
            if self.ddp.main:
                trim_log(self.out / "log.jsonl", self.step)
                record_length(self.cfg)
        elif self.ddp.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_config(self.cfg, self.out)

    @property
    def precision(self) -> str:
        """The precision the steps compute in; a job that autocasts names its own."""
        return "fp32"

    def setup(self) -> dict[str, Any]:
        """What a resume cannot change (`check_setup`), recorded in each checkpoint."""
        return {"device": self.device.type, "precision": self.precision, "world": self.ddp.world}

    # -- what a job defines --------------------------------------------------------------
    @abstractmethod
    def batches(self) -> Iterator[Sequence[Tensor]]:
        """Endless batches from `self.step` on; each ends with its skipped-file counts."""

    @abstractmethod
    def train_step(self, *inputs: Tensor) -> Record:
        """One optimiser step on a batch; returns its losses."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """The job's part of a checkpoint (model, optimiser, scheduler …)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def export(self) -> dict[str, Any]:
        """Write the finished run's result (rank 0 only); returns lines for the summary."""

    def after_step(self) -> Record:
        """Rank 0's extra work after a step (previews, validation); adds to the log line."""
        return {}

    # -- checkpoints ---------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if not self.ddp.main:
            return
        state = self.state_dict() | {
            "step": self.step,
            "skipped": self.skipped,
            "rng": rng_states(self.device),
            "setup": self.setup(),
        }
        with atomic_path(self.out / "checkpoint.pt") as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self) -> None:
        path, state = self.out / "checkpoint.pt", self.checkpoint
        check_setup(self.out, state.get("setup", {}), self.setup())
        try:
            self.load_state_dict(dict(state))
            self.step, self.skipped = int(state["step"]), int(state["skipped"])
            set_rng_states(state["rng"], self.device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            reason = first_line(exc)
            raise WeightsError(f"{path}: not a checkpoint of this run ({reason})") from None

    # -- the loop --------------------------------------------------------------------------
    def run(self, on_step: OnStep | None = None) -> dict[str, Any]:
        """Train to `cfg.steps`; Ctrl-C or SIGTERM finishes the current step, saves a
        checkpoint and returns with `interrupted`. A completed run is exported."""
        cfg, main = self.cfg, self.ddp.main
        log = (self.out / "log.jsonl").open("a") if main else None
        stream = self.batches()
        interrupted, last = False, {}
        tic = time.perf_counter()
        try:
            with StopSignals() as stop:
                while self.step < cfg.steps:
                    *inputs, skipped = next(stream)
                    self.skipped += int(skipped.sum())
                    record = self.train_step(*inputs)
                    self.step += 1
                    now = time.perf_counter()
                    record |= {
                        "skipped_images": self.skipped,
                        "step": self.step,
                        "lr": self.optim.param_groups[0]["lr"],
                        "it_s": 1 / (now - tic),
                    }
                    tic = now
                    if main:
                        record |= self.after_step()
                    if log:
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                    if self.step % cfg.save_every == 0:
                        self.save_checkpoint()
                    last = record
                    if on_step:
                        on_step(self.step, record)
                    if self.ddp.anyone(stop.requested):
                        interrupted = True
                        break
        finally:
            if log:
                log.close()
        self.save_checkpoint()
        summary = {
            "steps": self.step,
            "interrupted": interrupted,
            "final": last,
            "skipped_images": self.skipped,
            "ranks": self.ddp.world,
            "ranks_in_sync": self.ddp.in_sync(self.model),
        }
        if main:
            if not interrupted:
                summary |= self.export()
            (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    def close(self, finished: bool = True) -> None:
        self.ddp.close(finished)
