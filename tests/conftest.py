"""Shared fixtures: the real data folder (skipped cleanly when absent) and small synthetic phantoms."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``../shared/data``; tests that use it are skipped when it is not there."""
    if not DATA.is_dir():
        pytest.skip(f"real data folder {DATA} not found (clone the project beside ../shared to run these)")
    return DATA


def shared(*parts: str) -> Path:
    """Path of a file under ``../shared/data``, skipping the test when it is missing."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path
