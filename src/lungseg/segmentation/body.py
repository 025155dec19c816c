"""The patient's body: everything dense enough, holes filled per slice, without the table and outside air."""

from __future__ import annotations

import cc3d
import fill_voids
import numpy as np
from scipy import ndimage as ndi

__all__ = ["body_mask", "estimate_pixel_size_mm", "smooth_mm"]

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1, 1, :] = _IN_PLANE[1, :, 1] = True


def smooth_mm(image: np.ndarray, spacing: tuple[float, ...], sigma_mm: float) -> np.ndarray:
    """In-plane Gaussian smoothing with ``sigma_mm`` millimetres (axes 1 and 2 of a (z, y, x) array).

    Axes whose sigma would be under a third of a voxel are left alone (the block averaging of the
    working grid already smooths at that scale). Returns ``image`` itself when nothing is smoothed.
    """
    sigma = [0.0] + [sigma_mm / s for s in spacing[1:]]
    sigma = [s if s >= 1 / 3 else 0.0 for s in sigma]
    if not any(sigma):
        return image
    return ndi.gaussian_filter(image, sigma, truncate=2.5)


def body_mask(image: np.ndarray, threshold_hu: float, spacing: tuple[float, ...] = (1.0, 1.0, 1.0), opening_mm: float = 0.0) -> np.ndarray:
    """The patient's body in a (z, y, x) image: voxels above ``threshold_hu``, opened in-plane by
    ``opening_mm``, largest 3D component, holes filled slice by slice.

    The table, cushions, clothing or leads are separate components, or become separate when the thin
    shells and straps joining them to the patient are opened away, and are dropped; the lungs and all
    air enclosed in a slice are inside the body.

    Parameters
    ----------
    image : ndarray (Z, Y, X), (pseudo-)HU
    threshold_hu : float
    spacing : 3 floats, mm
    opening_mm : float
        Radius (mm, in-plane) of the opening that detaches the table; 0 turns it off.

    Returns
    -------
    ndarray of bool, same shape

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((1, 9, 9), -1000.0); img[0, 1:6, 1:6] = 40; img[0, 3, 3] = -900; img[0, 7:9, :] = 200
    >>> m = body_mask(img, -500)
    >>> int(m.sum()), bool(m[0, 3, 3]), bool(m[0, 8, 0])
    (25, True, False)
    """
    dense = image > threshold_hu
    if not dense.any():
        return dense
    steps = int(round(opening_mm / min(spacing[1], spacing[2])))
    core = ndi.binary_erosion(dense, _IN_PLANE, iterations=steps) if steps > 0 else None
    if core is not None and core.any():
        core = _largest(core)
        # every dense voxel next to the core touches it: the result is one component
        dense &= ndi.binary_dilation(core, _IN_PLANE, iterations=steps)
    else:
        dense = _largest(dense)
    filled = np.empty_like(dense)
    for z in range(dense.shape[0]):
        filled[z] = fill_voids.fill(dense[z]) if dense[z].any() else False
    return filled


def _largest(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a non-empty mask (faster than cc3d.largest_k for one)."""
    labels = cc3d.connected_components(mask, connectivity=6, binary_image=True)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == counts.argmax()


def estimate_pixel_size_mm(image: np.ndarray, threshold_hu: float, assumed_body_width_mm: float) -> float | None:
    """Pixel size (mm) of an image without spacing, from the width of the body on its middle plane.

    ``image`` is (z, y, x) with x left-right. The body's extent along x is taken to be
    ``assumed_body_width_mm``. Returns None when no body is found.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((1, 40, 40), -1000.0); img[0, 10:30, 5:35] = 40
    >>> estimate_pixel_size_mm(img, -500, 330.0)
    11.0
    """
    plane = image[image.shape[0] // 2]
    dense = plane > threshold_hu
    if not dense.any():
        return None
    body = cc3d.largest_k(dense, k=1, connectivity=4) > 0
    cols = np.flatnonzero(body.any(axis=0))
    width_px = cols[-1] - cols[0] + 1
    return float(assumed_body_width_mm / width_px)
