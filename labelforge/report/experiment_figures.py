"""Figures of the experiment report, as PNG bytes: the ratio curve (paper Fig. 7) and the training-data preview.

The preview shows what each condition's segmenter was fed: its first seed's run rebuilt from that
run's own config (data, resize, augmentation, sampler), epoch 0, the first samples the sampler
draws (for conditions with supplementary data, the first supplementary ones), photo beside label.

Example:
    >>> from labelforge.report.experiment_figures import ratio_curve_png  # doctest: +SKIP
    >>> png = ratio_curve_png(report)  # doctest: +SKIP
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

__all__ = ["ratio_curve_png", "preview_grid", "training_samples"]


def ratio_curve_png(rep: Any) -> bytes:
    """mIoU and rare mIoU (mean ± std over seeds) against the supplementary ratio, the baseline as a band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 4.2), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    base = rep.baseline
    rare = ", ".join(c for c in rep.classes if c in rep.class_set)
    for ax, key, title in ((axes[0], "miou", "mIoU"), (axes[1], "rare", f"rare mIoU ({rare})")):
        b = getattr(base, key)
        if b.mean is not None:
            ax.axhline(100 * b.mean, color="black", lw=1, label=f"{base.name} ({100 * b.mean:.2f})")
            if b.std:
                ax.axhspan(100 * (b.mean - b.std), 100 * (b.mean + b.std), color="black", alpha=0.08)
        for name, rows in rep.ratio_curves().items():
            scores = [getattr(r, key) for r in rows]
            x = [100 * (r.ratio or 0.0) for r in rows]
            y = [np.nan if s.mean is None else 100 * s.mean for s in scores]
            err = [0.0 if s.std is None else 100 * s.std for s in scores]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=name)
        ax.set_xlabel("supplementary share of training samples (%)")
        ax.set_ylabel(f"{title} (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(f"{rep.title}: against the supplementary ratio (mean ± std over seeds; band: baseline ± std)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def training_samples(config: dict[str, Any], k: int) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    """The first ``k`` (photo, train-id label, supplementary?) samples of epoch 0 of the run ``config`` describes."""
    from ..seg.data import PairTransform, TrainData, make_sampler
    from ..seg.presets import config_from_dict
    from ..seg.schedule import plan_epochs
    from ..seg.sources import check_inputs

    cfg = config_from_dict(config)
    inputs = check_inputs(cfg)
    data = TrainData(inputs.train, inputs.shards, inputs.label_space, PairTransform(cfg.size, cfg.crop, cfg.aug))
    sampler = make_sampler(cfg, data)
    ep = plan_epochs(cfg, n_orig=data.n_orig, n_supp=data.n_supp)[0]
    sampler.set_epoch(0, ep.ratio, ep.iters * cfg.batch_size)
    items = list(sampler)
    if data.n_supp:  # show what the condition adds
        items = [i for i in items if i[0] >= data.n_orig] + [i for i in items if i[0] < data.n_orig]
    out = []
    for item in items[:k]:
        s = data[item]
        out.append((s["image"].numpy().transpose(1, 2, 0), s["label"].numpy().astype(np.uint8), bool(s["supp"])))
    return out


def preview_grid(rep: Any, k: int, label_space: str | dict[str, Any]) -> bytes:
    """One row per condition: ``k`` training samples, each photo beside its label map (coloured by
    ``label_space``: a name, a file, or the dict of a resolved one)."""
    import cv2

    from ..labelspace import LabelSpace, get_label_space
    from ..preview import make_grid

    ls = LabelSpace.from_dict(label_space) if isinstance(label_space, dict) else get_label_space(label_space)
    rows: list[list[np.ndarray]] = []
    captions: list[list[str]] = []
    seen: set[str] = set()
    for r in rep.rows:
        if r.name in seen or not r.config:  # one row per condition (its first ratio)
            continue
        seen.add(r.name)
        row: list[np.ndarray] = []
        caption: list[str] = []
        for img, lab, supp in training_samples(r.config, k):
            row += [img, ls.palette[ls.train_id_to_id[lab]]]
            caption += [f"{r.label}: {'supplementary' if supp else 'original'}", ""]
        rows.append(row)
        captions.append(caption)
    first = rows[0][0]
    width = max(256, first.shape[1])
    grid = make_grid(rows, captions, cell_width=width)
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    assert ok
    return png.tobytes()
