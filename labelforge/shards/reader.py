"""ShardSet: read a shard dir (manifest + HDF5 shards) with lazily opened, fork-safe handles.

Example:
    >>> from labelforge.shards import ShardSet  # doctest: +SKIP
    >>> ss = ShardSet("out/compose-wall")  # doctest: +SKIP
    >>> s = ss[0]; s["key"], s["label"].shape  # doctest: +SKIP
    ('lfoverlay_000000_000000', (256, 512))
"""

from __future__ import annotations

import bisect
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..labelspace import LabelSpace
from .manifest import file_sha256, read_manifest

__all__ = ["ShardSet"]


class ShardSet:
    """The samples of one shard dir, in index order. ``require_complete`` refuses unfinished dirs.

    ``verify`` (the default) checks every listed shard's size and sha256 against the manifest before
    anything trusts it (its counts or its samples): a damaged or changed shard is an InputError naming
    it, not a wrong count or a decode error mid-run. Hashing runs at ~1 GB/s; callers that reopen a
    dir they have just written, or read only the manifest's header, pass ``verify=False``.
    """

    def __init__(self, path: str | Path, *, require_complete: bool = True, verify: bool = True) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        man = self.manifest
        if require_complete and not man.get("complete", False):
            raise InputError(self.path, f"unfinished shard dir ({man.get('count', 0)} of {man['total']} samples)")
        self.label_space = LabelSpace.from_dict(man["labelspace"])
        self.method: str = man["method"]
        self.config: dict[str, Any] = man["config"]
        self.seed: int = man["seed"]
        self.height: int = man["height"]
        self.width: int = man["width"]
        self.has_image: bool = man["has_image"]
        self.shards: list[dict[str, Any]] = man["shards"]
        for e in self.shards:
            if not (self.path / e["file"]).is_file():
                raise InputError(self.path / e["file"], "shard listed in manifest.json is missing")
        self._starts = np.cumsum([0] + [e["count"] for e in self.shards]).tolist()
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()
        if verify:
            self.verify()

    def __len__(self) -> int:
        return self._starts[-1]

    def __repr__(self) -> str:
        return f"ShardSet({str(self.path)!r}, samples={len(self)}, method={self.method!r}, image={self.has_image})"

    # -- class counts from the manifest (no sample is decoded) --------------------------------------
    def _sum(self, field: str) -> np.ndarray:
        out = np.zeros(self.label_space.num_ids, np.int64)
        for e in self.shards:
            out += np.asarray(e[field], np.int64)
        return out

    def pixel_counts(self) -> np.ndarray:
        return self._sum("pixel_counts")

    def image_counts(self) -> np.ndarray:
        return self._sum("image_counts")

    def instance_counts(self) -> np.ndarray:
        return self._sum("instance_counts")

    # -- sample access -----------------------------------------------------------------------------
    def _file(self, j: int) -> Any:
        import h5py

        if self._pid != os.getpid():  # forked: never share an HDF5 handle with the parent
            self._handles, self._pid = {}, os.getpid()
        f = self._handles.get(j)
        if f is None:
            path = self.path / self.shards[j]["file"]
            try:
                f = self._handles[j] = h5py.File(path, "r")
            except OSError as exc:
                raise InputError(path, f"unreadable shard ({exc})") from None
        return f

    def locate(self, i: int) -> tuple[int, int]:
        """(shard position, row in shard) of the i-th sample."""
        if not 0 <= i < len(self):
            raise IndexError(f"sample {i} out of range for {len(self)} samples")
        j = bisect.bisect_right(self._starts, i) - 1
        return j, i - self._starts[j]

    ROW_FIELDS = ("key", "label", "instance", "image", "provenance", "index")

    def read_rows(self, j: int, start: int, stop: int, fields: tuple[str, ...] = ROW_FIELDS) -> dict[str, Any]:
        """Rows ``start:stop`` of shard ``j`` as whole arrays: one read per dataset, the cheapest way to
        fetch a batch, and the one way samples are read (``ss[i]`` and iteration go through it).
        ``provenance`` stays the stored JSON strings; ``image`` is None without photos. ``fields``
        picks the datasets to read (the string ones cost as much as the label maps)."""
        f = self._file(j)
        out: dict[str, Any] = {}
        for name in fields:
            if name in ("key", "provenance"):
                out[name] = f[name].asstr()[start:stop].tolist()
            elif name == "image" and "image" not in f:
                out[name] = None
            elif name == "index":
                out[name] = f[name][start:stop].astype(np.int64)
            else:
                out[name] = f[name][start:stop]  # label (B, H, W) uint8, instance int32, image (B, H, W, 3)
        return out

    @staticmethod
    def _sample(rows: dict[str, Any], k: int) -> dict[str, Any]:
        """Row ``k`` of :meth:`read_rows`'s result as one sample, its provenance parsed."""
        return {
            "key": rows["key"][k],
            "label": rows["label"][k],
            "instance": rows["instance"][k],
            "image": None if rows["image"] is None else rows["image"][k],
            "provenance": json.loads(rows["provenance"][k]),
            "index": int(rows["index"][k]),
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        j, r = self.locate(i)
        return self._sample(self.read_rows(j, r, r + 1), 0)

    def iter_shard(self, j: int) -> Iterator[dict[str, Any]]:
        """The samples of shard ``j`` in order, one sample's arrays at a time (strings read once)."""
        count = int(self.shards[j]["count"])
        meta = self.read_rows(j, 0, count, ("key", "provenance", "index"))
        for r in range(count):
            row = {name: values[r : r + 1] for name, values in meta.items()}
            yield self._sample({**row, **self.read_rows(j, r, r + 1, ("label", "instance", "image"))}, 0)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for j in range(len(self.shards)):
            yield from self.iter_shard(j)

    def images_deflated(self) -> bool:
        """Whether the photos are stored gzip-filtered (compose --copy-paste, render --compress-images)."""
        return bool(self.shards) and "image" in self._file(0) and self._file(0)["image"].compression == "gzip"

    def keys(self) -> list[str]:
        out: list[str] = []
        for j in range(len(self.shards)):
            out.extend(self._file(j)["key"].asstr()[()].tolist())
        return out

    def verify(self) -> None:
        """Check every shard's size and sha256 against the manifest; InputError names the first bad one."""
        for e in self.shards:
            path = self.path / e["file"]
            size = path.stat().st_size
            if size != e["bytes"]:
                raise InputError(path, f"size mismatch: {size} bytes, the manifest says {e['bytes']} (truncated?)")
            if file_sha256(path) != e["sha256"]:
                raise InputError(path, "checksum mismatch: the shard is corrupt or was changed after writing")

    def close(self) -> None:
        for f in self._handles.values():
            f.close()
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}  # h5py handles do not travel to other processes
        return state
