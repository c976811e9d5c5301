"""Training end to end on tiny folders: data rules, steps, exact resume, 2-process gloo DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from a2k_cli.model.encoder import Encoder
from a2k_cli.train.data import is_validation, scan_images
from a2k_cli.train.losses import (
    attention_style_loss,
    attention_style_targets,
    global_style_loss,
    total_variation,
)
from a2k_cli.train.objective import StyleTransferObjective
from a2k_cli.train.trainer import TrainConfig, Trainer, lr_factor
from a2k_cli.weights import load
from tests.conftest import ROOT


def write_images(folder, count, size=(80, 72), seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    for i in range(count):
        pixels = (torch.rand(size[1], size[0], 3, generator=gen) * 255).byte().numpy()
        Image.fromarray(pixels).save(folder / f"img{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    contents = write_images(root / "contents", 12, seed=1)
    styles = write_images(root / "styles" / "nested", 6, seed=2).parent
    return contents, styles


def test_scan_skips_and_counts_unreadable_tiny_and_foreign_files(tmp_path):
    write_images(tmp_path / "deep" / "er", 3)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("RGB", (8, 8)).save(tmp_path / "tiny.png")
    (tmp_path / "notes.txt").write_text("not an image")
    files, skipped = scan_images(tmp_path)
    assert [f.name for f in files] == ["img000.png", "img001.png", "img002.png"]
    assert skipped == 3  # broken, empty, tiny; .txt is not an image extension


def test_validation_split_is_stable_and_about_the_requested_share(tmp_path):
    from pathlib import Path

    names = [Path(f"{i:06d}.jpg") for i in range(2000)]
    share = sum(is_validation(n, 5) for n in names) / len(names)
    assert 0.03 < share < 0.07
    assert [is_validation(n, 5) for n in names[:50]] == [is_validation(n, 5) for n in names[:50]]


def test_lr_schedule_is_constant_then_decays_to_a_thirtieth():
    assert lr_factor(0, 100) == lr_factor(40, 100) == 1.0
    assert lr_factor(60, 100) == pytest.approx(0.3)
    assert lr_factor(100, 100) == pytest.approx(0.027)


def tiny_config(folders, out, **overrides) -> TrainConfig:
    contents, styles = folders
    cfg = dict(
        data=str(contents), styles=str(styles), out=str(out), steps=4, batch=2, crop=64, load=72,
        workers=0, val_percent=0, save_every=2, preview_every=2, previews=2,
    )  # fmt: skip
    cfg.update(overrides)
    return TrainConfig(**cfg)


@pytest.fixture()
def encoder_file(tiny_weights):
    return str(tiny_weights)


def test_train_runs_logs_previews_and_exports_weights_with_metadata(
    folders, tmp_path, encoder_file
):
    cfg = tiny_config(
        folders, tmp_path / "run", encoder=encoder_file, loss_network=encoder_file, global_levels=5
    )
    summary = Trainer(cfg).run()
    run = tmp_path / "run"
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and "global" in r and "attn" in r for r in records)
    assert "val_loss" in records[1] and sorted(p.name for p in (run / "previews").iterdir()) == [
        "step_000002.jpg",
        "step_000004.jpg",
    ]
    # contents, styles and outputs in three rows of two 64 px crops, each framed by 2 px
    assert Image.open(run / "previews" / "step_000004.jpg").size == (2 * 68, 3 * 68)
    net = load(run / "model.safetensors")
    training = json.loads(net.meta["training"])
    assert training["steps"] == 4 and training["data"]["content_train"] == 12
    config = json.loads(net.meta["config"])
    assert config["loss_network"] == encoder_file and config["global_levels"] == 5
    assert summary["steps"] == 4 and not summary["interrupted"]
    # the frozen encoder is the one we asked for; the trained parts moved
    source = load(encoder_file)
    assert torch.equal(net.encoder.conv31.weight, source.encoder.conv31.weight)
    assert not torch.equal(
        net.decoder.decoder_layer_1[1].weight, source.decoder.decoder_layer_1[1].weight
    )


def test_objective_measures_with_the_loss_network_over_the_requested_levels(tiny_weights):
    net = load(tiny_weights)
    torch.manual_seed(123)  # a judge that differs from the model's own encoder
    judge = Encoder(net.encoder.widths).requires_grad_(False)
    for conv in judge.children():  # He init keeps relu5_1 alive, so its statistics count
        torch.nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
    assert not torch.equal(judge.conv11.weight, net.encoder.conv11.weight)
    content, style = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    judged = StyleTransferObjective(net, 10.0, 1.25, 0.0, judge, global_levels=5)
    total, terms, output = judged(content, style)
    assert terms["global"].item() == pytest.approx(
        global_style_loss(judge(output), judge(style)).item(), rel=1e-5
    )
    relu5 = global_style_loss(judge(output)[4:], judge(style)[4:]).item()
    four_levels = global_style_loss(judge(output)[:4], judge(style)[:4]).item()
    assert relu5 > 1e-4 * four_levels  # so that counting relu5_1 or not is visible
    assert terms["global"].item() == pytest.approx(four_levels + relu5, rel=1e-6)
    targets = attention_style_targets(judge(content), judge(style))
    assert terms["attn"].item() == pytest.approx(
        attention_style_loss(judge(output), targets).item(), rel=1e-5
    )
    assert total.item() == pytest.approx(10 * terms["global"].item() + 1.25 * terms["attn"].item())
    # without a loss network the model's own encoder measures, over relu1_1..relu4_1
    _, own, output = StyleTransferObjective(net, 10.0, 1.25, 0.0)(content, style)
    expected = global_style_loss(net.encode(output)[:4], net.encode(style)[:4])
    assert own["global"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert own["global"].item() != pytest.approx(terms["global"].item(), rel=1e-2)


def test_total_variation_is_zero_on_flat_images_and_counts_in_the_objective(tiny_weights):
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert total_variation(flat).item() == 0
    stripes = torch.zeros(1, 3, 8, 8)
    stripes[..., ::2] = 1  # every horizontal neighbour differs by 1, no vertical one does
    assert total_variation(stripes).item() == pytest.approx(1.0)
    net = load(tiny_weights)
    content, style = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    torch.manual_seed(0)
    plain, plain_terms, _ = StyleTransferObjective(net, 10.0, 1.25, 0.0)(content, style)
    assert "tv" not in plain_terms
    torch.manual_seed(0)
    total, terms, output = StyleTransferObjective(net, 10.0, 1.25, 0.0, lambda_tv=500.0)(
        content, style
    )
    assert terms["tv"].item() == pytest.approx(total_variation(output).item())
    assert total.item() == pytest.approx(plain.item() + 500 * terms["tv"].item(), rel=1e-5)


def test_interrupt_then_resume_matches_an_uninterrupted_run(folders, tmp_path, encoder_file):
    straight = Trainer(tiny_config(folders, tmp_path / "a", encoder=encoder_file))
    straight.run()

    def stop_at_two(step, record):
        if step == 2:
            raise KeyboardInterrupt

    first = Trainer(tiny_config(folders, tmp_path / "b", encoder=encoder_file))
    summary = first.run(stop_at_two)
    assert summary["interrupted"] and summary["steps"] == 2
    assert not (tmp_path / "b" / "model.safetensors").exists()
    resumed = Trainer(tiny_config(folders, tmp_path / "b", encoder=encoder_file), resume=True)
    assert resumed.step == 2
    resumed.run()
    for (name, a), (_, b) in zip(
        straight.net.state_dict().items(), resumed.net.state_dict().items()
    ):
        assert torch.equal(a, b), name


def test_cli_refuses_bad_folders_and_resume_without_checkpoint(tmp_path):
    from typer.testing import CliRunner

    from a2k_cli.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app, ["train", "--data", str(tmp_path / "nope"), "--styles", str(tmp_path)]
    )
    assert result.exit_code == 1 and "not a folder" in result.output
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 1 and "no checkpoint.pt" in result.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    result = runner.invoke(
        app, ["distill", "--teacher", str(bad), "--data", str(tmp_path), "--init", str(bad)]
    )
    assert result.exit_code == 1 and "not a readable safetensors file" in result.output


def test_two_process_gloo_run_keeps_ranks_in_sync_and_only_rank0_writes(
    folders, tmp_path, encoder_file
):
    contents, styles = folders
    run = tmp_path / "ddp"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    cmd = launcher + [
        "-m", "a2k_cli", "train", "--data", str(contents), "--styles", str(styles),
        "--out", str(run), "--encoder", encoder_file, "--steps", "3", "--batch", "2",
        "--crop", "64", "--load-size", "72", "--workers", "0", "--device", "cpu",
        "--save-every", "3", "--preview-every", "3",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["ranks_in_sync"] is True
    assert len((run / "log.jsonl").read_text().splitlines()) == 3  # one writer
    assert json.loads(load(run / "model.safetensors").meta["training"])["batch"] == 4


def test_distill_learns_the_teacher_and_resumes(tmp_path, tiny_weights):
    """A few steps toward a (random) teacher lower the error; a longer second call resumes."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from a2k_cli.train.distill import DistillConfig, distill

    teacher = tmp_path / "teacher.safetensors"
    state = load(tiny_weights).encoder.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(teacher))
    images = write_images(tmp_path / "imgs", 6, size=(96, 96))
    cfg = DistillConfig(
        teacher=str(teacher), data=(str(images),), out=str(tmp_path / "d"), steps=20, batch=2,
        crop=64, load=80, val_percent=0, save_every=10, workers=0,
    )  # fmt: skip
    first = distill(cfg)
    log = [json.loads(line) for line in (tmp_path / "d" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    errors = first["val_relative_error"]
    assert first["steps"] == 20 and len(errors) == 5
    assert all(0 < e < float("inf") for e in errors.values())
    cfg.steps = 30
    assert distill(cfg)["steps"] == 30
    assert len((tmp_path / "d" / "log.jsonl").read_text().splitlines()) == 3
    with safe_open(str(tmp_path / "d" / "encoder.safetensors"), framework="pt") as f:
        assert f.metadata()["kind"] == "encoder" and "conv51.weight" in f.keys()


def test_distill_init_starts_from_an_earlier_encoder(tmp_path, tiny_weights):
    """`init` replaces the random student, so a near-zero lr leaves the given encoder as is."""
    from safetensors.torch import load_file, save_file

    from a2k_cli.train.distill import DistillConfig, distill

    start = {k: v.contiguous() for k, v in load(tiny_weights).encoder.state_dict().items()}
    save_file(start, str(tmp_path / "teacher.safetensors"))
    images = write_images(tmp_path / "imgs", 4, size=(96, 96))
    cfg = DistillConfig(
        teacher=str(tmp_path / "teacher.safetensors"), data=(str(images),), out=str(tmp_path / "d"),
        steps=10, batch=2, crop=64, load=80, lr=1e-12, val_percent=0, workers=0,
        init=str(tmp_path / "teacher.safetensors"),
    )  # fmt: skip
    summary = distill(cfg)
    assert max(summary["val_relative_error"].values()) < 1e-8  # student == teacher
    end = load_file(str(tmp_path / "d" / "encoder.safetensors"))
    assert all(torch.allclose(end[k], v, atol=1e-6) for k, v in start.items())


def test_new_loss_terms_and_bilinear_upsampling_train_and_export(folders, tmp_path, encoder_file):
    cfg = tiny_config(
        folders,
        tmp_path / "run",
        init=encoder_file,
        upsample="bilinear",
        lambda_distribution=100.0,
        lambda_identity_pixel=50.0,
        lambda_identity_feature=1.0,
        lambda_lattice=10.0,
        lambda_colour=50.0,
    )
    Trainer(cfg).run()
    records = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    terms = ("distribution", "identity_pixel", "identity_feature", "lattice", "colour")
    assert all(r[t] >= 0 for r in records for t in terms)
    assert all(r["skipped_images"] == 0 for r in records)
    net = load(tmp_path / "run" / "model.safetensors")
    assert net.decoder.upsample == "bilinear" and load(encoder_file).decoder.upsample == "nearest"


def test_sorted_distribution_loss_is_zero_for_a_permutation_and_grows_with_a_shift():
    from a2k_cli.train.losses import lattice_penalty, sorted_distribution_loss

    torch.manual_seed(0)
    feats = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4)]
    shuffled = [
        f.flatten(2)[..., torch.randperm(f.shape[-1] * f.shape[-2])].view_as(f) for f in feats
    ]
    assert sorted_distribution_loss(feats, shuffled) == pytest.approx(0.0, abs=1e-10)
    shifted = [f + 0.5 for f in feats]
    assert sorted_distribution_loss(feats, shifted) > 0.1
    smooth = F.interpolate(torch.rand(1, 3, 8, 8), size=(64, 64), mode="bicubic")
    blocky = F.interpolate(torch.rand(1, 3, 32, 32), scale_factor=2, mode="nearest")
    assert lattice_penalty(smooth) < 0.01 < lattice_penalty(blocky)


def test_colour_distribution_loss_ignores_where_colours_are_and_reads_a_lab_shift():
    from a2k_cli.measures import rgb_to_lab
    from a2k_cli.train.losses import colour_distribution_loss

    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 16)
    shuffled = image.flatten(2)[..., torch.randperm(256)].view_as(image)
    assert colour_distribution_loss(image, shuffled) == pytest.approx(0.0, abs=1e-5)
    grey, lighter = torch.full((1, 3, 8, 8), 0.4), torch.full((1, 3, 8, 8), 0.5)
    delta_l = float(rgb_to_lab(lighter)[0, 0, 0, 0] - rgb_to_lab(grey)[0, 0, 0, 0])
    # a pure lightness shift d projects onto unit directions as d·|cos|: mean d/2 on average
    loss = float(colour_distribution_loss(grey, lighter))
    assert 0.2 * delta_l < loss < 0.8 * delta_l
    output = image.clone().requires_grad_()
    colour_distribution_loss(output, torch.rand(2, 3, 16, 16)).backward()
    assert output.grad.abs().sum() > 0


def test_train_json_prints_the_summary_alone_on_stdout(folders, tmp_path, encoder_file):
    from typer.testing import CliRunner

    from a2k_cli.cli import app

    contents, styles = folders
    args = ["train", "--data", str(contents), "--styles", str(styles), "--out", str(tmp_path / "r")]
    args += ["--encoder", encoder_file, "--steps", "2", "--batch", "2", "--crop", "64"]
    args += ["--load-size", "72", "--workers", "0", "--device", "cpu", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["steps"] == 2 and summary["model"] == str(tmp_path / "r" / "model.safetensors")
