"""lungseg: find the lungs in chest CT.

>>> import lungseg
>>> ct = lungseg.read("chest.nii.gz")      # doctest: +SKIP
>>> res = lungseg.segment(ct)              # doctest: +SKIP
>>> res.labels                             # 0 outside, 1 right lung, 2 left lung  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from .api import LABEL_LEFT, LABEL_RIGHT, SegmentationResult, read, segment
from .errors import InputError, LungsegError, MissingDependencyError, OutputError, UnsupportedInputError
from .settings import Settings
from .volume import Volume

try:
    __version__ = version("lungseg")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "read",
    "segment",
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
