"""``train_eval``: train PSPNet on originals (+ supplementary shards), evaluate on val, write a run dir.

RUN_DIR holds ``run.json`` (the resolved config), ``log.jsonl`` (one JSON object per log event),
``checkpoint.pt`` (rewritten atomically after every epoch: model, optimizer, epoch, iteration,
history, sample counts, config), ``metrics.json`` and ``_SUCCESS``; with ``save_predictions`` also
``predictions/{city}/{key}_pred_labelIds.png``.

Resuming restores the model, optimizer and counters from the last finished epoch; everything random
after that point is derived from ``(seed, epoch)`` (sampler order, per-sample augmentation, dropout),
so on CPU a resumed run ends with the same weights and metrics as an uninterrupted one.

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

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from cityscapes_tools.io import atomic_write_bytes

from .. import __version__
from .. import _runtime as _dist
from ..errors import InputError
from ..outputs import atomic_write_json, is_finished, mark_finished, prepare_output
from ..progress import Progress
from .data import MixSampler, PairTransform, TrainData, ValData, make_sampler, normalize
from .metrics import METRICS_SCHEMA, ConfusionMatrix, metrics_summary, to_jsonable, write_metrics
from .predict import autocast_for, evaluate_split
from .presets import RESUME_FREE_FIELDS, TrainEvalConfig, config_to_dict
from .pspnet import PSPNet, pspnet, seg_loss
from .schedule import EpochPlan, plan_epochs, poly_factor
from .sources import RunInputs, check_inputs

__all__ = ["train_eval", "train_step", "train_loader", "CHECKPOINT", "CHECKPOINT_SCHEMA"]

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_SCHEMA = "labelforge.pspnet-checkpoint/1"


def _seed_for(*parts: int) -> int:
    return int(np.random.default_rng(list(parts)).integers(0, 2**62))


class _RunLog:
    """Appends JSON lines to RUN_DIR/log.jsonl (rank 0 only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, **record: Any) -> None:
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps({"time": round(time.time(), 3), **record}) + "\n")


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, cfg: TrainEvalConfig) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: torch raises many types
        raise InputError(path, f"cannot read checkpoint ({type(exc).__name__}); rerun with --overwrite") from None
    if not isinstance(state, dict) or state.get("schema") != CHECKPOINT_SCHEMA:
        raise InputError(path, "not a labelforge PSPNet checkpoint")
    saved, now = state["config"], config_to_dict(cfg)
    changed = [k for k in now if k not in RESUME_FREE_FIELDS and saved.get(k) != now[k]]
    if changed:
        k = changed[0]
        raise InputError(
            path, f"the run was started with {k}={saved.get(k)!r}, not {now[k]!r}; resume with the same settings"
        )
    return state


def _build_model(cfg: TrainEvalConfig, inputs: RunInputs, device: torch.device, info: _dist.DistInfo) -> PSPNet:
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
        batch_size=cfg.batch_size // world,
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


def _train_epoch(
    model: torch.nn.Module,
    loader: DataLoader,
    opt: torch.optim.Optimizer,
    cfg: TrainEvalConfig,
    ep: EpochPlan,
    device: torch.device,
    task: Any,
    log: _RunLog,
    epoch: int,
    start_iter: int,
) -> tuple[float, float, int, int, float]:
    """One epoch; returns this process's (loss sum, steps, supplementary samples, samples, last lr)."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    supp = seen = steps = 0
    lr = cfg.lr
    for k, batch in enumerate(loader):
        if k >= ep.iters:  # an iteration budget can cut the last epoch short
            break
        factor = poly_factor(ep.phase_offset + k, ep.phase_iters, cfg.poly_power)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * g["lr_scale"] * factor
        lr = cfg.lr * factor
        loss = train_step(model, opt, batch["image"], batch["label"], device)
        loss_sum += loss
        steps += 1
        supp += int(batch["supp"].sum())
        seen += len(batch["supp"])
        if (k + 1) % cfg.log_every == 0 or k + 1 == ep.iters:
            value = float(loss)  # a device sync only every log_every steps
            log.write(event="train", epoch=epoch + 1, iter=start_iter + k + 1, loss=value, lr=lr)
            task.advance(1, loss=value, lr=lr)
        else:
            task.advance(1)
    return float(loss_sum), float(steps), supp, seen, lr


def _evaluate(
    model: torch.nn.Module,
    val: ValData,
    cfg: TrainEvalConfig,
    inputs: RunInputs,
    device: torch.device,
    info: _dist.DistInfo,
    progress: Progress,
    pred_dir: Path | None = None,
) -> dict[str, Any]:
    net = model.module if isinstance(model, DistributedDataParallel) else model
    cm: ConfusionMatrix = evaluate_split(
        net,
        val,
        inputs.label_space,
        device=device,
        mode=cfg.eval_mode,
        crop=cfg.crop,
        flip=cfg.flip,
        workers=min(cfg.workers, 2),
        rank=info.rank,
        world=info.world,
        pred_dir=pred_dir,
        progress=progress,
    )
    cm.all_reduce()
    return metrics_summary(cm, inputs.label_space.class_names)


def train_eval(
    cfg: TrainEvalConfig, *, overwrite: bool = False, resume: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Train and evaluate as ``cfg`` says; returns the metrics.json content.

    Inputs are checked before RUN_DIR is created, so bad input leaves nothing behind.

    Example:
        >>> metrics = train_eval(resolve_config("tiny", root="data/mini", out="runs/a"))  # doctest: +SKIP
    """
    info = _dist.dist_info()
    device = _dist.resolve_device(cfg.device, info.local_rank)
    inputs = check_inputs(cfg)
    n_supp = sum(len(s) for s in inputs.shards)
    plan = plan_epochs(cfg, n_orig=len(inputs.train), n_supp=n_supp, world=info.world)
    _dist.init_distributed(info, device)
    try:
        return _run(cfg, inputs, plan, device, info, overwrite, resume, progress or Progress())
    finally:
        _dist.shutdown(info)


def _run(
    cfg: TrainEvalConfig,
    inputs: RunInputs,
    plan: list[EpochPlan],
    device: torch.device,
    info: _dist.DistInfo,
    overwrite: bool,
    resume: bool,
    progress: Progress,
) -> dict[str, Any]:
    out = Path(cfg.out)
    if info.is_main:
        prepare_output(out, overwrite=overwrite, resume=resume)
    _dist.barrier(info)
    if resume and is_finished(out):
        progress.log(f"{out} is finished; nothing to resume")
        return json.loads((out / "metrics.json").read_text())
    if not info.is_main:
        progress = Progress()
    state = _load_checkpoint(out / CHECKPOINT, cfg) if resume and (out / CHECKPOINT).exists() else None
    config = config_to_dict(cfg)
    log = _RunLog(out / "log.jsonl" if info.is_main else None)
    if info.is_main:
        atomic_write_json(out / "run.json", {**config, "labelforge_version": __version__, "world_size": info.world})

    model = _build_model(cfg, inputs, device, info)
    opt = torch.optim.SGD(model.param_groups(cfg.lr), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    start_epoch, it, history, seen_supp, seen_all = 0, 0, [], 0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, it, history = state["epoch"], state["iter"], state["history"]
        seen_supp, seen_all = state["seen"]["supp"], state["seen"]["total"]
        progress.log(f"resuming {out} after epoch {start_epoch} of {len(plan)}")
        log.write(event="resume", epoch=start_epoch, iter=it)
    net = model
    if info.enabled:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    train_data = TrainData(inputs.train, inputs.shards, inputs.label_space, PairTransform(cfg.size, cfg.crop, cfg.aug))
    val_data = ValData(inputs.val, inputs.label_space, cfg.size)
    sampler = make_sampler(cfg, train_data, info.rank, info.world)
    loader = train_loader(train_data, sampler, cfg, device, info.world)
    if not history:
        log.write(event="start", config=config, epochs=len(plan), iters=sum(e.iters for e in plan))
    total_iters = sum(e.iters for e in plan)
    with progress.task("train", total=total_iters) as task:
        task.advance(it)
        for epoch in range(start_epoch, len(plan)):
            ep = plan[epoch]
            sampler.set_epoch(epoch, ep.ratio, ep.iters * cfg.batch_size)
            torch.manual_seed(_seed_for(cfg.seed, epoch, info.rank))  # dropout: a function of (seed, epoch, rank)
            t0 = time.perf_counter()
            sums = _train_epoch(net, loader, opt, cfg, ep, device, task, log, epoch, it)
            loss_sum, steps, supp, seen = _dist.all_reduce_sum(list(sums[:4]), info, device)
            it += ep.iters
            seen_supp, seen_all = seen_supp + int(supp), seen_all + int(seen)
            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "phase": ep.phase,
                "iter": it,
                "loss": loss_sum / max(steps, 1),
                "lr": sums[4],
                "supp_share": supp / max(seen, 1),
                "seconds": round(time.perf_counter() - t0, 3),
            }
            last = epoch + 1 == len(plan)
            if not last and (epoch + 1) % cfg.eval_every == 0:
                summary = _evaluate(net, val_data, cfg, inputs, device, info, progress)
                entry["miou"] = summary["miou"]
            history.append(entry)
            log.write(event="epoch", **entry)
            if info.is_main:
                _save_checkpoint(
                    out / CHECKPOINT,
                    {
                        "schema": CHECKPOINT_SCHEMA,
                        "config": config,
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "epoch": epoch + 1,
                        "iter": it,
                        "history": history,
                        "seen": {"supp": seen_supp, "total": seen_all},
                        "sampler": {"seed": cfg.seed, "next_epoch": epoch + 1},
                        "labelspace_fingerprint": inputs.label_space.fingerprint,
                        "labelforge_version": __version__,
                    },
                )
            _dist.barrier(info)

    pred_dir = out / "predictions" if cfg.save_predictions else None
    summary = _evaluate(net, val_data, cfg, inputs, device, info, progress, pred_dir)
    if history:
        history[-1]["miou"] = summary["miou"]
    data = inputs.data_summary()
    data["supp_share_seen"] = seen_supp / max(seen_all, 1)
    extra = {
        "config": config,
        "data": data,
        "augmented_classes": inputs.augmented_classes(),
        "history": history,
        "seed": cfg.seed,
        "labelforge_version": __version__,
    }
    if info.is_main:
        log.write(event="eval", miou=summary["miou"], pixel_accuracy=summary["pixel_accuracy"])
        write_metrics(out / "metrics.json", summary, **extra)
        mark_finished(out, {"miou": summary["miou"], "iters": it})
    _dist.barrier(info)
    return to_jsonable({"schema": METRICS_SCHEMA, **summary, **extra})
