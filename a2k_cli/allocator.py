"""Keep freed memory in the process, so big tensors stop paying for fresh pages.

glibc hands every allocation above its mmap threshold (128 KiB to 32 MiB) straight to the
kernel and back on free. A network's activations are tens of MiB each, so every layer got
brand-new pages that the kernel had to fault in and zero: on the 2-core CPU this was
written on, 18 % of a training step went to page faults. Serving them from the heap and
never trimming it reuses the same pages instead: 25 % more training steps per second
(`bench/train_speed.py`: 0.32 -> 0.40). The price is fragmentation — peak memory of a
batch-8 256 px training run went from 2.4 to 3.4 GB — so stylizing keeps only buffers up to
`STYLIZE_UP_TO` on the heap: on two 2-core machines, 8-15 % faster over a folder of 1024 px
photos and 7-30 % on a 4K one, whose peak in `a2k stylize` goes from 2.3-3.3 GiB to
2.6-3.8 GiB, varying run to run (keeping every size was 5-10 % faster still, for +1.2 GB).
It is process-wide, so `import a2k_cli` never does it: the commands, which own their
process, turn it on.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

# Above this, a map (4 MP at the lite encoder's 16 channels) still gets fresh pages: the
# biggest maps are the ones that fragment the heap most.
STYLIZE_UP_TO = 256 * 2**20


def keep_freed_memory(up_to: int | None = None) -> bool:
    """Serve allocations up to `up_to` bytes (all when None) from glibc's heap and never
    trim it; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries: nothing to tune
        return False
    heap_only = mallopt(M_MMAP_MAX, 0) if up_to is None else mallopt(M_MMAP_THRESHOLD, up_to)
    return bool(heap_only) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
