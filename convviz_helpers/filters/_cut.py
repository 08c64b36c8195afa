"""The layers an atlas reads, through a size-free copy of the model's graph cut after the deepest.

``cut_model(model, layers)`` is a keras.Model on (n, any, any, C) images returning those layers'
outputs (the same layer objects, so the same weights): an ascent pays only for the layers it
needs and runs at the recipe's size rather than the model's input size.
``pre_activation(model, layer)`` says which layer to read for a layer's pre-activation, and
``channel_means`` reads the spatial means of several layers in one forward pass.
"""

import contextlib
import weakref

import numpy as np

from .. import gradients, models
from .._tf import keras
from ._objectives import feature_layer

ops = keras.ops

_nets = weakref.WeakKeyDictionary()  # model -> {ids of target layers: keras.Model}


def cut_model(model, targets):
    """A keras.Model on (n, any, any, C) images returning the outputs of ``targets`` (layers of
    ``model``, top level of a functional model), built by calling ``model``'s layers again in
    graph order up to the deepest target. Raises ValueError where that is impossible."""
    per_model = _nets.setdefault(model, {})
    key = tuple(id(layer) for layer in targets)
    if key in per_model:
        return per_model[key]
    if gradients.graph_outputs(model) is None or len(model.inputs) != 1:
        raise ValueError(f"An atlas needs a functional model with one image input; {model.name!r} is not one.")
    top = {id(layer) for layer in model.layers}
    for layer in targets:
        if id(layer) not in top:
            raise ValueError(
                f"Layer {layer.name!r} is inside a nested model of {model.name!r}: an atlas reads layers at the "
                "top level of a functional model (pass the nested model itself).")
    source = model.inputs[0]
    images = keras.Input((None, None, source.shape[-1]), name="images")
    tensors = {id(source): images}
    missing = {id(layer) for layer in targets}
    for layer in model.layers:
        if not missing:
            break
        if isinstance(layer, keras.layers.InputLayer):
            tensors[id(layer.output)] = images
            continue
        try:
            inbound, produced = layer.input, layer.output
        except (AttributeError, ValueError) as error:
            raise ValueError(f"Layer {layer.name!r} of {model.name!r} runs more than once; an atlas needs "
                             "each layer on the way to its targets to run once.") from error
        flat = inbound if isinstance(inbound, (list, tuple)) else [inbound]
        if not all(id(t) in tensors for t in flat):
            continue  # a branch that does not start from the image input
        args = [tensors[id(t)] for t in flat]
        tensors[id(produced)] = layer(args if isinstance(inbound, (list, tuple)) else args[0])
        missing.discard(id(layer))
    net = keras.Model(images, [tensors[id(layer.output)] for layer in targets], name=f"{model.name}_cut")
    per_model[key] = net
    return net


def pre_activation(model, layer):
    """``(layer to read, layer to run without its activation or None, channels, rank)``: the
    pre-activation of ``layer`` (a ReLU layer is read at its input; a fused activation is
    dropped); a Dense layer (rank 2) is read before its softmax."""
    found = models.find_layer(model, layer)
    if models.output_rank(found) == 2:
        linear = found if getattr(found, "activation", None) is not None else None
        return found, linear, int(found.output.shape[-1]), 2
    record, linear, channels = feature_layer(model, found)
    return record, linear, channels, 4


def channel_means(model, layers, images, batch_size=64):
    """Spatial means of the pre-activations of ``layers`` (names or layers, image-shaped) for
    ``images`` (n, h, w, 3) in [0, 1] at any size: a list of (n, c) float32, one per layer, from
    one forward pass per chunk through all layers together."""
    found = [pre_activation(model, layer) for layer in layers]
    if any(rank != 4 for *_, rank in found):
        raise ValueError("channel_means reads image-shaped layers only.")
    records = [record for record, *_ in found]
    linears = [linear for _, linear, *_ in found if linear is not None]
    net = cut_model(model, records)
    images = np.asarray(images, np.float32)

    def build(proxy):
        def run(batch):
            with contextlib.ExitStack() as stack:
                for linear in linears:
                    stack.enter_context(gradients.linear_activation(linear))
                maps = proxy(batch, training=False)
            maps = maps if isinstance(maps, (list, tuple)) else [maps]
            return [ops.mean(m, axis=(1, 2)) for m in maps]

        return gradients.compile(proxy, run, [((None, *images.shape[1:]), "float32")])

    run = gradients.compiled_for(net, ("means", images.shape[1:], tuple(id(x) for x in linears)), build)
    parts = [run(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
    return [np.concatenate([np.asarray(part[j]) for part in parts]).astype(np.float32) for j in range(len(records))]
