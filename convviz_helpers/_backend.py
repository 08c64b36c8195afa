"""Backend switches at the ground level: which device the Keras backend runs on, and asking it
for deterministic ops.

``config.device_summary`` and ``config.seed_everything(deterministic=True)`` need these, and
``config`` sits below the gradient core, so they live here rather than in the core's backend
modules (``gradients/_tensorflow.py``, ``_jax.py``, ``_torch.py``), which re-export them. Each
switch imports its backend's library only when called, and only the one this process uses.
"""

import os

from ._tf import BACKEND


def _tensorflow_summary():
    from ._tf import tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"TensorFlow {tf.__version__} on CPU ({os.cpu_count()} cores); no GPU visible."
    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    return f"TensorFlow {tf.__version__} on GPU: {', '.join(names)}."


def _jax_summary():
    import jax

    devices = jax.devices()
    if devices[0].platform == "cpu":
        return f"JAX {jax.__version__} on CPU ({os.cpu_count()} cores); no GPU visible."
    kinds = ", ".join(getattr(d, "device_kind", str(d)) for d in devices)
    return f"JAX {jax.__version__} on {devices[0].platform.upper()}: {kinds}."


def _torch_summary():
    import torch

    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} on CPU ({os.cpu_count()} cores); no GPU visible."
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return f"PyTorch {torch.__version__} on GPU: {', '.join(names)}."


def _tensorflow_deterministic():
    from ._tf import tf

    tf.config.experimental.enable_op_determinism()


def _jax_deterministic():
    """JAX's CPU and GPU ops are deterministic already; nothing to switch on."""


def _torch_deterministic():
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)


_SUMMARIES = {"tensorflow": _tensorflow_summary, "jax": _jax_summary, "torch": _torch_summary}
_DETERMINISTIC = {"tensorflow": _tensorflow_deterministic, "jax": _jax_deterministic,
                  "torch": _torch_deterministic}


def device_summary():
    """One line naming the Keras backend and the device it runs on: the GPU(s) by name, or the CPU
    (with its core count). ValueError for a backend convviz does not run on."""
    if BACKEND not in _SUMMARIES:
        raise ValueError(f"convviz runs on the Keras backends {', '.join(_SUMMARIES)}, not {BACKEND!r}.")
    return _SUMMARIES[BACKEND]()


def deterministic():
    """Ask the backend for deterministic ops where it has a switch (TensorFlow: op determinism;
    PyTorch: deterministic algorithms, warning where there is none; JAX: already deterministic)."""
    if BACKEND in _DETERMINISTIC:
        _DETERMINISTIC[BACKEND]()
