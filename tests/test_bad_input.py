"""Bad input and bad output paths: one clear error each, in the library and through the CLI.

Library tests check the exception type and message. CLI tests run ``lungseg.cli.main`` in-process and
check: a non-zero exit code, one ``lungseg: error:`` line on stderr, no traceback, no output file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image

from lungseg.cli import main
from lungseg.errors import InputError, OutputError, UnsupportedInputError
from lungseg.io import check_output_path, read

from test_io_dicom import SIDE, make_series, make_slice


def _nifti(path: Path, array=None) -> Path:
    array = np.full((3, 32, 32), -1000, np.int16) if array is None else array
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    return path


def _png(path: Path) -> Path:
    Image.fromarray(np.add.outer(np.arange(32), np.arange(32)).astype(np.uint8)).save(path)
    return path


def _without_pixels(path: Path, series_uid: str, sop_class: str | None = None) -> Path:
    """A DICOM object without pixel data (a plain CT header, or another SOP class such as an SR)."""
    ds = pydicom.dcmread(make_slice(path, np.zeros((SIDE, SIDE)), series_uid=series_uid))
    del ds.PixelData
    if sop_class:
        ds.SOPClassUID = sop_class
    ds.save_as(path)
    return path


SR = "1.2.840.10008.5.1.4.1.1.88.22"


def _cut_in_half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# -- library ---------------------------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match=r"nope.nii.gz does not exist \(check the spelling\)"):
        read(tmp_path / "nope.nii.gz")


def test_missing_path_in_missing_folder(tmp_path):
    with pytest.raises(InputError, match=r"does not exist \(the folder .*gone does not exist either\)"):
        read(tmp_path / "gone" / "ct.nrrd")


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match=r"is an empty folder"):
        read(tmp_path)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match=r"no DICOM images in .* \(it holds 2 other file\(s\): notes.txt, table.csv\)"):
        read(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "ct.nii.gz").write_bytes(b"")
    with pytest.raises(InputError, match=r"is an empty file \(0 bytes\)"):
        read(tmp_path / "ct.nii.gz")


@pytest.mark.parametrize("name,fmt", [("ct.nii.gz", "NIFTI"), ("ct.png", "PNG"), ("ct.nrrd", "NRRD"), ("ct.npy", "NUMPY")])
def test_text_file_named_like_an_image(tmp_path, name, fmt):
    (tmp_path / name).write_text("this is not an image\n" * 10)
    with pytest.raises(InputError, match=rf"does not look like a {fmt} file \(its content is not recognisable\)"):
        read(tmp_path / name)


def test_text_file_named_dcm(tmp_path):
    (tmp_path / "a.dcm").write_text("hello " * 100)
    with pytest.raises(InputError, match="is named like a DICOM file but its content is not DICOM"):
        read(tmp_path / "a.dcm")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "README.txt").write_text("hello")
    with pytest.raises(UnsupportedInputError, match=r"README.txt is a text file, not an image lungseg reads"):
        read(tmp_path / "README.txt")


def test_unknown_binary_file(tmp_path):
    (tmp_path / "blob.xyz").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(UnsupportedInputError, match=r"blob.xyz is a file of unknown type \(.xyz\)"):
        read(tmp_path / "blob.xyz")


def test_truncated_nifti(tmp_path):
    path = _cut_in_half(_nifti(tmp_path / "ct.nii.gz", np.random.default_rng(0).integers(-1000, 1000, (8, 64, 64)).astype(np.int16)))
    with pytest.raises(InputError, match=r"cannot read .*ct.nii.gz as NIFTI: the file is incomplete .*truncated"):
        read(path)


def test_truncated_uncompressed_nifti(tmp_path):
    path = _cut_in_half(_nifti(tmp_path / "ct.nii", np.zeros((8, 64, 64), np.int16)))
    with pytest.raises(InputError, match=r"the file is incomplete \(\d+ bytes where the header announces 65888\)"):
        read(path)


def test_truncated_nrrd(tmp_path):
    path = _cut_in_half(_nifti(tmp_path / "ct.nrrd", np.zeros((8, 64, 64), np.int16)))
    with pytest.raises(InputError, match=r"cannot read .*ct.nrrd as NRRD"):
        read(path)


def test_truncated_png(tmp_path):
    big = np.random.default_rng(1).integers(0, 255, (128, 128)).astype(np.uint8)
    Image.fromarray(big).save(tmp_path / "a.png")
    with pytest.raises(InputError, match=r"cannot read .*a.png: .*truncated"):
        read(_cut_in_half(tmp_path / "a.png"))


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((4, 64, 64), np.int16))
    with pytest.raises(InputError, match=r"cannot read .*a.npy as NumPy"):
        read(_cut_in_half(tmp_path / "a.npy"))


def test_truncated_dicom(tmp_path):
    path = _cut_in_half(make_slice(tmp_path / "a.dcm", np.zeros((64, 64)), series_uid="1.2"))
    with pytest.raises(InputError, match=r"a.dcm.*(truncated|corrupt)"):
        read(path)


def test_dicom_file_without_pixel_data(tmp_path):
    path = _without_pixels(tmp_path / "a.dcm", "1.3")
    with pytest.raises(InputError, match=r"has no pixel data: it is an object without pixel data, not an image"):
        read(path)
    with pytest.raises(InputError, match=r"no usable image series .*not an image"):
        read(tmp_path)


def test_structured_report_is_not_an_image(tmp_path):
    path = _without_pixels(tmp_path / "a.dcm", "1.4", SR)
    with pytest.raises(InputError, match=r"it is structured report, not an image"):
        read(path)


def test_series_with_mixed_sizes(tmp_path):
    uid = pydicom.uid.generate_uid()
    make_series(tmp_path, [0.0, 2.0], series_uid=uid)
    make_series(tmp_path, [4.0], series_uid=uid, names=["z.dcm"], shape=(SIDE + 2, SIDE))
    with pytest.raises(InputError, match=r"cannot form a volume: images of several sizes"):
        read(tmp_path)


def test_nan_values(tmp_path):
    arr = np.zeros((32, 32), np.float32)
    arr[3, 3] = np.nan
    np.save(tmp_path / "a.npy", arr)
    with pytest.raises(InputError, match=r"holds NaN or infinite values \(replace them"):
        read(tmp_path / "a.npy")


def test_infinite_values_in_nifti(tmp_path):
    arr = np.zeros((3, 32, 32), np.float32)
    arr[1, 2, 3] = np.inf
    with pytest.raises(InputError, match=r"holds NaN or infinite values"):
        read(_nifti(tmp_path / "a.mha", arr))  # (ITK's NIfTI writer drops infinities)


def test_image_of_a_few_pixels(tmp_path):
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "tiny.png")
    with pytest.raises(InputError, match=r"is only 4×5 pixels; at least 16×16 is needed"):
        read(tmp_path / "tiny.png")


def test_non_numeric_array(tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a"] * 20] * 20))
    with pytest.raises(UnsupportedInputError, match=r"has values of type <U1, expected numbers"):
        read(tmp_path / "s.npy")


# -- output paths ---------------------------------------------------------------------------------------------


def test_output_folder_missing(tmp_path):
    with pytest.raises(OutputError, match=r"the output folder .*missing does not exist \(create it first\)"):
        check_output_path(tmp_path / "missing" / "mask.nii.gz")


def test_output_is_the_input(tmp_path):
    inp = _nifti(tmp_path / "ct.nii.gz")
    with pytest.raises(OutputError, match=r"would overwrite the input"):
        check_output_path(tmp_path / "ct.nii.gz", inputs=[inp])


def test_output_inside_input_dicom_folder(tmp_path):
    make_series(tmp_path / "dicom", [0.0, 2.0])
    with pytest.raises(OutputError, match=r"is inside the input folder"):
        check_output_path(tmp_path / "dicom" / "mask.nii.gz", inputs=[tmp_path / "dicom"])


def test_output_unknown_extension_lists_the_supported(tmp_path):
    with pytest.raises(OutputError, match=r"extension '.xyz' is not a supported format \(use one of .nii.gz .nii .nrrd"):
        check_output_path(tmp_path / "mask.xyz")


def test_output_is_a_folder(tmp_path):
    (tmp_path / "out.nrrd").mkdir()
    with pytest.raises(OutputError, match=r"is a folder"):
        check_output_path(tmp_path / "out.nrrd")


def test_report_must_be_json(tmp_path):
    with pytest.raises(OutputError, match=r"cannot write the report to r.txt"):
        check_output_path(tmp_path / "r.txt", kind="report")


# -- the command line ------------------------------------------------------------------------------------------


def _mr_folder(tmp_path: Path) -> Path:
    make_series(tmp_path / "mr", [0.0, 2.0, 4.0], modality="MR")
    return tmp_path / "mr"


def _4d(tmp_path: Path) -> Path:
    four = sitk.JoinSeries([sitk.GetImageFromArray(np.zeros((3, 20, 20), np.int16))] * 2)
    sitk.WriteImage(four, str(tmp_path / "4d.nii.gz"))
    return tmp_path / "4d.nii.gz"


def _colour(tmp_path: Path) -> Path:
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 1] = 200
    Image.fromarray(rgb).save(tmp_path / "c.png")
    return tmp_path / "c.png"


def _mixed(tmp_path: Path) -> Path:
    uid = pydicom.uid.generate_uid()
    make_series(tmp_path / "mixed", [0.0, 2.0], series_uid=uid)
    make_series(tmp_path / "mixed", [4.0], series_uid=uid, names=["z.dcm"], shape=(SIDE + 2, SIDE))
    return tmp_path / "mixed"


def _nan(tmp_path: Path) -> Path:
    np.save(tmp_path / "nan.npy", np.full((32, 32), np.nan, np.float32))
    return tmp_path / "nan.npy"


def _no_pixels(tmp_path: Path) -> Path:
    return _without_pixels(tmp_path / "np.dcm", "1.9")


def _text_nifti(tmp_path: Path) -> Path:
    (tmp_path / "t.nii.gz").write_text("not an image")
    return tmp_path / "t.nii.gz"


def _text_png(tmp_path: Path) -> Path:
    (tmp_path / "t.png").write_text("not an image")
    return tmp_path / "t.png"


def _truncated(tmp_path: Path) -> Path:
    arr = np.random.default_rng(2).integers(-1000, 1000, (8, 64, 64)).astype(np.int16)
    return _cut_in_half(_nifti(tmp_path / "half.nii.gz", arr))


def _empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _no_images_folder(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    return tmp_path / "docs"


def _tiny(tmp_path: Path) -> Path:
    np.save(tmp_path / "tiny.npy", np.zeros((3, 3), np.int16))
    return tmp_path / "tiny.npy"


BAD_INPUTS = {
    "missing": (lambda t: t / "missing.nii.gz", "does not exist"),
    "empty folder": (_empty_folder, "is an empty folder"),
    "no images": (_no_images_folder, "no DICOM images"),
    "text named nii.gz": (_text_nifti, "does not look like a NIFTI file"),
    "text named png": (_text_png, "does not look like a PNG file"),
    "truncated": (_truncated, "may be truncated or corrupt"),
    "no pixel data": (_no_pixels, "has no pixel data"),
    "MR": (_mr_folder, "is an MR image (modality MR), not CT"),
    "4D": (_4d, "is 4D"),
    "colour": (_colour, "is a colour image"),
    "mixed sizes": (_mixed, "images of several sizes"),
    "NaN": (_nan, "NaN or infinite"),
    "few pixels": (_tiny, "is only 3×3 pixels"),
}


def _check_one_line_error(code: int, err: str, fragment: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("lungseg: WARNING")]
    assert len(lines) == 1, err
    assert lines[0].startswith("lungseg: error: ") and fragment in lines[0], err


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_cli_segment_refuses_bad_input(tmp_path, capsys, case):
    make, fragment = BAD_INPUTS[case]
    inp = make(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code = main(["segment", str(inp), str(out_dir / "mask.nii.gz")])
    _, err = capsys.readouterr()
    _check_one_line_error(code, err, fragment)
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("case", ["missing", "text named png", "MR", "colour"])
def test_cli_info_refuses_bad_input(tmp_path, capsys, case):
    make, fragment = BAD_INPUTS[case]
    code = main(["info", str(make(tmp_path))])
    out, err = capsys.readouterr()
    assert out == ""
    _check_one_line_error(code, err, fragment)


def test_cli_info_reads_mr_with_force(tmp_path, capsys):
    folder = _mr_folder(tmp_path)
    assert main(["-q", "info", "--force", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "MR axial, 3 image(s)" in out and "modality MR, not CT; read anyway" in out


@pytest.mark.parametrize("where,fragment", [
    (lambda t, inp: t / "missing" / "mask.nii.gz", "does not exist"),
    (lambda t, inp: inp, "would overwrite the input"),
    (lambda t, inp: t / "mask.xyz", "is not a supported format"),
    (lambda t, inp: t / "mask.jpg", "JPEG is lossy"),
    (lambda t, inp: t / "mask.dcm", "does not write DICOM images"),
])
def test_cli_segment_refuses_bad_output_before_reading(tmp_path, capsys, where, fragment):
    inp = _nifti(tmp_path / "ct.nii.gz")
    before = inp.read_bytes()
    code = main(["segment", str(inp), str(where(tmp_path, inp))])
    _, err = capsys.readouterr()
    _check_one_line_error(code, err, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz"]
    assert inp.read_bytes() == before


def test_cli_segment_refuses_output_inside_dicom_input(tmp_path, capsys):
    make_series(tmp_path / "dicom", [0.0, 2.0, 4.0])
    before = sorted(p.name for p in (tmp_path / "dicom").iterdir())
    code = main(["segment", str(tmp_path / "dicom"), str(tmp_path / "dicom" / "mask.nii.gz")])
    _, err = capsys.readouterr()
    _check_one_line_error(code, err, "is inside the input folder")
    assert sorted(p.name for p in (tmp_path / "dicom").iterdir()) == before


def test_inputs_are_not_modified_by_reading(tmp_path):
    make_series(tmp_path / "d", [0.0, 2.0, 4.0])
    shutil.copytree(tmp_path / "d", tmp_path / "copy")
    read(tmp_path / "d").array[:] = 0  # changing the array must not touch the files
    for f in (tmp_path / "d").iterdir():
        assert f.read_bytes() == (tmp_path / "copy" / f.name).read_bytes()


def test_check_writable_refuses_before_anything_is_written(tmp_path):
    from lungseg.io import check_writable
    from lungseg.volume import Volume

    ct = Volume(np.full((20, 20), -1024, np.int16), (1.0, 1.0))
    with pytest.raises(OutputError, match=r"a PNG file stores uint8 or uint16 pixels, but this image is int16"):
        check_writable(ct, tmp_path / "masked.png", kind="masked")
    volume = Volume(np.zeros((3, 20, 20), np.int16), (1.0, 1.0, 1.0))
    with pytest.raises(OutputError, match=r"a BMP file holds one 2D image but this is a volume of 3 slices"):
        check_writable(volume, tmp_path / "mask.bmp", kind="mask")
    assert check_writable(ct, tmp_path / "mask.png") == tmp_path / "mask.png"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.data
def test_cli_segment_writes_nothing_when_one_output_is_impossible(tmp_path, capsys):
    from conftest import shared

    source = shared("ct-medical-images", "ID_0000_AGE_0060_CONTRAST_1_CT.dcm")
    code = main(["-q", "segment", str(source), str(tmp_path / "mask.png"), "--masked", str(tmp_path / "masked.png")])
    _, err = capsys.readouterr()
    _check_one_line_error(code, err, "this image is int16")
    assert list(tmp_path.iterdir()) == []


# -- the remaining raises, one test each ----------------------------------------------------------------------


def test_unreadable_file(tmp_path, monkeypatch):
    from lungseg.io import formats

    path = _png(tmp_path / "a.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(formats, "open", denied, raising=False)
    with pytest.raises(InputError, match=r"cannot open .*a.png: Permission denied"):
        read(path)


def test_check_array_refuses_4d():
    from lungseg.io.validate import check_array

    with pytest.raises(UnsupportedInputError, match=r"the array is 4D with shape \(2, 2, 20, 20\).*one phase at a time"):
        check_array(np.zeros((2, 2, 20, 20)), source="the array")


def test_negative_spacing_is_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((32, 32), np.int16))
    with pytest.raises(InputError, match=r"spacing must be positive numbers of mm, got \(-0.5, -0.5\)"):
        read(tmp_path / "a.npy", spacing=(-0.5,))


def test_not_an_image_series_cannot_be_chosen_by_uid(tmp_path):
    make_series(tmp_path / "ct", [0.0, 2.0, 4.0])
    (tmp_path / "sr").mkdir()
    _without_pixels(tmp_path / "sr" / "sr.dcm", "1.2.88", SR)
    with pytest.raises(InputError, match=r"series 1.2.88 in .* is not an image: structured report"):
        read(tmp_path, series_uid="1.2.88")


def test_mixed_sizes_chosen_by_uid(tmp_path):
    uid = pydicom.uid.generate_uid()
    make_series(tmp_path, [0.0, 2.0], series_uid=uid)
    make_series(tmp_path, [4.0], series_uid=uid, names=["z.dcm"], shape=(SIDE + 2, SIDE))
    with pytest.raises(InputError, match=r"the images in .* have several sizes \(24×24, 26×24\) and cannot form one volume"):
        read(tmp_path, series_uid=uid)


def test_folder_of_unreadable_dicom(tmp_path, monkeypatch):
    from lungseg.io import dicom

    make_slice(tmp_path / "a.dcm", np.zeros((SIDE, SIDE)), series_uid="1.2.6")

    def corrupt(path, force=False):
        raise InputError(f"{path} is a corrupt or truncated DICOM file")

    monkeypatch.setattr(dicom, "read_header", corrupt)
    dicom._scan.cache_clear()
    with pytest.raises(InputError, match=r"no readable DICOM images in .*: 1 DICOM file\(s\) could not be read "
                                         r"\(first: .*a.dcm is a corrupt or truncated DICOM file\)"):
        read(tmp_path)
    dicom._scan.cache_clear()


def test_folder_of_a_cut_dicom_header(tmp_path):
    path = make_slice(tmp_path / "a.dcm", np.zeros((SIDE, SIDE)), series_uid="1.2.6")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match=r"no usable image series .*not an image: an object without pixel data"):
        read(tmp_path)


def test_find_dicom_series_of_a_missing_folder(tmp_path):
    from lungseg.io import find_dicom_series

    with pytest.raises(InputError, match=r"gone does not exist"):
        find_dicom_series(tmp_path / "gone")


def test_undecodable_compression(tmp_path, monkeypatch):
    from pydicom.uid import RLELossless

    path = make_slice(tmp_path / "a.dcm", np.zeros((SIDE, SIDE)), series_uid="1.2.7")
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(path)

    def no_decoder(uid):
        raise NotImplementedError(uid)

    monkeypatch.setattr("pydicom.pixels.get_decoder", no_decoder)
    with pytest.raises(UnsupportedInputError, match=r"is compressed with RLE Lossless, which lungseg cannot decode"):
        read(path)


def test_multiframe_without_positions(tmp_path):
    path = make_slice(tmp_path / "mf.dcm", np.zeros((SIDE, SIDE)), series_uid="1.2.8")
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(path)
    with pytest.raises(UnsupportedInputError, match=r"is a multi-frame DICOM without per-frame positions"):
        read(path)


def test_multiframe_mixed_with_single_frames(tmp_path):
    uid = pydicom.uid.generate_uid()
    make_series(tmp_path, [0.0, 2.0], series_uid=uid)
    ds = pydicom.dcmread(tmp_path / "im000.dcm")
    ds.NumberOfFrames = 2
    ds.PixelData = ds.PixelData * 2
    ds.save_as(tmp_path / "im000.dcm")
    with pytest.raises(UnsupportedInputError, match=r"mixes multi-frame files with other images"):
        read(tmp_path)


def test_inspect_of_a_corrupt_nrrd(tmp_path):
    from lungseg.io import inspect

    (tmp_path / "a.nrrd").write_text("NRRD0004\ntype: nonsense\n\n")
    with pytest.raises(InputError, match=r"cannot read .*a.nrrd as NRRD"):
        inspect(tmp_path / "a.nrrd")


def test_truncated_npz(tmp_path):
    np.savez(tmp_path / "a.npz", image=np.zeros((64, 64), np.int16))
    with pytest.raises(InputError, match=r"cannot read .*a.npz as NumPy"):
        read(_cut_in_half(tmp_path / "a.npz"))


def test_5d_array(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 2, 2, 20, 20), np.int16))
    with pytest.raises(UnsupportedInputError, match=r"is 5D with shape \(2, 2, 2, 20, 20\)"):
        read(tmp_path / "a.npy")


def test_png_with_a_broken_header(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(InputError, match=r"a.png is not a readable image \(it may be corrupt or misnamed\)"):
        read(tmp_path / "a.png")


def test_cmyk_picture_is_refused(tmp_path):
    Image.new("CMYK", (32, 32)).save(tmp_path / "a.jpg")
    with pytest.raises(UnsupportedInputError, match=r"has pixel mode CMYK, which lungseg does not read"):
        read(tmp_path / "a.jpg")


def test_tiff_pages_of_different_sizes(tmp_path):
    first, second = Image.new("L", (32, 32)), Image.new("L", (40, 32))
    first.save(tmp_path / "a.tif", save_all=True, append_images=[second])
    with pytest.raises(InputError, match=r"the pages of .*a.tif differ in size or type"):
        read(tmp_path / "a.tif")
