"""Trachea and main bronchi: found from the top slices and followed down slice by slice."""

from __future__ import annotations

import logging

import cc3d
import numpy as np
from scipy import ndimage as ndi

from ..settings import Settings

__all__ = ["find_airways"]

log = logging.getLogger(__name__)


def find_airways(
    air: np.ndarray,
    body: np.ndarray,
    spacing: tuple[float, float, float],
    settings: Settings,
) -> np.ndarray:
    """The trachea and main bronchi in a (z, y, x) volume whose z index increases towards the head.

    The search starts in the top slices: a round air region between ``trachea_min_diameter_mm`` and
    ``trachea_max_diameter_mm`` wide whose centre is within ``trachea_max_offset_mm`` of the body's
    midline. It is then followed downwards: in each slice, the air regions that overlap the previous
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
