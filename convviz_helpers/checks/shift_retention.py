"""Filters assignment: does a pattern still excite its channel when it moves by a few pixels?"""

import numpy as np

from .. import filters
from ._common import _as_array, _call, _fail, _no_nan

SHIFT_LAYER = "block3_relu"  # ShapesNet's layer the grader scores (its patterns are the assignment's)
SHIFT_CHANNEL = 0


def shift_retention(model, layer, channel, patterns, shift):
    """The package's answer: (n,) float, the channel's score (``filters.filter_scores``: mean
    pre-activation) on each pattern rolled by ``shift`` px down and right, divided by its score
    on the pattern as it is."""
    before = filters.filter_scores(model, layer, patterns, [channel])[:, 0]
    after = filters.filter_scores(model, layer, np.roll(patterns, (shift, shift), axis=(1, 2)), [channel])[:, 0]
    return after / before


def _patterns(model):
    """Four seeded 'patterns' at ShapesNet's input size: two plain ascent images (that lose their
    score when moved) and two shapes images (that keep it)."""
    from .. import data

    ascent = filters.filter_patterns(model, SHIFT_LAYER, [SHIFT_CHANNEL, SHIFT_CHANNEL], steps=12, seed=3, raw=True)
    ascent[1] = np.flip(ascent[1], axis=1)  # a second, different image with the same statistics
    shapes = data.make_shapes(2, seed=707).images
    return np.concatenate([ascent, shapes]).astype(np.float32)


def check_shift_retention(fn, model=None):
    """Grade ``fn(model, layer, channel, patterns, shift) -> (n,)``: the share of the channel's
    score that each pattern keeps when rolled by ``shift`` pixels down and right (or up and
    left: the sign is not graded). Run on ShapesNet (or ``model``) at ``SHIFT_LAYER`` with
    shifts 1 and 3. The hints name the batch axis, one axis only, post-ReLU scores, differences
    and inverted ratios."""
    __tracebackhide__ = True
    if model is None:
        from ..models import shapes_model

        model = shapes_model()
    patterns = _patterns(model)
    for shift in (1, 3):
        result = _as_array(_call(fn, model, SHIFT_LAYER, SHIFT_CHANNEL, patterns.copy(), shift),
                           "the retained shares")
        if result.shape != (len(patterns),):
            _fail(f"return one number per pattern, shape ({len(patterns)},); got {result.shape}.")
        result = result.astype(np.float64)
        _no_nan(result, "divide each shifted score by the same pattern's unshifted score.")
        answers = [shift_retention(model, SHIFT_LAYER, SHIFT_CHANNEL, patterns, s) for s in (shift, -shift)]
        if any(np.allclose(result, answer, rtol=1e-3, atol=1e-4) for answer in answers):
            continue
        _diagnose(result, model, patterns, shift)
    print(f"✓ shift retention matches on {len(patterns)} patterns, shifts of 1 and 3 px")


def _diagnose(result, model, patterns, shift):
    """Fail with the hint for the mistake that gives ``result``."""
    __tracebackhide__ = True

    def score(images, preactivation=True):
        return filters.filter_scores(model, SHIFT_LAYER, images, [SHIFT_CHANNEL], preactivation=preactivation)[:, 0]

    before, after = score(patterns), score(np.roll(patterns, (shift, shift), axis=(1, 2)))
    with np.errstate(all="ignore"):
        mistakes = [
            (score(np.roll(patterns, shift, axis=0)) / before,
             "you rolled along axis 0, the batch: that swaps patterns. Shift each image along its rows "
             "and columns (axes 1 and 2)."),
            (score(np.roll(patterns, shift, axis=1)) / before,
             "you shifted along the rows only; shift along both rows and columns (axis=(1, 2))."),
            (score(np.roll(patterns, shift, axis=2)) / before,
             "you shifted along the columns only; shift along both rows and columns (axis=(1, 2))."),
            (before / after, "your ratio is upside down: the shifted score divided by the unshifted one."),
            (after - before, "a difference, not a share: divide the shifted score by the unshifted one."),
            (score(np.roll(patterns, (shift, shift), axis=(1, 2)), False) / score(patterns, False),
             "you scored the channel after its ReLU; the ascent maximised the pre-activation, so score "
             "with filters.filter_scores as it is (preactivation=True)."),
        ]
    for wrong, hint in mistakes:
        if np.allclose(result, wrong, rtol=1e-3, atol=1e-4, equal_nan=True):
            _fail(hint)
    expected = after / before
    _fail(f"for a shift of {shift} px your shares are {np.round(result, 3).tolist()}, expected "
          f"{np.round(expected, 3).tolist()}: filters.filter_scores on the rolled patterns divided by it "
          "on the patterns as they are.")
