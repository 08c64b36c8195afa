"""Exercise 3: a layer's activations and the gradients of the class logits with respect to them,
written with ``tf.GradientTape``, as ``gradients.probe`` computes them."""

import contextlib

import numpy as np

from .. import activations, data, gradients
from .._tf import keras
from ._common import _as_array, _call, _fail, _no_nan, _not_none, grader_model


TAPE_SEED = 606  # shapes for the ShapesNet case, unseen by training (1) and validation (2)


TAPE_RELATIVE_TOLERANCE = 1e-3  # eager and compiled TensorFlow differ by float round-off only


def _tape_cases():
    """The cases ``check_layer_gradients`` grades on: ``(label, model, images, classes, layer)``.

    ShapesNet (BatchNorm inside, so a model run in training mode shows) at ``block3_relu``,
    five unseen 64×64 shapes; and ``grader_model()`` at ``conv3``, six 32×40 shapes (non-square,
    its shape shared with ``conv4``, the last conv layer). Each image asks for a class other than
    its top-1 class, and the classes differ, so a top-1 answer or one class for all shows."""
    from ..models import shapes_model

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
