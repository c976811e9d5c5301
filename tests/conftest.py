"""Shared fixtures: the read-only `../shared` material (skipped when absent) and tiny nets."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the project's ../shared material is not beside this checkout)")
    return path


@pytest.fixture(autouse=True)
def _isolated_user_dir(tmp_path_factory, monkeypatch):
    """Never touch the real user weights folder."""
    monkeypatch.setenv("A2K_HOME", str(tmp_path_factory.mktemp("a2k_home")))


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A randomly initialised lite model saved in our format (fast stand-in for real weights)."""
    import torch

    from a2k_cli.model import A2KNet
    from a2k_cli.weights import save

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "tiny-lite.safetensors"
    return save(A2KNet.from_preset("lite"), path, preset="lite", provenance="random init (tests)")
