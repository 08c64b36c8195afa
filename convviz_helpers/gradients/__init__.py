"""The gradient core: the one place that knows how the Keras backend computes gradients.

The central call is ``probe``: for a model, some of its layers and one class per image, it
returns the model's scores, the layers' activations and the gradients of the chosen scores
with respect to those activations (and optionally the input), in one batched, compiled call.

How: while the backend traces the model, small context managers patch layer instances
(record a layer's output, swap a ReLU's gradient, drop a final softmax) and put them back when
tracing ends; everything they do is ``keras.ops``, so it works on every backend. Nested models
(a pretrained base inside a Sequential) need no graph surgery.

The backend seam: what differs between Keras backends is how a function is compiled and how a
gradient is taken, and that lives in one short module per backend (``_tensorflow``: tf.function
and GradientTape; ``_jax``: jax.jit with the model's variables passed as arguments, and
gradients through zero-valued "taps" added to recorded outputs, since JAX cannot differentiate
with respect to an intermediate value; ``_torch``: plain eager calls and torch.autograd.grad).
Each compiled function sees the model's current
weights, so later weight changes (more training, a randomisation test) count without
recompiling. ``BACKEND`` names the one this process uses (``KERAS_BACKEND``, chosen before
Keras is imported). No other module of the package imports a backend for the methods.

Models as readers build them: ``head`` says which output is explained (``output=`` picks one of
a multi-output model) and turns a single sigmoid unit into two classes (``class_scores``); a
subclassed model, which has no graph to read, is traced once for its shapes (``trace``). The
per-model caches hold models weakly and reach them only through weak proxies, so a model that
the reader deletes is freed with everything compiled for it.
"""

import contextlib
import importlib
import warnings
import weakref
from dataclasses import dataclass

import numpy as np

from .. import inputs
from .._tf import BACKEND, keras
from ..models import iter_layers

ops = keras.ops
BACKENDS = {"tensorflow": "_tensorflow", "jax": "_jax", "torch": "_torch"}
if BACKEND not in BACKENDS:
    raise ImportError(
        f"convviz_helpers explains models on the Keras backends {', '.join(BACKENDS)}; this process "
        f"uses {BACKEND!r}. Set KERAS_BACKEND=tensorflow, jax or torch before importing Keras."
    )
backend = importlib.import_module(f".{BACKENDS[BACKEND]}", __name__)

SCORES = ("logits", "probabilities", "outputs")
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
    and a gradient with respect to the tap is one with respect to the output; see ``_jax``).
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
    threshold = float(threshold)

    @ops.custom_gradient
    def relu(x):
        y = ops.relu(x) if not threshold else ops.where(ops.greater_equal(x, threshold), x, ops.zeros_like(x))
        if max_value is not None:
            y = ops.minimum(y, max_value) if threshold else ops.clip(x, 0.0, max_value)

        def backward(*args, upstream=None):
            dy = args[0] if upstream is None else upstream
            if rule == "deconvnet":
                return ops.relu(dy)
            opened = ops.greater(x, threshold)
            if max_value is not None:
                opened = ops.logical_and(opened, ops.less(x, max_value))
            return dy * ops.cast(ops.logical_and(opened, ops.greater(dy, 0.0)), dy.dtype)

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


def graph_outputs(model):
    """``model.output`` (a tensor, list or dict of symbolic tensors), or None for a model without
    a graph (a subclassed model, a Sequential never built on an ``Input``)."""
    try:
        return model.output
    except (AttributeError, ValueError):
        pass
    # A Sequential built on an Input has `outputs` (a flat list) but no `output`.
    outputs = getattr(model, "outputs", None)
    if not outputs:
        return None
    return outputs[0] if len(outputs) == 1 else list(outputs)


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


def _output_keys(structure):
    """The keys ``output=`` may use: list positions, or a dict's keys in order."""
    if isinstance(structure, dict):
        return list(structure)
    if isinstance(structure, (list, tuple)):
        return list(range(len(structure)))
    return [None]


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


def _pick(result, key):
    """The chosen output of a model's return value (a tensor, list or dict)."""
    if not isinstance(result, (list, tuple, dict)):
        return result  # one tensor (Keras may unwrap a model built with a one-element list)
    if key is None:
        return result[0] if isinstance(result, (list, tuple)) else result
    return result[key]


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


# --- per-model caches --------------------------------------------------------------------------
# Both are keyed weakly by the model, and their values never refer to the model (compiled
# functions reach it through a weak proxy, traces keep only shapes and layer ids): otherwise a
# value would keep its own key alive and no model would ever be freed.
_compiled = weakref.WeakKeyDictionary()
_traces = weakref.WeakKeyDictionary()


def compiled_for(model, key, build):
    """The compiled function cached for ``model`` under ``key``, built by ``build(model)``.

    ``build`` receives a weak proxy of ``model`` and must reach the model only through it, so
    the cache never keeps a model alive (``del model`` frees it and its compiled functions).
    A second call with the same settings neither rebuilds nor retraces. For a model without a
    graph (subclassed), the function is traced at once and a failure to trace becomes a
    ValueError naming the functional API.
    """
    per_model = _compiled.setdefault(model, {})
    if key not in per_model:
        built = build(weakref.proxy(model))
        if graph_outputs(model) is None and hasattr(built, "trace"):
            with _traceable(model):
                built.trace()
        per_model[key] = built
    return per_model[key]


def compile(model, fn, specs):
    """``fn(*args)`` compiled by the backend for ``model`` (a weak proxy is enough): ``specs``
    gives (shape, dtype) per argument, None for a size that may vary (the batch). ``fn`` may
    call the model and use ``recording``, ``relu_rule``, ``linear_activation`` and
    ``value_and_gradient``; the compiled function takes and returns arrays (numpy in, backend
    arrays out: ``np.asarray`` them) and always sees the model's current weights."""
    return backend.Compiled(model, fn, specs)


@contextlib.contextmanager
def _traceable(model):
    """Turn a failure to trace a subclassed model into a ValueError that says what to do."""
    try:
        yield
    except ValueError as error:
        if "functional API" in str(error):
            raise
        raise _untraceable(model, error) from error
    except backend.TRACE_ERRORS as error:
        raise _untraceable(model, error) from error


def _untraceable(model, error):
    # TensorFlow's own message ends with the actual cause, after a traceback of user code.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = lines[-1] if lines else type(error).__name__
    return ValueError(
        f"Model {model.name!r} ({type(model).__name__}, a subclassed keras.Model) could not be traced "
        f"by {backend.NAME} ({type(error).__name__}: {cause}). "
        f"convviz explains a subclassed model only where {backend.NAME} can trace its call(), at the "
        "image size it was built for (for patterns, pass that size as image_size=). Build the "
        "same network with the functional API instead: inputs = keras.Input((H, W, C)); x = layer(inputs) "
        "... ; model = keras.Model(inputs, outputs), then load the trained weights into it."
    )


def signature_shape(model, image_shape=None):
    """(H, W, C) for the traced signature: the model's own input shape where it fixes one, the
    images' shape where it does not (a subclassed model)."""
    fixed = inputs.model_input_shape(model)
    if image_shape is None:
        return fixed
    if graph_outputs(model) is not None:
        return fixed
    return tuple(int(v) for v in image_shape)


def image_spec(model, image_shape=None):
    """``(shape, dtype)`` of an image batch of any size for ``model``, for ``compile``.

    ``image_shape`` (H, W, C) fills in what the model does not fix (a subclassed model)."""
    return (None, *signature_shape(model, image_shape)), "float32"


@dataclass(frozen=True)
class _Trace:
    """What one trace of a graph-less model showed: plain data only (no tensors, no layers)."""

    outputs: tuple  # ((key, shape), ...) of the model's return value; key None for one tensor
    shapes: dict  # id(layer) -> output shape, for layers called exactly once
    order: tuple  # ids of layers in the order they were first called
    final: dict  # output key -> id of the last layer called whose output is that output


def trace(model, image_shape):
    """Trace a graph-less (subclassed) ``model`` once at ``image_shape`` (H, W, C) and return a
    ``_Trace`` of its outputs' and layers' shapes; cached per model and shape.

    Raises ValueError naming the functional API when TensorFlow cannot trace the model.
    """
    if image_shape is None or None in tuple(image_shape):
        raise ValueError(
            f"Model {model.name!r} ({type(model).__name__}) has no input shape of its own (a subclassed "
            "keras.Model): call it with images (for patterns, pass image_size=), or build it with the "
            "functional API, keras.Model(keras.Input((H, W, C)), outputs)."
        )
    image_shape = tuple(int(v) for v in image_shape)
    per_model = _traces.setdefault(model, {})
    if image_shape in per_model:
        return per_model[image_shape]
    layers = [layer for _, layer in iter_layers(model) if not isinstance(layer, keras.Model)]
    calls = []
    seen = {}

    def forward(images):
        with recording(layers, order=calls) as records:
            result = model(images, training=False)
        seen["records"], seen["result"] = records, result
        return result

    with _traceable(model):
        backend.run_symbolically(forward, (None, *image_shape))
    result, records = seen["result"], seen["records"]
    keys = _output_keys(result)
    outputs = tuple((key, _batchless(_pick(result, key).shape)) for key in keys)
    shapes = {id(layer): _batchless(record[0].shape) for layer, record in zip(layers, records)
              if len(record) == 1 and hasattr(record[0], "shape")}
    order = tuple(dict.fromkeys(id(layer) for layer, _ in calls))
    final = {}
    for key in keys:
        tensor = _pick(result, key)
        for layer, output in reversed(calls):
            if output is tensor:
                final[key] = id(layer)
                break
    found = _Trace(outputs, shapes, order, final)
    per_model[image_shape] = found
    return found


def _batchless(shape):
    """A traced shape with its batch axis unknown (None), whatever size the backend traced."""
    shape = tuple(shape)
    return shape if not shape else (None, *shape[1:])


def _traced_head(model, output, image_shape):
    traced = trace(model, image_shape)
    keys = [key for key, _ in traced.outputs]
    key = _resolve_output(model, keys, output)
    shape = dict(traced.outputs)[key]
    _check_rank(model, shape)
    by_id = {id(layer): layer for _, layer in iter_layers(model)}
    final, kind = _squashing(by_id.get(traced.final.get(key)))
    return Head(key, int(shape[-1]), final, kind)


def layer_shape(model, layer, image_shape=None):
    """Output shape of ``layer`` (batch axis included), from the graph where the model has one,
    else from a trace at ``image_shape``; None when the layer has no single output."""
    from ..models import output_rank

    if output_rank(layer) is not None:
        return tuple(layer.output.shape)
    if graph_outputs(model) is not None or image_shape is None:
        return None
    return trace(model, image_shape).shapes.get(id(layer))


def called_layers(model, image_shape):
    """The layers of a graph-less model in the order its ``call`` ran them (traced once)."""
    traced = trace(model, image_shape)
    by_id = {id(layer): layer for _, layer in iter_layers(model)}
    return [by_id[i] for i in traced.order if i in by_id]


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
          input_gradient=False, batch_size=32, output=None):
    """Activations of ``layers`` and gradients of the chosen class scores, for a whole batch.

    ``images``: (n, H, W, C) in the model's input range (``input_range``; [0, 1] for the book's
    models). ``classes``: None (top-1), an int, or one int per image. ``layers``: layer names or
    objects (searched through nested models). ``scores``: "logits" (the pre-softmax values when
    the model ends in softmax; the Grad-CAM paper's choice), "probabilities" or "outputs" (as
    the model returns them); a single sigmoid unit counts as two classes (see
    ``class_scores``). ``relu``: "plain", "guided" or "deconvnet" backward rule for every ReLU.
    ``output``: which output of a multi-output model (index or name). Compiled once per model
    and settings; runs in chunks of ``batch_size`` images. Returns a ``Probe``; its
    ``input_gradient`` is per unit of the model's input range.
    """
    from ..models import find_layer

    images = inputs.image_batch(images, model)
    shape = images.shape[1:]
    found = head(model, output, shape)
    wanted = np.asarray(inputs.class_indices(classes, len(images), found.classes), np.int32)
    layers = [find_layer(model, layer) for layer in layers]
    key = ("probe", tuple(id(layer) for layer in layers), scores, relu, input_gradient, output,
           signature_shape(model, shape))
    run = compiled_for(model, key, lambda proxy: _build_probe(proxy, layers, scores, relu, input_gradient,
                                                              found, shape))
    parts = [run(images[i:i + batch_size], wanted[i:i + batch_size]) for i in _chunks(len(images), batch_size)]
    joined = _joined(parts)
    count = len(layers)
    return Probe(
        scores=joined[0],
        classes=joined[1],
        activations=joined[2:2 + count],
        gradients=joined[2 + count:2 + 2 * count],
        input_gradient=joined[2 + 2 * count] if input_gradient else None,
    )


def _chunks(count, batch_size):
    """Start indices of the chunks of ``batch_size`` items that cover ``count`` items."""
    return range(0, count, max(1, int(batch_size)))


def _joined(parts):
    """Per output position, the chunks' arrays joined along the batch axis (numpy)."""
    return [np.concatenate([np.asarray(part[k]) for part in parts]) for k in range(len(parts[0]))]


def select(values, indices):
    """``values[i, indices[i]]`` for every row i: (n, K) and (n,) ints give (n,)."""
    return ops.take_along_axis(values, ops.expand_dims(ops.cast(indices, "int32"), -1), axis=-1)[:, 0]


def _build_probe(model, layers, scores, relu, input_gradient, found, shape):
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")
    if relu not in RELU_RULES:
        raise ValueError(f"Unknown ReLU rule {relu!r}; valid rules are {', '.join(RELU_RULES)}.")
    # Layers are held weakly too: a nested model given as a layer would otherwise keep itself
    # alive through this closure.
    layer_refs = [weakref.ref(layer) for layer in layers]

    def run(images, wanted):
        layers = [ref() for ref in layer_refs]

        def forward(images, taps):
            with relu_rule(model, relu), recording(layers, taps=taps) as records:
                outputs = class_scores(model, images, scores, found)
            top = ops.cast(ops.argmax(outputs, axis=-1), "int32")
            chosen = ops.where(wanted < 0, top, wanted)
            # Images never interact (training=False), so the gradient of the batch sum is
            # each image's own gradient.
            score = ops.sum(select(outputs, chosen))
            activations = [single_output(record, layer) for record, layer in zip(records, layers)]
            return score, (outputs, chosen), activations

        (outputs, chosen), activations, grads, input_grad = backend.gradients(forward, images, input_gradient)
        return [outputs, chosen, *activations, *grads, *([input_grad] if input_gradient else [])]

    return compile(model, run, [image_spec(model, shape), ((None,), "int32")])


def layer_outputs(model, images, layers, batch_size=32, linear=None):
    """The outputs of ``layers`` for ``images`` from one forward pass per chunk.

    ``images``: (n, H, W, C) in the model's input range; ``layers``: layer objects of ``model``
    (nested models included); ``linear``: None, or a layer run without its activation
    (``linear_activation``: a conv's pre-activation). Returns a list of numpy arrays, one per
    layer, batch first.
    """
    images = inputs.image_batch(images, model)
    shape = images.shape[1:]
    key = ("outputs", tuple(id(layer) for layer in layers), id(linear), signature_shape(model, shape))
    layer_refs = [weakref.ref(layer) for layer in layers]
    linear_ref = None if linear is None else weakref.ref(linear)

    def build(model):
        def run(batch):
            chosen = [ref() for ref in layer_refs]
            unfused = linear_activation(linear_ref()) if linear_ref is not None else contextlib.nullcontext()
            with recording(chosen) as records, unfused:
                model(batch, training=False)
            return [single_output(record, layer) for record, layer in zip(records, chosen)]

        return compile(model, run, [image_spec(model, shape)])

    run = compiled_for(model, key, build)
    parts = [run(images[i:i + batch_size]) for i in _chunks(len(images), batch_size)]
    return _joined(parts)


def predict(model, images, scores="probabilities", batch_size=64, output=None):
    """Class scores (n, K) for already-validated ``images``, compiled and chunked.

    ``scores`` and ``output`` as in ``probe``; a single sigmoid unit gives two columns
    (1 - p, p). Used by methods that score many perturbed copies of an image (Score-CAM,
    deletion curves), which is why it skips the input checks.
    """
    images = np.asarray(images, dtype=np.float32)
    shape = images.shape[1:]
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")

    found = head(model, output, shape)

    def build(model):
        return compile(model, lambda batch: class_scores(model, batch, scores, found), [image_spec(model, shape)])

    run = compiled_for(model, ("predict", scores, output, signature_shape(model, shape)), build)
    return np.concatenate([np.asarray(run(images[i:i + batch_size])) for i in _chunks(len(images), batch_size)])


def resolve_classes(model, images, classes=None, output=None, batch_size=64):
    """The classes to explain for validated ``images``: ``classes`` None (each image's top-1
    class of the model's outputs), an int, or one int per image, as an int32 array (n,).
    The one place outside a compiled probe where "None means top-1" is decided."""
    wanted = inputs.class_indices(classes, len(images), num_classes(model, output, images.shape[1:]))
    if (wanted >= 0).all():
        return wanted
    return inputs.top_classes(wanted, predict(model, images, "outputs", batch_size, output=output))


def value_and_gradient(objective):
    """``objective(x, *args) -> (n,) values`` as ``f(x, *args) -> (values, d values/dx)``, for
    use inside a function given to ``compile``.

    The gradient is taken per image (images in a batch must not interact). ``objective`` may use
    ``recording`` and ``linear_activation`` on a model: they take effect while it is traced.
    """

    def run(x, *args):
        def total(x):
            values = objective(x, *args)
            return ops.sum(values), values

        return backend.value_and_gradient(total, x)

    return run


def device_summary():
    """One line naming the Keras backend and the device it runs on (GPU by name, or the CPU)."""
    return backend.device_summary()


def deterministic():
    """Ask the backend for deterministic ops where it has a switch for them (TensorFlow)."""
    backend.deterministic()
