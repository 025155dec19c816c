"""QC pictures: a lung-window montage with the right and left lung outlines.

:func:`qc_image` is pure (arrays in, an RGB array out); :func:`write_qc` writes it as a PNG.

Volumes are shown in radiological convention, the way a reading room shows them: the axial view seen
from the feet (patient's right on the viewer's left, anterior at the top), the coronal view seen from the
front (right on the left, head at the top), the sagittal view seen from the patient's left
(anterior on the left, head at the top).
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from .errors import InputError
from .io.writers import write_atomic
from .measure import result_spacing
from .volume import crop_box

__all__ = ["qc_image", "write_qc", "LUNG_WINDOW_HU", "RIGHT_COLOUR", "LEFT_COLOUR"]

log = logging.getLogger(__name__)

LUNG_WINDOW_HU = (-1350.0, 150.0)
"""Display window: the standard lung window, width 1500 HU at level -600 HU."""
RIGHT_COLOUR = (0, 210, 255)
"""Outline of the right lung (label 1): cyan."""
LEFT_COLOUR = (255, 150, 0)
"""Outline of the left lung (label 2): orange."""
PANEL_PX = 360
"""The longest side of each view's field of view is drawn this many pixels wide."""
VIEW_MARGIN_MM = 25.0
"""Volumes are shown cropped to the lungs' bounding box grown by this margin."""
OUTLINE_PX = 2
"""Outline thickness in display pixels."""
TEXT_COLOUR = (235, 235, 235)
ORIENT_COLOUR = (255, 230, 90)
GAP_PX = 6
"""Black gap between views."""
TITLE_PX = 22
"""Height of the title strip above the views."""
LEGEND_PX = 30
"""Height of the legend strip below the views."""


def _window(hu: np.ndarray) -> np.ndarray:
    low, high = LUNG_WINDOW_HU
    return (np.clip((hu.astype(np.float32) - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _canonical(array: np.ndarray, spacing: tuple[float, ...], direction: np.ndarray | None):
    """Transpose and flip a volume so its axes run along world +z (S), +y (P), +x (L) (LPS).

    Each array axis is snapped to the world axis it is closest to; returns (array, spacing).
    """
    d = np.eye(3) if direction is None else np.asarray(direction, float).reshape(3, 3)
    # world direction of array axes (plane, row, column) = ITK axes 2, 1, 0
    axis_dirs = np.stack([d[:, 2], d[:, 1], d[:, 0]])
    world_of_axis = [int(np.argmax(np.abs(v))) for v in axis_dirs]
    if sorted(world_of_axis) != [0, 1, 2]:  # degenerate (two axes nearest the same world axis): keep as stored
        log.warning("cannot match the image axes to body axes (direction %s); showing the array as stored", d.tolist())
        world_of_axis = [2, 1, 0]
    order = [world_of_axis.index(w) for w in (2, 1, 0)]  # array axis that runs along z, y, x
    out = np.transpose(array, order)
    for new_axis, old_axis in enumerate(order):
        if axis_dirs[old_axis][world_of_axis[old_axis]] < 0:
            out = np.flip(out, axis=new_axis)
    return out, tuple(spacing[a] for a in order)


def _resize(image: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    zoom = (shape[0] / image.shape[0], shape[1] / image.shape[1])
    return ndi.zoom(image, zoom, order=order, mode="nearest", grid_mode=True)


def _panel(hu: np.ndarray, labels: np.ndarray, pixel_mm: tuple[float, float], mm_per_px: float) -> np.ndarray:
    """One view: the windowed image on square pixels of ``mm_per_px`` with lung outlines, as RGB."""
    shape = (max(1, round(hu.shape[0] * pixel_mm[0] / mm_per_px)), max(1, round(hu.shape[1] * pixel_mm[1] / mm_per_px)))
    grey = _resize(hu.astype(np.float32), shape, order=1)
    rgb = np.repeat(_window(grey)[..., None], 3, axis=2)
    for value, colour in ((1, RIGHT_COLOUR), (2, LEFT_COLOUR)):
        mask = labels == value
        if not mask.any():
            continue
        # linear interpolation of the mask, cut at one half: smooth outlines instead of voxel stair steps
        smooth = _resize(mask.astype(np.float32), shape, order=1) >= 0.5
        edge = smooth & ~ndi.binary_erosion(smooth, iterations=OUTLINE_PX, border_value=0)
        rgb[edge] = colour
    return rgb


def _font(size_px: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size_px)


def _text_centred(draw, xy: tuple[float, float], text: str, font, fill) -> None:
    draw.text(xy, text, font=font, fill=fill, anchor="mm", stroke_width=2, stroke_fill=(0, 0, 0))


def _letters(draw, box: tuple[int, int, int, int], letters: tuple[str, str, str, str], font) -> None:
    """Orientation letters (top, bottom, left, right) inside a panel's box (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    pad = 10
    top, bottom, left, right = letters
    _text_centred(draw, ((x0 + x1) / 2, y0 + pad), top, font, ORIENT_COLOUR)
    _text_centred(draw, ((x0 + x1) / 2, y1 - pad), bottom, font, ORIENT_COLOUR)
    _text_centred(draw, (x0 + pad, (y0 + y1) / 2), left, font, ORIENT_COLOUR)
    _text_centred(draw, (x1 - pad, (y0 + y1) / 2), right, font, ORIENT_COLOUR)


def _scale_bar_mm(mm_per_px: float) -> float:
    """A round length (mm) whose bar is about 60 display pixels long."""
    target = 60 * mm_per_px
    return float(min((10, 20, 50, 100, 200, 500), key=lambda mm: abs(np.log(mm / target))))


def _compose(panels: list[np.ndarray], titles: list[str], letters: list[tuple[str, str, str, str] | None],
             note: str | None, mm_per_px: float) -> np.ndarray:
    """Panels side by side on black, each titled, with orientation letters; a legend and scale bar below."""
    from PIL import Image, ImageDraw

    title_px = TITLE_PX
    height = max(p.shape[0] for p in panels)
    width = sum(p.shape[1] for p in panels) + GAP_PX * (len(panels) - 1)
    canvas = Image.new("RGB", (width, title_px + height + LEGEND_PX), (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(14)
    x = 0
    for panel, title, marks in zip(panels, titles, letters):
        h, w = panel.shape[:2]
        y = title_px + (height - h) // 2
        canvas.paste(Image.fromarray(panel), (x, y))
        draw.text((x + w / 2, title_px / 2), title, font=font, fill=TEXT_COLOUR, anchor="mm")
        if marks:
            _letters(draw, (x, y, x + w, y + h), marks, font)
        x += w + GAP_PX
    # legend: a swatch and a name per lung, then the window (and any note)
    y = title_px + height + LEGEND_PX / 2
    x = 10
    for name, colour in (("R lung", RIGHT_COLOUR), ("L lung", LEFT_COLOUR)):
        draw.rectangle((x, y - 6, x + 22, y + 6), outline=colour, width=OUTLINE_PX + 1)
        draw.text((x + 30, y), name, font=font, fill=TEXT_COLOUR, anchor="lm")
        x += 30 + int(draw.textlength(name, font=font)) + 24
    low, high = LUNG_WINDOW_HU
    info = f"window W{high - low:.0f} / L{(high + low) / 2:.0f} HU"
    if note:
        info += f"   {note}"
    draw.text((x, y), info, font=font, fill=TEXT_COLOUR, anchor="lm")
    # scale bar at the right end of the legend strip
    bar_mm = _scale_bar_mm(mm_per_px)
    bar_px = int(round(bar_mm / mm_per_px))
    label = f"{bar_mm:.0f} mm"
    x1 = width - 12 - int(draw.textlength(label, font=font)) - 8
    draw.line((x1 - bar_px, y, x1, y), fill=TEXT_COLOUR, width=2)
    for end in (x1 - bar_px, x1):
        draw.line((end, y - 4, end, y + 4), fill=TEXT_COLOUR, width=2)
    draw.text((x1 + 8, y), label, font=font, fill=TEXT_COLOUR, anchor="lm")
    return np.asarray(canvas, dtype=np.uint8).copy()


def _centre(mask: np.ndarray, fallback: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Voxel index of the centre of mass of ``mask`` (the fallback, or the array's middle, when empty)."""
    if not mask.any():
        return fallback or tuple(n // 2 for n in mask.shape)
    return tuple(int(round(c)) for c in ndi.center_of_mass(mask))


def _volume_views(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, ...], direction: np.ndarray | None) -> np.ndarray:
    hu_c, sp = _canonical(hu, spacing, direction)
    lab_c, _ = _canonical(labels, spacing, direction)
    # show the lungs, not the whole field of view (the whole volume when there is no lung)
    box = crop_box(lab_c > 0, sp, VIEW_MARGIN_MM)
    hu_c, lab_c = hu_c[box], lab_c[box]
    zc, yc, xc = _centre(lab_c > 0)
    # one sagittal view through each lung: the midline one would show mostly mediastinum
    x_right = _centre(lab_c == 1, (zc, yc, xc))[2]
    x_left = _centre(lab_c == 2, (zc, yc, xc))[2]
    sz, sy, sx = sp
    extent = max(hu_c.shape[0] * sz, hu_c.shape[1] * sy, hu_c.shape[2] * sx)
    mm_per_px = extent / PANEL_PX
    views = [
        # axial: rows run P (anterior at the top), columns run L (patient's right on the viewer's left)
        (hu_c[zc], lab_c[zc], (sy, sx), "axial", ("A", "P", "R", "L")),
        # coronal: head at the top, patient's right on the viewer's left
        (hu_c[::-1, yc, :], lab_c[::-1, yc, :], (sz, sx), "coronal", ("S", "I", "R", "L")),
        # sagittal: head at the top, anterior on the left
        (hu_c[::-1, :, x_right], lab_c[::-1, :, x_right], (sz, sy), "sagittal, right lung", ("S", "I", "A", "P")),
        (hu_c[::-1, :, x_left], lab_c[::-1, :, x_left], (sz, sy), "sagittal, left lung", ("S", "I", "A", "P")),
    ]
    panels = [_panel(h, lab, px, mm_per_px) for h, lab, px, _, _ in views]
    titles = [v[3] for v in views]
    letters = [v[4] for v in views]
    note = None if (labels > 0).any() else "no lung found"
    return _compose(panels, titles, letters, note, mm_per_px)


def _slice_views(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
    mm_per_px = max(hu.shape[0] * spacing[0], hu.shape[1] * spacing[1]) / PANEL_PX
    overlay = _panel(hu, labels, spacing, mm_per_px)
    image = _panel(hu, np.zeros_like(labels), spacing, mm_per_px)
    air = LUNG_WINDOW_HU[0]
    masked = _panel(np.where(labels > 0, hu, air), np.zeros_like(labels), spacing, mm_per_px)
    note = None if (labels > 0).any() else "no lung found"
    return _compose([image, overlay, masked], ["input", "lungs", "masked"], [None, None, None], note, mm_per_px)


def qc_image(hu: np.ndarray, labels: np.ndarray, spacing: tuple[float, ...], *, direction: np.ndarray | None = None) -> np.ndarray:
    """A QC picture of a lung segmentation, as an RGB array.

    Parameters
    ----------
    hu : ndarray, shape (P, R, C) or (R, C)
        The image in (pseudo-)HU; shown in the lung window W1500/L-600 (:data:`LUNG_WINDOW_HU`).
    labels : ndarray of int, same shape
        0 outside, 1 right lung, 2 left lung.
    spacing : tuple of float
        Voxel size in mm per array axis; every view is resampled to square pixels.
    direction : ndarray, shape (3, 3), optional
        ITK direction matrix of a volume (see :mod:`lungseg.volume`). Each array axis is matched to the
        body axis it is closest to, and the volume is transposed and flipped into the LPS frame so the
        views follow radiological convention (an oblique scan is shown along its nearest body axes).
        Identity when not given: the array's planes are axial, rows run anterior to posterior and
        columns run from the patient's right to left. Ignored for 2D images.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        For a volume: axial and coronal views through the lungs' centre of mass and a sagittal view
        through each lung's centre of mass, cropped to the lungs plus :data:`VIEW_MARGIN_MM`, side by side,
        titled, with orientation letters, the right lung outlined in cyan (:data:`RIGHT_COLOUR`) and the
        left in orange (:data:`LEFT_COLOUR`), and a legend strip at the bottom (colours, window, a scale bar).
        For a 2D image (or a one-slice volume): the input,
        the input with the outlines, and the masked input (everything but lung black), side by side, shown
        as stored. Each view's longest side spans about :data:`PANEL_PX` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> hu = np.full((20, 32, 32), -1000.0); lab = np.zeros(hu.shape, np.uint8)
    >>> lab[5:15, 8:24, 4:14] = 1; lab[5:15, 8:24, 18:28] = 2
    >>> img = qc_image(hu, lab, (2.0, 1.0, 1.0))
    >>> img.dtype, img.ndim, img.shape[2]
    (dtype('uint8'), 3, 3)
    """
    hu = np.asarray(hu)
    labels = np.asarray(labels)
    if hu.shape != labels.shape:
        raise InputError(f"the image {hu.shape} and the labels {labels.shape} must have the same shape")
    spacing = tuple(float(s) for s in spacing)
    if hu.ndim == 3 and hu.shape[0] > 1:
        return _volume_views(hu, labels, spacing, direction)
    if hu.ndim == 3:  # a one-slice volume is drawn like a slice
        return _slice_views(hu[0], labels[0], spacing[1:])
    return _slice_views(hu, labels, spacing)


def write_qc(res: Any, path: str | os.PathLike) -> Path:
    """Write :func:`qc_image` of a :class:`~lungseg.api.SegmentationResult` as a PNG (atomically).

    Returns the path. Raises :class:`~lungseg.errors.OutputError` when the folder does not exist.
    """
    from PIL import Image

    rgb = qc_image(res.hu, res.labels, result_spacing(res), direction=res.volume.direction)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")  # optimize=True: 10x slower for ~10% smaller files
    data = buffer.getvalue()
    return write_atomic(path, lambda fh: fh.write(data), mode="wb")
