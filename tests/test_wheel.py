"""The package as users get it: a wheel installed away from the checkout, weights and all."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def test_installed_wheel_stylizes_with_its_bundled_weights(tmp_path):
    dist, target, work, src = (tmp_path / name for name in ("dist", "site", "work", "src"))
    work.mkdir()
    src.mkdir()
    # build from a copy: setuptools builds in the source tree and would leave build/ there
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("a2k_cli", "weights"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    build = subprocess.run([*pip, "wheel", "--no-deps", "-w", dist, src], capture_output=True)
    assert build.returncode == 0, build.stderr.decode()[-2000:]
    (wheel,) = dist.glob("a2k_cli-*.whl")
    install = [*pip, "install", "--no-deps", "--target", target, wheel]
    assert subprocess.run(install, capture_output=True).returncode == 0
    # run from elsewhere with the installed copy first on the path, not the checkout
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import a2k_cli.paths as p; print(p.bundled_weights_dir())"],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
    )
    assert Path(where.stdout.strip()) == target / "a2k_cli" / "_bundled"
    out = work / "out.png"
    photo_file = REPO / "examples" / "photos" / "lighthouse.jpg"
    cmd = [sys.executable, "-m", "a2k_cli", "stylize", photo_file]
    cmd += ["--style", "starry-night", "-o", out, "--size", "96"]  # a built-in style
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=work, env=env)
    assert run.returncode == 0, run.stderr
    with Image.open(photo_file) as photo, Image.open(out) as painted:
        assert max(painted.size) == 96
        assert abs(painted.width / painted.height - photo.width / photo.height) < 0.05
