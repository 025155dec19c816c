"""The two summary files of a batch run: ``results.csv`` for scripts, ``index.html`` for people.

Both are written whole or not at all. The page is static (no JavaScript), opens from disk, and shows
every case's QC picture with its numbers, failures first.
"""

from __future__ import annotations

import csv
import html
import io
import os
import urllib.parse
from pathlib import Path

from ..io.writers import write_atomic

__all__ = ["CSV_COLUMNS", "write_results_csv", "write_index_html"]

CSV_COLUMNS = (
    "id", "input", "status", "error",
    "right_ml", "left_ml", "total_ml", "right_cm2", "left_cm2", "total_cm2",
    "mean_hu", "laa950_pct", "time_s", "flags", "mask", "qc",
)
"""Columns of ``results.csv``: volumes in ml for 3D cases, areas in cm² for 2D ones; empty = unknown."""

_DECIMALS = {"time_s": 3, "mean_hu": 2, "laa950_pct": 3}
_DEFAULT_DECIMALS = 4


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{_DECIMALS.get(column, _DEFAULT_DECIMALS)}f}"
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)
    return str(value)


def _csv_record(row: dict) -> dict[str, str]:
    outputs = row.get("outputs") or {}
    record = {c: _cell(c, row.get(c)) for c in CSV_COLUMNS}
    record["mask"] = outputs.get("mask", "")
    record["qc"] = outputs.get("qc", "")
    return record


def write_results_csv(rows: list[dict], path: str | os.PathLike) -> Path:
    """Write one line per case (columns ``CSV_COLUMNS``) to ``path``, atomically; returns the path.

    Examples
    --------
    >>> import tempfile
    >>> p = write_results_csv([{"id": "a.png", "status": "ok", "right_cm2": 12.5, "flags": ["x", "y"]}],
    ...                       Path(tempfile.mkdtemp()) / "results.csv")
    >>> p.read_text().splitlines()[1]
    'a.png,,ok,,,,,12.5000,,,,,,x;y,,'
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(_csv_record(row))
    text = buf.getvalue()
    return write_atomic(path, lambda fh: fh.write(text))


_CSS = """
body{font:13px/1.35 system-ui,sans-serif;margin:12px;background:#f4f4f4;color:#222}
h1{font-size:18px;margin:0 0 4px} p.sum{margin:0 0 10px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:8px}
.case{background:#fff;border:1px solid #ccc;border-radius:4px;padding:6px;overflow-wrap:anywhere}
.case.failed{border:2px solid #c62828;background:#fff3f3} .case.nolung{border:2px solid #e0a000}
.case img{width:100%;height:170px;object-fit:contain;background:#000;display:block}
.noimg{height:170px;display:flex;align-items:center;justify-content:center;background:#ddd;color:#666}
.id{font-weight:600;margin:4px 0 2px} .err{color:#b71c1c} .flags{color:#8a5a00} .st{float:right;color:#555}
"""


def _numbers_line(row: dict) -> str:
    parts = []
    for unit in ("ml", "cm2"):
        if row.get(f"total_{unit}") is not None:
            shown = "cm²" if unit == "cm2" else unit
            parts.append(f"R {row[f'right_{unit}']:.0f} · L {row[f'left_{unit}']:.0f} · "
                         f"total {row[f'total_{unit}']:.0f} {shown}")
    if row.get("mean_hu") is not None:
        parts.append(f"mean {row['mean_hu']:.0f} HU")
    if row.get("laa950_pct") is not None:
        parts.append(f"LAA-950 {row['laa950_pct']:.1f}%")
    if row.get("time_s") is not None:
        parts.append(f"{row['time_s']:.1f} s")
    return " | ".join(parts)


def _card(row: dict) -> str:
    esc = html.escape
    qc = (row.get("outputs") or {}).get("qc")
    if qc and row["status"] != "failed":
        src = esc(urllib.parse.quote(qc))
        picture = f'<a href="{src}"><img src="{src}" loading="lazy" alt="QC of {esc(row["id"])}"></a>'
    else:
        picture = '<div class="noimg">no QC picture</div>'
    empty = " nolung" if "no_lung_found" in (row.get("flags") or ()) else ""
    lines = [f'<div class="case {esc(row["status"])}{empty}">', picture,
             f'<div class="id"><span class="st">{esc(row["status"])}</span>{esc(row["id"])}</div>']
    numbers = _numbers_line(row)
    if numbers:
        lines.append(f"<div>{esc(numbers)}</div>")
    if row.get("flags"):
        lines.append(f'<div class="flags">{esc(", ".join(row["flags"]))}</div>')
    if row.get("error"):
        lines.append(f'<div class="err">{esc(row["error"])}</div>')
    lines.append("</div>")
    return "".join(lines)


def write_index_html(rows: list[dict], path: str | os.PathLike, *, title: str = "lungseg batch",
                     n_cases: int | None = None, interrupted: bool = False) -> Path:
    """Write a static review page: one card per case (QC thumbnail, numbers, flags, error), failures first,
    then cases where no lung was found.

    Image links are relative to the page, so the output folder can be moved or opened from disk.
    Every text is HTML-escaped.

    Parameters
    ----------
    rows : list of dict
        Rows as returned by ``run_batch`` (output paths relative to the page's folder).
    path : path
        The HTML file to write (atomically).
    title : str
    n_cases : int, optional
        Cases found; shown when more than the rows handled (an interrupted run).
    interrupted : bool
        Say on the page that the run did not finish.
    """
    esc = html.escape
    ordered = sorted(rows, key=lambda r: (r["status"] != "failed", "no_lung_found" not in (r.get("flags") or ()), r["id"]))
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in ("ok", "skipped-done", "failed")}
    summary = f"{len(rows)} cases: {counts['ok']} segmented, {counts['skipped-done']} already done, {counts['failed']} failed"
    if interrupted:
        summary += f" (run interrupted: {len(rows)} of {n_cases if n_cases is not None else '?'} cases handled)"
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="sum">{esc(summary)}. Failures first (red), then no lung found (amber); click a picture to enlarge it. '
        'Numbers also in <a href="results.csv">results.csv</a>.</p>',
        '<div class="grid">',
        *(_card(r) for r in ordered),
        "</div></body></html>",
        "",
    ]
    text = "\n".join(page)
    return write_atomic(path, lambda fh: fh.write(text))
