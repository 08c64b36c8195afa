"""The grader of the gradient-tape exercise, ``checks.check_layer_gradients``.

Students build ``keras.Model(model.input, [layer output, ...])`` and record the gradient of each
image's class logit with ``tf.GradientTape``; the grader compares with ``gradients.probe`` on
ShapesNet (the shipped weights: nothing is trained) and on ``checks.grader_model()``. The right
answer passes; each wrong one below is a mistake students make, and the test asserts that the
grader's message names it. Every test also checks that a wrong answer leaves the model as it was.
"""

import numpy as np
import pytest
import tensorflow as tf

from convviz_helpers import checks, gradients
from convviz_helpers._tf import keras

# The implementations graded here write tf.GradientTape, as the exercise asks.
pytestmark = pytest.mark.tensorflow_only


def rejects(fn, match):
    with pytest.raises(AssertionError, match=match):
        checks.check_layer_gradients(fn)


def _features(model, layer, second=None):
    """The feature model: the layer's output and what the last Dense layer receives."""
    head = model.layers[-1]
    return head, keras.Model(model.input, [model.get_layer(layer).output, head.input if second is None else second])


def solution(model, images, classes, layer, *, training=False, score=None, after=None, source=None):
    """The answer, with hooks that turn it into one typical mistake at a time:
    ``score(logits, probabilities, classes)`` picks what is differentiated, ``after(grads)``
    post-processes the gradients, ``source(acts, images)`` is what the gradient is taken for."""
    head, features = _features(model, layer)
    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        acts, pooled = features(images, training=training)
        logits = pooled @ head.kernel + head.bias
        if score is None:
            chosen = tf.gather(logits, classes, batch_dims=1)
        else:
            chosen = score(logits, tf.nn.softmax(logits), classes)
    grads = tape.gradient(chosen, acts if source is None else source(acts, images))
    if after is not None:
        grads = after(grads)
    return acts.numpy(), None if grads is None else np.asarray(grads)


def one_hot_solution(model, images, classes, layer):
    """Another right answer: the model's softmax output left alone; the logits from a
    second model that ends at the Dense layer's input, picked with a one-hot mask."""
    head, features = _features(model, layer)
    with tf.GradientTape() as tape:
        acts, pooled = features(images)  # Keras 3 runs a model in inference mode by default
        logits = tf.matmul(pooled, head.kernel) + head.bias
        score = tf.reduce_sum(logits * tf.one_hot(classes, logits.shape[-1]), axis=-1)
    return acts, tape.gradient(score, acts)  # tensors are accepted too


def test_the_solution_passes(capsys):
    checks.check_layer_gradients(solution)
    checks.check_layer_gradients(one_hot_solution)
    out = capsys.readouterr().out
    assert out.count("✓ layer_gradients matches gradients.probe on ShapesNet (block3_relu, 5 images) "
                     "and on a second network (conv3, 6 images)") == 2


def test_the_cases_can_catch_a_batch_mix():
    for label, model, images, classes, layer in checks._tape_cases():
        top = gradients.probe(model, images).classes
        assert not np.any(top == classes), label  # a top-1 answer is wrong
        assert len(set(classes)) > 1, label  # so is one class for all


def _probability(logits, probabilities, classes):
    return tf.gather(probabilities, classes, batch_dims=1)


def _outside_the_tape(model, images, classes, layer):
    head, features = _features(model, layer)
    acts, pooled = features(images, training=False)  # not recorded
    with tf.GradientTape() as tape:
        tape.watch(acts)
        score = tf.gather(pooled @ head.kernel + head.bias, classes, batch_dims=1)
    return acts.numpy(), tape.gradient(score, acts)


def _second_forward_pass(model, images, classes, layer):
    # The score from another run of the model, which the activations played no part in.
    head, features = _features(model, layer)
    with tf.GradientTape() as tape:
        acts, _ = features(images, training=False)
        score = tf.gather(tf.math.log(model(images, training=False)), classes, batch_dims=1)
    return acts.numpy(), tape.gradient(score, acts)


def _keras_io_recipe(model, images, classes, layer):
    # keras.io's Grad-CAM: switch the softmax off for good, then use the model's output.
    model.layers[-1].activation = None
    return solution(model, images, classes, layer)


def _calls_probe(model, images, classes, layer):
    found = gradients.probe(model, images, classes, [layer])
    return found.activations[0], found.gradients[0]


def _stub(model, images, classes, layer):
    ...


@pytest.mark.parametrize("wrong, match", [
    (_stub, "returns nothing yet"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=_probability), "softmax probability"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=lambda z, p, c: tf.gather(tf.math.log(p), c, batch_dims=1)),
     "log of the softmax output"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=lambda z, p, c: tf.reduce_mean(
        tf.gather(z, c, batch_dims=1))), r"averaged the scores over the batch"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=lambda z, p, c: tf.gather(z, c, axis=1)),
     r"every requested class for every image"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=lambda z, p, c: tf.reduce_sum(z)),
     "sum of all class logits"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=lambda z, p, c: tf.reduce_max(z, axis=-1)),
     "top-1 class"),
    (lambda m, x, c, layer: solution(m, x, c, layer, score=lambda z, p, c: z[:, c[0]]), "first image's class"),
    (lambda m, x, c, layer: solution(m, x, c, layer, after=lambda g: tf.reduce_mean(g, axis=0)),
     "one for the whole batch"),
    (lambda m, x, c, layer: solution(m, x, c, layer,
                                     after=lambda g: tf.broadcast_to(tf.reduce_mean(g, axis=0), g.shape)),
     "every image got the same gradient"),
    (lambda m, x, c, layer: solution(m, x, c, layer, source=lambda a, images: images),
     "gradient with respect to the input"),
    (lambda m, x, c, layer: solution(m, x, c, "block4_relu" if m.name == "shapesnet" else "conv4"),
     "wrong layer: your activations have the shape of"),
    (lambda m, x, c, layer: solution(m, x, c, layer, after=lambda g: g) if m.name == "shapesnet"
     else solution(m, x, c, "conv4"), "activations of 'conv4'"),
    (lambda m, x, c, layer: solution(m, x, c, layer.replace("relu", "conv")), "activations of 'block3_conv'"),
    (lambda m, x, c, layer: solution(m, x, c, layer, training=True), "training=True"),
    (_outside_the_tape, "the gradients are None"),
    (_second_forward_pass, "the gradients are None"),
    (lambda m, x, c, layer: solution(m, x, c, layer)[::-1], "swapped"),
    (lambda m, x, c, layer: solution(m, x, c, layer)[1], "return a pair"),
    (_keras_io_recipe, "changed the model: the activation of"),
    (_calls_probe, "calls gradients.probe"),
])
def test_the_grader_names_the_mistake(wrong, match):
    cases = checks._tape_cases()
    before = [(model.get_weights(), model.layers[-1].activation) for _, model, _, _, _ in cases]
    rejects(wrong, match)
    for (weights, activation), (label, model, _, _, _) in zip(before, cases):
        assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights())), label
        assert model.layers[-1].activation is activation, label
    assert gradients.probe.__name__ == "probe"
