"""The quick plan end to end: the report, a rerun that does nothing, a SIGKILLed run that finishes with the
same numbers, and the train-eval stages as submitit jobs (its local executor).

The quick plan itself runs in the default suite (about 2 minutes on 2 shared cores); the kill and the
submitit tests each cost about as much again and are marked slow (``make test-all``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from labelforge.experiment import ExperimentConfig, ExperimentResult, run_experiment
from labelforge.shards import ShardSet

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "plans" / "quick.toml"


@contextmanager
def one_thread() -> Iterator[None]:
    """The runs in this file use one torch thread, as the killed subprocess does: the same float results."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _run(plan: Path, out: Path, **kwargs) -> ExperimentResult:
    with one_thread():
        return run_experiment(ExperimentConfig(plan=plan, out=out, **kwargs))


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> ExperimentResult:
    return _run(QUICK, tmp_path_factory.mktemp("experiment") / "quick")


def _numbers(report: dict) -> list:
    """Every number of the report that a rerun must reproduce exactly."""
    return [
        (
            r["label"],
            r["seeds"],
            r["miou"]["values"],
            r["rare"]["values"],
            {c: s["values"] for c, s in r["per_class"].items()},
        )
        for r in report["rows"]
    ]


def test_quick_plan_writes_the_report(finished: ExperimentResult) -> None:
    out = finished.out
    assert finished.ran == 37 and all(r.status == "run" for r in finished.stages)
    rep = json.loads((out / "report" / "report.json").read_text())
    assert rep == finished.report
    assert [r["label"] for r in rep["rows"]] == [
        "baseline", "no-aug", "rcs", "control r0.5", "overlay-rider r0.5", "multi r0.5", "copy-paste-multi r0.5",
        "oracle-multi r0.5", "filter-multi r0.5",
    ]  # fmt: skip
    assert all(r["seeds"] == [0, 1] for r in rep["rows"])
    base = rep["rows"][0]
    assert base["miou"]["delta"] is None and base["miou"]["p"] is None
    # mIoU over the classes present in the val ground truth, recomputed from the runs' own metrics
    metrics = [json.loads((Path(p) / "metrics.json").read_text()) for p in base["runs"]]
    means = [np.mean([m["per_class_iou"][c] for c in rep["class_set"]]) for m in metrics]
    assert base["miou"]["values"] == pytest.approx(means, abs=1e-12)
    for r in rep["rows"][1:]:
        assert r["miou"]["delta"] == pytest.approx(r["miou"]["mean"] - base["miou"]["mean"])
        assert 0.0 <= r["miou"]["p"] <= 1.0 and r["miou"]["exceeds_spread"] == (r["miou"]["p"] < 0.05)
    assert set(rep["dataset"]) == {"rider", "fence"}
    assert rep["dataset"]["rider"]["train_images"] >= 1
    # the runs trained as their conditions say
    cfg = {r["label"]: json.loads((Path(r["runs"][0]) / "metrics.json").read_text()) for r in rep["rows"]}
    assert cfg["no-aug"]["config"]["aug"] == "none" and cfg["rcs"]["config"]["sampling"] == "rcs"
    assert cfg["oracle-multi r0.5"]["data"]["supplementary"][0]["classes"] == ["rider", "fence"]
    assert cfg["control r0.5"]["data"]["supplementary"][0]["method"] == "identity"
    assert cfg["multi r0.5"]["config"]["supp_ratio"] == 0.5
    # report.md and a self-contained report.html
    md = (out / "report" / "report.md").read_text()
    assert "| oracle-multi r0.5 | 2 |" in md and "Welch" in md
    page = (out / "report" / "report.html").read_text()
    assert page.count("src='data:image/png;base64,") == 1 and "http" not in page
    assert "training_data.png" in rep["figures"] and "ratio_curve.png" not in rep["figures"]  # one ratio: no curve
    import cv2

    grid = cv2.imread(str(out / "report" / "training_data.png"))
    assert grid is not None and grid.shape[1] > grid.shape[0]  # 9 rows of 3 photo | label pairs
    summary = json.loads((out / "experiment.json").read_text())
    assert summary["harness_seconds"] < 0.05 * summary["seconds"]


def test_filter_condition_and_render_quality_judged_by_the_first_seeds_baseline(finished: ExperimentResult) -> None:
    out = finished.out
    stages = {f"{r.stage.kind} {r.stage.label}": r.stage for r in finished.stages}
    judge = stages["train-eval baseline-s0"].output(out)
    filt = stages["filter gan-multi-rider-fence-r0.5-f1.25"]
    record = ShardSet(filt.output(out)).config
    assert record["filter"]["segmenter"] == str(judge.resolve()) and record["filter"]["factor"] == 1.25
    assert record["filter"]["input"] == str(stages["render gan-multi-rider-fence-r0.5"].output(out).resolve())
    assert record["classes"] == ["rider", "fence"] and record["render"]["renderer"] == "pix2pixhd"
    assert list((out / "cache" / "filter").glob("*.json"))  # the judge's class means, cached for the plan
    rep = finished.report
    rows = {r["label"]: r for r in rep["rows"]}
    metrics = json.loads((Path(rows["filter-multi r0.5"]["runs"][0]) / "metrics.json").read_text())
    assert metrics["data"]["supplementary"][0]["path"] == str(filt.output(out))
    assert metrics["augmented_classes"] == ["fence", "rider"]
    doc = json.loads((filt.output(out) / "filter.json").read_text())
    assert rows["filter-multi r0.5"]["filter"]["dropped"] == doc["total"]["dropped"]
    # every condition that trains on shards has their quality beside it, measured by the same judge
    with_shards = {"control r0.5", "overlay-rider r0.5", "multi r0.5", "copy-paste-multi r0.5", "oracle-multi r0.5",
                   "filter-multi r0.5"}  # fmt: skip
    assert {label for label, r in rows.items() if r["quality"] is not None} == with_shards
    for r in finished.stages:
        if r.stage.kind == "quality":
            q = json.loads((r.stage.output(out) / "quality.json").read_text())
            assert q["segmenter"] == str(judge.resolve())
    q_multi = json.loads((stages["quality gan-multi-rider-fence-r0.5"].output(out) / "quality.json").read_text())
    assert rows["multi r0.5"]["quality"]["rest_miou"] == q_multi["consistency"]["rest_miou"]
    assert rows["multi r0.5"]["quality"]["fd"] == q_multi["feature_distance"]["value"]
    assert "Render quality of the training shards" in (out / "report" / "report.html").read_text()


def test_rerunning_a_finished_plan_does_no_work(finished: ExperimentResult) -> None:
    out = finished.out
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name not in ("experiment.json",)}
    t0 = time.perf_counter()
    again = _run(QUICK, out)
    assert time.perf_counter() - t0 < 10
    assert again.ran == 0 and again.report == finished.report
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_changed_option_reruns_only_its_dependants(finished: ExperimentResult, tmp_path: Path) -> None:
    plan = tmp_path / "changed.toml"
    plan.write_text(QUICK.read_text().replace("iters = 3", "iters = 2"))
    res = run_experiment(ExperimentConfig(plan=plan, out=finished.out, dry_run=True))
    status = {r.stage.kind: set() for r in res.stages}
    for r in res.stages:
        status[r.stage.kind].add(r.status)
    assert status == {
        "synth": {"done"}, "stats": {"done"}, "train-generator": {"done"}, "compose": {"done"}, "render": {"done"},
        "train-eval": {"run"}, "report": {"run"}, "filter": {"run"}, "quality": {"run"},  # new judge
    }  # fmt: skip


def test_verify_checks_every_stage_of_an_experiment_folder(finished: ExperimentResult, tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from labelforge.cli.app import app
    from labelforge.verify import verify_dir

    res = verify_dir(finished.out)
    assert res.kind == "experiment" and res.ok, res.problems
    out = shutil.copytree(finished.out, tmp_path / "copy")  # damaged below; the fixture stays whole
    shard = next((out / "render").glob("*/shard-00000.h5"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    run = next((out / "train-eval").glob("baseline-*"))
    (run / "_SUCCESS").unlink()
    problems = [str(p) for p in verify_dir(out).problems]
    assert any(str(shard) in p and "checksum mismatch" in p for p in problems), problems
    assert any(str(run) in p and "not finished" in p for p in problems), problems
    cli = CliRunner().invoke(app, ["verify", str(out)])
    assert cli.exit_code == 2


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 600) -> None:
    t0 = time.perf_counter()
    while not ready():
        assert proc.poll() is None, "the plan finished before the kill"
        assert time.perf_counter() - t0 < timeout
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# In the default run (about 2 minutes: a second run of the quick plan): the promise that a killed
# `make demo` loses nothing is what users rely on most.
def test_killed_plan_finishes_with_the_same_numbers(finished: ExperimentResult, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "labelforge.cli.app", "experiment", str(QUICK), "--out", str(out), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}

    def start() -> subprocess.Popen:
        return subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL)

    # first kill: while rendering (the generator finished, some renders not)
    _kill_when(start(), lambda: (out / "render").is_dir() and any((out / "render").iterdir()))
    # second kill: inside a training run
    _kill_when(start(), lambda: any(p.name == "log.jsonl" for p in (out / "train-eval").glob("*/log.jsonl")))
    res = _run(QUICK, out)
    assert any(r.status == "resume" for r in res.stages if r.stage.kind == "train-eval")
    assert any(r.status == "done" for r in res.stages if r.stage.kind == "render")
    assert _numbers(res.report) == _numbers(finished.report)


@pytest.mark.slow  # job processes each start torch (about 1.5 minutes)
def test_submitit_local_executor_runs_the_train_eval_stages(finished: ExperimentResult, tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    text = QUICK.read_text().replace("iters = 3", "iters = 2")
    head, _, _ = text.partition("[[conditions]]")
    plan = tmp_path / "slurm.toml"
    plan.write_text(head + '[[conditions]]\nkind = "oracle"\n\n[slurm]\ncluster = "local"\ntimeout_min = 20\n')
    env = {"OMP_NUM_THREADS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the job processes inherit it
    try:
        res = _run(plan, finished.out, executor="slurm")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    ran = {r.stage.kind for r in res.stages if r.status != "done"}
    assert ran == {"train-eval", "report"}  # the data stages are the finished plan's: same keys
    for r in res.stages:
        if r.stage.kind == "train-eval":
            record = json.loads((r.stage.output(finished.out) / "stage.json").read_text())
            assert record["job_id"] and (r.stage.output(finished.out) / "_SUCCESS").exists()
    assert [row["label"] for row in res.report["rows"]] == ["baseline", "oracle-multi r0.5"]
    assert _run(plan, finished.out).ran == 0  # the local executor finds the jobs' work finished


@pytest.mark.slow  # two torch processes start (about a minute)
def test_a_stage_asking_for_two_processes_runs_under_torchrun(tmp_path: Path) -> None:
    plan = tmp_path / "ddp.toml"
    plan.write_text(
        '[plan]\nseeds = [0]\nclasses = ["car"]\npreview = 0\n'
        '[dataset]\nsynth = { train = 8, val = 4, size = "64x128" }\n'
        '[segmenter]\niters = 2\nsize = "32x64"\ncrop = "32x64"\nbatch_size = 4\nworkers = 0\ndevice = "cpu"\n'
        "processes = 2\n"
    )
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(REPO)  # the torchrun processes import this checkout
    try:
        res = _run(plan, tmp_path / "out")
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    run = next(r.stage for r in res.stages if r.stage.kind == "train-eval")
    assert run.processes == 2
    assert json.loads((run.output(tmp_path / "out") / "run.json").read_text())["world_size"] == 2
    assert res.report["rows"][0]["seeds"] == [0]
