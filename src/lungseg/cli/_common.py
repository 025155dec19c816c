"""Argument types and option groups shared by several commands."""

from __future__ import annotations

import argparse


def spacing_type(text: str) -> tuple[float, ...]:
    """``"0.7"`` or ``"2.5,0.7,0.7"`` (mm, plane,row,column order) -> tuple of positive floats."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"spacing must be numbers in mm separated by commas, got {text!r}") from None
    if not values or len(values) > 3 or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"spacing must be 1 to 3 positive numbers in mm, got {text!r}")
    return values


def window_type(text: str) -> tuple[float, float]:
    """``"-1200,600"`` -> (low, high) in HU, low < high."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"window must be LOW,HIGH in HU, e.g. -1200,600; got {text!r}") from None
    if not low < high:
        raise argparse.ArgumentTypeError(f"window LOW must be below HIGH, got {text!r}")
    return low, high


def positive_mm(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a distance in mm, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a distance cannot be negative, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_read_options(parser: argparse.ArgumentParser) -> None:
    """Options that say how to read an input."""
    g = parser.add_argument_group("reading the input")
    g.add_argument("--series", metavar="UID", dest="series_uid", help="DICOM SeriesInstanceUID to use when a folder holds several")
    g.add_argument("--spacing", type=spacing_type, metavar="MM", help="pixel/voxel size in mm for inputs without it (PNG, NumPy): 0.7 or 2.5,0.7,0.7")
    g.add_argument("--force", action="store_true", help="read images whose modality is not CT (MR, PET, ...) anyway")
    i = parser.add_argument_group("intensities")
    x = i.add_mutually_exclusive_group()
    x.add_argument("--window", type=window_type, metavar="LOW,HIGH", help="the HU window an 8-bit/normalised image was saved with, e.g. -1200,600")
    x.add_argument("--hu", action="store_true", help="the values are HU; do not calibrate")


def read_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of ``lungseg.read`` taken from parsed options."""
    return {"series_uid": args.series_uid, "spacing": args.spacing, "force": args.force}
