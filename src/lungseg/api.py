"""The Python entry points: ``read`` and ``segment``. The CLI calls exactly these.

    >>> import lungseg
    >>> ct = lungseg.read(demo_scan_path())        # the small real chest CT shipped with lungseg
    >>> res = lungseg.segment(ct)
    >>> res.labels.shape == ct.array.shape, sorted(set(res.labels.ravel().tolist()))
    (True, [0, 1, 2])
    >>> res.intensity.path, res.flags
    ('hu', [])
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import intensity
from .errors import InputError
from .io import read
from .segmentation.pipeline import SegmentationOutput, segment_hu
from .settings import Settings
from .volume import Volume

__all__ = ["read", "segment", "describe", "as_volume", "demo_scan_path", "SegmentationResult", "LABEL_RIGHT", "LABEL_LEFT"]

log = logging.getLogger(__name__)

LABEL_RIGHT = 1
"""Label of the patient's right lung (lungmask convention)."""
LABEL_LEFT = 2
"""Label of the patient's left lung (lungmask convention)."""


@dataclasses.dataclass(eq=False)
class SegmentationResult:
    """What ``segment`` returns.

    Attributes
    ----------
    labels : ndarray of uint8, same shape as ``volume.array``
        0 outside the lungs, 1 right lung, 2 left lung.
    volume : Volume
        The input as read (values as stored), carrying the geometry every output is written on.
    hu : ndarray
        The (pseudo-)HU image the segmentation ran on, same shape.
    intensity : intensity.IntensityInfo
        Which intensity path was taken (HU, fixed HU, calibrated, user window) and why.
    body : ndarray of bool
        The patient's body (without table and outside air); used to clip the ROI.
    settings : Settings
    flags : list of str
        Facts about the result a user should know (``"no_lung_found"``, ``"lung_cut_at_first_slice"``, ...).
    timings_s : dict
        Seconds spent per stage.
    spacing_mm : tuple of float or None
        Pixel/voxel size (mm per array axis) to measure with: ``volume.spacing``, or the estimate when the
        input had none (flag ``pixel_size_estimated``). None means ``volume.spacing``.
    """

    labels: np.ndarray
    volume: Volume
    hu: np.ndarray
    intensity: intensity.IntensityInfo
    body: np.ndarray
    settings: Settings
    flags: list[str]
    timings_s: dict[str, float]
    spacing_mm: tuple[float, ...] | None = None

    @property
    def lung(self) -> np.ndarray:
        """Whole-lung boolean mask (right or left)."""
        return self.labels > 0

    def label_volume(self) -> Volume:
        """The labels as a Volume on the input's grid."""
        return self.volume.with_array(self.labels, kind="labels")

    def masked(self) -> Volume:
        """The input with everything outside the lungs set to air.

        Values stay in the input's own domain: -1024 HU for HU input (in its stored dtype), and the
        value of black/air (the calibrated air value, 0 for 8-bit windowed images) otherwise.
        So the result is black in every viewing window: no border of any kind is left.
        """
        air = self.intensity.air_value
        arr = self.volume.array
        out = np.where(self.lung, arr, np.asarray(air).astype(arr.dtype, copy=False))
        return self.volume.with_array(out, kind="masked")

    def roi(self, margin_mm: float) -> Volume:
        """The lungs grown by ``margin_mm`` millimetres (Euclidean, anisotropy-aware), clipped to the body.

        Labels are kept: each grown voxel takes the label of the nearest lung voxel.
        """
        from .segmentation.steps import grow_labels_mm

        grown = grow_labels_mm(self.labels, self.volume.spacing, margin_mm, within=self.body | self.lung)
        return self.volume.with_array(grown, kind="roi", margin_mm=float(margin_mm))


def demo_scan_path() -> Path:
    """Path of the demo scan inside the installed package: a COPDGene chest CT from the Chest Imaging
    Platform test data, 64×64×79 voxels of 4.17×4.17×3.99 mm, HU (licence: ``LICENSE-demo.txt`` beside it)."""
    from importlib.resources import files

    return Path(str(files("lungseg") / "data" / "demo_chest_ct.nrrd"))


def as_volume(
    ct: Volume | str | os.PathLike | np.ndarray,
    *,
    spacing: tuple[float, ...] | None = None,
    **read_options: Any,
) -> Volume:
    """Turn what a user holds (a Volume, a path, or an array) into a Volume.

    A 2D or 3D NumPy array is taken in (plane, row, column) order; ``spacing`` in mm per axis, when known.
    Without spacing the pixel size is unknown and is estimated from the image where needed.
    """
    if isinstance(ct, Volume):
        return ct
    if isinstance(ct, (str, os.PathLike)):
        return read(ct, spacing=spacing, **read_options)
    if isinstance(ct, np.ndarray):
        from .io.validate import check_array

        arr = check_array(ct, source="the array")
        known = spacing is not None
        sp = tuple(spacing) if known else (1.0,) * arr.ndim
        return Volume(arr, sp, metadata={"format": "array", "spacing_known": known})
    raise InputError(
        f"cannot segment an object of type {type(ct).__name__}",
        hint="pass a lungseg Volume, a file or folder path, or a 2D/3D NumPy array",
    )


def segment(
    ct: Volume | str | os.PathLike | np.ndarray,
    *,
    spacing: tuple[float, ...] | None = None,
    settings: Settings | None = None,
    window: tuple[float, float] | None = None,
    hu: bool = False,
    **read_options: Any,
) -> SegmentationResult:
    """Segment the lungs of a chest CT volume or slice.

    Parameters
    ----------
    ct : Volume, path or ndarray
        The image. Paths are read with :func:`lungseg.read` (``read_options`` are passed on).
    spacing : tuple of float, optional
        Pixel/voxel size in mm for a NumPy array input (or a file format without it).
    settings : Settings, optional
        Segmentation parameters; the defaults suit chest CT.
    window : (low, high), optional
        The HU window the image was saved with, when it is not in HU (e.g. ``(-1200, 600)`` for a PNG
        made with that window). Overrides the automatic calibration.
    hu : bool
        Declare that the values are HU already (skip the plausibility checks' calibration fallback).

    Returns
    -------
    SegmentationResult
        ``labels`` is uint8 with the input array's shape: 0 outside, 1 right lung, 2 left lung.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    volume = as_volume(ct, spacing=spacing, **read_options)
    if not isinstance(ct, Volume):  # (a Volume handed in was read elsewhere: no read time to give)
        timings["read_s"] = time.perf_counter() - t0
    settings = settings or Settings()

    t1 = time.perf_counter()
    hu_array, info = intensity.to_hu(volume, window=window, hu=hu)
    timings["intensity_s"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    out: SegmentationOutput = segment_hu(
        hu_array, volume, settings, fov_mask=info.fov_mask, calibrated=not info.is_true_hu,
    )
    timings["segment_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0

    flags = list(out.flags)
    flags += [f for f in info.flags if f not in flags]
    if "no_lung_found" in flags:
        log.warning("no lung found in %s: the mask is empty", volume.metadata.get("path", "the image"))
    return SegmentationResult(
        labels=out.labels,
        volume=volume,
        hu=hu_array,
        intensity=info,
        body=out.body,
        settings=settings,
        flags=flags,
        timings_s=timings,
        # the pipeline's estimate is isotropic (its canonical order does not matter)
        spacing_mm=(float(out.spacing[-1]),) * volume.ndim if "pixel_size_estimated" in out.flags and out.spacing else None,
    )


def describe(path: str | os.PathLike, *, window: tuple[float, float] | None = None, hu: bool = False, **read_options: Any) -> dict:
    """What an input is and how lungseg will read it: format, series found and chosen, grid, intensity path.

    This is what ``lungseg info`` prints.
    """
    from .io import inspect

    facts = inspect(path, series_uid=read_options.get("series_uid"))
    volume = read(path, **read_options)
    _, info = intensity.to_hu(volume, window=window, hu=hu)
    facts["grid"] = {
        "shape": list(volume.shape),
        "spacing_mm": [round(s, 6) for s in volume.spacing],
        "spacing_known": bool(volume.metadata.get("spacing_known", True)),
        "origin_mm": [round(o, 4) for o in volume.origin],
        "direction": [round(float(d), 6) for d in volume.direction.ravel()],
        "dtype": str(volume.array.dtype),
        "value_range": [float(volume.array.min()), float(volume.array.max())],
    }
    facts["intensity"] = info.as_dict()
    facts["warnings"] = list(volume.metadata.get("warnings", []))
    return facts
