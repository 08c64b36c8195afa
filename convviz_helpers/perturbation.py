"""Explanations from forward passes only: occlusion sensitivity and RISE.

Both methods change the image and watch the class score, so they need no gradient and work on
any model the core can run forward. Each perturbed copy is a blend of the image and a baseline,
``image * keep + baseline * (1 - keep)`` with a mask ``keep`` in [0, 1] (H, W); all n * P copies
(n images, P masks) go through one compiled forward in chunks bounded by memory, never one copy
at a time. A call is resolved once (``gradients.request``: images checked, head, input range,
classes); the copies are derived from it (``Request.derived``) and scored by
``gradients.run_scores`` without being checked again.

- ``occlusion`` (Zeiler & Fergus 2014): slide a window over the image, replace it by the
  baseline, and record how much the class score drops; each pixel gets the mean drop of the
  windows that cover it. P = number of window positions.
- ``rise`` (Petsiuk et al. 2018): random smooth masks (coarse binary grids upsampled
  bilinearly, shifted at random); the map is the average of the masks weighted by the class
  score of the masked image, divided by the keep probability. P = ``masks``.

``baseline_images`` turns these methods' ``baseline`` argument into images in the model's input
range; ``integrated_gradients`` uses it too (Score-CAM's ``baseline`` is a number it blends in
itself). This module imports nothing from
``cam`` (which re-exports these functions), so no import circle.
"""

import math
import warnings

import numpy as np
from scipy.ndimage import gaussian_filter

from . import gradients, inputs
from . import input_range as ranges
from ._tf import keras

BASELINES = ("black", "blur")
# Input values per numpy chunk of perturbed copies (64 MB of float32): about 4,000 copies of a
# 64-px image or 330 of a 224-px photo are built and scored at a time.
_CHUNK_VALUES = 2**24
# Input values per compiled call, as in cam: whole small batches, a few 224-px images at a time.
_VALUES_PER_CALL = 2**20


def _per_call(shape, batch_size):
    """Images per compiled call: ``batch_size`` if given, else as many as fit in
    ``_VALUES_PER_CALL`` values."""
    return batch_size if batch_size is not None else max(1, _VALUES_PER_CALL // int(np.prod(shape)))


def baseline_images(model, images, baseline="black", value_range=None):
    """The baseline for each image, in the model's input range: (n, H, W, C) float32.

    ``images``: validated (n, H, W, C) in the model's input range. ``baseline``: "black" (the
    low end of the range: 0 for [0, 1] and [0, 255] models), "blur" (each image blurred by a
    Gaussian of sigma = 1/8 of its longer side: the colours stay, the shapes go), a number in
    the input range (a flat grey), or an array (H, W, C) for every image or (n, H, W, C) one per
    image, in the input range. Anything else raises ValueError. ``value_range``: the model's
    ``input_range.InputRange`` where the caller has it already (a ``Request``'s).
    """
    value_range = ranges.read(model) if value_range is None else value_range
    low, high = value_range.pair
    if isinstance(baseline, str):
        if baseline == "black":
            return np.full_like(images, low)
        if baseline == "blur":
            sigma = max(images.shape[1:3]) / 8
            return gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="reflect").astype(np.float32)
        raise ValueError(f"baseline must be {' or '.join(map(repr, BASELINES))}, a number or an array; got {baseline!r}.")
    values = np.asarray(baseline, np.float32) if not isinstance(baseline, bool) else None
    if values is None or values.dtype == object:
        raise ValueError(f"baseline must be {' or '.join(map(repr, BASELINES))}, a number or an array; got {baseline!r}.")
    if values.ndim == 0:
        if not low <= float(values) <= high:
            raise ValueError(f"baseline {float(values):g} lies outside the model's input range [{low:g}, {high:g}].")
        return np.full_like(images, float(values))
    if values.shape not in (images.shape, images.shape[1:]):
        raise ValueError(
            f"baseline has shape {values.shape}; it must match one image {images.shape[1:]} or the batch "
            f"{images.shape}."
        )
    values = inputs.image_batch(np.broadcast_to(values, images.shape), model, name="baseline", value_range=value_range)
    return np.ascontiguousarray(values)


def positive_unit(maps, what="heatmap"):
    """Keep each map's positive part and divide it by its maximum: (n, H, W) float32 in [0, 1].

    A map with nothing positive stays zeros, and one warning per call says how many there are.
    """
    maps = np.maximum(np.asarray(maps, np.float32), 0.0)
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    empty = ~(peaks > 0)
    if empty.any():
        warnings.warn(f"{int(empty.sum())} of {len(maps)} {what}s are all zero (no positive evidence); they are "
                      "returned as zeros.", stacklevel=inputs._caller_stacklevel())
    return (maps / np.where(empty, 1.0, peaks)[:, None, None]).astype(np.float32)


def blend_scores(call, base, keep, classes, *, batch_size=None):
    """The class score of every blend ``images[i] * keep[p] + base[i] * (1 - keep[p])``.

    ``call``: the ``gradients.Request`` of the images (n, H, W, C), its scores and output;
    ``base``: (n, H, W, C) float32 in the model's input range; ``keep`` (P, H, W) float in
    [0, 1]; ``classes`` (n,) ints, the class scored for each image. The n * P copies are built
    by broadcasting, a block of images times a block of masks at a time (about
    ``_CHUNK_VALUES`` values), and scored by the compiled forward (``gradients.run_scores``),
    ``batch_size`` copies per call. Returns (n, P) float32.
    """
    images = call.images
    n, count, pixels = len(images), len(keep), int(np.prod(images.shape[1:]))
    per_block = max(1, _CHUNK_VALUES // pixels)
    masks_per_block = min(count, per_block)
    images_per_block = max(1, per_block // masks_per_block)
    per_call = _per_call(images.shape[1:], batch_size)
    difference = images - base
    keep = np.asarray(keep, np.float32)[..., None]
    found = np.empty((n, count), np.float32)
    # Memory-bounded blocks of copies, each built in one broadcast, never one copy at a time.
    for first in range(0, n, images_per_block):
        rows = slice(first, min(n, first + images_per_block))
        for start in range(0, count, masks_per_block):
            cols = slice(start, min(count, start + masks_per_block))
            copies = base[rows, None] + difference[rows, None] * keep[None, cols]
            values = gradients.run_scores(call.derived(images=copies.reshape(-1, *images.shape[1:])), batch_size=per_call)
            picked = values.reshape(copies.shape[0], copies.shape[1], -1)
            found[rows, cols] = np.take_along_axis(picked, classes[rows, None, None], axis=2)[..., 0]
    return found


def _pair(value, name):
    """An int or a pair of ints as (rows, cols); ValueError unless every entry is an int >= 1."""
    values = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                                   for v in values):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints; got {value!r}.")
    return tuple(int(v) for v in values)


def _starts(size, window, stride):
    """Window starts along one axis: every ``stride`` pixels, plus one flush with the far edge so
    that every pixel is covered."""
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return np.array(starts)


def occlusion_windows(image_size, window, stride):
    """The occluding windows as masks (P, H, W) bool, True inside the window, in row-major
    order of their top-left corners. ``image_size`` (H, W); ``window`` and ``stride`` an int
    or (rows, cols). ValueError for a window larger than the image, a stride below 1 or one larger
    than the window (it would leave pixels uncovered)."""
    height, width = image_size
    window, stride = _pair(window, "window"), _pair(stride, "stride")
    if window[0] > height or window[1] > width:
        raise ValueError(f"window {window} is larger than the images ({height}, {width}).")
    if stride[0] > window[0] or stride[1] > window[1]:
        raise ValueError(f"stride {stride} is larger than the window {window}: pixels between windows would get no "
                         "value. Use a stride no larger than the window.")
    rows, cols = _starts(height, window[0], stride[0]), _starts(width, window[1], stride[1])
    top, left = (a.ravel() for a in np.meshgrid(rows, cols, indexing="ij"))
    inside_rows = (np.arange(height)[None] >= top[:, None]) & (np.arange(height)[None] < top[:, None] + window[0])
    inside_cols = (np.arange(width)[None] >= left[:, None]) & (np.arange(width)[None] < left[:, None] + window[1])
    return inside_rows[:, :, None] & inside_cols[:, None, :]


def occlusion(model, images, classes=None, *, window=8, stride=4, baseline="black", scores="logits",
              batch_size=None, output=None):
    """Occlusion sensitivity (Zeiler & Fergus 2014): how much the class score drops when a
    window of the image is replaced by the baseline.

    ``images`` (n, H, W, C) in the model's input range; ``classes`` None (top-1) / int / n ints;
    ``window`` and ``stride`` in pixels, an int or (rows, cols) (windows every ``stride``
    pixels plus one flush with each far edge); ``baseline`` as in ``baseline_images`` ("black",
    "blur", a number, an array); ``scores`` "logits" or "probabilities"; ``output`` which output
    of a multi-output model; ``batch_size`` copies per compiled call. Each pixel's value is the
    mean score drop over the windows covering it; the positive part is divided by each map's
    maximum. Costs one forward pass per window position and image (``occlusion_windows``).
    Returns (n, H, W) float32 in [0, 1].
    """
    call = gradients.request(model, images, classes, scores=scores, output=output)
    images = call.images
    windows = occlusion_windows(images.shape[1:3], window, stride)
    base = baseline_images(model, images, baseline, call.input_range)
    per_call = _per_call(images.shape[1:], batch_size)
    wanted = gradients.top_classes(call, per_call)
    clean = gradients.run_scores(call, batch_size=per_call)
    occluded = blend_scores(call, base, (~windows).astype(np.float32), wanted, batch_size=batch_size)
    drops = clean[np.arange(len(images)), wanted][:, None] - occluded  # (n, P)
    flat = windows.reshape(len(windows), -1).astype(np.float32)
    maps = (drops @ flat) / flat.sum(axis=0)
    return positive_unit(maps.reshape(images.shape[:3]), "occlusion map")


def rise_masks(image_size, masks=1000, cell=None, keep=0.5, seed=0):
    """RISE's random masks (Petsiuk et al. 2018): (masks, H, W) float32 in [0, 1].

    Each mask is a binary grid (1 with probability ``keep``) of cells of ``cell`` pixels (None:
    the paper's 7 x 7 grid, cell = ceil(longer side / 7)), with one extra row and column,
    upsampled bilinearly and cropped at a random shift of 0 to cell - 1 pixels, so the kept
    regions have smooth edges anywhere in the image. ``image_size`` (H, W); the same ``seed``
    gives the same masks. Holds masks * H * W floats (1,000 masks of 224 px: 200 MB).
    """
    height, width = image_size
    if not isinstance(masks, (int, np.integer)) or isinstance(masks, bool) or masks < 1:
        raise ValueError(f"masks must be a positive int; got {masks!r}.")
    if not (isinstance(keep, (int, float, np.floating)) and 0 < keep <= 1):
        raise ValueError(f"keep is the probability that a grid cell is kept; it must lie in (0, 1], got {keep!r}.")
    cell = math.ceil(max(height, width) / 7) if cell is None else _pair(cell, "cell")[0]
    rows, cols = math.ceil(height / cell) + 1, math.ceil(width / cell) + 1
    rng = np.random.default_rng(seed)
    grids = (rng.uniform(size=(masks, rows, cols)) < keep).astype(np.float32)
    shifts = rng.integers(0, cell, size=(2, masks))
    smooth = keras.ops.image.resize(grids[..., None], (rows * cell, cols * cell), interpolation="bilinear")
    smooth = keras.ops.convert_to_numpy(smooth)[..., 0]
    row_index = shifts[0][:, None, None] + np.arange(height)[None, :, None]
    col_index = shifts[1][:, None, None] + np.arange(width)[None, None, :]
    return np.clip(smooth[np.arange(masks)[:, None, None], row_index, col_index], 0.0, 1.0).astype(np.float32)


def rise(model, images, classes=None, *, masks=1000, cell=None, keep=0.5, seed=0, baseline="black",
         scores="probabilities", batch_size=None, output=None):
    """RISE (Petsiuk et al. 2018): random masks weighted by the class score they leave.

    ``images`` (n, H, W, C) in the model's input range; ``classes`` None (top-1) / int / n ints;
    ``masks``, ``cell``, ``keep``, ``seed`` as in ``rise_masks`` (the same masks for every
    image); masked-out pixels take the ``baseline`` (as ``baseline_images``; black is the
    paper's). ``scores`` defaults to probabilities, as in the paper: the weights of the average
    must not be negative. The paper's map, sum_i score_i * mask_i / (masks * keep), is about the
    mean score everywhere plus each pixel's share, so each map is min-max scaled to [0, 1]
    (``inputs.minmax``). Costs ``masks`` forward passes per image. Returns (n, H, W) float32.
    """
    call = gradients.request(model, images, classes, scores=scores, output=output)
    images = call.images
    kept = rise_masks(images.shape[1:3], masks, cell, keep, seed)
    base = baseline_images(model, images, baseline, call.input_range)
    wanted = gradients.top_classes(call, _per_call(images.shape[1:], batch_size))
    weights = blend_scores(call, base, kept, wanted, batch_size=batch_size)
    maps = (weights @ kept.reshape(len(kept), -1)) / (len(kept) * keep)
    return inputs.minmax(maps.reshape(images.shape[:3]), (1, 2))
