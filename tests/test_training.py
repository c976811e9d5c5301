"""Training end to end on tiny folders: data rules, steps, exact resume, 2-process gloo DDP."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from a2k_cli.measures import global_style_loss
from a2k_cli.model import A2KNet
from a2k_cli.model.encoder import Encoder
from a2k_cli.train.config import DistillConfig, RunError, TrainConfig, resume_config, write_config
from a2k_cli.train.data import scan_images, split
from a2k_cli.train.distill import Distiller
from a2k_cli.train.losses import attention_style_loss, attention_style_targets, total_variation
from a2k_cli.train.objective import StyleTransferObjective
from a2k_cli.train.run import Distributed
from a2k_cli.train.trainer import Trainer, lr_factor
from a2k_cli.weights import load, save
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


def test_validation_split_depends_on_the_file_name_alone_and_holds_out_the_share():
    files = [Path("photos") / f"{i:06d}.jpg" for i in range(2000)]
    held = split(files, 5, True)
    assert 0.03 < len(held) / len(files) < 0.07
    assert sorted(held + split(files, 5, False)) == files  # every file on exactly one side
    # a file keeps its side whatever else the folder holds, in any order, wherever it lives
    some = random.Random(0).sample(files, 300)
    moved = [Path("elsewhere") / "deeper" / f.name for f in some]
    assert {f.name for f in split(moved, 5, True)} == {f.name for f in held if f in some}
    assert split(files, 0, True) == [] and split(files, 100, True) == files


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


def test_stability_term_is_the_outputs_change_under_content_noise(tiny_weights, monkeypatch):
    from a2k_cli.train import objective

    net = load(tiny_weights)
    content, style = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    judged = StyleTransferObjective(net, 10.0, 1.25, 0.0, lambda_stability=1e4)
    monkeypatch.setattr(objective, "STABILITY_NOISE", 0.0)
    assert judged(content, style)[1]["stability"].item() == pytest.approx(0.0, abs=1e-12)
    monkeypatch.setattr(objective, "STABILITY_NOISE", 0.02)
    torch.manual_seed(0)
    total, terms, output = judged(content, style)
    torch.manual_seed(0)
    noisy = content + 0.02 * torch.randn_like(content)
    state = net.prepare_style(net.encode(style))
    expected = F.mse_loss(
        net.decode(*net.stylize_features(net.encode(noisy), [(state, 1.0)])), output
    )
    assert terms["stability"].item() == pytest.approx(expected.item(), rel=1e-4)
    assert terms["stability"].item() > 0
    net.zero_grad()
    terms["stability"].backward()  # it trains the decoder, not only the attention
    assert net.decoder.decoder_layer_1[1].weight.grad.abs().sum() > 0


def test_flat_areas_weigh_flat_fields_not_edges_or_texture():
    from a2k_cli.train.losses import flat_areas

    image = torch.full((1, 3, 64, 64), 0.5)
    image[..., :, 32:] = 0.9  # one vertical edge
    image[..., 48:, :16] += 0.1 * torch.sin(torch.arange(16) * torch.pi / 4)  # stripes, 8 px
    image = image + 0.002 * torch.randn_like(image)  # a photo's faint noise stays flat
    weight = flat_areas(image, 0.01)[0, 0]
    assert weight.shape == (64, 64)
    assert weight[:32, :24].min() > 0.9  # the flat field on the left
    assert weight[:, 30:34].max() < 1e-6  # along the edge
    assert weight[52:60, 4:12].max() < 0.05  # inside the stripes


def test_flat_stability_counts_the_change_on_flat_areas_only(tiny_weights, monkeypatch):
    from a2k_cli.train import objective

    net = load(tiny_weights)
    content, style = torch.full((1, 3, 64, 64), 0.4), torch.rand(1, 3, 64, 64)
    content[..., 24:40, 24:40] = torch.rand(3, 16, 16)  # a textured square on a flat field
    plain = StyleTransferObjective(net, 10.0, 1.25, 0.0, lambda_stability=1e4)
    flat = StyleTransferObjective(net, 10.0, 1.25, 0.0, lambda_stability=1e4, stability_flat=0.01)
    torch.manual_seed(0)
    _, terms, output = flat(content, style)
    torch.manual_seed(0)
    noisy = content + objective.STABILITY_NOISE * torch.randn_like(content)
    state = net.prepare_style(net.encode(style))
    change = net.decode(*net.stylize_features(net.encode(noisy), [(state, 1.0)])) - output
    weight = objective.flat_areas(content, 0.01)
    assert terms["stability"].item() == pytest.approx((weight * change**2).mean().item(), rel=1e-4)
    torch.manual_seed(0)
    assert 0 < terms["stability"].item() < plain(content, style)[1]["stability"].item()


def signal_at(step: int, signum: int):
    """An on_step callback that sends this process `signum` once `step` is done, as Ctrl-C
    (SIGINT) or `kill` (SIGTERM) would."""

    def on_step(done, record):
        if done == step:
            os.kill(os.getpid(), signum)

    return on_step


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name


def test_interrupt_then_resume_matches_an_uninterrupted_run(folders, tmp_path, encoder_file):
    # the colour term draws random projections: the RNG states must come back too
    tiny = dict(encoder=encoder_file, lambda_colour=10.0)
    straight = Trainer(tiny_config(folders, tmp_path / "a", **tiny))
    straight.run()
    first = Trainer(tiny_config(folders, tmp_path / "b", **tiny))
    summary = first.run(signal_at(2, signal.SIGINT))
    assert summary["interrupted"] and summary["steps"] == 2
    assert not (tmp_path / "b" / "model.safetensors").exists()
    resumed = Trainer(tiny_config(folders, tmp_path / "b", **tiny), resume=True)
    assert resumed.step == 2
    resumed.run()
    assert_same_weights(straight.model, resumed.model)


def as_if_set_up(run: Path, **setup) -> dict:
    """Rewrite the run's checkpoint as if the run had gone elsewhere (`setup`: device,
    precision, world); returns the checkpoint it held."""
    path = run / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    torch.save(state | {"setup": state["setup"] | setup}, path)
    return state


def test_resume_refuses_another_device_type_or_precision_in_one_clear_line(
    folders, tmp_path, encoder_file
):
    run = tmp_path / "run"
    cfg = tiny_config(folders, run, encoder=encoder_file, steps=2, device="cpu")
    Trainer(cfg).run()
    longer = replace(cfg, steps=3)
    where = f"{run} was trained on cpu in fp32; resume it on cpu in fp32"
    with pytest.raises(RunError, match=re.escape(f"{where} (it cannot move to cpu in bf16)")):
        Trainer(replace(longer, precision="bf16"), resume=True)
    # a CUDA run (fp16: a loss scaler's state) resumed on a CPU, as on a machine without one
    state = as_if_set_up(run, device="cuda", precision="fp16")
    moved = f"{run} was trained on cuda in fp16; resume it on cuda in fp16 (it cannot move to cpu"
    with pytest.raises(RunError, match=re.escape(moved)):
        Trainer(longer, resume=True)
    # a checkpoint from before the records (and the preset) resumes as it always did
    old = {k: v for k, v in state.items() if k not in ("setup", "preset")}
    torch.save(old, run / "checkpoint.pt")
    assert Trainer(longer, resume=True).run()["steps"] == 3


def test_resume_refuses_another_number_of_processes(
    folders, tmp_path, encoder_file, one_line_error
):
    from typer.testing import CliRunner

    from a2k_cli.cli import app

    run = tmp_path / "run"
    cfg = tiny_config(folders, run, encoder=encoder_file, steps=2, device="cpu")
    Trainer(cfg).run()
    assert as_if_set_up(run, world=2)["setup"]["world"] == 1  # as if torchrun had run 2
    refused = f"{run} was trained by 2 process(es); resume it with 2, not 1"
    with pytest.raises(RunError, match=re.escape(refused)):
        Trainer(replace(cfg, steps=3), resume=True)
    result = CliRunner().invoke(app, ["train", "--resume", str(run), "--steps", "3"])
    assert result.exit_code == 1 and refused in one_line_error(result)


def test_a_resume_after_a_crash_logs_the_steps_since_the_checkpoint_once(
    folders, tmp_path, encoder_file
):
    cfg = tiny_config(folders, tmp_path / "run", encoder=encoder_file)  # checkpoints at 2 and 4

    def crash(step, record):
        if step == 3:
            raise RuntimeError("power cut")

    with pytest.raises(RuntimeError, match="power cut"):
        Trainer(cfg).run(crash)
    log = tmp_path / "run" / "log.jsonl"
    with log.open("a") as f:
        f.write('{"loss": 0.25, "st')  # a line the crash cut short
    Trainer(cfg, resume=True).run()
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3, 4]


def test_a_run_resumes_as_it_was_built_when_its_init_file_is_replaced_or_gone(
    folders, tmp_path, encoder_file
):
    init = tmp_path / "start.safetensors"
    shutil.copy(encoder_file, init)
    cfg = tiny_config(folders, tmp_path / "run", init=str(init), steps=2)  # the file's upsample
    first = Trainer(cfg)
    first.run()
    other = A2KNet(replace(first.model.preset, upsample="bilinear", block_grids=(2, 2, 2)))
    save(other, init, preset="lite")  # another model under the same name
    resumed = Trainer(replace(cfg, steps=3), resume=True)
    assert resumed.model.preset == first.model.preset
    assert_same_weights(first.model, resumed.model)
    init.unlink()
    assert Trainer(replace(cfg, steps=3), resume=True).run()["steps"] == 3


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
    with pytest.raises(RunError, match="trained by 2 process"):  # one process cannot go on
        Trainer(tiny_config(folders, run, encoder=encoder_file, device="cpu"), resume=True)


@pytest.fixture()
def teacher_file(tmp_path, tiny_weights):
    from safetensors.torch import save_file

    teacher = tmp_path / "teacher.safetensors"
    state = load(tiny_weights).encoder.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(teacher))
    return str(teacher)


def tiny_distill(teacher, images, out, **overrides) -> DistillConfig:
    cfg = dict(
        teacher=teacher, data=[str(images)], out=str(out), steps=20, batch=2, crop=64, load=80,
        val_percent=0, save_every=10, workers=0, device="cpu",
    )  # fmt: skip
    return DistillConfig(**(cfg | overrides))


def test_distill_learns_the_teacher_and_a_resume_lengthens_it(tmp_path, teacher_file):
    """A few steps toward a (random) teacher lower the error; a resumed run goes further."""
    from safetensors import safe_open

    images = write_images(tmp_path / "imgs", 6, size=(96, 96))
    cfg = tiny_distill(teacher_file, images, tmp_path / "d")
    first = Distiller(cfg).run()
    log = [json.loads(line) for line in (tmp_path / "d" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"] and len(log[0]["levels"]) == 5
    errors = first["val_relative_error"]
    assert first["steps"] == 20 and len(errors) == 5 and first["skipped_images"] == 0
    assert all(0 < e < float("inf") for e in errors.values())
    with pytest.raises(ValueError, match="already holds a run"):
        Distiller(cfg)
    assert Distiller(replace(cfg, steps=24), resume=True).run()["steps"] == 24
    assert len((tmp_path / "d" / "log.jsonl").read_text().splitlines()) == 24
    with safe_open(str(tmp_path / "d" / "encoder.safetensors"), framework="pt") as f:
        assert f.metadata()["kind"] == "encoder" and "conv51.weight" in f.keys()
        assert json.loads(f.metadata()["distillation"])["steps"] == 24


def test_sigterm_stops_distill_after_the_step_and_a_resume_matches_an_uninterrupted_run(
    tmp_path, teacher_file
):
    images = write_images(tmp_path / "imgs", 6, size=(96, 96))
    for i in range(4):  # headers intact, bodies cut: found by the scan, not decodable
        images.joinpath(f"broken{i}.png").write_bytes(
            images.joinpath("img000.png").read_bytes()[:200]
        )
    straight = Distiller(tiny_distill(teacher_file, images, tmp_path / "a", steps=4))
    expected = straight.run()
    stopped = Distiller(tiny_distill(teacher_file, images, tmp_path / "b", steps=4))
    summary = stopped.run(signal_at(2, signal.SIGTERM))
    assert summary["interrupted"] and summary["steps"] == 2
    assert not (tmp_path / "b" / "encoder.safetensors").exists()
    checkpoint = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 2 and "rng" in checkpoint
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back
    resumed = Distiller(tiny_distill(teacher_file, images, tmp_path / "b", steps=4), resume=True)
    assert resumed.step == 2
    again = resumed.run()
    assert_same_weights(straight.model, resumed.model)
    assert again["skipped_images"] == expected["skipped_images"] > 0  # the broken file, counted


def test_distill_init_starts_from_an_earlier_encoder(tmp_path, tiny_weights):
    """`init` replaces the random student, so a near-zero lr leaves the given encoder as is."""
    from safetensors.torch import load_file, save_file

    start = {k: v.contiguous() for k, v in load(tiny_weights).encoder.state_dict().items()}
    save_file(start, str(tmp_path / "teacher.safetensors"))
    images = write_images(tmp_path / "imgs", 4, size=(96, 96))
    teacher = str(tmp_path / "teacher.safetensors")
    cfg = tiny_distill(teacher, images, tmp_path / "d", steps=10, lr=1e-12, init=teacher)
    summary = Distiller(cfg).run()
    assert max(summary["val_relative_error"].values()) < 1e-8  # student == teacher
    end = load_file(str(tmp_path / "d" / "encoder.safetensors"))
    assert all(torch.allclose(end[k], v, atol=1e-6) for k, v in start.items())


def test_a_distill_from_init_resumes_once_the_init_file_is_gone(tmp_path, teacher_file):
    init = tmp_path / "start.safetensors"
    shutil.copy(teacher_file, init)
    images = write_images(tmp_path / "imgs", 4, size=(96, 96))
    cfg = tiny_distill(teacher_file, images, tmp_path / "d", steps=2, init=str(init))
    Distiller(cfg).run()
    init.unlink()  # the checkpoint holds the student
    assert Distiller(replace(cfg, steps=3), resume=True).run()["steps"] == 3


def test_only_the_main_process_of_a_resumed_job_records_its_new_length(
    tmp_path, teacher_file, monkeypatch
):
    images = write_images(tmp_path / "imgs", 4, size=(96, 96))
    out = tmp_path / "d"
    Distiller(tiny_distill(teacher_file, images, out, steps=2)).run()
    stored = lambda: json.loads((out / "config.json").read_text())["steps"]  # noqa: E731
    cfg = resume_config(DistillConfig, out, {"steps": 3})  # what every process of a job reads
    assert cfg.steps == 3 and stored() == 2
    with monkeypatch.context() as patch:  # another rank of the job
        patch.setattr(Distributed, "main", property(lambda self: False))
        Distiller(cfg, resume=True)
    assert stored() == 2
    Distiller(cfg, resume=True)
    assert stored() == 3


def test_new_loss_terms_bilinear_upsampling_and_per_level_grids_train_and_export(
    folders, tmp_path, encoder_file
):
    cfg = tiny_config(
        folders,
        tmp_path / "run",
        init=encoder_file,
        upsample="bilinear",
        block_grids=[4, 2, 2],
        attn_target_grids=[4, 4, 2, 2],
        lambda_distribution=100.0,
        lambda_identity_pixel=50.0,
        lambda_identity_feature=1.0,
        lambda_lattice=10.0,
        lattice_periods=[2, 32],
        lambda_colour=50.0,
        lambda_stability=1e4,
    )
    Trainer(cfg).run()
    records = [
        json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    ]
    terms = ("distribution", "identity_pixel", "identity_feature", "lattice", "colour")
    assert all(r[t] >= 0 for r in records for t in (*terms, "stability"))
    assert all(r["skipped_images"] == 0 for r in records)
    net = load(tmp_path / "run" / "model.safetensors")
    assert net.decoder.upsample == "bilinear" and load(encoder_file).decoder.upsample == "nearest"
    assert net.preset.block_grids == (4, 2, 2)
    assert load(encoder_file).preset.block_grids == (1, 1, 1)


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


def test_lattice_penalty_judges_each_image_so_a_busy_one_cannot_hide_a_flat_ones_lattice():
    from a2k_cli.train.losses import lattice_penalty

    torch.manual_seed(0)
    busy = torch.rand(1, 3, 64, 64)  # large steps everywhere, no period
    flat = 0.5 + 0.02 * F.interpolate(torch.rand(1, 3, 32, 32), scale_factor=2, mode="nearest")
    both = torch.cat([busy, flat])
    assert lattice_penalty(busy) < 0.01 < lattice_penalty(flat)
    # pooled over the batch, the busy image's steps would swamp the flat one's lattice
    assert lattice_penalty(both) == pytest.approx(
        (lattice_penalty(busy) + lattice_penalty(flat)) / 2
    )
    assert lattice_penalty(both) > 0.4 * lattice_penalty(flat)


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


def test_gradient_distribution_loss_reads_the_grain_and_not_the_brightness():
    from a2k_cli.measures import rgb_to_lab
    from a2k_cli.train.losses import gradient_distribution_loss

    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 16)
    # transposed: across and down steps swap, the distribution of steps stays the same
    assert gradient_distribution_loss(image, image.transpose(-1, -2)) == pytest.approx(0, abs=1e-4)
    dark, light = torch.full((1, 3, 8, 8), 0.3), torch.full((1, 3, 8, 8), 0.6)
    assert gradient_distribution_loss(dark, light) == pytest.approx(0, abs=1e-4)
    # a one-pixel checkerboard steps by ±ΔL* at full scale and averages to flat at ½ and ¼
    checker = torch.where((torch.arange(8)[:, None] + torch.arange(8)) % 2 == 0, 0.3, 0.6)
    checker = checker.expand(1, 3, 8, 8)
    delta_l = float(rgb_to_lab(light)[0, 0, 0, 0] - rgb_to_lab(dark)[0, 0, 0, 0])
    assert float(gradient_distribution_loss(checker, dark)) == pytest.approx(delta_l / 3, rel=1e-3)
    output = image.clone().requires_grad_()
    gradient_distribution_loss(output, torch.rand(2, 3, 16, 16)).backward()
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


def test_a_setting_its_rule_refuses_is_a_usage_error_and_never_a_config(folders):
    from typer.testing import CliRunner

    from a2k_cli.cli import app
    from a2k_cli.train.config import SettingsError

    contents, styles = folders
    args = ["train", "--data", str(contents), "--styles", str(styles)]
    for option, value in (
        ("--lattice-periods", "2,3"),
        ("--lattice-periods", "x"),
        ("--crop", "96"),
        ("--merge", "cubic"),
        ("--block-grids", "3"),
        ("--block-grids", "2,2"),
        ("--attn-target-grids", "3"),
        ("--attn-target-grids", "4,4,2"),
    ):
        result = CliRunner().invoke(app, [*args, option, value])
        assert result.exit_code == 2 and f"{option} must be" in result.output, result.output
    with pytest.raises(
        SettingsError, match="--upsample must be nearest, bilinear, bilinear-last or "
    ):
        TrainConfig(data=str(contents), styles=str(styles), out="x", upsample="cubic")
    with pytest.raises(SettingsError, match="--lattice-periods must be smaller than --crop 128"):
        TrainConfig(data=str(contents), styles=str(styles), crop=128, lattice_periods=[2, 128])


def test_the_settings_offer_exactly_the_networks_choices():
    from a2k_cli.model.attention import GRID_CHOICES
    from a2k_cli.model.decoder import MERGE_MODES, UPSAMPLE_MODES
    from a2k_cli.train.config import BLOCK_GRIDS, MERGES, UPSAMPLES

    assert BLOCK_GRIDS == GRID_CHOICES
    assert tuple(UPSAMPLE_MODES) == UPSAMPLES
    assert MERGES == MERGE_MODES


def test_resume_refuses_to_change_the_recipe_in_both_commands(tmp_path, folders, teacher_file):
    from typer.testing import CliRunner

    from a2k_cli.cli import app

    runner = CliRunner()
    contents, styles = folders
    runs = {
        "train": TrainConfig(data=str(contents), styles=str(styles), out=str(tmp_path / "t")),
        "distill": DistillConfig(
            teacher=teacher_file, data=[str(contents)], out=str(tmp_path / "d")
        ),
    }
    for command, cfg in runs.items():
        Path(cfg.out).mkdir()
        write_config(cfg, cfg.out)
        Path(cfg.out, "checkpoint.pt").write_bytes(b"not read before the options are checked")
        resume = [command, "--resume", cfg.out]
        changed = runner.invoke(app, [*resume, "--lr", "1", "--load-size", "300", "--steps", "9"])
        assert changed.exit_code == 2, changed.output
        refused = changed.output.split("cannot change")[0]
        assert "--lr" in refused and "--load-size" in refused and "--steps" not in refused
        assert json.loads(Path(cfg.out, "config.json").read_text())["steps"] == cfg.steps
        # the run's own values are no change, and a new length is fine: on to the checkpoint
        same = runner.invoke(app, [*resume, "--lr", str(cfg.lr), "--steps", "9", "--device", "cpu"])
        assert same.exit_code == 1 and "cannot read checkpoint" in same.output, same.output
        # the new length is recorded by a run that resumes, which this one did not
        assert json.loads(Path(cfg.out, "config.json").read_text())["steps"] == cfg.steps


def test_an_interrupted_distill_says_how_to_resume_and_continues(
    tmp_path, teacher_file, monkeypatch
):
    from typer.testing import CliRunner

    from a2k_cli.cli import app

    images = write_images(tmp_path / "imgs", 4, size=(96, 96))
    out = tmp_path / "d"
    args = ["distill", "--teacher", teacher_file, "--data", str(images), "--out", str(out)]
    args += ["--steps", "3", "--batch", "2", "--crop", "64", "--load-size", "80", "--workers", "0"]
    with monkeypatch.context() as patch:  # Ctrl-C during step 1
        stop = lambda self: os.kill(os.getpid(), signal.SIGINT) or {}  # noqa: E731
        patch.setattr(Distiller, "after_step", stop)
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 130, result.output
    assert f"interrupted at step 1; resume with --resume {out}" in result.output
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "already holds a run" in again.output
    resumed = CliRunner().invoke(app, ["distill", "--resume", str(out), "--json"])
    assert resumed.exit_code == 0, resumed.output
    summary = json.loads(resumed.stdout)
    assert summary["steps"] == 3 and summary["encoder"] == str(out / "encoder.safetensors")


def test_an_error_raised_in_a_data_loading_worker_reaches_the_user_unwrapped():
    from torch._utils import ExceptionWrapper

    from a2k_cli.cli.train import worker_error

    try:
        raise ValueError("10 unreadable training images in a row")
    except ValueError:
        wrapper = ExceptionWrapper(where="in DataLoader worker process 0")
    with pytest.raises(ValueError) as raised:
        wrapper.reraise()
    assert "Caught ValueError" in str(raised.value)  # what torch hands the main process
    assert worker_error(raised.value) == "10 unreadable training images in a row"
    assert worker_error(ValueError("plain")) == "plain"


def test_two_grid_attention_targets_have_fainter_block_seams():
    """On smooth content, one grid's targets step where neighbouring blocks matched different
    style blocks; the shifted second grid halves those steps."""
    torch.manual_seed(0)
    widths = (8, 16, 32, 64, 64)
    sizes = [128 >> i for i in range(5)]
    content = [
        F.interpolate(torch.randn(1, c, 4, 4), size=(n, n), mode="bilinear")
        for c, n in zip(widths, sizes)
    ]
    style = [torch.randn(1, c, n, n) for c, n in zip(widths, sizes)]

    def seam_ratio(target: torch.Tensor) -> float:
        """relu3_1's 8-px blocks: steps across block boundaries over steps inside blocks
        (columns 1-2 and 2-3 are inside both grids' blocks)."""
        steps = (target[..., 1:] - target[..., :-1]).abs().mean((0, 1, 2))
        return float(steps[7::8].mean() / torch.cat([steps[1::8], steps[2::8]]).mean())

    one = seam_ratio(attention_style_targets(content, style)[1])
    two = seam_ratio(attention_style_targets(content, style, grids=2)[1])
    assert one > 2
    assert two < 0.75 * one
