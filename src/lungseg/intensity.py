"""Intensities: HU checks, scanner padding, and calibration of images that are not in HU.

Every image lungseg segments goes through :func:`to_hu` first. It decides what the stored values mean
and returns a (pseudo-)HU image in which scanner padding and everything outside the reconstructed
field of view is air (``AIR_HU`` = -1024). Four paths, recorded in ``IntensityInfo.path``:

``"hu"``
    The values are Hounsfield units (DICOM after rescale, NIfTI, NRRD, ...), or the user said so
    (``hu=True``). Only the padding is fixed.
``"hu-fixed"``
    The values are HU plus a storage offset (unsigned values written without the rescale intercept,
    a +1024 shift, ...); the offset is removed (``details["offset_hu"]``).
``"calibrated"``
    The values are not HU (8-bit windowed PNG/JPEG, min-max normalised arrays, soft-tissue windowed
    volumes): a linear map to pseudo-HU is estimated from the image itself, from two landmarks, air
    (outside air at -1000 HU, or aerated lung at -850 HU when no outside air is seen) and soft tissue
    (+40 HU). The lung landmark may be denser than -850 HU (ground glass, blurred small lungs), so
    with it the scale is capped where the darkest in-field values reach air. Pseudo-HU are good
    enough to segment, not to measure densities.
``"window"``
    The user gave the window the image was saved with (``window=(low, high)``): the stored range
    (0..255, 0..65535 or 0..1) is mapped linearly onto it.

Scanner padding is found from the image, not from tags (``PixelPaddingValue`` is often missing or
wrong): in HU data it is every value below -1024 (-2000, -2048, -3024, -32768, ...), an implausibly
high value holding many pixels (63536 and the like), or a -1024 region that fills the outside of a
centred circle. In other data it is a population at the darkest values, separated from the rest of
the histogram by an empty gap (so resizing may blur its edge) and connected to the image border.
A window that starts below -1024 HU puts -1024 padding and -1000 HU outside air a grey level apart, so
that population may hold the outside air too: padding is one exact value, air is noisy, so its noisy
pixels away from the population's edge are taken as the outside-air landmark (a body filling the field
of view then leaves only its partial-volume edge, never used as air: outside air is never brighter
than lung).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import cc3d
import numpy as np
from scipy import ndimage as ndi

from .errors import InputError, SettingsError
from .volume import Volume

__all__ = ["AIR_HU", "IntensityInfo", "to_hu", "PATHS"]

log = logging.getLogger(__name__)

AIR_HU = -1024.0
"""The value of air, padding and everything outside the field of view in the returned image."""
OUTSIDE_AIR_HU = -1000.0
"""Landmark: air around the patient."""
LUNG_HU = -850.0
"""Landmark: aerated lung parenchyma."""
SOFT_TISSUE_HU = 40.0
"""Landmark: the main bright mode inside the body (muscle, organs, blood)."""
MAX_HU = 3071.0
"""Pseudo-HU are clipped to [AIR_HU, MAX_HU] (the usual 12-bit CT range)."""
PADDING_BELOW_HU = -1100.0
"""A value below this holding many pixels is scanner padding (-2000, -2048, -3024, -32768, ...);
every value below ``AIR_HU`` is set to ``AIR_HU`` in any case."""
MAX_PLAUSIBLE_HU = 3100.0
"""HU values above this (outside padding) are implausible and reported."""
TISSUE_MODE_RANGE_HU = (-200.0, 250.0)
"""In real HU data the main bright mode (soft tissue or fat) lies in this range."""
MIN_HU_CONTRAST_HU = 300.0
"""In HU data the dark (air/lung) and bright (tissue) landmarks are at least this far apart."""
KNOWN_OFFSETS_HU = (1024.0, 32768.0)
"""Storage offsets that are detected and removed: HU+1024 (unsigned without rescale), HU+32768."""
ASSUMED_WINDOW_WIDTH_HU = 400.0
"""When an image is too ambiguous to calibrate (soft-tissue window), its stored range is assumed to
span a soft-tissue window of this width centred near ``SOFT_TISSUE_HU``."""

PATHS = ("hu", "hu-fixed", "calibrated", "window")
"""The intensity paths: true HU, HU after fixing a storage mistake, calibrated pseudo-HU, a user window."""

_MAX_SAMPLES = 1 << 18
_MIN_PADDING_FRAC = 0.005
"""A padding value holds at least this fraction of the pixels."""
_GAP_WIDTH_FRAC = 0.08
"""Padding is separated from the rest by an empty gap at least this wide (fraction of the value range)..."""
_GAP_MASS_FRAC = 0.01
"""... holding less than this fraction of the pixels."""
_MIN_LANDMARK_FRAC = 0.01
"""A landmark population holds at least this fraction of the in-field pixels."""
_MIN_CONTRAST_FRAC = 0.2
"""Air lies at least this fraction of the in-field value range (0.5-99.5 percentiles) below soft tissue;
fat against muscle is a smaller step."""
_SATURATED_FRAC = 0.5
"""A dark landmark is clipped (saturated) when this fraction of its pixels sit exactly at the minimum."""
_CIRCLE_COVER_FRAC = 0.98
"""A -1024 region is circular padding when it covers this fraction of every ring outside its inner radius."""
_LANDMARK_SLICES = 24
"""Number of slices (evenly spread) used to estimate the landmarks of a 3D volume."""
_DARKEST_IN_FIELD_PCT = 1.0
"""Percentile of the in-field values taken as their darkest (robust to a few odd pixels)."""
_PADDING_EDGE_PX = 2
"""Resizing blurs the padding's value into this many pixels along its edge; deeper inside, padding
keeps its one value exactly."""


@dataclasses.dataclass(frozen=True)
class IntensityInfo:
    """How the stored values were turned into (pseudo-)HU.

    Attributes
    ----------
    path : str
        One of ``"hu"``, ``"hu-fixed"``, ``"calibrated"``, ``"window"`` (see the module docstring).
        Only ``"hu"`` and ``"hu-fixed"`` give true HU; the others give pseudo-HU.
    air_value : float
        The value, in the input's own stored units, that stands for air (black in every window):
        -1024 for HU data (plus the offset for ``"hu-fixed"``), 0 for unsigned windowed images, the
        darkest in-field value for calibrated float or signed arrays. Used to write masked images.
    details : dict
        JSON-friendly facts: padding values found, offset removed, landmarks and the linear map used.
    warnings : tuple of str
        Human-readable warnings (also logged).
    flags : tuple of str
        Machine-readable facts: ``"padding_fixed"``, ``"offset_fixed"``, ``"intensity_calibrated"``,
        ``"intensity_window"``, ``"intensity_ambiguous"``, ``"hu_implausible"``.
    fov_mask : ndarray of bool or None
        Same shape as the image, True inside the reconstructed field of view; None when no padding
        was found (the field of view is then unknown, usually the whole image). Not in ``as_dict``.
    """

    path: str
    air_value: float
    details: dict = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    fov_mask: np.ndarray | None = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise ValueError(f"unknown intensity path {self.path!r}; one of {PATHS}")

    @property
    def is_true_hu(self) -> bool:
        """True when the returned values are real HU (path ``"hu"`` or ``"hu-fixed"``)."""
        return self.path in ("hu", "hu-fixed")

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no arrays).

        Examples
        --------
        >>> IntensityInfo("hu", -1024.0).as_dict()["path"]
        'hu'
        """
        return {
            "path": self.path,
            "true_hu": self.is_true_hu,
            "air_value": float(self.air_value),
            "details": _jsonable(self.details),
            "warnings": list(self.warnings),
            "flags": list(self.flags),
            "fov_known": self.fov_mask is not None,
        }


def to_hu(
    volume: Volume,
    *,
    window: tuple[float, float] | None = None,
    hu: bool = False,
) -> tuple[np.ndarray, IntensityInfo]:
    """The image in (pseudo-)HU, with scanner padding and outside-of-field pixels set to ``AIR_HU``.

    Parameters
    ----------
    volume : Volume
        The image as read (values as stored after any DICOM rescale). Not modified.
    window : (low, high), optional
        The HU window the image was saved with, e.g. ``(-1200, 600)``: the stored range (0..255 for
        8-bit, 0..65535 for 16-bit, 0..1 for floats in [0, 1]) is mapped linearly onto it.
    hu : bool
        Trust the values as HU (padding is still fixed, no offset or calibration is applied).

    Returns
    -------
    hu : ndarray of float32, same shape as ``volume.array``
        (Pseudo-)HU, clipped to [-1024, 3071] for calibrated and windowed input.
    info : IntensityInfo
        The path taken and the facts behind it.

    Raises
    ------
    SettingsError
        When ``window`` is not two finite numbers with low < high, or both ``window`` and ``hu`` are given.
    InputError
        When the image holds NaN or infinite values, or a window is given for values that are
        not in a stored 8-bit, 16-bit or [0, 1] range.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((32, 32), -1000, np.int16); img[4:28, 4:28] = 40; img[:2] = -3024
    >>> arr, info = to_hu(Volume(img, (1.0, 1.0)))
    >>> info.path, float(arr.min()), float(arr[16, 16])
    ('hu', -1024.0, 40.0)
    >>> picture = np.zeros((16, 16), np.uint8); picture[:, 8:] = 255
    >>> arr, info = to_hu(Volume(picture, (1.0, 1.0)), window=(-1000, 1000))
    >>> info.path, float(arr.min()), float(arr.max())
    ('window', -1000.0, 1000.0)
    """
    arr = np.asarray(volume.array)
    if window is not None:
        window = _check_window(window)
        if hu:
            raise SettingsError("give either a window or hu=True, not both", hint="a windowed image is not in HU")
    if arr.dtype == bool:
        arr = arr.view(np.uint8)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError("the image holds NaN or infinite values", hint="replace them (e.g. with -1024) before segmenting")
    if arr.size == 0:
        raise InputError("the image is empty (no pixels)")

    if window is not None:
        out, info = _window_path(arr, window)
    elif hu:
        out, info = _hu_path(arr, offset=0.0, path="hu")
    elif _is_windowed_storage(arr, volume.metadata):
        out, info = _calibrated_path(arr, reason="8-bit or [0, 1] values are a windowed or normalised picture, not HU")
    else:
        out, info = _classify_and_convert(arr)
    _compare_padding_tag(info, volume.metadata)
    for text in info.warnings:
        log.warning("%s: %s", volume.metadata.get("path", "image"), text)
    log.info("intensity path %s (%s)", info.path, ", ".join(info.flags) or "no flags")
    return out, info


def _compare_padding_tag(info: IntensityInfo, metadata: dict) -> None:
    """Record the DICOM PixelPaddingValue (array units) beside the padding found in the image.

    The tag is only reported, never used: it is often missing or wrong."""
    tag = (metadata.get("dicom") or {}).get("pixel_padding_value")
    if tag is None or not info.is_true_hu:
        return
    tag_hu = float(tag) - float(info.details.get("offset_hu", 0.0))
    info.details["pixel_padding_tag_hu"] = tag_hu
    info.details["pixel_padding_tag_matches"] = tag_hu in info.details.get("padding_values_hu", [])


# -- choosing the path ------------------------------------------------------------------------------


def _check_window(window: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in window)
    except (TypeError, ValueError):
        raise SettingsError(f"window must be two numbers (low, high) in HU, got {window!r}", hint="e.g. window=(-1200, 600)") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise SettingsError(f"window must be two finite HU values with low < high, got ({low}, {high})", hint="e.g. window=(-1200, 600)")
    return low, high


def _is_windowed_storage(arr: np.ndarray, metadata: dict) -> bool:
    """True for images whose values cannot be HU: 8-bit storage, or floats within [0, 1]."""
    if arr.dtype in (np.uint8, np.int8) or metadata.get("bit_depth") == 8:
        return True
    return arr.dtype.kind == "f" and float(arr.min()) >= 0.0 and float(arr.max()) <= 1.0


def _classify_and_convert(arr: np.ndarray) -> tuple[np.ndarray, IntensityInfo]:
    """Wide-range data: HU, HU plus a storage offset, or (failing both) calibrate."""
    sample = _sample(arr).astype(np.float32)
    core = _without_extreme_pads(sample)
    marks = _histogram_landmarks(core)
    if marks is None:
        if -1100.0 <= float(np.median(sample)) <= MAX_PLAUSIBLE_HU:
            return _hu_path(arr, offset=0.0, path="hu", extra_warning="the image is uniform; its values are taken as HU")
        return _calibrated_path(arr, reason="the image is uniform")
    dark, tissue = marks
    # HU data spans air to tissue (> MIN_HU_CONTRAST_HU) or at least holds fat below zero; a picture
    # stored in a wide type (0..255 values in int16, z-scored floats) does neither
    spans_hu = tissue - dark >= MIN_HU_CONTRAST_HU or float(np.percentile(core, 0.5)) < -50.0
    if _in_tissue_range(tissue) and spans_hu:
        return _hu_path(arr, offset=0.0, path="hu")
    for offset in KNOWN_OFFSETS_HU:
        if _in_tissue_range(tissue - offset) and (dark - offset) < TISSUE_MODE_RANGE_HU[1]:
            return _hu_path(arr, offset=offset, path="hu-fixed")
    return _calibrated_path(
        arr,
        reason=f"the values do not look like HU (main bright mode at {tissue:.4g}, expected soft tissue near 40 HU)",
        not_hu_warning=True,
    )


def _in_tissue_range(value: float) -> bool:
    return TISSUE_MODE_RANGE_HU[0] <= value <= TISSUE_MODE_RANGE_HU[1]


# -- HU ------------------------------------------------------------------------------------------


def _hu_path(arr: np.ndarray, *, offset: float, path: str, extra_warning: str | None = None) -> tuple[np.ndarray, IntensityInfo]:
    """Fix padding (and remove ``offset``) of HU data."""
    warnings: list[str] = [extra_warning] if extra_warning else []
    flags: list[str] = []
    details: dict[str, Any] = {}
    sample = _sample(arr)
    hu = arr.astype(np.float32)
    if offset:
        hu -= np.float32(offset)
        flags.append("offset_fixed")
        details["offset_hu"] = offset
        warnings.append(f"the values are HU + {offset:g} (stored without their rescale intercept); the offset was removed")
    sample_hu = sample.astype(np.float32) - np.float32(offset)

    values, counts = np.unique(sample_hu[sample_hu < PADDING_BELOW_HU], return_counts=True)
    low_pads = values[counts >= _MIN_PADDING_FRAC * sample.size]
    high_values, high_counts = np.unique(sample_hu[sample_hu > MAX_PLAUSIBLE_HU], return_counts=True)
    high_pads = high_values[high_counts >= _MIN_PADDING_FRAC * sample.size]
    below = int(np.count_nonzero(sample_hu < AIR_HU))

    fov_mask = None
    outside = None
    if low_pads.size or high_pads.size:
        raw = np.concatenate([low_pads, high_pads]).astype(np.float64) + offset
        outside = np.isin(arr, raw.astype(arr.dtype))
        details["padding_values_hu"] = [float(v) for v in np.concatenate([low_pads, high_pads])]
    elif float(sample_hu.min()) == AIR_HU:
        circle = _circular_padding(arr, float(AIR_HU + offset))
        if circle is not None:
            outside = circle
            details["padding_values_hu"] = [AIR_HU]
            details["padding_note"] = "a -1024 region filling the outside of a centred circle (same value as air)"
    if outside is not None:
        fov_mask = ~outside
        details["outside_fov_frac"] = round(float(np.count_nonzero(outside)) / arr.size, 4)
    if below or high_pads.size or float(hu.min()) < AIR_HU:  # the sample may miss a few pixels below air
        np.maximum(hu, np.float32(AIR_HU), out=hu)
        if high_pads.size:
            hu[np.isin(arr, (high_pads + offset).astype(arr.dtype))] = AIR_HU
        flags.append("padding_fixed")
        details["values_below_air_frac"] = round(below / sample.size, 4)

    kept = sample_hu[(sample_hu >= AIR_HU) & ~np.isin(sample_hu, high_pads)]
    if kept.size:
        p_hi = float(np.percentile(kept, 99.9))
        marks = _histogram_landmarks(kept[kept > AIR_HU]) if np.any(kept > AIR_HU) else None
        if p_hi > MAX_PLAUSIBLE_HU:
            warnings.append(f"0.1 % of the values are above {p_hi:.0f} HU (more than {MAX_PLAUSIBLE_HU:.0f}): check they are HU")
            flags.append("hu_implausible")
        if marks is not None:
            details["air_or_lung_hu"] = round(marks[0], 1)
            details["soft_tissue_hu"] = round(marks[1], 1)
            if not _in_tissue_range(marks[1]):
                warnings.append(f"the main bright mode is at {marks[1]:.0f} HU, not near soft tissue (40 HU): check the values are HU")
                flags.append("hu_implausible")
    air_value = float(max(AIR_HU + offset, _dtype_min(arr.dtype)))
    return hu, IntensityInfo(path, air_value, details, tuple(warnings), tuple(flags), fov_mask)


def _circular_padding(arr: np.ndarray, pad_value: float) -> np.ndarray | None:
    """Where ``pad_value`` fills every pixel outside a circle centred on the image (padding equal to
    air), else None. Clipped air also holds the value but never fills whole rings: only a fraction of
    noisy air pixels reach the clip value."""
    planes = arr[None] if arr.ndim == 2 else arr
    picks = np.unique(np.linspace(0, planes.shape[0] - 1, min(5, planes.shape[0])).astype(int))
    at_min = np.logical_and.reduce([planes[k] == pad_value for k in picks])
    if np.count_nonzero(at_min) < _MIN_PADDING_FRAC * at_min.size:
        return None
    rows, cols = at_min.shape
    rr, cc = np.ogrid[:rows, :cols]
    ring = np.hypot(rr - (rows - 1) / 2.0, cc - (cols - 1) / 2.0).astype(np.int64)
    per_ring = np.bincount(ring.ravel())
    covered = np.bincount(ring.ravel(), weights=at_min.ravel()) / np.maximum(per_ring, 1)
    full = covered >= _CIRCLE_COVER_FRAC
    if not full[-1]:
        return None
    inner = int(full.size - np.argmin(full[::-1])) if not full.all() else 0
    if np.count_nonzero(ring >= inner) < _MIN_PADDING_FRAC * ring.size:
        return None
    return (arr == pad_value) & (ring >= inner - 1)  # the ring the circle cuts through is partly padding


# -- user window ---------------------------------------------------------------------------------


def _window_path(arr: np.ndarray, window: tuple[float, float]) -> tuple[np.ndarray, IntensityInfo]:
    lo_stored, hi_stored = _stored_range(arr)
    low, high = window
    scale = (high - low) / (hi_stored - lo_stored)
    out = (arr.astype(np.float32) - np.float32(lo_stored)) * np.float32(scale) + np.float32(low)
    padding, pad_limit = _dark_padding(arr)
    if padding is not None:
        padding &= out < PADDING_BELOW_HU  # darker than air in the user's window: not outside air
        if np.count_nonzero(padding) < _MIN_PADDING_FRAC * arr.size:
            padding, pad_limit = None, None
    np.clip(out, AIR_HU, MAX_HU, out=out)
    details = {
        "window_hu": [low, high],
        "stored_range": [lo_stored, hi_stored],
        "map": {"scale_hu_per_unit": scale, "offset_hu": low - scale * lo_stored},
    }
    flags = ["intensity_window"]
    if padding is not None:
        details["padding_limit"] = pad_limit
        details["outside_fov_frac"] = round(float(np.count_nonzero(padding)) / arr.size, 4)
        flags.append("padding_fixed")
    fov = None if padding is None else ~padding
    return out, IntensityInfo("window", float(lo_stored), details, (), tuple(flags), fov)


def _stored_range(arr: np.ndarray) -> tuple[float, float]:
    """The range a windowed image was stored in: 0..1, 0..255 or 0..65535."""
    lo, hi = float(arr.min()), float(arr.max())
    if lo >= 0:
        for top in (1.0, 255.0, 65535.0):
            if hi <= top and (top != 1.0 or arr.dtype.kind == "f"):
                return 0.0, top
    raise InputError(
        f"a window was given but the values ({lo:g}..{hi:g}) are not a stored 8-bit, 16-bit or 0..1 picture",
        hint="drop --window (the values are probably HU already; use --hu to say so)",
    )


# -- calibration ---------------------------------------------------------------------------------


def _calibrated_path(arr: np.ndarray, *, reason: str, not_hu_warning: bool = False) -> tuple[np.ndarray, IntensityInfo]:
    """Pseudo-HU from landmarks found in the image itself (per slice for per-slice normalised stacks)."""
    if arr.ndim == 3 and arr.dtype.kind == "f" and arr.shape[0] > 1 and _per_slice_normalised(arr):
        parts = [_calibrate(arr[k]) for k in range(arr.shape[0])]
        out = np.stack([p[0] for p in parts])
        fovs = [p[4] for p in parts]
        fov = None if all(f is None for f in fovs) else np.stack([np.ones(arr.shape[1:], bool) if f is None else f for f in fovs])
        details: dict[str, Any] = {"per_slice": True, "slices": [p[1] for p in parts]}
        warns = sorted({w for p in parts for w in p[2]})
        flags = sorted({f for p in parts for f in p[3]})
        air_value = float(min(p[5] for p in parts))
    else:
        out, details, warns, flags, fov, air_value = _calibrate(arr)
        warns, flags = list(warns), list(flags)
    details["reason"] = reason
    if not_hu_warning:
        warns.insert(0, reason + "; calibrated to pseudo-HU from the image")
    flags = ["intensity_calibrated"] + [f for f in flags if f != "intensity_calibrated"]
    return out, IntensityInfo("calibrated", air_value, details, tuple(warns), tuple(flags), fov)


def _per_slice_normalised(arr: np.ndarray) -> bool:
    """True when every slice spans the same min..max (each slice min-max normalised on its own)."""
    lows = arr.min(axis=(1, 2))
    highs = arr.max(axis=(1, 2))
    return bool(np.all(lows == lows[0]) and np.all(highs == highs[0]))


def _calibrate(arr: np.ndarray) -> tuple[np.ndarray, dict, list[str], list[str], np.ndarray | None, float]:
    """Estimate and apply the linear map to pseudo-HU for one image (2D) or one volume (3D, one map)."""
    details: dict[str, Any] = {}
    warns: list[str] = []
    flags: list[str] = []
    vmin = float(arr.min())
    padding, pad_limit = _dark_padding(arr)
    valid = np.ones(arr.shape, bool) if padding is None else ~padding
    if padding is not None:
        details["padding_limit"] = pad_limit
        details["outside_fov_frac"] = round(float(np.count_nonzero(padding)) / arr.size, 4)
        flags.append("padding_fixed")

    marks = _image_landmarks(arr, valid, padding)
    if padding is not None and marks.anchor is not None and _maps_to_air(arr[padding], marks):
        # the dark population calibrates to air: outside air, not padding (an image without a
        # field-of-view circle); it stays padding when the whole image gives no usable air landmark
        # (the population piles up on one clipped value: padding as dark as the air beside it)
        whole = _image_landmarks(arr, np.ones(arr.shape, bool), None)
        if whole.anchor is not None:
            padding, valid = None, np.ones(arr.shape, bool)
            flags.remove("padding_fixed")
            details = {"dark_border_population_is_air": True}
            marks = whole
    details["landmarks"] = marks.facts
    tissue_ref = marks.tissue_ref
    saturated = False
    if marks.anchor is not None:
        dark_ref, dark_hu = marks.anchor
        scale = (SOFT_TISSUE_HU - dark_hu) / (tissue_ref - dark_ref)
        if dark_hu > OUTSIDE_AIR_HU:
            # lung is not always at -850 HU (ground glass, blurred small lungs): nothing in the field of
            # view is darker than air, so the scale is capped where its darkest values reach air
            sample, inside = _sample(arr), _sample(valid)
            darkest = float(np.percentile(sample[inside], _DARKEST_IN_FIELD_PCT))
            if darkest < dark_ref:
                scale = min(scale, (SOFT_TISSUE_HU - AIR_HU) / (tissue_ref - darkest))
    elif padding is not None and tissue_ref > pad_limit:
        # no air inside the field of view (a slice below the lungs, a sagittal midline): the padding is
        # the only dark landmark; it is air (-1024 bands) or darker, so lung-free tissue stays tissue
        dark_ref = float(np.median(arr[padding]))
        scale = (SOFT_TISSUE_HU - OUTSIDE_AIR_HU) / (tissue_ref - dark_ref)
        details["landmarks"]["padding_as_air"] = dark_ref
        warns.append("no air inside the field of view: the padding was taken as air, so the pseudo-HU scale is rough")
        flags.append("intensity_ambiguous")
    else:
        saturated = marks.saturated
        if saturated:
            reason = (
                "air and lung are clipped to the same darkest value (a soft-tissue window?): lung cannot be told "
                "from outside air and the scale is unknown"
            )
        else:
            reason = "no dark (air) and bright (tissue) populations could be told apart"
        top = float(arr.max())
        span = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0 if top <= 65535.0 else max(top - vmin, 1.0)
        scale = ASSUMED_WINDOW_WIDTH_HU / span
        details["assumed_window_width_hu"] = ASSUMED_WINDOW_WIDTH_HU
        clipped = " with the clipped darkest values as air" if saturated else ""
        warns.append(
            f"the image is too ambiguous to calibrate ({reason}); best guess: a {ASSUMED_WINDOW_WIDTH_HU:g} HU "
            f"wide window{clipped}. Give the window (--window LOW,HIGH) if you know it"
        )
        flags.append("intensity_ambiguous")
    offset = SOFT_TISSUE_HU - scale * tissue_ref
    details["map"] = {"scale_hu_per_unit": float(scale), "offset_hu": float(offset)}
    out = arr.astype(np.float32) * np.float32(scale) + np.float32(offset)
    if saturated:
        out[arr == vmin] = OUTSIDE_AIR_HU
    if padding is not None:
        out[padding] = AIR_HU
    np.clip(out, AIR_HU, MAX_HU, out=out)
    if arr.dtype.kind == "u":
        air_value = 0.0
    else:
        air_value = float(arr[valid].min()) if valid.any() else vmin
    return out, details, warns, flags, (None if padding is None else ~padding), air_value


def _maps_to_air(pixels: np.ndarray, marks: "_Landmarks") -> bool:
    """True when ``pixels`` would calibrate to air or above (not below ``PADDING_BELOW_HU``)."""
    dark_ref, dark_hu = marks.anchor
    scale = (SOFT_TISSUE_HU - dark_hu) / (marks.tissue_ref - dark_ref)
    return bool(dark_hu + scale * (float(np.median(pixels)) - dark_ref) >= PADDING_BELOW_HU)


def _dark_padding(arr: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """Outside-of-field padding of a non-HU image: the darkest population, cut off from the rest of the
    histogram by an empty gap, and connected to the image border (per slice). Returns (mask, upper value)."""
    sample = _sample(arr).astype(np.float32)
    lo = float(sample.min())
    hi = float(np.percentile(sample, 99.5))
    if hi <= lo:
        return None, None
    nbins = 200 if arr.dtype.kind == "f" else int(min(200, max(hi - lo, 1)))  # integer bins never fall empty between values
    hist, edges = np.histogram(sample, bins=nbins, range=(lo, hi))
    frac = hist / sample.size
    width = max(int(round(_GAP_WIDTH_FRAC * nbins)), 1)
    window_mass = np.convolve(frac, np.ones(width), mode="valid")  # mass of bins [i, i + width)
    below = np.cumsum(frac)
    limit = None
    for i in range(1, window_mass.size):
        if below[i - 1] > 0.6:
            break
        if below[i - 1] >= _MIN_PADDING_FRAC and window_mass[i] < _GAP_MASS_FRAC:
            stop = min(i + width, nbins - 1)
            while i < stop and hist[i] > 0:  # take in the population's last few values
                i += 1
            limit = float(edges[i])
            break
    if limit is None:
        return None, None
    candidate = arr <= limit
    mask = _border_connected(candidate)
    if np.count_nonzero(mask) < _MIN_PADDING_FRAC * arr.size:
        return None, None
    return mask, limit


def _border_connected(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` connected (8-connectivity, within each slice) to the image border."""
    if mask.ndim == 3:
        return np.stack([_border_connected(m) for m in mask])
    labels = cc3d.connected_components(mask, connectivity=8)
    touching = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    keep = np.unique(touching)
    keep = keep[keep > 0]
    return np.isin(labels, keep)


@dataclasses.dataclass
class _Landmarks:
    tissue_ref: float
    anchor: tuple[float, float] | None  # (stored value, HU) of the dark landmark, None when none is usable
    saturated: bool  # a dark candidate was found but clipped to the darkest value
    facts: dict


def _image_landmarks(arr: np.ndarray, valid: np.ndarray, padding: np.ndarray | None) -> _Landmarks:
    """Air/lung and soft-tissue landmarks in stored units, from the in-field pixels.

    Soft tissue is the main mode above a 2-class Otsu split of the in-field values (and of the air
    found inside the padding population, see ``_air_in_padding``). Below the split, the part connected
    to the border (through the padding) is outside air (-1000 HU), the rest lung (-850 HU; at least
    ``_MIN_LANDMARK_FRAC`` of the body, as gas in a plane that is mostly outside air). Outside air
    brighter than the lung candidate is dropped (it is the body's partial-volume edge or fat). A dark
    candidate is used when it holds enough pixels, is not clipped (piled up on the darkest value when
    that is the bottom of the stored range, where a window clips), and lies at least
    ``_MIN_CONTRAST_FRAC`` of the value range below the tissue (else the split fell inside the tissue:
    fat against muscle, in an image without air). The range is that of the in-field values, or half
    the padding-to-tissue distance when larger (padding is air or darker).
    """
    if arr.ndim == 3 and arr.shape[0] > _LANDMARK_SLICES:
        picks = np.unique(np.linspace(0, arr.shape[0] - 1, _LANDMARK_SLICES).astype(int))
        arr, valid = arr[picks], valid[picks]
        padding = None if padding is None else padding[picks]
    values = arr[valid]
    if values.size < 16 or float(values.min()) == float(values.max()):
        middle = float(np.median(values)) if values.size else float(arr.min())
        return _Landmarks(middle, None, False, {"uniform": True})
    air_in_padding = None if padding is None else _air_in_padding(arr, padding)
    if air_in_padding is not None and np.count_nonzero(air_in_padding) < _MIN_LANDMARK_FRAC * values.size:
        air_in_padding = None
    if air_in_padding is None:
        threshold = _otsu(values.astype(np.float32))
    else:  # outside air at the padding's level: it takes part in the air/tissue split
        threshold = _otsu(np.concatenate([values, arr[air_in_padding]]).astype(np.float32))
    dark = (arr <= threshold) & valid
    bright = (arr > threshold) & valid
    outside_air = _border_connected(dark if padding is None else dark | padding) & dark
    if air_in_padding is not None:
        # the in-field dark pixels along the padding are then only the air's edge against the body
        # (partial volume) or fat: the air itself is the landmark
        outside_air |= air_in_padding
    tissue_ref = _mode(arr[bright].astype(np.float32))
    vmin = float(values.min())
    # a window clips to the bottom of the stored range (0 in a picture); values piled up on a darkest
    # value above it (air at -1024 HU in a window starting lower) were not clipped by the window
    clip_value = min(float(arr.min()), 0.0)
    low, high = np.percentile(values, [0.5, 99.5])
    span = float(high - low)
    if padding is not None and padding.any():  # padding (air or darker) bounds the scale from below
        span = max(span, 0.5 * (tissue_ref - float(np.median(arr[padding]))))
    facts: dict[str, Any] = {"otsu_threshold": float(threshold), "soft_tissue": float(tissue_ref)}
    if air_in_padding is not None:
        facts["air_in_padding_frac"] = round(float(np.count_nonzero(air_in_padding)) / arr.size, 4)
    candidates = []
    body_size = values.size - np.count_nonzero(outside_air & valid)
    for name, region, hu, size in (
        ("outside_air", outside_air, OUTSIDE_AIR_HU, values.size),
        ("lung", dark & ~outside_air, LUNG_HU, body_size),  # lung (or gas) is a share of the body
    ):
        pixels = arr[region]
        if pixels.size < _MIN_LANDMARK_FRAC * size:
            continue
        level = float(np.median(pixels))
        clipped = vmin == clip_value and bool(np.count_nonzero(pixels == vmin) >= _SATURATED_FRAC * pixels.size)
        facts[name] = level
        facts[name + "_clipped"] = clipped
        candidates.append((name, level, hu, clipped))
    if len(candidates) == 2 and candidates[0][1] > candidates[1][1]:
        # outside air is never brighter than lung: what reaches the border is the body's partial-volume
        # edge against padding that took the air in (a body filling the field of view), or fat
        facts["outside_air_brighter_than_lung"] = True
        candidates.pop(0)
    anchor = None
    saturated = False
    for name, level, hu, clipped in candidates:
        saturated |= clipped
        if anchor is None and not clipped and tissue_ref - level >= _MIN_CONTRAST_FRAC * span:
            anchor = (level, hu)
            facts["anchor"] = name
    return _Landmarks(float(tissue_ref), anchor, saturated and anchor is None, facts)


def _air_in_padding(arr: np.ndarray, padding: np.ndarray) -> np.ndarray:
    """Pixels of the dark border population that are outside air, not padding.

    Padding holds one value (its darkest), blurred only along its edge by resizing. Where a window put
    outside air at the padding's level (-1024 HU padding saved with a window starting below -1024), the
    gap search takes the air in with the padding; the air still shows its noise. So pixels deeper than
    ``_PADDING_EDGE_PX`` inside the population with another value than the padding's are air. Without
    such a constant value (noisy or resampled padding) nothing can be told apart: none are returned."""
    value = arr[padding].min()
    spike = padding & (arr == value)
    if np.count_nonzero(spike) < _MIN_PADDING_FRAC * arr.size:
        return np.zeros(arr.shape, bool)
    structure = np.ones((3, 3), bool) if arr.ndim == 2 else np.ones((1, 3, 3), bool)
    deep = ndi.binary_erosion(padding, structure, iterations=_PADDING_EDGE_PX, border_value=1)
    return deep & ~spike


# -- small statistics ------------------------------------------------------------------------------


def _sample(arr: np.ndarray) -> np.ndarray:
    """A flat strided view of at most about ``_MAX_SAMPLES`` values (no copy for contiguous arrays)."""
    flat = arr.reshape(-1)
    step = max(1, flat.size // _MAX_SAMPLES)
    return flat[::step]


def _without_extreme_pads(sample: np.ndarray) -> np.ndarray:
    """``sample`` without exact-value populations at its minimum and at an implausibly high maximum
    (padding, wrapped unsigned padding, saturation)."""
    keep = np.ones(sample.shape, bool)
    for value in (sample.min(), sample.max()):
        if value == sample.max() and value <= MAX_PLAUSIBLE_HU:
            continue  # a bright population within the HU range is tissue, bone or contrast
        hit = sample == value
        if np.count_nonzero(hit) >= _MIN_PADDING_FRAC * sample.size:
            keep &= ~hit
    return sample[keep]


def _histogram_landmarks(values: np.ndarray) -> tuple[float, float] | None:
    """(dark median, bright mode) of a 2-class Otsu split of ``values``, or None when uniform."""
    if values.size < 16 or float(values.min()) == float(values.max()):
        return None
    threshold = _otsu(values)
    dark = values[values <= threshold]
    bright = values[values > threshold]
    if bright.size == 0 or dark.size == 0:
        return None
    return float(np.median(dark)), _mode(bright)


def _otsu(values: np.ndarray, nbins: int = 256) -> float:
    """Otsu's threshold: the value that best splits ``values`` into two classes (between-class variance)."""
    hist, edges = np.histogram(values, bins=nbins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(hist)
    weight1 = weight0[-1] - weight0
    mean0 = np.cumsum(hist * centres) / np.maximum(weight0, 1)
    total = (hist * centres).sum()
    mean1 = (total - np.cumsum(hist * centres)) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def _mode(values: np.ndarray, nbins: int = 64) -> float:
    """The peak of a lightly smoothed histogram of ``values`` (robust main mode)."""
    lo, hi = np.percentile(values, [1, 99])
    if hi <= lo:
        return float(np.median(values))
    hist, edges = np.histogram(values, bins=nbins, range=(lo, hi))
    smooth = ndi.uniform_filter1d(hist.astype(np.float64), 3, mode="constant")
    k = int(np.argmax(smooth))
    return float((edges[k] + edges[k + 1]) / 2)


def _dtype_min(dtype: np.dtype) -> float:
    return float(np.iinfo(dtype).min) if dtype.kind in "iu" else -math.inf


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
