"""Rendering with an OASIS checkpoint (K photos per map: keys, provenance, determinism, resume) and
composite renders (every pixel away from the pasted objects is the base map's real photo).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from _compose_data import make_overlay_dataset
from _gan_data import (
    make_checkpoint,
    make_label_shards,
    make_oasis_checkpoint,
    one_torch_thread,  # noqa: F401 - an autouse fixture
)
from typer.testing import CliRunner

from labelforge.cli.app import app
from labelforge.compose import ComposeConfig, run_compose
from labelforge.dataset import open_dataset
from labelforge.errors import InputError, LabelforgeError
from labelforge.gan.config import RenderConfig
from labelforge.gan.oasis.trainer import OasisRenderer
from labelforge.gan.render import render_shards
from labelforge.shards import ShardSet

CFG = RenderConfig(batch_size=3, device="cpu", preview=2, workers=0)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("oasis-render")
    return make_label_shards(base / "shards", n=5, spp=2), make_oasis_checkpoint(base / "oasis").parent


def _samples(path: Path) -> list[dict]:
    ss = ShardSet(path)
    return [ss[i] for i in range(len(ss))]


def test_k_renders_per_map_have_their_own_keys_noise_and_photos(inputs, tmp_path):
    shards, gen = inputs
    res = render_shards(shards, tmp_path / "k3", replace(CFG, renders_per_map=3), generator=gen)
    assert (res.total, res.rendered) == (15, 15)
    out, src = ShardSet(tmp_path / "k3"), ShardSet(shards)
    # Output shard j holds the K renders of input shard j's maps: same files, K times the samples.
    assert [e["file"] for e in out.shards] == [e["file"] for e in src.shards]
    assert out.manifest["samples_per_shard"] == 6 and [e["count"] for e in out.shards] == [6, 6, 3]
    assert out.config["render"]["renderer"] == "oasis" and out.config["render"]["renders_per_map"] == 3
    got = _samples(tmp_path / "k3")
    for i, s in enumerate(src):
        for k in range(3):
            r = got[3 * i + k]
            assert r["key"] == f"{s['key']}-k{k}" and r["index"] == 3 * i + k
            assert r["provenance"] == {**s["provenance"], "noise": {"seed": 0, "k": k}}
            assert np.array_equal(r["label"], s["label"]) and np.array_equal(r["instance"], s["instance"])
        photos = [got[3 * i + k]["image"] for k in range(3)]
        assert not np.array_equal(photos[0], photos[1]) and not np.array_equal(photos[1], photos[2])

    # One render per map keeps the keys; its photos are the k = 0 renders (same batches: a conv over
    # another batch size may round a pixel the other way).
    render_shards(shards, tmp_path / "k1", CFG, generator=gen)
    one = _samples(tmp_path / "k1")
    assert [s["key"] for s in one] == [s["key"] for s in src]
    assert all(np.array_equal(a["image"], got[3 * i]["image"]) for i, a in enumerate(one))
    assert one[0]["provenance"]["noise"] == {"seed": 0, "k": 0}  # the photo depends on it
    # Another seed, other photos.
    render_shards(shards, tmp_path / "s1", replace(CFG, seed=1), generator=gen)
    assert not np.array_equal(_samples(tmp_path / "s1")[0]["image"], one[0]["image"])


def test_k_renders_resume_after_a_kill_with_the_same_output(inputs, tmp_path, monkeypatch):
    shards, gen = inputs
    cfg = replace(CFG, renders_per_map=2, batch_size=2)
    render_shards(shards, tmp_path / "straight", cfg, generator=gen)
    calls = {"n": 0}
    real = OasisRenderer.render

    def dying(self, *args, **kw):
        calls["n"] += 1
        if calls["n"] == 4:  # batch 2's second render: shard 0 (batch 1, both renders) is finished
            raise RuntimeError("killed")
        return real(self, *args, **kw)

    monkeypatch.setattr(OasisRenderer, "render", dying)
    with pytest.raises(RuntimeError, match="killed"):
        render_shards(shards, tmp_path / "out", cfg, generator=gen)
    assert sorted(p.name for p in (tmp_path / "out").glob("shard-*")) == ["shard-00000.h5"]
    monkeypatch.setattr(OasisRenderer, "render", real)
    res = render_shards(shards, tmp_path / "out", cfg, generator=gen, resume=True)
    assert res.rendered == 6  # maps 2, 3 and 4, twice each
    a, b = _samples(tmp_path / "straight"), _samples(tmp_path / "out")
    assert [s["key"] for s in a] == [s["key"] for s in b]
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b, strict=True))


def test_pix2pixhd_refuses_k_renders_and_the_oracle_paints_k_different_ones(inputs, tmp_path):
    shards, _ = inputs
    p2p = make_checkpoint(tmp_path / "p2p")
    with pytest.raises(InputError, match="a pix2pixhd generator draws no noise") as err:
        render_shards(shards, tmp_path / "out", replace(CFG, renders_per_map=2), generator=p2p.parent)
    assert str(err.value).startswith(str(p2p)) and not (tmp_path / "out").exists()

    oracle = replace(CFG, oracle=True)
    render_shards(shards, tmp_path / "o1", oracle)
    render_shards(shards, tmp_path / "o2", replace(oracle, renders_per_map=2))
    one, two = _samples(tmp_path / "o1"), _samples(tmp_path / "o2")
    assert "noise" not in one[0]["provenance"] and two[1]["provenance"]["noise"] == {"seed": 0, "k": 1}
    for i, s in enumerate(one):  # k = 0 is the painting of one render per map, k = 1 another one
        assert np.array_equal(two[2 * i]["image"], s["image"]) and not np.array_equal(
            two[2 * i + 1]["image"], s["image"]
        )


# -- composite -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def composed(tmp_path_factory) -> dict[str, Path]:
    """A 20x40 dataset with photos, its overlay (wall), multi (wall + person) and identity maps."""
    base = tmp_path_factory.mktemp("composite")
    root = make_overlay_dataset(base / "ds", photos=True)
    out = {"root": root}
    for method, classes in (("overlay", ("wall",)), ("multi", ("wall", "person")), ("identity", ())):
        out[method] = base / method
        cfg = ComposeConfig(root=root, out=out[method], method=method, classes=classes, count=4, samples_per_shard=2,
                            min_area=10, cache_dir=base / "cache")  # fmt: skip
        run_compose(cfg)
    out["gen"] = make_checkpoint(base / "gen", size=(20, 40)).parent  # the dataset's own size: photos unresized
    return out


@pytest.mark.parametrize("method", ["overlay", "multi"])
def test_composite_keeps_every_pixel_away_from_the_pasted_objects(composed, tmp_path, method):
    cfg = replace(CFG, composite=True, composite_dilate=1, composite_feather=2)
    render_shards(composed[method], tmp_path / "comp", cfg, generator=composed["gen"])
    render_shards(composed[method], tmp_path / "plain", CFG, generator=composed["gen"])
    ds = open_dataset(composed["root"])
    bases = {s.key: s for s in ds.samples("train")}
    out = ShardSet(tmp_path / "comp")
    assert out.config["render"]["composite"] == {"root": str(composed["root"]), "dilate": 1, "feather": 2}
    reach = 1 + 2  # render weight > 0 within dilate + feather px (Euclidean) of a pasted pixel
    square = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)  # covers that disc
    for c, p in zip(out, _samples(tmp_path / "plain"), strict=True):
        base = bases[c["provenance"]["base"]]
        photo = ds.read_image(base)
        pasted = (c["label"] != ds.read_label(base)) | (c["instance"] != ds.read_instance(base))
        assert pasted.any()
        near = cv2.dilate(pasted.astype(np.uint8), square).astype(bool)
        assert np.array_equal(c["image"][~near], photo[~near])  # the real photo, bit for bit
        assert np.array_equal(c["image"][pasted], p["image"][pasted])  # the render, bit for bit
        band = near & ~pasted
        assert (c["image"][band] != photo[band]).any()  # the feathered band blends the two


def test_composite_refuses_maps_without_a_real_base(composed, inputs, tmp_path):
    cfg = replace(CFG, composite=True)
    with pytest.raises(LabelforgeError, match="needs overlay or multi maps;.* holds 'identity' maps"):
        render_shards(composed["identity"], tmp_path / "a", cfg, generator=composed["gen"])
    with pytest.raises(InputError, match="the shards record no dataset root and split"):
        render_shards(inputs[0], tmp_path / "b", cfg, generator=inputs[1])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_render_cli_k_and_composite_errors_are_one_line(composed, inputs, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["render", str(composed["identity"]), "--generator", str(composed["gen"]), "--out",
                              str(tmp_path / "o"), "--composite", "--device", "cpu"])  # fmt: skip
    assert res.exit_code == 2 and res.output.strip().splitlines()[-1].startswith("error: --composite keeps")
    res = runner.invoke(app, ["render", str(inputs[0]), "--generator", str(composed["gen"]), "--out",
                              str(tmp_path / "o"), "-k", "2", "--device", "cpu"])  # fmt: skip
    assert res.exit_code == 2 and "draws no noise" in res.output.strip().splitlines()[-1]
    res = runner.invoke(app, ["render", str(inputs[0]), "--generator", str(inputs[1]), "--out", str(tmp_path / "o"),
                              "-k", "2", "--device", "cpu", "--preview", "2"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "rendered 10 of 10 samples" in res.output and json.loads((tmp_path / "o" / "manifest.json").read_text())
