"""The command line as a whole: help everywhere, an example in every command's help, a fast import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from labelforge.cli.app import app

runner = CliRunner()
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


def test_no_args_shows_help():
    res = runner.invoke(app, [])
    assert "Usage: labelforge" in res.output and "Commands" in res.output


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("labelforge ")


def test_the_pipeline_commands_are_registered():
    expected = {
        "synth",
        "check",
        "stats",
        "compose",
        "export",
        "train-generator",
        "render",
        "train-eval",
        "quality",
        "evaluate",
        "report",
    }
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    res = runner.invoke(app, [name, "-h"])
    assert res.exit_code == 0, res.output
    assert "Example:" in res.output and f"labelforge {name}" in res.output
    cmd = typer.main.get_command(app).commands[name]
    for p in cmd.params:
        if p.name != "help":
            assert getattr(p, "help", None), f"{name}: option {p.name} has no help text"


def test_help_and_stats_do_not_import_torch_or_matplotlib():
    code = (
        "import sys, labelforge.cli.app, labelforge.stats\n"
        "print(','.join(m for m in ('torch', 'matplotlib', 'h5py', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
