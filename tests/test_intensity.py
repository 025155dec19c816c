"""Tests of lungseg.intensity: HU checks, padding, offsets, calibration of non-HU images, user windows.

The synthetic phantom is a chest slice whose answer is known by construction: outside air -1000 HU,
a soft-tissue body ellipse at 40 HU, two lung ellipses at -850 HU, and scanner padding outside a
centred circular field of view.
"""

from __future__ import annotations

import importlib.util
import json
import logging

import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import ROOT, shared
from lungseg.errors import InputError, SettingsError
from lungseg.intensity import AIR_HU, IntensityInfo, to_hu
from lungseg.volume import Volume

SIZE = 96


def phantom_parts(size: int = SIZE) -> dict[str, np.ndarray]:
    """Boolean masks of the phantom's regions (fov, body, lungs)."""
    rr, cc = np.mgrid[:size, :size].astype(float)
    c = (size - 1) / 2
    fov = np.hypot(rr - c, cc - c) <= 0.47 * size
    body = ((rr - c) / (0.30 * size)) ** 2 + ((cc - c) / (0.42 * size)) ** 2 <= 1
    right = ((rr - c) / (0.20 * size)) ** 2 + ((cc - 0.30 * size) / (0.12 * size)) ** 2 <= 1
    left = ((rr - c) / (0.20 * size)) ** 2 + ((cc - 0.70 * size) / (0.12 * size)) ** 2 <= 1
    return {"fov": fov, "body": body & ~(right | left), "lung": right | left, "air": fov & ~body}


def phantom_hu(pad: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """The phantom in HU (int16) with padding value ``pad`` outside the field of view."""
    rng = np.random.default_rng(seed)
    parts = phantom_parts(size)
    img = np.full((size, size), -1000.0)
    img[parts["body"]] = 40.0
    img[parts["lung"]] = -850.0
    img += rng.normal(0, 8, img.shape).clip(-20, 20)  # noise that never reaches -1024 in air
    img = np.rint(img)
    img[~parts["fov"]] = pad
    return img.astype(np.int16)


def windowed(hu: np.ndarray, low: float, high: float) -> np.ndarray:
    """An 8-bit picture of ``hu`` saved with the window [low, high]."""
    return np.rint((np.clip(hu, low, high) - low) / (high - low) * 255).astype(np.uint8)


def normalised(hu: np.ndarray) -> np.ndarray:
    """Min-max normalised to 0..1 (float32), as many published training sets are."""
    hu = hu.astype(np.float32)
    return (hu - hu.min()) / (hu.max() - hu.min())


def medians(out: np.ndarray, size: int = SIZE) -> tuple[float, float]:
    parts = phantom_parts(size)
    return float(np.median(out[parts["lung"]])), float(np.median(out[parts["body"]]))


# -- HU -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [-2048, -3024, -1024, -32768, -2000])
def test_hu_padding_becomes_air_and_fov_is_found(pad):
    img = phantom_hu(pad)
    out, info = to_hu(Volume(img, (0.7, 0.7)))
    fov = phantom_parts()["fov"]
    assert info.path == "hu"
    assert out.dtype == np.float32 and out.shape == img.shape
    assert np.all(out[~fov] == AIR_HU)
    assert np.array_equal(out[fov], img[fov].astype(np.float32))  # inside the field of view nothing changes
    assert info.fov_mask is not None and np.array_equal(info.fov_mask, fov)
    assert info.air_value == AIR_HU
    if pad < AIR_HU:
        assert "padding_fixed" in info.flags and info.details["padding_values_hu"] == [float(pad)]


def test_wrong_padding_tag_is_reported_not_used():
    img = phantom_hu(-2048)
    out, info = to_hu(Volume(img, (0.7, 0.7), metadata={"dicom": {"pixel_padding_value": 62512.0}}))
    assert info.details["pixel_padding_tag_hu"] == 62512.0
    assert info.details["pixel_padding_tag_matches"] is False
    assert info.details["padding_values_hu"] == [-2048.0] and float(out.min()) == AIR_HU
    _, info = to_hu(Volume(img, (0.7, 0.7), metadata={"dicom": {"pixel_padding_value": -2048.0}}))
    assert info.details["pixel_padding_tag_matches"] is True


def test_hu_without_padding_has_unknown_fov_and_is_unchanged():
    img = phantom_hu(-1000)  # no padding: the outside of the circle is ordinary air
    img[0, 0] = -1000
    out, info = to_hu(Volume(img, (0.7, 0.7)))
    assert info.path == "hu" and info.fov_mask is None and info.flags == ()
    assert np.array_equal(out, img.astype(np.float32))


def test_clipped_air_is_not_mistaken_for_circular_padding():
    img = phantom_hu(-1000)
    rng = np.random.default_rng(1)
    air = phantom_parts()["air"] | ~phantom_parts()["fov"]
    img[air] = np.maximum(np.rint(rng.normal(-1000, 20, air.sum())), -1024)  # scanner clips air at -1024
    out, info = to_hu(Volume(img, (0.7, 0.7)))
    assert info.path == "hu" and info.fov_mask is None
    assert np.array_equal(out, img.astype(np.float32))


@pytest.mark.parametrize("pad", [-2048, -1024])
def test_offset_1024_is_fixed_to_the_same_result(pad):
    img = phantom_hu(pad)
    ref, ref_info = to_hu(Volume(img, (0.7, 0.7)))
    out, info = to_hu(Volume(img + 1024, (0.7, 0.7)))
    assert info.path == "hu-fixed" and info.details["offset_hu"] == 1024
    assert "offset_fixed" in info.flags
    assert np.array_equal(out, ref)
    assert np.array_equal(info.fov_mask, ref_info.fov_mask)
    assert info.air_value == 0.0  # -1024 HU in the stored domain


def test_unsigned_without_rescale_is_fixed():
    img = phantom_hu(-1024)
    raw = (img.astype(np.int32) + 1024).astype(np.uint16)  # what an unsigned DICOM stores before rescale
    out, info = to_hu(Volume(raw, (0.7, 0.7)))
    ref, _ = to_hu(Volume(img, (0.7, 0.7)))
    assert info.path == "hu-fixed" and info.details["offset_hu"] == 1024
    assert np.array_equal(out, ref)
    assert np.array_equal(info.fov_mask, phantom_parts()["fov"])
    assert info.air_value == 0.0


def test_wrapped_unsigned_padding_at_the_top_is_fixed():
    raw = (phantom_hu(-2048).astype(np.int32) + 1024) % 65536  # -1024 raw wraps to 64512 in uint16
    out, info = to_hu(Volume(raw.astype(np.uint16), (0.7, 0.7)))
    fov = phantom_parts()["fov"]
    assert info.path == "hu-fixed"
    assert np.all(out[~fov] == AIR_HU) and np.array_equal(info.fov_mask, fov)
    lung, body = medians(out)
    assert abs(lung + 850) < 10 and abs(body - 40) < 10


def test_offset_32768_is_fixed():
    img = phantom_hu(-1024)
    raw = (img.astype(np.int32) + 32768).astype(np.uint16)
    out, info = to_hu(Volume(raw, (0.7, 0.7)))
    ref, _ = to_hu(Volume(img, (0.7, 0.7)))
    assert info.path == "hu-fixed" and info.details["offset_hu"] == 32768
    assert np.array_equal(out, ref)


def test_a_few_values_below_air_are_clipped_even_when_the_sample_misses_them():
    img = np.tile(phantom_hu(-1000), (3, 12, 12))[:, :1100, :1100]  # more pixels than the sample holds
    img[1, 500, 501] = -1500
    out, info = to_hu(Volume(img, (1.0, 1.0, 1.0)))
    assert info.path == "hu" and float(out.min()) == AIR_HU and "padding_fixed" in info.flags


def test_uniform_hu_image_is_taken_as_hu_with_a_warning():
    _, info = to_hu(Volume(np.full((32, 32), -1000, np.int16), (1.0, 1.0)))
    assert info.path == "hu" and any("uniform" in w for w in info.warnings)


def test_hu_true_trusts_the_values():
    img = phantom_hu(-2048) + 1024
    out, info = to_hu(Volume(img, (0.7, 0.7)), hu=True)
    assert info.path == "hu" and "offset_fixed" not in info.flags
    fov = phantom_parts()["fov"]
    assert np.array_equal(out[fov], img[fov].astype(np.float32))


def test_implausible_hu_is_reported(caplog):
    img = phantom_hu(-2048)
    body = phantom_parts()["body"]
    img[body] = 3500 + np.arange(body.sum()) % 200  # a "body" of metal
    with caplog.at_level(logging.WARNING, logger="lungseg.intensity"):
        _, info = to_hu(Volume(img, (0.7, 0.7)), hu=True)
    assert "hu_implausible" in info.flags
    assert any("3100" in w for w in info.warnings)
    assert any("3100" in r.getMessage() for r in caplog.records)


def test_3d_hu_volume_with_circular_air_padding():
    vol = np.stack([phantom_hu(-1024, seed=k) for k in range(6)])
    out, info = to_hu(Volume(vol, (2.0, 0.7, 0.7)))
    assert info.path == "hu" and out.shape == vol.shape
    assert info.fov_mask.shape == vol.shape
    assert np.array_equal(info.fov_mask, np.broadcast_to(phantom_parts()["fov"], vol.shape))


# -- calibration ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pad", [-2048, -3024])
def test_normalised_float_is_calibrated(pad):
    img = normalised(phantom_hu(pad))
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    fov = phantom_parts()["fov"]
    assert info.path == "calibrated" and "intensity_calibrated" in info.flags
    assert "intensity_ambiguous" not in info.flags
    assert np.all(out[~fov] == AIR_HU) and np.array_equal(info.fov_mask, fov)
    lung, body = medians(out)
    assert lung < -700 and abs(body - 40) < 60
    assert info.air_value == pytest.approx(float(img[fov].min()))  # the padding-free minimum


def test_resized_normalised_image_with_blurred_padding_edge():
    big = normalised(phantom_hu(-2048, size=256))
    small = np.clip(ndi.zoom(big, 64 / 256, order=1), 0, 1).astype(np.float32)
    out, info = to_hu(Volume(small, (1.0, 1.0)))
    parts = phantom_parts(64)
    inner = ndi.binary_erosion(parts["fov"], iterations=2)
    assert info.path == "calibrated" and info.fov_mask is not None
    assert np.all(out[~ndi.binary_dilation(parts["fov"], iterations=2)] == AIR_HU)
    assert info.fov_mask[inner].all()
    core_lung = ndi.binary_erosion(parts["lung"], iterations=2)
    core_body = ndi.binary_erosion(parts["body"], iterations=2)
    assert np.median(out[core_lung]) < -500 and np.median(out[core_body]) > -300


def test_lung_window_png_is_calibrated_not_windowed_again():
    img = windowed(phantom_hu(-2048), -1200, 600)
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert info.path == "calibrated" and "intensity_ambiguous" not in info.flags
    lung, body = medians(out)
    assert lung < -700 and abs(body - 40) < 60
    assert np.all(out[~phantom_parts()["fov"]] == AIR_HU)
    assert info.air_value == 0.0


def test_png_without_padding_uses_outside_air():
    img = windowed(phantom_hu(-1000), -1200, 600)
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert info.path == "calibrated" and "outside_air" in info.details["landmarks"]
    assert info.fov_mask is None and "padding_fixed" not in info.flags
    parts = phantom_parts()
    assert abs(np.median(out[parts["air"]]) + 1000) < 30
    assert abs(np.median(out[parts["body"]]) - 40) < 30


def test_clipped_outside_air_falls_back_to_the_lung_landmark():
    img = windowed(phantom_hu(-2048), -1000, 400)  # outside air clips to 0 with the padding, lung does not
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert "intensity_ambiguous" not in info.flags
    assert info.details["landmarks"]["anchor"] == "lung"
    lung, body = medians(out)
    assert abs(lung + 850) < 30 and abs(body - 40) < 30


def test_field_of_view_without_air_uses_the_padding_as_air(caplog):
    parts = phantom_parts()
    rng = np.random.default_rng(2)
    hu = np.where(parts["fov"], 40.0, -2048.0)
    hu[parts["fov"] & (np.arange(SIZE)[None, :] < SIZE // 3)] = -100.0  # fat on one side, no air at all
    hu[parts["fov"]] += rng.normal(0, 5, parts["fov"].sum())
    with caplog.at_level(logging.WARNING, logger="lungseg.intensity"):
        out, info = to_hu(Volume(normalised(hu), (1.0, 1.0)))
    assert "intensity_ambiguous" in info.flags and "padding_as_air" in info.details["landmarks"]
    assert any("no air inside the field of view" in r.getMessage() for r in caplog.records)
    assert np.all(out[parts["fov"]] > -400)  # no false air, so no false lung
    assert np.all(out[~parts["fov"]] == AIR_HU)


def test_soft_tissue_window_is_flagged_ambiguous(caplog):
    img = windowed(phantom_hu(-2048), -160, 240)  # lung and outside air are both 0
    with caplog.at_level(logging.WARNING, logger="lungseg.intensity"):
        out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert info.path == "calibrated" and "intensity_ambiguous" in info.flags
    assert any("ambiguous" in w for w in info.warnings)
    assert any("ambiguous" in r.getMessage() for r in caplog.records)
    lung, body = medians(out)  # best guess still separates lung from body
    assert lung < -500 and body > -300


@pytest.mark.parametrize("kind", ["int16 0..255", "float 0..255", "z-score"])
def test_pictures_in_wide_types_are_not_taken_as_hu(kind):
    hu = phantom_hu(-2048)
    if kind == "z-score":
        img = ((hu - hu.mean()) / hu.std()).astype(np.float32)
    else:
        img = windowed(hu, -1200, 600).astype(np.int16 if kind.startswith("int16") else np.float32)
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert info.path == "calibrated" and "intensity_calibrated" in info.flags
    lung, body = medians(out)
    assert lung < -500 and body > -300


def test_hu_slice_without_air_stays_hu():
    img = np.full((64, 64), 40, np.int16)
    img[:, :20] = -100  # fat and soft tissue only: no air, no lung
    img[::7, ::5] += 10
    _, info = to_hu(Volume(img, (1.0, 1.0)))
    assert info.path == "hu"


def test_per_slice_normalised_stack_is_calibrated_slice_by_slice():
    stack = np.stack([normalised(phantom_hu(-2048, seed=k)) ** (1 + 0.5 * k) for k in range(3)])
    out, info = to_hu(Volume(stack, (1.0, 1.0, 1.0)))
    assert info.path == "calibrated" and info.details["per_slice"] is True
    for k in range(3):
        lung, body = medians(out[k])
        assert lung < -500 and body > -300


def test_windowed_8bit_volume_gets_one_map_and_padding_per_slice():
    vol = np.stack([windowed(phantom_hu(-2048, seed=k), -1200, 600) for k in range(4)])
    out, info = to_hu(Volume(vol, (2.0, 1.0, 1.0)))
    fov = phantom_parts()["fov"]
    assert info.path == "calibrated" and "per_slice" not in info.details
    assert info.fov_mask.shape == vol.shape and np.array_equal(info.fov_mask[2], fov)
    for k in range(4):
        lung, body = medians(out[k])
        assert lung < -700 and abs(body - 40) < 60


def test_calibration_commutes_with_flips():
    img = normalised(phantom_hu(-2048))
    img[10:20, 30:40] = 0.9  # break the symmetry
    out, _ = to_hu(Volume(img, (1.0, 1.0)))
    flipped, _ = to_hu(Volume(img[::-1, ::-1].copy(), (1.0, 1.0)))
    np.testing.assert_allclose(flipped, out[::-1, ::-1], atol=1e-3)


def test_uniform_image_is_ambiguous_not_a_crash():
    out, info = to_hu(Volume(np.full((32, 32), 7, np.uint8), (1.0, 1.0)))
    assert info.path == "calibrated" and "intensity_ambiguous" in info.flags
    assert out.shape == (32, 32) and np.isfinite(out).all()


def blurred_body_hu(parts: dict[str, np.ndarray], levels: dict[str, float], seed: int = 0) -> np.ndarray:
    """A slice in HU built from ``parts`` with the scanner's blur (partial volume at every edge) and
    noise, -1000 HU air, and -1024 padding outside ``parts["fov"]``: what ``to_hu`` returns for a real
    slice, ready to be saved as a picture."""
    img = np.full(parts["fov"].shape, -1000.0)
    for name, level in levels.items():
        img[parts[name]] = level
    img = ndi.gaussian_filter(img, 1.5) + np.random.default_rng(seed).normal(0, 10, img.shape)
    img[~parts["fov"]] = AIR_HU
    return np.maximum(np.rint(img), AIR_HU)


def full_fov_parts(size: int = 128) -> dict[str, np.ndarray]:
    """Upper abdomen filling the field-of-view circle (air only in thin slivers at the top and bottom),
    a fat rim, and two small lung bases at the back."""
    rr, cc = np.mgrid[:size, :size].astype(float)
    c = (size - 1) / 2
    fov = np.hypot(rr - c, cc - c) <= 0.47 * size
    body = fov & (((rr - c) / (0.44 * size)) ** 2 + ((cc - c) / (0.60 * size)) ** 2 <= 1)
    inner = ((rr - c) / (0.40 * size)) ** 2 + ((cc - c) / (0.44 * size)) ** 2 <= 1
    lung = body & (((rr - 0.72 * size) / (0.06 * size)) ** 2 + ((np.abs(cc - c) - 0.20 * size) / (0.12 * size)) ** 2 <= 1)
    return {"fov": fov, "tissue": body & inner & ~lung, "fat": body & ~inner & ~lung, "lung": lung, "air": fov & ~body}


@pytest.mark.parametrize("encoding", ["[-1200,600]", "[-1000,400]", "min-max"])
def test_body_filling_the_field_of_view_keeps_its_small_lungs(encoding):
    # the window puts the -1024 padding next to the air slivers, so padding and air form one population;
    # what reaches the border through it is only the body's partial-volume edge, brighter than the lung
    parts = full_fov_parts()
    hu = blurred_body_hu(parts, {"tissue": 40.0, "fat": -100.0, "lung": -850.0})
    if encoding == "min-max":
        img = normalised(hu)
    else:
        low, high = (float(v) for v in encoding.strip("[]").split(","))
        img = np.clip((hu - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    out, info = to_hu(Volume(img, (0.7, 0.7)))
    assert "intensity_ambiguous" not in info.flags
    assert AIR_HU < np.median(out[parts["lung"]]) < -700  # lung, not pushed down to the padding's -1024
    assert abs(np.median(out[parts["tissue"]]) - 40) < 60
    assert np.median(out[parts["fat"]]) > -300


def test_ground_glass_lung_landmark_does_not_stretch_the_scale_below_air():
    # the lung landmark assumes -850 HU; a -600 HU (ground-glass) lung is the darkest thing in the field
    # of view, so the scale is capped where the darkest in-field values reach air, not beyond
    parts = full_fov_parts()
    hu = blurred_body_hu(parts, {"tissue": 40.0, "fat": -100.0, "lung": -600.0})
    img = np.clip((hu + 1200) / 1800 * 255, 0, 255).astype(np.uint8)
    out, info = to_hu(Volume(img, (0.7, 0.7)))
    assert info.details["landmarks"]["anchor"] == "lung"
    assert abs(np.median(out[parts["lung"]]) + 600) < 120
    assert abs(np.median(out[parts["tissue"]]) - 40) < 60


@pytest.mark.parametrize("low, high", [(-1200, 600), (-1024, 3071)])
def test_outside_air_taken_in_with_the_padding_stays_the_air_landmark(low, high):
    # no lung; the window puts -1024 padding and -1000 air within a grey level or two, so the padding's
    # gap search takes the outside air in: its noise still shows it is air, not padding. With
    # [-1024,3071] most air is clipped to 0 with the padding, which stays padding (not "clipped air").
    parts = phantom_parts(128)
    rr, cc = np.mgrid[:128, :128].astype(float)
    inner = ((rr - 63.5) / (0.25 * 128)) ** 2 + ((cc - 63.5) / (0.35 * 128)) ** 2 <= 1
    parts = {"fov": parts["fov"], "fat": (parts["body"] | parts["lung"]) & ~inner, "tissue": inner, "air": parts["air"]}
    hu = blurred_body_hu(parts, {"fat": -100.0, "tissue": 40.0})
    img = np.clip((hu - low) / (high - low) * 255, 0, 255).astype(np.uint8)
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert "intensity_ambiguous" not in info.flags and info.details["landmarks"]["anchor"] == "outside_air"
    assert np.median(out[parts["air"]]) < -900
    assert abs(np.median(out[parts["fat"]]) + 100) < 60
    assert abs(np.median(out[parts["tissue"]]) - 40) < 60


def narrow_body_hu(air_hu: float, gas_hu: float | None, size: int = 128) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A sagittal-like slice without padding: a narrow body in a wide field of air, an optional small
    gas pocket (1.5 % of the body, under 1 % of the image)."""
    rr, cc = np.mgrid[:size, :size].astype(float)
    c = (size - 1) / 2
    body = ((rr - c) / (0.42 * size)) ** 2 + ((cc - c) / (0.14 * size)) ** 2 <= 1
    gas = np.hypot(rr - 0.4 * size, cc - c) <= 0.028 * size
    rng = np.random.default_rng(3)
    img = np.where(body, 40.0, air_hu) + rng.normal(0, 10, body.shape)
    if gas_hu is not None:
        img[gas] = gas_hu + rng.normal(0, 10, np.count_nonzero(gas))
    return np.maximum(np.rint(img), AIR_HU), {"body": body & ~gas, "gas": gas, "air": ~body}


def test_air_piled_up_at_minus_1024_above_the_window_floor_is_not_clipped_by_the_window():
    # the scanner clipped the air at -1024 (most air pixels hold it); a window from -1200 puts that at
    # grey 24, not 0: the window did not clip it, so it is a usable air landmark
    hu, parts = narrow_body_hu(air_hu=-1030.0, gas_hu=None)
    img = np.clip((hu + 1200) / 1800 * 255, 0, 255).astype(np.uint8)
    assert np.mean(img[parts["air"]] == img.min()) > 0.5
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert "intensity_ambiguous" not in info.flags and info.details["landmarks"]["anchor"] == "outside_air"
    assert abs(np.median(out[parts["air"]]) + 1000) < 40
    assert abs(np.median(out[parts["body"]]) - 40) < 40


def test_small_gas_pocket_is_a_landmark_when_the_outside_air_is_clipped():
    # [-1000,400] clips the outside air to 0; the gas pocket is 1.5 % of the body (under 1 % of the
    # image, a sagittal plane is mostly air) and still resolves: it anchors the scale
    hu, parts = narrow_body_hu(air_hu=-1000.0, gas_hu=-900.0)
    img = np.clip((hu + 1000) / 1400 * 255, 0, 255).astype(np.uint8)
    assert np.count_nonzero(parts["gas"]) < 0.01 * img.size
    out, info = to_hu(Volume(img, (1.0, 1.0)))
    assert "intensity_ambiguous" not in info.flags and info.details["landmarks"]["anchor"] == "lung"
    assert np.median(out[parts["gas"]]) < -700
    assert abs(np.median(out[parts["body"]]) - 40) < 60


# -- user window ------------------------------------------------------------------------------------


def test_user_window_maps_the_stored_range():
    img = windowed(phantom_hu(-1000), -1200, 600)
    out, info = to_hu(Volume(img, (1.0, 1.0)), window=(-1200, 600))
    expected = np.maximum(img.astype(np.float32) * (1800 / 255) - 1200, AIR_HU)
    assert info.path == "window" and "intensity_window" in info.flags
    np.testing.assert_allclose(out, expected, atol=1e-3)
    assert info.air_value == 0.0


def test_user_window_on_float_and_16_bit():
    img = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    out, _ = to_hu(Volume(img, (1.0, 1.0)), window=(-1000, 1000))
    assert out.min() == pytest.approx(-1000) and out.max() == pytest.approx(1000)
    img16 = (img * 65535).astype(np.uint16)
    out16, info = to_hu(Volume(img16, (1.0, 1.0)), window=(-1000, 1000))
    assert info.details["stored_range"] == [0.0, 65535.0]
    np.testing.assert_allclose(out16, out, atol=0.1)


def test_inputs_are_not_modified():
    img = phantom_hu(-2048)
    before = img.copy()
    vol = Volume(img, (1.0, 1.0))
    to_hu(vol)
    to_hu(vol, hu=True)
    assert np.array_equal(vol.array, before)


def test_as_dict_is_json_and_has_no_arrays():
    _, info = to_hu(Volume(normalised(phantom_hu(-2048)), (1.0, 1.0)))
    d = info.as_dict()
    json.dumps(d)
    assert d["path"] == "calibrated" and d["true_hu"] is False and d["fov_known"] is True
    assert "fov_mask" not in d
    assert IntensityInfo("hu", -1024.0).is_true_hu


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [(600, -1200), (0, 0), (float("nan"), 1), ("a", "b"), (1,)])
def test_bad_window_is_refused(window):
    with pytest.raises(SettingsError, match="window must be"):
        to_hu(Volume(np.zeros((32, 32), np.uint8), (1.0, 1.0)), window=window)


def test_window_and_hu_together_are_refused():
    with pytest.raises(SettingsError, match="either a window or hu=True"):
        to_hu(Volume(np.zeros((32, 32), np.uint8), (1.0, 1.0)), window=(-1200, 600), hu=True)


def test_window_on_hu_values_is_refused():
    with pytest.raises(InputError, match="not a stored 8-bit, 16-bit or 0..1 picture"):
        to_hu(Volume(phantom_hu(-2048), (1.0, 1.0)), window=(-1200, 600))


def test_nan_is_refused():
    img = np.zeros((32, 32), np.float32)
    img[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        to_hu(Volume(img, (1.0, 1.0)))


# -- real data ----------------------------------------------------------------------------------------


def read_dicom_hu(path) -> np.ndarray:
    """Pixel values after rescale, read with pydicom (independent of lungseg's readers)."""
    import pydicom

    ds = pydicom.dcmread(path)
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.mark.data
@pytest.mark.parametrize(
    "name, pad",
    [
        ("ID_0050_AGE_0074_CONTRAST_0_CT.dcm", -2048),  # PixelPaddingValue tag says -2000
        ("ID_0088_AGE_0067_CONTRAST_0_CT.dcm", -2048),  # tag says 63536
        ("ID_0008_AGE_0051_CONTRAST_1_CT.dcm", -3024),
        ("ID_0082_AGE_0047_CONTRAST_0_CT.dcm", -1024),  # padding equal to air
    ],
)
def test_real_padding_becomes_air(name, pad):
    img = read_dicom_hu(shared("ct-medical-images", name)).astype(np.int32)
    out, info = to_hu(Volume(img, (0.7, 0.7)))
    assert info.path == "hu"
    assert float(out.min()) == AIR_HU
    assert np.array_equal(out, np.maximum(img, AIR_HU).astype(np.float32))  # lungs and body untouched
    assert info.fov_mask is not None
    outside = ~info.fov_mask
    assert 0.15 < outside.mean() < 0.3  # the notes: about 21 % of the pixels are outside the circle
    assert np.all(img[outside] == pad)


@pytest.mark.data
def test_real_soft_tissue_volume_is_ambiguous():
    import SimpleITK as sitk

    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(shared("lidc2-8bit", "LIDC2_uint8.nrrd"))))
    out, info = to_hu(Volume(arr, (2.5, 1.41, 1.41)))
    assert info.path == "calibrated" and "intensity_ambiguous" in info.flags
    assert out.shape == arr.shape and out.dtype == np.float32
    assert np.all(out[arr == 0] <= -1000)  # the clipped black (lung and outside air) stays air


def load_benchmark():
    spec = importlib.util.spec_from_file_location("calibration_benchmark", ROOT / "benchmarks" / "calibration.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.data
def test_kmader_calibration_meets_the_target():
    x = np.load(shared("kmader", "x_train.npy"))[..., 0]
    y = np.load(shared("kmader", "y_train.npy"))[..., 0]
    bench = load_benchmark()
    rows = bench.evaluate(x, y)
    both = np.mean([r["lung_hu"] < bench.LUNG_LIMIT_HU and r["body_hu"] > bench.BODY_LIMIT_HU for r in rows])
    assert len(rows) == x.shape[0]
    assert both >= bench.TARGET_FRAC


@pytest.mark.data
@pytest.mark.parametrize(
    "name",
    [
        "ct-medical-images/ID_0074_AGE_0074_CONTRAST_0_CT.dcm",  # body fills the field of view, thin lung bases
        "ct-medical-images/ID_0076_AGE_0068_CONTRAST_0_CT.dcm",  # pelvis, outside air merges with the padding
        "covid-ny-sbu/A046441/sagittal/19001111-059.dcm",  # sagittal, air clipped at -1024, small gas pocket
    ],
)
def test_real_slices_saved_as_8_bit_keep_lung_and_body_apart(name):
    import lungseg

    ct = lungseg.read(shared(*name.split("/")))
    hu, _ = to_hu(ct)
    hu = hu.reshape(ct.array.shape[-2:])
    lung, body = load_benchmark().reference_masks(hu)  # from the HU slice, never from the calibration
    img = np.clip((hu + 1200) / 1800 * 255, 0, 255).astype(np.uint8)
    out, _ = to_hu(Volume(img, (0.7, 0.7), metadata={"format": "png", "bit_depth": 8, "spacing_known": False}))
    assert np.median(out[body]) > -300
    if lung.any():
        assert AIR_HU < np.median(out[lung]) < -500
    if "ID_0074" in name:  # the segmentation keeps the lung bases it finds in the HU slice
        labels = lungseg.segment(Volume(img, (0.7, 0.7), metadata={"format": "png", "bit_depth": 8})).labels
        assert np.count_nonzero(labels == 1) > 0 and np.count_nonzero(labels == 2) > 0
