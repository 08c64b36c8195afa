"""What the ascent maximises: a filter's mean activation (read before its ReLU) or a class logit."""

from .. import gradients, layers
from .._tf import keras

ops = keras.ops

_BORDER = 2  # feature-map pixels left out of the filter objective on each side


def _producer(model, layer):
    """The layer whose output is ``layer``'s input (None if there is not exactly one)."""
    try:
        wanted = layer.input
    except (AttributeError, ValueError):
        return None
    found = []
    for _, other in layers.iter_layers(model):
        try:
            if other.output is wanted:
                found.append(other)
        except (AttributeError, ValueError):
            continue  # a layer used several times has no single output
    return found[0] if len(found) == 1 else None


def feature_layer(model, layer, preactivation=True, image_shape=None):
    """``(layer to record, layer to linearise or None, channels)`` for filter patterns.

    ``layer`` must have an image-shaped output (n, h, w, channels); raises ValueError otherwise.
    With ``preactivation``, a standalone ReLU layer is read at its input (the layer that feeds
    it) and a layer with a fused activation is run without it. ``image_shape`` (H, W, C): where
    a model has no graph (subclassed), the layer's shape comes from a trace at this shape.
    """
    found = layers.find_layer(model, layer)
    shape = None if isinstance(found, keras.Model) else gradients.layer_shape(model, found, image_shape)
    if shape is None or len(shape) != 4:
        shape = shape or "unknown"
        raise ValueError(
            f"Layer {found.name!r} ({type(found).__name__}, output shape {shape}) has no filters: "
            "filter patterns need a layer whose output is image-shaped (n, h, w, channels), "
            "such as a convolution, its batch normalisation or its ReLU."
        )
    channels = int(shape[-1])
    if not preactivation:
        return found, None, channels
    if isinstance(found, keras.layers.ReLU):
        feeding = _producer(model, found)
        if feeding is not None:
            return feeding, None, channels
    return found, found if getattr(found, "activation", None) is not None else None, channels


def _filter_objective(model, record, linear):
    """``objective(images (b,S,S,3), channels (b,)) -> (b,)``: each image's mean activation of
    its own channel of ``record``, leaving out a border where the map is large enough."""

    def objective(images, channels):
        with gradients.recording([record]) as records:
            if linear is not None:
                with gradients.linear_activation(linear):
                    model(images, training=False)
            else:
                model(images, training=False)
        maps = gradients.single_output(records[0], record)
        index = ops.reshape(ops.cast(channels, "int32"), (-1, 1, 1, 1))
        picked = ops.take_along_axis(maps, index, axis=3)[..., 0]  # (b, h, w)
        if min(picked.shape[1], picked.shape[2]) >= 4 * _BORDER:
            picked = picked[:, _BORDER:-_BORDER, _BORDER:-_BORDER]
        return ops.mean(picked, axis=(1, 2))

    return objective


def _class_objective(model, found):
    """``objective(images, classes (b,)) -> (b,)``: each image's logit of its own class
    (``found``: the ``gradients.Head`` scored; a binary head's class 0 is minus its logit)."""

    def objective(images, classes):
        scores = gradients.class_scores(model, images, "logits", found)
        return gradients.select(scores, classes)

    return objective
