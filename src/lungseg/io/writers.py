"""Writers: label masks and images on exactly the grid of the image they came from.

Every write is atomic: the data goes to a hidden temporary file in the target folder (keeping the
full extension, e.g. ``.tmp-1a2b3c4d-mask.nii.gz``) which is renamed over the target only once it is
complete; on any error the temporary file is removed, so an output is written whole or not at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import numpy as np

from ..errors import OutputError, SettingsError
from ..volume import Volume
from .formats import full_suffix

__all__ = ["check_output_path", "check_writable", "write_labels", "write_image", "atomic_output", "write_atomic", "LABEL_SUFFIXES", "IMAGE_SUFFIXES"]

log = logging.getLogger(__name__)

LABEL_SUFFIXES = {
    ".nii.gz": "nifti", ".nii": "nifti", ".nrrd": "nrrd", ".mha": "metaimage", ".mhd": "metaimage",
    ".npy": "npy", ".npz": "npz", ".png": "png", ".tif": "tiff", ".tiff": "tiff", ".bmp": "bmp",
}
"""Extensions a label mask can be written to (lossless formats only)."""
IMAGE_SUFFIXES = {**LABEL_SUFFIXES, ".jpg": "jpeg", ".jpeg": "jpeg"}
"""Extensions an image (e.g. the masked CT) can be written to."""
_OTHER_SUFFIXES = {"report": {".json": "json"}, "qc": {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}}
_2D_FORMATS = ("png", "tiff", "bmp", "jpeg")
_ITK_FORMATS = ("nifti", "nrrd", "metaimage")


def _suffixes_for(kind: str) -> dict[str, str]:
    if kind in _OTHER_SUFFIXES:
        return _OTHER_SUFFIXES[kind]
    return IMAGE_SUFFIXES if kind == "masked" else LABEL_SUFFIXES


def check_output_path(path: str | os.PathLike, *, inputs=(), kind: str = "mask", seg: bool = False) -> Path:
    """Check that an output can be written at ``path`` before any work is done; return it as a Path.

    Parameters
    ----------
    path : path
        The output file. Its extension picks the format.
    inputs : sequence of paths
        The inputs of the run: the output may not be one of them, nor lie inside an input folder.
    kind : {"mask", "roi", "masked", "report", "qc"}
        What is written there: label images take lossless formats; the masked image also JPEG;
        reports ``.json``; QC pictures ``.png``/``.jpg``.
    seg : bool
        The mask is a DICOM Segmentation object: ``.dcm`` is accepted.

    Raises
    ------
    OutputError
        When the folder does not exist, the path is a folder, the path is (or is inside) an input,
        or the extension is not one ``kind`` can be written to (the message lists those).

    Examples
    --------
    >>> check_output_path("mask.nii.gz").name
    'mask.nii.gz'
    """
    path = Path(path).expanduser()
    suffix = full_suffix(path)
    allowed = _suffixes_for(kind)
    if not (seg and suffix == ".dcm") and suffix not in allowed:
        if suffix == ".dcm":
            raise OutputError(
                f"lungseg does not write DICOM images ({path.name})",
                hint="write the mask as .nii.gz or .nrrd, or as a DICOM Segmentation with --format seg",
            )
        if suffix in (".jpg", ".jpeg") and kind in ("mask", "roi"):
            raise OutputError(f"cannot write a {kind} as JPEG ({path.name}): JPEG is lossy and would change the labels",
                              hint="use .png (or .nii.gz, .nrrd)")
        listed = " ".join(sorted(allowed, key=list(allowed).index))
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise OutputError(f"cannot write the {kind} to {path.name}: {what} is not a supported format",
                          hint=f"use one of {listed}")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"the output folder {folder} does not exist", hint="create it first")
    if path.is_dir():
        raise OutputError(f"the output {path} is a folder", hint="give a file name with an extension")
    targets = [path] + ([path.with_suffix(".raw")] if suffix == ".mhd" else [])
    for inp in inputs:
        inp = Path(inp).expanduser()
        if not inp.exists():
            continue
        for target in targets:
            if target.exists() and target.resolve() == inp.resolve():
                raise OutputError(f"the output {target} would overwrite the input", hint="choose another file name")
            if inp.is_dir() and target.resolve().is_relative_to(inp.resolve()):
                raise OutputError(
                    f"the output {target} is inside the input folder {inp}",
                    hint="write outside the input folder, so it stays unchanged and is read the same next time",
                )
    return path


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same full extension); rename it to ``path`` on success.

    On any error the temporary file is removed and ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> with atomic_output(target) as tmp:
    ...     _ = tmp.write_text("{}")
    >>> Path(target).read_text()
    '{}'
    """
    path = Path(path)
    tmp = path.with_name(f".tmp-{secrets.token_hex(4)}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: str | os.PathLike, write: Callable[[Any], None], *, mode: str = "w") -> Path:
    """Write a file whole or not at all: ``write(fileobj)`` fills a temporary file beside ``path``
    (see :func:`atomic_output`), which then replaces ``path``.

    Raises
    ------
    OutputError
        When the folder does not exist, ``path`` is a folder, or the file cannot be created there.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "r.json")
    >>> write_atomic(target, lambda fh: fh.write("{}")).read_text()
    '{}'
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {path}: the folder {path.parent} does not exist", hint="create it first")
    if os.path.isdir(path):  # (os.path: False, not an error, for a name too long to exist)
        raise OutputError(f"cannot write {path}: it is a folder", hint="give a file name")
    try:
        with atomic_output(path) as tmp, open(tmp, mode.replace("w", "x"), encoding=None if "b" in mode else "utf-8") as fh:
            write(fh)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}", hint="choose another file name") from None
    return path


def _write_itk(array: np.ndarray, reference: Volume, path: Path, fmt: str) -> None:
    import SimpleITK as sitk

    from .itk import itk_message, volume_to_sitk

    image = volume_to_sitk(array, reference)
    if fmt == "metaimage" and full_suffix(path) == ".mhd":
        _write_mhd(image, path)
        return
    with atomic_output(path) as tmp:
        try:
            sitk.WriteImage(image, str(tmp), useCompression=fmt != "nifti" or full_suffix(path) == ".nii.gz")
        except RuntimeError as err:
            raise OutputError(f"cannot write {path}: {itk_message(err)}") from None


def _write_mhd(image, path: Path) -> None:
    """A .mhd header and its .raw data, both atomically, the header pointing at the final .raw name."""
    import SimpleITK as sitk

    from .itk import itk_message

    raw = path.with_suffix(".raw")
    with atomic_output(raw) as tmp_raw:
        tmp_header = tmp_raw.with_suffix(".mhd")
        try:
            sitk.WriteImage(image, str(tmp_header), useCompression=False)
            text = tmp_header.read_text()
            lines = [f"ElementDataFile = {raw.name}" if ln.startswith("ElementDataFile") else ln
                     for ln in text.splitlines()]
            with atomic_output(path) as tmp_final:
                tmp_final.write_text("\n".join(lines) + "\n")
        except RuntimeError as err:
            raise OutputError(f"cannot write {path}: {itk_message(err)}") from None
        finally:
            if tmp_header.exists():
                tmp_header.unlink()


def _write_numpy(array: np.ndarray, reference: Volume, path: Path, fmt: str, key: str) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        if fmt == "npy":
            np.save(fh, array)
        else:
            np.savez_compressed(fh, **{key: array}, spacing=np.asarray(reference.spacing),
                                origin=np.asarray(reference.origin), direction=np.asarray(reference.direction))


def _plane_for_2d(array: np.ndarray, path: Path, fmt: str) -> np.ndarray:
    if array.ndim == 3 and array.shape[0] == 1:
        return array[0]
    if array.ndim == 3 and fmt != "tiff":
        raise OutputError(f"{path.name}: a {fmt.upper()} file holds one 2D image but this is a volume of "
                          f"{array.shape[0]} slices", hint="write it as .nii.gz, .nrrd, .mha or .tif")
    return array


def _check_2d(array: np.ndarray, path: Path, fmt: str) -> np.ndarray:
    """The 2D plane (or TIFF stack) to write; OutputError when the format cannot hold it unchanged."""
    from .images2d import WRITABLE_2D_DTYPES

    array = _plane_for_2d(array, path, fmt)
    if str(array.dtype) not in WRITABLE_2D_DTYPES[fmt]:
        lo, hi = (array.min(), array.max()) if array.size else (0, 0)
        raise OutputError(
            f"{path.name}: a {fmt.upper()} file stores {' or '.join(WRITABLE_2D_DTYPES[fmt])} pixels, "
            f"but this image is {array.dtype} (values {lo:g} to {hi:g}); converting would change its values",
            hint="write it as .tif (keeps int16 and float32), .nii.gz or .nrrd",
        )
    return array


def check_writable(volume: Volume, path: str | os.PathLike, *, kind: str = "mask") -> Path:
    """Check, without writing, that ``volume`` can be written to ``path`` as ``kind`` ("mask", "roi", "masked").

    :func:`check_output_path` runs before the input is read; this runs once the image is known, so a
    command can refuse an impossible output (an int16 CT as PNG, a volume as PNG) before it writes any.

    Raises
    ------
    OutputError
        As :func:`write_labels` / :func:`write_image` would.
    """
    path = check_output_path(path, kind=kind)
    fmt = IMAGE_SUFFIXES[full_suffix(path)]
    if fmt in _2D_FORMATS:
        array = np.asarray(volume.array)
        if kind != "masked":  # labels are written as uint8
            array = np.zeros(volume.shape[:1] + (1, 1), np.uint8) if volume.ndim == 3 else np.zeros((1, 1), np.uint8)
        elif array.dtype == bool:
            array = array.astype(np.uint8)
        _check_2d(array, path, fmt)
    return path


def _write_2d(array: np.ndarray, path: Path, fmt: str) -> None:
    from .images2d import write_image2d

    array = _check_2d(array, path, fmt)
    if fmt == "jpeg":
        log.info("%s: JPEG is lossy; the written values will differ slightly", path.name)
    with atomic_output(path) as tmp:
        try:
            write_image2d(array, tmp, fmt)
        except (OSError, ValueError, RuntimeError) as err:
            raise OutputError(f"cannot write {path}: {err}") from None


def _labels_uint8(labels: np.ndarray, reference: Volume) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != reference.shape:
        raise OutputError(f"the labels have shape {labels.shape} but the reference grid is {reference.shape}",
                          hint="write labels computed on this image")
    if labels.dtype == bool:
        return labels.astype(np.uint8)
    if labels.dtype.kind not in "iuf" or (labels.size and (labels.min() < 0 or labels.max() > 255)):
        raise OutputError(f"labels must be integers from 0 to 255, got {labels.dtype} values")
    if labels.dtype.kind == "f" and not np.array_equal(labels, np.rint(labels)):
        raise OutputError("labels must be whole numbers, got fractional values")
    return labels.astype(np.uint8)


def write_labels(labels: np.ndarray, reference: Volume, path: str | os.PathLike, *, png_values: str = "binary") -> Path:
    """Write a label mask on exactly ``reference``'s grid, in the format of ``path``'s extension.

    Parameters
    ----------
    labels : ndarray, same shape as ``reference.array``
        0 outside, 1 right lung, 2 left lung (any values 0-255 are kept in 3D formats).
    reference : Volume
        The image the labels belong to: its spacing, origin and direction are written with them.
    path : path
        ``.nii.gz .nii .nrrd .mha .mhd .npy .npz .png .tif .tiff .bmp``. 3D formats, ``.npy`` and
        ``.npz`` hold the raw labels (a 2D image becomes a one-slice 3D image with its full 3×3
        direction); ``.npz`` also stores ``spacing``, ``origin`` and ``direction``.
    png_values : {"binary", "labels"}
        For 2D picture formats (.png .tif .bmp): ``"binary"`` writes 0/255 for the whole lung
        (label > 0), ``"labels"`` the raw 0/1/2.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    OutputError
        Unknown or lossy extension, missing folder, shape mismatch, a volume to a one-image format.
    SettingsError
        Unknown ``png_values``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> ct = Volume(np.zeros((2, 16, 16), np.int16), spacing=(2.5, 0.7, 0.7))
    >>> labels = np.zeros(ct.shape, np.uint8); labels[:, 4:8, 4:8] = 1
    >>> out = write_labels(labels, ct, os.path.join(tempfile.mkdtemp(), "mask.nrrd"))
    >>> out.name
    'mask.nrrd'
    """
    if png_values not in ("binary", "labels"):
        raise SettingsError(f"png_values must be 'binary' or 'labels', got {png_values!r}")
    path = check_output_path(path, kind="mask")
    fmt = LABEL_SUFFIXES[full_suffix(path)]
    array = _labels_uint8(labels, reference)
    if fmt in _ITK_FORMATS:
        _write_itk(array, reference, path, fmt)
    elif fmt in ("npy", "npz"):
        _write_numpy(array, reference, path, fmt, key="labels")
    else:
        if png_values == "binary":
            array = np.where(array > 0, np.uint8(255), np.uint8(0))
        _write_2d(array, path, fmt)
    log.info("wrote %s", path)
    return path


def write_image(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a Volume (e.g. the masked CT) in the format of ``path``'s extension, keeping its dtype.

    Parameters
    ----------
    volume : Volume
    path : path
        3D formats (.nii.gz .nii .nrrd .mha .mhd) take any numeric type; ``.npy``/``.npz`` too
        (``.npz`` stores the array as ``image`` with the geometry). Pictures keep the values only
        where the format can: PNG uint8/uint16, BMP and JPEG uint8, TIFF uint8/uint16/int16/float32.
        DICOM output is refused (use a DICOM SEG for masks).

    Returns
    -------
    Path

    Raises
    ------
    OutputError
        Unknown extension or ``.dcm``, missing folder, a pixel type the format cannot hold, a volume
        to a one-image format.
    """
    path = check_output_path(path, kind="masked")
    fmt = IMAGE_SUFFIXES[full_suffix(path)]
    array = np.asarray(volume.array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if fmt in _ITK_FORMATS:
        _write_itk(array, volume, path, fmt)
    elif fmt in ("npy", "npz"):
        _write_numpy(array, volume, path, fmt, key="image")
    else:
        _write_2d(array, path, fmt)
    log.info("wrote %s", path)
    return path
