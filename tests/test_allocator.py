"""`keep_freed_memory`: freed big buffers are reused instead of faulted in afresh."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import resource, sys
from a2k_cli.allocator import keep_freed_memory
if sys.argv[1] == "on":
    assert keep_freed_memory()
if sys.argv[1] == "up to 128 MiB":
    assert keep_freed_memory(up_to=128 << 20)
if sys.argv[1] == "up to 32 MiB":
    assert keep_freed_memory(up_to=32 << 20)
def touch():
    buffer = bytearray(b"\\1") * (64 << 20)  # malloc'ed and written, every page
    del buffer
touch()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_second_buffer(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="tunes glibc's malloc only",
)
def test_freed_pages_are_reused() -> None:
    pages = (64 << 20) // 4096
    assert page_faults_of_second_buffer("off") > pages // 2  # fresh mmap: every page faults
    assert page_faults_of_second_buffer("on") < pages // 20  # the same heap pages again
    assert page_faults_of_second_buffer("up to 128 MiB") < pages // 20
    assert page_faults_of_second_buffer("up to 32 MiB") > pages // 2  # too big to keep
