"""Readers. (Placeholder: generic SimpleITK read; the io work replaces this with the full readers.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..volume import Volume
from .validate import check_array


def read(path: str | os.PathLike, *, series_uid: str | None = None, spacing=None, force: bool = False) -> Volume:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    img = sitk.ReadImage(str(path))
    arr = check_array(sitk.GetArrayFromImage(img), source=str(path))
    sp = img.GetSpacing()[::-1]
    return Volume(arr, sp, img.GetOrigin(), np.array(img.GetDirection()).reshape(3, 3),
                  {"format": "sitk", "path": str(path), "spacing_known": True})


def inspect(path: str | os.PathLike, *, series_uid: str | None = None, spacing=None, force: bool = False) -> dict[str, Any]:
    return {"path": str(path), "format": "sitk"}
