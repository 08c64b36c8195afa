"""Graders for the exercises in ``notebooks/05_exercises.ipynb`` and the chapter assignments in
``assignments/``.

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
- ``check_layer_experiment(fn, best_layer)``: ``fn(model, shapes, layers, tolerance) -> {layer:
  hit rate}`` measured with ``metrics.pointing_game`` within the Grad-CAM chapter's tolerance
  (``EXPERIMENT_TOLERANCE`` px), and the layer the student concluded localises best;
  ``check_layer_rates(fn)`` and ``check_best_layer(best_layer)`` grade the two apart (an
  assignment keeps the conclusion's test hidden).

The chapter assignments (``assignments/``):

- ``check_class_accuracy(fn)``: ``fn(labels, predicted, num_classes) -> (num_classes,)``, each
  class's accuracy (training: the number that shows a shortcut).
- ``check_class_means(fn)``: ``fn(maps, labels, num_classes) -> (num_classes, channels)``, each
  channel's mean activation per class (activations).
- ``check_shift_retention(fn)``: ``fn(model, layer, channel, patterns, shift) -> (n,)``, the
  share of a channel's score a pattern keeps when rolled by ``shift`` px (filters).
- ``check_rank_correlation(fn)``: ``fn(first, second) -> (n,)``, Spearman's correlation of
  paired maps, as the randomisation check reports it (Grad-CAM).

One grader module per exercise (``standardise``, ``ascent_step``, ``layer_gradients``,
``grad_cam``, ``layer_experiment``, ``class_accuracy``, ``class_means``, ``shift_retention``,
``rank_correlation``) on shared helpers (``_common``); this module re-exports them.
"""

from .standardise import check_standardise
from .ascent_step import ASCENT_EPSILON, check_ascent_step
from ._common import grader_model
from .layer_gradients import TAPE_RELATIVE_TOLERANCE, TAPE_SEED, _tape_cases, check_layer_gradients  # noqa: F401
from .grad_cam import check_class_map, check_grad_cam, check_heatmaps
from .layer_experiment import (
    EXPERIMENT_LAYERS, EXPERIMENT_SEED, EXPERIMENT_SIZE, EXPERIMENT_TOLERANCE, check_best_layer,
    check_layer_experiment, check_layer_rates, experiment_data, layer_localisation,
)
from .class_accuracy import check_class_accuracy
from .class_means import check_class_means
from .shift_retention import SHIFT_CHANNEL, SHIFT_LAYER, check_shift_retention
from .rank_correlation import check_rank_correlation

__all__ = [
    "check_standardise", "check_ascent_step", "check_layer_gradients", "check_grad_cam", "check_class_map",
    "check_heatmaps", "check_layer_rates", "check_best_layer", "check_layer_experiment", "grader_model",
    "experiment_data", "layer_localisation", "ASCENT_EPSILON", "TAPE_SEED", "TAPE_RELATIVE_TOLERANCE",
    "EXPERIMENT_LAYERS", "EXPERIMENT_SEED", "EXPERIMENT_SIZE", "EXPERIMENT_TOLERANCE",
    "check_class_accuracy", "check_class_means", "check_shift_retention", "check_rank_correlation",
    "SHIFT_LAYER", "SHIFT_CHANNEL",
]
