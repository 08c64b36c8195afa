"""Training and evaluating small image classifiers, the way the book's chapters do it.

- ``fit``: compile a model with a named optimizer and a warm-up + cosine learning-rate schedule,
  then train it on in-memory images through a ``tf.data`` pipeline; returns the history.
- ``evaluate`` / ``predict_classes``: accuracy and top-1 classes on in-memory images.
- ``confusion_matrix`` / ``misclassified``: what went wrong, as arrays.
- ``plot_history`` / ``plot_confusion_matrix`` / ``plot_misclassified`` / ``format_table``:
  the chapter's figures and tables.
"""

import sys

import numpy as np

from . import gradients, inputs
from ._tf import keras, tf

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True),
    "rmsprop": keras.optimizers.RMSprop,
}


def in_notebook():
    """True inside a Jupyter (IPython) kernel, where Keras can redraw a progress bar in place."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    # The terminal IPython shell cannot redraw a bar in place any better than a plain console.
    return type(shell).__name__ == "ZMQInteractiveShell"


def make_optimizer(name, learning_rate):
    """A fresh Keras optimizer by name (``OPTIMIZERS``) with ``learning_rate`` (float or schedule).

    Raises ValueError listing the valid names for an unknown one. SGD uses Nesterov momentum 0.9,
    without which plain SGD trains these small nets far slower.
    """
    key = str(name).strip().lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; valid optimizers are {', '.join(OPTIMIZERS)}.")
    return OPTIMIZERS[key](learning_rate=learning_rate)


def warmup_cosine(peak, total_steps, warmup_fraction=0.1):
    """Learning rate rising linearly from peak/10 to ``peak`` over the first ``warmup_fraction``
    of ``total_steps``, then falling along a cosine to zero: a "one-cycle" schedule.

    The warm-up keeps the first, large gradients of an untrained BatchNorm net from throwing the
    weights far; the cosine tail lets the last epochs settle into a minimum.
    """
    warmup = int(round(warmup_fraction * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak / 10,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=peak,
        warmup_steps=warmup,
    )


def _dataset(images, labels, num_classes, batch_size, shuffle_seed=None):
    """Batches of (images, one-hot labels); shuffled each epoch when ``shuffle_seed`` is given."""
    onehot = np.eye(num_classes, dtype=np.float32)[labels]
    ds = tf.data.Dataset.from_tensor_slices((images, onehot))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _labels(labels, n, num_classes, name):
    arr = np.asarray(labels)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be {n} integer class indices (shape ({n},)); got shape {arr.shape}.")
    if arr.min() < 0 or arr.max() >= num_classes:
        raise ValueError(f"{name} must lie in 0..{num_classes - 1} for a {num_classes}-class model; got {arr.min()}..{arr.max()}.")
    return arr


def fit(
    model,
    x,
    y,
    validation=None,
    epochs=10,
    *,
    batch_size=64,
    optimizer="adam",
    learning_rate=3e-3,
    warmup_fraction=0.1,
    label_smoothing=0.0,
    seed=0,
    verbose=None,
):
    """Compile ``model`` and train it on in-memory images; returns the history as a dict.

    ``model``: a keras.Model from images (n, H, W, C) in [0, 1] to (n, k) class probabilities.
    ``x``: (n, H, W, C) float in [0, 1]; ``y``: (n,) int class indices in [0, k).
    ``validation``: optional ``(x_val, y_val)`` evaluated after each epoch.
    ``optimizer``: one of ``OPTIMIZERS``; its learning rate follows ``warmup_cosine(learning_rate)``
    over all steps (``learning_rate`` is the peak).
    ``label_smoothing``: in [0, 1); softens the one-hot targets, which keeps a net from becoming
    over-confident on a small synthetic dataset.
    ``verbose``: Keras verbosity; None shows a progress bar in a notebook, one line per epoch
    elsewhere (a progress bar is unreadable in a log file).

    Returns ``{"loss": [...], "accuracy": [...], "val_loss": [...], "val_accuracy": [...]}``,
    one float per epoch (the ``val_`` keys only with ``validation``).
    Raises ValueError, before any training, for epochs < 1, an unknown optimizer, or images whose
    size, channels or range the model cannot take.
    """
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if not 0 <= label_smoothing < 1:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}.")
    num_classes = int(model.output_shape[-1])
    x = inputs.image_batch(x, model, name="training images")
    y = _labels(y, len(x), num_classes, "training labels")
    steps = int(np.ceil(len(x) / batch_size)) * int(epochs)
    # Built before compiling so an unknown name fails before anything else happens.
    opt = make_optimizer(optimizer, warmup_cosine(learning_rate, steps, warmup_fraction))

    val_ds = None
    if validation is not None:
        x_val, y_val = validation
        x_val = inputs.image_batch(x_val, model, name="validation images")
        y_val = _labels(y_val, len(x_val), num_classes, "validation labels")
        val_ds = _dataset(x_val, y_val, num_classes, 256)

    model.compile(
        optimizer=opt,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    history = model.fit(
        _dataset(x, y, num_classes, int(batch_size), shuffle_seed=seed),
        validation_data=val_ds,
        epochs=int(epochs),
        shuffle=False,  # the pipeline shuffles, with ``seed``
        verbose=(1 if in_notebook() else 2) if verbose is None else verbose,
    )
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def predict_classes(model, x, batch_size=256):
    """Top-1 class (n,) int of ``model`` for images (n, H, W, C) in the model's input range.

    A single sigmoid unit is a binary classifier: class 1 where p > 0.5, else 0.
    """
    x = inputs.image_batch(x, model)
    return gradients.predict(model, x, "probabilities", batch_size=batch_size).argmax(axis=-1)


def evaluate(model, x, y, batch_size=256):
    """Top-1 accuracy in [0, 1] of ``model`` on images (n, H, W, C) with labels (n,)."""
    return float(np.mean(predict_classes(model, x, batch_size) == np.asarray(y)))


def confusion_matrix(y_true, y_pred, k):
    """(k, k) int counts: row = true class, column = predicted class."""
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def misclassified(y_true, y_pred, probabilities=None, limit=None):
    """Indices of wrong predictions, the most confidently wrong first when ``probabilities``
    (n, k) are given, otherwise in data order; at most ``limit`` of them."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    wrong = np.flatnonzero(y_true != y_pred)
    if probabilities is not None:
        confidence = np.asarray(probabilities)[wrong, y_pred[wrong]]
        wrong = wrong[np.argsort(-confidence, kind="stable")]
    return wrong[:limit]


# --- figures and tables ------------------------------------------------------------------


def plot_history(history, title="Training curves", axes=None):
    """Loss and accuracy per epoch side by side, training vs validation; returns the figure.

    ``history``: dict as returned by ``fit`` (``loss``, ``accuracy``, optional ``val_*``).
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    else:
        fig = axes[0].figure
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, history[metric], "o-", label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.set_title(f"{title}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, class_names, title="Confusion matrix", ax=None):
    """Heatmap of a (k, k) confusion matrix with counts written in the cells; returns the figure."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6))
    image = ax.imshow(matrix, cmap="Blues")
    k = len(class_names)
    ax.set_xticks(range(k), class_names, rotation=45, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    threshold = matrix.max() / 2
    for i in range(k):
        for j in range(k):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black")
    ax.figure.colorbar(image, ax=ax, fraction=0.046)
    ax.figure.tight_layout()
    return ax.figure


def plot_misclassified(images, y_true, y_pred, class_names, indices, columns=6, title="Misclassified",
                       probabilities=None):
    """Grid of the images at ``indices``, each titled "true → predicted"; returns the figure.

    ``images``: (n, H, W, 3) in [0, 1]; ``y_true``/``y_pred``: (n,) int. With ``probabilities``
    (n, k), each title adds the probability the model gave its (wrong) prediction.
    """
    import matplotlib.pyplot as plt

    indices = list(indices)
    rows = max(1, int(np.ceil(len(indices) / columns)))
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        ax.imshow(np.clip(images[i], 0, 1))
        confidence = "" if probabilities is None else f" ({probabilities[i][y_pred[i]]:.2f})"
        ax.set_title(f"{class_names[y_true[i]]}\n→ {class_names[y_pred[i]]}{confidence}", fontsize=9)
    if not indices:
        axes.flat[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def format_table(rows, headers):
    """A plain-text table: ``rows`` is a list of sequences, floats shown with 3 decimals."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in rows]
    headers = [str(h) for h in headers]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values):
        # First column (the row's name) left-aligned, numbers right-aligned.
        return "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(values, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(row) for row in cells])
