"""NumPy ``.npy`` and ``.npz`` files.

Rules
-----
* Arrays are in (plane, row, column) order; 2D is one slice, 3D one volume.
* A trailing channel axis of length 1 is dropped: (R, C, 1) is a 2D slice. A trailing axis of
  3 or 4 is colour (RGB/RGBA) and must hold a grey image.
* A 4D stack (N, R, C, 1) with N > 1 (the Keras layout of many unrelated 2D slices) is refused:
  lungseg cannot know whether the slices form a volume. Save one slice (``x[i, ..., 0]``), or
  the stack as 3D (``x[..., 0]``) if it really is a volume.
* ``.npz``: the array named ``image``, else ``labels``, else ``mask``, else ``arr_0``, else the only
  array; several other arrays are refused with their names listed. Optional arrays ``spacing``
  (mm per array axis), ``origin`` (LPS mm) and ``direction`` (3×3) give the geometry (what
  ``write_labels`` stores).
* Spacing otherwise comes from the ``spacing=`` option; without it the spacing is unknown
  (``metadata["spacing_known"] = False``, unit spacing).
* Pickled object arrays are never loaded.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UnsupportedInputError
from ..volume import Volume
from .validate import check_array, grey_from_channels, resolve_spacing

__all__ = ["read_numpy", "inspect_numpy", "NPZ_IMAGE_KEYS", "NPZ_GEOMETRY_KEYS"]

NPZ_IMAGE_KEYS = ("image", "labels", "mask", "arr_0")
NPZ_GEOMETRY_KEYS = ("spacing", "origin", "direction")


def _load(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(image array, geometry arrays) of a .npy or .npz file."""
    try:
        with open(path, "rb") as fh:  # opened here so a failing np.load cannot leave it open
            loaded = np.load(fh, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return loaded, {}
            with loaded:
                return _pick_npz_arrays(loaded, path)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise UnsupportedInputError(f"{path} holds Python objects (pickled), not a numeric array",
                                        hint="save a plain numeric array with numpy.save") from None
        raise InputError(f"cannot read {path} as NumPy: {err}", hint="the file may be truncated or corrupt") from None
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"cannot read {path} as NumPy: {err}", hint="the file may be truncated or corrupt") from None


def _pick_npz_arrays(loaded, path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The image array of an .npz (see the module rules) and its geometry arrays."""
    names = list(loaded.files)
    geometry_names = [k for k in NPZ_GEOMETRY_KEYS if k in names]
    candidates = [k for k in names if k not in geometry_names]
    key = next((k for k in NPZ_IMAGE_KEYS if k in candidates), None)
    if key is None and len(candidates) == 1:
        key = candidates[0]
    if key is None:
        listed = ", ".join(names) or "none"
        raise InputError(
            f"{path} holds {len(candidates)} arrays and none is named {', '.join(NPZ_IMAGE_KEYS)} (arrays: {listed})",
            hint="save the image under the name 'image', or save it alone with numpy.save",
        )
    return loaded[key], {k: loaded[k] for k in geometry_names}


def _to_image(array: np.ndarray, source: str) -> np.ndarray:
    shape = array.shape
    if len(shape) == 4 and shape[-1] == 1 and shape[0] == 1:
        return array[0, ..., 0]
    if len(shape) == 4 and shape[-1] == 1:
        raise UnsupportedInputError(
            f"{source} holds a stack of {shape[0]} images of {shape[1]}×{shape[2]} (shape {shape}); "
            "lungseg segments one 2D slice or one 3D volume",
            hint="save one slice (x[i, ..., 0]) or, if the slices form a volume, x[..., 0] as 3D",
        )
    if len(shape) == 3 and shape[-1] == 1:
        return array[..., 0]
    if len(shape) == 3 and shape[-1] in (3, 4):
        return grey_from_channels(array, source=source)
    if len(shape) not in (2, 3):
        raise UnsupportedInputError(f"{source} is {len(shape)}D with shape {shape}; lungseg reads one 2D slice "
                                    "or one 3D volume", hint="pass a single slice or volume")
    return array


def read_numpy(path: str | os.PathLike, *, spacing=None) -> Volume:
    """Read a .npy/.npz file into a Volume (see the module docstring for the rules).

    Raises
    ------
    InputError
        Corrupt file, an .npz with several unnamed arrays, NaN values, a few pixels.
    UnsupportedInputError
        Stacks of 2D images, 4D, colour, pickled objects.
    """
    path = Path(path)
    raw, geometry = _load(path)
    shape = raw.shape
    array = check_array(_to_image(np.asarray(raw), str(path)), source=str(path))
    user = resolve_spacing(spacing, array.ndim, source=str(path))
    stored = resolve_spacing(geometry["spacing"], array.ndim, source=f"the spacing stored in {path}") \
        if "spacing" in geometry else None
    known = user is not None or stored is not None
    metadata: dict[str, Any] = {"format": "numpy", "path": str(path), "spacing_known": known,
                                "source_dtype": str(raw.dtype), "source_shape": list(shape), "warnings": []}
    origin = tuple(np.ravel(geometry["origin"])) if "origin" in geometry else (0.0, 0.0, 0.0)
    direction = np.asarray(geometry["direction"], float).reshape(3, 3) if "direction" in geometry else np.eye(3)
    return Volume(array, user or stored or (1.0,) * array.ndim, origin, direction, metadata)


def inspect_numpy(path: str | os.PathLike) -> dict[str, Any]:
    """Array facts of a .npy/.npz file without the pixel checks."""
    path = Path(path)
    raw, geometry = _load(path)
    facts: dict[str, Any] = {"path": str(path), "format": "numpy", "array_shape": list(raw.shape),
                             "array_dtype": str(raw.dtype)}
    if geometry:
        facts["stored_geometry"] = sorted(geometry)
    return facts
