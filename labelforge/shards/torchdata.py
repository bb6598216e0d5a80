"""A torch Dataset over shard dirs. HDF5 files open lazily inside each DataLoader worker.

Example:
    >>> from torch.utils.data import DataLoader  # doctest: +SKIP
    >>> from labelforge.shards.torchdata import ShardDataset  # doctest: +SKIP
    >>> dl = DataLoader(ShardDataset(["out/compose-wall"]), batch_size=8, num_workers=2)  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from .reader import ShardSet

__all__ = ["ShardDataset"]


class ShardDataset(Dataset):
    """Concatenation of shard dirs. Items are dicts of numpy arrays; ``provenance`` is a JSON string
    (so the default collate can batch it) and ``image`` is absent when the shards carry none.
    """

    def __init__(self, sources: Sequence[str | Path | ShardSet], *, with_provenance: bool = True) -> None:
        self.sets = [s if isinstance(s, ShardSet) else ShardSet(s) for s in sources]
        self.with_provenance = with_provenance
        self._starts = [0]
        for s in self.sets:
            self._starts.append(self._starts[-1] + len(s))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = bisect.bisect_right(self._starts, i) - 1
        item = self.sets[k][i - self._starts[k]]
        if item["image"] is None:
            del item["image"]
        if self.with_provenance:
            item["provenance"] = json.dumps(item["provenance"], sort_keys=True)
        else:
            del item["provenance"]
        return item
