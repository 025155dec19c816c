"""lungseg: find the lungs in chest CT.

>>> import lungseg
>>> ct = lungseg.read(lungseg.demo_scan_path())   # or a DICOM folder, NIfTI, NRRD, PNG, NumPy file...
>>> res = lungseg.segment(ct)                     # res.labels: 0 outside, 1 right lung, 2 left lung
>>> [int((res.labels == side).sum() * ct.voxel_volume_mm3 / 1000 > 1000) for side in (1, 2)]  # over a litre each
[1, 1]
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from .errors import InputError, LungsegError, MissingDependencyError, OutputError, UnsupportedInputError
from .settings import Settings
from .volume import Volume

if TYPE_CHECKING:
    from .api import LABEL_LEFT, LABEL_RIGHT, SegmentationResult, demo_scan_path, describe, read, segment

_FROM_API = ("read", "segment", "describe", "demo_scan_path", "SegmentationResult", "LABEL_RIGHT", "LABEL_LEFT")


def __getattr__(name: str):
    """``read``, ``segment`` and friends load the image libraries on first use, so that ``import lungseg``
    and the command line start fast (a batch run's worker pool starts while the main process looks for cases)."""
    if name in _FROM_API:
        value = getattr(importlib.import_module(".api", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lungseg' has no attribute {name!r}")


try:
    __version__ = version("lungseg")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "read",
    "segment",
    "describe",
    "demo_scan_path",
    "Volume",
    "Settings",
    "SegmentationResult",
    "LABEL_RIGHT",
    "LABEL_LEFT",
    "LungsegError",
    "InputError",
    "UnsupportedInputError",
    "OutputError",
    "MissingDependencyError",
    "__version__",
]
