"""Training assignment: the accuracy of each class, the number that shows a shortcut."""

import numpy as np

from ._common import _as_array, _call, _fail, _no_nan


def _accuracy_case():
    """Labels and predictions (n,) of a seeded, unbalanced case over 5 classes: the classes
    have different sizes and different error rates, so per-class accuracy (recall), precision,
    the overall accuracy and raw counts all differ."""
    rng = np.random.default_rng(31)
    labels = np.repeat(np.arange(5), [30, 12, 20, 8, 25])
    hit = rng.uniform(size=len(labels)) < np.array([0.9, 0.3, 0.6, 0.5, 0.95])[labels]
    # A wrong prediction goes to class 0 more often than elsewhere, so precision differs from recall.
    wrong = np.where(rng.uniform(size=len(labels)) < 0.6, 0, rng.integers(0, 5, len(labels)))
    wrong = np.where(wrong == labels, (labels + 1) % 5, wrong)
    order = rng.permutation(len(labels))
    return labels[order], np.where(hit, labels, wrong)[order], 5


def class_accuracy(labels, predicted, num_classes):
    """The package's answer: (num_classes,) float, the fraction of each class's images predicted
    as that class (NaN for a class without images)."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    right = np.bincount(labels[predicted == labels], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return right / counts


def check_class_accuracy(fn):
    """Grade ``fn(labels, predicted, num_classes) -> (num_classes,)``: for each class, the
    fraction of its images that the model predicted as that class (its recall). Run on a
    seeded, unbalanced case; the hints name precision, counts, percentages and the overall
    accuracy."""
    __tracebackhide__ = True
    labels, predicted, k = _accuracy_case()
    result = _as_array(_call(fn, labels.copy(), predicted.copy(), k), "the per-class accuracies")
    expected = class_accuracy(labels, predicted, k)
    if result.shape != (k,):
        _fail(f"return one number per class, shape ({k},); got shape {result.shape}.")
    result = result.astype(np.float64)
    _no_nan(result, "every class of the test case has images: divide by its image count.")
    if np.allclose(result, expected, atol=1e-6):
        print(f"✓ per-class accuracy matches on {len(labels)} predictions over {k} classes")
        return
    right = np.bincount(labels[predicted == labels], minlength=k)
    predicted_counts = np.maximum(np.bincount(predicted, minlength=k), 1)
    mistakes = [
        (100 * expected, "percentages: return fractions in [0, 1]."),
        (right, "you returned how many images of each class were right; divide by the number of images "
                "of that class."),
        (right / predicted_counts, "that is each class's precision (right / how often the class was "
                                   "predicted); the accuracy of a class divides by how many images of "
                                   "that class there are (labels == k)."),
        (right / len(labels), "you divided by all the images, so your numbers add up to the overall "
                              "accuracy; divide by the images of each class."),
        (np.full(k, np.mean(labels == predicted)), "every class got the overall accuracy: count only "
                                                    "the images whose label is that class."),
    ]
    for wrong, hint in mistakes:
        if np.allclose(result, wrong, atol=1e-6):
            _fail(hint)
    table = ", ".join(f"class {c}: {e:.3f} (yours {r:.3f})" for c, (e, r) in enumerate(zip(expected, result)))
    _fail(f"your accuracies differ: {table}. For class k: among the images with label k, the fraction "
          "predicted as k.")
