"""One public call, resolved once: validated images, the head, the layers, the input range and
the classes, in one frozen value (``Request``) that the rest of the core takes.

A method builds it with ``request(model, images, ...)`` at its entry, then hands it to
``run_probe`` / ``run_outputs`` (one or more times: ``Request.derived`` makes the noisy or
masked copies a method needs without checking them again). Every mistake a reader can make in
the arguments is reported here, before anything is traced.
"""

from dataclasses import dataclass, replace

import numpy as np

from .. import input_range as ranges
from .. import inputs
from .._tf import keras
from ..layers import _NOT_FEATURES, find_layer, is_conv, last_conv_layer
from ._heads import SCORES, Head, head
from ._tracing import called_layers, graph_outputs, layer_shape


@dataclass(frozen=True, eq=False)
class Request:
    """A call's arguments, checked and resolved.

    ``model``: the keras.Model. ``images``: float32 (n, H, W, C) in the model's input range
    (checked by ``inputs.image_batch``). ``classes``: int32 (n,), -1 where the image's top-1
    class is meant. ``head``: the ``Head`` explained (None for a
    forward pass only). ``layers``: layer objects of the model.
    ``input_range``: the model's ``input_range.InputRange``. ``scores``: "logits",
    "probabilities" or "outputs". ``output``: the ``output=`` argument, for the compile cache.
    """

    model: object
    images: np.ndarray
    classes: np.ndarray
    head: Head
    layers: tuple
    input_range: object
    scores: str = "logits"
    output: object = None

    @property
    def image_shape(self):
        """(H, W, C) of the images."""
        return tuple(self.images.shape[1:])

    def derived(self, images=None, classes=None, layers=None):
        """The same request for other ``images`` (copies made from the checked ones and kept in
        the input range: noisy, masked), ``classes`` (int32 (n,)) or ``layers``; not checked
        again."""
        changes = {}
        if images is not None:
            changes["images"] = np.asarray(images, np.float32)
        if classes is not None:
            changes["classes"] = np.asarray(classes, np.int32)
        if layers is not None:
            changes["layers"] = tuple(layers)
        return replace(self, **changes)


def request(model, images, classes=None, layers=(), *, scores="logits", output=None, feature_maps=False,
            scored=True):
    """Check and resolve one call's arguments into a ``Request``.

    ``images``: array-like (n, H, W, C) in the model's input range. ``classes``: None (top-1),
    an int, or one int per image. ``layers``: names, paths or layer objects; None in the list
    means the CAM layer (``default_layer``). ``feature_maps``: require each layer to output
    (n, h, w, c). ``scores``, ``output`` as in ``probe``. ``scored=False``: a forward pass only
    (``run_outputs``), so the model's output need not be class scores; ``head`` is then None and
    ``classes`` must be None. Raises ValueError for any bad argument.
    """
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")
    value_range = ranges.read(model)
    checked = inputs.image_batch(images, model, value_range=value_range)
    shape = checked.shape[1:]
    if scored:
        found = head(model, output, shape)
        wanted = inputs.class_indices(classes, len(checked), found.classes)
    elif classes is not None:
        raise ValueError("classes were given for a call that computes no class scores.")
    else:
        found, wanted = None, np.full(len(checked), -1, np.int32)
    chosen = tuple(default_layer(model, shape) if layer is None else find_layer(model, layer) for layer in layers)
    if feature_maps:
        for layer in chosen:
            feature_map_shape(model, layer, shape)
    return Request(model, checked, wanted, found, chosen, value_range, scores, output)


def feature_map_shape(model, layer, image_shape=None):
    """The (n, h, w, c) output shape of ``layer``; ValueError when it is not a feature map."""
    shape = layer_shape(model, layer, image_shape)
    if shape is None or len(shape) != 4:
        raise ValueError(
            f"Layer {layer.name!r} outputs shape {shape}, not a feature map "
            "(n, h, w, c); class activation maps need a convolutional layer."
        )
    return shape


def default_layer(model, image_shape=None):
    """The CAM layer: ``layers.last_conv_layer`` read from the model's graph, or for a model
    without one (subclassed) the same rule applied to its layers in the order its ``call`` ran
    them, shapes from one trace at ``image_shape`` (H, W, C)."""
    if graph_outputs(model) is not None or image_shape is None:
        return last_conv_layer(model)
    chosen, seen_conv = None, False
    for layer in called_layers(model, image_shape):
        if isinstance(layer, keras.Model):
            continue
        seen_conv = seen_conv or is_conv(layer)
        shape = layer_shape(model, layer, image_shape)
        spatial = shape is not None and len(shape) == 4 and (None in shape[1:3] or shape[1] * shape[2] > 1)
        if seen_conv and spatial and type(layer).__name__ not in _NOT_FEATURES:
            chosen = layer
    if chosen is None:
        raise ValueError(
            f"Model {model.name!r} runs no convolutional layer with an image-shaped output; class "
            "activation maps need one."
        )
    return chosen
