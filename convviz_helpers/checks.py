"""Graders for the exercises in ``notebooks/05_exercises.ipynb``.

Each ``check_<name>(fn)`` runs a student's function on fixed cases (seeded data, a small
hand-made model or ShapesNet) and compares the result with the package's own implementation.
Right: it prints one line saying what matched. Wrong: it raises ``AssertionError`` whose
message names the likely mistake, found by comparing the student's output with what typical
mistakes produce (a missing ReLU, a transposed map, gradients averaged across the batch...).

- ``check_standardise(fn)``: ``fn(channel (h, w)) -> uint8 tile (h, w)``, as
  ``activations.standardise`` does for one channel.
- ``check_ascent_step(fn)``: ``fn(images, gradients, step_size) -> images``, one gradient-ascent
  step with the gradient normalised per image, as ``filters`` steps.
- ``check_layer_gradients(fn)``: ``fn(model, images, classes, layer) -> (activations,
  gradients)``, a layer's output and the gradient of each image's class logit with respect to
  it, written with a multi-output ``keras.Model`` and ``tf.GradientTape``, as
  ``gradients.probe`` computes them.
- ``check_grad_cam(fn)``: ``fn(model, images, classes, layer) -> (n, H, W)`` in [0, 1], as
  ``cam.grad_cam``. Its two halves, graded on the same case with the same hints:
  ``check_class_map(fn)``, ``fn(activations, gradients) -> (n, h, w)`` at the layer's
  resolution, and ``check_heatmaps(fn)``, ``fn(maps, size) -> (n, H, W)`` upsampled and normalised.
- ``check_layer_experiment(fn, best_layer)``: ``fn(model, shapes, layers) -> {layer: hit rate}``
  measured with ``metrics.pointing_game``, and the layer the student concluded localises best;
  ``check_layer_rates(fn)`` and ``check_best_layer(best_layer)`` grade the two apart (an
  assignment keeps the conclusion's test hidden).
"""

import contextlib
import functools
import io
import warnings

import numpy as np

from . import activations, cam, data, gradients, inputs, metrics
from ._tf import keras

# The constant the book's filter ascent adds to the per-image RMS so a zero gradient is no step.
ASCENT_EPSILON = 1e-12
# The ShapesNet layers the localisation experiment compares, shallow to deep.
EXPERIMENT_LAYERS = ("block1_relu", "block2_relu", "block3_relu", "block4_relu")
EXPERIMENT_SEED = 505  # shapes neither ShapesNet's training (1) nor validation (2) saw
EXPERIMENT_SIZE = 96


# Every function that can raise a verdict sets ``__tracebackhide__``: IPython and pytest then
# leave its frame out of the traceback, so the student sees the check cell and the message.


def _fail(message, cause=None):
    """Raise the grader's verdict. With ``cause`` (a bug in the student's code) its traceback is
    shown first, pointing at the student's line; otherwise nothing but the verdict."""
    __tracebackhide__ = True
    raise AssertionError(message) from cause


def _call(fn, *args):
    """Run the student's function; its own exceptions become one readable AssertionError.

    Warnings are silenced: the grader asks for an all-zero map on purpose, and its verdict
    (NaN, wrong range...) says more than a numpy or package warning would.
    """
    __tracebackhide__ = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except NotImplementedError:
        _fail(f"{_name(fn)} is not implemented yet: replace `raise NotImplementedError` with your code.")
    except Exception as error:  # any bug in student code is a verdict, not a crash of the grader
        _fail(f"{_name(fn)} raised {type(error).__name__}: {error}", cause=error)


def _name(fn):
    return getattr(fn, "__name__", "your function")


def _not_none(result, what):
    """Fail when the student's function returned None, as an untouched stub of the assignment
    does (its body is only `...`)."""
    __tracebackhide__ = True
    if result is None:
        _fail(f"{what} came back as None: the function returns nothing yet. Replace the `...` with "
              "your code and end it with `return`.")


def _as_array(result, what):
    """The student's result as a numpy array, or a verdict saying what came back instead."""
    __tracebackhide__ = True
    _not_none(result, what)
    if hasattr(result, "numpy"):  # a TensorFlow tensor is a fine answer
        result = result.numpy()
    if not isinstance(result, np.ndarray):
        _fail(f"{what} should be a numpy array; got {type(result).__name__}.")
    return result


def _no_nan(result, hint):
    __tracebackhide__ = True
    if np.issubdtype(result.dtype, np.floating) and not np.isfinite(result).all():
        _fail(f"NaN or infinite values in your output: {hint}")


def _is_input(result, args):
    """True when ``result`` is (or shares memory with) one of the arrays we passed in."""
    return any(isinstance(a, np.ndarray) and np.shares_memory(result, a) for a in args)


# --- exercise 1: the channel standardisation behind activation grids --------------------------


def _standardise_cases():
    """Channels (h, w) that cover what the display rule must handle, as float32 arrays."""
    rng = np.random.default_rng(11)
    return [
        ("a post-ReLU channel", np.maximum(rng.normal(0.2, 1.0, (9, 11)), 0)),
        ("a channel with large values", rng.normal(40.0, 15.0, (8, 8))),
        ("a channel with an outlier", np.pad(np.ones((1, 1)) * 50.0, 3) + rng.normal(0, 0.1, (7, 7))),
        ("a small-valued channel", rng.uniform(-1e-3, 1e-3, (6, 10))),
        ("an all-zero channel", np.zeros((5, 5))),
        ("a constant channel", np.full((6, 6), 3.5)),
        ("a channel constant up to float round-off", 2.0 + rng.normal(0, 1e-6, (6, 6))),
    ]


def _standardise_mistakes(channel):
    """What typical mistakes make of ``channel``: name -> uint8 tile (or None if not uint8)."""
    channel = np.asarray(channel, np.float64)
    mean, std = channel.mean(), channel.std()
    scaled = (channel - mean) / (std if std > 0 else 1.0) * 64 + 128
    span = channel.max() - channel.min()
    minmax = (channel - channel.min()) / (span if span > 0 else 1.0) * 255
    return {
        "truncated": np.clip(scaled, 0, 255).astype(np.uint8),
        "wrapped": np.round(scaled).astype(np.int64).astype(np.uint8),
        "minmax": np.round(minmax).astype(np.uint8),
    }


def check_standardise(fn):
    """Grade ``fn(channel) -> tile``: channel (h, w) float -> uint8 (h, w), standardised,
    ×64 + 128, clipped to 0–255 and rounded; a (near-)constant channel gives all zeros."""
    __tracebackhide__ = True
    cases = [(label, channel.astype(np.float32)) for label, channel in _standardise_cases()]
    # Every case runs before any is judged: a NaN in one case outranks a wrong dtype in another.
    results = []
    for _, channel in cases:
        results.append(_as_array(_call(fn, channel.copy()), "the tile"))
    for (label, channel), result in zip(cases, results):
        if result.shape != channel.shape:
            _fail(f"wrong shape for {label}: expected {channel.shape} (same as the channel), got {result.shape}.")
        _no_nan(result, f"for {label}. A channel with std 0 has nothing to show: return a blank tile (all 0).")
    for (label, channel), result in zip(cases, results):
        if result.dtype != np.uint8:
            _fail(f"the tile should be uint8 (display values 0–255), got {result.dtype}: "
                  "clip, round, then convert with .astype(np.uint8).")
        expected = activations.standardise(channel[None])[0]
        if not np.array_equal(result, expected):
            _diagnose_tile(label, channel, result, expected)
    print(f"✓ standardise matches the reference on {len(cases)} channels")


def _diagnose_tile(label, channel, result, expected):
    """Fail with the hint for the mistake that turns ``channel`` into ``result``."""
    __tracebackhide__ = True
    if not expected.any():
        _fail(f"{label} should give a blank tile (all 0): its spread is round-off, and standardising "
              f"it blows noise up to full contrast. Treat std <= {activations.CONSTANT_TOLERANCE:g} × the "
              "largest magnitude as constant.")
    mistakes = _standardise_mistakes(channel)
    if np.array_equal(result, mistakes["truncated"]):
        _fail(f"off by one on {label}: .astype(np.uint8) truncates; round first (np.round).")
    if np.array_equal(result, mistakes["wrapped"]):
        _fail(f"values wrapped around on {label} (300 became 44): clip to 0–255 before converting to uint8.")
    if np.array_equal(result, mistakes["minmax"]):
        _fail(f"you min-max scaled {label}; standardise instead: subtract the mean, divide by the "
              "standard deviation, then ×64 + 128.")
    if abs(float(result.mean()) - float(expected.mean())) > 10:
        _fail(f"the tile of {label} averages {result.mean():.0f}, expected about {expected.mean():.0f}: "
              "a standardised channel has mean 0, shown at grey level 128 (×64 + 128).")
    worst = int(np.abs(result.astype(int) - expected.astype(int)).max())
    _fail(f"{label}: your tile differs from the reference by up to {worst} grey levels.")


# --- exercise 2: one gradient-ascent step, normalised per image --------------------------------


def _reference_ascent_step(images, grads, step_size):
    """The step ``filters`` takes inside its compiled ascent, in numpy: each image moves along
    its own gradient divided by that gradient's root-mean-square, then pixels are clipped."""
    rms = np.sqrt(np.mean(np.square(grads), axis=(1, 2, 3), keepdims=True))
    return np.clip(images + step_size * grads / (rms + ASCENT_EPSILON), 0.0, 1.0)


def _ascent_case():
    """Images and gradients whose scales differ by 10^5 between images, one of them zero."""
    rng = np.random.default_rng(22)
    images = rng.uniform(0.0, 1.0, (4, 8, 8, 3)).astype(np.float32)
    grads = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    grads *= np.array([1e-3, 1.0, 1e2, 0.0], np.float32)[:, None, None, None]
    return images, grads, 0.05


def check_ascent_step(fn):
    """Grade ``fn(images, gradients, step_size) -> images``: images (n, H, W, C) in [0, 1], each
    moved by ``step_size`` × its gradient / the RMS of its gradient, then clipped to [0, 1]."""
    __tracebackhide__ = True
    images, grads, step = _ascent_case()
    given = (images.copy(), grads.copy())
    result = _as_array(_call(fn, *given, step), "the stepped images")
    if not (np.array_equal(given[0], images) and np.array_equal(given[1], grads)):
        _fail("your function changed its input arrays in place; return new images instead "
              "(the caller may still need the old ones).")
    if _is_input(result, given):
        _fail("you returned the input array itself; return a new array of stepped images.")
    if result.shape != images.shape:
        _fail(f"wrong shape: expected {images.shape} (the images' shape), got {result.shape}.")
    _no_nan(result, "one image's gradient is all zero, so its RMS is 0; add a small epsilon "
            f"(the book uses {ASCENT_EPSILON:g}) so a zero gradient means no step.")
    expected = _reference_ascent_step(images, grads, step)
    if np.allclose(result, expected, atol=1e-5):
        print(f"✓ ascent_step matches the reference on {len(images)} images whose gradients differ by 10^5 in scale")
        return
    if result.min() < -1e-6 or result.max() > 1 + 1e-6:
        _fail("pixels left [0, 1]: clip the stepped images to [0, 1] (the model takes images in [0, 1]).")
    downhill = _reference_ascent_step(images, -grads, step)
    if np.allclose(result, downhill, atol=1e-5):
        _fail("you stepped downhill: gradient *ascent* adds step_size × the normalised gradient.")
    whole = np.sqrt(np.mean(np.square(grads)))
    if np.allclose(result, np.clip(images + step * grads / (whole + ASCENT_EPSILON), 0, 1), atol=1e-5):
        _fail("you normalised the gradient across the batch: one image's large gradient then shrinks "
              "every other image's step. Take the RMS per image (axis=(1, 2, 3), keepdims=True).")
    if np.allclose(result, np.clip(images + step * grads, 0, 1), atol=1e-5):
        _fail("the gradient is not normalised: divide each image's gradient by its own RMS, so every "
              "image moves by about step_size however strongly its target responds.")
    length = np.sqrt(np.sum(np.square(grads), axis=(1, 2, 3), keepdims=True))
    if np.allclose(result, np.clip(images + step * grads / (length + ASCENT_EPSILON), 0, 1), atol=1e-5):
        _fail("you divided by the L2 norm of each gradient: the step then shrinks with the image size. "
              "Divide by the root-mean-square instead, so each pixel moves by about step_size.")
    worst = float(np.abs(result - expected).max())
    _fail(f"your step differs from the reference by up to {worst:.3g} per pixel.")


# --- exercise 3: the gradient tape behind gradients.probe --------------------------------------

TAPE_SEED = 606  # shapes for the ShapesNet case, unseen by training (1) and validation (2)
TAPE_RELATIVE_TOLERANCE = 1e-3  # eager and compiled TensorFlow differ by float round-off only


def _tape_cases():
    """The cases ``check_layer_gradients`` grades on: ``(label, model, images, classes, layer)``.

    ShapesNet (BatchNorm inside, so a model run in training mode shows) at ``block3_relu``,
    five unseen 64×64 shapes; and ``grader_model()`` at ``conv3``, six 32×40 shapes (non-square,
    its shape shared with ``conv4``, the last conv layer). Each image asks for a class other than
    its top-1 class, and the classes differ, so a top-1 answer or one class for all shows."""
    from .models import shapes_model

    cases = []
    for label, model, images, layer in (
        ("ShapesNet", shapes_model(), data.make_shapes(5, image_size=64, seed=TAPE_SEED).images, "block3_relu"),
        ("a second network", grader_model(), data.make_shapes(6, image_size=40, seed=7).images[:, 4:36], "conv3"),
    ):
        top = gradients.probe(model, images).classes
        count = len(data.SHAPE_CLASSES)
        classes = (top + 1 + np.arange(len(images)) % (count - 1)) % count
        cases.append((label, model, images, [int(c) for c in classes], layer))
    return cases


@contextlib.contextmanager
def _watching(model):
    """While active, record what the student's function does that it should not: calls of
    ``gradients.probe`` (the helper the exercise rebuilds) and changes to ``model`` (its weights,
    a layer's activation). Yields a dict; on leaving, the model is put back as it was and the
    dict says what had changed."""
    report = {"probe": False, "weights": False, "activations": []}
    weights = model.get_weights()
    activations = [(layer, layer.activation) for layer in model.layers if hasattr(layer, "activation")]
    original = gradients.probe

    def spy(*args, **kwargs):
        report["probe"] = True
        return original(*args, **kwargs)

    gradients.probe = spy
    try:
        yield report
    finally:
        gradients.probe = original
        after = model.get_weights()
        if any(not np.array_equal(old, new) for old, new in zip(weights, after)):
            report["weights"] = True
            model.set_weights(weights)
        for layer, activation in activations:
            if layer.activation is not activation:
                report["activations"].append(layer.name)
                layer.activation = activation


def _close(result, expected, scale):
    """Same shape, and equal within ``TAPE_RELATIVE_TOLERANCE`` of ``scale``."""
    return result.shape == expected.shape and float(np.abs(result - expected).max(initial=0.0)) <= (
        TAPE_RELATIVE_TOLERANCE * scale + 1e-12)


def _scale(array):
    return max(float(np.abs(array).max(initial=0.0)), 1e-12)


def _other_layers(model, images, layer):
    """{name: output (n, h, w, c)} of every layer of ``model`` with a rank-4 output but
    ``layer`` and the input, for ``images``: what a student's activations may be instead."""
    others = [other for other in model.layers if other.name != layer
              and not isinstance(other, keras.layers.InputLayer) and len(other.output.shape) == 4]
    return dict(zip([other.name for other in others], gradients.layer_outputs(model, images, others)))


def _tape_mistakes(model, images, classes, layer, expected):
    """What typical mistakes make of the gradients of the case: hint -> (n, h, w, c) array."""
    count = gradients.num_classes(model)
    n = len(images)
    # The gradient of each class's logit for every image; wrong scores are sums of these.
    per_class = np.stack([gradients.probe(model, images, k, [layer]).gradients[0] for k in range(count)])
    softmax = gradients.probe(model, images, classes, [layer], scores="probabilities")
    # d log p_c = d z_c - sum_j p_j d z_j: each image's class gradient less the others', weighted.
    mixed = np.einsum("nk,kn...->n...", softmax.scores, per_class)
    log_probabilities = per_class[np.asarray(classes), np.arange(n)] - mixed
    return {
        "you took the gradient of the softmax probability, not of the logit. The model's output is "
        "already squashed by the softmax; the class score is the last Dense layer's value before it: "
        "its input @ kernel + bias.": softmax.gradients[0],
        "you took the log of the softmax output: log p_c is the logit z_c minus log(sum_j exp z_j), and "
        "its gradient subtracts every class's gradient. Run the last Dense layer without its softmax "
        "instead: its input @ kernel + bias.": log_probabilities,
        "you averaged the scores over the batch (reduce_mean): every gradient came out divided by the "
        "number of images. Give the tape the vector of scores (or their sum): each image's score "
        "depends on its own activations only, so each image gets its own gradient.": expected / n,
        "you picked every requested class for every image (tf.gather(logits, classes, axis=1) or "
        "logits[:, classes] make an (n, n) table), so each image's gradient mixes all the images' "
        "classes. Pick one score per image: tf.gather(logits, classes, batch_dims=1), or the sum over "
        "classes of logits × tf.one_hot(classes, number of classes).": per_class[np.asarray(classes)].sum(axis=0),
        "you differentiated the sum of all class logits; pick each image's own class "
        "(tf.gather(logits, classes, batch_dims=1)).": per_class.sum(axis=0),
        "you explained each image's top-1 class, not the `classes` asked for.":
            gradients.probe(model, images, None, [layer]).gradients[0],
        "you used the first image's class for every image; each image has its own class in `classes`.":
            per_class[classes[0]],
    }


def check_layer_gradients(fn):
    """Grade ``fn(model, images, classes, layer) -> (activations, gradients)``: the output of the
    layer named ``layer`` for ``images`` and the gradient of each image's class logit (the last
    Dense layer's value before its softmax) with respect to it, both (n, h, w, channels), as
    ``gradients.probe(model, images, classes, [layer])`` returns them in ``.activations[0]`` and
    ``.gradients[0]``.

    Graded on ShapesNet and on ``grader_model()`` (see ``_tape_cases``), for classes that are not
    the predicted ones. ``fn`` must not call ``gradients.probe`` (the exercise is to write what
    it does) and must leave the model as it found it.
    """
    __tracebackhide__ = True
    cases = _tape_cases()
    for case in cases:
        _judge_layer_gradients(fn, *case)
    print("✓ layer_gradients matches gradients.probe on "
          + " and on ".join(f"{label} ({layer}, {len(images)} images)" for label, _, images, _, layer in cases))


def _judge_layer_gradients(fn, label, model, images, classes, layer):
    """Fail with the hint for what ``fn`` gets wrong on one case; return quietly when right."""
    __tracebackhide__ = True
    probed = gradients.probe(model, images, classes, [layer])
    want_acts, want_grads = probed.activations[0], probed.gradients[0]
    with _watching(model) as report:
        result = _call(fn, model, images.copy(), list(classes), layer)
    if report["probe"]:
        _fail("your function calls gradients.probe, the helper this exercise opens up: build the "
              "feature model and record the gradient with tf.GradientTape yourself.")
    if report["activations"]:
        _fail(f"your function changed the model: the activation of {report['activations']} (keras.io's "
              "Grad-CAM recipe sets the last layer's activation to None). That changes the model for "
              "every later cell; leave it alone and compute the logits from the last Dense layer's "
              "input, kernel and bias.")
    if report["weights"]:
        _fail("your function changed the model's weights: a model run with training=True updates its "
              "BatchNorm statistics. Call the feature model with training=False.")
    _not_none(result, "the pair (activations, gradients)")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        _fail(f"return a pair (activations, gradients); got {type(result).__name__}"
              + (f" of length {len(result)}." if isinstance(result, (tuple, list)) else "."))
    if result[1] is None:
        _fail("the gradients are None: the tape did not record a path from the score to the activations. "
              "Run the feature model inside the `with tf.GradientTape() as tape:` block and compute the "
              "score there from the same call's outputs (no .numpy() on the way).")
    acts = _as_array(result[0], "the activations")
    grads = _as_array(result[1], "the gradients")
    if grads.shape == images.shape:
        _fail(f"your gradients have the images' shape {grads.shape}: that is the gradient with respect "
              f"to the input. Differentiate with respect to the activations of {layer!r} (the feature "
              "model's first output).")
    if acts.shape != want_acts.shape:
        others = [name for name, values in _other_layers(model, images, layer).items() if values.shape == acts.shape]
        if others:
            _fail(f"wrong layer: your activations have the shape of {others}, not of {layer!r} "
                  f"{want_acts.shape}. Take the output of model.get_layer(layer).")
        _fail(f"wrong shape for the activations on {label}: expected (n, h, w, channels) = "
              f"{want_acts.shape}, got {acts.shape}.")
    if grads.shape == want_grads.shape[1:] or grads.shape == (1, *want_grads.shape[1:]):
        _fail(f"your gradients have shape {grads.shape}: one for the whole batch. Keep one gradient per "
              f"image, (n, h, w, channels) = {want_grads.shape}: do not sum or average over the batch axis.")
    if grads.shape != want_grads.shape:
        _fail(f"wrong shape for the gradients on {label}: expected the activations' shape "
              f"{want_grads.shape}, got {grads.shape}.")
    _no_nan(acts, "the activations of a trained model are finite.")
    _no_nan(grads, "the gradients of the logits are finite.")
    acts_scale, grads_scale = _scale(want_acts), _scale(want_grads)
    if _close(acts, want_grads, grads_scale) and _close(grads, want_acts, acts_scale):
        _fail("your pair is swapped: return (activations, gradients), in that order.")
    if not _close(acts, want_acts, acts_scale):
        for name, values in _other_layers(model, images, layer).items():
            if _close(acts, values, _scale(values)):
                _fail(f"wrong layer: those are the activations of {name!r}, not of {layer!r}. Take the "
                      "output of model.get_layer(layer).")
        error = float(np.abs(acts - want_acts).max())
        _fail(f"your activations on {label} differ from {layer!r}'s output by up to {error:.3g}: return "
              "the first output of keras.Model(model.input, [model.get_layer(layer).output, ...]).")
    if not grads.any() and want_grads.any():
        _fail("your gradients are all zero: the score you differentiated does not depend on the "
              "activations. Compute the score from the same call of the feature model that gave them, "
              "inside the tape.")
    if _close(grads, want_grads, grads_scale):
        return
    if len(images) > 1 and np.abs(grads - grads[:1]).max() <= TAPE_RELATIVE_TOLERANCE * grads_scale:
        _fail("every image got the same gradient: you combined the gradients across the batch. "
              "tape.gradient already gives each image its own gradient; return it as it is.")
    for hint, wrong in _tape_mistakes(model, images, classes, layer, want_grads).items():
        if _close(grads, wrong, grads_scale):
            _fail(hint)
    error = float(np.abs(grads - want_grads).max()) / grads_scale
    _fail(f"your gradients on {label} differ from gradients.probe's by up to {error:.1%} of their largest "
          "value. The score: each image's own class logit (the last Dense layer before its softmax); "
          "the gradient: tape.gradient(score, activations).")


# --- exercises 4 and 5: Grad-CAM from a layer's activations and gradients --------------------


@functools.lru_cache(maxsize=1)
def grader_model():
    """A small seeded convnet for grading: images of any size (n, H, W, 3) -> 7 softmax scores.

    Layers conv1, conv2 (each followed by 2×2 pooling), conv3, conv4 (3×3, ReLU), then global
    average pooling and a Dense layer. Kernels are drawn with a small positive mean: with
    zero-mean random kernels most class maps are negative almost everywhere, and Grad-CAM
    shrinks to one hot pixel, too little to tell a right answer from a near miss. Classes 0-5
    stand for the shapes (so it can play ShapesNet's part in the layer experiment); class 6's
    weights are zero: its score has no gradient and its Grad-CAM map is all zeros, which a
    grader asks for on purpose.
    """
    def conv(width, seed, name):
        kernels = keras.initializers.RandomNormal(mean=0.02, stddev=0.1, seed=seed)
        return keras.layers.Conv2D(width, 3, padding="same", activation="relu", kernel_initializer=kernels, name=name)

    images = keras.Input((None, None, 3), name="images")
    x = keras.layers.MaxPooling2D(2, name="pool1")(conv(8, 1, "conv1")(images))
    x = keras.layers.MaxPooling2D(2, name="pool2")(conv(16, 2, "conv2")(x))
    x = conv(16, 4, "conv4")(conv(16, 3, "conv3")(x))
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    head = keras.layers.Dense(len(data.SHAPE_CLASSES) + 1, activation="softmax",
                              kernel_initializer=keras.initializers.GlorotUniform(seed=5), name="predictions")
    outputs = head(x)
    kernel, bias = head.get_weights()
    kernel[:, -1] = 0.0
    head.set_weights([kernel, bias])
    model = keras.Model(images, outputs, name="grader_net")
    # Keras's seeded initialisers draw different numbers on each backend; the weights they drew
    # on TensorFlow ship with the package, so a student grades against the same model on JAX.
    from importlib import resources

    with resources.as_file(resources.files(__package__).joinpath("resources/grader_net.weights.h5")) as path:
        model.load_weights(path)
    return model


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


def _quiet(method, *args, **kwargs):
    """Run a package method without its all-zero-map warning (the grader asks for one)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return method(*args, **kwargs)


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


# --- exercise 6: which layer localises best? -------------------------------------------------


def experiment_data():
    """The fixed shapes the localisation experiment is graded on (``make_shapes`` seed 505)."""
    return data.make_shapes(EXPERIMENT_SIZE, image_size=64, seed=EXPERIMENT_SEED)


def layer_localisation(model, shapes, layers):
    """The package's measurement: {layer: pointing-game hit rate of Grad-CAM at that layer,
    explaining each image's true class}."""
    return {layer: metrics.pointing_game(_quiet(cam.grad_cam, model, shapes.images, shapes.labels, layer),
                                         shapes.masks)
            for layer in layers}


def _experiment_model(model):
    """ShapesNet unless the caller grades on another model (imported late: it may train)."""
    if model is None:
        from .models import shapes_model

        model = shapes_model()
    return model


def _slack(shapes):
    """How far a rate may be from the measurement. Bilinear upsampling makes the hottest pixel a
    tie of neighbours; another resizer may break the tie differently and move a hit on the mask's
    edge, so two images of slack."""
    return 2.0 / len(shapes) + 1e-9


def check_layer_rates(fn, *, model=None, layers=EXPERIMENT_LAYERS):
    """Grade ``fn(model, shapes, layers) -> {layer name: hit rate}``, the measurement half of the
    layer experiment. ``fn`` is run on ``experiment_data()`` with ShapesNet (or ``model``) and
    ``layers``; each rate must match the pointing game of ``cam.grad_cam`` at that layer for the
    true classes within two images in ``EXPERIMENT_SIZE``. Returns the measured rates."""
    __tracebackhide__ = True
    model, layers = _experiment_model(model), list(layers)
    shapes = experiment_data()
    result = _call(fn, model, shapes, list(layers))
    _not_none(result, "the dict of rates")
    if not isinstance(result, dict):
        _fail(f"return a dict {{layer name: hit rate}}; got {type(result).__name__}.")
    missing = [layer for layer in layers if layer not in result]
    if missing:
        _fail(f"your dict has no entry for {missing}: measure every layer in `layers`, keyed by its name.")
    try:
        rates = {layer: float(np.asarray(result[layer])) for layer in layers}
    except (TypeError, ValueError):
        _fail(f"each value of your dict should be one number, the layer's hit rate; got {result}.")
    if any(not np.isfinite(rate) for rate in rates.values()):
        _fail("NaN in your rates: is every heatmap finite?")
    if any(rate < 0 or rate > 1 for rate in rates.values()):
        _fail(f"hit rates are fractions in [0, 1], yours are {rates}: pointing_game already returns "
              "the fraction of hits; do not add them up.")
    expected = layer_localisation(model, shapes, layers)
    slack = _slack(shapes)
    if len(set(rates.values())) == 1 and len(set(expected.values())) > 1:
        _fail(f"every layer got the same rate ({rates[layers[0]]:.3f}): did you pass `layer` on to grad_cam?")
    if any(abs(rates[layer] - expected[layer]) > slack for layer in layers):
        predicted = {layer: metrics.pointing_game(_quiet(cam.grad_cam, model, shapes.images, None, layer),
                                                  shapes.masks) for layer in layers}
        if all(abs(rates[layer] - predicted[layer]) <= slack for layer in layers):
            _fail("you explained the predicted class; explain the true class (shapes.labels), so a "
                  "misclassified image still asks 'where is the object?'.")
        table = ", ".join(f"{layer}: {expected[layer]:.3f} (yours {rates[layer]:.3f})" for layer in layers)
        _fail(f"your rates differ from the measurement: {table}. Use cam.grad_cam at each layer, "
              "the true classes, and metrics.pointing_game(heatmaps, shapes.masks).")
    print(f"✓ layer rates match the measurement on {len(shapes)} images")
    return expected


def check_best_layer(best_layer, *, model=None, layers=EXPERIMENT_LAYERS, measured=None):
    """Grade the conclusion of the layer experiment: ``best_layer`` must name one of ``layers``
    whose measured hit rate is the highest (within the rates' slack). ``measured`` (the rates
    ``check_layer_rates`` returned) saves measuring again."""
    __tracebackhide__ = True
    layers = list(layers)
    if best_layer is Ellipsis or best_layer is None:
        _fail(f"no answer yet: set it to the name of one of the layers ({', '.join(layers)}), a string.")
    if best_layer not in layers:
        _fail(f"best_layer should name one of the layers measured ({', '.join(layers)}); got {best_layer!r}.")
    shapes = experiment_data()
    if measured is None:
        measured = layer_localisation(_experiment_model(model), shapes, layers)
    best = max(measured.values())
    winners = [layer for layer in layers if measured[layer] >= best - _slack(shapes)]
    if best_layer not in winners:
        _fail(f"{best_layer!r} is not the layer with the highest hit rate in your own table: look again.")
    print(f"✓ {best_layer} localises best")


def check_layer_experiment(fn, best_layer, *, model=None, layers=EXPERIMENT_LAYERS):
    """Grade ``fn(model, shapes, layers) -> {layer name: hit rate}`` and the conclusion: what
    ``check_layer_rates`` and then ``check_best_layer`` check, with one line of output.

    ``fn`` is run on ``experiment_data()`` with ShapesNet (or ``model``) and ``layers``; each
    rate must match the pointing game of ``cam.grad_cam`` at that layer for the true classes
    within two images in ``EXPERIMENT_SIZE``. ``best_layer``: the layer the student concluded
    localises best; it must be one with the highest measured rate.
    """
    __tracebackhide__ = True
    model = _experiment_model(model)
    # The two graders' own ✓ lines are replaced by the one line this check has always printed.
    with contextlib.redirect_stdout(io.StringIO()):
        measured = check_layer_rates(fn, model=model, layers=layers)
        check_best_layer(best_layer, model=model, layers=layers, measured=measured)
    print(f"✓ layer experiment matches the measurement on {len(experiment_data())} images; "
          f"{best_layer} localises best")
