"""Overlays and figures on hand-made inputs."""

import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from convviz_helpers import models, plotting


def test_overlay_blends_with_the_colour_map():
    image = np.full((4, 6, 3), 0.5, np.float32)
    heatmap = np.zeros((4, 6), np.float32)
    heatmap[1, 2] = 1.0
    out = plotting.overlay(image, heatmap, alpha=0.25)
    assert out.shape == (4, 6, 3) and out.dtype == np.uint8
    red = np.array(matplotlib.colormaps["jet"](1.0)[:3]) * 255  # jet's top colour
    blue = np.array(matplotlib.colormaps["jet"](0.0)[:3]) * 255
    np.testing.assert_allclose(out[1, 2], 0.75 * 127.5 + 0.25 * np.round(red), atol=1)
    np.testing.assert_allclose(out[0, 0], 0.75 * 127.5 + 0.25 * np.round(blue), atol=1)


def test_overlay_resizes_the_heatmap_and_accepts_uint8():
    image = np.zeros((32, 48, 3), np.uint8)
    out = plotting.overlay(image, np.ones((4, 6)), alpha=1.0)
    assert out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, np.broadcast_to(plotting.colorize(np.ones((1, 1))), out.shape))
    assert (plotting.overlay(image, np.zeros((4, 6)), alpha=0.0) == 0).all()


def test_overlay_refuses_bad_shapes():
    with pytest.raises(ValueError):
        plotting.overlay(np.zeros((4, 4, 3)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError):
        plotting.overlay(np.zeros((4, 4, 5)), np.zeros((4, 4)))


def test_gradient_image_range():
    grads = np.random.default_rng(0).normal(size=(2, 5, 5, 3)) * 1e-6
    shown = plotting.gradient_image(grads)
    assert shown.shape == grads.shape and shown.min() >= 0 and shown.max() <= 1
    assert plotting.gradient_image(np.zeros((1, 3, 3, 3))).max() == 0.5


def test_show_cams_grid():
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3))
    figure = plotting.show_cams(images, {"a": np.zeros((2, 8, 8)), "g": np.zeros((2, 8, 8, 3))},
                                masks=np.ones((2, 8, 8), bool), title="t")
    assert len(figure.axes) == 2 * 4
    plt.close(figure)


def test_show_maps_draws_maps_apart_with_mask_contours():
    images = np.random.default_rng(0).uniform(size=(2, 8, 8, 3))
    masks = np.zeros((2, 8, 8), bool)
    masks[:, 2:6, 2:6] = True
    figure = plotting.show_maps(images, {"a long method name that wraps": np.ones((2, 8, 8)),
                                         "g": np.zeros((2, 8, 8, 3))}, masks=masks, width=4.0)
    assert len(figure.axes) == 2 * 3 and figure.get_size_inches()[0] == 4.0
    assert all(ax.collections for ax in figure.axes)  # every tile carries the outline
    assert "\n" in figure.axes[1].get_title() and figure.axes[1].title.get_fontsize() == 9
    plt.close(figure)
    with pytest.raises(ValueError, match="at most 8"):
        plotting.show_maps(images, {str(k): np.zeros((2, 8, 8)) for k in range(8)})


def test_show_top_k_one_column_per_class():
    model = models.shapes_convnet(32, num_classes=4, widths=(4, 8))
    image = np.random.default_rng(1).uniform(size=(32, 32, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained weights may give empty maps
        figure = plotting.show_top_k(model, image, k=3, class_names=["a", "b", "c", "d"])
    titles = [ax.get_title() for ax in figure.axes]
    assert len(figure.axes) == 2 * 4 and sum("p = " in t for t in titles) == 3
    plt.close(figure)


def test_compact_figures_need_a_notebook_and_a_valid_quality():
    with pytest.raises(ValueError, match="quality"):
        plotting.use_compact_figures(quality=0)
    with pytest.raises(RuntimeError, match="not a notebook"):
        plotting.use_compact_figures()
