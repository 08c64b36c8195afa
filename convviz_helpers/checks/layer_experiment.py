"""Exercise 6: which ShapesNet layer localises best, measured with ``metrics.pointing_game`` and
the Grad-CAM chapter's tolerance."""

import contextlib
import io

import numpy as np

from .. import cam, data, metrics
from ._common import _call, _fail, _not_none, _quiet


# The ShapesNet layers the localisation experiment compares, shallow to deep.
EXPERIMENT_LAYERS = ("block1_relu", "block2_relu", "block3_relu", "block4_relu")


EXPERIMENT_SEED = 505  # shapes neither ShapesNet's training (1) nor validation (2) saw


EXPERIMENT_SIZE = 96

# The Grad-CAM chapter's tolerance: half a cell of ShapesNet's last grid (64 px / 8 cells / 2).
# The graders pass it to the student's function, the same number for every network graded.
EXPERIMENT_TOLERANCE = 4


def experiment_data():
    """The fixed shapes the localisation experiment is graded on (``make_shapes`` seed 505)."""
    return data.make_shapes(EXPERIMENT_SIZE, image_size=64, seed=EXPERIMENT_SEED)


def layer_localisation(model, shapes, layers, tolerance=EXPERIMENT_TOLERANCE, classes="true"):
    """The package's measurement: {layer: pointing-game hit rate, within ``tolerance`` px, of
    Grad-CAM at that layer}, explaining each image's true class (``classes="true"``) or its
    predicted one (``"predicted"``)."""
    explained = shapes.labels if classes == "true" else None
    return {layer: metrics.pointing_game(_quiet(cam.grad_cam, model, shapes.images, explained, layer),
                                         shapes.masks, tolerance=tolerance)
            for layer in layers}


def _experiment_model(model):
    """ShapesNet unless the caller grades on another model (imported late: it may train)."""
    if model is None:
        from ..models import shapes_model

        model = shapes_model()
    return model


def _slack(shapes):
    """How far a rate may be from the measurement. Bilinear upsampling makes the hottest pixel a
    tie of neighbours; another resizer may break the tie differently and move a hit on the mask's
    edge, so two images of slack."""
    return 2.0 / len(shapes) + 1e-9


def check_layer_rates(fn, *, model=None, layers=EXPERIMENT_LAYERS, tolerance=EXPERIMENT_TOLERANCE):
    """Grade ``fn(model, shapes, layers, tolerance) -> {layer name: hit rate}``, the measurement
    half of the layer experiment. ``fn`` is run on ``experiment_data()`` with ShapesNet (or
    ``model``), ``layers`` and ``tolerance`` (px); each rate must match the pointing game, within
    that tolerance, of ``cam.grad_cam`` at that layer for the true classes, within two images in
    ``EXPERIMENT_SIZE``. Returns the measured rates."""
    __tracebackhide__ = True
    model, layers = _experiment_model(model), list(layers)
    shapes = experiment_data()
    result = _call(fn, model, shapes, list(layers), tolerance)
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
    expected = layer_localisation(model, shapes, layers, tolerance)
    slack = _slack(shapes)
    if len(set(rates.values())) == 1 and len(set(expected.values())) > 1:
        _fail(f"every layer got the same rate ({rates[layers[0]]:.3f}): did you pass `layer` on to grad_cam?")
    if any(abs(rates[layer] - expected[layer]) > slack for layer in layers):
        def close(other):
            return all(abs(rates[layer] - other[layer]) <= slack for layer in layers)

        if close(layer_localisation(model, shapes, layers, 0)):
            _fail(f"your rates are the strict pointing game's (tolerance 0): score with the tolerance "
                  f"you are given ({tolerance} px, as in the Grad-CAM chapter), "
                  "metrics.pointing_game(heatmaps, shapes.masks, tolerance=tolerance).")
        if close(layer_localisation(model, shapes, layers, tolerance, classes="predicted")):
            _fail("you explained the predicted class; explain the true class (shapes.labels), so a "
                  "misclassified image still asks 'where is the object?'.")
        table = ", ".join(f"{layer}: {expected[layer]:.3f} (yours {rates[layer]:.3f})" for layer in layers)
        _fail(f"your rates differ from the measurement: {table}. Use cam.grad_cam at each layer, "
              "the true classes, and metrics.pointing_game(heatmaps, shapes.masks, tolerance=tolerance).")
    print(f"✓ layer rates match the measurement on {len(shapes)} images")
    return expected


def check_best_layer(best_layer, *, model=None, layers=EXPERIMENT_LAYERS, measured=None,
                     tolerance=EXPERIMENT_TOLERANCE):
    """Grade the conclusion of the layer experiment: ``best_layer`` must name one of ``layers``
    whose measured hit rate (within ``tolerance`` px) is the highest (within the rates' slack).
    ``measured`` (the rates ``check_layer_rates`` returned) saves measuring again."""
    __tracebackhide__ = True
    layers = list(layers)
    if best_layer is Ellipsis or best_layer is None:
        _fail(f"no answer yet: set it to the name of one of the layers ({', '.join(layers)}), a string.")
    if best_layer not in layers:
        _fail(f"best_layer should name one of the layers measured ({', '.join(layers)}); got {best_layer!r}.")
    shapes = experiment_data()
    if measured is None:
        measured = layer_localisation(_experiment_model(model), shapes, layers, tolerance)
    best = max(measured.values())
    winners = [layer for layer in layers if measured[layer] >= best - _slack(shapes)]
    if best_layer not in winners:
        _fail(f"{best_layer!r} is not the layer with the highest hit rate in your own table: look again.")
    print(f"✓ {best_layer} localises best")


def check_layer_experiment(fn, best_layer, *, model=None, layers=EXPERIMENT_LAYERS,
                           tolerance=EXPERIMENT_TOLERANCE):
    """Grade ``fn(model, shapes, layers, tolerance) -> {layer name: hit rate}`` and the
    conclusion: what ``check_layer_rates`` and then ``check_best_layer`` check, with one line of
    output.

    ``fn`` is run on ``experiment_data()`` with ShapesNet (or ``model``), ``layers`` and
    ``tolerance``; each rate must match the pointing game within that tolerance of
    ``cam.grad_cam`` at that layer for the true classes within two images in
    ``EXPERIMENT_SIZE``. ``best_layer``: the layer the student concluded localises best; it must
    be one with the highest measured rate.
    """
    __tracebackhide__ = True
    model = _experiment_model(model)
    # The two graders' own ✓ lines are replaced by the one line this check has always printed.
    with contextlib.redirect_stdout(io.StringIO()):
        measured = check_layer_rates(fn, model=model, layers=layers, tolerance=tolerance)
        check_best_layer(best_layer, model=model, layers=layers, measured=measured, tolerance=tolerance)
    print(f"✓ layer experiment matches the measurement on {len(experiment_data())} images; "
          f"{best_layer} localises best")
