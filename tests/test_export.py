"""``labelforge export``: shards back to a Cityscapes-layout dataset, verified, atomic, resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
from _compose_data import make_overlay_dataset
from typer.testing import CliRunner

from cityscapes_tools.io import read_image, read_instance, read_label
from cityscapes_tools.layout import list_samples, validate_sample
from labelforge.cli.app import app
from labelforge.compose import ComposeConfig, run_compose
from labelforge.errors import InputError, OutputExistsError
from labelforge.export import ExportConfig, export_shards
from labelforge.shards import ShardSet


@pytest.fixture()
def shards(tmp_path: Path) -> Path:
    root = make_overlay_dataset(tmp_path / "ds", photos=True)
    out = tmp_path / "sh"
    run_compose(
        ComposeConfig(
            root=root, out=out, method="multi", classes=("wall", "car"), count=5, min_area=10,
            cache_dir=tmp_path / "c", samples_per_shard=2, copy_paste=True,
        )
    )  # fmt: skip
    return out


def test_export_round_trip(shards, tmp_path):
    res = export_shards(ExportConfig(shards=shards, out=tmp_path / "cs", split="train"))
    assert (res.samples, res.written, res.with_images) == (5, 5, True)
    ss = ShardSet(shards)
    found = list_samples(tmp_path / "cs", "train", require_images=True)
    assert [s.key for s in found] == ss.keys()
    for s, want in zip(found, ss, strict=True):
        validate_sample(s)
        assert s.city == "lfmulticp"
        assert (read_label(s.label) == want["label"]).all()
        assert (read_instance(s.instance) == want["instance"]).all()
        assert (read_image(s.image) == want["image"]).all()
    assert (tmp_path / "cs" / "_SUCCESS").is_file()


def test_export_refuses_existing_and_resumes(shards, tmp_path):
    out = tmp_path / "cs"
    export_shards(ExportConfig(shards=shards, out=out))
    with pytest.raises(OutputExistsError):
        export_shards(ExportConfig(shards=shards, out=out))
    # an interrupted export: one sample's photo and the marker missing
    (out / "_SUCCESS").unlink()
    victim = list_samples(out, "train")[3]
    victim.image.unlink()
    with pytest.raises(OutputExistsError, match="--resume"):
        export_shards(ExportConfig(shards=shards, out=out))
    res = export_shards(ExportConfig(shards=shards, out=out, resume=True))
    assert res.written == 1 and victim.image.is_file() and (out / "_SUCCESS").is_file()
    assert export_shards(ExportConfig(shards=shards, out=out, overwrite=True)).written == 5


def test_export_verifies_checksums_first(shards, tmp_path):
    f = shards / "shard-00002.h5"
    data = bytearray(f.read_bytes())
    data[-100] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(InputError, match="shard-00002.h5: checksum mismatch"):
        export_shards(ExportConfig(shards=shards, out=tmp_path / "cs"))
    assert not (tmp_path / "cs").exists()


def test_export_cli(shards, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(shards), str(tmp_path / "cs"), "--split", "val"])
    assert r.exit_code == 0, r.output
    assert "exported 5 samples" in r.output
    assert len(list_samples(tmp_path / "cs", "val")) == 5
    r = runner.invoke(app, ["export", str(tmp_path / "nowhere"), str(tmp_path / "x")])
    assert r.exit_code == 2 and "shard dir does not exist" in r.output and not (tmp_path / "x").exists()
