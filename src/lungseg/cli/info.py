"""``lungseg info INPUT [--json]``: what the input is, and how lungseg will read it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import add_read_options

_LABEL_WIDTH = 13
_MAX_SERIES_SHOWN = 12
"""A folder tree with more series than this lists the chosen one and the first others (all with --json)."""


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="describe an input and how lungseg will read it")
    p.add_argument("input", help="DICOM folder or file, NIfTI, NRRD, MetaImage, NumPy, PNG/JPEG/TIFF/BMP")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    add_read_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..api import describe

    info = describe(args.input, series_uid=args.series_uid, spacing=args.spacing, force=args.force,
                    window=args.window, hu=args.hu)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_info(info))
    return 0


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value + 0.0:.4g}"  # + 0.0 turns -0.0 into 0.0
    return str(value)


def _row(label: str, value: Any, indent: str = "  ") -> str:
    return f"{indent}{label + ' ':<{_LABEL_WIDTH}}{value}"


def _series_lines(info: dict) -> list[str]:
    series = info.get("series") or []
    chosen = info.get("chosen_series")
    lines = [_row("series", f"{len(series)} found" + (f"; reading {chosen}" if chosen else ""))]
    if info.get("choice"):
        lines.append(_row("", f"(rule: {info['choice']})"))
    shown = sorted(series, key=lambda s: s["uid"] != chosen)[:_MAX_SERIES_SHOWN]
    for s in sorted(shown, key=series.index):
        mark = "*" if s["uid"] == chosen else "-"
        thickness = f", {_num(s['slice_thickness_mm'])} mm slices" if s.get("slice_thickness_mm") else ""
        desc = f' "{s["description"]}"' if s.get("description") else ""
        lines.append(f"    {mark} {s['uid']}")
        lines.append(f"        {s.get('modality') or '?'} {s['orientation']}, {s['images']} image(s) of {s['size']}"
                     f"{thickness}{desc}")
        lines.append(f"        in {s['folder']}")
        if s.get("skipped"):
            lines.append(f"        skipped: {s['skipped']}")
    if len(series) > len(shown):
        lines.append(f"    ... and {len(series) - len(shown)} more series (--json lists them all)")
    return lines


def _grid_lines(grid: dict) -> list[str]:
    from ..volume import orientation_codes

    import numpy as np

    shape = grid["shape"]
    axes = "(slices × rows × columns)" if len(shape) == 3 else "(rows × columns)"
    spacing = " × ".join(_num(s) for s in grid["spacing_mm"]) + " mm"
    if not grid.get("spacing_known", True):
        spacing += " (unknown: not in the file; give --spacing)"
    direction = np.asarray(grid["direction"], float).reshape(3, 3)
    orient = orientation_codes(direction)
    if not np.allclose(direction, np.eye(3)):
        orient += " (direction " + " ".join(_num(float(d)) for d in direction.ravel()) + ")"
    lo, hi = grid["value_range"]
    return [
        "grid",
        _row("shape", " × ".join(map(str, shape)) + f" {axes}"),
        _row("spacing", spacing),
        _row("origin", "(" + ", ".join(_num(o) for o in grid["origin_mm"]) + ") mm, LPS"),
        _row("orientation", orient),
        _row("values", f"{grid['dtype']}, {_num(lo)} to {_num(hi)}"),
    ]


def _generic(value: Any, indent: str) -> list[str]:
    """``key value`` lines of a nested dict; dicts and lists of dicts get their own indented block."""
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{indent}{key}")
            lines += _generic(item, indent + "  ")
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], dict):
            lines.append(f"{indent}{key}")
            for member in item:
                lines += _generic(member, indent + "  ")
        elif isinstance(item, (list, tuple, dict)):
            lines.append(_row(str(key), ", ".join(map(_num, item)) if item else "none", indent))
        else:
            lines.append(_row(str(key), _num(item), indent))
    return lines


def format_info(info: dict) -> str:
    """Human-readable text of what :func:`lungseg.api.describe` returns.

    Known sections (format, DICOM series, grid, intensity, warnings) get their own layout; any other
    key is printed as ``key value`` lines.
    """
    info = dict(info)
    lines = [f"input: {info.pop('path', '?')}"]
    fmt = info.pop("format", "?")
    files = []
    if "dicom_files" in info:
        files.append(f"{info.pop('dicom_files')} DICOM file(s)")
    if "other_files" in info:
        files.append(f"{info.pop('other_files')} other file(s)")
    if "bytes" in info:
        files.append(f"{info.pop('bytes'):,} bytes")
    lines.append(_row("format", fmt + (f" ({', '.join(files)})" if files else "")))
    if "series" in info:
        lines += _series_lines(info)
        for key in ("series", "chosen_series", "choice"):
            info.pop(key, None)
    grid = info.pop("grid", None)
    intensity = info.pop("intensity", None)
    warnings = info.pop("warnings", None)
    lines += _generic(info, "  ")
    if grid:
        lines += _grid_lines(grid)
    if intensity:
        lines.append("intensity")
        lines += _generic(intensity, "  ")
    if warnings:
        lines.append("warnings")
        lines += [f"  - {w}" for w in warnings]
    return "\n".join(lines)
