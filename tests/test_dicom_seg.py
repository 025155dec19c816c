"""DICOM SEG output (issue 6): the SEG read back with highdicom and pydicom must map exactly onto the labels.

Synthetic series are written here with pydicom, so every answer is known by construction; the real
series in ../shared/data are checked for SEG <-> mask consistency only (not for anatomy).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

import lungseg
from lungseg.api import SegmentationResult
from lungseg.errors import MissingDependencyError, OutputError
from lungseg.io.dicom_seg import IDENTITY_ATTRIBUTES, KEEP_METADATA_ATTRIBUTES, write_seg
from lungseg.settings import Settings
from lungseg.volume import Volume

from conftest import shared

hd = pytest.importorskip("highdicom")

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"

# Top-level attributes a lungseg SEG may hold: the SEG's own (written by highdicom for the SEG IOD),
# the identity copied from the source, and the documented extras of keep_metadata.
SEG_OWN = {
    "SpecificCharacterSet", "ImageType", "InstanceCreationDate", "InstanceCreationTime", "SOPClassUID",
    "SOPInstanceUID", "ContentDate", "ContentTime", "Modality", "Manufacturer", "SeriesDescription",
    "ManufacturerModelName", "ReferencedSeriesSequence", "SourceImageSequence", "DeviceSerialNumber",
    "SoftwareVersions", "ContributingEquipmentSequence", "SeriesInstanceUID", "SeriesNumber",
    "InstanceNumber", "FrameOfReferenceUID", "PositionReferenceIndicator", "DimensionOrganizationSequence",
    "DimensionIndexSequence", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames", "Rows",
    "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "LossyImageCompression",
    "SegmentationType", "SegmentSequence", "SegmentsOverlap", "ContentLabel", "ContentDescription",
    "PresentationLUTShape", "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "PixelData",
}
ALLOWED = SEG_OWN | set(IDENTITY_ATTRIBUTES)
ALLOWED_KEEP = ALLOWED | {"PatientAge", "PatientSize", "PatientWeight", "StudyDescription", "BodyPartExamined"}

# Values put into the synthetic source header that must never reach the SEG unless asked.
PRIVATE_BITS = {
    "InstitutionName": "St Elsewhere Hospital",
    "StationName": "CTSTATION7",
    "Manufacturer": "ACME Scanners",
    "OperatorsName": "Operator^Olga",
    "ProtocolName": "CHEST LOWDOSE SECRET",
    "PatientComments": "claustrophobic",
    "StudyDescription": "CT THORAX STUDYDESC",
    "BodyPartExamined": "CHEST",
    "PatientAge": "061Y",
}
# Of those, what keep_metadata=True hands over (InstitutionName etc. as contributing equipment).
KEPT = {"InstitutionName", "StationName", "Manufacturer", "StudyDescription", "BodyPartExamined", "PatientAge"}


# -- building inputs ---------------------------------------------------------------------------------

def write_series(folder: Path, n_slices: int = 5, rows: int = 24, cols: int = 20, *,
                 slice_mm: float = 2.5, pixel_mm: tuple[float, float] = (0.8, 0.7)) -> list[Path]:
    """A small axial CT series; files are named in reverse of their position, so order must come from geometry."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    rng = np.random.default_rng(0)
    paths = []
    for k in range(n_slices):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Doe^Jane", "PID-42", "19600102", "F"
        ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20200304", "101112", "S1", "ACC9"
        ds.ReferringPhysicianName = "Ref^Rita"
        for keyword, value in PRIVATE_BITS.items():
            setattr(ds, keyword, value)
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 3, k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-10.0, -20.0, 100.0 + k * slice_mm]
        ds.PixelSpacing = list(pixel_mm)
        ds.SliceThickness = slice_mm
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = rng.integers(-1000, 100, (rows, cols)).astype(np.int16).tobytes()
        path = folder / f"img{n_slices - k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def volume_from_files(files, *, reverse: bool = False) -> Volume:
    """A Volume on a DICOM series as the reader contract describes it (files in array slice order).

    Built here from pydicom so the tests do not depend on lungseg's reader. ``reverse`` stacks the
    slices the other way round (slice axis pointing down): the same world, another array order.
    """
    dss = [pydicom.dcmread(f) for f in files]
    iop = np.asarray(dss[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    order = np.argsort([np.asarray(d.ImagePositionPatient, float) @ normal for d in dss])
    if reverse:
        order, normal = order[::-1], -normal
    dss, files = [dss[i] for i in order], [str(files[i]) for i in order]
    arr = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in dss]).astype(np.int16)
    first = np.asarray(dss[0].ImagePositionPatient, float)
    step = (np.asarray(dss[-1].ImagePositionPatient, float) - first) @ normal / max(len(dss) - 1, 1)
    spacing = (step if len(dss) > 1 else float(dss[0].get("SliceThickness", 1.0)),) + tuple(map(float, dss[0].PixelSpacing))
    meta = {"format": "dicom", "path": str(Path(files[0]).parent), "dicom": {
        "files": files, "sop_instance_uids": [d.SOPInstanceUID for d in dss],
        "series_uid": dss[0].SeriesInstanceUID, "study_uid": dss[0].StudyInstanceUID, "modality": dss[0].Modality}}
    return Volume(arr, spacing, tuple(first), np.column_stack([iop[:3], iop[3:], normal]), meta)


def write_multiframe(folder: Path, n_slices: int = 5) -> Path:
    """An enhanced (legacy-converted) CT file whose frames are not in slice order."""
    dss = [pydicom.dcmread(f) for f in write_series(folder / "series", n_slices)]
    dss = dss[2:] + dss[:2]
    mf = hd.legacy.LegacyConvertedEnhancedCTImage(dss, series_instance_uid=generate_uid(), series_number=5,
                                                  sop_instance_uid=generate_uid(), instance_number=1)
    path = folder / "enhanced.dcm"
    mf.save_as(path)
    return path


def volume_from_multiframe(path: Path) -> tuple[Volume, np.ndarray]:
    """A Volume on a multi-frame file, slices sorted along the normal; also the source frame index per slice."""
    ds = pydicom.dcmread(path)
    iop = np.asarray(ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    positions = np.array([item.PlanePositionSequence[0].ImagePositionPatient for item in ds.PerFrameFunctionalGroupsSequence], float)
    order = np.argsort(positions @ normal)
    pixel_mm = tuple(map(float, ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].PixelSpacing))
    step = float((positions[order[1]] - positions[order[0]]) @ normal)
    meta = {"format": "dicom", "dicom": {"files": [str(path)], "sop_instance_uids": [ds.SOPInstanceUID],
                                         "series_uid": ds.SeriesInstanceUID}}
    vol = Volume(ds.pixel_array[order], (step,) + pixel_mm, tuple(positions[order[0]]),
                 np.column_stack([iop[:3], iop[3:], normal]), meta)
    return vol, order


def result_with(volume: Volume, labels: np.ndarray) -> SegmentationResult:
    """A SegmentationResult holding hand-made labels (the SEG writer only uses labels and volume)."""
    return SegmentationResult(labels=labels.astype(np.uint8), volume=volume, hu=volume.array, intensity=None,
                              body=np.ones(volume.shape, bool), settings=Settings(), flags=[], timings_s={})


def known_labels(shape) -> np.ndarray:
    """Right lung on the low columns, left lung on the high ones; slice 0 empty, last slice right lung only."""
    labels = np.zeros(shape, np.uint8)
    labels[1:, 3:15, 2:8] = 1
    labels[1:-1, 5:20, 11:18] = 2
    return labels


# -- reading a SEG back ------------------------------------------------------------------------------

def seg_labels_by_instance(path: Path, sop_uids: list[str]) -> np.ndarray:
    """The SEG as labels in ``sop_uids`` order, read with pydicom alone (frame by frame, via the references)."""
    ds = pydicom.dcmread(path)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    out = np.zeros((len(sop_uids), ds.Rows, ds.Columns), np.uint8)
    index = {uid: k for k, uid in enumerate(sop_uids)}
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        uid = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        number = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        k = index[uid]
        assert not (out[k][frame > 0]).any(), "segments overlap"
        out[k][frame > 0] = number
    return out


def seg_labels_highdicom(path: Path, sop_uids: list[str]) -> np.ndarray:
    seg = hd.seg.segread(path)
    return seg.get_pixels_by_source_instance(source_sop_instance_uids=sop_uids, combine_segments=True)


def all_strings(ds: Dataset):
    """Every string value in a dataset, nested sequences included."""
    for elem in ds.iterall():
        if elem.VR in ("LO", "SH", "PN", "ST", "LT", "UT", "CS", "AS") and elem.value is not None:
            values = elem.value if elem.VM > 1 else [elem.value]
            yield from (str(v) for v in values)


def digest(files) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    return h.hexdigest()


@pytest.fixture
def series(tmp_path):
    return volume_from_files(write_series(tmp_path / "ct"))


# -- content -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("reader", [seg_labels_by_instance, seg_labels_highdicom])
def test_segments_map_onto_labels(series, tmp_path, reader):
    labels = known_labels(series.shape)
    out = write_seg(result_with(series, labels), tmp_path / "seg.dcm")
    assert out == tmp_path / "seg.dcm"
    uids = series.metadata["dicom"]["sop_instance_uids"]
    np.testing.assert_array_equal(reader(out, uids), labels)


def test_empty_frames_left_out_and_references(series, tmp_path):
    labels = known_labels(series.shape)
    out = write_seg(result_with(series, labels), tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    non_empty = sum(int((labels[k] == s).any()) for k in range(labels.shape[0]) for s in (1, 2))
    assert int(ds.NumberOfFrames) == non_empty
    assert ds.SOPClassUID == SEG_STORAGE and ds.Modality == "SEG" and ds.SegmentationType == "BINARY"
    (ref,) = ds.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == series.metadata["dicom"]["series_uid"]
    assert [i.ReferencedSOPInstanceUID for i in ref.ReferencedInstanceSequence] == series.metadata["dicom"]["sop_instance_uids"]
    src = pydicom.dcmread(series.metadata["dicom"]["files"][0])
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID


def test_frames_sit_on_source_positions(series, tmp_path):
    labels = known_labels(series.shape)
    out = write_seg(result_with(series, labels), tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    by_uid = {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f) for f in series.metadata["dicom"]["files"]}
    for item in ds.PerFrameFunctionalGroupsSequence:
        src = by_uid[item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        np.testing.assert_allclose([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
                                   [float(v) for v in src.ImagePositionPatient], atol=1e-3)


def test_reversed_slice_order_gives_the_same_seg(tmp_path):
    files = write_series(tmp_path / "ct")
    up, down = volume_from_files(files), volume_from_files(files, reverse=True)
    assert up.metadata["dicom"]["files"] == down.metadata["dicom"]["files"][::-1]
    labels = known_labels(up.shape)
    a = write_seg(result_with(up, labels), tmp_path / "up.dcm")
    b = write_seg(result_with(down, labels[::-1]), tmp_path / "down.dcm")
    uids = up.metadata["dicom"]["sop_instance_uids"]
    np.testing.assert_array_equal(seg_labels_by_instance(a, uids), seg_labels_by_instance(b, uids))
    np.testing.assert_array_equal(seg_labels_by_instance(a, uids), labels)


def test_swapping_sides_swaps_segments(series, tmp_path):
    labels = known_labels(series.shape)
    swapped = np.choose(labels, [0, 2, 1]).astype(np.uint8)
    out = write_seg(result_with(series, swapped), tmp_path / "seg.dcm")
    got = seg_labels_by_instance(out, series.metadata["dicom"]["sop_instance_uids"])
    np.testing.assert_array_equal(got == 1, labels == 2)
    np.testing.assert_array_equal(got == 2, labels == 1)


def test_segment_descriptions_are_coded(series, tmp_path):
    out = write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    assert [int(s.SegmentNumber) for s in ds.SegmentSequence] == [1, 2]
    for segment, (side, code) in zip(ds.SegmentSequence, [("Right", "24028007"), ("Left", "7771000")]):
        assert side in segment.SegmentLabel
        category = segment.SegmentedPropertyCategoryCodeSequence[0]
        assert (category.CodingSchemeDesignator, category.CodeValue) == ("SCT", "91723000")
        kind = segment.SegmentedPropertyTypeCodeSequence[0]
        assert (kind.CodingSchemeDesignator, kind.CodeValue) == ("SCT", "39607008")
        modifier = kind.SegmentedPropertyTypeModifierCodeSequence[0]
        assert (modifier.CodingSchemeDesignator, modifier.CodeValue, modifier.CodeMeaning) == ("SCT", code, side)
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        algo = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert algo.AlgorithmName == "lungseg" and algo.AlgorithmVersion == lungseg.__version__
        family = algo.AlgorithmFamilyCodeSequence[0]
        assert (family.CodingSchemeDesignator, family.CodeValue) == ("DCM", "123104")  # Morphological Operations
    # highdicom reads the same descriptions back
    seg = hd.seg.segread(out)
    assert seg.get_segment_description(2).segmented_property_type.value == "39607008"


def test_identity_copied_and_nothing_else(series, tmp_path):
    out = write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    src = pydicom.dcmread(series.metadata["dicom"]["files"][0])
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                    "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        assert ds.data_element(keyword).value == src.data_element(keyword).value, keyword
    extra = {e.keyword for e in ds} - ALLOWED
    assert not extra, f"unexpected top-level attributes: {sorted(extra)}"
    strings = set(all_strings(ds))
    leaked = {k for k, v in PRIVATE_BITS.items() if v in strings}
    assert not leaked, f"source header values leaked into the SEG: {sorted(leaked)}"


def test_keep_metadata_copies_the_documented_extras_only(series, tmp_path):
    out = write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm", keep_metadata=True)
    ds = pydicom.dcmread(out)
    extra = {e.keyword for e in ds} - ALLOWED_KEEP
    assert not extra, f"unexpected top-level attributes: {sorted(extra)}"
    strings = set(all_strings(ds))
    present = {k for k, v in PRIVATE_BITS.items() if v in strings}
    assert present == KEPT
    assert KEPT <= set(KEEP_METADATA_ATTRIBUTES)
    assert ds.BodyPartExamined == "CHEST" and ds.PatientAge == "061Y"
    # the SEG's own equipment is still lungseg; the scanner is contributing equipment
    assert ds.Manufacturer == "lungseg"
    assert any(item.get("InstitutionName") == PRIVATE_BITS["InstitutionName"]
               for item in ds.ContributingEquipmentSequence)


def test_source_files_untouched_and_no_temp_left(series, tmp_path):
    files = series.metadata["dicom"]["files"]
    before = digest(files)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    write_seg(result_with(series, known_labels(series.shape)), out_dir / "seg.dcm")
    assert digest(files) == before
    assert [p.name for p in out_dir.iterdir()] == ["seg.dcm"]


def test_no_lung_writes_a_valid_seg(series, tmp_path):
    labels = np.zeros(series.shape, np.uint8)
    out = write_seg(result_with(series, labels), tmp_path / "seg.dcm")
    np.testing.assert_array_equal(seg_labels_by_instance(out, series.metadata["dicom"]["sop_instance_uids"]), labels)


def test_single_slice_gives_one_frame_per_segment(tmp_path):
    files = write_series(tmp_path / "ct", n_slices=1)
    vol3 = volume_from_files(files)
    vol = Volume(vol3.array[0], vol3.spacing[1:], vol3.origin, vol3.direction, vol3.metadata)
    labels = known_labels((3,) + vol.shape)[1]
    out = write_seg(result_with(vol, labels), tmp_path / "seg.dcm")
    ds = pydicom.dcmread(out)
    assert int(ds.NumberOfFrames) == 2
    np.testing.assert_array_equal(seg_labels_by_instance(out, vol.metadata["dicom"]["sop_instance_uids"])[0], labels)


def test_multiframe_source(tmp_path):
    vol, order = volume_from_multiframe(write_multiframe(tmp_path))
    assert not np.array_equal(order, np.arange(len(order)))  # the frames really are out of slice order
    labels = known_labels(vol.shape)
    out = write_seg(result_with(vol, labels), tmp_path / "seg.dcm")
    uid = vol.metadata["dicom"]["sop_instance_uids"][0]
    # pydicom: each SEG frame references a source frame number; its pixels are that label slice's
    ds = pydicom.dcmread(out)
    got = np.zeros((len(order),) + vol.shape[1:], np.uint8)
    frames = ds.pixel_array.reshape(int(ds.NumberOfFrames), ds.Rows, ds.Columns)
    for frame, item in zip(frames, ds.PerFrameFunctionalGroupsSequence):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == uid
        got[int(ref.ReferencedFrameNumber) - 1][frame > 0] = int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
    np.testing.assert_array_equal(got[order], labels)
    # highdicom agrees
    seg = hd.seg.segread(out)
    by_frame = seg.get_pixels_by_source_frame(uid, source_frame_numbers=[int(k) + 1 for k in order],
                                             combine_segments=True, assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(by_frame, labels)


def test_multiframe_off_grid_is_refused(tmp_path):
    vol, _ = volume_from_multiframe(write_multiframe(tmp_path))
    shifted = Volume(vol.array, vol.spacing, np.add(vol.origin, (0, 0, 1.5)), vol.direction, vol.metadata)
    with pytest.raises(OutputError, match="do not each lie on their own frame of the multi-frame source"):
        write_seg(result_with(shifted, known_labels(vol.shape)), tmp_path / "seg.dcm")


# -- errors ------------------------------------------------------------------------------------------

def test_non_dicom_input_is_refused(tmp_path):
    vol = Volume(np.zeros((3, 20, 20), np.int16), (1.0, 1.0, 1.0), metadata={"format": "nifti", "path": "ct.nii.gz"})
    with pytest.raises(OutputError, match=r"DICOM SEG output needs a DICOM input.*write \.nii\.gz/\.nrrd instead"):
        write_seg(result_with(vol, np.zeros(vol.shape)), tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_missing_highdicom(series, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "highdicom", None)
    with pytest.raises(MissingDependencyError, match="DICOM SEG output needs highdicom") as info:
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")
    assert info.value.hint == 'pip install "lungseg[seg]"'
    assert info.value.exit_code == 3


def test_cropped_labels_are_refused(series, tmp_path):
    res = result_with(series, known_labels(series.shape))
    res.labels = res.labels[:, 2:-2]
    with pytest.raises(OutputError, match=r"labels have shape .* source DICOM grid .*do not crop"):
        write_seg(res, tmp_path / "seg.dcm")


def test_labels_other_than_lungs_are_refused(series, tmp_path):
    labels = known_labels(series.shape)
    labels[0, 0, 0] = 3
    with pytest.raises(OutputError, match=r"labels hold values \[0, 1, 2, 3\]; a lung SEG takes 0"):
        write_seg(result_with(series, labels), tmp_path / "seg.dcm")


def test_missing_output_folder(series, tmp_path):
    with pytest.raises(OutputError, match=r"folder .*nowhere does not exist"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "nowhere" / "seg.dcm")


def test_refuses_to_overwrite_a_source_file(series):
    target = series.metadata["dicom"]["files"][2]
    before = digest([target])
    with pytest.raises(OutputError, match="is one of the source DICOM files"):
        write_seg(result_with(series, known_labels(series.shape)), target)
    assert digest([target]) == before


def test_source_file_gone(series, tmp_path):
    Path(series.metadata["dicom"]["files"][1]).unlink()
    with pytest.raises(OutputError, match="cannot re-read the source DICOM file"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")


def test_source_file_changed(series, tmp_path):
    series.metadata["dicom"]["sop_instance_uids"][3] = generate_uid()
    with pytest.raises(OutputError, match="has changed since it was read"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")


def test_file_count_mismatch(series, tmp_path):
    meta = series.metadata["dicom"]
    meta["files"], meta["sop_instance_uids"] = meta["files"][:-1], meta["sop_instance_uids"][:-1]
    with pytest.raises(OutputError, match=r"labels have 5 slices but the source is 4 files"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")


def test_files_out_of_slice_order(series, tmp_path):
    meta = series.metadata["dicom"]
    meta["files"], meta["sop_instance_uids"] = meta["files"][::-1], meta["sop_instance_uids"][::-1]
    with pytest.raises(OutputError, match="not in the labels' slice order"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")


def test_transposed_grid_is_refused(series, tmp_path):
    swapped = Volume(series.array.transpose(0, 2, 1).copy(), series.spacing, series.origin,
                     series.direction[:, [1, 0, 2]], series.metadata)
    with pytest.raises(OutputError, match=r"source instance 0 is 24×20 pixels but the labels are 20×24"):
        write_seg(result_with(swapped, np.zeros(swapped.shape)), tmp_path / "seg.dcm")


def test_other_orientation_is_refused(series, tmp_path):
    flipped = Volume(series.array, series.spacing, series.origin, series.direction @ np.diag([-1, 1, 1]),
                     series.metadata)
    with pytest.raises(OutputError, match=r"source frame 0 is oriented \[1\.0, 0\.0, 0\.0, 0\.0, 1\.0, 0\.0\], the labels are not on its frame"):
        write_seg(result_with(flipped, known_labels(flipped.shape)), tmp_path / "seg.dcm")


def test_multiframe_mixed_with_single_frames_is_refused(series, tmp_path):
    enhanced = write_multiframe(tmp_path / "mf")
    meta = series.metadata["dicom"]
    meta["files"] = [str(enhanced)] + meta["files"][1:]
    del meta["sop_instance_uids"]
    with pytest.raises(OutputError, match="mixes multi-frame files with other images"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")


def test_source_without_position_is_refused(series, tmp_path):
    blank([series.metadata["dicom"]["files"][2]], ImagePositionPatient=None)
    with pytest.raises(OutputError, match="source frame 2 has no ImageOrientationPatient/ImagePositionPatient"):
        write_seg(result_with(series, known_labels(series.shape)), tmp_path / "seg.dcm")


def test_2d_labels_on_a_multiframe_source_are_refused(tmp_path):
    vol, _ = volume_from_multiframe(write_multiframe(tmp_path))
    flat = Volume(vol.array[0], vol.spacing[1:], vol.origin, vol.direction, vol.metadata)
    with pytest.raises(OutputError, match="the labels are one 2D slice but the source has 5 frames"):
        write_seg(result_with(flat, known_labels(vol.shape)[1]), tmp_path / "seg.dcm")


def test_highdicom_refusal_becomes_output_error(tmp_path):
    files = write_series(tmp_path / "ct")
    ds = pydicom.dcmread(files[0])
    ds.SeriesInstanceUID = generate_uid()  # one file from another series
    ds.save_as(files[0])
    vol = volume_from_files(files)
    with pytest.raises(OutputError, match="cannot build a DICOM SEG from this input"):
        write_seg(result_with(vol, known_labels(vol.shape)), tmp_path / "seg.dcm")


def blank(files, **values):
    """Rewrite the files with some attributes changed (file meta kept)."""
    for f in files:
        ds = pydicom.dcmread(f)
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.save_as(f)


def test_empty_sop_uids_taken_from_file_meta(tmp_path):
    files = write_series(tmp_path / "ct")
    meta_uids = {str(f): pydicom.dcmread(f).file_meta.MediaStorageSOPInstanceUID for f in files}
    blank(files, SOPClassUID="", SOPInstanceUID="")
    vol = volume_from_files(files)
    labels = known_labels(vol.shape)
    out = write_seg(result_with(vol, labels), tmp_path / "seg.dcm")
    uids = [meta_uids[f] for f in vol.metadata["dicom"]["files"]]
    np.testing.assert_array_equal(seg_labels_by_instance(out, uids), labels)
    assert pydicom.dcmread(out).ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPClassUID == CTImageStorage


def test_source_without_study_uid_is_refused(tmp_path):
    files = write_series(tmp_path / "ct")
    blank(files, StudyInstanceUID="")
    vol = volume_from_files(files)
    with pytest.raises(OutputError, match=r"has no StudyInstanceUID, which a DICOM SEG needs to reference it"):
        write_seg(result_with(vol, known_labels(vol.shape)), tmp_path / "seg.dcm")


def test_failed_write_leaves_nothing(series, tmp_path, monkeypatch):
    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", disk_full)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(OutputError, match="cannot write .*No space left on device"):
        write_seg(result_with(series, known_labels(series.shape)), out_dir / "seg.dcm")
    assert list(out_dir.iterdir()) == []


# -- real series -------------------------------------------------------------------------------------

# The CIP series names its patient "Anonymous"; highdicom warns that such a name has a single component.
single_component_name = pytest.mark.filterwarnings("ignore:The string .* unlikely to represent:UserWarning")


@single_component_name
@pytest.mark.data
@pytest.mark.parametrize("folder", [("cip", "ct-64Dicom"), pytest.param(("popi", "series"), marks=pytest.mark.slow)],
                         ids=["cip", "popi"])
def test_real_series_seg_matches_nifti_mask(folder, tmp_path):
    import SimpleITK as sitk

    from lungseg.io import write_labels

    files = sorted(shared(*folder).glob("*.dcm"))
    vol = volume_from_files(files)
    res = lungseg.segment(vol)
    seg_path = write_seg(res, tmp_path / "seg.dcm")
    nifti = write_labels(res.labels, res.volume, tmp_path / "mask.nii.gz")
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti)))
    uids = vol.metadata["dicom"]["sop_instance_uids"]
    got = seg_labels_highdicom(seg_path, uids)
    assert got.shape == mask.shape
    np.testing.assert_array_equal(got, mask)
    np.testing.assert_array_equal(seg_labels_by_instance(seg_path, uids), mask)

    ds = pydicom.dcmread(seg_path)
    src = pydicom.dcmread(files[0], stop_before_pixels=True)
    (ref,) = ds.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == src.SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in ref.ReferencedInstanceSequence} == set(uids)
    for keyword in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        assert ds.get(keyword) == src.get(keyword), keyword
    extra = {e.keyword for e in ds} - ALLOWED
    assert not extra, f"unexpected top-level attributes: {sorted(extra)}"


# -- command line ------------------------------------------------------------------------------------

def test_cli_writes_seg(tmp_path, monkeypatch, capsys):
    """``lungseg segment SERIES out.dcm --format seg``, reading through a pydicom-built Volume (reader-independent)."""
    from lungseg import api
    from lungseg.cli import main

    files = write_series(tmp_path / "ct", rows=32, cols=32)
    vol = volume_from_files(files)
    monkeypatch.setattr(api, "read", lambda path, **options: vol)
    out = tmp_path / "lungs.dcm"
    assert main(["segment", str(tmp_path / "ct"), str(out), "--format", "seg"]) == 0
    assert f"mask: {out}" in capsys.readouterr().out
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == SEG_STORAGE
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == vol.metadata["dicom"]["series_uid"]
    assert "InstitutionName" not in set(all_strings(ds)) and PRIVATE_BITS["InstitutionName"] not in set(all_strings(ds))


def test_cli_keep_metadata(tmp_path, monkeypatch):
    from lungseg import api
    from lungseg.cli import main

    vol = volume_from_files(write_series(tmp_path / "ct", rows=32, cols=32))
    monkeypatch.setattr(api, "read", lambda path, **options: vol)
    out = tmp_path / "lungs.dcm"
    assert main(["segment", str(tmp_path / "ct"), str(out), "--format", "seg", "--keep-metadata"]) == 0
    assert pydicom.dcmread(out).BodyPartExamined == PRIVATE_BITS["BodyPartExamined"]


def test_cli_refuses_crop_with_seg(tmp_path, capsys):
    from lungseg.cli import main

    out = tmp_path / "lungs.dcm"
    code = main(["segment", str(tmp_path / "ct"), str(out), "--format", "seg", "--crop"])
    err = capsys.readouterr().err
    assert code == OutputError.exit_code
    assert "--crop cannot be used with --format seg" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.data
def test_cli_seg_from_non_dicom_input(tmp_path, capsys):
    from lungseg.cli import main

    out = tmp_path / "lungs.dcm"
    code = main(["segment", str(shared("cip", "ct-64.nrrd")), str(out), "--format", "seg"])
    err = capsys.readouterr().err
    assert code == OutputError.exit_code
    errors = [line for line in err.splitlines() if line.startswith("lungseg: error:")]
    assert len(errors) == 1 and "DICOM SEG output needs a DICOM input" in errors[0]
    assert "Traceback" not in err
    assert not out.exists()


@single_component_name
@pytest.mark.data
def test_cli_seg_with_lungseg_reader(tmp_path):
    """The whole chain on the real CIP series, with lungseg's own DICOM reader."""
    from lungseg.cli import main

    folder = shared("cip", "ct-64Dicom")
    try:
        meta = lungseg.read(folder).metadata
    except (lungseg.LungsegError, RuntimeError) as err:  # RuntimeError: SimpleITK, the reader before DICOM support
        pytest.skip(f"lungseg's reader cannot read the DICOM folder yet: {err}")
    if "dicom" not in meta:
        pytest.skip("lungseg's reader does not record metadata['dicom'] yet")
    out = tmp_path / "lungs.dcm"
    assert main(["segment", str(folder), str(out), "--format", "seg"]) == 0
    nifti = tmp_path / "lungs.nii.gz"
    assert main(["segment", str(folder), str(nifti)]) == 0

    import SimpleITK as sitk

    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(nifti)))
    np.testing.assert_array_equal(seg_labels_highdicom(out, meta["dicom"]["sop_instance_uids"]), mask)
