"""Experiment plans: parsing, every bad plan as one line with exit status 2, stage keys, the dry run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.experiment import CONDITIONS, PlanError, build_graph, load_plan

REPO = Path(__file__).resolve().parents[1]
QUICK = REPO / "plans" / "quick.toml"
runner = CliRunner()

HEAD = """
[plan]
seeds = [0, 1]
ratios = [0.5]
classes = ["wall", "bus"]

[dataset]
synth = { train = 8, val = 4, size = "64x128" }

[generator]
preset = "tiny"
epochs = 1

[segmenter]
iters = 2
"""


def _plan(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_quick_plan_parses_into_conditions() -> None:
    plan = load_plan(QUICK)
    assert [c.name for c in plan.conditions] == [
        "baseline", "no-aug", "rcs", "control", "overlay-rider", "multi", "copy-paste-multi", "oracle-multi",
        "filter-multi",
    ]  # fmt: skip
    assert plan.seeds == (0, 1) and plan.ratios == (0.5,) and plan.schedules == ("mixed",)
    assert plan.classes == ("rider", "fence")
    multi = next(c for c in plan.conditions if c.name == "multi")
    assert (multi.kind, multi.maps, multi.classes) == ("multi", "multi", ("rider", "fence"))
    rcs = next(c for c in plan.conditions if c.kind == "rcs")
    assert rcs.options == {"rcs_temperature": 0.01, "rcs_min_pixels": 3000, "rcs_min_crop_ratio": 0.5}
    assert plan.dataset.synth == {"train": 16, "val": 6, "height": 64, "width": 128, "seed": 0}


def test_demo_plan_holds_every_condition_the_question_needs_at_three_seeds() -> None:
    # make demo's table must hold every comparison a reviewer asks for: no new data (baseline, no-aug,
    # rcs), more data not rebalanced (control), the GAN variants, the cheap copy-paste and the oracle bound.
    plan = load_plan(REPO / "plans" / "demo.toml")
    assert {c.kind for c in plan.conditions} == set(CONDITIONS)
    assert plan.seeds == (0, 1, 2) and plan.classes == ("truck", "bus")
    graph = build_graph(plan)
    runs = [s for s in graph.stages if s.kind == "train-eval"]
    assert len(runs) == 3 * len(plan.conditions)


def test_paper_plan_parses_with_the_papers_ratios_and_schedule(tmp_path: Path) -> None:
    import numpy as np

    root = tmp_path / "cityscapes"  # the plan's EDIT line pointed at a (tiny) Cityscapes root
    for split in ("train", "val"):
        write_sample(root, split, "city_000000_000019", label=np.full((32, 64), 7, np.uint8))
    text = (REPO / "plans" / "paper.toml").read_text().replace('"/data/cityscapes"', f'"{root}"')
    plan = load_plan(_plan(tmp_path, text))
    assert [c.name for c in plan.conditions][:2] == ["baseline", "no-aug"]
    assert plan.ratios == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert plan.schedules == ("pretrain-finetune",) and plan.seeds == (0, 1, 2)


def test_overlay_without_a_class_is_one_condition_per_plan_class_and_baseline_is_added(tmp_path: Path) -> None:
    plan = load_plan(_plan(tmp_path, HEAD + '[[conditions]]\nkind = "overlay"\n'))
    assert [(c.name, c.classes) for c in plan.conditions] == [
        ("baseline", ()),
        ("overlay-wall", ("wall",)),
        ("overlay-bus", ("bus",)),
    ]


# Each bad plan: (text appended to or replacing the plan, the key and problem the one line must name)
BAD = {
    "unknown top-level key": (HEAD + "[extras]\nx = 1\n", "extras: unknown key; valid: compose, conditions"),
    "unknown plan key": (HEAD.replace("seeds", "colour = 1\nseeds"), "plan.colour: unknown key; valid: classes, count"),
    "unknown segmenter key": (HEAD + "epochz = 3\n", "segmenter.epochz: unknown key; valid: aug, backbone"),
    "unknown condition key": (HEAD + '[[conditions]]\nkind = "multi"\ncolor = 1\n', "conditions[0].color: unknown key"),
    "unknown condition": (
        HEAD + '[[conditions]]\nkind = "mixup"\n',
        "conditions[0].kind: unknown condition 'mixup'; valid: baseline, no-aug, control, overlay, multi",
    ),
    "composite of reconstructed maps": (
        HEAD + '[[conditions]]\nkind = "composite"\nmaps = "reconstruct"\n',
        "conditions[0].maps: unknown maps 'reconstruct'; valid: overlay, multi",
    ),
    "filter factor": (
        HEAD + '[[conditions]]\nkind = "filter"\nfactor = 0\n',
        "conditions[0].factor: must be positive, got 0",
    ),
    "filter needs the generator": (
        HEAD.replace('[generator]\npreset = "tiny"\nepochs = 1', "") + '[[conditions]]\nkind = "filter"\n',
        "conditions[0].kind: 'filter' renders with the generator: add a [generator] table",
    ),
    "unknown quality key": (HEAD + "[quality]\nsamples = 3\n", "quality.samples: unknown key; valid: batch_size"),
    "quality value": (HEAD + "[quality]\nmax_images = 1\n", "quality.max_images: must be at least 2"),
    "missing dataset": (
        HEAD.replace('[dataset]\nsynth = { train = 8, val = 4, size = "64x128" }', ""),
        "dataset: missing",
    ),
    "mini-Cityscapes in another layout": (
        HEAD.replace('size = "64x128" }', 'size = "64x128" }\nlayout = "voc"', 1),
        "dataset.layout: the mini-Cityscapes is written in the Cityscapes layout, not 'voc'",
    ),
    "dataset root not found": (
        HEAD.replace('synth = { train = 8, val = 4, size = "64x128" }', 'root = "no/such/root"'),
        "dataset.root: dataset root",
    ),
    "class the dataset lacks": (
        HEAD.replace('"bus"]', '"unicorn"]'),
        "plan.classes[1]: the dataset has no evaluated class 'unicorn'; valid: road, sidewalk, building, wall",
    ),
    "condition class the dataset lacks": (
        HEAD + '[[conditions]]\nkind = "overlay"\nclass = "dragon"\n',
        "conditions[0].class[0]: the dataset has no evaluated class 'dragon'; valid: road",
    ),
    "ratio above 1": (HEAD.replace("[0.5]", "[0.5, 1.5]"), "plan.ratios[1]: 1.5 is outside (0, 1)"),
    "ratio below 0": (HEAD.replace("[0.5]", "[-0.2]"), "plan.ratios[0]: -0.2 is outside (0, 1)"),
    "schedule": (
        HEAD.replace("seeds = [0, 1]", 'seeds = [0, 1]\nschedules = ["cosine"]'),
        "plan.schedules[0]: unknown schedule 'cosine'; valid: mixed, pretrain-finetune",
    ),
    "unknown arch": (HEAD.replace('preset = "tiny"', 'arch = "spade"'), "generator.arch: unknown generator 'spade'"),
    "oasis without vgg": (
        HEAD.replace('preset = "tiny"', 'arch = "oasis"\nvgg_weights = "vgg.pth"'),
        "generator.vgg_weights: the oasis generator does not use vgg_weights",
    ),
    "k renders of pix2pixhd": (
        HEAD + "[render]\nrenders_per_map = 2\n",
        "render.renders_per_map: 2 renders per map need a generator that draws noise",
    ),
    "k renders below 1": (HEAD + "[render]\nrenders_per_map = 0\n", "render.renders_per_map: expected an integer >= 1"),
    "generator needed": (
        HEAD.replace('[generator]\npreset = "tiny"\nepochs = 1', "") + '[[conditions]]\nkind = "multi"\n',
        "conditions[0].kind: 'multi' renders with the generator: add a [generator] table",
    ),
    "bad segmenter value": (HEAD.replace("iters = 2", "iters = 0"), "segmenter: --epochs / --iters must be at least 1"),
    "duplicate name": (
        HEAD + '[[conditions]]\nkind = "multi"\n[[conditions]]\nkind = "multi"\n',
        "conditions[1].name: 'multi' is used twice",
    ),
    "not toml": ("[plan\nseeds = ", "not valid TOML"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_plan_is_one_line_naming_the_key_and_writes_nothing(tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    plan = _plan(tmp_path, text)
    out = tmp_path / "out"
    res = runner.invoke(app, ["experiment", str(plan), "--out", str(out)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {plan}: "), res.output
    assert message in lines[0], lines[0]
    assert not out.exists()


def test_oracle_needs_a_dataset_with_a_painter(tmp_path: Path) -> None:
    import numpy as np

    root = tmp_path / "real"
    for split in ("train", "val"):
        write_sample(root, split, "city_000000_000019", label=np.full((32, 64), 7, np.uint8))
    text = HEAD.replace('synth = { train = 8, val = 4, size = "64x128" }', f'root = "{root}"')
    with pytest.raises(PlanError, match=r"conditions\[0\]\.kind: 'oracle' paints with the mini-Cityscapes painter"):
        load_plan(_plan(tmp_path, text + '[[conditions]]\nkind = "oracle"\n'))
    (root / "synth.json").write_text("{}")  # a root written by `labelforge synth` has the painter
    assert [c.kind for c in load_plan(_plan(tmp_path, text + '[[conditions]]\nkind = "oracle"\n')).conditions] == [
        "baseline",
        "oracle",
    ]


def test_an_oasis_generator_with_k_renders_and_composite_conditions(tmp_path: Path) -> None:
    text = HEAD.replace('preset = "tiny"', 'arch = "oasis"\npreset = "tiny"') + "[render]\nrenders_per_map = 2\n"
    text += '[[conditions]]\nkind = "multi"\n[[conditions]]\nkind = "composite"\n'
    text += '[[conditions]]\nkind = "composite"\nmaps = "overlay"\nclass = "bus"\n'
    plan = load_plan(_plan(tmp_path, text))
    assert [(c.name, c.kind, c.maps, c.classes) for c in plan.conditions] == [
        ("baseline", "baseline", None, ()),
        ("multi", "multi", "multi", ("wall", "bus")),
        ("composite-multi", "composite", "multi", ("wall", "bus")),
        ("composite-overlay-bus", "composite", "overlay", ("bus",)),
    ]
    stages = {f"{s.kind} {s.label}": s for s in build_graph(plan).stages}
    gen = stages["train-generator oasis-tiny"]
    assert gen.params["arch"] == "oasis" and gen.params["generator"]["z_dim"] == 8
    assert gen.params["train"]["lr"] == 4e-4 and gen.params["train"]["epochs"] == 1  # the OASIS preset, overridden
    plain, comp = stages["render gan-multi-wall-bus-r0.5"], stages["render gan-composite-multi-wall-bus-r0.5"]
    assert plain.params == {"oracle": False, "renders_per_map": 2}
    assert comp.params == {"oracle": False, "renders_per_map": 2, "composite": True}
    assert plain.inputs["shards"] is comp.inputs["shards"]  # the same maps, rendered two ways
    assert comp.inputs["generator"] is gen


def test_the_registry_holds_every_kind_of_the_design_and_nothing_else() -> None:
    assert set(CONDITIONS) == {
        "baseline",
        "no-aug",
        "control",
        "overlay",
        "multi",
        "reconstruct",
        "copy-paste",
        "oracle",
        "rcs",
        "composite",
        "filter",
    }


def test_filter_condition_is_judged_by_the_first_seeds_baseline_right_after_it_trains(tmp_path: Path) -> None:
    text = HEAD + '[[conditions]]\nkind = "filter"\nmaps = "overlay"\nclass = "wall"\nfactor = 2\n'
    plan = load_plan(_plan(tmp_path, text))
    cond = plan.conditions[1]
    assert (cond.name, cond.kind, cond.maps, cond.classes) == ("filter-overlay-wall", "filter", "overlay", ("wall",))
    assert cond.options == {"factor": 2.0}
    graph = build_graph(plan)
    names = [f"{s.kind} {s.label}" for s in graph.stages]
    filt = next(s for s in graph.stages if s.kind == "filter")
    judge = filt.inputs["segmenter"]
    assert judge.kind == "train-eval" and judge.meta["condition"] == "baseline" and judge.meta["seed"] == 0
    assert filt.inputs["shards"].label == "gan-overlay-wall-r0.5" and filt.params == {"factor": 2.0}
    # the filter and the quality of the filtered shards come right after the judge, before the runs still to go
    at = names.index("train-eval baseline-s0")
    assert [n.split()[0] for n in names[at + 1 : at + 4]] == ["filter", "quality", "train-eval"]
    assert names.index("train-eval filter-overlay-wall-r0.5-mixed-s0") > at + 2
    runs = [s for s in graph.stages if s.kind == "train-eval" and s.meta["condition"] == "filter-overlay-wall"]
    assert {r.inputs["supp"].key for r in runs} == {filt.key}
    # the report reads the quality of the row's training shards and the filter's record
    row = next(r for r in graph.report.params["rows"] if r["name"] == "filter-overlay-wall")
    assert graph.report.inputs[row["filter"]] is filt
    assert graph.report.inputs[row["quality"]].inputs["shards"] is filt
    assert graph.report.params["judge"] == {"condition": "baseline", "seed": 0}


def test_quality_stages_can_be_turned_off(tmp_path: Path) -> None:
    text = HEAD + '[quality]\nenabled = false\n[[conditions]]\nkind = "multi"\n'
    graph = build_graph(load_plan(_plan(tmp_path, text)))
    assert not any(s.kind == "quality" for s in graph.stages)
    assert all("quality" not in r for r in graph.report.params["rows"])
    on = build_graph(load_plan(_plan(tmp_path, HEAD + '[quality]\nmax_images = 4\n[[conditions]]\nkind = "multi"\n')))
    q = next(s for s in on.stages if s.kind == "quality")
    assert q.params == {"max_images": 4, "max_real": None, "inception_weights": None}


def _keys(plan_path: Path) -> dict[str, str]:
    return {f"{s.kind} {s.label}": s.key for s in build_graph(load_plan(plan_path)).stages}


def test_same_plan_same_keys_and_one_option_changes_only_its_dependants(tmp_path: Path) -> None:
    text = QUICK.read_text()
    base = _keys(QUICK)
    assert base == _keys(_plan(tmp_path, text, "copy.toml"))  # another file, same content: same keys
    assert len(base) == 37 and len(set(base.values())) == 37

    def changed(new_text: str) -> set[str]:
        keys = _keys(_plan(tmp_path, new_text, "changed.toml"))
        assert set(keys) == set(base)
        return {name for name in base if keys[name] != base[name]}

    runs = {n for n in base if n.startswith("train-eval")}
    judged = {n for n in base if n.startswith(("filter", "quality"))}  # the baseline of seed 0 is their judge
    assert len(judged) == 7
    # a segmenter option: every run, what the judge measures, and the report; no data stage
    assert changed(text.replace("iters = 3", "iters = 5")) == runs | judged | {"report report"}
    # a runtime option (not keyed): nothing
    assert changed(text.replace("workers = 0", "workers = 2")) == set()
    # the generator: it, the renders it makes, their runs, the report; not the oracle, copy-paste or baselines
    gan = changed(text.replace("epochs = 1", "epochs = 2"))
    assert "train-generator pix2pixhd-tiny" in gan and "render oracle-multi-rider-fence-r0.5" not in gan
    assert {n for n in gan if n.startswith("render")} == {
        "render gan-identity-r0.5", "render gan-overlay-rider-r0.5", "render gan-multi-rider-fence-r0.5",
    }  # fmt: skip
    assert {n for n in gan if n.startswith("train-eval")} == {
        n for n in runs if n.split()[1].startswith(("control", "overlay", "multi", "filter"))
    }
    assert {n for n in gan if n.startswith(("filter", "quality"))} == {
        "filter gan-multi-rider-fence-r0.5-f1.25", "quality gan-identity-r0.5", "quality gan-overlay-rider-r0.5",
        "quality gan-multi-rider-fence-r0.5", "quality gan-multi-rider-fence-r0.5-f1.25",
    }  # fmt: skip
    # a compose option: every compose and what depends on it, but not the dataset, generator or plain runs
    comp = changed(text.replace("min_area = 10", "min_area = 12"))
    assert {n.split()[0] for n in comp} == {"compose", "render", "filter", "train-eval", "quality", "report"}
    assert not any(n.split()[1].startswith(("baseline", "no-aug", "rcs")) for n in comp)
    # the dataset: everything
    assert changed(text.replace("seed = 0 }", "seed = 1 }")) == set(base)


def test_dry_run_prints_the_graph_and_runs_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = runner.invoke(app, ["experiment", str(QUICK), "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "37 stages" in res.output and "0 done, 0 to resume, 37 to run" in res.output
    for text in ("synth", "train-generator", "oracle-multi-rider-fence-r0.5", "copy-paste-multi-r0.5-mixed-s1"):
        assert text in res.output
    assert "2, 12-36" in res.output  # the report needs the stats, every run and every quality stage
    assert not out.exists()


def test_import_and_dry_run_stay_light(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from labelforge.experiment import ExperimentConfig, run_experiment\n"
        f"run_experiment(ExperimentConfig(plan={str(QUICK)!r}, out={str(tmp_path / 'o')!r}, dry_run=True))\n"
        "print(','.join(m for m in ('torch', 'matplotlib', 'h5py', 'scipy', 'submitit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == ""


def test_slurm_waves_group_independent_stages() -> None:
    from labelforge.experiment.runner import StageRun
    from labelforge.experiment.slurm import waves

    graph = build_graph(load_plan(QUICK))
    groups = waves([StageRun(s, "run") for s in graph.stages])
    kinds = [sorted({r.stage.kind for r in g}) for g in groups]
    assert kinds == [
        ["synth"],
        ["compose", "stats", "train-eval", "train-generator"],  # the plain runs need only the dataset
        ["quality", "render", "train-eval"],  # copy-paste trains on its compose output, judged by baseline s0
        ["filter", "quality", "train-eval"],
        ["quality", "train-eval"],  # the runs on filtered renders
        ["report"],
    ]
    assert [len(g) for g in groups] == [1, 1 + 1 + 4 + 6, 4 + 2 + 1, 1 + 4 + 8, 1 + 2, 1]
    done = [StageRun(s, "run") for s in graph.stages if s.kind in ("train-eval", "report")]
    assert [len(g) for g in waves(done)] == [18, 1]  # with the data and the judge's stages finished: all runs at once
