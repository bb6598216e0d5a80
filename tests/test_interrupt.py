"""SIGKILL at deterministic points of compose, render, train-generator and train-eval, then --resume
(docs/reliability.md). A real kill leaves what an exception cannot: temporary files, a half-saved
checkpoint. The in-process interruptions of tests/test_compose_run.py, test_gan_render.py,
test_gan_train.py and test_train_eval.py hold the resume logic; these hold the files on disk.

The process kills itself from a wrapped ``os.fsync`` (a file fully written under its temporary name,
not yet renamed: "during a write") or ``os.replace`` (just renamed: "between epochs").
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _bad_inputs import World

REPO = Path(__file__).resolve().parents[1]
KILLER = """
import os, signal, sys
kind, pattern, nth = os.environ["LF_KILL"].split("|")
seen = [0]
def hit(name):
    if pattern in os.path.basename(name):
        seen[0] += 1
        if seen[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
real = getattr(os, kind)
def fsync(fd):
    real(fd)
    hit(os.readlink(f"/proc/self/fd/{fd}"))
def replace(src, dst, *a, **k):
    real(src, dst, *a, **k)
    hit(str(dst))
setattr(os, kind, fsync if kind == "fsync" else replace)
sys.argv[0] = "labelforge"
from labelforge.cli.app import main
main()
"""


def _run(args: list[object], kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if kill:
        env["LF_KILL"] = kill
    cmd = [sys.executable, "-c", KILLER, *map(str, args)] if kill else [sys.executable, "-m", "labelforge.cli.app"]
    if not kill:
        cmd += list(map(str, args))
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _killed(args: list[object], kill: str) -> None:
    res = _run(args, kill)
    assert res.returncode == -signal.SIGKILL, f"not killed at {kill}: {res.returncode}\n{res.stderr[-2000:]}"


def _ok(args: list[object]) -> None:
    res = _run(args)
    assert res.returncode == 0, res.stderr[-2000:]


def _digests(folder: Path, pattern: str = "shard-*.h5") -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


def _assert_shard_dir_consistent(out: Path) -> None:
    """Every file under a final shard name is complete and named by the manifest, and only those."""
    man = json.loads((out / "manifest.json").read_text())
    listed = {e["file"]: e["sha256"] for e in man["shards"]}
    assert _digests(out) == listed
    assert not (out / "_SUCCESS").exists()


@pytest.mark.parametrize("command", ["compose", "render"])
def test_a_shard_writer_killed_mid_shard_resumes_to_the_same_bytes(world: World, tmp_path: Path, command: str) -> None:
    if command == "compose":
        args = [command, world.root, "--method", "identity", "-n", 6, "--samples-per-shard", 2, "-j", 1,
                "--cache-dir", tmp_path / "cache"]  # fmt: skip
    else:
        args = [command, world.labels, "--oracle", "--device", "cpu", "-j", 1, "--preview", 0]
    _ok([*args, "--out", tmp_path / "full"])
    cut = tmp_path / "cut"
    _killed([*args, "--out", cut], "fsync|.shard-00001.h5|1")  # shard 1 written, not yet renamed
    _assert_shard_dir_consistent(cut)
    assert list(_digests(cut)) == ["shard-00000.h5"]
    _ok([*args, "--out", cut, "--resume"])
    assert _digests(cut) == _digests(tmp_path / "full")
    assert (cut / "manifest.json").read_bytes() == (tmp_path / "full" / "manifest.json").read_bytes()


def _checkpoint(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


GEN = ["train-generator", "--epochs", 3, "--size", "32x64", "--device", "cpu", "-j", 1]
SEG = ["train-eval", "--preset", "fast", "--epochs", 3, "--size", "32x64", "--crop", "32x64", "--batch-size", 2,
       "--device", "cpu", "-j", 0, "-q"]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both trainers run straight through once, for every kill point to be compared with."""
    out = tmp_path_factory.mktemp("straight")
    for name, args in (("gen", GEN), ("seg", SEG)):
        _ok([args[0], world.root, *args[1:], "--out", out / name])
    return {"gen": out / "gen", "seg": out / "seg"}


@pytest.mark.parametrize("point", ["fsync|.generator.pt.|2", "replace|generator.pt|1"], ids=["mid-save", "between"])
def test_train_generator_killed_resumes_to_the_same_weights(
    world: World, uninterrupted: dict[str, Path], tmp_path: Path, point: str
) -> None:
    import torch

    args = [GEN[0], world.root, *GEN[1:], "--out", tmp_path / "cut"]
    _killed(args, point)
    assert _checkpoint(tmp_path / "cut" / "generator.pt")["epoch"] == 1  # the last complete save, whole
    _ok([*args, "--resume"])
    a, b = _checkpoint(uninterrupted["gen"] / "generator.pt"), _checkpoint(tmp_path / "cut" / "generator.pt")
    assert (a["epoch"], a["step"]) == (b["epoch"], b["step"]) and a["epoch"] == 3
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys() and all(torch.equal(a[part][k], b[part][k]) for k in a[part])


@pytest.mark.parametrize("point", ["fsync|.checkpoint.pt.|2", "replace|checkpoint.pt|1"], ids=["mid-save", "between"])
def test_train_eval_killed_resumes_to_the_same_metrics(
    world: World, uninterrupted: dict[str, Path], tmp_path: Path, point: str
) -> None:
    cut = tmp_path / "cut"
    args = [SEG[0], world.root, *SEG[1:], "--out", cut]
    _killed(args, point)
    assert _checkpoint(cut / "checkpoint.pt")["epoch"] == 1 and not (cut / "metrics.json").exists()
    _ok([*args, "--resume"])
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (uninterrupted["seg"], cut))
    assert a["confusion_matrix"] == b["confusion_matrix"] and a["miou"] == b["miou"]
    assert [(h["iter"], h["loss"]) for h in a["history"]] == [(h["iter"], h["loss"]) for h in b["history"]]
