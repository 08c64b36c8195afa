"""The range of pixel values a model takes: [0, 1] for the book's models, often 0-255 for yours.

Every method (CAMs, saliency, feature maps, filter and class patterns, metrics) takes images in
the range the model itself expects, so a reader's model is explained on the pictures it was
trained on, never on copies 255 times too dark. The range comes from, in this order:

1. a declaration: ``with_input_range(model, (0, 255))`` (also reachable as
   ``models.with_input_range``), held for as long as the model lives (not saved with it);
2. the model's own preprocessing, read from its first layer that changes values (input,
   augmentation, resizing and cropping layers are looked through, nested models included):

   - a ``Rescaling(scale, offset)`` layer: of the two usual ranges, [0, 1] and [0, 255], the
     one whose image under ``x * scale + offset`` is widest while staying within about
     [-1.5, 1.5] (``Rescaling(1/255)`` reads as [0, 255], ``Rescaling(1/127.5, offset=-1)`` as
     [0, 255], ``Rescaling(255/128, offset=-127/128)`` as [0, 1]);
   - a ``Normalization`` layer: [0, 255] when its mean lies above 1.5, else [0, 1];
   - the package's ``models.ApplicationPreprocessing``: [0, 1];
3. otherwise [0, 1], the book's convention (DESIGN.md).

``input_range(model)`` returns the pair; ``describe(model)`` says where it came from, for
error messages.
"""

import weakref
from dataclasses import dataclass

import numpy as np

from ._tf import keras
from .layers import iter_layers

DEFAULT = (0.0, 1.0)
# The two ranges pixels usually come in; a preprocessing layer tells which one it expects.
_CANDIDATES = ((0.0, 1.0), (0.0, 255.0))
# How far outside [-1, 1] a preprocessed image may go and still count as "normalised".
_NORMALISED = 1.5
# Layers that pass pixel values through at inference (or only move them): looked through when
# searching for the preprocessing layer.
_PASS_THROUGH = ("InputLayer", "Resizing", "CenterCrop", "Cropping2D", "ZeroPadding2D", "Identity",
                 "Dropout", "GaussianNoise", "GaussianDropout")

# model -> (low, high) declared by the user. Weak keys and plain tuples as values, so a
# declaration never keeps a model alive.
_declared = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class InputRange:
    """A model's input range ``(low, high)`` and ``source``, a phrase saying where it came from."""

    low: float
    high: float
    source: str

    @property
    def pair(self):
        """``(low, high)`` as floats."""
        return (self.low, self.high)

    def text(self):
        """The range as a reader writes it: ``[0, 1]``, ``[0, 255]``."""
        return f"[{_number(self.low)}, {_number(self.high)}]"


def _number(value):
    return f"{int(value)}" if float(value).is_integer() else f"{value:.4g}"


def _checked(value_range):
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"An input range is a pair (low, high) such as (0, 255); got {value_range!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"An input range needs finite low < high; got {value_range!r}.")
    return low, high


def with_input_range(model, value_range):
    """Declare the range of pixel values ``model`` takes, e.g. ``(0, 255)``; returns ``model``.

    ``value_range``: a pair ``(low, high)`` with low < high. The model itself is not changed or
    copied: every convviz method then accepts images in that range for this model, starts
    gradient ascent in it and clips to it. The declaration lasts as long as the model object
    (it is not saved with the model); declaring again replaces it.
    Raises ValueError for a malformed range.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"with_input_range needs a keras.Model, got {type(model).__name__}.")
    _declared[model] = _checked(value_range)
    return model


def _values(value):
    """A Rescaling/Normalization parameter (float, list or variable) as a flat float array."""
    return np.asarray(keras.ops.convert_to_numpy(value) if hasattr(value, "shape") else value,
                      dtype=np.float64).ravel()


def _from_rescaling(layer):
    scale, offset = _values(layer.scale), _values(layer.offset)
    best, widest = None, 0.0
    for low, high in _CANDIDATES:
        ends = np.concatenate([low * scale + offset, high * scale + offset])
        width = float(np.abs(high * scale).max()) if scale.size else 0.0
        if np.abs(ends).max() <= _NORMALISED and width > widest:
            best, widest = (low, high), width
    return best


def _from_normalization(layer):
    mean = getattr(layer, "mean", None)
    if mean is None:
        return None
    try:
        values = _values(mean)
    except (TypeError, ValueError):
        return None
    return (0.0, 255.0) if values.size and float(values.mean()) > _NORMALISED else (0.0, 1.0)


def _preprocessing_layer(model):
    """The first layer of ``model`` (nested models searched in order) that changes pixel values."""
    for _, layer in iter_layers(model):
        kind = type(layer).__name__
        if isinstance(layer, keras.Model) or kind in _PASS_THROUGH or kind.startswith("Random"):
            continue
        return layer
    return None


def read(model):
    """The ``InputRange`` of ``model``: declared, else read from its preprocessing, else [0, 1].

    See the module's docstring for the rules. Never raises for a keras.Model.
    """
    if model in _declared:
        low, high = _declared[model]
        return InputRange(low, high, "declared with with_input_range")
    layer = _preprocessing_layer(model)
    kind = type(layer).__name__ if layer is not None else None
    found = None
    if isinstance(layer, keras.layers.Rescaling):
        found = _from_rescaling(layer)
        how = f"read from its Rescaling layer {layer.name!r}"
    elif isinstance(layer, keras.layers.Normalization):
        found = _from_normalization(layer)
        how = f"read from its Normalization layer {layer.name!r}"
    elif kind == "ApplicationPreprocessing":
        found = (0.0, 1.0)
        how = f"its preprocessing layer {layer.name!r} takes [0, 1] images"
    if found is None:
        return InputRange(*DEFAULT, "the default: no preprocessing layer says otherwise")
    return InputRange(*found, how)


def input_range(model):
    """``(low, high)``: the range of pixel values ``model`` takes (see ``read``)."""
    return read(model).pair


def to_unit(images, model):
    """Map ``images`` from ``model``'s input range to [0, 1] (for display); float32, same shape."""
    low, high = input_range(model)
    return ((np.asarray(images, np.float32) - low) / (high - low)).astype(np.float32)


def from_unit(images, model):
    """Map ``images`` in [0, 1] into ``model``'s input range; float32, same shape."""
    low, high = input_range(model)
    return (low + np.asarray(images, np.float32) * (high - low)).astype(np.float32)


def declare_hint(model_name="model", value_range=(0, 255)):
    """The sentence error messages use to show how a range is declared."""
    low, high = (_number(v) for v in value_range)
    return f"cv.models.with_input_range({model_name}, ({low}, {high}))"
