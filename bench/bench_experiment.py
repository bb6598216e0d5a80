"""Benchmark of ``labelforge experiment``: the harness's own cost over the stages it runs.

Runs plans/quick.toml (``quick``: the same plan with one seed and three conditions) into a fresh
folder and reads ``experiment.json``: the wall time of the whole call, the time spent inside the
stages' library calls, and the difference, the harness's own cost (reading the plan, resolving and
hashing every stage config, status checks, stage records, progress). The goal is under 2% of the
plan's time. Then it times a rerun of the finished plan (no stage runs) and a dry run.

Example:
    python -m bench.bench_experiment
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

__all__ = ["run"]

PLAN = Path(__file__).resolve().parents[1] / "plans" / "quick.toml"


def _plan(quick: bool, folder: Path) -> Path:
    if not quick:
        return PLAN
    head, _, _ = PLAN.read_text().partition("[[conditions]]")
    head = head.replace("seeds = [0, 1]", "seeds = [0]")
    path = folder / "bench.toml"
    path.write_text(head + '[[conditions]]\nkind = "rcs"\n\n[[conditions]]\nkind = "oracle"\n')
    return path


def run(quick: bool) -> dict[str, float]:
    """Plan seconds, seconds inside stages, harness seconds and share; rerun and dry-run seconds."""
    from labelforge.experiment import ExperimentConfig, run_experiment

    with tempfile.TemporaryDirectory(prefix="bench-experiment-") as tmp:
        out = Path(tmp) / "out"
        plan = _plan(quick, Path(tmp))
        res = run_experiment(ExperimentConfig(plan=plan, out=out))
        summary = json.loads((out / "experiment.json").read_text())
        t0 = time.perf_counter()
        again = run_experiment(ExperimentConfig(plan=plan, out=out))
        rerun = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_experiment(ExperimentConfig(plan=plan, out=out, dry_run=True))
        dry = time.perf_counter() - t0
    assert again.ran == 0
    return {
        "experiment_stages": float(len(res.stages)),
        "experiment_plan_seconds": round(summary["seconds"], 2),
        "experiment_stage_seconds": round(summary["stage_seconds"], 2),
        "experiment_harness_seconds": round(summary["harness_seconds"], 3),
        "experiment_harness_share": round(summary["harness_seconds"] / summary["seconds"], 5),
        "experiment_rerun_finished_seconds": round(rerun, 3),
        "experiment_dry_run_seconds": round(dry, 3),
    }


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=False))
