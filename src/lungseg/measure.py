"""Numbers: lung volumes, densities, emphysema indices, and overlap metrics against a reference.

Everything here except :func:`write_report` and :func:`align_reference` is pure: arrays and spacing
in, plain dicts out (JSON-ready: floats, lists and ``None``; never NumPy scalars).

Label conventions
-----------------
lungseg's own labels follow lungmask: 0 outside, 1 = patient's right lung, 2 = left lung.
:func:`to_lungmask` converts masks from other tools (see :data:`CONVENTIONS`) to that coding, with one
extra value, :data:`LATERALITY_UNKNOWN` (3), for lung whose side the source does not say (binary masks,
the Chest Imaging Platform's WholeLung region).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .volume import crop_box

__all__ = [
    "LUNGS",
    "CONVENTIONS",
    "LATERALITY_UNKNOWN",
    "lung_measurements",
    "measurement_flags",
    "build_report",
    "result_spacing",
    "write_report",
    "to_lungmask",
    "overlap_metrics",
    "compare_labels",
    "align_reference",
]

log = logging.getLogger(__name__)

LUNGS = {"right": (1,), "left": (2,), "both": (1, 2)}
"""Report name -> lungmask label values it covers."""

LATERALITY_UNKNOWN = 3
"""Label :func:`to_lungmask` gives lung voxels whose side (right/left) the source convention does not say."""

LAA950_HU = -950.0
"""Low-attenuation threshold for emphysema on inspiratory CT (voxels strictly below)."""
LAA910_HU = -910.0
"""Low-attenuation threshold used with sharper kernels / thicker slices (voxels strictly below)."""
LAA856_HU = -856.0
"""Air-trapping threshold, meant for expiratory scans (voxels strictly below)."""
HAA_RANGE_HU = (-600.0, -250.0)
"""High-attenuation area (ground glass, fibrosis): voxels within this range, both ends included."""

DENSITY_KEYS = ("mean_hu", "sd_hu", "pd10_hu", "pd15_hu", "laa950_pct", "laa910_pct", "laa856_pct", "haa_pct")


# ---------------------------------------------------------------------------------------------
# Lung measurements
# ---------------------------------------------------------------------------------------------
def _world_z_mm(shape: tuple[int, ...], spacing: tuple[float, ...], direction: np.ndarray | None) -> tuple[np.ndarray, float]:
    """World z (LPS, +z = superior, origin left out) of each voxel centre, and half a voxel's z extent.

    Returns an array broadcastable to ``shape`` and a float in mm.
    """
    d = np.eye(3) if direction is None else np.asarray(direction, float).reshape(3, 3)
    # array axis k (plane, row, column) runs along ITK axis ndim-1-k; its world z step is d[2, itk] * spacing.
    steps = [d[2, len(shape) - 1 - k] * spacing[k] for k in range(len(shape))]
    z = np.zeros((1,) * len(shape))
    for k, (n, step) in enumerate(zip(shape, steps)):
        along = np.arange(n, dtype=float) * step
        z = z + along.reshape([-1 if a == k else 1 for a in range(len(shape))])
    half = 0.5 * float(np.sum(np.abs(steps)))
    return z, half


def _thirds_pct(mask: np.ndarray, z: np.ndarray, half_mm: float) -> list[float] | None:
    """Share (%) of ``mask``'s voxels in the upper, middle and lower third of its own height along world z."""
    zs = np.broadcast_to(z, mask.shape)[mask]
    if zs.size == 0:
        return None
    top, bottom = float(zs.max()) + half_mm, float(zs.min()) - half_mm
    height = top - bottom
    if height <= 1e-6:  # an axial 2D slice has no craniocaudal extent
        return None
    # slab 0 = upper: its lower edge is top - height/3; voxels on an edge go to the upper slab.
    slab = np.clip(np.floor((top - zs) / (height / 3.0)), 0, 2).astype(int)
    counts = np.bincount(slab, minlength=3)
    return [_num(100.0 * c / zs.size, 4) for c in counts.tolist()]


def _density(values: np.ndarray) -> dict[str, float | None]:
    """Density figures of the (pseudo-)HU values of one lung."""
    if values.size == 0:
        return dict.fromkeys(DENSITY_KEYS)
    v = values.astype(np.float64, copy=False)
    n = v.size
    low, high = HAA_RANGE_HU
    return {
        "mean_hu": _num(v.mean(), 4),
        "sd_hu": _num(v.std(), 4),
        "pd10_hu": _num(np.percentile(v, 10), 4),
        "pd15_hu": _num(np.percentile(v, 15), 4),
        "laa950_pct": _num(100.0 * np.count_nonzero(v < LAA950_HU) / n, 4),
        "laa910_pct": _num(100.0 * np.count_nonzero(v < LAA910_HU) / n, 4),
        "laa856_pct": _num(100.0 * np.count_nonzero(v < LAA856_HU) / n, 4),
        "haa_pct": _num(100.0 * np.count_nonzero((v >= low) & (v <= high)) / n, 4),
    }


def lung_measurements(
    hu: np.ndarray,
    labels: np.ndarray,
    spacing: tuple[float, ...],
    *,
    direction: np.ndarray | None = None,
    density_valid: bool = True,
    density_reason: str = "the intensities are calibrated, not true HU",
) -> dict[str, dict[str, Any]]:
    """Volume, density and distribution figures of the right lung, the left lung and both together.

    Parameters
    ----------
    hu : ndarray, shape (P, R, C) or (R, C)
        The image in HU (or pseudo-HU, see ``density_valid``).
    labels : ndarray of int, same shape
        0 outside, 1 right lung, 2 left lung (lungmask convention); other values are ignored.
    spacing : tuple of float
        Voxel size in mm per array axis.
    direction : ndarray, shape (3, 3), optional
        ITK direction matrix (see :mod:`lungseg.volume`); used to find world z for the thirds.
        Identity (slices stacked along +z) when not given.
    density_valid : bool
        False when the intensities are calibrated rather than true HU: every density figure is then
        ``None`` and ``density_withheld`` holds ``density_reason``.
    density_reason : str
        Why densities are withheld (stored in each lung's ``density_withheld``).

    Returns
    -------
    dict
        ``{"right": {...}, "left": {...}, "both": {...}}``; each holds

        * ``voxels``: number of voxels (pixels for 2D);
        * ``volume_ml``: voxels × voxel volume / 1000 (``None`` for a 2D image, which has no volume);
        * ``area_cm2``: for a 2D image, pixels × pixel area / 100 (``None`` for a volume);
        * ``mean_hu``, ``sd_hu``: mean and population standard deviation (ddof=0) of the lung's HU;
        * ``pd10_hu``, ``pd15_hu``: 10th and 15th percentile of the lung's HU (linear interpolation,
          ``numpy.percentile``'s default);
        * ``laa950_pct``, ``laa910_pct``, ``laa856_pct``: % of lung voxels strictly below -950, -910,
          -856 HU;
        * ``haa_pct``: % of lung voxels from -600 to -250 HU, both included;
        * ``thirds_pct``: [upper, middle, lower], % of the lung's voxels in each third of ITS OWN
          craniocaudal extent. The extent runs along world z (LPS: +z is superior, taken from
          ``direction``) from the lowest voxel edge to the highest voxel edge of that lung; it is cut into
          three slabs of equal height, and each voxel counts in the slab that holds its centre (a centre
          exactly on a slab edge counts in the upper slab). Because world z is used, flipping the array
          together with its geometry gives the same thirds. ``None`` when the lung has no height (an axial
          2D slice) or is empty;
        * ``density_withheld``: ``None``, or the reason the density figures are ``None``.

        An empty lung has ``voxels`` 0, volume/area 0.0 and every other figure ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> hu = np.full((3, 4, 4), -1000.0); lab = np.zeros((3, 4, 4), np.uint8)
    >>> lab[:, :2, :2] = 1; hu[0, :2, :2] = -800.0
    >>> m = lung_measurements(hu, lab, (2.0, 1.0, 1.0))
    >>> m["right"]["volume_ml"], m["right"]["laa950_pct"], m["right"]["thirds_pct"]
    (0.024, 66.6667, [33.3333, 33.3333, 33.3333])
    >>> m["left"]["voxels"], m["left"]["mean_hu"]
    (0, None)
    """
    hu = np.asarray(hu)
    labels = np.asarray(labels)
    if hu.shape != labels.shape:
        raise InputError(f"the image {hu.shape} and the labels {labels.shape} must have the same shape")
    if len(spacing) != labels.ndim:
        raise InputError(f"spacing needs one value per array axis ({labels.ndim}), got {tuple(spacing)}")
    spacing = tuple(float(s) for s in spacing)
    is_2d = labels.ndim == 2
    voxel_mm3 = float(np.prod(spacing))
    z, half_mm = _world_z_mm(labels.shape, spacing, direction)

    out: dict[str, dict[str, Any]] = {}
    for name, values in LUNGS.items():
        mask = np.isin(labels, values)
        n = int(np.count_nonzero(mask))
        entry: dict[str, Any] = {
            "voxels": n,
            "volume_ml": None if is_2d else _num(n * voxel_mm3 / 1000.0, 6),
            "area_cm2": _num(n * voxel_mm3 / 100.0, 6) if is_2d else None,
        }
        if density_valid:
            entry.update(_density(hu[mask]))
            entry["density_withheld"] = None
        else:
            entry.update(dict.fromkeys(DENSITY_KEYS))
            entry["density_withheld"] = density_reason
        entry["thirds_pct"] = _thirds_pct(mask, z, half_mm)
        out[name] = entry
    return out


def _touches_fov_edge(lung: np.ndarray, fov_mask: np.ndarray | None) -> bool:
    """True when the lung reaches an in-plane image side, or lies next to a voxel outside ``fov_mask``."""
    inplane = (lung.ndim - 2, lung.ndim - 1)
    for axis in inplane:
        if lung.take(0, axis=axis).any() or lung.take(-1, axis=axis).any():
            return True
    if fov_mask is None:
        return False
    fov = np.asarray(fov_mask, bool)
    if fov.shape != lung.shape:
        try:
            fov = np.broadcast_to(fov, lung.shape)
        except ValueError:
            log.warning("field-of-view mask shape %s does not fit the labels %s; not checked", fov.shape, lung.shape)
            return False
    box = crop_box(lung, (1.0,) * lung.ndim, 1.0)  # only around the lung: a full-volume dilation is slow
    lung, outside = lung[box], ~fov[box]
    if not outside.any():
        return False
    # one-pixel in-plane neighbourhood: a lung pixel beside (or on) the FOV edge
    footprint = np.zeros((3,) * lung.ndim, bool)
    centre = (1,) * lung.ndim
    footprint[centre] = True
    for axis in inplane:
        for offset in (0, 2):
            idx = list(centre)
            idx[axis] = offset
            footprint[tuple(idx)] = True
    from scipy import ndimage as ndi

    return bool((lung & ndi.binary_dilation(outside, footprint)).any())


def measurement_flags(labels: np.ndarray, *, fov_mask: np.ndarray | None = None, density_valid: bool = True) -> list[str]:
    """Flags that say how far to trust the measurements.

    Parameters
    ----------
    labels : ndarray, shape (P, R, C) or (R, C)
        0 outside, 1 right lung, 2 left lung.
    fov_mask : ndarray of bool, optional
        True inside the scanner's field of view (same shape, or one slice that broadcasts).
    density_valid : bool
        False when the intensities are calibrated rather than true HU.

    Returns
    -------
    list of str
        * ``no_lung_found``: the labels are empty;
        * ``lung_cut_at_first_slice`` / ``lung_cut_at_last_slice`` (volumes only): lung voxels lie in
          the first / last slice, so the lung goes on beyond the scan and its volume is a lower bound;
        * ``lung_cut_by_fov``: lung voxels touch an in-plane image side or the field-of-view edge
          (again the volume or area is a lower bound);
        * ``density_withheld_calibrated_intensity``: density figures are ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((4, 5, 5), np.uint8); lab[0:2, 1:3, 1:3] = 1
    >>> measurement_flags(lab)
    ['lung_cut_at_first_slice']
    >>> measurement_flags(np.zeros((2, 3, 3)), density_valid=False)
    ['no_lung_found', 'density_withheld_calibrated_intensity']
    """
    lung = np.asarray(labels) > 0
    flags: list[str] = []
    if not lung.any():
        flags.append("no_lung_found")
    else:
        if lung.ndim == 3:
            if lung[0].any():
                flags.append("lung_cut_at_first_slice")
            if lung[-1].any():
                flags.append("lung_cut_at_last_slice")
        if _touches_fov_edge(lung, fov_mask):
            flags.append("lung_cut_by_fov")
    if not density_valid:
        flags.append("density_withheld_calibrated_intensity")
    return flags


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    """Plain JSON types from NumPy scalars, tuples, paths and nested containers; arrays are left out."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if not isinstance(v, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, os.PathLike):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _intensity_dict(info: Any) -> dict:
    if hasattr(info, "as_dict"):
        return _jsonable(info.as_dict())
    if dataclasses.is_dataclass(info):
        fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
        return _jsonable(fields)
    return {"path": getattr(info, "path", None)}


def _series_uid(metadata: dict) -> str | None:
    dicom = metadata.get("dicom") or {}
    for key in ("series_uid", "series_instance_uid", "SeriesInstanceUID"):
        if dicom.get(key):
            return str(dicom[key])
        if metadata.get(key):
            return str(metadata[key])
    return None


def _input_dict(volume: Any) -> dict:
    meta = volume.metadata
    return {
        "format": meta.get("format"),
        "path": str(meta["path"]) if meta.get("path") is not None else None,
        "series_uid": _series_uid(meta),
        "grid": {
            "shape": list(volume.shape),
            "spacing_mm": [float(s) for s in volume.spacing],
            "spacing_known": bool(meta.get("spacing_known", True)),
            "origin_mm": [float(o) for o in volume.origin],
            "direction": [float(d) for d in np.asarray(volume.direction).ravel()],
        },
    }


def result_spacing(res: Any) -> tuple[float, ...]:
    """The pixel/voxel size (mm per array axis) to measure a result with: the estimate when the input had
    none (``res.spacing_mm``), else the volume's own."""
    estimate = getattr(res, "spacing_mm", None)
    return tuple(float(s) for s in (estimate or res.volume.spacing))


def build_report(res: Any, *, outputs: dict[str, Any] | None = None) -> dict:
    """The machine-readable report of one segmentation: what went in, how, and what came out.

    Parameters
    ----------
    res : SegmentationResult
        What :func:`lungseg.segment` returned.
    outputs : dict, optional
        Output kind -> path of the files written for this result.

    Returns
    -------
    dict
        JSON-ready, with at least this layout (scripts read it; fields are only ever added)::

            {"lungseg_version", "input": {format, path, series_uid, grid}, "intensity", "settings",
             "lungs": {"right": {volume_ml, mean_hu, sd_hu, pd10_hu, pd15_hu, laa950_pct, laa910_pct,
                                 laa856_pct, haa_pct, thirds_pct: [upper, middle, lower], ...},
                       "left": {...}, "both": {...}},
             "flags": [...], "timings_s": {...}, "outputs": {...}}

        See :func:`lung_measurements` for the definitions and :func:`measurement_flags` for the flags
        (merged with ``res.flags``). Sizes use :func:`result_spacing`: the estimated pixel size when the
        input had none (``input.grid.measured_with_spacing_mm``, flag ``pixel_size_estimated``).
    """
    from . import __version__

    path = res.intensity.path
    density_valid = res.intensity.is_true_hu
    reason = f"intensity path is {path!r}: the values are calibrated pseudo-HU, not true HU"
    spacing = result_spacing(res)
    lungs = lung_measurements(res.hu, res.labels, spacing, direction=res.volume.direction,
                              density_valid=density_valid, density_reason=reason)
    flags = list(res.flags)
    new = measurement_flags(res.labels, fov_mask=res.intensity.fov_mask, density_valid=density_valid)
    flags += [f for f in new if f not in flags]
    if not res.volume.metadata.get("spacing_known", True) and "pixel_size_estimated" not in flags:
        flags.append("pixel_size_estimated")  # sizes rest on an estimated pixel size
    description = _input_dict(res.volume)
    description["grid"]["measured_with_spacing_mm"] = list(spacing)
    return {
        "lungseg_version": __version__,
        "input": description,
        "intensity": _intensity_dict(res.intensity),
        "settings": _jsonable(res.settings.to_dict()),
        "lungs": lungs,
        "flags": flags,
        "timings_s": {k: _num(v, 4) for k, v in res.timings_s.items()},
        "outputs": {k: str(v) for k, v in (outputs or {}).items()},
        "units": {"volume_ml": "ml", "area_cm2": "cm²", "density": "HU", "percentages": "% of the lung's voxels"},
    }


def write_report(res: Any, path: str | os.PathLike, *, outputs: dict[str, Any] | None = None) -> Path:
    """Write :func:`build_report` as indented JSON to ``path`` (atomically); returns the path."""
    report = build_report(res, outputs={**(outputs or {}), "report": path})
    text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    from .io.writers import write_atomic

    return write_atomic(path, lambda fh: fh.write(text))


# ---------------------------------------------------------------------------------------------
# Label conventions
# ---------------------------------------------------------------------------------------------
def _map_values(labels: np.ndarray, mapping: dict[int, int], *, convention: str, strict: bool) -> np.ndarray:
    values = np.unique(labels)
    unknown = sorted(int(v) for v in values if v != 0 and int(v) not in mapping)
    if strict and unknown:
        shown = ", ".join(map(str, unknown[:8])) + (" ..." if len(unknown) > 8 else "")
        raise InputError(
            f"the mask holds values ({shown}) that the {convention!r} convention does not use "
            f"(it uses {sorted(mapping)})",
            hint="choose the right convention with --pred-convention / --ref-convention",
        )
    out = np.zeros(labels.shape, np.uint8)
    for value, lab in mapping.items():
        out[labels == value] = lab
    return out


# Chest Imaging Platform region codes (cip::ChestRegion in Common/cipChestConventions.h)
_CIP_RIGHT_REGIONS = (2, 4, 5, 6, 12, 13, 14)  # RightLung, R superior/middle/inferior lobe, R upper/middle/lower third
_CIP_LEFT_REGIONS = (3, 7, 8, 9, 10, 11)  # LeftLung, L superior/inferior lobe, L upper/middle/lower third
_CIP_WHOLE_LUNG = 1


def _from_cip(labels: np.ndarray) -> np.ndarray:
    region = labels.astype(np.int64) & 0xFF
    out = np.zeros(labels.shape, np.uint8)
    out[np.isin(region, _CIP_RIGHT_REGIONS)] = 1
    out[np.isin(region, _CIP_LEFT_REGIONS)] = 2
    out[region == _CIP_WHOLE_LUNG] = LATERALITY_UNKNOWN
    return out


CONVENTIONS = {
    "lungmask": "1 right lung, 2 left lung (lungmask, JoHof/lungmask R231 output; lungseg's own labels)",
    "cip": "Chest Imaging Platform label maps: value = type << 8 | region; lung regions 1 WholeLung, "
    "2 RightLung, 3 LeftLung, 4-6 right superior/middle/inferior lobe, 7-8 left superior/inferior lobe, "
    "9-11 left upper/middle/lower third, 12-14 right upper/middle/lower third; the type (airway, vessel, ...) "
    "is ignored, so airways and vessels inside a lung region are lung, region 0 (trachea) is not",
    "cip-partial": "the same decoding as 'cip' (the partial lung label maps use the third regions 9-14)",
    "totalseg-lobes": "TotalSegmentator v2 'total' task: 10 lung_upper_lobe_left, 11 lung_lower_lobe_left, "
    "12 lung_upper_lobe_right, 13 lung_middle_lobe_right, 14 lung_lower_lobe_right; other labels ignored",
    "luna16": "LUNA16 seg-lungs-LUNA16 masks: 3 right lung, 4 left lung, 5 trachea (ignored)",
    "binary": "any non-zero value is lung, side unknown (whole-lung scores only)",
}
"""Label conventions :func:`to_lungmask` understands, with what each value means."""


def to_lungmask(labels: np.ndarray, convention: str) -> np.ndarray:
    """Convert a label mask from another tool's convention to lungmask's (1 right, 2 left).

    Parameters
    ----------
    labels : ndarray of int, any shape
    convention : str
        One of :data:`CONVENTIONS`. Sources: lungmask (JoHof/lungmask README: "1 = right lung,
        2 = left lung"); Chest Imaging Platform (acil-bwh/ChestImagingPlatform,
        Common/cipChestConventions.h: ``enum ChestRegion``, and ``GetValueFromChestRegionAndType``,
        value = type × 256 + region); TotalSegmentator (wasserth/TotalSegmentator,
        totalsegmentator/map_to_binary.py, ``class_map["total"]`` in v2; v1 numbered the lobes 13-17);
        LUNA16 (the challenge's ``seg-lungs-LUNA16`` automatic lung masks: 3 and 4 the lungs, 5 the
        trachea; check the sides on your data, descriptions of this set are informal).

    Returns
    -------
    ndarray of uint8, same shape
        0 background, 1 right lung, 2 left lung, :data:`LATERALITY_UNKNOWN` (3) lung of unknown side.

    Raises
    ------
    InputError
        For an unknown convention, or values the 'lungmask' or 'luna16' convention does not use.

    Examples
    --------
    >>> import numpy as np
    >>> to_lungmask(np.array([0, 12, 13, 9, 2 << 8 | 14, 2 << 8]), "cip").tolist()
    [0, 1, 1, 2, 1, 0]
    >>> to_lungmask(np.array([0, 10, 12, 16]), "totalseg-lobes").tolist()
    [0, 2, 1, 0]
    """
    labels = np.asarray(labels)
    if convention == "lungmask":
        return _map_values(labels, {1: 1, 2: 2}, convention=convention, strict=True)
    if convention in ("cip", "cip-partial"):
        return _from_cip(labels)
    if convention == "totalseg-lobes":
        return _map_values(labels, {10: 2, 11: 2, 12: 1, 13: 1, 14: 1}, convention=convention, strict=False)
    if convention == "luna16":
        return _map_values(labels, {3: 1, 4: 2, 5: 0}, convention=convention, strict=True)
    if convention == "binary":
        return np.where(labels != 0, LATERALITY_UNKNOWN, 0).astype(np.uint8)
    raise InputError(f"unknown label convention {convention!r}", hint=f"use one of: {', '.join(CONVENTIONS)}")


# ---------------------------------------------------------------------------------------------
# Overlap and surface distances
# ---------------------------------------------------------------------------------------------
def _surface(mask: np.ndarray) -> np.ndarray:
    """Boundary voxels: mask voxels with a face neighbour outside the mask (the array edge counts as outside)."""
    from scipy import ndimage as ndi

    return mask & ~ndi.binary_erosion(mask, border_value=0)


def _surface_distances(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    """Distance (mm) from each boundary voxel of ``a`` to the nearest boundary voxel of ``b``."""
    from scipy import ndimage as ndi

    dist_to_b = ndi.distance_transform_edt(~_surface(b), sampling=spacing)
    return dist_to_b[_surface(a)]


def overlap_metrics(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]) -> dict[str, Any]:
    """Dice, surface distances and volume difference of two binary masks on the same grid.

    Parameters
    ----------
    pred, ref : ndarray of bool, same shape (2D or 3D)
        The mask to score and the reference.
    spacing : tuple of float
        Voxel size in mm per array axis.

    Returns
    -------
    dict
        * ``dice``: 2|P∩R| / (|P| + |R|); ``None`` when both are empty;
        * ``hd95_mm``: 95th percentile (``numpy.percentile``, linear) of the pooled distances from every
          boundary voxel of each mask to the nearest boundary voxel of the other;
        * ``hd_mm``: the largest of those distances (the Hausdorff distance);
        * ``assd_mm``: the mean of the pooled distances (average symmetric surface distance);
          the distance figures are ``None`` when either mask is empty;
        * ``pred_ml``, ``ref_ml``, ``volume_diff_ml`` (pred - ref), ``volume_diff_pct``
          (100 × (pred - ref) / ref, ``None`` when the reference is empty); for 2D masks these are
          ``pred_cm2``, ``ref_cm2``, ``area_diff_cm2``, ``area_diff_pct``;
        * ``note``: why a figure is ``None`` (else ``None``).

        Boundary voxels are mask voxels with a face neighbour outside the mask or beyond the array;
        distances are between voxel centres, computed with ``scipy.ndimage.distance_transform_edt``
        (``sampling=spacing``).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((1, 10, 10), bool); a[0, 2:6, 2:6] = True
    >>> b = np.roll(a, 2, axis=2)
    >>> m = overlap_metrics(a, b, (1.0, 1.0, 0.5))
    >>> m["dice"], m["hd_mm"]
    (0.5, 1.0)
    """
    pred = np.asarray(pred, bool)
    ref = np.asarray(ref, bool)
    if pred.shape != ref.shape:
        raise InputError(f"the masks must have the same shape, got {pred.shape} and {ref.shape}")
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != pred.ndim:
        raise InputError(f"spacing needs one value per array axis ({pred.ndim}), got {spacing}")
    n_pred, n_ref = int(np.count_nonzero(pred)), int(np.count_nonzero(ref))
    is_2d = pred.ndim == 2
    unit, scale = ("cm2", 100.0) if is_2d else ("ml", 1000.0)
    size = float(np.prod(spacing)) / scale
    out: dict[str, Any] = {"dice": None, "hd95_mm": None, "hd_mm": None, "assd_mm": None}
    notes = []
    if n_pred + n_ref == 0:
        notes.append("both masks are empty: nothing to score")
    else:
        out["dice"] = _num(2.0 * np.count_nonzero(pred & ref) / (n_pred + n_ref), 6)
    if n_pred and n_ref:
        # exact on the bounding box of both masks (plus one voxel): every boundary voxel lies inside it
        box = crop_box(pred | ref, spacing, 0.0)
        box = tuple(slice(max(b.start - 1, 0), b.stop + 1) for b in box)
        p, r = pred[box], ref[box]
        d = np.concatenate([_surface_distances(p, r, spacing), _surface_distances(r, p, spacing)])
        out["hd95_mm"] = _num(np.percentile(d, 95), 4)
        out["hd_mm"] = _num(d.max(), 4)
        out["assd_mm"] = _num(d.mean(), 4)
    elif n_pred + n_ref:
        notes.append(("the prediction" if not n_pred else "the reference") + " is empty: surface distances are undefined")
    diff_key = "area_diff" if is_2d else "volume_diff"
    out[f"pred_{unit}"] = _num(n_pred * size, 6)
    out[f"ref_{unit}"] = _num(n_ref * size, 6)
    out[f"{diff_key}_{unit}"] = _num((n_pred - n_ref) * size, 6)
    out[f"{diff_key}_pct"] = _num(100.0 * (n_pred - n_ref) / n_ref, 4) if n_ref else None
    out["note"] = "; ".join(notes) or None
    return out


def compare_labels(pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]) -> dict[str, dict[str, Any]]:
    """:func:`overlap_metrics` per lung ("right", "left") and for the whole lung ("whole").

    Parameters
    ----------
    pred, ref : ndarray of int, same shape
        Labels in lungmask convention (see :func:`to_lungmask`): 1 right, 2 left,
        3 lung of unknown side.
    spacing : tuple of float
        Voxel size in mm per array axis.

    Returns
    -------
    dict
        ``{"right": {...}, "left": {...}, "whole": {...}}``. When either mask holds lung of unknown side
        (a binary mask), the right and left entries have every figure ``None`` and a ``note``.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.zeros((4, 6), np.uint8); p[1:3, 0:2] = 1; p[1:3, 4:6] = 2
    >>> compare_labels(p, p, (1.0, 1.0))["left"]["dice"]
    1.0
    >>> compare_labels(p, (p > 0) * 3, (1.0, 1.0))["right"]["note"]
    'the reference does not say which lung is which (binary or whole-lung labels)'
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    result: dict[str, dict[str, Any]] = {}
    unknown = [name for name, arr in (("prediction", pred), ("reference", ref)) if np.any(arr == LATERALITY_UNKNOWN)]
    for name, value in (("right", 1), ("left", 2)):
        if unknown:
            entry = overlap_metrics(np.zeros(pred.shape, bool), np.zeros(pred.shape, bool), spacing)
            entry = dict.fromkeys(entry)
            entry["note"] = f"the {' and the '.join(unknown)} does not say which lung is which (binary or whole-lung labels)"
            result[name] = entry
        else:
            result[name] = overlap_metrics(pred == value, ref == value, spacing)
    result["whole"] = overlap_metrics(pred > 0, ref > 0, spacing)
    return result


def align_reference(pred: Any, ref: Any, *, resample: bool = False) -> Any:
    """The reference Volume on the prediction's grid.

    Parameters
    ----------
    pred, ref : Volume
        The prediction and the reference label volumes.
    resample : bool
        Resample a reference on another grid onto the prediction's grid (nearest neighbour,
        SimpleITK; voxels outside the reference become 0). Without it a different grid is an error.

    Returns
    -------
    Volume
        ``ref`` itself when the grids match, else the resampled reference.

    Raises
    ------
    InputError
        When the grids differ and ``resample`` is False, or the dimensions differ (2D vs 3D).
    """
    if pred.same_grid(ref):
        return ref
    if pred.ndim != ref.ndim:
        raise InputError(f"the prediction is {pred.ndim}D {pred.shape} but the reference is {ref.ndim}D {ref.shape}",
                         hint="score a mask against a reference of the same image")
    if not resample:
        raise InputError(
            f"the reference is on a different grid from the prediction: {_grid_difference(ref, pred)}",
            hint="pass --resample (Python: resample=True) to resample the reference onto the prediction's grid, nearest neighbour",
        )
    import SimpleITK as sitk

    def image(vol: Any, array: np.ndarray) -> Any:
        img = sitk.GetImageFromArray(array)
        img.SetSpacing(tuple(float(s) for s in vol.spacing[::-1]))
        if vol.ndim == 3:
            img.SetOrigin(tuple(vol.origin))
            img.SetDirection(tuple(np.asarray(vol.direction).ravel()))
        else:
            img.SetOrigin(tuple(vol.origin[:2]))
            img.SetDirection(tuple(np.asarray(vol.direction)[:2, :2].ravel()))
        return img

    moving = image(ref, np.ascontiguousarray(ref.array))
    target = image(pred, np.zeros(pred.shape, np.uint8))
    out = sitk.Resample(moving, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0, moving.GetPixelID())
    log.info("resampled the reference %s onto the prediction's grid %s (nearest neighbour)", ref.shape, pred.shape)
    return pred.with_array(sitk.GetArrayFromImage(out), kind="reference", resampled=True)


def _num(value: float, digits: int) -> float:
    """A plain Python float rounded to ``digits`` decimals (JSON-ready, never a NumPy scalar)."""
    return round(float(value), digits)


def _grid_difference(ref: Any, pred: Any) -> str:
    """What differs between two grids, e.g. ``'origin (1, 2, 3) vs (0, 0, 0) mm'``."""
    parts = []
    if ref.shape != pred.shape:
        parts.append(f"shape {ref.shape} vs {pred.shape}")
    for name, unit in (("spacing", " mm"), ("origin", " mm"), ("direction", "")):
        a, b = np.ravel(getattr(ref, name)), np.ravel(getattr(pred, name))
        if a.shape != b.shape or not np.allclose(a, b, atol=1e-3 if unit else 1e-5):
            parts.append(f"{name} {_fmt(a)} vs {_fmt(b)}{unit}")
    return ", ".join(parts)


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
