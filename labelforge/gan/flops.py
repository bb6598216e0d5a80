"""FLOPs of one generator forward pass, so a measured images/s can be set against the device's peak.

Counted by ``torch.utils.flop_counter`` on the meta device (no memory, no arithmetic): every
convolution and transposed convolution, FLOPs = 2 x multiply-accumulates. Norms, activations and
padding are left out; they are memory-bound and below 1% of the count.

Example:
    >>> from labelforge.gan.config import GeneratorConfig
    >>> from labelforge.gan.flops import generator_flops
    >>> round(generator_flops(GeneratorConfig(), num_ids=34, height=512, width=1024) / 1e12, 2)
    0.98
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .config import GeneratorConfig
from .networks import build_generator
from .presets import PRESETS

__all__ = ["generator_flops", "preset_flops"]


def generator_flops(cfg: GeneratorConfig, num_ids: int, height: int, width: int) -> int:
    """FLOPs of one forward pass of the generator ``cfg`` on one ``height`` x ``width`` input."""
    with torch.device("meta"):
        net = build_generator(cfg, num_ids)
        x = torch.zeros(1, cfg.input_nc(num_ids), height, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return int(counter.get_total_flops())


def preset_flops(num_ids: int = 34) -> dict[str, int]:
    """FLOPs per image of every preset at its own resolution."""
    return {name: generator_flops(p.generator, num_ids, p.train.height, p.train.width) for name, p in PRESETS.items()}
