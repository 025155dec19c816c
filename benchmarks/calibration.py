"""Calibration benchmark: pseudo-HU of min-max normalised slices against hand-drawn lung references.

Data: ``../shared/data/kmader`` (213 axial slices, 64×64, each min-max normalised to 0..1, many with
a circular field of view whose padding is the darkest value; ``y_train.npy`` holds the lungs).

Each slice goes through ``lungseg.intensity.to_hu`` as a 2D image. Then, per slice:

* lung: the median pseudo-HU of the reference-lung pixels (``y > 0.5``) must be below -500;
* body: the median pseudo-HU of the non-lung body pixels must be above -300.

"Body" is defined from the normalised slice and the reference alone, never from the calibration's
output: pixels brighter than a neutral Otsu threshold, after removing the reference lung and the
dark regions connected to the image border (outside air or padding), keeping the largest component
and filling its holes, minus the reference lung. The threshold is found in two steps: a first Otsu
split over the slice finds the dark border-connected part (padding or outside air), a second Otsu
split over the remaining pixels separates air (lung, air inside the field of view) from tissue.

Run: ``python benchmarks/calibration.py [DATA_DIR]``; prints a table and the worst slices, then the
time ``to_hu`` takes on the popi chest CT (141×512×512) when ``../shared/data/popi`` is there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from lungseg.intensity import to_hu
from lungseg.volume import Volume

LUNG_LIMIT_HU = -500.0
BODY_LIMIT_HU = -300.0
TARGET_FRAC = 0.98
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kmader"


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    folder = Path(argv[0]) if argv else DEFAULT_DATA
    x = np.load(folder / "x_train.npy")[..., 0]
    y = np.load(folder / "y_train.npy")[..., 0]
    t0 = time.perf_counter()
    rows = evaluate(x, y)
    seconds = time.perf_counter() - t0
    lung_ok = np.array([r["lung_hu"] < LUNG_LIMIT_HU for r in rows])
    body_ok = np.array([r["body_hu"] > BODY_LIMIT_HU for r in rows])
    both = lung_ok & body_ok
    n = len(rows)
    print(f"kmader calibration benchmark: {n} slices, {seconds:.2f} s ({1000 * seconds / n:.1f} ms per slice)")
    print(f"{'criterion':<40}{'slices':>8}{'percent':>9}")
    print(f"{'lung median < %g pseudo-HU' % LUNG_LIMIT_HU:<40}{lung_ok.sum():>8}{100 * lung_ok.mean():>8.1f}%")
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
    time_popi(folder.parent / "popi" / "series")
    return 0 if both.mean() >= TARGET_FRAC else 1


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
