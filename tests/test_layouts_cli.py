"""Every command on VOC-, ADE20K- and folders-layout datasets made from a tiny mini-Cityscapes.

check, stats, labelspace init, compose, export, train-generator, render, train-eval and evaluate run
from the command line on each layout (64x128 maps, one epoch or two iterations each). The training
commands (~10 s of CPU per layout) run on VOC in the default suite and on ADE20K and folders with
``-m slow``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _layouts import FOLDERS, convert, train_id_space, write_label_space, zero_other_space
from typer.testing import CliRunner

from cityscapes_tools.synth.generate import generate_dataset
from labelforge.cli.app import app
from labelforge.dataset import open_dataset
from labelforge.labelspace import get_label_space
from labelforge.shards import ShardSet
from labelforge.stats import StatsConfig, compute_stats

runner = CliRunner()
FAST_SEG = ["--size", "64x64", "--crop", "48x48", "--batch-size", "2", "--workers", "1", "--device", "cpu", "-q"]


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def ok(res) -> str:
    assert res.exit_code == 0, res.output
    return res.output


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layouts") / "mini"
    generate_dataset(root, train=4, val=2, height=64, width=128, seed=0, workers=1)
    return root


@pytest.fixture(scope="module")
def datasets(mini: Path, tmp_path_factory) -> Callable[[str], dict]:
    """The converted dataset of a layout, made once per module on first use."""
    made: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in made:
            made[name] = _convert(name, mini, tmp_path_factory.mktemp(name))
        return made[name]

    return get


def _convert(name: str, mini: Path, base: Path) -> dict:
    if name == "voc":  # found by itself: SegmentationClass/ and a labelspace.json in the root
        ls = train_id_space()
        root = convert(mini, base / "VOC2012", "voc", ls)
        write_label_space(ls, root / "labelspace.json")
        args: list[str] = []
    elif name == "ade20k":  # found by itself, its label space a YAML file in the root
        ls = zero_other_space()
        root = convert(mini, base / "ADEChallengeData2016", "ade20k", ls)
        write_label_space(ls, root / "labelspace.yaml")
        args = []
    else:  # suffixes and the label space given on the command line
        ls = train_id_space("cs-folders")
        root = convert(mini, base / "custom", FOLDERS, ls)
        args = ["--layout", FOLDERS, "--label-space", str(write_label_space(ls, base / "classes.yaml"))]
    return {"name": name, "root": root, "base": base, "args": args, "ls": ls}


LAYOUTS = ["voc", "ade20k", "folders"]
# The training commands cost ~10 s of CPU per layout: VOC in the default suite, the others with -m slow.
TRAINING = ["voc", pytest.param("ade20k", marks=pytest.mark.slow), pytest.param("folders", marks=pytest.mark.slow)]


@pytest.mark.parametrize("name", LAYOUTS)
def test_the_converted_files_are_the_layouts_own(name: str, datasets) -> None:
    root = datasets(name)["root"]
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    key = "rendorf_000000_000019"
    want = {
        "voc": [f"JPEGImages/{key}.jpg", f"SegmentationClass/{key}.png", "ImageSets/Segmentation/train.txt"],
        "ade20k": [f"images/training/{key}.jpg", f"annotations/training/{key}.png"],
        "folders": [f"img_dir/train/{key}_leftImg8bit.png", f"ann_dir/train/{key}_gtFine_labelTrainIds.png"],
    }[name]
    assert set(want) <= set(files)
    if name == "voc":  # masks are palette PNGs whose palette holds the class colours
        data = (root / want[1]).read_bytes()
        assert data[25] == 3 and b"PLTE" in data


@pytest.mark.parametrize("name", LAYOUTS)
def test_dataset_commands_run_on_the_layout(name: str, datasets, mini: Path) -> None:
    dataset = datasets(name)
    root, base, args, ls = dataset["root"], dataset["base"], dataset["args"], dataset["ls"]
    spec = FOLDERS if name == "folders" else name

    out = ok(invoke("check", root, *args, "-j", "1"))
    train = "training" if name == "ade20k" else "train"  # check lists the layout's own split names
    assert f"{spec} layout, label space {ls.name}" in out and f"ok {train}: 4 samples (photos, no instances)" in out

    # stats: class by class the numbers of the Cityscapes source
    ok(invoke("stats", root, "--split", "train", "--split", "val", *args, "-j", "1", "--out", base / "stats"))
    assert json.loads((base / "stats" / "stats.json").read_text())["label_space"]["name"] == ls.name
    want = compute_stats(StatsConfig(sources=(mini,), splits=("train", "val"), workers=1))
    lsarg = args[-1] if args else "auto"
    got = compute_stats(StatsConfig(sources=(root,), splits=("train", "val"), layout=spec, label_space=lsarg))
    for w, g in zip(want.classes, got.classes, strict=True):
        assert w.cls.name == g.cls.name
        assert [(s.pixels, s.images) for s in w.sources.values()] == [(s.pixels, s.images) for s in g.sources.values()]

    # labelspace init drafts the values present (palette colours for VOC)
    layout_args = args[:2]
    ok(invoke("labelspace", "init", root, *layout_args, "--out", base / "draft.yaml", "-j", "1"))
    draft = get_label_space(base / "draft.yaml")
    ignored = {c.stored for c in draft.classes if c.train_id == 255}
    assert ignored == ({0} if name == "ade20k" else {255})
    if name == "voc":
        assert draft.get(int(draft.value_to_id[ls.get("car").stored])).color == ls.get("car").color

    # compose: overlay works without groups; reconstruct needs the base group
    shards = base / "overlay"
    ok(invoke("compose", root, *args, "--class", "person", "--count", "3", "--min-area", "10", "--out", shards,
              "--cache-dir", base / "cache", "-j", "1"))  # fmt: skip
    assert ShardSet(shards).config["layout"] == spec
    oracle = invoke("render", shards, "--oracle", "--out", base / "oracle", "--device", "cpu")
    assert oracle.exit_code == 2 and not (base / "oracle").exists()  # its painter knows only Cityscapes ids
    assert f"label space {ls.name!r}: render them with a trained generator" in oracle.output.strip().splitlines()[-1]
    rec = invoke("compose", root, *args, "--method", "reconstruct", "--count", "2", "--min-area", "10",
                 "--out", base / "rec", "--cache-dir", base / "cache", "-j", "1")  # fmt: skip
    if name == "ade20k":
        assert rec.exit_code == 2 and "needs a base group" in rec.output.strip().splitlines()[-1]
        assert not (base / "rec").exists()
    else:
        ok(rec)

    # export back into the layout the dataset came in
    ok(invoke("export", shards, base / "exported"))
    back = open_dataset(base / "exported", ls, spec)
    assert back.layout.spec() == spec
    for s, want_s in zip(back.samples("train"), ShardSet(shards), strict=True):
        assert s.key == want_s["key"] and np.array_equal(back.read_label(s), want_s["label"])


def _training_commands(dataset: dict) -> None:
    root, base, args, ls = dataset["root"], dataset["base"], dataset["args"], dataset["ls"]
    shards = base / "overlay"
    if not shards.is_dir():  # when run alone
        ok(invoke("compose", root, *args, "--class", "person", "--count", "3", "--min-area", "10", "--out", shards,
                  "--cache-dir", base / "cache", "-j", "1"))  # fmt: skip

    # the generator trains on the layout's photo/mask pairs and renders the composed maps
    ok(invoke("train-generator", root, *args, "--out", base / "gen", "--size", "32x64", "--epochs", "1",
              "--batch-size", "2", "--workers", "1", "--device", "cpu"))  # fmt: skip
    ok(invoke("render", shards, "--generator", base / "gen", "--out", base / "rendered", "--batch-size", "2",
              "--workers", "1", "--device", "cpu"))  # fmt: skip

    # PSPNet on the originals plus the rendered samples; its saved predictions score the same in evaluate
    run = base / "run"
    ok(invoke("train-eval", root, *args, "--supp", base / "rendered", "--supp-ratio", "0.5", "--iters", "2",
              "--save-predictions", "--out", run, *FAST_SEG))  # fmt: skip
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classes"] == ls.class_names and sum(map(sum, metrics["confusion_matrix"])) > 0
    ok(invoke("evaluate", run / "predictions", root, *args, "--out", base / "ev", "-j", "1"))
    ev = json.loads((base / "ev" / "metrics.json").read_text())
    assert ev["format"] == "labelIds" and ev["num_samples"] == 2
    assert ev["confusion_matrix"] == metrics["confusion_matrix"]


@pytest.mark.parametrize("name", TRAINING)
def test_training_commands_run_on_the_layout(name: str, datasets) -> None:
    _training_commands(datasets(name))


def test_an_experiment_plan_runs_on_the_layout(datasets, tmp_path: Path) -> None:
    """A plan names a root in another layout and its label-space file; every stage opens it that way."""
    dataset = datasets("folders")
    space = dataset["args"][-1]
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[plan]\nname = "layout"\nseeds = [0]\nratios = [0.5]\nclasses = ["person"]\npreview = 2\n'
        f'[dataset]\nroot = "{dataset["root"]}"\nlayout = "{FOLDERS}"\nlabel_space = "{space}"\n'
        '[compose]\nmin_area = 10\n[quality]\nenabled = false\n'
        '[segmenter]\npreset = "tiny"\niters = 2\nsize = "32x64"\ncrop = "32x64"\nbatch_size = 2\nworkers = 0\n'
        'device = "cpu"\n[[conditions]]\nkind = "baseline"\n[[conditions]]\nkind = "copy-paste"\n',
        encoding="utf-8",
    )
    ok(invoke("experiment", plan, "--out", tmp_path / "exp"))
    report = json.loads((tmp_path / "exp" / "report" / "report.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["baseline", "copy-paste-multi"]
    for metrics in (tmp_path / "exp" / "train-eval").glob("*/metrics.json"):  # scored in the plan's label space
        assert json.loads(metrics.read_text())["classes"] == dataset["ls"].class_names
    shards = ShardSet(next((tmp_path / "exp" / "compose").iterdir()))
    assert (shards.config["layout"], shards.label_space.name) == (FOLDERS, "cs-folders")

    wrong = plan.read_text().replace(f'layout = "{FOLDERS}"', 'layout = "voc"')
    plan.write_text(wrong, encoding="utf-8")
    bad = invoke("experiment", plan, "--out", tmp_path / "exp2")
    assert bad.exit_code == 2 and "dataset.layout:" in bad.output.strip().splitlines()[-1]
    assert not (tmp_path / "exp2").exists()
