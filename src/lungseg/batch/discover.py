"""Finding the cases of a batch run: every image file and every DICOM series under a folder.

A case is one thing ``lungseg.read`` reads into one image: an image file (NIfTI, NRRD, MetaImage,
NumPy, PNG/JPEG/TIFF/BMP) or one DICOM series (several may share a folder). Each case gets an id that
stays the same from run to run (its path relative to the input root, plus ``#<SeriesInstanceUID>`` for
DICOM) and a place for its outputs that mirrors its relative path under the output root.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path

from ..errors import InputError

__all__ = ["Case", "Discovery", "discover_cases", "IMAGE_SUFFIXES", "IMAGE_2D_SUFFIXES"]

log = logging.getLogger(__name__)

IMAGE_2D_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""2D picture files: their masks are written as PNG."""

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".npy", ".npz") + IMAGE_2D_SUFFIXES
"""Image files that are one case each (longest suffixes first where they overlap)."""

COMPANION_SUFFIXES = (".raw", ".zraw", ".raw.gz")
"""Pixel-data files of a MetaImage/NRRD header: part of another case, neither a case nor a stray file."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One image to segment.

    Attributes
    ----------
    id : str
        Stable identifier: the POSIX path relative to the input root; for DICOM the folder holding the
        series plus ``#`` and its SeriesInstanceUID (``"patient1/ct#1.2.840..."``).
    input : Path
        The file, or the folder holding the DICOM series.
    kind : str
        ``"dicom"``, ``"image2d"`` (PNG/JPEG/TIFF/BMP) or ``"file"`` (NIfTI, NRRD, MetaImage, NumPy).
    files : tuple of Path
        Every file the case is read from (the fingerprint that makes a run resumable).
    out_base : str
        POSIX path, relative to the output root, that the output suffixes are appended to
        (``"patient1/scan"`` -> ``patient1/scan.mask.nii.gz``).
    series_uid : str or None
        The DICOM SeriesInstanceUID, None for other files.
    """

    id: str
    input: Path
    kind: str
    files: tuple[Path, ...]
    out_base: str
    series_uid: str | None = None

    def fingerprint(self) -> str:
        """A short hash of the input files' names, sizes and modification times (ns), and the series UID.

        It changes when any input file is replaced, touched or added to the series.
        """
        facts = []
        for f in self.files:
            st = f.stat()
            facts.append([f.name, st.st_size, st.st_mtime_ns])
        text = json.dumps({"id": self.id, "series_uid": self.series_uid, "files": facts})
        return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclasses.dataclass
class Discovery:
    """What ``discover_cases`` found.

    Attributes
    ----------
    cases : list of Case
        Sorted by id.
    non_image_files : int
        Files that are neither an image file nor part of a DICOM image series (skipped).
    skipped_series : list of (str, str)
        DICOM series left out on purpose (case id, reason), as ``lungseg.io.find_dicom_series`` decides:
        localizers, objects without pixels, non-CT series beside a CT series.
    """

    cases: list[Case]
    non_image_files: int = 0
    skipped_series: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def _image_suffix(name: str) -> str | None:
    low = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if low.endswith(suffix) and len(low) > len(suffix):
            return suffix
    return None


def _walk(root: Path, exclude: Path | None) -> list[Path]:
    """Every regular file below ``root`` in a stable order, leaving out ``exclude`` and hidden entries."""
    found = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (exclude is None or here / d != exclude))
        found.extend(here / f for f in sorted(files) if not f.startswith("."))
    return found


def _dicom_series(root: Path, exclude: Path | None) -> list:
    """Every DICOM series under ``root`` (``lungseg.io.find_dicom_series``), skipped ones included,
    leaving out those inside ``exclude``."""
    from ..io import find_dicom_series

    found = find_dicom_series(root, include_skipped=True)
    if exclude is None:
        return found
    return [s for s in found if not (s.folder == exclude or exclude in s.folder.parents)]


def _rel(path: Path, root: Path) -> str:
    rel = path.relative_to(root).as_posix()
    return "" if rel == "." else rel


def discover_cases(
    input_root: str | os.PathLike,
    *,
    pattern: str | None = None,
    exclude: str | os.PathLike | None = None,
) -> Discovery:
    """Find every case under ``input_root``.

    Parameters
    ----------
    input_root : path
        The folder to search (recursively). Hidden files and folders are ignored.
    pattern : str, optional
        A glob (``fnmatch`` syntax, ``*`` also matches ``/``) on the case's path relative to
        ``input_root`` (the file, or the DICOM series' folder); only matching cases are kept.
    exclude : path, optional
        A folder not to search (the output root when it lies inside the input root).

    Returns
    -------
    Discovery
        The cases sorted by id, the count of files that are not images, and the series left out.

    Raises
    ------
    InputError
        When ``input_root`` is not a folder.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> root = Path(tempfile.mkdtemp())
    >>> np.save(root / "slice.npy", np.zeros((64, 64), np.int16))
    >>> _ = (root / "notes.txt").write_text("hello")
    >>> found = discover_cases(root)
    >>> [c.id for c in found.cases], found.non_image_files
    (['slice.npy'], 1)
    """
    root = Path(input_root)
    if not root.is_dir():
        raise InputError(f"the batch input {root} is not a folder", hint="give the folder that holds the scans")
    root = root.resolve()
    exclude_path = Path(exclude).resolve() if exclude is not None else None

    def wanted(rel: str) -> bool:
        return pattern is None or fnmatch.fnmatch(rel, pattern)

    cases: list[Case] = []
    candidates: list[Path] = []  # files that may be DICOM (or nothing lungseg reads)
    for path in _walk(root, exclude_path):
        suffix = _image_suffix(path.name)
        if suffix is None:
            if path.name.lower().endswith(COMPANION_SUFFIXES):
                continue
            if pattern is None or any(wanted(_rel(f, root)) for f in path.parents if f == root or root in f.parents):
                candidates.append(path)
            continue
        rel = _rel(path, root)
        if not wanted(rel):
            continue
        kind = "image2d" if suffix in IMAGE_2D_SUFFIXES else "file"
        cases.append(Case(id=rel, input=path, kind=kind, files=(path,), out_base=rel[: -len(suffix)]))

    skipped = []
    in_series: set[str] = set()
    for series in _dicom_series(root, exclude_path):
        in_series.update(str(f) for f in series.files)
        rel = _rel(series.folder, root)
        case_id = f"{rel}#{series.uid}"
        if not wanted(rel):
            continue
        if series.skip_reason is not None:
            skipped.append((case_id, series.skip_reason))
            continue
        out_base = f"{rel}/{series.uid}" if rel else series.uid
        cases.append(Case(id=case_id, input=series.folder, kind="dicom", files=tuple(series.files),
                          out_base=out_base, series_uid=series.uid))
    strays = sum(1 for path in candidates if str(path) not in in_series)
    cases = _unique_out_bases(sorted(cases, key=lambda c: c.id))
    for case_id, reason in skipped:
        log.info("left out %s: %s", case_id, reason)
    return Discovery(cases=cases, non_image_files=strays, skipped_series=skipped)


def _unique_out_bases(cases: list[Case]) -> list[Case]:
    """Give cases whose outputs would land on the same name (``a.nii.gz`` and ``a.nrrd``) their full file name."""
    counts = Counter(c.out_base for c in cases)
    return [
        dataclasses.replace(c, out_base=c.id) if counts[c.out_base] > 1 and c.kind != "dicom" else c
        for c in cases
    ]
