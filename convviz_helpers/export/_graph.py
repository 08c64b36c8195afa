"""A functional Keras model written as the explorer's graph format: ``graph.json`` + ``weights.bin``.

See the ``export`` package's docstring for the format and the layers it supports.
"""

import json
from pathlib import Path

import numpy as np

from .._tf import keras
from ..layers import last_conv_layer
from ._layer_ops import IDENTITIES, fold_batch_norms, inbound, layer_op

FORMAT_VERSION = 1


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
        sources = [alias.get(name, name) for name in inbound(entries[layer.name])]
        if kind in IDENTITIES:
            if kind != "InputLayer":
                alias[layer.name] = sources[0]
            continue
        ops.append(layer_op(layer, sources, arrays))
    ops = fold_batch_norms(ops, arrays)
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
        "default_layer": _op_of(ops, last_conv_layer(model).name),
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
