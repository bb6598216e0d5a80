"""stats.png in the spirit of the paper's Fig. 3: appearance frequency per class, IoU overlaid.

Bars are sorted by appearance frequency in the reference source; with several sources (splits, or a
dataset and its composed shards) the bars are grouped so the shift shows. IoU, when given, is drawn
as markers on a second axis. Recommended classes have red tick labels, other rare ones orange.
matplotlib is imported inside :func:`render_figure` only, so ``labelforge stats`` starts fast.

Example:
    >>> from labelforge.stats.figure import render_figure  # doctest: +SKIP
    >>> png = render_figure(result); png[:4]  # doctest: +SKIP
    b'\\x89PNG'
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .result import StatsResult

__all__ = ["render_figure"]


def render_figure(res: StatsResult, dpi: int = 110) -> bytes:
    """PNG bytes of the frequency figure (Agg canvas: no display, no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    classes = res.by_appearance()
    names = [c.cls.name for c in classes]
    x = np.arange(len(classes))
    k = len(res.sources)
    fig = Figure(figsize=(max(7.0, 0.42 * len(classes) + 2.5), 4.8), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()

    width = 0.8 / k
    for j, s in enumerate(res.sources):
        values = [c.sources[s.name].appearance_freq for c in classes]
        # One source: the classes' own colours, as in the paper; several: one colour per source.
        own = [np.asarray(c.cls.color) / 255.0 for c in classes]
        colors = own if k == 1 else [f"C{j % 10}"] * len(classes)
        ax.bar(x - 0.4 + width * (j + 0.5), values, width, color=colors, edgecolor="0.25", linewidth=0.4, label=s.name)
    ax.axhline(res.thresholds.rare_appearance, color="0.4", linestyle="--", linewidth=0.8)
    ax.text(len(classes) - 0.5, res.thresholds.rare_appearance, " rare", va="bottom", ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_xlim(-0.6, len(classes) - 0.4)
    ax.set_ylabel("appearance frequency (share of images)")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
    for tick, c in zip(ax.get_xticklabels(), classes, strict=True):
        if c.recommended:
            tick.set_color("red")
            tick.set_fontweight("bold")
        elif c.rare:
            tick.set_color("darkorange")
    handles, labels = ax.get_legend_handles_labels()

    if res.iou is not None:
        ax2 = ax.twinx()
        iou = np.array([np.nan if c.iou is None else c.iou for c in classes], dtype=float)
        ax2.plot(x, iou, color="black", marker="o", markersize=4, linewidth=1.0, label="IoU")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("IoU")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    if k > 1 or res.iou is not None:
        ax.legend(handles, labels, fontsize=8, loc="upper right", framealpha=0.9)

    title = f"{res.label_space.name}: class appearance frequency ({res.reference})"
    if res.correlation is not None and res.correlation.spearman is not None:
        title += f"; Spearman vs IoU {res.correlation.spearman:.2f}"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
