"""Tables of the experiment report, built from report.json's content: markdown, rich (terminal) and HTML share them.

Cells are strings: IoU in percent with two decimals (``mean ± std`` over seeds), changes in points
against the baseline, p-values of Welch's t-test over seeds. A change beyond the seed spread
(p < 0.05) is marked: bold in markdown and HTML, coloured in the terminal.

Example:
    >>> fmt_p(0.0123), fmt_p(0.0004), fmt_p(None)
    ('0.012', '<0.001', '–')
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Cell",
    "fmt_p",
    "summary_table",
    "class_table",
    "dataset_table",
    "quality_table",
    "quality_legend",
    "markdown_report",
    "legend",
]

NA = "–"


class Cell(str):
    """A table cell; ``strong`` marks a change beyond the seed spread, ``sign`` its direction."""

    strong: bool = False
    sign: int = 0

    @classmethod
    def of(cls, text: str, strong: bool = False, sign: int = 0) -> Cell:
        c = cls(text)
        c.strong, c.sign = strong, sign
        return c


def _pct(v: float | None, std: float | None = None) -> str:
    if v is None:
        return NA
    return f"{100 * v:.2f}" if std is None else f"{100 * v:.2f} ± {100 * std:.2f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return NA
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _delta(score: dict[str, Any]) -> Cell:
    d = score.get("delta")
    if d is None:
        return Cell.of("")
    text = f"{round(100 * d, 2) + 0.0:+.2f}"
    return Cell.of(text, bool(score.get("exceeds_spread")), (d > 0) - (d < 0))


def legend(doc: dict[str, Any]) -> str:
    n = len(doc["class_set"])
    rare = ", ".join(c for c in doc["classes"] if c in doc["class_set"])
    return (
        f"mIoU over the {n} classes present in the val ground truth; rare mIoU over {rare}. "
        f"Mean ± std over seeds; Δ in points against {doc['baseline']}; p: {doc['test']}. "
        "A Δ beyond the seed spread (p < 0.05) is marked."
    )


def summary_table(doc: dict[str, Any]) -> tuple[list[str], list[list[Cell]]]:
    """Table 1: one line per condition (x ratio x schedule)."""
    header = ["condition", "seeds", "mIoU", "Δ", "p", "rare mIoU", "Δ rare", "p rare"]
    rows = []
    for r in doc["rows"]:
        m, a = r["miou"], r["rare"]
        rows.append(
            [
                Cell.of(r["label"]),
                Cell.of(str(len(r["seeds"]))),
                Cell.of(_pct(m["mean"], m["std"])),
                _delta(m),
                Cell.of(fmt_p(m["p"]) if m.get("delta") is not None else ""),
                Cell.of(_pct(a["mean"], a["std"])),
                _delta(a),
                Cell.of(fmt_p(a["p"]) if a.get("delta") is not None else ""),
            ]
        )
    return header, rows


def class_table(doc: dict[str, Any]) -> tuple[list[str], list[list[Cell]]]:
    """Table 2: the rare classes as rows, the conditions as columns, ``IoU ± std (Δ)``."""
    header = ["class", *[r["label"] for r in doc["rows"]]]
    rows = []
    for c in doc["classes"]:
        if c not in doc["class_set"]:
            continue
        line = [Cell.of(c)]
        for r in doc["rows"]:
            s = r["per_class"][c]
            d = _delta(s)
            line.append(Cell.of(_pct(s["mean"], s["std"]) + (f" ({d})" if d else ""), d.strong, d.sign))
        rows.append(line)
    return header, rows


def dataset_table(doc: dict[str, Any]) -> tuple[list[str], list[list[Cell]]]:
    """The rare classes in the data: maps holding each class, and the baseline's IoU of it."""
    header = ["class", "train maps holding it", "val maps holding it", f"IoU ({doc['baseline']})"]
    base = next(r for r in doc["rows"] if r["label"] == doc["baseline"])
    rows = []
    for c in doc["classes"]:
        d = doc["dataset"].get(c, {})
        share = d.get("train_share")
        train = (
            NA
            if d.get("train_images") is None
            else f"{d['train_images']}" + (f" ({100 * share:.1f}%)" if share is not None else "")
        )
        iou = base["per_class"].get(c)
        rows.append(
            [
                Cell.of(c),
                Cell.of(train),
                Cell.of(NA if d.get("val_images") is None else str(d["val_images"])),
                Cell.of(_pct(iou["mean"], iou["std"]) if iou else "absent from val"),
            ]
        )
    return header, rows


def quality_legend(doc: dict[str, Any]) -> str:
    judge = doc.get("judge") or {}
    fd = next((r["quality"]["fd_label"] for r in doc["rows"] if r.get("quality")), "")
    return (
        f"Each condition's training shards as the judge sees them: the {judge.get('condition', 'baseline')} run of "
        f"seed {judge.get('seed', '?')} (trained on real photos only) segments their photos; consistency is the "
        "mIoU of its predictions against the label maps the photos were made from, over the augmented classes "
        f"and over the others (in %). Feature distance to the val photos: {fd}. A filter condition's training "
        "shards are measured after filtering (its dropped pixels are ignored); 'dropped' is the share of "
        "labelled pixels it marked ignore." + _blind_judge(doc)
    )


BLIND_IOU = 0.05  # a judge that finds a class below this IoU in real photos cannot grade renders of it


def _blind_judge(doc: dict[str, Any]) -> str:
    """A warning when the judge cannot see the augmented classes (then 'consistency augmented' reads ~0 for
    every row, the oracle's included, and says nothing about the renders)."""
    base = next(r for r in doc["rows"] if r["label"] == doc["baseline"])
    # The judge is the baseline's first-seed run: the first of its per-seed values.
    seen = {c: s["values"][0] for c in doc["classes"] if (s := base["per_class"].get(c)) and s.get("values")}
    seen = {c: v for c, v in seen.items() if v is not None}
    if not seen or max(seen.values()) >= BLIND_IOU:
        return ""
    ious = ", ".join(f"{c} {_pct(v)}" for c, v in seen.items())
    return (
        f" The judge itself finds the augmented classes in the val photos at IoU {ious}: below "
        f"{100 * BLIND_IOU:g}, its consistency on them cannot tell a faithful render from a poor one (for a "
        "judge that knows them, see docs/experiments.md, 'Why the generated data helps so little here')."
    )


def quality_table(doc: dict[str, Any]) -> tuple[list[str], list[list[Cell]]]:
    """Render quality beside each condition that trains on shards (one line per condition x ratio x schedule)."""
    header = ["condition", "consistency augmented", "consistency other", "feature distance", "dropped"]
    rows = []
    for r in doc["rows"]:
        q, f = r.get("quality"), r.get("filter")
        if q is None and f is None:
            continue
        rows.append(
            [
                Cell.of(r["label"]),
                Cell.of(_pct(q["augmented_miou"]) if q else NA),
                Cell.of(_pct(q["rest_miou"]) if q else NA),
                Cell.of(f"{q['fd']:.2f}" if q and q["fd"] is not None else NA),
                Cell.of(f"{100 * f['share']:.2f}% (x{f['factor']:g})" if f else ""),
            ]
        )
    return header, rows


def _md(header: list[str], rows: list[list[Cell]]) -> list[str]:
    def cell(c: Cell) -> str:
        text = c.replace("|", "\\|")
        return f"**{text}**" if c.strong and text else text

    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def markdown_report(rep: Any, figures: list[str]) -> str:
    """report.md: the tables, the notes, links to the figures."""
    doc = rep.to_dict()
    out = [f"# {doc['title']}", "", legend(doc), "", "## Conditions (Table 1)", "", *_md(*summary_table(doc))]
    quality = quality_table(doc)
    if quality[1]:
        out += ["", "## Render quality of the training shards", "", quality_legend(doc), "", *_md(*quality)]
    out += ["", "## Rare classes, IoU per condition (Table 2)", "", *_md(*class_table(doc))]
    out += ["", "## The rare classes in the data", "", *_md(*dataset_table(doc))]
    if doc["notes"]:
        out += ["", "## Notes", "", *[f"- {n}" for n in doc["notes"]]]
    if figures:
        out += ["", "## Figures", "", *[f"![{f}]({f})" for f in figures]]
    return "\n".join(out) + "\n"
