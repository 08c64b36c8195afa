"""The ascent loop: one compiled program per model and settings runs many normalised
gradient-ascent steps on a batch of images, each image with its own target."""

import math

import numpy as np

from .. import gradients, inputs
from .. import input_range as ranges
from .._tf import keras
from ._images import _fourier_image, _images, _initial, _transforms, deprocess

ops = keras.ops

# Fourier coefficient per step.
_LEARNING_RATES = {"pixels": 0.03, "fourier": 0.05}


def _positive_int(value, name):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _indices(requested, count, what):
    """``requested`` (None = all, an int, or a sequence of ints) as an int32 array in [0, count)."""
    if requested is None:
        return np.arange(count, dtype=np.int32)
    arr = np.atleast_1d(np.asarray(requested))
    if arr.ndim != 1 or arr.size == 0 or arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{what}s must be None, an int or a non-empty sequence of ints; got {requested!r}.")
    bad = arr[(arr < 0) | (arr >= count)]
    if bad.size:
        raise ValueError(f"{what} {int(bad[0])} is out of range: there are {count} {what}s (0 to {count - 1}).")
    return arr.astype(np.int32)


def _image_size(model, image_size):
    """(optimised size, size the model takes): the model's own size unless asked otherwise."""
    height, width, _ = inputs.model_input_shape(model)
    native = height if height is not None and height == width else None
    size = _positive_int(image_size, "image_size") if image_size is not None else native or 128
    if size < 8:
        raise ValueError(f"image_size must be at least 8 pixels, got {size}.")
    return size, native or size


def _program(model, objective, kind, size, native, regularized, value_range=(0.0, 1.0)):
    """A compiled ``run(params, targets, transforms, learning_rate) -> (params, values)`` doing
    ``len(transforms)`` normalised gradient-ascent steps on a batch of images.

    ``params``: (b, ...) the images (pixels in ``value_range``, the model's input range) or
    their spectra; ``targets``: (b,) int32; ``transforms``: (steps, b, 8); ``values``: (b,) the
    objective at the last step.
    """
    low, high = (float(v) for v in value_range)

    def scored(params, targets, transform):
        images = low + (high - low) * _fourier_image(params, size) if kind == "fourier" else params
        if regularized:
            images = keras.ops.image.affine_transform(images, transform, interpolation="bilinear",
                                                      fill_mode="reflect")
        if size != native:
            images = ops.image.resize(images, (native, native), interpolation="bilinear")
        return objective(images, targets)

    value_and_gradient = gradients.value_and_gradient(scored)
    shape = (2, 3, size, size // 2 + 1) if kind == "fourier" else (size, size, 3)
    axes = tuple(range(1, len(shape) + 1))

    def run(params, targets, transforms, learning_rate):
        def step(index, state):
            params, _ = state
            values, grad = value_and_gradient(params, targets, transforms[index])
            # Per image: each image moves by the same root-mean-square step, however strongly
            # its own filter responds. Never across the batch, which would couple images.
            rms = ops.sqrt(ops.mean(ops.square(grad), axis=axes, keepdims=True))
            params = params + learning_rate * grad / (rms + 1e-12)
            if kind == "pixels":
                params = ops.clip(params, low, high)
            return params, values

        start = (params, ops.zeros_like(ops.cast(targets, "float32")))
        return ops.fori_loop(0, ops.shape(transforms)[0], step, start)

    return gradients.compile(model, run, [((None, *shape), "float32"), ((None,), "int32"),
                                          ((None, None, 8), "float32"), ((), "float32")])


def _ascend(model, key, objective, targets, *, steps, image_size, seed, learning_rate,
            regularized, fourier, raw, batch_size, progress, desc):
    """Shared loop of ``filter_patterns`` and ``class_patterns``: (k, S, S, 3) in [0, 1].

    ``objective(model)`` builds the objective for the model (a weak proxy of it)."""
    steps = _positive_int(steps, "steps")
    batch_size = _positive_int(batch_size, "batch_size")
    size, native = _image_size(model, image_size)
    if fourier and not regularized:
        raise ValueError("fourier=True is part of the regularised mode: pass regularized=True as well.")
    kind = "fourier" if fourier else "pixels"
    rate = _LEARNING_RATES[kind] if learning_rate is None else float(learning_rate)
    if not rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate!r}.")
    # The ascent runs in the model's own input range (a 0-255 model starts from grey 127.5 and
    # is clipped to [0, 255]); pixel steps scale with the range so the same number of steps
    # goes as far relative to it. Patterns come back in [0, 1].
    value_range = ranges.input_range(model)
    if kind == "pixels":
        rate *= value_range[1] - value_range[0]
    run = gradients.compiled_for(
        model, ("ascent", *key, kind, size, native, bool(regularized), value_range),
        lambda proxy: _program(proxy, objective(proxy), kind, size, native, regularized, value_range))

    # Steps run in up to ten calls per chunk only so a progress bar can move; one call would do.
    show = len(targets) > batch_size if progress is None else bool(progress)
    per_call = math.ceil(steps / 10) if show else steps
    from tqdm.auto import tqdm

    bar = tqdm(total=len(targets) * steps, desc=desc, disable=not show, unit="step")
    chunks = []
    for start in range(0, len(targets), batch_size):
        chunk = targets[start:start + batch_size]
        params = _initial(kind, chunk, seed, size, value_range)
        transforms = _transforms(chunk, seed, steps, size, regularized)
        for first in range(0, steps, per_call):
            part = transforms[first:first + per_call]
            params, _ = run(params, chunk, part, np.float32(rate))
            bar.update(len(chunk) * len(part))
        chunks.append(_images(np.asarray(params), kind, size, value_range))
    bar.close()
    images = np.concatenate(chunks).astype(np.float32)
    return images if regularized or raw else deprocess(images)
