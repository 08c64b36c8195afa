"""The atlas: Lucid's recipe pieces checked by hand (the redirected ReLU6, the colour and Fourier
parameterisation and their inverses), the hash-named cache on a tiny model, and the shipped
EfficientNet-Lite0 atlas checked with forward passes only (patterns against dataset examples and
against each other)."""

import numpy as np
import pytest

from convviz_helpers import data, filters, gradients
from convviz_helpers._tf import keras
from convviz_helpers.filters import _atlas, _images, _render
from test_filters import small_net

TINY = filters.AtlasRecipe(size=16, steps=3, redirect_steps=1, pad=2, jitter=2, jitter_after=1, examples=6,
                           crop_fractions=(0.5,), crop_stride=1.0)


def _relu6_gradient(x, upstream, redirect):
    """d sum(relu6(x) * upstream) / dx through a one-layer ReLU6 model, compiled by the core."""
    model = keras.Sequential([keras.Input(x.shape[1:]), keras.layers.ReLU(6.0, name="relu6")])

    def objective(inputs, weights):
        if redirect:
            with filters.redirecting(model) as swapped:
                assert swapped == 1
                out = model(inputs, training=False)
        else:
            out = model(inputs, training=False)
        return keras.ops.sum(out * weights, axis=(1, 2, 3))

    run = gradients.compile(model, lambda a, w: gradients.value_and_gradient(objective)(a, w),
                            [((None, *x.shape[1:]), "float32"), ((None, *x.shape[1:]), "float32")])
    values, grad = run(x, upstream)
    return np.asarray(values), np.asarray(grad)


def test_redirected_relu6_opens_closed_units_and_keeps_forward_values():
    rng = np.random.default_rng(0)
    upstream = rng.normal(size=(2, 4, 4, 3)).astype(np.float32)
    closed = np.where(rng.uniform(size=(4, 4, 3)) < 0.5, -1.0 - rng.uniform(size=(4, 4, 3)),
                      7.0 + rng.uniform(size=(4, 4, 3)))  # every unit below 0 or above 6
    mixed = closed.copy()
    mixed[0, 0] = 3.0  # one open pixel: this image keeps the plain gradient
    x = np.stack([closed, mixed]).astype(np.float32)
    plain_values, plain = _relu6_gradient(x, upstream, redirect=False)
    values, redirected = _relu6_gradient(x, upstream, redirect=True)
    # Forward: the ReLU6's own values, by hand.
    expected_values = (np.clip(x, 0, 6) * upstream).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(values, expected_values, rtol=1e-5)
    np.testing.assert_allclose(plain_values, expected_values, rtol=1e-5)
    # Plain ReLU6: the closed image gets no gradient at all.
    assert not plain[0].any()
    # Redirected: a unit below 0 passes a gradient that would raise it, one above 6 a gradient
    # that would lower it; the others stay zero.
    opening = ((x[0] < 0) & (upstream[0] > 0)) | ((x[0] > 6) & (upstream[0] < 0))
    np.testing.assert_allclose(redirected[0], np.where(opening, upstream[0], 0.0), rtol=1e-6)
    assert opening.any() and np.abs(redirected[0]).sum() > 0
    # An image whose plain gradient is alive keeps it unchanged.
    np.testing.assert_allclose(redirected[1], plain[1], rtol=1e-6)
    assert plain[1][0, 0].any() and not plain[1][1:].any()


def test_decorrelated_colour_and_its_inverse_agree():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(5, 7, 3)).astype(np.float64)
    there = np.asarray(_images.decorrelated_to_rgb(values.astype(np.float32)), np.float64)
    np.testing.assert_allclose(_images.rgb_to_decorrelated(there), values, atol=1e-5)
    # The mixing matrix is a square root of the photos' colour covariance (up to scale): its
    # columns are orthogonal (U sqrt(S)), so decorrelated noise comes out correlated like photos.
    root = _images._COLOUR_ROOT.astype(np.float64)
    gram = root.T @ root
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=2e-3)


def test_fourier_image_and_its_inverse_agree():
    photo = data.sample_image("coffee", 32)[None]  # (1, 32, 32, 3) in [0, 1]
    photo = np.clip(photo, 0.02, 0.98)
    spectrum = _images.lucid_spectrum(photo)
    assert spectrum.shape == (1, 2, 3, 32, 17)
    back = np.asarray(_images.lucid_image(spectrum, 32))
    np.testing.assert_allclose(back, photo, atol=1e-4)
    # And the forward map is numpy's irfft2 by another route.
    rng = np.random.default_rng(2)
    spectrum = rng.normal(0, 0.01, (2, 2, 3, 32, 17)).astype(np.float32)
    scale = _images.lucid_scale(32)
    channels = np.fft.irfft2((spectrum[:, 0] + 1j * spectrum[:, 1]) * scale, s=(32, 32), axes=(2, 3)) / 4
    expected = 1 / (1 + np.exp(-np.einsum("bchw,dc->bhwd", channels, _images._COLOUR_ROOT)))
    np.testing.assert_allclose(np.asarray(_images.lucid_image(spectrum, 32)), expected, atol=1e-5)


def test_transforms_are_the_identity_when_switched_off_and_bounded_otherwise():
    still = filters.AtlasRecipe(pad=0, jitter=0, jitter_after=0, scale=(1.0, 1.0), rotate=0.0)
    identity = np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32)
    np.testing.assert_allclose(_render._transforms([0, 5], still, 4), np.broadcast_to(identity, (4, 2, 8)), atol=1e-6)
    moved = _render._transforms([0, 5], filters.AtlasRecipe(), 200)
    scale = 1 / np.hypot(moved[..., 0], moved[..., 3])
    assert 0.9 - 1e-4 <= scale.min() and scale.max() <= 1.1 + 1e-4
    assert np.degrees(np.abs(np.arctan2(moved[..., 3], moved[..., 0]))).max() <= 10 + 1e-4


def test_a_changed_recipe_recomputes_into_the_cache(tmp_cache):
    net = small_net()
    first = filters.atlas(net, ["relu2"], [0, 1, 2], recipe=TINY)
    assert first.source == "computed"
    files = sorted(p.name for p in tmp_cache.glob("atlas-*.npz"))
    assert files == [f"atlas-small-{first.hash}.npz"]
    again = filters.atlas(net, ["relu2"], [0, 1, 2], recipe=TINY)
    assert again.source == "cache" and again.hash == first.hash
    np.testing.assert_array_equal(again["relu2"].patterns, first["relu2"].patterns)
    changed = filters.atlas(net, ["relu2"], [0, 1, 2], recipe=filters.AtlasRecipe(**{**TINY.__dict__, "steps": 4}))
    assert changed.source == "computed" and changed.hash != first.hash
    assert len(list(tmp_cache.glob("atlas-*.npz"))) == 2
    assert not np.array_equal(changed["relu2"].patterns, first["relu2"].patterns)
    lay = changed["relu2"]
    assert lay.patterns.shape == (3, 16, 16, 3) and lay.examples.shape == (3, 6, 16, 16, 3)
    assert (np.diff(lay.example_activations, axis=1) <= 1e-6).all()  # best first
    # The examples rebuilt from their boxes give the stored activations (pre-activation: bn2).
    np.testing.assert_allclose(filters.channel_means(net, ["bn2"], lay.examples.reshape(-1, 16, 16, 3))[0]
                               .reshape(3, 6, -1)[np.arange(3), :, [0, 1, 2]], lay.example_activations, atol=1e-4)


def test_bad_input_gives_clear_errors():
    net = small_net()
    with pytest.raises(ValueError, match="out of range"):
        filters.render(net, "relu2", [99], recipe=TINY)
    with pytest.raises(ValueError, match="objective"):
        filters.render(net, "relu2", [0], recipe=TINY, objective="pixel")
    with pytest.raises(ValueError, match="steps"):
        filters.AtlasRecipe(steps=0)
    with pytest.raises(ValueError, match="No shipped atlas"):
        filters.atlas("vgg16")


@pytest.fixture(scope="module")
def shipped():
    return filters.atlas("efficientnet_lite0")


def test_the_shipped_atlas_has_four_depths(shipped):
    assert shipped.source == "shipped" and len(shipped.layers) >= 4
    for lay in shipped:
        k = len(lay.channels)
        assert k == _atlas.SHIPPED["efficientnet_lite0"][lay.layer] >= 32
        assert lay.patterns.shape == (k, 128, 128, 3) and lay.patterns.dtype == np.float32
        assert lay.examples.shape[:2] == (k, 8) and lay.examples.shape[2] >= 128
        assert 0 <= lay.patterns.min() and lay.patterns.max() <= 1
        assert lay.example_activations.shape == (k, 8) and lay.pattern_activations.shape == (k,)
    assert shipped.recipe.steps >= 256


def test_every_shipped_pattern_beats_its_dataset_examples_and_most_other_patterns(shipped):
    model = _atlas.models.pretrained("efficientnet_lite0")
    for lay in shipped:
        ids = lay.channels
        response = filters.channel_means(model, [lay.layer], lay.patterns)[0][:, ids]  # (pattern, channel)
        own = np.diag(response)
        np.testing.assert_allclose(own, lay.pattern_activations, rtol=1e-3, atol=1e-3)
        beats = own > lay.example_activations.max(axis=1)
        # Measured: every pattern of blocks 4, 6a and the head input beats all its examples; in
        # block 2, 25 of 32 do (the others are flat colour fields, which a crop of a saturated
        # photo matches or beats).
        assert beats.mean() >= (0.75 if lay.layer.startswith("block2") else 1.0), (lay.layer, np.flatnonzero(~beats))
        # Pairs (pattern i, channel j != i): channel j responds more to its own pattern.
        beaten = own[None, :] > response
        off = ~np.eye(len(ids), dtype=bool)
        assert beaten[off].mean() >= 0.95, (lay.layer, beaten[off].mean())
        # The first channel's examples, rebuilt from their boxes, give the stored activations.
        again = filters.channel_means(model, [lay.layer], lay.examples[0])[0][:, ids[0]]
        np.testing.assert_allclose(again, lay.example_activations[0], rtol=1e-3, atol=1e-3)
