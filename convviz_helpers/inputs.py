"""Checks on what users pass in, so every method fails the same clear way.

Images are float32, batch first, channels last, in the range the model takes (``input_range``:
[0, 1] for the book's models, often [0, 255] for a reader's model with ``Rescaling(1/255)``
inside). A wrong rank, channel count, size, range or a NaN is reported here, in the user's
terms, rather than as a TensorFlow error from deep inside a traced function.
"""

import warnings

import numpy as np

from . import input_range as _ranges

# Float round-off from resizing or blending can leave values a hair outside the range; this is
# the allowance, as a fraction of the range's width.
_RANGE_TOLERANCE = 1e-3


def model_input_shape(model):
    """The (H, W, C) a single-input model expects; any of them may be None (not fixed).

    A model without a graph (a subclassed ``keras.Model``) gives ``(None, None, None)``: its
    input shape is then taken from the images it is called on.
    """
    try:
        shapes = model.input_shape
    except (AttributeError, ValueError):
        # Subclassed models have no `input_shape`, built or not; the images will say.
        return (None, None, None)
    if isinstance(shapes, list):
        if len(shapes) != 1:
            raise ValueError(f"Model {model.name!r} has {len(shapes)} inputs; convviz explains single-input image models.")
        shapes = shapes[0]
    if len(shapes) != 4:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shapes}, not image batches (n, H, W, C)."
        )
    return tuple(shapes[1:])


def image_batch(images, model=None, name="images", value_range=None):
    """Return ``images`` as a float32 array (n, H, W, C) after checking it.

    ``images``: array-like (n, H, W, C) with values in the model's input range
    (``input_range.read(model)``; [0, 1] without a model). With ``model``, the channel count and
    (if the model fixes it) the spatial size must match the model's input. Values a hair
    outside the range (round-off) are clipped into it. Raises ValueError naming the problem and,
    where there is one, the fix; warns when a 0-255 model gets images that all lie in [0, 1].
    ``value_range``: the model's ``input_range.InputRange`` where the caller has read it already.
    """
    arr = np.asarray(images)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}.")
    if arr.ndim != 4:
        hint = " For a single image (H, W, C), pass images[None] to add the batch axis." if arr.ndim == 3 else ""
        raise ValueError(f"{name} must have rank 4 (n, H, W, C); got shape {arr.shape}.{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {arr.shape}).")
    arr = arr.astype(np.float32, copy=False)
    # A NaN or an infinity makes the minimum or the maximum non-finite: two passes over the
    # pixels instead of a third that would build a mask of them all.
    low, high = float(arr.min()), float(arr.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int((~np.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or infinite pixels ({bad} of {len(arr)} images).")
    if value_range is not None:
        expected = value_range
    elif model is not None:
        expected = _ranges.read(model)
    else:
        expected = _ranges.InputRange(*_ranges.DEFAULT, "the default")
    slack = _RANGE_TOLERANCE * (expected.high - expected.low)
    if low < expected.low - slack or high > expected.high + slack:
        raise ValueError(_range_message(name, model, expected, low, high))
    if model is not None and expected.high > 1.5 and high <= 1.0 + _RANGE_TOLERANCE and high > 0:
        warnings.warn(
            f"{name} all lie in [0, 1] but model {model.name!r} takes {expected.text()} "
            f"({expected.source}): to it they are almost black. Multiply them by "
            f"{_ranges._number(expected.high)}, or if the model really takes [0, 1] images, declare it "
            f"with {_ranges.declare_hint('model', (0, 1))}.",
            stacklevel=_caller_stacklevel(),
        )
    if low < expected.low or high > expected.high:
        arr = np.clip(arr, expected.low, expected.high)
    if model is not None:
        height, width, channels = model_input_shape(model)
        if channels is not None and arr.shape[-1] != channels:
            raise ValueError(
                f"{name} have {arr.shape[-1]} channels but model {model.name!r} expects {channels}."
            )
        for axis, (got, want) in enumerate(zip(arr.shape[1:3], (height, width))):
            if want is not None and got != want:
                raise ValueError(
                    f"{name} are {arr.shape[1]}x{arr.shape[2]} pixels but model {model.name!r} "
                    f"expects {height}x{width}; resize them first."
                )
    return arr


def _range_message(name, model, expected, low, high):
    """Why images out of the model's range are refused, and what to do: never advice that
    would feed the model pictures in a range it was not trained on."""
    got = f"got values from {low:.3g} to {high:.3g}"
    if model is None:
        hint = " They look like 0-255 values: divide by 255." if high > 1.5 and low >= -0.5 else ""
        return f"{name} must be in [0, 1]; {got}.{hint}"
    declared_by_user = expected.source.startswith("declared")
    read_from_model = not declared_by_user and not expected.source.startswith("the default")
    looks_255 = high > 1.5 and high <= 255 * (1 + _RANGE_TOLERANCE) and low >= -0.5
    message = (f"{name} must be in {expected.text()}, the range model {model.name!r} takes "
               f"({expected.source}); {got}.")
    if read_from_model or declared_by_user:
        if looks_255 and expected.high == 1.0:
            message += " They look like 0-255 values: divide by 255."
        else:
            how = "change the declaration" if declared_by_user else "override what was read"
            message += (f" Rescale the images to {expected.text()}, or {how}: "
                        "model = cv.models.with_input_range(model, (low, high)).")
        return message
    # The default: nothing in the model says what it takes, so both fixes are offered.
    if looks_255:
        message += (
            " If the model takes 0-255 pixels (its preprocessing is a function such as "
            "preprocess_input rather than a layer, or it was trained on raw pixels), declare it once: "
            f"model = {_ranges.declare_hint('model', (0, 255))}. If it takes [0, 1] images, "
            "divide by 255."
        )
    else:
        message += (" If the model takes another range, declare it once: "
                    "model = cv.models.with_input_range(model, (low, high)).")
    return message


def _caller_stacklevel():
    """The ``stacklevel`` pointing a warning at the first caller outside this package."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__ + "."):
        frame, level = frame.f_back, level + 1
    return level


def minmax(values, axes=None):
    """Scale each slice of ``values`` to [0, 1] over ``axes`` (None: the whole array; e.g.
    (1, 2) for each map of (n, h, w)): ``(v - min) / (max - min)``. A constant slice becomes
    zeros. Returns float32 of the same shape; the one min-max scaling of the package."""
    values = np.asarray(values, np.float32)
    low = values.min(axis=axes, keepdims=True)
    span = values.max(axis=axes, keepdims=True) - low
    return np.where(span > 0, (values - low) / np.where(span > 0, span, 1.0), 0.0).astype(np.float32)


def top_classes(wanted, scores):
    """``wanted`` from ``class_indices`` with every -1 ("top-1") replaced by the argmax of that
    image's ``scores`` (n, K): the classes actually explained, int32 (n,)."""
    wanted = np.asarray(wanted)
    return np.where(wanted < 0, np.asarray(scores).argmax(axis=-1), wanted).astype(np.int32)


def class_indices(classes, n, num_classes):
    """Resolve the ``classes`` argument into an int32 array (n,), with -1 meaning "top-1".

    ``classes``: None (each image's top-1 class), one int (that class for every image), or a
    sequence of n ints (one per image). Raises ValueError for out-of-range or mis-sized input.
    """
    if classes is None:
        return np.full(n, -1, dtype=np.int32)
    arr = np.asarray(classes)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"classes must be None, an int or a sequence of ints; got {classes!r}.")
    if arr.ndim == 0:
        arr = np.full(n, int(arr))
    elif arr.shape != (n,):
        raise ValueError(f"classes has {arr.size} entries for {n} images; give one per image or a single int.")
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if bad.size:
        raise ValueError(
            f"class {int(bad[0])} is out of range: the model has {num_classes} classes (0 to {num_classes - 1})."
        )
    return arr.astype(np.int32)
