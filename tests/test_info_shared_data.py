"""``lungseg info`` on every file and folder of ../shared/data: a description or a deliberate refusal, never a traceback.

Every folder and every non-DICOM file is tried; of the DICOM files, the first and last of each folder
(by name), which covers every scanner and orientation without re-reading 400 slices.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lungseg.cli import main
from lungseg.io.formats import sniff

from conftest import DATA

TEXT_SUFFIXES = {".md", ".txt", ".csv", ".tsv"}


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as fh:
        return sniff(fh.read(132)) == "dicom-file"


def _cases() -> list[Path]:
    if not DATA.is_dir():
        return []
    cases = [DATA] + sorted(p for p in DATA.rglob("*") if p.is_dir())
    for folder in cases[:]:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        dicom = [p for p in files if _is_dicom(p)]
        cases += [p for p in files if p not in dicom]
        cases += dicom[:1] + dicom[-1:] if len(dicom) > 1 else dicom
    return cases


def _expect_ok(path: Path) -> bool:
    """Images are described; folders without DICOM, text files and stacks of 2D images are refused."""
    if path.is_dir():
        return any(p.is_file() and _is_dicom(p) for p in path.rglob("*"))
    if path.suffix.lower() in TEXT_SUFFIXES:
        return False
    return not (path.parent.name == "kmader" and path.suffix == ".npy")  # (N, 64, 64, 1) stacks


CASES = _cases()


@pytest.mark.data
@pytest.mark.parametrize("path", CASES or [None], ids=[str(p.relative_to(DATA)) or "." for p in CASES] or ["no-data"])
def test_info_describes_or_refuses(path, capsys):
    if path is None:
        pytest.skip(f"real data folder {DATA} not found")
    code = main(["-q", "info", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "internal error" not in err
    if _expect_ok(path):
        assert code == 0, err
        assert out.startswith(f"input: {path}")
        assert "\ngrid\n" in out and "intensity" in out
    else:
        assert code == 2
        assert out == ""
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("lungseg: error: "), err


@pytest.mark.data
def test_info_json_lists_every_series_of_a_folder(data_dir, capsys):
    import json

    folder = data_dir / "lung-pet-ct-dx"
    assert main(["-q", "info", "--json", str(folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "dicom-series"
    assert len(info["series"]) == 2
    assert info["chosen_series"] in {s["uid"] for s in info["series"]}
    assert {s["images"] for s in info["series"]} == {30}
    assert info["grid"]["shape"] == [30, 512, 512]


def test_info_text_of_a_folder_with_many_series_stays_short(tmp_path, capsys):
    from test_io_dicom import make_series

    for k in range(15):
        make_series(tmp_path / f"s{k:02d}", [0.0, 2.0, 4.0, 6.0], study_uid=f"1.{k}")
    assert main(["-q", "info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "15 found" in out
    assert out.count("\n    * ") == 1 and out.count("\n    - ") == 11
    assert "... and 3 more series (--json lists them all)" in out
