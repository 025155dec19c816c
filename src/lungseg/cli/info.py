"""``lungseg info INPUT [--json]``: what the input is, and how lungseg will read it."""

from __future__ import annotations

import argparse
import json

from ._common import add_read_options


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


def format_info(info: dict, indent: str = "") -> str:
    """Human-readable, indented ``key: value`` lines of a nested description."""
    lines = []
    for key, value in info.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(format_info(value, indent + "  "))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{indent}{key}:")
            for i, item in enumerate(value):
                lines.append(f"{indent}  [{i}]")
                lines.append(format_info(item, indent + "    "))
        else:
            lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines)
