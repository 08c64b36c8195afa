"""The gradient core: where the package computes activations, class scores and gradients.

The central call is ``probe``: for a model, some of its layers and one class per image, it
returns the model's scores, the layers' activations and the gradients of the chosen scores
with respect to those activations (and optionally the input), in one batched, compiled call.

How: while the backend traces the model, small context managers patch layer instances
(record a layer's output, swap a ReLU's gradient, drop a final softmax) and put them back when
tracing ends; everything they do is ``keras.ops``, so it works on every backend. Nested models
(a pretrained base inside a Sequential) need no graph surgery.

The backend seam: what differs between Keras backends is how a function is compiled and how a
gradient is taken, and that lives in one short module per backend, at the ground level in
``convviz_helpers._backends`` (``tensorflow``: tf.function and GradientTape; ``jax``: jax.jit
with the model's variables passed as arguments, and gradients through zero-valued "taps" added
to recorded outputs, since JAX cannot differentiate with respect to an intermediate value;
``torch``: plain eager calls and torch.autograd.grad); ``backend`` is this process's one.
Each compiled function sees the model's current weights, so later weight changes (more
training, a randomisation test) count without recompiling. ``BACKEND`` names the backend this
process uses (``KERAS_BACKEND``, chosen before Keras is imported). This package's modules,
these included, are backend-neutral (``keras.ops``); none imports a backend library.

Models as readers build them: ``head`` says which output is explained (``output=`` picks one of
a multi-output model) and turns a single sigmoid unit into two classes (``class_scores``); a
subclassed model, which has no graph to read, is traced once for its shapes (``trace``). The
per-model caches hold models weakly and reach them only through weak proxies, so a model that
the reader deletes is freed with everything compiled for it.

Layout, one job per module: ``_relu`` (recording layer outputs, ReLU rules), ``_tracing`` (the
backend seam, tracing, the per-model compile cache), ``_heads`` (output heads and class
scores), ``_request`` (a call's arguments checked and resolved once, into a ``Request``),
``_probe`` (``probe``, ``layer_outputs``, ``predict``, chunking and padding to bucket sizes);
this module re-exports them.
"""

from .._backends import deterministic, device_summary
from .._tf import BACKEND
from ._heads import (
    SCORES, Head, class_scores, final_activation, head, num_classes, select, single_output,
)
from ._probe import (
    VALUES_PER_CALL, Probe, bucket, chunk_size, chunked, layer_outputs, predict, probe, resolve_classes, run_outputs,
    run_probe, run_scores, top_classes, value_and_gradient,
)
from ._relu import RELU_RULES, linear_activation, recording, relu_rule
from ._request import Request, default_layer, feature_map_shape, request
from ._tracing import (
    BACKENDS, backend, called_layers, compile, compiled_for, graph_outputs, image_spec, layer_shape,
    signature_shape, trace, traces,
)

__all__ = [
    "BACKEND", "BACKENDS", "SCORES", "RELU_RULES", "backend", "Head", "Probe", "probe", "layer_outputs",
    "predict", "resolve_classes", "value_and_gradient", "compile", "compiled_for", "recording",
    "relu_rule", "linear_activation", "head", "num_classes", "class_scores", "final_activation",
    "select", "single_output", "graph_outputs", "layer_shape", "called_layers", "trace",
    "image_spec", "signature_shape", "device_summary", "deterministic", "Request", "request", "run_probe",
    "run_outputs", "run_scores", "top_classes", "default_layer", "feature_map_shape", "chunked", "bucket", "traces",
    "chunk_size", "VALUES_PER_CALL",
]
