"""``labelforge experiment``: read a plan, find what is finished, run the rest, write the report.

Stages run in graph order. A stage whose folder is finished is skipped; a started one is resumed by
the command that wrote it; the others run fresh. The local executor runs them one after another
in this process (a stage that asks for several processes under torchrun); the Slurm executor
(:mod:`labelforge.experiment.slurm`) submits independent stages as parallel jobs. Either way the
same keys name the same folders, so a plan can start on one and finish on the other.

``OUT/experiment.json`` records every stage's status, seconds and the harness's own time (the
wall time not spent inside a stage).

Example:
    >>> from labelforge.experiment import ExperimentConfig, run_experiment  # doctest: +SKIP
    >>> res = run_experiment(ExperimentConfig(plan="plans/quick.toml", out="out/quick"))  # doctest: +SKIP
    >>> res.ran  # doctest: +SKIP
    21
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._lock import output_lock
from ..errors import LabelforgeError
from ..outputs import atomic_write_json, atomic_write_text
from ..progress import NullProgress, Progress
from .graph import Graph, build_graph
from .plan import load_plan
from .stages import STAGE_RECORD, STATUS_DONE, STATUS_RESUME, Stage, stage_status
from .worker import StageJob, run_job

__all__ = ["EXECUTORS", "ExperimentConfig", "ExperimentResult", "StageRun", "run_experiment", "stage_cost"]

EXECUTORS = ("local", "slurm")


@dataclass(frozen=True)
class ExperimentConfig:
    plan: Path
    out: Path
    dry_run: bool = False
    executor: str = "local"

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise LabelforgeError(f"unknown executor {self.executor!r}; valid: {', '.join(EXECUTORS)}")


@dataclass
class StageRun:
    stage: Stage
    status: str  # before this call: done | resume | run
    seconds: float = 0.0  # inside the stage's library call


@dataclass
class ExperimentResult:
    graph: Graph
    out: Path
    stages: list[StageRun]
    seconds: float = 0.0
    report: dict[str, Any] | None = None  # report.json once written
    notes: list[str] = field(default_factory=list)

    @property
    def ran(self) -> int:
        return sum(r.status != STATUS_DONE for r in self.stages)

    @property
    def stage_seconds(self) -> float:
        return sum(r.seconds for r in self.stages)


def stage_cost(stage: Stage) -> float:
    """A rough relative cost (about CPU seconds), so the plan bar's ETA weighs a training above a compose."""
    p = stage.params
    if stage.kind == "synth":
        return 0.05 * (p["train"] + p["val"]) * p["height"] * p["width"] / 131072
    if stage.kind == "train-generator":
        t = p["train"]
        return 0.02 * t["epochs"] * 300 * t["height"] * t["width"] / 8192
    if stage.kind == "train-eval":
        steps = p["iters"] or 100 * (p["epochs"] or 1)
        h, w = p["crop"]
        return 0.08 * steps * p["batch_size"] * h * w / 8192 + 2.0
    return {"compose": 3.0, "render": 3.0, "filter": 3.0, "quality": 2.0, "stats": 2.0, "report": 2.0}.get(
        stage.kind, 1.0
    )


def write_record(stage: Stage, out: Path, result: dict[str, Any]) -> None:
    """``stage.json`` beside the stage's output: what made it (key, params, inputs) and what it took."""
    record = {
        "kind": stage.kind,
        "label": stage.label,
        "key": stage.key,
        "params": stage.params,
        "runtime": stage.runtime,
        "inputs": {k: {"key": v.key, "path": str(v.output(out))} for k, v in stage.inputs.items()},
        "meta": stage.meta,
        **result,
    }
    atomic_write_json(stage.output(out) / STAGE_RECORD, record)


def _torchrun(stage: Stage, out: Path, resume: bool) -> dict[str, Any]:
    job = StageJob.of(stage, out, resume)
    path = out / "jobs" / f"{stage.key}.json"
    atomic_write_json(path, job.to_dict())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={stage.processes}"]
    cmd += ["-m", "labelforge.experiment.worker", str(path)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    if proc.returncode != 0:
        raise LabelforgeError(f"stage {stage.name} failed under torchrun (exit status {proc.returncode}); see above")
    return {"summary": {}, "seconds": time.perf_counter() - t0}


def run_local(todo: list[StageRun], out: Path, progress: Progress) -> None:
    """Every stage in order in this process; the plan bar shows stage i of n and the ETA of the whole plan."""
    total = sum(stage_cost(r.stage) for r in todo)
    with progress.task("experiment", total=max(1, round(total))) as bar:
        done = 0.0
        for i, r in enumerate(todo):
            label = f"{i + 1}/{len(todo)} {r.stage.name}" + (" (resume)" if r.status == STATUS_RESUME else "")
            progress.log(f"stage {label}")
            bar.advance(0, stage=label)
            resume = r.status == STATUS_RESUME
            if r.stage.processes > 1:
                result = _torchrun(r.stage, out, resume)
            else:
                result = run_job(StageJob.of(r.stage, out, resume), progress)
            r.seconds = result["seconds"]
            write_record(r.stage, out, result)
            cost = stage_cost(r.stage)
            bar.advance(round(done + cost) - round(done), stage=label)
            done += cost


def _save_plan(cfg: ExperimentConfig, graph: Graph) -> None:
    """The plan as run and its graph beside the stages (rewritten only when they changed)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stages = [
        {
            "kind": s.kind,
            "label": s.label,
            "key": s.key,
            "folder": str(s.output(out).relative_to(out)),
            "inputs": {k: v.key for k, v in s.inputs.items()},
        }
        for s in graph.stages
    ]
    files = {"plan.toml": Path(cfg.plan).read_text(encoding="utf-8"), "graph.json": json.dumps(stages, indent=2) + "\n"}
    for name, text in files.items():
        path = out / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            atomic_write_text(path, text)


def run_experiment(cfg: ExperimentConfig, progress: Progress | None = None) -> ExperimentResult:
    """Run (or with ``dry_run`` only inspect) the plan; returns every stage with its status before this call."""
    t0 = time.perf_counter()
    progress = progress or NullProgress()
    out = Path(cfg.out)
    graph = build_graph(load_plan(cfg.plan))
    if cfg.dry_run:
        return ExperimentResult(graph, out, [StageRun(s, stage_status(s, out)) for s in graph.stages])
    if cfg.executor == "slurm" and graph.plan.slurm.get("cluster") is None and shutil.which("sbatch") is None:
        raise LabelforgeError('--executor slurm: no sbatch on this machine (set [slurm] cluster = "local" to test)')
    with output_lock(out, "experiment"):  # the stages' status is read under the lock: no other run moves it
        return _run(cfg, graph, progress, t0)


def _run(cfg: ExperimentConfig, graph: Graph, progress: Progress, t0: float) -> ExperimentResult:
    out = Path(cfg.out)
    runs = [StageRun(s, stage_status(s, out)) for s in graph.stages]
    result = ExperimentResult(graph, out, runs)
    todo = [r for r in runs if r.status != STATUS_DONE]
    if todo:
        _check_root(graph, progress)
    _save_plan(cfg, graph)
    if cfg.executor == "slurm":
        from .slurm import run_slurm

        run_slurm(todo, out, graph.plan.slurm, progress)
    else:
        run_local(todo, out, progress)
    result.seconds = time.perf_counter() - t0
    report_json = graph.report.output(out) / "report.json"
    if report_json.exists():
        result.report = json.loads(report_json.read_text())
    atomic_write_json(out / "experiment.json", _summary(result))
    return result


def _check_root(graph: Graph, progress: Progress) -> None:
    """Decode every file of the plan's dataset root before anything is written: a bad file found by a
    stage would stop the plan hours in, beside unfinished output."""
    from ..check import check_dataset

    ds = graph.plan.dataset
    if ds.root is not None:
        space = ds.space if ds.space is not None else ds.label_space
        check_dataset(ds.root, ["train", "val"], workers=ds.workers or os.cpu_count() or 1, layout=ds.layout,
                      label_space=space, progress=progress, remember=True)  # fmt: skip


def _summary(res: ExperimentResult) -> dict[str, Any]:
    return {
        "plan": str(res.graph.plan.path),
        "seconds": round(res.seconds, 3),
        "stage_seconds": round(res.stage_seconds, 3),
        "harness_seconds": round(res.seconds - res.stage_seconds, 3),
        "stages": [
            {
                "kind": r.stage.kind,
                "label": r.stage.label,
                "key": r.stage.key,
                "status": r.status,
                "seconds": round(r.seconds, 3),
            }
            for r in res.stages
        ],
    }
