"""Calibration benchmark: pseudo-HU of min-max normalised slices against hand-drawn lung references.

Data: ``../shared/data/kmader`` (213 axial slices, 64×64, each min-max normalised to 0..1, many with
a circular field of view whose padding is the darkest value; ``y_train.npy`` holds the lungs).

Each slice goes through ``lungseg.intensity.to_hu`` as a 2D image. Then, per slice:

* lung: the median pseudo-HU of the reference-lung pixels (``y > 0.5``) must be below -500, and above
  -1024 (``AIR_HU``, the value of padding and outside air: a lung pushed down there is lost);
* body: the median pseudo-HU of the non-lung body pixels must be above -300.

"Body" is defined from the normalised slice and the reference alone, never from the calibration's
output: pixels brighter than a neutral Otsu threshold, after removing the reference lung and the
dark regions connected to the image border (outside air or padding), keeping the largest component
and filling its holes, minus the reference lung. The threshold is found in two steps: a first Otsu
split over the slice finds the dark border-connected part (padding or outside air), a second Otsu
split over the remaining pixels separates air (lung, air inside the field of view) from tissue.

A second table is a stress check on real HU slices turned into pictures: the 50 ``ct-medical-images``
and 30 ``covid-ny-sbu`` slices (chest, abdomen, pelvis; axial, coronal, sagittal; padding -1024 to
-3024), each saved as 8-bit with the windows in ``STRESS_WINDOWS_HU`` (of the padding-fixed HU image, so
the padding is as dark as air) and min-max normalised to 0..1 (of the stored values, so the padding is
the darkest value), at full size and resized to 64×64 (Pillow, bilinear). The same two criteria are
checked against the original HU slice: lung pixels are those below ``LUNG_BELOW_HU`` inside the body
(not connected to the image border), body pixels the rest of the body (the largest region not connected
to the border through air, holes filled). For a resized picture the HU slice is resized the same way
and the masks are taken from it. A slice without lung pixels only has to meet the body criterion.

Run: ``python benchmarks/calibration.py [DATA_DIR]`` (DATA_DIR holds ``kmader``, ``ct-medical-images``,
``covid-ny-sbu``, ``popi``); prints both tables, the worst slices and failures, then the time ``to_hu``
takes on the popi chest CT (141×512×512) when ``popi`` is there.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from lungseg.intensity import AIR_HU, to_hu
from lungseg.volume import Volume

LUNG_LIMIT_HU = -500.0
BODY_LIMIT_HU = -300.0
TARGET_FRAC = 0.98
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STRESS_WINDOWS_HU = ((-1200.0, 600.0), (-1000.0, 400.0), (-1350.0, 150.0), (-1024.0, 3071.0))
LUNG_BELOW_HU = -400.0
"""Stress check: a pixel of the original HU slice below this, inside the body, is a lung pixel."""
SMALL_SIZE = 64
MIN_LUNG_FRAC = 0.002
"""Stress check: fewer lung pixels than this fraction of the image means "no lung" (body criterion only)."""


def otsu(values: np.ndarray, nbins: int = 256) -> float:
    """Otsu's threshold of ``values`` (independent of lungseg's own)."""
    hist, edges = np.histogram(values, bins=nbins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    m0 = s0 / np.maximum(w0, 1)
    m1 = (s0[-1] - s0) / np.maximum(w1, 1)
    return float(edges[int(np.argmax((w0 * w1 * (m0 - m1) ** 2)[:-1])) + 1])


def border_connected(mask: np.ndarray) -> np.ndarray:
    labels, _ = ndi.label(mask, structure=np.ones((3, 3)))
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge[edge > 0])


def body_mask(image: np.ndarray, lung: np.ndarray) -> np.ndarray:
    """Non-lung body pixels of one normalised slice, from the image and the reference only."""
    outer = border_connected(image <= otsu(image))
    if np.count_nonzero(~outer) < 16:
        return np.zeros(image.shape, bool)
    bright = ((image > otsu(image[~outer])) | lung) & ~outer
    labels, n = ndi.label(bright)
    if n == 0:
        return np.zeros(image.shape, bool)
    largest = labels == (1 + int(np.argmax(ndi.sum(np.ones_like(labels), labels, range(1, n + 1)))))
    return ndi.binary_fill_holes(largest | lung) & ~lung & ~outer


def evaluate(x: np.ndarray, y: np.ndarray) -> list[dict]:
    rows = []
    for i in range(x.shape[0]):
        image = x[i]
        lung = y[i] > 0.5
        hu, info = to_hu(Volume(image, (1.0, 1.0)))
        body = body_mask(image, lung)
        rows.append({
            "slice": i,
            "lung_hu": float(np.median(hu[lung])) if lung.any() else float("nan"),
            "body_hu": float(np.median(hu[body])) if body.any() else float("nan"),
            "flags": ",".join(f for f in info.flags if f != "intensity_calibrated"),
        })
    return rows


def meets(row: dict) -> tuple[bool, bool]:
    """(lung criterion met, body criterion met); a slice without lung pixels meets the lung one.

    Lung pixels at ``AIR_HU`` (-1024, where padding and outside air go) fail: the segmentation cannot
    tell them from outside air."""
    lung = bool(np.isnan(row["lung_hu"]) and not row.get("lung_required", True)) or AIR_HU < row["lung_hu"] < LUNG_LIMIT_HU
    return lung, bool(row["body_hu"] > BODY_LIMIT_HU)


def stress_slices(root: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, stored values, HU with padding fixed) of every ct-medical-images and covid-ny-sbu slice."""
    import lungseg

    files = sorted((root / "ct-medical-images").glob("*.dcm")) + sorted((root / "covid-ny-sbu").glob("*/*/*.dcm"))
    cases = []
    for path in files:
        ct = lungseg.read(path)
        raw = ct.array.reshape(ct.array.shape[-2:])
        hu, _ = to_hu(ct)
        cases.append((str(path.relative_to(root)), raw, hu.reshape(raw.shape)))
    return cases


def reference_masks(hu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lung, non-lung body) of an HU slice: air below ``LUNG_BELOW_HU`` not connected to the border is
    lung; the body is the largest region not reached from the border through air, holes filled."""
    air = hu < LUNG_BELOW_HU
    inside = ~border_connected(air)
    labels, n = ndi.label(inside)
    if n == 0:
        empty = np.zeros(hu.shape, bool)
        return empty, empty
    body = ndi.binary_fill_holes(labels == 1 + int(np.argmax(np.bincount(labels.ravel())[1:])))
    return body & air, body & ~air


def encodings(raw: np.ndarray, hu: np.ndarray):
    """(name, picture) pairs: 8-bit windows of the HU slice, min-max normalised stored values."""
    for low, high in STRESS_WINDOWS_HU:
        yield f"8-bit [{low:g},{high:g}]", np.clip((hu - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    values = raw.astype(np.float32)
    yield "min-max 0..1", (values - values.min()) / (values.max() - values.min())


def resized(image: np.ndarray, size: int = SMALL_SIZE) -> np.ndarray:
    """``image`` resized to size×size with Pillow's bilinear filter, dtype kept."""
    from PIL import Image

    mode = "L" if image.dtype == np.uint8 else "F"
    small = Image.fromarray(image if mode == "L" else image.astype(np.float32), mode).resize((size, size), Image.BILINEAR)
    return np.asarray(small).astype(image.dtype)


def stress(root: Path) -> list[dict]:
    """One row per slice, encoding and size (full, 64×64) of the stress check."""
    rows = []
    for name, raw, hu in stress_slices(root):
        for size in ("full", f"{SMALL_SIZE}x{SMALL_SIZE}"):
            truth = hu if size == "full" else resized(hu.astype(np.float32))
            lung, body = reference_masks(truth)
            has_lung = np.count_nonzero(lung) >= MIN_LUNG_FRAC * lung.size
            for encoding, picture in encodings(raw, hu):
                if size != "full":
                    picture = resized(picture)
                out, info = to_hu(Volume(picture, (1.0, 1.0), metadata={"bit_depth": 8} if picture.dtype == np.uint8 else {}))
                rows.append({
                    "slice": name, "encoding": encoding, "size": size, "lung_required": has_lung,
                    "true_lung_hu": float(np.median(truth[lung])) if has_lung else float("nan"),
                    "true_body_hu": float(np.median(truth[body])) if body.any() else float("nan"),
                    "lung_hu": float(np.median(out[lung])) if has_lung else float("nan"),
                    "body_hu": float(np.median(out[body])) if body.any() else float("nan"),
                    "flags": ",".join(f for f in info.flags if f != "intensity_calibrated"),
                    "anchor": info.details.get("landmarks", {}).get("anchor", "-"),
                })
    return rows


def print_kmader(folder: Path) -> bool:
    """Print the kmader table; True when the target is met."""
    x = np.load(folder / "x_train.npy")[..., 0]
    y = np.load(folder / "y_train.npy")[..., 0]
    t0 = time.perf_counter()
    rows = evaluate(x, y)
    seconds = time.perf_counter() - t0
    ok = np.array([meets(r) for r in rows])
    lung_ok, body_ok = ok[:, 0], ok[:, 1]
    both = lung_ok & body_ok
    n = len(rows)
    print(f"kmader calibration benchmark: {n} slices, {seconds:.2f} s ({1000 * seconds / n:.1f} ms per slice)")
    print(f"{'criterion':<40}{'slices':>8}{'percent':>9}")
    print(f"{'%g < lung median < %g pseudo-HU' % (AIR_HU, LUNG_LIMIT_HU):<40}{lung_ok.sum():>8}{100 * lung_ok.mean():>8.1f}%")
    print(f"{'body median > %g pseudo-HU' % BODY_LIMIT_HU:<40}{body_ok.sum():>8}{100 * body_ok.mean():>8.1f}%")
    print(f"{'both':<40}{both.sum():>8}{100 * both.mean():>8.1f}%   (target {100 * TARGET_FRAC:.0f}%)")
    lung_hu = np.array([r["lung_hu"] for r in rows])
    body_hu = np.array([r["body_hu"] for r in rows])
    print(f"lung median pseudo-HU over slices: median {np.nanmedian(lung_hu):.0f}, max {np.nanmax(lung_hu):.0f}")
    print(f"body median pseudo-HU over slices: median {np.nanmedian(body_hu):.0f}, min {np.nanmin(body_hu):.0f}")
    print("worst slices (by margin to the limits):")
    margin = np.minimum(LUNG_LIMIT_HU - np.nan_to_num(lung_hu, nan=-1e9), np.nan_to_num(body_hu, nan=1e9) - BODY_LIMIT_HU)
    print(f"  {'slice':>5}{'lung_hu':>9}{'body_hu':>9}  flags")
    for k in np.argsort(margin)[:5]:
        r = rows[int(k)]
        print(f"  {r['slice']:>5}{r['lung_hu']:>9.0f}{r['body_hu']:>9.0f}  {r['flags'] or '-'}")
    return bool(both.mean() >= TARGET_FRAC)


def print_stress(root: Path) -> None:
    """Print the stress table: percent of slices meeting both criteria per encoding and size."""
    t0 = time.perf_counter()
    rows = stress(root)
    seconds = time.perf_counter() - t0
    n_slices = len({r["slice"] for r in rows})
    print(f"\nstress check: {n_slices} real HU slices as pictures, {len(rows)} calibrations, {seconds:.1f} s")
    sizes = list(dict.fromkeys(r["size"] for r in rows))
    print(f"{'encoding':<24}" + "".join(f"{size + ' both met':>20}" for size in sizes))
    for encoding in dict.fromkeys(r["encoding"] for r in rows):
        cells = []
        for size in sizes:
            ok = [all(meets(r)) for r in rows if r["encoding"] == encoding and r["size"] == size]
            cells.append(f"{sum(ok)}/{len(ok)} {100 * np.mean(ok):5.1f}%")
        print(f"{encoding:<24}" + "".join(f"{c:>20}" for c in cells))
    failures = [r for r in rows if not all(meets(r))]
    print(f"failures ({len(failures)}):")
    for r in failures:
        print(f"  {r['slice']:<48}{r['encoding']:<20}{r['size']:>6}  lung {r['lung_hu']:6.0f} (HU {r['true_lung_hu']:5.0f})"
              f"  body {r['body_hu']:5.0f} (HU {r['true_body_hu']:4.0f})  anchor {r['anchor']}  {r['flags'] or '-'}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.getLogger("lungseg").setLevel(logging.ERROR)  # the calibration warnings are expected here
    root = Path(argv[0]) if argv else DEFAULT_DATA
    met = print_kmader(root / "kmader")
    if (root / "ct-medical-images").is_dir() and (root / "covid-ny-sbu").is_dir():
        print_stress(root)
    else:
        print(f"\nstress check: {root}/ct-medical-images or covid-ny-sbu not found, skipped")
    time_popi(root / "popi" / "series")
    return 0 if met else 1


def time_popi(series: Path, runs: int = 5) -> None:
    """Seconds ``to_hu`` takes on the whole popi chest CT (141×512×512 int16), when it is there."""
    import lungseg
    from lungseg.errors import LungsegError

    if not series.is_dir():
        print(f"speed: {series} not found, skipped")
        return
    try:
        ct = lungseg.read(series)
    except LungsegError as err:
        print(f"speed: cannot read {series}: {err}")
        return
    seconds = []
    for _ in range(runs):
        t0 = time.perf_counter()
        _, info = to_hu(ct)
        seconds.append(time.perf_counter() - t0)
    print(f"speed: to_hu on popi {ct.shape} {ct.array.dtype}: first {seconds[0]:.3f} s, "
          f"median of {runs} {np.median(seconds):.3f} s (path {info.path}, flags {list(info.flags)})")


if __name__ == "__main__":
    raise SystemExit(main())
