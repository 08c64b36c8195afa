"""One Keras layer as one explorer operation, and BatchNormalization folded into the layer before it.

``layer_op(layer, sources, arrays)`` -> ``{"name", "layers", "inputs", "shape", "op", ...}``
(the operation's parameters), its float arrays put in ``arrays[layer.name]``;
``fold_batch_norms(ops, arrays)`` -> the ops with each foldable ``affine`` merged into its linear
convolution or Dense (``w * gamma / sqrt(var + eps)``, bias ``beta + (b - mean) * gamma /
sqrt(var + eps)``). ``inbound`` reads which layers feed a layer; ``IDENTITIES`` are the layers
the explorer skips. ValueError names any layer or setting the explorer cannot run.
"""

import numpy as np

_ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "swish", "silu")
# Inference-time identities: the explorer skips them and reads their input instead.
IDENTITIES = (
    "InputLayer", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation",
    "RandomBrightness", "RandomCrop",
)
_POOLS = {"MaxPooling2D": "max_pool", "AveragePooling2D": "avg_pool"}
_GLOBAL_POOLS = {"GlobalAveragePooling2D": "global_avg_pool", "GlobalMaxPooling2D": "global_max_pool"}


def inbound(layer_config):
    """Names of the layers feeding a layer, from its entry in ``model.get_config()["layers"]``."""
    nodes = layer_config.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise ValueError(
            f"Layer {layer_config['name']!r} is called {len(nodes)} times (a shared layer); the "
            "explorer's export needs each layer called once."
        )
    names = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                names.append(value["config"]["keras_history"][0])
            else:
                for item in value.values():
                    walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)

    for node in nodes:
        walk(node.get("args", []))
        walk(node.get("kwargs", {}))
    return names


def _activation_name(layer, value):
    """The explorer's name for a Keras activation (a string or a keras.activations function)."""
    name = value if isinstance(value, str) else getattr(value, "__name__", repr(value))
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"Layer {layer.name!r} uses activation {name!r}; the explorer runs "
            f"{', '.join(_ACTIVATIONS)}."
        )
    return name


def _shape(layer):
    return [int(v) for v in layer.output.shape[1:]]


def _check_default(layer, config, **defaults):
    for key, expected in defaults.items():
        value = config.get(key, expected)
        if isinstance(value, (list, tuple)):
            value = tuple(value)
        if value != expected:
            raise ValueError(f"Layer {layer.name!r} ({type(layer).__name__}) has {key}={value!r}; the "
                             f"explorer's export supports only {key}={expected!r}.")


def _bn_arrays(layer):
    """gamma, beta, moving mean, moving variance of a BatchNormalization layer (float64; ones
    or zeros where it has no scale or no centre)."""
    by_name = {w.path.rsplit("/", 1)[-1]: np.asarray(w.numpy(), np.float64) for w in layer.weights}
    channels = layer.output.shape[-1]
    return (by_name.get("gamma", np.ones(channels)), by_name.get("beta", np.zeros(channels)),
            by_name["moving_mean"], by_name["moving_variance"])


def layer_op(layer, sources, arrays):
    """The explorer's operation for one layer (its arrays go into ``arrays[layer.name]``)."""
    kind, config = type(layer).__name__, layer.get_config()
    op = {"name": layer.name, "layers": [layer.name], "inputs": sources, "shape": _shape(layer)}
    if kind == "Rescaling":
        op.update(op="rescale", scale=np.asarray(config["scale"], "f4").tolist(),
                  offset=np.asarray(config["offset"], "f4").tolist())
    elif kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
        if kind != "Dense":
            _check_default(layer, config, dilation_rate=(1, 1), data_format="channels_last", groups=1)
            op.update(strides=list(config["strides"]), padding=config["padding"])
        weights = layer.get_weights()
        arrays[layer.name] = {"kernel": weights[0], "bias": weights[1] if len(weights) > 1 else None}
        op.update(op={"Conv2D": "conv2d", "DepthwiseConv2D": "depthwise_conv2d", "Dense": "dense"}[kind],
                  activation=_activation_name(layer, config["activation"]))
    elif kind == "BatchNormalization":
        rank = len(layer.output.shape)
        if config.get("axis", -1) not in (-1, rank - 1, [-1], [rank - 1]):
            raise ValueError(f"Layer {layer.name!r} normalises axis {config['axis']!r}; the explorer "
                             "supports only the channel (last) axis.")
        gamma, beta, mean, variance = _bn_arrays(layer)
        scale = gamma / np.sqrt(variance + config["epsilon"])
        arrays[layer.name] = {"scale": scale, "shift": beta - mean * scale}
        op.update(op="affine")
    elif kind == "ReLU":
        _check_default(layer, config, negative_slope=0.0, threshold=0.0)
        maximum = config.get("max_value")
        if maximum not in (None, 6.0):
            raise ValueError(f"Layer {layer.name!r} caps its ReLU at {maximum!r}; the explorer runs "
                             "ReLU and ReLU6 only.")
        op.update(op="activation", activation="relu" if maximum is None else "relu6")
    elif kind == "Activation":
        op.update(op="activation", activation=_activation_name(layer, config["activation"]))
    elif kind == "Add":
        op.update(op="add")
    elif kind in _POOLS:
        _check_default(layer, config, data_format="channels_last")
        op.update(op=_POOLS[kind], pool=list(config["pool_size"]),
                  strides=list(config["strides"] or config["pool_size"]), padding=config["padding"])
    elif kind in _GLOBAL_POOLS:
        _check_default(layer, config, data_format="channels_last", keepdims=False)
        op.update(op=_GLOBAL_POOLS[kind])
    elif kind == "Flatten":
        op.update(op="flatten")
    else:
        raise ValueError(
            f"Layer {layer.name!r} is a {kind}, which the explorer's export does not support (it "
            "runs Rescaling, Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, Activation, Add, "
            "pooling, Flatten and Dense)."
        )
    return op


def fold_batch_norms(ops, arrays):
    """Fold each ``affine`` (BatchNorm) into the linear convolution or Dense right before it,
    when nothing else reads that layer's output. The folded op takes the BatchNorm's name (its
    output is the BatchNorm's output) and lists both layers."""
    readers = {}
    for op in ops:
        for source in op["inputs"]:
            readers[source] = readers.get(source, 0) + 1
    by_name = {op["name"]: op for op in ops}
    kept = []
    for op in ops:
        before = by_name.get(op["inputs"][0]) if op["op"] == "affine" else None
        if (before is None or before["op"] not in ("conv2d", "depthwise_conv2d", "dense")
                or before["activation"] != "linear" or readers[before["name"]] != 1):
            kept.append(op)
            continue
        affine = arrays.pop(op["name"])
        scale, shift = affine["scale"], affine["shift"]
        weights = arrays.pop(before["name"])
        kernel = weights["kernel"].astype(np.float64)
        if before["op"] == "depthwise_conv2d":  # (kh, kw, c, multiplier): output channel c*m + j
            kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
        else:
            kernel = kernel * scale
        bias = shift if weights["bias"] is None else shift + weights["bias"] * scale
        arrays[op["name"]] = {"kernel": kernel, "bias": bias}
        del by_name[before["name"]]
        kept.remove(before)
        by_name[op["name"]] = folded = {**before, "name": op["name"], "layers": before["layers"] + op["layers"],
                                        "shape": op["shape"]}
        kept.append(folded)
    return kept
