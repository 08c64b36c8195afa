"""The exercise graders: each accepts its reference solution and names typical mistakes.

Every wrong answer below is a mistake students make; the test asserts the grader's message
points at that mistake, not merely that it fails. No ShapesNet here: the layer experiment is
graded on the small ``checks.grader_model()``, so these tests never train a model.
"""

import numpy as np
import pytest

from convviz_helpers import activations, cam, checks, gradients, metrics


def rejects(check, fn, *args, match):
    with pytest.raises(AssertionError, match=match):
        check(fn, *args)


# --- standardise ---------------------------------------------------------------------------


def standardise_solution(channel):
    return activations.standardise(channel[None])[0]


def _standardise_scaled(channel):
    return (channel - channel.mean()) / max(channel.std(), 1e-30) * 64 + 128


def test_standardise_accepts_the_solution(capsys):
    checks.check_standardise(standardise_solution)
    assert "✓ standardise" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda c: np.clip(_standardise_scaled(c), 0, 255).astype(np.uint8), "round first"),
    (lambda c: np.round(_standardise_scaled(c)).astype(np.int64).astype(np.uint8), "wrapped around"),
    (lambda c: np.round(np.clip(_standardise_scaled(c), 0, 255)), "should be uint8"),
    (lambda c: np.round(np.clip((c - c.mean()) / c.std() * 64 + 128, 0, 255)).astype(np.uint8)
     if c.std() > 0 else np.zeros(c.shape, np.uint8), "blank tile"),
    (lambda c: np.round(np.clip((c - c.mean()) / c.std() * 64 + 128, 0, 255)), "NaN"),
    (lambda c: np.round(np.clip((c - c.mean()) / max(c.std(), 1e-30) * 64, 0, 255)).astype(np.uint8),
     "grey level 128"),
    (lambda c: np.round(255 * (c - c.min()) / max(np.ptp(c), 1e-30)).astype(np.uint8), "min-max"),
])
def test_standardise_names_the_mistake(wrong, match):
    with np.errstate(all="ignore"):
        rejects(checks.check_standardise, wrong, match=match)


# --- ascent step ---------------------------------------------------------------------------


def ascent_solution(images, grads, step_size):
    rms = np.sqrt(np.mean(grads**2, axis=(1, 2, 3), keepdims=True))
    return np.clip(images + step_size * grads / (rms + 1e-12), 0, 1)


def _in_place(images, grads, step_size):
    images += step_size * grads / (np.sqrt(np.mean(grads**2, axis=(1, 2, 3), keepdims=True)) + 1e-12)
    return np.clip(images, 0, 1)


def test_ascent_step_accepts_the_solution(capsys):
    checks.check_ascent_step(ascent_solution)
    assert "✓ ascent_step" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda x, g, s: np.clip(x + s * g / (np.sqrt(np.mean(g**2)) + 1e-12), 0, 1), "across the batch"),
    (lambda x, g, s: np.clip(x + s * g, 0, 1), "not normalised"),
    (lambda x, g, s: ascent_solution(x, -g, s), "downhill"),
    (lambda x, g, s: x + s * g / (np.sqrt(np.mean(g**2, axis=(1, 2, 3), keepdims=True)) + 1e-12), r"clip"),
    (lambda x, g, s: np.clip(x + s * g / np.sqrt(np.mean(g**2, axis=(1, 2, 3), keepdims=True)), 0, 1), "epsilon"),
    (lambda x, g, s: np.clip(x + s * g / (np.linalg.norm(g.reshape(len(g), -1), axis=1)[:, None, None, None]
                                          + 1e-12), 0, 1), "L2 norm"),
    (_in_place, "in place"),
])
def test_ascent_step_names_the_mistake(wrong, match):
    with np.errstate(all="ignore"):
        rejects(checks.check_ascent_step, wrong, match=match)


# --- Grad-CAM ------------------------------------------------------------------------------


def _weights_and_activations(model, images, classes, layer):
    probed = gradients.probe(model, images, classes, [layer])
    return probed.gradients[0], probed.activations[0]


def grad_cam_solution(model, images, classes, layer):
    grads, acts = _weights_and_activations(model, images, classes, layer)
    maps = np.maximum((grads.mean(axis=(1, 2), keepdims=True) * acts).sum(axis=-1), 0)
    maps = cam.upsample(maps, images.shape[1:3])
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peaks > 0, peaks, 1)


def grad_cam_with_cv2(model, images, classes, layer):
    import cv2

    grads, acts = _weights_and_activations(model, images, classes, layer)
    maps = np.maximum((grads.mean(axis=(1, 2), keepdims=True) * acts).sum(axis=-1), 0)
    maps = np.stack([cv2.resize(m, images.shape[2:0:-1], interpolation=cv2.INTER_LINEAR) for m in maps])
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peaks > 0, peaks, 1)


def _grad_cam_variant(batch_mean=False, relu=True, upsample=True, per_image_max=True, eps=True):
    """A Grad-CAM with one of the typical mistakes switched on."""

    def fn(model, images, classes, layer):
        grads, acts = _weights_and_activations(model, images, classes, layer)
        weights = grads.mean(axis=(0, 1, 2)) if batch_mean else grads.mean(axis=(1, 2), keepdims=True)
        maps = (weights * acts).sum(axis=-1)
        maps = np.maximum(maps, 0) if relu else maps
        maps = cam.upsample(maps, images.shape[1:3]) if upsample else maps
        peaks = maps.max(axis=(1, 2), keepdims=True) if per_image_max else maps.max()
        if eps:
            peaks = np.where(peaks > 0, peaks, 1)
        return maps / peaks

    return fn


def test_grad_cam_accepts_the_solution(capsys):
    checks.check_grad_cam(grad_cam_solution)
    assert "✓ grad_cam matches the reference on 6 images" in capsys.readouterr().out


def test_grad_cam_accepts_cv2_resizing():
    checks.check_grad_cam(grad_cam_with_cv2)


def test_grad_cam_accepts_the_package_method():
    checks.check_grad_cam(lambda model, images, classes, layer: cam.grad_cam(model, images, classes, layer))


def _not_written(model, images, classes, layer):
    # YOUR CODE HERE
    raise NotImplementedError


@pytest.mark.parametrize("wrong, match", [
    (_not_written, "not implemented yet"),
    (_grad_cam_variant(relu=False), "below 0: did you apply the ReLU"),
    (_grad_cam_variant(batch_mean=True), "averaged gradients across the batch"),
    (_grad_cam_variant(upsample=False), "layer's resolution"),
    (_grad_cam_variant(per_image_max=False), "not normalised to \\[0, 1\\].*its own maximum"),
    (_grad_cam_variant(eps=False), "NaN"),
    (lambda *a: np.swapaxes(grad_cam_solution(*a), 1, 2), "transposed"),
    (lambda m, x, c, l: np.repeat(grad_cam_solution(m, x, c, l)[:1], len(x), 0), "does not depend on the image"),
    (lambda m, x, c, l: grad_cam_solution(m, x, None, l), "top-1 class"),
    (lambda m, x, c, l: grad_cam_solution(m, x, c, "conv4"), "last conv layer"),
    (lambda m, x, c, l: 1 / 0, "raised ZeroDivisionError"),
])
def test_grad_cam_names_the_mistake(wrong, match):
    with np.errstate(all="ignore"):
        rejects(checks.check_grad_cam, wrong, match=match)


# --- the layer experiment ------------------------------------------------------------------

LAYERS = ("conv1", "conv2", "conv3", "conv4")


def experiment_solution(model, shapes, layers, tolerance):
    return {layer: metrics.pointing_game(cam.grad_cam(model, shapes.images, shapes.labels, layer), shapes.masks,
                                         tolerance=tolerance)
            for layer in layers}


@pytest.fixture(scope="module")
def measured():
    return checks.layer_localisation(checks.grader_model(), checks.experiment_data(), LAYERS)


def grade_experiment(fn, best):
    checks.check_layer_experiment(fn, best, model=checks.grader_model(), layers=LAYERS)


def test_experiment_accepts_the_solution(measured, capsys):
    best = max(measured, key=measured.get)
    grade_experiment(experiment_solution, best)
    assert "✓ layer experiment" in capsys.readouterr().out


def test_experiment_rejects_a_wrong_conclusion(measured):
    worst = min(measured, key=measured.get)
    with pytest.raises(AssertionError, match="not the layer with the highest hit rate"):
        grade_experiment(experiment_solution, worst)


@pytest.mark.parametrize("wrong, match", [
    (lambda m, s, layers, t: {layer: len(s) * r for layer, r in experiment_solution(m, s, layers, t).items()},
     "fractions in \\[0, 1\\]"),
    (lambda m, s, layers, t: {layer: experiment_solution(m, s, ["conv3"], t)["conv3"] for layer in layers},
     "same rate.*pass `layer`"),
    (lambda m, s, layers, t: dict(list(experiment_solution(m, s, layers, t).items())[:2]), "no entry for"),
    (lambda m, s, layers, t: [0.5] * len(layers), "return a dict"),
    (lambda m, s, layers, t: {layer: metrics.pointing_game(cam.grad_cam(m, s.images, None, layer), s.masks,
                                                           tolerance=t) for layer in layers}, "predicted class"),
    # What a student who left the tolerance out got before: the strict game, now named.
    (lambda m, s, layers, t: experiment_solution(m, s, layers, 0), "strict pointing game"),
])
def test_experiment_names_the_mistake(wrong, match, measured):
    rejects(grade_experiment, wrong, max(measured, key=measured.get), match=match)
