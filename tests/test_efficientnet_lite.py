"""EfficientNet-Lite0 from the PyPI wheel: the restricted reader, the conversion, the predictions.

The Keras network is checked against a forward pass written here in numpy from the torch
tensors themselves (their own OIHW layout, TensorFlow's padding rule spelled out), so a wrong
transpose, padding or BatchNorm mapping in the conversion cannot pass.
"""

import collections
import io
import os
import pickle
import socket
import struct
import sys
import types

import numpy as np
import pytest

from convviz_helpers import data, efficientnet_lite, imagenet, models, torch_pickle
from convviz_helpers._tf import keras


@pytest.fixture(scope="module")
def state():
    return torch_pickle.load_state_dict(efficientnet_lite.weights_path())


@pytest.fixture(scope="module")
def lite0():
    return models.pretrained("efficientnet_lite0")


# --- an independent numpy forward pass --------------------------------------------------------


def _same_pad(x, kernel, stride):
    """TensorFlow's 'same' padding of an (H, W, C) map: the odd pixel goes bottom/right."""
    pads = []
    for size in x.shape[:2]:
        out = -(-size // stride)
        total = max((out - 1) * stride + kernel - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)])


def _conv(x, weight, stride=1, groups=1):
    """Convolution of one (H, W, C) map with a torch (O, I/groups, k, k) weight, 'same' padding."""
    out_channels, per_group, k, _ = weight.shape
    padded = _same_pad(x, k, stride)
    height = -(-x.shape[0] // stride)
    width = -(-x.shape[1] // stride)
    result = np.zeros((height, width, out_channels), np.float64)
    for i in range(k):
        for j in range(k):
            window = padded[i : i + stride * height : stride, j : j + stride * width : stride]
            if groups == 1:
                result += window @ weight[:, :, i, j].T.astype(np.float64)
            else:  # depthwise: one input channel per output channel
                result += window * weight[:, 0, i, j]
    return result


def _bn(x, state, key, eps=1e-3):
    g, b, m, v = (state[f"{key}.{p}"] for p in ("weight", "bias", "running_mean", "running_var"))
    return (x - m) / np.sqrt(v + eps) * g + b


def _relu6(x):
    return np.clip(x, 0, 6)


def _numpy_forward(image, state):
    """Stem, block1a and block2a of Lite0 on one [0, 1] image: the three maps (H, W, C)."""
    x = (255.0 * image.astype(np.float64) - 127.0) / 128.0
    stem = _relu6(_bn(_conv(x, state["_conv_stem.weight"], stride=2), state, "_bn0"))
    b = "_blocks.0."
    x = _relu6(_bn(_conv(stem, state[b + "_depthwise_conv.weight"], groups=32), state, b + "_bn1"))
    block1a = _bn(_conv(x, state[b + "_project_conv.weight"]), state, b + "_bn2")
    b = "_blocks.1."
    x = _relu6(_bn(_conv(block1a, state[b + "_expand_conv.weight"]), state, b + "_bn0"))
    x = _relu6(_bn(_conv(x, state[b + "_depthwise_conv.weight"], stride=2, groups=96), state, b + "_bn1"))
    block2a = _bn(_conv(x, state[b + "_project_conv.weight"]), state, b + "_bn2")
    return stem, block1a, block2a


def test_first_blocks_equal_an_independent_numpy_forward_pass(state, lite0):
    image = data.sample_image("chelsea", 224)
    names = ["stem_activation", "block1a_project_bn", "block2a_project_bn"]
    probe = keras.Model(lite0.inputs, [lite0.get_layer(n).output for n in names])
    got = probe.predict(image[None], verbose=0)
    expected = _numpy_forward(image, state)
    for name, keras_map, numpy_map in zip(names, got, expected):
        assert keras_map.shape[1:] == numpy_map.shape, name
        np.testing.assert_allclose(keras_map[0], numpy_map, atol=1e-4, rtol=0, err_msg=name)


def test_head_equals_numpy_from_the_last_feature_map(state, lite0):
    # The classifier on top of the 7x7 map: average pooling, then the torch Linear layer.
    image = data.sample_image("coffee", 224)[None]
    probe = keras.Model(lite0.inputs, [lite0.get_layer("top_activation").output, lite0.output])
    features, probabilities = probe.predict(image, verbose=0)
    logits = features[0].mean(axis=(0, 1)) @ state["_fc.weight"].T + state["_fc.bias"]
    expected = np.exp(logits - logits.max())
    np.testing.assert_allclose(probabilities[0], expected / expected.sum(), atol=1e-5)


# --- the model the book uses ------------------------------------------------------------------


def test_predictions_on_the_bundled_photos(lite0):
    names = ["coffee", "chelsea", "rocket", "china", "flower"]
    probabilities = lite0.predict(np.stack([data.sample_image(n, 224) for n in names]), verbose=0)
    top = np.argsort(-probabilities, axis=1)
    assert top[0, 0] == 967 and probabilities[0, 967] > 0.9  # espresso
    assert set(top[1, :3]) == {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert top[2, 0] == 657  # missile
    assert top[3, 0] == 698  # palace
    assert top[4, 0] == 985  # daisy
    decoded = imagenet.decode_predictions(probabilities, top=1)
    assert decoded[0][0][1] == "espresso" and decoded[4][0][1] == "daisy"


def test_layer_names_and_grad_cam_layer(lite0):
    assert lite0.input_shape == (None, 224, 224, 3)
    assert lite0.layers[1].name == "preprocessing"
    assert models.last_conv_layer(lite0).name == "top_activation"
    assert lite0.get_layer("top_activation").output.shape[1:] == (7, 7, 1280)
    assert len(efficientnet_lite.block_names()) == 16
    for name in ["block1a_dwconv", "block2a_expand_conv", "block2b_add", "block7a_project_bn"]:
        lite0.get_layer(name)
    assert lite0.count_params() == 4_652_008 + sum(  # weights + BatchNorm moving statistics
        int(np.prod(w.shape)) for w in lite0.non_trainable_weights
    )


def test_every_tensor_of_the_file_is_used(state):
    converted = efficientnet_lite.keras_weights(state)
    used = sum(a.size for arrays in converted.values() for a in arrays)
    counters = [k for k in state if k.endswith("num_batches_tracked")]
    assert used == sum(a.size for k, a in state.items() if k not in counters)


def test_cached_model_loads_and_predicts_the_same(tmp_path, monkeypatch, lite0):
    monkeypatch.setenv("CONVVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(efficientnet_lite, "_MEMORY", {})
    fresh = efficientnet_lite.efficientnet_lite0()
    assert efficientnet_lite.cache_path().exists()
    monkeypatch.setattr(efficientnet_lite, "_MEMORY", {})
    reloaded = efficientnet_lite.efficientnet_lite0()
    assert reloaded is not fresh
    image = data.sample_image("rocket", 224)[None]
    np.testing.assert_allclose(
        reloaded.predict(image, verbose=0), lite0.predict(image, verbose=0), atol=1e-6
    )


def test_conversion_never_touches_the_network(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("EfficientNet-Lite0 tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("CONVVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(efficientnet_lite, "_MEMORY", {})
    model = models.pretrained("EfficientNet-Lite0")
    assert model.output_shape == (None, 1000)


def test_unknown_weights_argument_is_refused():
    with pytest.raises(ValueError, match="'imagenet' or None"):
        models.pretrained("efficientnet_lite0", weights="noisy-student")


def test_random_weights_build_the_same_architecture(lite0):
    random = models.pretrained("efficientnet_lite0", weights=None)
    assert [layer.name for layer in random.layers] == [layer.name for layer in lite0.layers]


# --- the restricted reader --------------------------------------------------------------------


def _write_legacy(path, tensors, monkeypatch):
    """Write ``tensors`` (name -> float32/int64 array) in the legacy torch.save layout, using
    stand-in modules named like torch's so the pickles name exactly torch's globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class Storage:
        def __init__(self, key, array):
            self.key, self.array = key, array

    class Tensor:
        def __init__(self, storage, offset, size, stride):
            self.args = (storage, offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, Storage):
                kind = torch.FloatStorage if obj.array.dtype == np.float32 else torch.LongStorage
                return ("storage", kind, obj.key, "cpu", obj.array.size, None)
            return None

    tree, storages = collections.OrderedDict(), []
    for index, (name, array) in enumerate(tensors.items()):
        base = np.ascontiguousarray(array.T)  # store transposed, read back through strides
        storage = Storage(str(index), base.ravel())
        storages.append(storage)
        stride = tuple(s // base.itemsize for s in np.empty(base.shape, base.dtype).T.strides)
        tree[name] = Tensor(storage, 0, array.shape, stride)
    buffer = io.BytesIO()
    for header in (torch_pickle.LEGACY_MAGIC, 1001, {"little_endian": True}):
        pickle.dump(header, buffer, protocol=2)
    Writer(buffer, protocol=2).dump(tree)
    pickle.dump([s.key for s in storages], buffer, protocol=2)
    for storage in storages:
        buffer.write(struct.pack("<q", storage.array.size))
        buffer.write(storage.array.astype(storage.array.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(buffer.getvalue())


def test_reader_round_trips_strided_tensors(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    tensors = {
        "conv.weight": rng.normal(size=(4, 3, 2, 5)).astype(np.float32),
        "fc.bias": rng.normal(size=(7,)).astype(np.float32),
        "bn.num_batches_tracked": np.array(12, dtype=np.int64),
    }
    path = tmp_path / "tiny.pth"
    _write_legacy(path, tensors, monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")
    loaded = torch_pickle.load_state_dict(path)
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype, name
        np.testing.assert_array_equal(loaded[name], array)


class _Exploit:
    def __reduce__(self):
        return os.system, ("echo pwned > /dev/null",)


def test_reader_refuses_a_pickle_that_calls_a_function(tmp_path, monkeypatch):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as file:
        pickle.dump(torch_pickle.LEGACY_MAGIC, file, protocol=2)
        pickle.dump(1001, file, protocol=2)
        pickle.dump({}, file, protocol=2)
        pickle.dump(collections.OrderedDict(weight=_Exploit()), file, protocol=2)
    # A plain pickle.load of this file would call os.system; record instead of running it.
    calls = []
    monkeypatch.setattr(os, "system", lambda command: calls.append(command))
    with pytest.raises(torch_pickle.UnsafePickleError, match=r"posix\.system|os\.system"):
        torch_pickle.load_state_dict(path)
    assert calls == []


def test_reader_refuses_other_files_clearly(tmp_path):
    zipped = tmp_path / "new.pth"
    zipped.write_bytes(b"PK\x03\x04rest")
    with pytest.raises(ValueError, match="zip-based"):
        torch_pickle.load_state_dict(zipped)
    text = tmp_path / "notes.pth"
    text.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a legacy torch.save file"):
        torch_pickle.load_state_dict(text)


# --- class names ------------------------------------------------------------------------------


def test_class_names_are_the_standard_order():
    names = imagenet.class_names()
    assert len(names) == 1000 and len(set(imagenet.wordnet_ids())) == 1000
    assert names[0].startswith("tench") and imagenet.wordnet_ids()[0] == "n01440764"
    assert names[281].startswith("tabby") and names[967] == "espresso"
    assert imagenet.short_name(285) == "Egyptian cat"
    assert 985 in imagenet.find_class("daisy")


def test_decode_predictions_ranks_and_checks_its_input():
    scores = np.zeros((2, 1000), np.float32)
    scores[0, [5, 7, 9]] = [0.2, 0.5, 0.3]
    scores[1, 999] = 1.0
    decoded = imagenet.decode_predictions(scores, top=3)
    assert [c for c, *_ in decoded[0]] == [imagenet.wordnet_ids()[i] for i in (7, 9, 5)]
    assert decoded[1][0][2] == 1.0
    with pytest.raises(ValueError, match=r"\(n, 1000\)"):
        imagenet.decode_predictions(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="top"):
        imagenet.decode_predictions(scores, top=0)
