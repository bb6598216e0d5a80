"""Damaged shards and checkpoints: every reader stops with one line naming the file (exit 2), never a
wrong count, a traceback mid-run or a silent success."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _gan_data import make_label_shards, make_pair_root
from _integrity_data import flip_byte, image_shards, seg_root, truncate
from typer.testing import CliRunner

from labelforge.cli.app import app
from labelforge.errors import InputError
from labelforge.shards import ShardSet

runner = CliRunner()


def one_line_error(res, *needles: str) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.output, res.output
    for n in needles:
        assert n in lines[0], res.output
    return lines[0]


# -- shards ----------------------------------------------------------------------------------------
def test_shardset_refuses_a_corrupt_or_truncated_shard_on_open(tmp_path):
    d = make_label_shards(tmp_path / "labels")
    assert len(ShardSet(d)) == 10
    flip_byte(d / "shard-00001.h5")
    with pytest.raises(InputError, match="shard-00001.h5: checksum mismatch"):
        ShardSet(d)
    truncate(d / "shard-00002.h5")
    with pytest.raises(InputError, match="shard-00001.h5: checksum mismatch"):  # the first bad one
        ShardSet(d)
    assert len(ShardSet(d, verify=False)) == 10  # the caller that asks not to check is trusted


def test_truncated_shard_names_its_size(tmp_path):
    d = make_label_shards(tmp_path / "labels")
    truncate(d / "shard-00002.h5")
    with pytest.raises(InputError, match="shard-00002.h5: size mismatch: .* bytes, the manifest says"):
        ShardSet(d)


def test_stats_on_a_corrupt_shard_dir_exits_2_naming_the_shard(tmp_path):
    d = make_label_shards(tmp_path / "labels")
    assert runner.invoke(app, ["stats", str(d)]).exit_code == 0
    flip_byte(d / "shard-00001.h5")
    one_line_error(runner.invoke(app, ["stats", str(d)]), "shard-00001.h5", "checksum mismatch")


def test_render_of_corrupt_label_shards_stops_before_writing(tmp_path):
    d = make_label_shards(tmp_path / "labels")
    flip_byte(d / "shard-00000.h5")
    res = runner.invoke(app, ["render", str(d), "--oracle", "--out", str(tmp_path / "r"), "--device", "cpu"])
    one_line_error(res, "shard-00000.h5", "checksum mismatch")
    assert not (tmp_path / "r").exists()


def test_train_eval_on_a_corrupt_supp_stops_before_training(tmp_path):
    root, supp = seg_root(tmp_path / "root"), image_shards(tmp_path / "supp")
    flip_byte(supp / "shard-00001.h5")
    args = ["train-eval", str(root), "--supp", str(supp), "--out", str(tmp_path / "run"), "--epochs", "1"]
    res = runner.invoke(app, [*args, "--size", "32x32", "--crop", "32x32", "--batch-size", "2", "--device", "cpu"])
    one_line_error(res, "shard-00001.h5", "checksum mismatch")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["quality", "filter"])
def test_quality_and_filter_refuse_corrupt_input_shards(tmp_path, command):
    supp = image_shards(tmp_path / "supp")
    truncate(supp / "shard-00000.h5")
    res = runner.invoke(app, [command, str(supp), "--segmenter", str(tmp_path / "run"), "--out", str(tmp_path / "o")])
    one_line_error(res, "shard-00000.h5", "size mismatch")
    assert not (tmp_path / "o").exists()


# -- checkpoints -----------------------------------------------------------------------------------
def _cut_checkpoint(path: Path, fmt: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": fmt, "weights": torch.zeros(4096)}, path)
    return truncate(path)


def test_render_with_a_truncated_generator_is_one_line(tmp_path):
    from labelforge.gan.archs import PIX2PIXHD_FORMAT

    d = make_label_shards(tmp_path / "labels")
    ck = _cut_checkpoint(tmp_path / "gen" / "generator.pt", PIX2PIXHD_FORMAT)
    res = runner.invoke(app, ["render", str(d), "--generator", str(ck), "--out", str(tmp_path / "r")])
    one_line_error(res, str(ck), "cannot read generator checkpoint")


def test_train_generator_resume_on_a_truncated_or_other_arch_checkpoint_is_one_line(tmp_path):
    from labelforge.gan.archs import OASIS_FORMAT, PIX2PIXHD_FORMAT

    root = make_pair_root(tmp_path / "root", n=2)
    out = tmp_path / "gen"
    ck = _cut_checkpoint(out / "generator.pt", PIX2PIXHD_FORMAT)
    args = ["train-generator", str(root), "--out", str(out), "--preset", "tiny", "--device", "cpu", "--resume"]
    one_line_error(runner.invoke(app, args), str(ck), "cannot read checkpoint", "--overwrite")
    torch.save({"format": PIX2PIXHD_FORMAT}, ck)  # whole, but pix2pixHD's: resumed as OASIS
    one_line_error(runner.invoke(app, [*args, "--arch", "oasis"]), str(ck), repr(OASIS_FORMAT))


def test_train_eval_resume_on_a_truncated_checkpoint_is_one_line(tmp_path):
    from labelforge.seg.train import CHECKPOINT, CHECKPOINT_FORMAT

    root = seg_root(tmp_path / "root")
    ck = _cut_checkpoint(tmp_path / "run" / CHECKPOINT, CHECKPOINT_FORMAT)
    args = ["train-eval", str(root), "--out", str(tmp_path / "run"), "--size", "32x32", "--crop", "32x32"]
    res = runner.invoke(app, [*args, "--batch-size", "2", "--device", "cpu", "--resume", "-q"])
    one_line_error(res, str(ck), "cannot read checkpoint")
