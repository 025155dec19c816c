"""``read`` and ``inspect``: one entry point for every input format."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ..volume import Volume
from .formats import detect_format

__all__ = ["read", "inspect"]

log = logging.getLogger(__name__)

_ITK_FORMATS = ("nifti", "nrrd", "metaimage")


def read(path: str | os.PathLike, *, series_uid: str | None = None, spacing=None, force: bool = False) -> Volume:
    """Read a chest CT image (or slice) from any supported file or folder.

    Parameters
    ----------
    path : path
        A DICOM folder (searched recursively) or file, NIfTI (.nii, .nii.gz), NRRD, MetaImage
        (.mha, .mhd), NumPy (.npy, .npz), or a PNG/JPEG/TIFF/BMP picture.
    series_uid : str, optional
        The DICOM SeriesInstanceUID to read when a folder holds several series.
    spacing : float or tuple of float, optional
        Pixel/voxel size in mm (one value, or one per array axis in plane, row, column order) for
        inputs that lack it (pictures, NumPy); it overrides a file's own spacing, with a warning.
    force : bool
        Read DICOM images whose modality is not CT (MR, PET, X-ray) instead of refusing them.

    Returns
    -------
    Volume
        ``array`` shape (P, R, C) for volumes or (R, C) for single slices, values as stored (DICOM
        rescale applied; no calibration). ``metadata`` holds ``format``, ``path``, ``spacing_known``,
        ``warnings``, and for DICOM a ``dicom`` dict (``series_uid``, ``files`` and
        ``sop_instance_uids`` in slice order, ``pixel_padding_value`` in array units, ...); for
        pictures ``bit_depth`` and ``source_dtype``.

    Raises
    ------
    InputError
        Missing, empty, corrupt or misnamed input; nothing to read in a folder; an image that cannot
        form a volume, has NaN values or only a few pixels.
    UnsupportedInputError
        Non-CT DICOM without ``force``, 4D, colour, stacks of 2D images, files that are not images.
    MissingDependencyError
        A compressed DICOM whose decoder is not installed.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> np.save(os.path.join(folder, "ct.npy"), np.zeros((4, 32, 32), np.int16))
    >>> ct = read(os.path.join(folder, "ct.npy"), spacing=(2.0, 0.7, 0.7))
    >>> ct.shape, ct.spacing, ct.metadata["format"]
    ((4, 32, 32), (2.0, 0.7, 0.7), 'numpy')
    """
    fmt = detect_format(path)
    path = Path(path).expanduser()
    if fmt == "dicom-folder":
        from .dicom import read_dicom_folder

        volume = read_dicom_folder(path, series_uid=series_uid, spacing=spacing, force=force)
    elif fmt == "dicom-file":
        from .dicom import read_dicom_file

        volume = read_dicom_file(path, spacing=spacing, force=force)
    elif fmt in _ITK_FORMATS:
        from .itk import read_itk

        volume = read_itk(path, fmt, spacing=spacing)
    elif fmt == "numpy":
        from .numpy_io import read_numpy

        volume = read_numpy(path, spacing=spacing)
    else:
        from .images2d import read_image2d

        volume = read_image2d(path, fmt, spacing=spacing)
    if series_uid is not None and fmt != "dicom-folder":
        log.warning("series_uid %s ignored: %s is not a DICOM folder", series_uid, path)
    volume.metadata.setdefault("warnings", [])
    log.debug("read %s: %r", path, volume)
    return volume


def inspect(path: str | os.PathLike, *, series_uid: str | None = None) -> dict[str, Any]:
    """File-level facts about an input, without reading all its pixels (what ``lungseg info`` shows first).

    Returns
    -------
    dict
        ``path``, ``format``, ``bytes`` and per format: for a DICOM folder the number of DICOM and
        other files, every series found (uid, modality, description, images, size, orientation,
        folder, ``skipped`` reason or None), ``chosen_series`` and ``choice`` (the rule); for a
        DICOM file its modality, size, orientation and transfer syntax; for other formats the size
        and pixel type in the file.

    Raises
    ------
    InputError, UnsupportedInputError
        As :func:`read` for inputs that are missing, empty, not images or corrupt.
    """
    fmt = detect_format(path)
    path = Path(path).expanduser()
    if fmt == "dicom-folder":
        from .dicom import inspect_dicom_folder

        facts = inspect_dicom_folder(path, series_uid=series_uid)
    elif fmt == "dicom-file":
        from .dicom import inspect_dicom_file

        facts = inspect_dicom_file(path)
    elif fmt in _ITK_FORMATS:
        from .itk import inspect_itk

        facts = inspect_itk(path, fmt)
    elif fmt == "numpy":
        from .numpy_io import inspect_numpy

        facts = inspect_numpy(path)
    else:
        from .images2d import inspect_image2d

        facts = inspect_image2d(path, fmt)
    if path.is_file():
        facts["bytes"] = path.stat().st_size
    return facts
