"""The generator architecture registry, and OASIS trained through the shared harness: its checkpoint
(format, EMA weights, configs, arch), exact resume, refusals, and a two-process torchrun run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from _gan_data import (
    SMALL_OASIS,
    make_pair_root,
    one_torch_thread,  # noqa: F401 - an autouse fixture
)

from labelforge.errors import InputError, LabelforgeError
from labelforge.gan.archs import ARCHS, OASIS_FORMAT, PIX2PIXHD_FORMAT, arch_of_format, get_arch
from labelforge.gan.checkpoint import checkpoint_arch, load_checkpoint
from labelforge.gan.oasis.config import OasisConfig, get_oasis_preset
from labelforge.gan.oasis.trainer import OasisTrainer
from labelforge.gan.pix2pixhd import Pix2PixHDTrainer
from labelforge.gan.presets import get_preset
from labelforge.gan.train import train_generator

REPO = Path(__file__).resolve().parents[1]
ARCH = OasisConfig(**SMALL_OASIS)
CFG = replace(get_oasis_preset("tiny")[1], height=32, width=64, batch_size=2, epochs=2, log_every=1, num_samples=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_pair_root(tmp_path_factory.mktemp("pairs") / "root", n=4)


def test_the_registry_names_each_architecture_once() -> None:
    assert list(ARCHS) == ["pix2pixhd", "oasis"]
    p2p, oasis = get_arch("pix2pixhd"), get_arch("oasis")
    assert p2p.preset("tiny") == get_preset("tiny") and oasis.preset("cityscapes") == get_oasis_preset("cityscapes")
    assert (p2p.trainer(), oasis.trainer()) == (Pix2PixHDTrainer, OasisTrainer)
    assert (p2p.format, oasis.format) == (Pix2PixHDTrainer.FORMAT, OasisTrainer.FORMAT)
    assert (PIX2PIXHD_FORMAT, OASIS_FORMAT) == ("labelforge.generator/1", "labelforge.generator.oasis/1")
    assert arch_of_format(OASIS_FORMAT) is oasis and arch_of_format("labelforge.train_eval/1") is None
    assert (p2p.stochastic, oasis.stochastic) == (False, True)
    assert oasis.config_from_dict({**ARCH.__dict__, "dontcare_ids": [0], "later_field": 1}) == ARCH
    with pytest.raises(LabelforgeError, match="unknown generator architecture 'spade'; valid: pix2pixhd, oasis"):
        get_arch("spade")
    with pytest.raises(LabelforgeError, match="unknown preset '512p' for --arch oasis; valid: tiny, cityscapes"):
        oasis.preset("512p")


def _states(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    ck = load_checkpoint(run)
    return {k: ck[k] for k in ("generator", "discriminator", "ema")}


def test_oasis_trains_through_the_harness_and_resumes_exactly(root: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    res = train_generator(root, straight, ARCH, CFG, trainer=OasisTrainer)
    assert (res.epochs, res.steps) == (2, 4)  # 4 pairs, batch 2
    ck = load_checkpoint(straight)
    assert ck["format"] == OASIS_FORMAT and ck["arch"] == "oasis" and checkpoint_arch(ck).name == "oasis"
    assert ck["generator_config"]["arch"] == "oasis" and ck["generator_config"]["z_dim"] == 4
    assert ck["train_config"]["preset"] == "oasis-tiny" and ck["input_nc"] == 35 and ck["size"] == [32, 64]
    assert set(ck["ema"]) == set(ck["generator"]) and not all(
        torch.equal(ck["ema"][k], ck["generator"][k]) for k in ck["generator"]
    )  # the EMA copy trails the trained weights
    run = json.loads((straight / "run.json").read_text())
    assert run["arch"] == "oasis" and run["generator_config"]["num_res_blocks"] == 3
    log = [json.loads(ln) for ln in (straight / "log.jsonl").read_text().splitlines()]
    assert {"G_adv", "D_fake", "D_real", "D_LM", "L1"} <= set(log[-1])
    assert sorted(p.name for p in (straight / "samples").iterdir()) == ["epoch-001.png", "epoch-002.png"]

    # Stopped after epoch 1 and resumed: the networks, the EMA copy and the noise stream continue exactly.
    split = tmp_path / "split"
    train_generator(root, split, ARCH, replace(CFG, epochs=1), trainer=OasisTrainer)
    res = train_generator(root, split, ARCH, replace(CFG, workers=1), trainer=OasisTrainer, resume=True)
    assert (res.start_epoch, res.steps) == (1, 4)
    a, b = _states(straight), _states(split)
    for part in a:
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part


def test_a_resume_with_another_architecture_or_config_is_refused(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    gen, cfg = get_preset("tiny")
    train_generator(root, out, gen, replace(cfg, height=32, width=64, batch_size=2, epochs=1))
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(InputError) as err:
        train_generator(root, out, ARCH, replace(CFG, epochs=2), trainer=OasisTrainer, resume=True)
    assert "found 'labelforge.generator/1'" in str(err.value) and "--overwrite" in str(err.value)
    assert sorted(p.name for p in out.rglob("*")) == before
    # The trainer refuses another architecture's config before anything is written.
    with pytest.raises(LabelforgeError, match="OASIS trains an OasisConfig, not a GeneratorConfig"):
        train_generator(root, tmp_path / "new", gen, CFG, trainer=OasisTrainer)
    assert not (tmp_path / "new").exists()


def test_a_resume_on_another_dataset_root_is_refused(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    gen, cfg = get_preset("tiny")
    cfg = replace(cfg, height=32, width=64, batch_size=2, epochs=1)
    train_generator(root, out, gen, cfg)
    other = make_pair_root(tmp_path / "other", n=4, seed=1)  # as many pairs, other photos
    before = sorted(p.name for p in out.rglob("*"))
    with pytest.raises(InputError) as err:
        train_generator(other, out, gen, replace(cfg, epochs=2), resume=True)
    assert "data" in str(err.value) and str(root.resolve()) in str(err.value)
    assert sorted(p.name for p in out.rglob("*")) == before


@pytest.mark.slow  # ~15-30 s on 2 shared cores; the pix2pixHD torchrun test covers the harness in the default suite
def test_two_process_torchrun_oasis_training(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this python")
    root = make_pair_root(tmp_path / "root", n=6)
    out = tmp_path / "gen"
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "labelforge.cli.app", "train-generator",
           str(root), "--out", str(out), "--arch", "oasis", "--size", "32x64", "--epochs", "2", "--batch-size", "4",
           "--workers", "1", "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained epochs") == 1  # only rank 0 reports
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "epoch"] == [2, 4]  # 6 samples, 2 per rank and step
    run = json.loads((out / "run.json").read_text())
    assert (run["world_size"], run["arch"], run["train_config"]["preset"]) == (2, "oasis", "oasis-tiny")
    ck = load_checkpoint(out)
    assert ck["format"] == OASIS_FORMAT and ck["step"] == 4 and "ema" in ck
