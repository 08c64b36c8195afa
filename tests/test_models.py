"""pretrained(), find_layer and last_conv_layer."""

import numpy as np
import pytest

from convviz_helpers import models
from convviz_helpers._tf import keras
from convviz_helpers.downloads import DownloadError

# The layer the Grad-CAM literature (and keras.io's Grad-CAM example) uses for each model.
LITERATURE_LAYER = {
    "vgg16": "block5_conv3",
    "xception": "block14_sepconv2_act",
    "resnet50": "conv5_block3_out",
    "mobilenetv2": "out_relu",
    # squeeze-and-excitation blocks pool globally early on; the head's map is still the one
    "efficientnetb0": "top_activation",
    "inceptionv3": "mixed10",
}
REPRESENTATIVE = sorted(LITERATURE_LAYER)


@pytest.fixture(scope="module")
def built():
    return {}


def architecture(name, built):
    if name not in built:
        built[name] = models.pretrained(name, weights=None)
    return built[name]


@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_last_conv_layer_is_the_literature_layer(name, built):
    model = architecture(name, built)
    assert models.last_conv_layer(model).name == LITERATURE_LAYER[name]


@pytest.mark.parametrize("name", ["vgg16", "mobilenetv2"])
def test_native_size_and_preprocessing_inside(name, built):
    model = architecture(name, built)
    app = models.application(name)
    assert model.input_shape == (None, app.size, app.size, 3)
    assert model.output_shape == (None, 1000)
    image = np.random.default_rng(0).uniform(0, 1, (2, app.size, app.size, 3)).astype(np.float32)
    inside = keras.Model(model.input, model.get_layer("preprocessing").output).predict(image, verbose=0)
    # Keras's numpy code path of preprocess_input is an independent implementation of the same map.
    module = getattr(keras.applications, app.module)
    np.testing.assert_allclose(inside, module.preprocess_input(image * 255.0), rtol=1e-5, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(models.APPLICATIONS))
def test_every_application_builds_offline(name):
    model = models.pretrained(name, weights=None)
    layer = models.last_conv_layer(model)
    _, height, width, _ = layer.output.shape
    assert model.output_shape == (None, 1000)
    assert height > 1 and width > 1, f"{layer.name} is after the spatial pooling"
    keras.backend.clear_session()


def test_offline_weights_fail_with_a_readable_error():
    with pytest.raises(DownloadError) as error:
        models.pretrained("vgg16")
    text = str(error.value)
    assert "VGG16" in text and "~/.keras/models" in text and "weights=None" in text
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in text


@pytest.mark.parametrize("name, alias", [("inception_v3", "InceptionV3"), ("mobilenet-v2", "MobileNetV2")])
def test_names_ignore_case_and_separators(name, alias):
    assert models.application(name).constructor == alias


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"Did you mean .*vgg16.*Valid names: .*xception"):
        models.pretrained("vgg61", weights=None)


def small_base(name):
    return keras.Sequential(
        [keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
         keras.layers.MaxPooling2D(name="pool")], name=name)


def test_find_layer_searches_nested_models_and_reports_ambiguity():
    left, right = small_base("left"), small_base("right")
    images = keras.Input((16, 16, 3))
    merged = keras.layers.Concatenate()([left(images), right(images)])
    model = keras.Model(images, keras.layers.Dense(2)(keras.layers.Flatten()(merged)))
    assert models.find_layer(model, "left/conv") is left.get_layer("conv")
    with pytest.raises(ValueError, match=r"ambiguous.*left/conv, right/conv"):
        models.find_layer(model, "conv")
    with pytest.raises(ValueError, match=r"No layer 'comv'.*Closest: conv"):
        models.find_layer(model, "comv")


def test_last_conv_layer_in_a_student_model_skips_pooling_and_head():
    model = keras.Sequential([small_base("base"), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    model.build((None, 16, 16, 3))
    assert models.last_conv_layer(model).name == "conv"


def test_model_without_conv_layer_is_refused():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no convolutional layer"):
        models.last_conv_layer(model)
