"""``train_eval``: train PSPNet on originals (+ supplementary shards), evaluate on val, write a run dir.

RUN_DIR is a run dir of :mod:`labelforge._rundir`: ``run.json``, ``log.jsonl`` (events ``start``,
``train`` every ``log_every`` steps, ``epoch``, ``resume``, ``eval``), ``checkpoint.pt``
(rewritten atomically after every epoch: the harness header plus ``model``, ``optimizer``,
``history`` and the sample counters ``seen``), ``metrics.json`` and ``_SUCCESS``; with
``save_predictions`` also ``predictions/{city}/{key}_pred_labelIds.png``.

Resuming restores the model, optimizer and counters from the last finished epoch; everything random
after that point is derived from ``(seed, epoch)`` (sampler order, per-sample augmentation, dropout),
so on CPU a resumed run ends with the same weights and metrics as an uninterrupted one. A resume
must describe the same run: only ``out``, ``device``, ``workers``, ``log_every`` and
``save_predictions`` may change, and the label space and the data counts must be the checkpoint's.

Under ``torchrun`` every process trains on its slice of each global batch (DDP; NCCL on GPUs, gloo
on CPU), the confusion matrix and the counters are summed over processes, and rank 0 writes.

Example:
    >>> from labelforge.seg.presets import resolve_config
    >>> from labelforge.seg.train import train_eval
    >>> cfg = resolve_config("tiny", root="data/mini", out="runs/base", epochs=2)  # doctest: +SKIP
    >>> train_eval(cfg)["miou"]  # doctest: +SKIP
    0.21
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from .. import __version__
from .._lock import output_lock
from .._rundir import RUNTIME_FIELDS, RunDir, RunSpec
from .._runtime import DistInfo, all_reduce_sum, distributed, per_process_batch
from ..outputs import check_output
from ..progress import Progress, ProgressTask
from .data import MixSampler, PairTransform, TrainData, ValData, make_sampler, normalize
from .metrics import METRICS_SCHEMA, ConfusionMatrix, metrics_summary, to_jsonable, write_metrics
from .predict import autocast_for, evaluate_split
from .presets import TrainEvalConfig, config_to_dict
from .pspnet import PSPNet, pspnet, seg_loss
from .schedule import EpochPlan, plan_epochs, poly_factor
from .sources import RunInputs, check_inputs

__all__ = ["train_eval", "train_step", "train_loader", "CHECKPOINT", "CHECKPOINT_FORMAT", "RESUME_MAY_CHANGE"]

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "labelforge.pspnet-checkpoint/2"
# Fields a resumed run may change without changing its result (see labelforge._rundir);
# allow_eval_leak too: the inputs are checked again on resume, so it cannot let anything new through.
RESUME_MAY_CHANGE = RUNTIME_FIELDS | {"save_predictions", "allow_eval_leak"}


def _seed_for(*parts: int) -> int:
    return int(np.random.default_rng(list(parts)).integers(0, 2**62))


def _spec(cfg: TrainEvalConfig, inputs: RunInputs) -> RunSpec:
    n_supp = sum(len(s) for s in inputs.shards)
    return RunSpec(
        command="train-eval",
        checkpoint=CHECKPOINT,
        format=CHECKPOINT_FORMAT,
        config={"config": config_to_dict(cfg)},
        label_space=inputs.label_space,
        sampler={"kind": "MixSampler", "seed": cfg.seed, "originals": len(inputs.train), "supplementary": n_supp},
        may_change=RESUME_MAY_CHANGE,
    )


@dataclass
class _Parts:
    """What one process trains with."""

    cfg: TrainEvalConfig
    inputs: RunInputs
    plan: list[EpochPlan]
    model: PSPNet  # the bare model, as saved
    net: torch.nn.Module  # what runs: the model, or DDP around it
    opt: torch.optim.Optimizer
    sampler: MixSampler
    loader: DataLoader
    val: ValData
    device: torch.device
    info: DistInfo


@dataclass
class _Counters:
    """What the run has done so far; restored from the checkpoint on resume."""

    epoch: int = 0
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    seen_supp: int = 0
    seen_all: int = 0

    @classmethod
    def from_checkpoint(cls, ck: dict[str, Any] | None) -> _Counters:
        if ck is None:
            return cls()
        seen = ck["seen"]
        return cls(int(ck["epoch"]), int(ck["step"]), list(ck["history"]), int(seen["supp"]), int(seen["total"]))


@dataclass(frozen=True)
class _EpochSums:
    """One process's sums over one epoch (all-reduced by the caller)."""

    loss: float
    steps: int
    supp: int
    seen: int
    lr: float


def _build(
    cfg: TrainEvalConfig,
    inputs: RunInputs,
    plan: list[EpochPlan],
    ck: dict[str, Any] | None,
    device: torch.device,
    info: DistInfo,
) -> _Parts:
    """Model and optimizer (restored from ``ck`` when resuming), DDP, the data and this process's loader."""
    model = _build_model(cfg, inputs, device, info)
    opt = torch.optim.SGD(model.param_groups(cfg.lr), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
    net: torch.nn.Module = model
    if info.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    train = inputs.train_data(PairTransform(cfg.size, cfg.crop, cfg.aug))
    val = ValData(inputs.val, inputs.label_space, cfg.size)
    sampler = make_sampler(cfg, train, info.rank, info.world)
    loader = train_loader(train, sampler, cfg, device, info.world)
    return _Parts(cfg, inputs, plan, model, net, opt, sampler, loader, val, device, info)


def _build_model(cfg: TrainEvalConfig, inputs: RunInputs, device: torch.device, info: DistInfo) -> PSPNet:
    torch.manual_seed(cfg.seed)  # the same initial weights on every process and every rerun
    model = pspnet(
        backbone=cfg.backbone, num_classes=inputs.label_space.num_classes, backbone_weights=cfg.backbone_weights
    )
    if info.enabled and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # PSPNet's BN statistics span the global batch
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.backends.cudnn.benchmark = True
    return model


def train_loader(
    data: TrainData, sampler: MixSampler, cfg: TrainEvalConfig, device: torch.device, world: int = 1
) -> DataLoader:
    """The training DataLoader: this process's share of the global batch, persistent workers."""
    return DataLoader(
        data,
        batch_size=per_process_batch(cfg.batch_size, world),
        sampler=sampler,
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=cfg.workers > 0,
        # No cv2.setNumThreads in the workers: called in a forked child after the parent used
        # OpenCV's thread pool, it deadlocks.
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def train_step(
    model: torch.nn.Module, opt: torch.optim.Optimizer, images: torch.Tensor, labels: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """One SGD step on a batch of (B, 3, H, W) uint8 images and (B, H, W) int64 train ids; returns the detached loss."""
    x = normalize(images.to(device, non_blocking=True))
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    target = labels.to(device, non_blocking=True)
    with autocast_for(device):
        outputs = model(x)
    loss = seg_loss(outputs, target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def train_eval(
    cfg: TrainEvalConfig, *, overwrite: bool = False, resume: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Train and evaluate as ``cfg`` says; returns the metrics.json content.

    Inputs are checked before RUN_DIR is created, so bad input leaves nothing behind.

    Example:
        >>> metrics = train_eval(resolve_config("tiny", root="data/mini", out="runs/a"))  # doctest: +SKIP
    """
    with output_lock(cfg.out, "train-eval"), distributed(cfg.device) as (info, device):
        check_output(cfg.out, overwrite=overwrite, resume=resume)  # before the (long) check of every file
        inputs = check_inputs(cfg)
        n_supp = sum(len(s) for s in inputs.shards)
        plan = plan_epochs(cfg, n_orig=len(inputs.train), n_supp=n_supp, world=info.world)
        run = RunDir.open(
            cfg.out, _spec(cfg, inputs), info=info, device=device, overwrite=overwrite, resume=resume, progress=progress
        )
        if run.finished:
            run.progress.log(f"{run.path} is finished; nothing to resume")
            return json.loads((run.path / "metrics.json").read_text())
        parts = _build(cfg, inputs, plan, run.checkpoint, device, info)
        counters = _Counters.from_checkpoint(run.checkpoint)
        run.start(epochs=len(plan), iters=sum(e.iters for e in plan))
        _fit(run, parts, counters)
        return _finish(run, parts, counters)


def _fit(run: RunDir, p: _Parts, c: _Counters) -> None:
    """The epochs left after the checkpoint: train, count, evaluate every ``eval_every``, checkpoint."""
    with run.progress.task("train", total=sum(e.iters for e in p.plan)) as task:
        task.advance(c.step)
        for epoch in range(c.epoch, len(p.plan)):
            ep = p.plan[epoch]
            p.sampler.set_epoch(epoch, ep.ratio, ep.iters * p.cfg.batch_size)
            torch.manual_seed(_seed_for(p.cfg.seed, epoch, p.info.rank))  # dropout: a function of (seed, epoch, rank)
            t0 = time.perf_counter()
            sums = _train_epoch(run, p, ep, epoch, c.step, task)
            loss_sum, steps, supp, seen = all_reduce_sum([sums.loss, sums.steps, sums.supp, sums.seen], p.device)
            c.epoch, c.step = epoch + 1, c.step + ep.iters
            c.seen_supp, c.seen_all = c.seen_supp + int(supp), c.seen_all + int(seen)
            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "phase": ep.phase,
                "iter": c.step,
                "loss": loss_sum / max(steps, 1),
                "lr": sums.lr,
                "supp_share": supp / max(seen, 1),
                "seconds": round(time.perf_counter() - t0, 3),
            }
            if epoch + 1 < len(p.plan) and (epoch + 1) % p.cfg.eval_every == 0:
                entry["miou"] = _evaluate(p, run.progress)["miou"]
            c.history.append(entry)
            run.log("epoch", **entry)
            state = {
                "model": p.model.state_dict(),
                "optimizer": p.opt.state_dict(),
                "history": c.history,
                "seen": {"supp": c.seen_supp, "total": c.seen_all},
            }
            run.save_checkpoint(epoch=c.epoch, step=c.step, state=state)


def _train_epoch(run: RunDir, p: _Parts, ep: EpochPlan, epoch: int, start_step: int, task: ProgressTask) -> _EpochSums:
    """One epoch of this process's batches, with the poly LR set per step."""
    cfg = p.cfg
    p.net.train()
    loss_sum = torch.zeros((), device=p.device)
    supp = seen = steps = 0
    lr = cfg.lr
    for k, batch in enumerate(p.loader):
        if k >= ep.iters:  # an iteration budget can cut the last epoch short
            break
        factor = poly_factor(ep.phase_offset + k, ep.phase_iters, cfg.poly_power)
        for g in p.opt.param_groups:
            g["lr"] = cfg.lr * g["lr_scale"] * factor
        lr = cfg.lr * factor
        loss = train_step(p.net, p.opt, batch["image"], batch["label"], p.device)
        loss_sum += loss
        steps += 1
        supp += int(batch["supp"].sum())
        seen += len(batch["supp"])
        if (k + 1) % cfg.log_every == 0 or k + 1 == ep.iters:
            value = float(loss)  # a device sync only every log_every steps
            run.log("train", epoch=epoch + 1, iter=start_step + k + 1, loss=value, lr=lr)
            task.advance(1, loss=value, lr=lr)
        else:
            task.advance(1)
    return _EpochSums(float(loss_sum), steps, supp, seen, lr)


def _evaluate(p: _Parts, progress: Progress, pred_dir: Path | None = None) -> dict[str, Any]:
    """Score the val split (every process its slice, the matrix summed over processes)."""
    cm: ConfusionMatrix = evaluate_split(
        p.model,
        p.val,
        p.inputs.label_space,
        device=p.device,
        mode=p.cfg.eval_mode,
        crop=p.cfg.crop,
        flip=p.cfg.flip,
        workers=min(p.cfg.workers, 2),
        rank=p.info.rank,
        world=p.info.world,
        pred_dir=pred_dir,
        progress=progress,
    )
    cm.all_reduce()
    return metrics_summary(cm, p.inputs.label_space.class_names)


def _finish(run: RunDir, p: _Parts, c: _Counters) -> dict[str, Any]:
    """The final evaluation, metrics.json and _SUCCESS; returns the metrics."""
    pred_dir = run.path / "predictions" if p.cfg.save_predictions else None
    summary = _evaluate(p, run.progress, pred_dir)
    if c.history:
        c.history[-1]["miou"] = summary["miou"]
    data = p.inputs.data_summary()
    data["supp_share_seen"] = c.seen_supp / max(c.seen_all, 1)
    extra = {
        "config": config_to_dict(p.cfg),
        "data": data,
        "augmented_classes": p.inputs.augmented_classes(),
        "history": c.history,
        "seed": p.cfg.seed,
        "labelforge_version": __version__,
    }
    run.log("eval", epoch=len(p.plan), miou=summary["miou"], pixel_accuracy=summary["pixel_accuracy"])
    if run.is_main:
        write_metrics(run.path / "metrics.json", summary, **extra)
    run.finish({"miou": summary["miou"], "iters": c.step})
    return to_jsonable({"schema": METRICS_SCHEMA, **summary, **extra})
