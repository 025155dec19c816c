"""``lungseg evaluate`` and ``lungseg segment --report --qc``, run in-process through ``main``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lungseg.cli import main

from conftest import shared


def write_labels(path, labels, spacing=(2.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)):
    img = sitk.GetImageFromArray(labels)
    img.SetSpacing(spacing[::-1])
    img.SetOrigin(origin)
    sitk.WriteImage(img, str(path))
    return str(path)


def boxes():
    labels = np.zeros((14, 20, 30), np.uint8)
    labels[2:8, 4:16, 3:12] = 1
    labels[2:8, 4:16, 18:27] = 2
    return labels


def test_evaluate_json_scores_a_shifted_prediction(tmp_path, capsys):
    ref = boxes()
    pred = np.roll(ref, 3, axis=0)  # shifted by 3 slices of 2 mm: Dice = 3/6 per lung
    code = main(["evaluate", write_labels(tmp_path / "p.nrrd", pred), write_labels(tmp_path / "r.nrrd", ref), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pred_convention"] == "lungmask" and out["resampled"] is False
    for name in ("right", "left", "whole"):
        assert out["scores"][name]["dice"] == pytest.approx(0.5)
        assert out["scores"][name]["hd_mm"] == pytest.approx(6.0)
        assert out["scores"][name]["volume_diff_pct"] == 0.0


def test_evaluate_table_with_conventions(tmp_path, capsys):
    ref = boxes()
    luna = np.choose(ref, [0, 3, 4]).astype(np.uint8)  # LUNA16: 3 right, 4 left
    code = main(["evaluate", write_labels(tmp_path / "p.nrrd", ref), write_labels(tmp_path / "r.nrrd", luna),
                 "--ref-convention", "luna16"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["Dice", "HD95", "mm"]
    for line, name in zip(lines[1:4], ("right lung", "left lung", "whole lung")):
        assert line.startswith(name) and line.split()[2] == "1.0000"


def test_evaluate_binary_prediction_scores_only_the_whole_lung(tmp_path, capsys):
    ref = boxes()
    code = main(["evaluate", write_labels(tmp_path / "p.nrrd", (ref > 0).astype(np.uint8)),
                 write_labels(tmp_path / "r.nrrd", ref), "--pred-convention", "binary"])
    assert code == 0
    out = capsys.readouterr().out
    assert "right lung: the prediction does not say which lung is which" in out


def test_evaluate_png_masks_without_pixel_size(tmp_path, capsys):
    from PIL import Image

    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 5:20] = 255  # 300 pixels
    Image.fromarray(mask).save(tmp_path / "m.png")
    path = str(tmp_path / "m.png")
    assert main(["evaluate", path, path, "--pred-convention", "binary", "--ref-convention", "binary"]) == 0
    assert "has no pixel size: distances and sizes assume 1 mm pixels (give --spacing MM)" in capsys.readouterr().out
    code = main(["evaluate", path, path, "--pred-convention", "binary", "--ref-convention", "binary",
                 "--spacing", "0.5", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["spacing_mm"] == [0.5, 0.5]
    assert out["scores"]["whole"]["pred_cm2"] == pytest.approx(300 * 0.25 / 100)


def test_evaluate_refuses_a_different_grid_unless_asked_to_resample(tmp_path, capsys):
    ref = boxes()
    pred_path = write_labels(tmp_path / "p.nrrd", ref)
    ref_path = write_labels(tmp_path / "r.nrrd", ref, origin=(0.0, 0.0, 4.0))  # two slices higher
    assert main(["evaluate", pred_path, ref_path]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lungseg: error: the reference is on a different grid from the prediction: origin")
    assert "--resample" in err and "Traceback" not in err
    assert main(["evaluate", pred_path, ref_path, "--resample", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["resampled"] is True
    assert out["scores"]["whole"]["dice"] == pytest.approx(4 / 6)  # 6 slices overlap on 4 after a 2-slice shift


def test_evaluate_refuses_values_outside_the_convention(tmp_path, capsys):
    lobes = boxes() * 5
    path = write_labels(tmp_path / "p.nrrd", lobes)
    assert main(["evaluate", path, path]) == 2
    assert "values (5, 10) that the 'lungmask' convention does not use" in capsys.readouterr().err


@pytest.mark.data
def test_evaluate_the_two_cip_codings_agree(capsys):
    whole, lm = shared("cip", "wholeLung-64.nrrd"), shared("cip", "lm-64.nrrd")
    code = main(["evaluate", str(whole), str(lm), "--pred-convention", "binary", "--ref-convention", "cip", "--json"])
    assert code == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["whole"]["dice"] > 0.99
    assert abs(scores["whole"]["volume_diff_pct"]) < 1.0


def test_segment_writes_report_and_qc(tmp_path, capsys):
    from PIL import Image

    from lungseg.api import demo_scan_path

    report, qc = tmp_path / "r.json", tmp_path / "q.png"
    code = main(["segment", str(demo_scan_path()), str(tmp_path / "m.nii.gz"), "--report", str(report), "--qc", str(qc)])
    assert code == 0, capsys.readouterr().err
    data = json.loads(report.read_text(encoding="utf-8"))
    assert {"lungseg_version", "input", "intensity", "settings", "lungs", "flags", "timings_s", "outputs"} <= set(data)
    for lung in ("right", "left", "both"):
        assert {"volume_ml", "mean_hu", "sd_hu", "pd10_hu", "pd15_hu", "laa950_pct", "laa910_pct", "laa856_pct",
                "haa_pct", "thirds_pct"} <= set(data["lungs"][lung])
    assert data["input"]["grid"]["shape"] == [79, 64, 64]
    assert data["outputs"]["qc"] == str(qc)
    with Image.open(qc) as png:
        assert png.format == "PNG" and png.mode == "RGB"
