"""CAM methods against maps computed by hand, bad input, and the keras.applications models."""

import warnings

import numpy as np
import pytest

from convviz_helpers import cam, models
from convviz_helpers._tf import keras

SIZE, CHANNELS, CLASSES = 6, 4, 3
RNG = np.random.default_rng(7)
# Mixed signs, chosen so that every class has a positive region in every test image.
CONV_W = np.array([[1.0, -0.5, 0.3, 0.8], [-0.6, 1.0, 0.4, -0.2], [0.3, 0.2, -0.9, 0.5]], np.float32)
CONV_B = np.array([0.1, -0.2, 0.05, 0.0], np.float32)
DENSE_W = np.array([[1.0, -0.5, 0.3], [-0.7, 1.2, 0.4], [0.5, 0.2, -1.0], [-0.3, -0.4, 0.9]], np.float32)
IMAGES = RNG.uniform(size=(3, SIZE, SIZE, 3)).astype(np.float32)


def gap_model(final="softmax", nested=False):
    """images -> 1x1 conv + ReLU ("conv") -> global average pooling -> Dense(3).

    The logit of class k is sum_c DENSE_W[c, k] * mean(A_c), so d logit_k / d A_c = DENSE_W[c, k]
    / (h * w) everywhere: Grad-CAM's channel weights are the Dense kernel's column / (h * w).
    ``final``: "softmax" inside the Dense, "layer" as a separate Softmax, None for logits.
    """
    images = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(CHANNELS, 1, activation="relu", name="conv")
    x = keras.layers.GlobalAveragePooling2D()(conv(images))
    dense = keras.layers.Dense(
        CLASSES, activation="softmax" if final == "softmax" else None, use_bias=False, name="predictions"
    )
    outputs = dense(x)
    if final == "layer":
        outputs = keras.layers.Softmax()(outputs)
    model = keras.Model(images, outputs, name="inner")
    conv.set_weights([CONV_W.reshape(1, 1, 3, CHANNELS), CONV_B])
    dense.set_weights([DENSE_W])
    if nested:
        model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), model], name="outer")
    return model


def hand_activations(images=IMAGES):
    return np.maximum(images @ CONV_W + CONV_B, 0.0)  # (n, 6, 6, 4)


def hand_logits(images=IMAGES):
    return hand_activations(images).mean(axis=(1, 2)) @ DENSE_W


def hand_normalise(maps):
    maps = np.maximum(maps, 0.0)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def hand_gradients(classes):
    """d logit / d A for each image's class: (n, 1, 1, c), the same at every position."""
    return (DENSE_W[:, classes].T / SIZE**2)[:, None, None, :]


def top1():
    return hand_logits().argmax(axis=1)


@pytest.mark.parametrize("nested", [False, True], ids=["plain", "nested"])
@pytest.mark.parametrize("final", ["softmax", "layer"], ids=["softmax-in-dense", "softmax-layer"])
def test_grad_cam_equals_closed_form(final, nested):
    model = gap_model(final, nested)
    classes = np.array([0, 2, 1])
    weights = DENSE_W[:, classes].T / SIZE**2  # (n, c): the Dense column / (h * w)
    expected = hand_normalise(np.einsum("nhwc,nc->nhw", hand_activations(), weights))
    got = cam.grad_cam(model, IMAGES, classes)
    assert got.shape == (3, SIZE, SIZE) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # None means the top-1 class; logits and probabilities have the same argmax.
    top_expected = hand_normalise(np.einsum("nhwc,nc->nhw", hand_activations(), DENSE_W[:, top1()].T))
    np.testing.assert_allclose(cam.grad_cam(model, IMAGES), top_expected, rtol=1e-5, atol=1e-6)


def test_one_int_class_for_all_and_explicit_layer():
    model = gap_model()
    expected = hand_normalise(np.einsum("nhwc,c->nhw", hand_activations(), DENSE_W[:, 1]))
    np.testing.assert_allclose(cam.grad_cam(model, IMAGES, 1, layer="conv"), expected, rtol=1e-5, atol=1e-6)


def test_probabilities_keyword_scales_weights_by_softmax_jacobian():
    model = gap_model()
    logits = hand_logits()
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    k = 0
    # d p_k / d A_c = p_k * (W[c, k] - sum_j p_j W[c, j]) / (h * w)
    weights = probs[:, k:k + 1] * (DENSE_W[:, k][None, :] - probs @ DENSE_W.T)
    expected_raw = np.einsum("nhwc,nc->nhw", hand_activations(), weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a map may have no positive part
        got = cam.grad_cam(model, IMAGES, k, scores="probabilities")
    positive = expected_raw.max(axis=(1, 2)) > 0
    np.testing.assert_allclose(got[positive], hand_normalise(expected_raw[positive]), rtol=1e-4, atol=1e-6)


def test_grad_cam_plus_plus_and_layer_cam_match_hand_formulas():
    model = gap_model(nested=True)
    classes = np.array([2, 0, 1])
    acts, grads = hand_activations(), hand_gradients(classes)
    alpha = grads**2 / (2 * grads**2 + acts.sum(axis=(1, 2), keepdims=True) * grads**3)
    # G and alpha are the same at all h * w positions, so the sum over positions is a product.
    weights = (alpha * np.maximum(grads, 0))[:, 0, 0, :] * SIZE**2
    plus_plus = hand_normalise(np.einsum("nhwc,nc->nhw", acts, weights))
    np.testing.assert_allclose(cam.grad_cam_plus_plus(model, IMAGES, classes), plus_plus, rtol=1e-4, atol=1e-6)
    layer = hand_normalise((np.maximum(grads, 0) * acts).sum(axis=-1))
    np.testing.assert_allclose(cam.layer_cam(model, IMAGES, classes), layer, rtol=1e-5, atol=1e-6)


def test_score_cam_weights_are_probability_rises():
    model = gap_model()
    image = IMAGES[:1]
    acts = hand_activations(image)[0]  # (6, 6, 4)
    low, high = acts.min(axis=(0, 1)), acts.max(axis=(0, 1))
    masks = np.where(high > low, (acts - low) / np.where(high > low, high - low, 1), 0)  # (6, 6, 4)
    masked = image[0][None] * np.moveaxis(masks, -1, 0)[..., None]  # (4, 6, 6, 3)

    def prob(x, k):
        logits = hand_logits(x)
        return (np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True))[:, k]

    k = int(top1()[0])
    weights = prob(masked, k) - prob(np.zeros_like(image), k)
    expected = hand_normalise((acts * weights).sum(axis=-1)[None])
    np.testing.assert_allclose(cam.score_cam(model, image), expected, rtol=1e-4, atol=1e-6)


def tiny_relu_model():
    """x (3x3x2) -> 1x1 conv, 2 filters, fused ReLU -> global mean -> Dense(2) logits."""
    images = keras.Input((3, 3, 2))
    conv = keras.layers.Conv2D(2, 1, activation="relu", name="conv")
    dense = keras.layers.Dense(2, use_bias=False)
    model = keras.Model(images, dense(keras.layers.GlobalAveragePooling2D()(conv(images))))
    conv.set_weights([np.array([[1.0, -1.0], [0.5, 1.0]], np.float32).reshape(1, 1, 2, 2),
                      np.array([-0.2, 0.1], np.float32)])
    dense.set_weights([np.array([[1.5, -1.0], [-2.0, 0.5]], np.float32)])
    return model


def test_guided_backprop_and_guided_grad_cam_match_hand_gradient():
    model = tiny_relu_model()
    x = np.random.default_rng(3).uniform(size=(2, 3, 3, 2)).astype(np.float32)
    kernel = np.array([[1.0, -1.0], [0.5, 1.0]])
    z = x @ kernel + np.array([-0.2, 0.1])  # (n, 3, 3, 2) pre-activations
    upstream = np.array([1.5, -2.0]) / 9  # d logit_0 / d relu output, per filter
    # Guided: a filter passes gradient only where its input was positive and its gradient is.
    passed = (z > 0) * (upstream > 0) * upstream
    expected = passed @ kernel.T  # back through the 1x1 conv to the two input channels
    guided = cam.guided_backprop(model, x, classes=0)
    assert guided.shape == x.shape and guided.dtype == np.float32
    np.testing.assert_allclose(guided, expected, rtol=1e-5, atol=1e-7)
    plain = ((z > 0) * upstream) @ kernel.T
    deconv = (np.maximum(upstream, 0) * np.ones_like(z)) @ kernel.T
    np.testing.assert_allclose(cam.deconvnet(model, x, classes=0), deconv, rtol=1e-5, atol=1e-7)
    saliency = np.abs(plain).max(axis=-1)
    np.testing.assert_allclose(cam.saliency(model, x, classes=0), saliency / saliency.max(axis=(1, 2), keepdims=True),
                               rtol=1e-5, atol=1e-6)
    heat = hand_normalise((np.maximum(z, 0) * upstream).sum(axis=-1))
    np.testing.assert_allclose(cam.guided_grad_cam(model, x, classes=0), expected * heat[..., None],
                               rtol=1e-5, atol=1e-7)


def test_smooth_grad_shape_range_and_determinism():
    model = gap_model()
    first = cam.smooth_grad(model, IMAGES, samples=4, seed=1)
    assert first.shape == (3, SIZE, SIZE) and first.dtype == np.float32
    assert 0 <= first.min() and first.max() == pytest.approx(1.0)
    np.testing.assert_array_equal(first, cam.smooth_grad(model, IMAGES, samples=4, seed=1))


def test_zero_gradient_maps_are_zeros_with_one_warning():
    model = gap_model(final=None)
    models.find_layer(model, "predictions").set_weights([np.zeros((CHANNELS, CLASSES), np.float32)])
    for method in (cam.grad_cam, cam.grad_cam_plus_plus, cam.layer_cam, cam.saliency):
        with pytest.warns(UserWarning, match="3 of 3") as caught:
            maps = method(model, IMAGES, 0)
        assert len(caught) == 1 and caught[0].filename == __file__  # points at the caller's line
        assert not np.isnan(maps).any() and (maps == 0).all()


def no_conv_model():
    images = keras.Input((SIZE, SIZE, 3))
    return keras.Model(images, keras.layers.Dense(CLASSES)(keras.layers.Flatten()(images)))


@pytest.mark.parametrize(
    "case, match",
    [
        ("rank", "rank 4"),
        ("channels", "channels"),
        ("layer", "No layer 'nope'"),
        ("class", "out of range"),
        ("no_conv", "no convolutional layer"),
        ("nan", "NaN"),
    ],
)
def test_bad_input_raises_clear_value_error(case, match):
    model, images, kwargs = gap_model(), IMAGES, {}
    if case == "rank":
        images = IMAGES[0]
    elif case == "channels":
        images = IMAGES[..., :1]
    elif case == "layer":
        kwargs = {"layer": "nope"}
    elif case == "class":
        kwargs = {"classes": CLASSES}
    elif case == "no_conv":
        model = no_conv_model()
    elif case == "nan":
        images = IMAGES.copy()
        images[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=match):
        cam.grad_cam(model, images, **kwargs)


def test_layer_without_feature_map_is_refused():
    with pytest.raises(ValueError, match="not a feature map"):
        cam.grad_cam(gap_model(), IMAGES, layer="predictions")


def check_application(name):
    model = models.pretrained(name, weights=None)
    size = model.input_shape[1]
    images = np.random.default_rng(0).uniform(size=(2, size, size, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights may give empty maps; zeros are fine
        maps = cam.grad_cam(model, images, classes=[3, 999])
        guided = cam.guided_grad_cam(model, images[:1], classes=7)
    assert maps.shape == (2, size, size) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    assert guided.shape == (1, size, size, 3) and np.isfinite(guided).all()


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "mobilenetv2", "xception"])
def test_representative_applications(name):
    check_application(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(models.APPLICATIONS))
def test_every_application(name):
    check_application(name)
