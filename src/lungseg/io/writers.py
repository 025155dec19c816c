"""Writers. (Placeholder; the io work replaces this.)"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..volume import Volume


def check_output_path(path, *, inputs=(), kind: str = "mask", seg: bool = False) -> Path:
    return Path(path)


def write_image(volume: Volume, path) -> Path:
    img = sitk.GetImageFromArray(volume.array)
    img.SetSpacing(volume.spacing[::-1])
    img.SetOrigin(volume.origin)
    img.SetDirection(volume.direction.ravel())
    sitk.WriteImage(img, str(path))
    return Path(path)


def write_labels(labels: np.ndarray, reference: Volume, path, *, png_values: str = "binary") -> Path:
    return write_image(reference.with_array(labels.astype(np.uint8)), path)
