"""Report figures as PNG: per-class IoU per run (paper Fig. 5) and mIoU against supplementary ratio (Fig. 7).

matplotlib is imported inside the functions (and through its object API, not pyplot, so no GUI
backend or global figure state is involved). Files are rendered in memory and written atomically.

Example:
    >>> from labelforge.report.plots import plot_per_class  # doctest: +SKIP
    >>> plot_per_class(report, "out/per_class_iou.png")  # doctest: +SKIP
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from cityscapes_tools.io import atomic_write_bytes

from .build import Report

__all__ = ["plot_per_class", "plot_miou_vs_ratio"]


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig: Any, path: str | Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _pct(v: float | None) -> float:
    return float("nan") if v is None else 100 * v


def plot_per_class(report: Report, path: str | Path) -> None:
    """Grouped bars: one group per class, one bar per entry; augmented classes' bars edged in black."""
    classes, entries = report.classes, report.entries
    fig, ax = _figure(min(16.0, max(8.0, 0.45 * len(classes) * max(1, len(entries)) ** 0.5 + 2)), 5.0)
    width = 0.8 / len(entries)
    xs = range(len(classes))
    for k, e in enumerate(entries):
        pos = [x - 0.4 + width * (k + 0.5) for x in xs]
        heights = [_pct(e.per_class.get(c)) for c in classes]
        errs = [0.0 if e.per_class_std.get(c) is None else 100 * e.per_class_std[c] for c in classes]
        edges = ["black" if c in e.augmented_classes else "none" for c in classes]
        ax.bar(
            pos,
            heights,
            width,
            yerr=errs if any(errs) else None,
            label=f"{e.name} ({_pct(e.miou):.2f})",
            edgecolor=edges,
            linewidth=1.2,
            capsize=2,
        )
    ax.set_xticks(list(xs), classes, rotation=45, ha="right")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 118)  # headroom above 100 so the legend never hides a bar
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(f"{report.title}: per-class IoU (black edge: augmented class)")
    ax.legend(title="run (mIoU)", fontsize="small", ncols=min(4, len(entries)), loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def plot_miou_vs_ratio(report: Report, path: str | Path) -> None:
    """mIoU (mean ± std over seeds) against the share of supplementary samples."""
    pts = report.ratio_points
    fig, ax = _figure(6.0, 4.0)
    x = [100 * p.ratio for p in pts]
    y = [_pct(p.miou) for p in pts]
    err = [0.0 if p.miou_std is None else 100 * p.miou_std for p in pts]
    ax.errorbar(x, y, yerr=err if any(err) else None, marker="o", capsize=3)
    for xi, yi, p in zip(x, y, pts, strict=True):
        ax.annotate(
            f"{yi:.2f}" + (f" (n={p.n})" if p.n > 1 else ""), (xi, yi), textcoords="offset points", xytext=(0, 6)
        )
    ax.set_xlabel("supplementary share of training samples (%)")
    ax.set_ylabel("mIoU (%)")
    ax.set_title(f"{report.title}: mIoU against supplementary ratio")
    ax.grid(alpha=0.3)
    _save(fig, path)
