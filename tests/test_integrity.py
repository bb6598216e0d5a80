"""Damaged shards and checkpoints: every reader stops with one line naming the file (exit 2), never a
wrong count, a traceback mid-run or a silent success."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _gan_data import make_label_shards, make_pair_root
from typer.testing import CliRunner

from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.errors import InputError
from labelforge.labelspace import get_label_space
from labelforge.shards import ShardSet, ShardWriter

runner = CliRunner()
LS = get_label_space()


def flip_byte(path: Path) -> Path:
    """Change one byte in the middle of ``path`` (the size stays; only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def image_shards(out: Path, n: int = 4, size: int = 32) -> Path:
    """A finished image shard dir (render's kind) of ``n`` road/sky scenes, 2 samples per shard."""
    lab = np.full((size, size), 23, np.uint8)
    lab[size // 2 :] = 7
    img = LS.palette[lab]
    with ShardWriter(
        out, label_space=LS, method="overlay", config={"classes": ["car"]}, seed=0, total=n,
        height=size, width=size, samples_per_shard=2, with_image=True, deflate_images=False,
    ) as w:  # fmt: skip
        for i in range(n):
            w.write(i, key=f"sup_{i:06d}_000000", label=lab, instance=lab.astype(np.int32), image=img, provenance={})
    return out


def seg_root(root: Path, size: int = 32) -> Path:
    lab = np.full((size, size), 23, np.uint8)
    lab[size // 2 :] = 7
    for split in ("train", "val"):
        for i in range(2):
            write_sample(root, split, f"tst_{i:06d}_000019", label=lab, image=LS.palette[lab])
    return root


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
