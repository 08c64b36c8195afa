"""Import TensorFlow and Keras once, without TensorFlow's C++ start-up noise.

TensorFlow's native library writes lines such as "Could not find cuda drivers" straight to
file descriptor 2 while it loads, before any logging setting can take effect. Notebooks
capture that descriptor, so the lines would end up in every stored chapter. We point the
descriptor at /dev/null for the duration of the import only.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _import_quietly():
    if "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


tf = _import_quietly()
tf.get_logger().setLevel("ERROR")

import keras  # noqa: E402  (after TensorFlow so Keras picks the quietly loaded backend)

__all__ = ["tf", "keras"]
