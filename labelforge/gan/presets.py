"""Named generator sizes: ``tiny`` for CPU demos and tests, ``512p`` and ``1024p`` as pix2pixHD.

``512p`` is pix2pixHD's Cityscapes setting (GlobalGenerator at 1024x512, 100 + 100 epochs of
constant then decaying LR, batch 1); ``1024p`` is its LocalEnhancer at 2048x1024 with three
discriminator scales (50 + 50 epochs; pix2pixHD starts it from a trained 512p global generator).

Example:
    >>> from labelforge.gan.presets import get_preset
    >>> gen, train = get_preset("tiny")
    >>> gen.ngf, (train.height, train.width)
    (16, (64, 128))
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LabelforgeError
from .config import GeneratorConfig, TrainConfig

__all__ = ["Preset", "PRESETS", "get_preset"]


@dataclass(frozen=True)
class Preset:
    generator: GeneratorConfig
    train: TrainConfig


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        GeneratorConfig(ngf=16, n_downsample=2, n_blocks=3, ndf=16, n_layers_d=2, num_d=2),
        TrainConfig(preset="tiny", epochs=10, batch_size=4, height=64, width=128),
    ),
    "512p": Preset(
        GeneratorConfig(),
        TrainConfig(preset="512p", epochs=200, batch_size=1, height=512, width=1024),
    ),
    "1024p": Preset(
        GeneratorConfig(ngf=32, n_local_enhancers=1, n_blocks_local=3, num_d=3),
        TrainConfig(preset="1024p", epochs=100, batch_size=1, height=1024, width=2048),
    ),
}


def get_preset(name: str) -> tuple[GeneratorConfig, TrainConfig]:
    """The generator and training defaults of preset ``name``; unknown names list the valid ones."""
    try:
        p = PRESETS[name]
    except KeyError:
        raise LabelforgeError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}") from None
    return p.generator, p.train
