"""Folders larger than one machine: under PyTorch's launcher (`torchrun … -m a2k_cli
stylize …`) each process paints every WORLD_SIZE-th item from its RANK on, on its own GPU
where there are GPUs, and rank 0 prints the one summary of all of them."""

from __future__ import annotations

import os
from typing import Any


def rank_and_world() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) as torchrun sets them; (0, 1) for a plain run."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def shard_device(device: str) -> str:
    """`auto` under several CUDA processes means this process's own GPU (LOCAL_RANK)."""
    _, world = rank_and_world()
    if device != "auto" or world == 1:
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0')) % torch.cuda.device_count()}"


def my_share(count: int) -> list[int]:
    """Indices of the items (of `count`) this process paints: every WORLD_SIZE-th from RANK."""
    rank, world = rank_and_world()
    return list(range(rank, count, world))


def gather(keyed: list[tuple[Any, Any]]) -> list[Any]:
    """Every process's (key, item) pairs merged, the items in key order (the order the
    items were dealt in); a plain run just sorts its own."""
    _, world = rank_and_world()
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("gloo")
        shares: list[Any] = [None] * world
        dist.all_gather_object(shares, keyed)
        keyed = [pair for share in shares for pair in share]
    return [item for _, item in sorted(keyed, key=lambda pair: pair[0])]
