"""Report tables as markdown (report.md) and as rich tables (the terminal).

IoU values are shown in percent with two decimals, changes in percentage points against the
baseline (``+1.34``). In the per-class table the classes are rows and the runs columns (19 rows
read better than 19 columns); a cell of a class that the run augmented is bold in markdown and
yellow in the terminal. Seed groups show ``mean ± std``.

Example:
    >>> fmt_pct(0.77312), fmt_delta(0.0134)
    ('77.31', '+1.34')
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from .build import Entry, Report

__all__ = [
    "fmt_pct",
    "fmt_delta",
    "markdown_report",
    "summary_rich_table",
    "per_class_rich_table",
    "metrics_rich_table",
    "class_set_note",
]

NA = "n/a"


def fmt_pct(v: float | None, std: float | None = None) -> str:
    if v is None:
        return NA
    return f"{100 * v:.2f}" if std is None else f"{100 * v:.2f} ± {100 * std:.2f}"


def fmt_delta(d: float | None) -> str:
    # Rounded first so that a change below 0.005 points prints as +0.00, never as -0.00.
    return "" if d is None else f"{round(100 * d, 2) + 0.0:+.2f}"


def _cell(report: Report, e: Entry, cls: str) -> str:
    value = fmt_pct(e.per_class.get(cls), e.per_class_std.get(cls))
    delta = report.class_delta(e, cls)
    return value if e is report.baseline or delta is None else f"{value} ({fmt_delta(delta)})"


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _summary_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    with_ratio = any(e.ratio is not None for e in report.entries)
    header = ["run", "seeds", "mIoU", f"Δ vs {report.baseline.name}", "pixel acc.", "augmented classes"]
    if with_ratio:
        header.insert(5, "supp ratio")
    rows = []
    for e in report.entries:
        row = [
            e.name,
            str(e.n),
            fmt_pct(e.miou, e.miou_std),
            "baseline" if e is report.baseline else fmt_delta(report.delta(e)),
            fmt_pct(e.pixel_accuracy),
            ", ".join(e.augmented_classes) or "-",
        ]
        if with_ratio:
            row.insert(5, "-" if e.ratio is None else f"{e.ratio:g}")
        rows.append(row)
    return header, rows


def class_set_note(report: Report) -> str:
    """Which classes every mIoU of the report averages, which it leaves out, and which runs' own
    figures were re-averaged to match."""
    n = len(report.miou_classes)
    note = f"mIoU averages the {n} classes present in the ground truth of every run"
    left = report.left_out()
    if left:
        note += "; left out: " + ", ".join(f"{c} (absent from {', '.join(runs)})" for c, runs in left.items())
    again = report.re_averaged()
    if again:
        names = ", ".join(f"{r.name} ({fmt_pct(r.miou)})" for r in again)
        note += f"; re-averaged over this set from another class set (own mIoU): {names}"
    return note + "."


def markdown_report(report: Report, figures: list[str] | None = None) -> str:
    """The whole report.md: summary table, per-class table, figures, and how to read them."""
    lines = [f"# {report.title}", ""]
    lines += [
        "IoU in percent on the evaluation split; changes in percentage points against the baseline "
        f"**{report.baseline.name}**. Bold cells: classes the run augmented. "
        "Seed groups: mean ± sample standard deviation.",
        "",
        "## mIoU",
        "",
    ]
    header, rows = _summary_rows(report)
    lines += [_md_row(header), _md_row(["---"] * len(header)), *(_md_row(r) for r in rows), ""]
    lines += [class_set_note(report) + " Classes: " + ", ".join(report.miou_classes) + ".", ""]
    lines += ["## Per-class IoU", ""]
    header = ["class", *(e.name for e in report.entries)]
    lines += [_md_row(header), _md_row(["---"] * len(header))]
    for cls in report.classes:
        cells = [cls]
        for e in report.entries:
            cell = _cell(report, e, cls)
            cells.append(f"**{cell}**" if cls in e.augmented_classes and cell != NA else cell)
        lines.append(_md_row(cells))
    miou_cells = ["**mIoU**"]
    for e in report.entries:
        v = fmt_pct(e.miou, e.miou_std)
        miou_cells.append(v if e is report.baseline or e.miou is None else f"{v} ({fmt_delta(report.delta(e))})")
    lines += [_md_row(miou_cells), ""]
    if report.ratio_points:
        lines += ["## mIoU against supplementary ratio", "", _md_row(["supp ratio", "runs", "mIoU"])]
        lines += [_md_row(["---"] * 3)]
        lines += [_md_row([f"{p.ratio:g}", str(p.n), fmt_pct(p.miou, p.miou_std)]) for p in report.ratio_points]
        lines.append("")
    if figures:
        lines += ["## Figures", ""] + [f"![{f}]({f})" for f in figures] + [""]
    lines += ["## Runs", ""]
    for e in report.entries:
        for r in e.runs:
            seed = "" if r.seed is None else f" (seed {r.seed})"
            lines.append(f"- {e.name}: `{r.path}`{seed}")
    return "\n".join(lines) + "\n"


def _colour_delta(text: str, d: float | None) -> str:
    if d is None or not text:
        return text
    return f"[green]{text}[/]" if round(100 * d, 2) > 0 else f"[red]{text}[/]" if round(100 * d, 2) < 0 else text


def summary_rich_table(report: Report) -> Table:
    header, rows = _summary_rows(report)
    table = Table(title=report.title, title_justify="left", caption=class_set_note(report), caption_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i in (0, len(header) - 1) else "right")
    for e, row in zip(report.entries, rows, strict=True):
        if e is not report.baseline:
            row[3] = _colour_delta(row[3], report.delta(e))
        table.add_row(*row)
    return table


def per_class_rich_table(report: Report) -> Table:
    table = Table(title="per-class IoU (augmented classes in yellow)", title_justify="left")
    table.add_column("class")
    for e in report.entries:
        table.add_column(e.name, justify="right")
    for cls in report.classes:
        cells = [cls]
        for e in report.entries:
            value = fmt_pct(e.per_class.get(cls), e.per_class_std.get(cls))
            if e is not report.baseline and e.per_class.get(cls) is not None:
                d = report.class_delta(e, cls)
                value += f" ({_colour_delta(fmt_delta(d), d)})"
            cells.append(f"[bold yellow]{value}[/]" if cls in e.augmented_classes else value)
        table.add_row(*cells)
    table.add_section()
    cells = []
    for e in report.entries:
        value, d = fmt_pct(e.miou, e.miou_std), report.delta(e)
        cells.append(value if e is report.baseline or d is None else f"{value} ({_colour_delta(fmt_delta(d), d)})")
    table.add_row("mIoU", *cells)
    return table


def metrics_rich_table(metrics: dict[str, Any], title: str = "") -> Table:
    """One metrics.json as a table: per-class IoU and accuracy, then mIoU and pixel accuracy."""
    table = Table(title=title or None, title_justify="left")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    table.add_column("accuracy", justify="right")
    acc = metrics.get("per_class_accuracy") or {}
    for cls, v in metrics["per_class_iou"].items():
        table.add_row(cls, fmt_pct(v), fmt_pct(acc.get(cls)))
    table.add_section()
    table.add_row("[bold]mIoU[/]", f"[bold]{fmt_pct(metrics.get('miou'))}[/]", fmt_pct(metrics.get("mean_accuracy")))
    table.add_row("pixel accuracy", "", fmt_pct(metrics.get("pixel_accuracy")))
    return table
