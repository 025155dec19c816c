"""Running a batch: decide what is done, send the rest to a process pool or a Dask cluster, collect rows.

The main process only handles paths and small dicts; the pixels stay in the workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import logging.handlers
import multiprocessing
import multiprocessing.forkserver
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from ..errors import LungsegError, MissingDependencyError, SettingsError
from ..settings import Settings
from .discover import Case, Discovery, discover_cases
from .report import write_index_html, write_results_csv
from .worker import MARKER_SUFFIX, read_marker, remove_stale_temporaries, run_case

__all__ = ["BatchOptions", "BatchResult", "run_batch", "case_outputs", "default_workers", "MASK_SUFFIXES"]

log = logging.getLogger(__name__)

MASK_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".mha", ".mhd", ".npy")
"""Mask formats a batch run can write for volumes (2D pictures always get ``.png``)."""

SCHEDULER_TIMEOUT_S = 20.0
"""How long to try to reach a Dask scheduler before giving up."""

PRELOAD_MODULES = ["lungseg.api", "lungseg.batch.worker", "lungseg.render", "SimpleITK", "PIL.PngImagePlugin"]
"""Imported once by the forkserver, so that each worker starts with them (not once per worker)."""

STATUS_OK, STATUS_FAILED, STATUS_DONE = "ok", "failed", "skipped-done"


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """What to write for each case and how to read it (the settings of the segmentation are separate).

    Attributes
    ----------
    masked, qc, report : bool
        Write the masked image, the QC picture (PNG), the JSON report. Defaults: no, yes, yes.
    format : {"auto", "seg"}
        ``"seg"`` writes DICOM Segmentation objects for DICOM cases (needs ``lungseg[seg]``); other cases
        keep ``mask_ext`` and get the flag ``seg_needs_dicom_input``.
    mask_ext : str
        Mask (and masked image) format of volumes, one of ``MASK_SUFFIXES``.
    png_values : {"binary", "labels"}
        PNG masks of 2D pictures: 0/255 whole lung, or 0/1/2.
    spacing, force, window, hu
        Read options, as for ``lungseg segment``.
    """

    masked: bool = False
    qc: bool = True
    report: bool = True
    format: str = "auto"
    mask_ext: str = ".nii.gz"
    png_values: str = "binary"
    spacing: tuple[float, ...] | None = None
    force: bool = False
    window: tuple[float, float] | None = None
    hu: bool = False

    def __post_init__(self) -> None:
        if self.format not in ("auto", "seg"):
            raise SettingsError(f"batch format must be 'auto' or 'seg', got {self.format!r}")
        if self.mask_ext not in MASK_SUFFIXES:
            raise SettingsError(f"mask extension {self.mask_ext!r} is not supported for batch runs",
                                hint=f"use one of {', '.join(MASK_SUFFIXES)}")
        if self.png_values not in ("binary", "labels"):
            raise SettingsError(f"png_values must be 'binary' or 'labels', got {self.png_values!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready options (tuples become lists), as recorded in each case's done-marker."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass
class BatchResult:
    """What ``run_batch`` did.

    Attributes
    ----------
    rows : list of dict
        One per case handled, sorted by id (see ``lungseg.batch.worker.run_case``); ``status`` is
        ``"ok"``, ``"failed"`` or ``"skipped-done"``; output paths are relative to the output root.
    discovery : Discovery
    results_csv, index_html : Path
    """

    rows: list[dict]
    discovery: Discovery
    results_csv: Path
    index_html: Path

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    @property
    def n_failed(self) -> int:
        return self.count(STATUS_FAILED)


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def case_outputs(case: Case, output_root: str | os.PathLike, options: BatchOptions) -> dict[str, Path]:
    """Where the outputs of ``case`` go: kind (``mask``, ``masked``, ``qc``, ``report``, ``marker``) -> path.

    Examples
    --------
    >>> c = Case(id="p1/scan.nrrd", input=Path("in/p1/scan.nrrd"), kind="file", files=(), out_base="p1/scan")
    >>> out = case_outputs(c, "out", BatchOptions())
    >>> out["mask"].as_posix(), out["qc"].as_posix(), out["marker"].as_posix()
    ('out/p1/scan.mask.nii.gz', 'out/p1/scan.qc.png', 'out/p1/scan.done.json')
    """
    base = Path(output_root) / case.out_base
    if case.kind == "image2d":
        ext = ".png"
    else:
        ext = options.mask_ext
    mask_ext = ".seg.dcm" if options.format == "seg" and case.kind == "dicom" else ext
    out = {"mask": base.with_name(f"{base.name}.mask{mask_ext}")}
    if options.masked:
        out["masked"] = base.with_name(f"{base.name}.masked{ext}")
    if options.qc:
        out["qc"] = base.with_name(f"{base.name}.qc.png")
    if options.report:
        out["report"] = base.with_name(f"{base.name}.report.json")
    out["marker"] = base.with_name(f"{base.name}{MARKER_SUFFIX}")
    return out


def _case_key(case: Case, settings: Settings, options: BatchOptions) -> dict[str, Any]:
    from .. import __version__

    return {
        "fingerprint": case.fingerprint(),
        "series_uid": case.series_uid,
        "settings_digest": settings.digest(),
        "lungseg_version": __version__,
        "options": options.to_dict(),
    }


def _done_row(outputs: dict[str, Path], key: dict) -> dict | None:
    """The stored row of a case finished earlier with the same key and outputs, else None."""
    marker = read_marker(outputs["marker"])
    if marker is None or marker.get("key") != key or not isinstance(marker.get("row"), dict):
        return None
    if not all(p.exists() for kind, p in outputs.items() if kind != "marker"):
        return None
    row = dict(marker["row"])
    row["status"] = STATUS_DONE
    return row


def _task(case: Case, outputs: dict[str, Path], key: dict, settings: Settings, options: BatchOptions, root: Path) -> dict:
    return {
        "id": case.id,
        "bytes": sum(f.stat().st_size for f in case.files),
        "input": case.input.relative_to(root).as_posix() or ".",
        "path": str(case.input),
        "kind": case.kind,
        "series_uid": case.series_uid,
        "outputs": {k: str(p) for k, p in outputs.items() if k != "marker"},
        "marker": str(outputs["marker"]),
        "key": key,
        "settings": settings.to_dict(),
        "read": {"spacing": options.spacing, "force": options.force},
        "window": options.window,
        "hu": options.hu,
        "format": options.format,
        "png_values": options.png_values,
    }


def _failed_row(task: dict, error: str) -> dict:
    return {"id": task["id"], "input": task["input"], "status": STATUS_FAILED, "error": error, "flags": [],
            "outputs": {}, "time_s": None}


class _Redispatch(logging.Handler):
    """Hands a record logged in a worker process to the logger of the same name in this process."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _init_worker(log_queue, level: int) -> None:
    """Pool worker start-up: one ITK thread per worker (the pool already uses every core; more threads only
    compete: 6 full-size scans took 9.3 s instead of 8.0 s on 2 workers), and lungseg's log records sent to
    the main process, which shows them its way."""
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    logger = logging.getLogger("lungseg")
    logger.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    logger.setLevel(level)
    logger.propagate = False


class _Pools:
    """Makes process pools whose workers start quickly and log through this process.

    With forkserver, the server that forks the workers is started (and imports lungseg) at once, so its
    start-up overlaps whatever this process does next (finding the cases).
    """

    def __init__(self) -> None:
        if "forkserver" in multiprocessing.get_all_start_methods():  # start from a process with lungseg imported
            self.context = multiprocessing.get_context("forkserver")
            self.context.set_forkserver_preload(PRELOAD_MODULES)
            multiprocessing.forkserver.ensure_running()
        else:
            self.context = multiprocessing.get_context("spawn")
        self.log_queue = self.context.Queue()
        self.listener = logging.handlers.QueueListener(self.log_queue, _Redispatch())
        self.listener.start()

    def __enter__(self) -> "_Pools":
        return self

    def __exit__(self, *exc) -> None:
        self.listener.stop()
        self.log_queue.close()

    def pool(self, workers: int) -> ProcessPoolExecutor:
        level = logging.getLogger("lungseg").getEffectiveLevel()
        return ProcessPoolExecutor(max_workers=workers, mp_context=self.context, initializer=_init_worker,
                                   initargs=(self.log_queue, level))


def _run_sequential(tasks: list[dict]) -> Iterator[dict]:
    for task in tasks:
        try:
            row = run_case(task)
        except Exception as err:  # e.g. the done-marker could not be written: record it, go on
            row = _failed_row(task, f"{type(err).__name__}: {err}")
        yield row


def _result_row(future: Future, task: dict) -> dict:
    """The row a finished future holds, or a failed row saying why there is none."""
    try:
        return future.result()
    except BrokenProcessPool:
        return _failed_row(task, "the worker process died while on this case (out of memory or killed?)")
    except Exception as err:  # e.g. the task could not be sent: record it, go on
        return _failed_row(task, f"{type(err).__name__}: {err}")


def _run_pools(pools: _Pools, tasks: list[dict], workers: int, fn: Callable[[dict], dict]) -> Iterator[dict]:
    """Run ``fn`` on each task in pools of ``workers`` processes from ``pools``, yielding rows as cases finish.

    At most ``workers + 1`` cases are in flight, so the main process stays small and, when a worker process
    dies (killed, out of memory), only those cases are suspects: each is run again alone in a fresh process
    (and fails only if it kills that one too), then the others go on in a fresh pool.
    """
    queue = deque(tasks)
    any_finished = False
    while queue:
        suspects: list[dict] = []
        with pools.pool(min(workers, len(queue))) as pool:
            running: dict[Future, dict] = {}
            try:
                while (queue or running) and not suspects:
                    while queue and len(running) <= workers:
                        try:
                            running[pool.submit(fn, queue[0])] = queue[0]
                        except BrokenProcessPool:  # broke between two submissions: see it in `wait` below
                            if not running:  # (or before the first: then this case is the suspect)
                                suspects.append(queue.popleft())
                            break
                        queue.popleft()
                    if suspects:
                        break
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        task = running.pop(future)
                        if isinstance(future.exception(), BrokenProcessPool):
                            suspects.append(task)
                        else:
                            any_finished = True
                            yield _result_row(future, task)
                suspects += running.values()  # the pool is broken: every case in flight is lost
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        if suspects:
            log.warning("a worker process died; running the %d cases it may have been on again, one at a time",
                        len(suspects))
        alone_runs = []
        for task in suspects:
            with pools.pool(1) as alone:
                alone_runs.append((alone.submit(fn, task), task))
                wait([alone_runs[-1][0]])
        if alone_runs and not any_finished and all(isinstance(f.exception(), BrokenProcessPool) for f, _ in alone_runs):
            raise LungsegError(
                "the worker processes die before finishing any case (out of memory, or they cannot start)",
                hint="try fewer --workers, or --workers 1 to run in this process and see the error")
        for future, task in alone_runs:
            any_finished = True
            yield _result_row(future, task)


def _run_dask(tasks: list[dict], address: str) -> Iterator[dict]:
    """Run the tasks on the Dask distributed scheduler at ``address`` (standard Client.submit / as_completed)."""
    try:
        from distributed import Client, as_completed as dask_as_completed
    except ImportError:
        raise MissingDependencyError("running on a Dask cluster (--scheduler) needs dask.distributed",
                                     hint='pip install "lungseg[dask]"') from None
    try:
        client = Client(address, timeout=SCHEDULER_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise LungsegError(f"cannot reach the Dask scheduler at {address}: {err}",
                           hint="check the address (e.g. tcp://host:8786) and that the scheduler is running") from None
    with client:
        futures = [client.submit(run_case, task, pure=False) for task in tasks]
        by_key = {f.key: task for f, task in zip(futures, tasks)}
        try:
            for future in dask_as_completed(futures, loop=client.loop):
                task = by_key[future.key]
                try:
                    row = future.result()
                except Exception as err:  # a worker lost or killed: record it, go on
                    row = _failed_row(task, f"{type(err).__name__}: {err}")
                yield row
        except BaseException:
            client.cancel(futures)
            raise


def _relative_outputs(row: dict, output_root: Path) -> dict:
    row = dict(row)
    outs = {}
    for kind, path in (row.get("outputs") or {}).items():
        p = Path(path)
        outs[kind] = p.relative_to(output_root).as_posix() if p.is_absolute() else p.as_posix()
    row["outputs"] = outs
    return row


def run_batch(
    input_root: str | os.PathLike,
    output_root: str | os.PathLike,
    *,
    settings: Settings | None = None,
    options: BatchOptions | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    pattern: str | None = None,
    force_rerun: bool = False,
    on_result: Callable[[dict, int, int], None] | None = None,
) -> BatchResult:
    """Segment every case under ``input_root`` into a mirror tree under ``output_root``; resumable.

    Cases whose outputs and done-marker exist for the same input files, settings, options and lungseg
    version are skipped (status ``"skipped-done"``). A failing case is recorded and the run goes on.
    ``results.csv`` and ``index.html`` are written at the end, also when the run is interrupted.

    Parameters
    ----------
    input_root, output_root : path
        Where the cases are, and where the outputs go (created if needed).
    settings : Settings, optional
    options : BatchOptions, optional
    workers : int, optional
        Processes to use (default: every core); 1 runs the cases one after the other in this process.
    scheduler : str, optional
        Address of a running Dask distributed scheduler (``tcp://host:8786``); used instead of ``workers``.
        Its workers need lungseg installed and must see ``input_root`` and ``output_root`` at the same paths
        (a shared file system): only paths and small result dicts travel.
    pattern : str, optional
        Glob on the cases' relative paths (see ``discover_cases``).
    force_rerun : bool
        Redo every case even when its outputs are up to date.
    on_result : callable, optional
        Called as ``on_result(row, n_handled, n_cases)`` after each case (progress reporting).

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError
        When ``input_root`` is not a folder.
    SettingsError
        When ``workers`` is below 1.
    MissingDependencyError
        When ``scheduler`` is given and dask.distributed is not installed.
    """
    settings = settings or Settings()
    options = options or BatchOptions()
    if workers is not None and workers < 1:
        raise SettingsError(f"workers must be at least 1, got {workers}")
    n_workers = workers or default_workers()
    use_pool = not scheduler and n_workers > 1
    with _Pools() if use_pool else contextlib.nullcontext() as pools:
        return _run_batch(Path(input_root).resolve(), Path(output_root).resolve(), settings, options,
                          pattern=pattern, force_rerun=force_rerun, on_result=on_result, pools=pools,
                          scheduler=scheduler, n_workers=n_workers)


def _runner(tasks: list[dict], pools: _Pools | None, scheduler: str | None, n_workers: int) -> Iterable[dict]:
    """Rows of the tasks: from the Dask scheduler, from the process pools, or computed here one by one."""
    if not tasks:
        return ()
    tasks = sorted(tasks, key=lambda t: -t["bytes"])  # largest first: no big case left alone at the end
    if scheduler:
        return _run_dask(tasks, scheduler)
    if pools is None or len(tasks) == 1:
        return _run_sequential(tasks)
    return _run_pools(pools, tasks, n_workers, run_case)


def _run_batch(in_root: Path, out_root: Path, settings: Settings, options: BatchOptions, *, pattern: str | None,
               force_rerun: bool, on_result: Callable | None, pools: _Pools | None, scheduler: str | None,
               n_workers: int) -> BatchResult:
    discovery = discover_cases(in_root, pattern=pattern, exclude=out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries([out_root / "results.csv", out_root / "index.html"])
    n_cases = len(discovery.cases)
    log.info("%d cases under %s (%d files that are not images skipped)", n_cases, in_root, discovery.non_image_files)
    if n_cases == 0:
        log.warning("no image or DICOM series found under %s%s", in_root, f" matching {pattern!r}" if pattern else "")

    rows: dict[str, dict] = {}

    def collect(row: dict) -> None:
        rows[row["id"]] = _relative_outputs(row, out_root)
        if on_result is not None:
            on_result(rows[row["id"]], len(rows), n_cases)

    tasks = []
    for case in discovery.cases:
        outputs = case_outputs(case, out_root, options)
        key = _case_key(case, settings, options)
        row = None if force_rerun else _done_row(outputs, key)
        if row is not None:
            row["outputs"] = {k: str(p) for k, p in outputs.items() if k != "marker"}
            collect(row)
        else:
            tasks.append(_task(case, outputs, key, settings, options, in_root))

    runner = _runner(tasks, pools, scheduler, n_workers)
    interrupted = True
    try:
        for row in runner:
            collect(row)
        interrupted = False
    finally:
        ordered = [rows[k] for k in sorted(rows)]
        csv_path = write_results_csv(ordered, out_root / "results.csv")
        html_path = write_index_html(ordered, out_root / "index.html", title=f"lungseg batch: {in_root.name}",
                                     n_cases=n_cases, interrupted=interrupted)
    return BatchResult(rows=ordered, discovery=discovery, results_csv=csv_path, index_html=html_path)
