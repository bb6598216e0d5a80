"""Where the output cannot be written, and paths a user's data lives at (docs/reliability.md): an
unwritable output folder and a full disk give one line and exit status 2, with nothing left under a
final name; paths with spaces and non-ASCII characters work in every command.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from _bad_inputs import World, assert_refused, fill, invoke

OUTPUTS = {  # every command that writes, at its cheapest
    "stats": "stats {root} --out {out} --no-figure -j 1",
    "compose": "compose {root} --out {out} --method identity -n 2 -j 1 --cache-dir {cache}",
    "export": "export {labels} {out}",
    "train-generator": "train-generator {root} --out {out} --epochs 1 --size 32x64 --device cpu -j 1",
    "render": "render {labels} --out {out} --oracle --device cpu -j 1 --preview 0",
    "train-eval": "train-eval {root} --out {out} --preset fast --iters 1 --device cpu -j 1 -q",
    "evaluate": "evaluate {preds} {root} --out {out} --split val -j 1",
    "report": "report {run} --out {out} --no-plots",
    "labelspace-init": "labelspace init {root} --out {out}/labelspace.yaml -j 1",
}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod; the simulated test below stands in")
@pytest.mark.parametrize("command", OUTPUTS)
def test_an_unwritable_output_folder_is_refused(world: World, tmp_path: Path, command: str) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        assert_refused(fill(OUTPUTS[command], world, parent / "out"), [parent], ["read-only"])
    finally:
        parent.chmod(0o755)


@pytest.mark.parametrize("command", OUTPUTS)
def test_an_unwritable_output_folder_is_refused_before_the_work(
    world: World, tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "read-only"
    parent.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != parent and real(p, mode, **kw))
    line = assert_refused(fill(OUTPUTS[command], world, parent / "out"), [parent], ["read-only"])
    assert "permission denied" in line


def _disk_full_after(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """The n-th fsync (and every later one) fails as on a full disk: the bytes before it were written."""
    real, calls = os.fsync, [0]

    def fsync(fd: int) -> None:
        calls[0] += 1
        if calls[0] >= n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


FULL = {  # command -> the final name its first write would have had
    "stats": "stats.json",
    "compose": "shard-00000.h5",
    "export": "*.png",
    "render": "shard-00000.h5",
    "train-generator": "generator.pt",
    "train-eval": "checkpoint.pt",
    "evaluate": "metrics.json",
    "report": "report.*",
    "labelspace-init": "labelspace.yaml",
}


@pytest.mark.parametrize("command", FULL)
def test_a_full_disk_leaves_nothing_under_a_final_name(
    world: World, tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _disk_full_after(monkeypatch, 1)
    res = invoke(fill(OUTPUTS[command], world, out))
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert "No space left on device" in err[-1] and err[-1].startswith("error: "), err
    assert not list(out.rglob(FULL[command])), sorted(out.rglob("*"))
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], sorted(out.rglob("*"))


ODD = "dir with spaces/ünïcødé ☃"
CHAIN = [  # each step reads what the ones before wrote
    "check {root} -j 1",
    "stats {root} --out {base}/stats --no-figure -j 1",
    "compose {root} --out {base}/labels --method identity -n 2 -j 1 --cache-dir {base}/cache",
    "export {base}/labels {base}/exported",
    "render {base}/labels --out {base}/images --oracle --device cpu -j 1",
    "evaluate {base}/preds {root} --out {base}/eval --split val -j 1",
    "report {base}/eval --out {base}/report --no-plots",
    "labelspace init {root} --out {base}/ls.yaml -j 1",
    "train-generator {root} --out {base}/gen --epochs 1 --size 32x64 --device cpu -j 1",
    "train-eval {root} --out {base}/seg --supp {base}/images --preset fast --iters 1 --device cpu -j 1 -q",
    "quality {base}/images --out {base}/quality --segmenter {base}/seg --device cpu -q",
]


def test_paths_with_spaces_and_non_ascii_characters_work(world: World, tmp_path: Path) -> None:
    base = tmp_path / ODD
    root = base / "mini cityscapés"
    shutil.copytree(world.root, root)
    shutil.copytree(world.preds, base / "preds")
    for step in CHAIN:
        # split on the template's spaces first: the paths put in afterwards keep theirs
        argv = [a.format(root=root, base=base) for a in step.split()]
        res = invoke(argv)
        assert res.exit_code == 0, f"{step}: {res.output}"
    assert (base / "quality" / "quality.json").is_file() and (base / "exported" / "gtFine").is_dir()
