"""Dense lungs: a closing in millimetres and hole filling, and the return to the full-resolution grid."""

from __future__ import annotations

import cc3d
import fill_voids
import numpy as np
from scipy import ndimage as ndi

from ..volume import crop_box
from .frame import block_mean, upsample

__all__ = ["close_labels_mm", "fill_holes", "refine_to_full"]

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1, 1, :] = _IN_PLANE[1, :, 1] = True


def close_labels_mm(labels: np.ndarray, spacing: tuple[float, ...], radius_mm: float) -> np.ndarray:
    """Morphological closing of each label with a ball of ``radius_mm`` millimetres (anisotropy-aware).

    Dilation and erosion are thresholds on Euclidean distance maps computed with ``sampling=spacing``,
    on the label's bounding box grown by the radius, so the radius means the same at any voxel size.
    Where the voxels are much finer than the radius, the maps run on a block-majority grid of about
    ``radius_mm / 1.5`` (the closing only has to resolve concavities of the radius' size).
    Labels are closed one at a time (the gap between the two lungs is not bridged); a voxel claimed
    by two labels keeps the first. The image border does not erode: a lung cut by the field of view stays.

    Parameters
    ----------
    labels : ndarray of uint8, (Z, Y, X) or (Y, X)
    spacing : floats, mm per axis
    radius_mm : float

    Returns
    -------
    ndarray of uint8, same shape

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 12, 12), np.uint8); m[0, 2:10, 2:10] = 1; m[0, 5, 2:6] = 0   # a notch 1 px wide
    >>> int(close_labels_mm(m, (1.0, 1.0, 1.0), 2.0)[0, 5, 3])
    1
    """
    out = labels.copy()
    if radius_mm <= 0:
        return out
    # the distance maps run on a grid of about radius/1.5 (block majority): the closing fills concavities
    # of the size of the radius, which that grid resolves, at a fraction of the cost
    factors = tuple(max(1, int(radius_mm / 1.5 / s)) for s in spacing)
    coarse_spacing = tuple(s * f for s, f in zip(spacing, factors))
    for value in label_values(labels):
        mask = labels == value
        box = crop_box(mask, spacing, radius_mm + max(coarse_spacing))
        sub = mask[box]
        coarse = block_mean(sub, factors) > 0.5 if any(f > 1 for f in factors) else sub
        dilated = ndi.distance_transform_edt(~coarse, sampling=coarse_spacing) <= radius_mm
        closed = ndi.distance_transform_edt(dilated, sampling=coarse_spacing) > radius_mm
        closed = upsample(closed, factors, sub.shape) if closed.shape != sub.shape else closed
        target = out[box]
        target[closed & (target == 0)] = value
    return out


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Fill the holes of each label, slice by slice (axis 0) and in 3D, where no other label is.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((1, 5, 5), np.uint8); m[0, 1:4, 1:4] = 2; m[0, 2, 2] = 0
    >>> int(fill_holes(m)[0, 2, 2])
    2
    """
    out = labels.copy()
    for value in label_values(labels):
        mask = labels == value
        box = crop_box(mask, (1.0,) * mask.ndim, 1.0)
        sub = mask[box]
        filled = fill_voids.fill(sub) if sub.shape[0] > 1 else sub.copy()
        for z in range(sub.shape[0]):
            if sub[z].any():
                filled[z] |= fill_voids.fill(sub[z])
        target = out[box]
        target[filled & (target == 0)] = value
    return out


def label_values(labels: np.ndarray) -> list[int]:
    """The non-zero values of a label array with few labels (faster than np.unique on a volume)."""
    return [v for v in range(1, int(labels.max(initial=0)) + 1) if (labels == v).any()]


def refine_to_full(
    labels: np.ndarray,
    image: np.ndarray,
    factors: tuple[int, ...],
    air_threshold_hu: float,
    exclude: np.ndarray | None = None,
    *,
    keep: np.ndarray | None = None,
    keep_threshold_hu: float | None = None,
) -> np.ndarray:
    """Bring working-grid labels back to the full grid with a crisp boundary.

    Inside the labels (eroded by one working voxel in-plane) everything is lung: vessels and nodules stay
    in. In a band one working voxel wide on each side of the boundary, a full-resolution voxel is lung
    when it is below ``air_threshold_hu``; band voxels not connected to the inside are dropped (no specks).
    Voxels of ``exclude`` (airways, working grid) are never lung.

    Parameters
    ----------
    labels : ndarray of uint8, working grid (Z, y, x)
    image : ndarray, full grid (Z, Y, X), (pseudo-)HU
    factors : block sizes from the full grid to the working grid
    air_threshold_hu : float
    exclude : ndarray of bool, working grid, optional
    keep : ndarray of bool, working grid, optional
        Lung grown in above ``air_threshold_hu`` (ground glass): in the band, its voxels are lung below
        ``keep_threshold_hu`` instead.
    keep_threshold_hu : float, optional

    Returns
    -------
    ndarray of uint8 on the full grid
    """
    out = np.zeros(image.shape, np.uint8)
    if not labels.any():
        return out
    box = crop_box(labels > 0, (1.0,) * labels.ndim, 2.0)
    sub = labels[box]
    outer = ndi.grey_dilation(sub, footprint=_IN_PLANE)
    inner = ndi.binary_erosion(sub > 0, _IN_PLANE, border_value=1)
    if exclude is not None:
        outer[exclude[box]] = 0
        inner &= ~exclude[box]
    full_box = tuple(
        slice(b.start * f, min(b.stop * f, n)) for b, f, n in zip(box, factors, image.shape)
    )
    full_shape = tuple(b.stop - b.start for b in full_box)
    keep_all = upsample(inner, factors, full_shape)
    lab = upsample(outer, factors, full_shape)
    lung = image[full_box] < air_threshold_hu
    if keep is not None and keep_threshold_hu is not None and keep[box].any():
        grown = upsample(keep[box] & (sub > 0), factors, full_shape)
        lung |= grown & (image[full_box] < keep_threshold_hu)
    result = np.where(keep_all | ((lab > 0) & lung), lab, 0)
    # boundary pixels cut off from the lung by the threshold would be specks: drop them
    parts, n = cc3d.connected_components(result > 0, connectivity=6, return_N=True)
    attached = np.zeros(n + 1, bool)
    attached[parts[keep_all]] = True
    attached[0] = False
    result[~attached[parts]] = 0
    out[full_box] = result
    return out
