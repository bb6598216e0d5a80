"""One writer per output folder: a second run is refused naming the holder's pid; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _compose_data import make_overlay_dataset
from typer.testing import CliRunner

from labelforge._lock import LOCK, output_lock, read_holder
from labelforge.cli.app import app
from labelforge.compose import ComposeConfig, run_compose
from labelforge.errors import USER_ERRORS, InputError
from labelforge.outputs import check_output, is_finished, prepare_output

REPO = Path(__file__).resolve().parents[1]
HOLD = (
    "import sys\nfrom labelforge._lock import output_lock\n"
    "with output_lock(sys.argv[1], 'compose'):\n    print('ready', flush=True)\n    sys.stdin.read()\n"
)


@pytest.fixture()
def holder(tmp_path: Path):
    """A live process holding the lock of tmp_path/out until the test ends."""
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    yield out, proc.pid
    proc.stdin.close()
    proc.wait(timeout=30)


def _compose_cfg(tmp_path: Path, out: Path, **kw) -> ComposeConfig:
    root = make_overlay_dataset(tmp_path / "ds")
    return ComposeConfig(root=root, out=out, classes=("wall",), min_area=10, count=2, cache_dir=tmp_path / "c", **kw)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(out: Path, pid: int, host: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / LOCK).write_text(json.dumps({"pid": pid, "host": host, "command": "compose", "since": time.time()}))


def test_a_second_compose_is_refused_naming_the_holders_pid(holder, tmp_path):
    out, pid = holder
    with pytest.raises(InputError, match=f"locked by pid {pid} on .*compose"):
        run_compose(_compose_cfg(tmp_path, out))
    with pytest.raises(InputError, match=f"pid {pid}"):  # --overwrite must not clear a live run's folder
        run_compose(_compose_cfg(tmp_path, out, overwrite=True))
    assert (out / LOCK).exists() and read_holder(out).pid == pid


@pytest.mark.parametrize(
    "argv",
    [
        ["compose", "{root}", "--out", "{out}", "--class", "wall", "--count", "2"],
        ["compose", "{root}", "--out", "{out}", "--class", "wall", "--count", "2", "--resume"],
        ["train-eval", "{root}", "--out", "{out}"],
        ["train-generator", "{root}", "--out", "{out}"],
        ["export", "{root}", "{out}"],
        ["experiment", str(REPO / "plans" / "quick.toml"), "--out", "{out}"],
    ],
    ids=["compose", "compose-resume", "train-eval", "train-generator", "export", "experiment"],
)
def test_cli_refuses_a_locked_output_with_one_line(holder, tmp_path, argv):
    out, pid = holder
    root = make_overlay_dataset(tmp_path / "ds")
    res = CliRunner().invoke(app, [a.format(root=root, out=out) for a in argv])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and f"pid {pid}" in lines[0] and str(out) in lines[0], res.output


def test_check_output_refuses_early_while_another_run_holds_the_folder(holder):
    out, pid = holder
    with pytest.raises(InputError, match=f"pid {pid}"):
        check_output(out, resume=True)


def test_a_stale_lock_of_a_dead_pid_is_taken_over(tmp_path):
    out = tmp_path / "out"
    _write_lock(out, _dead_pid(), socket.gethostname())
    res = run_compose(_compose_cfg(tmp_path, out))  # a folder holding only a stale lock counts as empty
    assert res.written == 2 and is_finished(out)
    assert not (out / LOCK).exists()  # released: a finished folder holds no lock file


def test_a_lock_of_another_host_is_treated_as_live(tmp_path):
    out = tmp_path / "out"
    _write_lock(out, 4242, "some-other-host")
    with pytest.raises(InputError, match=f"pid 4242 on some-other-host.*delete {out / LOCK}"):
        run_compose(_compose_cfg(tmp_path, out))


def test_lock_is_reentrant_and_overwrite_keeps_it(tmp_path):
    out = tmp_path / "out"
    with output_lock(out, "compose"):
        (out / "old.txt").write_text("x")
        with output_lock(out, "compose"):  # an experiment calls a command in process
            prepare_output(out, overwrite=True)
        assert (out / LOCK).exists() and not (out / "old.txt").exists()
        assert read_holder(out).command == "compose"
    assert not (out / LOCK).exists()


def test_a_refused_input_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(USER_ERRORS):
        run_compose(ComposeConfig(root=tmp_path / "missing", out=out, classes=("wall",)))
    assert not (tmp_path / "new").exists()


def test_torchrun_ranks_above_zero_leave_the_lock_to_rank_zero(holder, monkeypatch):
    out, pid = holder  # stands for rank 0 of the same torchrun job
    monkeypatch.setenv("RANK", "1")
    check_output(out, resume=True)  # RunDir.open checks on every rank: rank 0's lock is no refusal
    with output_lock(out, "train-eval"):
        assert read_holder(out).pid == pid
    assert (out / LOCK).exists()  # rank 1 neither took nor released it
