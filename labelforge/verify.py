"""``labelforge verify DIR``: check that an output folder is whole and says what it claims.

It recognises the folder by what it holds and lists every problem found, one per line
(``<file>: <problem>``), instead of stopping at the first:

* a shard dir (``manifest.json``; compose, render, filter): the manifest's schema and fields, every
  listed shard present with the size and sha256 the manifest records, no shard file the manifest
  does not list and no unfinished one, and inside each shard its schema, per-sample arrays of the
  manifest's size (labels uint8 HxW with ids of the label space, instances HxW, photos uint8 HxWx3),
  one stored chunk per sample, and photos for every sample once rendered; then ``_SUCCESS``;
* a run dir (``run.json``: train-eval, train-generator): ``run.json``, the checkpoint loads and is of
  the run's label space, ``log.jsonl`` parses, and for train-eval ``metrics.json``; then ``_SUCCESS``;
* an evaluate output (``metrics.json`` written by ``labelforge evaluate``): the metrics file;
* an experiment folder (``graph.json``, ``labelforge experiment``): every stage of the graph as last
  run is finished (``stage.json`` and ``_SUCCESS``), and each shard dir and run dir among them passes
  the checks above.

A run's ``.lock`` (held while a command writes) is no part of its output and is ignored.

Example:
    >>> from labelforge.verify import verify_dir  # doctest: +SKIP
    >>> res = verify_dir("out/render")  # doctest: +SKIP
    >>> res.kind, res.ok, res.summary  # doctest: +SKIP
    ('rendered shard dir', True, '12 samples in 3 shards, 256x512, label space cityscapes')
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .outputs import SUCCESS

__all__ = ["Problem", "VerifyResult", "verify_dir", "dir_kind"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file."""

    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class VerifyResult:
    path: Path
    kind: str  # "shard dir", "rendered shard dir", "train-eval run", ...
    summary: str = ""
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def dir_kind(path: Path) -> str:
    """What kind of labelforge output ``path`` is, from the files it holds; InputError when none."""
    if not path.is_dir():
        raise InputError(path, "not a directory" if path.exists() else "does not exist")
    if (path / "manifest.json").exists():
        return "shard dir"
    if (path / "graph.json").exists():
        return "experiment"
    run = _json_or_none(path / "run.json")
    if isinstance(run, dict) and run.get("command") in ("train-eval", "train-generator"):
        return f"{run['command']} run"
    if (path / "run.json").exists() or (path / "checkpoint.pt").exists():
        return "train-eval run"  # a run whose run.json is damaged: its checks name it
    if (path / "generator.pt").exists():
        return "train-generator run"
    metrics = _json_or_none(path / "metrics.json")
    done = _json_or_none(path / SUCCESS)
    if (isinstance(metrics, dict) and metrics.get("source") == "evaluate") or (
        isinstance(done, dict) and done.get("command") == "evaluate"
    ):
        return "evaluate output"
    raise InputError(
        path,
        "not a labelforge output verify knows (a shard dir, a train-eval or train-generator run, an evaluate "
        "output, an experiment folder)",
    )


def _json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def verify_dir(path: str | Path) -> VerifyResult:
    """Check the output folder ``path``; the result lists every problem (none: it is whole)."""
    from ._verify_checks import check_evaluate, check_run, check_shard_dir

    path = Path(path)
    kind = dir_kind(path)
    res = VerifyResult(path, kind)
    if kind == "shard dir":
        check_shard_dir(path, res)
    elif kind == "experiment":
        _check_experiment(path, res)
    elif kind == "evaluate output":
        check_evaluate(path, res)
    else:
        check_run(path, res, kind.removesuffix(" run"))
    return res


# Stage kinds whose folders verify checks in depth; the others (synth, stats, quality, report) are
# checked for being finished only.
_DEEP = {"compose", "render", "filter", "train-eval", "train-generator"}


def _check_experiment(path: Path, res: VerifyResult) -> None:
    graph = _json_or_none(path / "graph.json")
    if not isinstance(graph, list) or not all(isinstance(s, dict) and "folder" in s for s in graph):
        res.problems.append(Problem(path / "graph.json", "not a stage graph written by labelforge experiment"))
        return
    deep = 0
    for stage in graph:
        folder = path / stage["folder"]
        if not (folder / "stage.json").exists() or not (folder / SUCCESS).exists():
            res.problems.append(Problem(folder, "stage not finished; run the plan again to finish it"))
            continue
        if stage.get("kind") in _DEEP:
            deep += 1
            res.problems += verify_dir(folder).problems
    res.summary = f"{len(graph)} stages, {deep} shard and run folders checked in depth"
