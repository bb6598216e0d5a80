"""``labelforge train-eval`` end to end on a hand-built 64x64 dataset and image shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from cityscapes_tools.io import read_label
from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.errors import InputError, OutputExistsError
from labelforge.labelspace import LabelSpace, get_label_space
from labelforge.progress import Progress, ProgressTask
from labelforge.seg.presets import resolve_config
from labelforge.seg.train import train_eval
from labelforge.shards import ShardWriter

runner = CliRunner()
LS = get_label_space()
FAST = ["--size", "64x64", "--crop", "48x48", "--batch-size", "2", "--workers", "1", "--device", "cpu", "-q"]


def _scene(rng: np.random.Generator, h: int = 64, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    lab = np.full((h, w), 23, np.uint8)  # sky
    lab[h // 2 :] = 7  # road
    lab[h // 4 : h // 2, : w // 3] = 11  # building
    y, x = rng.integers(h // 4, h - h // 4), rng.integers(0, w - w // 4)
    lab[y : y + h // 6, x : x + w // 6] = 26  # car
    noise = rng.integers(-20, 20, (h, w, 3))
    return lab, np.clip(LS.palette[lab].astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _shards(
    out: Path, n: int, *, ls: LabelSpace = LS, with_image: bool = True, classes=("car",), deflate: bool = True,
    size: tuple[int, int] = (64, 64), config: dict | None = None,
) -> Path:  # fmt: skip
    rng = np.random.default_rng(7)
    with ShardWriter(
        out, label_space=ls, method="overlay", config={"classes": list(classes), **(config or {})}, seed=7, total=n,
        height=size[0], width=size[1], samples_per_shard=3, with_image=with_image, deflate_images=deflate,
    ) as w:  # fmt: skip
        for i in range(w.start_index, n):
            lab, img = _scene(rng, *size)
            w.write(i, key=f"sup_{i:06d}_000000", label=lab, instance=lab.astype(np.int32), provenance={},
                    image=img if with_image else None)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("seg")
    rng = np.random.default_rng(0)
    root = base / "root"
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            lab, img = _scene(rng)
            write_sample(root, split, f"tst_{i:06d}_000019", label=lab, image=img)
    mixed = base / "mixed_sizes"
    for split, sizes in (("train", [(64, 64), (32, 64)]), ("val", [(64, 64)])):
        for i, (h, w) in enumerate(sizes):
            lab, img = _scene(rng, h, w)
            write_sample(mixed, split, f"tst_{i:06d}_000019", label=lab, image=img)
    noval = base / "noval"
    for i in range(2):
        lab, img = _scene(rng)
        write_sample(noval, "train", f"tst_{i:06d}_000019", label=lab, image=img)
    other = LabelSpace.from_dict({**LS.to_dict(), "name": "other"})
    return {
        "base": base,
        "root": root,
        "mixed_sizes": mixed,
        "noval": noval,
        "supp": _shards(base / "supp", 6),
        "supp2": _shards(base / "supp2", 3, classes=("wall", "bus"), deflate=False),  # raw photos, as render writes
        "half": _shards(base / "half", 3, size=(32, 32), deflate=False),  # rendered at half the originals' size
        "labels_only": _shards(base / "labels_only", 3, with_image=False),
        "other_ls": _shards(base / "other_ls", 3, ls=other),
    }


def _invoke(args: list[str]) -> Any:
    return runner.invoke(app, ["train-eval", *[str(a) for a in args]])


def test_mixed_run_writes_metrics_with_the_measured_share(data: dict[str, Path]) -> None:
    out = data["base"] / "mixed"
    args = [data["root"], "--supp", data["supp"], "--supp", data["supp2"], "--supp-ratio", "0.5"]
    res = _invoke([*args, "--epochs", "2", "--out", out, "--save-predictions", *FAST])
    assert res.exit_code == 0, res.output
    assert "mIoU" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["schema"] == "labelforge.metrics/1"
    assert m["classes"] == LS.class_names and list(m["per_class_iou"]) == LS.class_names
    assert len(m["confusion_matrix"]) == 19 and 0.0 <= m["miou"] <= 1.0
    # two 64x64 val images, every pixel labelled with an evaluated class
    assert sum(map(sum, m["confusion_matrix"])) == 2 * 64 * 64
    assert m["data"]["originals"] == 4
    assert [(s["count"], s["classes"]) for s in m["data"]["supplementary"]] == [(6, ["car"]), (3, ["wall", "bus"])]
    # 4 originals at ratio 0.5 -> 8 samples per epoch, 4 of them supplementary, counted as drawn
    assert m["data"]["supp_share_seen"] == 0.5
    assert m["augmented_classes"] == ["bus", "car", "wall"]
    assert [(h["epoch"], h["iter"], h["phase"]) for h in m["history"]] == [(1, 4, "mixed"), (2, 8, "mixed")]
    assert all("miou" in h and h["seconds"] > 0 for h in m["history"])
    assert m["history"][-1]["miou"] == m["miou"]
    run = json.loads((out / "run.json").read_text())
    assert run["command"] == "train-eval" and run["world_size"] == 1
    assert run["config"]["supp_ratio"] == 0.5 and run["config"]["crop"] == [48, 48]
    assert run["sampler"] == {"kind": "MixSampler", "seed": 0, "originals": 4, "supplementary": 9}
    assert m["config"]["seed"] == m["seed"] == 0
    assert (out / "_SUCCESS").exists() and (out / "checkpoint.pt").exists()
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events.count("epoch") == 2 and events[-1] == "eval"
    preds = sorted((out / "predictions" / "tst").iterdir())
    assert [p.name for p in preds] == [f"tst_{i:06d}_000019_pred_labelIds.png" for i in range(2)]
    assert set(np.unique(read_label(preds[0]))) <= {c.id for c in LS.eval_classes}  # labelIds, not trainIds
    # the saved predictions score exactly the same with `labelforge evaluate`
    ev = runner.invoke(
        app, ["evaluate", str(out / "predictions"), str(data["root"]), "--format", "labelIds", "--out", str(out / "ev")]
    )
    assert ev.exit_code == 0, ev.output
    assert json.loads((out / "ev" / "metrics.json").read_text())["confusion_matrix"] == m["confusion_matrix"]
    # finished output: refused without --overwrite, a no-op with --resume
    again = _invoke([*args, "--epochs", "2", "--out", out, *FAST])
    assert again.exit_code == 2 and "already finished" in again.output
    assert _invoke([*args, "--epochs", "2", "--out", out, "--resume", *FAST]).exit_code == 0


def test_pretrain_finetune_runs_phases_in_order(data: dict[str, Path]) -> None:
    out = data["base"] / "pf"
    cfg = resolve_config(
        "tiny", root=data["root"], out=out, supp=[data["supp"]], schedule="pretrain-finetune", epochs=3,
        size=(64, 64), crop=(32, 32), batch_size=2, workers=0, device="cpu", eval_every=2,
    )  # fmt: skip
    m = train_eval(cfg)
    assert [(h["phase"], h["iter"], h["supp_share"]) for h in m["history"]] == [
        ("pretrain", 3, 1.0),
        ("finetune", 5, 0.0),
        ("finetune", 7, 0.0),
    ]
    assert ["miou" in h for h in m["history"]] == [False, True, True]  # every 2nd epoch and the last
    assert m["data"]["supp_share_seen"] == 6 / 14


class _StopAt(Progress):
    """Raises KeyboardInterrupt at the n-th training step, like a user pressing Ctrl-C."""

    def __init__(self, n: int) -> None:
        self.n = n

    def task(self, description: str, total: int | None = None, **kw: object) -> ProgressTask:
        outer = self

        class _T(ProgressTask):
            def advance(self, n: int = 1, **fields: Any) -> None:
                if description == "train" and n:
                    outer.n -= n
                    if outer.n <= 0:
                        raise KeyboardInterrupt

        return _T()


def test_resume_after_interrupt_equals_uninterrupted_run(data: dict[str, Path]) -> None:
    base = resolve_config(
        "tiny", root=data["root"], out=data["base"] / "full", supp=[data["supp"]], epochs=3, size=(64, 64),
        crop=(32, 32), batch_size=2, workers=0, device="cpu", seed=3,
    )  # fmt: skip
    full = train_eval(base)
    cut = replace(base, out=str(data["base"] / "cut"))
    with pytest.raises(KeyboardInterrupt):
        train_eval(cut, progress=_StopAt(8))  # 5 steps per epoch: stops inside epoch 2
    cut_dir = Path(cut.out)
    assert not (cut_dir / "_SUCCESS").exists() and (cut_dir / "checkpoint.pt").exists()
    with pytest.raises(OutputExistsError, match="--resume"):
        train_eval(cut)
    changed = replace(cut, lr=0.5)
    with pytest.raises(InputError, match="lr=0.01"):
        train_eval(changed, resume=True)
    resumed = train_eval(cut, resume=True)
    assert resumed["confusion_matrix"] == full["confusion_matrix"]
    assert resumed["miou"] == full["miou"]
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["data"]["supp_share_seen"] == full["data"]["supp_share_seen"]
    events = [json.loads(line)["event"] for line in (cut_dir / "log.jsonl").read_text().splitlines()]
    assert "resume" in events


def test_torchrun_two_processes_on_cpu(data: dict[str, Path]) -> None:
    torchrun = Path(sys.executable).parent / "torchrun"
    labelforge = Path(sys.executable).parent / "labelforge"
    if not torchrun.exists() or not labelforge.exists():
        pytest.skip("torchrun / labelforge entry points not installed in this environment")
    out = data["base"] / "ddp"
    cmd = [
        torchrun, "--nproc-per-node", "2", "--no-python", labelforge, "train-eval", data["root"],
        "--supp", data["supp"], "--iters", "2", "--out", out, "--size", "64x64", "--crop", "32x32",
        "--batch-size", "4", "--workers", "1", "--device", "cpu", "-q",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads((out / "metrics.json").read_text())
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    assert m["history"][-1]["iter"] == 2
    # both processes' halves of the val split are in the all-reduced matrix
    assert sum(map(sum, m["confusion_matrix"])) == 2 * 64 * 64
    assert proc.stdout.count("mIoU") == 1  # rank 0 alone prints


def test_native_size_brings_supplementary_samples_to_the_originals_scale(data: dict[str, Path]) -> None:
    from labelforge.seg.data import PairTransform
    from labelforge.seg.sources import check_inputs
    from labelforge.shards import ShardSet

    # The paper preset keeps the originals at their native size (here 64x64); a generator rendered the
    # shard at 32x32, so each supplementary sample is scaled x2 (image bilinear, label nearest).
    cfg = resolve_config("paper", root=data["root"], out=data["base"] / "unused", supp=[data["half"]], size=None)
    assert cfg.size is None
    inputs = check_inputs(cfg)
    assert inputs.supp_size == (64, 64)
    train = inputs.train_data(PairTransform(None, crop=(64, 64), aug="none"))
    small = ShardSet(data["half"])[0]
    image, label = train.load(train.n_orig)
    assert image.shape == (64, 64, 3) and label.shape == (64, 64)
    assert np.array_equal(label, LS.id_to_train_id[small["label"].repeat(2, 0).repeat(2, 1)])
    assert abs(float(image.mean()) - float(small["image"].mean())) < 1.0  # the same photo, upsampled
    orig_image, _ = train.load(0)
    assert orig_image.shape == (64, 64, 3)  # originals untouched
    summary = inputs.data_summary()
    assert summary["supp_resized_to"] == [64, 64] and summary["supplementary"][0]["size"] == [32, 32]
    # With --size every image is resized to it, shards included: nothing to do beforehand.
    assert check_inputs(replace(cfg, size=(48, 48))).supp_size is None
    # `--size native` reaches the config as "native" (None would mean the preset's size).
    assert resolve_config("tiny", root=data["root"], out=data["base"] / "unused", size="native").size is None


def test_native_size_with_originals_of_several_sizes_and_shards_is_refused(data: dict[str, Path]) -> None:
    out = data["base"] / "bad-mixed-sizes"
    res = _invoke([data["mixed_sizes"], "--supp", data["half"], "--size", "native", "--out", out, "--epochs", "1"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert "train photos differ in size" in res.output and "give --size" in res.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_root", "dataset root does not exist"),
        ("no_val", "split 'val' not found"),
        ("other_ls", "label space 'other'"),
        ("labels_only", "label maps only"),
        ("bad_crop", "--crop"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_output(data: dict[str, Path], case: str, message: str) -> None:
    out = data["base"] / f"bad-{case}"
    args: list[Any] = {
        "missing_root": [data["base"] / "nope"],
        "no_val": [data["noval"]],
        "other_ls": [data["root"], "--supp", data["other_ls"]],
        "labels_only": [data["root"], "--supp", data["supp"], "--supp", data["labels_only"]],
        "bad_crop": [data["root"], "--crop", "big"],
    }[case]
    res = _invoke([*args, "--out", out, "--epochs", "1", "-q"])
    assert res.exit_code == 2
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists()


def test_resume_refuses_an_edited_label_space_or_changed_data(data: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    root = shutil.copytree(data["root"], tmp_path / "root")
    ls_file = tmp_path / "ls.json"
    ls_file.write_text(json.dumps(LS.to_dict()))
    cfg = resolve_config(
        "tiny", root=root, out=tmp_path / "run", epochs=2, size=(64, 64), crop=(32, 32), batch_size=2,
        workers=0, device="cpu", label_space=str(ls_file), eval_every=2,
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        train_eval(cfg, progress=_StopAt(3))  # 2 steps per epoch: stops inside epoch 2, before any eval
    ck = tmp_path / "run" / "checkpoint.pt"

    edited = LS.to_dict()
    car = next(c for c in edited["classes"] if c["name"] == "car")
    car["color"] = [1, 2, 3]
    ls_file.write_text(json.dumps(edited))  # the same file name, another table
    with pytest.raises(InputError) as err:
        train_eval(cfg, resume=True)
    msg = str(err.value)
    assert msg.startswith(f"{ck}: ") and "\n" not in msg
    assert "label space" in msg and "'car'" in msg and "[0, 0, 142]" in msg and "[1, 2, 3]" in msg

    ls_file.write_text(json.dumps(LS.to_dict()))
    lab, img = _scene(np.random.default_rng(5))
    write_sample(root, "train", "tst_000009_000019", label=lab, image=img)  # one more original
    with pytest.raises(InputError) as err:
        train_eval(cfg, resume=True)
    msg = str(err.value)
    assert msg.startswith(f"{ck}: ") and "originals=4" in msg and "5" in msg
    assert not (tmp_path / "run" / "_SUCCESS").exists()


def _gen(root: Path | None, split: str | None) -> dict:
    """A render record of a pix2pixHD generator trained on ``split`` of ``root``."""
    return {"renderer": "pix2pixhd", "generator_data": {"root": None if root is None else str(root), "split": split}}


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("composed_from_val", "its label maps come from split 'val' of"),
        ("copy_paste_from_val", "its label maps and donor photos come from split 'val' of"),
        ("generator_trained_on_val", "rendered by a generator trained on split 'val' of"),
        ("generator_root_unrecorded", "split 'val' of an unrecorded dataset root"),
        ("generator_split_unrecorded", "whose training split is not recorded"),
        ("root_through_a_symlink", "its label maps come from split 'val' of"),
    ],
)
def test_shards_from_the_evaluation_split_are_refused_in_one_line(
    data: dict[str, Path], tmp_path: Path, case: str, message: str
) -> None:
    root = data["root"].resolve()
    link = tmp_path / "root-link"
    link.symlink_to(root)
    config = {
        "composed_from_val": {"root": str(root), "split": "val"},
        "copy_paste_from_val": {"root": str(root), "split": "val", "copy_paste": True},
        "generator_trained_on_val": {"root": str(root), "split": "train", "render": _gen(root, "val")},
        "generator_root_unrecorded": {"root": str(root), "split": "train", "render": _gen(None, "val")},
        "generator_split_unrecorded": {"root": str(root), "split": "train", "render": {"renderer": "pix2pixhd"}},
        "root_through_a_symlink": {"root": str(link), "split": "val"},
    }[case]
    supp = _shards(tmp_path / "supp", 3, config=config)
    out = tmp_path / "run"
    res = _invoke([data["root"], "--supp", supp, "--out", out, "--epochs", "1", "-q"])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"{supp}: evaluation-split leakage: " in res.output and message in res.output, res.output
    assert "--allow-eval-leak" in res.output
    assert not out.exists()


def test_shards_from_train_or_another_dataset_pass_the_leak_check(data: dict[str, Path], tmp_path: Path) -> None:
    from labelforge.seg.sources import check_inputs

    root = data["root"].resolve()
    clean = {
        "train": {"root": str(root), "split": "train"},
        "rendered_train": {"root": str(root), "split": "train", "render": _gen(root, "train")},
        "other_val": {"root": str(data["noval"]), "split": "val", "render": _gen(data["noval"], "val")},
        "oracle": {"root": str(root), "split": "train", "render": {"renderer": "oracle"}},
        "hand_built": {},  # no compose record: nothing to check
    }
    supp = [_shards(tmp_path / name, 3, config=cfg) for name, cfg in clean.items()]
    inputs = check_inputs(resolve_config("tiny", root=data["root"], out=tmp_path / "run", supp=supp))
    assert inputs.leaks == ()
    sources = [s["sources"] for s in inputs.data_summary()["supplementary"]]
    assert sources[1] == [
        {"what": "label maps", "root": str(root), "split": "train"},
        {"what": "generator training pairs", "root": str(root), "split": "train"},
    ]
    assert sources[3] == [{"what": "label maps", "root": str(root), "split": "train"}] and sources[4] == []


def test_allow_eval_leak_trains_and_metrics_say_so(data: dict[str, Path], tmp_path: Path) -> None:
    root = data["root"].resolve()
    supp = _shards(tmp_path / "supp", 3, config={"root": str(root), "split": "val"})
    out = tmp_path / "run"
    res = _invoke([data["root"], "--supp", supp, "--allow-eval-leak", "--iters", "1", "--out", out, *FAST])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["config"]["allow_eval_leak"] is True
    assert m["data"]["eval_leaks"] == [
        {
            "path": str(supp),
            "reason": f"its label maps come from split 'val' of {root}, the split this run evaluates on",
        }
    ]
