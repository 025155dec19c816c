"""The patient's body: everything dense enough, holes filled per slice, without the table and outside air."""

from __future__ import annotations

import logging

import cc3d
import fill_voids
import numpy as np
from scipy import ndimage as ndi

__all__ = ["body_mask", "body_running_axis", "close_at_fov", "estimate_pixel_size_mm", "smooth_mm"]

log = logging.getLogger(__name__)

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


def estimate_pixel_size_mm(
    image: np.ndarray, threshold_hu: float, assumed_body_width_mm: float, *, cut_min_mm: float = np.inf, cut_min_frac: float = 1.0
) -> float | None:
    """Pixel size (mm) of an image without spacing, from the width of the body on its middle plane.

    ``image`` is (z, y, x). In a volume, the body's extent along x (left-right) is taken to be
    ``assumed_body_width_mm``. A single plane may be a picture turned on its side, so there the body's
    larger extent is taken, or, when the body runs through the picture (:func:`body_running_axis` with
    ``cut_min_mm`` and ``cut_min_frac``: a sagittal or coronal plane), its extent across. Returns None when
    no body is found.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((1, 40, 40), -1000.0); img[0, 10:30, 5:35] = 40
    >>> estimate_pixel_size_mm(img, -500, 330.0), estimate_pixel_size_mm(np.swapaxes(img, 1, 2), -500, 330.0)
    (11.0, 11.0)
    >>> y, x = np.mgrid[:120, :200]
    >>> img = np.where(((y - 60) / 45) ** 2 + ((x - 100) / 150) ** 2 < 1, 40.0, -1000.0)[None]  # cut at both sides
    >>> round(estimate_pixel_size_mm(img, -500, 330.0, cut_min_mm=40.0, cut_min_frac=0.5), 3)  # 89 rows across it
    3.708
    """
    plane = image[image.shape[0] // 2]
    dense = plane > threshold_hu
    if not dense.any():
        return None
    body = cc3d.largest_k(dense, k=1, connectivity=4) > 0
    extents = [np.flatnonzero(body.any(axis=1 - a)) for a in (0, 1)]
    width_px = [int(e[-1] - e[0] + 1) for e in extents]
    if image.shape[0] > 1:
        return float(assumed_body_width_mm / width_px[1])
    # one plane: the trunk's width is its larger extent (a picture may be turned), or, in a plane the body runs
    # through, its extent across
    estimates = [float(assumed_body_width_mm / w) for w in width_px]
    for axis in (0, 1):
        if body_running_axis(dense, body, (estimates[1 - axis],) * 2, cut_min_mm, cut_min_frac) == axis:
            return estimates[1 - axis]
    return min(estimates)


def body_running_axis(content: np.ndarray, body: np.ndarray, spacing: tuple[float, float], cut_min_mm: float, cut_min_frac: float) -> int | None:
    """The axis (0 rows, 1 columns) along which a picture's edges cut the body through at both ends, or None.

    A sagittal or coronal plane shows the body running through the picture, cut broadly at both ends (neck
    or chest at one edge, abdomen at the other). An axial plane shows the trunk whole: its skin meets the
    edges of the picture's content along a short stretch, or the edges cut the arms beside it, narrower
    than the trunk is deep. A cut counts when both ends are at least ``cut_min_mm`` long and at least
    ``cut_min_frac`` of the body's extent across; only one axis may be cut so. The edges are those of the
    picture's content (``content``, anything dense), so padding bands of a reformat do not hide the cut.

    Parameters
    ----------
    content, body : ndarray of bool, (Y, X)
    spacing : 2 floats, mm per row and column
    cut_min_mm, cut_min_frac : float

    Returns
    -------
    int or None

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:120, :160]
    >>> trunk = ((y - 60) / 90) ** 2 + ((x - 80) / 60) ** 2 < 1   # cut at top and bottom
    >>> body_running_axis(trunk, trunk, (1.0, 1.0), 40.0, 0.5)
    0
    >>> whole = ((y - 60) / 50) ** 2 + ((x - 80) / 70) ** 2 < 1
    >>> body_running_axis(whole, whole, (1.0, 1.0), 40.0, 0.5) is None
    True
    """
    found = []
    for axis in (0, 1):
        lines = np.flatnonzero(content.any(axis=1 - axis))
        across = np.flatnonzero(body.any(axis=axis))
        if lines.size < 2 or across.size == 0:
            continue
        cut_px = min(int(np.take(body, int(i), axis=axis).sum()) for i in (lines[0], lines[-1]))
        if cut_px * spacing[1 - axis] >= cut_min_mm and cut_px >= cut_min_frac * (across[-1] - across[0] + 1):
            found.append(axis)
    return found[0] if len(found) == 1 else None


def close_at_fov(body: np.ndarray, image: np.ndarray, fov: np.ndarray, spacing: tuple[float, float, float], settings) -> np.ndarray:
    """``body`` closed along the edge of the field of view, where the FOV circle cuts through a lung.

    The padding outside a reconstruction circle is as dark as air, so a lung the circle cuts through
    opens onto it and would be taken for outside air. Here the outside of the FOV is a barrier: air
    enclosed in its slice by the body and the outside of the FOV together (not by the body alone) is a
    candidate. Candidates (at least ``min_lung_area_mm2`` in-plane, summed over their slices) join the
    body when the air region they belong to (with the air the body encloses) looks like lung and not like the outside air between the patient and the FOV edge: it is
    large enough (``settings.min_lung_volume_ml``; ``min_lung_area_mm2`` for one plane), at least
    ``lung_texture_min_frac`` of it is above ``gas_threshold_hu`` (outside air is pure gas), at most
    ``fov_edge_max_frac`` of the pixels around the candidates (in-plane) are not the patient (the body,
    and tissue above ``body_threshold_hu`` that reaches the FOV edge: a chest wall the cut separates from
    the body in this plane): a cut lung meets the FOV edge along a chord and the patient elsewhere,
    outside air (with any cushion or blanket in it) lies along the edge.

    Parameters
    ----------
    body : ndarray of bool, (Z, Y, X)
        From :func:`body_mask`.
    image : ndarray (Z, Y, X), (pseudo-)HU
    fov : ndarray of bool, (Z, Y, X)
        True inside the field of view.
    spacing : 3 floats, mm
    settings : lungseg.settings.Settings

    Returns
    -------
    ndarray of bool, same shape: ``body`` itself when nothing is added.

    Examples
    --------
    >>> import numpy as np
    >>> from lungseg.settings import Settings
    >>> y, x = np.mgrid[:40, :40]
    >>> fov = ((y - 19.5) ** 2 + (x - 19.5) ** 2 <= 15 ** 2)[None]
    >>> img = np.where(np.abs(y - 19.5) < 11, 40.0, -1000.0)[None]   # a patient wider than the FOV
    >>> img[0, 13:27, 24:37] = -850; img[0, 13:27:3, 24:37:3] = 40   # a lung the circle cuts
    >>> img[~fov] = -1024
    >>> body = body_mask(img, -500)
    >>> closed = close_at_fov(body, img, fov, (1.0, 4.0, 4.0), Settings())
    >>> bool(body[0, 20, 30]), bool(closed[0, 20, 30])
    (False, True)
    """
    outside = ~fov
    enclosed = np.zeros_like(body)
    for z in np.flatnonzero(outside.any(axis=(1, 2)) & body.any(axis=(1, 2))):
        enclosed[z] = fill_voids.fill(body[z] | outside[z])
    enclosed &= fov
    candidates = enclosed & ~body
    candidates &= image < settings.air_threshold_hu
    # cheap tests first: the outside air is pure gas, and a lung's cross-section open onto the edge is not a speck
    open_labels, n_open = cc3d.connected_components(candidates, connectivity=6, return_N=True)
    if n_open == 0:
        return body
    open_ids = open_labels[candidates]
    open_count = np.bincount(open_ids, minlength=n_open + 1)
    gas_free = np.bincount(open_ids, weights=image[candidates] > settings.gas_threshold_hu, minlength=n_open + 1)
    lung_like = (gas_free >= settings.lung_texture_min_frac * open_count) & (open_count * spacing[1] * spacing[2] >= settings.min_lung_area_mm2)
    lung_like[0] = False
    if not lung_like.any():
        return body
    candidates &= lung_like[open_labels]
    air = (body | candidates) & (image < settings.air_threshold_hu)
    labels, n = cc3d.connected_components(air, connectivity=6, return_N=True)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n + 1).astype(float)
    textured = np.bincount(flat, weights=(image > settings.gas_threshold_hu).ravel(), minlength=n + 1) / np.maximum(count, 1)
    if air.shape[0] == 1:
        large = count * spacing[1] * spacing[2] >= settings.min_lung_area_mm2
    else:
        large = count * float(np.prod(spacing)) / 1000.0 >= settings.min_lung_volume_ml
    # the share of the pixels around each region's candidates (in-plane) that are not the patient's tissue:
    # the body, and tissue the FOV edge cuts off from it (a chest wall beyond a cut lung)
    tissue = (image > settings.body_threshold_hu) & fov
    pieces = cc3d.connected_components(tissue, connectivity=6)
    at_edge = np.unique(pieces[ndi.binary_dilation(outside, _IN_PLANE) & tissue])
    patient = body | np.isin(pieces, at_edge[at_edge > 0])
    ring = ndi.grey_dilation(np.where(candidates, labels, 0), footprint=_IN_PLANE) * ~air
    around = np.bincount(ring.ravel(), minlength=n + 1).astype(float)
    not_body = np.bincount(ring.ravel(), weights=~patient.ravel(), minlength=n + 1) / np.maximum(around, 1)
    keep = large & (textured >= settings.lung_texture_min_frac) & (not_body <= settings.fov_edge_max_frac) & (around > 0)
    keep[0] = False
    log.debug("field of view: %d air regions open onto its edge, %d taken for lung cut by it", int((around > 0).sum()), int(keep.sum()))
    if not keep.any():
        return body
    closed = body | (candidates & keep[labels])
    for z in np.flatnonzero(closed.any(axis=(1, 2)) & (closed != body).any(axis=(1, 2))):
        closed[z] = fill_voids.fill(closed[z])  # the lung's vessels, now enclosed
    return closed
