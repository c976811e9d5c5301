"""Device and dtype choice for inference and training."""

from __future__ import annotations

import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    """`auto` means CUDA, then Apple MPS, then CPU; any torch device string is accepted."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = line.split(":", 1)[1].split()
                    return "avx512_bf16" in flags or "amx_bf16" in flags
    except OSError:
        pass
    return False


def auto_precision(device: torch.device) -> tuple[str, str]:
    """(precision, why) that `auto` picks for painting: fp16 on CUDA (tensor cores), bf16 on
    CPUs that compute it natively (the pictures change less than the quality measures'
    noise: bench/results/precision_quality.json), fp32 elsewhere (emulated bf16 and CPU
    half are slow)."""
    if device.type == "cuda":
        return "fp16", "CUDA computes fp16 on its tensor cores"
    if device.type == "cpu" and native_bf16():
        return "bf16", "this CPU computes bf16 natively (AVX512-BF16 or AMX)"
    return "fp32", "no native half precision here"


def pick_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The compute dtype for `precision` (auto, fp32, bf16, fp16) on `device`."""
    if precision == "auto":
        precision = auto_precision(device)[0]
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")
    if precision == "fp16" and device.type == "cpu":
        raise ValueError("fp16 runs on GPUs only; on a CPU use bf16 or fp32")
    return PRECISIONS[precision]


def physical_cores() -> int:
    """Physical cores this process may use: SMT siblings only slow convolutions down."""
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = set()
    try:
        with open("/proc/cpuinfo") as f:
            package = core = None
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    package = value.strip()
                elif key == "core id":
                    core = value.strip()
                    cores.add((package, core))
    except OSError:
        pass
    return max(1, min(len(cores) or allowed or 1, allowed or 1))


def available_memory(device: torch.device) -> int | None:
    """Bytes a CPU device can still allocate (Linux's MemAvailable), or None where unknown.

    Only Linux CPUs need to know: there an allocation past the free memory is not refused
    but ends in the kernel's OOM killer, while CUDA and other systems raise an error the
    commands already report.
    """
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def configure_threads() -> None:
    torch.set_num_threads(physical_cores())
