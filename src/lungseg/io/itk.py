"""NIfTI, NRRD and MetaImage through SimpleITK (which converts NIfTI's RAS to ITK's LPS)."""

from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError, UnsupportedInputError
from ..volume import Volume
from .formats import full_suffix
from .validate import check_array, grey_from_channels, resolve_spacing

__all__ = ["read_itk", "inspect_itk", "volume_to_sitk", "itk_message"]

log = logging.getLogger(__name__)


def itk_message(err: Exception) -> str:
    """The useful line of an ITK exception (its text spans several lines of C++ file names)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for ln in reversed(lines):
        text = ln.split("):", 1)[-1].strip() if "):" in ln else ln
        if text and not text.startswith(("itk::", "/")):
            return text
    return lines[-1] if lines else type(err).__name__


def _read_image(path: Path, fmt: str) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise InputError(f"cannot read {path} as {fmt.upper()}: {itk_message(err)}",
                         hint="the file may be truncated or corrupt") from None


def _nifti1_expected_bytes(header: bytes) -> int | None:
    """vox_offset + voxel bytes of a NIfTI-1 header, or None when it is not a NIfTI-1 header."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            bitpix = struct.unpack(endian + "h", header[72:74])[0]
            vox_offset = struct.unpack(endian + "f", header[108:112])[0]
            if not 1 <= dims[0] <= 7 or bitpix <= 0:
                return None
            return int(vox_offset) + int(np.prod([max(d, 1) for d in dims[1:dims[0] + 1]], dtype=np.int64)) * bitpix // 8
    return None


def check_nifti_complete(path: Path) -> None:
    """Raise InputError when a NIfTI-1 file holds fewer bytes than its header announces.

    ITK reads a truncated ``.nii.gz`` without complaint (the missing voxels come back as zeros), so
    the gzip trailer's uncompressed size is compared with the header's; only on a mismatch is the
    stream decompressed to be sure (a file of several gzip members has a partial trailer).
    """
    compressed = full_suffix(path) == ".nii.gz"
    try:
        if compressed:
            with gzip.open(path, "rb") as fh:
                expected = _nifti1_expected_bytes(fh.read(348))
            with open(path, "rb") as fh:
                fh.seek(-4, os.SEEK_END)
                trailer = struct.unpack("<I", fh.read(4))[0]
            if expected is None or trailer == expected % 2**32:
                return
            with gzip.open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass
            return
        with open(path, "rb") as fh:
            expected = _nifti1_expected_bytes(fh.read(348))
        if expected is not None and path.stat().st_size < expected:
            raise EOFError(f"{path.stat().st_size} bytes where the header announces {expected}")
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as err:
        raise InputError(f"cannot read {path} as NIFTI: the file is incomplete ({err})",
                         hint="the file may be truncated or corrupt; copy it again") from None


def read_itk(path: str | os.PathLike, fmt: str, *, spacing=None) -> Volume:
    """Read a NIfTI/NRRD/MetaImage file into a Volume (geometry in LPS).

    A 4D image whose 4th axis has length 1 is read as 3D; longer 4D images and vector (colour)
    images that are not grey are refused.

    Raises
    ------
    InputError
        Unreadable or corrupt file, NaN values, an image of a few pixels.
    UnsupportedInputError
        4D or colour images.
    """
    path = Path(path)
    if fmt == "nifti":
        check_nifti_complete(path)
    image = _read_image(path, fmt)
    size = image.GetSize()
    if image.GetDimension() == 4:
        if size[3] != 1:
            raise UnsupportedInputError(
                f"{path} is 4D ({' × '.join(map(str, size))}); lungseg segments one 3D volume",
                hint="extract one time point or phase (e.g. with SimpleITK or nibabel) and pass that",
            )
        image = sitk.Extract(image, (*size[:3], 0), (0, 0, 0, 0))
    if image.GetDimension() not in (2, 3):
        raise UnsupportedInputError(f"{path} is {image.GetDimension()}D; lungseg reads 2D and 3D images")
    array = sitk.GetArrayFromImage(image)
    if image.GetNumberOfComponentsPerPixel() > 1:
        array = grey_from_channels(array, source=str(path))
    array = check_array(array, source=str(path))
    ndim = array.ndim
    file_spacing = tuple(image.GetSpacing())[::-1]
    user = resolve_spacing(spacing, ndim, source=str(path))
    if user is not None and not np.allclose(user, file_spacing):
        log.warning("%s: using the given spacing %s mm instead of the file's %s mm", path, user, file_spacing)
    direction = np.asarray(image.GetDirection(), float).reshape(ndim, ndim)
    origin = tuple(image.GetOrigin())
    metadata: dict[str, Any] = {"format": fmt, "path": str(path), "spacing_known": True, "warnings": [],
                                "source_dtype": str(array.dtype)}
    return Volume(array, user or file_spacing, origin, direction, metadata)


def inspect_itk(path: str | os.PathLike, fmt: str) -> dict[str, Any]:
    """Header facts (size, pixel type, dimension) without reading the voxels."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise InputError(f"cannot read {path} as {fmt.upper()}: {itk_message(err)}",
                         hint="the file may be truncated or corrupt") from None
    return {
        "path": str(path),
        "format": fmt,
        "stored_size": " × ".join(str(s) for s in reader.GetSize()) + " voxels (x, y, z order)",
        "pixel_type": sitk.GetPixelIDValueAsString(reader.GetPixelID()),
    }


def volume_to_sitk(array: np.ndarray, volume: Volume, *, slice_spacing_mm: float | None = None) -> sitk.Image:
    """A SimpleITK image of ``array`` on ``volume``'s grid; a 2D volume becomes a one-slice 3D image.

    The 3D image keeps the 2D volume's full 3×3 direction and origin, so a mask written for a
    coronal DICOM slice sits where the slice is in the world.
    """
    if volume.is_2d:
        image = sitk.GetImageFromArray(array[np.newaxis])
        thickness = slice_spacing_mm or volume.metadata.get("slice_thickness_mm") or 1.0
        image.SetSpacing((volume.spacing[1], volume.spacing[0], float(thickness)))
    else:
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(tuple(reversed(volume.spacing)))
    image.SetOrigin(tuple(volume.origin))
    image.SetDirection(tuple(np.asarray(volume.direction, float).ravel()))
    return image
