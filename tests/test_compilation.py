"""Bounded compilation: any sequence of batch sizes compiles a handful of functions per model,
layer and method, and the padding that makes it so changes no result.

Counts traces (``gradients.traces``: how often a function given to ``gradients.compile`` was
traced, i.e. compiled, on TensorFlow and JAX), never timings.
"""

import numpy as np
import pytest

from convviz_helpers import activations, cam, gradients, models
from convviz_helpers.gradients import _probe


def test_buckets_are_powers_of_two_up_to_the_chunk():
    assert [gradients.bucket(n, 64) for n in (1, 2, 3, 5, 33, 63, 64)] == [1, 2, 4, 8, 64, 64, 64]
    assert gradients.bucket(70, 85) == 85
    assert len({gradients.bucket(n, 64) for n in range(1, 65)}) == 7
    assert len({gradients.bucket(n, 85) for n in range(1, 86)}) == 8


@pytest.fixture(scope="module")
def net():
    # BatchNorm in every block: in inference mode its rows must stay independent of padding.
    return models.shapes_convnet(16, widths=(4, 8))


@pytest.mark.skipif(gradients.BACKEND == "torch", reason="PyTorch runs eagerly: it compiles nothing")
def test_batch_sizes_1_to_64_compile_at_most_8_functions(net):
    images = np.random.default_rng(0).uniform(size=(64, 16, 16, 3)).astype(np.float32)
    sizes = np.random.default_rng(1).permutation(np.arange(1, 65))
    for method in (cam.grad_cam, cam.guided_backprop, activations.feature_maps):
        method(net, images[:1])  # the cached function for these settings exists from here on
        before = gradients.traces()
        for n in sizes:
            method(net, images[:n])
        assert gradients.traces() - before <= 8, method.__name__


def test_padding_to_a_bucket_changes_no_result(net, monkeypatch):
    images = np.random.default_rng(2).uniform(size=(5, 16, 16, 3)).astype(np.float32)
    results = {}
    for pads in (False, True):
        monkeypatch.setattr(_probe.backend, "PADS", pads)
        results[pads] = (cam.grad_cam(net, images, batch_size=4), cam.guided_backprop(net, images, batch_size=4),
                         gradients.predict(net, images, batch_size=4))
    for unpadded, padded in zip(results[False], results[True]):
        assert padded.shape == unpadded.shape
        np.testing.assert_allclose(padded, unpadded, rtol=1e-5, atol=1e-6)


def test_chunks_are_padded_with_the_last_row_and_trimmed(monkeypatch):
    monkeypatch.setattr(_probe.backend, "PADS", True)
    seen = []

    def run(rows):
        seen.append(rows.copy())
        return [rows * 2.0]

    rows = np.arange(7, dtype=np.float32)[:, None]
    (out,) = gradients.chunked(run, [rows], batch_size=4)
    np.testing.assert_array_equal(out, rows * 2.0)
    assert [len(chunk) for chunk in seen] == [4, 4]
    np.testing.assert_array_equal(seen[1][:, 0], [4, 5, 6, 6])
