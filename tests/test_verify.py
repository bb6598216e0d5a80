"""``labelforge verify``: whole outputs pass with a summary; each damage is one line naming the file, exit 2."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from _gan_data import make_label_shards, make_pair_root
from _integrity_data import flip_byte, seg_root, truncate
from typer.testing import CliRunner

from labelforge.cli.app import app
from labelforge.shards.manifest import file_sha256

runner = CliRunner()


def _ok(args: list) -> None:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, Path]:
    """One whole output of each kind: label shards, a generator run, its renders, a train-eval run, an evaluation."""
    base = tmp_path_factory.mktemp("verify")
    d = {"base": base, "labels": make_label_shards(base / "labels")}
    root = make_pair_root(base / "gen_root", n=2)
    _ok(["train-generator", root, "--out", base / "gen", "--preset", "tiny", "--epochs", "1", "--device", "cpu"])
    _ok(["render", d["labels"], "--generator", base / "gen", "--out", base / "render", "--device", "cpu"])
    seg = seg_root(base / "seg_root")
    fast = ["--size", "32x32", "--crop", "32x32", "--batch-size", "2", "--workers", "0", "--device", "cpu", "-q"]
    _ok(["train-eval", seg, "--out", base / "run", "--epochs", "1", "--save-predictions", *fast])
    _ok(["evaluate", base / "run" / "predictions", seg, "--out", base / "eval"])
    return {**d, "gen": base / "gen", "render": base / "render", "run": base / "run", "eval": base / "eval"}


def _copy(outputs: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(outputs[name], tmp_path / name))


def _verify(path: Path) -> tuple[int, list[str]]:
    res = runner.invoke(app, ["verify", str(path)])
    return res.exit_code, res.output.strip().splitlines()


def _problems(path: Path) -> list[str]:
    """The problem lines of a failing verify (the last line counts them)."""
    code, lines = _verify(path)
    assert code == 2, lines
    assert all(line.startswith("error: ") for line in lines[:-1]) and "problem(s)" in lines[-1], lines
    return [line.removeprefix("error: ") for line in lines[:-1]]


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("labels", "shard dir, 10 samples in 3 shards, 32x64"),
        ("render", "rendered shard dir, 10 samples in 3 shards, 64x128, label space cityscapes, with images"),
        ("gen", "train-generator run, checkpoint after epoch 1"),
        ("run", "train-eval run, checkpoint after epoch 1, mIoU"),
        ("eval", "evaluate output, mIoU"),
    ],
)
def test_whole_outputs_pass_with_what_they_are(outputs, name, kind):
    code, lines = _verify(outputs[name])
    assert code == 0 and lines == [lines[0]] and lines[0].startswith(f"ok {outputs[name]}: {kind}"), lines


def _rewrite(shard: Path, edit: Callable[[h5py.File], None]) -> None:
    """Edit a shard's HDF5 content, then record its new bytes in the manifest: only the content checks can tell."""
    with h5py.File(shard, "r+") as f:
        edit(f)
    man_path = shard.parent / "manifest.json"
    man = json.loads(man_path.read_text())
    entry = next(e for e in man["shards"] if e["file"] == shard.name)
    entry.update(bytes=shard.stat().st_size, sha256=file_sha256(shard))
    man_path.write_text(json.dumps(man))


def _label_out_of_space(f: h5py.File) -> None:
    lab = f["label"][0]
    lab[0, 0] = 250
    f["label"][0] = lab


def _drop_images(f: h5py.File) -> None:
    del f["image"]


def _unwritten_images(f: h5py.File) -> None:
    shape = f["image"].shape
    del f["image"]
    f.create_dataset("image", shape, np.uint8, chunks=(1, *shape[1:]))  # no chunk written: reads as zeros


def _schema(f: h5py.File) -> None:
    f.attrs["schema"] = "labelforge.shard/9"


@pytest.mark.parametrize(
    ("name", "edit", "problem"),
    [
        ("labels", _label_out_of_space, "shard-00001.h5: sample 0: label ids [250] outside label space 'cityscapes'"),
        ("labels", _schema, "shard-00001.h5: unknown shard schema 'labelforge.shard/9'"),
        ("render", _drop_images, "shard-00001.h5: no 'image' dataset (images missing after render)"),
        ("render", _unwritten_images, "shard-00001.h5: image: 0 of 4 samples stored"),
    ],
    ids=["label-id", "schema", "no-images", "unwritten-images"],
)
def test_damaged_shard_content_is_named(outputs, tmp_path, name, edit, problem):
    d = _copy(outputs, name, tmp_path)
    _rewrite(d / "shard-00001.h5", edit)
    problems = _problems(d)
    assert len(problems) == 1 and problems[0].startswith(str(d / "shard-00001.h5")), problems
    assert problem in problems[0], problems


def test_every_file_problem_is_listed_one_line_each(outputs, tmp_path):
    d = _copy(outputs, "render", tmp_path)
    flip_byte(d / "shard-00000.h5")
    truncate(d / "shard-00001.h5")
    (d / "shard-00002.h5").unlink()
    (d / "shard-00007.h5").write_bytes(b"")
    (d / "_SUCCESS").unlink()
    assert _problems(d) == [
        f"{d / 'shard-00000.h5'}: checksum mismatch: the shard is corrupt or was changed after writing",
        f"{d / 'shard-00001.h5'}: size mismatch: {(d / 'shard-00001.h5').stat().st_size} bytes, the manifest says"
        f" {(outputs['render'] / 'shard-00001.h5').stat().st_size} (truncated?)",
        f"{d / 'shard-00002.h5'}: missing: listed in manifest.json",
        f"{d / 'shard-00007.h5'}: shard file not listed in manifest.json",
        f"{d / '_SUCCESS'}: missing: the run that wrote this dir did not finish",
    ]


def test_an_unknown_manifest_schema_is_one_problem(outputs, tmp_path):
    d = _copy(outputs, "labels", tmp_path)
    man = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**man, "schema": "labelforge.shards/7"}))
    assert _problems(d) == [f"{d / 'manifest.json'}: unknown manifest schema 'labelforge.shards/7' (expected"
                            " 'labelforge.shards/1')"]  # fmt: skip


def test_a_run_lock_is_no_problem(outputs, tmp_path):
    d = _copy(outputs, "labels", tmp_path)
    (d / ".lock").write_text('{"pid": 1, "host": "h", "command": "compose", "since": 0}')
    assert _verify(d)[0] == 0


def test_damaged_runs_name_the_file(outputs, tmp_path):
    gen, run = _copy(outputs, "gen", tmp_path), _copy(outputs, "run", tmp_path)
    truncate(gen / "generator.pt")
    assert _problems(gen) == [f"{gen / 'generator.pt'}: cannot read generator checkpoint (RuntimeError)"]
    (run / "metrics.json").unlink()
    (run / "log.jsonl").write_text("{not json\n")
    assert _problems(run) == [
        f"{run / 'log.jsonl'}: line 1 is not JSON",
        f"{run / 'metrics.json'}: missing: a finished train-eval run holds one",
    ]


def test_an_evaluate_output_is_not_asked_for_run_files(outputs, tmp_path):
    ev = _copy(outputs, "eval", tmp_path)
    (ev / "metrics.json").write_text("{broken")  # still known by its _SUCCESS
    (ev / "_SUCCESS").unlink()
    assert _verify(ev)[0] == 2 and "not a labelforge output" in _verify(ev)[1][0]  # nothing left to tell
    ev = _copy(outputs, "eval", tmp_path / "2")
    m = json.loads((ev / "metrics.json").read_text())
    (ev / "metrics.json").write_text(json.dumps({**m, "miou": "high"}))
    assert _problems(ev) == [f"{ev / 'metrics.json'}: metrics file has a non-numeric 'miou'"]
    (ev / "metrics.json").write_text("{broken")
    (ev / "_SUCCESS").write_text('{"command": "evaluate"}')
    assert _problems(ev) == [
        f"{ev / 'metrics.json'}: not valid JSON (line 1: Expecting property name enclosed in double quotes)"
    ]


def test_unknown_folders_and_missing_paths_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    for path, problem in ((tmp_path / "empty", "not a labelforge output"), (tmp_path / "nope", "does not exist")):
        code, lines = _verify(path)
        assert code == 2 and len(lines) == 1 and problem in lines[0] and str(path) in lines[0], lines
