"""File formats: names, extensions, and recognising a file from its first bytes.

A file is recognised by its extension and then checked against its content, so a text file named
``scan.nii.gz`` or a PNG named ``.dcm`` gets a message that says so rather than a library's stack trace.
Files without a known extension (DICOM files are often named ``IM0001`` or ``CT.1.2.3``) are
recognised from their content.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import InputError, UnsupportedInputError

__all__ = [
    "READ_SUFFIXES",
    "SUPPORTED_TEXT",
    "full_suffix",
    "sniff",
    "detect_format",
    "check_input_path",
]

log = logging.getLogger(__name__)

READ_SUFFIXES: dict[str, str] = {
    ".nii.gz": "nifti",
    ".nii": "nifti",
    ".nrrd": "nrrd",
    ".nhdr": "nrrd",
    ".mha": "metaimage",
    ".mhd": "metaimage",
    ".npy": "numpy",
    ".npz": "numpy",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".dcm": "dicom-file",
    ".dicom": "dicom-file",
    ".ima": "dicom-file",
}
"""Extension (lower case) -> format name of every file lungseg reads."""

SUPPORTED_TEXT = (
    "a DICOM folder or file, NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), "
    "NumPy (.npy, .npz), PNG, JPEG, TIFF or BMP"
)

_NOT_IMAGES = {
    ".txt": "a text file", ".md": "a text file", ".rst": "a text file", ".csv": "a table",
    ".tsv": "a table", ".json": "a JSON file", ".xml": "an XML file", ".html": "a web page",
    ".pdf": "a PDF document", ".py": "a Python file", ".zip": "a zip archive", ".gz": "a gzip archive",
    ".tar": "a tar archive", ".raw": "the raw data of a MetaImage (read its .mhd header instead)",
    ".zraw": "the raw data of a MetaImage (read its .mhd header instead)",
}

_DICOM_SUFFIXES = {"", ".dcm", ".dicom", ".ima"}

_NIFTI1_MAGIC = (b"n+1\x00", b"ni1\x00")


def full_suffix(path: str | os.PathLike) -> str:
    """The extension that names the format, lower case, ``.nii.gz`` counted as one.

    Examples
    --------
    >>> full_suffix("a/b/Scan.NII.GZ"), full_suffix("mask.png"), full_suffix("IM0001")
    ('.nii.gz', '.png', '')
    """
    name = Path(path).name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    return Path(name).suffix


def sniff(head: bytes) -> str | None:
    """The format a file's first bytes (at least 1 KB when the file has it) show, or None.

    Examples
    --------
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(8)), sniff(b"NRRD0004\\n"), sniff(b"hello")
    ('png', 'nrrd', None)
    """
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom-file"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head.startswith(b"NRRD"):
        return "nrrd"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if len(head) >= 348 and head[344:348] in _NIFTI1_MAGIC:
        return "nifti"
    if len(head) >= 8 and head[4:8] in (b"n+2\x00", b"ni2\x00"):
        return "nifti"
    text = head[:1024]
    if (b"ObjectType" in text or b"NDims" in text) and b"ElementType" in head:
        return "metaimage"
    return None


# Which sniffed content each format accepts (a .npz is a zip, a .nii.gz a gzip stream).
_CONTENT_OK = {
    "nifti": {"nifti", "gzip"},
    "nrrd": {"nrrd"},
    "metaimage": {"metaimage"},
    "numpy": {"numpy", "zip"},
    "png": {"png"},
    "jpeg": {"jpeg"},
    "tiff": {"tiff"},
    "bmp": {"bmp"},
}


def check_input_path(path: str | os.PathLike) -> Path:
    """Check that an input path exists and is not empty; return it as a Path.

    Raises
    ------
    InputError
        When the path does not exist, or is an empty file.
    """
    path = Path(path).expanduser()
    if not path.exists():
        parent = path.parent
        hint = "check the spelling" if parent.is_dir() else f"the folder {parent} does not exist either"
        raise InputError(f"{path} does not exist", hint=hint)
    if path.is_file() and path.stat().st_size == 0:
        raise InputError(f"{path} is an empty file (0 bytes)", hint="the download or copy may have failed")
    return path


def _read_head(path: Path, size: int = 1024) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as err:
        raise InputError(f"cannot open {path}: {err.strerror or err}") from None


def detect_format(path: str | os.PathLike) -> str:
    """The format of an input: ``"dicom-folder"``, ``"dicom-file"``, ``"nifti"``, ``"nrrd"``, ...

    The extension names the format and the first bytes must agree with it; files whose extension
    says nothing (``IM0001``, ``CT.1.2.3``) are recognised from their content.

    Raises
    ------
    InputError
        Missing or empty path, or content that does not match the extension (a corrupt or misnamed file).
    UnsupportedInputError
        A file lungseg does not read (a text file, a table, an unknown format).
    """
    path = check_input_path(path)
    if path.is_dir():
        return "dicom-folder"
    suffix = full_suffix(path)
    head = _read_head(path)
    content = sniff(head)
    by_suffix = READ_SUFFIXES.get(suffix)
    if by_suffix is None and content in _CONTENT_OK and content not in ("zip", "gzip"):
        log.info("%s has no known extension; its content says %s", path.name, content)
        return content
    if by_suffix == "dicom-file" or (by_suffix is None and suffix not in _NOT_IMAGES):
        if content == "dicom-file" or (content is None and looks_like_dicom_without_preamble(path, suffix)):
            return "dicom-file"
        if by_suffix == "dicom-file":
            what = f"a {content.upper()} image" if content else "not DICOM"
            raise InputError(f"{path} is named like a DICOM file but its content is {what}",
                             hint="it may be corrupt or misnamed")
    if by_suffix is None:
        kind = _NOT_IMAGES.get(suffix, f"a file of unknown type ({suffix})" if suffix else "a file of unknown type")
        raise UnsupportedInputError(f"{path.name} is {kind}, not an image lungseg reads",
                                    hint=f"lungseg reads {SUPPORTED_TEXT}")
    if content not in _CONTENT_OK[by_suffix]:
        seen = f"a {content.upper()} file" if content else "not recognisable"
        raise InputError(
            f"{path} does not look like a {by_suffix.upper()} file (its content is {seen})",
            hint="it may be corrupt, truncated or misnamed",
        )
    return by_suffix


def looks_like_dicom_without_preamble(path: Path, suffix: str) -> bool:
    """True for an old-style DICOM file without the 128-byte preamble (only tried for ``.dcm`` or no extension)."""
    if suffix not in _DICOM_SUFFIXES:
        return False
    head = _read_head(path, 8)
    # A raw DICOM data set starts with a group 0x0002 or 0x0008 element (little endian).
    return len(head) == 8 and head[:2] in (b"\x02\x00", b"\x08\x00")
