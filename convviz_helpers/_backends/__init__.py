"""The Keras backends convviz runs on, one module each: ``tensorflow``, ``jax``, ``torch``.

Each backend module holds everything that differs between backends:

- the gradient core's seam (``Compiled``, ``run_symbolically``, ``gradients``,
  ``value_and_gradient``, and the facts ``NAME``, ``TAPS``, ``PADS``, ``TRACE_ERRORS``), which
  ``gradients`` uses and re-exports as ``gradients.backend``;
- the switches ``device_summary`` and ``deterministic``, which ``config`` uses.

These modules and ``_tf`` (TensorFlow's quiet import) are the only ones of the package that
import ``tensorflow``, ``jax`` or ``torch``; the ``tf.data`` pipelines (``training``,
``data._tfds``) take TensorFlow from ``_tf`` (``tests/test_layering.py`` checks both). They sit at
the ground level, so ``config`` reaches the switches without importing the gradient core.
Only the module of the backend this process uses is imported, on first use. A new backend is
one more module here and one more entry in ``MODULES``.
"""

import importlib

from .._tf import BACKEND

# Keras backend name -> the module of this package that serves it.
MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def _unsupported():
    return (f"convviz_helpers runs on the Keras backends {', '.join(MODULES)}; this process uses "
            f"{BACKEND!r}. Set KERAS_BACKEND=tensorflow, jax or torch before importing Keras.")


def load():
    """The module of this process's backend (imported on first call); ImportError for a Keras
    backend convviz does not run on."""
    if BACKEND not in MODULES:
        raise ImportError(_unsupported())
    return importlib.import_module(f".{MODULES[BACKEND]}", __name__)


def device_summary():
    """One line naming the Keras backend and the device it runs on: the GPU(s) by name, or the CPU
    (with its core count). ValueError for a backend convviz does not run on."""
    if BACKEND not in MODULES:
        raise ValueError(_unsupported())
    return load().device_summary()


def deterministic():
    """Ask the backend for deterministic ops where it has a switch (TensorFlow: op determinism;
    PyTorch: deterministic algorithms, warning where there is none; JAX: already deterministic).
    Does nothing on a backend convviz does not run on."""
    if BACKEND in MODULES:
        load().deterministic()
