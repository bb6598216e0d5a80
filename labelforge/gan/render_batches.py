"""What render's loader reads: batches of label maps that never straddle a shard, at the output size.

Also the naming rules of a render's outputs that do not need the generator: which shards a torchrun
rank renders (:func:`rank_slice`), the batches within shards (:func:`shard_batches`), the oracle
painter's seed of a map's k-th photo and the key of a map's k-th render (:func:`render_key`).

Example:
    >>> shard_batches([0, 1, 2, 3, 4, 5], samples_per_shard=4, batch_size=3)
    [[0, 1, 2], [3], [4, 5]]
    >>> render_key("lfmulti_000000_000007", k=1, renders=2)
    'lfmulti_000000_000007-k1'
"""

from __future__ import annotations

import bisect
import json
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..shards import ShardSet
from .composite import CompositeSource
from .data import resize_label

__all__ = ["RenderBatches", "rank_slice", "shard_batches", "oracle_seed", "render_key"]


def rank_slice(n: int, rank: int, world: int) -> range:
    """Contiguous share of ``n`` shards for ``rank``: ``[rank*n//world, (rank+1)*n//world)``."""
    return range(rank * n // world, (rank + 1) * n // world)


def shard_batches(indices: list[int], samples_per_shard: int, batch_size: int) -> list[list[int]]:
    """Split sorted global ``indices`` into batches of at most ``batch_size`` that stay within one shard."""
    out: list[list[int]] = []
    for i in indices:
        if out and len(out[-1]) < batch_size and out[-1][-1] // samples_per_shard == i // samples_per_shard:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def oracle_seed(seed: int, index: int, k: int = 0) -> int:
    """The painter's seed of map ``index``'s ``k``-th photo (k = 0: from ``(seed, index)``, as before K existed)."""
    entropy = [seed, index] if k == 0 else [seed, index, k]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def render_key(key: str, k: int, renders: int) -> str:
    """The output key of map ``key``'s ``k``-th render: the key itself when there is one render per map."""
    return key if renders == 1 else f"{key}-k{k}"


class RenderBatches(torch.utils.data.Dataset):
    """Item ``k``: the samples of ``batches[k]`` (consecutive rows of one shard) at the output size.

    A batch is read as one slice per HDF5 dataset, about 7x less CPU per sample than reading samples
    one by one through :class:`~labelforge.shards.torchdata.ShardDataset`, which matters where workers
    share cores with the generator. Files are opened lazily in each worker process, never before a
    fork. With ``oracle`` the worker also paints each map's ``renders`` photos, seeded by
    ``(seed, index, k)``; with ``composite`` it reads each map's base photo and the render's weight
    around the pasted regions (:mod:`labelforge.gan.composite`).
    """

    def __init__(
        self,
        shards: ShardSet,
        batches: list[list[int]],
        size: tuple[int, int],
        oracle: bool = False,
        seed: int = 0,
        renders: int = 1,
        composite: CompositeSource | None = None,
    ) -> None:
        self.shards = shards  # pickles without its HDF5 handles; each worker opens its own
        self.starts = [int(e["first_index"]) for e in shards.shards]
        self.batches, self.size, self.oracle, self.seed = batches, size, oracle, seed
        self.renders, self.composite = renders, composite
        self._meta: tuple[int, dict[str, Any]] | None = None  # (shard, its keys/provenance/index)

    def __len__(self) -> int:
        return len(self.batches)

    def _shard_meta(self, j: int) -> dict[str, Any]:
        """Keys, provenance and index of all of shard ``j``'s rows: string datasets are read once per
        shard rather than once per batch (they cost as much to read as the label maps)."""
        if self._meta is None or self._meta[0] != j:
            count = int(self.shards.shards[j]["count"])
            self._meta = (j, self.shards.read_rows(j, 0, count, ("key", "provenance", "index")))
        return self._meta[1]

    def __getitem__(self, n: int) -> dict[str, Any]:
        idx = self.batches[n]
        j = bisect.bisect_right(self.starts, idx[0]) - 1
        r0, r1 = idx[0] - self.starts[j], idx[-1] - self.starts[j] + 1
        meta = self._shard_meta(j)
        rows = self.shards.read_rows(j, r0, r1, ("label", "instance"))
        labels, instances = rows["label"], rows["instance"].astype(np.int32, copy=False)
        bases = self._bases(meta["provenance"][r0:r1], labels, instances) if self.composite else None
        if labels.shape[1:] != self.size:  # nearest resize to the generator's resolution
            labels = np.stack([resize_label(a, self.size) for a in labels])
            instances = np.stack([resize_label(a, self.size) for a in instances])
        index = meta["index"][r0:r1]
        if index.tolist() != idx:
            path = self.shards.path / self.shards.shards[j]["file"]
            raise InputError(path, f"rows {r0}..{r1 - 1} do not hold samples {idx[0]}..{idx[-1]}")
        batch: dict[str, Any] = {
            "label": torch.from_numpy(labels),  # (B, H, W) uint8
            "instance": torch.from_numpy(instances),  # (B, H, W) int32
            "index": torch.from_numpy(index),
            "key": meta["key"][r0:r1],
            "provenance": meta["provenance"][r0:r1],  # stored JSON, passed on verbatim
        }
        if self.oracle:
            from cityscapes_tools.synth.painter import paint

            photos = [
                [paint(a, b, oracle_seed(self.seed, int(i), k)) for k in range(self.renders)]
                for a, b, i in zip(labels, instances, index, strict=True)
            ]
            batch["image"] = torch.from_numpy(np.stack(photos))  # (B, K, H, W, 3) uint8
        if bases is not None:
            batch["base_image"] = torch.from_numpy(np.stack([b[0] for b in bases]))  # (B, H, W, 3) uint8
            batch["alpha"] = torch.from_numpy(np.stack([b[1] for b in bases]))  # (B, H, W) float32
        return batch

    def _bases(
        self, provenance: list[str], labels: np.ndarray, instances: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(base photo, render weight) per sample, from the base map each provenance names."""
        assert self.composite is not None
        return [
            self.composite.base(json.loads(p)["base"], a, b, self.size)
            for p, a, b in zip(provenance, labels, instances, strict=True)
        ]
