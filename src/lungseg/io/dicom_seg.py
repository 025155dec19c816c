"""DICOM Segmentation (SEG) output: the lung labels as a DICOM object that sits on the source frames.

The SEG has one segment per lung (1 = right, 2 = left, as in the label mask), each coded as
SNOMED CT "Lung" with the laterality "Right" or "Left" as a property type modifier, and the
algorithm identified as lungseg (its version, family "Morphological Operations", automatic).
Its frames reference the source CT instances one to one (frames without lung are left out; a SEG
without any lung keeps all its empty frames, as the standard needs at least one). The source is a
single-frame series (one file per label slice, in array slice order, as the reader records it in
``metadata["dicom"]["files"]``), one 2D slice, or one multi-frame (enhanced) CT file whose frames
are matched to the label slices by position.

What is copied from the source header
-------------------------------------
Only the patient and study identity (:data:`IDENTITY_ATTRIBUTES`) and what the SEG needs to
reference and sit on the source frames (:data:`GEOMETRY_ATTRIBUTES`). highdicom copies whatever
patient, study, specimen and acquisition-equipment attributes it finds in the source datasets, so
it is handed stripped copies holding only those. With ``keep_metadata=True`` the attributes in
:data:`KEEP_METADATA_ATTRIBUTES` are handed over as well (from the first source file): highdicom then
records the scanner and institution as contributing equipment and keeps the patient's age, size and
weight and the study description; the body part goes into the SEG's series.

highdicom is an optional extra (``pip install "lungseg[seg]"``), imported only when a SEG is written.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from ..errors import MissingDependencyError, OutputError
from .writers import write_atomic

__all__ = [
    "write_seg",
    "IDENTITY_ATTRIBUTES",
    "GEOMETRY_ATTRIBUTES",
    "KEEP_METADATA_ATTRIBUTES",
    "SEGMENTS",
]

log = logging.getLogger(__name__)

IDENTITY_ATTRIBUTES = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
"""Patient and study identity: always copied from the source, so the SEG files into the same study."""

GEOMETRY_ATTRIBUTES = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "FrameOfReferenceUID",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImageOrientationPatient",
    "ImagePositionPatient",
    "SliceThickness",
    "SpacingBetweenSlices",
)
"""What the SEG needs from each source instance to reference it and lie on its frame."""

KEEP_METADATA_ATTRIBUTES = (
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "StudyDescription",
    "BodyPartExamined",
    "Manufacturer",
    "ManufacturerModelName",
    "DeviceSerialNumber",
    "SoftwareVersions",
    "StationName",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "AcquisitionDateTime",
    "AcquisitionDate",
    "AcquisitionTime",
)
"""Extra source attributes handed over with ``keep_metadata=True`` (from the first source file).

Scanner and institution (and the acquisition date/time) end up in the SEG's
ContributingEquipmentSequence, not in its own equipment attributes (those describe lungseg);
age, size, weight and study description in the patient/study modules; BodyPartExamined at the top.
"""

REQUIRED_SOURCE_UIDS = ("SOPClassUID", "SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
                        "FrameOfReferenceUID")
"""UIDs every source instance must carry for the SEG to reference it and share its frame of reference."""

SEGMENTS = (
    (1, "Right lung", "right"),
    (2, "Left lung", "left"),
)
"""(segment number = label value, segment label, laterality) of the segments written."""

SERIES_NUMBER = 1000
"""Series number of the SEG series (a SEG series of its own, after the scanner's series)."""

MAX_SLICE_OFFSET_FRAC = 0.5
"""A source file may sit at most this fraction of the slice spacing from its array slice's position."""

ORIENTATION_ATOL = 1e-3
"""Tolerance on the direction cosines when checking the labels lie on the source frames."""


def write_seg(res: Any, path: str | os.PathLike, *, keep_metadata: bool = False) -> Path:
    """Write the lung labels of a DICOM input as a DICOM Segmentation object.

    Parameters
    ----------
    res : lungseg.api.SegmentationResult
        ``res.labels`` (uint8, shape (P, R, C) or (R, C): 0 outside, 1 right lung, 2 left lung) on
        the grid of ``res.volume``, which must come from DICOM: ``res.volume.metadata["dicom"]["files"]``
        lists the source files in array slice order (index 0 = ``files[0]``), or holds the one
        multi-frame file whose frames the slices lie on.
    path : str or PathLike
        Where to write the SEG (``.dcm``). Written whole or not at all.
    keep_metadata : bool
        Also copy the attributes in :data:`KEEP_METADATA_ATTRIBUTES` from the source.
        By default only the patient and study identity is copied.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        When the input was not DICOM, the source files are gone or changed, the labels do not lie on
        the source frames, or the file cannot be written.
    MissingDependencyError
        When highdicom is not installed.

    Examples
    --------
    >>> import lungseg                                                  # doctest: +SKIP
    >>> from lungseg.io.dicom_seg import write_seg                      # doctest: +SKIP
    >>> res = lungseg.segment("ct_series_folder/")                      # doctest: +SKIP
    >>> write_seg(res, "lungs_seg.dcm")                                 # doctest: +SKIP
    PosixPath('lungs_seg.dcm')
    """
    path = Path(path)
    volume = res.volume
    files = _source_files(volume)
    labels = np.asarray(res.labels)
    if labels.shape != volume.shape:
        raise OutputError(
            f"the labels have shape {labels.shape} but the source DICOM grid is {volume.shape}",
            hint="DICOM SEG output needs the labels on the source frames (do not crop)",
        )
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: the folder {path.parent} does not exist", hint="create it first")
    resolved = path.resolve()
    if any(Path(f).resolve() == resolved for f in files):
        raise OutputError(f"{path} is one of the source DICOM files; refusing to overwrite the input",
                          hint="choose another output path")

    if labels.size and (labels.min() < 0 or labels.max() > len(SEGMENTS)):
        raise OutputError(f"the labels hold values {np.unique(labels)[:10].tolist()}; "
                          "a lung SEG takes 0 (outside), 1 (right lung) and 2 (left lung)",
                          hint="pass the labels lungseg.segment returned")
    hd = _import_highdicom()
    sources = _read_sources(files, volume.metadata["dicom"].get("sop_instance_uids"))
    slices = labels[np.newaxis] if labels.ndim == 2 else labels
    source_index, n_source_frames = _source_frame_index(volume, sources, slices.shape)
    frames = np.zeros((n_source_frames,) + slices.shape[1:], np.uint8)
    frames[source_index] = slices

    extra = _keep_metadata(sources[0]) if keep_metadata else Dataset()
    stripped = [_strip(ds, extra if i == 0 else None) for i, ds in enumerate(sources)]
    seg = _build_seg(hd, stripped, frames)
    if keep_metadata and "BodyPartExamined" in extra:
        seg.BodyPartExamined = extra.BodyPartExamined
    write_atomic(path, lambda fh: seg.save_as(fh, enforce_file_format=True), mode="wb")
    log.info("wrote DICOM SEG %s (%d frames, %d source instances)", path,
             int(seg.get("NumberOfFrames", 0)), len(sources))
    return path


def _import_highdicom():
    try:
        import highdicom
    except ImportError:
        raise MissingDependencyError("DICOM SEG output needs highdicom", hint='pip install "lungseg[seg]"') from None
    return highdicom


def _source_files(volume) -> list[str]:
    info = volume.metadata.get("dicom")
    files = list(info.get("files") or []) if isinstance(info, dict) else []
    if not files:
        source = volume.metadata.get("path", "this input")
        raise OutputError(
            f"DICOM SEG output needs a DICOM input; {source} is not one "
            f"(format {volume.metadata.get('format', 'unknown')})",
            hint="write .nii.gz/.nrrd instead",
        )
    return files


def _read_sources(files: list[str], sop_uids: list[str] | None) -> list[Dataset]:
    """Headers of the source files, checked against the UIDs recorded when they were read."""
    sources = []
    for i, f in enumerate(files):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (OSError, pydicom.errors.InvalidDicomError) as err:
            raise OutputError(f"cannot re-read the source DICOM file {f}: {err}",
                              hint="DICOM SEG output needs the source files where they were read") from None
        if sop_uids is not None and i < len(sop_uids) and str(ds.get("SOPInstanceUID", "")) != str(sop_uids[i]):
            raise OutputError(f"the source DICOM file {f} has changed since it was read (another SOPInstanceUID)",
                              hint="segment the series again")
        _fill_from_file_meta(ds)
        missing = [k for k in REQUIRED_SOURCE_UIDS if not str(ds.get(k, "") or "").strip()]
        if missing:
            raise OutputError(f"the source DICOM file {f} has no {', '.join(missing)}, which a DICOM SEG needs "
                              "to reference it", hint="write .nii.gz/.nrrd instead")
        sources.append(ds)
    return sources


def _fill_from_file_meta(ds: Dataset) -> None:
    """Some exporters leave SOPClassUID/SOPInstanceUID empty and keep them only in the file meta header."""
    meta = getattr(ds, "file_meta", None)
    for keyword, meta_keyword in (("SOPClassUID", "MediaStorageSOPClassUID"),
                                  ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
        if not str(ds.get(keyword, "") or "").strip() and meta is not None and meta.get(meta_keyword):
            setattr(ds, keyword, meta.get(meta_keyword))
            log.info("%s: %s taken from the file meta header", ds.filename, keyword)


def _planes(ds: Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    """(ImageOrientationPatient (6,), ImagePositionPatient (3,)) of every frame of a source instance."""
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if n == 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        iop = ds.get("ImageOrientationPatient")
        ipp = ds.get("ImagePositionPatient")
        return [(np.asarray(iop, float) if iop else None, np.asarray(ipp, float) if ipp else None)]
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
    planes = []
    for item in ds.get("PerFrameFunctionalGroupsSequence", []):
        orient = item.get("PlaneOrientationSequence") or shared.get("PlaneOrientationSequence")
        pos = item.get("PlanePositionSequence") or shared.get("PlanePositionSequence")
        planes.append((np.asarray(orient[0].ImageOrientationPatient, float) if orient else None,
                       np.asarray(pos[0].ImagePositionPatient, float) if pos else None))
    return planes


def _source_frame_index(volume, sources: list[Dataset], frames_shape: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """For each label slice, the index of the source frame it lies on (files in order, or frames of one file);
    also the number of source frames.

    Checks size and orientation of every source frame, and positions along the slice normal
    (within :data:`MAX_SLICE_OFFSET_FRAC` of the slice spacing).
    """
    n_slices, rows, cols = frames_shape
    multiframe = len(sources) == 1 and int(sources[0].get("NumberOfFrames", 1) or 1) > 1
    if len(sources) > 1 and any(int(ds.get("NumberOfFrames", 1) or 1) > 1 for ds in sources):
        raise OutputError("the source mixes multi-frame files with other images; a DICOM SEG cannot reference it",
                          hint="write .nii.gz/.nrrd instead")
    planes = [plane for ds in sources for plane in _planes(ds)]
    if not multiframe and len(sources) != n_slices:
        raise OutputError(f"the labels have {n_slices} slices but the source is {len(sources)} files",
                          hint="metadata['dicom']['files'] must list one source file per label slice")
    direction = volume.direction
    for i, ds in enumerate(sources):
        if (int(ds.Rows), int(ds.Columns)) != (rows, cols):
            raise OutputError(f"source instance {i} is {ds.Rows}×{ds.Columns} pixels but the labels are {rows}×{cols}",
                              hint="DICOM SEG output needs the labels on the source frames")
    for j, (iop, ipp) in enumerate(planes):
        if iop is None or ipp is None:
            raise OutputError(f"source frame {j} has no ImageOrientationPatient/ImagePositionPatient",
                              hint="a DICOM SEG needs the source geometry; write .nii.gz/.nrrd instead")
        if not (np.allclose(iop[:3], direction[:, 0], atol=ORIENTATION_ATOL)
                and np.allclose(iop[3:], direction[:, 1], atol=ORIENTATION_ATOL)):
            raise OutputError(f"source frame {j} is oriented {iop.round(4).tolist()}, the labels are not on its frame",
                              hint="DICOM SEG output needs the labels in the source's own orientation")
    if volume.ndim == 2:
        if len(planes) != 1:
            raise OutputError(f"the labels are one 2D slice but the source has {len(planes)} frames",
                              hint="write .nii.gz/.nrrd instead")
        return np.zeros(1, int), 1
    normal = direction[:, 2]
    index = np.zeros((n_slices, 4))
    index[:, 0] = np.arange(n_slices)
    index[:, 3] = 1.0
    expected = (index @ volume.affine.T)[:, :3] @ normal
    found = np.array([ipp @ normal for _, ipp in planes])
    tol_mm = MAX_SLICE_OFFSET_FRAC * volume.spacing[0]
    if multiframe:
        nearest = np.argmin(np.abs(expected[:, None] - found[None, :]), axis=1)
        offsets = found[nearest] - expected
        if np.abs(offsets).max() > tol_mm or len(set(nearest.tolist())) != n_slices:
            raise OutputError("the label slices do not each lie on their own frame of the multi-frame source",
                              hint="DICOM SEG output needs the labels on the source frames")
        return nearest, len(planes)
    offsets = found - expected
    worst = int(np.argmax(np.abs(offsets)))
    if abs(offsets[worst]) > tol_mm:
        raise OutputError(
            f"source file {worst} lies {offsets[worst]:.2f} mm from label slice {worst}: "
            "the files are not in the labels' slice order",
            hint="metadata['dicom']['files'] must list the source files in array slice order",
        )
    return np.arange(n_slices), len(planes)


def _keep_metadata(first: Dataset) -> Dataset:
    extra = Dataset()
    for keyword in KEEP_METADATA_ATTRIBUTES:
        if keyword in first:
            setattr(extra, keyword, first.data_element(keyword).value)
    return extra


def _strip(ds: Dataset, extra: Dataset | None) -> Dataset:
    """A copy of a source header holding only identity and geometry (plus ``extra``)."""
    out = Dataset()
    for keyword in IDENTITY_ATTRIBUTES + GEOMETRY_ATTRIBUTES:
        if keyword in ds:
            out.add(ds.data_element(keyword))
    if "PerFrameFunctionalGroupsSequence" in ds:  # multi-frame: keep only the geometry macros
        out.NumberOfFrames = ds.NumberOfFrames
        out.SharedFunctionalGroupsSequence = [_geometry_groups(g) for g in ds.get("SharedFunctionalGroupsSequence", [])]
        out.PerFrameFunctionalGroupsSequence = [_geometry_groups(g) for g in ds.PerFrameFunctionalGroupsSequence]
    if extra is not None:
        out.update(extra)
    # highdicom maps the source IOD from its SOP class; Patient and Study identity are Type 2 there.
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID",
                    "StudyDate", "StudyTime", "AccessionNumber"):
        if keyword not in out:
            setattr(out, keyword, None)
    return out


def _geometry_groups(item: Dataset) -> Dataset:
    """A functional groups item reduced to the plane position, orientation and pixel measures."""
    out = Dataset()
    for keyword in ("PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence"):
        if keyword in item:
            out.add(item.data_element(keyword))
    return out


def _build_seg(hd, sources: list[Dataset], frames: np.ndarray):
    from pydicom.sr.codedict import codes

    from .. import __version__

    algorithm = hd.AlgorithmIdentificationSequence(
        name="lungseg",
        family=codes.cid7162.MorphologicalOperations,
        version=__version__,
    )
    laterality = {"right": codes.SCT.Right, "left": codes.SCT.Left}
    descriptions = []
    for number, label, side in SEGMENTS:
        desc = hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label,
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Lung,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        modifier = hd.sr.CodedConcept.from_code(laterality[side])
        desc.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [modifier]
        descriptions.append(desc)
    try:
        return hd.seg.Segmentation(
            source_images=sources,
            pixel_array=frames,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="lungseg",
            manufacturer_model_name="lungseg",
            software_versions=__version__,
            device_serial_number="none (software)",
            series_description="lungseg lungs",
            content_label="LUNGS",
            content_description="Right and left lungs segmented by lungseg",
            omit_empty_frames=bool(frames.any()),  # highdicom keeps all frames of an empty SEG anyway (and warns)
        )
    except ValueError as err:  # highdicom's checks of the source images and labels
        raise OutputError(f"cannot build a DICOM SEG from this input: {err}",
                          hint="write .nii.gz/.nrrd instead") from None


