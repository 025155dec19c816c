"""``lungseg segment`` outputs: masked image, ROI in mm, crop, and refusals made before any work is done."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from lungseg.cli import main
from lungseg.api import demo_scan_path


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The shipped demo scan segmented once, with every volume output."""
    out = tmp_path_factory.mktemp("demo")
    rc = main(["-q", "segment", str(demo_scan_path()), str(out / "m.nrrd"), "--masked", str(out / "masked.nrrd"),
               "--roi", str(out / "roi.nrrd"), "--margin-mm", "12"])
    assert rc == 0
    return {k: sitk.ReadImage(str(out / f"{k}.nrrd")) for k in ("m", "masked", "roi")}


def test_masked_image_is_air_outside_the_lungs_and_the_input_inside(demo):
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_scan_path())))
    labels = sitk.GetArrayFromImage(demo["m"])
    masked = sitk.GetArrayFromImage(demo["masked"])
    assert masked.dtype == ct.dtype and labels.any()
    np.testing.assert_array_equal(masked[labels == 0], -1024)
    np.testing.assert_array_equal(masked[labels > 0], ct[labels > 0])


def test_roi_grows_the_lungs_by_the_margin_in_mm_and_stays_in_the_body(demo):
    labels = sitk.GetArrayFromImage(demo["m"])
    roi = sitk.GetArrayFromImage(demo["roi"])
    spacing = demo["m"].GetSpacing()[::-1]
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(labels == 0, sampling=spacing)
    assert np.all(roi[labels > 0] == labels[labels > 0])  # the lungs keep their labels
    assert dist[roi > 0].max() <= 12.0 + 1e-6  # never further than the margin
    grown = (roi > 0) & (labels == 0)
    assert grown.sum() > 0.2 * (labels > 0).sum()  # and it did grow
    ct = sitk.GetArrayFromImage(sitk.ReadImage(str(demo_scan_path())))
    assert np.median(ct[grown]) > -500  # grown into tissue, not into the air around the patient


def test_crop_keeps_world_positions(tmp_path, demo):
    out = tmp_path / "crop.nrrd"
    assert main(["-q", "segment", str(demo_scan_path()), str(out), "--crop", "--crop-margin-mm", "8"]) == 0
    cropped = sitk.ReadImage(str(out))
    full = demo["m"]
    assert cropped.GetSize() < full.GetSize() or np.prod(cropped.GetSize()) < np.prod(full.GetSize())
    # every voxel of the crop holds the full mask's label at the same world point
    arr_c, arr_f = sitk.GetArrayFromImage(cropped), sitk.GetArrayFromImage(full)
    start = full.TransformPhysicalPointToIndex(cropped.GetOrigin())
    box = tuple(slice(s, s + n) for s, n in zip(start[::-1], arr_c.shape))
    np.testing.assert_array_equal(arr_c, arr_f[box])
    assert arr_c.sum() == arr_f.sum()  # nothing of the lungs cut away


def test_two_outputs_on_one_file_are_refused_before_reading(tmp_path, capsys):
    out = tmp_path / "same.nii.gz"
    rc = main(["segment", str(demo_scan_path()), str(out), "--masked", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "two outputs are the same file" in err and "Traceback" not in err
    assert not out.exists()


def test_a_volume_as_png_is_refused_before_segmenting(tmp_path, capsys):
    rc = main(["segment", str(demo_scan_path()), str(tmp_path / "m.nii.gz"), "--masked", str(tmp_path / "masked.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "PNG file holds one 2D image" in err
    assert "intensity path" not in err  # refused before the intensity step ran
    assert list(tmp_path.iterdir()) == []


def test_demo_writes_its_four_outputs(tmp_path, capsys):
    assert main(["-q", "demo", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == ["mask.nii.gz", "masked.nii.gz", "qc.png", "report.json"]
    assert str((tmp_path / "demo").resolve()) in out


def test_window_with_a_negative_low_value_is_accepted(tmp_path, capsys):
    """``--window -1200,600`` as the README writes it (argparse alone would take -1200,600 for an option)."""
    from PIL import Image

    y, x = np.mgrid[:128, :128]
    hu = np.full((128, 128), -1000.0)
    hu[((y - 64) / 40) ** 2 + ((x - 64) / 56) ** 2 <= 1] = 40  # body
    for cx in (40, 88):
        lung = ((y - 62) / 26) ** 2 + ((x - cx) / 16) ** 2 <= 1
        hu[lung] = -850 + np.random.default_rng(cx).normal(0, 60, int(lung.sum()))  # lung, with its texture
        hu[lung & (y % 7 == 0) & (x % 7 == 0)] = 40  # and vessels
    png = tmp_path / "slice.png"
    Image.fromarray(np.clip((hu + 1200) / 1800 * 255, 0, 255).astype(np.uint8)).save(png)
    rc = main(["-q", "segment", str(png), str(tmp_path / "m.png"), "--window", "-1200,600", "--spacing", "2.5"])
    out = capsys.readouterr().out
    assert rc == 0 and "intensity: window" in out
    mask = np.asarray(Image.open(tmp_path / "m.png"))
    assert set(np.unique(mask)) == {0, 255}


def test_cip_report_volumes_within_3_percent_of_the_reference(tmp_path):
    """Issue 4's check: the report's lung volumes on cip ct-64 against the Chest Imaging Platform label map."""
    import json

    from conftest import shared

    from lungseg.io import read
    from lungseg.measure import to_lungmask

    report = tmp_path / "r.json"
    assert main(["-q", "segment", str(shared("cip", "ct-64.nrrd")), str(tmp_path / "m.nii.gz"), "--report", str(report)]) == 0
    lungs = json.loads(report.read_text())["lungs"]
    ref = read(shared("cip", "lm-64.nrrd"))
    labels = to_lungmask(ref.array, "cip")
    for side, values in (("right", (1,)), ("left", (2,)), ("both", (1, 2))):
        ref_ml = np.isin(labels, values).sum() * ref.voxel_volume_mm3 / 1000
        assert abs(lungs[side]["volume_ml"] / ref_ml - 1) < 0.03, (side, lungs[side]["volume_ml"], ref_ml)
