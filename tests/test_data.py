"""The embedded data: shapes with exact masks, bundled photos, digits, and offline TFDS."""

import numpy as np
import pytest

from convviz_helpers import data
from convviz_helpers.downloads import DownloadError, guarded_download


@pytest.fixture(scope="module")
def shapes():
    return data.make_shapes(300, image_size=64, seed=7, return_backgrounds=True)


def test_contract_shapes_and_ranges(shapes):
    assert shapes.images.shape == (300, 64, 64, 3) and shapes.images.dtype == np.float32
    assert shapes.masks.shape == (300, 64, 64) and shapes.masks.dtype == bool
    assert shapes.labels.shape == (300,)
    assert 0.0 <= shapes.images.min() and shapes.images.max() <= 1.0
    assert shapes.class_names == list(data.SHAPE_CLASSES) and len(data.SHAPE_CLASSES) >= 6


def test_masks_cover_exactly_the_drawn_object(shapes):
    inside = shapes.masks[..., None]
    # Inside the mask every pixel carries the object's flat colour ...
    colour = np.broadcast_to(shapes.colors[:, None, None, :], shapes.images.shape)
    np.testing.assert_array_equal(np.where(inside, shapes.images, colour), colour)
    # ... and outside it the image is the background the object was drawn on.
    np.testing.assert_array_equal(np.where(inside, shapes.backgrounds, shapes.images), shapes.backgrounds)
    # The object differs from what it covers, so the mask marks a visible change.
    changed = np.abs(shapes.images - shapes.backgrounds).max(axis=-1) > 0
    assert (changed[shapes.masks].mean()) > 0.95


def test_objects_are_whole_and_sized(shapes):
    area = shapes.masks.mean(axis=(1, 2))
    assert area.min() > 0.01 and area.max() < 0.35
    border = np.concatenate([shapes.masks[:, :2].reshape(300, -1), shapes.masks[:, -2:].reshape(300, -1),
                             shapes.masks[:, :, :2].reshape(300, -1), shapes.masks[:, :, -2:].reshape(300, -1)], axis=1)
    assert not border.any(), "objects must stay 2 px away from the border"


def test_every_class_appears_balanced(shapes):
    counts = np.bincount(shapes.labels, minlength=len(data.SHAPE_CLASSES))
    assert counts.min() == counts.max() == 300 // len(data.SHAPE_CLASSES)


def test_ring_has_a_hole_and_circle_does_not(shapes):
    # The masks follow the class geometry: the centre of a ring's bounding box is background.
    for label, hole in ((data.SHAPE_CLASSES.index("ring"), True), (data.SHAPE_CLASSES.index("circle"), False)):
        for mask in shapes.masks[shapes.labels == label][:10]:
            rows, cols = np.nonzero(mask)
            centre = mask[(rows.min() + rows.max()) // 2, (cols.min() + cols.max()) // 2]
            assert centre != hole


def test_same_seed_same_data_other_seed_other_data():
    first, again = data.make_shapes(20, seed=3), data.make_shapes(20, seed=3)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.masks, again.masks)
    other = data.make_shapes(20, seed=4)
    assert not np.array_equal(first.images, other.images)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(n=0), "n must be"), (dict(n=-3), "n must be"), (dict(n=2.5), "n must be"),
     (dict(n=4, image_size=16), "image_size must be"), (dict(n=4, seed="x"), "seed must be")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.make_shapes(**kwargs)


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut", "rocket"])
def test_sample_images(name):
    image = data.sample_image(name)
    assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert data.sample_image(name, 224).shape == (224, 224, 3)
    assert data.sample_image(name, (100, 150)).shape == (100, 150, 3)


def test_cat_is_chelsea():
    np.testing.assert_array_equal(data.sample_image("cat"), data.sample_image("chelsea"))


def test_unknown_sample_image_lists_names():
    with pytest.raises(ValueError, match="valid names are .*chelsea"):
        data.sample_image("dog")


def test_digits_upscaled_and_stratified():
    digits = data.load_digits(image_size=32, seed=0)
    assert digits.x_train.shape[1:] == (32, 32, 3) and digits.x_train.dtype == np.float32
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    np.testing.assert_array_equal(digits.x_train[..., 0], digits.x_train[..., 2])
    total = len(digits.y_train) + len(digits.y_test)
    assert total == 1797 and abs(len(digits.y_test) / total - 0.25) < 0.01
    train_share = np.bincount(digits.y_train) / len(digits.y_train)
    test_share = np.bincount(digits.y_test) / len(digits.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.02)


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="valid names are .*cats_vs_dogs.*tf_flowers"):
        data.load_dataset("imagenet")


def test_offline_dataset_fails_with_advice(tmp_path):
    with pytest.raises(DownloadError) as error:
        data.load_dataset("tf_flowers", data_dir=str(tmp_path))
    text = str(error.value)
    assert "tf_flowers" in text and "TFDS_DATA_DIR" in text and "network access" in text


def test_guard_passes_other_errors_through():
    with pytest.raises(KeyError):
        with guarded_download("x", "y"):
            raise KeyError("not a network problem")
