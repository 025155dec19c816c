"""Accuracy of lungseg and two baselines on the real cases in ../shared/data; prints one table per dataset.

    python benchmarks/accuracy.py [DATA_DIR]
"""

from __future__ import annotations

import csv
import logging
import sys
from pathlib import Path

import numpy as np

import lungseg

sys.path.insert(0, str(Path(__file__).parent))
from baselines import kmeans_recipe, threshold_recipe  # noqa: E402

DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "data"


def dice(a, b) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r) + " |")


def cip() -> None:
    ct = lungseg.read(DATA / "cip" / "ct-64.nrrd")
    whole = lungseg.read(DATA / "cip" / "wholeLung-64.nrrd").array > 0
    lm = lungseg.read(DATA / "cip" / "lm-64.nrrd").array.astype(np.int64)
    region, kind = lm & 255, lm >> 8
    right, left, trachea = np.isin(region, (12, 13, 14)), np.isin(region, (9, 10, 11)), (region == 0) & (kind == 2)
    res = lungseg.segment(ct)
    rot = lungseg.segment(DATA / "cip" / "ct-64-transformed.nrrd")
    rows = [["lungseg", dice(res.lung, whole), dice(res.labels == 1, right), dice(res.labels == 2, left),
             f"{100 * res.lung[trachea].mean():.1f}%", f"{100 * (rot.labels == res.labels).mean():.2f}%"]]
    for name, fn in (("threshold -400", threshold_recipe), ("K-means recipe", kmeans_recipe)):
        m = fn(res.hu)
        rows.append([name, dice(m, whole), "-", "-", f"{100 * m[trachea].mean():.1f}%", "-"])
    table("cip/ct-64 (targets: whole >= 0.985, right/left >= 0.98, trachea <= 5%)",
          ["method", "Dice whole", "Dice right", "Dice left", "trachea in mask", "same labels on rotated"], rows)


def kmader() -> None:
    x = np.load(DATA / "kmader" / "x_train.npy")[..., 0]
    y = np.load(DATA / "kmader" / "y_train.npy")[..., 0] > 0.5
    scores = {"lungseg": [], "threshold -400": [], "K-means recipe": []}
    for img, ref in zip(x, y):
        res = lungseg.segment(img)
        scores["lungseg"].append(dice(res.lung, ref))
        scores["threshold -400"].append(dice(threshold_recipe(res.hu), ref))  # baselines get lungseg's pseudo-HU
        scores["K-means recipe"].append(dice(kmeans_recipe(res.hu), ref))
    rows = [[k, float(np.mean(v)), float(np.percentile(v, 5)), float(np.min(v))] for k, v in scores.items()]
    table(f"kmader ({len(x)} normalised 64x64 slices; targets: mean >= 0.97, 5th percentile >= 0.93)",
          ["method", "mean Dice", "5th percentile", "min"], rows)


def labelled_slices(folder: str) -> None:
    with open(DATA / folder / "LABELS.tsv", newline="") as fh:
        cases = list(csv.DictReader(fh, delimiter="\t"))
    counts = {m: {"none_empty": 0, "lung_found": 0, "two_lungs": 0} for m in ("lungseg", "threshold -400", "K-means recipe")}
    n_none = n_lung = n_large_axial = 0
    failures = []
    for case in cases:
        res = lungseg.segment(DATA / folder / case["file"])
        masks = {"lungseg": res.labels, "threshold -400": threshold_recipe(res.hu), "K-means recipe": kmeans_recipe(res.hu)}
        expect_none = case["lung_area"] == "none"
        both = case["lung_area"] == "large" and case["view"] in ("axial", "coronal")
        n_none += expect_none
        n_lung += not expect_none
        n_large_axial += both
        for name, m in masks.items():
            found = bool(m.any())
            if expect_none and not found:
                counts[name]["none_empty"] += 1
            if not expect_none and found:
                counts[name]["lung_found"] += 1
            if both and name == "lungseg" and {1, 2} <= set(np.unique(m).tolist()):
                counts[name]["two_lungs"] += 1
        if expect_none == bool(res.labels.any()):
            failures.append(f"{case['file']} ({case['lung_area']}, {case['view']})")
    rows = [[k, f"{v['none_empty']}/{n_none}", f"{v['lung_found']}/{n_lung}",
             f"{v['two_lungs']}/{n_large_axial}" if k == "lungseg" else "-"] for k, v in counts.items()]
    table(f"{folder} ({len(cases)} slices)", ["method", "'none' -> empty", "lung -> mask", "large axial/coronal -> 2 lungs"], rows)
    if failures:
        print("\nlungseg misses: " + "; ".join(failures))


def _percent(notes: str, pattern: str) -> float | None:
    import re

    found = re.search(pattern, notes)
    return float(found.group(1)) if found else None


def dense_pathology() -> None:
    """Axial HU slices whose LABELS.tsv pathology is ground glass or consolidation: are both lungs found, and how
    much of the slice's lung? Areas are shares of the body section (``res.body``); the notes give the aerated share
    (< -400 HU) for every slice and an "anatomic lung ~X%" for the densest ones."""
    rows = []
    for folder in ("ct-medical-images", "covid-ny-sbu"):
        with open(DATA / folder / "LABELS.tsv", newline="") as fh:
            cases = [c for c in csv.DictReader(fh, delimiter="\t")
                     if c["view"] == "axial" and {"ground glass", "consolidation"} & set(c["pathology"].split(","))]
        for case in cases:
            res = lungseg.segment(DATA / folder / case["file"])
            body = float(res.body.sum())
            found = 100 * res.lung.sum() / body
            aerated = 100 * threshold_recipe(res.hu).sum() / body
            anatomic = _percent(case["notes"], r"anatomic lung(?: area)? ~(\d+(?:\.\d+)?)%")
            noted = _percent(case["notes"], r"lung~(\d+(?:\.\d+)?)% of body")
            rows.append([f"{folder.split('-')[0]} {case['file'].split('_AGE')[0]}", case["pathology"],
                         "both" if {1, 2} <= set(np.unique(res.labels).tolist()) else "one" if res.lung.any() else "none",
                         f"{found:.1f}%", f"{aerated:.1f}%", f"{noted:.0f}%" if noted is not None else "-",
                         f"{anatomic:.0f}%" if anatomic is not None else "-",
                         f"{found / anatomic:.2f}" if anatomic else "-"])
    both = sum(r[2] == "both" for r in rows)
    ratios = [float(r[7]) for r in rows if r[7] != "-"]
    table(f"dense pathology: axial HU slices with ground glass or consolidation ({both}/{len(rows)} with both lungs; "
          f"found / anatomic lung {', '.join(f'{x:.2f}' for x in ratios)})",
          ["slice", "pathology", "lungs", "lungseg area", "threshold -400 area", "noted aerated", "noted anatomic", "lungseg / anatomic"], rows)


def converted_slices() -> None:
    """The labelled single slices of ct-medical-images and covid-ny-sbu as a user's pictures: 8-bit windowed to
    [-1200, 600] HU (no spacing, no orientation, like a PNG) and min-max normalised to 0..1 floats."""
    from lungseg.volume import Volume

    counts = {enc: {"none": 0, "lung": 0, "two": 0} for enc in ("8-bit", "min-max")}
    n = {"none": 0, "lung": 0, "two": 0}
    failures = []
    for folder in ("ct-medical-images", "covid-ny-sbu"):
        with open(DATA / folder / "LABELS.tsv", newline="") as fh:
            cases = list(csv.DictReader(fh, delimiter="\t"))
        for case in cases:
            stored = lungseg.read(DATA / folder / case["file"]).array
            hu = stored.reshape(-1, *stored.shape[-2:])[0].astype(np.float64)
            expect_none = case["lung_area"] == "none"
            both = case["lung_area"] == "large" and case["view"] in ("axial", "coronal")
            n["none" if expect_none else "lung"] += 1
            n["two"] += both
            pictures = {
                "8-bit": Volume(np.clip((hu + 1200) / 1800 * 255, 0, 255).astype(np.uint8), (1.0, 1.0),
                                metadata={"format": "png", "bit_depth": 8, "spacing_known": False}),
                "min-max": (hu - hu.min()) / (hu.max() - hu.min()),
            }
            for enc, picture in pictures.items():
                labels = lungseg.segment(picture).labels
                found = bool(labels.any())
                counts[enc]["none" if expect_none else "lung"] += found != expect_none
                counts[enc]["two"] += both and {1, 2} <= set(np.unique(labels).tolist())
                if found == expect_none:
                    failures.append(f"{case['file']} {enc} ({case['lung_area']}, {case['view']})")
    rows = [[enc, f"{c['none']}/{n['none']}", f"{c['lung']}/{n['lung']}", f"{c['two']}/{n['two']}"] for enc, c in counts.items()]
    table("ct-medical-images + covid-ny-sbu as 8-bit [-1200, 600] HU and min-max pictures (lungseg)",
          ["encoding", "'none' -> empty", "lung -> mask", "large axial/coronal -> 2 lungs"], rows)
    if failures:
        print("\nlungseg misses: " + "; ".join(failures))


def totalseg() -> None:
    res = lungseg.segment(DATA / "totalseg" / "example_ct.nii.gz")
    ref = lungseg.read(DATA / "totalseg" / "reference" / "lung.nii.gz").array > 0
    outside = res.lung & ~ref
    slices_ours = np.flatnonzero(res.lung.any(axis=(1, 2)))
    slices_ref = np.flatnonzero(ref.any(axis=(1, 2)))
    rows = [["lungseg", dice(res.lung, ref), int(outside.sum()),
             f"{slices_ours.min()}-{slices_ours.max()}" if slices_ours.size else "none",
             f"{slices_ref.min()}-{slices_ref.max()}", ", ".join(res.flags)]]
    table("totalseg/example_ct (lungs only where the reference has them)",
          ["method", "Dice vs reference lung", "voxels outside reference", "slices with lung", "reference slices", "flags"], rows)


def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    if not DATA.is_dir():
        print(f"no data folder at {DATA}")
        return
    cip()
    kmader()
    labelled_slices("ct-medical-images")
    labelled_slices("covid-ny-sbu")
    dense_pathology()
    converted_slices()
    totalseg()


if __name__ == "__main__":
    main()
