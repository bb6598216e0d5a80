"""``--executor slurm``: independent stages as parallel cluster jobs through submitit.

The stages left to run are grouped in waves: a stage joins the first wave after all of its inputs'
waves, so every wave holds stages that do not depend on each other (the seeds x conditions of
train-eval are one wave). Each wave is submitted as job arrays (one per kind of resources: a
stage that asks for N processes gets N tasks and, when it is a GPU stage, N GPUs) and waited for;
the report is written here once the runs are done. Jobs run :func:`labelforge.experiment.worker.submitit_entry`
with the same stage keys and folders as the local executor.

``[slurm]`` keys: ``cluster`` (``"local"`` runs the jobs as local processes through submitit's
local executor, which is how the tests exercise this path), ``partition``, ``timeout_min``,
``gpus_per_node``, ``cpus_per_task``, ``mem_gb``, ``account``, ``qos``, ``constraint``,
``array_parallelism``, ``additional`` (a table of extra sbatch options).

Example:
    labelforge experiment plans/paper.toml --out runs/paper --executor slurm
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import LabelforgeError
from ..progress import Progress
from .runner import StageRun, stage_cost, write_record
from .stages import Stage
from .worker import StageJob, run_job, submitit_entry

__all__ = ["waves", "run_slurm"]

GPU_KINDS = ("train-generator", "train-eval", "filter", "quality")


def waves(todo: list[StageRun]) -> list[list[StageRun]]:
    """Group the stages so that each group depends only on earlier groups (or on finished stages)."""
    pending = {r.stage.key for r in todo}
    level: dict[str, int] = {}
    for r in todo:  # todo is in graph order: inputs come first
        ups = [level[s.key] for s in r.stage.upstream if s.key in pending]
        level[r.stage.key] = 1 + max(ups, default=-1)
    out: list[list[StageRun]] = [[] for _ in range(1 + max(level.values(), default=-1))]
    for r in todo:
        out[level[r.stage.key]].append(r)
    return out


def _is_gpu(stage: Stage) -> bool:
    return stage.kind in GPU_KINDS or (stage.kind == "render" and not stage.params.get("oracle"))


def _executor(folder: Path, slurm: dict[str, Any], processes: int, gpu: bool) -> Any:
    import submitit

    ex = submitit.AutoExecutor(folder=folder, cluster=slurm.get("cluster"))
    params: dict[str, Any] = {
        "timeout_min": slurm.get("timeout_min", 24 * 60),
        "tasks_per_node": processes,
        "gpus_per_node": (slurm.get("gpus_per_node") or processes) if gpu else 0,
        "name": "labelforge",
    }
    for key in ("cpus_per_task", "mem_gb"):
        if key in slurm:
            params[key] = slurm[key]
    for key in ("partition", "account", "qos", "constraint", "array_parallelism"):
        if key in slurm:
            params[f"slurm_{key}"] = slurm[key]
    if "additional" in slurm:
        params["slurm_additional_parameters"] = dict(slurm["additional"])
    ex.update_parameters(**params)
    return ex


def _submit(wave: list[StageRun], out: Path, slurm: dict[str, Any]) -> list[tuple[StageRun, Any]]:
    groups: dict[tuple[int, bool], list[StageRun]] = {}
    for r in wave:
        groups.setdefault((r.stage.processes, _is_gpu(r.stage)), []).append(r)
    jobs = []
    for (processes, gpu), runs in groups.items():
        ex = _executor(out / "slurm", slurm, processes, gpu)
        with ex.batch():  # one job array per kind of resources
            submitted = [
                ex.submit(submitit_entry, StageJob.of(r.stage, out, r.status == "resume").to_dict()) for r in runs
            ]
        jobs += list(zip(runs, submitted, strict=True))
    return jobs


def run_slurm(todo: list[StageRun], out: Path, slurm: dict[str, Any], progress: Progress) -> None:
    """Run ``todo`` wave by wave as cluster jobs; the report (cheap) runs in this process at the end."""
    report = [r for r in todo if r.stage.kind == "report"]
    jobs_todo = [r for r in todo if r.stage.kind != "report"]
    total = sum(stage_cost(r.stage) for r in todo)
    with progress.task("experiment (slurm)", total=max(1, round(total))) as bar:
        for i, wave in enumerate(waves(jobs_todo)):
            names = ", ".join(sorted({r.stage.kind for r in wave}))
            progress.log(f"wave {i + 1}: {len(wave)} jobs ({names})")
            for r, job in _submit(wave, out, slurm):
                try:
                    result = job.result()
                except Exception as exc:  # submitit raises its own errors carrying the job's traceback
                    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    raise LabelforgeError(
                        f"stage {r.stage.name} failed as job {job.job_id}: {first} (log: {job.paths.stderr})"
                    ) from None
                r.seconds = result["seconds"]
                write_record(r.stage, out, {**result, "job_id": str(job.job_id)})
                bar.advance(round(stage_cost(r.stage)), stage=f"{r.stage.name} (job {job.job_id})")
        for r in report:
            result = run_job(StageJob.of(r.stage, out, False), progress)
            r.seconds = result["seconds"]
            write_record(r.stage, out, result)
            bar.advance(round(stage_cost(r.stage)))
