"""Checks on what users pass in, so every method fails the same clear way.

Images are float32 in [0, 1], batch first, channels last. A wrong rank, channel count, size,
range or a NaN is reported here, in the user's terms, rather than as a TensorFlow error from
deep inside a traced function.
"""

import numpy as np

# Float round-off from resizing or blending can leave values a hair outside [0, 1].
_RANGE_TOLERANCE = 1e-3


def model_input_shape(model):
    """The (H, W, C) a single-input model expects; H and W may be None (any size)."""
    shapes = model.input_shape
    if isinstance(shapes, list):
        if len(shapes) != 1:
            raise ValueError(f"Model {model.name!r} has {len(shapes)} inputs; convviz explains single-input image models.")
        shapes = shapes[0]
    if len(shapes) != 4:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {shapes}, not image batches (n, H, W, C)."
        )
    return tuple(shapes[1:])


def image_batch(images, model=None, name="images"):
    """Return ``images`` as a float32 array (n, H, W, C) after checking it.

    ``images``: array-like (n, H, W, C) with values in [0, 1]. With ``model``, the channel count
    and (if the model fixes it) the spatial size must match the model's input.
    Raises ValueError naming the problem and, where there is one, the fix.
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
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
        raise ValueError(f"{name} contains NaN or infinite pixels ({bad} of {len(arr)} images).")
    low, high = float(arr.min()), float(arr.max())
    if low < -_RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        hint = " They look like 0-255 values: divide by 255." if high > 1.5 else ""
        raise ValueError(f"{name} must be in [0, 1]; got values from {low:.3g} to {high:.3g}.{hint}")
    arr = np.clip(arr, 0.0, 1.0)
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
