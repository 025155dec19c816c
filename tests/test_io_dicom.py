"""DICOM reading: series found, sorted along the normal, checked, chosen by the rule; single files, compressed ones.

Most tests build small DICOM files whose answer is known by construction (``make_slice`` /
``make_series``); a few check the real cases in ../shared/data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import lungseg
from lungseg.errors import InputError, MissingDependencyError, UnsupportedInputError
from lungseg.io import dicom, find_dicom_series, inspect, read

from conftest import shared

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SIDE = 24


def make_slice(path: Path, hu: np.ndarray, *, position=(0.0, 0.0, 0.0), orientation=AXIAL, spacing=(0.7, 0.8),
               series_uid: str, study_uid: str = "1.2.3.4", instance: int = 1, modality: str = "CT",
               slope: float = 1.0, intercept: float = -1024.0, image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
               sop_uid: str | None = None, thickness: float | None = None) -> Path:
    """Write a minimal valid CT slice holding ``hu`` (stored as unsigned values with the given rescale)."""
    stored = np.rint((np.asarray(hu, float) - intercept) / slope).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.Modality = modality
    ds.ImageType = list(image_type)
    ds.SeriesDescription = f"test {series_uid[-4:]}"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.PixelSpacing = [float(v) for v in spacing]
    if thickness is not None:
        ds.SliceThickness = thickness
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.PixelData = stored.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_series(folder: Path, z_positions, *, series_uid: str | None = None, names=None, instances=None,
                shape=(SIDE, SIDE), **kwargs) -> tuple[str, list[np.ndarray]]:
    """A series whose slice at position z is filled with the value ``round(z * 10)`` (so order is visible)."""
    series_uid = series_uid or generate_uid()
    orientation = kwargs.get("orientation", AXIAL)
    normal = np.cross(orientation[:3], orientation[3:])
    images = []
    for k, z in enumerate(z_positions):
        hu = np.full(shape, round(z * 10), np.int16)
        hu[0, 0] = -1024  # one air pixel, so values are not constant
        images.append(hu)
        name = names[k] if names else f"im{k:03d}.dcm"
        inst = instances[k] if instances else k + 1
        make_slice(folder / name, hu, position=tuple(normal * z), series_uid=series_uid, instance=inst, **kwargs)
    return series_uid, images


# -- sorting and geometry -------------------------------------------------------------------------------


def test_slices_sorted_along_the_normal_not_by_name_or_instance(tmp_path):
    z = [10.0, 12.5, 15.0, 17.5, 20.0]
    # file names and instance numbers both disagree with the positions
    uid, _ = make_series(tmp_path, z, names=["c.dcm", "a.dcm", "e.dcm", "b.dcm", "d.dcm"], instances=[3, 5, 1, 4, 2])
    ct = read(tmp_path)
    assert ct.shape == (5, SIDE, SIDE)
    assert ct.array[:, 1, 1].tolist() == [100, 125, 150, 175, 200]
    assert ct.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert ct.origin == pytest.approx((0.0, 0.0, 10.0))
    files = ct.metadata["dicom"]["files"]
    assert [Path(f).name for f in files] == ["c.dcm", "a.dcm", "e.dcm", "b.dcm", "d.dcm"]
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    assert ct.metadata["dicom"]["sop_instance_uids"] == uids
    assert ct.metadata["dicom"]["series_uid"] == uid
    assert ct.metadata["format"] == "dicom-series" and ct.metadata["spacing_known"] is True


@pytest.mark.parametrize("orientation", [AXIAL, CORONAL, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0), (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)])
def test_index_to_world_matches_every_slice_position(tmp_path, orientation):
    make_series(tmp_path, [-3.0, 0.0, 3.0, 6.0], orientation=orientation)
    ct = read(tmp_path)
    for k, f in enumerate(ct.metadata["dicom"]["files"]):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert ct.affine @ np.array([k, 0, 0, 1.0]) == pytest.approx(list(map(float, ds.ImagePositionPatient)) + [1.0])
        # one step along a row moves by the column spacing along the first orientation vector
        step = ct.affine @ np.array([k, 0, 1, 1.0]) - ct.affine @ np.array([k, 0, 0, 1.0])
        assert step[:3] == pytest.approx(np.array(orientation[:3]) * 0.8)
    assert np.linalg.det(ct.direction) == pytest.approx(1.0)


def test_rescale_slope_and_intercept_are_applied(tmp_path):
    make_series(tmp_path, [0.0, 1.0, 2.0], slope=2.0, intercept=-2048.0)
    ct = read(tmp_path)
    assert ct.array.dtype == np.int16
    assert ct.array[:, 1, 1].tolist() == [0, 10, 20]
    assert ct.array[:, 0, 0].tolist() == [-1024] * 3
    assert ct.metadata["dicom"]["rescale_slope"] == 2.0 and ct.metadata["dicom"]["rescale_intercept"] == -2048.0


def test_fractional_rescale_gives_float(tmp_path):
    hu = np.zeros((SIDE, SIDE))
    hu[2:5, 2:5] = 0.5
    make_slice(tmp_path / "a.dcm", hu, series_uid="1.2.9", slope=0.5, intercept=0.0)
    ct = read(tmp_path / "a.dcm")
    assert ct.array.dtype == np.float32
    assert ct.array[3, 3] == 0.5


def test_fast_pixel_path_equals_pydicom_path(tmp_path, monkeypatch):
    make_series(tmp_path, [0.0, 2.0, 4.0, 6.0], slope=1.0, intercept=-1024.0)
    fast = read(tmp_path)
    assert fast.metadata["dicom"]["pixel_reader"] == "simpleitk"
    dicom._scan.cache_clear()
    monkeypatch.setattr(dicom, "_pixels_sitk", lambda files: None)
    slow = read(tmp_path)
    assert slow.metadata["dicom"]["pixel_reader"] == "pydicom"
    np.testing.assert_array_equal(fast.array, slow.array)
    assert fast.array.dtype == slow.array.dtype
    assert fast.same_grid(slow)


def test_duplicate_slice_is_dropped_with_a_warning(tmp_path, caplog):
    caplog.set_level("WARNING", logger="lungseg")  # (an earlier CLI test may have set it to ERROR)
    make_series(tmp_path, [0.0, 2.0, 4.0, 6.0])
    shutil.copy(tmp_path / "im002.dcm", tmp_path / "copy.dcm")
    ct = read(tmp_path)
    assert ct.shape[0] == 4
    assert any("duplicate" in w for w in ct.metadata["warnings"])
    assert "duplicate" in caplog.text


def test_missing_slice_is_reported(tmp_path):
    make_series(tmp_path, [0.0, 2.0, 4.0, 8.0, 10.0])
    ct = read(tmp_path)
    assert ct.spacing[0] == pytest.approx(2.0)
    assert any("1 slice(s) missing" in w for w in ct.metadata["warnings"])


def test_uneven_spacing_is_reported(tmp_path):
    make_series(tmp_path, [0.0, 2.0, 4.3, 6.0, 8.2])
    ct = read(tmp_path)
    assert any("uneven slice spacing" in w for w in ct.metadata["warnings"])


def test_even_spacing_has_no_warning(tmp_path):
    make_series(tmp_path, [0.0, 1.25, 2.5, 3.75])
    assert read(tmp_path).metadata["warnings"] == []


def test_every_position_twice_is_refused_as_4d(tmp_path):
    uid = generate_uid()
    make_series(tmp_path / "a", [0.0, 2.0, 4.0], series_uid=uid)
    make_series(tmp_path / "b", [0.0, 2.0, 4.0], series_uid=uid)
    with pytest.raises(UnsupportedInputError, match="holds 2 images: the series is 4D"):
        read(tmp_path)


def test_mixed_image_sizes_are_refused(tmp_path):
    uid = generate_uid()
    make_series(tmp_path, [0.0, 2.0], series_uid=uid)
    make_series(tmp_path, [4.0, 6.0], series_uid=uid, names=["x.dcm", "y.dcm"], shape=(SIDE, SIDE + 8))
    with pytest.raises(InputError, match=r"cannot form a volume: images of several sizes \(24×24, 24×32\)"):
        read(tmp_path)


def test_mixed_orientations_are_refused(tmp_path):
    uid = generate_uid()
    make_series(tmp_path, [0.0, 2.0], series_uid=uid)
    make_series(tmp_path, [4.0, 6.0], series_uid=uid, names=["x.dcm", "y.dcm"], orientation=CORONAL)
    with pytest.raises(InputError, match="no usable image series .*localizer: slices in several orientations"):
        read(tmp_path)
    with pytest.raises(InputError, match="several orientations and cannot form one volume"):
        read(tmp_path, series_uid=uid)


def test_missing_positions_in_part_of_a_series_are_refused(tmp_path):
    make_series(tmp_path, [0.0, 2.0, 4.0])
    ds = pydicom.dcmread(tmp_path / "im001.dcm")
    del ds.ImagePositionPatient
    ds.save_as(tmp_path / "im001.dcm")
    with pytest.raises(InputError, match="1 of 3 images .* have no ImagePositionPatient"):
        read(tmp_path)


# -- choosing a series ------------------------------------------------------------------------------------


def _study_with_localizers(root: Path) -> dict[str, str]:
    volume, _ = make_series(root / "volume", [0.0, 2.0, 4.0, 6.0, 8.0])
    scout, _ = make_series(root / "scout", [0.0], image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    tiny, _ = make_series(root / "tiny", [0.0, 50.0])
    coronal, _ = make_series(root / "coronal", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], orientation=CORONAL)
    return {"volume": volume, "scout": scout, "tiny": tiny, "coronal": coronal}


def test_largest_axial_ct_series_is_chosen_and_others_are_explained(tmp_path, caplog):
    uids = _study_with_localizers(tmp_path)
    caplog.set_level("INFO", logger="lungseg")
    ct = read(tmp_path)
    assert ct.metadata["dicom"]["series_uid"] == uids["volume"]
    assert "chose" in caplog.text and uids["volume"] in caplog.text
    facts = inspect(tmp_path)
    assert facts["chosen_series"] == uids["volume"]
    skipped = {s["uid"]: s["skipped"] for s in facts["series"]}
    assert skipped[uids["volume"]] is None and skipped[uids["coronal"]] is None
    assert "LOCALIZER" in skipped[uids["scout"]]
    assert skipped[uids["tiny"]].startswith("localizer: only 2 image(s)")
    orientation = {s["uid"]: s["orientation"] for s in facts["series"]}
    assert orientation[uids["coronal"]] == "coronal" and orientation[uids["volume"]] == "axial"


def test_series_uid_overrides_the_rule(tmp_path):
    uids = _study_with_localizers(tmp_path)
    ct = read(tmp_path, series_uid=uids["coronal"])
    assert ct.shape == (7, SIDE, SIDE)
    assert ct.metadata["dicom"]["series_uid"] == uids["coronal"]
    assert inspect(tmp_path, series_uid=uids["coronal"])["chosen_series"] == uids["coronal"]


def test_unknown_series_uid_lists_the_available_ones(tmp_path):
    uids = _study_with_localizers(tmp_path)
    with pytest.raises(InputError, match="no series with UID 9.9.9") as err:
        read(tmp_path, series_uid="9.9.9")
    assert uids["volume"] in str(err.value) and uids["coronal"] in str(err.value)


def test_ct_is_preferred_to_pet_of_the_same_study(tmp_path):
    ct_uid, _ = make_series(tmp_path / "ct", [0.0, 2.0, 4.0, 6.0])
    make_series(tmp_path / "pt", [float(z) for z in range(10)], modality="PT")
    assert read(tmp_path).metadata["dicom"]["series_uid"] == ct_uid
    pt = [s for s in find_dicom_series(tmp_path, include_skipped=True) if s.modality == "PT"]
    assert pt[0].skip_reason.startswith("not CT (PT)")


def test_find_dicom_series_recursive_and_each_is_readable(tmp_path):
    a, _ = make_series(tmp_path / "p1" / "s1", [0.0, 2.0, 4.0, 6.0], study_uid="1.1")
    b, _ = make_series(tmp_path / "p2" / "deeper" / "s2", [0.0, 3.0, 6.0, 9.0, 12.0], study_uid="2.2")
    (tmp_path / "notes.txt").write_text("not dicom")
    found = find_dicom_series(tmp_path)
    assert {s.uid for s in found} == {a, b}
    for s in found:
        assert s.folder.name in ("s1", "s2")
        assert s.n_images == len(s.files) and s.modality == "CT"
        zs = [float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]) for f in s.files]
        assert zs == sorted(zs)
        assert read(tmp_path, series_uid=s.uid).shape[0] == s.n_images


# -- modality ---------------------------------------------------------------------------------------------


def test_mr_is_refused_unless_forced(tmp_path):
    make_series(tmp_path, [0.0, 2.0, 4.0], modality="MR")
    with pytest.raises(UnsupportedInputError, match=r"is an MR image \(modality MR\), not CT"):
        read(tmp_path)
    ct = read(tmp_path, force=True)
    assert ct.shape == (3, SIDE, SIDE)
    assert any("modality MR" in w for w in ct.metadata["warnings"])


# -- single files ------------------------------------------------------------------------------------------


def test_single_coronal_slice_keeps_its_orientation(tmp_path):
    hu = np.arange(SIDE * SIDE, dtype=np.int16).reshape(SIDE, SIDE)
    path = make_slice(tmp_path / "cor.dcm", hu, position=(-100.0, 20.0, 50.0), orientation=CORONAL, series_uid="1.5")
    ct = read(path)
    assert ct.is_2d and ct.shape == (SIDE, SIDE)
    np.testing.assert_array_equal(ct.array, hu)
    assert ct.direction[:, 0] == pytest.approx([1, 0, 0])
    assert ct.direction[:, 1] == pytest.approx([0, 0, -1])
    assert ct.direction[:, 2] == pytest.approx([0, 1, 0])
    assert ct.origin == pytest.approx((-100.0, 20.0, 50.0))
    assert ct.metadata["format"] == "dicom-file"
    assert inspect(path)["orientation"] == "coronal"


def test_file_without_extension_is_recognised(tmp_path):
    make_slice(tmp_path / "IM0001", np.zeros((SIDE, SIDE)), series_uid="1.6")
    assert read(tmp_path / "IM0001").metadata["format"] == "dicom-file"


def test_pixel_padding_value_is_given_in_array_units(tmp_path):
    path = make_slice(tmp_path / "p.dcm", np.zeros((SIDE, SIDE)), series_uid="1.7", intercept=-1024.0)
    ds = pydicom.dcmread(path)
    ds.add_new(0x00280120, "US", 0)  # PixelPaddingValue
    ds.save_as(path)
    meta = read(path).metadata["dicom"]
    assert meta["pixel_padding_value"] == -1024.0 and meta["pixel_padding_value_stored"] == 0


def _real_slice() -> Path:
    return shared("ct-medical-images", "ID_0000_AGE_0060_CONTRAST_1_CT.dcm")


@pytest.mark.data
@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless", "JPEGLSLossless"])
def test_compressed_real_slice_reads_the_same_pixels(tmp_path, syntax):
    import pydicom.uid
    from pydicom.pixels import get_decoder, get_encoder

    uid = getattr(pydicom.uid, syntax)
    if not (get_encoder(uid).is_available and get_decoder(uid).is_available):
        pytest.skip(f"no {syntax} encoder/decoder installed (pip install 'lungseg[dicom,seg]')")
    source = _real_slice()
    ds = pydicom.dcmread(source)
    ds.compress(uid)
    ds.save_as(tmp_path / "c.dcm")
    assert pydicom.dcmread(tmp_path / "c.dcm").file_meta.TransferSyntaxUID == getattr(pydicom.uid, syntax)
    original, compressed = read(source), read(tmp_path / "c.dcm")
    np.testing.assert_array_equal(original.array, compressed.array)
    assert original.same_grid(compressed)


@pytest.mark.data
def test_jpeg_lossless_real_slice_reads_the_same_pixels(tmp_path):
    import SimpleITK as sitk

    source = _real_slice()
    image = sitk.ReadImage(str(source))
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(tmp_path / "jll.dcm"))
    writer.SetImageIO("GDCMImageIO")
    writer.SetUseCompression(True)
    writer.SetCompressor("JPEG")  # GDCM's JPEG is lossless (process 14)
    writer.KeepOriginalImageUIDOn()
    writer.Execute(image)
    syntax = pydicom.dcmread(tmp_path / "jll.dcm", stop_before_pixels=True).file_meta.TransferSyntaxUID
    assert syntax == pydicom.uid.JPEGLosslessSV1
    np.testing.assert_array_equal(read(source).array, read(tmp_path / "jll.dcm").array)


def test_missing_decoder_asks_for_the_extra(tmp_path, monkeypatch):
    from pydicom.uid import RLELossless

    path = make_slice(tmp_path / "a.dcm", np.zeros((SIDE, SIDE)), series_uid="1.8")
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    ds.save_as(path)

    class _NoPlugins:
        is_available = False

    monkeypatch.setattr("pydicom.pixels.get_decoder", lambda uid: _NoPlugins())
    with pytest.raises(MissingDependencyError, match="RLE Lossless and no installed decoder") as err:
        read(path)
    assert 'pip install "lungseg[dicom]"' in str(err.value)


# -- real data -------------------------------------------------------------------------------------------


@pytest.mark.data
def test_cip_dicom_series_equals_its_nrrd():
    series = read(shared("cip", "ct-64Dicom"))
    nrrd = read(shared("cip", "ct-64.nrrd"))
    np.testing.assert_array_equal(series.array, nrrd.array)
    assert series.same_grid(nrrd, atol_mm=1e-3), (series.spacing, nrrd.spacing, series.origin, nrrd.origin)


@pytest.mark.data
def test_popi_series_reads_as_one_volume():
    ct = read(shared("popi", "series"))
    assert ct.shape == (141, 512, 512)
    assert ct.spacing == pytest.approx((2.0, 0.9765625, 0.9765625))
    assert ct.metadata["warnings"] == []
    assert len(ct.metadata["dicom"]["files"]) == 141


@pytest.mark.data
@pytest.mark.parametrize("view,normal_axis", [("axial", 2), ("coronal", 1), ("sagittal", 0)])
def test_covid_slices_keep_their_view(view, normal_axis):
    folder = shared("covid-ny-sbu", "A002304", view)
    for path in sorted(folder.iterdir()):
        ct = read(path)
        assert ct.is_2d and ct.shape == (512, 512)
        assert np.argmax(np.abs(ct.direction[:, 2])) == normal_axis
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ct.origin == pytest.approx([float(v) for v in ds.ImagePositionPatient])


@pytest.mark.data
def test_jpeg2000_series_of_totalseg_reads():
    ct = read(shared("totalseg", "example_ct_dicom"))
    assert ct.shape == (20, 512, 512)
    assert ct.metadata["dicom"]["pixel_reader"] == "pydicom"
    assert ct.array.min() < -900 and ct.array.max() > 500  # HU: air and bone


def test_lungseg_read_is_the_io_read(tmp_path):
    make_series(tmp_path, [0.0, 2.0])
    assert lungseg.read(tmp_path).shape == (2, SIDE, SIDE)


def _enhanced_ct(path: Path, frames_z, *, shuffle=(2, 0, 1)) -> np.ndarray:
    """A multi-frame (enhanced) CT file whose frames are stored out of order; returns the HU in z order."""
    ds = pydicom.dcmread(make_slice(path, np.zeros((SIDE, SIDE)), series_uid="1.2.77"))
    hu = np.stack([np.full((SIDE, SIDE), int(z * 10), np.int16) for z in frames_z])
    stored = (hu[list(shuffle)] + 1024).astype(np.uint16)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"
    ds.NumberOfFrames = len(frames_z)
    for name in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        delattr(ds, name)
    shared_group = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = list(AXIAL)
    measures.PixelSpacing = [0.6, 0.6]
    shared_group.PlaneOrientationSequence = [orientation]
    shared_group.PixelMeasuresSequence = [measures]
    ds.SharedFunctionalGroupsSequence = [shared_group]
    per_frame = []
    for k in shuffle:
        item, position = Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, float(frames_z[k])]
        item.PlanePositionSequence = [position]
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = per_frame
    ds.PixelData = stored.tobytes()
    ds.save_as(path)
    return hu


def test_enhanced_multiframe_ct_is_a_sorted_volume(tmp_path):
    hu = _enhanced_ct(tmp_path / "mf.dcm", [0.0, 1.5, 3.0])
    ct = read(tmp_path / "mf.dcm")
    assert ct.shape == (3, SIDE, SIDE)
    np.testing.assert_array_equal(ct.array, hu)
    assert ct.spacing == pytest.approx((1.5, 0.6, 0.6))
    assert ct.metadata["dicom"]["frames"] == [1, 2, 0]  # the stored frame of each array slice
    assert read(tmp_path).shape == (3, SIDE, SIDE)  # the same file found in its folder


def test_series_without_positions_falls_back_to_instance_numbers(tmp_path):
    make_series(tmp_path, [0.0, 2.0, 4.0], instances=[3, 1, 2], thickness=2.0)
    for f in tmp_path.iterdir():
        ds = pydicom.dcmread(f)
        del ds.ImagePositionPatient
        ds.save_as(f)
    ct = read(tmp_path)
    assert ct.array[:, 1, 1].tolist() == [20, 40, 0]  # instance order 1, 2, 3
    assert ct.spacing[0] == 2.0
    assert any("ordered by InstanceNumber" in w for w in ct.metadata["warnings"])


def test_tilted_stack_is_reported(tmp_path):
    uid = generate_uid()
    for k in range(4):
        make_slice(tmp_path / f"{k}.dcm", np.zeros((SIDE, SIDE)), position=(0.0, 3.0 * k, 2.0 * k), series_uid=uid)
    ct = read(tmp_path)
    assert ct.spacing[0] == pytest.approx(2.0)
    assert any("gantry tilt" in w for w in ct.metadata["warnings"])


def _pydicom_test_file(name: str) -> Path:
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / name
    if not path.exists():
        pytest.skip(f"pydicom test file {name} not installed")
    return path


@pytest.mark.parametrize("modality,kind", [("MR", "an MR image"), ("PT", "a PET image"), ("DX", "an X-ray radiograph")])
def test_non_ct_single_file_is_refused_unless_forced(tmp_path, modality, kind):
    path = make_slice(tmp_path / "a.dcm", np.zeros((SIDE, SIDE)), series_uid="1.2.5", modality=modality)
    with pytest.raises(UnsupportedInputError, match=rf"is {kind} \(modality {modality}\), not CT \(.*--force"):
        read(path)
    assert read(path, force=True).shape == (SIDE, SIDE)


@pytest.mark.parametrize("variant", ["MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm",
                                     "MR_small_jp2klossless.dcm"])
def test_transfer_syntaxes_of_one_image_read_alike(variant):
    reference = read(_pydicom_test_file("MR_small.dcm"), force=True)
    other = read(_pydicom_test_file(variant), force=True)
    np.testing.assert_array_equal(reference.array, other.array)
    assert reference.same_grid(other)


def test_real_colour_dicom_is_refused():
    with pytest.raises(UnsupportedInputError, match="is a colour image"):
        read(_pydicom_test_file("SC_rgb_gdcm_KY.dcm"), force=True)


def test_a_rescale_slope_of_zero_is_taken_as_one_with_a_warning(tmp_path, caplog):
    from lungseg.io.dicom import _rescale_slope

    ds = pydicom.Dataset()
    ds.RescaleSlope = "0"
    with caplog.at_level("WARNING", logger="lungseg.io.dicom"):
        assert _rescale_slope(ds, "x.dcm") == 1.0
    assert "RescaleSlope is 0" in caplog.text
    ds.RescaleSlope = "2.5"
    assert _rescale_slope(ds, "x.dcm") == 2.5
    assert _rescale_slope(pydicom.Dataset(), "x.dcm") == 1.0
