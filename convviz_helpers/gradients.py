"""The one module that knows how TensorFlow computes gradients; every method builds on it.

The central call is ``probe``: for a model, some of its layers and one class per image, it
returns the model's scores, the layers' activations and the gradients of the chosen scores
with respect to those activations (and optionally the input), in one batched, compiled call.

How: while a ``tf.function`` traces the model, small context managers patch layer instances
(record a layer's output, swap a ReLU's gradient, drop a final softmax) and put them back when
tracing ends. The traced graph keeps the model's own variables, so later weight changes (more
training, a randomisation test) are seen without retracing, and nested models (a pretrained
base inside a Sequential) need no graph surgery. Everything TensorFlow-specific stays here, so
another backend can be added by rewriting this file alone.
"""

import contextlib
import weakref
from dataclasses import dataclass

import numpy as np

from . import inputs
from ._tf import keras, tf
from .models import iter_layers

SCORES = ("logits", "probabilities", "outputs")
RELU_RULES = ("plain", "guided", "deconvnet")
_RELUS = {keras.activations.relu, keras.activations.relu6}


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
def recording(layers):
    """While active, each call of a layer in ``layers`` appends its output to that layer's list.

    Yields one list per layer. Use inside a traced function: the lists hold graph tensors.
    """
    records = [[] for _ in layers]
    with contextlib.ExitStack() as stack:
        for layer, record in zip(layers, records):
            call = layer.call

            def hooked(*args, _call=call, _record=record, **kwargs):
                output = _call(*args, **kwargs)
                _record.append(output)
                return output

            stack.enter_context(_patched(layer, "call", hooked))
        yield records


def _relu_with_rule(rule, max_value=None):
    """A ReLU (optionally capped, as ReLU6) whose backward pass follows ``rule``.

    guided (Springenberg et al.): pass gradient where the input was positive AND the gradient
    is positive. deconvnet (Zeiler & Fergus): pass only the positive gradient, whatever the input.
    """

    @tf.custom_gradient
    def relu(x):
        y = tf.nn.relu(x) if max_value is None else tf.clip_by_value(x, 0.0, max_value)

        def backward(dy):
            if rule == "deconvnet":
                return tf.nn.relu(dy)
            opened = x > 0 if max_value is None else (x > 0) & (x < max_value)
            return dy * tf.cast(opened & (dy > 0), dy.dtype)

        return y, backward

    return relu


@contextlib.contextmanager
def relu_rule(model, rule):
    """Swap every ReLU of ``model`` (fused in conv/dense layers, ``Activation`` and ``ReLU``
    layers, ReLU6) for one whose gradient follows ``rule``; other activations stay as they are,
    so linear convolutions (ResNets) stay linear."""
    if rule not in RELU_RULES:
        raise ValueError(f"Unknown ReLU rule {rule!r}; valid rules are {', '.join(RELU_RULES)}.")
    with contextlib.ExitStack() as stack:
        if rule != "plain":
            for _, layer in iter_layers(model):
                activation = getattr(layer, "activation", None)
                if activation in _RELUS:
                    cap = 6.0 if activation is keras.activations.relu6 else None
                    stack.enter_context(_patched(layer, "activation", _relu_with_rule(rule, cap)))
                elif isinstance(layer, keras.layers.ReLU):
                    cap = None if layer.max_value is None else float(layer.max_value)
                    swapped = _relu_with_rule(rule, cap)
                    stack.enter_context(_patched(layer, "call", lambda x, _f=swapped, **_: _f(x)))
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


def final_activation(model):
    """``(layer, name)`` of the squashing at the end of ``model`` ("softmax"/"sigmoid"), or
    ``(None, None)`` if the model already outputs logits."""
    layer = model.layers[-1]
    while isinstance(layer, keras.Model):
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return layer, "softmax"
    name = getattr(getattr(layer, "activation", None), "__name__", "")
    return (layer, name) if name in ("softmax", "sigmoid") else (None, None)


def num_classes(model):
    """Number of classes a single-output classifier scores (the size of its last axis)."""
    shape = model.output_shape
    if isinstance(shape, list) or len(shape) != 2:
        raise ValueError(f"Model {model.name!r} has output shape {shape}; expected one (n, classes) output.")
    return int(shape[-1])


def _scores(model, scores):
    """Context for the forward pass and a function turning outputs into the requested scores."""
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")
    layer, kind = final_activation(model)
    if scores == "logits" and layer is not None:
        return lambda: linear_activation(layer), lambda y: y
    if scores == "probabilities" and kind is None:
        return contextlib.nullcontext, tf.nn.softmax
    return contextlib.nullcontext, lambda y: y


def single_output(record, layer):
    """The one tensor ``recording`` saw ``layer`` produce; ValueError if it ran zero or 2+ times."""
    if len(record) != 1:
        why = "is not used on the way from the input to the output" if not record else f"is called {len(record)} times"
        raise ValueError(f"Layer {layer.name!r} {why}; pick a layer that runs exactly once.")
    return record[0]


_compiled = weakref.WeakKeyDictionary()


def compiled_for(model, key, build):
    """The compiled function cached for ``model`` under ``key``, built by ``build()`` the first time.

    Held weakly by model, so a second call with the same settings neither rebuilds nor retraces.
    """
    per_model = _compiled.setdefault(model, {})
    if key not in per_model:
        per_model[key] = build()
    return per_model[key]


def image_signature(model, *extra):
    """A ``tf.function`` input signature: an image batch of any size for ``model``, then ``extra``."""
    return [tf.TensorSpec((None, *inputs.model_input_shape(model)), tf.float32), *extra]


@dataclass
class Probe:
    """What ``probe`` returns; arrays are numpy, first axis the batch.

    ``scores`` (n, K) the model's class scores (logits unless asked otherwise);
    ``classes`` (n,) the class whose score was differentiated; ``activations`` and
    ``gradients``: one (n, h, w, c) array per requested layer; ``input_gradient`` (n, H, W, C)
    or None.
    """

    scores: np.ndarray
    classes: np.ndarray
    activations: list
    gradients: list
    input_gradient: np.ndarray = None


def probe(model, images, classes=None, layers=(), *, scores="logits", relu="plain",
          input_gradient=False, batch_size=32):
    """Activations of ``layers`` and gradients of the chosen class scores, for a whole batch.

    ``images``: (n, H, W, C) in [0, 1]. ``classes``: None (top-1), an int, or one int per image.
    ``layers``: layer names or objects (searched through nested models). ``scores``: "logits"
    (the pre-softmax values when the model ends in softmax; the Grad-CAM paper's choice),
    "probabilities" or "outputs" (as the model returns them). ``relu``: "plain", "guided" or
    "deconvnet" backward rule for every ReLU. Compiled once per model and settings; runs in
    chunks of ``batch_size`` images. Returns a ``Probe``.
    """
    from .models import find_layer

    images = inputs.image_batch(images, model)
    wanted = inputs.class_indices(classes, len(images), num_classes(model))
    layers = [find_layer(model, layer) for layer in layers]
    key = ("probe", tuple(id(layer) for layer in layers), scores, relu, input_gradient)
    run = compiled_for(model, key, lambda: _build_probe(model, layers, scores, relu, input_gradient))
    parts = [run(tf.constant(images[i:i + batch_size]), tf.constant(wanted[i:i + batch_size]))
             for i in range(0, len(images), batch_size)]
    joined = [np.concatenate([np.asarray(part[k]) for part in parts]) for k in range(len(parts[0]))]
    count = len(layers)
    return Probe(
        scores=joined[0],
        classes=joined[1],
        activations=joined[2:2 + count],
        gradients=joined[2 + count:2 + 2 * count],
        input_gradient=joined[2 + 2 * count] if input_gradient else None,
    )


def _build_probe(model, layers, scores, relu, input_gradient):
    forward_context, to_scores = _scores(model, scores)

    @tf.function(input_signature=image_signature(model, tf.TensorSpec((None,), tf.int32)))
    def run(images, wanted):
        with relu_rule(model, relu), forward_context(), recording(layers) as records:
            with tf.GradientTape() as tape:
                tape.watch(images)
                outputs = to_scores(model(images, training=False))
                top = tf.argmax(outputs, axis=-1, output_type=tf.int32)
                chosen = tf.where(wanted < 0, top, wanted)
                # Images never interact (training=False), so the gradient of the batch sum is
                # each image's own gradient.
                score = tf.gather(outputs, chosen, batch_dims=1)
        activations = [single_output(record, layer) for record, layer in zip(records, layers)]
        targets = activations + ([images] if input_gradient else [])
        grads = tape.gradient(score, targets, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [outputs, chosen, *activations, *grads]

    return run


def layer_outputs(model, images, layers, batch_size=32):
    """The outputs of ``layers`` for ``images`` from one forward pass per chunk.

    ``images``: (n, H, W, C) in [0, 1]; ``layers``: layer objects of ``model`` (nested models
    included). Returns a list of numpy arrays, one per layer, batch first.
    """
    images = inputs.image_batch(images, model)
    key = ("outputs", tuple(id(layer) for layer in layers))

    def build():
        @tf.function(input_signature=image_signature(model))
        def run(batch):
            with recording(layers) as records:
                model(batch, training=False)
            return [single_output(record, layer) for record, layer in zip(records, layers)]

        return run

    run = compiled_for(model, key, build)
    parts = [run(tf.constant(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
    return [np.concatenate([np.asarray(part[k]) for part in parts]) for k in range(len(layers))]


def predict(model, images, scores="probabilities", batch_size=64):
    """Class scores (n, K) for already-validated ``images``, compiled and chunked.

    ``scores`` as in ``probe``. Used by methods that score many perturbed copies of an image
    (Score-CAM, deletion curves), which is why it skips the input checks.
    """
    images = np.asarray(images, dtype=np.float32)
    forward_context, to_scores = _scores(model, scores)

    def build():
        @tf.function(input_signature=image_signature(model))
        def run(batch):
            with forward_context():
                return to_scores(model(batch, training=False))

        return run

    run = compiled_for(model, ("predict", scores), build)
    return np.concatenate([np.asarray(run(tf.constant(images[i:i + batch_size])))
                           for i in range(0, len(images), batch_size)])


def value_and_gradient(objective, input_signature=None):
    """Compile ``objective(x, *args) -> (n,) values`` into ``f(x, *args) -> (values, d values/dx)``.

    The gradient is taken per image (images in a batch must not interact). ``objective`` may use
    ``recording`` and ``linear_activation`` on a model: they take effect while it is traced.
    """

    def run(x, *args):
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = objective(x, *args)
        return values, tape.gradient(values, x)

    return tf.function(run, input_signature=input_signature, reduce_retracing=input_signature is None)
