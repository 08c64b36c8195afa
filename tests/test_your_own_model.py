"""Models as readers build them, against closed forms: 0-255 inputs with Rescaling inside, one
sigmoid unit, subclassed and multi-output models, and models that must be freed (issue 16).

Every model here is a 1x1 convolution + ReLU, global average pooling and a Dense head, so the
class logit is linear in the feature map A and every map can be written down in numpy:
z = sum_c w_c mean(A_c) + b, d z / d A_c = w_c / (h * w), and Grad-CAM = relu(sum_c w_c A_c),
divided by its maximum.
"""

import gc
import warnings
import weakref

import numpy as np
import pytest

from convviz_helpers import activations, cam, filters, gradients, input_range, metrics, models
from convviz_helpers._tf import keras

SIZE, CHANNELS = 8, 4  # 8 px: the smallest image filter patterns optimise
CONV_W = np.array([[1.0, -0.5, 0.3, 0.8], [-0.6, 1.0, 0.4, -0.2], [0.3, 0.2, -0.9, 0.5]], np.float32)
CONV_B = np.array([0.1, -0.2, 0.05, 0.0], np.float32)
# One sigmoid unit: positive on channels 0 and 3, negative on 1 and 2, so both classes have
# positive evidence somewhere in every image.
SIGMOID_W = np.array([[1.0], [-1.2], [-0.8], [0.9]], np.float32)
SIGMOID_B = np.array([-0.5], np.float32)
SOFTMAX_W = np.array([[1.0, -0.5, 0.3], [-0.7, 1.2, 0.4], [0.5, 0.2, -1.0], [-0.3, -0.4, 0.9]], np.float32)
PIXELS = np.random.default_rng(16).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)  # 0-255


def hand_activations(unit_images):
    """A (n, h, w, c) for images in [0, 1]: the 1x1 conv and its ReLU."""
    return np.maximum(unit_images @ CONV_W + CONV_B, 0.0)


def hand_logit(unit_images):
    """z (n,) of the sigmoid head."""
    return hand_activations(unit_images).mean(axis=(1, 2)) @ SIGMOID_W[:, 0] + SIGMOID_B[0]


def hand_cam(unit_images, weights):
    """relu(sum_c weights[n, c] A_c), each map divided by its maximum: (n, h, w)."""
    maps = np.maximum(np.einsum("nhwc,nc->nhw", hand_activations(unit_images), weights), 0.0)
    return maps / maps.max(axis=(1, 2), keepdims=True)


def _features(x):
    conv = keras.layers.Conv2D(CHANNELS, 1, activation="relu", name="conv")
    return conv, keras.layers.GlobalAveragePooling2D(name="gap")(conv(x))


def cats_vs_dogs(rescaling=True):
    """The reader's model of the issue: 0-255 pixels in, Rescaling(1/255) inside, one sigmoid."""
    pixels = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255, name="rescale")(pixels) if rescaling else pixels
    conv, pooled = _features(x)
    head = keras.layers.Dense(1, activation="sigmoid", name="dog")
    model = keras.Model(pixels, head(pooled), name="cats_vs_dogs")
    conv.set_weights([CONV_W.reshape(1, 1, 3, CHANNELS), CONV_B])
    head.set_weights([SIGMOID_W, SIGMOID_B])
    return model


# --- 1. the model's input range --------------------------------------------------------------


def _first_layer_model(*layers):
    x = inputs = keras.Input((SIZE, SIZE, 3))
    for layer in layers:
        x = layer(x)
    x = keras.layers.Conv2D(2, 1)(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize(
    "layers, expected",
    [
        ([], (0, 1)),
        ([keras.layers.Rescaling(1 / 255)], (0, 255)),
        ([keras.layers.Rescaling(1 / 127.5, offset=-1)], (0, 255)),  # MobileNetV3's own
        # EfficientNet-Lite0 of models.pretrained: [0, 1] in, (x * 255 - 127) / 128 inside
        ([keras.layers.Rescaling(255 / 128, offset=-127 / 128, name="preprocessing")], (0, 1)),
        ([keras.layers.Rescaling(2.0, offset=-1.0)], (0, 1)),
        ([keras.layers.Rescaling([1 / 255, 1 / 250, 1 / 260])], (0, 255)),
        ([keras.layers.RandomFlip(), keras.layers.Rescaling(1 / 255)], (0, 255)),  # augmentation looked through
        ([keras.layers.Normalization(mean=[120.0, 115.0, 100.0], variance=[3600.0] * 3)], (0, 255)),
        ([keras.layers.Normalization(mean=[0.48, 0.46, 0.41], variance=[0.05] * 3)], (0, 1)),
        ([models.ApplicationPreprocessing("vgg16")], (0, 1)),
    ],
    ids=["none", "1/255", "1/127.5-1", "efficientnet-lite", "2x-1", "per-channel", "augmented",
         "normalization-255", "normalization-1", "application"],
)
def test_input_range_is_read_from_the_leading_preprocessing(layers, expected):
    assert input_range.input_range(_first_layer_model(*layers)) == expected


def test_input_range_of_a_nested_base_and_a_declaration():
    base = keras.Sequential([keras.Input((SIZE, SIZE, 3)), keras.layers.Rescaling(1 / 255),
                             keras.layers.Conv2D(2, 1)], name="base")
    outer = keras.Sequential([keras.Input((SIZE, SIZE, 3)), base, keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    assert input_range.input_range(outer) == (0, 255)
    plain = cats_vs_dogs(rescaling=False)
    assert input_range.input_range(plain) == (0, 1)
    assert models.with_input_range(plain, (0, 255)) is plain  # the same model, declared
    assert input_range.input_range(plain) == (0, 255)
    assert "declared" in input_range.read(plain).source
    with pytest.raises(ValueError, match="low < high"):
        models.with_input_range(plain, (1, 0))


def test_reader_model_gets_both_classes_explained_from_0_255_images():
    """Grad-CAM of "dog" (1) and "cat" (0) of the issue's model, against the closed form."""
    model = cats_vs_dogs()
    unit = PIXELS / 255
    z = hand_logit(unit)
    assert (z > 0).any() and (z < 0).any(), "the test images should have both predictions"
    per_position = SIGMOID_W[:, 0] / SIZE**2
    for cls, sign in ((1, 1.0), (0, -1.0)):
        expected = hand_cam(unit, np.broadcast_to(sign * per_position, (len(unit), CHANNELS)))
        np.testing.assert_allclose(cam.grad_cam(model, PIXELS, cls), expected, rtol=1e-4, atol=1e-5)
    # None: the predicted class, 1 where p > 0.5 (z > 0)
    signs = np.where(z > 0, 1.0, -1.0)[:, None]
    np.testing.assert_allclose(cam.grad_cam(model, PIXELS), hand_cam(unit, signs * per_position),
                               rtol=1e-4, atol=1e-5)
    # the same classes asked through probabilities give the same normalised maps
    np.testing.assert_allclose(cam.grad_cam(model, PIXELS, 0, scores="probabilities"),
                               cam.grad_cam(model, PIXELS, 0), rtol=1e-4, atol=1e-5)


def test_binary_head_scores_are_two_classes():
    model = cats_vs_dogs()
    unit = PIXELS / 255
    z = hand_logit(unit)
    p = 1 / (1 + np.exp(-z))
    probed = gradients.probe(model, PIXELS, classes=None)
    np.testing.assert_allclose(probed.scores, np.stack([-z, z], axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(probed.classes, (p > 0.5).astype(int))
    probabilities = gradients.predict(model, PIXELS, "probabilities")
    np.testing.assert_allclose(probabilities, np.stack([1 - p, p], axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probabilities[:, 1], model.predict(PIXELS, verbose=0)[:, 0], rtol=1e-5)
    assert gradients.num_classes(model) == 2
    with pytest.raises(ValueError, match="2 classes"):
        cam.grad_cam(model, PIXELS, 2)
    # the input gradient of class 0 is minus that of class 1 (d(-z)/dx = -dz/dx)
    g1 = cam.guided_backprop(model, PIXELS, 1)
    plain1 = gradients.probe(model, PIXELS, 1, input_gradient=True).input_gradient
    plain0 = gradients.probe(model, PIXELS, 0, input_gradient=True).input_gradient
    np.testing.assert_allclose(plain0, -plain1, rtol=1e-6)
    assert g1.shape == PIXELS.shape


def test_binary_head_in_metrics_uses_one_minus_p_for_class_0():
    model = cats_vs_dogs()
    p = 1 / (1 + np.exp(-hand_logit(PIXELS / 255)))
    heatmaps = np.random.default_rng(0).uniform(size=PIXELS.shape[:3]).astype(np.float32)
    curve = metrics.deletion_curve(model, PIXELS, heatmaps, classes=0, steps=2, fill="zero")
    np.testing.assert_allclose(curve.scores[:, 0], 1 - p, rtol=1e-5)
    # everything removed: black images, A = relu(b), the same for every image
    black = 1 / (1 + np.exp(-(np.maximum(CONV_B, 0) @ SIGMOID_W[:, 0] + SIGMOID_B[0])))
    np.testing.assert_allclose(curve.scores[:, -1], 1 - black, rtol=1e-5)


def test_top_k_figure_of_a_binary_0_255_model():
    import matplotlib.pyplot as plt

    from convviz_helpers import plotting

    figure = plotting.show_top_k(cats_vs_dogs(), PIXELS[0], class_names=["cat", "dog"])
    titles = [ax.get_title() for ax in figure.axes]
    assert any(t.startswith("cat") for t in titles) and any(t.startswith("dog") for t in titles)
    plt.close(figure)


def test_out_of_range_errors_say_what_the_model_takes_and_how_to_declare():
    with pytest.raises(ValueError, match=r"in \[0, 255\].*Rescaling layer 'rescale'") as read:
        cam.grad_cam(cats_vs_dogs(), PIXELS * 2)
    assert "divide" not in str(read.value) and "with_input_range(model, (low, high))" in str(read.value)
    plain = cats_vs_dogs(rescaling=False)
    with pytest.raises(ValueError, match=r"with_input_range\(model, \(0, 255\)\)") as default:
        cam.grad_cam(plain, PIXELS)
    assert "If it takes [0, 1] images, divide by 255" in str(default.value)
    # a model that reads as [0, 1] from its own preprocessing: dividing is the right advice
    lite = _first_layer_model(keras.layers.Rescaling(255 / 128, offset=-127 / 128))
    with pytest.raises(ValueError, match="divide by 255") as known:
        activations.feature_maps(lite, PIXELS)
    assert "with_input_range" not in str(known.value)


def test_unit_images_given_to_a_0_255_model_warn():
    with pytest.warns(UserWarning, match=r"almost black.*Multiply them by 255"):
        cam.grad_cam(cats_vs_dogs(), PIXELS / 255, 1)


def test_declared_range_is_used_by_every_method():
    """A model trained on 0-255 pixels without Rescaling inside, declared (0, 255)."""
    plain = models.with_input_range(cats_vs_dogs(rescaling=False), (0, 255))
    rescaled = cats_vs_dogs()
    # the two models differ (no /255 in the first), but both must now accept 0-255 images
    for method in (cam.grad_cam, cam.saliency, cam.score_cam):
        assert method(plain, PIXELS, 1).shape == PIXELS.shape[:3]
    smooth = cam.smooth_grad(rescaled, PIXELS, 1, samples=3)
    assert smooth.shape == PIXELS.shape[:3] and np.isfinite(smooth).all()
    maps = activations.feature_maps(rescaled, PIXELS, "conv")["conv"]
    np.testing.assert_allclose(maps, hand_activations(PIXELS / 255), rtol=1e-5, atol=1e-6)
    scores = filters.filter_scores(rescaled, "conv", PIXELS)
    np.testing.assert_allclose(scores, (PIXELS / 255 @ CONV_W + CONV_B).mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_filter_patterns_of_a_0_255_model_stay_in_range():
    """A 1x1 filter's mean pre-activation rises along the sign of its weights: after enough
    steps every pixel of a channel with a positive weight is at the top of the range (255) and
    every pixel of one with a negative weight at 0. Returned in [0, 1]: exactly 1 and 0.
    (The objective leaves out a 2-pixel border of the map, so only the centre moves.)"""
    model = cats_vs_dogs()
    raw = filters.filter_patterns(model, "conv", [0, 1], steps=80, raw=True)
    assert 0 <= raw.min() and raw.max() <= 1
    centre = raw[:, 2:-2, 2:-2]
    expected = (CONV_W[:, [0, 1]].T > 0).astype(np.float32)  # (filters, channels)
    np.testing.assert_array_equal(centre, np.broadcast_to(expected[:, None, None, :], centre.shape))
    # the border keeps its start: mid-grey of the range, +-10 %
    assert np.abs(raw[:, 0] - 0.5).max() <= 0.1 + 1e-6
    # the same ascent on the [0, 1] twin (no Rescaling) walks the same path, 255 times smaller
    twin = cats_vs_dogs(rescaling=False)
    for kwargs in (dict(steps=5, raw=True), dict(steps=5), dict(steps=3, regularized=True)):
        np.testing.assert_allclose(filters.filter_patterns(model, "conv", [2, 3], **kwargs),
                                   filters.filter_patterns(twin, "conv", [2, 3], **kwargs), atol=2e-5)
    shown = filters.class_patterns(model, [0, 1], steps=5)
    assert shown.shape == (2, SIZE, SIZE, 3) and 0 <= shown.min() and shown.max() <= 1


def test_class_patterns_of_a_binary_head_push_the_logit_both_ways():
    model = cats_vs_dogs()
    patterns = filters.class_patterns(model, [0, 1], steps=40, raw=True) * 255
    z = gradients.predict(model, patterns, "logits")[:, 1]
    start = gradients.predict(model, np.full((1, SIZE, SIZE, 3), 127.5, np.float32), "logits")[0, 1]
    assert z[0] < start < z[1]


def test_nested_base_with_binary_head():
    """The transfer-learning shape: a base (Rescaling inside) nested in a Sequential, one sigmoid."""
    pixels = keras.Input((SIZE, SIZE, 3))
    conv = keras.layers.Conv2D(CHANNELS, 1, activation="relu", name="conv")
    base = keras.Model(pixels, conv(keras.layers.Rescaling(1 / 255)(pixels)), name="base")
    head = keras.layers.Dense(1, activation="sigmoid", name="dog")
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), base, keras.layers.GlobalAveragePooling2D(), head])
    conv.set_weights([CONV_W.reshape(1, 1, 3, CHANNELS), CONV_B])
    head.set_weights([SIGMOID_W, SIGMOID_B])
    assert input_range.input_range(model) == (0, 255)
    assert models.last_conv_layer(model) is conv
    unit = PIXELS / 255
    expected = hand_cam(unit, np.broadcast_to(-SIGMOID_W[:, 0] / SIZE**2, (len(unit), CHANNELS)))
    np.testing.assert_allclose(cam.grad_cam(model, PIXELS, 0), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gradients.probe(model, PIXELS).scores[:, 1], hand_logit(unit), rtol=1e-5, atol=1e-6)


# --- 3. subclassed and multi-output models -----------------------------------------------------


class Subclassed(keras.Model):
    """The cats-vs-dogs network written as a subclass (as keras.io's tutorials do)."""

    def __init__(self, units=1):
        super().__init__(name="subclassed")
        self.rescale = keras.layers.Rescaling(1 / 255)
        self.conv = keras.layers.Conv2D(CHANNELS, 1, activation="relu", name="conv")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(units, activation="sigmoid" if units == 1 else "softmax")

    def call(self, images):
        return self.head(self.pool(self.conv(self.rescale(images))))


def subclassed(units=1):
    model = Subclassed(units)
    model(PIXELS[:1])  # built, as after training
    model.conv.set_weights([CONV_W.reshape(1, 1, 3, CHANNELS), CONV_B])
    model.head.set_weights([SIGMOID_W, SIGMOID_B] if units == 1 else [SOFTMAX_W, np.zeros(3, np.float32)])
    return model


def test_subclassed_model_is_traced_and_explained():
    model = subclassed()
    unit = PIXELS / 255
    assert input_range.input_range(model) == (0, 255)
    expected = hand_cam(unit, np.broadcast_to(-SIGMOID_W[:, 0] / SIZE**2, (len(unit), CHANNELS)))
    np.testing.assert_allclose(cam.grad_cam(model, PIXELS, 0), expected, rtol=1e-4, atol=1e-5)  # default layer
    np.testing.assert_allclose(cam.grad_cam(model, PIXELS, 0, layer="conv"), expected, rtol=1e-4, atol=1e-5)
    maps = activations.feature_maps(model, PIXELS)
    assert list(maps) == ["conv"]
    np.testing.assert_allclose(maps["conv"], hand_activations(unit), rtol=1e-5, atol=1e-6)
    softmax = subclassed(units=3)
    logits = hand_activations(unit).mean(axis=(1, 2)) @ SOFTMAX_W
    np.testing.assert_allclose(gradients.probe(softmax, PIXELS).scores, logits, rtol=1e-5, atol=1e-6)
    patterns = filters.filter_patterns(model, "conv", [0], steps=3, image_size=SIZE)
    assert patterns.shape == (1, SIZE, SIZE, 3)


class Untraceable(Subclassed):
    def call(self, images):
        features = self.conv(self.rescale(images))
        if float(keras.ops.convert_to_numpy(features).mean()) > 0:  # control flow on a value: eager only
            features = features * 2
        return self.head(self.pool(features))


def test_untraceable_subclassed_model_names_the_functional_api():
    if gradients.BACKEND != "torch":  # PyTorch runs call() eagerly: control flow on a value works there
        model = Untraceable()
        model(PIXELS[:1])
        with pytest.raises(ValueError, match="functional API"):
            cam.grad_cam(model, PIXELS)
    flat = FlatHead()
    flat(PIXELS[:1])  # built for 8 px: at the default 128 px its Dense kernel no longer fits
    with pytest.raises(ValueError, match="image_size=.*functional API"):
        filters.class_patterns(flat, steps=2)
    assert filters.class_patterns(flat, steps=2, image_size=SIZE).shape == (2, SIZE, SIZE, 3)  # cat, dog


class FlatHead(keras.Model):
    def __init__(self):
        super().__init__(name="flat_head")
        self.conv = keras.layers.Conv2D(2, 1, activation="relu")
        self.flatten = keras.layers.Flatten()
        self.head = keras.layers.Dense(1, activation="sigmoid")

    def call(self, images):
        return self.head(self.flatten(self.conv(images)))


def two_heads(as_dict=False):
    images = keras.Input((SIZE, SIZE, 3))
    conv, pooled = _features(images)
    shape_head = keras.layers.Dense(3, activation="softmax", use_bias=False, name="shape")
    dog_head = keras.layers.Dense(1, activation="sigmoid", name="dog")
    outputs = [shape_head(pooled), dog_head(pooled)]
    model = keras.Model(images, dict(zip(["kind", "is_dog"], outputs)) if as_dict else outputs)
    conv.set_weights([CONV_W.reshape(1, 1, 3, CHANNELS), CONV_B])
    shape_head.set_weights([SOFTMAX_W])
    dog_head.set_weights([SIGMOID_W, SIGMOID_B])
    return model


@pytest.mark.parametrize("as_dict", [False, True], ids=["list", "dict"])
def test_multi_output_model_takes_output(as_dict):
    model = two_heads(as_dict)
    unit = PIXELS / 255
    first, second = ("kind", "is_dog") if as_dict else ("shape", "dog")
    classes = np.array([0, 2, 1, 2])
    expected = hand_cam(unit, SOFTMAX_W[:, classes].T)
    for output in (0, first):
        np.testing.assert_allclose(cam.grad_cam(model, unit, classes, output=output), expected, rtol=1e-4, atol=1e-5)
    binary = hand_cam(unit, np.broadcast_to(SIGMOID_W[:, 0], (len(unit), CHANNELS)))
    np.testing.assert_allclose(cam.grad_cam(model, unit, 1, output=second), binary, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="2 outputs.*output="):
        cam.grad_cam(model, unit)
    with pytest.raises(ValueError, match="no output 'tail'"):
        cam.saliency(model, unit, output="tail")
    with pytest.raises(ValueError, match="out of range"):
        cam.saliency(model, unit, output=2)


def test_a_one_element_output_list_is_a_single_output():
    images = keras.Input((SIZE, SIZE, 3))
    conv, pooled = _features(images)
    dense = keras.layers.Dense(3, activation="softmax", use_bias=False)
    model = keras.Model(images, [dense(pooled)])
    conv.set_weights([CONV_W.reshape(1, 1, 3, CHANNELS), CONV_B])
    dense.set_weights([SOFTMAX_W])
    unit = PIXELS / 255
    logits = hand_activations(unit).mean(axis=(1, 2)) @ SOFTMAX_W
    np.testing.assert_allclose(gradients.probe(model, unit).scores, logits, rtol=1e-5, atol=1e-6)


# --- 5. models are freed -----------------------------------------------------------------------


def test_models_are_freed_after_use():
    model = cats_vs_dogs()
    cam.grad_cam(model, PIXELS)
    cam.guided_grad_cam(model, PIXELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an image may have no positive Score-CAM evidence
        cam.score_cam(model, PIXELS)
    activations.feature_maps(model, PIXELS)
    filters.filter_patterns(model, "conv", [0], steps=2)
    filters.filter_scores(model, "conv", PIXELS)
    filters.class_patterns(model, [1], steps=2)
    models.with_input_range(model, (0, 255))
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None, "a convviz cache still holds the model"

    sub = subclassed()
    cam.grad_cam(sub, PIXELS)
    alive = weakref.ref(sub)
    del sub
    gc.collect()
    assert alive() is None, "a convviz cache still holds the subclassed model"


def test_randomisation_clone_keeps_a_declared_range():
    model = models.with_input_range(cats_vs_dogs(rescaling=False), (0, 255))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # randomised heads can give empty maps
        result = metrics.randomization_check(cam.grad_cam, model, PIXELS, layers=["dog"])
    assert result.maps.shape == (2, *PIXELS.shape[:3])
