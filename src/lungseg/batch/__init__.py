"""Whole datasets: find every case under a folder and segment them all, resumably, on every core or a Dask cluster.

    >>> from lungseg.batch import run_batch                          # doctest: +SKIP
    >>> result = run_batch("scans/", "out/", workers=2)              # doctest: +SKIP
    >>> result.n_failed, result.results_csv                          # doctest: +SKIP
    (0, PosixPath('out/results.csv'))

Modules: ``discover`` (cases and their ids), ``worker`` (one case, in a worker), ``runner`` (pool, Dask,
resuming), ``report`` (``results.csv`` and ``index.html``).
"""

from .discover import Case, Discovery, discover_cases
from .runner import BatchOptions, BatchResult, case_outputs, default_workers, run_batch
from .worker import run_case

__all__ = [
    "Case",
    "Discovery",
    "discover_cases",
    "BatchOptions",
    "BatchResult",
    "case_outputs",
    "default_workers",
    "run_batch",
    "run_case",
]
