"""The weights format: round trip, validation errors, the registry, the official import."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import save_file

from a2k_cli.model import A2KNet
from a2k_cli.weights import (
    OFFICIAL_VGG_INDEX,
    WeightsError,
    available,
    import_official,
    load,
    read_metadata,
    save,
)


def test_round_trip_keeps_every_tensor_and_metadata(tmp_path):
    torch.manual_seed(0)
    net = A2KNet.from_preset("lite")
    path = save(net, tmp_path / "m.safetensors", preset="lite", training={"steps": 3})
    loaded = load(path)
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    meta = read_metadata(path)
    assert meta["format_version"] == "1" and meta["preset"] == "lite"
    assert json.loads(meta["training"]) == {"steps": 3}
    assert json.loads(meta["widths"]) == [16, 32, 64, 128, 128]
    assert not list(tmp_path.glob(".*"))  # no temporary left behind
    # computed otherwise than the paper's: version 2, which early readers refuse
    two_grids = A2KNet(replace(net.preset, block_grids=(2, 2, 2)))
    assert read_metadata(save(two_grids, tmp_path / "g.safetensors"))["format_version"] == "2"
    assert load(tmp_path / "g.safetensors").preset.block_grids == (2, 2, 2)
    smooth_merge = A2KNet(replace(net.preset, merge="bilinear"))
    assert read_metadata(save(smooth_merge, tmp_path / "b.safetensors"))["format_version"] == "2"
    assert load(tmp_path / "b.safetensors").transform.merge_mode == "bilinear"


def test_missing_and_misshapen_tensors_are_one_line_errors(tiny_weights, tmp_path):
    from safetensors import safe_open

    with safe_open(str(tiny_weights), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    broken = dict(state)
    del broken["decoder.decoder_layer_1.1.bias"]
    save_file(broken, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(
        WeightsError, match=r"missing\.safetensors: missing tensor 'decoder.decoder_layer_1.1.bias'"
    ):
        load(tmp_path / "missing.safetensors")
    broken = dict(state, **{"a2k.q.weight": torch.zeros(3, 3, 1, 1)})
    save_file(broken, str(tmp_path / "shape.safetensors"), metadata=meta)
    with pytest.raises(
        WeightsError, match=r"'a2k.q.weight' has shape \(3, 3, 1, 1\), expected \(64, 64, 1, 1\)"
    ) as e:
        load(tmp_path / "shape.safetensors")
    assert "\n" not in str(e.value)
    (tmp_path / "junk.safetensors").write_bytes(b"not a weights file")
    with pytest.raises(WeightsError, match="junk.safetensors: not a readable safetensors file"):
        load(tmp_path / "junk.safetensors")
    with pytest.raises(WeightsError, match="unknown model"):
        load("no-such-model")


def test_user_weights_are_found_by_name(tiny_weights, monkeypatch, tmp_path):
    monkeypatch.setenv("A2K_HOME", str(tmp_path))
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "mine.safetensors").write_bytes(tiny_weights.read_bytes())
    assert available()["mine"] == tmp_path / "weights" / "mine.safetensors"
    assert isinstance(load("mine"), A2KNet)


def fake_official_files(tmp_path, net: A2KNet):
    """State dicts under the authors' key names, saved the way their code saves them."""
    state = net.state_dict()
    vgg = {}
    for name, index in OFFICIAL_VGG_INDEX.items():
        vgg[f"{index}.weight"] = state[f"encoder.{name}.weight"]
        vgg[f"{index}.bias"] = state[f"encoder.{name}.bias"]
    vgg["45.weight"] = torch.zeros(1)  # unused deeper layers are ignored
    torch.save(vgg, tmp_path / "vgg_normalised.pth")
    for prefix, filename in (
        ("a2k", "latest_net_A2K.pth"),
        ("transform", "latest_net_transform.pth"),
        ("decoder", "latest_net_decoder.pth"),
    ):
        torch.save(
            {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")},
            tmp_path / filename,
        )


def test_import_official_converts_state_dicts_with_official_keys(tmp_path):
    torch.manual_seed(0)
    net = A2KNet.from_preset("paper")
    for p in net.parameters():
        p.data.normal_()
    fake_official_files(tmp_path, net)
    out = import_official(tmp_path / "vgg_normalised.pth", tmp_path, tmp_path / "paper.safetensors")
    loaded = load(out)
    assert read_metadata(out)["preset"] == "paper"
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    from typer.testing import CliRunner

    from a2k_cli.cli import app

    args = ["weights", "import-official", "--vgg", str(tmp_path / "vgg_normalised.pth")]
    args += ["--checkpoints", str(tmp_path), "-o", str(tmp_path / "cli.safetensors"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "output": str(tmp_path / "cli.safetensors"),
        "preset": "paper",
    }


def test_import_official_with_the_authors_relu3_file(tmp_path, shared_path):
    real = shared_path("fixtures", "official_latest_net_A2K.pth")
    net = A2KNet.from_preset("paper")
    fake_official_files(tmp_path, net)
    (tmp_path / "latest_net_A2K.pth").write_bytes(real.read_bytes())
    out = import_official(tmp_path / "vgg_normalised.pth", tmp_path, tmp_path / "paper.safetensors")
    official = torch.load(real, weights_only=True)
    loaded = load(out)
    for k, v in official.items():
        assert torch.equal(loaded.a2k.state_dict()[k], v)


def test_import_official_refuses_missing_files_and_pickled_code(tmp_path):
    net = A2KNet.from_preset("paper")
    fake_official_files(tmp_path, net)
    (tmp_path / "latest_net_decoder.pth").unlink()
    with pytest.raises(WeightsError, match="latest_net_decoder.pth: missing"):
        import_official(tmp_path / "vgg_normalised.pth", tmp_path, tmp_path / "o.safetensors")
    torch.save({"x": object.__new__(Exploit)}, tmp_path / "latest_net_decoder.pth")
    with pytest.raises(WeightsError, match="cannot read checkpoint"):
        import_official(tmp_path / "vgg_normalised.pth", tmp_path, tmp_path / "o.safetensors")


class Exploit:
    """Any non-tensor object must be refused by weights_only loading."""
