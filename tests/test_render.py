"""QC pictures: pixel checks on synthetic volumes and slices whose layout is known by construction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lungseg.api import SegmentationResult
from lungseg.errors import InputError, OutputError
from lungseg.render import (
    GAP_PX,
    LEFT_COLOUR,
    LEGEND_PX,
    LUNG_WINDOW_HU,
    PANEL_PX,
    RIGHT_COLOUR,
    TITLE_PX,
    VIEW_MARGIN_MM,
    qc_image,
    write_qc,
)
from lungseg.settings import Settings
from lungseg.volume import Volume

from conftest import shared


def colour_mask(img: np.ndarray, colour) -> np.ndarray:
    return np.all(img == np.array(colour, np.uint8), axis=-1)


def chest(shape=(30, 40, 48)):
    """Soft tissue (0 HU) with a dark right lung box at low columns (patient's right) and a left lung box."""
    hu = np.zeros(shape, np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[5:25, 8:32, 4:20] = 1
    labels[5:25, 8:32, 28:44] = 2
    hu[labels > 0] = -850.0
    return hu, labels


def test_volume_montage_shape_dtype_and_both_colours():
    hu, labels = chest()
    img = qc_image(hu, labels, (2.5, 0.7, 0.7))
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert colour_mask(img, RIGHT_COLOUR).sum() > 100
    assert colour_mask(img, LEFT_COLOUR).sum() > 100


def test_radiological_convention_right_lung_on_the_viewers_left():
    hu, labels = chest()
    img = qc_image(hu, labels, (2.5, 0.7, 0.7))
    # the longest extent (30 slices x 2.5 mm) spans PANEL_PX; the axial view (48 columns x 0.7 mm) comes first
    axial_px = round(48 * 0.7 / (30 * 2.5 / PANEL_PX))
    axial = img[TITLE_PX:-LEGEND_PX, :axial_px]
    right_cols = np.nonzero(colour_mask(axial, RIGHT_COLOUR))[1]
    left_cols = np.nonzero(colour_mask(axial, LEFT_COLOUR))[1]
    # the right lung (low column index = patient's right, LPS) is drawn on the viewer's left
    assert right_cols.max() < axial_px / 2 < left_cols.min()
    assert img[TITLE_PX:-LEGEND_PX, axial_px: axial_px + GAP_PX].max() == 0  # the gap after the axial view


def test_a_flipped_volume_with_its_geometry_looks_the_same():
    hu, labels = chest()
    spacing = (2.5, 0.7, 0.7)
    reference = qc_image(hu, labels, spacing)
    flip = np.diag([-1.0, 1.0, -1.0])  # columns run towards the patient's right, slices towards the feet
    flipped = qc_image(hu[::-1, :, ::-1], labels[::-1, :, ::-1], spacing, direction=flip)
    assert np.array_equal(flipped, reference)
    # without the geometry the picture changes: the test can fail
    assert not np.array_equal(qc_image(hu[:, :, ::-1], labels[:, :, ::-1], spacing), reference)


def test_volume_views_are_cropped_to_the_lungs():
    hu = np.zeros((40, 200, 200), np.float32)  # a 200 mm field of view ...
    labels = np.zeros(hu.shape, np.uint8)
    labels[10:30, 90:110, 90:110] = 1  # ... around a 20 mm lung
    img = qc_image(hu, labels, (1.0, 1.0, 1.0))
    # cropped to 20 + 2 x VIEW_MARGIN_MM = 70 mm in-plane, drawn over PANEL_PX: the lung spans 20/70 of it
    cols = np.nonzero(colour_mask(img[TITLE_PX:-LEGEND_PX, :PANEL_PX], RIGHT_COLOUR))[1]
    assert cols.max() - cols.min() + 1 == pytest.approx(20 / (20 + 2 * VIEW_MARGIN_MM) * PANEL_PX, abs=4)


def test_outlines_sit_on_the_lung_border_and_not_inside():
    hu = np.zeros((60, 60), np.float32)
    labels = np.zeros((60, 60), np.uint8)
    labels[20:40, 10:25] = 1
    labels[20:40, 35:50] = 2
    hu[labels > 0] = -900.0
    spacing = (6.0, 6.0)  # 360 mm field of view over PANEL_PX pixels: 6 display pixels per image pixel
    assert PANEL_PX == 360
    img = qc_image(hu, labels, spacing)
    assert img.shape == (TITLE_PX + PANEL_PX + LEGEND_PX, 3 * PANEL_PX + 2 * GAP_PX, 3)
    overlay = img[TITLE_PX: TITLE_PX + PANEL_PX, PANEL_PX + GAP_PX: 2 * PANEL_PX + GAP_PX]
    rows, cols = np.nonzero(colour_mask(overlay, RIGHT_COLOUR))
    # the right lung box spans display rows 120..240 and columns 60..150: outline pixels lie on its edge
    distance_to_edge = np.minimum.reduce([np.abs(rows - 120), np.abs(rows - 240), np.abs(cols - 60), np.abs(cols - 150)])
    assert rows.size > 400 and distance_to_edge.max() <= 4
    # its centre is still the image's grey (-900 HU in the lung window), not an outline colour
    grey = round((-900 - LUNG_WINDOW_HU[0]) / (LUNG_WINDOW_HU[1] - LUNG_WINDOW_HU[0]) * 255)
    assert np.all(np.abs(overlay[180, 105].astype(int) - grey) <= 1)


def test_2d_input_gives_three_panels_input_overlay_masked():
    hu = np.full((40, 40), 100.0, np.float32)  # bright tissue everywhere ...
    labels = np.zeros((40, 40), np.uint8)
    labels[10:30, 5:18] = 1
    labels[10:30, 22:35] = 2
    hu[labels > 0] = -900.0  # ... and dark lungs
    img = qc_image(hu, labels, (9.0, 9.0))  # 360 mm: one image pixel = 9 display pixels
    assert img.shape[1] == 3 * PANEL_PX + 2 * GAP_PX
    top = TITLE_PX
    panels = [img[top: top + PANEL_PX, i * (PANEL_PX + GAP_PX): i * (PANEL_PX + GAP_PX) + PANEL_PX] for i in range(3)]
    image, overlay, masked = panels
    assert not colour_mask(image, RIGHT_COLOUR).any() and colour_mask(overlay, RIGHT_COLOUR).any()
    assert colour_mask(overlay, LEFT_COLOUR).any()
    # tissue outside the lungs: bright in the input, black in the masked image
    assert image[20, 20].min() > 200 and masked[20, 20].max() == 0
    # inside a lung the masked image keeps the input's grey
    assert np.array_equal(masked[180, 100], image[180, 100])


def test_a_one_slice_volume_is_drawn_like_a_slice():
    hu = np.full((1, 40, 40), -900.0, np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    labels[0, 10:30, 5:18] = 1
    assert np.array_equal(qc_image(hu, labels, (5.0, 9.0, 9.0)), qc_image(hu[0], labels[0], (9.0, 9.0)))


def test_anisotropic_pixels_are_shown_square():
    hu = np.zeros((40, 80), np.float32)  # 80 mm tall (2 mm rows) and 80 mm wide (1 mm columns)
    labels = np.zeros(hu.shape, np.uint8)
    labels[10:30, 20:60] = 1  # 40 mm x 40 mm: a square on screen
    img = qc_image(hu, labels, (2.0, 1.0))
    w = (img.shape[1] - 2 * GAP_PX) // 3
    overlay = img[:, w + GAP_PX: 2 * w + GAP_PX]
    rows, cols = np.nonzero(colour_mask(overlay, RIGHT_COLOUR))
    height, width = rows.max() - rows.min(), cols.max() - cols.min()
    assert abs(height - width) <= 3
    assert w == PANEL_PX


def test_legend_strip_shows_both_colours_and_text():
    hu, labels = chest()
    img = qc_image(hu, labels, (2.5, 0.7, 0.7))
    legend = img[-LEGEND_PX:]
    assert legend.any()
    assert colour_mask(legend, RIGHT_COLOUR).any() and colour_mask(legend, LEFT_COLOUR).any()
    white = np.all(legend > 200, axis=-1)
    assert white.sum() > 50  # the "R lung" / "L lung" text
    assert white[:, -120:].any()  # the scale bar at the right end


def test_no_lung_gives_a_picture_without_outlines():
    hu, _ = chest()
    img = qc_image(hu, np.zeros(hu.shape, np.uint8), (2.5, 0.7, 0.7))
    body = img[:-LEGEND_PX]
    assert not colour_mask(body, RIGHT_COLOUR).any() and not colour_mask(body, LEFT_COLOUR).any()


def test_mismatched_shapes_are_refused():
    with pytest.raises(InputError, match=r"the image \(2, 3, 3\) and the labels \(2, 3, 4\) must have the same shape"):
        qc_image(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), (1.0, 1.0, 1.0))


@dataclasses.dataclass(frozen=True)
class FakeIntensity:
    path: str = "hu"
    air_value: float = -1024.0


def test_write_qc_writes_the_png(tmp_path):
    from PIL import Image

    hu, labels = chest()
    res = SegmentationResult(labels=labels, volume=Volume(hu, (2.5, 0.7, 0.7)), hu=hu, intensity=FakeIntensity(),
                             body=np.ones(hu.shape, bool), settings=Settings(), flags=[], timings_s={})
    path = write_qc(res, tmp_path / "qc.png")
    with Image.open(path) as png:
        assert png.format == "PNG"
        assert np.array_equal(np.asarray(png.convert("RGB")), qc_image(hu, labels, (2.5, 0.7, 0.7)))
    assert [p.name for p in tmp_path.iterdir()] == ["qc.png"]
    with pytest.raises(OutputError, match=r"does not exist"):
        write_qc(res, tmp_path / "missing" / "qc.png")


@pytest.mark.data
def test_cip_reference_outlines_follow_the_patient_sides():
    from lungseg.io import read
    from lungseg.measure import to_lungmask

    ct = read(shared("cip", "ct-64.nrrd"))
    labels = to_lungmask(read(shared("cip", "lm-64.nrrd")).array, "cip")
    img = qc_image(ct.array, labels, ct.spacing, direction=ct.direction)
    axial = img[:, : img.shape[1] // 4]
    assert np.nonzero(colour_mask(axial, RIGHT_COLOUR))[1].mean() < np.nonzero(colour_mask(axial, LEFT_COLOUR))[1].mean()
