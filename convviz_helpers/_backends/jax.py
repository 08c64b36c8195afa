"""JAX: the gradient core's seam (``jax.jit`` compiles, ``jax.value_and_grad`` differentiates)
and the backend switches (device summary; JAX needs no determinism switch).

Two JAX facts shape the seam:

- ``jax.jit`` bakes in every array it closes over. The model's variables are therefore passed
  as arguments (their current values, read at every call) and put in place with a
  ``keras.StatelessScope`` while tracing, the way ``Model.stateless_call`` does; later weight
  changes (more training, a randomisation test) are seen without recompiling.
- JAX differentiates with respect to a function's inputs only, never an intermediate value.
  A recorded layer therefore returns ``output + delta`` (``TAPS`` is True) for zero-valued
  ``delta`` inputs, and the gradient with respect to each delta is the gradient with respect
  to that layer's output.
"""

import os

import jax
import jax.numpy as jnp

from .._tf import keras

NAME = "JAX"
TAPS = True
# jax.jit compiles once per input shape: ``gradients._probe.chunked`` pads batches to a few bucket sizes.
PADS = True
TRACE_ERRORS = (TypeError, AttributeError, NotImplementedError, jax.errors.JAXTypeError)


def _abstract(shape, dtype):
    return jax.ShapeDtypeStruct(tuple(1 if size is None else int(size) for size in shape), dtype)


class Compiled:
    """``fn(*args)`` jit-compiled with ``model``'s variables as arguments (a weak proxy of the
    model is enough). ``specs``: (shape, dtype) per argument, for ``trace``; jit compiles once
    per distinct argument shape."""

    def __init__(self, model, fn, specs):
        self._model = model
        self._specs = specs

        def pure(values, *args):
            mapping = list(zip(model.variables, values))
            with keras.StatelessScope(state_mapping=mapping):
                return fn(*args)

        self._jitted = jax.jit(pure)

    def _values(self):
        return [variable.value for variable in self._model.variables]

    def __call__(self, *args):
        return self._jitted(self._values(), *args)

    def trace(self):
        """Trace now (raises what tracing raises) rather than on the first call."""
        jax.eval_shape(self._jitted, self._values(), *(_abstract(s, d) for s, d in self._specs))


def run_symbolically(fn, shape, dtype="float32"):
    """Trace ``fn(x)`` once for an ``x`` of ``shape`` (None: a batch of 1) without running it."""
    jax.eval_shape(fn, _abstract(shape, dtype))


def gradients(forward, x, with_input):
    """Inside a compiled function: differentiate the scalar ``value`` of
    ``forward(x, deltas) -> (value, aux, recorded)`` with respect to each recorded tensor
    (through zero ``deltas`` added to them) and (``with_input``) ``x``. Returns
    ``(aux, recorded, recorded gradients, input gradient or None)``."""
    shapes = jax.eval_shape(lambda x: forward(x, None)[2], x)
    deltas = [jnp.zeros(shape.shape, shape.dtype) for shape in shapes]

    def f(x, deltas):
        value, aux, recorded = forward(x, deltas)
        return value, (aux, recorded)

    argnums = (0, 1) if with_input else (1,)
    (_, (aux, recorded)), grads = jax.value_and_grad(f, argnums=argnums, has_aux=True)(x, deltas)
    if with_input:
        return aux, recorded, list(grads[1]), grads[0]
    return aux, recorded, list(grads[0]), None


def value_and_gradient(f, x):
    """Inside a compiled function: ``f(x) -> (scalar, aux)``; returns ``(aux, d scalar / dx)``."""
    (_, aux), grad = jax.value_and_grad(f, has_aux=True)(x)
    return aux, grad


def device_summary():
    """One line: JAX's version and its accelerators by kind, or the CPU with its core count."""
    devices = jax.devices()
    if devices[0].platform == "cpu":
        return f"JAX {jax.__version__} on CPU ({os.cpu_count()} cores); no GPU visible."
    kinds = ", ".join(getattr(d, "device_kind", str(d)) for d in devices)
    return f"JAX {jax.__version__} on {devices[0].platform.upper()}: {kinds}."


def deterministic():
    """JAX's CPU and GPU ops are deterministic already; nothing to switch on."""
