"""Resolved once: every method checks its images and reads the model's input range once per
call, whatever copies (noisy, masked, blended, path points) it scores afterwards
(CONTRIBUTING.md, "The path of a call"). Counts calls, never timings."""

import numpy as np
import pytest

from convviz_helpers import activations, cam, input_range, inputs, models

METHODS = {
    "grad_cam": cam.grad_cam,
    "guided_backprop": cam.guided_backprop,
    "guided_grad_cam": cam.guided_grad_cam,
    "smooth_grad": lambda net, images: cam.smooth_grad(net, images, samples=3),
    "score_cam": cam.score_cam,
    "occlusion": lambda net, images: cam.occlusion(net, images, window=8, stride=8),
    "rise": lambda net, images: cam.rise(net, images, masks=8),
    "integrated_gradients": lambda net, images: cam.integrated_gradients(net, images, steps=4),
    "feature_maps": activations.feature_maps,
}


@pytest.fixture(scope="module")
def net():
    return models.shapes_convnet(16, widths=(4, 8))


@pytest.mark.parametrize("name", METHODS)
def test_a_call_checks_its_images_and_reads_the_input_range_once(net, name, monkeypatch):
    counts = {"image_batch": 0, "read": 0}

    def counted(module, function):
        original = getattr(module, function)

        def wrapper(*args, **kwargs):
            counts[function] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(module, function, wrapper)

    counted(inputs, "image_batch")
    counted(input_range, "read")
    images = np.random.default_rng(0).uniform(size=(3, 16, 16, 3)).astype(np.float32)
    METHODS[name](net, images)
    assert counts == {"image_batch": 1, "read": 1}, name
