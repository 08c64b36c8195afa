"""The graders the Otter assignment adds: Grad-CAM in two halves, the layer experiment in two.

Like tests/test_checks.py: each grader accepts a right answer, and for a typical wrong answer
its message names that mistake. Everything runs on ``checks.grader_model()`` (no ShapesNet,
so nothing is trained here).
"""

import cv2
import numpy as np
import pytest

from convviz_helpers import cam, checks, metrics


def rejects(check, fn, *args, match, **kwargs):
    with pytest.raises(AssertionError, match=match):
        check(fn, *args, **kwargs)


# --- the class map: weights, weighted sum, ReLU ---------------------------------------------


def class_map_solution(activations, gradients):
    weights = gradients.mean(axis=(1, 2), keepdims=True)
    return np.maximum((weights * activations).sum(axis=-1), 0)


def test_class_map_accepts_the_solution(capsys):
    checks.check_class_map(class_map_solution)
    assert "✓ class_map matches Grad-CAM's map on 6 images" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, match", [
    (lambda a, g: (g.mean(axis=(1, 2), keepdims=True) * a).sum(axis=-1), "below 0: did you apply the ReLU"),
    (lambda a, g: np.maximum((g.mean(axis=(0, 1, 2)) * a).sum(axis=-1), 0), "averaged gradients across the batch"),
    (lambda a, g: np.maximum((g * a).sum(axis=-1), 0), "Layer-CAM"),
    (lambda a, g: np.maximum(g.mean(axis=(1, 2), keepdims=True) * a, 0), "over the channel axis"),
    (lambda a, g: None, "came back as None"),
])
def test_class_map_names_the_mistake(wrong, match):
    rejects(checks.check_class_map, wrong, match=match)


# --- the heatmaps: upsample, normalise per map ----------------------------------------------


def heatmaps_solution(maps, size):
    maps = cam.upsample(maps, size)
    peaks = maps.max(axis=(1, 2), keepdims=True)
    return maps / np.where(peaks > 0, peaks, 1)


def heatmaps_cv2(maps, size, order=lambda size: size[::-1]):
    resized = np.stack([cv2.resize(m, order(size), interpolation=cv2.INTER_LINEAR) for m in maps])
    peaks = resized.max(axis=(1, 2), keepdims=True)
    return resized / np.where(peaks > 0, peaks, 1)


def test_heatmaps_accept_the_solution_and_cv2(capsys):
    checks.check_heatmaps(heatmaps_solution)
    checks.check_heatmaps(heatmaps_cv2)
    assert capsys.readouterr().out.count("✓ heatmaps match Grad-CAM's on 6 images of 32×40 pixels") == 2


@pytest.mark.parametrize("wrong, match", [
    # cv2.resize takes (width, height): passing (H, W) gives (n, W, H) maps.
    (lambda m, s: heatmaps_cv2(m, s, order=tuple), "looks transposed"),
    (lambda m, s: heatmaps_solution(m, m.shape[1:3]), "layer's resolution"),
    (lambda m, s: cam.upsample(m, s) / cam.upsample(m, s).max(), "its own maximum"),
    (lambda m, s: cam.upsample(m, s) / cam.upsample(m, s).max(axis=(1, 2), keepdims=True), "NaN"),
    (lambda m, s: heatmaps_solution(np.repeat(np.repeat(m, s[0] // m.shape[1], 1), s[1] // m.shape[2], 2), s),
     "blocky"),
    (lambda m, s: None, "came back as None"),
])
def test_heatmaps_name_the_mistake(wrong, match):
    with np.errstate(all="ignore"):
        rejects(checks.check_heatmaps, wrong, match=match)


# --- the layer experiment, rates and conclusion apart -----------------------------------------

LAYERS = ("conv1", "conv2", "conv3", "conv4")


def rates_solution(model, shapes, layers, tolerance):
    return {layer: metrics.pointing_game(cam.grad_cam(model, shapes.images, shapes.labels, layer), shapes.masks,
                                         tolerance=tolerance)
            for layer in layers}


@pytest.fixture(scope="module")
def measured():
    return checks.layer_localisation(checks.grader_model(), checks.experiment_data(), LAYERS)


def test_rates_name_a_stub():
    rejects(checks.check_layer_rates, lambda m, s, layers, t: None, model=checks.grader_model(), layers=LAYERS,
            match="came back as None")


def test_rates_are_accepted_and_returned(measured, capsys):
    rates = checks.check_layer_rates(rates_solution, model=checks.grader_model(), layers=LAYERS)
    assert rates == measured
    assert "✓ layer rates match" in capsys.readouterr().out


def test_hard_coded_rates_fail_on_another_model(measured):
    # What an assignment's hidden test does: rates copied from a message about one model are
    # wrong for another.
    copied = {layer: 0.5 for layer in LAYERS[:3]} | {"conv4": 0.25}
    rejects(checks.check_layer_rates, lambda m, s, layers, t: copied, model=checks.grader_model(), layers=LAYERS,
            match="differ from the measurement")


def test_best_layer(measured, capsys):
    best, worst = max(measured, key=measured.get), min(measured, key=measured.get)
    checks.check_best_layer(best, model=checks.grader_model(), layers=LAYERS)
    assert f"✓ {best} localises best" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not the layer with the highest hit rate"):
        checks.check_best_layer(worst, model=checks.grader_model(), layers=LAYERS, measured=measured)
    with pytest.raises(AssertionError, match="should name one of the layers"):
        checks.check_best_layer("block4_relu", layers=LAYERS, measured=measured)
    # An untouched assignment stub sets BEST_LAYER = ...
    with pytest.raises(AssertionError, match="no answer yet"):
        checks.check_best_layer(..., layers=LAYERS, measured=measured)


def test_the_whole_experiment_still_prints_one_line(measured, capsys):
    best = max(measured, key=measured.get)
    checks.check_layer_experiment(rates_solution, best, model=checks.grader_model(), layers=LAYERS)
    out = capsys.readouterr().out
    assert out.count("✓") == 1 and "✓ layer experiment matches the measurement on 96 images" in out
