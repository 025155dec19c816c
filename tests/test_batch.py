"""lungseg batch: case discovery, parallel = sequential, resuming, failures, results.csv/index.html, Dask.

Most tests build a small synthetic tree (phantoms whose answer does not matter: what is checked is that
the batch machinery gives the same numbers however it is run). The real DICOM series is used where noted
and skipped cleanly without ../shared/data.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image

from lungseg.batch import BatchOptions, case_outputs, discover_cases, run_batch
from lungseg.batch import runner as batch_runner
from lungseg.batch import worker as batch_worker
from lungseg.cli import main
from lungseg.errors import InputError, LungsegError, MissingDependencyError, SettingsError
from lungseg.settings import Settings

from conftest import shared

NUMBER_COLUMNS = ("right_ml", "left_ml", "total_ml", "right_cm2", "left_cm2", "total_cm2", "mean_hu", "laa950_pct")


# --------------------------------------------------------------------------------------------- inputs
def phantom(shape=(12, 48, 48), lung_hu=-850, shift_px=0) -> np.ndarray:
    """A small chest: an elliptic body (40 HU) in air holding two round lungs (``lung_hu``)."""
    p, r, c = np.mgrid[: shape[0], : shape[1], : shape[2]]
    cy, cx = shape[1] / 2, shape[2] / 2 + shift_px
    out = np.full(shape, -1000.0)
    body = ((r - cy) / (0.42 * shape[1])) ** 2 + ((c - cx) / (0.46 * shape[2])) ** 2 < 1
    out[body] = 40
    for side in (-1, 1):
        lung = ((r - cy) / (0.25 * shape[1])) ** 2 + ((c - cx - side * 0.2 * shape[2]) / (0.13 * shape[2])) ** 2 < 1
        out[body & lung & (p > 0) & (p < shape[0] - 1)] = lung_hu
    noise = np.random.default_rng(sum(shape) + shift_px).normal(0.0, 15.0, shape)
    return np.round(out + noise).astype(np.int16)


def write_volume(path: Path, array: np.ndarray, spacing=(5.0, 4.0, 4.0)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(array)
    img.SetSpacing(tuple(float(s) for s in spacing[::-1]))
    sitk.WriteImage(img, str(path))
    return path


def write_png(path: Path, array: np.ndarray) -> Path:
    """A 2D slice saved as an 8-bit picture with the lung window -1200..600 HU."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = np.clip((array.astype(float) + 1200) / 1800 * 255, 0, 255).astype(np.uint8)
    Image.fromarray(grey).save(path)
    return path


def write_dicom_series(folder: Path, array: np.ndarray, *, series_uid: str, modality: str = "CT",
                       image_type=("ORIGINAL", "PRIMARY", "AXIAL"), prefix: str = "im") -> list[Path]:
    """Write ``array`` (P, R, C) as one DICOM file per plane, 5 mm apart, 4 mm pixels."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, plane in enumerate(array):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.StudyInstanceUID = modality, series_uid, "1.2.826.0.1.3680043.8.498.7"
        ds.PatientID, ds.PatientName, ds.ImageType, ds.InstanceNumber = "phantom", "Phantom^A", list(image_type), k + 1
        ds.FrameOfReferenceUID, ds.SeriesNumber = "1.2.826.0.1.3680043.8.498.8", 1
        ds.ImagePositionPatient, ds.ImageOrientationPatient = [0, 0, 5.0 * k], [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [4.0, 4.0], 5.0
        ds.Rows, ds.Columns = plane.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = plane.astype("<i2").tobytes()
        path = folder / f"{prefix}{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """A mixed input tree: volumes, slices, two DICOM series in one folder, a localizer, an MR, broken files."""
    root = tmp_path / "in"
    write_volume(root / "vol" / "a.nii.gz", phantom())
    write_volume(root / "vol" / "deep" / "b.nrrd", phantom(lung_hu=-900, shift_px=3))
    write_volume(root / "vol" / "c.mha", phantom(shape=(10, 40, 48)))
    write_png(root / "slices" / "s1.png", phantom()[6])
    write_png(root / "slices" / "s2.png", phantom(shift_px=-4)[5])
    write_dicom_series(root / "dicom" / "study", phantom(shape=(6, 32, 32)), series_uid="1.2.3.1", prefix="a")
    write_dicom_series(root / "dicom" / "study", phantom(shape=(5, 32, 32)), series_uid="1.2.3.2", prefix="b")
    write_dicom_series(root / "dicom" / "scout", phantom(shape=(1, 32, 32)), series_uid="1.2.3.9",
                       image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    write_dicom_series(root / "dicom" / "mr", phantom(shape=(4, 32, 32)), series_uid="1.2.3.8", modality="MR")
    broken = root / "broken"
    good = write_volume(broken / "truncated.nrrd", phantom())
    good.write_bytes(good.read_bytes()[:600])
    (broken / "text.nii.gz").write_text("this is not an image\n")
    (root / "README.txt").write_text("notes\n")
    (root / "vol" / "table.csv").write_text("a,b\n1,2\n")
    return root


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def numbers(rows: dict[str, dict[str, str]]) -> dict[str, tuple]:
    """What must not depend on how a run was done: status class, error and the figures of each case."""
    return {k: (r["status"] != "failed", r["error"], r["flags"], tuple(r[c] for c in NUMBER_COLUMNS)) for k, r in rows.items()}


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.is_file()]


EXPECTED_IDS = {
    "broken/text.nii.gz", "broken/truncated.nrrd", "dicom/study#1.2.3.1", "dicom/study#1.2.3.2",
    "slices/s1.png", "slices/s2.png", "vol/a.nii.gz", "vol/c.mha", "vol/deep/b.nrrd",
}


# --------------------------------------------------------------------------------------------- discovery
def test_discovery_finds_every_case_with_stable_ids(tree: Path):
    found = discover_cases(tree)
    assert {c.id for c in found.cases} == EXPECTED_IDS
    assert [c.id for c in found.cases] == sorted(c.id for c in found.cases)
    assert [c.id for c in discover_cases(tree).cases] == [c.id for c in found.cases]  # stable
    assert found.non_image_files == 2  # README.txt, table.csv
    reasons = dict(found.skipped_series)
    assert "localizer" in reasons["dicom/scout#1.2.3.9"]
    assert "MR" in reasons["dicom/mr#1.2.3.8"]
    by_id = {c.id: c for c in found.cases}
    assert len(by_id["dicom/study#1.2.3.1"].files) == 6 and len(by_id["dicom/study#1.2.3.2"].files) == 5
    assert by_id["dicom/study#1.2.3.1"].series_uid == "1.2.3.1"
    assert by_id["slices/s1.png"].kind == "image2d" and by_id["vol/a.nii.gz"].kind == "file"


def test_pattern_restricts_cases(tree: Path):
    assert {c.id for c in discover_cases(tree, pattern="vol/*").cases} == {"vol/a.nii.gz", "vol/c.mha", "vol/deep/b.nrrd"}
    assert {c.id for c in discover_cases(tree, pattern="dicom/*").cases} == {"dicom/study#1.2.3.1", "dicom/study#1.2.3.2"}
    assert discover_cases(tree, pattern="*.png").cases[0].id == "slices/s1.png"


def test_outputs_mirror_the_input_tree(tree: Path, tmp_path: Path):
    cases = {c.id: c for c in discover_cases(tree).cases}
    out = tmp_path / "out"
    assert case_outputs(cases["vol/deep/b.nrrd"], out, BatchOptions())["mask"] == out / "vol/deep/b.mask.nii.gz"
    assert case_outputs(cases["slices/s1.png"], out, BatchOptions(masked=True))["masked"] == out / "slices/s1.masked.png"
    assert case_outputs(cases["dicom/study#1.2.3.2"], out, BatchOptions(mask_ext=".nrrd"))["mask"] == out / "dicom/study/1.2.3.2.mask.nrrd"
    seg = case_outputs(cases["dicom/study#1.2.3.2"], out, BatchOptions(format="seg"))["mask"]
    assert seg == out / "dicom/study/1.2.3.2.mask.seg.dcm"
    assert case_outputs(cases["vol/a.nii.gz"], out, BatchOptions(format="seg"))["mask"] == out / "vol/a.mask.nii.gz"
    no_extras = case_outputs(cases["vol/a.nii.gz"], out, BatchOptions(qc=False, report=False))
    assert set(no_extras) == {"mask", "marker"}


def test_same_stem_files_get_distinct_outputs(tmp_path: Path):
    write_volume(tmp_path / "in" / "x.nii.gz", phantom())
    write_volume(tmp_path / "in" / "x.nrrd", phantom())
    cases = discover_cases(tmp_path / "in").cases
    masks = {case_outputs(c, tmp_path / "out", BatchOptions())["mask"] for c in cases}
    assert len(masks) == 2


def test_output_root_inside_input_is_not_searched(tree: Path):
    run_batch(tree, tree / "out", workers=1, pattern="vol/a.nii.gz")
    assert (tree / "out" / "vol" / "a.mask.nii.gz").exists()
    assert not any(c.id.startswith("out/") for c in discover_cases(tree, exclude=tree / "out").cases)
    again = run_batch(tree, tree / "out", workers=1)
    assert not any(r["id"].startswith("out/") for r in again.rows)


def test_input_root_must_be_a_folder(tmp_path: Path):
    with pytest.raises(InputError, match="is not a folder"):
        discover_cases(tmp_path / "missing")


# --------------------------------------------------------------------------------------------- running
def test_parallel_and_sequential_runs_agree(tree: Path, tmp_path: Path, capsys):
    seq, par = tmp_path / "seq", tmp_path / "par"
    assert main(["batch", str(tree), str(seq), "--workers", "1"]) == 1  # the broken files fail
    assert main(["batch", str(tree), str(par), "--workers", "2"]) == 1
    a, b = read_csv(seq / "results.csv"), read_csv(par / "results.csv")
    assert set(a) == EXPECTED_IDS
    assert numbers(a) == numbers(b)
    assert a["broken/text.nii.gz"]["status"] == "failed" and a["broken/text.nii.gz"]["error"]
    assert a["broken/truncated.nrrd"]["status"] == "failed" and a["broken/truncated.nrrd"]["error"]
    assert a["vol/a.nii.gz"]["status"] == "ok" and float(a["vol/a.nii.gz"]["total_ml"]) > 0
    assert a["slices/s1.png"]["status"] == "ok" and a["slices/s1.png"]["total_ml"] == ""
    assert float(a["slices/s1.png"]["total_cm2"]) > 0
    assert (par / "slices" / "s1.mask.png").exists() and (par / "vol" / "deep" / "b.qc.png").exists()
    assert not (par / "broken" / "text.mask.nii.gz").exists()  # no output of a failed case
    assert temporaries(seq) == [] and temporaries(par) == []
    err = capsys.readouterr()
    assert "failed" in err.out and "[9/9]" in err.err  # plain progress lines when stderr is not a terminal


def test_failed_case_does_not_stop_the_run_and_sets_exit_code(tmp_path: Path, capsys):
    root = tmp_path / "in"
    write_volume(root / "ok.nii.gz", phantom())
    (root / "bad.nrrd").write_text("not an nrrd\n")
    assert main(["batch", str(root), str(tmp_path / "out"), "--workers", "1"]) == 1
    rows = read_csv(tmp_path / "out" / "results.csv")
    assert rows["ok.nii.gz"]["status"] == "ok"
    assert rows["bad.nrrd"]["status"] == "failed"
    assert "\n" not in rows["bad.nrrd"]["error"] and len(rows["bad.nrrd"]["error"]) > 10
    (root / "bad.nrrd").unlink()
    assert main(["batch", str(root), str(tmp_path / "out"), "--workers", "1"]) == 0


def test_resume_after_interrupt_matches_an_uninterrupted_run(tree: Path, tmp_path: Path, monkeypatch):
    full = run_batch(tree, tmp_path / "full", workers=1)
    out = tmp_path / "out"
    real_write = batch_worker.write_atomic
    markers = []

    def interrupt_on_third_marker(path, write, **kwargs):
        if str(path).endswith(".done.json"):
            markers.append(path)
            if len(markers) == 3:
                raise KeyboardInterrupt
        return real_write(path, write, **kwargs)

    monkeypatch.setattr(batch_worker, "write_atomic", interrupt_on_third_marker)
    with pytest.raises(KeyboardInterrupt):
        run_batch(tree, out, workers=1)
    monkeypatch.undo()
    partial = read_csv(out / "results.csv")  # written for the cases done before the interrupt
    assert len(partial) >= 2 and all(r["status"] in ("ok", "failed") for r in partial.values())
    done = [p for p in out.rglob("*.done.json")]
    assert len(done) == 2
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.mask.*")}
    assert "interrupted" in (out / "index.html").read_text()

    resumed = run_batch(tree, out, workers=1)
    statuses = {r["id"]: r["status"] for r in resumed.rows}
    assert sum(s == "skipped-done" for s in statuses.values()) == 2
    for path in done:  # the done cases were not recomputed
        mask = next(path.parent.glob(path.name.replace(".done.json", ".mask.*")))
        assert mask.stat().st_mtime_ns == mtimes[mask]
    assert numbers(read_csv(out / "results.csv")) == numbers(read_csv(full.results_csv))
    assert temporaries(out) == []


def test_killed_run_resumes(tmp_path: Path):
    root = tmp_path / "in"
    for i in range(14):
        write_volume(root / f"case{i:02d}.nii.gz", phantom(shift_px=i % 5))
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "from lungseg.cli import entry; entry()", "-q", "batch", str(root), str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not list(out.rglob("*.done.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    n_done = len(list(out.rglob("*.done.json")))
    assert 1 <= n_done < 14
    result = run_batch(root, out, workers=2)
    statuses = [r["status"] for r in result.rows]
    assert statuses.count("skipped-done") == n_done and statuses.count("ok") == 14 - n_done
    assert temporaries(out) == []
    assert len(list(out.glob("*.mask.nii.gz"))) == 14


def test_temporaries_left_by_a_killed_run_are_removed(tmp_path: Path):
    write_volume(tmp_path / "in" / "a.nii.gz", phantom())
    out = tmp_path / "out"
    out.mkdir()
    left = [out / ".a.mask.nii.gz.k2j3.tmp.nii.gz", out / ".a.done.json.x1.tmp", out / ".results.csv.q9.tmp"]
    for path in left:
        path.write_bytes(b"half")
    (out / ".keep-me").write_text("not ours")
    run_batch(tmp_path / "in", out, workers=1)
    assert temporaries(out) == [out / ".keep-me"]


def test_changing_a_setting_or_an_input_reprocesses(tmp_path: Path):
    root = tmp_path / "in"
    write_volume(root / "a.nii.gz", phantom())
    write_volume(root / "b.nii.gz", phantom(shift_px=2))
    out = tmp_path / "out"
    first = run_batch(root, out, workers=1)
    assert [r["status"] for r in first.rows] == ["ok", "ok"]
    assert [r["status"] for r in run_batch(root, out, workers=1).rows] == ["skipped-done", "skipped-done"]
    changed = Settings().replace(closing_radius_mm=4.0)
    assert [r["status"] for r in run_batch(root, out, workers=1, settings=changed).rows] == ["ok", "ok"]
    assert [r["status"] for r in run_batch(root, out, workers=1, settings=changed, options=BatchOptions(qc=False)).rows] == ["ok", "ok"]
    write_volume(root / "b.nii.gz", phantom(shift_px=3))  # a new input file
    rows = run_batch(root, out, workers=1, settings=changed, options=BatchOptions(qc=False)).rows
    assert [r["status"] for r in rows] == ["skipped-done", "ok"]
    rows = run_batch(root, out, workers=1, settings=changed, options=BatchOptions(qc=False), force_rerun=True).rows
    assert [r["status"] for r in rows] == ["ok", "ok"]
    (out / "a.mask.nii.gz").unlink()  # a missing output
    rows = run_batch(root, out, workers=1, settings=changed, options=BatchOptions(qc=False)).rows
    assert [r["status"] for r in rows] == ["ok", "skipped-done"]


def crash_on_b(task: dict) -> dict:
    """Runs in a pool worker: dies like an out-of-memory kill on case b."""
    if task["id"] == "b.nii.gz":
        os._exit(9)
    return batch_worker.run_case(task)


def test_a_dying_worker_fails_only_its_case(tmp_path: Path):
    root = tmp_path / "in"
    for name in ("a", "b", "c"):
        write_volume(root / f"{name}.nii.gz", phantom())
    out = tmp_path / "out"
    cases = discover_cases(root).cases
    settings, options = Settings(), BatchOptions(qc=False, report=False)
    tasks = [batch_runner._task(c, case_outputs(c, out, options), {}, settings, options, root.resolve()) for c in cases]
    with batch_runner._Pools() as pools:
        rows = {r["id"]: r for r in batch_runner._run_pools(pools, tasks, 2, crash_on_b)}
    assert rows["b.nii.gz"]["status"] == "failed" and "worker process died" in rows["b.nii.gz"]["error"]
    assert rows["a.nii.gz"]["status"] == "ok" and rows["c.nii.gz"]["status"] == "ok"


def crash_always(task: dict) -> dict:
    """Runs in a pool worker: dies on every case (a broken environment)."""
    os._exit(9)


def test_workers_that_always_die_stop_the_run_with_a_clear_error(tmp_path: Path):
    root = tmp_path / "in"
    for name in ("a", "b", "c"):
        write_volume(root / f"{name}.nii.gz", phantom())
    cases = discover_cases(root).cases
    settings, options = Settings(), BatchOptions(qc=False, report=False)
    tasks = [batch_runner._task(c, case_outputs(c, tmp_path / "out", options), {}, settings, options, root.resolve())
             for c in cases]
    with pytest.raises(LungsegError, match="the worker processes die before finishing any case") as err:
        with batch_runner._Pools() as pools:
            list(batch_runner._run_pools(pools, tasks, 2, crash_always))
    assert "--workers 1" in str(err.value)


# --------------------------------------------------------------------------------------------- summaries
def test_index_html_escapes_and_puts_failures_first(tmp_path: Path):
    root = tmp_path / "in"
    write_volume(root / "a<b>&'x.nii.gz", phantom())
    (root / "z_bad.nii.gz").write_text("<script>alert(1)</script>")
    write_volume(root / "m_soft_tissue_only.nii.gz", phantom(lung_hu=40))
    result = run_batch(root, tmp_path / "out", workers=1)
    assert "no_lung_found" in next(r for r in result.rows if r["id"] == "m_soft_tissue_only.nii.gz")["flags"]
    page = result.index_html.read_text()
    assert page.index("z_bad.nii.gz") < page.index("m_soft_tissue_only") < page.index("a&lt;b&gt;")
    assert "<script>" not in page and "a<b>" not in page
    assert "a&lt;b&gt;&amp;&#x27;x.nii.gz" in page
    assert page.index("z_bad.nii.gz") < page.index("a&lt;b&gt;")  # the failure comes first
    assert 'src="a%3Cb%3E%26%27x.qc.png"' in page  # a relative link to the thumbnail, opening from disk
    assert (tmp_path / "out" / "a<b>&'x.qc.png").exists()


# --------------------------------------------------------------------------------------------- errors
def test_bad_batch_options_are_refused():
    with pytest.raises(SettingsError, match="batch format must be 'auto' or 'seg'"):
        BatchOptions(format="dicom")
    with pytest.raises(SettingsError, match="mask extension '.png' is not supported"):
        BatchOptions(mask_ext=".png")
    with pytest.raises(SettingsError, match="png_values must be 'binary' or 'labels'"):
        BatchOptions(png_values="grey")


def test_workers_below_one_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match="workers must be at least 1, got 0"):
        run_batch(tmp_path, tmp_path / "out", workers=0)


def test_cli_usage_errors(tmp_path: Path, capsys):
    assert main(["batch", str(tmp_path), str(tmp_path / "o"), "--series", "1.2.3"]) == 2
    assert "--series does not apply to batch runs" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), str(tmp_path / "o"), "--workers", "two"]) == 2
    assert "expected a whole number, got 'two'" in capsys.readouterr().err
    assert main(["batch", str(tmp_path / "nothing"), str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_missing_dask_gives_an_install_hint(tmp_path: Path, monkeypatch):
    write_volume(tmp_path / "in" / "a.nii.gz", phantom())
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingDependencyError, match=r'needs dask.distributed \(pip install "lungseg\[dask\]"\)'):
        run_batch(tmp_path / "in", tmp_path / "out", scheduler="tcp://127.0.0.1:1")


def test_unreachable_scheduler_is_one_clear_error(tmp_path: Path, monkeypatch):
    pytest.importorskip("distributed")
    write_volume(tmp_path / "in" / "a.nii.gz", phantom())
    monkeypatch.setattr(batch_runner, "SCHEDULER_TIMEOUT_S", 0.5)
    with pytest.raises(LungsegError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_batch(tmp_path / "in", tmp_path / "out", scheduler="tcp://127.0.0.1:9")


# --------------------------------------------------------------------------------------------- Dask
def test_dask_local_cluster_matches_the_process_pool(tree: Path, tmp_path: Path):
    distributed = pytest.importorskip("distributed")
    pool = run_batch(tree, tmp_path / "pool", workers=2)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        dask = run_batch(tree, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert numbers(read_csv(dask.results_csv)) == numbers(read_csv(pool.results_csv))
    assert temporaries(tmp_path / "dask") == []


# --------------------------------------------------------------------------------------------- real data
def test_real_dicom_series_beside_its_nrrd(tmp_path: Path):
    root = tmp_path / "in"
    shutil.copytree(shared("cip", "ct-64Dicom"), root / "cip" / "ct-64Dicom")
    shutil.copy(shared("cip", "ct-64.nrrd"), root / "cip" / "ct-64.nrrd")
    result = run_batch(root, tmp_path / "out", workers=2)
    rows = {r["id"].split("#")[0]: r for r in result.rows}
    assert set(rows) == {"cip/ct-64Dicom", "cip/ct-64.nrrd"}
    dicom, nrrd = rows["cip/ct-64Dicom"], rows["cip/ct-64.nrrd"]
    assert dicom["status"] == "ok", dicom["error"]
    assert nrrd["status"] == "ok", nrrd["error"]
    assert dicom["total_ml"] == pytest.approx(nrrd["total_ml"], rel=1e-4) and nrrd["total_ml"] > 1000
    assert (tmp_path / "out" / "cip" / "ct-64Dicom" / f"{dicom['id'].split('#')[1]}.mask.nii.gz").exists()


def test_progress_bar_on_a_terminal(monkeypatch):
    import io

    from lungseg.cli.batch import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    term = Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    progress = _Progress(quiet=False)
    progress({"id": "a", "status": "ok", "time_s": 1.0}, 1, 2)
    progress({"id": "b", "status": "failed", "error": "bad", "time_s": None}, 2, 2)
    progress.close()
    text = term.getvalue()
    assert "2/2" in text and "failed=1" in text and "lungseg: [" not in text  # a bar, not log lines


def test_seg_format_for_dicom_cases_only(tmp_path: Path):
    pytest.importorskip("highdicom")
    root = tmp_path / "in"
    write_dicom_series(root / "ct", phantom(shape=(8, 40, 40)), series_uid="1.2.3.4")
    write_volume(root / "vol.nii.gz", phantom())
    result = run_batch(root, tmp_path / "out", workers=1, options=BatchOptions(format="seg", qc=False))
    rows = {r["id"]: r for r in result.rows}
    assert rows["ct#1.2.3.4"]["status"] == "ok", rows["ct#1.2.3.4"]["error"]
    assert rows["ct#1.2.3.4"]["outputs"]["mask"] == "ct/1.2.3.4.mask.seg.dcm"
    assert (tmp_path / "out" / "ct" / "1.2.3.4.mask.seg.dcm").exists()
    assert rows["vol.nii.gz"]["outputs"]["mask"] == "vol.mask.nii.gz"
    assert "seg_needs_dicom_input" in rows["vol.nii.gz"]["flags"]
