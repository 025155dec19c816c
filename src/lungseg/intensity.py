"""Intensities: HU checks, scanner padding, and calibration of images that are not in HU.
(Placeholder: treats every input as HU; the intensity work replaces this.)"""

from __future__ import annotations

import dataclasses

import numpy as np

from .volume import Volume

AIR_HU = -1024.0


@dataclasses.dataclass(frozen=True)
class IntensityInfo:
    path: str
    air_value: float
    details: dict = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()


def to_hu(volume: Volume, *, window=None, hu: bool = False):
    arr = volume.array.astype(np.float32)
    return arr, IntensityInfo(path="hu", air_value=AIR_HU)
