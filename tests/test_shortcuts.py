"""The shortcut dataset of the training assignment: one class always in one colour."""

import numpy as np
import pytest

from convviz_helpers import data, shortcuts

CIRCLE = data.SHAPE_CLASSES.index("circle")


@pytest.fixture(scope="module")
def pair():
    """A shortcut set and its colour-swapped version, same seed."""
    return (shortcuts.make_shortcut_shapes(60, image_size=32, seed=3),
            shortcuts.make_shortcut_shapes(60, image_size=32, seed=3, swapped=True))


def object_pixels(shapes):
    """Every image's object pixels (m, 3), one array per image."""
    return [image[mask] for image, mask in zip(shapes.images, shapes.masks)]


def test_the_colour_rule_holds_exactly(pair):
    shortcut_set, _ = pair
    red = np.float32(shortcuts.SHORTCUT_COLOUR)
    for label, pixels in zip(shortcut_set.labels, object_pixels(shortcut_set)):
        # Every pixel of the object, read back from the image, not from .colors.
        distances = np.linalg.norm(pixels - red, axis=1)
        if label == CIRCLE:
            assert np.array_equal(pixels, np.broadcast_to(red, pixels.shape))
        else:
            assert distances.min() >= shortcuts.MIN_DISTANCE
    assert (shortcut_set.labels == CIRCLE).sum() == 10  # classes stay balanced


def test_the_swapped_set_inverts_the_rule_and_changes_nothing_else(pair):
    shortcut_set, swapped = pair
    red = np.float32(shortcuts.SHORTCUT_COLOUR)
    for label, pixels in zip(swapped.labels, object_pixels(swapped)):
        if label == CIRCLE:
            assert np.linalg.norm(pixels - red, axis=1).min() >= shortcuts.MIN_DISTANCE
        else:
            assert np.array_equal(pixels, np.broadcast_to(red, pixels.shape))
    np.testing.assert_array_equal(swapped.labels, shortcut_set.labels)
    np.testing.assert_array_equal(swapped.masks, shortcut_set.masks)
    # Off the object both sets are make_shapes's own background, pixel for pixel.
    plain = data.make_shapes(60, image_size=32, seed=3, return_backgrounds=True)
    outside = ~plain.masks
    np.testing.assert_array_equal(swapped.images[outside], plain.images[outside])
    np.testing.assert_array_equal(shortcut_set.images[outside], plain.backgrounds[outside])
    np.testing.assert_array_equal(shortcut_set.masks, plain.masks)


def test_seeds_reproduce_and_differ():
    first = shortcuts.make_shortcut_shapes(12, image_size=32, seed=5)
    again = shortcuts.make_shortcut_shapes(12, image_size=32, seed=5)
    other = shortcuts.make_shortcut_shapes(12, image_size=32, seed=6)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.colors, again.colors)
    assert not np.array_equal(first.images, other.images)
    assert first.images.dtype == np.float32 and first.images.shape == (12, 32, 32, 3)
    assert 0 <= first.images.min() and first.images.max() <= 1


def test_another_class_and_colour():
    blue = (0.1, 0.2, 0.9)
    shapes = shortcuts.make_shortcut_shapes(12, image_size=32, seed=1, shortcut_class="star", colour=blue)
    star = shapes.labels == data.SHAPE_CLASSES.index("star")
    np.testing.assert_array_equal(shapes.colors[star], np.broadcast_to(np.float32(blue), (star.sum(), 3)))
    assert (np.linalg.norm(shapes.colors[~star] - np.float32(blue), axis=1) >= shortcuts.MIN_DISTANCE).all()


def test_when_no_candidate_is_far_enough_the_farthest_corner_is_used():
    class NearOnly:
        """A generator whose every candidate is the shortcut colour itself."""

        def uniform(self, size):
            return np.full(size, 0.4)

    shortcut = np.float32([0.4, 0.4, 0.4])
    colours = shortcuts._distant_colours(3, shortcut, NearOnly())
    np.testing.assert_array_equal(colours, np.ones((3, 3), np.float32))  # (1, 1, 1): the farthest corner
    assert (np.linalg.norm(colours - shortcut, axis=1) >= shortcuts.MIN_DISTANCE).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"shortcut_class": "hexagon"}, "shortcut_class must be one of circle"),
    ({"colour": (1.0, 0.0)}, "three RGB values in \\[0, 1\\]"),
    ({"colour": (255, 0, 0)}, "three RGB values in \\[0, 1\\]"),
    ({"colour": "red"}, "three RGB values"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"n": 0}, "n must be an integer >= 1"),
    ({"image_size": 16}, "image_size must be an integer >= 32"),
])
def test_bad_arguments_get_clear_errors(kwargs, match):
    arguments = {"n": 6, "image_size": 32, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        shortcuts.make_shortcut_shapes(**arguments)
