"""Grad-CAM assignment: the rank correlation that the randomisation check reports."""

import numpy as np
from scipy.stats import rankdata

from .. import metrics
from ._common import _as_array, _call, _fail, _no_nan


PEARSON_HINT = ("that is Pearson's correlation of the values; Spearman's correlates their ranks "
                "(scipy.stats.rankdata), so any monotone change of a map scores 1.")


def _correlation_case():
    """Pairs of maps (n, H, W) with H != W: smooth maps, maps with many tied zeros (as Grad-CAM
    gives), a pair whose values are related by a monotone but not linear function (Spearman
    1, Pearson less), and an all-zero map (a randomised model's empty Grad-CAM: correlation 0)."""
    rng = np.random.default_rng(51)
    first = rng.uniform(size=(6, 7, 9))
    second = 0.5 * first + 0.5 * rng.uniform(size=first.shape)
    first[2:4] = np.maximum(first[2:4] - 0.6, 0.0)  # ties at zero
    second[2:4] = np.maximum(second[2:4] - 0.5, 0.0)
    second[4] = np.exp(8 * first[4])  # monotone: ranks equal
    second[5] = rng.permutation(second[5].ravel()).reshape(second[5].shape)  # unrelated
    first, second = np.concatenate([first, np.zeros((1, 7, 9))]), np.concatenate([second, second[:1]])
    return first.astype(np.float32), second.astype(np.float32)


def _pearson(first, second):
    """Pearson's correlation of each pair of maps (n,), 0 where a map is constant (as the mistakes
    this grader recognises would be guarded the same way)."""
    a = first.reshape(len(first), -1) - first.reshape(len(first), -1).mean(axis=1, keepdims=True)
    b = second.reshape(len(second), -1) - second.reshape(len(second), -1).mean(axis=1, keepdims=True)
    norm = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    return np.where(norm > 0, (a * b).sum(axis=1) / np.where(norm > 0, norm, 1.0), 0.0)


def check_rank_correlation(fn):
    """Grade ``fn(first, second) -> (n,)``: maps (n, H, W) in pairs, one Spearman rank
    correlation per pair, 0 where a map is constant. The hints name Pearson's correlation, NaN
    for a constant map, a correlation over the whole batch, ranks taken across the batch, and
    ties ranked in order instead of sharing a rank."""
    __tracebackhide__ = True
    first, second = _correlation_case()
    n = len(first)
    raw = _call(fn, first.copy(), second.copy())
    if raw is not None and np.ndim(raw) == 0:
        _fail("one number came back: the check compares maps image by image, so return one "
              f"correlation per pair, shape ({n},).")
    result = _as_array(raw, "the correlations")
    if result.shape != (n,):
        _fail(f"return one correlation per pair of maps, shape ({n},); got {result.shape}.")
    result = result.astype(np.float64)
    expected = metrics.spearman(first, second)
    # Pearson's formula also gives NaN on the all-zero map: name the bigger mistake first.
    finite = np.isfinite(result)
    pearson = _pearson(first, second)
    if (not np.allclose(result[finite], expected[finite], atol=1e-5)
            and np.allclose(result[finite], pearson[finite], atol=1e-5)):
        _fail(PEARSON_HINT)
    _no_nan(result, "an all-zero map (a randomised model's Grad-CAM often is one) has no order to "
                    "correlate: return 0 for it, as the randomisation check does.")
    if np.allclose(result, expected, atol=1e-5):
        print(f"✓ rank correlation matches on {n} pairs of maps")
        return
    batch_ranks = _pearson(rankdata(first.ravel()).reshape(n, -1), rankdata(second.ravel()).reshape(n, -1))
    mistakes = [
        (pearson, PEARSON_HINT),
        (batch_ranks, "you ranked the pixels of the whole batch together; rank each map on its own "
                      "(rankdata(..., axis=1) on maps flattened to (n, pixels))."),
    ]
    for wrong, hint in mistakes:
        if np.allclose(result, wrong, atol=1e-5):
            _fail(hint)
    tied = np.array([len(np.unique(maps)) < maps.size for maps in first])
    if np.allclose(result[~tied], expected[~tied], atol=1e-5):
        _fail("right where every pixel has its own value, wrong where maps have ties: pixels with the "
              "same value (Grad-CAM's zeros) must share their mean rank, as scipy.stats.rankdata gives "
              "them; argsort ranks ties in an arbitrary order.")
    _fail(f"your correlations {np.round(result, 3).tolist()} differ from Spearman's "
          f"{np.round(expected, 3).tolist()}: rank each map's pixels, then correlate the ranks, pair by pair.")
