"""Exercises 4 and 5: Grad-CAM from a layer's activations and gradients, and its two halves
(the class map, and upsampling with normalisation)."""

import numpy as np

from .. import cam, data, gradients, inputs
from ._common import _as_array, _call, _fail, _no_nan, _quiet, grader_model


def _grad_cam_case():
    """(model, images (6, 32, 40, 3), classes, layer): non-square images so a transposed map has
    the wrong shape; a layer that is not the last conv layer; for each image a class that is not
    its top-1 class but has some positive evidence at that layer, except the last image, which
    gets the zero-gradient class (its map must come back all zeros, not NaN)."""
    model, layer = grader_model(), "conv2"
    images = data.make_shapes(6, image_size=40, seed=7).images[:, 4:36]
    count = len(data.SHAPE_CLASSES)
    top = gradients.probe(model, images).classes
    # Every candidate class at once: row k asks for class (top + k) mod count of each image.
    candidates = (top[None] + np.arange(1, count)[:, None]) % count
    probed = gradients.probe(model, np.concatenate([images] * (count - 1)), candidates.ravel(), [layer])
    weights = probed.gradients[0].mean(axis=(1, 2), keepdims=True)
    evidence = ((weights * probed.activations[0]).sum(-1) > 0).any(axis=(1, 2)).reshape(count - 1, -1)
    classes = candidates[evidence.argmax(axis=0), np.arange(len(images))]
    classes[-1] = count
    return model, images, classes.astype(int).tolist(), layer


def _grad_cam_mistakes(model, images, classes, layer):
    """What typical mistakes produce on the grading case: hint -> (n, H, W) maps."""
    size = images.shape[1:3]
    probed = gradients.probe(model, images, classes, [layer])
    acts, grads = probed.activations[0], probed.gradients[0]

    def finish(raw):
        return _quiet(cam.normalise, cam.upsample(np.maximum(raw, 0), size))

    def minmax(raw):
        return inputs.minmax(cam.upsample(raw, size), axes=(1, 2))

    weights = grads.mean(axis=(1, 2), keepdims=True)
    probability_grads = gradients.probe(model, images, classes, [layer], scores="probabilities").gradients[0]
    nearest = np.repeat(np.repeat(np.maximum((weights * acts).sum(-1), 0), size[0] // acts.shape[1], 1),
                        size[1] // acts.shape[2], 2)
    return {
        "values below 0 were hidden by min-max scaling: did you apply the ReLU before normalising? "
        "Negative evidence must become 0.": minmax((weights * acts).sum(-1)),
        "you averaged gradients across the batch: each image's channel weights are the mean of its "
        "own gradients over positions (axis=(1, 2)).": finish((grads.mean(axis=(0, 1, 2)) * acts).sum(-1)),
        "you weighted each position by its own gradient (that is Layer-CAM without its ReLU); "
        "Grad-CAM averages each channel's gradient over positions first.": finish((grads * acts).sum(-1)),
        "you explained each image's top-1 class, not the `classes` asked for: pass `classes` on to "
        "probe.": _quiet(cam.grad_cam, model, images, None, layer),
        "you used the last conv layer, not the `layer` asked for: pass `layer` on to probe.":
            _quiet(cam.grad_cam, model, images, classes, None),
        "you took gradients of the softmax probability; Grad-CAM uses the class logit (probe's default "
        "scores).": finish((probability_grads.mean(axis=(1, 2), keepdims=True) * acts).sum(-1)),
        "the map looks blocky: upsample bilinearly (cam.upsample, or cv2.resize with INTER_LINEAR), "
        "not by repeating pixels.": _quiet(cam.normalise, nearest),
    }


def _distance(first, second):
    """Mean absolute difference of two map batches (inf if their shapes differ). Small, not
    zero, for the same maps: bilinear resizers differ a little at the borders."""
    return float(np.abs(first - second).mean()) if first.shape == second.shape else np.inf


def check_grad_cam(fn):
    """Grade ``fn(model, images, classes, layer) -> (n, H, W)`` against ``cam.grad_cam``.

    The case: ``grader_model()``, six 32×40 shapes images, one class per image (not the top-1
    ones, and for the last image a class whose score has zero gradient), ``layer="conv2"``.
    Expected: float maps in [0, 1] at input resolution, each divided by its own maximum, the
    zero-gradient map all zeros (never NaN).
    """
    __tracebackhide__ = True
    model, images, classes, layer = _grad_cam_case()
    result = _as_array(_call(fn, model, images.copy(), list(classes), layer), "the heatmaps")
    _judge_heatmaps(result, model, images, classes, layer)
    print(f"✓ grad_cam matches the reference on {len(images)} images")


def _judge_heatmaps(result, model, images, classes, layer):
    """Fail with the hint for what is wrong with ``result``, the (n, H, W) heatmaps of the
    Grad-CAM case ``(model, images, classes, layer)``; return quietly when they match
    ``cam.grad_cam``. Shared by every grader of a part of Grad-CAM, so each names a mistake the
    same way."""
    __tracebackhide__ = True
    n, height, width = images.shape[:3]
    expected = _quiet(cam.grad_cam, model, images, classes, layer)
    if result.shape != expected.shape:
        found = gradients.probe(model, images[:1], classes[:1], [layer]).activations[0].shape[1:3]
        if result.shape == (n, width, height):
            _fail(f"wrong shape {result.shape}: the heatmap looks transposed. Expected (n, H, W) = "
                  f"{expected.shape}; note cv2.resize takes (width, height).")
        if result.shape[1:3] == tuple(found):
            _fail(f"wrong shape {result.shape}: that is the layer's resolution. Expected (n, H, W) = "
                  f"{expected.shape} at input resolution: upsample the maps (cam.upsample).")
        _fail(f"wrong shape: expected (n, H, W) at input resolution = {expected.shape}, got {result.shape}.")
    _no_nan(result, "the last image's class has zero gradient, so its map's maximum is 0; "
            "divide only maps whose maximum is above 0 and leave the others all zeros.")
    if result.min() < -1e-4:
        _fail(f"values below 0: did you apply the ReLU? Grad-CAM keeps only evidence for the class "
              f"(your minimum is {result.min():.3g}).")
    peaks = result.reshape(n, -1).max(axis=1)
    # A map may rightly be all zeros (no positive evidence); any other map peaks at exactly 1.
    if result.max() > 1 + 1e-4 or not np.all((peaks < 1e-6) | np.isclose(peaks, 1.0, atol=1e-3)):
        hint = " (divide each map by its own maximum, not the batch's)" if np.isclose(result.max(), 1.0) else ""
        _fail(f"not normalised to [0, 1]: each map's maximum should be 1, yours are "
              f"{np.round(peaks, 3).tolist()}{hint}.")
    if np.abs(result[:-1] - result[:1]).max() < 1e-6:
        _fail("your map does not depend on the image: every heatmap is the same. Use each image's own "
              "activations and gradients.")
    if _distance(result, expected) < 0.01:
        return
    mistakes = _grad_cam_mistakes(model, images, classes, layer)
    distance, hint = min((_distance(result, np.asarray(wrong)), hint) for hint, wrong in mistakes.items())
    if distance < 0.01:
        _fail(hint)
    error = float(np.abs(result - expected).mean())
    _fail(f"your heatmaps differ from the reference (mean absolute difference {error:.3f}). Grad-CAM: "
          "weights = mean gradient per channel; map = ReLU(sum over channels of weight × activation); "
          "upsample to the input size; divide each map by its maximum.")


def _probed_case():
    """The Grad-CAM grading case and its probed layer: (model, images, classes, layer,
    activations, gradients), the last two (n, h, w, channels) for the class logits."""
    model, images, classes, layer = _grad_cam_case()
    probed = gradients.probe(model, images, classes, [layer])
    return model, images, classes, layer, probed.activations[0], probed.gradients[0]


def check_class_map(fn):
    """Grade ``fn(activations, gradients) -> maps``: the first half of Grad-CAM, at the layer's
    own resolution. Both inputs are (n, h, w, channels); ``maps`` (n, h, w) is, per image, the
    ReLU of the channels summed with weights = each channel's gradient averaged over positions.

    Graded on ``check_grad_cam``'s case: the maps are upsampled and divided by their maximum the
    reference way (negative values kept, so a missing ReLU shows) and then judged as Grad-CAM
    heatmaps, so a mistake gets the same hint as in the whole method.
    """
    __tracebackhide__ = True
    model, images, classes, layer, acts, grads = _probed_case()
    given = (acts.copy(), grads.copy())
    maps = _as_array(_call(fn, *given), "the class maps")
    if maps.shape != acts.shape[:3]:
        _fail(f"wrong shape: expected (n, h, w) = {acts.shape[:3]}, one value per position of the layer, "
              f"got {maps.shape}. Sum the weighted activations over the channel axis (axis=-1).")
    _no_nan(maps, "the inputs are finite, so something divided by zero.")
    maps = cam.upsample(maps, images.shape[1:3])
    peaks = maps.max(axis=(1, 2), keepdims=True)
    _judge_heatmaps(maps / np.where(peaks > 0, peaks, 1.0), model, images, classes, layer)
    print(f"✓ class_map matches Grad-CAM's map on {len(images)} images")


def check_heatmaps(fn):
    """Grade ``fn(maps, size) -> heatmaps``: the second half of Grad-CAM. ``maps`` (n, h, w) are
    non-negative class maps at a layer's resolution, ``size`` is the images' (H, W); the result
    (n, H, W) is each map upsampled bilinearly and divided by its own maximum, in [0, 1], a map
    whose maximum is 0 staying all zeros.

    Graded on ``check_grad_cam``'s case (32×40 images, so a swapped (width, height) shows), with
    the reference class maps; judged as Grad-CAM heatmaps.
    """
    __tracebackhide__ = True
    model, images, classes, layer, acts, grads = _probed_case()
    maps = np.maximum((grads.mean(axis=(1, 2), keepdims=True) * acts).sum(axis=-1), 0.0)
    result = _as_array(_call(fn, maps.copy(), tuple(images.shape[1:3])), "the heatmaps")
    _judge_heatmaps(result, model, images, classes, layer)
    print(f"✓ heatmaps match Grad-CAM's on {len(images)} images of {images.shape[1]}×{images.shape[2]} pixels")
