"""Shard writer/reader: round trip, validation, atomic resume (byte-identical), checksums, multi-writer."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from labelforge.errors import InputError, OutputExistsError
from labelforge.shards import ShardSet, ShardWriter

H, W = 6, 8


def make_sample(i: int) -> dict:
    rng = np.random.default_rng(i)
    label = rng.choice(np.array([7, 11, 23, 26], np.uint8), size=(H, W))
    instance = label.astype(np.int32)
    instance[label == 26] = 26000 + (i % 3)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return {
        "key": f"test_000000_{i:06d}",
        "label": label,
        "instance": instance,
        "image": image,
        "provenance": {"base": f"b{i}", "pasted": []},
    }


def write_all(
    path, label_space, total=7, per=3, with_image=False, fail_after=None, resume=False, overwrite=False, deflate=True
):
    with ShardWriter(
        path,
        label_space=label_space,
        method="test",
        config={"classes": ["car"]},
        seed=1,
        total=total,
        height=H,
        width=W,
        samples_per_shard=per,
        with_image=with_image,
        deflate_images=deflate,
        resume=resume,
        overwrite=overwrite,
    ) as w:
        for i in range(w.start_index, total):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("killed")
            s = make_sample(i)
            w.write(
                i,
                key=s["key"],
                label=s["label"],
                instance=s["instance"],
                provenance=s["provenance"],
                image=s["image"] if with_image else None,
            )


def digest(path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.glob("shard-*.h5"))}


def test_round_trip_and_manifest_counts(tmp_path, label_space):
    write_all(tmp_path / "s", label_space, with_image=True)
    ss = ShardSet(tmp_path / "s")
    assert len(ss) == 7 and [e["count"] for e in ss.shards] == [3, 3, 1]
    assert (tmp_path / "s" / "_SUCCESS").exists()
    for i in range(7):
        s, ref = ss[i], make_sample(i)
        assert s["key"] == ref["key"] and s["index"] == i and s["provenance"] == ref["provenance"]
        np.testing.assert_array_equal(s["label"], ref["label"])
        np.testing.assert_array_equal(s["instance"], ref["instance"])
        np.testing.assert_array_equal(s["image"], ref["image"])
    assert [s["key"] for s in ss] == ss.keys() == [make_sample(i)["key"] for i in range(7)]
    # manifest class counts equal counts from the samples themselves
    labels = np.stack([make_sample(i)["label"] for i in range(7)])
    px = np.bincount(labels.ravel(), minlength=label_space.num_ids)
    assert ss.pixel_counts().tolist() == px.tolist()
    assert ss.image_counts()[26] == sum((make_sample(i)["label"] == 26).any() for i in range(7))
    assert ss.instance_counts()[26] == ss.image_counts()[26]  # one car instance per image holding cars
    assert ss.label_space.fingerprint == label_space.fingerprint and ss.config == {"classes": ["car"]}


@pytest.mark.parametrize("deflate", [True, False])
def test_manifest_entries_match_the_files(tmp_path, label_space, deflate):
    """The writer builds each entry from memory; it must equal what the file itself says (as a resume
    or a collecting rank rebuilds it), and raw image chunks read back as they were written."""
    import h5py

    from labelforge.shards.manifest import entry_from_file

    write_all(tmp_path / "s", label_space, with_image=True, deflate=deflate)
    ss = ShardSet(tmp_path / "s")
    for e in ss.shards:
        assert e == entry_from_file(tmp_path / "s" / e["file"])
    with h5py.File(tmp_path / "s" / ss.shards[0]["file"]) as f:
        assert f["image"].compression == ("gzip" if deflate else None)
        assert f["label"].compression == "gzip"
    np.testing.assert_array_equal(ss[4]["image"], make_sample(4)["image"])
    ss.verify()  # raises on a mismatch


def test_kill_and_resume_is_byte_identical(tmp_path, label_space):
    write_all(tmp_path / "ref", label_space)
    with pytest.raises(RuntimeError):
        write_all(tmp_path / "run", label_space, fail_after=4)  # dies inside shard 1
    man = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [e["file"] for e in man["shards"]] == ["shard-00000.h5"] and not man["complete"]
    assert not list((tmp_path / "run").glob(".*tmp")) and not (tmp_path / "run" / "_SUCCESS").exists()
    with pytest.raises(InputError, match="unfinished"):
        ShardSet(tmp_path / "run")
    with pytest.raises(OutputExistsError, match="--resume"):
        write_all(tmp_path / "run", label_space)
    write_all(tmp_path / "run", label_space, resume=True)
    assert digest(tmp_path / "run") == digest(tmp_path / "ref")


def test_resume_refuses_a_different_config(tmp_path, label_space):
    with pytest.raises(RuntimeError):
        write_all(tmp_path / "run", label_space, fail_after=4)
    with pytest.raises(InputError, match="cannot resume: samples_per_shard"):
        write_all(tmp_path / "run", label_space, per=2, resume=True)


def test_finished_output_is_not_overwritten_unless_asked(tmp_path, label_space):
    write_all(tmp_path / "s", label_space)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_all(tmp_path / "s", label_space)
    write_all(tmp_path / "s", label_space, total=4, overwrite=True)
    assert len(ShardSet(tmp_path / "s")) == 4


def test_verify_catches_a_corrupted_shard(tmp_path, label_space):
    write_all(tmp_path / "s", label_space)
    ShardSet(tmp_path / "s").verify()
    p = tmp_path / "s" / "shard-00001.h5"
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(InputError, match="shard-00001.h5: checksum mismatch"):
        ShardSet(tmp_path / "s").verify()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label": np.zeros((H, W), np.int32)}, "label must be uint8"),
        ({"label": np.full((H, W), 40, np.uint8)}, "outside label space"),
        ({"instance": np.zeros((H + 1, W), np.int32)}, "instance must be"),
        ({"image": np.zeros((H, W, 3), np.uint8)}, "takes no images"),
    ],
)
def test_writer_rejects_bad_samples(tmp_path, label_space, change, message):
    s = make_sample(0)
    args = {"key": s["key"], "label": s["label"], "instance": s["instance"], "provenance": {}, **change}
    w = ShardWriter(
        tmp_path / "s",
        label_space=label_space,
        method="t",
        config={},
        seed=0,
        total=2,
        height=H,
        width=W,
        samples_per_shard=2,
    )
    with pytest.raises(ValueError, match=message):
        w.write(0, **args)


def test_duplicate_keys_and_out_of_order_samples_are_rejected(tmp_path, label_space):
    s = make_sample(0)
    w = ShardWriter(
        tmp_path / "s",
        label_space=label_space,
        method="t",
        config={},
        seed=0,
        total=4,
        height=H,
        width=W,
        samples_per_shard=4,
    )
    w.write(0, key="k", label=s["label"], instance=s["instance"], provenance={})
    with pytest.raises(ValueError, match="duplicate sample key"):
        w.write(1, key="k", label=s["label"], instance=s["instance"], provenance={})
    with pytest.raises(ValueError, match="expected sample 1"):
        w.write(2, key="k2", label=s["label"], instance=s["instance"], provenance={})


def test_several_writers_split_shards_and_main_collects(tmp_path, label_space):
    write_all(tmp_path / "ref", label_space)
    kw = dict(
        label_space=label_space,
        method="test",
        config={"classes": ["car"]},
        seed=1,
        total=7,
        height=H,
        width=W,
        samples_per_shard=3,
    )
    main = ShardWriter(tmp_path / "run", shard_ids=[0], **kw)
    other = ShardWriter(tmp_path / "run", shard_ids=[1, 2], is_main=False, **kw)
    for w in (other, main):  # the other rank finishes first; order must not matter
        for i in w.pending():
            s = make_sample(i)
            w.write(i, key=s["key"], label=s["label"], instance=s["instance"], provenance=s["provenance"])
        w.close()
    assert digest(tmp_path / "run") == digest(tmp_path / "ref")
    assert len(ShardSet(tmp_path / "run")) == 7


def test_not_a_shard_dir(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ShardSet(tmp_path / "nope")
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match="no manifest.json"):
        ShardSet(tmp_path / "x")
    (tmp_path / "x" / "manifest.json").write_text("{")
    with pytest.raises(InputError, match="unreadable manifest"):
        ShardSet(tmp_path / "x")


def test_torch_dataset_batches_across_dirs(tmp_path, label_space):
    from torch.utils.data import DataLoader

    from labelforge.shards.torchdata import ShardDataset

    write_all(tmp_path / "a", label_space, total=5, with_image=True)
    write_all(tmp_path / "b", label_space, total=3, with_image=True)
    ds = ShardDataset([tmp_path / "a", tmp_path / "b"])
    assert len(ds) == 8
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert [b["label"].shape for b in batches] == [(4, H, W), (4, H, W)]
    assert batches[1]["key"][-1] == make_sample(2)["key"]
    assert json.loads(batches[0]["provenance"][0]) == {"base": "b0", "pasted": []}


def test_worker_side_encoding_writes_the_same_bytes(tmp_path, label_space):
    from labelforge.shards import encode_sample

    write_all(tmp_path / "ref", label_space, with_image=True)
    with ShardWriter(
        tmp_path / "enc",
        label_space=label_space,
        method="test",
        config={"classes": ["car"]},
        seed=1,
        total=7,
        height=H,
        width=W,
        samples_per_shard=3,
        with_image=True,
    ) as w:
        for i in w.pending():
            s = make_sample(i)
            enc = encode_sample(s["label"], s["instance"], s["image"], num_ids=label_space.num_ids)
            w.write(i, key=s["key"], encoded=enc, provenance=s["provenance"])
    assert digest(tmp_path / "enc") == digest(tmp_path / "ref")


def test_instance_counts_by_class():
    from labelforge.shards import encode_sample

    lab = np.full((4, 8), 7, np.uint8)
    inst = lab.astype(np.int32)
    inst[0, :3] = [26000, 26001, 26001]  # two cars
    inst[1, :2] = [24005, 33000]  # a person and a bicycle
    inst[2, 0] = 26  # a crowd region of cars: no instance id
    lab[0, :3], lab[1, :2], lab[2, 0] = 26, (24, 33), 26
    enc = encode_sample(lab, inst, None, num_ids=34)
    assert enc.instance_counts[[24, 26, 33]].tolist() == [1, 2, 1] and enc.instance_counts.sum() == 4
    assert enc.pixel_counts[26] == 4 and enc.max_label == 33
    far = inst.copy()
    far[3, 0] = 250_000  # ids far apart take the sorting path; same answer
    assert encode_sample(lab, far, None, num_ids=34).instance_counts[[24, 26, 33]].tolist() == [1, 2, 1]
