"""Finding layers in a model: by name or path through nested models, and the layer a CAM uses.

Ground level of the package (it imports only Keras): the gradient core, the methods, the input
range reader and the model zoo all look layers up here, so none of them needs the model zoo.

- ``iter_layers(model)``: every ``(path, layer)``, depth first, nested models included.
- ``find_layer(model, name)``: one layer by name, path or object; ValueError listing candidates.
- ``last_conv_layer(model)``: the last feature map before the head (Grad-CAM's default layer).
- ``is_conv`` / ``output_rank``: what kind of layer it is.
"""

import difflib

from ._tf import keras


def iter_layers(model, prefix=""):
    """Yield ``(path, layer)`` for every layer of ``model``, depth first, nested models included.

    ``path`` joins the names of enclosing models with "/" (``"vgg16/block5_conv3"``). A nested
    model is yielded itself, then its layers.
    """
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        yield path, layer
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer, prefix=f"{path}/")


def find_layer(model, name):
    """The layer of ``model`` called ``name``, looked for through nested models.

    ``name``: a layer name (``"block5_conv3"``), a path (``"vgg16/block5_conv3"``) or a layer
    object belonging to the model. Raises ValueError listing candidates when no layer or more
    than one layer matches.
    """
    layers = list(iter_layers(model))
    if isinstance(name, keras.layers.Layer):
        if name is model or any(layer is name for _, layer in layers):
            return name
        raise ValueError(f"Layer {name.name!r} is not part of model {model.name!r}.")
    if not isinstance(name, str):
        raise ValueError(f"A layer is named by a string or given as a layer object, not {name!r}.")
    matches = []
    for path, layer in layers:
        if (layer.name == name or path == name) and not any(layer is m for _, m in matches):
            matches.append((path, layer))
    if len(matches) == 1:
        return matches[0][1]
    if matches:
        paths = ", ".join(path for path, _ in matches)
        raise ValueError(f"Layer name {name!r} is ambiguous in model {model.name!r}: {paths}. Pass one of these paths.")
    paths = [path for path, _ in layers]
    close = difflib.get_close_matches(name, paths + [layer.name for _, layer in layers], n=5, cutoff=0.5)
    hint = f" Closest: {', '.join(dict.fromkeys(close))}." if close else ""
    shown = ", ".join(paths[:60]) + (f", ... ({len(paths) - 60} more)" if len(paths) > 60 else "")
    raise ValueError(f"No layer {name!r} in model {model.name!r}.{hint} Layers: {shown}.")


CONV_TYPES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose")
# Layers whose rank-4 output only moves, drops or summarises pixels: a heatmap taken there
# says nothing the layer before it did not.
_NOT_FEATURES = (
    "MaxPooling2D", "AveragePooling2D", "Dropout", "SpatialDropout2D", "GaussianDropout",
    "GaussianNoise", "AlphaDropout", "Reshape", "Permute", "ZeroPadding2D", "Cropping2D",
    "UpSampling2D", "InputLayer",
)


def output_rank(layer):
    """Rank of a layer's (single) output, or None if it has none or several."""
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError, RuntimeError):
        return None
    return len(shape)


def is_conv(layer):
    """True for 2-D convolution layers (plain, separable, depthwise, transposed)."""
    return type(layer).__name__ in CONV_TYPES or isinstance(layer, keras.layers.Conv2D)


def _spatial(layer):
    """True if the layer's output is a feature map with more than one position (or any size)."""
    if output_rank(layer) != 4:
        return False
    height, width = layer.output.shape[1:3]
    return height is None or width is None or height * width > 1


def last_conv_layer(model):
    """The layer Grad-CAM uses by default: the last feature map before the head.

    That is the last layer, searched through nested models in order, after the first
    convolution, whose output is (n, h, w, c) with more than one position and which is not
    pooling, dropout or reshaping (block5_conv3 in VGG16, block14_sepconv2_act in Xception,
    conv5_block3_out in ResNet50, out_relu in MobileNetV2). The 1x1 maps of squeeze-and-excitation
    blocks and of heads built from 1x1 convolutions (MobileNetV3) are not candidates.
    Raises ValueError if the model has no conv layer.
    """
    chosen, seen_conv = None, False
    for _, layer in iter_layers(model):
        if isinstance(layer, keras.Model):
            continue
        seen_conv = seen_conv or is_conv(layer)
        if seen_conv and type(layer).__name__ not in _NOT_FEATURES and _spatial(layer):
            chosen = layer
    if chosen is None:
        raise ValueError(
            f"Model {model.name!r} has no convolutional layer ({', '.join(CONV_TYPES)}) with an "
            "image-shaped output; class activation maps need one."
        )
    return chosen
