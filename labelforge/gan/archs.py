"""The generator architectures ``train-generator --arch`` and ``render`` know: one registry, name -> parts.

An architecture is its frozen config class, its named presets, the trainer class the architecture-free
epoch loop runs (:class:`labelforge.gan.train.GeneratorTrainer`), the format tag of its checkpoints
and the function that turns a checkpoint into a renderer. ``render`` reads a checkpoint's format tag
to find the architecture, so neither command branches on a name.

This module imports nothing heavy: trainers and renderer loaders are named as ``"module:attribute"``
and imported when asked for, so the command line can check ``--arch`` and ``--preset`` before torch
is loaded.

Example:
    >>> from labelforge.gan.archs import get_arch
    >>> arch = get_arch("oasis")
    >>> gen_cfg, train_cfg = arch.preset("tiny")
    >>> arch.format, type(gen_cfg).__name__, (train_cfg.height, train_cfg.width), arch.stochastic
    ('labelforge.generator.oasis/1', 'OasisConfig', (64, 128), True)
    >>> get_arch("spade")
    Traceback (most recent call last):
    ...
    labelforge.errors.LabelforgeError: unknown generator architecture 'spade'; valid: pix2pixhd, oasis
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LabelforgeError
from .config import GeneratorConfig, TrainConfig
from .oasis.config import OASIS_PRESETS, OasisConfig
from .presets import PRESETS

__all__ = ["Arch", "ARCHS", "DEFAULT_ARCH", "PIX2PIXHD_FORMAT", "OASIS_FORMAT", "get_arch", "arch_of_format"]

PIX2PIXHD_FORMAT = "labelforge.generator/1"
OASIS_FORMAT = "labelforge.generator.oasis/1"
DEFAULT_ARCH = "pix2pixhd"  # the paper's generator


@dataclass(frozen=True)
class Arch:
    """One generator architecture (see the module docstring)."""

    name: str
    config: type  # the frozen architecture config (GeneratorConfig, OasisConfig)
    presets: Mapping[str, Any]  # name -> a record with ``.generator`` (the architecture config) and ``.train``
    trainer_path: str  # "module:Class" of its GeneratorTrainer
    renderer_path: str  # "module:function" (checkpoint, label space, device, RenderConfig) -> renderer
    format: str  # checkpoint format tag
    stochastic: bool  # renders draw noise: several different photos per map
    unused: tuple[str, ...] = ()  # TrainConfig fields this architecture does not train with

    def preset(self, name: str) -> tuple[Any, TrainConfig]:
        """The architecture config and training defaults of preset ``name``; unknown names list the valid ones."""
        p = self.presets.get(name)
        if p is None:
            raise LabelforgeError(f"unknown preset {name!r} for --arch {self.name}; valid: {', '.join(self.presets)}")
        return p.generator, p.train

    def config_from_dict(self, values: Mapping[str, Any]) -> Any:
        """The architecture config saved in a checkpoint or a plan, ignoring keys this version lacks."""
        from .config import config_from_dict

        return config_from_dict(self.config, dict(values))

    def trainer(self) -> type:
        return _load(self.trainer_path)

    def renderer_loader(self) -> Any:
        return _load(self.renderer_path)


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


ARCHS: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch(
            name="pix2pixhd",
            config=GeneratorConfig,
            presets=PRESETS,
            trainer_path="labelforge.gan.pix2pixhd:Pix2PixHDTrainer",
            renderer_path="labelforge.gan.render:pix2pixhd_renderer",
            format=PIX2PIXHD_FORMAT,
            stochastic=False,
        ),
        Arch(
            name="oasis",
            config=OasisConfig,
            presets=OASIS_PRESETS,
            trainer_path="labelforge.gan.oasis.trainer:OasisTrainer",
            renderer_path="labelforge.gan.oasis.trainer:oasis_renderer",
            format=OASIS_FORMAT,
            stochastic=True,
            unused=("vgg_weights",),  # OASIS needs no VGG loss: its discriminator segments
        ),
    )
}


def get_arch(name: str) -> Arch:
    """The architecture called ``name``; an unknown name is answered with the valid ones."""
    arch = ARCHS.get(name)
    if arch is None:
        raise LabelforgeError(f"unknown generator architecture {name!r}; valid: {', '.join(ARCHS)}")
    return arch


def arch_of_format(fmt: str) -> Arch | None:
    """The architecture whose checkpoints carry format tag ``fmt`` (None for a foreign tag)."""
    return next((a for a in ARCHS.values() if a.format == fmt), None)
