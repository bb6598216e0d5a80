"""ShardWriter: write samples into HDF5 shards atomically, resumably and reproducibly.

Sample ``i`` goes to shard ``i // samples_per_shard``. A shard is filled in a temporary file in the
same folder, closed, fsynced and renamed; then the manifest is rewritten. A killed run leaves only
finished shards and a manifest naming exactly them, and ``resume=True`` continues from there.

Example:
    >>> import numpy as np
    >>> from labelforge.labelspace import get_label_space
    >>> from labelforge.shards import ShardWriter, ShardSet
    >>> import tempfile; d = tempfile.mkdtemp()
    >>> lab = np.full((4, 6), 7, np.uint8); inst = lab.astype(np.int32)
    >>> with ShardWriter(d, label_space=get_label_space(), method="demo", config={}, seed=0,
    ...                  total=3, height=4, width=6, samples_per_shard=2) as w:
    ...     for i in range(w.start_index, 3):
    ...         w.write(i, key=f"demo_000000_{i:06d}", label=lab, instance=inst, provenance={"base": "x"})
    >>> len(ShardSet(d)), len(ShardSet(d).shards)
    (3, 2)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import InputError
from ..labelspace import LabelSpace
from ..outputs import mark_finished, prepare_output
from .encode import EncodedSample, encode_sample
from .manifest import (
    MANIFEST,
    SHARD_SCHEMA,
    entry_from_file,
    file_sha256,
    finished_shards,
    read_manifest,
    shard_name,
    temp_name,
    unfinished_shards,
    write_manifest,
)

__all__ = ["ShardWriter"]

_COMPRESSION = {"compression": "gzip", "compression_opts": 1}


class _OpenShard:
    """A shard being filled: a temporary HDF5 file with datasets sized for the shard's samples."""

    def __init__(self, out_dir: Path, shard_id: int, first: int, count: int, w: ShardWriter) -> None:
        import h5py

        self.final = out_dir / shard_name(shard_id)
        self.tmp = out_dir / temp_name(shard_id)
        self.shard_id, self.first, self.count = shard_id, first, count
        self.filled = 0
        self.keys: list[str] = []
        self.prov: list[str] = []
        n_ids = w.label_space.num_ids
        self.pixel_counts = np.zeros(n_ids, np.int64)
        self.image_counts = np.zeros(n_ids, np.int64)
        self.instance_counts = np.zeros(n_ids, np.int64)
        self.f = h5py.File(self.tmp, "w")
        h, wd = w.height, w.width
        # One sample per chunk: random access reads exactly one compressed chunk per array.
        opts = {"track_times": False, **_COMPRESSION}
        self.label = self.f.create_dataset("label", (count, h, wd), np.uint8, chunks=(1, h, wd), **opts)
        self.instance = self.f.create_dataset("instance", (count, h, wd), np.int32, chunks=(1, h, wd), **opts)
        # Raw image chunks (deflate_images=False) get a dataset without the gzip filter.
        img_opts = opts if w.deflate_images else {"track_times": False}
        self.image = (
            self.f.create_dataset("image", (count, h, wd, 3), np.uint8, chunks=(1, h, wd, 3), **img_opts)
            if w.with_image
            else None
        )

    def add(self, enc: EncodedSample, key: str, prov: str) -> None:
        j = self.filled
        # The chunks were deflated by whoever made the sample; store them as they are (filter mask 0 =
        # "gzip applied"), so readers decode them with the standard filter.
        self.label.id.write_direct_chunk((j, 0, 0), enc.label, 0)
        self.instance.id.write_direct_chunk((j, 0, 0), enc.instance, 0)
        if self.image is not None:
            self.image.id.write_direct_chunk((j, 0, 0, 0), enc.image, 0)
        self.keys.append(key)
        self.prov.append(prov)
        self.pixel_counts += enc.pixel_counts
        self.image_counts += enc.pixel_counts > 0
        self.instance_counts += enc.instance_counts
        self.filled += 1

    def finish(self, w: ShardWriter) -> None:
        import h5py

        str_dt = h5py.string_dtype("utf-8")
        f = self.f
        f.create_dataset("key", data=np.array(self.keys, dtype=object), dtype=str_dt, track_times=False)
        f.create_dataset("provenance", data=np.array(self.prov, dtype=object), dtype=str_dt, track_times=False)
        f.create_dataset(
            "index", data=np.arange(self.first, self.first + self.count, dtype=np.int64), track_times=False
        )
        for name, value in w.file_attrs().items():
            f.attrs[name] = value
        f.attrs["first_index"] = self.first
        f.attrs["count"] = self.count
        f.attrs["pixel_counts"] = self.pixel_counts
        f.attrs["image_counts"] = self.image_counts
        f.attrs["instance_counts"] = self.instance_counts
        try:
            f.close()
            with open(self.tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.final)
        except OSError as exc:  # a full disk: name the shard (the caller's abort removes the temporary file)
            raise OSError(exc.errno, exc.strerror or str(exc), str(self.final)) from exc

    def entry(self) -> dict[str, Any]:
        """The finished shard's manifest entry, as entry_from_file would rebuild it, without reopening it."""
        return {
            "file": self.final.name,
            "first_index": self.first,
            "count": self.count,
            "bytes": self.final.stat().st_size,
            "sha256": file_sha256(self.final),
            "pixel_counts": self.pixel_counts.tolist(),
            "image_counts": self.image_counts.tolist(),
            "instance_counts": self.instance_counts.tolist(),
        }

    def abort(self) -> None:
        try:
            self.f.close()
        finally:
            self.tmp.unlink(missing_ok=True)


class ShardWriter:
    """Context manager that writes samples ``0..total-1`` (or those of ``shard_ids``) into ``out_dir``.

    ``shard_ids`` restricts this writer to some shards (one rank of a multi-process render); only the
    writer with ``is_main=True`` prepares the folder and finalizes the manifest. Other writers leave
    their finished shards for the main one to collect with :meth:`collect`. ``header`` adds keys to the
    manifest (facts about the run fixed before it starts, such as compose's reconstruct fall-backs); the
    shard files do not carry them.
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        label_space: LabelSpace,
        method: str,
        config: dict[str, Any],
        seed: int,
        total: int,
        height: int,
        width: int,
        samples_per_shard: int = 64,
        with_image: bool = False,
        deflate_images: bool = True,
        resume: bool = False,
        overwrite: bool = False,
        shard_ids: Iterable[int] | None = None,
        is_main: bool = True,
        header: Mapping[str, Any] | None = None,
    ) -> None:
        if total < 0 or samples_per_shard < 1 or height < 1 or width < 1:
            raise ValueError("total >= 0, samples_per_shard >= 1 and a positive size are required")
        self.out_dir = Path(out_dir)
        self.label_space = label_space
        self.method, self.config, self.seed = method, config, int(seed)
        self.total, self.height, self.width = int(total), int(height), int(width)
        self.samples_per_shard, self.with_image = int(samples_per_shard), bool(with_image)
        self.deflate_images = bool(deflate_images)
        self.is_main = is_main
        self.header = dict(header or {})
        self._meta: dict[str, Any] | None = None
        self.num_shards = -(-self.total // self.samples_per_shard)
        self.shard_ids = sorted(set(range(self.num_shards) if shard_ids is None else shard_ids))
        if is_main:
            prepare_output(self.out_dir, overwrite=overwrite, resume=resume)
        self._entries: dict[int, dict[str, Any]] = {}
        self._open: _OpenShard | None = None
        self._keys: set[str] = set()
        self._load_existing(resume)

    # -- metadata ----------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        """The manifest's header (fixed for the writer's life, so built once: it is rewritten per shard)."""
        if self._meta is None:
            self._meta = self._build_meta()
        return self._meta

    def _build_meta(self) -> dict[str, Any]:
        meta = {
            "labelspace": self.label_space.to_dict(),
            "labelspace_fingerprint": self.label_space.fingerprint,
            "method": self.method,
            "config": self.config,
            "seed": self.seed,
            "labelforge_version": __version__,
            "height": self.height,
            "width": self.width,
            "has_image": self.with_image,
            "samples_per_shard": self.samples_per_shard,
            "total": self.total,
        }
        clash = meta.keys() & self.header.keys()
        if clash:
            raise ValueError(f"header keys {sorted(clash)} are the manifest's own")
        return {**meta, **self.header}

    def file_attrs(self) -> dict[str, Any]:
        return {
            "schema": SHARD_SCHEMA,
            "labelspace": self.label_space.to_json(),
            "method": self.method,
            "config": json.dumps(self.config, sort_keys=True),
            "seed": self.seed,
            "labelforge_version": __version__,
        }

    def _load_existing(self, resume: bool) -> None:
        for sid, tmp in unfinished_shards(self.out_dir).items():
            if sid in self.shard_ids:
                tmp.unlink()  # an unfinished shard of a killed run: it is redone from its first sample
        if not resume or not (self.out_dir / MANIFEST).exists():
            return
        man = read_manifest(self.out_dir)
        mine, theirs = self.meta(), {k: man.get(k) for k in self.meta()}
        for k in (
            "labelspace_fingerprint",
            "method",
            "seed",
            "height",
            "width",
            "has_image",
            "samples_per_shard",
            "total",
        ):
            if mine[k] != theirs[k]:
                raise InputError(self.out_dir, f"cannot resume: {k} was {theirs[k]!r}, now {mine[k]!r}")
        if json.dumps(man["config"], sort_keys=True) != json.dumps(self.config, sort_keys=True):
            raise InputError(self.out_dir, "cannot resume: the run's config differs from the one that started it")
        self._entries = {e["first_index"] // self.samples_per_shard: e for e in man["shards"]}
        # A shard renamed into place just before a kill may be missing from the manifest: take it back.
        self._take_in_finished()

    def _take_in_finished(self) -> None:
        for sid, path in sorted(finished_shards(self.out_dir).items()):
            if sid not in self._entries:
                self._entries[sid] = entry_from_file(path)

    # -- writing -----------------------------------------------------------------------------------
    def encode(self, label: np.ndarray, instance: np.ndarray, image: np.ndarray | None) -> EncodedSample:
        """:func:`~labelforge.shards.encode.encode_sample` as this writer stores it (thread-safe: it
        reads only fixed settings), for producers that encode in parallel and pass ``encoded``."""
        return encode_sample(
            label, instance, image, num_ids=self.label_space.num_ids, deflate_image=self.deflate_images
        )

    def pending(self) -> list[int]:
        """Global indexes this writer still has to write, in order."""
        out: list[int] = []
        for sid in self.shard_ids:
            if sid not in self._entries:
                lo = sid * self.samples_per_shard
                out.extend(range(lo, min(lo + self.samples_per_shard, self.total)))
        return out

    @property
    def start_index(self) -> int:
        """First index to write (``total`` when nothing is left); for single writers, which resume in order."""
        todo = self.pending()
        return todo[0] if todo else self.total

    def write(
        self,
        index: int,
        *,
        key: str,
        provenance: dict[str, Any] | str,
        label: np.ndarray | None = None,
        instance: np.ndarray | None = None,
        image: np.ndarray | None = None,
        encoded: EncodedSample | None = None,
    ) -> None:
        """Add sample ``index`` (samples of a shard must come in index order).

        Pass the arrays, or ``encoded`` = :func:`~labelforge.shards.encode.encode_sample` of them made in a
        worker process (the fast path for parallel producers).
        """
        sid = index // self.samples_per_shard
        if sid not in self.shard_ids or sid in self._entries:
            raise ValueError(f"sample {index} belongs to shard {sid}, which this writer does not (or no longer) write")
        hw = (self.height, self.width)
        if encoded is None:
            if label is None or instance is None:
                raise ValueError(f"{key}: give label and instance, or encoded")
            if label.dtype != np.uint8 or label.shape != hw:
                raise ValueError(f"{key}: label must be uint8 {hw}, got {label.dtype} {label.shape}")
            if instance.shape != hw:
                raise ValueError(f"{key}: instance must be {hw}, got {instance.shape}")
            if image is not None and (image.dtype != np.uint8 or image.shape != (*hw, 3)):
                raise ValueError(f"{key}: image must be uint8 {(*hw, 3)}, got {image.dtype} {image.shape}")
            encoded = self.encode(label, instance, image)
        if encoded.shape != hw:
            raise ValueError(f"{key}: sample is {encoded.shape}, this shard dir holds {hw}")
        if self.with_image != (encoded.image is not None):
            raise ValueError(f"{key}: this shard dir {'needs' if self.with_image else 'takes no'} images")
        if encoded.image is not None and encoded.image_deflated != self.deflate_images:
            raise ValueError(f"{key}: image chunk is {'deflated' if encoded.image_deflated else 'raw'}, this writer"
                             f" stores {'deflated' if self.deflate_images else 'raw'} ones")  # fmt: skip
        if encoded.max_label >= self.label_space.num_ids:
            raise ValueError(f"{key}: label id {encoded.max_label} outside label space {self.label_space.name!r}")
        if key in self._keys:
            raise ValueError(f"duplicate sample key {key!r}")
        op = self._open
        if op is None or op.shard_id != sid:
            if op is not None:
                raise ValueError(f"shard {op.shard_id} is unfinished; samples must come in index order")
            first = sid * self.samples_per_shard
            op = self._open = _OpenShard(
                self.out_dir, sid, first, min(self.samples_per_shard, self.total - first), self
            )
        if index != op.first + op.filled:
            raise ValueError(f"expected sample {op.first + op.filled}, got {index}")
        self._keys.add(key)
        prov = provenance if isinstance(provenance, str) else json.dumps(provenance, sort_keys=True)
        op.add(encoded, key, prov)
        if op.filled == op.count:
            op.finish(self)
            self._open = None
            self._entries[sid] = op.entry()
            if self.is_main:
                write_manifest(self.out_dir, self.meta(), list(self._entries.values()))

    def update_header(self, values: Mapping[str, Any]) -> None:
        """Add manifest header keys known only once the samples are written (the filter's dropped pixel
        counts); the next manifest write, at the latest :meth:`close`, carries them."""
        clash = set(values) & (self.meta().keys() - self.header.keys())
        if clash:
            raise ValueError(f"header keys {sorted(clash)} are the manifest's own")
        self.header.update(values)
        self._meta = None

    def pixel_counts(self) -> np.ndarray:
        """(num_ids,) pixels per label id over the finished shards this writer knows (all, once collected)."""
        out = np.zeros(self.label_space.num_ids, np.int64)
        for e in self._entries.values():
            out += np.asarray(e["pixel_counts"], np.int64)
        return out

    # -- finishing ---------------------------------------------------------------------------------
    def collect(self) -> None:
        """(Main writer) take in shards finished by other writers and rewrite the manifest."""
        self._take_in_finished()
        write_manifest(self.out_dir, self.meta(), list(self._entries.values()))

    def close(self) -> None:
        if self._open is not None:
            raise ValueError(f"shard {self._open.shard_id} closed with samples missing")
        if not self.is_main:
            return
        self.collect()
        missing = self.num_shards - len(self._entries)
        if missing:
            raise ValueError(f"{missing} shard(s) of {self.out_dir} were not written")
        mark_finished(self.out_dir, {"samples": self.total, "shards": self.num_shards})

    def abort(self) -> None:
        """Drop the unfinished shard; finished ones and the manifest stay for --resume."""
        if self._open is not None:
            self._open.abort()
            self._open = None
        if self.is_main and self._entries:
            write_manifest(self.out_dir, self.meta(), list(self._entries.values()))

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
