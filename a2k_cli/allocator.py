"""Keep freed memory in the process, so big tensors stop paying for fresh pages.

glibc hands every allocation above its mmap threshold (128 KiB to 32 MiB) straight to the
kernel and back on free. A network's activations are tens of MiB each, so every layer got
brand-new pages that the kernel had to fault in and zero: on the 2-core CPU this was
written on, 18 % of a training step went to page faults. Serving them from the heap and
never trimming it reuses the same pages instead: 25 % more training steps per second
(`bench/train_speed.py`: 0.32 -> 0.40), and a stylization is 15 % faster at 1024 px and
30 % at 4K. The price is fragmentation — peak memory of a batch-8 256 px training run went
from 2.4 to 3.4 GB, of a 4K stylization from 2.8 to 3.6 GB — which the engine's memory
estimate allows for. It is process-wide, so `import a2k_cli` never does it: the commands,
which own their process, turn it on.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve large allocations from glibc's heap and never trim it; False where not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries: nothing to tune
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
