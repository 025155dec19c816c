"""DICOM: find the series in a folder, choose one, and read it (or one file) into a Volume.

Headers are read with pydicom (pixel data deferred); pixels with SimpleITK's series reader when every
file is uncompressed and shares one rescale (fast), and with pydicom otherwise (compressed transfer
syntaxes through the pylibjpeg plugins).

Rules
-----
* Files are grouped by SeriesInstanceUID, searched recursively.
* Slices are sorted by their position along the slice normal (the cross product of the two
  ImageOrientationPatient vectors), never by file name or InstanceNumber.
* Spacing along the normal comes from the sorted positions (not SliceThickness): the mean gap
  when the gaps are even, the median gap otherwise.
  Uneven gaps, missing slices and tilted (sheared) stacks are logged and listed in
  ``metadata["warnings"]``; images at the same position are dropped after the first.
* A series is skipped when it is not an image (no pixel data; SR, RTSTRUCT, SEG, presentation states),
  a localizer (ImageType LOCALIZER, or slices in several orientations), has images of several sizes,
  has 1-3 images while a series of the same study has more, or is not CT while a CT series exists.
* Of the usable series the one chosen is: CT before other modalities, then axial before other
  orientations, then the most images, then the thinnest slices, then the lowest series number and UID.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.multival import MultiValue

from ..errors import InputError, MissingDependencyError, UnsupportedInputError
from ..volume import Volume
from .validate import check_array, compact_dtype, grey_from_channels

__all__ = ["DicomSeries", "find_dicom_series", "choose_series", "read_dicom_folder", "read_dicom_file",
           "inspect_dicom_folder", "inspect_dicom_file", "CHOICE_RULE"]

log = logging.getLogger(__name__)

CHOICE_RULE = "CT first, then axial, then most images, then thinnest slices"

MAX_LOCALIZER_IMAGES = 3
"""A series of this many images or fewer is taken for a localizer when its study has a bigger series."""
DUPLICATE_POSITION_MM = 0.01
"""Two slices closer than this along the normal are at the same position."""
UNEVEN_SPACING_FRAC = 0.01
"""Gaps between slices differing from the median gap by more than this fraction are uneven."""
UNEVEN_SPACING_MM = 0.01
"""... and by more than this many mm."""
SHEAR_TOLERANCE_MM = 0.1
"""A stack whose slices are offset in-plane by more than this is tilted (gantry tilt)."""
ORIENTATION_TOLERANCE = 1e-3
"""Largest difference between direction cosines of slices in one series."""
OBLIQUE_ANGLE_DEG = 30.0
"""A slice whose normal is further than this from every world axis is oblique."""

NON_IMAGE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
    "1.2.840.10008.5.1.4.1.1.11.1": "presentation state",
    "1.2.840.10008.5.1.4.1.1.88.11": "structured report",
    "1.2.840.10008.5.1.4.1.1.88.22": "structured report",
    "1.2.840.10008.5.1.4.1.1.88.33": "structured report",
    "1.2.840.10008.5.1.4.1.1.88.59": "key object selection",
    "1.2.840.10008.5.1.4.1.1.66": "raw data",
    "1.2.840.10008.5.1.4.1.1.104.1": "encapsulated PDF",
    "1.2.840.10008.1.3.10": "a DICOMDIR (media directory)",
}

_HEADER_TAGS = [
    "SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "StudyInstanceUID", "Modality", "SeriesDescription",
    "ImageType", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "PixelRepresentation",
    "ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing", "SliceThickness", "SpacingBetweenSlices",
    "InstanceNumber", "SeriesNumber", "RescaleSlope", "RescaleIntercept", "PixelPaddingValue",
    "PixelPaddingRangeLimit", "PhotometricInterpretation", "PatientPosition", "ConvolutionKernel", "Manufacturer",
    "PixelData", "FloatPixelData", "DoubleFloatPixelData",
]
"""The header elements lungseg reads when scanning (pixel data is only checked for presence, not read)."""

_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_CT_LIKE = {"CT"}


@dataclasses.dataclass(frozen=True)
class _Header:
    """The few header facts lungseg needs from one DICOM file (small and picklable)."""

    path: str
    sop_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    modality: str | None
    description: str
    image_type: tuple[str, ...]
    has_pixels: bool
    rows: int | None
    cols: int | None
    frames: int
    samples: int
    orientation: tuple[float, ...] | None
    position: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    spacing_between: float | None
    instance_number: int | None
    series_number: int | None
    transfer_syntax: str
    slope: float
    intercept: float
    padding: float | None
    padding_limit: float | None
    photometric: str
    patient_position: str | None
    kernel: str | None
    manufacturer: str | None


def _floats(value, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n and all(np.isfinite(out)) else None


def _float(value) -> float | None:
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else None
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _strings(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value.upper(),)
    return tuple(str(v).upper() for v in value)


def _int(value) -> int | None:
    f = _float(value)
    return int(f) if f is not None else None


def _rescale_slope(ds, path: str) -> float:
    """RescaleSlope, 1 when absent; a slope of 0 (which would flatten the image) is taken as 1, with a warning."""
    slope = _float(ds.get("RescaleSlope"))
    if slope == 0:
        log.warning("%s: RescaleSlope is 0, which would make every pixel the same value; using 1", path)
    return slope or 1.0


def _header_from_dataset(ds, path: str) -> _Header:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    image_type = _strings(ds.get("ImageType"))
    return _Header(
        path=path,
        sop_uid=str(ds.get("SOPInstanceUID", "")),
        sop_class_uid=str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta is not None else "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        modality=str(ds.get("Modality")) if ds.get("Modality") else None,
        description=str(ds.get("SeriesDescription", "") or ""),
        image_type=image_type,
        has_pixels=any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")),
        rows=_int(ds.get("Rows")),
        cols=_int(ds.get("Columns")),
        frames=_int(ds.get("NumberOfFrames")) or 1,
        samples=_int(ds.get("SamplesPerPixel")) or 1,
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        position=_floats(ds.get("ImagePositionPatient"), 3),
        pixel_spacing=_floats(ds.get("PixelSpacing"), 2),  # type: ignore[arg-type]
        slice_thickness=_float(ds.get("SliceThickness")),
        spacing_between=_float(ds.get("SpacingBetweenSlices")),
        instance_number=_int(ds.get("InstanceNumber")),
        series_number=_int(ds.get("SeriesNumber")),
        transfer_syntax=ts,
        slope=_rescale_slope(ds, path),
        intercept=_float(ds.get("RescaleIntercept")) or 0.0,
        padding=_float(ds.get("PixelPaddingValue")),
        padding_limit=_float(ds.get("PixelPaddingRangeLimit")),
        photometric=str(ds.get("PhotometricInterpretation", "") or ""),
        patient_position=str(ds.get("PatientPosition")) if ds.get("PatientPosition") else None,
        kernel=str(ds.get("ConvolutionKernel")) if ds.get("ConvolutionKernel") else None,
        manufacturer=str(ds.get("Manufacturer")) if ds.get("Manufacturer") else None,
    )


def _dcmread(path: str | Path, *, pixels: bool, force: bool = False):
    """pydicom.dcmread with its errors turned into InputError."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        if pixels:
            return pydicom.dcmread(str(path), force=force)
        return pydicom.dcmread(str(path), defer_size="1 KB", force=force, specific_tags=_HEADER_TAGS)
    except InvalidDicomError as err:
        raise InputError(f"{path} is not a valid DICOM file ({err})") from None
    except (EOFError, ValueError, KeyError, TypeError, OverflowError, IndexError) as err:
        raise InputError(f"{path} is a corrupt or truncated DICOM file ({type(err).__name__}: {err})",
                         hint="copy it again from the source") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None


def read_header(path: str | Path, *, force: bool = False) -> _Header:
    """The header facts of one DICOM file (pixel data not decoded).

    Raises
    ------
    InputError
        When the file is not DICOM, or is corrupt.
    """
    ds = _dcmread(path, pixels=False, force=force)
    return _header_from_dataset(ds, str(path))


# -- series -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DicomSeries:
    """One DICOM series found in a folder tree.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID.
    files : list of Path
        The image files, sorted along the slice normal (ascending), duplicates kept at this stage.
    modality : str or None
    description : str
        SeriesDescription.
    folder : Path
        The deepest folder holding every file of the series.
    study_uid : str
    orientation : str
        ``"axial"``, ``"coronal"``, ``"sagittal"``, ``"oblique"``, ``"mixed"`` or ``"unknown"``.
    rows, cols : int or None
        Image size in pixels (None when the images differ).
    slice_thickness_mm : float or None
    skip_reason : str or None
        Why the series is not a candidate for segmentation (None: usable).
    """

    uid: str
    files: list[Path]
    modality: str | None
    description: str
    folder: Path
    study_uid: str
    orientation: str
    rows: int | None
    cols: int | None
    slice_thickness_mm: float | None
    series_number: int | None = None
    skip_reason: str | None = None
    headers: list[_Header] = dataclasses.field(default_factory=list, repr=False)

    @property
    def n_images(self) -> int:
        """Number of 2D images (frames of multi-frame files counted)."""
        return sum(h.frames for h in self.headers) if self.headers else len(self.files)

    @property
    def usable(self) -> bool:
        return self.skip_reason is None

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description (what ``lungseg info`` lists)."""
        return {
            "uid": self.uid,
            "modality": self.modality,
            "description": self.description,
            "images": self.n_images,
            "size": f"{self.rows}×{self.cols}" if self.rows else "mixed",
            "orientation": self.orientation,
            "slice_thickness_mm": self.slice_thickness_mm,
            "folder": str(self.folder),
            "skipped": self.skip_reason,
        }


def _normal(orientation: tuple[float, ...]) -> np.ndarray:
    row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
    n = np.cross(row, col)
    norm = np.linalg.norm(n)
    return n / norm if norm > 0 else np.array([0.0, 0.0, 1.0])


def orientation_name(orientation: tuple[float, ...] | None) -> str:
    """``"axial"``, ``"coronal"``, ``"sagittal"`` or ``"oblique"`` from ImageOrientationPatient (6 cosines).

    Examples
    --------
    >>> orientation_name((1, 0, 0, 0, 1, 0)), orientation_name((1, 0, 0, 0, 0, -1))
    ('axial', 'coronal')
    """
    if orientation is None:
        return "unknown"
    n = np.abs(_normal(orientation))
    axis = int(np.argmax(n))
    if n[axis] < np.cos(np.deg2rad(OBLIQUE_ANGLE_DEG)):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _sort_key(h: _Header, normal: np.ndarray | None) -> tuple:
    pos = float(np.dot(h.position, normal)) if (h.position is not None and normal is not None) else 0.0
    return (pos, h.instance_number if h.instance_number is not None else 0, h.path)


def _build_series(uid: str, headers: list[_Header]) -> DicomSeries:
    first = headers[0]
    orientations = {h.orientation for h in headers if h.orientation is not None}
    consistent = all(
        np.allclose(h.orientation, first.orientation, atol=ORIENTATION_TOLERANCE)
        for h in headers if h.orientation is not None and first.orientation is not None
    )
    normal = _normal(first.orientation) if first.orientation is not None and consistent else None
    headers = sorted(headers, key=lambda h: _sort_key(h, normal))
    sizes = {(h.rows, h.cols) for h in headers}
    folder = Path(os.path.commonpath([os.path.dirname(h.path) for h in headers]))
    series = DicomSeries(
        uid=uid,
        files=[Path(h.path) for h in headers],
        modality=first.modality,
        description=first.description,
        folder=folder,
        study_uid=first.study_uid,
        orientation=("mixed" if not consistent else orientation_name(first.orientation)) if orientations else "unknown",
        rows=first.rows if len(sizes) == 1 else None,
        cols=first.cols if len(sizes) == 1 else None,
        slice_thickness_mm=first.slice_thickness,
        series_number=first.series_number,
        headers=headers,
    )
    series.skip_reason = _own_skip_reason(series)
    return series


def _own_skip_reason(series: DicomSeries) -> str | None:
    """Why a series cannot be used on its own (before comparing it with the others)."""
    hs = series.headers
    sop = hs[0].sop_class_uid
    if sop in NON_IMAGE_SOP_CLASSES or not any(h.has_pixels for h in hs):
        kind = NON_IMAGE_SOP_CLASSES.get(sop, "an object without pixel data")
        return f"not an image: {kind}"
    if any("LOCALIZER" in h.image_type for h in hs):
        return "localizer (ImageType LOCALIZER)"
    if series.orientation == "mixed":
        return "localizer: slices in several orientations"
    if series.rows is None:
        sizes = sorted({f"{h.rows}×{h.cols}" for h in hs})
        return f"images of several sizes ({', '.join(sizes)})"
    return None


def _scan_key(root: Path) -> tuple:
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = os.path.join(dirpath, name)
            try:
                st = os.stat(p)
            except OSError:
                continue
            entries.append((p, st.st_mtime_ns, st.st_size))
    return tuple(entries)


@functools.lru_cache(maxsize=4)
def _scan(key: tuple) -> tuple[tuple[_Header, ...], tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Headers of every DICOM file in a scan key; also the other files and the unreadable ones (path, why)."""
    from .formats import full_suffix, looks_like_dicom_without_preamble, sniff

    headers, others, bad = [], [], []
    for path, _mtime, size in key:
        p = Path(path)
        if p.name.startswith(".") or size == 0:
            others.append(path)
            continue
        try:
            with open(p, "rb") as fh:
                head = fh.read(132)
        except OSError as err:
            bad.append((path, str(err)))
            continue
        preamble = sniff(head) == "dicom-file"
        if not preamble and not looks_like_dicom_without_preamble(p, full_suffix(p)):
            others.append(path)
            continue
        try:
            headers.append(read_header(p, force=not preamble))
        except InputError as err:
            bad.append((path, err.message))
    return tuple(headers), tuple(others), tuple(bad)


def _scan_folder(root: Path):
    return _scan(_scan_key(Path(os.path.abspath(root))))


def _group(headers: tuple[_Header, ...]) -> list[DicomSeries]:
    groups: dict[str, list[_Header]] = defaultdict(list)
    for h in headers:
        groups[h.series_uid or f"(no SeriesInstanceUID) {os.path.dirname(h.path)}"].append(h)
    series = [_build_series(uid, hs) for uid, hs in groups.items()]
    # Compare within each study: tiny series beside a real volume are localizers; non-CT beside CT is skipped.
    by_study: dict[str, list[DicomSeries]] = defaultdict(list)
    for s in series:
        by_study[s.study_uid].append(s)
    for members in by_study.values():
        usable = [s for s in members if s.usable]
        biggest = max((s.n_images for s in usable), default=0)
        for s in usable:
            if s.n_images <= MAX_LOCALIZER_IMAGES < biggest:
                s.skip_reason = f"localizer: only {s.n_images} image(s) beside a series of {biggest}"
    any_ct = any(s.usable and s.modality in _CT_LIKE for s in series)
    for s in series:
        if s.usable and any_ct and s.modality not in _CT_LIKE:
            s.skip_reason = f"not CT ({s.modality or 'no modality'}) while a CT series exists"
    series.sort(key=lambda s: (str(s.folder), s.series_number or 0, s.uid))
    return series


def find_dicom_series(root: str | os.PathLike, *, include_skipped: bool = False) -> list[DicomSeries]:
    """Every DICOM image series under ``root`` (searched recursively).

    Parameters
    ----------
    root : path
        A folder (or a single DICOM file).
    include_skipped : bool
        Also return the series that are not segmentable (localizers, non-image objects, mixed sizes,
        non-CT beside CT); their ``skip_reason`` says why.

    Returns
    -------
    list of DicomSeries
        Sorted by folder, then series number and UID. ``read(root, series_uid=s.uid)`` reads one.

    Raises
    ------
    InputError
        When ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{root} does not exist")
    if root.is_file():
        series = _group((read_header(root),))
    else:
        headers, _others, _bad = _scan_folder(root)
        series = _group(headers)
    return series if include_skipped else [s for s in series if s.usable]


def _rank(s: DicomSeries) -> tuple:
    return (
        s.modality not in _CT_LIKE,
        s.orientation != "axial",
        -s.n_images,
        s.slice_thickness_mm if s.slice_thickness_mm is not None else np.inf,
        s.series_number if s.series_number is not None else np.inf,
        s.uid,
    )


def choose_series(series: list[DicomSeries], *, series_uid: str | None = None, where: str = "the folder",
                  log_choice: bool = True) -> DicomSeries:
    """The series to read: ``series_uid`` when given, else the best usable one by ``CHOICE_RULE``.

    Raises
    ------
    InputError
        When ``series_uid`` is not among them (the message lists the UIDs found), when there is no
        series, or when no series is usable (the message says why each was skipped).
    """
    if series_uid is not None:
        for s in series:
            if s.uid == series_uid:
                if s.skip_reason and s.skip_reason.startswith("not an image"):
                    raise InputError(f"series {series_uid} in {where} is {s.skip_reason}")
                return s
        listed = ", ".join(f"{s.uid} ({s.modality}, {s.n_images} images)" for s in series) or "none"
        raise InputError(f"no series with UID {series_uid} in {where}", hint=f"series found: {listed}")
    if not series:
        raise InputError(f"no DICOM series in {where}")
    usable = [s for s in series if s.usable]
    if not usable:
        reasons = "; ".join(f"{s.uid}: {s.skip_reason}" for s in series)
        first = series[0]
        if len(series) == 1 and first.skip_reason and first.skip_reason.startswith("images of several sizes"):
            raise InputError(f"the DICOM series in {where} cannot form a volume: {first.skip_reason}",
                             hint="pick the files of one size into their own folder")
        raise InputError(f"no usable image series in {where} ({reasons})",
                         hint="pass --series UID to read one of them anyway")
    chosen = min(usable, key=_rank)
    if len(usable) > 1 and log_choice:
        log.info("%d usable series in %s; chose %s (%s, %s, %d images) by the rule: %s",
                 len(usable), where, chosen.uid, chosen.modality, chosen.orientation, chosen.n_images, CHOICE_RULE)
    return chosen


# -- geometry ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Stack:
    headers: list[_Header]
    spacing_mm: float
    origin: tuple[float, float, float]
    direction: np.ndarray
    warnings: list[str]
    spacing_known: bool


def _stack_geometry(headers: list[_Header], where: str) -> _Stack:
    """Sort, de-duplicate and check slices; compute origin, direction and slice spacing."""
    warnings: list[str] = []
    first = headers[0]
    if any(h.position is None or h.orientation is None for h in headers):
        if len(headers) > 1 and not all(h.position is None for h in headers):
            n = sum(h.position is None for h in headers)
            raise InputError(f"{n} of {len(headers)} images in {where} have no ImagePositionPatient",
                             hint="the series cannot be stacked; remove those files or read one file")
        if len(headers) > 1:
            warnings.append("no slice positions (ImagePositionPatient): slices ordered by InstanceNumber, "
                            "spacing from SpacingBetweenSlices/SliceThickness")
        ordered = sorted(headers, key=lambda h: (h.instance_number or 0, h.path))
        gap = first.spacing_between or first.slice_thickness
        direction = np.eye(3)
        if first.orientation is not None:
            direction = np.column_stack([first.orientation[:3], first.orientation[3:], _normal(first.orientation)])
        origin = first.position or (0.0, 0.0, 0.0)
        return _Stack(ordered, gap or 1.0, tuple(origin), direction, warnings, gap is not None)

    for h in headers:
        if not np.allclose(h.orientation, first.orientation, atol=ORIENTATION_TOLERANCE):
            raise InputError(f"the images in {where} have several orientations and cannot form one volume",
                             hint="this is typically a localizer; choose another series with --series")
    normal = _normal(first.orientation)
    ordered = sorted(headers, key=lambda h: _sort_key(h, normal))
    pos = np.array([np.dot(h.position, normal) for h in ordered])

    keep = [0]
    for i in range(1, len(ordered)):
        if abs(pos[i] - pos[keep[-1]]) < DUPLICATE_POSITION_MM:
            continue
        keep.append(i)
    if len(keep) < len(ordered):
        n_dup = len(ordered) - len(keep)
        counts = Counter(np.round(pos / DUPLICATE_POSITION_MM).astype(np.int64))
        if len(counts) > 1 and len(set(counts.values())) == 1:
            k = next(iter(counts.values()))
            raise UnsupportedInputError(
                f"every position in {where} holds {k} images: the series is 4D (several phases or acquisitions)",
                hint="split it into one folder per acquisition and segment one at a time",
            )
        msg = f"{n_dup} image(s) at a position already filled were dropped (duplicates)"
        warnings.append(msg)
        ordered = [ordered[i] for i in keep]
        pos = pos[keep]

    direction = np.column_stack([first.orientation[:3], first.orientation[3:], normal])
    if len(ordered) == 1:
        gap = first.spacing_between or first.slice_thickness
        return _Stack(ordered, gap or 1.0, tuple(first.position), direction, warnings, gap is not None)

    gaps = np.diff(pos)
    spacing = float(np.median(gaps))
    tol = max(UNEVEN_SPACING_FRAC * spacing, UNEVEN_SPACING_MM)
    missing = int(sum(max(round(g / spacing) - 1, 0) for g in gaps if g > 1.5 * spacing))
    if missing:
        warnings.append(f"about {missing} slice(s) missing: gaps up to {gaps.max():.3g} mm where the spacing is "
                        f"{spacing:.3g} mm")
    elif np.any(np.abs(gaps - spacing) > tol):
        warnings.append(f"uneven slice spacing: gaps from {gaps.min():.4g} to {gaps.max():.4g} mm "
                        f"(using the median {spacing:.4g} mm)")
    else:  # even: the mean gap keeps the stack's extent exact despite rounded positions
        spacing = float((pos[-1] - pos[0]) / (len(pos) - 1))
    offset = np.asarray(ordered[-1].position) - np.asarray(ordered[0].position)
    in_plane = offset - np.dot(offset, normal) * normal
    if np.linalg.norm(in_plane) > SHEAR_TOLERANCE_MM * (len(ordered) - 1) and np.linalg.norm(in_plane) > 1.0:
        warnings.append(f"the slices are shifted in-plane by {np.linalg.norm(in_plane):.3g} mm from first to last "
                        "(gantry tilt): the geometry is approximated by a straight stack")
    return _Stack(ordered, spacing, tuple(ordered[0].position), direction, warnings, True)


# -- pixels -----------------------------------------------------------------------------------------


def _check_decodable(transfer_syntax: str, path: str) -> None:
    """Raise MissingDependencyError when no installed pydicom plugin can decode the transfer syntax."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    uid = UID(transfer_syntax) if transfer_syntax else None
    if uid is None or not uid.is_compressed:
        return
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise UnsupportedInputError(f"{path} is compressed with {uid.name}, which lungseg cannot decode") from None
    if not decoder.is_available:
        raise MissingDependencyError(
            f"{path} is compressed with {uid.name} and no installed decoder reads it",
            hint='pip install "lungseg[dicom]"',
        )


def _pixels_pydicom(header: _Header) -> np.ndarray:
    """Stored values of one file (all frames), rescale not yet applied."""
    ds = _dcmread(header.path, pixels=True, force=not header.transfer_syntax)
    if not any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InputError(f"{header.path} has no pixel data (it is not an image)",
                         hint="pass a DICOM image file or a folder of CT images")
    _check_decodable(header.transfer_syntax, header.path)
    try:
        arr = ds.pixel_array
    except (ValueError, RuntimeError, AttributeError, KeyError, TypeError, EOFError, OSError) as err:
        raise InputError(f"cannot decode the pixel data of {header.path} ({err})",
                         hint="the file may be truncated or corrupt") from None
    if header.samples > 1:
        arr = grey_from_channels(arr, source=header.path)
    return arr


def _rescale(stored: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    if slope == 1.0 and intercept == 0.0:
        return stored
    return stored.astype(np.float64) * slope + intercept


def _pixels_sitk(files: list[str]) -> np.ndarray | None:
    """The rescaled stack read by SimpleITK's series reader, or None when it cannot read these files."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    # ITK prints its own (geometry) warnings to stderr; lungseg checks the geometry itself and reports
    # through logging, so ITK's display is switched off for this call and restored after it.
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        image = reader.Execute()
    except RuntimeError as err:
        log.debug("SimpleITK could not read the series (%s); falling back to pydicom", str(err).strip().splitlines()[-1:])
        return None
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)
    arr = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() != 1 or arr.ndim != 3 or arr.shape[0] != len(files):
        return None
    return arr


def _read_stack_pixels(headers: list[_Header]) -> tuple[np.ndarray, str]:
    """(array of rescaled values with shape (P, R, C), reader name)."""
    same_rescale = len({(h.slope, h.intercept) for h in headers}) == 1
    fast = (
        len(headers) > 1
        and same_rescale
        and all(h.transfer_syntax in _UNCOMPRESSED and h.samples == 1 and h.frames == 1 and h.has_pixels
                for h in headers)
        and all(h.photometric in ("MONOCHROME1", "MONOCHROME2") for h in headers)
    )
    if fast:
        arr = _pixels_sitk([h.path for h in headers])
        if arr is not None:
            return compact_dtype(arr), "simpleitk"
    slices = [_rescale(_pixels_pydicom(h), h.slope, h.intercept) for h in headers]
    return compact_dtype(np.stack(slices)), "pydicom"


# -- reading --------------------------------------------------------------------------------------------


def _check_modality(modality: str | None, where: str, force: bool) -> list[str]:
    if modality in _CT_LIKE:
        return []
    if modality is None or modality == "OT":
        msg = f"{where} has modality {modality or '(none)'}; read as CT"
        log.warning(msg)
        return [msg]
    if not force:
        kind = {"MR": "an MR image", "PT": "a PET image", "CR": "an X-ray radiograph", "DX": "an X-ray radiograph",
                "NM": "a nuclear medicine image", "US": "an ultrasound image", "MG": "a mammogram"}.get(
                    modality, f"a {modality} image")
        raise UnsupportedInputError(f"{where} is {kind} (modality {modality}), not CT",
                                    hint="lungseg segments CT; use --force (force=True) to try anyway")
    msg = f"{where} has modality {modality}, not CT; read anyway because of --force"
    log.warning(msg)
    return [msg]


def _dicom_metadata(headers: list[_Header], *, series_uid: str, reader: str) -> dict[str, Any]:
    first = headers[0]
    slopes = {h.slope for h in headers}
    intercepts = {h.intercept for h in headers}
    padding = None if first.padding is None else first.padding * first.slope + first.intercept
    limit = None if first.padding_limit is None else first.padding_limit * first.slope + first.intercept
    return {
        "series_uid": series_uid,
        "study_uid": first.study_uid,
        "modality": first.modality,
        "description": first.description,
        "files": [h.path for h in headers],
        "sop_instance_uids": [h.sop_uid for h in headers],
        "sop_class_uid": first.sop_class_uid,
        "pixel_padding_value": padding,
        "pixel_padding_range_limit": limit,
        "pixel_padding_value_stored": first.padding,
        "rescale_slope": first.slope if len(slopes) == 1 else None,
        "rescale_intercept": first.intercept if len(intercepts) == 1 else None,
        "rescale_varies": len(slopes) > 1 or len(intercepts) > 1,
        "photometric": first.photometric,
        "transfer_syntax": first.transfer_syntax,
        "patient_position": first.patient_position,
        "image_orientation": list(first.orientation) if first.orientation else None,
        "image_type": list(first.image_type),
        "slice_thickness_mm": first.slice_thickness,
        "convolution_kernel": first.kernel,
        "manufacturer": first.manufacturer,
        "pixel_reader": reader,
    }


def _volume_from_headers(headers: list[_Header], *, where: str, fmt: str, path: str, series_uid: str,
                         force: bool, spacing=None) -> Volume:
    from .validate import resolve_spacing

    warnings = _check_modality(headers[0].modality, where, force)
    if len(headers) == 1 and headers[0].frames > 1:
        return _multiframe_volume(headers[0], where=where, fmt=fmt, path=path, warnings=warnings, spacing=spacing)
    if any(h.frames > 1 for h in headers):
        raise UnsupportedInputError(f"{where} mixes multi-frame files with other images",
                                    hint="read one multi-frame file at a time")
    if len({(h.rows, h.cols) for h in headers}) > 1:
        sizes = sorted({f"{h.rows}×{h.cols}" for h in headers})
        raise InputError(f"the images in {where} have several sizes ({', '.join(sizes)}) and cannot form one volume",
                         hint="put the images of one series and size in their own folder")
    stack = _stack_geometry(headers, where)
    for w in stack.warnings:
        log.warning("%s: %s", where, w)
    warnings += stack.warnings
    first = stack.headers[0]
    array, reader = _read_stack_pixels(stack.headers)
    in_plane_known = first.pixel_spacing is not None
    in_plane = first.pixel_spacing or (1.0, 1.0)
    if not in_plane_known:
        warnings.append("no PixelSpacing in the header: pixel size unknown")
    metadata: dict[str, Any] = {
        "format": fmt,
        "path": path,
        "dicom": _dicom_metadata(stack.headers, series_uid=series_uid, reader=reader),
        "warnings": warnings,
    }
    if array.shape[0] == 1:
        sp = tuple(in_plane)
        user = resolve_spacing(spacing, 2, source=where)
        metadata["spacing_known"] = in_plane_known or user is not None
        metadata["slice_thickness_mm"] = stack.spacing_mm if stack.spacing_known else None
        vol = Volume(check_array(array[0], source=where), user or sp, stack.origin, stack.direction, metadata)
    else:
        sp = (stack.spacing_mm, *in_plane)
        user = resolve_spacing(spacing, 3, source=where)
        metadata["spacing_known"] = (in_plane_known and stack.spacing_known) or user is not None
        vol = Volume(check_array(array, source=where), user or sp, stack.origin, stack.direction, metadata)
    if user is not None and not np.allclose(user, sp):
        log.warning("%s: using the given spacing %s mm instead of the header's %s mm", where, user, sp)
    return vol


def _multiframe_volume(h: _Header, *, where: str, fmt: str, path: str, warnings: list[str], spacing) -> Volume:
    """An enhanced (multi-frame) CT file, with positions from its per-frame functional groups."""
    from .validate import resolve_spacing

    ds = _dcmread(h.path, pixels=True)
    try:
        per_frame = ds.PerFrameFunctionalGroupsSequence
        shared = ds.SharedFunctionalGroupsSequence[0]
        iop = _floats(shared.PlaneOrientationSequence[0].ImageOrientationPatient, 6)
        spacing_xy = _floats(shared.PixelMeasuresSequence[0].PixelSpacing, 2)
        positions = [_floats(f.PlanePositionSequence[0].ImagePositionPatient, 3) for f in per_frame]
        rescale = [(float(f.PixelValueTransformationSequence[0].RescaleSlope),
                    float(f.PixelValueTransformationSequence[0].RescaleIntercept))
                   if "PixelValueTransformationSequence" in f else (h.slope, h.intercept) for f in per_frame]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        raise UnsupportedInputError(f"{where} is a multi-frame DICOM without per-frame positions",
                                    hint="export the series as one file per slice") from None
    if iop is None or spacing_xy is None or any(p is None for p in positions):
        raise UnsupportedInputError(f"{where} is a multi-frame DICOM with incomplete geometry",
                                    hint="export the series as one file per slice")
    frames = [dataclasses.replace(h, position=p, orientation=iop, pixel_spacing=spacing_xy, frames=1,
                                  slope=s, intercept=i, instance_number=k)
              for k, (p, (s, i)) in enumerate(zip(positions, rescale))]
    stored = _pixels_pydicom(h)
    normal = _normal(iop)
    order = np.argsort([np.dot(p, normal) for p in positions], kind="stable")
    stack = _stack_geometry([frames[k] for k in order], where)
    kept = [f.instance_number for f in stack.headers]
    array = compact_dtype(np.stack([_rescale(stored[k], frames[k].slope, frames[k].intercept) for k in kept]))
    warnings += stack.warnings
    meta = _dicom_metadata([h], series_uid=h.series_uid, reader="pydicom")
    meta["frames"] = kept
    user = resolve_spacing(spacing, 3, source=where)
    return Volume(check_array(array, source=where), user or (stack.spacing_mm, *spacing_xy), stack.origin,
                  stack.direction, {"format": fmt, "path": path, "dicom": meta, "warnings": warnings,
                                    "spacing_known": True})


def read_dicom_folder(path: str | os.PathLike, *, series_uid: str | None = None, spacing=None,
                      force: bool = False) -> Volume:
    """Read one series of a DICOM folder tree (see the module docstring for the rules).

    Returns
    -------
    Volume
        3D (P, R, C) for a series of several slices, 2D (R, C) for a one-image series.

    Raises
    ------
    InputError
        Empty folder, no DICOM images, unknown ``series_uid``, a series that cannot form a volume.
    UnsupportedInputError
        A non-CT series without ``force``, a 4D series.
    """
    root = Path(path)
    headers, others, bad = _scan_folder(root)
    if not headers:
        raise _no_dicom_error(root, others, bad)
    series = _group(headers)
    chosen = choose_series(series, series_uid=series_uid, where=str(root))
    where = f"series {chosen.uid} in {root}" if len(series) > 1 else str(root)
    image_headers = [h for h in chosen.headers if h.has_pixels]
    if not image_headers:
        raise InputError(f"{where} has no pixel data (it is not an image)")
    return _volume_from_headers(image_headers, where=where, fmt="dicom-series", path=str(root),
                                series_uid=chosen.uid, force=force, spacing=spacing)


def _no_dicom_error(root: Path, others: tuple[str, ...], bad: tuple[tuple[str, str], ...]) -> InputError:
    if bad:
        path, why = bad[0]
        return InputError(f"no readable DICOM images in {root}: {len(bad)} DICOM file(s) could not be read "
                          f"(first: {why})")
    if not others:
        return InputError(f"{root} is an empty folder", hint="pass a folder that holds DICOM files, or an image file")
    names = [Path(o).name for o in others]
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return InputError(f"no DICOM images in {root} (it holds {len(names)} other file(s): {shown})",
                      hint="pass one of those files directly if it is an image")


def read_dicom_file(path: str | os.PathLike, *, spacing=None, force: bool = False) -> Volume:
    """Read one DICOM file: a 2D Volume (R, C) keeping its orientation, or 3D for a multi-frame file.

    Raises
    ------
    InputError
        Not DICOM, corrupt, no pixel data.
    UnsupportedInputError
        Non-CT modality without ``force``, colour, an undecodable compression.
    MissingDependencyError
        A compressed transfer syntax whose pylibjpeg plugin is not installed.
    """
    path = Path(path)
    header = read_header(path, force=True)
    if not header.has_pixels:
        kind = NON_IMAGE_SOP_CLASSES.get(header.sop_class_uid, "an object without pixel data")
        raise InputError(f"{path} has no pixel data: it is {kind}, not an image",
                         hint="pass a DICOM image file or a folder of CT images")
    return _volume_from_headers([header], where=str(path), fmt="dicom-file", path=str(path),
                                series_uid=header.series_uid, force=force, spacing=spacing)


# -- inspect ------------------------------------------------------------------------------------------------


def inspect_dicom_folder(path: str | os.PathLike, *, series_uid: str | None = None) -> dict[str, Any]:
    """File-level facts of a DICOM folder: files found, every series, the one chosen and the rule."""
    root = Path(path)
    headers, others, bad = _scan_folder(root)
    facts: dict[str, Any] = {
        "path": str(root),
        "format": "dicom-series",
        "dicom_files": len(headers),
        "other_files": len(others),
    }
    if bad:
        facts["unreadable_files"] = [f"{Path(p).name}: {why}" for p, why in bad[:10]]
    series = _group(headers)
    facts["series"] = [s.summary() for s in series]
    if series:
        try:
            chosen = choose_series(series, series_uid=series_uid, where=str(root), log_choice=False)
        except InputError as err:
            facts["chosen_series"] = None
            facts["choice"] = str(err)
        else:
            facts["chosen_series"] = chosen.uid
            facts["choice"] = "given with --series" if series_uid else CHOICE_RULE
    return facts


def inspect_dicom_file(path: str | os.PathLike) -> dict[str, Any]:
    """File-level facts of one DICOM file."""
    from pydicom.uid import UID

    h = read_header(path, force=True)
    return {
        "path": str(path),
        "format": "dicom-file",
        "modality": h.modality,
        "object": UID(h.sop_class_uid).name if h.sop_class_uid else "unknown",
        "series_uid": h.series_uid,
        "description": h.description,
        "size": f"{h.rows}×{h.cols}" + (f"×{h.frames} frames" if h.frames > 1 else ""),
        "orientation": orientation_name(h.orientation),
        "compression": UID(h.transfer_syntax).name if h.transfer_syntax else "unknown",
        "pixel_data": h.has_pixels,
    }
