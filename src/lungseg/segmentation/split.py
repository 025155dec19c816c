"""Right and left: separate lungs that touch, and name each side from the patient's geometry."""

from __future__ import annotations

import logging

import cc3d
import numpy as np
from scipy import ndimage as ndi

from ..settings import Settings

__all__ = ["label_sides", "RIGHT", "LEFT"]

log = logging.getLogger(__name__)

RIGHT = 1
LEFT = 2

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1, 1, :] = _IN_PLANE[1, :, 1] = True
_CROSS = ndi.generate_binary_structure(3, 1)


def label_sides(lungs: np.ndarray, body: np.ndarray, spacing: tuple[float, float, float], settings: Settings) -> np.ndarray:
    """Label the lung mask of a canonical (z, y, x) volume: 1 = patient's right, 2 = patient's left.

    In the canonical frame x (the last axis) increases towards the patient's left, so the patient's right
    lung has the smaller column indices. The midline is the body's mean column over the lung's slices.
    A region with a real share of voxels on both sides of the midline is two lungs touching at a
    junction: it is eroded in-plane, one voxel at a time up to ``split_max_erosion_mm``, until two cores
    on opposite sides appear, each at least ``split_min_part_frac`` of the pair, and the cores are grown
    back inside the region. Every other region takes the side of its centre.

    Parameters
    ----------
    lungs : ndarray of bool, (Z, Y, X)
    body : ndarray of bool, (Z, Y, X)
    spacing : 3 floats, mm
    settings : Settings

    Returns
    -------
    ndarray of uint8, same shape: 0, 1 (right) or 2 (left).

    Examples
    --------
    >>> import numpy as np
    >>> lungs = np.zeros((1, 5, 9), bool); lungs[0, 1:4, 1:3] = True; lungs[0, 1:4, 6:8] = True
    >>> label_sides(lungs, np.ones_like(lungs), (1.0, 1.0, 1.0), Settings())[0, 2].tolist()
    [0, 1, 1, 0, 0, 0, 2, 2, 0]
    """
    out = np.zeros(lungs.shape, np.uint8)
    if not lungs.any():
        return out
    planes = lungs.any(axis=(1, 2))
    column_weight = body[planes].sum(axis=(0, 1)).astype(float)
    cols = np.arange(lungs.shape[2])
    midline = float((column_weight * cols).sum() / column_weight.sum()) if column_weight.sum() else lungs.shape[2] / 2

    labels, n = cc3d.connected_components(lungs, connectivity=6, return_N=True)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        region = labels[box] == i
        local_mid = midline - box[2].start
        right_share = float((region.sum(axis=(0, 1)) * (np.arange(region.shape[2]) < local_mid)).sum()) / region.sum()
        sides = None
        if min(right_share, 1 - right_share) >= settings.split_min_part_frac:
            sides = _split_touching(region, local_mid, spacing, settings)
        if sides is None:
            side = RIGHT if right_share >= 0.5 else LEFT
            out[box][region] = side
        else:
            out[box][region] = sides[region]
    _order_two_largest(out, labels)
    return out


def _split_touching(region: np.ndarray, midline: float, spacing, settings: Settings) -> np.ndarray | None:
    """Two lungs joined in ``region``: labels 1/2 inside it, or None when no split is found."""
    max_steps = max(1, int(settings.split_max_erosion_mm / min(spacing[1], spacing[2])))
    core = region
    seeds = None
    for step in range(max_steps):
        core = ndi.binary_erosion(core, _IN_PLANE)
        if not core.any():
            break
        parts, n = cc3d.connected_components(core, connectivity=6, return_N=True)
        if n < 2:
            continue
        sizes = np.bincount(parts.ravel())
        sizes[0] = 0
        a, b = np.argsort(sizes)[::-1][:2]
        if sizes[b] < settings.split_min_part_frac * (sizes[a] + sizes[b]):
            continue
        ca = np.nonzero(parts == a)[2].mean()
        cb = np.nonzero(parts == b)[2].mean()
        if (ca - midline) * (cb - midline) >= 0:
            continue
        seeds = np.zeros(region.shape, np.uint8)
        right, left = (a, b) if ca < cb else (b, a)
        seeds[parts == right] = RIGHT
        seeds[parts == left] = LEFT
        log.debug("touching lungs split after %d in-plane erosions", step + 1)
        break
    if seeds is None:
        return None
    for _ in range(4 * max_steps + 8):
        grown = ndi.grey_dilation(seeds, footprint=_CROSS)
        new = region & (seeds == 0) & (grown > 0)
        if not new.any():
            break
        seeds[new] = grown[new]
    rest = region & (seeds == 0)
    if rest.any():
        seeds[rest & (np.arange(region.shape[2]) < midline)] = RIGHT
        seeds[rest & (seeds == 0)] = LEFT
    return seeds


def _order_two_largest(out: np.ndarray, labels: np.ndarray) -> None:
    """Two large regions side by side (x ranges apart) that got the same side: the one further right is the right lung.

    This happens when the midline estimate is off (a shifted mediastinum); two pieces of one lung
    (one lung collapsed or filled with fluid) overlap in x and keep their side.
    """
    boxes = ndi.find_objects(labels)
    sizes = np.array([0] + [0 if b is None else int((labels[b] == i).sum()) for i, b in enumerate(boxes, start=1)])
    if np.count_nonzero(sizes) < 2:
        return
    a, b = np.argsort(sizes)[::-1][:2]
    if sizes[b] < 0.2 * sizes[a]:
        return
    ba, bb = boxes[a - 1], boxes[b - 1]
    ma, mb = labels[ba] == a, labels[bb] == b
    sa, sb = np.unique(out[ba][ma]), np.unique(out[bb][mb])
    if sa.size != 1 or sb.size != 1 or sa[0] != sb[0]:
        return
    (a0, a1), (b0, b1) = (ba[2].start, ba[2].stop), (bb[2].start, bb[2].stop)
    overlap = min(a1, b1) - max(a0, b0)
    if overlap > 0.1 * min(a1 - a0, b1 - b0):
        return
    a_is_right = a0 + a1 < b0 + b1
    out[ba][ma] = RIGHT if a_is_right else LEFT
    out[bb][mb] = LEFT if a_is_right else RIGHT
