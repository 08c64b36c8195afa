"""Tests of convviz_helpers.data and convviz_helpers.downloads (offline, a few seconds)."""

import socket
import time
import urllib.error

import numpy as np
import pytest
from scipy import ndimage

from convviz_helpers import data
from convviz_helpers.downloads import DownloadError, guarded_download

N = 240  # 40 images per class


@pytest.fixture(scope="module")
def shapes():
    return data.make_shapes(N, seed=0, return_backgrounds=True)


# --- make_shapes ------------------------------------------------------------------------------


def test_arrays_have_the_documented_types_and_ranges(shapes):
    assert shapes.images.shape == (N, 64, 64, 3) and shapes.images.dtype == np.float32
    assert shapes.masks.shape == (N, 64, 64) and shapes.masks.dtype == bool
    assert shapes.labels.shape == (N,) and np.issubdtype(shapes.labels.dtype, np.integer)
    assert shapes.colors.shape == (N, 3) and shapes.colors.dtype == np.float32
    assert shapes.backgrounds.shape == shapes.images.shape
    assert 0.0 <= shapes.images.min() and shapes.images.max() <= 1.0
    assert shapes.class_names == list(data.SHAPE_CLASSES) and len(shapes.class_names) >= 6
    assert len(shapes) == N


def test_every_pixel_inside_the_mask_has_the_object_colour(shapes):
    same = shapes.images == shapes.colors[:, None, None, :]
    assert np.all(same.all(axis=-1) | ~shapes.masks)


def test_every_pixel_outside_the_mask_is_the_background(shapes):
    same = (shapes.images == shapes.backgrounds).all(axis=-1)
    assert np.all(same | shapes.masks)


def test_the_object_colour_stands_out_from_the_background_under_it(shapes):
    weights = shapes.masks[..., None]
    under = (shapes.backgrounds * weights).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    assert np.linalg.norm(shapes.colors - under, axis=1).min() >= 0.35


def test_keeping_backgrounds_does_not_change_the_data(shapes):
    plain = data.make_shapes(N, seed=0)
    assert plain.backgrounds is None
    np.testing.assert_array_equal(plain.images, shapes.images)
    np.testing.assert_array_equal(plain.masks, shapes.masks)


def test_classes_are_balanced(shapes):
    counts = np.bincount(shapes.labels, minlength=len(data.SHAPE_CLASSES))
    assert counts.tolist() == [N // len(data.SHAPE_CLASSES)] * len(data.SHAPE_CLASSES)


def test_each_object_is_one_piece_of_reasonable_size_away_from_the_border(shapes):
    area = shapes.masks.mean(axis=(1, 2))
    assert area.min() > 0.015 and area.max() < 0.35
    border = np.ones((64, 64), bool)
    border[2:-2, 2:-2] = False
    assert not (shapes.masks & border).any()
    for mask in shapes.masks:
        # One piece, give or take a pixel: a star's 36-degree tip can end in a pixel centre
        # whose neighbours all fall just outside the star.
        pieces, _ = ndimage.label(mask, structure=np.ones((3, 3)))
        assert np.bincount(pieces.ravel())[1:].max() >= mask.sum() - 2


def test_the_masks_have_the_geometry_of_their_class(shapes):
    ring = shapes.class_names.index("ring")
    circle = shapes.class_names.index("circle")
    for mask, label in zip(shapes.masks, shapes.labels):
        has_hole = ndimage.binary_fill_holes(mask).sum() > mask.sum()
        assert has_hole == (label == ring)
        if label == circle:
            rows = np.flatnonzero(mask.any(axis=1))
            diameter = rows[-1] - rows[0] + 1
            assert 0.85 < mask.sum() / (np.pi * diameter**2 / 4) < 1.1


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (data.make_shapes(24, image_size=32, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.masks, c.masks)


def test_clutter_only_changes_the_background():
    with_clutter = data.make_shapes(30, seed=5, clutter=True, return_backgrounds=True)
    without = data.make_shapes(30, seed=5, clutter=False, return_backgrounds=True)
    np.testing.assert_array_equal(with_clutter.masks, without.masks)
    np.testing.assert_array_equal(with_clutter.labels, without.labels)
    assert not np.array_equal(with_clutter.backgrounds, without.backgrounds)


@pytest.mark.parametrize("size", [32, 96])
def test_other_image_sizes(size):
    shapes = data.make_shapes(12, image_size=size, seed=1)
    assert shapes.images.shape == (12, size, size, 3) and shapes.masks.shape == (12, size, size)
    assert shapes.masks.any(axis=(1, 2)).all()


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"n": 0}, "n"),
        ({"n": -3}, "n"),
        ({"n": 2.5}, "n"),
        ({"n": "10"}, "n"),
        ({"n": 10, "image_size": 31}, "image_size"),
        ({"n": 10, "image_size": 64.0}, "image_size"),
        ({"n": 10, "seed": "zero"}, "seed"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(kwargs, word):
    with pytest.raises(ValueError, match=word):
        data.make_shapes(**kwargs)


# --- sample_image -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", data.SAMPLE_IMAGES)
def test_every_sample_image_loads_as_rgb_floats(name):
    image = data.sample_image(name)
    assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.max() > 0.5


def test_sample_image_sizes_and_aliases():
    assert data.sample_image("coffee", size=96).shape == (96, 96, 3)
    assert data.sample_image("coffee", size=(40, 120)).shape == (40, 120, 3)
    assert data.sample_image("rocket", size=800).shape == (800, 800, 3)
    np.testing.assert_array_equal(data.sample_image("cat"), data.sample_image("Chelsea"))
    resized = data.sample_image("astronaut", size=64)
    assert 0.0 <= resized.min() and resized.max() <= 1.0


def test_sample_image_returns_a_copy_the_caller_may_change():
    image = data.sample_image("camera")
    image[:] = 0
    assert data.sample_image("camera").max() > 0


def test_unknown_sample_image_lists_the_valid_names():
    with pytest.raises(ValueError, match="chelsea") as info:
        data.sample_image("lena")
    assert "astronaut" in str(info.value) and "lena" in str(info.value)


@pytest.mark.parametrize("size", [0, (10,), (10, -1), 12.5])
def test_bad_sample_image_size(size):
    with pytest.raises(ValueError, match="size"):
        data.sample_image("coffee", size=size)


# --- load_digits ------------------------------------------------------------------------------


def test_digits_are_upscaled_rgb_with_a_stratified_split():
    digits = data.load_digits(image_size=32, seed=0, test_fraction=0.25)
    assert digits.x_train.shape[1:] == (32, 32, 3) and digits.x_train.dtype == np.float32
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert len(digits.x_test) == pytest.approx(0.25 * 1797, abs=1)
    for x in (digits.x_train, digits.x_test):
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
        np.testing.assert_array_equal(x[..., 0], x[..., 2])
    assert digits.class_names == [str(d) for d in range(10)]
    train_share = np.bincount(digits.y_train) / len(digits.y_train)
    test_share = np.bincount(digits.y_test) / len(digits.y_test)
    np.testing.assert_allclose(train_share, test_share, atol=0.01)


def test_digits_split_follows_the_seed_and_size():
    a, b = data.load_digits(seed=1), data.load_digits(seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, data.load_digits(seed=2).y_test)
    assert data.load_digits(image_size=16).x_test.shape[1:] == (16, 16, 3)
    with pytest.raises(ValueError, match="test_fraction"):
        data.load_digits(test_fraction=1.0)


# --- downloads --------------------------------------------------------------------------------


def test_network_failures_become_one_readable_download_error():
    with pytest.raises(DownloadError) as info:
        with guarded_download(what="the 'x' dataset", how="Run once online."):
            raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))
    message = str(info.value)
    assert message.startswith("Could not download the 'x' dataset: ")
    assert "could not be resolved" in message and message.endswith("Run once online.")
    assert isinstance(info.value.__cause__, urllib.error.URLError)


def test_a_keras_style_fetch_failure_is_recognised():
    with pytest.raises(DownloadError, match="URL fetch failure"):
        with guarded_download(what="ImageNet weights for 'vgg16'", how="Place the file."):
            try:
                raise urllib.error.URLError("unreachable")
            except urllib.error.URLError as exc:
                raise Exception(f"URL fetch failure on https://example.org/w.h5: None -- {exc.reason}")


@pytest.mark.parametrize("error", [ValueError("bad argument"), FileNotFoundError("no such file")])
def test_other_errors_pass_unchanged(error):
    with pytest.raises(type(error)):
        with guarded_download(what="x", how="y"):
            raise error


def test_the_socket_timeout_is_short_inside_and_restored_after():
    before = socket.getdefaulttimeout()
    with guarded_download(what="x", how="y", timeout=3.0):
        assert socket.getdefaulttimeout() == 3.0
    assert socket.getdefaulttimeout() == before


def test_an_unreachable_host_fails_before_the_block_runs():
    ran = []
    with pytest.raises(DownloadError, match="nowhere.invalid"):
        with guarded_download(what="x", how="y", urls=["https://nowhere.invalid/file.zip"], timeout=5):
            ran.append(True)
    assert not ran


# --- load_dataset -----------------------------------------------------------------------------


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError, match="tf_flowers") as info:
        data.load_dataset("imagenet")
    assert "cats_vs_dogs" in str(info.value)


def _reachable(host, port=443):
    try:
        socket.create_connection((host, port), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("name, host", [("tf_flowers", "download.tensorflow.org"),
                                        ("cats_vs_dogs", "download.microsoft.com")])
def test_offline_load_dataset_fails_fast_with_a_download_error(name, host, tmp_path):
    # An empty data_dir guarantees nothing is prepared there; with a network the call would
    # start a real download of hundreds of MB, so the test only runs offline.
    if _reachable(host):
        pytest.skip(f"{host} is reachable: this test needs the machine to be offline")
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        data.load_dataset(name, data_dir=tmp_path)
    assert time.monotonic() - start < 60  # tensorflow-datasets alone retries for minutes
    message = str(info.value)
    assert name in message and "TFDS_DATA_DIR" in message and "not reachable" in message


def test_a_prepared_dataset_loads_without_download(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from convviz_helpers._tf import tf

    class PreparedBuilder:
        url_infos = {"https://nowhere.invalid/data.zip": None}
        data_dir = "prepared"

        class info:
            features = {"label": type("Label", (), {"names": ["cat", "dog"]})()}

        def is_prepared(self):
            return True

        def download_and_prepare(self):
            raise AssertionError("a prepared dataset must not be downloaded")

        def as_dataset(self, split, as_supervised, shuffle_files):
            images = np.full((5, 40, 30, 3), 255, np.uint8)
            return tf.data.Dataset.from_tensor_slices((images, np.arange(5) % 2))

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir=None: PreparedBuilder())
    dataset, class_names = data.load_dataset("cats_vs_dogs", image_size=24, batch_size=4)
    batches = list(dataset.as_numpy_iterator())
    assert class_names == ["cat", "dog"]
    assert [len(labels) for _, labels in batches] == [4, 1]
    images = batches[0][0]
    assert images.shape == (4, 24, 24, 3) and images.dtype == np.float32
    np.testing.assert_allclose(images, 1.0, atol=1e-5)
