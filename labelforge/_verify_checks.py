"""The checks behind ``labelforge verify`` (see :mod:`labelforge.verify`): each appends the problems
it finds to a :class:`~labelforge.verify.VerifyResult` and goes on, so one run lists them all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .outputs import SUCCESS
from .verify import Problem, VerifyResult

__all__ = ["check_shard_dir", "check_run", "check_evaluate"]


def _add(res: VerifyResult, path: Path, problem: str) -> None:
    res.problems.append(Problem(path, problem))


# -- shard dirs ------------------------------------------------------------------------------------
def check_shard_dir(path: Path, res: VerifyResult) -> None:
    from .labelspace import LabelSpace
    from .shards.manifest import read_manifest

    try:
        man = read_manifest(path)
        ls = LabelSpace.from_dict(man["labelspace"])
    except InputError as exc:
        _add(res, exc.path, exc.problem)
        return
    except Exception as exc:  # a label space table the manifest garbled
        _add(res, path / "manifest.json", f"unreadable label space ({exc})")
        return
    rendered = "render" in (man.get("config") or {})
    res.kind = ("rendered " if rendered else "") + "shard dir"
    if rendered and not man["has_image"]:
        _add(res, path / "manifest.json", "a rendered shard dir without images (has_image is false)")
    good = _check_files(path, man, res)
    for entry in good:
        _check_shard(path / entry["file"], entry, man, ls, res)
    total, count = int(man["total"]), int(man.get("count", sum(int(e["count"]) for e in man["shards"])))
    if count != total or not man.get("complete", False):
        _add(res, path / "manifest.json", f"unfinished: {count} of {total} samples written (rerun with --resume)")
    elif not (path / SUCCESS).exists():
        _add(res, path / SUCCESS, "missing: the run that wrote this dir did not finish")
    h, w = man["height"], man["width"]
    res.summary = f"{count} samples in {len(man['shards'])} shards, {h}x{w}, label space {ls.name}" + (
        ", with images" if man["has_image"] else ""
    )


def _check_files(path: Path, man: dict[str, Any], res: VerifyResult) -> list[dict[str, Any]]:
    """Presence, size and sha256 of every listed shard; returns the entries whose bytes are intact."""
    from .shards.manifest import file_sha256, finished_shards, unfinished_shards

    good, listed = [], set()
    for e in man["shards"]:
        f = path / e["file"]
        listed.add(e["file"])
        if not f.is_file():
            _add(res, f, "missing: listed in manifest.json")
        elif f.stat().st_size != e["bytes"]:
            _add(res, f, f"size mismatch: {f.stat().st_size} bytes, the manifest says {e['bytes']} (truncated?)")
        elif file_sha256(f) != e["sha256"]:
            _add(res, f, "checksum mismatch: the shard is corrupt or was changed after writing")
        else:
            good.append(e)
    for f in finished_shards(path).values():
        if f.name not in listed:
            _add(res, f, "shard file not listed in manifest.json")
    for f in unfinished_shards(path).values():
        _add(res, f, "unfinished shard left by an interrupted run (rerun with --resume)")
    return good


def _check_shard(f: Path, entry: dict[str, Any], man: dict[str, Any], ls: Any, res: VerifyResult) -> None:
    import h5py

    from .shards.manifest import SHARD_SCHEMA

    try:
        with h5py.File(f, "r") as h5:
            schema = h5.attrs.get("schema")
            if schema != SHARD_SCHEMA:
                _add(res, f, f"unknown shard schema {schema!r} (expected {SHARD_SCHEMA!r})")
                return
            _check_arrays(f, h5, entry, man, res)
            if not any(p.path == f for p in res.problems):
                _check_labels(f, h5["label"], ls, res)
    except (OSError, KeyError) as exc:
        _add(res, f, f"unreadable shard ({exc})")


def _check_arrays(f: Path, h5: Any, entry: dict[str, Any], man: dict[str, Any], res: VerifyResult) -> None:
    """Every dataset has one entry (and one stored chunk) per sample, of the manifest's size and dtype."""
    n, first = int(entry["count"]), int(entry["first_index"])
    if (h5.attrs.get("count"), h5.attrs.get("first_index")) != (n, first):
        _add(res, f, f"holds samples from {h5.attrs.get('first_index')} ({h5.attrs.get('count')}), the manifest"
                     f" says from {first} ({n})")  # fmt: skip
    hw = (int(man["height"]), int(man["width"]))
    want = {"label": ((n, *hw), np.uint8), "instance": ((n, *hw), None)}
    if man["has_image"]:
        want["image"] = ((n, *hw, 3), np.uint8)
    for name, (shape, dtype) in want.items():
        if name not in h5:
            _add(res, f, f"no {name!r} dataset" + (" (images missing after render)" if name == "image" else ""))
            continue
        d = h5[name]
        if d.shape != shape or (dtype is not None and d.dtype != dtype):
            _add(res, f, f"{name} is {d.dtype} {d.shape}, expected {np.dtype(dtype or d.dtype)} {shape}")
        elif d.chunks is not None and d.id.get_num_chunks() != n:
            _add(res, f, f"{name}: {d.id.get_num_chunks()} of {n} samples stored (the rest would read as zeros)")
    for name in ("key", "index", "provenance"):
        if name not in h5 or len(h5[name]) != n:
            _add(res, f, f"{name!r} does not hold {n} entries")
    index_ok = "index" in h5 and np.array_equal(h5["index"][()], np.arange(first, first + n))
    if "index" in h5 and len(h5["index"]) == n and not index_ok:
        _add(res, f, f"sample indexes are not {first}..{first + n - 1}")


def _check_labels(f: Path, label: Any, ls: Any, res: VerifyResult) -> None:
    """Every label id lies in the label space (one sample decoded at a time: memory stays one map)."""
    valid = np.zeros(256, bool)
    valid[[c.id for c in ls.classes]] = True
    for i in range(label.shape[0]):
        bad = np.flatnonzero(np.bincount(label[i].ravel(), minlength=256).astype(bool) & ~valid)
        if bad.size:
            _add(res, f, f"sample {i}: label ids {bad.tolist()} outside label space {ls.name!r}")
            return


# -- run dirs --------------------------------------------------------------------------------------
def _read_json(path: Path, res: VerifyResult, what: str) -> Any:
    if not path.is_file():
        _add(res, path, f"missing: a {what} holds one")
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        _add(res, path, f"unreadable JSON ({exc})")
        return None


def check_run(path: Path, res: VerifyResult, command: str) -> None:
    run = _read_json(path / "run.json", res, res.kind)
    ck = _check_checkpoint(path, command, res)
    if (
        isinstance(run, dict)
        and ck is not None
        and ck.get("label_space_fingerprint") != run.get("label_space_fingerprint")
    ):
        _add(res, path / "run.json", "label space fingerprint differs from the checkpoint's")
    _check_log(path / "log.jsonl", res)
    miou = None
    if command == "train-eval":
        miou = _check_metrics(path / "metrics.json", res, res.kind)
    if not (path / SUCCESS).exists():
        _add(res, path / SUCCESS, "missing: the run did not finish (rerun with --resume)")
    epoch = ck.get("epoch") if ck else "?"
    res.summary = f"checkpoint after epoch {epoch}" + (f", mIoU {miou:.4f}" if isinstance(miou, float) else "")


def _check_checkpoint(path: Path, command: str, res: VerifyResult) -> dict[str, Any] | None:
    from ._rundir import read_checkpoint

    if command == "train-generator":
        from .gan.checkpoint import CHECKPOINT_NAME, load_checkpoint

        ck_path, load = path / CHECKPOINT_NAME, load_checkpoint
    else:
        from .seg.train import CHECKPOINT, CHECKPOINT_FORMAT

        ck_path = path / CHECKPOINT

        def load(p: Path) -> dict[str, Any]:
            return read_checkpoint(p, CHECKPOINT_FORMAT)

    try:
        return load(ck_path)
    except InputError as exc:
        _add(res, exc.path, exc.problem)
        return None


def _check_log(path: Path, res: VerifyResult) -> None:
    if not path.is_file():
        _add(res, path, "missing: a run dir holds its log")
        return
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        try:
            if line.strip():
                json.loads(line)
        except ValueError:
            _add(res, path, f"line {n} is not JSON")
            return


def _check_metrics(path: Path, res: VerifyResult, what: str) -> float | None:
    from .seg.metrics import read_metrics

    if not path.is_file():
        _add(res, path, f"missing: a finished {what} holds one")
        return None
    try:
        m = read_metrics(path)
    except InputError as exc:
        _add(res, exc.path, exc.problem)
        return None
    return m.get("miou")


def check_evaluate(path: Path, res: VerifyResult) -> None:
    miou = _check_metrics(path / "metrics.json", res, res.kind)
    if not (path / SUCCESS).exists():
        _add(res, path / SUCCESS, "missing: the evaluation did not finish")
    res.summary = f"mIoU {miou:.4f}" if isinstance(miou, float) else ""
