"""Trachea and main bronchi: found in the top slices, then grown in 3D with an adaptive threshold
(or, when that fails, followed down slice by slice)."""

from __future__ import annotations

import logging

import cc3d
import numpy as np
from scipy import ndimage as ndi

from ..settings import Settings
from ..volume import crop_box

__all__ = ["find_airways", "follow_bronchi", "grow_airway"]

log = logging.getLogger(__name__)


def find_airways(
    air: np.ndarray,
    body: np.ndarray,
    spacing: tuple[float, float, float],
    settings: Settings,
    *,
    image: np.ndarray | None = None,
) -> np.ndarray:
    """The trachea and main bronchi in a (z, y, x) volume whose z index increases towards the head.

    The search starts in the top slices: a round air region between ``trachea_min_diameter_mm`` and
    ``trachea_max_diameter_mm`` wide whose centre is within ``trachea_max_offset_mm`` of the body's
    midline. When ``image`` is given, the airway is grown from it in 3D (:func:`grow_airway`, the
    adaptive threshold of Hu, Hoffman and Reinhardt 2001) and kept down to ``main_bronchus_max_length_mm``
    below the carina. Otherwise, or when growing fails, it is followed downwards: in each slice, the air regions that overlap the previous
    slice's airway (grown by 1.5 slice thicknesses, for oblique bronchi) and are no wider than the
    trachea join it. A region wider than that is the lung itself, where the bronchus enters it, and is
    not taken: this controls leakage. Below the carina (the first slice with two airway regions) the
    bronchi are followed for ``main_bronchus_max_length_mm``.

    Parameters
    ----------
    air : ndarray of bool, (Z, Y, X)
        Air inside the body.
    body : ndarray of bool, (Z, Y, X)
    spacing : 3 floats, mm
    settings : Settings
    image : ndarray (Z, Y, X), (pseudo-)HU, optional
        The image ``air`` was thresholded from; enables the 3D growing.

    Returns
    -------
    ndarray of bool, same shape; empty when no trachea is found.
    """
    airway = np.zeros_like(air)
    nz = air.shape[0]
    pixel_mm2 = spacing[1] * spacing[2]
    max_area = np.pi * (settings.trachea_max_diameter_mm / 2) ** 2 / pixel_mm2
    min_area = np.pi * (settings.trachea_min_diameter_mm / 2) ** 2 / pixel_mm2
    search_slices = max(1, int(round(settings.trachea_max_diameter_mm * 2 / spacing[0])))

    start = None
    for z in range(nz - 1, max(nz - 1 - search_slices, -1), -1):
        region = _trachea_in_slice(air[z], body[z], spacing, min_area, max_area, settings.trachea_max_offset_mm)
        if region is not None:
            start = z
            airway[z] = region
            break
    if start is None:
        log.debug("no trachea found in the top %d slices", search_slices)
        return airway
    if image is not None:
        grown = grow_airway(image, airway, spacing, settings)
        # an emphysematous lung as dark as the lumen stops the growth at once: then track slice by slice
        if grown is not None and (start - np.flatnonzero(grown.any(axis=(1, 2)))[0]) * spacing[0] >= settings.airway_min_length_mm:
            return grown
        log.debug("airway growing stopped within %.0f mm of the seed: tracking slice by slice", settings.airway_min_length_mm)

    reach_px = max(1, int(np.ceil(1.5 * spacing[0] / min(spacing[1], spacing[2]))))
    disk = ndi.generate_binary_structure(2, 1)
    carina, last = None, start
    clean_areas = [int(airway[start].sum())]
    for z in range(start - 1, -1, -1):
        prev = airway[z + 1]
        reach = ndi.binary_dilation(prev, disk, iterations=reach_px) & air[z]
        labels = cc3d.connected_components(air[z], connectivity=8)
        ids = np.unique(labels[reach])
        ids = ids[ids > 0]
        area = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
        tubes = [i for i in ids if area[i] <= max_area]
        wide = [i for i in ids if area[i] > max_area]
        here = np.isin(labels, tubes)
        typical = float(np.median(clean_areas))
        if wide:
            # the airway touches the lung in this slice (partial volume, or a bronchus entering it):
            # keep only the part next to the previous slice's airway, no bigger than the airway has been
            near = ndi.binary_dilation(prev, disk) & np.isin(labels, wide)
            if near.sum() > 1.5 * typical:
                near = prev & np.isin(labels, wide)
            here |= near
        elif tubes:
            clean_areas.append(int(here.sum()))
        if not here.any():
            break
        airway[z] = here
        last = z
        if carina is None:
            parts = cc3d.connected_components(here, connectivity=8)
            sizes = np.bincount(parts.ravel())[1:]
            if np.count_nonzero(sizes >= 0.25 * typical) >= 2:
                carina = z
        if carina is not None and (carina - z) * spacing[0] > settings.main_bronchus_max_length_mm:
            break
    log.debug("airway followed from slice %d to %d (carina %s)", start, last, carina)
    return airway


def grow_airway(image: np.ndarray, seed: np.ndarray, spacing: tuple[float, float, float], settings: Settings) -> np.ndarray | None:
    """The trachea and main bronchi grown in 3D from ``seed`` with an adaptively raised threshold.

    The airway is the 6-connected region of voxels below a threshold ``t`` that holds the seed. ``t`` is
    raised in steps of ``airway_threshold_step_hu`` from ``gas_threshold_hu`` towards
    ``air_threshold_hu``; the highest ``t`` before the region explodes into the lung (grows past
    ``airway_max_volume_ml``) is kept (Hu, Hoffman and Reinhardt, IEEE TMI 2001); as the region only
    grows with ``t``, that threshold is found by bisection. At a coarse voxel
    size the bronchi are partial-volume air, brighter than an emphysematous lung, and a fixed threshold
    would either miss them or leak; the explosion test picks the threshold for each scan. The airway is
    kept down to ``main_bronchus_max_length_mm`` below the carina (the first slice, going down, where
    it has two parts), so the bronchi inside the lungs stay lung. The search runs in a box of
    ``airway_search_mm`` around the seed.

    Parameters
    ----------
    image : ndarray (Z, Y, X), (pseudo-)HU, z towards the head
    seed : ndarray of bool, same shape
        The trachea in one of the top slices.
    spacing : 3 floats, mm
    settings : Settings

    Returns
    -------
    ndarray of bool, same shape, or None when no threshold gives an airway (the seed is not below the
    lowest threshold, or the lowest already leaks).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((20, 30, 30), 40.0); img[:, 5:25, 3:27] = -850   # lung
    >>> img[:, 14:16, 14:16] = 40; img[10:, 0:16, 14:16] = -1000          # a trachea entering it from above
    >>> seed = np.zeros(img.shape, bool); seed[19, 0:4, 14:16] = True
    >>> airway = grow_airway(img, seed, (4.0, 4.0, 4.0), Settings())
    >>> bool(airway[15, 2, 14]), bool(airway[15, 10, 5])
    (True, False)
    """
    voxel_ml = float(np.prod(spacing)) / 1000.0
    max_voxels = settings.airway_max_volume_ml / voxel_ml
    box = crop_box(seed, spacing, settings.airway_search_mm)
    box = (slice(0, box[0].stop),) + box[1:]
    sub, sub_seed = image[box], seed[box]
    step = max(settings.airway_threshold_step_hu, 1.0)
    thresholds = np.arange(settings.gas_threshold_hu, settings.air_threshold_hu + step / 2, step)

    def region_below(t: float) -> np.ndarray | None:
        """The seed's region below ``t`` (None when the seed is not below it or the region leaks)."""
        below = sub < t
        if not below[sub_seed].any():
            return None
        labels = cc3d.connected_components(below, connectivity=6)
        ids = np.unique(labels[sub_seed & below])
        region = np.isin(labels, ids[ids > 0])
        return region if region.sum() <= max_voxels else None

    # the region grows with the threshold: bisect for the highest threshold before the leak
    low, high, best = 0, len(thresholds) - 1, None
    while low <= high:
        mid = (low + high) // 2
        region = region_below(float(thresholds[mid]))
        if region is None and sub[sub_seed].min() < thresholds[mid]:
            high = mid - 1  # leaked
        elif region is None:
            low = mid + 1  # the seed is not below this threshold yet
        else:
            best = region
            low = mid + 1
    if best is None:
        return None
    best = _down_to_main_bronchi(best, spacing, settings)
    airway = np.zeros_like(seed)
    airway[box] = best
    log.debug("airway grown: %.1f ml", float(airway.sum()) * voxel_ml)
    return airway


def follow_bronchi(
    image: np.ndarray,
    airway: np.ndarray,
    body: np.ndarray,
    spacing: tuple[float, float, float],
    settings: Settings,
) -> np.ndarray:
    """The main bronchi followed further down where the threshold growth stopped short, by the contrast of
    their lumen against the wall and the hilar vessels around it.

    At coarse voxels the lumen of the bronchi below the carina is partial-volume air, brighter than an
    emphysematous lung, and the growth of :func:`grow_airway` stops before the lung floods in, short of
    ``main_bronchus_max_length_mm`` below the carina. There the lumen is still darker than what encloses it
    (Aykac et al. 2003): a grey-level closing with a ball of ``bronchus_wall_radius_mm`` fills it in, and
    voxels below ``air_threshold_hu`` that it raises by at least ``bronchus_contrast_hu`` are lumen
    candidates. Those connected (6-connectivity) to the main bronchi, between the carina and
    ``main_bronchus_max_length_mm`` below it, are followed. When they exceed ``bronchus_max_volume_ml``
    (a leak between the vessels of the lung), the contrast is raised in steps of
    ``airway_threshold_step_hu`` until they do not.

    Parameters
    ----------
    image : ndarray (Z, Y, X), (pseudo-)HU, z towards the head
    airway : ndarray of bool, same shape
        The trachea and main bronchi from :func:`grow_airway`.
    body : ndarray of bool, same shape
    spacing : 3 floats, mm
    settings : Settings

    Returns
    -------
    ndarray of bool, same shape: the voxels added (empty when the growth already reached
    ``main_bronchus_max_length_mm`` below the carina, or no carina is found).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((30, 40, 40), 40.0); img[:, 4:36, 4:36] = -930       # emphysematous lung
    >>> img[:, 17:23, 10:30] = 40                                           # mediastinum and bronchial walls
    >>> img[14:, 19:21, 19:21] = img[14, 19:21, 12:28] = -1000              # trachea, down to the carina
    >>> img[12:14, 19:21, 12:18] = img[12:14, 19:21, 22:28] = -1000         # the main bronchi
    >>> img[4:12, 19:21, 12:14] = img[4:12, 19:21, 26:28] = -800            # their partial-volume lumen further down
    >>> airway = img == -1000
    >>> more = follow_bronchi(img, airway, np.ones_like(airway), (4.0, 4.0, 4.0), Settings())
    >>> bool(more[8, 19, 12]), bool(more[8, 19, 27]), bool(more[8, 10, 10])
    (True, True, False)
    """
    none = np.zeros_like(airway)
    carina = _carina(airway, spacing, settings)
    if carina is None:
        return none
    stop = max(int(np.floor(carina - settings.main_bronchus_max_length_mm / spacing[0])), 0)
    if np.flatnonzero(airway.any(axis=(1, 2)))[0] <= stop:
        return none  # the growth followed them all the way
    seed = airway.copy()
    seed[carina + 1 :] = False
    box = crop_box(seed, spacing, settings.main_bronchus_max_length_mm)
    box = (slice(stop, carina + 1),) + box[1:]
    sub = image[box]
    contrast = ndi.grey_closing(sub, footprint=_ball(settings.bronchus_wall_radius_mm, spacing)) - sub
    lumen = (sub < settings.air_threshold_hu) & body[box] & ~airway[box]
    max_voxels = settings.bronchus_max_volume_ml * 1000.0 / float(np.prod(spacing))
    step = max(settings.airway_threshold_step_hu, 1.0)
    least = settings.bronchus_contrast_hu
    while lumen.any():
        candidates = lumen & (contrast >= least)
        labels = cc3d.connected_components(candidates | seed[box], connectivity=6)
        ids = np.unique(labels[seed[box]])
        followed = np.isin(labels, ids[ids > 0]) & candidates
        if followed.sum() <= max_voxels:
            out = none
            out[box] = followed
            log.debug("bronchi followed %.1f ml further (lumen contrast >= %.0f HU)", followed.sum() / max_voxels * settings.bronchus_max_volume_ml, least)
            return out
        least += step
    return none


def _ball(radius_mm: float, spacing) -> np.ndarray:
    """A ball of ``radius_mm`` on a grid of ``spacing`` (at least the 6-neighbourhood)."""
    reach = [max(1, int(radius_mm // s)) for s in spacing]
    grid = np.ogrid[tuple(slice(-r, r + 1) for r in reach)]
    dist2 = sum((g * s) ** 2 for g, s in zip(grid, spacing))
    return dist2 <= max(radius_mm, max(spacing)) ** 2


def _carina(airway: np.ndarray, spacing, settings: Settings) -> int | None:
    """The carina's slice: the first, from the top, where the airway has two parts of some size."""
    min_part = np.pi * (settings.trachea_min_diameter_mm / 4) ** 2 / (spacing[1] * spacing[2])
    for z in np.flatnonzero(airway.any(axis=(1, 2)))[::-1]:
        parts, n = cc3d.connected_components(airway[z], connectivity=8, return_N=True)
        if n >= 2 and np.count_nonzero(np.bincount(parts.ravel())[1:] >= min_part) >= 2:
            return int(z)
    return None


def _down_to_main_bronchi(airway: np.ndarray, spacing, settings: Settings) -> np.ndarray:
    """``airway`` cut ``main_bronchus_max_length_mm`` below the carina."""
    carina = _carina(airway, spacing, settings)
    if carina is None:
        return airway
    stop = int(np.floor(carina - settings.main_bronchus_max_length_mm / spacing[0]))
    out = airway.copy()
    out[: max(stop, 0)] = False
    return out


def _trachea_in_slice(air2d, body2d, spacing, min_area, max_area, max_offset_mm):
    """The largest trachea-like air region near the midline of one slice, or None."""
    if not body2d.any():
        return None
    labels, n = cc3d.connected_components(air2d, connectivity=8, return_N=True)
    if n == 0:
        return None
    midline = np.flatnonzero(body2d.any(axis=0)).mean()
    best, best_area = None, 0
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        region = labels[box] == i
        area = int(region.sum())
        if not min_area <= area <= max_area:
            continue
        height, width = region.shape
        if area < 0.4 * height * width:  # not round: a crescent or a strip is not the trachea
            continue
        cx = box[1].start + np.nonzero(region)[1].mean()
        offset = abs(cx - midline) * spacing[2]
        if offset <= max_offset_mm and area > best_area:
            best, best_area = i, area
    return None if best is None else labels == best
