"""2D picture formats through Pillow: PNG, JPEG, TIFF, BMP.

Rules
-----
* Greyscale 8-bit (uint8), 16-bit (uint16, or int16 for signed TIFF), 32-bit integer and float
  images keep their values and dtype; ``metadata["bit_depth"]`` and ``["source_dtype"]`` say which.
* RGB/RGBA/palette images must hold a grey picture (channels equal within a small tolerance, for
  JPEG artefacts); a real colour picture is refused. Grey+alpha keeps the grey.
* A multi-page TIFF whose pages share size and type is read as a 3D volume (plane = page).
* The pixel size is never taken from the file's DPI (that is print resolution, not anatomy): it
  comes from the ``spacing=`` option, else it is unknown (``metadata["spacing_known"] = False``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UnsupportedInputError
from ..volume import Volume
from .validate import check_array, grey_from_channels, resolve_spacing

__all__ = ["read_image2d", "inspect_image2d", "write_image2d"]

_BIT_DEPTH = {"1": 1, "L": 8, "P": 8, "RGB": 8, "RGBA": 8, "LA": 8, "I;16": 16, "I;16B": 16, "I;16L": 16,
              "I;16S": 16, "I": 32, "F": 32}
_TIFF_BITS_PER_SAMPLE = 258
_TIFF_SAMPLE_FORMAT = 339
_TIFF_SIGNED = 2


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(f"{path} is not a readable image", hint="it may be corrupt or misnamed") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"cannot read {path}: {err}", hint="the file may be truncated or corrupt") from None
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        image.close()
        raise InputError(f"cannot read {path}: {err}", hint="the file may be truncated or corrupt") from None
    return image


def _frame_array(frame, source: str) -> tuple[np.ndarray, int]:
    """(grey array, bit depth) of one Pillow frame."""
    mode = frame.mode
    if mode not in _BIT_DEPTH:
        raise UnsupportedInputError(f"{source} has pixel mode {mode}, which lungseg does not read",
                                    hint="save it as greyscale 8- or 16-bit")
    bits = _BIT_DEPTH[mode]
    if mode == "P":
        frame = frame.convert("RGBA")
        mode = "RGBA"
    if mode == "1":
        return np.asarray(frame, dtype=np.uint8) * np.uint8(255), 1
    array = np.asarray(frame)
    if mode in ("RGB", "RGBA"):
        return grey_from_channels(array, source=source), bits
    if mode == "LA":
        return array[..., 0].copy(), bits
    if mode == "I":
        tags = getattr(frame, "tag_v2", None)
        if tags is not None and tags.get(_TIFF_BITS_PER_SAMPLE) in (16, (16,)):
            signed = tags.get(_TIFF_SAMPLE_FORMAT) in (_TIFF_SIGNED, (_TIFF_SIGNED,))
            return array.astype(np.int16 if signed else np.uint16), 16
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("="))
    return array, bits


def read_image2d(path: str | os.PathLike, fmt: str, *, spacing=None) -> Volume:
    """Read a PNG/JPEG/TIFF/BMP file into a 2D Volume (a 3D one for a multi-page TIFF).

    Raises
    ------
    InputError
        Unreadable or corrupt file, a few pixels, pages of different sizes.
    UnsupportedInputError
        Colour pictures, unknown pixel modes.
    """
    from PIL import ImageSequence

    path = Path(path)
    image = _open(path)
    n_frames = getattr(image, "n_frames", 1)
    try:
        if n_frames > 1 and fmt == "tiff":
            pages = [_frame_array(f, f"page {i} of {path}") for i, f in enumerate(ImageSequence.Iterator(image))]
        else:
            pages = [_frame_array(image, str(path))]
    except (OSError, ValueError, SyntaxError) as err:
        raise InputError(f"cannot read {path}: {err}", hint="the file may be truncated or corrupt") from None
    finally:
        image.close()
    if len({(a.shape, a.dtype) for a, _ in pages}) > 1:
        raise InputError(f"the pages of {path} differ in size or type and cannot form one volume",
                         hint="save one page per file")
    array = check_array(pages[0][0] if len(pages) == 1 else np.stack([a for a, _ in pages]), source=str(path))
    user = resolve_spacing(spacing, array.ndim, source=str(path))
    metadata: dict[str, Any] = {
        "format": fmt,
        "path": str(path),
        "spacing_known": user is not None,
        "bit_depth": pages[0][1],
        "source_dtype": str(array.dtype),
        "warnings": [],
    }
    if len(pages) > 1:
        metadata["pages"] = len(pages)
    return Volume(array, user or (1.0,) * array.ndim, metadata=metadata)


def inspect_image2d(path: str | os.PathLike, fmt: str) -> dict[str, Any]:
    """Facts of a picture file from its header: size, mode, pages."""
    path = Path(path)
    image = _open(path)
    try:
        return {"path": str(path), "format": fmt, "stored_size": f"{image.width}×{image.height} pixels",
                "mode": image.mode, "pages": getattr(image, "n_frames", 1)}
    finally:
        image.close()


def write_image2d(array: np.ndarray, path: Path, fmt: str) -> None:
    """Write a 2D array (or a 3D one as a multi-page TIFF) losslessly where the format allows.

    uint8 goes to every format; uint16 to PNG and TIFF; other types (int16 HU, float) only to TIFF,
    which SimpleITK writes keeping the type. The caller checks the type first (``check_2d_dtype``).
    """
    if fmt == "tiff":
        import SimpleITK as sitk

        sitk.WriteImage(sitk.GetImageFromArray(array), str(path), useCompression=array.dtype == np.uint8)
        return
    from PIL import Image

    pil_format = {"png": "PNG", "bmp": "BMP", "jpeg": "JPEG"}[fmt]
    options = {"quality": 95} if fmt == "jpeg" else {}
    Image.fromarray(np.ascontiguousarray(array)).save(path, format=pil_format, **options)


WRITABLE_2D_DTYPES = {
    "png": ("uint8", "uint16"),
    "bmp": ("uint8",),
    "jpeg": ("uint8",),
    "tiff": ("uint8", "uint16", "int16", "float32"),
}
"""Pixel types each 2D format stores without change."""
