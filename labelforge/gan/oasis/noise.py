"""Deterministic noise for the OASIS generator.

Rendering draws the noise of sample ``index``'s ``k``-th render from ``(seed, index, k)`` alone,
so several renders of one map differ, and each is reproduced exactly whatever the batch size,
worker count, device or resumption. Training draws its noise and its LabelMix class bits from
``(seed, step, rank)``, so a resumed run repeats an uninterrupted one.

Numbers come from numpy's PCG64 seeded with the tuple (float32 standard normals), made on the CPU
and copied to the device: the same tuple gives the same bits on every machine.

Example:
    >>> from labelforge.gan.oasis.noise import render_noise
    >>> a = render_noise(seed=0, indices=[5, 6], k=0, z_dim=4)
    >>> b = render_noise(seed=0, indices=[6], k=0, z_dim=4)
    >>> a.shape, bool((a[1] == b[0]).all()), bool((a[0] == render_noise(0, [5], 1, 4)[0]).all())
    (torch.Size([2, 4]), True, False)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["render_noise", "train_noise", "labelmix_bits"]

# Distinct first words keep the three streams apart from each other and from (seed, index) streams
# used elsewhere (the oracle painter, compose).
_RENDER, _TRAIN, _LABELMIX = 0x0A515, 0x0A516, 0x0A517


def render_noise(seed: int, indices: Sequence[int] | torch.Tensor, k: int, z_dim: int) -> torch.Tensor:
    """(B, z_dim) float32 CPU noise: row ``i`` from ``(seed, indices[i], k)``."""
    idx = indices.tolist() if isinstance(indices, torch.Tensor) else list(indices)
    rows = [np.random.default_rng([_RENDER, seed, int(i), k]).standard_normal(z_dim, np.float32) for i in idx]
    return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, z_dim)


def train_noise(seed: int, step: int, rank: int, batch: int, z_dim: int) -> torch.Tensor:
    """(batch, z_dim) float32 CPU noise of training step ``step`` on process ``rank``."""
    rng = np.random.default_rng([_TRAIN, seed, step, rank])
    return torch.from_numpy(rng.standard_normal((batch, z_dim), np.float32))


def labelmix_bits(seed: int, step: int, rank: int, num_ids: int) -> torch.Tensor:
    """(num_ids,) 0/1 float32: which classes LabelMix takes from the real image at this step."""
    rng = np.random.default_rng([_LABELMIX, seed, step, rank])
    return torch.from_numpy(rng.integers(0, 2, num_ids).astype(np.float32))
