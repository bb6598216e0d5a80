"""Train a label-to-image generator on a dataset root's image/label pairs (pix2pixHD or OASIS).

The epoch loop here knows no architecture. An architecture plugs in as a trainer class with the
shape of :class:`GeneratorTrainer` (pix2pixHD's is :class:`labelforge.gan.pix2pixhd.Pix2PixHDTrainer`,
OASIS's :class:`labelforge.gan.oasis.trainer.OasisTrainer`; :mod:`labelforge.gan.archs` names them):

* ``Trainer.check(gen_cfg, train_cfg)`` refuses settings the architecture cannot train with
  (LabelforgeError), before anything is written.
* ``Trainer(gen_cfg, train_cfg, label_space, device, world)`` builds the networks and optimizers,
  seeded from ``train_cfg.seed`` so every rank starts alike, and wraps them in DDP when ``world > 1``.
  ``gen_cfg`` is the architecture's frozen config dataclass; it must have ``size_multiple``.
* ``ARCH`` is the architecture's name (recorded in ``run.json``) and ``FORMAT`` the checkpoint
  format tag (``labelforge.generator/1`` for pix2pixHD); a resume refuses a checkpoint of another format.
* ``set_lr(lr)`` before each epoch; ``step(batch) -> {loss name: float}`` trains on one batch of
  :func:`labelforge.gan.data.collate` (``label``, ``instance``, ``image``); every name it returns is
  logged and averaged per epoch; ``progress_fields(losses)`` picks the few the progress bar shows.
* ``render(items) -> uint8 (B, H, W, 3)`` for the per-epoch sample grid (rank 0, no grad).
* ``state_dict()`` gives the checkpoint entries (model and optimizer states and whatever the
  renderer needs), ``load_state_dict(checkpoint)`` restores them on resume.

Everything else is the loop's: learning-rate schedule (``TrainConfig.lr_at``), data order, the run dir
(:mod:`labelforge._rundir`: run.json, log.jsonl, the checkpoint's header, resume checks,
``_SUCCESS``, rank-0 writes), sample grids and the progress bar.

``--batch-size`` is global: under ``torchrun`` each of the N processes trains on ``batch_size / N``
samples of every step (a DistributedSampler splits each epoch), so a run takes the same steps of
the same batch size on any process count.

Outputs in the run dir: ``generator.pt`` (latest epoch), ``log.jsonl`` (one JSON line per
``log_every`` steps and per epoch), ``samples/epoch-XXX.png`` (label colour | real | generated),
``run.json`` and ``_SUCCESS`` when every epoch is done.

Example:
    >>> from labelforge.gan.presets import get_preset  # doctest: +SKIP
    >>> from labelforge.gan.train import train_generator  # doctest: +SKIP
    >>> gen, cfg = get_preset("tiny")  # doctest: +SKIP
    >>> train_generator("data/mini", "runs/gen", gen, cfg).epochs  # doctest: +SKIP
    10
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from .._lock import output_lock
from .._rundir import RunDir
from .._runtime import all_reduce_sum, distributed, per_process_batch
from ..check import validate_samples
from ..errors import LabelforgeError
from ..labelspace import LabelSpace, get_label_space
from ..outputs import check_output
from ..progress import Progress, ProgressTask
from .checkpoint import generator_spec
from .config import TrainConfig
from .data import PairDataset, collate
from .pix2pixhd import Pix2PixHDTrainer

__all__ = ["GeneratorTrainer", "TrainResult", "train_generator"]


class GeneratorTrainer(Protocol):
    """What the epoch loop needs of an architecture (see the module docstring)."""

    ARCH: ClassVar[str]
    FORMAT: ClassVar[str]

    @classmethod
    def check(cls, gen_cfg: Any, train_cfg: TrainConfig) -> None: ...

    def __init__(
        self, gen_cfg: Any, train_cfg: TrainConfig, label_space: LabelSpace, device: torch.device, world: int
    ) -> None: ...

    def set_lr(self, lr: float) -> None: ...

    def step(self, batch: dict[str, Any]) -> dict[str, float]: ...

    def progress_fields(self, losses: dict[str, float]) -> dict[str, float]: ...

    def render(self, items: list[dict[str, Any]]) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class TrainResult:
    out: Path
    epochs: int  # epochs finished in total
    start_epoch: int  # epochs already done when this call began (> 0 when resumed)
    steps: int
    losses: dict[str, float] = field(default_factory=dict)  # means over the last epoch
    seconds: float = 0.0
    is_main: bool = True  # False in the other ranks of a torchrun job


@dataclass(frozen=True)
class _Data:
    """The training pairs, this process's loader over them, and the unflipped pairs of the sample grid."""

    train: PairDataset
    grid: PairDataset
    sampler: torch.utils.data.DistributedSampler
    loader: torch.utils.data.DataLoader

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)  # order: a function of (seed, epoch)
        self.train.set_epoch(epoch)  # flips: a function of (seed, epoch, index)


def _open_data(
    root: str | Path, gen_cfg: Any, cfg: TrainConfig, ls: LabelSpace, rank: int, world: int, device: torch.device
) -> _Data:
    """Check the size and the batch against the architecture and the process count, and open the pairs."""
    m = gen_cfg.size_multiple
    if cfg.height % m or cfg.width % m:
        raise LabelforgeError(f"size {cfg.height}x{cfg.width} must be a multiple of {m} for this architecture")
    batch = per_process_batch(cfg.batch_size, world)
    size = (cfg.height, cfg.width)
    train = PairDataset(root, size, ls, cfg.split, flip=cfg.flip, seed=cfg.seed)
    grid = PairDataset(root, size, ls, cfg.split, flip=False)
    sampler = torch.utils.data.DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(
        train,
        batch_size=batch,
        sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
    )
    return _Data(train, grid, sampler, loader)


def train_generator(
    root: str | Path,
    out: str | Path,
    gen_cfg: Any,
    cfg: TrainConfig,
    *,
    label_space: str | LabelSpace = "cityscapes",
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    trainer: type[GeneratorTrainer] = Pix2PixHDTrainer,
) -> TrainResult:
    """Train (or, with ``resume``, continue training) a generator; returns what was done.

    A resume must describe the run it continues: only the runtime settings, ``num_samples`` and
    ``epochs`` (to train longer) may differ from the checkpoint's (see :mod:`labelforge._rundir`).
    Every input is checked before the run dir is touched. Run it under ``torchrun --nproc-per-node N``
    for data-parallel training.
    """
    t0 = time.perf_counter()
    trainer.check(gen_cfg, cfg)
    with output_lock(out, "train-generator"), distributed(cfg.device) as (info, device):
        ls = label_space if isinstance(label_space, LabelSpace) else get_label_space(label_space)
        data = _open_data(root, gen_cfg, cfg, ls, info.rank, info.world, device)
        check_output(out, overwrite=overwrite, resume=resume)  # before the (long) check of every file
        # Every pair decoded and checked now: a bad file found mid-epoch would cost the epochs before it.
        validate_samples(
            data.train.samples, workers=cfg.workers, progress=progress if info.is_main else None, remember=True
        )
        sampler_state = {"kind": "DistributedSampler", "seed": cfg.seed, "samples": len(data.train)}
        spec = generator_spec(gen_cfg, cfg, ls, sampler_state, fmt=trainer.FORMAT, root=root)
        run = RunDir.open(out, spec, info=info, device=device, overwrite=overwrite, resume=resume, progress=progress)
        net = trainer(gen_cfg, cfg, ls, device, info.world)
        if run.checkpoint is not None:
            net.load_state_dict(run.checkpoint)
        run.start(run_info={"arch": trainer.ARCH, "root": str(Path(root).absolute())}, epochs=cfg.epochs)
        losses, steps = _fit(run, net, data, cfg)
        run.finish({"epochs": cfg.epochs, "steps": steps, "losses": losses})
        return TrainResult(run.path, cfg.epochs, run.epoch, steps, losses, time.perf_counter() - t0, info.is_main)


def _fit(run: RunDir, net: GeneratorTrainer, data: _Data, cfg: TrainConfig) -> tuple[dict[str, float], int]:
    """The epochs left after the checkpoint; returns the last epoch's mean losses and the step count."""
    losses: dict[str, float] = {}
    step = run.step
    total = (cfg.epochs - run.epoch) * len(data.loader)
    with run.progress.task("train generator", total=max(total, 0)) as task:
        for epoch in range(run.epoch, cfg.epochs):
            net.set_lr(cfg.lr_at(epoch))
            data.set_epoch(epoch)
            losses, step = _train_epoch(run, net, data.loader, cfg, task, epoch, step)
            run.log("epoch", epoch=epoch + 1, step=step, lr=cfg.lr_at(epoch), **losses)
            if run.is_main:
                _sample_grid(net, data.grid, cfg.num_samples, run.path / "samples" / f"epoch-{epoch + 1:03d}.png")
            run.save_checkpoint(epoch=epoch + 1, step=step, state={**net.state_dict(), "size": [cfg.height, cfg.width]})
    return losses, step


def _train_epoch(
    run: RunDir,
    net: GeneratorTrainer,
    loader: torch.utils.data.DataLoader,
    cfg: TrainConfig,
    task: ProgressTask,
    epoch: int,
    step: int,
) -> tuple[dict[str, float], int]:
    """One pass over this process's share; returns the losses averaged over every process, and the step count."""
    lr = cfg.lr_at(epoch)
    sums: dict[str, float] = {}
    for batch in loader:
        losses = net.step(batch)
        step += 1
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v
        if step % cfg.log_every == 0 or step == 1:
            run.log("step", epoch=epoch + 1, step=step, lr=lr, **losses)
        task.advance(1, epoch=epoch + 1, **net.progress_fields(losses))
    names = sorted(sums)
    *totals, n = all_reduce_sum([sums[k] for k in names] + [len(loader)], run.device)
    return {k: v / n for k, v in zip(names, totals, strict=True)}, step


def _sample_grid(net: GeneratorTrainer, ds: PairDataset, n: int, path: Path) -> None:
    from ..preview import save_grid

    items = [ds[i] for i in range(min(n, len(ds)))]
    fakes = net.render(items)
    palette = ds.source.label_space.palette
    rows = [[palette[it["label"]], it["image"], f] for it, f in zip(items, fakes, strict=True)]
    captions = [["label", "real", "generated"]] + [["", "", ""]] * (len(rows) - 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(path, rows, captions)
