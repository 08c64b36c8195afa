"""What filters respond to: their weights, the images that excite them, the images a class wants.

- ``kernel_images`` / ``kernel_grid``: a conv layer's learned kernels, as RGB tiles for the
  first layer and as one small map per input channel deeper in.
- ``filter_patterns``: for every requested filter of a layer, an input image grown by gradient
  ascent to excite that filter; all filters are optimised together as one batch.
- ``class_patterns``: the same ascent on the class logits (the model's scores before softmax).
- ``pattern_grid``: a titled figure of such images.

How the ascent works: one compiled program holds a whole optimisation. Each image of the batch
has its own target (a channel of the layer, or a class), picked with a gather, so a single
objective covers every filter. Gradients are normalised per image; images never interact
(the model runs with ``training=False``), so a filter's pattern does not depend on which other
filters share its batch. Random numbers (start noise, jitter) are drawn per target from
``(seed, target)``, which makes "filter 3 alone" and "row 3 of filters 0-3" the same image.

Two modes:

- plain (default), the recipe of *Deep Learning with Python*: start from grey plus a little
  noise, step along the normalised gradient of the filter's mean activation (a 2-pixel border
  of the feature map left out, where zero padding dominates), keep pixels in the model's input
  range by clipping ([0, 1] for the book's models, [0, 255] for a model with ``Rescaling(1/255)``
  inside; see ``input_range``), map them back to [0, 1] and show the result standardised:
  ``clip(0.5 + 0.15 * (x - mean) / std, 0, 1)``.
  0.15 keeps about 99 % of a Gaussian's values inside [0, 1] (±3.3 standard deviations).
- regularised (``regularized=True``), after Olah et al., "Feature Visualization" (Distill 2017)
  and their Lucid library: every step sees the image randomly shifted, scaled and rotated, so
  only patterns that excite the filter wherever they sit survive, which removes the
  high-frequency noise the plain ascent exploits. With ``fourier=True`` the image is also
  described by a colour-decorrelated Fourier spectrum whose high frequencies start small, so
  the ascent moves all frequencies at a similar rate instead of favouring pixel noise.
  Regularised images are returned as the model saw them (no contrast stretch).

Filters behind a ReLU: from grey, a filter whose pre-activation is negative everywhere has a
zero gradient and its pattern would stay grey. The objective therefore reads the
pre-activation: a conv layer with a fused ReLU runs without it (``gradients.linear_activation``)
and a standalone ``ReLU`` layer is replaced by the layer that feeds it.

Layout, one job per module (as Lucid / Lucent separate them): ``_objectives`` (what is
maximised), ``_images`` (pixel or Fourier parameterisation, start values, jitter, the display
step), ``_ascent`` (the compiled loop, through ``gradients.compile`` on any Keras backend) and
``_display`` (kernels and grids); for the atlas, ``_recipe`` (its settings and hash), ``_cut``
(the layers it reads, through a size-free cut of the model), ``_redirect`` (redirected ReLUs),
``_render`` (Lucid's recipe as one compiled program), ``_exemplars`` (top-activating photo
crops) and ``_atlas`` (assembling, shipping and caching it); this module holds the public
entry points.
"""

from .. import gradients
from ._ascent import _ascend, _image_size, _indices
from ._atlas import Atlas, AtlasLayer, atlas
from ._cut import channel_means
from ._exemplars import crop_boxes, crop_pixels
from ._display import kernel_grid, kernel_images, pattern_grid
from ._images import deprocess
from ._objectives import _class_objective, _filter_objective, feature_layer
from ._recipe import AtlasRecipe
from ._redirect import redirected_relu, redirecting
from ._render import render

__all__ = ["filter_patterns", "class_patterns", "filter_scores", "feature_layer", "deprocess",
           "kernel_images", "kernel_grid", "pattern_grid", "atlas", "Atlas", "AtlasLayer", "AtlasRecipe",
           "render", "channel_means", "redirected_relu", "redirecting", "crop_boxes", "crop_pixels"]


def filter_patterns(model, layer, filters=None, *, steps=40, image_size=None, seed=0,
                    learning_rate=None, regularized=False, fourier=False, preactivation=True,
                    raw=False, batch_size=16, progress=None):
    """Images that excite filters of ``layer``, found by gradient ascent on the input.

    ``model``: a keras.Model taking (n, H, W, 3) images in its input range (``input_range``:
    [0, 1] for the book's models, [0, 255] for one with ``Rescaling(1/255)`` inside; the ascent
    starts from mid-grey of that range and is clipped to it), preprocessing inside, nested
    models fine; a subclassed model needs ``image_size``. ``layer``: a name or layer object
    with an image-shaped output (n, h, w, c).
    ``filters``: None (all c), an int, or a sequence of channel indices.
    ``steps``: ascent steps (>= 1). ``image_size``: side of the optimised images (default: the
    model's input size; another size is resized to it inside the objective).
    ``seed``: start noise and jitter are drawn per filter from ``(seed, filter)``.
    ``learning_rate``: RMS change per step (default 0.03 for pixels, as a fraction of the input
    range, 0.05 for spectra).
    ``regularized``: random jitter, scale and rotation every step; ``fourier``: (with
    ``regularized``) a colour-decorrelated Fourier parameterisation. ``preactivation``: optimise
    the filter before its ReLU (default; after it, dead filters stay grey). ``raw``: return
    plain images as the model saw them, without the display standardisation. ``batch_size``:
    filters optimised at once. ``progress``: tqdm bar (None: only when there are several
    batches).

    Returns (k, S, S, 3) float32 in [0, 1], one image per requested filter, in request order:
    plain images standardised for display (see ``deprocess``), regularised and ``raw`` images as
    the model saw them, mapped from its input range to [0, 1]. Raises ValueError for a layer
    without channels, a filter out of range, steps < 1.
    """
    size, _ = _image_size(model, image_size)
    record, linear, channels = feature_layer(model, layer, preactivation, (size, size, 3))
    targets = _indices(filters, channels, "filter")
    return _ascend(
        model, ("filters", id(record), id(linear)), lambda proxy: _filter_objective(proxy, record, linear),
        targets, steps=steps, image_size=image_size, seed=seed, learning_rate=learning_rate,
        regularized=regularized, fourier=fourier, raw=raw, batch_size=batch_size,
        progress=progress, desc=f"{record.name} patterns",
    )


def class_patterns(model, classes=None, *, steps=40, image_size=None, seed=0, learning_rate=None,
                   regularized=False, fourier=False, raw=False, batch_size=16, progress=None,
                   output=None):
    """Images that maximise class scores of ``model``, one per class, optimised together.

    Maximises the logit (the score before a final softmax or sigmoid), because maximising a
    probability can succeed by lowering the other classes instead. ``classes``: None (all),
    an int or a sequence of class indices; a single sigmoid unit has two classes (1 maximises
    its logit, 0 minimises it). ``output``: which output of a multi-output model (index or
    name). Other keywords as in ``filter_patterns``. Returns (k, S, S, 3) float32 in [0, 1].
    """
    size, _ = _image_size(model, image_size)
    found = gradients.head(model, output, (size, size, 3))
    targets = _indices(classes, found.classes, "class")
    return _ascend(
        model, ("classes", output), lambda proxy: _class_objective(proxy, found), targets, steps=steps,
        image_size=image_size, seed=seed, learning_rate=learning_rate, regularized=regularized,
        fourier=fourier, raw=raw, batch_size=batch_size, progress=progress, desc="class patterns",
    )


def filter_scores(model, layer, images, filters=None, preactivation=True):
    """How strongly each image drives each requested filter: (n, k) float32, the filter's mean
    activation over the map (pre-activation by default, as the ascent optimises it).

    ``images``: (n, H, W, 3) in the model's input range, at the model's input size.
    """
    call = gradients.request(model, images, scored=False)
    record, linear, channels = feature_layer(model, layer, preactivation, call.image_shape)
    targets = _indices(filters, channels, "filter")
    maps = gradients.run_outputs(call.derived(layers=[record]), linear=linear)[0]
    return maps.mean(axis=(1, 2))[:, targets]
