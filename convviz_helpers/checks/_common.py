"""What every grader shares: failing with a hint, calling the student's function, checking what
it returned, and the small seeded model the Grad-CAM and tape exercises are graded on."""

import functools
import warnings

import numpy as np

from .. import data
from .._tf import keras


# Every function that can raise a verdict sets ``__tracebackhide__``: IPython and pytest then
# leave its frame out of the traceback, so the student sees the check cell and the message.


def _fail(message, cause=None):
    """Raise the grader's verdict. With ``cause`` (a bug in the student's code) its traceback is
    shown first, pointing at the student's line; otherwise nothing but the verdict."""
    __tracebackhide__ = True
    raise AssertionError(message) from cause


def _call(fn, *args):
    """Run the student's function; its own exceptions become one readable AssertionError.

    Warnings are silenced: the grader asks for an all-zero map on purpose, and its verdict
    (NaN, wrong range...) says more than a numpy or package warning would.
    """
    __tracebackhide__ = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except NotImplementedError:
        _fail(f"{_name(fn)} is not implemented yet: replace `raise NotImplementedError` with your code.")
    except Exception as error:  # any bug in student code is a verdict, not a crash of the grader
        _fail(f"{_name(fn)} raised {type(error).__name__}: {error}", cause=error)


def _name(fn):
    return getattr(fn, "__name__", "your function")


def _not_none(result, what):
    """Fail when the student's function returned None, as an untouched stub of the assignment
    does (its body is only `...`)."""
    __tracebackhide__ = True
    if result is None:
        _fail(f"{what} came back as None: the function returns nothing yet. Replace the `...` with "
              "your code and end it with `return`.")


def _as_array(result, what):
    """The student's result as a numpy array, or a verdict saying what came back instead."""
    __tracebackhide__ = True
    _not_none(result, what)
    if hasattr(result, "numpy"):  # a TensorFlow tensor is a fine answer
        result = result.numpy()
    if not isinstance(result, np.ndarray):
        _fail(f"{what} should be a numpy array; got {type(result).__name__}.")
    return result


def _no_nan(result, hint):
    __tracebackhide__ = True
    if np.issubdtype(result.dtype, np.floating) and not np.isfinite(result).all():
        _fail(f"NaN or infinite values in your output: {hint}")


def _is_input(result, args):
    """True when ``result`` is (or shares memory with) one of the arrays we passed in."""
    return any(isinstance(a, np.ndarray) and np.shares_memory(result, a) for a in args)


@functools.lru_cache(maxsize=1)
def grader_model():
    """A small seeded convnet for grading: images of any size (n, H, W, 3) -> 7 softmax scores.

    Layers conv1, conv2 (each followed by 2×2 pooling), conv3, conv4 (3×3, ReLU), then global
    average pooling and a Dense layer. Kernels are drawn with a small positive mean: with
    zero-mean random kernels most class maps are negative almost everywhere, and Grad-CAM
    shrinks to one hot pixel, too little to tell a right answer from a near miss. Classes 0-5
    stand for the shapes (so it can play ShapesNet's part in the layer experiment); class 6's
    weights are zero: its score has no gradient and its Grad-CAM map is all zeros, which a
    grader asks for on purpose.
    """
    def conv(width, seed, name):
        kernels = keras.initializers.RandomNormal(mean=0.02, stddev=0.1, seed=seed)
        return keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=kernels, name=name)

    images = keras.Input((None, None, 3), name="images")
    x = keras.layers.MaxPooling2D(2, name="pool1")(conv(8, 1, "conv1")(images))
    x = keras.layers.MaxPooling2D(2, name="pool2")(conv(16, 2, "conv2")(x))
    x = conv(16, 4, "conv4")(conv(16, 3, "conv3")(x))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    head = keras.layers.Dense(len(data.SHAPE_CLASSES) + 1, activation="softmax",
                              kernel_initializer=keras.initializers.GlorotUniform(seed=5), name="predictions")
    outputs = head(x)
    kernel, bias = head.get_weights()
    kernel[:, -1] = 0.0
    head.set_weights([kernel, bias])
    model = keras.Model(images, outputs, name="grader_net")
    # Keras's seeded initialisers draw different numbers on each backend; the weights they drew
    # on TensorFlow ship with the package, so a student grades against the same model on JAX.
    from importlib import resources

    with resources.as_file(resources.files(__package__.rpartition(".")[0]).joinpath("resources/grader_net.weights.h5")) as path:
        model.load_weights(path)
    return model


def _quiet(method, *args, **kwargs):
    """Run a package method without its all-zero-map warning (the grader asks for one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return method(*args, **kwargs)
