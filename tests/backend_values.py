"""Compute the explanation methods' numbers on the book's ShapesNet under this process's Keras
backend and save them, so tests/test_backends.py can compare backends.

Usage: KERAS_BACKEND=jax python tests/backend_values.py OUT.npz

Grad-CAM, guided backpropagation, guided Grad-CAM, filter patterns (plain ascent), the
Fourier image parameterisation, class patterns, feature maps and the probe's raw scores and
gradients, on fixed shapes images.
"""

import sys

import numpy as np


def compute():
    import convviz_helpers as cv
    from convviz_helpers._tf import keras
    from convviz_helpers.filters._images import _fourier_image

    model = cv.models.shapes_model()
    shapes = cv.data.make_shapes(6, seed=3)
    images = shapes.images
    conv = cv.models.last_conv_layer(model).name
    first = next(layer.name for _, layer in cv.models.iter_layers(model) if cv.models.is_conv(layer))
    spectrum = np.random.default_rng(0).normal(0.0, 0.05, (2, 2, 3, 64, 33)).astype(np.float32)
    probed = cv.gradients.probe(model, images, None, [conv], input_gradient=True)
    maps = cv.activations.feature_maps(model, images[:2])
    values = {
        "backend": np.array(cv.gradients.BACKEND),
        "scores": probed.scores,
        "classes": probed.classes,
        "activations": probed.activations[0],
        "layer_gradients": probed.gradients[0],
        "input_gradient": probed.input_gradient,
        "grad_cam": cv.cam.grad_cam(model, images),
        "guided_backprop": cv.cam.guided_backprop(model, images),
        "guided_grad_cam": cv.cam.guided_grad_cam(model, images),
        "filter_patterns": cv.filters.filter_patterns(model, conv, [0, 1, 2, 3], steps=10, raw=True),
        "filter_patterns_first": cv.filters.filter_patterns(model, first, [0, 1], steps=20, raw=True),
        # The regularised ascent is left out: TensorFlow's gradient of the image transform it
        # jitters with (ImageProjectiveTransformV3, behind keras.ops.image.affine_transform) is
        # not the exact one, JAX's is, so the ascents differ. The Fourier image itself agrees.
        "fourier_image": keras.ops.convert_to_numpy(_fourier_image(spectrum, 64)),
        "class_patterns": cv.filters.class_patterns(model, [0, 1], steps=10, raw=True),
    }
    for name, array in maps.items():
        values[f"feature_maps/{name}"] = array
    return values


if __name__ == "__main__":
    np.savez(sys.argv[1], **compute())
