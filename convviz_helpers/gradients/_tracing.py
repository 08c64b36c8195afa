"""Tracing and the compile cache: the backend seam (from ``_backends``), per-model caches of compiled functions and
traces, and what a trace of a graph-less (subclassed) model shows.

The per-model caches hold models weakly and reach them only through weak proxies, so a model
that the reader deletes is freed with everything compiled for it.
"""

import contextlib
import weakref
from dataclasses import dataclass

from .. import _backends, inputs
from .._tf import keras
from ..layers import iter_layers, output_rank
from ._relu import recording

# Keras backend -> its module in ``_backends``; ``backend`` is this process's (ImportError on a
# backend convviz does not run on, as soon as the gradient core is imported).
BACKENDS = _backends.MODULES
backend = _backends.load()


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


def _output_keys(structure):
    """The keys ``output=`` may use: list positions, or a dict's keys in order."""
    if isinstance(structure, dict):
        return list(structure)
    if isinstance(structure, (list, tuple)):
        return list(range(len(structure)))
    return [None]


def _pick(result, key):
    """The chosen output of a model's return value (a tensor, list or dict)."""
    if not isinstance(result, (list, tuple, dict)):
        return result  # one tensor (Keras may unwrap a model built with a one-element list)
    if key is None:
        return result[0] if isinstance(result, (list, tuple)) else result
    return result[key]


# --- per-model caches --------------------------------------------------------------------------
# Both are keyed weakly by the model, and their values never refer to the model (compiled
# functions reach it through a weak proxy, traces keep only shapes and layer ids): otherwise a
# value would keep its own key alive and no model would ever be freed.
_compiled = weakref.WeakKeyDictionary()
_traces = weakref.WeakKeyDictionary()
_trace_count = [0]


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

    def counted(*args):
        # Runs once per trace where the backend compiles (tf.function, jax.jit), every call on
        # an eager one: the count of compilations that ``traces()`` reports.
        _trace_count[0] += 1
        return fn(*args)

    return backend.Compiled(model, counted, specs)


def traces():
    """How many times functions given to ``compile`` have been traced in this process (on
    TensorFlow and JAX, the number of compilations; on PyTorch, which runs eagerly, of calls)."""
    return _trace_count[0]


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


def layer_shape(model, layer, image_shape=None):
    """Output shape of ``layer`` (batch axis included), from the graph where the model has one,
    else from a trace at ``image_shape``; None when the layer has no single output."""
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

