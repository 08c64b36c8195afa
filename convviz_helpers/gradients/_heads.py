"""Output heads and class scores: which output of a model is explained and how its values
become the (n, K) class scores that methods differentiate.

``head`` says which output is explained (``output=`` picks one of a multi-output model) and
turns a single sigmoid unit into two classes (``class_scores``); a subclassed model, which has
no graph to read, is read from one trace (``_tracing.trace``).
"""

import contextlib
from dataclasses import dataclass

import numpy as np

from .._tf import keras
from ..layers import iter_layers
from ._relu import linear_activation
from ._tracing import _output_keys, _pick, graph_outputs, trace

ops = keras.ops

SCORES = ("logits", "probabilities", "outputs")


def _squashing(layer):
    """``(layer, "softmax" | "sigmoid")`` if ``layer`` squashes its output, else ``(None, None)``.
    A nested model is looked into (its last layer)."""
    while isinstance(layer, keras.Model):
        layer = layer.layers[-1] if layer.layers else None
    if isinstance(layer, keras.layers.Softmax):
        return layer, "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    return (layer, name) if name in ("softmax", "sigmoid") else (None, None)


def final_activation(model, output=None):
    """``(layer, name)`` of the squashing at the end of ``model``'s output ("softmax"/"sigmoid"),
    or ``(None, None)`` if that output is already logits. ``output`` as in ``head``."""
    found = head(model, output)
    return found.final, found.kind


def _producer(model, tensor, flat_index):
    """The layer of ``model`` whose output is the symbolic ``tensor`` (None if not found).

    By identity where the layer's first call made ``tensor``; else by ``model.output_names``
    (the producing layers' names, in flattened output order) at ``flat_index``; else, for a
    single output, the model's last layer (a nested model called on the outer input makes a
    new tensor that is no layer's ``output``)."""
    for layer in model.layers:
        try:
            if layer.output is tensor:
                return layer
        except (AttributeError, ValueError):
            continue  # a layer called several times has no single output
    names = list(getattr(model, "output_names", None) or [])
    if flat_index < len(names):
        try:
            return model.get_layer(names[flat_index])
        except ValueError:
            pass
    outputs = getattr(model, "outputs", None) or []
    return model.layers[-1] if len(outputs) == 1 and model.layers else None


def _resolve_output(model, keys, output, names=()):
    """The key (list index or dict key) that ``output`` names among ``keys``; ValueError if none."""
    shown = ", ".join(repr(k) for k in (names or keys))
    if keys == [None]:
        if output in (None, 0) or (names and output in names):
            return None
        raise ValueError(f"Model {model.name!r} has a single output; output={output!r} names none (drop it).")
    if output is None and len(keys) == 1:
        return keys[0]
    if output is None:
        raise ValueError(
            f"Model {model.name!r} has {len(keys)} outputs ({shown}); pick the one to explain with "
            "output=<index or name>, e.g. output=0."
        )
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if not -len(keys) <= output < len(keys):
            raise ValueError(
                f"output={output} is out of range: model {model.name!r} has {len(keys)} outputs ({shown})."
            )
        return keys[int(output)]
    if isinstance(output, str):
        if output in keys:
            return output
        if output in names:
            return keys[list(names).index(output)]
    raise ValueError(f"Model {model.name!r} has no output {output!r}; its outputs are {shown} (by index or name).")


@dataclass(frozen=True)
class Head:
    """Which output of a model is explained and how its values become class scores.

    ``key``: None for a single-output model, else the list index or dict key of the output.
    ``units``: size of the output's last axis. ``final``: the layer whose softmax or sigmoid
    ends the output (run without it for logits), or None. ``kind``: "softmax", "sigmoid" or
    None. A single unit (``units == 1``) is a binary classifier: two classes, 1 the logit and
    0 its negative (see ``class_scores``).
    """

    key: object
    units: int
    final: object
    kind: object

    @property
    def binary(self):
        """True for a single-unit (sigmoid or logit) binary classifier."""
        return self.units == 1

    @property
    def classes(self):
        """Number of classes: 2 for a single unit, else ``units``."""
        return 2 if self.binary else self.units


def _check_rank(model, shape):
    if shape is None or len(shape) != 2:
        raise ValueError(
            f"Model {model.name!r} has output shape {shape}; expected one (n, classes) output "
            "(pick another output with output=, or explain a classifier)."
        )


def head(model, output=None, image_shape=None):
    """The ``Head`` that ``output`` picks: None for a single-output model, else an index or a
    name (a dict key, or a name in ``model.output_names``).

    Functional and Sequential models are read from their graph. A model without one (a
    subclassed ``keras.Model``) is traced once at ``image_shape`` (H, W, C); its final softmax
    or sigmoid is the last layer called whose output is the model's output.
    Raises ValueError for a multi-output model without ``output``, an unknown output, or an
    output that is not (n, classes).
    """
    structure = graph_outputs(model)
    if structure is None:
        return _traced_head(model, output, image_shape)
    keys = _output_keys(structure)
    names = tuple(getattr(model, "output_names", None) or ())
    if isinstance(structure, dict) or len(names) != len(keys):
        names = ()
    key = _resolve_output(model, keys, output, names)
    tensor = _pick(structure, key)
    _check_rank(model, tuple(tensor.shape))
    # output_names follow the flattened outputs: a dict's values sorted by key.
    flat = sorted(keys).index(key) if isinstance(structure, dict) else (key or 0)
    final, kind = _squashing(_producer(model, tensor, flat))
    return Head(key, int(tensor.shape[-1]), final, kind)


def _traced_head(model, output, image_shape):
    traced = trace(model, image_shape)
    keys = [key for key, _ in traced.outputs]
    key = _resolve_output(model, keys, output)
    shape = dict(traced.outputs)[key]
    _check_rank(model, shape)
    by_id = {id(layer): layer for _, layer in iter_layers(model)}
    final, kind = _squashing(by_id.get(traced.final.get(key)))
    return Head(key, int(shape[-1]), final, kind)


def num_classes(model, output=None, image_shape=None):
    """Number of classes the chosen output scores: its last axis, or 2 for a single sigmoid
    (or logit) unit. ``output`` and ``image_shape`` as in ``head``."""
    return head(model, output, image_shape).classes


def class_scores(model, images, scores="logits", found=None):
    """Inside a traced function: the (n, K) class ``scores`` of ``model`` for ``images``.

    ``found``: the ``Head`` to score (default ``head(model)``, the single output).
    ``scores``: "logits" (the final softmax or sigmoid left out), "probabilities" or "outputs"
    (as the model returns them). A binary head (one unit) gives two columns: class 0 then
    class 1, i.e. (-z, z) for logits z and (1 - p, p) for probabilities p, so every method can
    pick class 0 or 1 and the argmax is the predicted class (p > 0.5 gives 1).
    """
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")
    found = head(model) if found is None else found
    linear = scores == "logits" and found.final is not None
    with linear_activation(found.final) if linear else contextlib.nullcontext():
        values = _pick(model(images, training=False), found.key)
    is_logit = linear or found.kind is None
    if found.binary:
        if scores == "probabilities" and is_logit:
            values = ops.sigmoid(values)
            is_logit = False
        return ops.concatenate([-values, values] if is_logit else [1.0 - values, values], axis=-1)
    if scores == "probabilities" and found.kind is None:
        return ops.softmax(values, axis=-1)
    return values


def single_output(record, layer):
    """The one tensor ``recording`` saw ``layer`` produce; ValueError if it ran zero or 2+ times."""
    if len(record) != 1:
        why = "is not used on the way from the input to the output" if not record else f"is called {len(record)} times"
        raise ValueError(f"Layer {layer.name!r} {why}; pick a layer that runs exactly once.")
    return record[0]


def select(values, indices):
    """``values[i, indices[i]]`` for every row i: (n, K) and (n,) ints give (n,)."""
    return ops.take_along_axis(values, ops.expand_dims(ops.cast(indices, "int32"), -1), axis=-1)[:, 0]

