"""``labelforge filter`` on hand-built shards with a judge whose losses the test controls.

The judge is a real (one-iteration) train-eval run, so it loads through the one loader; its class
scores are replaced by a stand-in that reads them off the photo: the red channel names the train id
the judge believes, the green channel its confidence (score ``green / 10`` for that class, 0 for the
others). A pixel of train id t then costs ``log(e^s + K - 1) - s`` when the belief is t, and
``log(e^s + K - 1)`` otherwise, so every class mean and every dropped pixel is known by hand.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cityscapes_tools.writer import write_sample
from labelforge.cli.app import app
from labelforge.labelspace import get_label_space
from labelforge.quality.classloss import ClassLoss, pixel_loss
from labelforge.quality.filter import FilterConfig, drop_mask, ignore_class, run_filter
from labelforge.quality.segmenter import Segmenter
from labelforge.shards import ShardSet, ShardWriter

LS = get_label_space()
K = LS.num_classes  # 19
H, W = 32, 64
ROAD, SKY, CAR, UNLABELED = (LS.get(n).id for n in ("road", "sky", "car", "unlabeled"))
T_ROAD, T_SKY = LS.get("road").train_id, LS.get("sky").train_id
runner = CliRunner()


def loss_of(s: float, right: bool) -> float:
    """The stand-in judge's loss of a pixel believed with score ``s``: of the right class or another."""
    return math.log(math.exp(s) + K - 1) - (s if right else 0.0)


def belief_photo(train_id: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """A photo whose red channel is the believed train id and green channel ten times its score."""
    img = np.zeros((*train_id.shape, 3), np.uint8)
    img[..., 0], img[..., 1] = train_id, conf
    return img


def fake_logits(self: Segmenter, images: np.ndarray, out_size: tuple[int, int]) -> torch.Tensor:
    """Scores read off ``belief_photo`` photos: ``green / 10`` for the red channel's class, 0 elsewhere."""
    assert images.shape[1:3] == tuple(out_size)
    belief = torch.from_numpy(images[..., 0].astype(np.int64)).clamp(max=K - 1)
    score = torch.from_numpy(images[..., 1].astype(np.float32) / 10)
    logits = torch.zeros(len(images), K, *out_size)
    logits.scatter_(1, belief[:, None], score[:, None])
    return logits


def _real_sample() -> tuple[np.ndarray, np.ndarray]:
    """Top half sky believed with score 3; bottom half road, left with score 4, right with 2."""
    label = np.full((H, W), ROAD, np.uint8)
    label[: H // 2] = SKY
    conf = np.full((H, W), 40, np.uint8)
    conf[: H // 2] = 30
    conf[H // 2 :, W // 2 :] = 20
    return label, belief_photo(LS.id_to_train_id[label], conf)


# Class means on the real photos (sky: score 3; road: half score 4, half score 2) and thresholds at 1.25.
SKY_MEAN = loss_of(3, True)
ROAD_MEAN = (loss_of(4, True) + loss_of(2, True)) / 2


@pytest.fixture(scope="module")
def judge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A root of real photos and a finished one-iteration train-eval run on it."""
    from labelforge.seg.presets import resolve_config
    from labelforge.seg.train import train_eval

    base = tmp_path_factory.mktemp("filter")
    root = base / "root"
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            label, img = _real_sample()
            write_sample(root, split, f"f_000000_{i:06d}", label=label, instance=label.astype(np.int32), image=img)
    cfg = resolve_config(
        "tiny", root=root, out=base / "seg", size=(H, W), crop=(H, W), aug="none", batch_size=2, iters=1,
        workers=0, device="cpu",
    )  # fmt: skip
    train_eval(cfg)
    return {"root": root, "seg": base / "seg", "base": base}


def rendered_sample(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, instance, photo) of rendered sample ``i``: 8x8 blocks whose judge's beliefs are set per block.

    Rows of blocks: road believed with score 4 (kept) | road score 2 (dropped at 1.25, kept at 2) |
    road believed sky (dropped) | sky score 3 (kept) | sky score 2.5 (dropped at 1.25) | car believed
    road (kept: no car in the real photos) | unlabeled believed road (already ignored: kept).
    Sample ``i`` has ``i + 1`` road-believed-sky blocks, so the samples differ.
    """
    label = np.full((H, W), ROAD, np.uint8)
    belief = np.full((H, W), T_ROAD, np.uint8)
    conf = np.full((H, W), 40, np.uint8)

    def block(r: int, c: int, lab: int, bel: int, s10: int) -> None:
        label[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = lab
        belief[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = bel
        conf[8 * r : 8 * r + 8, 8 * c : 8 * c + 8] = s10

    block(0, 0, ROAD, T_ROAD, 20)
    for c in range(1, 2 + i):
        block(0, c, ROAD, T_SKY, 30)
    block(1, 0, SKY, T_SKY, 30)
    block(1, 1, SKY, T_SKY, 25)
    block(2, 0, CAR, T_ROAD, 40)
    block(3, 0, UNLABELED, T_ROAD, 40)
    inst = label.astype(np.int32)
    inst[label == CAR] = CAR * 1000
    return label, inst, belief_photo(belief, conf)


def make_render(out: Path, n: int = 4, spp: int = 2, split: str = "train", root: Path | None = None) -> Path:
    """An image shard dir as render writes it: compose's provenance in the config plus a ``render`` record."""
    config = {"classes": ["car"], "root": str(root) if root else "/data/x", "split": split,
              "render": {"renderer": "pix2pixhd", "generator_data": {"root": "/data/x", "split": "train"}}}  # fmt: skip
    with ShardWriter(
        out, label_space=LS, method="overlay", config=config, seed=3, total=n, height=H, width=W,
        samples_per_shard=spp, with_image=True, deflate_images=False,
    ) as wr:  # fmt: skip
        for i in range(n):
            lab, inst, img = rendered_sample(i)
            wr.write(i, key=f"r_000000_{i:06d}", label=lab, instance=inst, image=img, provenance={"base": f"b{i}"})
    return out


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_drop_mask_on_a_hand_built_loss_map() -> None:
    loss = np.array([[0.5, 1.3, 2.0], [0.1, 9.0, 9.0]], np.float32)
    train_ids = np.array([[0, 0, 1], [1, 255, 2]], np.uint8)
    thresholds = np.array([1.25 * 1.0, 1.25 * 1.2, np.inf])  # class 2 is not judged
    want = np.array([[False, True, True], [False, False, False]])
    np.testing.assert_array_equal(drop_mask(loss, train_ids, thresholds), want)
    # a loss exactly at the threshold stays
    assert not drop_mask(np.array([1.25], np.float32), np.array([0], np.uint8), np.array([1.25]))[0]


def test_class_loss_is_pixel_weighted_and_unseen_classes_are_not_judged() -> None:
    t = ClassLoss.empty(["a", "b", "c"])
    t.add(np.array([[1.0, 3.0], [2.0, 7.0]]), np.array([[0, 0], [1, 255]], np.uint8))
    t.add(np.array([[5.0]]), np.array([[0]], np.uint8))
    np.testing.assert_allclose(t.mean[:2], [3.0, 2.0])  # (1 + 3 + 5) / 3, 2 / 1
    assert np.isnan(t.mean[2])
    np.testing.assert_allclose(t.thresholds(1.25), [3.75, 2.5, np.inf])
    back = ClassLoss.from_dict(json.loads(json.dumps(t.to_dict())))
    np.testing.assert_array_equal(back.thresholds(1.25), t.thresholds(1.25))


def test_pixel_loss_is_cross_entropy_and_zero_where_ignored() -> None:
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2, 1, 2)
    loss = pixel_loss(logits, torch.tensor([[[0, 255]]]))
    assert float(loss[0, 0, 0]) == pytest.approx(math.log(1 + math.exp(-2)))
    assert float(loss[0, 0, 1]) == 0.0


def test_ignore_representation_is_a_label_id_whose_train_id_is_255() -> None:
    assert ignore_class(LS).id == 0 and LS.id_to_train_id[0] == 255  # Cityscapes: unlabeled
    voc = get_label_space("voc")
    assert ignore_class(voc).name == "void" and voc.id_to_train_id[ignore_class(voc).id] == 255


def _expected(i: int, factor: float) -> np.ndarray:
    """Sample ``i``'s label map after filtering, by the rule written out per block."""
    lab, _, img = rendered_sample(i)
    thr = {T_ROAD: factor * ROAD_MEAN, T_SKY: factor * SKY_MEAN}
    out = lab.copy()
    for y in range(0, H, 8):
        for x in range(0, W, 8):
            t = int(LS.id_to_train_id[lab[y, x]])
            if t not in thr:  # car (unjudged) and unlabeled (ignored)
                continue
            bel, s = int(img[y, x, 0]), img[y, x, 1] / 10
            if loss_of(s, bel == t) > thr[t]:
                out[y : y + 8, x : x + 8] = UNLABELED
    return out


def test_filter_drops_exactly_the_pixels_above_their_class_threshold(
    judge: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Segmenter, "logits", fake_logits)
    src = make_render(tmp_path / "render")
    before = _hashes(src)
    out = tmp_path / "filtered"
    cfg = FilterConfig(str(src), str(judge["seg"]), str(out), device="cpu", cache_dir=str(tmp_path / "cache"))
    res = run_filter(cfg)
    assert _hashes(src) == before  # the input is only read
    ss, fs = ShardSet(src), ShardSet(out)
    assert len(fs) == 4 and fs.keys() == ss.keys() and (out / "_SUCCESS").is_file()
    # Per block: road score 2 (1.23 > 1.25 x 0.76), road believed sky and sky score 2.5 (0.91 > 1.25 x 0.64) go.
    assert [_expected(i, 1.25)[0, 8] for i in range(4)] == [UNLABELED] * 4
    for i in range(4):
        a, b = ss[i], fs[i]
        np.testing.assert_array_equal(b["label"], _expected(i, 1.25))
        dropped = b["label"] != a["label"]
        np.testing.assert_array_equal(b["instance"][dropped], UNLABELED)
        np.testing.assert_array_equal(b["instance"][~dropped], a["instance"][~dropped])
        np.testing.assert_array_equal(b["image"], a["image"])
        assert b["index"] == a["index"]
        # road score 2 + (i + 1) road-believed-sky blocks + sky score 2.5, 64 pixels each
        want = {"dropped": 64 * (i + 3), "classes": {"road": 64 * (i + 2), "sky": 64}}
        assert b["provenance"] == {"base": f"b{i}", "filter": want}
    # road: 1 + (i + 1) blocks of 64 in sample i -> 64 * (2 + 3 + 4 + 5); sky: one block per sample
    assert res.classes["road"]["dropped"] == 64 * 14 and res.classes["sky"]["dropped"] == 64 * 4
    assert res.classes["car"]["dropped"] == 0 and res.unjudged == ["car"]
    assert res.dropped == 64 * 18 and res.pixels == int(sum(ss.pixel_counts()[c] for c in (ROAD, SKY, CAR)))
    doc = json.loads((out / "filter.json").read_text())
    assert doc["classes"]["road"]["mean_loss"] == pytest.approx(ROAD_MEAN, rel=1e-6)
    assert doc["classes"]["sky"]["threshold"] == pytest.approx(1.25 * SKY_MEAN, rel=1e-6)
    assert doc["classes"]["car"]["threshold"] is None and doc["total"]["dropped"] == 64 * 18
    assert (
        doc["class_loss"]["samples"] == 3 and doc["class_loss"]["split"] == "train" and not doc["class_loss"]["cached"]
    )
    man = json.loads((out / "manifest.json").read_text())
    assert man["filter_dropped"] == {"road": 64 * 14, "sky": 64 * 4, "car": 0}
    # provenance: the input's config (classes, split, render) plus the filter record
    assert (
        fs.config["classes"] == ["car"] and fs.config["split"] == "train" and fs.config["render"] == ss.config["render"]
    )
    rec = fs.config["filter"]
    assert rec["factor"] == 1.25 and rec["segmenter"] == str(judge["seg"].resolve())
    assert rec["ignore"] == {"id": 0, "name": "unlabeled"} and rec["segmenter_data"]["split"] == "train"
    assert len(rec["segmenter_checkpoint_sha256"]) == 64 and rec["input"] == str(src.resolve())
    assert (out / "preview.png").is_file()


def test_factor_and_cache(judge: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Segmenter, "logits", fake_logits)
    src = make_render(tmp_path / "render", n=2)
    cache = str(tmp_path / "cache")
    first = run_filter(FilterConfig(str(src), str(judge["seg"]), str(tmp_path / "a"), device="cpu", cache_dir=cache))
    assert not first.class_loss_cached and len(list((tmp_path / "cache" / "filter").glob("*.json"))) == 1
    res = run_filter(
        FilterConfig(str(src), str(judge["seg"]), str(tmp_path / "b"), factor=2.0, device="cpu", cache_dir=cache)
    )
    assert res.class_loss_cached
    # at factor 2 only the blocks believed as another class go: road score 2 (1.23 < 2 x 0.76) and sky 2.5 stay
    fs = ShardSet(tmp_path / "b")
    for i in range(2):
        np.testing.assert_array_equal(fs[i]["label"], _expected(i, 2.0))
    assert res.classes["road"]["dropped"] == 64 * (1 + 2) and res.classes["sky"]["dropped"] == 0


def test_resume_after_a_failure_gives_the_bytes_of_an_uninterrupted_run(
    judge: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Segmenter, "logits", fake_logits)
    src = make_render(tmp_path / "render")
    kw = dict(device="cpu", cache_dir=str(tmp_path / "cache"), batch_size=2, preview=0)
    whole = run_filter(FilterConfig(str(src), str(judge["seg"]), str(tmp_path / "whole"), **kw))
    calls = []

    def fail_on_second_shard(self, images, out_size):  # noqa: ANN001
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a user's Ctrl-C
        return fake_logits(self, images, out_size)

    monkeypatch.setattr(Segmenter, "logits", fail_on_second_shard)
    out = tmp_path / "cut"
    cfg = FilterConfig(str(src), str(judge["seg"]), str(out), **kw)
    with pytest.raises(KeyboardInterrupt):
        run_filter(cfg)
    assert (
        (out / "shard-00000.h5").is_file() and not (out / "shard-00001.h5").exists() and not (out / "_SUCCESS").exists()
    )
    with pytest.raises(Exception, match="--resume"):
        run_filter(cfg)
    monkeypatch.setattr(Segmenter, "logits", fake_logits)
    res = run_filter(cfg, resume=True)
    assert res.filtered == 2 and res.dropped == whole.dropped and res.classes == whole.classes
    a, b = _hashes(tmp_path / "whole"), _hashes(out)
    assert {k: a[k] for k in ("shard-00000.h5", "shard-00001.h5", "manifest.json")} == {
        k: b[k] for k in ("shard-00000.h5", "shard-00001.h5", "manifest.json")
    }


def test_train_eval_ignores_dropped_pixels_and_still_sees_the_original_provenance(
    judge: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labelforge.seg.data import PairTransform, TrainData
    from labelforge.seg.sources import eval_leak

    monkeypatch.setattr(Segmenter, "logits", fake_logits)
    # maps composed from the judge root's val split: train-eval must refuse them, filtered or not
    src = make_render(tmp_path / "render", n=2, split="val", root=judge["root"])
    out = tmp_path / "filtered"
    run_filter(FilterConfig(str(src), str(judge["seg"]), str(out), device="cpu", cache_dir=str(tmp_path / "c")))
    why = eval_leak(ShardSet(out), judge["root"])
    assert why is not None and why == eval_leak(ShardSet(src), judge["root"])
    data = TrainData([], [ShardSet(out)], LS, PairTransform(None, (H, W), aug="none"))
    label = data[(0, 0)]["label"].numpy()
    np.testing.assert_array_equal(label == 255, _expected(0, 1.25) == UNLABELED)


def test_filter_with_the_real_network_counts_what_it_changed(judge: dict[str, Path], tmp_path: Path) -> None:
    src = make_render(tmp_path / "render", n=2)
    out = tmp_path / "f"
    res = runner.invoke(
        app, ["filter", str(src), "--segmenter", str(judge["seg"]), "--out", str(out), "--device", "cpu", "-q",
              "--cache-dir", str(tmp_path / "cache")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "filtered pixels" in res.output and "car" in res.output
    ss, fs = ShardSet(src), ShardSet(out)
    changed = sum(int((ss[i]["label"] != fs[i]["label"]).sum()) for i in range(2))
    doc = json.loads((out / "filter.json").read_text())
    assert doc["total"]["dropped"] == changed
    assert all(fs[i]["label"][ss[i]["label"] != fs[i]["label"]].max(initial=0) == UNLABELED for i in range(2))


@pytest.mark.parametrize("case", ["labels-only", "no-run", "bad-factor", "inside-input", "finished", "judge-with-supp"])
def test_cli_bad_input_is_one_line_and_writes_nothing(
    judge: dict[str, Path], tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_render(tmp_path / "render", n=2)
    out = tmp_path / "out"
    seg = judge["seg"]
    extra: list[str] = []
    want = ""
    if case == "labels-only":
        from _gan_data import make_label_shards

        src, want = make_label_shards(tmp_path / "labels", n=2), "label maps only"
    elif case == "no-run":
        seg, want = tmp_path / "nothing", "segmenter run dir not found"
    elif case == "bad-factor":
        extra, want = ["--factor", "0"], "factor must be a positive number"
    elif case == "inside-input":
        out, want = src / "sub", "input must stay untouched"
    elif case == "finished":
        out.mkdir()
        (out / "_SUCCESS").write_text("{}")
        want = "--overwrite"
    else:
        import labelforge.quality.segmenter as segmod

        real = segmod.load_segmenter
        monkeypatch.setattr(segmod, "load_segmenter", lambda *a, **k: _with_supp(real(*a, **k)))
        want = "trained on real photos only"
    before = _hashes(src)
    args = ["filter", str(src), "--segmenter", str(seg), "--out", str(out), "--device", "cpu", "-q", *extra]
    res = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and want in lines[0], res.output
    assert _hashes(src) == before
    if case != "finished":
        assert not out.exists()


def _with_supp(seg: Segmenter) -> Segmenter:
    from dataclasses import replace

    return replace(seg, supp=("/data/render",))
