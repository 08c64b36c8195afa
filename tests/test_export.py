"""convviz_helpers.export: the explorer's graph format, checked by running it in Node with the
npm-installed TensorFlow.js (explorer/run_graph.mjs, the page's own graph.js) against Keras.

Needs Node.js and explorer/node_modules (`make test` runs `npm ci` in explorer/ first); without
them the Node tests fail and say so, since the explorer page would be unchecked.
"""

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from convviz_helpers import cam, export, models
from convviz_helpers._tf import keras

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "explorer" / "run_graph.mjs"


def run_in_node(model_dir, images, tmp_path, *args):
    """Run the exported graph on images (n, H, W, 3) in Node: {name: array} of what it wrote."""
    node = shutil.which("node")
    if node is None or not (ROOT / "explorer" / "node_modules" / "@tensorflow" / "tfjs").is_dir():
        pytest.fail("These tests need Node.js and TensorFlow.js in explorer/node_modules: run "
                    "`make explorer/node_modules/.package-lock.json` (npm ci in explorer/).")
    images_file = tmp_path / "images.f32"
    np.ascontiguousarray(images, "<f4").tofile(images_file)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    done = subprocess.run([node, str(RUNNER), str(model_dir), str(images_file), str(len(images)), str(out), *args],
                          capture_output=True, text=True, cwd=ROOT / "explorer", timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    shapes = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: np.fromfile(out / f"{name}.f32", "<f4").reshape(shape) for name, shape in shapes.items()}


def small_net():
    """Every supported layer kind once, with BatchNorm statistics far from the identity."""
    images = keras.Input((12, 12, 3), name="images")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="scale")(images)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    stem = keras.layers.ReLU(6.0, name="stem_relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="dw")(stem)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.Activation("relu", name="dw_relu")(x)
    x = keras.layers.Conv2D(8, 1, name="project")(x)
    x = keras.layers.Add(name="add")([stem, x])
    x = keras.layers.BatchNormalization(name="after_add_bn")(x)  # not foldable: an affine op
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv")(x)
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    model = keras.Model(images, outputs, name="small")
    rng = np.random.default_rng(0)
    for layer in model.layers:
        weights = [rng.normal(size=w.shape).astype("float32") * 0.5 for w in layer.get_weights()]
        if isinstance(layer, keras.layers.BatchNormalization):
            weights[3] = rng.uniform(0.2, 2.0, size=weights[3].shape).astype("float32")  # variance > 0
        if weights:
            layer.set_weights(weights)
    return model


def test_small_net_in_node_matches_keras(tmp_path):
    model = small_net()
    graph = export.export_graph(model, tmp_path / "small", class_names=list("abcd"))
    kinds = [op["op"] for op in graph["ops"]]
    # Three BatchNorms fold into the convolution before them; the one after Add cannot.
    assert kinds.count("affine") == 1 and "stem_bn" in [op["name"] for op in graph["ops"]]
    assert next(op for op in graph["ops"] if op["name"] == "dw_bn")["layers"] == ["dw", "dw_bn"]
    assert graph["default_layer"] == "last_conv" and graph["classes"] == list("abcd")
    assert graph["layers"] == ["stem_bn", "stem_relu", "dw_bn", "dw_relu", "project", "add", "after_add_bn",
                               "last_conv"]
    images = np.random.default_rng(1).uniform(size=(3, 12, 12, 3)).astype("float32")
    got = run_in_node(tmp_path / "small", images, tmp_path, "dw_bn", "add")
    probe = keras.Model(model.input, [model.get_layer(n).output for n in ("dw_bn", "add", "dropout")])
    dw_bn, add, features = probe(images, training=False)
    weights, bias = model.get_layer("predictions").get_weights()
    np.testing.assert_allclose(got["dw_bn"], dw_bn, atol=1e-4)
    np.testing.assert_allclose(got["add"], add, atol=1e-4)
    np.testing.assert_allclose(got["logits"], np.asarray(features) @ weights + bias, atol=1e-4)
    np.testing.assert_allclose(got["probabilities"], model(images, training=False), atol=1e-5)


def test_lite0_in_node_matches_keras_and_grad_cam(tmp_path):
    """Exported EfficientNet-Lite0 on two bundled photos: logits within 1e-3, a middle block's
    activations, and Grad-CAM at the head's input and at block 5c as cam.grad_cam computes them."""
    model = models.pretrained("efficientnet_lite0")
    export.export_graph(model, tmp_path / "lite0")
    images = np.stack([np.round(export.data.sample_image(n, 224) * 255) / 255 for n in ("chelsea", "coffee")])
    images = images.astype("float32")
    classes = [281, 967]  # tabby, espresso: not always the top-1, so the class argument is used
    got = run_in_node(tmp_path / "lite0", images, tmp_path, "block5c_add", "--cam", "top_activation",
                      "281,967", "--cam", "block5c_add", "281,967")
    probe = keras.Model(model.input, [model.get_layer("block5c_add").output, model.get_layer("avg_pool").output])
    middle, pooled = (np.asarray(v) for v in probe(images, training=False))
    weights, bias = model.get_layer("predictions").get_weights()
    np.testing.assert_allclose(got["logits"], pooled @ weights + bias, atol=1e-3)
    np.testing.assert_allclose(got["block5c_add"], middle, atol=1e-3 * np.abs(middle).max())
    for layer in ("top_activation", "block5c_add"):
        expected = cam.grad_cam(model, images, classes, layer=layer)
        assert np.abs(got[f"cam-{layer}"] - expected).mean() < 0.01, layer


def test_unsupported_layer_is_named(tmp_path):
    images = keras.Input((8, 8, 3))
    x = keras.layers.Conv2DTranspose(4, 3, name="upsampler")(images)
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="upsampler.*Conv2DTranspose"):
        export.export_graph(keras.Model(images, outputs), tmp_path)


def test_relu_with_another_cap_is_refused(tmp_path):
    images = keras.Input((8, 8, 3))
    x = keras.layers.ReLU(max_value=4.0, name="capped")(keras.layers.Conv2D(4, 3, name="conv")(images))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    with pytest.raises(ValueError, match="capped"):
        export.export_graph(keras.Model(images, outputs), tmp_path)


def test_export_atlas_writes_sprites_that_hold_the_tiles(tmp_path):
    rng = np.random.default_rng(0)
    layer = SimpleNamespace(layer="block5c_add", channels=np.array([3, 17]),
                            patterns=rng.uniform(size=(2, 8, 8, 3)).astype("float32"),
                            examples=rng.uniform(size=(2, 3, 4, 4, 3)).astype("float32"),
                            example_activations=np.array([[3.0, 2.0, 1.0], [9.0, 8.5, 8.0]], "float32"))
    atlas = type("FakeAtlas", (), {"layers": ["block5c_add"], "__getitem__": lambda self, name: layer})()
    index = export.export_atlas(atlas, tmp_path)
    entry = index["layers"]["block5c_add"]
    assert entry["channels"] == [3, 17] and entry["example_count"] == 3
    assert json.loads((tmp_path / "atlas.json").read_text()) == index
    patterns = export.read_png(tmp_path / entry["patterns"])
    examples = export.read_png(tmp_path / entry["examples"])
    assert patterns.shape == (8, 16, 3) and examples.shape == (8, 12, 3)
    np.testing.assert_allclose(patterns[:, 8:], layer.patterns[1], atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(examples[4:, 8:], layer.examples[1, 2], atol=0.5 / 255 + 1e-6)
    assert export.export_atlas(None, tmp_path / "none") == {"layers": {}}


def test_shapes_photos_are_one_of_each_class():
    photos = export.shapes_photos()
    assert list(photos) == list(export.data.SHAPE_CLASSES)
    model = models.shapes_model()
    predicted = np.argmax(model.predict(np.stack(list(photos.values())), verbose=0), axis=1)
    assert (predicted == np.arange(len(photos))).mean() >= 0.5  # mostly recognised: fair photos
