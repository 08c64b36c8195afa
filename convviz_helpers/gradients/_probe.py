"""``probe`` and its siblings: batched, compiled calls that return numpy arrays.

``probe`` gives a model's class scores, some layers' activations and the gradients of the
chosen scores with respect to them (and optionally the input) in one compiled call per chunk;
``layer_outputs`` the forward pass only; ``predict`` the scores only. ``run_probe``,
``run_outputs`` and ``run_scores`` do the same for a ``Request`` resolved once.
"""

import contextlib
import weakref
from dataclasses import dataclass

import numpy as np

from .. import inputs
from .._tf import keras
from ._heads import SCORES, class_scores, head, num_classes, select, single_output
from ._relu import RELU_RULES, linear_activation, recording, relu_rule
from ._request import request
from ._tracing import backend, compile, compiled_for, image_spec, signature_shape

ops = keras.ops


@dataclass
class Probe:
    """What ``probe`` returns; arrays are numpy, first axis the batch.

    ``scores`` (n, K) the model's class scores (logits unless asked otherwise);
    ``classes`` (n,) the class whose score was differentiated; ``activations`` and
    ``gradients``: one (n, h, w, c) array per requested layer; ``input_gradient`` (n, H, W, C)
    or None.
    """

    scores: np.ndarray
    classes: np.ndarray
    activations: list
    gradients: list
    input_gradient: np.ndarray = None


def probe(model, images, classes=None, layers=(), *, scores="logits", relu="plain",
          input_gradient=False, batch_size=32, output=None):
    """Activations of ``layers`` and gradients of the chosen class scores, for a whole batch.

    ``images``: (n, H, W, C) in the model's input range (``input_range``; [0, 1] for the book's
    models). ``classes``: None (top-1), an int, or one int per image. ``layers``: layer names or
    objects (searched through nested models). ``scores``: "logits" (the pre-softmax values when
    the model ends in softmax; the Grad-CAM paper's choice), "probabilities" or "outputs" (as
    the model returns them); a single sigmoid unit counts as two classes (see
    ``class_scores``). ``relu``: "plain", "guided" or "deconvnet" backward rule for every ReLU.
    ``output``: which output of a multi-output model (index or name). Compiled once per model
    and settings; runs in chunks of ``batch_size`` images. Returns a ``Probe``; its
    ``input_gradient`` is per unit of the model's input range.
    """
    found = request(model, images, classes, layers, scores=scores, output=output)
    return run_probe(found, relu=relu, input_gradient=input_gradient, batch_size=batch_size)


def run_probe(call, *, relu="plain", input_gradient=False, batch_size=32):
    """``probe`` for a resolved ``Request`` (its images, classes, layers, head and scores)."""
    if relu not in RELU_RULES:
        raise ValueError(f"Unknown ReLU rule {relu!r}; valid rules are {', '.join(RELU_RULES)}.")
    model, layers, shape = call.model, call.layers, call.image_shape
    key = ("probe", tuple(id(layer) for layer in layers), call.scores, relu, input_gradient, call.output,
           signature_shape(model, shape))
    run = compiled_for(model, key, lambda proxy: _build_probe(proxy, layers, call.scores, relu, input_gradient,
                                                              call.head, shape))
    joined = chunked(run, [call.images, call.classes], batch_size)
    count = len(layers)
    return Probe(
        scores=joined[0],
        classes=joined[1],
        activations=joined[2:2 + count],
        gradients=joined[2 + count:2 + 2 * count],
        input_gradient=joined[2 + 2 * count] if input_gradient else None,
    )


# Input values per compiled call when a method's batch_size is None: a whole batch of small
# images, or the eight photos of a 224-px comparison, goes in one call (each call has a fixed
# cost, and a second call pays it again), while larger batches go in chunks (activation memory
# grows with the pixels).
VALUES_PER_CALL = 2**21


def chunk_size(images, batch_size=None):
    """``batch_size`` if given, else as many of ``images`` (n, H, W, C) as fit in
    ``VALUES_PER_CALL`` input values (170 images of 64 px, 13 of 224 px)."""
    if batch_size is not None:
        return batch_size
    return max(1, VALUES_PER_CALL // int(np.prod(images.shape[1:])))


def bucket(count, batch_size):
    """The batch size a chunk of ``count`` rows is padded to: the next power of two, at most
    ``batch_size``. A backend that compiles once per shape (``jax.jit``) then compiles at most
    log2(batch_size) + 2 functions, whatever sequence of batch sizes it is given."""
    return min(int(batch_size), 1 << (int(count) - 1).bit_length())


def chunked(run, arrays, batch_size):
    """``run(*chunk)`` over chunks of ``batch_size`` rows of ``arrays`` (numpy, same length),
    the results joined along the batch axis as numpy arrays, one per output of ``run``.

    Where the backend compiles per input shape (``backend.PADS``), a chunk is padded to its
    ``bucket`` size with copies of its last row, and the padded rows are dropped from the
    results: with ``training=False`` rows never interact, so they change nothing else.
    """
    total = len(arrays[0])
    size = max(1, int(batch_size))
    parts = []
    for start in range(0, total, size):
        chunk = [array[start:start + size] for array in arrays]
        rows = len(chunk[0])
        padded = bucket(rows, size) if backend.PADS else rows
        if padded > rows:
            chunk = [np.concatenate([part, np.repeat(part[-1:], padded - rows, axis=0)]) for part in chunk]
        result = run(*chunk)
        result = result if isinstance(result, (list, tuple)) else [result]
        parts.append([np.asarray(value)[:rows] for value in result])
    if len(parts) == 1:
        return parts[0]
    return [np.concatenate([part[k] for part in parts]) for k in range(len(parts[0]))]


def _build_probe(model, layers, scores, relu, input_gradient, found, shape):
    # Layers are held weakly too: a nested model given as a layer would otherwise keep itself
    # alive through this closure.
    layer_refs = [weakref.ref(layer) for layer in layers]

    def run(images, wanted):
        layers = [ref() for ref in layer_refs]

        def forward(images, taps):
            with relu_rule(model, relu), recording(layers, taps=taps) as records:
                outputs = class_scores(model, images, scores, found)
            top = ops.cast(ops.argmax(outputs, axis=-1), "int32")
            chosen = ops.where(wanted < 0, top, wanted)
            # Images never interact (training=False), so the gradient of the batch sum is
            # each image's own gradient.
            score = ops.sum(select(outputs, chosen))
            activations = [single_output(record, layer) for record, layer in zip(records, layers)]
            return score, (outputs, chosen), activations

        (outputs, chosen), activations, grads, input_grad = backend.gradients(forward, images, input_gradient)
        return [outputs, chosen, *activations, *grads, *([input_grad] if input_gradient else [])]

    return compile(model, run, [image_spec(model, shape), ((None,), "int32")])


def layer_outputs(model, images, layers, batch_size=32, linear=None):
    """The outputs of ``layers`` for ``images`` from one forward pass per chunk.

    ``images``: (n, H, W, C) in the model's input range; ``layers``: layer objects of ``model``
    (nested models included); ``linear``: None, or a layer run without its activation
    (``linear_activation``: a conv's pre-activation). Returns a list of numpy arrays, one per
    layer, batch first.
    """
    return run_outputs(request(model, images, layers=layers, scored=False), batch_size=batch_size,
                       linear=linear)


def run_outputs(call, batch_size=32, linear=None):
    """``layer_outputs`` for a resolved ``Request`` (its images and layers)."""
    model, layers, shape = call.model, call.layers, call.image_shape
    key = ("outputs", tuple(id(layer) for layer in layers), id(linear), signature_shape(model, shape))
    layer_refs = [weakref.ref(layer) for layer in layers]
    linear_ref = None if linear is None else weakref.ref(linear)

    def build(model):
        def run(batch):
            chosen = [ref() for ref in layer_refs]
            unfused = linear_activation(linear_ref()) if linear_ref is not None else contextlib.nullcontext()
            with recording(chosen) as records, unfused:
                model(batch, training=False)
            return [single_output(record, layer) for record, layer in zip(records, chosen)]

        return compile(model, run, [image_spec(model, shape)])

    return chunked(compiled_for(model, key, build), [call.images], batch_size)


def predict(model, images, scores="probabilities", batch_size=64, output=None):
    """Class scores (n, K) for already-validated ``images``, compiled and chunked.

    ``scores`` and ``output`` as in ``probe``; a single sigmoid unit gives two columns
    (1 - p, p). For images that were never checked; a method that has a ``Request`` scores its
    images, and copies made from them, with ``run_scores`` instead.
    """
    images = np.asarray(images, dtype=np.float32)
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")
    return _scores(model, images, scores, head(model, output, images.shape[1:]), output, batch_size)


def run_scores(call, scores=None, batch_size=64):
    """``predict`` for a resolved ``Request``: class scores (n, K) float32 of its images, under
    its head and output; ``scores`` (default: the request's) "logits", "probabilities" or
    "outputs". Copies of the images (``call.derived(images=...)``: masked, blended) are scored
    without checking them or resolving the head again."""
    scores = call.scores if scores is None else scores
    if scores not in SCORES:
        raise ValueError(f"Unknown scores {scores!r}; valid values are {', '.join(SCORES)}.")
    return _scores(call.model, call.images, scores, call.head, call.output, batch_size)


def _scores(model, images, scores, found, output, batch_size):
    shape = images.shape[1:]

    def build(model):
        return compile(model, lambda batch: class_scores(model, batch, scores, found), [image_spec(model, shape)])

    run = compiled_for(model, ("predict", scores, output, signature_shape(model, shape)), build)
    return chunked(run, [images], batch_size)[0]


def resolve_classes(model, images, classes=None, output=None, batch_size=64):
    """The classes to explain for validated ``images``: ``classes`` None (each image's top-1
    class of the model's outputs), an int, or one int per image, as an int32 array (n,).
    For a caller without a ``Request``; with one, ``top_classes`` does the same."""
    wanted = inputs.class_indices(classes, len(images), num_classes(model, output, images.shape[1:]))
    if (wanted >= 0).all():
        return wanted
    return inputs.top_classes(wanted, predict(model, images, "outputs", batch_size, output=output))


def top_classes(call, batch_size=64):
    """A ``Request``'s classes with each "top-1" (-1) replaced by that image's top class (of the
    model's outputs): int32 (n,)."""
    if (call.classes >= 0).all():
        return call.classes
    return inputs.top_classes(call.classes, run_scores(call, "outputs", batch_size))


def value_and_gradient(objective):
    """``objective(x, *args) -> (n,) values`` as ``f(x, *args) -> (values, d values/dx)``, for
    use inside a function given to ``compile``.

    The gradient is taken per image (images in a batch must not interact). ``objective`` may use
    ``recording`` and ``linear_activation`` on a model: they take effect while it is traced.
    """

    def run(x, *args):
        def total(x):
            values = objective(x, *args)
            return ops.sum(values), values

        return backend.value_and_gradient(total, x)

    return run

