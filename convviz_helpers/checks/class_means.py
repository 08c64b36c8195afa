"""Activations assignment: how strongly each channel responds to each class, on average."""

import numpy as np

from .. import activations
from ._common import _as_array, _call, _fail, _no_nan


def _means_case():
    """Seeded post-ReLU feature maps (n, h, w, c) with h != w and c != the number of classes,
    labels (n,) with unequal class sizes, and the number of classes (4)."""
    rng = np.random.default_rng(41)
    labels = rng.permutation(np.repeat(np.arange(4), [5, 3, 6, 4]))
    # Each class lifts a different channel, so a right table is far from a flat one.
    lift = np.eye(4, 7)[labels][:, None, None, :] * 2.0
    maps = np.maximum(rng.normal(0.0, 1.0, (len(labels), 5, 6, 7)) + lift, 0.0).astype(np.float32)
    return maps, labels, 4


def class_means(maps, labels, num_classes):
    """The package's answer (``activations.class_means``): (num_classes, channels), each
    channel's activation averaged over the positions of each map and then over the images of
    each class."""
    maps = np.asarray(maps, np.float64)
    summary = activations.LayerSummary(maps.mean(axis=(1, 2)), (maps == 0).mean(axis=(1, 2)))
    return activations.class_means({"maps": summary}, labels, num_classes)["maps"]


def check_class_means(fn):
    """Grade ``fn(maps, labels, num_classes) -> (num_classes, channels)``: maps (n, h, w, c),
    each class's mean, over its images and over positions, of every channel. The hints name a
    transposed table, the maximum instead of the mean, sums and class-blind averages."""
    __tracebackhide__ = True
    maps, labels, k = _means_case()
    result = _as_array(_call(fn, maps.copy(), labels.copy(), k), "the table of class means")
    expected = class_means(maps, labels, k)
    if result.shape == expected.shape[::-1]:
        _fail(f"your table is transposed: one row per class, one column per channel, shape {expected.shape}.")
    if result.shape != expected.shape:
        _fail(f"expected shape (num_classes, channels) = {expected.shape}; got {result.shape}. Average "
              "over the positions (axes 1 and 2) and over each class's images, keep the channels.")
    result = result.astype(np.float64)
    _no_nan(result, "every class of the test case has images.")
    if np.allclose(result, expected, rtol=1e-4, atol=1e-6):
        print(f"✓ class means match on {len(labels)} maps, {k} classes, {maps.shape[-1]} channels")
        return
    by_class = [labels == c for c in range(k)]
    peaks = maps.max(axis=(1, 2))
    per_image = maps.mean(axis=(1, 2))
    mistakes = [
        (np.stack([peaks[m].mean(axis=0) for m in by_class]),
         "you took each map's maximum; the table averages over the positions (the channel's mean activation)."),
        (np.stack([per_image[m].sum(axis=0) for m in by_class]),
         "sums, not means: a class with more images would look stronger; divide by its image count."),
        (np.repeat(per_image.mean(axis=0, keepdims=True), k, axis=0),
         "every row is the same: average only the images of each class (labels == k), one row per class."),
    ]
    for wrong, hint in mistakes:
        if wrong.shape == result.shape and np.allclose(result, wrong, rtol=1e-4, atol=1e-6):
            _fail(hint)
    worst = float(np.abs(result - expected).max())
    _fail(f"your table differs from the class means by up to {worst:.3g}: for class k, take the maps "
          "of the images with label k, average each channel over positions and over those images.")
