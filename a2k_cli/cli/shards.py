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


def gather(items: list[Any]) -> list[Any]:
    """Every process's share, back in the order the items were dealt (item i went to rank
    i % world); the identity for a plain run."""
    rank, world = rank_and_world()
    if world == 1:
        return items
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    shares: list[list[Any]] = [[] for _ in range(world)]
    dist.all_gather_object(shares, items)
    dealt = []
    for i in range(sum(len(share) for share in shares)):
        dealt.append(shares[i % world][i // world])
    return dealt
