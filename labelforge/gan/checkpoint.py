"""Generator checkpoints: one self-describing file, written atomically, checked when loaded.

A checkpoint is a ``torch.save``d dict holding the model and optimizer states, the finished epoch
count, the generator and training configs, the label space (table and fingerprint), the input
channel count and the labelforge version, so rendering never needs the training command line.

Example:
    >>> from labelforge.gan.checkpoint import load_checkpoint  # doctest: +SKIP
    >>> ck = load_checkpoint("runs/gen")  # a run dir or the .pt file itself  # doctest: +SKIP
    >>> ck["epoch"], ck["generator_config"]["ngf"]  # doctest: +SKIP
    (10, 16)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import InputError
from ..labelspace import LabelSpace
from .config import GeneratorConfig, TrainConfig, config_from_dict
from .networks import build_generator

__all__ = ["FORMAT", "CHECKPOINT_NAME", "save_checkpoint", "load_checkpoint", "load_generator", "checkpoint_path"]

FORMAT = "labelforge.generator/1"
CHECKPOINT_NAME = "generator.pt"
_REQUIRED = ("generator", "generator_config", "train_config", "label_space", "label_space_fingerprint", "input_nc")


def checkpoint_path(path: str | Path) -> Path:
    """A run dir means its ``generator.pt``; a file means itself."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def save_checkpoint(
    path: str | Path,
    *,
    generator: nn.Module,
    discriminator: nn.Module | None,
    optimizers: dict[str, Any],
    epoch: int,
    step: int,
    gen_cfg: GeneratorConfig,
    train_cfg: TrainConfig,
    label_space: LabelSpace,
    root: str | Path | None = None,
) -> Path:
    """Write the checkpoint to a temporary file beside ``path`` and rename it (a reader never sees half).

    ``root`` is the dataset root the generator trains on: with the split it goes into ``data``, so
    rendered shards can say which photos their generator saw (train-eval refuses its own val split).
    """
    from dataclasses import asdict

    from cityscapes_tools.io import atomic_write_bytes

    state = {
        "format": FORMAT,
        "generator": generator.state_dict(),
        "discriminator": None if discriminator is None else discriminator.state_dict(),
        **{name: opt.state_dict() for name, opt in optimizers.items()},
        "epoch": epoch,
        "step": step,
        "generator_config": asdict(gen_cfg),
        "train_config": asdict(train_cfg),
        "label_space": label_space.to_dict(),
        "label_space_fingerprint": label_space.fingerprint,
        "input_nc": gen_cfg.input_nc(label_space.num_ids),
        "size": [train_cfg.height, train_cfg.width],
        "data": {"root": None if root is None else str(Path(root).resolve()), "split": train_cfg.split},
        "labelforge_version": __version__,
    }
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and sanity-check a checkpoint (tensors land on the CPU); InputError names a bad file."""
    path = checkpoint_path(path)
    if not path.is_file():
        raise InputError(path, "generator checkpoint not found")
    try:
        # weights_only: a checkpoint holds tensors, numbers, strings and dicts, never code to run.
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file is bad input, not a bug
        raise InputError(path, f"cannot read generator checkpoint ({type(exc).__name__})") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise InputError(path, f"not a labelforge generator checkpoint (expected format {FORMAT!r})")
    missing = [k for k in _REQUIRED if k not in ck]
    if missing:
        raise InputError(path, f"generator checkpoint lacks {missing[0]!r}")
    return ck


def load_generator(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained generator (CPU, eval mode) and its checkpoint dict (configs, label space, size)."""
    ck = load_checkpoint(path)
    ls = LabelSpace.from_dict(ck["label_space"])
    gen_cfg = config_from_dict(GeneratorConfig, ck["generator_config"])
    if gen_cfg.input_nc(ls.num_ids) != ck["input_nc"]:
        raise InputError(checkpoint_path(path), "checkpoint's input channels disagree with its own label space")
    net = build_generator(gen_cfg, ls.num_ids)
    try:
        net.load_state_dict(ck["generator"])
    except RuntimeError:
        raise InputError(checkpoint_path(path), "generator weights do not fit the recorded architecture") from None
    ck["train_config_obj"] = config_from_dict(TrainConfig, ck["train_config"])
    ck["generator_config_obj"] = gen_cfg
    ck["label_space_obj"] = ls
    return net.eval(), ck
