"""Feature maps: what each layer of a convnet outputs for an image, shown and measured.

- ``feature_maps(model, images, layers=None)``: the outputs of many layers from one batched
  forward pass (``gradients.layer_outputs``), not one sub-model per layer.
- ``activation_grid`` / ``plot_activation_grid`` / ``plot_activation_grids``: the classic
  display, each channel standardised into a tile, tiles in rows, one layer per panel.
- ``summarise`` and the measures on top of it (``silent_fraction``, ``zero_fraction``,
  ``mean_activation``, ``class_means``, ``selectivity``): how sparse and how class-specific each layer is, measured
  over many images instead of judged by eye.
"""

from dataclasses import dataclass

import numpy as np

from . import gradients
from ._tf import keras
from .layers import is_conv, iter_layers, output_rank

# Layers whose rank-4 output only drops, pads, moves or repeats pixels (or augments the input):
# their maps look like the previous layer's and would only lengthen the display.
_NOT_SHOWN = (
    "InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianDropout", "GaussianNoise", "AlphaDropout", "ActivityRegularization",
    "ZeroPadding2D", "Cropping2D", "Reshape", "Permute", "UpSampling2D", "Identity",
    "Rescaling", "Normalization", "Resizing", "CenterCrop", "ApplicationPreprocessing",
)

# A channel whose spread is below this fraction of its largest magnitude is float round-off
# around a constant; standardising it would blow that noise up to full contrast.
CONSTANT_TOLERANCE = 1e-4


def _paths(model):
    """id(layer) -> the key ``feature_maps`` uses: its name, or its path when the name repeats."""
    listed = list(iter_layers(model))
    counts = {}
    for _, layer in listed:
        counts[layer.name] = counts.get(layer.name, 0) + 1
    keys = {}
    for path, layer in listed:
        keys.setdefault(id(layer), layer.name if counts[layer.name] == 1 else path)
    return keys


def shown_layers(model, image_shape=None):
    """The layers ``feature_maps(model, images)`` returns when ``layers`` is None, shallow to deep.

    Every layer (nested models searched, in order) with one rank-4 output, from the first
    convolution on: convolutions, normalisation, activations, pooling, merges (ResNet's Add,
    Inception's Concatenate). Left out: everything before the first convolution (input,
    preprocessing, augmentation), nested models themselves (their layers are listed),
    dropout/noise, padding, cropping, reshaping and upsampling. Returns a list of layer objects.
    A model without a graph (subclassed) is traced once at ``image_shape`` (H, W, C) and its
    layers are listed in the order its ``call`` ran them.
    """
    chosen, seen_conv = [], False
    if gradients.graph_outputs(model) is None and image_shape is not None:
        listed = gradients.called_layers(model, image_shape)
    else:
        listed = [layer for _, layer in iter_layers(model)]
    for layer in listed:
        seen_conv = seen_conv or is_conv(layer)
        if not seen_conv or isinstance(layer, keras.Model):
            continue
        kind = type(layer).__name__
        if kind in _NOT_SHOWN or kind.startswith("Random"):
            continue
        shape = gradients.layer_shape(model, layer, image_shape)
        if shape is not None and len(shape) == 4:
            chosen.append(layer)
    return chosen


def feature_maps(model, images, layers=None, batch_size=None):
    """The outputs of ``layers`` for ``images``, from one batched forward pass per chunk.

    ``images``: (n, H, W, C) float in the model's input range (``input_range``; [0, 1] for the
    book's models) at the model's input size. ``layers``: None (see
    ``shown_layers``), or a layer name, path or object, or a list of them (searched through
    nested models; an unknown name raises ValueError listing the candidates). Returns a dict,
    shallow to deep when ``layers`` is None (else in the order asked), layer name (its path
    "outer/inner" when the name occurs twice in the model) -> float32 array (n, h, w, c).
    Raises ValueError for a chosen layer whose output is not (n, h, w, c). ``batch_size``:
    images per compiled call (None: ``gradients.chunk_size``, the whole batch of small images).
    """
    call = _request(model, images, layers)
    return _feature_maps(call, gradients.chunk_size(call.images, batch_size))


def _request(model, images, layers):
    """The call resolved once (``gradients.request``) with the layers ``feature_maps`` shows."""
    if layers is None:
        call = gradients.request(model, images, scored=False)
        call = call.derived(layers=shown_layers(model, call.image_shape))
    else:
        asked = [layers] if isinstance(layers, (str, keras.layers.Layer)) else list(layers)
        call = gradients.request(model, images, layers=asked, scored=False)
    for layer in call.layers:
        shape = gradients.layer_shape(model, layer, call.image_shape)
        if shape is None or len(shape) != 4:
            raise ValueError(
                f"Layer {layer.name!r} does not output feature maps (n, h, w, c); its output has "
                f"rank {output_rank(layer) if shape is None else len(shape)}. Pick a convolution, "
                "activation, normalisation or pooling layer."
            )
    return call


def _feature_maps(call, batch_size):
    keys = _paths(call.model)
    outputs = gradients.run_outputs(call, batch_size=batch_size)
    return {keys[id(layer)]: output for layer, output in zip(call.layers, outputs)}


def _channels_last_stack(maps, image, channels):
    """(k, h, w) float64 tiles: the chosen channels of one image of ``maps``."""
    maps = np.asarray(maps)
    if maps.ndim == 3:
        maps = maps[None]
    if maps.ndim != 4:
        raise ValueError(f"maps must be (n, h, w, c) or (h, w, c); got shape {maps.shape}.")
    if not -len(maps) <= image < len(maps):
        raise ValueError(f"image {image} is out of range for {len(maps)} image(s).")
    tiles = np.moveaxis(maps[image], -1, 0).astype(np.float64)
    return tiles if channels is None else tiles[np.asarray(channels)]


def standardise(tiles, tolerance=CONSTANT_TOLERANCE):
    """Display values for channel tiles: each standardised, then ×64 + 128, clipped to 0–255
    and rounded.

    ``tiles``: (k, h, w) array, one channel per tile. Returns uint8 (k, h, w). A channel whose
    standard deviation is at most ``tolerance`` × its largest magnitude (all zeros, or a
    constant up to round-off) becomes 0 everywhere: a blank tile, never amplified noise or NaN.
    """
    tiles = np.asarray(tiles, dtype=np.float64)
    mean = tiles.mean(axis=(1, 2), keepdims=True)
    std = tiles.std(axis=(1, 2), keepdims=True)
    peak = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    constant = std <= tolerance * peak
    scaled = (tiles - mean) / np.where(constant, 1.0, std) * 64.0 + 128.0
    return np.where(constant, 0, np.round(np.clip(scaled, 0, 255))).astype(np.uint8)


def _layout(tiles, images_per_row, gap, fill):
    """Place (k, h, w) tiles row by row into one 2-D array, ``gap`` pixels of ``fill`` between."""
    count, height, width = tiles.shape
    cols = min(images_per_row, count)
    rows = -(-count // cols)
    grid = np.full((rows * (height + gap) - gap, cols * (width + gap) - gap), fill, dtype=tiles.dtype)
    for index, tile in enumerate(tiles):
        row, col = divmod(index, cols)
        top, left = row * (height + gap), col * (width + gap)
        grid[top:top + height, left:left + width] = tile
    return grid


def activation_grid(maps, images_per_row=16, *, image=0, channels=None, gap=1, fill=255):
    """One layer's channels for one image, as a display array of tiles.

    ``maps``: (n, h, w, c) (as ``feature_maps`` returns) or (h, w, c). ``image``: which image.
    ``channels``: indices to show (default all, in order). Each channel is standardised by
    ``standardise`` (uint8 0–255, blank = 0) and placed left to right, ``images_per_row`` per row,
    separated by ``gap`` pixels of value ``fill``. Returns uint8 (rows·(h+gap)−gap,
    cols·(w+gap)−gap).
    """
    if images_per_row < 1:
        raise ValueError(f"images_per_row must be at least 1, got {images_per_row}.")
    tiles = standardise(_channels_last_stack(maps, image, channels))
    return _layout(tiles, images_per_row, gap, np.uint8(fill))


def _grid_image(maps, images_per_row, image, channels, gap):
    """The grid as a masked array whose gaps are masked (drawn in the figure's background)."""
    grid = activation_grid(maps, images_per_row, image=image, channels=channels, gap=gap)
    count = len(_channels_last_stack(maps, image, channels))
    height, width = np.asarray(maps).shape[-3:-1]
    in_tile = _layout(np.ones((count, height, width), dtype=bool), images_per_row, gap, False)
    return np.ma.masked_array(grid, mask=~in_tile)


def _show(ax, grid, title, cmap):
    import matplotlib

    colours = matplotlib.colormaps[cmap].with_extremes(bad="white")
    ax.imshow(grid, cmap=colours, vmin=0, vmax=255, interpolation="nearest", aspect="equal")
    ax.set_title(title, loc="left", fontsize=10)
    ax.set_axis_off()


def plot_activation_grid(maps, name=None, images_per_row=16, *, image=0, channels=None, gap=1,
                         cmap="viridis", width=10.0, ax=None):
    """Draw ``activation_grid`` with ``name`` as the title; returns the matplotlib Figure.

    ``maps``, ``images_per_row``, ``image``, ``channels``, ``gap`` as in ``activation_grid``.
    The title also gives the map size and channel count. Draws into ``ax`` when given, else into
    a new figure ``width`` inches wide.
    """
    import matplotlib.pyplot as plt

    grid = _grid_image(maps, images_per_row, image, channels, gap)
    if ax is None:
        _, ax = plt.subplots(figsize=(width, width * grid.shape[0] / grid.shape[1] + 0.4))
    height, map_width, count = np.asarray(maps).shape[-3:]
    label = name or "feature maps"
    _show(ax, grid, f"{label}  ({height}×{map_width}, {count} channels)", cmap)
    return ax.figure


def plot_activation_grids(maps, layers=None, images_per_row=16, *, image=0, max_channels=None,
                          gap=1, cmap="viridis", width=10.0, title=None):
    """Several layers' grids in one figure, one panel per layer, in the order of ``maps``.

    ``maps``: dict name -> (n, h, w, c) as ``feature_maps`` returns (shallow to deep).
    ``layers``: names to show (default all). ``max_channels``: show only each layer's first
    channels (a VGG layer has 512). Panels are stacked top to bottom, each as wide as the figure.
    Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    names = list(maps) if layers is None else list(layers)
    missing = [name for name in names if name not in maps]
    if missing:
        raise ValueError(f"No maps for {', '.join(map(repr, missing))}; maps has {', '.join(maps)}.")
    grids, labels = [], []
    for name in names:
        height, map_width, count = np.asarray(maps[name]).shape[-3:]
        if max_channels is None or count <= max_channels:
            channels, shown = None, f"{count} channels"
        else:
            channels, shown = range(max_channels), f"first {max_channels} of {count} channels"
        grids.append(_grid_image(maps[name], images_per_row, image, channels, gap))
        labels.append(f"{name}  ({height}×{map_width}, {shown})")
    # Panel heights in inches: the grid at the figure's width, plus a line for its title.
    heights = [width * grid.shape[0] / grid.shape[1] + 0.3 for grid in grids]
    fig, axes = plt.subplots(len(grids), 1, figsize=(width, sum(heights) + (0.4 if title else 0)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, label, grid in zip(axes[:, 0], labels, grids):
        _show(ax, grid, label, cmap)
    top = 1.0
    if title:
        fig.suptitle(title)
        top = 1 - 0.4 / fig.get_figheight()  # keep the panels below the title's 0.4 in
    fig.tight_layout(rect=(0, 0, 1, top))
    return fig


@dataclass
class LayerSummary:
    """Per-image, per-channel numbers for one layer, enough for every measure below.

    ``means``: (n, c) float64 spatial mean of each channel. ``zeros``: (n, c) float64 fraction
    of the channel's positions that are exactly zero. A channel is silent for an image when
    its ``zeros`` is 1.
    """

    means: np.ndarray
    zeros: np.ndarray

    @property
    def silent(self):
        """(n, c) bool: True where the channel is zero at every position for that image."""
        return self.zeros == 1.0


def summarise(model, images, layers=None, batch_size=32):
    """``LayerSummary`` of each layer over many images, without keeping their feature maps.

    ``images``, ``layers`` as in ``feature_maps``; the images are processed ``batch_size`` at a
    time and each chunk's maps are reduced at once, so memory stays that of one chunk.
    Returns dict name -> LayerSummary, in the order ``feature_maps`` uses.
    """
    call = _request(model, images, layers)
    parts = []
    for start in range(0, len(call.images), batch_size):
        maps = _feature_maps(call.derived(images=call.images[start:start + batch_size]), batch_size)
        parts.append({name: (m.mean(axis=(1, 2), dtype=np.float64), (m == 0).mean(axis=(1, 2), dtype=np.float64))
                      for name, m in maps.items()})
    return {
        name: LayerSummary(np.concatenate([p[name][0] for p in parts]), np.concatenate([p[name][1] for p in parts]))
        for name in parts[0]
    }


def silent_fraction(summary):
    """Dict name -> fraction of channels that are all zero for an image, averaged over images.

    ``summary``: as ``summarise`` returns. In [0, 1]; only post-ReLU layers (and pooling after
    them) can be silent, so convolution and normalisation outputs give 0.
    """
    return {name: float(s.silent.mean()) for name, s in summary.items()}


def zero_fraction(summary):
    """Dict name -> fraction of all activations (images, positions, channels) that are zero.

    ``summary``: as ``summarise`` returns. In [0, 1]: the sparsity of a post-ReLU layer, counted
    value by value, where ``silent_fraction`` counts only channels that are zero throughout.
    """
    return {name: float(s.zeros.mean()) for name, s in summary.items()}


def mean_activation(summary):
    """Dict name -> mean activation of the layer over images, positions and channels."""
    return {name: float(s.means.mean()) for name, s in summary.items()}


def class_means(summary, labels, num_classes=None):
    """Dict name -> (K, c) mean activation of each channel over the images of each class.

    ``summary``: as ``summarise`` returns for n images; ``labels``: (n,) ints in [0, K).
    ``num_classes``: K (default: largest label + 1). A class without images gets zeros.
    """
    labels = np.asarray(labels)
    n = len(next(iter(summary.values())).means)
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, one per summarised image; got shape {labels.shape}.")
    classes = int(labels.max()) + 1 if num_classes is None else int(num_classes)
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"labels must be in [0, {classes}); got {labels.min()} to {labels.max()}.")
    onehot = np.eye(classes)[labels]  # (n, K)
    counts = np.maximum(onehot.sum(axis=0), 1)[:, None]
    return {name: onehot.T @ s.means / counts for name, s in summary.items()}


def selectivity(means_by_class):
    """Class selectivity of each channel: how much more it fires for one class than the rest.

    ``means_by_class``: (K, c) non-negative mean activations (a post-ReLU layer's entry of
    ``class_means``). Score = (top − rest) / (top + rest), where top is the channel's largest
    class mean and rest the mean over the other classes: 0 when every class drives it equally
    (or it never fires), 1 when only one class does. Returns ``(scores, preferred)``: (c,)
    floats in [0, 1] and (c,) ints, the class each channel fires for most.
    """
    means = np.asarray(means_by_class, dtype=np.float64)
    if means.ndim != 2 or len(means) < 2:
        raise ValueError(f"means_by_class must be (classes, channels) with at least 2 classes; got shape {means.shape}.")
    if means.min() < 0:
        raise ValueError(
            "selectivity needs non-negative activations (a ReLU output or pooling after one); "
            f"these means go down to {means.min():.3g}."
        )
    preferred = means.argmax(axis=0)
    top = means.max(axis=0)
    rest = (means.sum(axis=0) - top) / (len(means) - 1)
    total = top + rest
    scores = np.divide(top - rest, total, out=np.zeros_like(total), where=total > 0)
    return scores, preferred
