"""The shared core against models whose gradients can be written down by hand."""

import numpy as np
import pytest

from convviz_helpers import gradients, models
from convviz_helpers._tf import keras


def two_filter_model(final="softmax", relu="fused"):
    """x (2x2x1) -> 1x1 conv (x - 0.4, 0.4 - x) -> ReLU -> global mean -> Dense(2).

    Logit c = a_c * mean(relu(x - 0.4)) + b_c * mean(relu(0.4 - x)), so every gradient is known;
    pixels above 0.4 open the first ReLU, pixels below it the second.
    """
    images = keras.Input((2, 2, 1))
    conv = keras.layers.Conv2D(2, 1, activation="relu" if relu == "fused" else None, name="conv")
    x = conv(images)
    if relu == "layer":
        x = keras.layers.ReLU(name="relu")(x)
    elif relu == "relu6":
        x = keras.layers.ReLU(max_value=6.0, name="relu")(x)
    elif relu == "leaky":
        x = keras.layers.ReLU(negative_slope=0.5, name="relu")(x)
    elif relu == "threshold":
        x = keras.layers.ReLU(threshold=0.1, name="relu")(x)
    elif relu == "ops":  # an activation function given directly, not by name
        x = keras.layers.Activation(keras.ops.relu, name="relu")(x)
    elif relu == "none":
        x = keras.layers.Activation("tanh", name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation=final if final == "softmax" else None, name="dense")
    outputs = dense(x)
    if final == "layer":
        outputs = keras.layers.Softmax()(outputs)
    model = keras.Model(images, outputs)
    conv.set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 2), np.array([-0.4, 0.4], np.float32)])
    dense.set_weights([np.array([[2.0, 0.5], [-3.0, 1.0]], np.float32), np.zeros(2, np.float32)])
    return model


IMAGE = np.array([[0.2, 0.9], [0.7, 0.1]], np.float32)


def batch(image=IMAGE):
    return image.reshape(1, 2, 2, 1)


@pytest.mark.parametrize("final", ["softmax", "layer", None])
def test_logits_and_activation_gradients_match_hand_computation(final):
    model = two_filter_model(final)
    result = gradients.probe(model, batch(), classes=0, layers=["conv"])
    relu_pos, relu_neg = np.maximum(IMAGE - 0.4, 0), np.maximum(0.4 - IMAGE, 0)
    logits = np.array([2.0 * relu_pos.mean() - 3.0 * relu_neg.mean(), 0.5 * relu_pos.mean() + relu_neg.mean()])
    np.testing.assert_allclose(result.scores[0], logits, rtol=1e-5)
    # d logit_0 / d A[i, j, k] = dense weight (k, 0) / (number of positions)
    expected = np.broadcast_to(np.array([2.0, -3.0]) / 4, (2, 2, 2))
    np.testing.assert_allclose(result.gradients[0][0], expected, rtol=1e-6)
    np.testing.assert_allclose(result.activations[0][0, ..., 0], relu_pos, rtol=1e-6)


def test_probabilities_on_request():
    model = two_filter_model("softmax")
    probs = gradients.probe(model, batch(), scores="probabilities").scores
    np.testing.assert_allclose(probs, model.predict(batch(), verbose=0), rtol=1e-5)


@pytest.mark.parametrize("relu", ["fused", "layer", "relu6", "ops"])
def test_guided_and_deconvnet_input_gradients(relu):
    model = two_filter_model(None, relu=relu)
    x = IMAGE
    positive = (x > 0.4).astype(np.float32)
    negative = (x < 0.4).astype(np.float32)
    plain = gradients.probe(model, batch(x), classes=0, input_gradient=True).input_gradient[0, ..., 0]
    # class 0: a = 2 on relu(x - 0.4), b = -3 on relu(0.4 - x)
    np.testing.assert_allclose(plain, (2.0 * positive + 3.0 * negative) / 4, rtol=1e-6)
    guided = gradients.probe(model, batch(x), classes=0, relu="guided", input_gradient=True)
    # guided: the second branch carries gradient -3 < 0, which the guided rule stops
    np.testing.assert_allclose(guided.input_gradient[0, ..., 0], 2.0 * positive / 4, rtol=1e-6)
    deconv = gradients.probe(model, batch(x), classes=0, relu="deconvnet", input_gradient=True)
    # deconvnet ignores where the input was positive: every pixel gets the positive branch
    np.testing.assert_allclose(deconv.input_gradient[0, ..., 0], np.full((2, 2), 2.0 / 4), rtol=1e-6)
    # the swap lasts only while tracing: the model itself is untouched
    assert "call" not in vars(models.find_layer(model, "conv"))
    np.testing.assert_allclose(
        gradients.probe(model, batch(x), classes=0, input_gradient=True).input_gradient[0, ..., 0], plain
    )


def test_input_gradient_matches_finite_difference():
    rng = np.random.default_rng(0)
    images = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, activation="tanh")(images)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(images, outputs)
    image = rng.uniform(0.2, 0.8, (1, 6, 6, 3)).astype(np.float32)
    grad = gradients.probe(model, image, classes=1, input_gradient=True).input_gradient[0]
    logits = keras.Model(images, model.layers[-1].output)  # same graph, softmax kept
    eps = 1e-2
    for index in [(0, 0, 0), (3, 2, 1), (5, 5, 2)]:
        up, down = image.copy(), image.copy()
        up[(0, *index)] += eps
        down[(0, *index)] -= eps
        z_up = np.log(logits.predict(up, verbose=0)[0])
        z_down = np.log(logits.predict(down, verbose=0)[0])
        # log-probability differences cancel the softmax normaliser: a logit difference
        numeric = ((z_up[1] - z_up[0]) - (z_down[1] - z_down[0])) / (2 * eps)
        grad0 = gradients.probe(model, image, classes=0, input_gradient=True).input_gradient[0]
        np.testing.assert_allclose(grad[index] - grad0[index], numeric, rtol=2e-2, atol=1e-3)


def test_nested_model_and_weight_changes_are_seen():
    inner = two_filter_model(None)
    base = keras.Model(inner.input, inner.get_layer("conv").output, name="base")
    outer = keras.Sequential([keras.Input((2, 2, 1)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax", name="head")])
    first = gradients.probe(outer, batch(), classes=1, layers=["conv"])
    direct = base.predict(batch(), verbose=0)
    np.testing.assert_allclose(first.activations[0], direct, rtol=1e-6)
    head = outer.get_layer("head").get_weights()[0]
    np.testing.assert_allclose(first.gradients[0][0], np.broadcast_to(head[:, 1] / 4, (2, 2, 2)), rtol=1e-5)
    conv = models.find_layer(outer, "conv")
    conv.set_weights([w * 2 for w in conv.get_weights()])
    second = gradients.probe(outer, batch(), classes=1, layers=["conv"])
    np.testing.assert_allclose(second.activations[0], 2 * first.activations[0], rtol=1e-6)


def test_top1_default_picks_argmax_per_image():
    model = two_filter_model()
    images = np.stack([IMAGE, 1 - IMAGE, np.zeros_like(IMAGE) + 0.5])[..., None]
    result = gradients.probe(model, images)
    np.testing.assert_array_equal(result.classes, result.scores.argmax(axis=1))


def test_layer_outputs_match_submodels():
    model = two_filter_model()
    conv, pool = gradients.layer_outputs(model, batch(), [model.get_layer("conv"), model.layers[2]])
    np.testing.assert_allclose(conv, keras.Model(model.input, model.get_layer("conv").output).predict(batch(), verbose=0))
    np.testing.assert_allclose(pool, conv.mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(images=np.zeros((2, 2, 1))), "rank 4"),
        (dict(images=np.zeros((1, 2, 2, 3))), "channels"),
        (dict(images=np.zeros((1, 3, 3, 1))), "expects 2x2"),
        (dict(images=np.full((1, 2, 2, 1), np.nan)), "NaN"),
        (dict(images=np.full((1, 2, 2, 1), 200.0)), "divide by 255"),
        (dict(classes=2), "out of range"),
        (dict(classes=[0, 1]), "one per image"),
        (dict(layers=["conf"]), "Closest: conv"),
        (dict(scores="odds"), "valid values"),
        (dict(relu="leaky"), "valid rules"),
    ],
)
def test_bad_input_is_a_clear_value_error(kwargs, message):
    model = two_filter_model()
    kwargs.setdefault("images", batch())
    with pytest.raises(ValueError, match=message):
        gradients.probe(model, **kwargs)


@pytest.mark.parametrize("rule", ["guided", "deconvnet"])
def test_leaky_relu_is_refused_by_non_plain_rules(rule):
    model = two_filter_model(None, relu="leaky")
    plain = gradients.probe(model, batch(), classes=0).scores
    with pytest.raises(ValueError, match="negative_slope=0.5.*relu='plain'"):
        gradients.probe(model, batch(), classes=0, relu=rule)
    # the plain rule never touches the ReLU
    np.testing.assert_allclose(gradients.probe(model, batch(), classes=0).scores, plain)


def test_thresholded_relu_keeps_its_forward_values_and_opens_above_the_threshold():
    model = two_filter_model(None, relu="threshold")
    x = np.array([[0.2, 0.9], [0.45, 0.1]], np.float32)  # 0.45 - 0.4 = 0.05: below the threshold
    plain = gradients.probe(model, batch(x), classes=0, input_gradient=True)
    guided = gradients.probe(model, batch(x), classes=0, relu="guided", input_gradient=True)
    np.testing.assert_allclose(guided.scores, plain.scores, rtol=1e-6)
    opened = ((x - 0.4) > 0.1).astype(np.float32)  # only the first branch passes a positive gradient
    np.testing.assert_allclose(guided.input_gradient[0, ..., 0], 2.0 * opened / 4, rtol=1e-6)


def test_non_plain_rule_on_a_model_without_relu_warns():
    model = two_filter_model(None, relu="none")
    model.get_layer("conv").activation = keras.activations.linear
    with pytest.warns(UserWarning, match="no ReLU to swap"):
        gradients.probe(model, batch(), classes=0, relu="guided", input_gradient=True)
