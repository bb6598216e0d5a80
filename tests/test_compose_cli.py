"""``labelforge compose`` through the real CLI: runs, resumes, and one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _compose_data import WALL, make_overlay_dataset
from typer.testing import CliRunner

from labelforge.cli.app import app
from labelforge.shards import ShardSet

runner = CliRunner()


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_overlay_dataset(tmp_path / "ds")


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_compose_cli_overlay_with_preview(root, tmp_path):
    out = tmp_path / "o"
    args = ("compose", root, "--out", out, "--class", "wall", "-n", "3", "--min-area", "10", "--preview", "2")
    r = invoke(*args, "--cache-dir", tmp_path / "c", "-j", "1")
    assert r.exit_code == 0, r.output
    assert "composed 3 maps" in r.output and "classes: wall" in r.output
    ss = ShardSet(out)
    assert len(ss) == 3 and ss.image_counts()[WALL] == 3 and (out / "preview.png").is_file()
    # finished output is refused without --overwrite, accepted with --resume (nothing left) or --overwrite
    r = invoke(*args, "--cache-dir", tmp_path / "c")
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = invoke(*args, "--cache-dir", tmp_path / "c", "--resume")
    assert r.exit_code == 0 and "(0 this run)" in r.output and "cached index" in r.output


def test_compose_cli_multi_classes_list_and_auto(root, tmp_path):
    r = invoke("compose", root, "-o", tmp_path / "m", "-m", "multi", "--classes", "wall, car", "-n", "2",
               "--min-area", "10", "--cache-dir", tmp_path / "c")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert ShardSet(tmp_path / "m").config["classes"] == ["wall", "car"]
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"recommendation": {"classes": ["wall"]}}))
    r = invoke("compose", root, "-o", tmp_path / "a", "--classes", "auto", "--stats", stats, "--ratio", "0.5",
               "--min-area", "10", "--cache-dir", tmp_path / "c")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert len(ShardSet(tmp_path / "a")) == 2 and ShardSet(tmp_path / "a").config["classes"] == ["wall"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--class", "wal"), "unknown class 'wal'; valid: road, sidewalk, building, wall"),
        (("--classes", "auto"), "--classes auto needs --stats"),
        (("--class", "wall", "--ratio", "1.5"), "--ratio must lie strictly between 0 and 1"),
        (("-m", "reconstruct", "--target", "nowhere.json"), "nowhere.json: --target is neither"),
    ],
)
def test_compose_cli_bad_input_is_one_line_exit_2(root, tmp_path, args, message):
    out = tmp_path / "bad"
    r = invoke("compose", root, "-o", out, *args, "--cache-dir", tmp_path / "c")
    assert r.exit_code == 2
    assert message in r.output and r.output.startswith("error:")
    assert "Traceback" not in r.output
    assert not out.exists()


def test_compose_cli_missing_root(tmp_path):
    r = invoke("compose", tmp_path / "nowhere", "-o", tmp_path / "o", "--class", "wall")
    assert r.exit_code == 2 and "dataset root does not exist" in r.output
    assert not (tmp_path / "o").exists()


def test_help_has_examples():
    for cmd in ("compose", "export"):
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and f"Example: labelforge {cmd}" in r.output


def test_method_help_names_every_registered_method():
    from labelforge.compose import method_names

    r = invoke("compose", "--help")
    method_help = r.output.split("-m, --method")[1].split("-c, --class")[0]
    assert all(name in method_help for name in method_names()), method_help
