"""Readers and writers: the only place that knows file conventions.

Public functions (the contract other modules use):

* ``read(path, *, series_uid=None, spacing=None, force=False) -> Volume``
* ``inspect(path, *, series_uid=None) -> dict``: file-level facts for ``lungseg info``
  (format, files, every DICOM series found and which one is chosen and why)
* ``find_dicom_series(root) -> list[DicomSeries]``: the usable DICOM series under a folder
* ``write_labels(labels, reference, path, *, png_values="binary") -> Path``
* ``write_image(volume, path) -> Path``
* ``check_output_path(path, *, inputs=(), kind="mask", seg=False) -> Path``
* ``check_writable(volume, path, *, kind="mask") -> Path``: once the image is known, before writing any output
* ``atomic_output(path)``: context manager for writing any other output whole or not at all
"""

from __future__ import annotations

from .dicom import DicomSeries, find_dicom_series
from .readers import inspect, read
from .writers import atomic_output, check_output_path, check_writable, write_atomic, write_image, write_labels

__all__ = ["read", "inspect", "find_dicom_series", "DicomSeries", "write_labels", "write_image",
           "check_output_path", "check_writable", "atomic_output", "write_atomic"]
