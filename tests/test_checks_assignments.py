"""The graders of the chapter assignments (assignments/*.ipynb): each accepts a right answer
written independently of the package, and names the typical mistakes."""

import numpy as np
import pytest
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import recall_score

from convviz_helpers import activations, checks, filters
from convviz_helpers.checks import class_accuracy, class_means, rank_correlation


def rejects(check, fn, match):
    with pytest.raises(AssertionError, match=match):
        check(fn)


# --- training: each class's accuracy ------------------------------------------------------


def accuracy_solution(labels, predicted, num_classes):
    return recall_score(labels, predicted, labels=list(range(num_classes)), average=None)


def test_class_accuracy_accepts_sklearns_recall(capsys):
    checks.check_class_accuracy(accuracy_solution)
    assert "✓ per-class accuracy matches" in capsys.readouterr().out


def test_the_accuracy_case_tells_the_mistakes_apart():
    labels, predicted, k = class_accuracy._accuracy_case()
    recall = accuracy_solution(labels, predicted, k)
    precision = np.array([np.mean(labels[predicted == c] == c) for c in range(k)])
    assert np.abs(recall - precision).min() > 0.01
    assert np.ptp(recall) > 0.3  # the overall accuracy is not every class's accuracy


@pytest.mark.parametrize("wrong, match", [
    (lambda l, p, k: None, "returns nothing yet"),
    (lambda l, p, k: 100 * accuracy_solution(l, p, k), "percentages"),
    (lambda l, p, k: np.array([np.mean(l[p == c] == c) for c in range(k)]), "precision"),
    (lambda l, p, k: np.array([np.sum((p == c) & (l == c)) / len(l) for c in range(k)]), "divided by all the images"),
    (lambda l, p, k: np.array([np.sum((p == c) & (l == c)) for c in range(k)]), "how many images of each class were right"),
    (lambda l, p, k: np.full(k, np.mean(l == p)), "overall accuracy"),
    (lambda l, p, k: accuracy_solution(l, p, k)[:-1], "one number per class"),
])
def test_class_accuracy_names_the_mistake(wrong, match):
    rejects(checks.check_class_accuracy, wrong, match)


# --- activations: each channel's mean activation per class ---------------------------------


def means_solution(maps, labels, num_classes):
    table = np.zeros((num_classes, maps.shape[-1]))
    for k in range(num_classes):
        chosen = [m for m, label in zip(maps, labels) if label == k]
        table[k] = np.mean([m.reshape(-1, m.shape[-1]).mean(axis=0) for m in chosen], axis=0)
    return table


def test_class_means_accepts_a_loop(capsys):
    checks.check_class_means(means_solution)
    assert "✓ class means match" in capsys.readouterr().out
    maps, labels, k = class_means._means_case()
    np.testing.assert_allclose(class_means.class_means(maps, labels, k), means_solution(maps, labels, k), rtol=1e-6)


@pytest.mark.parametrize("wrong, match", [
    (lambda m, l, k: None, "returns nothing yet"),
    (lambda m, l, k: means_solution(m, l, k).T, "transposed"),
    (lambda m, l, k: np.stack([m[l == c].max(axis=(1, 2)).mean(axis=0) for c in range(k)]), "maximum"),
    (lambda m, l, k: np.stack([m[l == c].mean(axis=(1, 2)).sum(axis=0) for c in range(k)]), "sums, not means"),
    (lambda m, l, k: np.repeat(m.mean(axis=(0, 1, 2))[None], k, axis=0), "every row is the same"),
    (lambda m, l, k: np.stack([m[l == c].mean(axis=(0, 3)) for c in range(k)]), "expected shape"),
])
def test_class_means_names_the_mistake(wrong, match):
    rejects(checks.check_class_means, wrong, match)


# --- filters: how much of its score a pattern keeps when shifted ---------------------------


def retention_solution(model, layer, channel, patterns, shift):
    # Independent of filter_scores: ShapesNet's block3_relu is a standalone ReLU, so the
    # pre-activation the ascent maximises is the output of block3_bn, read with feature_maps.
    assert layer == "block3_relu"

    def score(images):
        return activations.feature_maps(model, images, ["block3_bn"])["block3_bn"][..., channel].mean(axis=(1, 2))

    return score(np.roll(patterns, (shift, shift), axis=(1, 2))) / score(patterns)


@pytest.fixture(scope="module")
def shapesnet():
    from convviz_helpers import models

    return models.shapes_model()


def test_shift_retention_accepts_an_independent_answer(shapesnet, capsys):
    checks.check_shift_retention(retention_solution, model=shapesnet)
    assert "✓ shift retention matches" in capsys.readouterr().out


def score(model, images, preactivation=True):
    return filters.filter_scores(model, checks.SHIFT_LAYER, images, [checks.SHIFT_CHANNEL], preactivation=preactivation)[:, 0]


@pytest.mark.parametrize("wrong, match", [
    (lambda m, l, c, p, s: None, "returns nothing yet"),
    (lambda m, l, c, p, s: score(m, np.roll(p, s, axis=0)) / score(m, p), "axis 0, the batch"),
    (lambda m, l, c, p, s: score(m, np.roll(p, s, axis=1)) / score(m, p), "rows only"),
    (lambda m, l, c, p, s: score(m, p) / score(m, np.roll(p, (s, s), axis=(1, 2))), "upside down"),
    (lambda m, l, c, p, s: score(m, np.roll(p, (s, s), axis=(1, 2))) - score(m, p), "a difference"),
    (lambda m, l, c, p, s: score(m, np.roll(p, (s, s), axis=(1, 2)), False) / score(m, p, False), "after its ReLU"),
    (lambda m, l, c, p, s: score(m, np.roll(p, (2, 2), axis=(1, 2))) / score(m, p), "for a shift of 1 px"),
])
def test_shift_retention_names_the_mistake(shapesnet, wrong, match):
    with np.errstate(all="ignore"), pytest.raises(AssertionError, match=match):
        checks.check_shift_retention(wrong, model=shapesnet)


# --- Grad-CAM: the randomisation check's rank correlation ----------------------------------


def spearman_solution(first, second):
    # scipy gives NaN (and a warning) for a constant map; the check counts it as 0, no order.
    return np.array([spearmanr(a.ravel(), b.ravel()).statistic if np.ptp(a) and np.ptp(b) else 0.0
                     for a, b in zip(first, second)])


def test_rank_correlation_accepts_scipys_spearman(capsys):
    checks.check_rank_correlation(spearman_solution)
    assert "✓ rank correlation matches on 7 pairs" in capsys.readouterr().out


def test_the_correlation_case_has_ties_and_a_monotone_pair():
    first, second = rank_correlation._correlation_case()
    assert spearman_solution(first[4:5], second[4:5])[0] == pytest.approx(1.0)
    assert (first[2:4] == 0).mean() > 0.3


def ordinal_ranks(first, second):
    def order(x):
        return np.argsort(np.argsort(-x.ravel(), kind="stable"))

    # Ties ranked in pixel order give an all-zero map distinct ranks, so it needs no special case.
    return np.array([np.corrcoef(order(a), order(b))[0, 1] for a, b in zip(first, second)])


def pearson_of_ranks(first, second):
    """Spearman's formula without the guard for constant maps: NaN for an all-zero map."""
    with np.errstate(all="ignore"):
        a = rankdata(first.reshape(len(first), -1), axis=1)
        b = rankdata(second.reshape(len(second), -1), axis=1)
        a, b = a - a.mean(axis=1, keepdims=True), b - b.mean(axis=1, keepdims=True)
        return (a * b).sum(axis=1) / np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))


@pytest.mark.parametrize("wrong, match", [
    (lambda a, b: None, "returns nothing yet"),
    (lambda a, b: np.nan_to_num(np.array([np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)])), "Pearson"),
    # Unguarded, Pearson's formula is NaN on the all-zero map: still named as Pearson.
    (lambda a, b: np.array([np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)]), "Pearson"),
    (lambda a, b: spearmanr(a.ravel(), b.ravel()).statistic, "one number came back"),
    (ordinal_ranks, "share their mean rank"),
    (pearson_of_ranks, "all-zero map.*return 0"),
    (lambda a, b: spearman_solution(a, b)[:3], "one correlation per pair"),
])
def test_rank_correlation_names_the_mistake(wrong, match):
    rejects(checks.check_rank_correlation, wrong, match)
