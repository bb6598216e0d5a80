"""FLOPs of the OASIS networks and of one training iteration, so measured images/s can be set
against a device's peak (``make bench``).

Counted by ``torch.utils.flop_counter`` on the meta device (no memory, no arithmetic): every
convolution and matrix product, forward and backward, FLOPs = 2 x multiply-accumulates. A training
iteration is what :class:`~labelforge.gan.oasis.trainer.OasisTrainer` runs per image: the generator
forward and backward, the discriminator forward and backward on the fake, real and LabelMix images,
and its forward and input-gradient backward on the fake for the generator's loss.

Example:
    >>> from labelforge.gan.oasis.config import get_oasis_preset
    >>> from labelforge.gan.oasis.flops import oasis_flops
    >>> f = oasis_flops(get_oasis_preset("cityscapes")[0], num_ids=34, height=256, width=512)
    >>> round(f["generator"] / 1e9)
    637
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import OasisConfig
from .discriminator import OasisDiscriminator
from .generator import OasisGenerator

__all__ = ["oasis_flops"]


def _count(fn) -> int:  # noqa: ANN001 - a closure run under the counter
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def oasis_flops(cfg: OasisConfig, num_ids: int, height: int, width: int) -> dict[str, int]:
    """Per image: ``generator`` and ``discriminator`` forward FLOPs and ``train_step`` (one iteration)."""
    with torch.device("meta"):
        g = OasisGenerator(cfg, cfg.input_nc(num_ids))
        d = OasisDiscriminator(cfg, num_ids)
        label = torch.zeros(1, cfg.input_nc(num_ids), height, width)
        z = torch.zeros(1, cfg.z_dim)
        real = torch.zeros(1, 3, height, width)

        def gen() -> None:
            with torch.no_grad():
                g(label, z)

        def disc() -> None:
            with torch.no_grad():
                d(real)

        def step() -> None:
            fake = g(label, z)
            d(torch.cat([fake.detach(), real, real], 0)).sum().backward()
            d.requires_grad_(False)
            d(fake).sum().backward()
            d.requires_grad_(True)

        return {"generator": _count(gen), "discriminator": _count(disc), "train_step": _count(step)}
