"""Small damaged and whole inputs for the integrity and verify tests (no tests here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cityscapes_tools.writer import write_sample
from labelforge.labelspace import get_label_space
from labelforge.shards import ShardWriter

LS = get_label_space()


def flip_byte(path: Path) -> Path:
    """Change one byte in the middle of ``path`` (the size stays; only the checksum can tell)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def truncate(path: Path) -> Path:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def image_shards(out: Path, n: int = 4, size: int = 32) -> Path:
    """A finished image shard dir (render's kind) of ``n`` road/sky scenes, 2 samples per shard."""
    lab = np.full((size, size), 23, np.uint8)
    lab[size // 2 :] = 7
    img = LS.palette[lab]
    with ShardWriter(
        out, label_space=LS, method="overlay", config={"classes": ["car"]}, seed=0, total=n,
        height=size, width=size, samples_per_shard=2, with_image=True, deflate_images=False,
    ) as w:  # fmt: skip
        for i in range(n):
            w.write(i, key=f"sup_{i:06d}_000000", label=lab, instance=lab.astype(np.int32), image=img, provenance={})
    return out


def seg_root(root: Path, size: int = 32) -> Path:
    lab = np.full((size, size), 23, np.uint8)
    lab[size // 2 :] = 7
    for split in ("train", "val"):
        for i in range(2):
            write_sample(root, split, f"tst_{i:06d}_000019", label=lab, image=LS.palette[lab])
    return root
