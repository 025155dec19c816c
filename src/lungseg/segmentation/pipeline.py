"""The segmentation pipeline: the steps of this package, called in order.

1. Reorient to the canonical (z, y, x) frame (:mod:`.frame`) and block-average to the working grid.
2. Body (:mod:`.body`), air inside it and the regions that look like lung (:mod:`.air`).
3. Trachea and main bronchi removed (:mod:`.airways`; 3D only: in 2D they are homogeneous gas and
   the texture test drops them): grown with an adaptive threshold, then followed by their lumen's
   contrast where partial volume stopped the growth short.
4. The lungs grown into ground glass and partial consolidation (below ``ggo_threshold_hu``; HU input and fine
   calibrated planes,
   :func:`.air.grow_into_ggo`); in a plane, a lung with little air left is found beside an aerated one.
5. Right and left (:mod:`.split`).
6. Closing in mm and hole filling, then back to the full grid with a crisp boundary (:mod:`.fill`).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
from scipy import ndimage as ndi

from ..settings import Settings
from ..volume import Volume, crop_box
from .air import (
    drop_midline_tubes, drop_next_to_bowel_gas, drop_outside_ribcage, grow_into_ggo, homogeneous_gas, inside_air, remove_gas_pockets,
    select_lungs,
)
from .airways import find_airways, follow_bronchi
from .body import body_mask, body_running_axis, close_at_fov, estimate_pixel_size_mm, smooth_mm
from .fill import close_labels_mm, fill_holes, label_values, refine_to_full
from .frame import Frame, block_mean, grid_factors, upsample
from .split import LEFT, RIGHT, label_sides

__all__ = ["SegmentationOutput", "segment_hu"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class SegmentationOutput:
    """What :func:`segment_hu` returns.

    Attributes
    ----------
    labels : ndarray of uint8, the input's shape
        0 outside the lungs, 1 = patient's right lung, 2 = patient's left lung.
    body : ndarray of bool, the input's shape
        The patient (without table and outside air; the lungs are inside it).
    flags : list of str
        Facts about the result: ``no_lung_found``, ``one_lung_only``, ``lung_cut_at_first_slice``,
        ``lung_cut_at_last_slice``, ``lung_cut_by_fov``, ``pixel_size_estimated``, ``trachea_not_found``,
        ``side_from_position``.
    spacing : tuple of float
        The pixel size used (mm per array axis): the volume's, or the estimate.
    timings_s : dict
        Seconds per step.
    """

    labels: np.ndarray
    body: np.ndarray
    flags: list[str]
    spacing: tuple[float, ...] = ()
    timings_s: dict[str, float] = dataclasses.field(default_factory=dict)


def segment_hu(
    hu: np.ndarray,
    volume: Volume,
    settings: Settings,
    *,
    fov_mask: np.ndarray | None = None,
    calibrated: bool = False,
) -> SegmentationOutput:
    """Segment the lungs in a (pseudo-)HU image.

    Parameters
    ----------
    hu : ndarray, shape (P, R, C) or (R, C)
        The image in HU (or calibrated pseudo-HU), scanner padding already at -1024.
    volume : Volume
        Gives the grid: ``spacing`` (mm per array axis), ``direction`` (which array axis is the
        patient's left-right, head-feet, front-back) and ``metadata["spacing_known"]``. When the spacing
        is not known (a PNG or a bare array), the pixel size is estimated from the body's width
        (``settings.assumed_body_width_mm``; :func:`.body.estimate_pixel_size_mm`) and the flag
        ``pixel_size_estimated`` is set.
    settings : Settings
    fov_mask : ndarray of bool, optional
        True inside the scanner's field of view (same shape). A lung the FOV circle cuts through is
        closed along the FOV edge (:func:`.body.close_at_fov`; HU input, axial planes and volumes) and
        flagged ``lung_cut_by_fov``.
    calibrated : bool
        True when ``hu`` is pseudo-HU calibrated from an image that was not in HU (a PNG, a normalised
        array): the texture test then uses ``settings.calibrated_texture_min_frac`` instead of
        ``settings.lung_texture_min_frac`` for a single plane with pixels of at most
        ``settings.texture_max_pixel_mm`` (coarser pixels or a 3D volume: no texture test, lung and gas
        are too close to tell apart), and no gas pockets are cut out. In such a fine calibrated plane, air
        regions with a flat interior are gas wherever the calibration put it (:func:`.air.homogeneous_gas`),
        and a picture without geometry whose body its edges cut through (:func:`.body.body_running_axis`) is
        taken for a sagittal or coronal plane (midline tubes dropped).

    Returns
    -------
    SegmentationOutput

    Notes
    -----
    Right and left come from the geometry: the patient's right is world -x (LPS). An image without
    geometry (identity direction) follows the radiological convention: the patient's right is on the
    image's left (column 0 side). Flipping the array or rotating its direction cosines therefore gives
    the same anatomical labels. A sagittal slice has no left-right axis: its side is taken from the
    slice's world position (x < 0 is the patient's right) and ``side_from_position`` is set.

    Examples
    --------
    >>> import numpy as np
    >>> from lungseg.volume import Volume
    >>> hu = np.full((40, 40), 40.0)
    >>> out = segment_hu(hu, Volume(hu, (8.0, 8.0)), Settings())
    >>> out.flags, int(out.labels.max())
    (['no_lung_found'], 0)
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    flags: list[str] = []
    frame = Frame.of(volume)
    image = frame.to_canonical(hu)
    spacing = frame.spacing(volume.spacing)
    if not volume.metadata.get("spacing_known", True):
        estimate = estimate_pixel_size_mm(
            image, settings.body_threshold_hu, settings.assumed_body_width_mm, cut_min_mm=settings.body_cut_min_mm, cut_min_frac=settings.body_cut_min_frac
        )
        if estimate is not None:
            spacing = (spacing[0] if hu.ndim == 2 else estimate, estimate, estimate)
            flags.append("pixel_size_estimated")
            log.info("pixel size unknown: estimated %.3g mm from the body's width", estimate)

    textured = not calibrated
    if calibrated:
        # pseudo-HU keeps the lung's texture (vessels against gas) only in a single plane fine enough to show vessels
        fine = textured = image.shape[0] == 1 and max(spacing[1:]) <= settings.texture_max_pixel_mm
        settings = settings.replace(lung_texture_min_frac=settings.calibrated_texture_min_frac if fine else 0.0)
    factors = grid_factors(spacing, settings.working_spacing_mm)
    work_spacing = tuple(s * f for s, f in zip(spacing, factors))
    work = smooth_mm(block_mean(image, factors), work_spacing, settings.smoothing_sigma_mm)
    lap("grid_s")

    body = body_mask(work, settings.body_threshold_hu, work_spacing, settings.body_opening_mm)
    # a lung the FOV circle cuts through opens onto the padding. Not closed in pseudo-HU (its texture cannot
    # tell it from outside air) nor in sagittal/coronal planes (padding bands of the reformat, not a circle;
    # a cushion between the back and the table is lung-like there, and the table reaches the band)
    across = _across_axis(volume, frame)
    if across is None and calibrated and textured:  # (textured: a single plane fine enough to show vessels)
        # a picture without geometry: a body its edges cut through is a sagittal or coronal plane
        running = body_running_axis(work[0] > settings.body_threshold_hu, body[0], work_spacing[1:], settings.body_cut_min_mm, settings.body_cut_min_frac)
        across = None if running is None else 2 - running
    fov = None if calibrated or across is not None else _fov_on_grid(fov_mask, hu.shape, frame, factors)
    if fov is not None:
        body = close_at_fov(body, work, fov, work_spacing, settings)
    air = inside_air(work, body, settings.air_threshold_hu)
    lungs = select_lungs(air, work, body, work_spacing, settings, outside_fov=None if fov is None else ~fov)
    if image.shape[0] == 1 and lungs.any():
        gas = None
        if calibrated and textured:
            # the calibration may put gas above gas_threshold_hu: bowel gas, stomach and trachea are told by their flat interior
            gas = _on_grid(homogeneous_gas(upsample(lungs, factors, image.shape)[0], image[0], spacing[1:], settings)[None], factors)
            lungs = lungs & ~gas
        if textured:
            # a trachea or bowel loop joined to the lung in this plane: cut the pure gas out, drop what is left over
            lungs = remove_gas_pockets(lungs, work, work_spacing, settings.gas_pocket_radius_mm, settings.gas_threshold_hu)
            lungs = _drop_fragments(lungs, work_spacing, settings.min_lung_area_mm2 / 1000.0)
        lungs = drop_next_to_bowel_gas(lungs, work, body, work_spacing, settings, gas=gas)
        if across is not None:
            lungs = drop_midline_tubes(lungs, body, work_spacing, across, settings)
        elif not calibrated:
            lungs = drop_outside_ribcage(lungs, work, body, settings, outside_fov=None if fov is None else ~fov)
    lap("body_air_s")

    airway = None
    if image.shape[0] > 1 and lungs.any():
        airway = find_airways(air, body, work_spacing, settings, image=work)
        if airway.any():
            followed = follow_bronchi(work, airway, body, work_spacing, settings)
            # the partial-volume rim of the airway's lumen, not the vessels beside it
            airway |= _grow_in_plane_mm(airway, work_spacing, settings.airway_margin_mm) & air
            airway |= followed  # lumen voxels already (found by their contrast): no rim
            lungs &= ~airway
            lungs = _drop_fragments(lungs, work_spacing, settings.min_fragment_volume_ml)
        else:
            flags.append("trachea_not_found")
    lap("airways_s")

    ggo = None
    if (not calibrated or textured) and lungs.any():
        # lung with ground glass or partial consolidation: grown from the aerated lung (HU, or a calibrated plane fine
        # enough to show vessels; coarser pseudo-HU is too unsure for it)
        keep_out = None if airway is None else _grow_in_plane_mm(airway, work_spacing, settings.airway_margin_mm)
        grown, separate = grow_into_ggo(lungs, work, body, work_spacing, settings, exclude=keep_out)
        if separate.any():
            # a lung of its own with little air left: the plane's rules for lung-like regions apply to it
            kept = drop_next_to_bowel_gas(grown | separate, work, body, work_spacing, settings)
            if across is None:
                kept = drop_outside_ribcage(kept, work, body, settings, outside_fov=None if fov is None else ~fov)
            else:
                kept = drop_midline_tubes(kept, body, work_spacing, across, settings)
            grown |= kept & separate
        ggo = grown & ~lungs
        lungs = grown
    lap("ggo_s")

    if frame.knows_left_right:
        sides = label_sides(lungs, body, work_spacing, settings)
    else:
        side = RIGHT if volume.origin[0] < 0 else LEFT
        sides = np.where(lungs, side, 0).astype(np.uint8)
        if lungs.any():
            flags.append("side_from_position")
    lap("split_s")

    dense = fill_holes(close_labels_mm(sides, work_spacing, settings.closing_radius_mm))
    dense[~body] = 0
    if airway is not None:
        dense[airway] = 0
        dense = fill_holes(dense)
        dense[airway] = 0  # the trachea and main bronchi stay out, also where they run between lung
    lap("close_fill_s")

    labels_c = refine_to_full(dense, image, factors, settings.air_threshold_hu, exclude=airway, keep=ggo, keep_threshold_hu=settings.ggo_threshold_hu)
    labels = frame.from_canonical(labels_c)
    body_full = frame.from_canonical(upsample(body, factors, image.shape)) | (labels > 0)
    lap("refine_s")

    flags += _flags(labels, fov_mask)
    return SegmentationOutput(labels, body_full, flags, tuple(frame_spacing_back(frame, spacing)), timings)


def frame_spacing_back(frame: Frame, spacing: tuple[float, float, float]) -> list[float]:
    """Canonical-axis spacing back in the input's axis order."""
    in_plane = spacing[1:] if frame.ndim == 2 else spacing
    return [in_plane[list(frame.perm).index(a)] for a in range(frame.ndim)]


def _across_axis(volume: Volume, frame: Frame) -> int | None:
    """For a 2D plane containing the body axis (sagittal, coronal): its canonical axis (1 or 2) across
    the body axis; None for an axial plane or a 3D volume."""
    if frame.ndim != 2:
        return None
    from ..volume import axis_world_directions

    head_feet = np.abs(axis_world_directions(volume)[:, 2])
    if head_feet.max() < 0.5:
        return None
    body_axis = 1 + list(frame.perm).index(int(np.argmax(head_feet)))
    return 3 - body_axis


def _fov_on_grid(fov_mask: np.ndarray | None, shape: tuple[int, ...], frame: Frame, factors: tuple[int, ...]) -> np.ndarray | None:
    """The field of view on the canonical working grid (True inside), or None when unknown or everywhere."""
    if fov_mask is None or fov_mask.shape != shape or fov_mask.all():
        return None
    return _on_grid(frame.to_canonical(fov_mask), factors)


def _on_grid(mask: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """A canonical full-resolution mask on the working grid: one pixel per block."""
    return np.ascontiguousarray(mask[tuple(slice(None, None, f) for f in factors)])


def _grow_in_plane_mm(mask: np.ndarray, spacing, margin_mm: float) -> np.ndarray:
    """``mask`` grown in-plane by ``margin_mm`` (Euclidean distance in mm), slice by slice."""
    if margin_mm <= 0:
        return mask
    box = crop_box(mask, spacing, margin_mm + max(spacing[1:]))
    sub = mask[box]
    grown = np.zeros_like(sub)
    for z in np.flatnonzero(sub.any(axis=(1, 2))):
        grown[z] = ndi.distance_transform_edt(~sub[z], sampling=spacing[1:]) <= margin_mm
    out = np.zeros_like(mask)
    out[box] = grown
    return out


def _drop_fragments(lungs: np.ndarray, spacing, min_volume_ml: float) -> np.ndarray:
    import cc3d

    voxel_ml = float(np.prod(spacing)) / 1000.0
    return cc3d.dust(lungs, threshold=max(1, int(np.ceil(min_volume_ml / voxel_ml))), connectivity=6)


def _flags(labels: np.ndarray, fov_mask: np.ndarray | None) -> list[str]:
    """``one_lung_only`` and the flags of :func:`lungseg.measure.measurement_flags` (no lung, lung cut by
    the first/last slice or the field of view): one rule for the result and its report."""
    from ..measure import measurement_flags

    flags = measurement_flags(labels, fov_mask=fov_mask)
    if len(label_values(labels)) == 1:
        flags.insert(0, "one_lung_only")
    return flags