"""Filter display: a conv layer's kernels as images, and titled grids of pattern images."""

import math

import numpy as np

from .. import inputs, models


def _conv_layer(model, layer):
    """The conv layer named ``layer`` (None: the first conv layer of ``model``)."""
    if layer is None:
        for _, candidate in models.iter_layers(model):
            if models.is_conv(candidate):
                return candidate
        raise ValueError(f"Model {model.name!r} has no convolution layer.")
    found = models.find_layer(model, layer)
    if not models.is_conv(found):
        raise ValueError(
            f"Layer {found.name!r} is a {type(found).__name__}, not a convolution: it has no kernels to show."
        )
    return found


def kernel_images(model, layer=None):
    """The learned kernels of a conv layer as images.

    ``layer``: a conv layer name or object (None: the first conv layer). For a layer on RGB
    input (3 input channels) returns (filters, kh, kw, 3) float32 in [0, 1], each kernel
    min-max scaled on its own (so weak kernels stay visible). Otherwise returns
    (filters, in_channels, kh, kw) float32 in [-1, 1]: each filter divided by its largest
    absolute weight, signs kept. Raises ValueError for a layer that is not a convolution.
    """
    conv = _conv_layer(model, layer)
    kernel = np.asarray(conv.kernel, dtype=np.float32)  # (kh, kw, in, out)
    if kernel.shape[2] == 3:
        return inputs.minmax(kernel.transpose(3, 0, 1, 2), axes=(1, 2, 3))
    maps = kernel.transpose(3, 2, 0, 1)
    scale = np.abs(maps).max(axis=(1, 2, 3), keepdims=True)
    return maps / np.where(scale > 0, scale, 1.0)


def kernel_grid(model, layer=None, *, max_filters=64, max_channels=16, title=None):
    """A figure of ``kernel_images(model, layer)``; returns the matplotlib figure.

    First layer: one RGB tile per filter, up to ``max_filters``. Deeper layers: one row per
    filter (up to ``max_filters``) and one column per input channel (up to ``max_channels``),
    blue for negative and red for positive weights.
    """
    import matplotlib.pyplot as plt

    conv = _conv_layer(model, layer)
    images = kernel_images(model, conv)[:max_filters]
    title = title or f"Kernels of {conv.name} ({conv.kernel.shape[0]}x{conv.kernel.shape[1]})"
    if images.ndim == 4 and images.shape[-1] == 3:
        return pattern_grid(images, title=title, interpolation="nearest")
    images = images[:, :max_channels]
    rows, cols = images.shape[:2]
    fig, axes = plt.subplots(rows, cols, figsize=(0.45 * cols + 0.8, 0.45 * rows + 0.8), squeeze=False)
    for (f, c), ax in np.ndenumerate(axes):
        ax.imshow(images[f, c], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if c == 0:
            ax.set_ylabel(str(f), rotation=0, ha="right", va="center", fontsize=7)
        if f == 0:
            ax.set_title(str(c), fontsize=7)
    fig.suptitle(f"{title}\nrows: filters, columns: input channels")
    fig.tight_layout()
    return fig


def pattern_grid(images, labels=None, *, columns=8, title="", interpolation="bilinear", size=1.3):
    """A figure with one tile per image: ``images`` (n, h, w, 3) in [0, 1], optional ``labels``
    (n strings, shown above the tiles), ``columns`` tiles per row, a ``title``."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    columns = max(1, min(columns, len(images)))
    rows = math.ceil(len(images) / columns)
    label_room = 0.25 if labels is not None else 0.0
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, (size + label_room) * rows + 0.6),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        ax.imshow(np.clip(image, 0, 1), interpolation=interpolation)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=9)  # the page's smallest readable size
    fig.suptitle(title)
    fig.tight_layout(pad=0.3, w_pad=0.3, h_pad=0.3)  # narrow gaps: the tiles get the column's width
    return fig
