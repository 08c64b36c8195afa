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
"""

import math

import numpy as np

from . import gradients, inputs, models
from . import input_range as ranges
from ._tf import keras

ops = keras.ops

# The square root of the RGB covariance of natural photos (scikit-image's astronaut, coffee,
# chelsea, rocket and immunohistochemistry samples: U sqrt(S) from the SVD of the 3x3
# covariance), divided by its largest column norm. Mixing independent per-channel noise with it
# gives colours with the correlations of real photos; see ``_fourier_image``.
_COLOUR_ROOT = np.array(
    [[0.252, 0.127, 0.012],
     [0.250, -0.023, -0.030],
     [0.224, -0.117, 0.019]], dtype=np.float32) / 0.4197

# Default step sizes: the root-mean-square change of a pixel (plain, regularised) or of a
# Fourier coefficient per step.
_LEARNING_RATES = {"pixels": 0.03, "fourier": 0.05}
_BORDER = 2  # feature-map pixels left out of the filter objective on each side


# --- kernels -------------------------------------------------------------------------------


def _conv_layer(model, layer):
    """The conv layer named ``layer`` (None: the first conv layer of ``model``)."""
    if layer is None:
        for _, candidate in models.iter_layers(model):
            if models.is_conv(candidate):
                return candidate
        raise ValueError(f"Model {model.name!r} has no convolution layer.")
    found = models.find_layer(model, layer)
    if not models.is_conv(found):
        raise ValueError(
            f"Layer {found.name!r} is a {type(found).__name__}, not a convolution: it has no kernels to show."
        )
    return found


def kernel_images(model, layer=None):
    """The learned kernels of a conv layer as images.

    ``layer``: a conv layer name or object (None: the first conv layer). For a layer on RGB
    input (3 input channels) returns (filters, kh, kw, 3) float32 in [0, 1], each kernel
    min-max scaled on its own (so weak kernels stay visible). Otherwise returns
    (filters, in_channels, kh, kw) float32 in [-1, 1]: each filter divided by its largest
    absolute weight, signs kept. Raises ValueError for a layer that is not a convolution.
    """
    conv = _conv_layer(model, layer)
    kernel = np.asarray(conv.kernel, dtype=np.float32)  # (kh, kw, in, out)
    if kernel.shape[2] == 3:
        return inputs.minmax(kernel.transpose(3, 0, 1, 2), axes=(1, 2, 3))
    maps = kernel.transpose(3, 2, 0, 1)
    scale = np.abs(maps).max(axis=(1, 2, 3), keepdims=True)
    return maps / np.where(scale > 0, scale, 1.0)


def kernel_grid(model, layer=None, *, max_filters=64, max_channels=16, title=None):
    """A figure of ``kernel_images(model, layer)``; returns the matplotlib figure.

    First layer: one RGB tile per filter, up to ``max_filters``. Deeper layers: one row per
    filter (up to ``max_filters``) and one column per input channel (up to ``max_channels``),
    blue for negative and red for positive weights.
    """
    import matplotlib.pyplot as plt

    conv = _conv_layer(model, layer)
    images = kernel_images(model, conv)[:max_filters]
    title = title or f"Kernels of {conv.name} ({conv.kernel.shape[0]}x{conv.kernel.shape[1]})"
    if images.ndim == 4 and images.shape[-1] == 3:
        return pattern_grid(images, title=title, interpolation="nearest")
    images = images[:, :max_channels]
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(0.45 * cols + 0.8, 0.45 * rows + 0.8), squeeze=False)
    for (f, c), ax in np.ndenumerate(axes):
        ax.imshow(images[f, c], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if c == 0:
            ax.set_ylabel(str(f), rotation=0, ha="right", va="center", fontsize=7)
        if f == 0:
            ax.set_title(str(c), fontsize=7)
    fig.suptitle(f"{title}\nrows: filters, columns: input channels")
    fig.tight_layout()
    return fig


def pattern_grid(images, labels=None, *, columns=8, title="", interpolation="bilinear", size=1.3):
    """A figure with one tile per image: ``images`` (n, h, w, 3) in [0, 1], optional ``labels``
    (n strings, shown above the tiles), ``columns`` tiles per row, a ``title``."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    label_room = 0.25 if labels is not None else 0.0
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, (size + label_room) * rows + 0.6),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(np.clip(image, 0, 1), interpolation=interpolation)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- checking what the user asked for --------------------------------------------------------


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


# --- the targets ---------------------------------------------------------------------------


def _producer(model, layer):
    """The layer whose output is ``layer``'s input (None if there is not exactly one)."""
    try:
        wanted = layer.input
    except (AttributeError, ValueError):
        return None
    found = []
    for _, other in models.iter_layers(model):
        try:
            if other.output is wanted:
                found.append(other)
        except (AttributeError, ValueError):
            continue  # a layer used several times has no single output
    return found[0] if len(found) == 1 else None


def feature_layer(model, layer, preactivation=True, image_shape=None):
    """``(layer to record, layer to linearise or None, channels)`` for filter patterns.

    ``layer`` must have an image-shaped output (n, h, w, channels); raises ValueError otherwise.
    With ``preactivation``, a standalone ReLU layer is read at its input (the layer that feeds
    it) and a layer with a fused activation is run without it. ``image_shape`` (H, W, C): where
    a model has no graph (subclassed), the layer's shape comes from a trace at this shape.
    """
    found = models.find_layer(model, layer)
    shape = None if isinstance(found, keras.Model) else gradients.layer_shape(model, found, image_shape)
    if shape is None or len(shape) != 4:
        shape = shape or "unknown"
        raise ValueError(
            f"Layer {found.name!r} ({type(found).__name__}, output shape {shape}) has no filters: "
            "filter patterns need a layer whose output is image-shaped (n, h, w, channels), "
            "such as a convolution, its batch normalisation or its ReLU."
        )
    channels = int(shape[-1])
    if not preactivation:
        return found, None, channels
    if isinstance(found, keras.layers.ReLU):
        feeding = _producer(model, found)
        if feeding is not None:
            return feeding, None, channels
    return found, found if getattr(found, "activation", None) is not None else None, channels


def _filter_objective(model, record, linear):
    """``objective(images (b,S,S,3), channels (b,)) -> (b,)``: each image's mean activation of
    its own channel of ``record``, leaving out a border where the map is large enough."""

    def objective(images, channels):
        with gradients.recording([record]) as records:
            if linear is not None:
                with gradients.linear_activation(linear):
                    model(images, training=False)
            else:
                model(images, training=False)
        maps = gradients.single_output(records[0], record)
        index = ops.reshape(ops.cast(channels, "int32"), (-1, 1, 1, 1))
        picked = ops.take_along_axis(maps, index, axis=3)[..., 0]  # (b, h, w)
        if min(picked.shape[1], picked.shape[2]) >= 4 * _BORDER:
            picked = picked[:, _BORDER:-_BORDER, _BORDER:-_BORDER]
        return ops.mean(picked, axis=(1, 2))

    return objective


def _class_objective(model, found):
    """``objective(images, classes (b,)) -> (b,)``: each image's logit of its own class
    (``found``: the ``gradients.Head`` scored; a binary head's class 0 is minus its logit)."""

    def objective(images, classes):
        scores = gradients.class_scores(model, images, "logits", found)
        return gradients.select(scores, classes)

    return objective


# --- image parameterisations -----------------------------------------------------------------


def _spectrum_scale(size):
    """(size, size//2+1) weights 1/frequency: a Fourier coefficient of unit size then gives
    about the same pixel energy at every frequency, as in natural images."""
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    frequency = np.maximum(np.hypot(fx, fy), 1.0 / size)
    return (1.0 / frequency / size).astype(np.float32)


def _inverse_dft(size):
    """Real matrices for the 2-D inverse real FFT (numpy's ``irfft2`` at ``s=(size, size)``) as
    two matrix products, so it runs the same on every Keras backend: ``rows`` (2, S, S) are
    cos and sin of the inverse transform along the first axis, ``cols`` (2, S//2+1, S) those
    along the second, with the 1/S^2 scale and the Hermitian weights (1 for the zero and Nyquist
    frequency, 2 for the others); an imaginary part at those two frequencies is ignored, as
    ``irfft`` does."""
    k = np.arange(size)
    rows = 2 * np.pi * np.outer(k, k) / size  # (h, ky)
    kx = np.arange(size // 2 + 1)
    weights = np.where((kx == 0) | ((size % 2 == 0) & (kx == size // 2)), 1.0, 2.0)[:, None]
    cols = 2 * np.pi * np.outer(kx, k) / size  # (kx, w)
    return (np.stack([np.cos(rows), np.sin(rows)]).astype(np.float32),
            (np.stack([np.cos(cols), np.sin(cols)]) * weights / size**2).astype(np.float32))


def _fourier_image(spectrum, size):
    """Images (b, size, size, 3) in (0, 1) from spectra (b, 2, 3, size, size//2+1) (real and
    imaginary parts per colour channel): inverse FFT, colour mixing, sigmoid."""
    scale = _spectrum_scale(size)
    real, imag = spectrum[:, 0] * scale, spectrum[:, 1] * scale  # (b, 3, ky, kx)
    rows, cols = _inverse_dft(size)
    # Along the first axis: a complex inverse DFT, (b, 3, h, kx) real and imaginary parts.
    z_real = ops.einsum("hy,bcyk->bchk", rows[0], real) - ops.einsum("hy,bcyk->bchk", rows[1], imag)
    z_imag = ops.einsum("hy,bcyk->bchk", rows[1], real) + ops.einsum("hy,bcyk->bchk", rows[0], imag)
    # Along the second: the real inverse DFT, straight into (b, h, w, 3).
    channels = ops.einsum("bchk,kw->bhwc", z_real, cols[0]) - ops.einsum("bchk,kw->bhwc", z_imag, cols[1])
    mixed = ops.einsum("bhwc,dc->bhwd", channels * float(size), _COLOUR_ROOT)
    return ops.sigmoid(mixed)


def _initial(kind, targets, seed, size, value_range=(0.0, 1.0)):
    """Start values (k, ...) float32, drawn per target from ``(seed, target)``; pixels in
    ``value_range`` (the model's input range)."""
    low, high = value_range
    starts = []
    for target in targets:
        rng = np.random.default_rng([seed, int(target)])
        if kind == "fourier":
            starts.append(rng.normal(0.0, 0.01, (2, 3, size, size // 2 + 1)))
        else:  # grey plus a little uniform noise, as in Deep Learning with Python
            starts.append(low + (high - low) * (0.5 + rng.uniform(-0.1, 0.1, (size, size, 3))))
    return np.asarray(starts, dtype=np.float32)


def _transforms(targets, seed, steps, size, regularized):
    """Per step and target, a projective transform (steps, k, 8) float32 for
    ``keras.ops.image.affine_transform``: identity when not ``regularized``; otherwise a random
    rotation (±10 degrees) and scale (0.9-1.1) about the centre and a shift (±size/16 pixels),
    drawn per target from ``(seed, target, 1)``."""
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)
    if not regularized:
        return np.broadcast_to(identity, (steps, len(targets), 8)).copy()
    shift = max(1, size // 16)
    centre = (size - 1) / 2
    out = np.empty((steps, len(targets), 8), np.float32)
    for j, target in enumerate(targets):
        rng = np.random.default_rng([seed, int(target), 1])
        angle = np.deg2rad(rng.uniform(-10, 10, steps))
        scale = rng.uniform(0.9, 1.1, steps)
        dx, dy = rng.integers(-shift, shift + 1, (2, steps))
        # The transform maps an output pixel to where it is sampled in the input.
        cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
        out[:, j] = np.stack([cos, -sin, centre - cos * centre + sin * centre + dx,
                              sin, cos, centre - sin * centre - cos * centre + dy,
                              np.zeros(steps), np.zeros(steps)], axis=1)
    return out


# --- the ascent ----------------------------------------------------------------------------


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


def _images(params, kind, size, value_range=(0.0, 1.0)):
    """The images (b, S, S, 3) in [0, 1] that ``params`` describe (pixels in ``value_range``
    mapped back to [0, 1])."""
    if kind == "pixels":
        low, high = value_range
        return (params - low) / (high - low)
    return keras.ops.convert_to_numpy(_fourier_image(params, size))


def deprocess(images):
    """The plain recipe's display step: per image, ``clip(0.5 + 0.15 * standardised, 0, 1)``.

    ``images``: (n, h, w, 3); returns float32 of the same shape in [0, 1]. A constant image
    comes back uniform grey.
    """
    images = np.asarray(images, dtype=np.float32)
    mean = images.mean(axis=(1, 2, 3), keepdims=True)
    std = images.std(axis=(1, 2, 3), keepdims=True)
    return np.clip(0.5 + 0.15 * (images - mean) / np.maximum(std, 1e-6), 0.0, 1.0).astype(np.float32)


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
    images = inputs.image_batch(images, model)
    record, linear, channels = feature_layer(model, layer, preactivation, images.shape[1:])
    targets = _indices(filters, channels, "filter")
    maps = gradients.layer_outputs(model, images, [record], linear=linear)[0]
    return maps.mean(axis=(1, 2))[:, targets]
