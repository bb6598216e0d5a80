"""report.html: the experiment report as one self-contained page (figures embedded as base64, no external files).

Example:
    >>> from labelforge.report.experiment_html import html_report  # doctest: +SKIP
    >>> page = html_report(report, {"ratio_curve.png": png_bytes})  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
from typing import Any

from .experiment_tables import Cell, class_table, dataset_table, legend, quality_legend, quality_table, summary_table

__all__ = ["html_report"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #f3f3f3; }
td.up { color: #0a6b2e; font-weight: bold; }
td.down { color: #a4161a; font-weight: bold; }
p.legend { color: #555; font-size: 0.9em; }
img { max-width: 100%; border: 1px solid #ddd; }
"""

_FIGURES = {
    "ratio_curve.png": "mIoU and rare-class mIoU against the supplementary ratio (paper Fig. 7)",
    "training_data.png": "What each condition trains on: the first samples of epoch 0, photo beside label",
}


def _table(header: list[str], rows: list[list[Cell]]) -> str:
    def td(c: Cell) -> str:
        cls = ""
        if c.strong:
            cls = ' class="up"' if c.sign > 0 else ' class="down"'
        return f"<td{cls}>{html.escape(c)}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(td(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _runs(doc: dict[str, Any]) -> str:
    items = []
    for r in doc["rows"]:
        runs = ", ".join(f"s{s}: {html.escape(p)}" for s, p in zip(r["seeds"], r["runs"], strict=True))
        items.append(f"<li><b>{html.escape(r['label'])}</b>: {runs}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def html_report(rep: Any, figures: dict[str, bytes]) -> str:
    doc = rep.to_dict()
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(doc['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(doc['title'])}</h1>",
        f"<p class='legend'>{html.escape(legend(doc))} Green: a gain beyond the seed spread; red: a loss.</p>",
        "<h2>Conditions (Table 1)</h2>",
        _table(*summary_table(doc)),
    ]
    quality = quality_table(doc)
    if quality[1]:
        parts += [
            "<h2>Render quality of the training shards</h2>",
            f"<p class='legend'>{html.escape(quality_legend(doc))}</p>",
            _table(*quality),
        ]
    parts += [
        "<h2>Rare classes, IoU per condition (Table 2)</h2>",
        _table(*class_table(doc)),
        "<h2>The rare classes in the data</h2>",
        _table(*dataset_table(doc)),
    ]
    if doc["notes"]:
        parts += ["<h2>Notes</h2><ul>", *[f"<li>{html.escape(n)}</li>" for n in doc["notes"]], "</ul>"]
    for name, data in figures.items():
        caption = _FIGURES.get(name, name)
        b64 = base64.b64encode(data).decode("ascii")
        parts += [
            f"<h2>{html.escape(caption)}</h2>",
            f"<img alt='{html.escape(name)}' src='data:image/png;base64,{b64}'>",
        ]
    parts += ["<h2>Runs</h2>", _runs(doc), "</body></html>"]
    return "\n".join(parts) + "\n"
