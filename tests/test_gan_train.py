"""Generator training on a tiny hand-built dataset: losses fall, checkpoints round-trip, resume
continues exactly where a run stopped, and the run dir holds every documented file.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _gan_data import (
    make_pair_root,
    one_torch_thread,  # noqa: F401 - an autouse fixture
    photo,
    scene,
)

from labelforge.errors import InputError, OutputExistsError
from labelforge.gan.checkpoint import load_checkpoint, load_generator
from labelforge.gan.config import GeneratorConfig, TrainConfig
from labelforge.gan.presets import get_preset
from labelforge.gan.train import train_generator

GEN, BASE = get_preset("tiny")
CFG = replace(BASE, height=32, width=64, batch_size=2, epochs=2, log_every=1, num_samples=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_pair_root(tmp_path_factory.mktemp("pairs") / "root", n=6)


def _log(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run)["generator"]


def test_a_few_steps_lower_the_losses(root, tmp_path):
    torch.manual_seed(0)
    res = train_generator(root, tmp_path / "run", GEN, replace(CFG, epochs=6), overwrite=True)
    steps = [r for r in _log(tmp_path / "run") if r["event"] == "step"]
    assert res.steps == len(steps) == 18  # 6 samples / batch 2 = 3 steps per epoch
    first, last = steps[:4], steps[-4:]

    def mean(rows: list[dict], k: str) -> float:
        return sum(r[k] for r in rows) / len(rows)

    # The pixel distance to the photo and the feature-matching loss both fall well below where they began.
    assert mean(last, "L1") < 0.85 * mean(first, "L1")
    assert mean(last, "G_feat") < 0.85 * mean(first, "G_feat")
    assert all(r["G_VGG"] == 0 for r in steps)  # no VGG weights given


def test_run_dir_holds_checkpoint_log_samples_and_marker(root, tmp_path):
    out = tmp_path / "run"
    train_generator(root, out, GEN, CFG)
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "generator.pt", "log.jsonl", "run.json", "samples"]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch-001.png", "epoch-002.png"]
    epochs = [r for r in _log(out) if r["event"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "train-generator" and run["train_config"]["height"] == 32
    assert run["sampler"] == {"kind": "DistributedSampler", "seed": 0, "samples": 6} and run["world_size"] == 1
    assert not list(out.glob(".*tmp"))  # atomic writes leave no temporary files

    ck = load_checkpoint(out)
    assert ck["epoch"] == 2 and ck["step"] == 6 and ck["input_nc"] == 35 and ck["size"] == [32, 64]
    assert ck["generator_config"] == GEN.__dict__ and ck["label_space"]["name"] == "cityscapes"
    assert {"optimizer_g", "optimizer_d", "discriminator", "labelforge_version"} <= set(ck)
    assert ck["format"] == "labelforge.generator/1" and ck["sampler"] == run["sampler"]
    net, info = load_generator(out / "generator.pt")
    for k, v in net.state_dict().items():
        assert torch.equal(v, ck["generator"][k])
    assert info["generator_config_obj"] == GEN

    with pytest.raises(OutputExistsError, match="already finished"):
        train_generator(root, out, GEN, CFG)


def test_training_is_deterministic_and_resume_continues_exactly(root, tmp_path):
    straight = tmp_path / "straight"
    train_generator(root, straight, GEN, CFG)
    # The same run stopped after epoch 1 and resumed with the same settings, the epoch count aside.
    split = tmp_path / "split"
    train_generator(root, split, GEN, replace(CFG, epochs=1))
    res = train_generator(root, split, GEN, replace(CFG, workers=1), resume=True)
    assert (res.start_epoch, res.epochs, res.steps) == (1, 2, 6)
    a, b = _weights(straight), _weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["epoch"] for r in _log(split) if r["event"] == "epoch"] == [1, 2]

    # Resuming a finished run with more epochs trains only the new ones.
    res = train_generator(root, split, GEN, replace(CFG, epochs=3), resume=True)
    assert (res.start_epoch, res.epochs) == (2, 3) and (split / "_SUCCESS").exists()
    assert load_checkpoint(split)["epoch"] == 3


def test_resume_drops_log_lines_of_the_interrupted_epoch(root, tmp_path):
    out = tmp_path / "run"
    train_generator(root, out, GEN, replace(CFG, epochs=1))
    (out / "_SUCCESS").unlink()
    with open(out / "log.jsonl", "a") as fh:  # what a kill during epoch 2 leaves behind
        fh.write(json.dumps({"event": "step", "epoch": 2, "step": 4}) + "\n")
    train_generator(root, out, GEN, CFG, resume=True)
    assert [r["step"] for r in _log(out) if r["event"] == "step"] == [1, 2, 3, 4, 5, 6]
    assert [r["event"] for r in _log(out) if r["event"] in ("start", "resume")] == ["start", "resume"]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"cfg": replace(CFG, height=16)}, "started with height=32, not 16"),
        ({"cfg": replace(CFG, seed=5)}, "started with seed=0, not 5"),
        ({"gen": GeneratorConfig(ngf=8, n_downsample=1, n_blocks=1)}, "started with ngf=16, not 8"),
        ({"label_space": "other"}, "label space 'other' is not the one the run was started with (name: 'cityscapes'"),
        (
            {"root": "more"},
            "the data changed since the run began (the checkpoint's sampler has samples=6, this run's 7)",
        ),
    ],
)
def test_resume_refuses_another_run_in_one_line(root, tmp_path, change, needle):
    import shutil

    import numpy as np

    from cityscapes_tools.writer import write_sample
    from labelforge.labelspace import LabelSpace, get_label_space

    out = tmp_path / "run"
    if change.get("root") == "more":  # a root of our own, to which one pair is added below
        root = shutil.copytree(root, tmp_path / "more")
    train_generator(root, out, GEN, replace(CFG, epochs=1))
    before = sorted(p.name for p in out.rglob("*")), (out / "log.jsonl").read_bytes()
    kw = {"cfg": CFG, "gen": GEN, "label_space": "cityscapes", "root": root, **change}
    if kw["label_space"] == "other":
        kw["label_space"] = LabelSpace.from_dict({**get_label_space().to_dict(), "name": "other"})
    if kw["root"] == "more":  # the same pairs and one more
        kw["root"] = root
        rng = np.random.default_rng(9)
        label, inst = scene(rng, 32, 64)
        write_sample(kw["root"], "train", "tiny_000001_000000", label=label, instance=inst, image=photo(label, rng))
    with pytest.raises(InputError) as err:
        train_generator(kw["root"], out, kw["gen"], kw["cfg"], label_space=kw["label_space"], resume=True)
    msg = str(err.value)
    assert msg.startswith(f"{out / 'generator.pt'}: ") and needle in msg and "\n" not in msg
    assert (sorted(p.name for p in out.rglob("*")), (out / "log.jsonl").read_bytes()) == before  # nothing written


def test_size_must_fit_the_downsamplings(root, tmp_path):
    from labelforge.errors import LabelforgeError

    with pytest.raises(LabelforgeError, match="multiple of 4"):
        train_generator(root, tmp_path / "run", GEN, replace(CFG, height=30))


def test_lr_schedule_is_constant_then_linear():
    cfg = TrainConfig(epochs=4, lr=1.0)  # decay over the last 2 epochs
    assert [cfg.lr_at(e) for e in range(4)] == [1.0, 1.0, 1.0, 0.5]
    cfg = TrainConfig(epochs=5, decay_epochs=4, lr=1.0)
    assert [cfg.lr_at(e) for e in range(5)] == [1.0, 1.0, 0.75, 0.5, 0.25]


def test_vgg_loss_from_a_local_weights_file(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    from labelforge.gan.losses import VGGLoss, load_vgg19_features

    torch.manual_seed(0)
    path = tmp_path / "vgg19.pth"
    state = make_layers(cfgs["E"])[:30].state_dict()  # features.N.* as torchvision's vgg19 names them
    torch.save({f"features.{k}": v for k, v in state.items()}, path)
    loss = VGGLoss(load_vgg19_features(path))
    a = torch.rand(1, 3, 16, 16) * 2 - 1
    assert loss(a, a).item() == 0.0
    assert loss(a, a.flip(-1)).item() > 0.0

    torch.save({"0.weight": torch.zeros(3)}, tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not VGG19 weights"):
        load_vgg19_features(tmp_path / "bad.pth")
    with pytest.raises(InputError, match="not found"):
        load_vgg19_features(tmp_path / "none.pth")


def test_lsgan_and_feature_matching_values():
    from labelforge.gan.losses import feature_matching_loss, lsgan_loss

    one, zero = torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)
    assert lsgan_loss([[one], [zero]], target_real=True).item() == 1.0  # (0 + 1) over two discriminators
    assert lsgan_loss([[one], [zero]], target_real=False).item() == 1.0
    # Two discriminators with n_layers 2 return 4 outputs each: 3 intermediate layers weighted
    # 4 / 3 / 2 each (pix2pixHD's 4 / (n_layers + 1) / num_D), then the patch scores, never matched.
    fake = [[one, one, zero, one], [one, zero, zero, one]]
    real = [[zero, one, one, zero], [zero, zero, one, zero]]
    expected = 10.0 * (4 / 3 / 2) * (1 + 0 + 1 + 1 + 0 + 1)
    assert feature_matching_loss(fake, real, lambda_feat=10.0).item() == pytest.approx(expected)


@pytest.mark.parametrize(("n_layers", "num_d"), [(2, 2), (3, 2), (3, 3)])
def test_feature_matching_weights_sum_to_four_per_discriminator_as_pix2pixhd(n_layers, num_d):
    from labelforge.gan.losses import feature_matching_loss
    from labelforge.gan.networks import MultiscaleDiscriminator

    d = MultiscaleDiscriminator(input_nc=4, ndf=4, n_layers=n_layers, num_d=num_d)
    with torch.no_grad():
        pred = d(torch.randn(1, 4, 32, 32))
    assert [len(feats) for feats in pred] == [n_layers + 2] * num_d  # n_layers + 1 intermediate, then the scores
    # Every matched layer at L1 distance exactly 1: pix2pixHD's weights 4 / (n_layers + 1) / num_D add up
    # to 4, times lambda_feat. The patch scores differ by 5 and must not count.
    fake = [[torch.ones_like(f) for f in feats[:-1]] + [torch.full_like(feats[-1], 5.0)] for feats in pred]
    real = [[torch.zeros_like(f) for f in feats] for feats in pred]
    assert feature_matching_loss(fake, real, lambda_feat=10.0).item() == pytest.approx(40.0)
    # And on the discriminator's real outputs, term by term as pix2pixHD's pix2pixHD_model.py sums it.
    with torch.no_grad():
        other = d(torch.randn(1, 4, 32, 32))
    expected = sum(
        4.0 / (n_layers + 1) / num_d * 10.0 * torch.nn.functional.l1_loss(f, r).item()
        for fs, rs in zip(pred, other, strict=True)
        for f, r in zip(fs[:-1], rs[:-1], strict=True)
    )
    assert feature_matching_loss(pred, other, lambda_feat=10.0).item() == pytest.approx(expected, rel=1e-5)
