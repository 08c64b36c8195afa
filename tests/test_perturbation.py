"""Occlusion and RISE against plain Python loops over their windows and masks, and bad input."""

import numpy as np
import pytest

from convviz_helpers import cam, perturbation
from convviz_helpers._tf import keras

SIZE, CLASSES = 12, 3
IMAGES = np.random.default_rng(0).uniform(size=(3, SIZE, SIZE, 3)).astype(np.float32)


def small_net(final=None):
    """conv 3x3 (tanh) -> conv 3x3 stride 2 (softplus) -> global average -> Dense(3), with
    weights drawn from a fixed numpy seed, so every backend runs the same function."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="tanh")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="softplus")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(CLASSES, activation=final)(x), name="small")
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def outputs(model, images):
    return keras.ops.convert_to_numpy(model(images, training=False))


def scale_like_book(maps):
    maps = np.maximum(maps, 0.0)
    return maps / maps.max(axis=(1, 2), keepdims=True)


@pytest.mark.parametrize("baseline", ["black", 0.5])
def test_occlusion_equals_a_loop_over_windows(baseline):
    model = small_net()
    classes = np.array([0, 2, 1])
    found = cam.occlusion(model, IMAGES, classes, window=4, stride=3, baseline=baseline)
    fill = 0.0 if baseline == "black" else baseline
    expected = np.zeros((len(IMAGES), SIZE, SIZE))
    for i, image in enumerate(IMAGES):
        clean = outputs(model, image[None])[0, classes[i]]
        total, count = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
        for top in [0, 3, 6, 8]:  # every 3 px, plus one flush with the far edge
            for left in [0, 3, 6, 8]:
                copy = image.copy()
                copy[top:top + 4, left:left + 4] = fill
                total[top:top + 4, left:left + 4] += clean - outputs(model, copy[None])[0, classes[i]]
                count[top:top + 4, left:left + 4] += 1
        expected[i] = total / count
    assert found.shape == (3, SIZE, SIZE) and found.dtype == np.float32
    np.testing.assert_allclose(found, scale_like_book(expected), atol=2e-5)


def test_occlusion_windows_cover_every_pixel():
    windows = perturbation.occlusion_windows((10, 7), (4, 3), (3, 2))
    assert windows.shape == (3 * 3, 10, 7)
    assert windows.sum(axis=0).min() >= 1
    assert (windows.sum(axis=(1, 2)) == 12).all()


def test_rise_equals_a_loop_over_its_masks():
    model = small_net("softmax")
    masks = perturbation.rise_masks((SIZE, SIZE), 40, cell=4, keep=0.4, seed=3)
    found = cam.rise(model, IMAGES, [1, 0, 2], masks=40, cell=4, keep=0.4, seed=3)
    expected = np.zeros((len(IMAGES), SIZE, SIZE))
    for i, (image, k) in enumerate(zip(IMAGES, [1, 0, 2])):
        for mask in masks:
            expected[i] += outputs(model, (image * mask[..., None])[None])[0, k] * mask
    expected /= 40 * 0.4
    low = expected.min(axis=(1, 2), keepdims=True)
    expected = (expected - low) / (expected.max(axis=(1, 2), keepdims=True) - low)
    np.testing.assert_allclose(found, expected, atol=2e-5)


def test_rise_masks_are_smooth_random_grids():
    masks = perturbation.rise_masks((SIZE, SIZE), 2000, cell=4, keep=0.3, seed=0)
    assert masks.shape == (2000, SIZE, SIZE) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean() - 0.3) < 0.02  # bilinear weights keep the expected value
    np.testing.assert_array_equal(masks, perturbation.rise_masks((SIZE, SIZE), 2000, cell=4, keep=0.3, seed=0))
    assert not np.array_equal(masks, perturbation.rise_masks((SIZE, SIZE), 2000, cell=4, keep=0.3, seed=1))


def region_net():
    """Flatten -> Dense(2, softmax): class 0's logit is 20 x the mean of the top-left 6 x 6
    block minus 5, class 1's is 0, so only that block matters."""
    inputs = keras.Input((SIZE, SIZE, 3))
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)), name="region")
    weights = np.zeros((SIZE, SIZE, 3, 2), np.float32)
    weights[:6, :6, :, 0] = 20.0 / (6 * 6 * 3)
    dense.set_weights([weights.reshape(-1, 2), np.array([-5.0, 0.0], np.float32)])
    return model


def test_rise_maps_from_two_seeds_agree_more_with_more_masks():
    model = region_net()

    def maps(count, seed):
        return cam.rise(model, IMAGES, 0, masks=count, cell=4, seed=seed)

    def agreement(count):
        return np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(maps(count, 0), maps(count, 1))])

    few, some, many = agreement(10), agreement(100), agreement(1000)
    assert few < some < many and many > 0.95
    inside = np.zeros((SIZE, SIZE), bool)
    inside[:6, :6] = True
    found = maps(1000, 0)
    assert (found[:, inside].mean(axis=1) > found[:, ~inside].mean(axis=1) + 0.3).all()


def test_baselines_in_the_models_range():
    model = small_net()
    blurred = perturbation.baseline_images(model, IMAGES, "blur")
    assert blurred.shape == IMAGES.shape and blurred.std() < IMAGES.std()
    np.testing.assert_allclose(blurred.mean(axis=(1, 2)), IMAGES.mean(axis=(1, 2)), atol=1e-3)
    one = IMAGES[0]
    np.testing.assert_array_equal(perturbation.baseline_images(model, IMAGES, one), np.stack([one] * 3))


@pytest.mark.parametrize("kwargs, message", [
    ({"window": SIZE + 1}, "larger than the images"),
    ({"window": 4, "stride": 0}, "stride must be"),
    ({"window": 3, "stride": 4}, "larger than the window"),
    ({"window": 4, "stride": 2, "baseline": np.zeros((5, 5, 3))}, "baseline has shape"),
    ({"window": 4, "stride": 2, "baseline": 2.0}, "outside the model's input range"),
    ({"window": 4, "stride": 2, "baseline": "grey"}, "baseline must be"),
])
def test_occlusion_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cam.occlusion(small_net(), IMAGES, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"keep": 0.0}, "keep"), ({"keep": 1.5}, "keep"), ({"masks": 0}, "masks must be"), ({"cell": 0}, "cell must be"),
])
def test_rise_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cam.rise(small_net("softmax"), IMAGES, **kwargs)
