"""``lungseg batch INPUT_ROOT OUTPUT_ROOT [options]``: segment every scan under a folder, resumably."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path

from ..errors import SettingsError
from ._common import positive_int
from .segment import add_segment_options, build_settings


def add_parser(sub) -> None:
    from ..batch.runner import MASK_SUFFIXES

    p = sub.add_parser(
        "batch", help="segment every scan and slice under a folder (resumable, parallel)",
        description="Find every DICOM series, NIfTI/NRRD/MetaImage/NumPy file and 2D picture under INPUT_ROOT, "
                    "segment each, and write its outputs into a mirror of its path under OUTPUT_ROOT, with "
                    "results.csv and index.html. Cases already done with the same input and settings are skipped. "
                    "Exit code 1 when some cases failed.")
    p.add_argument("input_root", type=Path, help="folder holding the scans (searched recursively)")
    p.add_argument("output_root", type=Path, help="folder for the outputs (created if needed)")
    p.add_argument("--pattern", metavar="GLOB", help="only cases whose relative path matches (fnmatch; * also matches /), e.g. 'patient0*' or '*.nii.gz'")
    how = p.add_argument_group("running")
    how.add_argument("--workers", type=positive_int, metavar="N", help="parallel processes (default: every core; 1 = one after the other)")
    how.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://host:8786) to send the cases to (needs lungseg[dask])")
    how.add_argument("--force-rerun", action="store_true", help="redo cases whose outputs are already up to date")
    out = p.add_argument_group("outputs per case")
    out.add_argument("--masked", action="store_true", help="also write the input with everything but lung set to air")
    out.add_argument("--qc", action=argparse.BooleanOptionalAction, default=True, help="QC picture (default: yes)")
    out.add_argument("--report", action=argparse.BooleanOptionalAction, default=True, help="JSON report (default: yes)")
    out.add_argument("--format", choices=("auto", "seg"), default="auto",
                     help="'seg' writes DICOM Segmentation objects for DICOM cases (needs lungseg[seg])")
    out.add_argument("--mask-ext", choices=MASK_SUFFIXES, default=".nii.gz", help="mask format of volumes (2D pictures get .png)")
    out.add_argument("--png-values", choices=("binary", "labels"), default="binary",
                     help="PNG masks: 'binary' = 0/255 whole lung (default), 'labels' = 0/1/2")
    add_segment_options(p)
    p.set_defaults(run=run_command)


class _Progress:
    """A tqdm bar on a terminal; one plain line per case otherwise."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.failed = 0

    def __call__(self, row: dict, done: int, total: int) -> None:
        self.failed += row["status"] == "failed"
        if self.quiet:
            return
        if sys.stderr.isatty():
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit="case", desc="lungseg batch", file=sys.stderr)
            self.bar.update(1)
            self.bar.set_postfix(failed=self.failed, refresh=False)
            return
        time = f" ({row['time_s']:.1f} s)" if row.get("time_s") is not None and row["status"] == "ok" else ""
        error = f": {row['error']}" if row.get("error") else ""
        print(f"lungseg: [{done}/{total}] {row['status']} {row['id']}{time}{error}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_command(args: argparse.Namespace) -> int:
    from ..batch import BatchOptions, run_batch

    if args.series_uid:
        raise SettingsError("--series does not apply to batch runs (every series is a case)",
                            hint="use --pattern to choose cases")
    options = BatchOptions(masked=args.masked, qc=args.qc, report=args.report, format=args.format,
                           mask_ext=args.mask_ext, png_values=args.png_values, spacing=args.spacing,
                           force=args.force, window=args.window, hu=args.hu)
    progress = _Progress(args.quiet)
    if sys.stderr.isatty() and not args.quiet:  # log lines above the bar, not through it
        from tqdm.contrib.logging import logging_redirect_tqdm

        logs = logging_redirect_tqdm(loggers=[logging.getLogger("lungseg")])
    else:
        logs = contextlib.nullcontext()
    try:
        with logs:
            result = run_batch(args.input_root, args.output_root, settings=build_settings(args), options=options,
                               workers=args.workers, scheduler=args.scheduler, pattern=args.pattern,
                               force_rerun=args.force_rerun, on_result=progress)
    finally:
        progress.close()
    found = result.discovery
    print(f"{len(result.rows)} cases: {result.count('ok')} segmented, {result.count('skipped-done')} already done, "
          f"{result.n_failed} failed; {found.non_image_files} other files and {len(found.skipped_series)} "
          f"non-CT/localizer series skipped")
    print(f"results: {result.results_csv}\nreview:  {result.index_html}")
    return 1 if result.n_failed else 0
