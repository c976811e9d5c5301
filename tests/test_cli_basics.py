"""The CLI shell: help without torch, version, info, weights import errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from a2k_cli import __version__
from a2k_cli.cli import app

runner = CliRunner()


def run_main_in_a_fresh_process(*args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    """`a2k ARGS` in a new interpreter; also which of torch, numpy and PIL it imported."""
    code = (
        f"import sys; sys.argv = {['a2k', *args]!r}\n"
        "from a2k_cli.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'numpy', 'PIL') if m in sys.modules]\n"
        "print('imported:', *heavy, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done, done.stderr.rsplit("imported:", 1)[1].split()


def test_help_and_version_import_neither_torch_nor_numpy_nor_pil():
    shown, imported = run_main_in_a_fresh_process("--help")
    assert imported == [] and "info" in shown.stdout and "stylize" in shown.stdout
    version, imported = run_main_in_a_fresh_process("--version")
    assert imported == [] and version.stdout.strip() == f"a2k {__version__}"


def test_unreadable_style_fails_before_the_model_loads(tmp_path):
    bad = tmp_path / "style.jpg"
    bad.write_bytes(b"not an image")
    argv = ["a2k", "stylize", str(bad), "--style", str(bad)]
    code = (
        f"import sys; sys.argv = {argv!r}\n"
        "from a2k_cli.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print(code)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "1", result.stderr
    assert result.stderr.startswith(f"error: style: {bad}")


def run_main_with_torch_loaded(*args: str) -> subprocess.CompletedProcess:
    argv = ["a2k", *args]
    code = f"import sys, torch; sys.argv = {argv!r}\nfrom a2k_cli.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_quick_exit_after_torch_keeps_exit_codes_and_flushes_output(tmp_path):
    ok = run_main_with_torch_loaded("--version")
    assert ok.returncode == 0 and ok.stdout.strip() == "a2k 0.1.0"
    missing = str(tmp_path / "missing.jpg")
    bad = run_main_with_torch_loaded("stylize", missing, "--style", missing)
    assert bad.returncode == 1
    assert bad.stderr.startswith(f"error: style: {missing}: no such file or style name")


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "a2k 0.1.0" in result.stdout


def test_info_json_lists_device_and_models(tiny_weights):
    import shutil

    from a2k_cli.paths import bundled_weights_dir, user_weights_dir

    user_weights_dir().mkdir(parents=True, exist_ok=True)
    mine = Path(shutil.copy(tiny_weights, user_weights_dir() / "mine.safetensors"))
    result = runner.invoke(app, ["info", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["device"] in {"cpu", "cuda", "mps"} and report["a2k"] == __version__
    assert report["models"] == {
        "a2k-lite": {"path": str(bundled_weights_dir() / "a2k-lite.safetensors"), "preset": "lite"},
        "mine": {"path": str(mine), "preset": "lite"},
    }


def test_import_official_missing_input_is_one_line_error(tmp_path):
    result = runner.invoke(
        app,
        [
            "weights",
            "import-official",
            "--vgg",
            str(tmp_path / "nope.pth"),
            "--checkpoints",
            str(tmp_path),
            "-o",
            str(tmp_path / "o.safetensors"),
        ],
    )
    assert result.exit_code == 1
    assert "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.safetensors").exists()


def test_weights_list_says_how_each_model_was_made_and_where_user_models_go(tmp_path):
    import os

    from a2k_cli.paths import user_weights_dir

    result = CliRunner().invoke(app, ["weights", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    row = next(line for line in result.stdout.splitlines() if "a2k-lite" in line)
    assert "trained" in row and "steps" in row
    assert f"your own models: {user_weights_dir()}" in result.stdout
    assert os.environ["A2K_HOME"] in result.stdout


def test_help_shows_the_defaults_rich_markup_used_to_swallow():
    wide = {"COLUMNS": "250"}
    train = CliRunner().invoke(app, ["train", "--help"], env=wide).stdout
    assert "[default: 20000]" in train and "[default: a2k-lite]" in train
    stylize = CliRunner().invoke(app, ["stylize", "-h"], env=wide).stdout
    assert "[default: png]" in stylize and "[default: beside each content file" in stylize
    for command in ("stylize", "grid", "video", "sheet", "styles", "train", "distill", "eval"):
        assert "Example" in CliRunner().invoke(app, [command, "-h"], env=wide).stdout, command
