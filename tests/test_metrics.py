"""Metrics on hand-made heatmaps and masks, and the checks that need a model."""

import warnings

import numpy as np
import pytest

from convviz_helpers import cam, metrics
from convviz_helpers._tf import keras


def square_mask(n=1, size=8, top=2, left=2, side=3):
    masks = np.zeros((n, size, size), bool)
    masks[:, top:top + side, left:left + side] = True
    return masks


def peak_at(row, col, size=8):
    heatmap = np.zeros((1, size, size), np.float32)
    heatmap[0, row, col] = 1.0
    return heatmap


def test_pointing_game_hits_and_misses():
    masks = square_mask(3)  # rows 2..4, cols 2..4
    heatmaps = np.concatenate([peak_at(3, 3), peak_at(0, 0), peak_at(4, 6)])
    assert metrics.pointing_game(heatmaps, masks) == pytest.approx(1 / 3)
    np.testing.assert_array_equal(metrics.pointing_game(heatmaps, masks, reduce=None), [True, False, False])


def test_pointing_game_tolerance_is_euclidean_pixels():
    masks = square_mask(1)
    # (4, 6) is 2 px right of the mask's pixel (4, 4); (6, 6) is sqrt(8) ~ 2.83 px from (4, 4).
    assert metrics.pointing_game(peak_at(4, 6), masks, tolerance=1) == 0.0
    assert metrics.pointing_game(peak_at(4, 6), masks, tolerance=2) == 1.0
    assert metrics.pointing_game(peak_at(6, 6), masks, tolerance=2) == 0.0
    assert metrics.pointing_game(peak_at(6, 6), masks, tolerance=3) == 1.0


def test_constant_heatmap_points_nowhere():
    masks = np.ones((2, 8, 8), bool)
    assert metrics.pointing_game(np.zeros((2, 8, 8)), masks) == 0.0


def test_shape_mismatch_is_value_error():
    with pytest.raises(ValueError, match="same shape"):
        metrics.pointing_game(np.zeros((2, 8, 8)), np.zeros((2, 16, 16), bool))
    with pytest.raises(ValueError, match="same shape"):
        metrics.energy_in_mask(np.zeros((8, 8)), np.zeros((8, 8), bool))


def test_energy_in_mask_fractions():
    masks = square_mask(2)
    heatmaps = np.zeros((2, 8, 8), np.float32)
    heatmaps[0, 3, 3], heatmaps[0, 0, 0] = 3.0, 1.0  # 3 of 4 units inside
    per_image = metrics.energy_in_mask(heatmaps, masks, reduce=None)
    np.testing.assert_allclose(per_image, [0.75, 0.0])  # an empty map scores 0, not NaN
    assert metrics.energy_in_mask(heatmaps, masks) == pytest.approx(0.375)
    uniform = np.ones((1, 8, 8))
    assert metrics.energy_in_mask(uniform, square_mask(1)) == pytest.approx(9 / 64)


def test_baselines():
    centre = metrics.centre_baseline((2, 9, 9))
    assert centre.shape == (2, 9, 9) and centre.max() == 1.0 and centre[0, 4, 4] == 1.0
    assert metrics.pointing_game(centre, square_mask(2, size=9, top=3, left=3)) == 1.0
    random = metrics.random_baseline((3, 16, 16), seed=1)
    assert random.shape == (3, 16, 16) and 0 <= random.min() and random.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(random, metrics.random_baseline((3, 16, 16), seed=1))


def test_spearman_against_hand_ranks():
    a = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[10.0, 20.0, 30.0, 40.0], [4.0, 3.0, 2.0, 1.0]])
    np.testing.assert_allclose(metrics.spearman(a, b), [1.0, -1.0])
    # one swap among 4: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60
    np.testing.assert_allclose(metrics.spearman([[1, 2, 3, 4]], [[2, 1, 3, 4]]), [0.8])


def test_neighbour_fill_keeps_kept_pixels_and_fills_linearly():
    ramp = np.tile(np.linspace(0, 1, 9, dtype=np.float32), (9, 1))[None, ..., None]  # left-right ramp
    removed = np.zeros((1, 9, 9), bool)
    removed[0, 3:6, 3:6] = True
    filled = metrics.neighbour_fill(ramp, removed, iterations=200)
    np.testing.assert_array_equal(filled[~removed], ramp[~removed])
    # a linear ramp is harmonic: the Laplace fill restores it
    np.testing.assert_allclose(filled, ramp, atol=1e-3)


def jacobi_fill_reference(images, removed, iterations):
    """The same Jacobi iteration written plainly with numpy slices (edges replicated by np.pad)."""
    hole = removed[..., None]
    kept = np.where(hole, 0.0, images).sum(axis=(1, 2), keepdims=True)
    count = np.maximum((~hole).sum(axis=(1, 2), keepdims=True), 1)
    filled = np.where(hole, kept / count, images)
    for _ in range(iterations):
        padded = np.pad(filled, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        around = (padded[:, :-2, 1:-1] + padded[:, 2:, 1:-1] + padded[:, 1:-1, :-2] + padded[:, 1:-1, 2:]) / 4
        filled = np.where(hole, around, images)
    return filled


@pytest.mark.parametrize("shape", [(3, 9, 7, 1), (50, 12, 10, 3)])
def test_neighbour_fill_equals_a_plain_jacobi_iteration(shape):
    """50 images of 3 channels span several OpenCV calls (at most 128 channels each)."""
    rng = np.random.default_rng(0)
    images = rng.random(shape, dtype=np.float32)
    removed = rng.random(shape[:3]) < 0.6
    expected = jacobi_fill_reference(images.astype(np.float64), removed, iterations=25)
    np.testing.assert_allclose(metrics.neighbour_fill(images, removed, iterations=25), expected, atol=1e-5)


def counting_model(size=8):
    """Logit 0 = 10 * mean of channel 0 through a 1x1 conv; logit 1 = 0: removing bright pixels
    lowers class 0's probability, so a map pointing at them must give a falling curve."""
    images = keras.Input((size, size, 3))
    conv = keras.layers.Conv2D(1, 1, activation="relu", use_bias=False)
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(images, dense(keras.layers.GlobalAveragePooling2D()(conv(images))))
    conv.set_weights([np.array([1.0, 0.0, 0.0], np.float32).reshape(1, 1, 3, 1)])
    dense.set_weights([np.array([[10.0, 0.0]], np.float32), np.zeros(2, np.float32)])
    return model


def test_deletion_curve_orders_and_batches():
    model = counting_model()
    images = np.zeros((2, 8, 8, 3), np.float32)
    images[:, 2:6, 2:6, 0] = 1.0
    good = images[..., 0] + 0.01 * np.random.default_rng(0).uniform(size=(2, 8, 8))
    bad = -good
    best = metrics.deletion_curve(model, images, good, classes=0, steps=8, fill="zero")
    worst = metrics.deletion_curve(model, images, bad, classes=0, steps=8, fill="zero")
    assert best.scores.shape == (2, 9) and best.fractions[0] == 0 and best.fractions[-1] == 1
    np.testing.assert_allclose(best.scores[:, 0], worst.scores[:, 0])
    # the 16 bright pixels are 1/4 of the image: gone after the first two steps for the good map
    np.testing.assert_allclose(best.scores[:, 2], 0.5, atol=1e-5)
    assert (best.auc < worst.auc).all()
    road = metrics.deletion_curve(model, images, good, classes=0, steps=4, fill="road")
    assert road.scores.shape == (2, 5) and np.isfinite(road.auc).all()


def small_relu_model():
    keras.utils.set_random_seed(0)
    images = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c1")(images)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="c2")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(images, outputs)


def test_randomization_check_leaves_model_alone_and_decorrelates():
    model = small_relu_model()
    before = [w.copy() for w in model.get_weights()]
    batch = np.random.default_rng(0).uniform(size=(4, 16, 16, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = metrics.randomization_check(cam.grad_cam, model, batch)
    assert result.layers == ["head", "c2", "c1"]
    assert result.correlations.shape == (3, 4) and result.maps.shape == (4, 4, 16, 16)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)
    assert result.mean[-1] < 0.9


def test_randomization_check_equals_maps_of_a_randomised_copy():
    """A second implementation: a clone whose layers get the same fresh values step by step."""
    model = small_relu_model()
    batch = np.random.default_rng(1).uniform(size=(3, 16, 16, 3)).astype(np.float32)
    classes = [0, 1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = metrics.randomization_check(cam.grad_cam, model, batch, classes, layers=["head", "c2"], seed=5)
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        expected = [cam.grad_cam(copy, batch, classes)]
        for step, name in enumerate(["head", "c2"]):
            metrics._reinitialise(copy.get_layer(name), 5 + 1000 * step)
            expected.append(cam.grad_cam(copy, batch, classes))
    np.testing.assert_allclose(result.maps, np.stack(expected), atol=1e-5)
    assert not np.allclose(expected[0], expected[1])  # the head's new weights did change the map


def test_randomization_check_restores_the_model_when_the_method_fails():
    model = small_relu_model()
    before = [w.copy() for w in model.get_weights()]
    calls = []

    def failing(m, x, c):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("method failed")
        return cam.saliency(m, x, c)

    batch = np.random.default_rng(2).uniform(size=(2, 16, 16, 3)).astype(np.float32)
    with pytest.raises(RuntimeError, match="method failed"):
        metrics.randomization_check(failing, model, batch, [0, 1])
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_deletion_curve_refuses_mismatched_heatmaps():
    with pytest.raises(ValueError, match="match the images"):
        metrics.deletion_curve(counting_model(), np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 4, 4)))
