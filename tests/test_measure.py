"""Measurements, report, label conventions and overlap metrics, on volumes whose answers are known by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from lungseg.api import SegmentationResult
from lungseg.errors import InputError, OutputError
from lungseg.intensity import IntensityInfo
from lungseg.io.writers import write_atomic
from lungseg.measure import (
    LATERALITY_UNKNOWN,
    align_reference,
    build_report,
    compare_labels,
    lung_measurements,
    measurement_flags,
    overlap_metrics,
    to_lungmask,
    write_report,
)
from lungseg.settings import Settings
from lungseg.volume import Volume

from conftest import shared

SPACING = (2.5, 0.7, 0.5)  # mm per (plane, row, column): anisotropic on purpose
VOXEL_ML = 2.5 * 0.7 * 0.5 / 1000.0


def phantom(shape=(12, 20, 30)):
    """Air everywhere; right lung = box on the patient's right (low column index), left lung on the left."""
    hu = np.full(shape, -1000.0, np.float32)
    labels = np.zeros(shape, np.uint8)
    labels[2:8, 4:14, 3:11] = 1  # 6 * 10 * 8 = 480 voxels
    labels[3:9, 5:15, 17:27] = 2  # 6 * 10 * 10 = 600 voxels
    return hu, labels


def result(hu, labels, spacing=SPACING, *, path="hu", direction=None, flags=(), metadata=None, spacing_mm=None):
    volume = Volume(hu, spacing, direction=np.eye(3) if direction is None else direction,
                    metadata=metadata or {"format": "nrrd", "path": "/x/ct.nrrd"})
    return SegmentationResult(labels=labels, volume=volume, hu=hu, intensity=IntensityInfo(path=path, air_value=-1024.0),
                              body=np.ones(hu.shape, bool), settings=Settings(), flags=list(flags),
                              timings_s={"total_s": 0.5}, spacing_mm=spacing_mm)


# -- volumes and densities ---------------------------------------------------------------------
def test_volume_counts_voxels_times_anisotropic_spacing():
    hu, labels = phantom()
    m = lung_measurements(hu, labels, SPACING)
    assert m["right"]["voxels"] == 480 and m["left"]["voxels"] == 600 and m["both"]["voxels"] == 1080
    assert m["right"]["volume_ml"] == pytest.approx(480 * VOXEL_ML)
    assert m["left"]["volume_ml"] == pytest.approx(600 * VOXEL_ML)
    assert m["both"]["volume_ml"] == pytest.approx(1080 * VOXEL_ML)
    assert m["both"]["area_cm2"] is None


def test_mean_and_sd_of_two_known_values():
    hu, labels = phantom()
    right = np.flatnonzero(labels.ravel() == 1)
    flat = hu.ravel()
    flat[right[:240]] = -900.0
    flat[right[240:]] = -700.0  # half and half: mean -800, population SD 100
    m = lung_measurements(hu, labels, SPACING)
    assert m["right"]["mean_hu"] == pytest.approx(-800.0)
    assert m["right"]["sd_hu"] == pytest.approx(100.0)
    assert m["left"]["mean_hu"] == pytest.approx(-1000.0) and m["left"]["sd_hu"] == pytest.approx(0.0)
    # both: 240 at -900, 240 at -700, 600 at -1000
    assert m["both"]["mean_hu"] == pytest.approx((240 * -900 + 240 * -700 + 600 * -1000) / 1080, abs=1e-3)


def test_percentiles_of_a_ramp():
    hu = np.zeros((1, 10, 10), np.float32)
    hu.ravel()[:] = -1000.0 + np.arange(100)  # -1000, -999, ..., -901
    labels = np.ones(hu.shape, np.uint8)
    m = lung_measurements(hu, labels, (1.0, 1.0, 1.0))["right"]
    # linear interpolation: the 10th percentile of 100 sorted values sits at rank 0.10 * 99 = 9.9
    assert m["pd10_hu"] == pytest.approx(-1000.0 + 9.9)
    assert m["pd15_hu"] == pytest.approx(-1000.0 + 14.85)


def test_laa_and_haa_fractions():
    hu = np.zeros((1, 10, 10), np.float32)
    labels = np.ones(hu.shape, np.uint8)
    values = np.array([-960.0] * 30 + [-900.0] * 20 + [-500.0] * 10 + [-700.0] * 40)
    hu.ravel()[:] = np.random.default_rng(0).permutation(values)
    m = lung_measurements(hu, labels, (1.0, 1.0, 1.0))["right"]
    assert m["laa950_pct"] == pytest.approx(30.0)  # exactly 30 % of the voxels at -960
    assert m["laa910_pct"] == pytest.approx(30.0)
    assert m["laa856_pct"] == pytest.approx(50.0)  # -960 and -900
    assert m["haa_pct"] == pytest.approx(10.0)  # -500 lies in -600..-250


def test_thresholds_at_their_edges():
    values = np.array([-950.0, -910.0, -856.0, -600.0, -250.0, -249.0, -601.0, -951.0])
    hu = values.reshape(1, 1, -1)
    m = lung_measurements(hu, np.ones(hu.shape, np.uint8), (1.0, 1.0, 1.0))["right"]
    assert m["laa950_pct"] == pytest.approx(100 * 1 / 8)  # only -951: "below" is strict
    assert m["laa910_pct"] == pytest.approx(100 * 2 / 8)  # -951, -950
    assert m["laa856_pct"] == pytest.approx(100 * 3 / 8)  # -951, -950, -910
    assert m["haa_pct"] == pytest.approx(100 * 2 / 8)  # -600 and -250 both included


def test_calibrated_intensity_withholds_density_with_a_reason():
    hu, labels = phantom()
    m = lung_measurements(hu, labels, SPACING, density_valid=False, density_reason="not HU")
    for lung in ("right", "left", "both"):
        for key in ("mean_hu", "sd_hu", "pd10_hu", "pd15_hu", "laa950_pct", "laa910_pct", "laa856_pct", "haa_pct"):
            assert m[lung][key] is None
        assert m[lung]["density_withheld"] == "not HU"
        assert m[lung]["volume_ml"] > 0  # sizes do not depend on HU


@pytest.mark.parametrize("path", ["calibrated", "window"])
def test_report_withholds_density_for_calibrated_paths(path):
    hu, labels = phantom()
    report = build_report(result(hu, labels, path=path))
    assert "density_withheld_calibrated_intensity" in report["flags"]
    assert report["lungs"]["both"]["mean_hu"] is None
    assert path in report["lungs"]["both"]["density_withheld"]
    assert report["lungs"]["both"]["volume_ml"] == pytest.approx(1080 * VOXEL_ML)


def test_empty_lung_has_zero_volume_and_no_density():
    hu, labels = phantom()
    labels[labels == 2] = 0
    m = lung_measurements(hu, labels, SPACING)["left"]
    assert m["voxels"] == 0 and m["volume_ml"] == 0.0
    assert m["mean_hu"] is None and m["pd15_hu"] is None and m["thirds_pct"] is None


def test_mismatched_shapes_and_spacing_are_refused():
    with pytest.raises(InputError, match=r"same shape"):
        lung_measurements(np.zeros((2, 3, 3)), np.zeros((2, 3, 4)), SPACING)
    with pytest.raises(InputError, match=r"spacing needs one value per array axis \(3\)"):
        lung_measurements(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), (1.0, 1.0))


# -- thirds ---------------------------------------------------------------------------------------
def stepped_lung():
    """A right lung over slices 0..8 (+z is up, so slice 8 is the top): 4, 8 and 12 voxels per slice
    in the lower, middle and upper three slices: 12 + 24 + 36 = 72 voxels; thirds 50 / 33.3 / 16.7 %."""
    labels = np.zeros((11, 6, 6), np.uint8)
    for s in range(9):
        n = (4, 8, 12)[s // 3]
        labels[s + 1].ravel()[:n] = 1
    return labels


def test_thirds_of_a_stepped_shape():
    labels = stepped_lung()
    m = lung_measurements(np.zeros(labels.shape), labels, SPACING)
    assert m["right"]["thirds_pct"] == pytest.approx([50.0, 100 / 3, 100 / 6], abs=1e-3)
    assert m["left"]["thirds_pct"] is None


def test_thirds_use_world_z_so_a_flipped_volume_gives_the_same_answer():
    labels = stepped_lung()
    expected = lung_measurements(np.zeros(labels.shape), labels, SPACING)["right"]["thirds_pct"]
    flipped = labels[::-1]
    feet_first = np.diag([1.0, 1.0, -1.0])  # slice axis runs towards the feet
    same = lung_measurements(np.zeros(labels.shape), flipped, SPACING, direction=feet_first)["right"]["thirds_pct"]
    assert same == pytest.approx(expected)
    # flipping the array but not its geometry turns the lung upside down
    upside_down = lung_measurements(np.zeros(labels.shape), flipped, SPACING)["right"]["thirds_pct"]
    assert upside_down == pytest.approx(expected[::-1])


def test_thirds_of_a_volume_stored_as_sagittal_slices():
    labels = stepped_lung()  # (z, y, x) array
    sagittal = np.transpose(labels, (2, 1, 0))  # array axes now run x, y, z
    spacing = SPACING[::-1]
    # ITK axis 0 (columns) runs along world z, axis 1 (rows) along y, axis 2 (slices) along x
    direction = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    m = lung_measurements(np.zeros(sagittal.shape), sagittal, spacing, direction=direction)
    assert m["right"]["thirds_pct"] == pytest.approx([50.0, 100 / 3, 100 / 6], abs=1e-3)


def test_2d_slices_give_an_area_and_thirds_only_when_the_plane_has_height():
    labels = np.zeros((10, 10), np.uint8)
    labels[0:6, 2:4] = 1  # 12 pixels in rows 0..5
    m = lung_measurements(np.zeros(labels.shape), labels, (2.0, 0.5))
    assert m["right"]["volume_ml"] is None
    assert m["right"]["area_cm2"] == pytest.approx(12 * 2.0 * 0.5 / 100.0)
    assert m["right"]["thirds_pct"] is None  # an axial slice has no craniocaudal extent
    # a coronal slice: rows run towards the feet (-z), so row 0 is the top
    coronal = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    labels[0:2, 4:6] = 1  # rows 0-1 (upper third of rows 0..5) now hold 8 of 16 pixels
    m = lung_measurements(np.zeros(labels.shape), labels, (2.0, 0.5), direction=coronal)
    assert m["right"]["thirds_pct"] == pytest.approx([50.0, 25.0, 25.0])


# -- flags ----------------------------------------------------------------------------------------
def test_flags_for_a_lung_inside_the_scan():
    hu, labels = phantom()
    assert measurement_flags(labels) == []


def test_flags_for_a_lung_cut_by_the_first_and_last_slice():
    _, labels = phantom()
    labels[0, 5, 5] = 1
    assert measurement_flags(labels) == ["lung_cut_at_first_slice"]
    labels[-1, 5, 20] = 2
    assert measurement_flags(labels) == ["lung_cut_at_first_slice", "lung_cut_at_last_slice"]


@pytest.mark.parametrize("where", [(5, 0, 5), (5, -1, 5), (5, 5, 0), (5, 5, -1)])
def test_flags_for_a_lung_touching_the_image_side(where):
    _, labels = phantom()
    labels[where] = 1
    assert measurement_flags(labels) == ["lung_cut_by_fov"]


def test_flags_for_a_lung_touching_a_circular_field_of_view():
    labels = np.zeros((40, 40), np.uint8)
    rows, cols = np.mgrid[:40, :40]
    fov = (rows - 19.5) ** 2 + (cols - 19.5) ** 2 <= 18**2
    labels[15:25, 10:18] = 1
    assert measurement_flags(labels, fov_mask=fov) == []
    labels[15:25, 2:18] = 1  # reaches the circle's edge at column 2
    assert measurement_flags(labels, fov_mask=fov) == ["lung_cut_by_fov"]
    assert measurement_flags(np.stack([labels] * 3), fov_mask=fov) == ["lung_cut_at_first_slice", "lung_cut_at_last_slice", "lung_cut_by_fov"]


def test_flags_for_no_lung_and_calibrated_intensity():
    assert measurement_flags(np.zeros((3, 4, 4), np.uint8), density_valid=False) == [
        "no_lung_found", "density_withheld_calibrated_intensity"]


# -- the report ---------------------------------------------------------------------------------------
LUNG_KEYS = {"volume_ml", "mean_hu", "sd_hu", "pd10_hu", "pd15_hu", "laa950_pct", "laa910_pct", "laa856_pct",
             "haa_pct", "thirds_pct"}


def test_report_layout():
    hu, labels = phantom()
    meta = {"format": "dicom", "path": "/x/series", "dicom": {"series_uid": "1.2.3"}}
    report = build_report(result(hu, labels, flags=["from_segment"], metadata=meta), outputs={"mask": "m.nii.gz"})
    assert {"lungseg_version", "input", "intensity", "settings", "lungs", "flags", "timings_s", "outputs"} <= set(report)
    assert set(report["lungs"]) == {"right", "left", "both"}
    for lung in report["lungs"].values():
        assert LUNG_KEYS <= set(lung)
        assert len(lung["thirds_pct"]) == 3
    assert report["input"]["format"] == "dicom" and report["input"]["series_uid"] == "1.2.3"
    assert report["input"]["grid"]["shape"] == list(hu.shape)
    assert report["input"]["grid"]["spacing_mm"] == list(SPACING)
    assert report["intensity"]["path"] == "hu"
    assert report["settings"] == Settings().to_dict()
    assert report["flags"] == ["from_segment"]
    assert report["timings_s"] == {"total_s": 0.5}
    assert report["outputs"] == {"mask": "m.nii.gz"}
    json.dumps(report, allow_nan=False)  # plain JSON, no NumPy types, no NaN


def test_report_merges_flags_without_duplicates():
    hu, labels = phantom()
    labels[0, 5, 5] = 1
    report = build_report(result(hu, labels, flags=["lung_cut_at_first_slice", "other"]))
    assert report["flags"] == ["lung_cut_at_first_slice", "other"]


def test_report_measures_with_the_estimated_pixel_size_when_the_input_had_none():
    hu, labels = phantom()
    meta = {"format": "array", "spacing_known": False}
    report = build_report(result(hu, labels, (1.0, 1.0, 1.0), metadata=meta, spacing_mm=(2.0, 2.0, 2.0)))
    assert report["lungs"]["right"]["volume_ml"] == pytest.approx(480 * 8 / 1000)
    assert report["input"]["grid"]["measured_with_spacing_mm"] == [2.0, 2.0, 2.0]
    assert report["flags"] == ["pixel_size_estimated"]


def test_write_report_is_json_and_lists_itself(tmp_path):
    hu, labels = phantom()
    path = write_report(result(hu, labels), tmp_path / "r.json", outputs={"qc": tmp_path / "q.png"})
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["lungs"]["right"]["volume_ml"] == pytest.approx(480 * VOXEL_ML)
    assert report["outputs"] == {"qc": str(tmp_path / "q.png"), "report": str(tmp_path / "r.json")}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def test_write_atomic_refuses_a_missing_folder(tmp_path):
    with pytest.raises(OutputError, match=r"the folder .*nowhere does not exist"):
        write_atomic(tmp_path / "nowhere" / "r.json", lambda fh: fh.write("{}"))


def test_write_atomic_refuses_a_folder_as_the_file(tmp_path):
    (tmp_path / "r.json").mkdir()
    with pytest.raises(OutputError, match=r"cannot write .*r.json: it is a folder \(give a file name\)"):
        write_atomic(tmp_path / "r.json", lambda fh: fh.write("{}"))


def test_write_atomic_reports_a_file_the_system_cannot_create(tmp_path):
    name = "r" * 300 + ".json"  # longer than any file system allows
    with pytest.raises(OutputError, match=r"cannot write .*\.json: .*\(choose another file name\)"):
        write_atomic(tmp_path / name, lambda fh: fh.write("{}"))
    assert list(tmp_path.iterdir()) == []


def test_write_atomic_leaves_nothing_when_writing_fails(tmp_path):
    (tmp_path / "r.json").write_text("old")

    def fail(fh):
        fh.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(tmp_path / "r.json", fail)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert (tmp_path / "r.json").read_text() == "old"


# -- label conventions -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "convention, values, expected",
    [
        ("lungmask", [0, 1, 2], [0, 1, 2]),
        ("cip", [0, 1, 2, 3, 4, 7, 9, 12, 14, 2 << 8 | 9, 3 << 8 | 13, 2 << 8, 15], [0, 3, 1, 2, 1, 2, 2, 1, 1, 2, 1, 0, 0]),
        ("cip-partial", [9, 10, 11, 12, 13, 14], [2, 2, 2, 1, 1, 1]),
        ("totalseg-lobes", [0, 10, 11, 12, 13, 14, 16, 5], [0, 2, 2, 1, 1, 1, 0, 0]),
        ("luna16", [0, 3, 4, 5], [0, 1, 2, 0]),
        ("binary", [0, 1, 255, 7], [0, LATERALITY_UNKNOWN, LATERALITY_UNKNOWN, LATERALITY_UNKNOWN]),
    ],
)
def test_conventions_map_to_lungmask(convention, values, expected):
    out = to_lungmask(np.array(values, np.uint16), convention)
    assert out.dtype == np.uint8
    assert out.tolist() == expected


def test_unknown_convention_is_refused():
    with pytest.raises(InputError, match=r"unknown label convention 'nnunet'.*lungmask"):
        to_lungmask(np.zeros(3), "nnunet")


@pytest.mark.parametrize("convention, values", [("lungmask", [0, 1, 2, 3, 4]), ("luna16", [0, 1, 3])])
def test_values_outside_a_strict_convention_are_refused(convention, values):
    with pytest.raises(InputError, match=rf"values \(.*\) that the '{convention}' convention does not use"):
        to_lungmask(np.array(values), convention)


# -- overlap and surface distances ------------------------------------------------------------------
def cube(shape, start, size):
    mask = np.zeros(shape, bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


@pytest.mark.parametrize("shift", [1, 3])
def test_dice_and_hausdorff_of_shifted_cubes(shift):
    spacing = (2.5, 0.7, 0.5)
    a = cube((16, 16, 16), (3, 3, 3), 8)
    b = cube((16, 16, 16), (3 + shift, 3, 3), 8)
    m = overlap_metrics(a, b, spacing)
    assert m["dice"] == pytest.approx((8 - shift) / 8)
    assert m["hd_mm"] == pytest.approx(shift * 2.5)
    assert m["volume_diff_ml"] == 0.0 and m["volume_diff_pct"] == 0.0


def brute_force_surface_distances(a, b, spacing):
    """The slow, obvious way: every boundary point of one mask to every boundary point of the other."""
    from scipy import ndimage as ndi

    def points(mask):
        surface = mask & ~ndi.binary_erosion(mask, border_value=0)
        return np.argwhere(surface) * np.asarray(spacing)

    pa, pb = points(a), points(b)
    d = cdist(pa, pb)
    return np.concatenate([d.min(axis=1), d.min(axis=0)])


@pytest.mark.parametrize("offset", [(2, 0, 0), (0, 1, 2), (1, 2, 3), (-3, 5, 5)])  # the last touches the array edges
def test_hd95_and_assd_match_a_brute_force_computation(offset):
    spacing = (2.5, 0.7, 0.5)
    a = cube((14, 14, 14), (3, 3, 3), 6)
    b = cube((14, 14, 14), tuple(3 + o for o in offset), 6)
    b[4:6, 4:12, 4:6] = True  # not a cube any more
    m = overlap_metrics(a, b, spacing)
    d = brute_force_surface_distances(a, b, spacing)
    assert m["hd95_mm"] == pytest.approx(np.percentile(d, 95), abs=1e-3)
    assert m["assd_mm"] == pytest.approx(d.mean(), abs=1e-3)
    assert m["hd_mm"] == pytest.approx(d.max(), abs=1e-3)


def test_parallel_planes_are_a_known_distance_apart():
    a = np.zeros((10, 6, 6), bool)
    b = np.zeros((10, 6, 6), bool)
    a[2] = True
    b[5] = True  # every point of each plane is 3 slices = 7.5 mm from the other plane
    m = overlap_metrics(a, b, (2.5, 1.0, 1.0))
    assert m["dice"] == 0.0
    assert m["hd95_mm"] == pytest.approx(7.5) and m["assd_mm"] == pytest.approx(7.5)


def test_identical_masks_score_perfectly():
    a = cube((10, 10, 10), (2, 2, 2), 5)
    m = overlap_metrics(a, a, (1.0, 1.0, 1.0))
    assert (m["dice"], m["hd95_mm"], m["assd_mm"], m["volume_diff_ml"]) == (1.0, 0.0, 0.0, 0.0)
    assert m["note"] is None


def test_volume_difference_in_ml_and_percent():
    ref = cube((10, 10, 10), (0, 0, 0), 5)  # 125 voxels
    pred = cube((10, 10, 10), (0, 0, 0), 4)  # 64 voxels
    m = overlap_metrics(pred, ref, (2.0, 1.0, 1.0))
    assert m["pred_ml"] == pytest.approx(0.128) and m["ref_ml"] == pytest.approx(0.25)
    assert m["volume_diff_ml"] == pytest.approx(-0.122)
    assert m["volume_diff_pct"] == pytest.approx(-48.8)


def test_empty_masks_give_none_and_a_note():
    empty = np.zeros((5, 5, 5), bool)
    full = cube((5, 5, 5), (1, 1, 1), 2)
    both = overlap_metrics(empty, empty, (1.0, 1.0, 1.0))
    assert both["dice"] is None and both["hd95_mm"] is None and "both masks are empty" in both["note"]
    no_pred = overlap_metrics(empty, full, (1.0, 1.0, 1.0))
    assert no_pred["dice"] == 0.0 and no_pred["assd_mm"] is None
    assert no_pred["note"] == "the prediction is empty: surface distances are undefined"
    no_ref = overlap_metrics(full, empty, (1.0, 1.0, 1.0))
    assert no_ref["volume_diff_pct"] is None and "the reference is empty" in no_ref["note"]


def test_2d_overlap_reports_areas():
    a = cube((10, 10), (0, 0), 4)
    m = overlap_metrics(a, a, (0.5, 0.5))
    assert m["pred_cm2"] == pytest.approx(16 * 0.25 / 100) and m["area_diff_pct"] == 0.0


def test_overlap_refuses_mismatched_inputs():
    with pytest.raises(InputError, match=r"masks must have the same shape"):
        overlap_metrics(np.zeros((3, 3)), np.zeros((3, 4)), (1.0, 1.0))
    with pytest.raises(InputError, match=r"spacing needs one value per array axis \(2\)"):
        overlap_metrics(np.zeros((3, 3)), np.zeros((3, 3)), (1.0, 1.0, 1.0))


def test_compare_labels_per_lung():
    _, labels = phantom()
    swapped = np.choose(labels, [0, 2, 1]).astype(np.uint8)
    scores = compare_labels(swapped, labels, SPACING)
    assert scores["right"]["dice"] == 0.0 and scores["left"]["dice"] == 0.0
    assert scores["whole"]["dice"] == 1.0


def test_compare_labels_with_a_binary_side_scores_the_whole_lung_only():
    _, labels = phantom()
    binary = to_lungmask(labels > 0, "binary")
    scores = compare_labels(labels, binary, SPACING)
    assert scores["right"]["dice"] is None and "reference does not say which lung" in scores["right"]["note"]
    assert scores["whole"]["dice"] == 1.0


# -- grids -----------------------------------------------------------------------------------------
def test_same_grid_reference_is_used_as_is():
    pred = Volume(np.zeros((4, 5, 6), np.uint8), (2.0, 1.0, 1.0))
    ref = Volume(np.ones((4, 5, 6), np.uint8), (2.0, 1.0, 1.0))
    assert align_reference(pred, ref) is ref


def test_different_grid_is_refused_with_a_clear_message():
    pred = Volume(np.zeros((4, 5, 6), np.uint8), (2.0, 1.0, 1.0))
    ref = Volume(np.zeros((4, 5, 6), np.uint8), (2.0, 1.0, 1.0), origin=(0.0, 0.0, 10.0))
    with pytest.raises(InputError, match=r"different grid from the prediction: origin \(0, 0, 10\) vs \(0, 0, 0\) mm.*--resample"):
        align_reference(pred, ref)


def test_2d_against_3d_is_refused():
    with pytest.raises(InputError, match=r"the prediction is 2D .* but the reference is 3D"):
        align_reference(Volume(np.zeros((5, 6)), (1.0, 1.0)), Volume(np.zeros((2, 5, 6)), (1.0, 1.0, 1.0)), resample=True)


def test_resampling_a_finer_reference_onto_the_prediction_grid():
    pred_labels = np.zeros((6, 8, 8), np.uint8)
    pred_labels[1:4, 2:6, 2:4] = 1
    pred = Volume(pred_labels, (2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0))
    # the same box on a grid twice as fine, shifted by 0.1 mm so no prediction voxel centre is a tie:
    # fine centres at -0.4, 0.6, 1.6, ... mm, the nearest to 2j is fine voxel 2j, which lies in voxel j
    fine = np.repeat(np.repeat(np.repeat(pred_labels, 2, 0), 2, 1), 2, 2)
    ref = Volume(fine, (1.0, 1.0, 1.0), origin=(-0.4, -0.4, -0.4))
    out = align_reference(pred, ref, resample=True)
    assert out.same_grid(pred)
    assert out.metadata["resampled"] is True
    assert np.array_equal(out.array, pred_labels)


# -- real data ---------------------------------------------------------------------------------------
@pytest.mark.data
def test_cip_reference_densities_match_numpy_and_both_codings_agree():
    from lungseg.io import read

    ct = read(shared("cip", "ct-64.nrrd"))
    ref = to_lungmask(read(shared("cip", "lm-64.nrrd")).array, "cip")
    whole = to_lungmask(read(shared("cip", "wholeLung-64.nrrd")).array, "binary")
    m = lung_measurements(ct.array, ref, ct.spacing, direction=ct.direction)
    for name, mask in (("right", ref == 1), ("left", ref == 2), ("both", ref > 0)):
        values = ct.array[mask].astype(float)
        assert m[name]["volume_ml"] == pytest.approx(mask.sum() * np.prod(ct.spacing) / 1000)
        assert m[name]["mean_hu"] == pytest.approx(values.mean(), abs=1e-3)
        assert m[name]["pd15_hu"] == pytest.approx(np.percentile(values, 15), abs=1e-3)
        assert m[name]["laa950_pct"] == pytest.approx(100 * np.mean(values < -950), abs=1e-3)
        assert sum(m[name]["thirds_pct"]) == pytest.approx(100.0, abs=1e-3)
    assert compare_labels(whole, ref, ct.spacing)["whole"]["dice"] > 0.99
    # the rotated copy: same voxels, rotated geometry; its thirds follow world z the same way
    ct_t = read(shared("cip", "ct-64-transformed.nrrd"))
    ref_t = to_lungmask(read(shared("cip", "lm-64-transformed.nrrd")).array, "cip")
    m_t = lung_measurements(ct_t.array, ref_t, ct_t.spacing, direction=ct_t.direction)
    assert m_t["both"]["thirds_pct"] == pytest.approx(m["both"]["thirds_pct"], abs=1e-3)
