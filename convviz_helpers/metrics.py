"""Scoring explanations: against ground-truth masks, by faithfulness, and by a sanity check.

- Localisation against the shapes dataset's object masks: ``pointing_game`` (is the hottest
  pixel on the object?) and ``energy_in_mask`` (how much of the map's mass is on it?), with
  ``centre_baseline`` and ``random_baseline`` maps as the floor any method must beat.
- Faithfulness without masks: ``deletion_curve`` removes the most important pixels first and
  follows the class probability; with ``fill="road"`` removed pixels are filled from their
  neighbours (ROAD, Rong et al. 2022) so the curve measures lost information rather than the
  model's surprise at black holes.
- ``randomization_check``: Adebayo et al. (2018)'s cascading model randomisation. A method
  whose maps survive random weights explains the image, not the model.
"""

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from . import gradients, inputs
from . import input_range as ranges
from ._tf import keras


def _maps_and_masks(heatmaps, masks):
    """Check that heatmaps (n, H, W) and masks (n, H, W) match; return float32 and bool arrays."""
    heatmaps, masks = np.asarray(heatmaps, np.float32), np.asarray(masks).astype(bool)
    if heatmaps.ndim != 3 or heatmaps.shape != masks.shape:
        raise ValueError(
            f"heatmaps and masks must both be (n, H, W) with the same shape; got {heatmaps.shape} and "
            f"{masks.shape}. Resize heatmaps to the masks first (cam methods return input resolution)."
        )
    if not np.isfinite(heatmaps).all():
        raise ValueError("heatmaps contain NaN or infinite values.")
    return heatmaps, masks


def _reduce(values, reduce):
    if reduce == "mean":
        return float(values.mean())
    if reduce is None:
        return values
    raise ValueError(f"reduce must be 'mean' or None, got {reduce!r}.")


def pointing_game(heatmaps, masks, tolerance=0, reduce="mean"):
    """Pointing game (Zhang et al. 2016): is each heatmap's maximum on the object?

    ``heatmaps`` (n, H, W) float, ``masks`` (n, H, W) bool, same shape (else ValueError).
    The hottest pixel (the first in row-major order if several tie) is a hit when it lies
    within ``tolerance`` pixels (Euclidean distance) of a mask pixel; ``tolerance=0`` asks for
    the pixel itself to be in the mask (the original paper allows 15 px on ImageNet-sized images).
    A constant heatmap (all zeros, say) points nowhere and counts as a miss.
    Returns the hit rate in [0, 1], or with ``reduce=None`` the hits (n,) bool.
    """
    heatmaps, masks = _maps_and_masks(heatmaps, masks)
    n, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, -1)
    peak = flat.argmax(axis=1)
    row, col = np.divmod(peak, width)
    rows, cols = np.mgrid[:height, :width]
    distance2 = (rows[None] - row[:, None, None]) ** 2 + (cols[None] - col[:, None, None]) ** 2
    hits = (masks & (distance2 <= tolerance**2)).any(axis=(1, 2))
    hits &= flat.max(axis=1) > flat.min(axis=1)
    return _reduce(hits, reduce)


def energy_in_mask(heatmaps, masks, reduce="mean"):
    """Fraction of each heatmap's mass inside the mask (the "energy" of Score-CAM's paper).

    ``heatmaps`` (n, H, W) non-negative (negative values are clipped to 0), ``masks`` (n, H, W)
    bool, same shape. An all-zero heatmap scores 0. Returns the mean fraction in [0, 1], or with
    ``reduce=None`` the per-image fractions (n,) float.
    """
    heatmaps, masks = _maps_and_masks(heatmaps, masks)
    heatmaps = np.maximum(heatmaps, 0.0)
    total = heatmaps.sum(axis=(1, 2))
    inside = (heatmaps * masks).sum(axis=(1, 2))
    return _reduce(np.where(total > 0, inside / np.where(total > 0, total, 1.0), 0.0), reduce)


def centre_baseline(shape, sigma=0.25):
    """A Gaussian bump at the image centre for every image: the map of a method that "knows"
    only that objects tend to be central. ``shape`` (n, H, W) (e.g. ``masks.shape``); ``sigma``
    as a fraction of the image side. Returns (n, H, W) float32 in [0, 1]."""
    n, height, width = shape
    rows = (np.arange(height) - (height - 1) / 2) / height
    cols = (np.arange(width) - (width - 1) / 2) / width
    bump = np.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / (2 * sigma**2))
    return np.broadcast_to(bump / bump.max(), (n, height, width)).astype(np.float32)


def random_baseline(shape, seed=0, smooth=8):
    """Random smooth heatmaps (n, H, W) float32 in [0, 1]: uniform noise on a grid of
    ``smooth`` x ``smooth`` cells upsampled bilinearly, so they have blobs like real CAMs."""
    from .cam import normalise, upsample

    n, height, width = shape
    coarse = np.random.default_rng(seed).uniform(size=(n, smooth, smooth)).astype(np.float32)
    return normalise(upsample(coarse, (height, width)), "random map")


@dataclass
class Curve:
    """A deletion curve: ``fractions`` (steps + 1,) of pixels removed, ``scores`` (n, steps + 1)
    class probability after each removal, ``auc`` (n,) area under each image's curve (lower
    means the map found the pixels the model needs)."""

    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray

    @property
    def mean(self):
        """The mean curve over images, (steps + 1,)."""
        return self.scores.mean(axis=0)


# The four-neighbour mean of a Jacobi step, as a 3x3 kernel for cv2.filter2D.
_NEIGHBOUR_MEAN = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
# cv2.filter2D takes at most this many channels per call (OpenCV 5 refuses 256).
_CV_CHANNELS = 128


def neighbour_fill(images, removed, iterations=40):
    """Fill removed pixels with the mean of their neighbours, repeatedly (a Jacobi solution of
    the discrete Laplace equation, edges replicated): ROAD's linear imputation without its
    sparse solver.

    ``images`` (m, H, W, C) float32, ``removed`` (m, H, W) bool. Kept pixels never change, so
    the filled values are smooth continuations of what is left. Returns (m, H, W, C) float32.
    """
    import cv2

    images = np.asarray(images, np.float32)
    m, height, width, channels = images.shape
    hole = np.broadcast_to(np.asarray(removed, bool)[..., None], images.shape)
    # Start holes at the mean of the kept pixels, so few iterations reach a smooth fill.
    kept = np.where(hole, 0.0, images).sum(axis=(1, 2), keepdims=True)
    count = np.maximum((~hole).sum(axis=(1, 2), keepdims=True), 1)
    start = np.where(hole, kept / count, images).astype(np.float32)
    filled = np.empty_like(start)
    # Images side by side as the channels of one (H, W, k*C) array: one OpenCV stencil call per
    # iteration covers k images, 4-8x faster than the same stencil written with numpy slices.
    per_call = max(1, _CV_CHANNELS // channels)
    for first in range(0, m, per_call):
        last = min(m, first + per_call)
        stack = np.ascontiguousarray(np.moveaxis(start[first:last], 0, 2).reshape(height, width, -1))
        open_ = np.ascontiguousarray(np.moveaxis(hole[first:last], 0, 2).reshape(height, width, -1), np.float32)
        if stack.shape[2] == 1:  # OpenCV reads and writes a single channel as (H, W)
            stack, open_ = stack[..., 0], open_[..., 0]
        fixed = stack * (1.0 - open_)
        around = np.empty_like(stack)
        for _ in range(iterations):
            # In place, through OpenCV's threads: stack = fixed + open * neighbour mean.
            cv2.filter2D(stack, -1, _NEIGHBOUR_MEAN, dst=around, borderType=cv2.BORDER_REPLICATE)
            cv2.multiply(around, open_, dst=around)
            cv2.add(fixed, around, dst=stack)
        filled[first:last] = np.moveaxis(stack.reshape(height, width, last - first, channels), 2, 0)
    return filled


def _ranks(heatmaps):
    """Rank of every pixel per image, 0 = hottest (ties broken in row-major order)."""
    flat = heatmaps.reshape(len(heatmaps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None], axis=1)
    return ranks.reshape(heatmaps.shape)


def deletion_curve(model, images, heatmaps, classes=None, *, steps=10, fill="road", order="most",
                   batch_size=64, output=None):
    """Remove pixels in heatmap order and follow the class probability.

    ``images`` (n, H, W, C) in the model's input range (``input_range``); ``heatmaps``
    (n, H, W) (any real values; higher = more important); ``classes`` None (top-1 of the clean
    image), int or n ints (a single sigmoid unit has two classes, 0 scored by 1 - p);
    ``output`` which output of a multi-output model. At step s of
    ``steps`` the fraction s / steps of pixels is removed, most important first
    (``order="most"``, MoRF: a good map makes the curve fall fast) or least important first
    (``"least"``, LeRF: it should stay high). ``fill``: "road" (neighbour-mean imputation),
    "blur" (a heavily blurred copy) or "zero" (black: the low end of the input range). All
    n * (steps + 1) copies go through
    ``gradients.predict`` at once. Returns a ``Curve``; its ``auc`` uses the trapezoid rule.
    """
    images = inputs.image_batch(images, model)
    n, height, width, channels = images.shape
    heatmaps = np.asarray(heatmaps, np.float32)
    if heatmaps.shape != (n, height, width) or not np.isfinite(heatmaps).all():
        raise ValueError(
            f"heatmaps must be finite and (n, H, W) = {(n, height, width)} to match the images; got {heatmaps.shape}."
        )
    if order not in ("most", "least"):
        raise ValueError(f"order must be 'most' or 'least', got {order!r}.")
    wanted = inputs.class_indices(classes, n, gradients.num_classes(model, output, images.shape[1:]))
    ranks = _ranks(heatmaps if order == "most" else -heatmaps)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * height * width).astype(int)
    removed = ranks[:, None] < counts[None, :, None, None]  # (n, steps + 1, H, W)
    copies = np.repeat(images[:, None], steps + 1, axis=1).reshape(-1, height, width, channels)
    removed = removed.reshape(-1, height, width)
    if fill == "road":
        copies = neighbour_fill(copies, removed)
    elif fill in ("blur", "zero"):
        black = np.full_like(images, ranges.input_range(model)[0])
        background = _blurred(images) if fill == "blur" else black
        background = np.repeat(background[:, None], steps + 1, axis=1).reshape(copies.shape)
        copies = np.where(removed[..., None], background, copies)
    else:
        raise ValueError(f"fill must be 'road', 'blur' or 'zero', got {fill!r}.")
    probs = gradients.predict(model, copies, "probabilities", batch_size, output=output).reshape(n, steps + 1, -1)
    target = inputs.top_classes(wanted, probs[:, 0])
    scores = np.take_along_axis(probs, target[:, None, None], axis=2)[..., 0]
    auc = ((scores[:, 1:] + scores[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1)
    return Curve(fractions=fractions, scores=scores, auc=auc)


def _blurred(images):
    """A strong Gaussian blur of each image (sigma = 1/8 of the side), batched in one call."""
    import cv2

    n, height, width, channels = images.shape
    stacked = np.moveaxis(images, 0, -1).reshape(height, width, channels * n)
    sigma = max(height, width) / 8
    # cv2 handles at most 512 channels in one call; chunks of images keep within that.
    per = max(1, 512 // channels)
    parts = [cv2.GaussianBlur(np.ascontiguousarray(stacked[..., i:i + per * channels]), (0, 0), sigma)
             for i in range(0, stacked.shape[-1], per * channels)]
    blurred = np.concatenate([p.reshape(height, width, -1) for p in parts], axis=-1)
    return np.moveaxis(blurred.reshape(height, width, channels, n), -1, 0).astype(np.float32)


@dataclass
class Randomization:
    """Result of ``randomization_check``: ``layers`` (steps,) names randomised cumulatively from
    the top, ``correlations`` (steps, n) rank correlation of each image's map with the original,
    ``maps`` (steps + 1, n, H, W) the original maps then the maps after each step."""

    layers: list
    correlations: np.ndarray
    maps: np.ndarray

    @property
    def mean(self):
        """Mean correlation per step, (steps,)."""
        return self.correlations.mean(axis=1)


def spearman(first, second):
    """Spearman rank correlation between paired maps (n, ...) -> (n,); constant maps give 0."""
    a = rankdata(np.asarray(first).reshape(len(first), -1), axis=1)
    b = rankdata(np.asarray(second).reshape(len(second), -1), axis=1)
    a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    return np.where(norm > 0, (a * b).sum(axis=1) / np.where(norm > 0, norm, 1.0), 0.0)


def _as_heatmap(maps):
    """Method output as (n, H, W): input-gradient maps (n, H, W, C) become |.| max over channels."""
    maps = np.asarray(maps, np.float32)
    return np.abs(maps).max(axis=-1) if maps.ndim == 4 else maps


def _reinitialise(layer, seed):
    """Give ``layer``'s trainable weights fresh values from its own initialisers (Glorot
    uniform where a layer names none); moving statistics are left alone."""
    for index, variable in enumerate(layer.trainable_weights):
        initializer = getattr(layer, f"{variable.name}_initializer", None) or keras.initializers.GlorotUniform()
        if isinstance(initializer, keras.initializers.Initializer) and hasattr(initializer, "seed"):
            initializer = initializer.__class__.from_config({**initializer.get_config(), "seed": seed + index})
        variable.assign(initializer(variable.shape, dtype=variable.dtype))


def randomization_check(method, model, images, classes=None, layers=None, *, seed=0, **kwargs):
    """Cascading model randomisation (Adebayo et al. 2018).

    ``method(model, images, classes, **kwargs)`` returns maps (n, H, W) or (n, H, W, C) (made
    absolute values, maximum over channels). ``layers``: names of the layers to randomise, in order, cumulatively;
    default every layer with trainable weights, from the output down. The chosen layers of
    ``model`` itself are randomised, so the functions already compiled for it are reused rather
    than traced again for a clone (seconds per method on an ImageNet network); their weights are
    put back when the check ends, also when ``method`` raises, so the model leaves as it came.
    ``classes=None`` fixes each image's top-1 class of the trained model, so every step explains
    the same class. Returns a ``Randomization``; a method that reads the model should decorrelate
    quickly.
    """
    from .models import find_layer, iter_layers

    images = inputs.image_batch(images, model)
    wanted = gradients.resolve_classes(model, images, classes)
    if layers is None:
        chosen = [layer for _, layer in iter_layers(model)
                  if layer.trainable_weights and not isinstance(layer, keras.Model)][::-1]
    else:
        chosen = [find_layer(model, name) for name in layers]
    trained = [(variable, keras.ops.convert_to_numpy(variable).copy())
               for layer in chosen for variable in layer.trainable_weights]
    try:
        maps = [_as_heatmap(method(model, images, wanted, **kwargs))]
        for step, layer in enumerate(chosen):
            _reinitialise(layer, seed + 1000 * step)
            maps.append(_as_heatmap(method(model, images, wanted, **kwargs)))
    finally:
        for variable, value in trained:
            variable.assign(value)
    correlations = np.stack([spearman(maps[0], later) for later in maps[1:]])
    return Randomization(layers=[layer.name for layer in chosen], correlations=correlations, maps=np.stack(maps))
