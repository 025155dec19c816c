"""The segmentation steps on synthetic chest phantoms whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from lungseg.segmentation.frame import Frame, block_mean, upsample
from lungseg.segmentation.pipeline import segment_hu
from lungseg.segmentation.steps import grow_labels_mm
from lungseg.settings import Settings
from lungseg.volume import Volume

SPACING = (5.0, 4.0, 4.0)


def phantom(*, touching: bool = False, fov: bool = False, shape=(40, 96, 96)):
    """A chest phantom in LPS order (z up, y posterior, x to the patient's left), 5 x 4 x 4 mm voxels.

    Returns the HU image and the truth: right lung, left lung, airway (trachea and main bronchi
    outside the lungs), body (without table).
    """
    nz, ny, nx = shape
    z, y, x = np.mgrid[:nz, :ny, :nx].astype(float)
    cy, cx = ny / 2, nx / 2
    hu = np.full(shape, -1000.0)
    body = ((y - cy) / 28) ** 2 + ((x - cx) / 40) ** 2 <= 1
    hu[body] = 40
    hu[:, int(cy + 32):int(cy + 35), :] = 200  # the table, under the back, with an air gap
    offset = 13 if touching else 18
    right = ((x - (cx - offset)) / 13) ** 2 + ((y - (cy - 2)) / 18) ** 2 + ((z - 18) / 15) ** 2 <= 1
    left = ((x - (cx + offset)) / 13) ** 2 + ((y - (cy - 2)) / 18) ** 2 + ((z - 18) / 15) ** 2 <= 1
    left &= ~right
    hu[right | left] = -850
    vessels = (right | left) & (y % 6 == 0) & (x % 6 == 0)
    hu[vessels] = 40
    airway = (z >= 27) & ((y - (cy - 8)) ** 2 + (x - cx) ** 2 <= 2.5**2)
    for side in (-1, 1):
        t = np.clip((27 - z) / 6, 0, 1)
        bronchus = (z <= 27) & (z >= 21) & ((y - (cy - 8)) ** 2 + (x - (cx + side * 12 * t)) ** 2 <= 1.6**2)
        airway |= bronchus
    hu[airway] = -1000
    if fov:
        hu[(y - cy) ** 2 + (x - cx) ** 2 > (nx / 2 - 2) ** 2] = -1024
    # a bronchus inside a lung is lung (dense lungs); the airway to exclude is the part outside them
    return hu, right, left, airway & ~(right | left), body


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def run(hu, spacing=SPACING, direction=None, known=True, settings=None):
    vol = Volume(hu, spacing, direction=np.eye(3) if direction is None else direction,
                 metadata={"spacing_known": known})
    return segment_hu(hu.astype(np.float32), vol, settings or Settings())


@pytest.fixture(scope="module")
def chest():
    hu, right, left, airway, body = phantom()
    return hu, right, left, airway, body, run(hu)


def test_two_lungs_on_the_right_sides(chest):
    hu, right, left, _, _, out = chest
    assert dice(out.labels == 1, right) > 0.9
    assert dice(out.labels == 2, left) > 0.9
    assert "no_lung_found" not in out.flags


def test_trachea_and_bronchi_excluded(chest):
    _, _, _, airway, _, out = chest
    assert (out.labels[airway] > 0).mean() <= 0.05
    assert not (out.labels[airway & (np.arange(airway.shape[0]) >= 30)[:, None, None]] > 0).any()  # trachea above the lungs


def test_no_table_no_outside_air(chest):
    hu, _, _, _, body, out = chest
    assert not (out.labels[~body] > 0).any()
    assert not out.body[hu == 200].any()  # the table is not the patient
    assert not out.body[0, 0, 0]


def test_dense_vessels_inside(chest):
    hu, right, left, _, _, out = chest
    from scipy import ndimage as ndi

    inner = ndi.binary_erosion(right | left, iterations=2)
    # the main bronchi and their rim stay out of the lungs; the vessels elsewhere are in
    near_airway = ndi.binary_dilation(hu == -1000, iterations=2)
    vessels = inner & (hu == 40) & ~near_airway
    assert vessels.sum() > 50
    assert (out.labels[vessels] > 0).all()


def test_touching_lungs_are_split():
    hu, right, left, _, _ = phantom(touching=True)
    out = run(hu)
    assert set(np.unique(out.labels)) == {0, 1, 2}
    assert dice(out.labels == 1, right) > 0.85
    assert dice(out.labels == 2, left) > 0.85


def test_flipped_array_flips_the_mask(chest):
    hu, _, _, _, _, out = chest
    # same patient, array stored right-to-left with the direction saying so: same anatomy
    flipped = run(hu[:, :, ::-1].copy(), direction=np.diag([-1.0, 1.0, 1.0]))
    np.testing.assert_array_equal(flipped.labels, out.labels[:, :, ::-1])
    # the array flipped but the geometry unchanged: the patient is mirrored, so right and left swap
    mirrored = run(hu[:, :, ::-1].copy())
    swapped = np.choose(out.labels[:, :, ::-1], [0, 2, 1]).astype(np.uint8)
    np.testing.assert_array_equal(mirrored.labels, swapped)


def test_rotated_direction_same_anatomy(chest):
    hu, _, _, _, _, out = chest
    # rows and columns exchanged, the direction cosines saying columns run along y and rows along x
    direction = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rotated = run(hu.transpose(0, 2, 1).copy(), direction=direction)
    np.testing.assert_array_equal(rotated.labels, out.labels.transpose(0, 2, 1))


def test_upside_down_volume(chest):
    hu, _, _, _, _, out = chest
    flipped = run(hu[::-1].copy(), direction=np.diag([1.0, 1.0, -1.0]))
    np.testing.assert_array_equal(flipped.labels, out.labels[::-1])


def test_circular_fov_padding():
    hu, right, left, _, _ = phantom(fov=True)
    out = run(hu)
    assert dice(out.labels == 1, right) > 0.9
    assert dice(out.labels == 2, left) > 0.9


def test_all_soft_tissue_is_empty_with_flag():
    out = run(np.full((10, 40, 40), 40.0))
    assert out.labels.max() == 0 and out.labels.dtype == np.uint8
    assert out.flags == ["no_lung_found"]


def test_gas_only_is_not_lung():
    hu, _, _, _, body = phantom()
    hu[hu == -850] = -1000  # a body full of homogeneous gas (bowel-like), no lung texture
    out = run(hu)
    assert "no_lung_found" in out.flags


def test_2d_slice_agrees_with_3d(chest):
    hu, _, _, _, _, out = chest
    z = 18
    slice_out = segment_hu(hu[z].astype(np.float32), Volume(hu[z], SPACING[1:]), Settings())
    assert slice_out.labels.shape == hu[z].shape
    for value in (1, 2):
        assert dice(slice_out.labels == value, out.labels[z] == value) > 0.9


def test_tiny_2d_without_spacing():
    hu, right, left, _, _ = phantom()
    small = block_mean(hu[18][None], (1, 2, 2))[0]  # 48 x 48 pixels, 8 mm each, spacing not given
    out = run(small, spacing=(1.0, 1.0), known=False)
    assert "pixel_size_estimated" in out.flags
    assert out.spacing == pytest.approx((330 / 40, 330 / 40), rel=0.1)
    for value, truth in ((1, right[18]), (2, left[18])):
        truth_small = block_mean(truth[None].astype(float), (1, 2, 2))[0] > 0.5
        assert dice(out.labels == value, truth_small) > 0.85


def test_thick_slices():
    hu, right, left, _, _ = phantom()
    out = run(hu[::2].copy(), spacing=(10.0, 4.0, 4.0))
    assert dice(out.labels == 1, right[::2]) > 0.85
    assert dice(out.labels == 2, left[::2]) > 0.85


def test_same_area_at_two_resolutions():
    hu, _, _, _, _ = phantom()
    coarse = run(hu[18], spacing=(4.0, 4.0))
    fine_hu = np.repeat(np.repeat(hu[18], 4, axis=0), 4, axis=1)
    fine = run(fine_hu, spacing=(1.0, 1.0))
    for value in (1, 2):
        a = (coarse.labels == value).sum() * 16.0
        b = (fine.labels == value).sum() * 1.0
        assert abs(a - b) / a < 0.05


def test_cut_lung_flags():
    hu, _, _, _, _ = phantom()
    out = run(hu[10:30].copy())
    assert "lung_cut_at_first_slice" in out.flags and "lung_cut_at_last_slice" in out.flags


def test_one_lung_only():
    hu, right, left, _, _ = phantom()
    hu[left] = 40  # the left lung is opacified (effusion)
    out = run(hu)
    assert "one_lung_only" in out.flags
    assert set(np.unique(out.labels)) == {0, 1}


def test_frame_round_trip():
    vol = Volume(np.arange(24.0).reshape(2, 3, 4), (1, 1, 1), direction=np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0.0]]))
    frame = Frame.of(vol)
    canon = frame.to_canonical(vol.array)
    np.testing.assert_array_equal(frame.from_canonical(canon), vol.array)


def test_block_mean_and_upsample_shapes():
    a = np.arange(2 * 5 * 7, dtype=float).reshape(2, 5, 7)
    small = block_mean(a, (1, 2, 2))
    assert small.shape == (2, 3, 4)
    assert upsample(small, (1, 2, 2), a.shape).shape == a.shape


def test_grow_labels_mm_keeps_labels_and_margin():
    labels = np.zeros((1, 20, 20), np.uint8)
    labels[0, 5, 5] = 1
    labels[0, 5, 15] = 2
    grown = grow_labels_mm(labels, (1.0, 2.0, 2.0), 4.0)
    assert grown[0, 5, 7] == 1 and grown[0, 5, 13] == 2
    assert grown[0, 5, 8] == 0  # 6 mm away from both
    within = np.zeros_like(labels, bool)
    within[0, :, :10] = True
    clipped = grow_labels_mm(labels, (1.0, 2.0, 2.0), 4.0, within=within)
    assert clipped[0, 5, 13] == 0 and clipped[0, 5, 15] == 2  # clipped to ``within``; lung voxels stay


def axial_abdomen(gas_hu: float = -1000.0):
    """A 2D axial abdomen, 1 mm pixels: a body with a large bowel gas pocket and, beside it, a small
    lung-like (textured) region of gas mixed with stool."""
    y, x = np.mgrid[:300, :300].astype(float)
    hu = np.full((300, 300), -1000.0)
    hu[((y - 150) / 110) ** 2 + ((x - 150) / 140) ** 2 <= 1] = 40
    hu[70:130, 90:200] = gas_hu  # bowel gas, 66 cm2
    stool = (y >= 135) & (y < 160) & (x >= 120) & (x < 160)
    hu[stool] = np.where((y[stool] + x[stool]) % 5 == 0, 0, -850)  # mottled, like lung with vessels
    return hu, stool


def test_bowel_gas_plane_is_empty():
    hu, _ = axial_abdomen()
    out = run(hu, spacing=(1.0, 1.0))
    assert out.labels.max() == 0 and "no_lung_found" in out.flags


def test_textured_region_kept_without_bowel_gas():
    # the same region with no gas pocket beside it is lung-like and kept: the rule needs the bowel gas
    hu, stool = axial_abdomen(gas_hu=40.0)
    out = run(hu, spacing=(1.0, 1.0), settings=Settings(min_lung_area_mm2=300))
    assert (out.labels[stool] > 0).mean() > 0.8


def sagittal_plane(*, lung: bool):
    """A 2D sagittal plane, 1.5 mm pixels, rows head to feet, columns front to back: a body with the
    trachea (a tube 20 mm wide at the middle, partial-volume -800 HU) and optionally a wide posterior lung."""
    rows, cols = np.mgrid[:240, :200].astype(float)
    hu = np.full((240, 200), -1000.0)
    body = (cols >= 30) & (cols < 170)
    hu[body] = 40
    tube = (rows >= 20) & (rows < 120) & (np.abs(cols - 100) < 7)
    hu[tube] = np.where(rows[tube] % 6 == 0, -700, -820)
    truth = np.zeros_like(body)
    if lung:
        truth = ((rows - 120) / 70) ** 2 + ((cols - 140) / 22) ** 2 <= 1
        hu[truth] = np.where((rows[truth] % 6 == 0) & (cols[truth] % 6 == 0), 40, -850)
    # rows run to the feet (world -z), columns to the back (world +y); the plane's normal is x
    direction = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    return hu, tube, truth, direction


def test_sagittal_trachea_is_not_lung():
    hu, _, _, direction = sagittal_plane(lung=False)
    out = run(hu, spacing=(1.5, 1.5), direction=direction)
    assert out.labels.max() == 0


def test_sagittal_lung_kept_trachea_dropped():
    hu, tube, truth, direction = sagittal_plane(lung=True)
    out = run(hu, spacing=(1.5, 1.5), direction=direction)
    assert dice(out.labels > 0, truth) > 0.9
    assert not (out.labels[tube] > 0).any()


def test_lung_cut_by_fov_flag():
    hu, right, left, _, _ = phantom()
    z = 18
    y, x = np.mgrid[: hu.shape[1], : hu.shape[2]]
    vol = Volume(hu[z], SPACING[1:])
    whole_fov = np.ones(hu.shape[1:], bool)
    out = segment_hu(hu[z].astype(np.float32), vol, Settings(), fov_mask=whole_fov)
    assert "lung_cut_by_fov" not in out.flags
    # a field of view whose circle runs through the right lung (the image beyond it extrapolated)
    cx = np.nonzero(right[z])[1].min() + 3
    fov = (y - hu.shape[1] / 2) ** 2 + (x - hu.shape[2] / 2) ** 2 <= (hu.shape[2] / 2 - cx) ** 2
    assert (right[z] & ~fov).any() and (right[z] & fov).any()
    out = segment_hu(hu[z].astype(np.float32), vol, Settings(), fov_mask=fov)
    assert out.labels.any() and "lung_cut_by_fov" in out.flags


def copd_airway_phantom():
    """4 mm voxels: an emphysematous lung at -930 HU and a trachea whose lumen, blurred by partial
    volume, is brighter (-820 HU) and touches the lung through one brighter voxel (-650 HU, wall and
    partial volume); trachea seed in the top slice."""
    img = np.full((30, 40, 40), 40.0)
    img[:20, 5:35, 3:37] = -930
    img[:20, 18:22, 18:22] = 40  # mediastinum between the lungs
    trachea = np.zeros(img.shape, bool)
    trachea[8:, 19:21, 19:21] = True
    img[trachea] = -820
    img[12, 21, 20] = -650  # a one-voxel contact with the lung
    seed = np.zeros(img.shape, bool)
    seed[29] = trachea[29]
    return img, trachea, seed


def test_grow_airway_stops_before_the_lung():
    from lungseg.segmentation.airways import grow_airway

    img, trachea, seed = copd_airway_phantom()
    airway = grow_airway(img, seed, (4.0, 4.0, 4.0), Settings())
    assert airway is not None
    assert airway[trachea].mean() > 0.9  # the brighter lumen is found with a threshold above -820
    assert not airway[img == -930].any()  # and the darker lung did not flood in


def test_grow_airway_none_without_air_at_the_seed():
    from lungseg.segmentation.airways import grow_airway

    img, _, seed = copd_airway_phantom()
    img[seed] = 40.0  # the seed is tissue: no threshold takes it
    assert grow_airway(img, seed, (4.0, 4.0, 4.0), Settings()) is None


def chest_with_wall_air():
    """A 2D axial chest (4 mm pixels): two lungs inside a ring of ribs (bone with gaps between them),
    a thick chest wall, and lung-like air in it outside the ribs (subcutaneous emphysema)."""
    hu, right, left, _, _ = phantom()
    z = 18
    plane = hu[z].copy()
    y, x = np.mgrid[: plane.shape[0], : plane.shape[1]]
    cy, cx = plane.shape[0] / 2, plane.shape[1] / 2
    plane[(np.hypot((y - cy) / 30, (x - cx) / 46) <= 1) & (plane == -1000)] = 40  # a thicker chest wall
    r = np.hypot((y - cy) / 24.5, (x - cx) / 36.5)  # 1 on the ribcage
    angle = np.degrees(np.arctan2(y - cy, x - cx))
    plane[(np.abs(r - 1) < 0.04) & (np.floor(angle / 12) % 2 == 0)] = 700  # ribs, with intercostal gaps
    wall = (r > 1.06) & (r < 1.16) & (angle > -70) & (angle < -20) & (plane == 40)
    plane[wall] = np.where((y[wall] % 3 == 0) & (x[wall] % 3 == 0), -200, -850)
    return plane, right[z], left[z], wall


def test_air_outside_the_ribcage_is_not_lung():
    plane, right, left, wall = chest_with_wall_air()
    assert wall.sum() * 16 >= 100  # a real pocket, several cm2
    out = run(plane, spacing=(4.0, 4.0), settings=Settings(min_lung_area_mm2=100))
    assert not (out.labels[wall] > 0).any()
    assert dice(out.labels == 1, right) > 0.9 and dice(out.labels == 2, left) > 0.9
    # without the ribcage test the pocket is taken for lung: the test above can fail
    kept = run(plane, spacing=(4.0, 4.0), settings=Settings(min_lung_area_mm2=100, ribcage_min_frac=0))
    assert (kept.labels[wall] > 0).any()


def wide_chest(*, nz: int = 30, n: int = 96, fov_radius: float = 28.0):
    """A patient wider than the reconstruction circle (4 x 4 mm pixels, 5 mm slices): the FOV circle
    cuts through both lungs at the sides and leaves outside air between it and the front and back of
    the body. Padding outside the circle is -1024. Returns the HU image, the lungs inside the FOV
    (right, left), the body and the FOV."""
    z, y, x = np.mgrid[:nz, :n, :n].astype(float)
    c = n / 2
    hu = np.full((nz, n, n), -1000.0)
    body = ((y - c) / 20) ** 2 + ((x - c) / 44) ** 2 <= 1
    hu[body] = 40
    lungs = []
    for side in (-1, 1):
        lung = ((x - (c + side * 20)) / 13) ** 2 + ((y - c) / 14) ** 2 + ((z - nz / 2) / 12) ** 2 <= 1
        hu[lung] = np.where((y[lung] % 5 == 0) & (x[lung] % 5 == 0), 40, -850)  # vessels
        lungs.append(lung)
    fov = (y - c + 0.5) ** 2 + (x - c + 0.5) ** 2 <= fov_radius**2
    hu[~fov] = -1024
    return hu, lungs[0] & fov, lungs[1] & fov, body, fov


def test_lung_cut_by_the_fov_circle_is_found():
    hu, right, left, body, fov = wide_chest()
    assert (right & ~fov).sum() == 0 and ((hu == -1024) & ~fov).any()
    vol = Volume(hu, (5.0, 4.0, 4.0))
    out = segment_hu(hu.astype(np.float32), vol, Settings(), fov_mask=fov)
    assert dice(out.labels == 1, right) > 0.9 and dice(out.labels == 2, left) > 0.9
    assert "lung_cut_by_fov" in out.flags
    # the outside air between the front of the body and the FOV edge stays outside
    gap = fov & ~body
    assert gap.sum() > 1000
    assert not out.body[gap].any() and not out.labels[gap].any()
    # without the FOV the cut lungs open onto the padding and are lost: the test above can fail
    assert "no_lung_found" in segment_hu(hu.astype(np.float32), vol, Settings()).flags


def test_lung_cut_by_the_fov_circle_in_2d():
    hu, right, left, _, fov = wide_chest()
    z = hu.shape[0] // 2
    out = segment_hu(hu[z].astype(np.float32), Volume(hu[z], (4.0, 4.0)), Settings(), fov_mask=fov[z])
    assert dice(out.labels == 1, right[z]) > 0.9 and dice(out.labels == 2, left[z]) > 0.9
    assert "lung_cut_by_fov" in out.flags


def test_fov_closing_keeps_outside_air_and_a_pad_in_it_outside():
    from lungseg.segmentation.body import body_mask, close_at_fov

    hu, _, _, body, fov = wide_chest(nz=1)
    y = np.arange(hu.shape[1])[None, :, None]
    pad = fov & ~body & (y < hu.shape[1] / 2) & (y > 24)  # foam on the chest, outside air beyond it
    hu[pad] = -850
    spacing = (1.0, 4.0, 4.0)
    base = body_mask(hu, -500.0)
    added = close_at_fov(base, hu, fov, spacing, Settings()) & ~base
    assert added.any() and not (added & ~body).any()  # the cut lungs are added, outside air and pad are not
    # taken in when neither the texture nor the FOV edge share is tested: the test above can fail
    loose = close_at_fov(base, hu, fov, spacing, Settings(lung_texture_min_frac=0.0, fov_edge_max_frac=1.0)) & ~base
    assert loose[pad].all()


def hilum_phantom(spacing_mm: float = 4.0):
    """(z, y, x) at ``spacing_mm``: an emphysematous lung (-930 HU) on each side of a mediastinum, a
    trachea (-1000) splitting at the carina into main bronchi, and below them their lumen as partial
    volume (-800 to -600, brighter than the lung) inside a wall, running down 40 mm. Returns the image,
    the airway a growth finds (the -1000 part), the partial-volume lumen and the lung."""
    k = 4.0 / spacing_mm
    n = lambda v: int(round(v * k))  # noqa: E731
    img = np.full((n(30), n(40), n(40)), 40.0)
    lung = np.zeros(img.shape, bool)
    lung[:, n(4):n(36), n(4):n(36)] = True
    lung[:, n(17):n(23), n(10):n(30)] = False  # mediastinum and bronchial walls
    img[lung] = -930
    img[n(14):, n(19):n(21), n(19):n(21)] = -1000
    img[n(14):n(15), n(19):n(21), n(12):n(28)] = -1000
    img[n(12):n(14), n(19):n(21), n(12):n(18)] = img[n(12):n(14), n(19):n(21), n(22):n(28)] = -1000
    lumen = np.zeros(img.shape, bool)
    lumen[n(2):n(12), n(19):n(21), n(12):n(14)] = lumen[n(2):n(12), n(19):n(21), n(26):n(28)] = True
    img[lumen] = -800
    # brighter where the bronchi leave the plane, and touching their lung where the wall is thinner
    # than a voxel: a growth with a threshold above -600 HU would leak into the lung
    img[n(11):n(12), n(19):n(21), n(12):n(14)] = img[n(11):n(12), n(19):n(21), n(26):n(28)] = -600
    img[n(6):n(8), n(19):n(21), n(10):n(12)] = img[n(6):n(8), n(19):n(21), n(28):n(30)] = -700
    return img, img == -1000, lumen, lung


@pytest.mark.parametrize("spacing_mm", [4.0, 2.0])
def test_follow_bronchi_takes_the_partial_volume_lumen(spacing_mm):
    from lungseg.segmentation.airways import follow_bronchi

    img, airway, lumen, lung = hilum_phantom(spacing_mm)
    sp = (spacing_mm,) * 3
    more = follow_bronchi(img, airway, np.ones_like(airway), sp, Settings())
    assert more[lumen].mean() > 0.9
    assert not more[lung].any()


def test_follow_bronchi_not_when_the_growth_reached_the_length():
    from lungseg.segmentation.airways import follow_bronchi

    img, airway, lumen, _ = hilum_phantom()
    sp = (4.0, 4.0, 4.0)
    # the airway grown down to main_bronchus_max_length_mm (40 mm) below the carina (slice 13): nothing more to follow
    assert not follow_bronchi(img, airway | lumen, np.ones_like(airway), sp, Settings(main_bronchus_max_length_mm=40.0)).any()
    assert follow_bronchi(img, airway, np.ones_like(airway), sp, Settings()).any()
    # a short length: the growth reached it, nothing is followed
    assert not follow_bronchi(img, airway, np.ones_like(airway), sp, Settings(main_bronchus_max_length_mm=4.0)).any()


def test_follow_bronchi_stops_a_leak():
    from lungseg.segmentation.airways import follow_bronchi

    img, airway, lumen, lung = hilum_phantom()
    sp = (4.0, 4.0, 4.0)
    leaky = img.copy()
    leaky[lung & (np.indices(img.shape).sum(axis=0) % 2 == 0)] = 40  # a lung full of vessels: all of it enclosed
    cap = Settings(bronchus_max_volume_ml=1.0)
    more = follow_bronchi(leaky, airway, np.ones_like(airway), sp, cap)
    assert more.sum() * 64 / 1000 <= 1.0
    unbounded = follow_bronchi(leaky, airway, np.ones_like(airway), sp, Settings(bronchus_max_volume_ml=1000.0))
    assert unbounded.sum() * 64 / 1000 > 1.0  # without the cap it floods the lung: the test above can fail


def test_partial_volume_bronchi_are_not_lung():
    img, airway, lumen, lung = hilum_phantom()
    hu = np.full((img.shape[0], 56, 56), -1000.0)
    hu[:, 8:48, 8:48] = img  # the body inside outside air
    vol = Volume(hu, (4.0, 4.0, 4.0))
    out = segment_hu(hu.astype(np.float32), vol, Settings(min_lung_volume_ml=5))
    inner = np.zeros(hu.shape, bool)
    inner[:, 8:48, 8:48] = lumen
    assert out.labels.any()
    assert (out.labels[inner] > 0).mean() < 0.1


def _gas_and_lung(seed=0):
    """A 2D picture in pseudo-HU: a pocket of pure gas (noise only) and a lung (gas with vessels) in tissue."""
    rng = np.random.default_rng(seed)
    img = 40 + rng.normal(0, 10, (100, 100))
    img[10:45, 10:45] = -960 + rng.normal(0, 10, (35, 35))  # gas: flat, even above gas_threshold_hu
    img[55:90, 55:90] = -850 + rng.normal(0, 10, (35, 35))
    img[55:90:4, 55:90:4] = -300  # vessels
    return img


def test_homogeneous_gas_is_told_from_lung_by_its_flat_interior():
    from lungseg.segmentation.air import homogeneous_gas

    img = _gas_and_lung()
    gas = homogeneous_gas(img < -400, img, (1.0, 1.0), Settings())
    assert gas[10:45, 10:45].all() and not gas[55:90, 55:90].any()
    flipped = homogeneous_gas(np.ascontiguousarray(img[::-1, ::-1] < -400), np.ascontiguousarray(img[::-1, ::-1]), (1.0, 1.0), Settings())
    np.testing.assert_array_equal(flipped, gas[::-1, ::-1])
    # the spread is in HU: a wider gas noise than the setting allows is not judged gas
    assert not homogeneous_gas(img < -400, img, (1.0, 1.0), Settings(gas_max_spread_hu=20.0)).any()
    # a region with no interior beyond the rim depth is not judged
    assert not homogeneous_gas(img < -400, img, (1.0, 1.0), Settings(gas_core_depth_mm=30.0)).any()


def test_body_running_through_the_picture_is_found_in_any_orientation():
    from lungseg.segmentation.body import body_running_axis, estimate_pixel_size_mm

    y, x = np.mgrid[:120, :160]
    cut = ((y - 60) / 90) ** 2 + ((x - 80) / 60) ** 2 < 1  # a trunk the picture cuts at top and bottom (a reformat)
    assert body_running_axis(cut, cut, (1.0, 1.0), 40.0, 0.5) == 0
    assert body_running_axis(cut.T, cut.T, (1.0, 1.0), 40.0, 0.5) == 1
    padded = cut & (np.abs(y - 60) <= 50)  # padding bands of the reformat above and below
    assert body_running_axis(padded, padded, (1.0, 1.0), 40.0, 0.5) == 0
    whole = ((y - 60) / 50) ** 2 + ((x - 80) / 70) ** 2 < 1  # an axial trunk, whole
    assert body_running_axis(whole, whole, (1.0, 1.0), 40.0, 0.5) is None
    # the cuts (about 89 mm, 74 % of the 120 mm across) shorter than the limits: not taken for a reformat
    assert body_running_axis(cut, cut, (1.0, 1.0), 100.0, 0.5) is None
    assert body_running_axis(cut, cut, (1.0, 1.0), 40.0, 0.8) is None
    # the pixel size comes from the extent across the body, whichever way the picture is turned
    img = np.where(cut, 40.0, -1000.0)[None]
    upright = estimate_pixel_size_mm(img, -500, 330.0, cut_min_mm=40.0, cut_min_frac=0.5)
    assert upright == pytest.approx(330.0 / cut.any(axis=0).sum())
    assert estimate_pixel_size_mm(np.swapaxes(img, 1, 2), -500, 330.0, cut_min_mm=40.0, cut_min_frac=0.5) == upright
    axial = np.where(whole, 40.0, -1000.0)[None]
    assert estimate_pixel_size_mm(np.swapaxes(axial, 1, 2), -500, 330.0) == estimate_pixel_size_mm(axial, -500, 330.0)


# Dense pathology: ground glass and consolidation -------------------------------------------------------


def ggo_chest():
    """The chest phantom with its right lung's lateral part in ground glass (-550 HU in front, -300 HU behind)
    and its dependent (posterior) part consolidated at soft-tissue density."""
    hu, right, left, airway, body = phantom()
    z, y, x = np.mgrid[: hu.shape[0], : hu.shape[1], : hu.shape[2]]
    cy, cx = hu.shape[1] / 2, hu.shape[2] / 2
    lateral = right & (x < cx - 20)
    ggo_light = lateral & (y < cy - 4)
    ggo_dense = lateral & (y >= cy - 4) & (y <= cy + 6)
    consolidated = right & (y > cy + 6)
    hu[ggo_light] = -550
    hu[ggo_dense] = -300
    hu[consolidated] = 40
    return hu, right, left, ggo_light, ggo_dense, consolidated


def test_ground_glass_is_lung():
    hu, right, left, ggo_light, ggo_dense, consolidated = ggo_chest()
    assert ggo_dense.sum() > 300 and ggo_light.sum() > 300
    out = run(hu)
    assert (out.labels[ggo_light] == 1).mean() > 0.95
    assert (out.labels[ggo_dense] == 1).mean() > 0.9  # above the -400 HU of aerated lung: grown into
    assert dice(out.labels == 2, left) > 0.9
    # soft tissue around the lungs (mediastinum, chest wall) is not taken; the consolidation may be
    outside = (out.labels > 0) & ~(right | left)
    assert outside.sum() < 0.02 * (right | left).sum()
    assert (out.labels[consolidated] == 2).sum() == 0


def test_ground_glass_flipped_gives_the_flipped_mask():
    hu = ggo_chest()[0]
    out = run(hu)
    flipped = run(hu[:, ::-1, ::-1].copy(), direction=np.diag([-1.0, -1.0, 1.0]))  # stored with x and y reversed
    np.testing.assert_array_equal(flipped.labels, out.labels[:, ::-1, ::-1])


def nearly_airless_plane(*, gas_pocket: bool = False):
    """A 2D axial plane, 1 mm pixels: a clear right lung (-850 HU with vessels) and a left lung in ground glass
    (-300 HU) whose air is left in small pockets (64 mm2 each, a third of it), none large enough to be a lung of
    its own; optionally bowel gas with a -300 HU partial-volume rim reaching the left lung from below, and a
    layer of fat (-100 HU) around the chest."""
    y, x = np.mgrid[:300, :360].astype(float)
    hu = np.full(y.shape, -1000.0)
    trunk = ((y - 150) / 120) ** 2 + ((x - 180) / 160) ** 2 <= 1
    hu[trunk] = -100  # fat
    hu[((y - 150) / 105) ** 2 + ((x - 180) / 145) ** 2 <= 1] = 40
    right = ((y - 140) / 70) ** 2 + ((x - 105) / 45) ** 2 <= 1
    left = ((y - 140) / 70) ** 2 + ((x - 255) / 45) ** 2 <= 1
    hu[right] = np.where((y[right] % 8 == 0) & (x[right] % 8 == 0), 40, -850)
    pockets = left & (y % 14 < 8) & (x % 14 < 8)
    hu[left] = -300
    hu[pockets] = -850
    gas = np.zeros_like(left)
    if gas_pocket:
        gas = ((y - 228) / 12) ** 2 + ((x - 255) / 30) ** 2 <= 1
        rim = (((y - 228) / 18) ** 2 + ((x - 255) / 36) ** 2 <= 1) & ~gas
        bridge = (x > 245) & (x < 265) & (y > 200) & (y < 220)
        hu[(rim | bridge) & ~left] = -300
        hu[gas] = -1000
    return hu, right, left, gas


def test_nearly_airless_lung_is_found_beside_a_clear_one():
    hu, right, left, _ = nearly_airless_plane()
    out = run(hu, spacing=(1.0, 1.0))
    assert "one_lung_only" not in out.flags
    assert dice(out.labels == 1, right) > 0.9
    assert dice(out.labels == 2, left) > 0.85
    assert not (out.labels[hu == -100] > 0).any()  # fat stays out


def test_ground_glass_does_not_grow_into_bowel_gas():
    hu, right, left, gas = nearly_airless_plane(gas_pocket=True)
    out = run(hu, spacing=(1.0, 1.0))
    assert not (out.labels[gas] > 0).any()
    assert dice(out.labels == 2, left) > 0.8


def test_nearly_airless_lung_alone_is_not_found():
    # without any aerated lung in the plane, ground glass alone is not taken for lung (an abdomen's mottled bowel)
    hu, right, left, _ = nearly_airless_plane()
    hu[right] = 40
    out = run(hu, spacing=(1.0, 1.0))
    assert out.labels.max() == 0 and "no_lung_found" in out.flags


def test_ground_glass_growth_in_a_picture():
    # an 8-bit picture (windowed to [-1200, 600] HU, no pixel size) fine enough to show vessels: grown as in HU
    import lungseg

    hu, right, left, _ = nearly_airless_plane()
    hu = hu + np.random.default_rng(0).normal(0, 40, hu.shape)  # noise: the lung's interior is not flat like gas
    picture = Volume(np.clip((hu + 1200) / 1800 * 255, 0, 255).astype(np.uint8), (1.0, 1.0),
                     metadata={"format": "png", "bit_depth": 8, "spacing_known": False})
    out = lungseg.segment(picture)
    assert dice(out.labels == 2, left) > 0.8
    assert dice(out.labels == 1, right) > 0.9


def test_no_ground_glass_growth_in_coarse_pseudo_hu():
    # calibrated pseudo-HU with pixels too coarse to show vessels (a thumbnail) is too unsure for the -200 HU boundary
    hu = block_mean(nearly_airless_plane()[0][None], (1, 4, 4))[0]  # 4 mm pixels
    vol = Volume(hu, (4.0, 4.0), metadata={"spacing_known": True})
    true_hu = segment_hu(hu.astype(np.float32), vol, Settings())
    pseudo = segment_hu(hu.astype(np.float32), vol, Settings(), calibrated=True)
    assert (true_hu.labels == 2).sum() > 2 * (pseudo.labels == 2).sum()


def test_ground_glass_does_not_take_a_bronchus_beside_it():
    # a main bronchus at the hilum, its lumen (-920 HU, 12 mm wide: too small and too textured for the gas rules)
    # inside a -300 HU partial-volume wall touching the ground glass of the left lung: the lumen stays out
    hu, right, left, _ = nearly_airless_plane()
    y, x = np.mgrid[: hu.shape[0], : hu.shape[1]]
    lumen = (y - 140) ** 2 + (x - 198) ** 2 <= 6**2
    wall = ((y - 140) ** 2 + (x - 198) ** 2 <= 11**2) | ((np.abs(y - 140) <= 4) & (x >= 198) & (x <= 215))
    hu[wall & ~left] = -300
    hu[lumen] = -920
    out = run(hu, spacing=(1.0, 1.0))
    assert dice(out.labels == 2, left) > 0.85
    assert not (out.labels[lumen] > 0).any()
