"""Kernels, filter patterns and class patterns, checked by what the patterns do to the model.

A pattern is right when it drives its own filter far above what noise does and above what the
other filters' patterns do; activations are read back through ``gradients.layer_outputs``,
independently of the ascent's own objective.
"""

from pathlib import Path

import numpy as np
import pytest

from convviz_helpers import digitsnet, filters, gradients, models
from convviz_helpers._tf import keras

SIZE = 32
STEPS = 25


def small_net(dead=False):
    """32 px RGB -> conv1 (fused ReLU) -> conv2 -> bn2 -> relu2 (standalone) -> pool ->
    conv3 (fused ReLU) -> gap -> predictions (softmax, 4 classes), random weights, seed 0.

    With ``dead``: filter 0 of conv1 and channel 0 of relu2 get a bias of -50 before their
    ReLU, so on any image in [0, 1] they output zero everywhere and have zero gradient.
    """
    keras.utils.set_random_seed(0)
    images = keras.Input((SIZE, SIZE, 3), name="images")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(images)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(images, outputs, name="small")
    # Keras's initialisers draw different numbers on each backend; these weights are the ones
    # they drew on TensorFlow (seed 0), so every backend tests the same network.
    with np.load(Path(__file__).parent / "data" / "small_net.npz") as stored:
        model.set_weights([stored[str(i)] for i in range(len(stored.files))])
    if dead:
        conv1, bn2 = model.get_layer("conv1"), model.get_layer("bn2")
        kernel, bias = conv1.get_weights()
        bias[0] = -50.0
        conv1.set_weights([kernel, bias])
        gamma, beta, mean, var = bn2.get_weights()
        beta[0] = -50.0
        bn2.set_weights([gamma, beta, mean, var])
    return model


@pytest.fixture(scope="module")
def net():
    return small_net()


@pytest.fixture(scope="module")
def dead_net():
    return small_net(dead=True)


def noise(n=16, seed=1):
    """Uniform noise and grey-plus-noise images, the two obvious baselines."""
    rng = np.random.default_rng(seed)
    half = n // 2
    return np.concatenate([rng.uniform(0, 1, (half, SIZE, SIZE, 3)),
                           0.5 + rng.uniform(-0.1, 0.1, (n - half, SIZE, SIZE, 3))]).astype(np.float32)


def mean_activation(model, layer, images):
    """(n, channels): each image's mean output of ``layer`` (after its activation)."""
    return gradients.layer_outputs(model, images, [models.find_layer(model, layer)])[0].mean(axis=(1, 2))


@pytest.mark.parametrize("layer", ["conv1", "relu2", "conv3"])
def test_each_pattern_drives_its_own_filter_above_noise_and_above_other_patterns(net, layer):
    chosen = [0, 1, 2, 3, 4, 5]
    patterns = filters.filter_patterns(net, layer, chosen, steps=60, raw=True)
    # What the ascent maximises: the filter before its ReLU, (pattern, filter).
    response = filters.filter_scores(net, layer, patterns, chosen)
    baseline = filters.filter_scores(net, layer, noise(), chosen)
    own = np.diag(response)
    assert ((own - baseline.max(axis=0)) > 5 * baseline.std(axis=0)).all(), (own, baseline.max(axis=0))
    others = np.where(np.eye(len(chosen), dtype=bool), -np.inf, response).max(axis=0)
    assert (own > others).all(), (own, others)
    # After the ReLU too, each pattern beats every noise image on its own filter.
    after = mean_activation(net, layer, patterns)[:, chosen]
    assert (np.diag(after) > mean_activation(net, layer, noise())[:, chosen].max(axis=0)).all()


def test_filter_scores_read_the_pre_activation(net):
    images = noise(4)
    np.testing.assert_allclose(filters.filter_scores(net, "relu2", images),
                               mean_activation(net, "bn2", images), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(filters.filter_scores(net, "relu2", images, preactivation=False),
                               mean_activation(net, "relu2", images), rtol=1e-5, atol=1e-6)
    linear = filters.filter_scores(net, "conv1", images, [2])[:, 0]
    relu_mean = mean_activation(net, "conv1", images)[:, 2]
    assert (relu_mean >= linear - 1e-6).all()  # mean(relu(a)) >= mean(a)


def test_patterns_are_images_in_range_without_nan(net):
    for kwargs in ({}, {"regularized": True}, {"regularized": True, "fourier": True}):
        patterns = filters.filter_patterns(net, "conv3", [0, 5, 15], steps=5, **kwargs)
        assert patterns.shape == (3, SIZE, SIZE, 3) and patterns.dtype == np.float32
        assert np.isfinite(patterns).all()
        assert patterns.min() >= 0.0 and patterns.max() <= 1.0
        assert patterns.std(axis=(1, 2, 3)).min() > 0.02, kwargs  # not flat grey


@pytest.mark.parametrize("kwargs", [{}, {"regularized": True}, {"regularized": True, "fourier": True}])
def test_a_pattern_does_not_depend_on_its_batch(net, kwargs):
    alone = filters.filter_patterns(net, "relu2", [3], steps=10, seed=7, **kwargs)
    together = filters.filter_patterns(net, "relu2", [0, 1, 2, 3], steps=10, seed=7, **kwargs)
    np.testing.assert_allclose(alone[0], together[3], atol=1e-4)
    # Chunking is batching too: two filters per chunk give the same images.
    chunked = filters.filter_patterns(net, "relu2", [0, 1, 2, 3], steps=10, seed=7, batch_size=2, **kwargs)
    np.testing.assert_allclose(chunked, together, atol=1e-4)
    other_seed = filters.filter_patterns(net, "relu2", [3], steps=10, seed=8, **kwargs)
    assert np.abs(other_seed[0] - alone[0]).max() > 0.01


@pytest.mark.parametrize("layer", ["conv1", "relu2"])
def test_a_dead_relu_filter_still_gets_a_pattern(dead_net, layer):
    # After the ReLU the gradient is zero: the ascent cannot move the start image at all...
    stuck_short = filters.filter_patterns(dead_net, layer, [0], steps=1, raw=True, preactivation=False)
    stuck_long = filters.filter_patterns(dead_net, layer, [0], steps=STEPS, raw=True, preactivation=False)
    np.testing.assert_array_equal(stuck_short, stuck_long)
    # ...while the pre-activation moves it, and raises the filter's input far above noise.
    moved = filters.filter_patterns(dead_net, layer, [0], steps=STEPS, raw=True)
    assert np.abs(moved - stuck_long).mean() > 0.05
    grown = filters.filter_scores(dead_net, layer, moved, [0])[0, 0]
    baseline = filters.filter_scores(dead_net, layer, noise(), [0])[:, 0]
    assert grown > baseline.max() + 3 * baseline.std(), (grown, baseline.max())


def test_class_patterns_raise_their_logit_above_noise_and_above_other_patterns(net):
    patterns = filters.class_patterns(net, steps=STEPS, raw=True)
    assert patterns.shape == (4, SIZE, SIZE, 3)
    logits = gradients.predict(net, patterns, scores="logits")  # (pattern, class)
    baseline = gradients.predict(net, noise(), scores="logits")
    own = np.diag(logits)
    assert (own > baseline.max(axis=0) + 3 * baseline.std(axis=0)).all(), (own, baseline.max(axis=0))
    assert (logits.argmax(axis=0) == np.arange(4)).all()
    alone = filters.class_patterns(net, [2], steps=5, regularized=True)
    together = filters.class_patterns(net, steps=5, regularized=True)
    np.testing.assert_allclose(alone[0], together[2], atol=1e-4)


def test_a_trained_model_classifies_its_class_patterns_as_their_class():
    model = digitsnet.digits_model()
    for kwargs in ({}, {"regularized": True}):
        patterns = filters.class_patterns(model, steps=40, **kwargs)
        predicted = gradients.predict(model, patterns).argmax(axis=1)
        np.testing.assert_array_equal(predicted, np.arange(10))


def test_nested_model_with_preprocessing_inside():
    keras.utils.set_random_seed(0)
    inner = keras.Sequential([keras.Input((SIZE, SIZE, 3)),
                              keras.layers.Conv2D(4, 3, activation="relu", name="inner_conv")], name="base")
    images = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="to_signed")(images)
    x = keras.layers.GlobalAveragePooling2D()(inner(x))
    model = keras.Model(images, keras.layers.Dense(2, name="head")(x))
    patterns = filters.filter_patterns(model, "inner_conv", steps=10, raw=True)
    scores = filters.filter_scores(model, "inner_conv", patterns)
    assert (np.diag(scores) > filters.filter_scores(model, "inner_conv", noise()).max(axis=0)).all()


def test_a_different_image_size_is_resized_for_the_model(net):
    patterns = filters.filter_patterns(net, "conv3", [1], steps=3, image_size=48)
    assert patterns.shape == (1, 48, 48, 3)


@pytest.mark.parametrize("layer, filters_, kwargs, message", [
    ("predictions", None, {}, "has no filters"),
    ("gap", None, {}, "has no filters"),
    ("conv3", [16], {}, "filter 16 is out of range"),
    ("conv3", [-1], {}, "out of range"),
    ("conv3", [], {}, "non-empty"),
    ("conv3", [0], {"steps": 0}, "steps must be a positive integer"),
    ("conv3", [0], {"steps": -3}, "steps must be a positive integer"),
    ("conv3", [0], {"fourier": True}, "regularized=True"),
    ("conv3", [0], {"learning_rate": 0.0}, "learning_rate"),
    ("no_such_layer", None, {}, "No layer"),
])
def test_clear_errors(net, layer, filters_, kwargs, message):
    with pytest.raises(ValueError, match=message):
        filters.filter_patterns(net, layer, filters_, **kwargs)


def test_class_errors(net):
    with pytest.raises(ValueError, match="class 4 is out of range"):
        filters.class_patterns(net, [4])
    with pytest.raises(ValueError, match="steps"):
        filters.class_patterns(net, steps=0)


def test_kernel_images_first_layer_and_deeper(net):
    tiles = filters.kernel_images(net)  # the first conv layer: conv1 on RGB
    assert tiles.shape == (8, 3, 3, 3)
    np.testing.assert_allclose(tiles.min(axis=(1, 2, 3)), 0.0, atol=1e-6)
    np.testing.assert_allclose(tiles.max(axis=(1, 2, 3)), 1.0, atol=1e-6)
    kernel = net.get_layer("conv1").get_weights()[0][..., 5]
    np.testing.assert_allclose(tiles[5], (kernel - kernel.min()) / (kernel.max() - kernel.min()), rtol=1e-5)
    deeper = filters.kernel_images(net, "conv3")
    assert deeper.shape == (16, 8, 3, 3)
    np.testing.assert_allclose(np.abs(deeper).max(axis=(1, 2, 3)), 1.0, atol=1e-6)
    fig = filters.kernel_grid(net, "conv3", max_filters=4, max_channels=3)
    assert "conv3" in fig._suptitle.get_text()
    assert filters.kernel_grid(net)._suptitle.get_text().startswith("Kernels of conv1")
    with pytest.raises(ValueError, match="not a convolution"):
        filters.kernel_images(net, "bn2")


def test_digits_model_is_shipped_and_reloads():
    from convviz_helpers import data, trained, training

    model = digitsnet.digits_model()
    digits = data.load_digits(image_size=digitsnet.RECIPE.image_size)
    x_test, y_test = digits.x_test, digits.y_test
    assert training.evaluate(model, x_test, y_test) > 0.9
    trained.clear_memory()
    assert trained.source("digitsnet", digitsnet.RECIPE) == "shipped"
    reloaded = digitsnet.digits_model()
    np.testing.assert_allclose(reloaded.predict(x_test[:8], verbose=0), model.predict(x_test[:8], verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_vgg16_random_weights_all_blocks():
    vgg = models.pretrained("vgg16", weights=None)
    for layer in ("block1_conv1", "block5_conv3"):
        patterns = filters.filter_patterns(vgg, layer, [0, 1], steps=2, raw=True)
        assert patterns.shape == (2, 224, 224, 3) and np.isfinite(patterns).all()
