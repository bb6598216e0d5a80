"""``labelforge quality`` on a hand-built 64x64 world: a segmenter trained on photos painted from the
class colours ranks perfect renders far above a weak GAN's, and flat or noise images near zero;
the confusion matrix and the Fréchet distance match hand computations.

The world's maps are patchworks of 32x32 squares of random classes, so that a segmenter has to read
colours: on street scenes with a fixed layout it would also learn that road lies below sky, and
score flat grey images well above zero on position alone.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from _gan_data import (
    BUILDING,
    CAR,
    PERSON,
    ROAD,
    SIDEWALK,
    SKY,
    VEGETATION,
    one_torch_thread,  # noqa: F401 - an autouse fixture
    photo,
)
from typer.testing import CliRunner

from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.labelspace import get_label_space
from labelforge.quality.frechet import FeatureStats, frechet_distance
from labelforge.quality.run import QualityConfig, measure_quality
from labelforge.shards import ShardSet, ShardWriter

LS = get_label_space()
H = W = 64
CLASSES = (SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR, PERSON)
runner = CliRunner()


def scene(rng: np.random.Generator, h: int = H, w: int = W) -> tuple[np.ndarray, np.ndarray]:
    """A (label, instance) patchwork of 16x16 cells of random classes; every cell is its own instance."""
    cells = rng.choice(CLASSES, size=(h // 16, w // 16)).astype(np.uint8)
    label = cells.repeat(16, 0).repeat(16, 1)
    inst = label.astype(np.int32) * 1000 + np.arange(cells.size).reshape(cells.shape).repeat(16, 0).repeat(16, 1)
    return label, inst


def _image_shards(out: Path, labels: list[tuple[np.ndarray, np.ndarray]], paint) -> Path:
    """An image shard dir of the given (label, instance) maps, each photo made by ``paint(label, i)``."""
    with ShardWriter(
        out, label_space=LS, method="overlay", config={"classes": ["car"]}, seed=0, total=len(labels),
        height=H, width=W, samples_per_shard=4, with_image=True,
    ) as wr:  # fmt: skip
        for i, (lab, inst) in enumerate(labels):
            wr.write(i, key=f"q_000000_{i:06d}", label=lab, instance=inst, provenance={}, image=paint(lab, i))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_world(tmp_path_factory.mktemp("quality"))


def build_world(base: Path) -> dict[str, Path]:
    """A dataset root, a segmenter trained on it, and renders of 8 new maps by four renderers."""
    from labelforge.gan.config import RenderConfig
    from labelforge.gan.presets import get_preset
    from labelforge.gan.render import render_shards
    from labelforge.gan.train import train_generator
    from labelforge.seg.presets import resolve_config
    from labelforge.seg.train import train_eval

    rng = np.random.default_rng(0)
    root = base / "root"
    for split, n in (("train", 32), ("val", 4)):
        for i in range(n):
            lab, inst = scene(rng, H, W)
            write_sample(root, split, f"q_000000_{i:06d}", label=lab, instance=inst, image=photo(lab, rng))
    seg_cfg = resolve_config(
        "tiny", root=root, out=base / "seg", size=(H, W), crop=(H, W), aug="none", batch_size=4, iters=60,
        eval_every=100, workers=0, device="cpu", lr=0.02,
    )  # fmt: skip
    train_eval(seg_cfg)
    maps = [scene(rng, H, W) for _ in range(8)]
    paint_rng = np.random.default_rng(1)
    out = {"root": root, "seg": base / "seg", "base": base}
    out["oracle"] = _image_shards(base / "oracle", maps, lambda lab, i: photo(lab, paint_rng))
    out["flat"] = _image_shards(base / "flat", maps, lambda lab, i: np.full((H, W, 3), 128, np.uint8))
    out["noise"] = _image_shards(
        base / "noise", maps, lambda lab, i: paint_rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    )
    # A weak GAN: the tiny pix2pixHD after one epoch on the 8 training photos.
    gen, train = get_preset("tiny")
    train_generator(root, base / "gan", gen, replace(train, height=H, width=W, epochs=1, batch_size=2))
    render_shards(
        _image_shards(base / "labels", maps, lambda lab, i: lab[..., None].repeat(3, 2)),
        base / "weak",
        RenderConfig(device="cpu", preview=0),
        generator=base / "gan",
    )
    out["weak"] = base / "weak"
    return out


def _quality(world: dict[str, Path], name: str, **kw) -> dict:
    cfg = QualityConfig(
        shards=str(world[name]), segmenter=str(world["seg"]), out=str(world["base"] / f"q-{name}"), **kw
    )
    measure_quality(cfg, overwrite=True)
    return json.loads((Path(cfg.out) / "quality.json").read_text())


def test_oracle_renders_rank_far_above_a_weak_gan_and_flat_or_noise_near_zero(world: dict[str, Path]) -> None:
    q = {name: _quality(world, name) for name in ("oracle", "weak", "flat", "noise")}
    miou = {k: v["consistency"]["miou"] for k, v in q.items()}
    fd = {k: v["feature_distance"]["value"] for k, v in q.items()}
    assert miou["oracle"] > 0.35
    assert miou["oracle"] > miou["weak"] + 0.2
    assert miou["flat"] < 0.1 and miou["noise"] < 0.1
    assert fd["oracle"] < fd["weak"] and fd["oracle"] < min(fd["flat"], fd["noise"]) / 2
    o = q["oracle"]
    assert o["consistency"]["augmented_classes"] == ["car"]
    assert o["consistency"]["augmented_miou"] == o["consistency"]["per_class_iou"]["car"]
    assert o["feature_distance"]["kind"] == "segmenter_fd" and "not FID" in o["feature_distance"]["label"]
    assert o["feature_distance"]["rendered"] == 8 and o["feature_distance"]["real"] == 4  # the val split
    assert o["resolution"]["labels"] == [H, W] and o["resolution"]["segmenter_input"] == [H, W]


def test_confusion_matrix_of_a_known_prediction(world: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from labelforge.quality.segmenter import Segmenter

    ss = ShardSet(world["oracle"])
    labels = np.stack([ss[i]["label"] for i in range(len(ss))])
    road = LS.get("road").train_id

    def predict_road(self, images, out_size):  # noqa: ANN001 - a stand-in for the network
        return np.full((len(images), *out_size), road, np.uint8), np.zeros((len(images), 2))

    monkeypatch.setattr(Segmenter, "predict", predict_road)
    monkeypatch.setattr(Segmenter, "embed", lambda self, images: np.random.default_rng(0).normal(size=(len(images), 2)))
    c = _quality(world, "oracle")["consistency"]
    # Every valid pixel is predicted road: road's IoU is its share of the valid pixels, every other
    # present class scores 0, and the matrix has one non-zero column.
    train = LS.id_to_train_id[labels]
    valid = train != 255
    assert c["per_class_iou"]["road"] == pytest.approx((train == road).sum() / valid.sum())
    for name in ("sky", "building", "car"):
        assert c["per_class_iou"][name] == 0.0
    m = np.array(c["confusion_matrix"])
    assert m[:, road].sum() == valid.sum() and m.sum() == valid.sum()
    assert c["pixel_accuracy"] == pytest.approx((train == road).sum() / valid.sum())
    assert {SKY, ROAD, BUILDING, CAR} <= set(np.unique(labels).tolist())


def test_frechet_distance_matches_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = rng.normal(size=(300, 3)) * 2 + 1
    a, b = FeatureStats(), FeatureStats()
    a.add(x[:150])
    a.add(x[150:])  # in two parts: running sums
    b.add(y)
    mu1, c1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, c2 = y.mean(0), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(c1)
    s1 = v @ np.diag(np.sqrt(w)) @ v.T
    cross = np.trace(np.real(_sqrtm(s1 @ c2 @ s1)))
    want = ((mu1 - mu2) ** 2).sum() + np.trace(c1) + np.trace(c2) - 2 * cross
    assert frechet_distance(a, b) == pytest.approx(want, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def _sqrtm(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T


def test_fid_with_local_inception_weights(world: dict[str, Path], tmp_path: Path) -> None:
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    weights = tmp_path / "inception.pt"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), weights)
    q = _quality(world, "oracle", inception_weights=str(weights), max_images=2, max_real=2)
    fd = q["feature_distance"]
    assert fd["kind"] == "fid" and fd["dims"] == 2048 and fd["input_size"] == [299, 299]
    assert (fd["rendered"], fd["real"]) == (2, 2) and fd["value"] >= 0


def test_cli_prints_the_table_and_refuses_bad_input_in_one_line(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "q"
    args = ["quality", str(world["oracle"]), "--segmenter", str(world["seg"]), "--out", str(out), "-q"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "IoU car (augmented)" in res.output and "not FID" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["_SUCCESS", "quality.json"]
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    # Label maps without photos, and a folder that is not a train-eval run: one line, exit 2, no output.
    for bad in (
        ["quality", str(world["base"] / "labels_only"), "--segmenter", str(world["seg"])],
        ["quality", str(world["oracle"]), "--segmenter", str(world["root"])],
    ):
        if "labels_only" in bad[1]:
            _label_only(world["base"] / "labels_only")
        res = runner.invoke(app, [*bad, "--out", str(tmp_path / "bad"), "-q"])
        assert res.exit_code == 2, res.output
        assert res.output.strip().startswith("error:") and len(res.output.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()


def _label_only(out: Path) -> None:
    if out.exists():
        return
    with ShardWriter(
        out, label_space=LS, method="overlay", config={}, seed=0, total=2, height=H, width=W, samples_per_shard=2
    ) as wr:
        for i in range(2):
            lab, inst = scene(np.random.default_rng(i), H, W)
            wr.write(i, key=f"l_000000_{i:06d}", label=lab, instance=inst, provenance={})
