"""The CT volume type: a NumPy array and its geometry in one small object.

Conventions (used everywhere in lungseg):

* ``array`` is indexed (slice, row, column) for a volume and (row, column) for a
  single 2D image: the order of ``SimpleITK.GetArrayFromImage``.
* ``spacing`` has one entry per array axis, in millimetres, in the same order.
* ``origin`` is the world position (LPS, mm, x/y/z) of the first voxel's centre.
* ``direction`` is the 3×3 ITK direction matrix: column ``k`` is the world (LPS)
  unit vector of ITK index axis ``k``, where ITK axis 0 is the array's column
  axis, 1 the row axis and 2 the slice axis. A 2D image keeps a full 3×3
  direction, so a coronal or sagittal DICOM slice remembers its orientation
  (column 2 is then the slice normal).

World coordinates are named x, y, z; array axes are named plane, row, column.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Volume", "axis_world_directions", "orientation_codes", "crop_box"]


@dataclasses.dataclass(eq=False)
class Volume:
    """A CT image (2D or 3D) with its geometry and metadata.

    Parameters
    ----------
    array : ndarray, shape (P, R, C) or (R, C)
        The voxel values as stored (after DICOM rescale), not yet calibrated.
    spacing : tuple of float
        Voxel size in mm per array axis (same order as ``array.shape``).
    origin : tuple of 3 float, optional
        World position (LPS, mm) of voxel index 0.
    direction : ndarray, shape (3, 3), optional
        ITK direction matrix (see the module docstring).
    metadata : dict, optional
        Free-form facts about the source: ``format``, ``path``, ``spacing_known``,
        ``dicom`` (series UID, SOP instance UIDs in slice order, ...), reader warnings.

    Examples
    --------
    >>> import numpy as np
    >>> ct = Volume(np.zeros((2, 3, 4), np.int16), spacing=(2.5, 0.7, 0.7))
    >>> ct.shape, ct.spacing
    ((2, 3, 4), (2.5, 0.7, 0.7))
    >>> round(ct.voxel_volume_mm3, 6)
    1.225
    """

    array: np.ndarray
    spacing: tuple[float, ...]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3))
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.array = np.asarray(self.array)
        if self.array.ndim not in (2, 3):
            raise ValueError(f"a Volume holds a 2D or 3D array, got {self.array.ndim}D with shape {self.array.shape}")
        spacing = tuple(float(s) for s in np.ravel(self.spacing))
        if len(spacing) != self.array.ndim:
            raise ValueError(f"spacing needs one value per array axis ({self.array.ndim}), got {spacing}")
        if not all(np.isfinite(s) and s > 0 for s in spacing):
            raise ValueError(f"spacing must be positive and finite, got {spacing}")
        self.spacing = spacing
        origin = tuple(float(o) for o in np.ravel(self.origin))
        if len(origin) == 2:
            origin = origin + (0.0,)
        if len(origin) != 3:
            raise ValueError(f"origin needs 3 world coordinates, got {origin}")
        self.origin = origin
        direction = np.asarray(self.direction, dtype=float)
        if direction.size == 4:  # a plain 2D direction: embed in 3D
            d3 = np.eye(3)
            d3[:2, :2] = direction.reshape(2, 2)
            direction = d3
        self.direction = direction.reshape(3, 3)

    # -- shape -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def is_2d(self) -> bool:
        return self.array.ndim == 2

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel (area of one pixel for 2D) in mm³ (mm²)."""
        return float(np.prod(self.spacing))

    # -- geometry ----------------------------------------------------------
    @property
    def affine(self) -> np.ndarray:
        """4×4 matrix mapping array indices (plane, row, column, 1) to LPS mm.

        For a 2D image the plane index is 0 and only (row, column) vary.
        """
        sp = self.spacing if self.ndim == 3 else (1.0,) + self.spacing
        itk_scaled = self.direction * np.array([sp[2], sp[1], sp[0]])  # columns: col, row, slice axes
        aff = np.eye(4)
        aff[:3, :3] = itk_scaled[:, ::-1]  # reorder to (slice, row, col)
        aff[:3, 3] = self.origin
        return aff

    def with_array(self, array: np.ndarray, **metadata: Any) -> "Volume":
        """A new Volume on the same grid holding ``array`` (same shape)."""
        array = np.asarray(array)
        if array.shape != self.shape:
            raise ValueError(f"array shape {array.shape} does not match the volume's grid {self.shape}")
        return Volume(array, self.spacing, self.origin, self.direction.copy(), {**self.metadata, **metadata})

    def crop(self, box: tuple[slice, ...]) -> "Volume":
        """The sub-volume ``array[box]`` (slices with step 1), with the origin moved so world positions stay put."""
        box = tuple(box)
        starts = [sl.indices(n)[0] for sl, n in zip(box, self.shape)]
        index = ([0] if self.ndim == 2 else []) + starts
        origin = (self.affine @ np.array(index + [1.0]))[:3]
        return Volume(self.array[box].copy(), self.spacing, tuple(origin), self.direction.copy(), dict(self.metadata))

    def same_grid(self, other: "Volume", *, atol_mm: float = 1e-3) -> bool:
        """True when ``other`` has the same shape, spacing, origin and direction."""
        return (
            self.shape == other.shape
            and np.allclose(self.spacing, other.spacing, atol=atol_mm)
            and np.allclose(self.origin, other.origin, atol=atol_mm)
            and np.allclose(self.direction, other.direction, atol=1e-5)
        )

    def __repr__(self) -> str:
        sp = "×".join(f"{s:.3g}" for s in self.spacing)
        codes = orientation_codes(self.direction)
        fmt = self.metadata.get("format", "?")
        return f"Volume(shape={self.shape}, spacing={sp} mm, orientation={codes}, dtype={self.array.dtype}, format={fmt})"


def axis_world_directions(volume: Volume) -> np.ndarray:
    """World (LPS) unit vectors of the array axes, one row per array axis.

    For a 3D volume row 0 is the slice axis, row 1 the row axis, row 2 the column axis;
    for 2D only the row and column axes are returned.

    Examples
    --------
    >>> import numpy as np
    >>> axis_world_directions(Volume(np.zeros((2, 2, 2)), (1, 1, 1)))
    array([[0., 0., 1.],
           [0., 1., 0.],
           [1., 0., 0.]])
    """
    d = volume.direction
    rows = [d[:, 2], d[:, 1], d[:, 0]]
    return np.array(rows[-volume.ndim:])


def orientation_codes(direction: np.ndarray) -> str:
    """Three-letter ITK/DICOM orientation code (LPS naming) of the ITK axes, e.g. ``'LPS'``.

    Each letter names the world direction an index axis points *towards*.

    Examples
    --------
    >>> import numpy as np
    >>> orientation_codes(np.eye(3))
    'LPS'
    >>> orientation_codes(np.diag([-1, -1, 1]))
    'RAS'
    """
    letters = (("R", "L"), ("A", "P"), ("I", "S"))
    out = []
    for k in range(3):
        v = np.asarray(direction, float)[:, k]
        i = int(np.argmax(np.abs(v)))
        out.append(letters[i][1] if v[i] > 0 else letters[i][0])
    return "".join(out)


def crop_box(mask: np.ndarray, spacing: tuple[float, ...], margin_mm: float) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin_mm`` on every side (clipped to the array).

    An empty mask gives the whole array.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.zeros((10, 10), bool); m[4:6, 4:6] = True
    >>> crop_box(m, (1.0, 2.0), 2.0)
    (slice(2, 8, None), slice(3, 7, None))
    """
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    box = []
    for axis, (n, sp) in enumerate(zip(mask.shape, spacing)):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        pad = int(np.ceil(margin_mm / sp))
        box.append(slice(max(int(hits[0]) - pad, 0), min(int(hits[-1]) + 1 + pad, n)))
    return tuple(box)
