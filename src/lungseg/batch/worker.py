"""What runs in a worker: segment one case, write its outputs, then its done-marker.

``run_case`` takes a small dict (paths and settings, no pixels) and returns a small dict (status,
error, volumes, densities, time), so it travels cheaply to a process pool or a Dask cluster. The
done-marker ``<case>.done.json`` is written last, after every output is in place: a case with a valid
marker is complete, and a case without one is redone by the next run.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from ..io.writers import write_atomic

__all__ = ["run_case", "read_marker", "remove_stale_temporaries"]

log = logging.getLogger(__name__)

MARKER_SUFFIX = ".done.json"


def remove_stale_temporaries(paths: list[str | os.PathLike]) -> None:
    """Delete the temporary files (``.<name>.*``) an interrupted run may have left beside these outputs."""
    for path in map(Path, paths):
        if path.parent.is_dir():
            for tmp in path.parent.glob(f".{glob.escape(path.name)}.*"):
                log.info("removing %s, left by an interrupted run", tmp)
                tmp.unlink(missing_ok=True)


def read_marker(path: str | os.PathLike) -> dict | None:
    """The content of a done-marker, or None when it is missing or unreadable (the case is then redone)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("ignoring the unreadable marker %s (%s): the case will be redone", path, err)
        return None
    return data if isinstance(data, dict) else None


def _numbers(report: dict) -> dict[str, Any]:
    """The figures of ``results.csv`` taken from a report of ``lungseg.measure.build_report``.

    Volumes (3D) in ml, areas (2D) in cm²; ``mean_hu`` and ``laa950_pct`` of both lungs, None when the
    report withholds them (calibrated intensities, no lung).

    Examples
    --------
    >>> lungs = {side: {"volume_ml": v, "area_cm2": None, "mean_hu": None, "laa950_pct": None}
    ...          for side, v in (("right", 1.5), ("left", 2.0), ("both", 3.5))}
    >>> _numbers({"lungs": lungs})["total_ml"], _numbers({"lungs": lungs})["mean_hu"]
    (3.5, None)
    """
    lungs = report["lungs"]
    unit, key = ("ml", "volume_ml") if lungs["both"].get("volume_ml") is not None else ("cm2", "area_cm2")
    out = {f"{name}_{unit}": lungs[side][key] for name, side in (("right", "right"), ("left", "left"), ("total", "both"))}
    out["mean_hu"] = lungs["both"].get("mean_hu")
    out["laa950_pct"] = lungs["both"].get("laa950_pct")
    return out


def _write_outputs(res: Any, outputs: dict[str, str], task: dict) -> tuple[dict[str, str], dict]:
    """Write the mask and the requested extras of one result with lungseg's writers.

    Returns kind -> path of the files written, and the report (``lungseg.measure.build_report``),
    which is computed once whether or not it is written.
    """
    from ..io import write_image, write_labels
    from ..measure import build_report

    Path(outputs["mask"]).parent.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if task["format"] == "seg" and task["kind"] == "dicom":
        from ..io.dicom_seg import write_seg

        written["mask"] = write_seg(res, outputs["mask"], keep_metadata=False)
    else:
        written["mask"] = write_labels(res.labels, res.volume, outputs["mask"], png_values=task["png_values"])
    if "masked" in outputs:
        written["masked"] = write_image(res.masked(), outputs["masked"])
    if "qc" in outputs:
        from ..render import write_qc

        written["qc"] = write_qc(res, outputs["qc"])
    report = build_report(res, outputs=written)
    if "report" in outputs:
        text = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        written["report"] = write_atomic(outputs["report"], lambda fh: fh.write(text))
    return {kind: str(path) for kind, path in written.items()}, report


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_case(task: dict) -> dict:
    """Segment one case and write its outputs; never raises for a bad case.

    Parameters
    ----------
    task : dict
        Made by ``lungseg.batch.runner``: ``id``, ``input``, ``kind``, ``series_uid``, ``outputs``
        (kind -> path), ``marker`` (path), ``key`` (what the marker records), ``settings`` (dict),
        ``read`` (options of ``lungseg.read``), ``window``, ``hu``, ``format``, ``png_values``.

    Returns
    -------
    dict
        One row of ``results.csv``: ``id``, ``input``, ``status`` (``"ok"`` or ``"failed"``), ``error``,
        the figures of :func:`_numbers`, ``time_s``, ``flags`` (list of str), ``outputs`` (kind -> path).
        An error is the lungseg message, or the exception's type and message for an unexpected one.
    """
    from ..api import segment
    from ..errors import LungsegError
    from ..settings import Settings

    t0 = time.perf_counter()
    row: dict[str, Any] = {"id": task["id"], "input": task["input"], "status": "failed", "error": "", "flags": [],
                           "outputs": {}}
    remove_stale_temporaries([*task["outputs"].values(), task["marker"]])
    Path(task["marker"]).unlink(missing_ok=True)  # outputs from an older run are stale from here on
    try:
        res = segment(task["path"], settings=Settings.from_dict(task["settings"]), window=task["window"],
                      hu=task["hu"], series_uid=task["series_uid"], **task["read"])
        row["outputs"], report = _write_outputs(res, task["outputs"], task)
        row.update(_numbers(report))
        row["flags"] = list(report["flags"])
        if task["format"] == "seg" and task["kind"] != "dicom":
            row["flags"].append("seg_needs_dicom_input")
        row["status"] = "ok"
    except LungsegError as err:
        row["error"] = _one_line(str(err))
    except Exception as err:  # one bad case never stops the run: record it and go on
        row["error"] = _one_line(f"{type(err).__name__}: {err}")
        log.debug("unexpected error in case %s", task["id"], exc_info=True)
    row["time_s"] = time.perf_counter() - t0
    if row["status"] == "ok":
        text = json.dumps({"key": task["key"], "row": row}, indent=1)
        write_atomic(task["marker"], lambda fh: fh.write(text))
    else:  # leave no mask of a failed case behind, nor a stale one from an earlier run
        for path in task["outputs"].values():
            Path(path).unlink(missing_ok=True)
    return row
