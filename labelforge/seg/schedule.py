"""The epoch plan of a run: which phase, which supplementary share, how many iterations, and the poly LR.

* ``mixed``: one training set. Each epoch holds every original once plus supplementary draws
  making up ``supp_ratio`` of the epoch (``None``: every sample once, the natural share).
* ``pretrain-finetune`` (the paper's): epochs over the supplementary samples alone, then epochs
  over the originals alone. ``pretrain_epochs`` sets the split (default: half of the run). Each
  phase has its own poly schedule from the base LR, as two consecutive trainings would.

With ``iters`` the run stops after that many iterations: the last epoch is cut short.

Example:
    >>> from labelforge.seg.presets import resolve_config
    >>> from labelforge.seg.schedule import plan_epochs
    >>> cfg = resolve_config("tiny", root="r", out="o", supp=["s"], schedule="pretrain-finetune", epochs=3,
    ...                      batch_size=2)
    >>> [(e.phase, e.ratio, e.iters) for e in plan_epochs(cfg, n_orig=4, n_supp=6)]
    [('pretrain', 1.0, 3), ('finetune', 0.0, 2), ('finetune', 0.0, 2)]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .._runtime import per_process_batch
from ..errors import LabelforgeError
from .data import epoch_length
from .presets import TrainEvalConfig

__all__ = ["EpochPlan", "plan_epochs", "poly_factor"]


@dataclass(frozen=True)
class EpochPlan:
    phase: str  # "mixed" | "pretrain" | "finetune"
    ratio: float  # share of supplementary samples
    iters: int  # optimizer steps in this epoch (global batches)
    phase_offset: int  # steps of the same phase before this epoch
    phase_iters: int  # steps of the whole phase (the poly schedule's horizon)


def _phase(name: str, ratio: float, ipe: int, n_epochs: int | None, n_iters: int | None) -> list[EpochPlan]:
    """Epochs of ``ipe`` steps: ``n_epochs`` of them, or as many as ``n_iters`` steps need (last one cut)."""
    if n_iters is None:
        assert n_epochs is not None
        steps = [ipe] * n_epochs
    else:
        full, rest = divmod(n_iters, ipe)
        steps = [ipe] * full + ([rest] if rest else [])
    total = sum(steps)
    return [EpochPlan(name, ratio, s, sum(steps[:i]), total) for i, s in enumerate(steps)]


def plan_epochs(cfg: TrainEvalConfig, *, n_orig: int, n_supp: int, world: int = 1) -> list[EpochPlan]:
    """The whole run, epoch by epoch. Raises when the batch cannot be split over ``world`` processes."""
    b = cfg.batch_size
    if per_process_batch(b, world) < 2:
        raise LabelforgeError(f"--batch-size {b} gives {b // world} sample per process; batch norm needs 2")

    def ipe(n: int) -> int:
        return max(1, n // b)  # full batches only; a source smaller than a batch still gives one

    if cfg.schedule == "mixed":
        ratio = cfg.supp_ratio if cfg.supp_ratio is not None else n_supp / max(n_orig + n_supp, 1)
        if n_supp == 0:
            ratio = 0.0
        return _phase("mixed", ratio, ipe(epoch_length(n_orig, n_supp, cfg.supp_ratio)), cfg.epochs, cfg.iters)

    ipe_s, ipe_o = ipe(n_supp), ipe(n_orig)
    if cfg.epochs is not None:
        if cfg.epochs < 2:
            raise LabelforgeError("--schedule pretrain-finetune needs at least 2 epochs")
        k = cfg.pretrain_epochs if cfg.pretrain_epochs is not None else max(1, cfg.epochs // 2)
        return _phase("pretrain", 1.0, ipe_s, k, None) + _phase("finetune", 0.0, ipe_o, cfg.epochs - k, None)
    assert cfg.iters is not None
    k = cfg.pretrain_epochs if cfg.pretrain_epochs is not None else max(1, round(cfg.iters / 2 / ipe_s))
    pre = min(k * ipe_s, cfg.iters - 1) if cfg.pretrain_epochs is None else k * ipe_s
    if pre < 1 or cfg.iters - pre < 1:
        raise LabelforgeError(f"pre-training takes {pre} of the {cfg.iters} iterations; both phases need at least one")
    return _phase("pretrain", 1.0, ipe_s, None, pre) + _phase("finetune", 0.0, ipe_o, None, cfg.iters - pre)


def poly_factor(step: int, horizon: int, power: float) -> float:
    """Poly decay ``(1 - step / horizon) ** power`` of the base LR at 0-based ``step``."""
    return math.pow(max(0.0, 1.0 - step / max(horizon, 1)), power)
