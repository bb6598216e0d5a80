"""Layers OASIS builds both networks from: initialised convolutions and the SPADE normalisation.

Every convolution starts as OASIS initialises it (``init_networks``): Xavier-normal weights with
gain 0.02 and zero biases (or, with ``init="torch"``, as PyTorch does; see docs/generator.md for
why the tiny preset does). Where OASIS uses spectral norm, the initialised conv is then wrapped
with ``torch.nn.utils.parametrizations.spectral_norm`` (the weight is divided by its largest
singular value, estimated by one power iteration per training forward).

Example:
    >>> import torch
    >>> from labelforge.gan.oasis.layers import SPADE
    >>> spade = SPADE(channels=8, label_nc=5, hidden=4)
    >>> spade(torch.randn(2, 8, 4, 8), torch.zeros(2, 5, 16, 32)).shape
    torch.Size([2, 8, 4, 8])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = ["INITS", "conv", "SPADE", "resize_nearest"]


INITS = ("oasis", "torch")


def conv(cin: int, cout: int, k: int, *, sn: bool = False, bias: bool = True, init: str = "oasis") -> nn.Module:
    """A ``k`` x ``k`` convolution with 'same' padding, optionally spectrally normalised.

    ``init="oasis"``: Xavier-normal weights with gain 0.02 and zero biases, as OASIS; ``"torch"``:
    PyTorch's default (Kaiming-uniform with a = sqrt(5), uniform biases).
    """
    c = nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)
    if init == "oasis":
        nn.init.xavier_normal_(c.weight, gain=0.02)
        if bias:
            nn.init.zeros_(c.bias)
    return spectral_norm(c) if sn else c


def resize_nearest(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Nearest-neighbour resize (PyTorch's legacy 'nearest', as OASIS), skipped when the size already fits."""
    return x if x.shape[-2:] == tuple(size) else F.interpolate(x, size=tuple(size), mode="nearest")


class SPADE(nn.Module):
    """Parameter-free instance norm, then a per-pixel scale and shift predicted from the label map.

    ``out = norm(x) * (1 + gamma(seg)) + beta(seg)`` with gamma and beta two convolutions on a shared
    hidden layer (conv + ReLU) of the label map resized (nearest) to ``x``.
    """

    def __init__(self, channels: int, label_nc: int, hidden: int = 128, ks: int = 3, init: str = "oasis") -> None:
        super().__init__()
        # OASIS normalises with (synchronised) batch norm; instance norm keeps samples independent, so
        # the EMA generator needs no re-estimated statistics and a render never depends on its batch.
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.shared = nn.Sequential(conv(label_nc, hidden, ks, init=init), nn.ReLU())
        self.gamma = conv(hidden, channels, ks, init=init)
        self.beta = conv(hidden, channels, ks, init=init)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        h = self.shared(resize_nearest(seg, x.shape[-2:]))
        return self.norm(x) * (1 + self.gamma(h)) + self.beta(h)
