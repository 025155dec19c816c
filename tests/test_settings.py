"""Settings: one frozen, validated object; unknown names are an error."""

import dataclasses

import pytest

from lungseg.errors import SettingsError
from lungseg.settings import Settings


def test_every_setting_carries_a_unit_suffix():
    units = ("_hu", "_mm", "_ml", "_mm2", "_frac", "_count")
    for f in dataclasses.fields(Settings):
        assert f.name.endswith(units), f"{f.name} has no unit suffix"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().air_threshold_hu = 0  # type: ignore[misc]


def test_unknown_setting_is_refused_with_the_known_names():
    with pytest.raises(SettingsError, match=r"unknown setting 'iterations' \(known settings: .*air_threshold_hu"):
        Settings.from_dict({"iterations": 10})


def test_negative_size_and_non_number_are_refused():
    size = next(f.name for f in dataclasses.fields(Settings) if f.name.endswith("_mm"))
    with pytest.raises(SettingsError, match="cannot be negative"):
        Settings.from_dict({size: -1})
    with pytest.raises(SettingsError, match="must be a number"):
        Settings.from_dict({"air_threshold_hu": "low"})


def test_digest_changes_with_a_setting_and_round_trips():
    s = Settings()
    assert Settings.from_dict(s.to_dict()) == s
    assert s.digest() == Settings().digest()
    assert s.replace(air_threshold_hu=-450).digest() != s.digest()
