"""TensorFlow: the gradient core's seam (``tf.function`` compiles, ``GradientTape`` differentiates)
and the backend switches (device summary, op determinism).

A compiled function reads the model's variables directly, so later weight changes (more
training, a randomisation test) are seen without retracing. Tensors recorded inside a tape are
differentiated directly: no zero-valued taps are needed (``TAPS`` is False).
"""

import os

from .._tf import tf

NAME = "TensorFlow"
# TensorFlow can take a gradient with respect to any tensor computed under the tape.
TAPS = False
# One compiled function serves every batch size (see ``gradients._probe.chunked``): no padding to buckets.
PADS = False
# What tf.function raises when a model's Python code cannot be traced.
TRACE_ERRORS = (TypeError, AttributeError, NotImplementedError, tf.errors.OperatorNotAllowedInGraphError)


class Compiled:
    """``fn(*args)`` compiled once for ``specs`` ((shape, dtype) per argument, None = any size)."""

    def __init__(self, model, fn, specs):
        del model  # tf.function reads the model's variables live
        self._fn = tf.function(fn, input_signature=[tf.TensorSpec(shape, dtype) for shape, dtype in specs])

    def __call__(self, *args):
        return self._fn(*args)

    def trace(self):
        """Trace now (raises what tracing raises) rather than on the first call."""
        self._fn.get_concrete_function()


def run_symbolically(fn, shape, dtype="float32"):
    """Trace ``fn(x)`` once for an ``x`` of ``shape`` (None = any size) without running it."""
    tf.function(fn).get_concrete_function(tf.TensorSpec(shape, dtype))


def gradients(forward, x, with_input):
    """Inside a compiled function: run ``forward(x, None) -> (value, aux, recorded)`` and
    differentiate the scalar ``value`` with respect to each recorded tensor and (``with_input``)
    ``x``. Returns ``(aux, recorded, recorded gradients, input gradient or None)``; a recorded
    tensor the value does not depend on gets a zero gradient."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        value, aux, recorded = forward(x, None)
    targets = [*recorded, x] if with_input else list(recorded)
    grads = tape.gradient(value, targets, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    if with_input:
        return aux, recorded, grads[:-1], grads[-1]
    return aux, recorded, grads, None


def value_and_gradient(f, x):
    """Inside a compiled function: ``f(x) -> (scalar, aux)``; returns ``(aux, d scalar / dx)``."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        value, aux = f(x)
    return aux, tape.gradient(value, x)


def device_summary():
    """One line: TensorFlow's version and its GPU(s) by name, or the CPU with its core count."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"TensorFlow {tf.__version__} on CPU ({os.cpu_count()} cores); no GPU visible."
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return f"TensorFlow {tf.__version__} on GPU: {', '.join(names)}."


def deterministic():
    """Switch on TensorFlow's op determinism (repeatable runs on one machine, slower on a GPU)."""
    tf.config.experimental.enable_op_determinism()
