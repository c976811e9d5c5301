"""`a2k eval`: the paper's content/style losses, pair matching by name, the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from a2k_cli import evaluate as ev
from a2k_cli.cli import app

runner = CliRunner()


def identity_encoder(image):
    """A stand-in loss network whose five "levels" are the image itself: hand-checkable."""
    return [image] * 5


def test_constant_images_give_the_analytic_style_loss():
    a, b = torch.full((1, 3, 8, 8), 0.2), torch.full((1, 3, 8, 8), 0.7)
    content_loss, style_loss = ev.losses(identity_encoder, a, b, a)
    # means differ by 0.5 on every channel at five levels; stds are equal (sqrt(eps))
    assert style_loss == pytest.approx(5 * 0.5**2)
    assert content_loss == pytest.approx(0.0)


def test_negated_output_gives_the_analytic_content_loss():
    torch.manual_seed(0)
    content = torch.rand(1, 3, 16, 16) + 1.0  # variance >> eps
    content_loss, _ = ev.losses(identity_encoder, content, content, 1 - content)
    # mvn(-x) = -mvn(x): MSE = 4 * mean(mvn(x)^2) = 4 (N-1)/N per level, two levels
    n = 16 * 16
    assert content_loss == pytest.approx(2 * 4 * (n - 1) / n, rel=1e-3)


def test_identical_images_give_zero_losses_with_a_real_encoder(tiny_weights):
    network, label = ev.loss_network(tiny_weights)
    assert "model" in label and network.widths == (16, 32, 64, 128, 128)
    torch.manual_seed(1)
    image = torch.rand(1, 3, 64, 96)
    content_loss, style_loss = ev.losses(network, image, image, image)
    assert content_loss == 0.0 and style_loss == 0.0
    other = torch.rand(1, 3, 64, 96)
    assert ev.losses(network, image, other, other)[0] > 0


def test_teacher_file_loads_as_an_encoder_without_its_aux_heads(shared_path):
    teacher = shared_path("teacher", "vgg19_x16_teacher.safetensors")
    network, label = ev.loss_network(encoder=teacher)
    assert network.widths == (16, 32, 64, 128, 128) and teacher.name in label


def test_authors_vgg_file_gives_a_paper_width_encoder(tmp_path):
    from a2k_cli.model.encoder import Encoder
    from a2k_cli.weights import OFFICIAL_VGG_INDEX

    paper = Encoder((64, 128, 256, 512, 512)).state_dict()
    official = {
        f"{index}.{kind}": paper[f"{name}.{kind}"]
        for name, index in OFFICIAL_VGG_INDEX.items()
        for kind in ("weight", "bias")
    }
    torch.save(official, tmp_path / "vgg_normalised.pth")
    network, label = ev.loss_network(vgg=tmp_path / "vgg_normalised.pth")
    assert network.widths == (64, 128, 256, 512, 512) and "VGG-19" in label
    assert torch.equal(network.conv51.weight, paper["conv51.weight"])


def touch(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"")
    return paths


def test_outputs_match_by_content_and_style_stems(tmp_path):
    contents = touch(tmp_path / "c", "cat.jpg", "dog.png")
    styles = touch(tmp_path / "s", "monet.jpg", "van_gogh.jpg")
    outputs = touch(tmp_path / "o", "cat_monet.png", "dog_van_gogh.jpg", "dog.png", "x_y.png")
    matched, unmatched = ev.match_outputs(contents, styles, outputs)
    assert matched == [
        ev.Triple(contents[0], styles[0], outputs[0]),
        ev.Triple(contents[1], styles[1], outputs[1]),
    ]
    assert unmatched == outputs[2:]


def test_an_ambiguous_name_is_unmatched_not_guessed(tmp_path):
    contents = touch(tmp_path / "c", "a_b.jpg", "a.jpg")
    styles = touch(tmp_path / "s", "c.jpg", "b_c.jpg")
    outputs = touch(tmp_path / "o", "a_b_c.png", "a_c.png")
    matched, unmatched = ev.match_outputs(contents, styles, outputs)
    assert [t.output.name for t in matched] == ["a_c.png"] and unmatched == [outputs[0]]


def test_output_stem_follows_the_stylize_naming_rule():
    assert ev.output_stem(Path("in/photo.jpg"), Path("art/starry night.png")) == (
        "photo_starry night"
    )


def flat_folders(tmp_path, picture, files: dict[str, tuple]) -> list[str]:
    """Folders c (contents), s (styles), o (outputs) of flat pictures: {"c/p1.png": (w, h, rgb)}."""
    for folder in "cso":
        (tmp_path / folder).mkdir()
    for name, (width, height, colour) in files.items():
        picture(width, height, color=colour).save(tmp_path / name)
    return [str(tmp_path / d) for d in "cso"]


def test_eval_json_schema_unmatched_and_failed(tmp_path, tiny_weights, picture):
    flat_folders(
        tmp_path,
        picture,
        {
            "c/p1.png": (96, 64, (200, 30, 30)),
            "c/p2.png": (96, 64, (30, 200, 30)),
            "s/art.png": (64, 64, (30, 30, 200)),
            "o/p1_art.png": (192, 128, (200, 30, 30)),
            "o/stray.png": (96, 64, (0, 0, 0)),
        },
    )
    (tmp_path / "o" / "p2_art.jpg").write_bytes(b"not an image")
    args = ["eval", *(str(tmp_path / d) for d in "cso"), "--model", str(tiny_weights)]
    result = runner.invoke(app, [*args, "--json", "--size", "96"])
    assert result.exit_code == 1  # one output could not be read
    report = json.loads(result.stdout)
    assert set(report) == {"loss_network", "size", "mean", "pairs", "unmatched", "failed"}
    assert report["size"] == 96 and "tiny-lite" in report["loss_network"]
    (pair,) = report["pairs"]
    assert set(pair) == {"content", "style", "output", *ev.MEASURES}
    assert Path(pair["output"]).name == "p1_art.png"
    assert pair["content_loss"] == pytest.approx(0.0, abs=1e-6)  # output = resized content
    assert pair["style_loss"] > 0
    assert pair["palette"] > 50  # flat red against flat blue: ΔE 176 in CIELAB
    assert pair["texture"] == 0.0  # both flat
    assert pair["edge_correlation"] == 0.0  # no edges in either
    assert pair["lattice_2"] == 1.0  # no steps at all
    assert report["mean"] == {"count": 1, **{k: pair[k] for k in ev.MEASURES}, "lattice_2_max": 1.0}
    assert [Path(p).name for p in report["unmatched"]] == ["stray.png"]
    assert [Path(f["output"]).name for f in report["failed"]] == ["p2_art.jpg"]


def test_eval_table_and_one_line_errors(tmp_path, tiny_weights, picture):
    dirs = flat_folders(
        tmp_path,
        picture,
        {
            "c/p1.png": (96, 64, (200, 30, 30)),
            "s/art.png": (96, 64, (30, 30, 200)),
            "o/p1_art.png": (96, 64, (100, 30, 30)),
        },
    )
    result = runner.invoke(app, ["eval", *dirs, "--model", str(tiny_weights)])
    assert result.exit_code == 0 and "p1_art.png" in result.stdout and "mean of 1" in result.stdout

    missing = runner.invoke(app, ["eval", *dirs[:2], str(tmp_path / "nope")])
    assert missing.exit_code == 1 and "no such file" in missing.output
    assert "Traceback" not in missing.output
    bad_model = runner.invoke(app, ["eval", *dirs, "--model", str(tmp_path / "no.safetensors")])
    assert bad_model.exit_code == 1 and len(bad_model.output.strip().splitlines()) == 1
    none = runner.invoke(app, ["eval", *dirs[:2], dirs[0]])
    assert none.exit_code == 1 and "no output named" in none.output
