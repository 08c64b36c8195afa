"""Where the network looks: class activation maps and gradient-based saliency.

Every CAM method here has the same skeleton (in the spirit of pytorch-grad-cam's BaseCAM):

1. ``gradients.probe`` gives, in one batched compiled call, the chosen layer's activations
   A (n, h, w, c) and the gradients G of the class score with respect to them;
2. the method says only how A and G become a map (n, h, w): Grad-CAM weighs each channel by
   its mean gradient, Grad-CAM++ by positive gradients times its alpha coefficients, Layer-CAM
   weighs every position by its own positive gradient, Score-CAM by how much the class score
   rises when the input is masked by that channel;
3. ReLU, bilinear upsampling to the input size, and division by each map's maximum, so every
   method returns (n, H, W) float32 in [0, 1] that can be scored and plotted the same way.

Input-gradient methods (``saliency``, ``smooth_grad``, ``guided_backprop``, ``deconvnet``) and
``guided_grad_cam`` share the same probe with ``input_gradient=True``.

Conventions (see DESIGN.md): ``classes=None`` explains each image's top-1 class, an int the
same class for all, a sequence one class per image; scores are logits (pre-softmax) unless
``scores="probabilities"``; ``layer=None`` is ``models.last_conv_layer(model)``. A map with no
positive evidence is returned as zeros (never NaN) and the call warns once.

Readers' models: images are taken in the range the model expects (``input_range``: a leading
``Rescaling(1/255)`` means 0-255 pixels); a single sigmoid unit is a two-class head (class 1
is its logit z, class 0 is -z, and ``classes=None`` picks 1 where p > 0.5); a multi-output
model is explained one output at a time with ``output=`` (index or name); a subclassed model
works where the Keras backend (TensorFlow's ``tf.function``, ``jax.jit``) can trace it.
"""

import sys
import warnings

import numpy as np

from . import gradients, inputs
from ._tf import keras

# Keeps Grad-CAM++'s alpha finite where the denominator vanishes (the paper's own guard).
_EPS = 1e-7
def _batch_size(images, batch_size):
    """``batch_size`` if given, else ``gradients.chunk_size``: the whole batch of small images."""
    return gradients.chunk_size(images, batch_size)


def _request(model, images, classes, layer, scores, output):
    """The call resolved once (``gradients.request``) at the CAM layer (``layer=None``: the last
    feature map, ``gradients.default_layer``), which must output (n, h, w, c)."""
    return gradients.request(model, images, classes, [layer], scores=scores, output=output, feature_maps=True)


def _probe_layer(call, batch_size):
    """(activations, gradients, classes) of the request's layer."""
    result = gradients.run_probe(call, batch_size=_batch_size(call.images, batch_size))
    return result.activations[0], result.gradients[0], result.classes


def _bilinear_matrix(size, source):
    """(size, source) weights of bilinear upsampling along one axis, the half-pixel rule of
    ``keras.ops.image.resize`` (pixel centres aligned, edges clamped): row i mixes the two
    source pixels nearest to (i + 0.5) * source / size - 0.5."""
    position = np.clip((np.arange(size) + 0.5) * (source / size) - 0.5, 0.0, source - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, source - 1)
    weight = (position - low).astype(np.float32)
    matrix = np.zeros((size, source), np.float32)
    np.add.at(matrix, (np.arange(size), low), 1.0 - weight)
    np.add.at(matrix, (np.arange(size), high), weight)
    return matrix


def upsample(maps, size):
    """Bilinear resize of maps (n, h, w) to ``size`` (H, W); returns (n, H, W) float32.

    Upsampling is two small matrix products (rows, then columns), the same numbers as
    ``keras.ops.image.resize(..., "bilinear")`` without a trip through the backend; shrinking
    goes through ``keras.ops.image.resize`` (it filters first). Bilinear weights are
    non-negative, so non-negative maps stay non-negative.
    """
    maps = np.asarray(maps, np.float32)
    size = tuple(int(v) for v in size)
    if maps.shape[1:3] == size:
        return maps
    if size[0] >= maps.shape[1] and size[1] >= maps.shape[2]:
        rows, columns = _bilinear_matrix(size[0], maps.shape[1]), _bilinear_matrix(size[1], maps.shape[2])
        return np.matmul(np.matmul(rows, maps), columns.T).astype(np.float32, copy=False)
    resized = keras.ops.image.resize(maps[..., None], size, interpolation="bilinear")
    return keras.ops.convert_to_numpy(resized)[..., 0].astype(np.float32)


def _user_stacklevel():
    """The ``stacklevel`` that makes a warning point at the first caller outside this package
    (how deep the package's own frames go differs from method to method)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(__package__ + "."):
        frame, level = frame.f_back, level + 1
    return level


def normalise(maps, what="heatmap"):
    """Divide each map (n, ...) by its maximum, giving values in [0, 1].

    Maps whose maximum is 0 (no positive evidence, or zero gradients) stay all zeros; if there
    are any, one warning per call says how many.
    """
    maps = np.maximum(np.asarray(maps, np.float32), 0.0)
    peaks = maps.reshape(len(maps), -1).max(axis=1)
    empty = ~(peaks > 0)
    if empty.any():
        warnings.warn(
            f"{int(empty.sum())} of {len(maps)} {what}s are all zero (the class score has no positive "
            "gradient there); they are returned as zeros.",
            stacklevel=_user_stacklevel(),
        )
    # Divided in place, on the fresh array np.maximum made: an all-zero map stays zero.
    maps /= np.where(empty, np.float32(1.0), peaks).reshape((-1,) + (1,) * (maps.ndim - 1))
    return maps


def _finish(maps, images, what):
    """ReLU, upsample (n, h, w) maps to the images' size, normalise: (n, H, W) in [0, 1]."""
    return normalise(upsample(np.maximum(maps, 0.0), images.shape[1:3]), what)


def _weighted_cam(weigh, model, images, classes, layer, scores, batch_size, output):
    """Shared skeleton: ``weigh(A, G) -> (n, h, w)`` on the probed layer, then ``_finish``."""
    call = _request(model, images, classes, layer, scores, output)
    activations, grads, _ = _probe_layer(call, batch_size)
    return _finish(weigh(activations, grads), call.images, "heatmap")


def _channel_sum(activations, weights):
    """sum_k weights[n, k] * activations[n, :, :, k] as one matrix product: (n, h, w)."""
    n, height, width, channels = activations.shape
    return np.matmul(activations.reshape(n, height * width, channels), weights.reshape(n, channels, 1)).reshape(
        n, height, width)


def _grad_cam_map(activations, grads):
    return _channel_sum(activations, grads.mean(axis=(1, 2)))


def _grad_cam_plus_plus_map(activations, grads):
    # With the class score S passed through exp (Chattopadhay et al. 2018), the 2nd and 3rd
    # derivatives of exp(S) are exp(S) G^2 and exp(S) G^3, and exp(S) cancels in alpha.
    squared, cubed = grads**2, grads**3
    sums = activations.sum(axis=(1, 2), keepdims=True)
    denominator = 2.0 * squared + sums * cubed
    alpha = np.where(grads != 0, squared / np.where(np.abs(denominator) > _EPS, denominator, _EPS), 0.0)
    return _channel_sum(activations, (alpha * np.maximum(grads, 0.0)).sum(axis=(1, 2)))


def _layer_cam_map(activations, grads):
    return (np.maximum(grads, 0.0) * activations).sum(axis=-1)


def grad_cam(model, images, classes=None, layer=None, *, scores="logits", batch_size=None,
             output=None):
    """Grad-CAM (Selvaraju et al. 2017): channels weighted by their mean gradient.

    ``images`` (n, H, W, C) float in the model's input range (``input_range``: [0, 1] for the
    book's models, [0, 255] for a model with ``Rescaling(1/255)`` inside); ``classes`` None /
    int / n ints (a single sigmoid unit has two classes: 1 its logit, 0 the negated logit);
    ``layer`` a name or layer (default ``models.last_conv_layer``); ``scores`` "logits" or
    "probabilities"; ``batch_size`` images per compiled call (None: as many as fit in about a
    two million input values, e.g. 170 images of 64 px, 13 of 224 px); ``output`` which output of a
    multi-output model (index or name). Returns (n, H, W) float32 in [0, 1].
    """
    return _weighted_cam(_grad_cam_map, model, images, classes, layer, scores, batch_size, output)


def grad_cam_plus_plus(model, images, classes=None, layer=None, *, scores="logits", batch_size=None,
                       output=None):
    """Grad-CAM++ (Chattopadhay et al. 2018): positive gradients weighted per position by alpha.

    alpha = G^2 / (2 G^2 + sum_ij(A) G^3), where G != 0. Arguments and result as ``grad_cam``.
    """
    return _weighted_cam(_grad_cam_plus_plus_map, model, images, classes, layer, scores, batch_size, output)


def layer_cam(model, images, classes=None, layer=None, *, scores="logits", batch_size=None,
              output=None):
    """Layer-CAM (Jiang et al. 2021): sum over channels of relu(G) * A, position by position.

    Arguments and result as ``grad_cam``; it stays sharp at early, high-resolution layers.
    """
    return _weighted_cam(_layer_cam_map, model, images, classes, layer, scores, batch_size, output)


def score_cam(model, images, classes=None, layer=None, *, baseline=0.0, copies_per_chunk=512, batch_size=None,
              output=None):
    """Score-CAM (Wang et al. 2020): channels weighted by the rise in class probability when
    the input is masked by that channel's map.

    Each channel's activation map is upsampled to the input size and scaled to [0, 1]; the
    masked copy is ``image * mask + baseline * (1 - mask)`` (``baseline`` in the model's input
    range; 0 is black in both [0, 1] and [0, 255]). A channel's weight is the softmax
    probability of the class for its masked copy minus that of the plain baseline image. All
    n * c copies go through ``gradients.run_scores`` in chunks of about ``copies_per_chunk``
    copies (the bound on memory). Arguments and result otherwise as ``grad_cam``.
    """
    call = _request(model, images, classes, layer, "logits", output)
    images = call.images
    batch_size = _batch_size(images, batch_size)
    first = gradients.run_probe(call, batch_size=batch_size)
    activations, chosen = first.activations[0], first.classes
    n, _, _, channels = activations.shape
    per_chunk = max(1, copies_per_chunk // channels)
    base = np.full((1, *images.shape[1:]), baseline, np.float32)
    base_score = gradients.run_scores(call.derived(images=base), "probabilities")[0]  # (K,)
    weights = np.empty((n, channels), np.float32)
    for start in range(0, n, per_chunk):  # chunks of images, bounded by memory, not per image
        stop = min(n, start + per_chunk)
        maps = np.moveaxis(activations[start:stop], -1, 1)  # (m, c, h, w)
        masks = inputs.minmax(upsample(maps.reshape(-1, *maps.shape[2:]), images.shape[1:3]), (1, 2))
        masks = masks.reshape(stop - start, channels, *images.shape[1:3], 1)
        masked = images[start:stop, None] * masks + baseline * (1.0 - masks)
        probs = gradients.run_scores(call.derived(images=masked.reshape(-1, *images.shape[1:])), "probabilities",
                                     batch_size)
        target = np.repeat(chosen[start:stop], channels)
        rise = probs[np.arange(len(target)), target] - base_score[target]
        weights[start:stop] = rise.reshape(stop - start, channels)
    return _finish(_channel_sum(activations, weights), images, "heatmap")


def _input_gradient(call, relu, batch_size):
    """The input gradient (n, H, W, C) of the request's class scores under ReLU rule ``relu``."""
    return gradients.run_probe(call, relu=relu, input_gradient=True,
                               batch_size=_batch_size(call.images, batch_size)).input_gradient


def saliency(model, images, classes=None, *, scores="logits", batch_size=None, output=None):
    """Vanilla gradient saliency (Simonyan et al. 2014): the absolute gradient of the score with
    respect to each pixel, maximum over channels. Arguments as ``grad_cam``.

    Returns (n, H, W) float32 in [0, 1] (each map divided by its maximum).
    """
    grads = _input_gradient(gradients.request(model, images, classes, scores=scores, output=output), "plain",
                            batch_size)
    return normalise(np.abs(grads).max(axis=-1), "saliency map")


def smooth_grad(model, images, classes=None, *, samples=25, noise=0.15, seed=0, scores="logits",
                batch_size=None, output=None):
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies of each image.

    Gaussian noise of standard deviation ``noise`` * (max - min of the image) is added to
    ``samples`` copies per image; the copies are clipped to the model's input range and all
    n * samples copies go through one batched probe. ``classes=None`` means the top-1 class of
    the clean image. Returns (n, H, W) float32 in [0, 1].
    """
    call = gradients.request(model, images, classes, scores=scores, output=output)
    images, n = call.images, len(call.images)
    wanted = gradients.top_classes(call, _batch_size(images, batch_size))
    spread = (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3))).reshape(n, 1, 1, 1, 1)
    rng = np.random.default_rng(seed)
    noisy = images[:, None] + rng.normal(size=(n, samples, *images.shape[1:])).astype(np.float32) * noise * spread
    noisy = np.clip(noisy, *call.input_range.pair).reshape(n * samples, *images.shape[1:])
    grads = _input_gradient(call.derived(images=noisy, classes=np.repeat(wanted, samples)), "plain", batch_size)
    maps = np.abs(grads).max(axis=-1).reshape(n, samples, *images.shape[1:3]).mean(axis=1)
    return normalise(maps, "saliency map")


def guided_backprop(model, images, classes=None, *, scores="logits", batch_size=None, output=None):
    """Guided backpropagation (Springenberg et al. 2015): the input gradient with every ReLU
    passing only positive gradients at positive inputs.

    Returns the raw gradients (n, H, W, C) float32 (signed, unscaled); show them with
    ``plotting.gradient_image``.
    """
    return _input_gradient(gradients.request(model, images, classes, scores=scores, output=output), "guided",
                           batch_size)


def deconvnet(model, images, classes=None, *, scores="logits", batch_size=None, output=None):
    """Deconvnet (Zeiler & Fergus 2014): the input gradient with every ReLU passing only positive
    gradients, whatever its input. Returns raw gradients (n, H, W, C) float32."""
    return _input_gradient(gradients.request(model, images, classes, scores=scores, output=output), "deconvnet",
                           batch_size)


def guided_grad_cam(model, images, classes=None, layer=None, *, scores="logits", batch_size=None,
                    output=None):
    """Guided Grad-CAM: guided backpropagation times the (upsampled, [0, 1]) Grad-CAM map.

    Returns (n, H, W, C) float32: guided gradients kept where Grad-CAM finds the class.
    """
    call = _request(model, images, classes, layer, scores, output)
    activations, grads, chosen = _probe_layer(call, batch_size)
    heatmaps = _finish(_grad_cam_map(activations, grads), call.images, "heatmap")
    # The same classes as Grad-CAM, resolved once, so both halves explain the same class.
    guided = _input_gradient(call.derived(classes=chosen, layers=()), "guided", batch_size)
    return guided * heatmaps[..., None]


METHODS = {
    "Grad-CAM": grad_cam,
    "Grad-CAM++": grad_cam_plus_plus,
    "Layer-CAM": layer_cam,
    "Score-CAM": score_cam,
    "Saliency": saliency,
    "SmoothGrad": smooth_grad,
}
"""Every method that returns (n, H, W) heatmaps in [0, 1], by display name."""

# Forward-only and path-integral methods live in modules of their own; cam is their public home.
from .integrated_gradients import attribution_map, integrated_gradients, integrated_gradients_map  # noqa: E402
from .perturbation import occlusion, rise  # noqa: E402
