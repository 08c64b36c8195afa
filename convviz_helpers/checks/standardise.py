"""Exercise 1: standardise one channel into a display tile, as ``activations.standardise`` does."""

import numpy as np

from .. import activations
from ._common import _as_array, _call, _fail, _no_nan


def _standardise_cases():
    """Channels (h, w) that cover what the display rule must handle, as float32 arrays."""
    rng = np.random.default_rng(11)
    return [
        ("a post-ReLU channel", np.maximum(rng.normal(0.2, 1.0, (9, 11)), 0)),
        ("a channel with large values", rng.normal(40.0, 15.0, (8, 8))),
        ("a channel with an outlier", np.pad(np.ones((1, 1)) * 50.0, 3) + rng.normal(0, 0.1, (7, 7))),
        ("a small-valued channel", rng.uniform(-1e-3, 1e-3, (6, 10))),
        ("an all-zero channel", np.zeros((5, 5))),
        ("a constant channel", np.full((6, 6), 3.5)),
        ("a channel constant up to float round-off", 2.0 + rng.normal(0, 1e-6, (6, 6))),
    ]


def _standardise_mistakes(channel):
    """What typical mistakes make of ``channel``: name -> uint8 tile (or None if not uint8)."""
    channel = np.asarray(channel, np.float64)
    mean, std = channel.mean(), channel.std()
    scaled = (channel - mean) / (std if std > 0 else 1.0) * 64 + 128
    span = channel.max() - channel.min()
    minmax = (channel - channel.min()) / (span if span > 0 else 1.0) * 255
    return {
        "truncated": np.clip(scaled, 0, 255).astype(np.uint8),
        "wrapped": np.round(scaled).astype(np.int64).astype(np.uint8),
        "minmax": np.round(minmax).astype(np.uint8),
    }


def check_standardise(fn):
    """Grade ``fn(channel) -> tile``: channel (h, w) float -> uint8 (h, w), standardised,
    ×64 + 128, clipped to 0–255 and rounded; a (near-)constant channel gives all zeros."""
    __tracebackhide__ = True
    cases = [(label, channel.astype(np.float32)) for label, channel in _standardise_cases()]
    # Every case runs before any is judged: a NaN in one case outranks a wrong dtype in another.
    results = []
    for _, channel in cases:
        results.append(_as_array(_call(fn, channel.copy()), "the tile"))
    for (label, channel), result in zip(cases, results):
        if result.shape != channel.shape:
            _fail(f"wrong shape for {label}: expected {channel.shape} (same as the channel), got {result.shape}.")
        _no_nan(result, f"for {label}. A channel with std 0 has nothing to show: return a blank tile (all 0).")
    for (label, channel), result in zip(cases, results):
        if result.dtype != np.uint8:
            _fail(f"the tile should be uint8 (display values 0–255), got {result.dtype}: "
                  "clip, round, then convert with .astype(np.uint8).")
        expected = activations.standardise(channel[None])[0]
        if not np.array_equal(result, expected):
            _diagnose_tile(label, channel, result, expected)
    print(f"✓ standardise matches the reference on {len(cases)} channels")


def _diagnose_tile(label, channel, result, expected):
    """Fail with the hint for the mistake that turns ``channel`` into ``result``."""
    __tracebackhide__ = True
    if not expected.any():
        _fail(f"{label} should give a blank tile (all 0): its spread is round-off, and standardising "
              f"it blows noise up to full contrast. Treat std <= {activations.CONSTANT_TOLERANCE:g} × the "
              "largest magnitude as constant.")
    mistakes = _standardise_mistakes(channel)
    if np.array_equal(result, mistakes["truncated"]):
        _fail(f"off by one on {label}: .astype(np.uint8) truncates; round first (np.round).")
    if np.array_equal(result, mistakes["wrapped"]):
        _fail(f"values wrapped around on {label} (300 became 44): clip to 0–255 before converting to uint8.")
    if np.array_equal(result, mistakes["minmax"]):
        _fail(f"you min-max scaled {label}; standardise instead: subtract the mean, divide by the "
              "standard deviation, then ×64 + 128.")
    if abs(float(result.mean()) - float(expected.mean())) > 10:
        _fail(f"the tile of {label} averages {result.mean():.0f}, expected about {expected.mean():.0f}: "
              "a standardised channel has mean 0, shown at grey level 128 (×64 + 128).")
    worst = int(np.abs(result.astype(int) - expected.astype(int)).max())
    _fail(f"{label}: your tile differs from the reference by up to {worst} grey levels.")
