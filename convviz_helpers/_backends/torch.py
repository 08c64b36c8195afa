"""PyTorch: the gradient core's seam (eager calls, ``torch.autograd.grad`` differentiates) and the
backend switches (device summary, deterministic algorithms).

Keras on PyTorch runs eagerly, so "compiling" is a plain call: the model's variables are read
live at every call, and later weight changes (more training, a randomisation test) are seen.
PyTorch can differentiate with respect to any tensor computed from one that requires grad, so
the input is made to require grad and recorded outputs are differentiated directly (``TAPS``
is False). Tensors leave ``Compiled`` as numpy arrays, detached from the autograd graph.
"""

import os

import numpy as np
import torch

from .._tf import keras

NAME = "PyTorch"
TAPS = False
# One compiled function serves every batch size (see ``gradients._probe.chunked``): no padding to buckets.
PADS = False
# Eager calls run any Python; what a subclassed model's call() may raise on a dummy batch.
TRACE_ERRORS = (TypeError, AttributeError, NotImplementedError, RuntimeError)


def _tensor(value, dtype):
    return keras.ops.convert_to_tensor(np.asarray(value, dtype=dtype), dtype=dtype)


def _numpy(structure):
    """A function's return value (tensor, or list / tuple / dict of them) as numpy arrays."""
    if isinstance(structure, (list, tuple)):
        return type(structure)(_numpy(item) for item in structure)
    if isinstance(structure, dict):
        return {key: _numpy(item) for key, item in structure.items()}
    if isinstance(structure, torch.Tensor):
        return structure.detach().cpu().numpy()
    return structure


def _dummy(shape, dtype):
    return _tensor(np.zeros(tuple(1 if size is None else int(size) for size in shape)), dtype)


class Compiled:
    """``fn(*args)`` called eagerly with numpy arguments turned into tensors of ``specs``'
    dtypes ((shape, dtype) per argument); returns numpy arrays."""

    def __init__(self, model, fn, specs):
        del model  # eager calls read the model's variables live
        self._fn = fn
        self._specs = specs

    def __call__(self, *args):
        tensors = [_tensor(arg, dtype) for arg, (_, dtype) in zip(args, self._specs)]
        return _numpy(self._fn(*tensors))

    def trace(self):
        """Run once on a dummy batch of one (raises what the call raises)."""
        self._fn(*(_dummy(shape, dtype) for shape, dtype in self._specs))


def run_symbolically(fn, shape, dtype="float32"):
    """Run ``fn(x)`` once for a zero ``x`` of ``shape`` (None: a batch of 1), without gradients."""
    with torch.no_grad():
        fn(_dummy(shape, dtype))


def _leaf(x):
    return x.detach().clone().requires_grad_(True)


def gradients(forward, x, with_input):
    """Inside a compiled function: run ``forward(x, None) -> (value, aux, recorded)`` and
    differentiate the scalar ``value`` with respect to each recorded tensor and (``with_input``)
    ``x``. Returns ``(aux, recorded, recorded gradients, input gradient or None)``; a recorded
    tensor the value does not depend on gets a zero gradient."""
    x = _leaf(x)
    with torch.enable_grad():
        value, aux, recorded = forward(x, None)
        targets = [*recorded, x] if with_input else list(recorded)
        wired = [t for t in targets if t.requires_grad]
        live = wired and value.requires_grad
        found = torch.autograd.grad(value, wired, allow_unused=True) if live else [None] * len(wired)
    by_id = {id(t): g for t, g in zip(wired, found)}
    grads = [by_id.get(id(t)) for t in targets]
    grads = [torch.zeros_like(t) if g is None else g for t, g in zip(targets, grads)]
    if with_input:
        return aux, recorded, grads[:-1], grads[-1]
    return aux, recorded, grads, None


def value_and_gradient(f, x):
    """Inside a compiled function: ``f(x) -> (scalar, aux)``; returns ``(aux, d scalar / dx)``.

    ``x`` is cut from any earlier graph (an ascent loop would otherwise chain every step's)."""
    x = _leaf(x)
    with torch.enable_grad():
        value, aux = f(x)
        (grad,) = torch.autograd.grad(value, [x])
    return aux.detach() if isinstance(aux, torch.Tensor) else aux, grad


def device_summary():
    """One line: PyTorch's version and its GPU(s) by name, or the CPU with its core count."""
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} on CPU ({os.cpu_count()} cores); no GPU visible."
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"PyTorch {torch.__version__} on GPU: {', '.join(names)}."


def deterministic():
    """Ask PyTorch for deterministic algorithms, warning (not failing) where an op has none."""
    torch.use_deterministic_algorithms(True, warn_only=True)
