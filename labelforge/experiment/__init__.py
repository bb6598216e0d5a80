"""``labelforge experiment PLAN --out DIR``: the paper's experiment as one command.

A TOML plan (:mod:`.plan`) names the dataset, the generator, the segmenter settings and the
conditions to compare (:mod:`.conditions`); :mod:`.graph` turns it into stages keyed by their
configs (:mod:`.stages`); :mod:`.runner` runs what is not finished, here or as Slurm jobs
(:mod:`.slurm`), each stage through one adapter (:mod:`.adapters`); the report is
:mod:`labelforge.report.experiment`. See docs/experiments.md.

Importing this package loads no torch: a dry run reads the plan and the folders only.

Example:
    >>> from labelforge.experiment import ExperimentConfig, run_experiment  # doctest: +SKIP
    >>> res = run_experiment(ExperimentConfig(plan="plans/quick.toml", out="out/quick", dry_run=True))  # doctest: +SKIP
"""

from .conditions import CONDITIONS
from .graph import Graph, build_graph
from .plan import Plan, PlanError, load_plan
from .runner import ExperimentConfig, ExperimentResult, StageRun, run_experiment
from .stages import Stage, stage_status

__all__ = [
    "CONDITIONS",
    "ExperimentConfig",
    "ExperimentResult",
    "Graph",
    "Plan",
    "PlanError",
    "Stage",
    "StageRun",
    "build_graph",
    "load_plan",
    "run_experiment",
    "stage_status",
]
