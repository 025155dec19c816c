"""The segmentation pipeline. (Placeholder: a documented -400 HU threshold; the segmentation work replaces it.)"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi

from ..settings import Settings
from ..volume import Volume


@dataclasses.dataclass
class SegmentationOutput:
    labels: np.ndarray
    body: np.ndarray
    flags: list[str]


def segment_hu(hu: np.ndarray, volume: Volume, settings: Settings) -> SegmentationOutput:
    air = hu < settings.air_threshold_hu
    outside, _ = ndi.label(air)
    border = np.unique(np.concatenate([outside[0].ravel(), outside[-1].ravel()] if hu.ndim == 2 else [outside[:, 0].ravel(), outside[:, -1].ravel(), outside[:, :, 0].ravel(), outside[:, :, -1].ravel()]))
    lung = air & ~np.isin(outside, border[border > 0])
    body = ~np.isin(outside, border[border > 0]) & ~air | lung
    labels = lung.astype(np.uint8)
    flags = [] if lung.any() else ["no_lung_found"]
    return SegmentationOutput(labels, body, flags)
