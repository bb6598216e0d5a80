"""``labelforge train-generator`` and ``labelforge render`` run end to end on tiny data; bad input
gives one line and exit status 2; --resume must repeat the run's options.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _gan_data import (
    make_checkpoint,
    make_label_shards,
    make_pair_root,
    one_torch_thread,  # noqa: F401 - an autouse fixture
)
from typer.testing import CliRunner

from labelforge.cli.app import app
from labelforge.labelspace import LabelSpace, get_label_space
from labelforge.shards import ShardSet

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _error_line(res) -> str:
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2, res.output
    assert lines[-1].startswith("error: ")
    return lines[-1]


def test_train_then_render_from_the_command_line(tmp_path):
    root = make_pair_root(tmp_path / "root", n=4)
    gen = tmp_path / "gen"
    res = invoke("train-generator", root, "--out", gen, "--size", "32x64", "--epochs", "1", "--batch-size", "2",
                 "--workers", "1", "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "trained epochs 1..1 (2 steps)" in res.output
    assert (gen / "generator.pt").is_file() and (gen / "samples" / "epoch-001.png").is_file()
    run = json.loads((gen / "run.json").read_text())
    assert run["train_config"]["epochs"] == 1 and run["generator_config"]["ngf"] == 16  # the tiny preset

    res = invoke("train-generator", root, "--out", gen, "--resume", "--size", "32x64", "--epochs", "1",
                 "--batch-size", "2", "--workers", "0", "--device", "cpu")  # fmt: skip
    assert res.exit_code == 0 and "nothing to do" in res.output, res.output
    res = invoke("train-generator", root, "--out", gen, "--resume", "--workers", "1", "--device", "cpu")
    line = _error_line(res)  # the preset's batch 4 and size 64x128 are not the run's
    assert str(gen / "generator.pt") in line and "started with batch_size=2, not 4" in line

    shards = make_label_shards(tmp_path / "shards", n=5, spp=2)
    out = tmp_path / "render"
    res = invoke("render", shards, "--generator", gen, "--out", out, "--batch-size", "2", "--workers", "1",
                 "--preview", "2", "--device", "cpu", "--compress-images")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "rendered 5 of 5 samples at 32x64" in res.output and (out / "preview.png").is_file()
    assert ShardSet(out).has_image and ShardSet(out).config["render"]["compress_images"] is True
    # The photos the generator saw travel with what it renders (train-eval refuses its own val split).
    assert ShardSet(out).config["render"]["generator_data"] == {"root": str(root.resolve()), "split": "train"}
    res = invoke("render", shards, "--generator", gen, "--out", out, "--device", "cpu")
    assert "--overwrite" in _error_line(res)


def test_render_refuses_a_label_space_mismatch_in_one_line(tmp_path):
    d = get_label_space("cityscapes").to_dict()
    d["name"], d["classes"], d["ground"], d["standing"], d["base"] = "small", d["classes"][:20], [], [], []
    shards = make_label_shards(tmp_path / "shards", n=3, spp=2)
    gen = make_checkpoint(tmp_path / "gen", label_space=LabelSpace.from_dict(d))
    res = invoke("render", shards, "--generator", gen, "--out", tmp_path / "out", "--device", "cpu")
    line = _error_line(res)
    assert str(gen) in line and "takes 21 input channels" in line and "'cityscapes' gives 35" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "give --generator DIR or --oracle"),
        (["--oracle", "--generator", "x"], "give --generator DIR or --oracle"),
        (["--generator", "absent"], "generator checkpoint not found"),
    ],
)
def test_render_bad_renderer_options(tmp_path, extra, needle):
    shards = make_label_shards(tmp_path / "shards", n=2, spp=2)
    res = invoke("render", shards, "--out", tmp_path / "out", "--device", "cpu", *extra)
    assert needle in _error_line(res)


def test_render_of_a_missing_shard_dir(tmp_path):
    gen = make_checkpoint(tmp_path / "gen")
    res = invoke("render", tmp_path / "nope", "--generator", gen, "--out", tmp_path / "out")
    assert "shard dir does not exist" in _error_line(res)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--size", "32"], "is not HEIGHTxWIDTH"),
        (["--size", "30x64"], "multiple of 4"),
        (["--preset", "huge"], "unknown preset 'huge' for --arch pix2pixhd; valid: tiny, 512p, 1024p"),
        (["--arch", "oasis", "--preset", "512p"], "unknown preset '512p' for --arch oasis; valid: tiny, cityscapes"),
        (["--arch", "spade"], "unknown generator architecture 'spade'; valid: pix2pixhd, oasis"),
        (["--arch", "oasis", "--vgg-weights", "vgg.pth"], "OASIS trains without a VGG loss"),
        (["--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_train_generator_bad_options(tmp_path, args, needle):
    root = make_pair_root(tmp_path / "root", n=2)
    res = invoke("train-generator", root, "--out", tmp_path / "gen", "--workers", "1", *args)
    assert needle in _error_line(res)
    assert not (tmp_path / "gen").exists()  # bad input leaves no output behind


def test_train_generator_on_a_label_only_root(tmp_path):
    import numpy as np
    from _gan_data import scene

    from cityscapes_tools.writer import write_sample

    label, inst = scene(np.random.default_rng(0), 32, 64)
    write_sample(tmp_path / "root", "train", "tiny_000000_000000", label=label, instance=inst)
    res = invoke("train-generator", tmp_path / "root", "--out", tmp_path / "gen", "--device", "cpu")
    assert "has no photos" in _error_line(res) and not (tmp_path / "gen").exists()


def test_train_generator_builds_the_config_from_preset_and_options(tmp_path, monkeypatch):
    import labelforge.gan.train as train_mod

    seen = {}

    def fake(root, out, gen_cfg, cfg, **kw):
        seen.update(root=root, gen=gen_cfg, cfg=cfg, **kw)
        return train_mod.TrainResult(Path(out), cfg.epochs, 0, 0, {"L1": 0.1}, 0.0)

    monkeypatch.setattr(train_mod, "train_generator", fake)
    root = make_pair_root(tmp_path / "root", n=1)  # the CLI opens the dataset (layout, label space) first
    res = invoke("train-generator", root, "--out", tmp_path / "g", "--preset", "512p", "--epochs", "3",
                 "--size", "256x512", "--resume", "--workers", "1", "--vgg-weights", "vgg.pth")  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = seen["cfg"]
    assert (cfg.preset, cfg.epochs, cfg.batch_size, cfg.height, cfg.width) == ("512p", 3, 1, 256, 512)
    assert cfg.vgg_weights == "vgg.pth" and cfg.workers == 1 and cfg.lambda_feat == 10.0
    assert seen["gen"].ngf == 64 and seen["gen"].n_blocks == 9 and seen["resume"] is True
    assert str(seen["root"]) == str(root) and seen["root"].layout.name == "cityscapes"


def test_two_process_torchrun_training(tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this python")
    root = make_pair_root(tmp_path / "root", n=6)
    out = tmp_path / "gen"
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "labelforge.cli.app", "train-generator",
           str(root), "--out", str(out), "--size", "32x64", "--epochs", "2", "--batch-size", "4", "--workers", "1",
           "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("trained epochs") == 1  # only rank 0 reports
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    # 6 samples over 2 ranks, global batch 4 (2 per rank): 2 steps per epoch.
    assert [r["step"] for r in log if r["event"] == "epoch"] == [2, 4]
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
