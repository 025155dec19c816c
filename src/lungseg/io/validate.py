"""Small named checks on arrays, with messages that say what was received and what was expected."""

from __future__ import annotations

import numpy as np

from ..errors import InputError, UnsupportedInputError

MIN_SIDE_PX = 16
"""An image with a side shorter than this many pixels cannot show a lung."""


def check_array(array: np.ndarray, *, source: str = "the image") -> np.ndarray:
    """Check an image array is a real-valued 2D or 3D image lungseg can segment; return it.

    Raises
    ------
    UnsupportedInputError
        For 4D, colour, or non-numeric arrays.
    InputError
        For NaN/infinite values or an image of a few pixels.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise UnsupportedInputError(f"{source} has values of type {array.dtype}, expected numbers")
    if array.ndim not in (2, 3):
        raise UnsupportedInputError(
            f"{source} is {array.ndim}D with shape {array.shape}; lungseg segments one 2D slice or one 3D volume",
            hint="pass a single volume (for 4D CT, one phase at a time)",
        )
    if min(array.shape[-2:]) < MIN_SIDE_PX:
        raise InputError(
            f"{source} is only {array.shape[-2]}×{array.shape[-1]} pixels; at least {MIN_SIDE_PX}×{MIN_SIDE_PX} is needed",
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InputError(f"{source} holds NaN or infinite values", hint="replace them (e.g. with -1024) before segmenting")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array
