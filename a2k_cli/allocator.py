"""Keep freed memory in the process, so big tensors stop paying for fresh pages.

glibc hands every allocation above its mmap threshold straight to the kernel and back on
free; a network's activations are tens of MiB each, so every layer got fresh pages the
kernel had to fault in and zero. Serving them from the heap and never trimming it reuses
the same pages. The price is fragmentation, so stylizing keeps only buffers up to
`STYLIZE_UP_TO` on the heap (figures: bench/results/design-measurements.md).
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
