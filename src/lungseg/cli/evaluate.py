"""``lungseg evaluate PRED REF [--json]``: score a lung mask against a reference mask."""

from __future__ import annotations

import argparse
import json

from ..measure import CONVENTIONS
from ._common import spacing_type

_ROWS = (("right", "right lung"), ("left", "left lung"), ("whole", "whole lung"))


def add_parser(sub) -> None:
    conventions = "; ".join(f"{name}: {text}" for name, text in CONVENTIONS.items())
    p = sub.add_parser(
        "evaluate",
        help="score a lung mask against a reference: Dice, HD95, ASSD, volume difference",
        description="Dice, 95th-percentile Hausdorff distance, average symmetric surface distance (mm) and volume "
        "difference, per lung and for the whole lung. Label conventions: " + conventions,
    )
    p.add_argument("pred", help="the mask to score (any format lungseg reads)")
    p.add_argument("ref", help="the reference mask")
    p.add_argument("--pred-convention", choices=tuple(CONVENTIONS), default="lungmask",
                   help="label values of PRED (default lungmask: 1 right, 2 left)")
    p.add_argument("--ref-convention", choices=tuple(CONVENTIONS), default="lungmask",
                   help="label values of REF (default lungmask: 1 right, 2 left)")
    p.add_argument("--resample", action="store_true",
                   help="resample REF onto PRED's grid (nearest neighbour) when the grids differ, instead of refusing")
    p.add_argument("--spacing", type=spacing_type, metavar="MM",
                   help="pixel/voxel size in mm for masks stored without one (PNG, NumPy): 0.7 or 2.5,0.7,0.7")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..io import read
    from ..measure import align_reference, compare_labels, to_lungmask

    pred = read(args.pred, spacing=args.spacing)
    ref = align_reference(pred, read(args.ref, spacing=args.spacing), resample=args.resample)
    scores = compare_labels(to_lungmask(pred.array, args.pred_convention),
                            to_lungmask(ref.array, args.ref_convention), pred.spacing)
    spacing_known = bool(pred.metadata.get("spacing_known", True))
    if args.json:
        result = {"pred": str(args.pred), "ref": str(args.ref), "pred_convention": args.pred_convention,
                  "ref_convention": args.ref_convention, "resampled": bool(ref.metadata.get("resampled", False)),
                  "spacing_mm": list(pred.spacing), "spacing_known": spacing_known, "scores": scores}
        print(json.dumps(result, indent=2))
    else:
        print(format_scores(scores))
        if not spacing_known:
            print(f"note: {args.pred} has no pixel size: distances and sizes assume 1 mm pixels (give --spacing MM)")
    return 0


def _cell(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_scores(scores: dict) -> str:
    """A small table of :func:`lungseg.measure.compare_labels` output, with any notes below it."""
    unit = "cm2" if "pred_cm2" in scores["whole"] else "ml"
    diff = "area_diff" if unit == "cm2" else "volume_diff"
    header = f"{'':12} {'Dice':>7} {'HD95 mm':>8} {'ASSD mm':>8} {'pred ' + unit:>10} {'ref ' + unit:>10} {'diff ' + unit:>10} {'diff %':>7}"
    lines = [header]
    notes = []
    for key, name in _ROWS:
        s = scores[key]
        lines.append(
            f"{name:12} {_cell(s['dice'], 4):>7} {_cell(s['hd95_mm'], 2):>8} {_cell(s['assd_mm'], 2):>8} "
            f"{_cell(s[f'pred_{unit}'], 1):>10} {_cell(s[f'ref_{unit}'], 1):>10} {_cell(s[f'{diff}_{unit}'], 1):>10} "
            f"{_cell(s[f'{diff}_pct'], 2):>7}"
        )
        if s.get("note"):
            notes.append(f"{name}: {s['note']}")
    return "\n".join(lines + notes)
