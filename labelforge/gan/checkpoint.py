"""Generator checkpoints: one self-describing file, written atomically, checked when loaded.

``generator.pt`` is a run-dir checkpoint of :mod:`labelforge._rundir` whose format tag names the
architecture (``labelforge.generator/1``: pix2pixHD, ``labelforge.generator.oasis/1``: OASIS; see
:mod:`labelforge.gan.archs`): the harness header (``train_config`` and ``generator_config``, the
label space table and ``label_space_fingerprint``, ``sampler``, ``epoch``, ``step``, versions)
plus the trainer's entries: ``arch``, ``generator``, ``discriminator``, ``optimizer_g``,
``optimizer_d``, ``scaler``, ``input_nc`` and ``size`` [H, W] (OASIS adds ``ema``, the weights it
renders with). Rendering needs nothing else, never the training command line.

Example:
    >>> from labelforge.gan.checkpoint import load_checkpoint  # doctest: +SKIP
    >>> ck = load_checkpoint("runs/gen")  # a run dir or the .pt file itself  # doctest: +SKIP
    >>> ck["epoch"], ck["generator_config"]["ngf"]  # doctest: +SKIP
    (10, 16)
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from torch import nn

from .._rundir import RUNTIME_FIELDS, RunSpec, read_checkpoint, write_checkpoint
from ..errors import InputError
from ..labelspace import LabelSpace
from .archs import ARCHS, PIX2PIXHD_FORMAT, Arch, arch_of_format
from .config import GeneratorConfig, TrainConfig, config_from_dict
from .networks import build_generator

__all__ = [
    "FORMAT",
    "CHECKPOINT_NAME",
    "RESUME_MAY_CHANGE",
    "generator_spec",
    "pix2pixhd_state",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_arch",
    "load_generator",
    "pix2pixhd_from_checkpoint",
    "checkpoint_path",
]

FORMAT = PIX2PIXHD_FORMAT
CHECKPOINT_NAME = "generator.pt"
_REQUIRED = ("generator", "generator_config", "train_config", "label_space", "label_space_fingerprint", "input_nc")

# What a resumed train-generator may change: the runtime settings, the sample grid and, to train
# longer, the epoch count. Every other field must be the checkpoint's (see labelforge._rundir).
RESUME_MAY_CHANGE = RUNTIME_FIELDS | {"epochs", "num_samples"}


def checkpoint_path(path: str | Path) -> Path:
    """A run dir means its ``generator.pt``; a file means itself."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def generator_spec(
    gen_cfg: Any,
    train_cfg: TrainConfig,
    label_space: LabelSpace,
    sampler: dict[str, Any],
    fmt: str = FORMAT,
    root: str | Path | None = None,
) -> RunSpec:
    """The run-dir spec of a generator training: what ``run.json`` and every ``generator.pt`` record.

    ``data`` names the dataset root (resolved) and split the generator trains on, so rendered shards
    can say which photos their generator saw (train-eval refuses its own val split).
    """
    data = {"root": None if root is None else str(Path(root).resolve()), "split": train_cfg.split}
    return RunSpec(
        command="train-generator",
        checkpoint=CHECKPOINT_NAME,
        format=fmt,
        config={"train_config": asdict(train_cfg), "generator_config": asdict(gen_cfg), "data": data},
        label_space=label_space,
        sampler=sampler,
        may_change=RESUME_MAY_CHANGE,
    )


def pix2pixhd_state(
    generator: nn.Module, discriminator: nn.Module | None, optimizers: dict[str, Any], input_nc: int
) -> dict[str, Any]:
    """pix2pixHD's entries of a checkpoint: network and optimizer (and grad-scaler) states, input channels."""
    return {
        "arch": "pix2pixhd",
        "generator": generator.state_dict(),
        "discriminator": None if discriminator is None else discriminator.state_dict(),
        **{name: opt.state_dict() for name, opt in optimizers.items()},
        "input_nc": input_nc,
    }


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
    """Write a generator checkpoint outside a training run (e.g. an untrained generator), atomically."""
    spec = generator_spec(gen_cfg, train_cfg, label_space, sampler={}, root=root)
    state = pix2pixhd_state(generator, discriminator, optimizers, gen_cfg.input_nc(label_space.num_ids))
    return write_checkpoint(path, {**spec.header(epoch, step), **state, "size": [train_cfg.height, train_cfg.width]})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and sanity-check a checkpoint of any registered architecture (tensors land on the CPU);
    InputError names a bad file. ``checkpoint_arch(ck)`` says which architecture wrote it."""
    path = checkpoint_path(path)
    ck = read_checkpoint(path, tuple(a.format for a in ARCHS.values()), what="generator checkpoint")
    missing = [k for k in _REQUIRED if k not in ck]
    if missing:
        raise InputError(path, f"generator checkpoint lacks {missing[0]!r}")
    return ck


def checkpoint_arch(ck: dict[str, Any]) -> Arch:
    """The architecture of a loaded checkpoint, from its format tag (older pix2pixHD files carry no ``arch``)."""
    arch = arch_of_format(ck["format"])
    assert arch is not None  # load_checkpoint accepts registered formats only
    return arch


def pix2pixhd_from_checkpoint(ck: dict[str, Any], path: str | Path) -> nn.Module:
    """The pix2pixHD generator of a loaded checkpoint (CPU, eval mode); InputError names ``path``."""
    if checkpoint_arch(ck).name != "pix2pixhd":
        raise InputError(path, f"holds a {checkpoint_arch(ck).name} generator, not pix2pixHD")
    ls = LabelSpace.from_dict(ck["label_space"])
    gen_cfg = config_from_dict(GeneratorConfig, ck["generator_config"])
    if gen_cfg.input_nc(ls.num_ids) != ck["input_nc"]:
        raise InputError(path, "checkpoint's input channels disagree with its own label space")
    net = build_generator(gen_cfg, ls.num_ids)
    try:
        net.load_state_dict(ck["generator"])
    except RuntimeError:
        raise InputError(path, "generator weights do not fit the recorded architecture") from None
    return net.eval()


def load_generator(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The trained pix2pixHD generator (CPU, eval mode) and its checkpoint dict (configs, label space, size)."""
    ck = load_checkpoint(path)
    net = pix2pixhd_from_checkpoint(ck, checkpoint_path(path))
    ck["train_config_obj"] = config_from_dict(TrainConfig, ck["train_config"])
    ck["generator_config_obj"] = config_from_dict(GeneratorConfig, ck["generator_config"])
    ck["label_space_obj"] = LabelSpace.from_dict(ck["label_space"])
    return net, ck
