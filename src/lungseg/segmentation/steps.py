"""Segmentation steps. (Placeholder.)"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def grow_labels_mm(labels: np.ndarray, spacing, margin_mm: float, *, within: np.ndarray | None = None) -> np.ndarray:
    """Grow each label by ``margin_mm`` (Euclidean distance in mm), nearest label wins, clipped to ``within``."""
    if margin_mm <= 0 or not labels.any():
        return labels.copy()
    dist, idx = ndi.distance_transform_edt(labels == 0, sampling=spacing, return_indices=True)
    grown = labels[tuple(idx)]
    grown[dist > margin_mm] = 0
    if within is not None:
        grown[~within] = 0
    grown[labels > 0] = labels[labels > 0]
    return grown.astype(np.uint8)
