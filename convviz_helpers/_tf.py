"""Import Keras (and TensorFlow, where it is needed) once, without TensorFlow's C++ start-up noise.

TensorFlow's native library writes lines such as "Could not find cuda drivers" straight to
file descriptor 2 while it loads, before any logging setting can take effect. Notebooks
capture that descriptor, so the lines would end up in every stored chapter. We point the
descriptor at /dev/null for the duration of the import only.

Keras picks its backend once per process from ``KERAS_BACKEND`` (or ``~/.keras/keras.json``)
before it is first imported: TensorFlow (the default), JAX or PyTorch. ``keras`` here is that
Keras. ``tf`` is TensorFlow, imported only on first use when another backend runs: the
explanation methods never need it (they go through ``convviz_helpers.gradients``); data
pipelines (``tf.data``, tensorflow-datasets) still do.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _quietly(load):
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        return load()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _load_tensorflow():
    import tensorflow

    # TensorFlow starts its runtime (and prints its oneDNN and CUDA lines) on first use, not on
    # import: start it here, inside the quiet window. Keras on TensorFlow does this on import.
    tensorflow.config.list_physical_devices()
    tensorflow.constant(0.0)
    return tensorflow


def _import_tensorflow():
    if "tensorflow" in sys.modules:
        import tensorflow
    else:
        tensorflow = _quietly(_load_tensorflow)
    tensorflow.get_logger().setLevel("ERROR")
    return tensorflow


def _import_keras():
    if "keras" in sys.modules:
        import keras

        return keras
    return _quietly(lambda: __import__("keras"))


def _chosen_backend():
    """The backend Keras will use, read the way Keras reads it, without importing Keras."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    name = os.environ.get("KERAS_BACKEND")
    if not name:
        import json

        config = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "keras.json")
        try:
            with open(config) as file:
                name = json.load(file).get("backend")
        except (OSError, ValueError, AttributeError):
            name = None
    return name or "tensorflow"


if _chosen_backend() == "tensorflow":
    # TensorFlow first, quietly, so Keras finds it loaded.
    tf = _import_tensorflow()

keras = _import_keras()
BACKEND = keras.backend.backend()


def preload_tensorflow():
    """Import TensorFlow quietly now if it is installed (None if not). For calls that import it
    themselves, noisily, on any backend: ``keras.utils.set_random_seed`` seeds ``tf.random``
    wherever TensorFlow is installed."""
    import importlib.util

    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        return _import_tensorflow()
    return None


def __getattr__(name):
    # PEP 562: ``tf`` on another backend, imported on first use only.
    if name == "tf":
        global tf
        tf = _import_tensorflow()
        return tf
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["tf", "keras", "BACKEND"]
