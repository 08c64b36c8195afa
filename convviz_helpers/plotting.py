"""Pictures of explanations: heatmap overlays, grids of methods, and a model's top-k classes."""

import cv2
import matplotlib
import matplotlib.pyplot as plt
import numpy as np


def _to_uint8(image):
    """An (H, W, 3) image as uint8: floats are read as [0, 1], integers as [0, 255]."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3); got shape {image.shape}.")
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if np.issubdtype(image.dtype, np.floating):
        return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    return np.clip(image, 0, 255).astype(np.uint8)


def colorize(heatmap, colormap="jet"):
    """A heatmap (H, W) in [0, 1] as colours (H, W, 3) uint8 from a matplotlib colour map."""
    table = matplotlib.colormaps[colormap](np.linspace(0.0, 1.0, 256))[:, :3]  # (256, 3) RGB
    levels = np.round(np.clip(np.nan_to_num(heatmap), 0.0, 1.0) * 255).astype(np.intp)
    return np.round(table[levels] * 255).astype(np.uint8)


def overlay(image, heatmap, alpha=0.4, colormap="jet"):
    """The heatmap in colour, blended on the image, as in Deep Learning with Python.

    ``image`` (H, W, 3) float in [0, 1] or uint8; ``heatmap`` (h, w) in [0, 1], resized
    bilinearly to (H, W) if needed. Each pixel is ``(1 - alpha) * image + alpha * colour`` with
    the colour from the matplotlib colour map ``colormap``. Returns (H, W, 3) uint8.
    """
    base = _to_uint8(image)
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be (H, W); got shape {heatmap.shape}.")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}.")
    if heatmap.shape != base.shape[:2]:
        heatmap = cv2.resize(heatmap, base.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    blended = (1.0 - alpha) * base + alpha * colorize(heatmap, colormap).astype(np.float32)
    return np.round(blended).astype(np.uint8)


def gradient_image(gradients, spread=0.15):
    """Signed input gradients (n, H, W, C) (guided backprop and friends) as viewable images.

    Each image is centred on grey and scaled by its own standard deviation (``spread`` grey
    levels per standard deviation), then clipped: (n, H, W, C) float32 in [0, 1].
    """
    gradients = np.asarray(gradients, np.float32)
    axes = tuple(range(1, gradients.ndim))
    centred = gradients - gradients.mean(axis=axes, keepdims=True)
    std = centred.std(axis=axes, keepdims=True)
    return np.clip(0.5 + spread * centred / np.where(std > 0, std, 1.0), 0.0, 1.0).astype(np.float32)


def _show(ax, picture, title=None):
    ax.imshow(picture)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def show_cams(images, heatmaps, masks=None, row_titles=None, alpha=0.4, title=None, size=1.8):
    """A grid: one row per image; its columns the image, its mask (if given), then each method.

    ``images`` (n, H, W, 3) in [0, 1]; ``heatmaps``: dict method name -> (n, H, W) maps in
    [0, 1] (drawn as overlays) or (n, H, W, C) input gradients (drawn with ``gradient_image``);
    ``masks`` (n, H, W) bool or None; ``row_titles`` n strings above each row's image. Tiles are
    ``size`` inches, smaller where the row would be wider than the page's column.
    Returns the matplotlib Figure.
    """
    images = np.asarray(images)
    n = len(images)
    columns = 1 + (masks is not None) + len(heatmaps)
    size = min(size, COLUMN_PX / 80 / columns)  # never wider than the page's column
    figure, axes = plt.subplots(n, columns, figsize=(size * columns, size * n + 0.4), squeeze=False)
    shown = {name: gradient_image(maps) if np.ndim(maps) == 4 else maps for name, maps in heatmaps.items()}
    for i in range(n):
        row = iter(axes[i])
        _show(next(row), images[i], row_titles[i] if row_titles is not None else ("image" if i == 0 else None))
        if masks is not None:
            _show(next(row), masks[i], "mask" if i == 0 else None)
            axes[i][1].images[0].set_cmap("gray")
        for name, maps in shown.items():
            picture = maps[i] if maps.ndim == 4 else overlay(images[i], maps[i], alpha)
            _show(next(row), picture, name if i == 0 else None)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def _class_names(class_names, decode, probabilities, k):
    """Names of the top-k classes of one image: from ``class_names``, ``decode``, ImageNet's
    index for 1000-class models, the shapes classes for 6-class models, else "class i"."""
    top = np.argsort(-probabilities)[:k]
    if class_names is not None:
        return top, [class_names[i] for i in top]
    if decode is None and probabilities.shape[-1] == 1000:
        from .models import decode_predictions as decode
    if decode is not None:
        return top, [name for _, name, _ in decode(probabilities[None], top=k)[0]]
    from . import data

    if probabilities.shape[-1] == len(data.SHAPE_CLASSES):
        return top, [data.SHAPE_CLASSES[i] for i in top]
    return top, [f"class {i}" for i in top]


def show_top_k(model, image, k=5, class_names=None, decode=None, layer=None, alpha=0.4):
    """The model's top-k classes for one image, each with its probability, its Grad-CAM overlay
    (top row) and its guided Grad-CAM (bottom row); the image itself comes first.

    ``image`` (H, W, 3) in the model's input range (``input_range``; [0, 1] for the book's
    models); a single sigmoid unit shows its two classes. Class names: ``class_names`` (a list
    indexed by class), else ``decode`` (like ``keras.applications.imagenet_utils.decode_predictions``), else
    ImageNet's names for 1000-class models (``models.decode_predictions``, shipped offline),
    else ``data.SHAPE_CLASSES`` for ShapesNet. All k classes are explained in one batch.
    Returns the matplotlib Figure.
    """
    from . import cam, gradients, inputs
    from .input_range import to_unit

    one = inputs.image_batch(np.asarray(image)[None], model, name="image")
    image = to_unit(one[0], model)  # shown in [0, 1] whatever range the model takes
    probabilities = gradients.predict(model, one, "probabilities")[0]
    k = min(k, probabilities.shape[-1])
    batch = np.repeat(one, k, axis=0)
    top, names = _class_names(class_names, decode, probabilities, k)
    heatmaps = cam.grad_cam(model, batch, top, layer)
    guided = gradient_image(cam.guided_grad_cam(model, batch, top, layer))
    size = min(2.2, COLUMN_PX / 80 / (k + 1))  # never wider than the page's column
    figure, axes = plt.subplots(2, k + 1, figsize=(size * (k + 1), 2 * size + 0.4), squeeze=False)
    _show(axes[0][0], image, "image")
    axes[1][0].axis("off")
    for j in range(k):
        _show(axes[0][j + 1], overlay(image, heatmaps[j], alpha), f"{names[j]}\np = {probabilities[top[j]]:.3f}")
        _show(axes[1][j + 1], guided[j], "guided Grad-CAM" if j == 0 else None)
    figure.suptitle(f"Top-{k} classes of {model.name}: Grad-CAM and guided Grad-CAM")
    figure.tight_layout()
    return figure


def use_compact_figures(quality=85, dpi=80):
    """Store this notebook's figures as JPEG at ``dpi``, so a chapter full of photographs and
    heatmaps stays small on disk, on the site and in Colab's preview.

    ``quality``: JPEG quality 1-95; ``dpi``: inline resolution (80 makes a 8.4-inch figure as
    wide as the book's 675-px content column). Each stored figure also carries, in its output's
    metadata, the record ``describe_figure`` makes of it (width, smallest text, tiles per row,
    titles), which tests/test_figures.py checks against the figure rule. Affects figures shown
    inline from then on; returns None. Raises RuntimeError outside IPython/Jupyter, where there is no inline figure to store.
    """
    if not (isinstance(quality, int) and 1 <= quality <= 95):
        raise ValueError(f"quality must be an integer in 1..95, got {quality!r}.")
    try:
        from IPython import get_ipython
    except ImportError:
        shell = None
    else:
        shell = get_ipython()
    if shell is None:
        raise RuntimeError("use_compact_figures configures notebook (inline) figures; this is not a notebook.")
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    set_matplotlib_formats("jpeg", pil_kwargs={"quality": quality})
    matplotlib.rcParams["figure.dpi"] = dpi
    _record_figures(shell)


# The page's figure rule (DESIGN.md): the content column shows at most COLUMN_PX pixels of a
# figure stored at 80 dpi; text at least MIN_FONT_PT as shown; at most MAX_TILES image tiles in
# one row, MAX_LARGE_TILES when a tile shows an image of LARGE_TILE_PX pixels or more.
COLUMN_PX = 760
MIN_FONT_PT = 9.0
MAX_TILES = 8
MAX_LARGE_TILES = 6
LARGE_TILE_PX = 224
FIGURE_METADATA = "convviz_figure"  # key of the record in a stored image output's metadata


def _drawn_texts(figure):
    """The figure's visible, non-empty text artists that a draw puts on the page."""
    from matplotlib.text import Text

    hidden = set()
    for ax in figure.axes:
        if not ax.get_visible():
            hidden.update(map(id, ax.findobj(Text)))
            continue
        for axis in (ax.xaxis, ax.yaxis):
            if not ax.axison or not axis.get_visible():
                hidden.update(map(id, axis.findobj(Text)))
                continue
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(1.0, abs(high - low))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - slack <= tick.get_loc() <= high + slack:  # outside the view: not drawn
                    hidden.update((id(tick.label1), id(tick.label2)))
    return [text for text in figure.findobj(Text)
            if id(text) not in hidden and text.get_visible() and text.get_text().strip()]


def _tile_rows(figure):
    """[[tiles, largest source px], ...]: per row of visible axes that show an image, how many
    there are and the largest side (in pixels of the array drawn) of the images they show."""
    tiles = []
    for ax in figure.axes:
        pictures = [image for image in ax.images if image.get_visible()]
        if ax.get_visible() and pictures:
            box = ax.get_position()
            size = max(max(np.shape(image.get_array())[:2]) for image in pictures)
            tiles.append(((box.y0 + box.y1) / 2, box.height, size))
    rows = []  # axes whose centres lie within half an axes' height of each other share a row
    for centre, height, size in sorted(tiles):
        if rows and centre - rows[-1][0] <= height / 2:
            rows[-1][1] += 1
            rows[-1][2] = max(rows[-1][2], size)
        else:
            rows.append([centre, 1, size])
    return [[count, int(size)] for _, count, size in rows]


def describe_figure(figure, width_px):
    """What the figure rule needs to know of a drawn figure, as a JSON-ready dict.

    ``figure``: a matplotlib Figure that has been drawn (its layout is final); ``width_px``: the
    stored image's width in pixels. Returns ``{"width_px", "min_font_pt", "tile_rows",
    "titles"}``: the smallest text size in pt as shown (its size times how much the column
    shrinks a figure wider than ``COLUMN_PX``; None when there is no text), one
    ``[tiles, largest source px]`` per row of image axes (an image mosaic drawn in one axes
    counts as one tile), and the suptitle and axes titles that are not empty.
    """
    texts = _drawn_texts(figure)
    shrink = min(1.0, COLUMN_PX / width_px)
    smallest = min((text.get_fontsize() for text in texts), default=None)
    titles = [figure.get_suptitle()]
    titles += [ax.get_title(loc) for ax in figure.axes for loc in ("left", "center", "right")]
    return {"width_px": int(width_px),
            "min_font_pt": None if smallest is None else round(float(smallest) * shrink, 2),
            "tile_rows": _tile_rows(figure),
            "titles": [title for title in titles if title.strip()]}


def figure_problems(record):
    """The figure rule's verdict on a ``describe_figure`` record: a list of readable problems,
    empty when the figure may go on the page."""
    problems = []
    if record["width_px"] > COLUMN_PX:
        problems.append(f"{record['width_px']} px wide: at most {COLUMN_PX} px "
                        f"(a figsize width of at most {COLUMN_PX / 80:.1f} in at 80 dpi)")
    if record["min_font_pt"] is not None and record["min_font_pt"] < MIN_FONT_PT:
        problems.append(f"text of {record['min_font_pt']:g} pt as shown: at least {MIN_FONT_PT:g} pt")
    for tiles, size in record["tile_rows"]:
        limit = MAX_LARGE_TILES if size >= LARGE_TILE_PX else MAX_TILES
        if tiles > limit:
            problems.append(f"{tiles} tiles of {size}-px images in one row: at most {limit}")
    if not record["titles"]:
        problems.append("no title: say what to look at in a suptitle or an axes title")
    return problems


def _record_figures(shell):
    """Make every matplotlib figure the notebook stores carry ``describe_figure``'s record in
    its image output's metadata (under ``FIGURE_METADATA``), where tests/test_figures.py reads
    it. Wraps the inline backend's image formatters; calling it again changes nothing."""
    import base64
    import io

    from matplotlib.figure import Figure
    from PIL import Image

    for mime in ("image/png", "image/jpeg"):
        formatter = shell.display_formatter.formatters[mime]
        try:
            draw = formatter.lookup_by_type(Figure)
        except KeyError:
            continue
        if getattr(draw, "records_figures", False):
            continue

        def recorded(figure, draw=draw):
            data = draw(figure)
            if data is None:
                return None
            raw = base64.b64decode(data) if isinstance(data, str) else data  # inline: base64 text
            width = Image.open(io.BytesIO(raw)).size[0]
            return data, {FIGURE_METADATA: describe_figure(figure, width)}

        recorded.records_figures = True
        formatter.for_type(Figure, recorded)


def show_maps(images, maps, masks=None, row_titles=None, title=None, colormap="viridis", width=7.5):
    """A grid for maps whose colours must not mix with the object's: one row per image; the
    image first, then each method's map drawn on its own (not blended) in ``colormap``, with
    the object's mask as a white contour on every tile.

    ``images`` (n, H, W, 3) in [0, 1]; ``maps``: dict method name -> (n, H, W) maps in [0, 1]
    or (n, H, W, C) input gradients (drawn with ``gradient_image``); ``masks`` (n, H, W) bool
    or None; ``row_titles`` n strings; ``width`` the figure's width in inches (at most 8 tiles
    a row, so each tile is at least ``width / 8`` wide). Titles are wrapped to their tile and
    drawn at 9 pt. Returns the matplotlib Figure.
    """
    import textwrap

    images = np.asarray(images)
    n, columns = len(images), 1 + len(maps)
    if columns > 8:
        raise ValueError(f"{columns} tiles a row is too many for the page (at most 8: the image and 7 maps).")
    tile = width / columns
    chars = max(8, int(tile * 72 / 9 * 1.6))  # characters of 9-pt text that fit a tile's width
    shown = {name: gradient_image(found) if np.ndim(found) == 4 else np.asarray(found) for name, found in maps.items()}
    lines = max([len(textwrap.wrap(str(name), chars)) for name in maps] + [1])
    figure, axes = plt.subplots(n, columns, figsize=(width, tile * n + 0.25 * lines + 0.5), squeeze=False)
    for i in range(n):
        pictures = [(images[i], {}, row_titles[i] if row_titles is not None else ("image" if i == 0 else None))]
        pictures += [(found[i], {} if found.ndim == 4 else {"cmap": colormap, "vmin": 0.0, "vmax": 1.0},
                      name if i == 0 else None) for name, found in shown.items()]
        for ax, (picture, style, label) in zip(axes[i], pictures):
            ax.imshow(picture, **style)
            if masks is not None:
                ax.contour(np.asarray(masks[i], float), levels=[0.5], colors="white", linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if label:
                ax.set_title("\n".join(textwrap.wrap(str(label), chars)), fontsize=9)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
