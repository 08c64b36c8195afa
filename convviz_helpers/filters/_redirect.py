"""Lucid's redirected ReLU: for the first steps of an ascent, a closed ReLU (or ReLU6) still
passes the gradient that would open it, so a channel behind a dead ReLU can start to move.

Backward rule, per image and per ReLU layer: where the plain ReLU's gradient for that image is
non-zero anywhere, it is used unchanged; where it is zero everywhere (every unit the objective
reaches is closed), the gradient passes through every unit whose change in the gradient's
direction would open it (below zero and asked to rise, above the cap and asked to fall) and
through the open units. Forward values are the ReLU's own. This is Olah et al.'s rule (Lucid's
``redirected_relu_grad`` / ``redirected_relu6_grad``), written with ``keras.ops.custom_gradient``
so it runs on every Keras backend.
"""

import contextlib

from .. import models
from .._tf import keras

ops = keras.ops


def redirected_relu(max_value=None):
    """``f(x)``: ``relu(x)`` (``clip(x, 0, max_value)`` with a cap) forward, the redirected
    gradient backward. ``x``: a batch, first axis the images; any rank >= 2."""

    @ops.custom_gradient
    def relu(x):
        y = ops.relu(x) if max_value is None else ops.clip(x, 0.0, max_value)

        def backward(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            below = ops.less(x, 0.0)
            opened = ops.logical_not(below)
            opening = ops.logical_and(below, ops.greater(dy, 0.0))
            if max_value is not None:
                above = ops.greater(x, max_value)
                opened = ops.logical_and(opened, ops.logical_not(above))
                opening = ops.logical_or(opening, ops.logical_and(above, ops.less(dy, 0.0)))
            plain = dy * ops.cast(opened, dy.dtype)
            redirected = dy * ops.cast(ops.logical_or(opened, opening), dy.dtype)
            axes = tuple(range(1, len(x.shape)))
            alive = ops.greater(ops.sum(ops.square(plain), axis=axes, keepdims=True), 0.0)
            return ops.where(alive, plain, redirected)

        return y, backward

    return relu


def _cap(layer):
    """The ReLU cap of a standalone ReLU/Activation layer or fused activation: None (plain ReLU),
    6.0 (ReLU6), or False when the layer is no ReLU."""
    if isinstance(layer, keras.layers.ReLU):
        if float(layer.negative_slope or 0.0) or float(layer.threshold or 0.0):
            return False
        return None if layer.max_value is None else float(layer.max_value)
    name = getattr(getattr(layer, "activation", None), "__name__", None)
    return {"relu": None, "relu6": 6.0}.get(name, False)


@contextlib.contextmanager
def redirecting(model):
    """While active (while a function is traced), every ReLU and ReLU6 of ``model`` (standalone
    ``ReLU``/``Activation`` layers and activations fused into conv layers) uses
    ``redirected_relu``. Yields the number of ReLUs swapped."""
    patched = []
    try:
        for _, layer in models.iter_layers(model):
            cap = _cap(layer)
            if cap is False:
                continue
            relu = redirected_relu(cap)
            if isinstance(layer, keras.layers.ReLU):
                attr, value = "call", (lambda x, *_, _f=relu, **__: _f(x))
            else:
                attr, value = "activation", relu
            patched.append((layer, attr, attr in vars(layer), vars(layer).get(attr)))
            setattr(layer, attr, value)
        yield len(patched)
    finally:
        for layer, attr, had, old in reversed(patched):
            if had:
                setattr(layer, attr, old)
            else:
                delattr(layer, attr)
