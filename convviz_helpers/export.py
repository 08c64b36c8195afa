"""Everything the book's in-browser explorer (``book/explorer.md``) loads: networks, photos, atlas.

The explorer runs a network with TensorFlow.js operations, not with TF.js's Keras loader (which
rejects Keras 3 configs). So a model is written as its own small format:

- ``graph.json``: the operations in topological order, each with its Keras layer name(s), its
  inputs (names of earlier operations or of the model input), its output shape (h, w, c) or
  (units,) and its parameters; BatchNormalization is folded into the convolution or Dense layer
  before it (``w * gamma / sqrt(var + eps)``, bias ``beta + (b - mean) * gamma / sqrt(var + eps)``),
  or becomes a per-channel ``affine`` operation when it follows anything else. Also the class
  names, the layers a reader may pick (every image-shaped output but pooling) and the default
  one (``models.last_conv_layer``).
- ``weights.bin``: every array as little-endian float32, one after the other; each operation
  names its arrays in ``"weights": {"kernel": [offset, shape], ...}`` (offset in float32
  elements; ``kernel`` and ``bias`` for convolutions and Dense, ``scale`` and ``shift`` for
  ``affine``).

Supported layers (what EfficientNet-Lite0 and ShapesNet use, and a few relatives): InputLayer,
Rescaling, Conv2D, DepthwiseConv2D, BatchNormalization, ReLU (plain or capped at 6), Activation
(linear, relu, relu6, sigmoid, tanh, softmax, swish/silu), Add, MaxPooling2D, AveragePooling2D,
GlobalAveragePooling2D, GlobalMaxPooling2D, Flatten, Dense, and layers that do nothing at
inference (Dropout and the Random* augmentations). Anything else raises ValueError naming the
layer.

``build_site(out_dir)`` writes both book models, their photos (the bundled photos at 224 px;
for ShapesNet one procedural shape per class at 64 px) and the chapter-3 atlas where the
package has one; ``make book`` runs it (``python -m convviz_helpers.export DIR``).
"""

import json
import sys
from pathlib import Path

import cv2
import numpy as np

from . import data, imagenet, models
from ._tf import keras

FORMAT_VERSION = 1
# Photos the Lite0 page offers: the bundled photos an ImageNet network has classes for.
LITE0_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower", "camera", "coins")
# make_shapes(SHAPES_POOL, 64, seed=SHAPES_SEED): the first image of each class is its photo.
SHAPES_POOL, SHAPES_SEED = 60, 11

_ACTIVATIONS = ("linear", "relu", "relu6", "sigmoid", "tanh", "softmax", "swish", "silu")
# Inference-time identities: the explorer skips them and reads their input instead.
_IDENTITIES = (
    "InputLayer", "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
    "RandomFlip", "RandomRotation", "RandomZoom", "RandomContrast", "RandomTranslation",
    "RandomBrightness", "RandomCrop",
)
_POOLS = {"MaxPooling2D": "max_pool", "AveragePooling2D": "avg_pool"}
_GLOBAL_POOLS = {"GlobalAveragePooling2D": "global_avg_pool", "GlobalMaxPooling2D": "global_max_pool"}


def _inbound(layer_config):
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


class _Weights:
    """Collects float32 arrays into one buffer; ``add`` returns ``[offset, shape]``."""

    def __init__(self):
        self.arrays, self.size = [], 0

    def add(self, array):
        array = np.ascontiguousarray(array, dtype="<f4")
        reference = [self.size, list(array.shape)]
        self.arrays.append(array.ravel())
        self.size += array.size
        return reference

    def tobytes(self):
        return b"".join(a.tobytes() for a in self.arrays)


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


def _layer_op(layer, sources, arrays):
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


def _fold_batch_norms(ops, arrays):
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


def _layer_choices(ops):
    """The layers a reader may pick for Grad-CAM and feature maps: every operation with an
    image-shaped output except pooling and input scaling, in order."""
    return [op["name"] for op in ops
            if len(op["shape"]) == 3 and op["op"] not in ("max_pool", "avg_pool", "rescale")]


def _first_layer_name(entry):
    """'images' from a functional config's ``input_layers``/``output_layers``: Keras writes
    ``["images", 0, 0]`` for one tensor and ``[["images", 0, 0], ...]`` for several."""
    return entry[0][0] if isinstance(entry[0], (list, tuple)) else entry[0]


def _op_of(ops, layer_name):
    """The name of the op that computes a Keras layer (a folded convolution is in its BatchNorm's op)."""
    return next(op["name"] for op in ops if layer_name in op["layers"])


def export_graph(model, out_dir, class_names=None):
    """Write ``model`` for the explorer: ``out_dir/graph.json`` and ``out_dir/weights.bin``.

    ``model``: a flat functional keras.Model with one image input (H, W, C) and one output,
    made of the supported layers (module docstring). ``class_names``: one name per output unit
    (default ``"class 0"``...). Returns the graph as a dict (what ``graph.json`` holds: ``ops``,
    ``input``, ``output``, ``classes``, ``layers``, ``default_layer``, ``weights``). Raises
    ValueError naming the first layer the explorer cannot run.
    """
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError("export_graph needs a functional keras.Model with one input and one output.")
    config = model.get_config()
    if "layers" not in config or "output_layers" not in config:
        raise ValueError(f"Model {model.name!r} has no functional graph (subclassed?); the explorer's "
                         "export needs a functional model.")
    entries = {entry["name"]: entry for entry in config["layers"]}
    alias, arrays, ops = {}, {}, []
    input_name = _first_layer_name(config["input_layers"])
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise ValueError(f"Layer {layer.name!r} is a nested model; the explorer's export needs a flat "
                             "functional model.")
        kind = type(layer).__name__
        sources = [alias.get(name, name) for name in _inbound(entries[layer.name])]
        if kind in _IDENTITIES:
            if kind != "InputLayer":
                alias[layer.name] = sources[0]
            continue
        ops.append(_layer_op(layer, sources, arrays))
    ops = _fold_batch_norms(ops, arrays)
    output = _first_layer_name(config["output_layers"])
    output = alias.get(output, output)
    if ops[-1]["name"] != output:
        raise ValueError(f"Model {model.name!r}'s output {output!r} is not its last operation.")
    units = ops[-1]["shape"][-1]
    classes = list(class_names) if class_names is not None else [f"class {i}" for i in range(units)]
    if len(classes) != units:
        raise ValueError(f"{len(classes)} class names for {units} outputs of model {model.name!r}.")

    store = _Weights()
    for op in ops:
        stored = {key: store.add(a) for key, a in arrays.get(op["name"], {}).items() if a is not None}
        if stored:
            op["weights"] = stored
    graph = {
        "format": "convviz-graph",
        "version": FORMAT_VERSION,
        "name": model.name,
        "input": {"name": input_name, "shape": [int(v) for v in model.inputs[0].shape[1:]]},
        "output": output,
        "classes": classes,
        "layers": _layer_choices(ops),
        "default_layer": _op_of(ops, models.last_conv_layer(model).name),
        "weights": {"file": "weights.bin", "dtype": "float32", "count": store.size},
        "ops": ops,
    }
    if graph["default_layer"] not in graph["layers"]:
        raise ValueError(f"Model {model.name!r}'s Grad-CAM layer {graph['default_layer']!r} has no image-shaped output.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "weights.bin").write_bytes(store.tobytes())
    (out_dir / "graph.json").write_text(json.dumps(graph, separators=(",", ":")))
    return graph


def _write_png(path, image):
    """(H, W, 3) float in [0, 1] -> 8-bit PNG (exact: the page and the tests read the same bytes)."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)):
        raise OSError(f"Could not write {path}.")


def read_png(path):
    """A PNG written by this module as (H, W, 3) float32 in [0, 1] (what the page feeds its network)."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise ValueError(f"{path} is not a readable image.")
    return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def export_photos(named_images, out_dir):
    """Write ``{name: (H, W, 3) [0, 1] image}`` as ``out_dir/<name>.png``; returns the names in order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, image in named_images.items():
        _write_png(out_dir / f"{name}.png", image)
    return list(named_images)


def shapes_photos():
    """One procedural shape per ShapesNet class (64 px): ``{class name: image}``, class order."""
    shapes = data.make_shapes(SHAPES_POOL, image_size=64, seed=SHAPES_SEED)
    return {name: shapes.images[int(np.argmax(shapes.labels == i))] for i, name in enumerate(shapes.class_names)}


def _sprite(tiles, columns):
    """(k, s, s, 3) tiles -> one (rows * s, columns * s, 3) image, row by row."""
    k, size = len(tiles), tiles.shape[1]
    rows = -(-k // columns)
    sheet = np.zeros((rows * size, columns * size, 3), np.float32)
    for index in range(k):  # at most a few hundred small copies, once at build time
        row, column = divmod(index, columns)
        sheet[row * size:(row + 1) * size, column * size:(column + 1) * size] = tiles[index]
    return sheet


def export_atlas(atlas, out_dir):
    """Write a filter atlas for the explorer: per layer two PNG sprites and ``atlas.json``.

    ``atlas``: an object with ``.layers`` (layer names) and ``atlas[name]`` giving ``.layer``,
    ``.channels`` (k,) int, ``.patterns`` (k, S, S, 3) in [0, 1], ``.examples`` (k, m, s, s, 3)
    in [0, 1] and ``.example_activations`` (k, m) (what ``filters.atlas`` returns), or None for
    no atlas. Writes ``<layer>-patterns.png`` (the k patterns in one row), ``<layer>-examples.png``
    (row i: channel i's m examples) and ``atlas.json``: ``{"layers": {name: {"channels",
    "pattern_size", "patterns", "examples", "example_size", "example_count",
    "example_activations"}}}``. Returns that dict. Raises ValueError for inconsistent shapes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {"layers": {}}
    for name in ([] if atlas is None else list(atlas.layers)):
        entry = atlas[name]
        channels = np.asarray(entry.channels).astype(int).ravel()
        patterns = np.asarray(entry.patterns, np.float32)
        examples = np.asarray(entry.examples, np.float32)
        activations = np.asarray(entry.example_activations, np.float32)
        k = len(channels)
        if patterns.ndim != 4 or patterns.shape[0] != k or patterns.shape[-1] != 3:
            raise ValueError(f"Atlas layer {name!r}: patterns of shape {patterns.shape} for {k} channels.")
        if examples.ndim != 5 or examples.shape[0] != k or activations.shape != examples.shape[:2]:
            raise ValueError(f"Atlas layer {name!r}: examples {examples.shape} and activations "
                             f"{activations.shape} do not match {k} channels.")
        stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(entry.layer))
        _write_png(out_dir / f"{stem}-patterns.png", _sprite(patterns, k))
        _write_png(out_dir / f"{stem}-examples.png",
                   _sprite(examples.reshape(-1, *examples.shape[2:]), examples.shape[1]))
        index["layers"][str(entry.layer)] = {
            "channels": channels.tolist(),
            "pattern_size": int(patterns.shape[1]),
            "patterns": f"{stem}-patterns.png",
            "example_size": int(examples.shape[2]),
            "example_count": int(examples.shape[1]),
            "examples": f"{stem}-examples.png",
            "example_activations": np.round(activations, 4).tolist(),
        }
    (out_dir / "atlas.json").write_text(json.dumps(index, separators=(",", ":")))
    return index


def build_site(out_dir):
    """Everything the explorer page loads, under ``out_dir`` (``make book`` passes the folder
    that Sphinx copies into the site as ``explorer/``).

    Writes ``models/efficientnet_lite0/`` and ``models/shapesnet/`` (graph, weights, ``photos/``)
    and ``models/index.json`` (per model: title, photo names, input size), plus ``atlas/``
    (the chapter-3 atlas when ``filters.atlas`` exists, else an empty index). Returns the index.
    """
    from . import filters

    out_dir = Path(out_dir)
    lite0 = models.pretrained("efficientnet_lite0")
    shapes = models.shapes_model()
    photos = {
        "efficientnet_lite0": {name: data.sample_image(name, 224) for name in LITE0_PHOTOS},
        "shapesnet": shapes_photos(),
    }
    titles = {"efficientnet_lite0": "EfficientNet-Lite0 (ImageNet)", "shapesnet": "ShapesNet (6 shapes)"}
    index = {}
    for key, model, names in (("efficientnet_lite0", lite0, imagenet.class_names()),
                              ("shapesnet", shapes, data.SHAPE_CLASSES)):
        graph = export_graph(model, out_dir / "models" / key, class_names=names)
        index[key] = {"title": titles[key], "input_size": graph["input"]["shape"][:2],
                      "photos": export_photos(photos[key], out_dir / "models" / key / "photos")}
    (out_dir / "models" / "index.json").write_text(json.dumps(index, indent=1))
    atlas = filters.atlas("efficientnet_lite0") if hasattr(filters, "atlas") else None
    export_atlas(atlas, out_dir / "atlas")
    return index


def main(argv=None):
    """``python -m convviz_helpers.export OUT_DIR``: ``build_site(OUT_DIR)``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m convviz_helpers.export OUT_DIR")
    index = build_site(argv[0])
    print(f"Explorer assets in {argv[0]}: " + ", ".join(f"{k} ({len(v['photos'])} photos)" for k, v in index.items()))


if __name__ == "__main__":
    main()
