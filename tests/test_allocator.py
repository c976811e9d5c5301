"""`keep_freed_memory`: which glibc malloc settings it makes, and where it does nothing.

How many page faults it saves is a machine figure: bench/studies/memory_peaks.py measures it.
"""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from a2k_cli import allocator
from a2k_cli.allocator import M_MMAP_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, keep_freed_memory


class FakeLibc:
    """Records mallopt calls; glibc returns 1 on success and 0 on failure."""

    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


@pytest.fixture
def libc(monkeypatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: fake)
    return fake


def test_all_sizes_stay_on_the_heap_and_it_is_never_trimmed(libc):
    assert keep_freed_memory() is True
    assert libc.calls == [(M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1)]


def test_up_to_raises_the_mmap_threshold_instead(libc):
    assert keep_freed_memory(up_to=128 << 20) is True
    assert libc.calls == [(M_MMAP_THRESHOLD, 128 << 20), (M_TRIM_THRESHOLD, 2**31 - 1)]


def test_a_refused_setting_is_reported(libc):
    libc.result = 0
    assert keep_freed_memory() is False


def test_nothing_to_tune_off_linux_or_without_glibc(monkeypatch):
    def no_glibc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(allocator.ctypes, "CDLL", no_glibc)
    monkeypatch.setattr(allocator.sys, "platform", "linux")
    assert keep_freed_memory() is False  # musl and other C libraries
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert keep_freed_memory(up_to=1 << 20) is False


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="tunes glibc's malloc only",
)
def test_the_real_glibc_takes_both_settings():
    """In a child process: the settings are process-wide and would outlive this test."""
    code = (
        "from a2k_cli.allocator import STYLIZE_UP_TO, keep_freed_memory\n"
        "print(keep_freed_memory(up_to=STYLIZE_UP_TO), keep_freed_memory())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]
