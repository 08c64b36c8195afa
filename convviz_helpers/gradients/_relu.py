"""Recording layer outputs and swapping ReLU rules while a model is traced.

Small context managers patch layer instances (record a layer's output, swap a ReLU's gradient,
run a layer without its activation) and put them back when tracing ends; everything they do is
``keras.ops``, so it works on every backend and nested models need no graph surgery.
"""

import contextlib
import warnings

from .._tf import keras
from ..layers import iter_layers

ops = keras.ops

RELU_RULES = ("plain", "guided", "deconvnet")


# Activation functions recognised by name, whichever library they come from (keras.activations,
# keras.ops, tf.nn, jax.nn) -> the cap of that ReLU.
_RELU_CAPS = {"relu": None, "relu6": 6.0}


@contextlib.contextmanager
def _patched(obj, attr, value):
    had_own = attr in vars(obj)
    old = vars(obj).get(attr)
    setattr(obj, attr, value)
    try:
        yield
    finally:
        if had_own:
            setattr(obj, attr, old)
        else:
            delattr(obj, attr)


@contextlib.contextmanager
def recording(layers, order=None, taps=None):
    """While active, each call of a layer in ``layers`` appends its output to that layer's list.

    Yields one list per layer. Use inside a traced function: the lists hold graph tensors.
    ``order``: a list that also receives ``(layer, output)`` for every call, in call order.
    ``taps``: None, or one tensor per layer added to its output (zeros: the output is unchanged,
    and a gradient with respect to the tap is one with respect to the output; see ``_backends.jax``).
    """
    records = [[] for _ in layers]
    with contextlib.ExitStack() as stack:
        for index, (layer, record) in enumerate(zip(layers, records)):
            call = layer.call
            tap = None if taps is None else taps[index]

            def hooked(*args, _call=call, _record=record, _layer=layer, _tap=tap, **kwargs):
                output = _call(*args, **kwargs)
                if _tap is not None:
                    output = output + _tap
                _record.append(output)
                if order is not None:
                    order.append((_layer, output))
                return output

            stack.enter_context(_patched(layer, "call", hooked))
        yield records


def _relu_with_rule(rule, max_value=None, threshold=0.0):
    """A ReLU (optionally capped, as ReLU6, and with a ``threshold`` below which it outputs 0,
    as ``keras.layers.ReLU(threshold=...)``) whose backward pass follows ``rule``; its forward
    values are the original ReLU's.

    guided (Springenberg et al.): pass gradient where the ReLU was open (input above the
    threshold, below the cap) AND the gradient is positive. deconvnet (Zeiler & Fergus): pass
    only the positive gradient, whatever the input.
    """
    threshold = float(threshold)  # >= 0: keras.layers.ReLU refuses a negative one

    @ops.custom_gradient
    def relu(x):
        y = ops.relu(x) if not threshold else ops.where(ops.greater_equal(x, threshold), x, ops.zeros_like(x))
        if max_value is not None:
            y = ops.minimum(y, max_value) if threshold else ops.clip(x, 0.0, max_value)

        def backward(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            if rule == "deconvnet":
                return ops.relu(dy)
            # Open where the input lay above the threshold and below the cap, read from the
            # output (the same positions, since the threshold is >= 0): the backward pass then
            # keeps only y alive, not x too, and one select against a scalar zero (a zeros_like
            # tensor would be one more pass over memory) does the masking. On TensorFlow this
            # brings guided backpropagation on Lite0 from about 1.17x the plain gradient's cost
            # (the input-and-multiply form, or a zeros_like select) to about 1.02x.
            opened = ops.greater(y, threshold)
            if max_value is not None:
                opened = ops.logical_and(opened, ops.less(y, max_value))
            return ops.where(opened, ops.relu(dy), 0.0)

        return y, backward

    return relu


def _activation_name(activation):
    name = getattr(activation, "__name__", None) or getattr(activation, "name", None)
    return name if isinstance(name, str) else None


def _refuse_leaky(layer, what, rule):
    raise ValueError(
        f"Layer {layer.name!r} uses {what}: it passes values below zero, and the {rule!r} ReLU rule "
        "is defined for ReLUs that pass nothing there, so applying it would change the model's "
        f"scores. Use relu='plain' (e.g. cam.saliency) for this model, or explain a model with plain ReLUs."
    )


@contextlib.contextmanager
def relu_rule(model, rule):
    """Swap every ReLU of ``model`` (fused in conv/dense layers, ``Activation`` and ``ReLU``
    layers, ReLU6, a ``ReLU(threshold=...)``; an activation function recognised by its name,
    ``relu`` or ``relu6``, whether from Keras, ``tf.nn`` or ``jax.nn``) for one whose gradient
    follows ``rule``, with the same forward values. Other activations stay as they are, so
    linear convolutions (ResNets) stay linear. A non-plain rule raises ValueError for a leaky
    ReLU (``ReLU(negative_slope=...)``, ``leaky_relu``; it would change the scores) and warns
    when the model has no ReLU to swap (its gradients are then the plain ones)."""
    if rule not in RELU_RULES:
        raise ValueError(f"Unknown ReLU rule {rule!r}; valid rules are {', '.join(RELU_RULES)}.")
    with contextlib.ExitStack() as stack:
        if rule != "plain":
            swapped = 0
            for _, layer in iter_layers(model):
                name = _activation_name(getattr(layer, "activation", None))
                if name in _RELU_CAPS:
                    cap = _RELU_CAPS[name]
                    stack.enter_context(_patched(layer, "activation", _relu_with_rule(rule, cap)))
                    swapped += 1
                elif name == "leaky_relu":
                    _refuse_leaky(layer, "a leaky ReLU activation", rule)
                elif isinstance(layer, keras.layers.ReLU):
                    if float(layer.negative_slope or 0.0):
                        _refuse_leaky(layer, f"ReLU(negative_slope={float(layer.negative_slope):g})", rule)
                    cap = None if layer.max_value is None else float(layer.max_value)
                    replaced = _relu_with_rule(rule, cap, float(layer.threshold or 0.0))
                    stack.enter_context(_patched(layer, "call", lambda x, _f=replaced, **_: _f(x)))
                    swapped += 1
                elif isinstance(layer, keras.layers.LeakyReLU):
                    _refuse_leaky(layer, "LeakyReLU", rule)
            if not swapped:
                warnings.warn(
                    f"relu={rule!r}: model {model.name!r} has no ReLU to swap, so its {rule} gradients are "
                    "the plain ones.", stacklevel=3)
        yield


@contextlib.contextmanager
def linear_activation(layer):
    """Run ``layer`` without its activation (a conv's pre-activation, a Dense's logits)."""
    if isinstance(layer, keras.layers.Softmax):
        with _patched(layer, "call", lambda x, *args, **kwargs: x):
            yield
    elif getattr(layer, "activation", None) is not None:
        with _patched(layer, "activation", keras.activations.linear):
            yield
    else:
        yield

