"""Air inside the body, and which of its regions are lung (not bowel gas, trachea or air under the skin)."""

from __future__ import annotations

import logging

import cc3d
import fill_voids
import numpy as np
from scipy import ndimage as ndi

from ..settings import Settings
from ..volume import crop_box

__all__ = [
    "inside_air", "select_lungs", "remove_gas_pockets", "homogeneous_gas", "drop_next_to_bowel_gas", "drop_midline_tubes",
    "drop_outside_ribcage", "grow_into_ggo",
]

log = logging.getLogger(__name__)

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1, 1, :] = _IN_PLANE[1, :, 1] = True


def inside_air(image: np.ndarray, body: np.ndarray, air_threshold_hu: float) -> np.ndarray:
    """Voxels below ``air_threshold_hu`` inside ``body`` (air enclosed by the patient in its slice).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.array([[[-1000.0, 40, -800, 40]]]); body = np.array([[[False, True, True, True]]])
    >>> inside_air(img, body, -400).astype(int).tolist()
    [[[0, 0, 1, 0]]]
    """
    return (image < air_threshold_hu) & body


def select_lungs(
    air: np.ndarray,
    image: np.ndarray,
    body: np.ndarray,
    spacing: tuple[float, float, float],
    settings: Settings,
    *,
    outside_fov: np.ndarray | None = None,
) -> np.ndarray:
    """The regions of ``air`` that look like lung.

    A region is kept when it is large enough (``min_lung_volume_ml`` in 3D, ``min_lung_area_mm2`` for a
    single plane) and lung-like in texture: at least ``lung_texture_min_frac`` of it above
    ``gas_threshold_hu`` (aerated lung with vessels sits near -850 HU; bowel gas, the trachea and a
    pneumothorax are homogeneous gas near -1000 HU). For a single plane, regions lying mostly within
    ``subcutaneous_depth_mm`` of the skin (subcutaneous emphysema) are dropped too.

    Parameters
    ----------
    air : ndarray of bool, (Z, Y, X)
        Air inside the body (:func:`inside_air`).
    image : ndarray, (Z, Y, X)
        The (pseudo-)HU image on the same grid.
    body : ndarray of bool, (Z, Y, X)
    spacing : 3 floats, mm per axis
    settings : Settings
    outside_fov : ndarray of bool, (Z, Y, X), optional
        Outside the field of view: where the body meets it, its edge is not the skin.

    Returns
    -------
    ndarray of bool, same shape
    """
    single = air.shape[0] == 1
    labels, n = cc3d.connected_components(air, connectivity=6, return_N=True)
    if n == 0:
        return np.zeros_like(air)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n + 1).astype(float)
    textured = np.bincount(flat, weights=(image > settings.gas_threshold_hu).ravel(), minlength=n + 1)
    frac = textured / np.maximum(count, 1)
    if single:
        size_ok = count * spacing[1] * spacing[2] >= settings.min_lung_area_mm2
    else:
        size_ok = count * float(np.prod(spacing)) / 1000.0 >= settings.min_lung_volume_ml
    keep = size_ok & (frac >= settings.lung_texture_min_frac)
    if not single:  # emphysema: much of a large lung is below gas_threshold_hu, yet its vessels still show
        large = count * float(np.prod(spacing)) / 1000.0 >= settings.large_lung_volume_ml
        keep |= large & (frac >= min(settings.emphysema_texture_min_frac, settings.lung_texture_min_frac))
    keep[0] = False
    if single and keep.any():
        patient = body if outside_fov is None else body | outside_fov
        keep &= ~_mostly_subcutaneous(labels, patient, spacing, settings.subcutaneous_depth_mm, n)
    log.debug("air regions: %d, kept as lung: %d", n, int(keep.sum()))
    return keep[labels]


def _mostly_subcutaneous(labels: np.ndarray, body: np.ndarray, spacing, depth_mm: float, n: int) -> np.ndarray:
    """Per label: True when most of the region lies within ``depth_mm`` of the body's outline (one plane)."""
    depth = ndi.distance_transform_edt(body[0], sampling=spacing[1:])
    shallow = np.bincount(labels[0].ravel(), weights=(depth < depth_mm).ravel(), minlength=n + 1)
    count = np.bincount(labels[0].ravel(), minlength=n + 1)
    return shallow > 0.5 * np.maximum(count, 1)


def remove_gas_pockets(air: np.ndarray, image: np.ndarray, spacing: tuple[float, ...], radius_mm: float, gas_threshold_hu: float) -> np.ndarray:
    """``air`` without wide pockets of pure gas (trachea, bowel gas, pneumothorax), in each plane.

    Pure gas (below ``gas_threshold_hu``) that survives an in-plane opening with ``radius_mm`` is a
    pocket wider than lung parenchyma ever is between its vessels; it and a one-pixel rim around it
    (partial volume) are taken out. Lung stays: its small vessels break up the gas. Works on (Z, Y, X).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((1, 20, 20), -850.0); img[0, 5:15, 5:15] = -1000
    >>> out = remove_gas_pockets(img < -400, img, (1.0, 1.0, 1.0), 2.0, -950)
    >>> bool(out[0, 10, 10]), bool(out[0, 1, 1])
    (False, True)
    """
    steps = int(round(radius_mm / min(spacing[1], spacing[2])))
    if steps < 1:
        return air
    disk = np.zeros((3, 3, 3), bool)
    disk[1, 1, :] = disk[1, :, 1] = True
    gas = air & (image < gas_threshold_hu)
    core = ndi.binary_opening(gas, disk, iterations=steps)
    if not core.any():
        return air
    return air & ~ndi.binary_dilation(core, disk, iterations=2)


def homogeneous_gas(regions: np.ndarray, image: np.ndarray, spacing: tuple[float, float], settings: Settings) -> np.ndarray:
    """The regions of one plane that are homogeneous gas (bowel gas, stomach, trachea), not lung.

    Orientation-free and independent of where the calibration put the gas level: inside a lung, vessels
    and the parenchyma's own variation spread the values; inside a gas pocket only noise does. A region
    is gas when the values of its interior (farther than ``gas_core_depth_mm`` from its edge, so the
    partial-volume rim does not count) spread (10th to 90th percentile) over less than
    ``gas_max_spread_hu``. Regions without such an interior are not judged.

    Parameters
    ----------
    regions : ndarray of bool, (Y, X)
        Lung-like air regions on the grid of ``image``.
    image : ndarray, (Y, X), (pseudo-)HU, not smoothed (noise and vessels at full resolution)
    spacing : 2 floats, mm per row and column
    settings : Settings

    Returns
    -------
    ndarray of bool, (Y, X): the pixels of the regions taken for gas.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> img = np.full((80, 80), 40.0) + rng.normal(0, 10, (80, 80))
    >>> img[10:40, 10:40] = -990 + rng.normal(0, 10, (30, 30))      # gas: noise only
    >>> img[45:75, 45:75] = -850 + rng.normal(0, 10, (30, 30))      # lung: with vessels
    >>> img[45:75:4, 45:75:4] = -300
    >>> gas = homogeneous_gas(img < -400, img, (1.0, 1.0), Settings())
    >>> bool(gas[20, 20]), bool(gas[60, 60])
    (True, False)
    """
    labels, n = cc3d.connected_components(regions, connectivity=8, return_N=True)
    gas = np.zeros_like(regions)
    if n == 0:
        return gas
    core = ndi.distance_transform_edt(regions, sampling=spacing) > settings.gas_core_depth_mm
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        inner = image[box][core[box] & (labels[box] == i)]
        if inner.size < 2:
            continue
        low, high = np.percentile(inner, (10, 90))
        if high - low < settings.gas_max_spread_hu:
            gas[box] |= labels[box] == i
    log.debug("homogeneous gas: %d of %d regions", len({int(v) for v in labels[gas]}), n)
    return gas


def drop_next_to_bowel_gas(
    lungs: np.ndarray, image: np.ndarray, body: np.ndarray, spacing: tuple[float, ...], settings: Settings, *, gas: np.ndarray | None = None
) -> np.ndarray:
    """Drop lung-like regions of one plane that are bowel content next to bowel gas (abdomen, pelvis).

    Bowel gas is pure gas (below ``gas_threshold_hu``) inside the body, in pockets of at least
    ``min_gas_pocket_area_mm2``. When the lung-like regions' area is below ``bowel_gas_lung_max_frac``
    of those pockets' area, the plane is taken for an abdominal one, and lung-like regions closer
    than ``bowel_gas_distance_mm`` to a pocket (gas mixed with stool, a loop seen obliquely) are dropped.
    At the lung bases the lungs outweigh the stomach's gas, or lie away from it.

    Parameters
    ----------
    lungs, body : ndarray of bool, (1, Y, X)
    image : ndarray, (1, Y, X), (pseudo-)HU
    spacing : 3 floats, mm
    settings : Settings
    gas : ndarray of bool, (1, Y, X), optional
        Further bowel gas, found otherwise (:func:`homogeneous_gas` in calibrated planes, where the gas
        may lie above ``gas_threshold_hu``).

    Returns
    -------
    ndarray of bool, same shape

    Examples
    --------
    >>> import numpy as np
    >>> img = np.full((1, 60, 60), 40.0); img[0, 10:40, 10:40] = -1000; img[0, 42:46, 20:25] = -850
    >>> lungs = img == -850
    >>> bool(drop_next_to_bowel_gas(lungs, img, np.ones_like(lungs), (1.0, 2.0, 2.0), Settings()).any())
    False
    """
    if not lungs.any():
        return lungs
    pixel_mm2 = spacing[1] * spacing[2]
    gas = ((image < settings.gas_threshold_hu) | (False if gas is None else gas)) & body & ~lungs
    gas = cc3d.dust(gas, threshold=max(1, int(np.ceil(settings.min_gas_pocket_area_mm2 / pixel_mm2))), connectivity=18)
    if lungs.sum() >= settings.bowel_gas_lung_max_frac * gas.sum():
        return lungs
    near = ndi.distance_transform_edt(~gas[0], sampling=spacing[1:]) < settings.bowel_gas_distance_mm
    labels, n = cc3d.connected_components(lungs, connectivity=18, return_N=True)
    touching = np.unique(labels[0][near])
    touching = touching[touching > 0]
    log.debug("abdominal plane: %d of %d lung-like regions lie next to bowel gas", touching.size, n)
    return lungs & ~np.isin(labels, touching)


def drop_midline_tubes(lungs: np.ndarray, body: np.ndarray, spacing: tuple[float, ...], across_axis: int, settings: Settings) -> np.ndarray:
    """Drop air tubes (trachea, main bronchi, oesophagus) from one sagittal or coronal plane.

    In a plane that contains the body axis the trachea is a narrow tube at the middle of the body:
    a region is dropped when its widest inscribed circle is at most ``trachea_max_diameter_mm`` plus
    ``tube_diameter_margin_mm`` across (partial volume widens it) and its centre lies within
    ``midline_band_frac`` of the body's middle along ``across_axis`` (1 = rows, 2 = columns: the plane's
    axis that is not the body axis; front-back on a sagittal plane, left-right on a coronal one).
    Lungs away from the midline, and wide ones, stay.

    Parameters
    ----------
    lungs, body : ndarray of bool, (1, Y, X)
    spacing : 3 floats, mm
    across_axis : 1 or 2
    settings : Settings

    Returns
    -------
    ndarray of bool, same shape

    Examples
    --------
    >>> import numpy as np
    >>> body = np.ones((1, 100, 60), bool); lungs = np.zeros_like(body)
    >>> lungs[0, 10:80, 27:33] = True   # a tube 12 mm wide at the middle, 2 mm pixels
    >>> bool(drop_midline_tubes(lungs, body, (1.0, 2.0, 2.0), 2, Settings()).any())
    False
    """
    if not lungs.any():
        return lungs
    extent = np.flatnonzero(body.any(axis=tuple(a for a in (0, 1, 2) if a != across_axis)))
    low, high = float(extent[0]), float(extent[-1])
    max_diameter_mm = settings.trachea_max_diameter_mm + settings.tube_diameter_margin_mm
    labels, n = cc3d.connected_components(lungs, connectivity=18, return_N=True)
    out = lungs.copy()
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        region = labels[box][0] == i
        # vessels inside a lung are holes of the air region: the width is measured with them filled
        solid = fill_voids.fill(np.pad(region, 1))
        width_mm = 2 * float(ndi.distance_transform_edt(solid, sampling=spacing[1:]).max())
        centre = box[across_axis].start + np.nonzero(region)[across_axis - 1].mean()
        offset_frac = abs((centre - low) / max(high - low, 1.0) - 0.5)
        if width_mm <= max_diameter_mm and offset_frac <= settings.midline_band_frac:
            out[box][0][region] = False
    log.debug("midline tubes: %d regions, %d pixels dropped", n, int(lungs.sum() - out.sum()))
    return out


def drop_outside_ribcage(
    lungs: np.ndarray,
    image: np.ndarray,
    body: np.ndarray,
    settings: Settings,
    *,
    rays: int = 256,
    outside_fov: np.ndarray | None = None,
) -> np.ndarray:
    """Drop air regions of one axial plane that lie outside the ribcage (subcutaneous emphysema).

    From the body's centre, rays through up to ``rays`` pixels of a region are followed outwards to the
    skin and inwards to the centre. Seen from a lung, some of the outward rays cross a rib or costal
    cartilage (above ``rib_threshold_hu``); seen from air in the chest wall, none does, and most of the
    inward ones do. A region other than the largest whose outward rays cross bone in less than
    ``ribcage_min_frac`` of them and whose inward rays cross it in more than half is dropped.

    Parameters
    ----------
    lungs, body : ndarray of bool, (1, Y, X)
    image : ndarray, (1, Y, X), HU
    settings : Settings
    rays : int
        At most this many rays per region.
    outside_fov : ndarray of bool, (1, Y, X), optional
        Outside the field of view. A region reaching it is kept: its ribs may lie beyond the FOV edge.

    Returns
    -------
    ndarray of bool, same shape

    Examples
    --------
    >>> import numpy as np
    >>> y, x = np.mgrid[:80, :80]
    >>> img = np.where((y - 40) ** 2 + (x - 40) ** 2 < 38 ** 2, 40.0, -1000.0)[None]
    >>> img[0][np.abs(np.hypot(y - 40, x - 40) - 25) < 1] = 700        # a ribcage
    >>> lung = ((y - 40) ** 2 + (x - 40) ** 2 < 18 ** 2)[None]
    >>> wall_air = ((y - 40) ** 2 + (x - 72) ** 2 < 9)[None]           # air in the chest wall
    >>> out = drop_outside_ribcage(lung | wall_air, img, img > -500, Settings())
    >>> bool(out[0, 40, 40]), bool(out[0, 40, 72])
    (True, False)
    """
    labels, n = cc3d.connected_components(lungs[0], connectivity=8, return_N=True)
    if n < 2:
        return lungs
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    centre = np.argwhere(body[0]).mean(axis=0)
    steps = np.arange(1, int(np.hypot(*labels.shape)) + 1)
    out = lungs.copy()
    for i in range(1, n + 1):
        if i == sizes.argmax():
            continue
        if outside_fov is not None and outside_fov[0][ndi.binary_dilation(labels == i)].any():
            continue
        points = np.argwhere(labels == i)
        points = points[np.linspace(0, len(points) - 1, min(rays, len(points))).astype(int)]
        way = points - centre
        way /= np.maximum(np.hypot(way[:, 0], way[:, 1]), 1e-6)[:, None]
        rows, cols, on_image = _ray_pixels(points, way, steps, labels.shape)
        in_body = np.cumprod(on_image & body[0][rows, cols], axis=1).astype(bool)  # up to the skin
        outward = (in_body & (image[0][rows, cols] > settings.rib_threshold_hu)).any(axis=1).mean()
        if outward >= settings.ribcage_min_frac:
            continue
        rows, cols, _ = _ray_pixels(points, -way, steps, labels.shape)
        to_centre = steps < np.hypot(*(points - centre).T)[:, None]
        inward = (to_centre & (image[0][rows, cols] > settings.rib_threshold_hu)).any(axis=1).mean()
        if inward > 0.5:
            out[0][labels == i] = False
            log.debug("air region of %d pixels outside the ribcage dropped", int(sizes[i]))
    return out


def _ray_pixels(points: np.ndarray, way: np.ndarray, steps: np.ndarray, shape: tuple[int, int]):
    """Pixels (rows, cols, clipped to the image) of rays from ``points`` along unit vectors ``way``, and
    whether each step is on the image; arrays of shape (points, steps)."""
    rows = np.round(points[:, :1] + way[:, :1] * steps).astype(int)
    cols = np.round(points[:, 1:] + way[:, 1:] * steps).astype(int)
    on_image = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    return np.clip(rows, 0, shape[0] - 1), np.clip(cols, 0, shape[1] - 1), on_image


def grow_into_ggo(
    lungs: np.ndarray,
    image: np.ndarray,
    body: np.ndarray,
    spacing: tuple[float, float, float],
    settings: Settings,
    *,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The lungs grown into ground glass and partly consolidated lung (hysteresis; HU input).

    Lung with ground-glass opacity or partial consolidation lies between about -700 and -300 HU, much of it
    above ``air_threshold_hu``, so the aerated lung found by :func:`select_lungs` misses it. The candidates
    are the voxels below ``ggo_threshold_hu`` (fat and soft tissue are above it) inside the body, farther
    than ``ggo_skin_margin_mm`` (in-plane) from its outline, farther than ``ggo_gas_margin_mm`` from pure
    gas (below ``gas_threshold_hu``) that is not lung (bowel gas, trachea, oesophagus: their partial-volume
    rims), farther than that from air pockets below ``ggo_lumen_hu`` (an airway's or a bowel loop's lumen) and
    outside ``exclude``. A connected region of candidates that holds lung joins that lung.
    In a single plane that holds lung, a region of candidates that holds none is returned apart when it
    looks like a lung of its own whose aeration is almost gone: at least ``min_lung_area_mm2``, at least
    ``ggo_min_aerated_frac`` of it below ``air_threshold_hu``, at least ``lung_texture_min_frac`` of it
    above ``gas_threshold_hu`` and not mostly within ``subcutaneous_depth_mm`` of the skin; the plane's
    other rules (bowel gas, ribcage) are for the caller to apply to it.

    Dense consolidation, effusion and atelectasis at soft-tissue HU stay out: they cannot be told from
    the chest wall by intensity.

    Parameters
    ----------
    lungs : ndarray of bool, (Z, Y, X)
        The aerated lungs, already told from gas and air outside the lungs.
    image : ndarray, (Z, Y, X), HU (smoothed working grid)
    body : ndarray of bool, (Z, Y, X)
    spacing : 3 floats, mm
    settings : Settings
    exclude : ndarray of bool, (Z, Y, X), optional
        Never lung (the trachea and main bronchi with their rim).

    Returns
    -------
    grown : ndarray of bool, same shape
        ``lungs`` with the candidate regions joined to them.
    separate : ndarray of bool, same shape
        Lung-like candidate regions of a single plane not joined to ``lungs`` (empty for a volume).

    Examples
    --------
    >>> import numpy as np
    >>> body = np.zeros((1, 60, 80), bool); body[0, 2:58, 2:78] = True             # 2 mm pixels
    >>> img = np.where(body, 40.0, -1000.0)
    >>> img[0, 10:50, 8:20] = -850; img[0, 10:50, 20:32] = -300                    # aerated lung, ground glass
    >>> img[0, 10:50, 45:70] = -300; img[0, 10:50:2, 45:70:2] = -850               # a lung with little air left
    >>> lungs = np.zeros_like(body); lungs[0, 10:50, 8:20] = True
    >>> grown, separate = grow_into_ggo(lungs, img, body, (1.0, 2.0, 2.0), Settings())
    >>> bool(grown[0, 30, 25]), bool(grown[0, 30, 38]), bool(separate[0, 30, 57])
    (True, False, True)
    """
    grown, separate = lungs.copy(), np.zeros_like(lungs)
    if not lungs.any():
        return grown, separate
    # a volume: ground glass is looked for around the aerated lungs only (a plane is cheap enough to take whole)
    box = crop_box(lungs, spacing, settings.ggo_search_mm) if lungs.shape[0] > 1 else (slice(None),) * 3
    grown[box], separate[box] = _grow_into_ggo(lungs[box], image[box], body[box], spacing, settings, None if exclude is None else exclude[box])
    return grown, separate


def _grow_into_ggo(lungs, image, body, spacing, settings: Settings, exclude) -> tuple[np.ndarray, np.ndarray]:
    """:func:`grow_into_ggo` on arrays cropped around the lungs (the crop's faces are not the body's outline)."""
    single = lungs.shape[0] == 1
    separate = np.zeros_like(lungs)
    candidates = (image < settings.ggo_threshold_hu) & ~lungs
    candidates &= _eroded_in_plane(body, spacing, settings.ggo_skin_margin_mm)
    # air the lung rules turned down (air regions large enough to be judged: bowel gas, trachea, air in the chest
    # wall) and pockets with a lumen (an airway, a bowel loop) stay out with their partial-volume rim; the small
    # pockets of air a diseased lung keeps are partly filled and join the ground glass
    other_air = (image < settings.air_threshold_hu) & body & ~lungs
    parts, n = cc3d.connected_components(other_air, connectivity=6, return_N=True)
    size = np.bincount(parts.ravel(), minlength=n + 1).astype(float)
    judged = size * spacing[1] * spacing[2] >= settings.min_lung_area_mm2 if single else size * float(np.prod(spacing)) / 1000.0 >= settings.min_lung_volume_ml
    judged[np.unique(parts[other_air & (image < settings.ggo_lumen_hu)])] = True
    judged[0] = False
    gas = judged[parts]
    if gas.any():
        candidates &= ~_dilated_in_plane(gas, spacing, settings.ggo_gas_margin_mm)
    if exclude is not None:
        candidates &= ~exclude
    if not candidates.any():
        return lungs, separate
    labels, n = cc3d.connected_components(candidates | lungs, connectivity=18, return_N=True)
    seeded = np.zeros(n + 1, bool)
    seeded[np.unique(labels[lungs])] = True
    seeded[0] = False
    added = seeded[labels] & candidates
    # a thin band along the aerated lung is its partial-volume rim: only wide ground glass is added
    steps = max(1, int(settings.ggo_min_width_mm / (2 * min(spacing[1], spacing[2]))))
    if added.any():
        core = ndi.binary_erosion(added, _IN_PLANE, iterations=steps, border_value=1)
        added &= ndi.binary_dilation(core, _IN_PLANE, iterations=steps)
    grown = lungs | added
    log.debug("ground glass: %d voxels joined to the aerated lungs", int(added.sum()))
    if single:
        flat = labels.ravel()
        count = np.bincount(flat, minlength=n + 1).astype(float)
        aerated = np.bincount(flat, weights=(image < settings.air_threshold_hu).ravel(), minlength=n + 1)
        textured = np.bincount(flat, weights=(image > settings.gas_threshold_hu).ravel(), minlength=n + 1)
        keep = ~seeded & (count * spacing[1] * spacing[2] >= settings.min_lung_area_mm2)
        keep &= aerated >= settings.ggo_min_aerated_frac * count
        keep &= textured >= settings.lung_texture_min_frac * count
        keep[0] = False
        if keep.any():
            keep &= ~_mostly_subcutaneous(labels, body, spacing, settings.subcutaneous_depth_mm, n)
            separate = keep[labels]
            log.debug("ground glass: %d lung-like regions of their own", int(keep.sum()))
    return grown, separate


def _eroded_in_plane(mask: np.ndarray, spacing, margin_mm: float) -> np.ndarray:
    steps = int(np.ceil(margin_mm / min(spacing[1], spacing[2])))
    return ndi.binary_erosion(mask, _IN_PLANE, iterations=steps, border_value=1) if steps > 0 else mask


def _dilated_in_plane(mask: np.ndarray, spacing, margin_mm: float) -> np.ndarray:
    steps = int(np.ceil(margin_mm / min(spacing[1], spacing[2])))
    return ndi.binary_dilation(mask, _IN_PLANE, iterations=steps) if steps > 0 else mask
