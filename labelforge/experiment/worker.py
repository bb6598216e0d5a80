"""Run one stage, wherever it runs: in the experiment's own process, under torchrun, or as a Slurm job.

A :class:`StageJob` is everything a process needs to run one stage, as plain JSON-able values, so it
travels to a torchrun process as a file and to a submitit job as a pickled dict.

Example (what the local executor runs for a stage that asks for two processes):
    torchrun --standalone --nproc-per-node 2 -m labelforge.experiment.worker OUT/jobs/<key>.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..progress import Progress
from .adapters import ADAPTERS
from .stages import Stage

__all__ = ["StageJob", "run_job", "submitit_entry", "main"]


@dataclass(frozen=True)
class StageJob:
    kind: str
    label: str
    key: str
    params: dict[str, Any]
    runtime: dict[str, Any]
    inputs: dict[str, str]  # name -> folder or file
    out: str
    resume: bool

    @classmethod
    def of(cls, stage: Stage, experiment_dir: Path, resume: bool) -> StageJob:
        inputs = {name: str(src.output(experiment_dir)) for name, src in stage.inputs.items()}
        return cls(
            stage.kind, stage.label, stage.key, stage.params, stage.runtime, inputs,
            str(stage.output(experiment_dir)), resume,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_job(job: StageJob, progress: Progress | None = None) -> dict[str, Any]:
    """Call the stage's adapter; returns its summary and the seconds it took."""
    t0 = time.perf_counter()
    inputs = {k: Path(v) for k, v in job.inputs.items()}
    summary = ADAPTERS[job.kind](job.params, job.runtime, inputs, Path(job.out), job.resume, progress or Progress())
    return {"summary": summary, "seconds": time.perf_counter() - t0}


def submitit_entry(job: dict[str, Any]) -> dict[str, Any]:
    """The function a submitit job runs. With several tasks per job, each task becomes one torch.distributed rank."""
    import submitit

    env = submitit.JobEnvironment()
    if env.num_tasks > 1:
        submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return run_job(StageJob(**job))


def main(argv: list[str] | None = None) -> int:
    """``python -m labelforge.experiment.worker JOB.json``: one process of a torchrun stage."""
    from ..errors import USER_ERRORS

    args = sys.argv[1:] if argv is None else argv
    job = StageJob(**json.loads(Path(args[0]).read_text()))
    try:
        run_job(job)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
