"""Readers and writers: the only place that knows file conventions.

Public functions (the contract other modules use):

* ``read(path, *, series_uid=None, spacing=None, force=False) -> Volume``
* ``inspect(path, *, series_uid=None, spacing=None, force=False) -> dict``: file-level facts for ``lungseg info``
  (format, files, every DICOM series found and which one is chosen and why)
* ``write_labels(labels, reference, path, *, png_values="binary") -> Path``
* ``write_image(volume, path) -> Path``
* ``check_output_path(path, *, inputs=()) -> Path``
"""

from __future__ import annotations

from .readers import inspect, read
from .writers import check_output_path, write_image, write_labels

__all__ = ["read", "inspect", "write_labels", "write_image", "check_output_path"]
