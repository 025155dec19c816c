"""Writers: what ``write_labels``/``write_image`` write reads back with the same values and grid; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest

from lungseg.errors import OutputError, SettingsError
from lungseg.io import check_output_path, read, write_image, write_labels
from lungseg.volume import Volume

from conftest import shared

GRID_FORMATS = [".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".npz"]
PICTURE_FORMATS = [".png", ".tif", ".tiff", ".bmp"]


def _rotated_volume(shape=(4, 20, 24)) -> Volume:
    a = np.deg2rad(25)
    direction = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    array = (np.arange(np.prod(shape)) % 700 - 1024).astype(np.int16).reshape(shape)
    return Volume(array, (2.5, 0.8, 0.7), (-12.5, 30.0, 101.0), direction, {"format": "test"})


def _labels(shape) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[..., 2:8, 3:10] = 1
    labels[..., 10:15, 12:20] = 2
    return labels


@pytest.mark.parametrize("suffix", GRID_FORMATS)
def test_labels_round_trip_with_geometry(tmp_path, suffix):
    ref = _rotated_volume()
    labels = _labels(ref.shape)
    out = write_labels(labels, ref, tmp_path / f"mask{suffix}")
    back = read(out)
    np.testing.assert_array_equal(back.array, labels)
    assert back.array.dtype == np.uint8
    assert back.same_grid(ref, atol_mm=1e-4), (back.spacing, back.origin, back.direction)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"mask{suffix}"] + (["mask.raw"] if suffix == ".mhd" else []))


def test_npy_labels_round_trip_values(tmp_path):
    ref = _rotated_volume()
    labels = _labels(ref.shape)
    np.testing.assert_array_equal(read(write_labels(labels, ref, tmp_path / "m.npy")).array, labels)


@pytest.mark.data
@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd", ".mha"])
def test_real_rotated_scan_round_trip(tmp_path, suffix):
    ct = read(shared("cip", "ct-64-transformed.nrrd"))
    assert not np.allclose(ct.direction, np.eye(3))
    labels = (ct.array < -400).astype(np.uint8)
    back = read(write_labels(labels, ct, tmp_path / f"m{suffix}"))
    np.testing.assert_array_equal(back.array, labels)
    assert back.same_grid(ct, atol_mm=1e-4)


@pytest.mark.parametrize("suffix", PICTURE_FORMATS)
def test_2d_labels_binary_and_raw(tmp_path, suffix):
    ref = Volume(np.zeros((24, 32), np.int16), (0.7, 0.7))
    labels = _labels(ref.shape)
    binary = read(write_labels(labels, ref, tmp_path / f"b{suffix}"))
    np.testing.assert_array_equal(binary.array, np.where(labels > 0, 255, 0))
    raw = read(write_labels(labels, ref, tmp_path / f"r{suffix}", png_values="labels"))
    np.testing.assert_array_equal(raw.array, labels)


def test_2d_coronal_slice_mask_as_nifti_keeps_its_place(tmp_path):
    direction = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # rows go down (-z), normal +y
    ref = Volume(np.zeros((24, 32), np.int16), (1.3, 1.2), (-100.0, 20.0, 50.0), direction)
    labels = _labels(ref.shape)
    back = read(write_labels(labels, ref, tmp_path / "m.nii.gz"))
    assert back.shape == (1, 24, 32)
    np.testing.assert_array_equal(back.array[0], labels)
    assert back.direction == pytest.approx(direction)
    assert back.origin == pytest.approx(ref.origin)
    assert back.spacing[1:] == pytest.approx(ref.spacing)
    # every pixel is at the same world position in both
    assert back.affine @ np.array([0, 5, 7, 1.0]) == pytest.approx(ref.affine @ np.array([0, 5, 7, 1.0]))


def test_one_slice_volume_to_png(tmp_path):
    ref = Volume(np.zeros((1, 24, 32), np.int16), (1.0, 0.7, 0.7))
    back = read(write_labels(_labels(ref.shape), ref, tmp_path / "m.png", png_values="labels"))
    np.testing.assert_array_equal(back.array, _labels(ref.shape)[0])


def test_volume_to_png_is_refused(tmp_path):
    ref = _rotated_volume()
    with pytest.raises(OutputError, match="a PNG file holds one 2D image but this is a volume of 4 slices"):
        write_labels(_labels(ref.shape), ref, tmp_path / "m.png")
    assert list(tmp_path.iterdir()) == []


def test_volume_labels_to_multipage_tiff(tmp_path):
    ref = _rotated_volume()
    back = read(write_labels(_labels(ref.shape), ref, tmp_path / "m.tif", png_values="labels"))
    np.testing.assert_array_equal(back.array, _labels(ref.shape))


# -- write_image ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", GRID_FORMATS + [".npy", ".tif"])
def test_int16_image_keeps_dtype(tmp_path, suffix):
    ref = _rotated_volume()
    back = read(write_image(ref, tmp_path / f"img{suffix}"))
    assert back.array.dtype == np.int16
    np.testing.assert_array_equal(back.array, ref.array)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif"])
def test_uint8_picture_stays_uint8(tmp_path, suffix):
    img = Volume((np.arange(24 * 32) % 256).astype(np.uint8).reshape(24, 32), (1.0, 1.0))
    back = read(write_image(img, tmp_path / f"a{suffix}"))
    assert back.array.dtype == np.uint8
    np.testing.assert_array_equal(back.array, img.array)


def test_float_image_to_nifti(tmp_path):
    img = Volume(np.linspace(-1, 1, 3 * 20 * 20, dtype=np.float32).reshape(3, 20, 20), (1.0, 1.0, 1.0))
    back = read(write_image(img, tmp_path / "f.nii.gz"))
    assert back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array, img.array)


def test_int16_to_png_is_refused(tmp_path):
    img = Volume(np.full((20, 20), -1024, np.int16), (1.0, 1.0))
    with pytest.raises(OutputError, match=r"a PNG file stores uint8 or uint16 pixels, but this image is int16"):
        write_image(img, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_jpeg_allowed_for_images_only(tmp_path):
    img = Volume(np.zeros((20, 20), np.uint8), (1.0, 1.0))
    assert write_image(img, tmp_path / "a.jpg").exists()
    with pytest.raises(OutputError, match="JPEG is lossy and would change the labels"):
        write_labels(np.zeros((20, 20), np.uint8), img, tmp_path / "m.jpg")


def test_dicom_output_is_refused_with_a_pointer(tmp_path):
    img = Volume(np.zeros((20, 20), np.int16), (1.0, 1.0))
    with pytest.raises(OutputError, match=r"does not write DICOM images.*\.nii\.gz or \.nrrd.*--format seg"):
        write_image(img, tmp_path / "a.dcm")
    assert check_output_path(tmp_path / "seg.dcm", seg=True) == tmp_path / "seg.dcm"


def test_labels_of_the_wrong_shape_are_refused(tmp_path):
    ref = _rotated_volume()
    with pytest.raises(OutputError, match=r"the labels have shape \(2, 2\) but the reference grid is \(4, 20, 24\)"):
        write_labels(np.zeros((2, 2), np.uint8), ref, tmp_path / "m.nrrd")


def test_fractional_or_negative_labels_are_refused(tmp_path):
    ref = Volume(np.zeros((20, 20), np.int16), (1.0, 1.0))
    with pytest.raises(OutputError, match="labels must be whole numbers"):
        write_labels(np.full((20, 20), 0.5), ref, tmp_path / "m.nrrd")
    with pytest.raises(OutputError, match="labels must be integers from 0 to 255"):
        write_labels(np.full((20, 20), -1), ref, tmp_path / "m.nrrd")


def test_unknown_png_values_is_refused(tmp_path):
    ref = Volume(np.zeros((20, 20), np.int16), (1.0, 1.0))
    with pytest.raises(SettingsError, match="png_values must be 'binary' or 'labels', got 'grey'"):
        write_labels(np.zeros((20, 20), np.uint8), ref, tmp_path / "m.png", png_values="grey")


# -- atomic writes ---------------------------------------------------------------------------------


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    from lungseg.io import images2d

    ref = Volume(np.zeros((20, 20), np.int16), (1.0, 1.0))
    target = tmp_path / "m.png"
    target.write_bytes(b"old")

    def broken(array, path, fmt):
        path.write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(images2d, "write_image2d", broken)
    with pytest.raises(OutputError, match="cannot write .*m.png: disk full"):
        write_labels(np.zeros((20, 20), np.uint8), ref, target)
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]
    assert target.read_bytes() == b"old"


def test_mhd_header_points_at_the_final_raw(tmp_path):
    ref = _rotated_volume()
    write_labels(_labels(ref.shape), ref, tmp_path / "m.mhd")
    header = (tmp_path / "m.mhd").read_text()
    assert "ElementDataFile = m.raw" in header
    assert ".tmp-" not in header
