"""The canonical frame the segmentation steps work in, and the coarse working grid.

Every step sees a 3D array ordered (z, y, x) with indices increasing towards the patient's
superior, posterior and *left* side (LPS). A single 2D slice is a volume of one plane.
Only axis permutations and flips are used (no resampling), so going back is exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..volume import Volume, axis_world_directions

__all__ = ["Frame", "grid_factors", "block_mean", "upsample"]


@dataclasses.dataclass(frozen=True)
class Frame:
    """How to turn an input array into the canonical (z, y, x) array and back.

    Attributes
    ----------
    perm : tuple of int
        ``canonical = array.transpose(perm)`` (before the flips); for 2D input a plane axis is added first.
    flips : tuple of int
        Canonical axes reversed after the transposition.
    ndim : int
        2 or 3, the input's dimensionality.
    knows_left_right : bool
        False when no array axis runs left-right (a sagittal slice): the column axis is then not x.
    """

    perm: tuple[int, ...]
    flips: tuple[int, ...]
    ndim: int
    knows_left_right: bool = True

    @classmethod
    def of(cls, volume: Volume) -> "Frame":
        """The frame of ``volume``, from its direction cosines.

        A 3D array axis is matched to the world axis (z, y, x) it is closest to. A 2D image keeps its
        plane; its in-plane axis closest to world x becomes the column axis, so for a 2D image with no
        geometry (identity direction) the patient's right is on the image's left (radiological convention).

        Examples
        --------
        >>> import numpy as np
        >>> Frame.of(Volume(np.zeros((2, 3, 4)), (1, 1, 1), direction=np.diag([-1, -1, 1])))
        Frame(perm=(0, 1, 2), flips=(1, 2), ndim=3, knows_left_right=True)
        """
        axes = axis_world_directions(volume)
        if volume.ndim == 3:
            perm, flips = [], []
            free = [0, 1, 2]
            for world in (2, 1, 0):  # z, y, x
                best = max(free, key=lambda a: abs(axes[a, world]))
                free.remove(best)
                perm.append(best)
                if axes[best, world] < 0:
                    flips.append(len(perm) - 1)
            return cls(tuple(perm), tuple(flips), 3, True)
        x_axis = int(np.argmax(np.abs(axes[:, 0])))
        knows = bool(abs(axes[x_axis, 0]) >= 0.5)
        if not knows:
            return cls((0, 1), (), 2, False)
        row_axis = 1 - x_axis
        flips = [2] if axes[x_axis, 0] < 0 else []
        # rows point down the image: towards posterior (axial) or inferior (coronal)
        r = axes[row_axis]
        k = 1 if abs(r[1]) >= abs(r[2]) else 2
        if (k == 1 and r[1] < 0) or (k == 2 and r[2] > 0):
            flips.insert(0, 1)
        return cls((row_axis, x_axis), tuple(flips), 2, True)

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        """A (z, y, x) view of ``array`` (2D input gets a leading plane axis of length 1)."""
        out = array.transpose(self.perm)
        if self.ndim == 2:
            out = out[None]
        return np.flip(out, self.flips) if self.flips else out

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_canonical` (a contiguous copy on the input's grid)."""
        out = np.flip(array, self.flips) if self.flips else array
        if self.ndim == 2:
            out = out[0]
        return np.ascontiguousarray(out.transpose(np.argsort(self.perm)))

    def spacing(self, spacing: tuple[float, ...]) -> tuple[float, float, float]:
        """Voxel size (mm) along the canonical axes; a 2D image gets a nominal plane thickness of 1 mm."""
        sp = tuple(float(spacing[a]) for a in self.perm)
        return (1.0,) + sp if self.ndim == 2 else sp


def grid_factors(spacing: tuple[float, ...], working_spacing_mm: float) -> tuple[int, ...]:
    """Integer block sizes that bring each in-plane axis to about ``working_spacing_mm``; the plane axis is kept.

    Examples
    --------
    >>> grid_factors((2.0, 0.7, 0.7), 2.0)
    (1, 3, 3)
    >>> grid_factors((1.0, 4.2, 4.2), 2.0)
    (1, 1, 1)
    """
    return (1,) + tuple(max(1, int(np.floor(working_spacing_mm / s + 0.5))) for s in spacing[1:])


def block_mean(array: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """Mean over blocks of ``factors`` voxels (float32); edges are padded by repetition.

    Examples
    --------
    >>> import numpy as np
    >>> block_mean(np.arange(8.0).reshape(1, 2, 4), (1, 2, 2)).tolist()
    [[[2.5, 4.5]]]
    """
    if all(f == 1 for f in factors):
        return np.ascontiguousarray(array, dtype=np.float32)
    pad = [(0, (-n) % f) for n, f in zip(array.shape, factors)]
    if any(p[1] for p in pad):
        array = np.pad(array, pad, mode="edge")
    out_shape = tuple(n // f for n, f in zip(array.shape, factors))
    total = np.zeros(out_shape, np.float32)
    for offset in np.ndindex(*factors):
        total += array[tuple(slice(o, None, f) for o, f in zip(offset, factors))]
    total /= float(np.prod(factors))
    return total


def upsample(array: np.ndarray, factors: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour inverse of :func:`block_mean`: repeat each voxel and crop to ``shape``."""
    out = array
    for axis, f in enumerate(factors):
        if f > 1:
            out = np.repeat(out, f, axis=axis)
    return out[tuple(slice(0, n) for n in shape)]
