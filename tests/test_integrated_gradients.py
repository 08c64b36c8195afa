"""Integrated gradients: completeness, an exactly solvable linear model, the trapezoid rule,
and bad input."""

import numpy as np
import pytest
from test_perturbation import IMAGES, SIZE, outputs, small_net

from convviz_helpers import cam, integrated_gradients, perturbation
from convviz_helpers._tf import keras


@pytest.mark.parametrize("baseline", ["black", "blur", "array"])
def test_completeness_within_one_percent_at_the_default_steps(baseline):
    model = small_net()
    start = 1.0 - IMAGES if baseline == "array" else baseline  # the negative: far from the image
    attributions = cam.integrated_gradients(model, IMAGES, [0, 1, 2], baseline=start)
    base = perturbation.baseline_images(model, IMAGES, start)
    wanted = np.arange(3)
    difference = outputs(model, IMAGES)[wanted, wanted] - outputs(model, base)[wanted, wanted]
    assert attributions.shape == IMAGES.shape and attributions.dtype == np.float32
    total = attributions.sum(axis=(1, 2, 3))
    assert (np.abs(difference) > 0.05).all()  # a gap worth explaining
    np.testing.assert_array_less(np.abs(total - difference), 0.01 * np.abs(difference))


def test_linear_model_gets_input_times_weights():
    inputs = keras.Input((SIZE, SIZE, 3))
    dense = keras.layers.Dense(2)
    model = keras.Model(inputs, dense(keras.layers.Flatten()(inputs)))
    weights = np.random.default_rng(2).normal(size=(SIZE * SIZE * 3, 2)).astype(np.float32)
    dense.set_weights([weights, np.zeros(2, np.float32)])
    found = cam.integrated_gradients(model, IMAGES, 1, baseline=0.25, steps=3)
    expected = (IMAGES - 0.25) * weights[:, 1].reshape(SIZE, SIZE, 3)
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)


def test_one_step_is_the_trapezoid_of_the_two_end_gradients():
    model = small_net()
    found = cam.integrated_gradients(model, IMAGES[:1], 2, steps=1)
    # A finite-difference gradient of the class logit at both ends of the path, per pixel.
    eps, flat = 1e-2, IMAGES[:1].reshape(-1)

    def gradient_at(point):
        probes = np.repeat(point[None], flat.size * 2, axis=0)
        probes[np.arange(flat.size), np.arange(flat.size)] += eps
        probes[flat.size + np.arange(flat.size), np.arange(flat.size)] -= eps
        values = outputs(model, probes.reshape(-1, SIZE, SIZE, 3))[:, 2]
        return ((values[:flat.size] - values[flat.size:]) / (2 * eps)).reshape(SIZE, SIZE, 3)

    expected = IMAGES[0] * (gradient_at(flat) + gradient_at(np.zeros_like(flat))) / 2
    np.testing.assert_allclose(found[0], expected, atol=2e-3)


def test_trapezoid_weights():
    alphas, weights = integrated_gradients.trapezoid_weights(4)
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])


def test_map_is_the_positive_channel_sum_scaled():
    attributions = np.zeros((1, 2, 2, 3), np.float32)
    attributions[0, 0, 0] = [1, 1, -1]
    attributions[0, 1, 1] = [2, 1, 1]
    attributions[0, 0, 1] = [-3, 0, 0]
    np.testing.assert_allclose(cam.attribution_map(attributions)[0], [[0.25, 0], [0, 1]])


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": 0}, "steps must be"), ({"steps": 2.5}, "steps must be"),
    ({"baseline": np.zeros((SIZE, SIZE, 1))}, "baseline has shape"),
    ({"baseline": np.zeros((2, SIZE, SIZE, 3))}, "baseline has shape"),
    ({"baseline": -1.0}, "outside the model's input range"),
])
def test_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cam.integrated_gradients(small_net(), IMAGES, **kwargs)
