"""``labelforge experiment PLAN --out DIR``: run a plan's stages (what is not finished yet) and print its table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import OutOpt, RichProgress, console, err_console, handle_errors

__all__ = ["register", "experiment"]


def _ranges(numbers: list[int]) -> str:
    """``[2, 12, 13, 14]`` -> ``"2, 12-14"``."""
    parts: list[str] = []
    for n in sorted(numbers):
        if parts and parts[-1][1] == n - 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts) or "-"


def _stage_table(res: Any) -> Any:
    from rich.table import Table

    out = res.out
    index = {r.stage.key: i + 1 for i, r in enumerate(res.stages)}
    table = Table(title=f"{res.graph.plan.path}: {len(res.stages)} stages -> {out}")
    for col in ("#", "stage", "label", "key", "status", "needs"):
        table.add_column(col, justify="right" if col == "#" else "left")
    colour = {"done": "green", "resume": "yellow", "run": "bold"}
    for i, r in enumerate(res.stages):
        needs = _ranges([index[s.key] for s in r.stage.upstream])
        table.add_row(str(i + 1), r.stage.kind, r.stage.label, r.stage.key, f"[{colour[r.status]}]{r.status}[/]", needs)
    return table


def _result_table(doc: dict[str, Any]) -> Any:
    from ..report.experiment_tables import legend, summary_table

    return _rich(doc["title"], legend(doc), *summary_table(doc))


def _rich(title: str, caption: str, header: list[str], rows: list[Any]) -> Any:
    from rich.table import Table

    table = Table(title=title, caption=caption, caption_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        cells = []
        for c in row:
            style = "green" if c.sign > 0 else "red"
            cells.append(f"[bold {style}]{c}[/]" if c.strong else str(c))
        table.add_row(*cells)
    return table


@handle_errors
def experiment(
    plan: Annotated[Path, typer.Argument(help="Experiment plan (TOML): dataset, generator, segmenter, conditions.")],
    out: OutOpt,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the stage graph and what would run; run nothing.")
    ] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor", help="local (stages one after another here) | slurm (independent stages as parallel jobs)."
        ),
    ] = "local",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run an experiment plan: synth/stats/generator/compose/render/train-eval stages keyed by their configs,
    then a report (report.md, report.json, self-contained report.html) comparing every condition with the
    baseline over seeds. Rerunning reuses finished stages and resumes unfinished ones; changing an option
    reruns only what depends on it.

    Example: labelforge experiment plans/demo.toml --out demo-out/experiment

    On a cluster: labelforge experiment plans/paper.toml --out runs/paper --executor slurm
    """
    from ..experiment import ExperimentConfig, run_experiment

    cfg = ExperimentConfig(plan=plan, out=out, dry_run=dry_run, executor=executor)
    try:
        res = run_experiment(cfg, progress=RichProgress(quiet=quiet))
    except KeyboardInterrupt:
        err_console.print("interrupted; finished stages are kept: run the same command again to continue")
        raise typer.Exit(130) from None
    if dry_run:
        console.print(_stage_table(res))
        counts = {s: sum(r.status == s for r in res.stages) for s in ("done", "resume", "run")}
        console.print(f"{counts['done']} done, {counts['resume']} to resume, {counts['run']} to run")
        return
    if res.report is not None:
        from ..report.experiment_tables import quality_legend, quality_table

        console.print(_result_table(res.report))
        header, rows = quality_table(res.report)
        if rows:
            console.print(_rich("render quality of the training shards", quality_legend(res.report), header, rows))
    finished = len(res.stages) - res.ran
    overhead = res.seconds - res.stage_seconds
    console.print(
        f"{res.ran} stages ran, {finished} were already finished; {res.seconds:.1f} s (harness {overhead:.2f} s)"
    )
    report = res.graph.report.output(res.out)
    console.print(f"report: {report / 'report.html'} (also report.md, report.json)")


def register(app: typer.Typer) -> None:
    app.command("experiment")(experiment)
