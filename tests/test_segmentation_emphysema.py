"""Emphysematous lungs: much of the lung below -950 HU, as dark as the trachea's lumen, must still be found,
and the trachea still removed. (COPD scans: the people who measure LAA%-950 need their lungs found.)"""

from __future__ import annotations

import numpy as np

from test_segmentation import dice, phantom, run


def emphysema_phantom(low_frac: float = 0.55, seed: int = 0):
    """The chest phantom with ``low_frac`` of its lung voxels at -975 HU (LAA%-950 of about that much)."""
    hu, right, left, airway, body = phantom()
    rng = np.random.default_rng(seed)
    lung = hu == -850
    hu[lung] = np.where(rng.random(int(lung.sum())) < low_frac, -975.0, -880.0)
    return hu, right, left, airway, body


def test_emphysematous_lungs_are_found():
    hu, right, left, _, _ = emphysema_phantom()
    out = run(hu)
    assert "no_lung_found" not in out.flags
    assert dice(out.labels == 1, right) > 0.9
    assert dice(out.labels == 2, left) > 0.9


def test_trachea_is_removed_from_emphysematous_lungs():
    hu, right, left, airway, _ = emphysema_phantom()
    # coarse voxels: below its top the trachea's lumen is partial volume, brighter than much of this lung,
    # so growing it with a rising threshold stops at once (the lung floods first)
    z = np.arange(hu.shape[0])[:, None, None]
    hu[airway & (z < hu.shape[0] - 2)] = -935
    out = run(hu)
    assert "trachea_not_found" not in out.flags
    assert dice(out.labels == 1, right) > 0.9 and dice(out.labels == 2, left) > 0.9
    assert (out.labels[airway] > 0).mean() < 0.05


def test_large_pure_gas_is_still_not_lung():
    hu, _, _, _, _ = phantom()
    hu[hu == -850] = -1000  # lung-sized gas with no texture at all (a pneumoperitoneum, a distended bowel)
    hu += np.random.default_rng(1).normal(0, 15, hu.shape)  # scanner noise
    assert "no_lung_found" in run(hu).flags


def test_real_emphysematous_scan_gets_two_lungs():
    """cip/TestInput.nrrd: a COPD chest CT (5.3 x 5.3 x 7 mm voxels) whose lungs are about 36 % below -950 HU."""
    from conftest import shared

    import lungseg

    res = lungseg.segment(shared("cip", "TestInput.nrrd"))
    voxel_ml = res.volume.voxel_volume_mm3 / 1000
    volumes = [(res.labels == side).sum() * voxel_ml for side in (1, 2)]
    assert "no_lung_found" not in res.flags
    assert all(1500 < v < 6000 for v in volumes), volumes
    lung_hu = res.hu[res.labels > 0]
    assert (lung_hu < -950).mean() > 0.25  # it is the emphysematous case this test is about
