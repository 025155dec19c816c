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


GREY_TOLERANCE_FRAC = 0.02
"""An RGB image is grey when 99.9 % of its pixels have channels within this fraction of the value range."""

GREY_PERCENTILE = 99.9


def grey_from_channels(array: np.ndarray, *, source: str = "the image") -> np.ndarray:
    """The grey image held by an RGB or RGBA array (channels last), in the input's dtype.

    Lossy compression (JPEG) leaves small differences between the channels of a grey picture, so the
    channels count as equal when they agree within ``GREY_TOLERANCE_FRAC`` of the value range on all but
    0.1 % of the pixels. The alpha channel, if any, is ignored.

    Raises
    ------
    UnsupportedInputError
        When the image is really in colour.

    Examples
    --------
    >>> import numpy as np
    >>> rgb = np.repeat(np.arange(12, dtype=np.uint8).reshape(3, 4, 1), 3, axis=2)
    >>> grey_from_channels(rgb).tolist()[0]
    [0, 1, 2, 3]
    """
    array = np.asarray(array)
    colour = array[..., :3].astype(np.float64)
    spread = colour.max(axis=-1) - colour.min(axis=-1)
    value_range = float(colour.max() - colour.min()) or 1.0
    if np.percentile(spread, GREY_PERCENTILE) > GREY_TOLERANCE_FRAC * value_range:
        raise UnsupportedInputError(
            f"{source} is a colour image (its red, green and blue channels differ); lungseg reads grey CT images",
            hint="save the CT slice as a greyscale image",
        )
    grey = colour.mean(axis=-1)
    if array.dtype.kind in "iu":
        grey = np.rint(grey)
    return grey.astype(array.dtype)


def resolve_spacing(spacing, ndim: int, *, source: str = "the image") -> tuple[float, ...] | None:
    """A user's spacing (one value for every axis, or one per array axis) as a tuple of ``ndim`` floats.

    Raises
    ------
    InputError
        When the number of values fits neither rule or a value is not positive.

    Examples
    --------
    >>> resolve_spacing([0.7], 2), resolve_spacing((2.5, 0.7, 0.7), 3), resolve_spacing(None, 3)
    ((0.7, 0.7), (2.5, 0.7, 0.7), None)
    """
    if spacing is None:
        return None
    values = tuple(float(s) for s in np.ravel(spacing))
    if len(values) == 1:
        values = values * ndim
    if len(values) != ndim:
        raise InputError(
            f"{source} is {ndim}D but {len(values)} spacing values were given ({values})",
            hint=f"give one value in mm for every axis, or {ndim} values in (plane,) row, column order",
        )
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError(f"spacing must be positive numbers of mm, got {values}")
    return values


def compact_dtype(values: np.ndarray) -> np.ndarray:
    """Pixel data in a compact faithful dtype: 8/16-bit integers are kept, wider integers and integral
    floats become int16 (or int32 when the values need it), other floats float32.

    Examples
    --------
    >>> import numpy as np
    >>> compact_dtype(np.array([-1024.0, 3071.0])).dtype, compact_dtype(np.array([0.5])).dtype
    (dtype('int16'), dtype('float32'))
    """
    values = np.asarray(values)
    if values.dtype.kind == "b" or (values.dtype.kind in "iu" and values.dtype.itemsize <= 2):
        return values
    if values.dtype.kind == "f" and not (np.all(np.isfinite(values)) and np.array_equal(values, np.rint(values))):
        return values.astype(np.float32)
    lo, hi = (values.min(), values.max()) if values.size else (0, 0)
    for dt in (np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return values.astype(dt)
    return values
