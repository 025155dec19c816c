"""Two classic lung-masking recipes, written from their published descriptions, for comparison tables.

* :func:`kmeans_recipe`: the Kaggle "K-means slice" recipe: per slice, clip HU to [-1200, 600] and
  normalise, threshold at the mean of 2-cluster K-means centres found on the central region, erosion then
  dilation, label regions, keep regions whose bounding box looks like lung, convex hull per slice... and
  "ten dilations" of the result.
* :func:`threshold_recipe`: -400 HU threshold, clear the border, keep the 2 largest components, fill holes.

Both return a boolean mask (no right/left) with the input's shape; they work in voxels as published.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _kmeans_threshold(values: np.ndarray, iterations: int = 20) -> float:
    """Threshold between two 1D K-means centres (the recipe's KMeans(n_clusters=2))."""
    lo, hi = float(values.min()), float(values.max())
    for _ in range(iterations):
        t = (lo + hi) / 2
        a, b = values[values <= t], values[values > t]
        if a.size == 0 or b.size == 0:
            break
        lo, hi = float(a.mean()), float(b.mean())
    return (lo + hi) / 2


def kmeans_slice(hu2d: np.ndarray) -> np.ndarray:
    """The K-means recipe on one slice."""
    img = np.clip(hu2d.astype(np.float32), -1200, 600)
    img = (img - img.mean()) / (img.std() + 1e-6)
    rows, cols = img.shape
    middle = img[rows // 5: rows * 4 // 5, cols // 5: cols * 4 // 5]
    threshold = _kmeans_threshold(middle.ravel())
    dark = img < threshold
    dark = ndi.binary_erosion(dark, np.ones((3, 3)))
    dark = ndi.binary_dilation(dark, np.ones((8, 8)))
    labels, n = ndi.label(dark)
    keep = np.zeros(n + 1, bool)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        h = box[0].stop - box[0].start
        w = box[1].stop - box[1].start
        # published rule: not touching the border, lung-sized box
        if h < rows * 0.9 and w < cols * 0.9 and box[0].start > rows * 0.05 and box[0].stop < rows * 0.95 \
                and box[1].start > cols * 0.05 and box[1].stop < cols * 0.95:
            keep[i] = True
    mask = keep[labels]
    mask = ndi.binary_dilation(mask, np.ones((10, 10)))
    return mask


def kmeans_recipe(hu: np.ndarray) -> np.ndarray:
    """The K-means slice recipe on a 2D slice or a 3D volume (slice by slice), then ten 3D dilations."""
    if hu.ndim == 2:
        return kmeans_slice(hu)
    mask = np.stack([kmeans_slice(s) for s in hu])
    return ndi.binary_dilation(mask, iterations=10)


def threshold_recipe(hu: np.ndarray) -> np.ndarray:
    """-400 HU, clear the border, keep the two largest components, fill holes (2D or 3D)."""
    import cc3d
    import fill_voids

    air = hu < -400
    labels = cc3d.connected_components(air, connectivity=6 if air.ndim == 3 else 4)
    border = np.unique(np.concatenate([np.take(labels, [0, -1], axis=a).ravel() for a in range(labels.ndim)]))
    air &= ~np.isin(labels, border)
    if not air.any():
        return air
    mask = cc3d.largest_k(air, k=2, connectivity=6 if air.ndim == 3 else 4) > 0
    return fill_voids.fill(mask)
