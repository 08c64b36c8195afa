"""Integrated gradients (Sundararajan et al. 2017): the gradient averaged along a straight path
from a baseline image to the image, times the difference between them.

attribution = (x - x') * integral_0^1 dS(x' + a (x - x')) / dx da, per pixel and channel.
Completeness: the attributions of an image sum to S(x) - S(x'), which a test can check. The
integral is taken by the trapezoid rule on ``steps`` intervals (steps + 1 points on the path);
all n * (steps + 1) points go through the core's batched probe (``input_gradient=True``), in
groups of images bounded by memory, never one point at a time. The call is resolved once
(``gradients.request``); the path's points are derived from it (``Request.derived``), so they
are not checked again.
"""

import numpy as np

from . import gradients
from .perturbation import baseline_images, positive_unit

# Input values per group of path points built in numpy (64 MB of float32).
_CHUNK_VALUES = 2**24
# Input values per compiled call, as in cam.
_VALUES_PER_CALL = 2**20


def trapezoid_weights(steps):
    """Points a = 0, 1/steps, ..., 1 on the path and their trapezoid weights (sum 1): two
    (steps + 1,) float32 arrays. ValueError unless ``steps`` is an int >= 1."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be an int >= 1 (intervals of the path integral); got {steps!r}.")
    weights = np.full(steps + 1, 1.0 / steps, np.float32)
    weights[[0, -1]] /= 2
    return np.linspace(0.0, 1.0, steps + 1, dtype=np.float32), weights


def integrated_gradients(model, images, classes=None, *, baseline="black", steps=32, scores="logits",
                         batch_size=None, output=None):
    """Integrated gradients of the class score: signed attributions (n, H, W, C) float32.

    ``images`` (n, H, W, C) in the model's input range; ``classes`` None (each image's top-1
    class) / int / n ints; ``baseline`` the path's start, as in ``perturbation.baseline_images``:
    "black" (the default), "blur" (a blurred copy), a number, or an array (H, W, C) or
    (n, H, W, C) in the model's input range; ``steps`` trapezoid intervals (costs steps + 1
    forward and backward passes per image; 32 keeps completeness within 1 % on the book's
    models); ``scores`` "logits" or "probabilities"; ``batch_size`` path points per compiled
    call; ``output`` which output of a multi-output model. Each image's attributions sum to
    score(image) - score(baseline), up to the trapezoid rule's error. For a map to plot or
    score, use ``attribution_map`` (or ``integrated_gradients_map``).
    """
    call = gradients.request(model, images, classes, scores=scores, output=output)
    images = call.images
    alphas, weights = trapezoid_weights(steps)
    base = baseline_images(model, images, baseline, call.input_range)
    pixels = int(np.prod(images.shape[1:]))
    per_group = max(1, _CHUNK_VALUES // (pixels * (steps + 1)))
    per_call = batch_size if batch_size is not None else max(1, _VALUES_PER_CALL // pixels)
    wanted = gradients.top_classes(call, per_call)
    difference = images - base
    attributions = np.empty_like(images)
    for start in range(0, len(images), per_group):  # memory-bounded groups of images
        stop = min(len(images), start + per_group)
        path = base[start:stop, None] + alphas[None, :, None, None, None] * difference[start:stop, None]
        points = call.derived(images=path.reshape(-1, *images.shape[1:]), classes=np.repeat(wanted[start:stop], steps + 1))
        probe = gradients.run_probe(points, input_gradient=True, batch_size=per_call)
        grads = probe.input_gradient.reshape(stop - start, steps + 1, *images.shape[1:])
        attributions[start:stop] = difference[start:stop] * np.einsum("s,nshwc->nhwc", weights, grads)
    return attributions


def attribution_map(attributions):
    """The map the book plots and scores for signed attributions (n, H, W, C): each pixel's
    attribution summed over channels (its share of the score difference), positive part, divided
    by each map's maximum. Returns (n, H, W) float32 in [0, 1]."""
    attributions = np.asarray(attributions, np.float32)
    if attributions.ndim != 4:
        raise ValueError(f"attributions must be (n, H, W, C); got shape {attributions.shape}.")
    return positive_unit(attributions.sum(axis=-1), "attribution map")


def integrated_gradients_map(model, images, classes=None, **kwargs):
    """``attribution_map(integrated_gradients(model, images, classes, **kwargs))``: (n, H, W)
    float32 in [0, 1], where the pixels pushed the class score up from the baseline's."""
    return attribution_map(integrated_gradients(model, images, classes, **kwargs))
