"""Readers other than DICOM: NIfTI/NRRD/MetaImage, NumPy, PNG/JPEG/TIFF/BMP; format recognition."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from lungseg.errors import InputError, UnsupportedInputError
from lungseg.io import inspect, read
from lungseg.io.formats import detect_format, full_suffix

from conftest import shared


def _ramp(shape=(32, 40), dtype=np.uint8, top=250):
    """A grey ramp whose every pixel value is known."""
    r = np.add.outer(np.arange(shape[0]), np.arange(shape[1]))
    return (r * top // r.max()).astype(dtype)


# -- SimpleITK formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"])
def test_itk_formats_keep_values_and_geometry(tmp_path, suffix):
    arr = np.arange(3 * 20 * 24, dtype=np.int16).reshape(3, 20, 24) - 500
    image = sitk.GetImageFromArray(arr)
    image.SetSpacing((0.7, 0.8, 2.5))
    image.SetOrigin((-10.0, 20.0, 30.0))
    angle = np.deg2rad(20)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image.SetDirection(direction.ravel())
    sitk.WriteImage(image, str(tmp_path / f"ct{suffix}"))
    ct = read(tmp_path / f"ct{suffix}")
    np.testing.assert_array_equal(ct.array, arr)
    assert ct.spacing == pytest.approx((2.5, 0.8, 0.7))
    assert ct.origin == pytest.approx((-10.0, 20.0, 30.0), abs=1e-4)
    assert ct.direction == pytest.approx(direction, abs=1e-6)
    assert ct.metadata["spacing_known"] is True
    assert ct.metadata["format"] == {".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd"}.get(suffix, "metaimage")


def test_4d_nifti_is_refused_and_one_volume_4d_is_read(tmp_path):
    four = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((3, 20, 20), np.int16))] * 2)
    sitk.WriteImage(four, str(tmp_path / "4d.nii.gz"))
    with pytest.raises(UnsupportedInputError, match=r"is 4D \(20 × 20 × 3 × 2\)"):
        read(tmp_path / "4d.nii.gz")
    one = sitk.JoinSeries([sitk.GetImageFromArray(np.ones((3, 20, 20), np.int16))])
    sitk.WriteImage(one, str(tmp_path / "one.nii.gz"))
    assert read(tmp_path / "one.nii.gz").shape == (3, 20, 20)


def test_colour_volume_is_refused(tmp_path):
    rgb = np.zeros((3, 20, 20, 3), np.uint8)
    rgb[..., 0] = 200
    sitk.WriteImage(sitk.GetImageFromArray(rgb, isVector=True), str(tmp_path / "rgb.nrrd"))
    with pytest.raises(UnsupportedInputError, match="is a colour image"):
        read(tmp_path / "rgb.nrrd")


@pytest.mark.data
def test_nifti_in_ras_is_read_in_lps():
    ct = read(shared("totalseg", "example_ct.nii.gz"))
    # SimpleITK turns NIfTI's RAS into LPS: the first two direction columns point to -x and -y
    assert ct.direction[0, 0] < 0 and ct.direction[1, 1] < 0
    assert ct.metadata["format"] == "nifti"


@pytest.mark.data
def test_user_spacing_overrides_the_file_with_a_warning(caplog):
    caplog.set_level("WARNING", logger="lungseg")
    ct = read(shared("cip", "ct-64.nrrd"), spacing=(1.0, 1.0, 1.0))
    assert ct.spacing == (1.0, 1.0, 1.0)
    assert "instead of the file's" in caplog.text


# -- NumPy ---------------------------------------------------------------------------------------------


def test_npy_without_spacing_has_unknown_spacing(tmp_path):
    np.save(tmp_path / "a.npy", _ramp(dtype=np.float32))
    ct = read(tmp_path / "a.npy")
    assert ct.is_2d and ct.spacing == (1.0, 1.0)
    assert ct.metadata["spacing_known"] is False
    ct = read(tmp_path / "a.npy", spacing=(0.7,))
    assert ct.spacing == (0.7, 0.7) and ct.metadata["spacing_known"] is True


def test_npy_channel_axis_is_dropped(tmp_path):
    np.save(tmp_path / "hwc.npy", _ramp()[..., None])
    np.save(tmp_path / "nhwc.npy", _ramp()[None, ..., None])
    np.testing.assert_array_equal(read(tmp_path / "hwc.npy").array, _ramp())
    np.testing.assert_array_equal(read(tmp_path / "nhwc.npy").array, _ramp())


def test_npy_stack_of_slices_is_refused(tmp_path):
    np.save(tmp_path / "stack.npy", np.zeros((5, 32, 32, 1), np.float32))
    with pytest.raises(UnsupportedInputError, match=r"holds a stack of 5 images of 32×32") as err:
        read(tmp_path / "stack.npy")
    assert "x[i, ..., 0]" in str(err.value)


def test_npy_3d_volume_with_spacing(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((4, 32, 32), np.int16))
    ct = read(tmp_path / "v.npy", spacing=(2.5, 0.7, 0.7))
    assert ct.shape == (4, 32, 32) and ct.spacing == (2.5, 0.7, 0.7)


def test_wrong_number_of_spacing_values_is_refused(tmp_path):
    np.save(tmp_path / "v.npy", np.zeros((4, 32, 32), np.int16))
    with pytest.raises(InputError, match=r"is 3D but 2 spacing values were given"):
        read(tmp_path / "v.npy", spacing=(0.7, 0.7))


def test_npz_takes_the_image_key_and_geometry(tmp_path):
    np.savez(tmp_path / "a.npz", other=np.zeros(3), image=_ramp(), spacing=np.array([0.5, 0.6]))
    ct = read(tmp_path / "a.npz")
    np.testing.assert_array_equal(ct.array, _ramp())
    assert ct.spacing == (0.5, 0.6) and ct.metadata["spacing_known"] is True


def test_npz_single_array_is_taken(tmp_path):
    np.savez(tmp_path / "a.npz", scan=_ramp())
    np.testing.assert_array_equal(read(tmp_path / "a.npz").array, _ramp())


def test_npz_with_several_unnamed_arrays_is_refused(tmp_path):
    np.savez(tmp_path / "a.npz", first=_ramp(), second=_ramp())
    with pytest.raises(InputError, match=r"holds 2 arrays and none is named image.*\(arrays: first, second\)"):
        read(tmp_path / "a.npz")


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UnsupportedInputError, match="holds Python objects"):
        read(tmp_path / "obj.npy")


# -- 2D pictures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,fmt", [(".png", "png"), (".bmp", "bmp"), (".tif", "tiff")])
def test_grey_8bit_pictures_keep_values(tmp_path, suffix, fmt):
    Image.fromarray(_ramp()).save(tmp_path / f"a{suffix}")
    ct = read(tmp_path / f"a{suffix}")
    np.testing.assert_array_equal(ct.array, _ramp())
    assert ct.array.dtype == np.uint8
    assert ct.metadata["format"] == fmt and ct.metadata["bit_depth"] == 8
    assert ct.metadata["spacing_known"] is False and ct.origin == (0.0, 0.0, 0.0)


def test_16bit_png_keeps_values(tmp_path):
    arr = _ramp(dtype=np.uint16, top=60000)
    Image.fromarray(arr).save(tmp_path / "a.png")
    ct = read(tmp_path / "a.png")
    np.testing.assert_array_equal(ct.array, arr)
    assert ct.array.dtype == np.uint16 and ct.metadata["bit_depth"] == 16


def test_signed_16bit_tiff_stays_int16(tmp_path):
    arr = _ramp(dtype=np.int16, top=2000) - 1024
    sitk.WriteImage(sitk.GetImageFromArray(arr), str(tmp_path / "a.tif"))
    ct = read(tmp_path / "a.tif")
    assert ct.array.dtype == np.int16
    np.testing.assert_array_equal(ct.array, arr)


def test_rgb_and_rgba_holding_grey_are_read_as_grey(tmp_path):
    grey = _ramp()
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "rgb.png")
    Image.fromarray(np.stack([grey] * 3 + [np.full_like(grey, 255)], axis=-1)).save(tmp_path / "rgba.png")
    for name in ("rgb.png", "rgba.png"):
        ct = read(tmp_path / name)
        assert ct.is_2d
        np.testing.assert_array_equal(ct.array, grey)


def test_grey_jpeg_saved_as_rgb_is_read_as_grey(tmp_path):
    grey = _ramp((64, 64))
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "a.jpg", quality=90)
    ct = read(tmp_path / "a.jpg")
    assert ct.is_2d and ct.metadata["format"] == "jpeg"
    assert np.abs(ct.array.astype(int) - grey).mean() < 3  # JPEG is lossy


def test_colour_picture_is_refused(tmp_path):
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 255
    rgb[:16, :, 2] = 255
    Image.fromarray(rgb).save(tmp_path / "colour.png")
    with pytest.raises(UnsupportedInputError, match="is a colour image"):
        read(tmp_path / "colour.png")


def test_multipage_tiff_is_a_volume(tmp_path):
    vol = np.stack([_ramp() + k for k in range(3)])
    sitk.WriteImage(sitk.GetImageFromArray(vol), str(tmp_path / "v.tif"))
    ct = read(tmp_path / "v.tif")
    assert ct.shape == (3, 32, 40) and ct.metadata["pages"] == 3
    np.testing.assert_array_equal(ct.array, vol)


def test_picture_spacing_from_option_not_dpi(tmp_path):
    Image.fromarray(_ramp()).save(tmp_path / "a.png", dpi=(300, 300))
    assert read(tmp_path / "a.png").spacing == (1.0, 1.0)
    assert read(tmp_path / "a.png", spacing=(0.6, 0.7)).spacing == (0.6, 0.7)


def test_inspect_picture_reports_size_and_mode(tmp_path):
    Image.fromarray(_ramp()).save(tmp_path / "a.png")
    facts = inspect(tmp_path / "a.png")
    assert facts["format"] == "png" and facts["mode"] == "L" and facts["stored_size"] == "40×32 pixels"


# -- recognising formats ---------------------------------------------------------------------------------


def test_full_suffix():
    assert full_suffix("x/Scan.NII.GZ") == ".nii.gz"
    assert full_suffix("CT.1.2.840") == ".840"


def test_png_named_nifti_is_reported(tmp_path):
    Image.fromarray(_ramp()).save(tmp_path / "a.png")
    (tmp_path / "a.nii.gz").write_bytes((tmp_path / "a.png").read_bytes())
    with pytest.raises(InputError, match=r"does not look like a NIFTI file \(its content is a PNG file\)"):
        read(tmp_path / "a.nii.gz")


def test_picture_without_extension_is_recognised(tmp_path):
    Image.fromarray(_ramp()).save(tmp_path / "a.png")
    (tmp_path / "slice").write_bytes((tmp_path / "a.png").read_bytes())
    assert detect_format(tmp_path / "slice") == "png"


@pytest.mark.parametrize("mode", ["P", "LA", "1"])
def test_palette_grey_alpha_and_bilevel_pictures(tmp_path, mode):
    grey = np.where(_ramp() > 120, 255, 0).astype(np.uint8)  # two levels: exact in every mode
    Image.fromarray(grey).convert(mode).save(tmp_path / "a.png")
    ct = read(tmp_path / "a.png")
    assert ct.array.dtype == np.uint8
    np.testing.assert_array_equal(ct.array, grey)


def test_2d_nrrd_is_a_2d_volume(tmp_path):
    image = sitk.GetImageFromArray(_ramp(dtype=np.int16))
    image.SetSpacing((0.5, 0.6))
    image.SetOrigin((3.0, 4.0))
    sitk.WriteImage(image, str(tmp_path / "a.nrrd"))
    ct = read(tmp_path / "a.nrrd")
    assert ct.is_2d and ct.spacing == pytest.approx((0.6, 0.5))
    assert ct.origin == pytest.approx((3.0, 4.0, 0.0))
    assert ct.direction == pytest.approx(np.eye(3))
