"""The Volume type: geometry maths, cropping, validation."""

import numpy as np
import pytest

from lungseg.volume import Volume, axis_world_directions, crop_box, orientation_codes


def rotated_direction(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def test_affine_maps_indices_to_world_with_spacing_and_direction():
    d = rotated_direction(30)
    v = Volume(np.zeros((4, 5, 6)), spacing=(3.0, 2.0, 0.5), origin=(10, -20, 5), direction=d)
    # index (plane=1, row=2, col=3): world = origin + d @ (col*sx, row*sy, plane*sz)
    expected = np.array([10, -20, 5]) + d @ np.array([3 * 0.5, 2 * 2.0, 1 * 3.0])
    np.testing.assert_allclose((v.affine @ [1, 2, 3, 1])[:3], expected)


def test_axis_world_directions_follow_direction_columns():
    d = rotated_direction(90)
    v = Volume(np.zeros((2, 3, 4)), (1, 1, 1), direction=d)
    dirs = axis_world_directions(v)
    np.testing.assert_allclose(dirs[2], d[:, 0])  # column axis
    np.testing.assert_allclose(dirs[1], d[:, 1])  # row axis
    np.testing.assert_allclose(dirs[0], d[:, 2])  # slice axis


def test_2d_volume_keeps_a_3d_direction_and_two_spacings():
    coronal = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0.0]])  # rows run head->feet (-z)
    v = Volume(np.zeros((20, 30)), (0.8, 0.7), origin=(1, 2, 3), direction=coronal)
    assert v.is_2d and v.spacing == (0.8, 0.7)
    np.testing.assert_allclose((v.affine @ [0, 10, 0, 1])[:3], [1, 2, 3 - 8.0])
    assert orientation_codes(coronal) == "LIP"


def test_crop_keeps_world_positions():
    v = Volume(np.arange(4 * 5 * 6).reshape(4, 5, 6), (3.0, 2.0, 0.5), origin=(1, 2, 3), direction=rotated_direction(20))
    box = (slice(1, 3), slice(2, 5), slice(3, 6))
    c = v.crop(box)
    assert c.shape == (2, 3, 3)
    assert c.array[0, 0, 0] == v.array[1, 2, 3]
    np.testing.assert_allclose(c.affine @ [0, 0, 0, 1], v.affine @ [1, 2, 3, 1])


def test_crop_box_margin_is_in_mm_and_clipped():
    m = np.zeros((10, 20, 20), bool)
    m[5, 10, 10] = True
    box = crop_box(m, (5.0, 1.0, 0.5), 2.0)
    assert box == (slice(4, 7), slice(8, 13), slice(6, 15))
    assert crop_box(np.zeros((3, 4, 5), bool), (1, 1, 1), 5) == (slice(0, 3), slice(0, 4), slice(0, 5))
    assert crop_box(m, (1, 1, 1), 100) == (slice(0, 10), slice(0, 20), slice(0, 20))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"array": np.zeros((2, 2, 2, 2)), "spacing": (1, 1, 1, 1)}, "2D or 3D array"),
        ({"array": np.zeros((2, 2, 2)), "spacing": (1, 1)}, "one value per array axis"),
        ({"array": np.zeros((2, 2)), "spacing": (1, 0)}, "positive and finite"),
        ({"array": np.zeros((2, 2)), "spacing": (1, 1), "origin": (1, 2, 3, 4)}, "3 world coordinates"),
    ],
)
def test_invalid_volumes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Volume(**kwargs)


def test_with_array_checks_the_grid():
    v = Volume(np.zeros((2, 3, 4)), (1, 1, 1))
    with pytest.raises(ValueError, match="does not match"):
        v.with_array(np.zeros((2, 3, 5)))
    w = v.with_array(np.ones((2, 3, 4)), kind="x")
    assert w.same_grid(v) and w.metadata["kind"] == "x"


def test_repr_shows_shape_spacing_orientation():
    text = repr(Volume(np.zeros((2, 3, 4), np.int16), (2.5, 0.7, 0.7), direction=np.diag([-1, -1, 1])))
    assert "(2, 3, 4)" in text and "2.5×0.7×0.7" in text and "RAS" in text
