"""Entry point: ``labelforge COMMAND ...``. Each command lives in its own module and registers itself."""

from __future__ import annotations

import typer

from .. import __version__
from ._common import OneLineUsageGroup

app = typer.Typer(
    name="labelforge",
    help=(
        "Pixel-level data augmentation for semantic segmentation (Liu et al.): measure class "
        "frequencies, compose label maps with more rare classes, render them with a pix2pixHD "
        "generator, and prove the gain with PSPNet.\n\n"
        "Example: labelforge synth data/mini && labelforge stats data/mini"
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    cls=OneLineUsageGroup,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"labelforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """labelforge: rebalance rare classes of a segmentation dataset with GAN-rendered samples."""


def _register() -> None:
    # Command modules import only typer/rich at module level, so --help stays fast.
    from . import (
        check,
        compose,
        experiment,
        filter,
        generator,
        labelspace,
        quality,
        report,
        segment,
        stats,
        synth,
        verify,
    )

    commands = (synth, check, stats, compose, generator, quality, filter, segment, report, experiment, labelspace)
    for mod in (*commands, verify):
        mod.register(app)


_register()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
