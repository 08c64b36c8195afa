"""The book's data: procedural shapes with exact masks, bundled photos, digits, and TFDS sets.

Everything except ``load_dataset`` works offline from what scikit-image and scikit-learn ship.
Images are float32 in [0, 1], batch first, channels last.

The shapes dataset exists so that explanations can be *scored*: every image comes with the
pixel mask of its one object, so a heatmap can be checked against where the object really is.
"""

import functools
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from .downloads import guarded_download

# ---------------------------------------------------------------------------------------------
# Shapes: each class is an implicit function on coordinates (u, v) that are already rotated
# and scaled so the whole shape fits inside the unit disk. True means "inside the shape".


def _circle(u, v):
    return u * u + v * v <= 1.0


def _square(u, v):
    # Half-side 0.7 keeps the corners (0.7 * sqrt 2 = 0.99) inside the unit disk.
    return np.maximum(np.abs(u), np.abs(v)) <= 0.7


def _half_plane_count(u, v, normal_angles, offset):
    """How many of the half-planes ``n . (u, v) <= offset`` contain each point."""
    count = np.zeros(u.shape, np.int8)
    for angle in normal_angles:
        count += (u * np.cos(angle) + v * np.sin(angle)) <= offset
    return count


def _triangle(u, v):
    # Equilateral, vertices on the unit circle: its edges lie at distance 1/2 from the centre.
    normals = np.pi / 2 + np.pi / 3 + 2 * np.pi / 3 * np.arange(3)
    return _half_plane_count(u, v, normals, 0.5) == 3


def _star(u, v):
    # A filled pentagram is bounded by five lines at distance cos(72 deg) from the centre: the
    # inner pentagon satisfies all five half-planes and each point of the star violates one.
    normals = np.pi / 2 + 2 * np.pi / 5 * np.arange(5)
    return _half_plane_count(u, v, normals, np.cos(2 * np.pi / 5)) >= 4


def _cross(u, v):
    au, av = np.abs(u), np.abs(v)
    return ((au <= 0.3) & (av <= 0.95)) | ((av <= 0.3) & (au <= 0.95))


def _ring(u, v):
    r2 = u * u + v * v
    return (r2 <= 1.0) & (r2 >= 0.55**2)


_SHAPES = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "star": _star,
    "cross": _cross,
    "ring": _ring,
}
SHAPE_CLASSES = tuple(_SHAPES)

# Photos and textures that ship inside scikit-image (no download), used as backgrounds.
_BACKGROUND_SOURCES = (
    "brick", "grass", "gravel", "camera", "coins", "moon", "coffee", "chelsea",
    "astronaut", "rocket", "immunohistochemistry", "hubble_deep_field",
)

_RADIUS_RANGE = (0.15, 0.30)  # object radius as a fraction of the image side
_EDGE_GAP = 2.0  # pixels kept free between the object and the image border
_CLUTTER_SLOTS = 5  # at most this many strokes/dots per image
_MAX_STROKE = 0.3  # longest clutter stroke, as a fraction of the image side
_MAX_PEN = 2.2  # largest clutter dot radius, in pixels of a 64 px image
_MAX_SOURCE_SIDE = 1024  # OpenCV's remap needs the stacked sources under 32767 rows
_CANDIDATES = 16  # colour candidates per image; the first distinct enough one is used
_MIN_COLOR_DISTANCE = 0.35  # RGB distance from the background mean under the object
_MIN_CLUTTER_DISTANCE = 0.25  # RGB distance from every clutter colour of the image


@dataclass(frozen=True, eq=False)
class Shapes:
    """A shapes dataset (see ``make_shapes``).

    images : (n, S, S, 3) float32 in [0, 1]
    labels : (n,) int64, indices into ``class_names``
    masks : (n, S, S) bool, True exactly on the object's pixels
    colors : (n, 3) float32, the object's flat colour (every masked pixel has it)
    class_names : list of str
    backgrounds : (n, S, S, 3) float32, each image without its object, or None
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    colors: np.ndarray
    class_names: list
    backgrounds: np.ndarray = None

    def __len__(self):
        return len(self.labels)


def make_shapes(n, image_size=64, seed=0, clutter=True, return_backgrounds=False):
    """Coloured shapes on textured backgrounds, one object per image, with its exact mask.

    Each image holds one shape of ``SHAPE_CLASSES`` with random flat colour, size (radius 15 to
    30 % of the side), rotation and position (always fully inside, at least 2 px from the
    border), drawn with hard edges. Backgrounds are random crops (random zoom and flips) of
    scikit-image's bundled textures and photos, toned down in contrast and tinted. With
    ``clutter``, small strokes and dots that belong to no class are drawn under the object.
    The object colour is kept at least 0.35 (RGB distance) from the mean background under it
    and away from the clutter colours, so every image is solvable. Classes are balanced.

    Parameters
    ----------
    n : int >= 1
        Number of images.
    image_size : int >= 32
        Side S of the square images.
    seed : int
        The same (n, image_size, seed, clutter) gives the same data; another seed, other data.
    clutter : bool
        Draw distracting strokes and dots.
    return_backgrounds : bool
        Also keep each image without its object in ``.backgrounds`` (twice the memory).

    Returns
    -------
    Shapes
        ``.images`` (n,S,S,3) float32 in [0,1], ``.labels`` (n,) int64, ``.masks`` (n,S,S)
        bool, ``.colors`` (n,3) float32, ``.class_names`` list of str, ``.backgrounds``.
    """
    n = _positive_int(n, "n", minimum=1)
    size = _positive_int(image_size, "image_size", minimum=32)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}.")
    params = _draw_parameters(n, size, np.random.default_rng(int(seed)), bool(clutter))
    sources = _background_sources(min(2 * size, _MAX_SOURCE_SIDE))

    images = np.empty((n, size, size, 3), np.float32)
    masks = np.empty((n, size, size), bool)
    colors = np.empty((n, 3), np.float32)
    backgrounds = np.empty_like(images) if return_backgrounds else None
    # A few MB of temporaries per chunk; OpenCV's remap also needs chunk * size < 32767 rows.
    chunk = max(1, min(2**20 // size**2, 2**14 // size))
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        p = {key: value[part] for key, value in params.items()}
        image = images[part]
        _render_background(p, sources, out=image)
        if return_backgrounds:
            backgrounds[part] = image
        masks[part] = mask = _render_masks(p, size)
        colors[part] = color = _choose_colors(p, image, mask)
        np.copyto(image, color[:, None, None, :], where=mask[..., None])
    return Shapes(images, params["label"], masks, colors, list(SHAPE_CLASSES), backgrounds)


def _draw_parameters(n, size, rng, clutter):
    """Every random choice for all n images, drawn up front so chunking cannot change them."""
    k = len(SHAPE_CLASSES)
    p = {"label": rng.permutation(np.arange(n) % k).astype(np.int64)}

    radius = size * rng.uniform(*_RADIUS_RANGE, n)
    low = radius + _EDGE_GAP
    p["radius"] = radius
    p["center"] = low[:, None] + rng.uniform(size=(n, 2)) * (size - 2 * low)[:, None]  # (y, x)
    p["angle"] = rng.uniform(0, 2 * np.pi, n)

    # Background: which source, a square window on it (side as a fraction of the source side;
    # sources are 2S wide, so the zoom runs from 0.75x to 2x), flips and tone.
    p["source"] = rng.integers(len(_BACKGROUND_SOURCES), size=n)
    extent = rng.uniform(0.375, 1.0, n)
    p["extent"] = extent
    p["corner"] = rng.uniform(size=(n, 2)) * (1 - extent)[:, None]
    p["flip"] = rng.integers(2, size=(n, 2)).astype(bool)
    p["contrast"] = rng.uniform(0.25, 0.5, n)
    p["brightness"] = rng.uniform(0.3, 0.7, n)
    p["tint"] = rng.uniform(0.8, 1.2, (n, 3))

    # Clutter: capsules (a segment drawn with a round pen); length 0 makes a dot.
    slots = (n, _CLUTTER_SLOTS)
    p["clutter_on"] = rng.uniform(size=slots) < (0.6 if clutter else 0.0)
    is_dot = rng.uniform(size=slots) < 0.5
    start = rng.uniform(0, size, slots + (2,))
    length = np.where(is_dot, 0.0, size * rng.uniform(0.12, _MAX_STROKE, slots))
    direction = rng.uniform(0, 2 * np.pi, slots)
    p["clutter_start"] = start
    p["clutter_end"] = start + length[..., None] * np.stack([np.sin(direction), np.cos(direction)], -1)
    pen = np.where(is_dot, rng.uniform(1.0, _MAX_PEN, slots), rng.uniform(0.6, 1.2, slots))
    p["clutter_width"] = pen * size / 64
    p["clutter_color"] = rng.uniform(size=slots + (3,))

    p["candidates"] = rng.uniform(size=(n, _CANDIDATES, 3))
    return p


@functools.lru_cache(maxsize=4)
def _background_sources(side):
    """The background photos stacked vertically: (m * side, side, 3) float32 in [0, 1].

    Each is center-cropped to a square and area-resized once per process; grey ones are
    repeated to RGB (the per-image tint colours them). Stacking lets one ``cv2.remap`` call
    sample a whole chunk of crops from any of them.
    """
    stack = np.concatenate([_crop_resize(_load_sample(name), side, side) for name in _BACKGROUND_SOURCES])
    stack.setflags(write=False)
    return stack


def _render_background(p, sources, out):
    """Write bilinear crops of the sources, toned down, tinted, with clutter, into ``out``
    (c, S, S, 3) float32."""
    count, size, side = out.shape[0], out.shape[1], sources.shape[1]
    steps = (np.arange(size) + 0.5) / size
    extent = p["extent"][:, None]
    # Sample positions in source pixels; a flip runs the steps backwards. Clipping to the
    # source keeps bilinear sampling from reading the neighbouring source in the stack.
    ys = side * (p["corner"][:, :1] + extent * np.where(p["flip"][:, :1], 1 - steps, steps)) - 0.5
    xs = side * (p["corner"][:, 1:] + extent * np.where(p["flip"][:, 1:], 1 - steps, steps)) - 0.5
    ys = np.clip(ys, 0, side - 1) + (side * p["source"])[:, None]
    xs = np.clip(xs, 0, side - 1)
    map_y = np.broadcast_to(ys[:, :, None], (count, size, size)).reshape(count * size, size)
    map_x = np.broadcast_to(xs[:, None, :], (count, size, size)).reshape(count * size, size)
    cv2.remap(sources, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
              dst=out.reshape(count * size, size, 3))

    # Contrast and tint as one multiply-add per pixel: (b + c (x - mean)) * t.
    mean = out.mean(axis=(1, 2, 3))
    gain = p["contrast"][:, None] * p["tint"]
    offset = (p["brightness"] - p["contrast"] * mean)[:, None] * p["tint"]
    out *= gain.astype(np.float32)[:, None, None, :]
    out += offset.astype(np.float32)[:, None, None, :]
    np.clip(out, 0, 1, out=out)
    _draw_clutter(out, p)


def _draw_clutter(background, p):
    """Paint each active capsule in its colour, slot after slot, into ``background`` in place.

    Only a window around each capsule is evaluated, which is what keeps this cheap.
    """
    size = background.shape[1]
    window = int(np.ceil(size * (_MAX_STROKE + 2 * _MAX_PEN / 64))) + 2
    offsets = np.arange(window)
    for slot in range(_CLUTTER_SLOTS):
        images = np.flatnonzero(p["clutter_on"][:, slot])
        if images.size == 0:
            continue
        a = p["clutter_start"][images, slot]  # (k, 2) as (y, x)
        b = p["clutter_end"][images, slot]
        pen = p["clutter_width"][images, slot]
        corner = np.floor(np.minimum(a, b) - pen[:, None]).astype(np.int64)
        rows = corner[:, :1] + offsets  # (k, window) pixel indices
        cols = corner[:, 1:] + offsets
        py, px = (rows + 0.5)[:, :, None], (cols + 0.5)[:, None, :]
        ay, ax = a[:, 0, None, None], a[:, 1, None, None]
        dy, dx = (b - a)[:, 0, None, None], (b - a)[:, 1, None, None]
        # Closest point of the segment to each pixel centre, then the distance to it.
        t = np.clip(((py - ay) * dy + (px - ax) * dx) / np.maximum(dy * dy + dx * dx, 1e-9), 0, 1)
        hit = (py - ay - t * dy) ** 2 + (px - ax - t * dx) ** 2 <= pen[:, None, None] ** 2
        hit &= ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
        k, r, c = np.nonzero(hit)
        background[images[k], rows[k, r], cols[k, c]] = p["clutter_color"][images[k], slot]


def _render_masks(p, size):
    """The object masks (c, S, S) bool: each class's implicit function on rotated coordinates."""
    centers = np.arange(size) + 0.5
    dy = centers[None, :, None] - p["center"][:, 0, None, None]
    dx = centers[None, None, :] - p["center"][:, 1, None, None]
    cos = (np.cos(p["angle"]) / p["radius"])[:, None, None]
    sin = (np.sin(p["angle"]) / p["radius"])[:, None, None]
    u = dx * cos + dy * sin
    v = dy * cos - dx * sin
    masks = np.zeros(u.shape, bool)
    for label, shape in enumerate(_SHAPES.values()):
        chosen = p["label"] == label
        if chosen.any():
            masks[chosen] = shape(u[chosen], v[chosen])
    return masks


def _choose_colors(p, background, mask):
    """Per image, the first colour candidate far enough from the background mean under the
    mask and from the image's clutter colours; the most distant candidate if none is."""
    count, size = mask.shape[:2]
    weights = mask.reshape(count, 1, size * size).astype(np.float32)
    under = (weights @ background.reshape(count, size * size, 3))[:, 0] / weights.sum(axis=2)
    candidates = p["candidates"]
    to_background = np.linalg.norm(candidates - under[:, None, :], axis=-1)
    to_clutter = np.linalg.norm(candidates[:, :, None, :] - p["clutter_color"][:, None, :, :], axis=-1)
    to_clutter = np.where(p["clutter_on"][:, None, :], to_clutter, np.inf).min(axis=-1)
    good = (to_background >= _MIN_COLOR_DISTANCE) & (to_clutter >= _MIN_CLUTTER_DISTANCE)
    best = np.where(good.any(axis=1), good.argmax(axis=1), to_background.argmax(axis=1))
    return candidates[np.arange(count), best].astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Bundled photos

SAMPLE_IMAGES = (
    "astronaut", "brick", "camera", "cat", "chelsea", "coffee", "coins", "colorwheel",
    "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "logo", "moon",
    "retina", "rocket", "china", "flower",
)
# The last two ship with scikit-learn (sklearn.datasets.load_sample_image), the rest with
# scikit-image.
# scikit-image names one photo twice ("cat" is "chelsea"): pools of crops use each photo once.
DISTINCT_SAMPLE_IMAGES = tuple(name for name in SAMPLE_IMAGES if name != "cat")
_SKLEARN_IMAGES = {"china": "china.jpg", "flower": "flower.jpg"}


@functools.lru_cache(maxsize=None)
def _load_sample(name):
    """A bundled photo as a read-only (H, W, 3) float32 array in [0, 1]."""
    if name in _SKLEARN_IMAGES:
        from sklearn.datasets import load_sample_image

        image = load_sample_image(_SKLEARN_IMAGES[name])
    else:
        import skimage.data

        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3], dtype=np.float32) / 255.0
    image.setflags(write=False)
    return image


def sample_image(name, size=None):
    """One of the photos scikit-image and scikit-learn ship (offline), as (H, W, 3) float32 in [0, 1].

    Parameters
    ----------
    name : str
        One of ``SAMPLE_IMAGES`` (case-insensitive); ``"cat"`` is the same photo as
        ``"chelsea"``; ``"china"`` (a Chinese palace) and ``"flower"`` come from
        scikit-learn. Grey images are repeated to three channels; the logo's alpha is dropped.
    size : None, int or (h, w)
        None keeps the native size. Otherwise the largest centred window with the target aspect
        ratio is cropped (so nothing is stretched) and resized to (size, size) or (h, w), with
        area averaging when shrinking and bicubic interpolation when enlarging.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad size.
    """
    key = str(name).strip().lower()
    if key not in SAMPLE_IMAGES:
        raise ValueError(f"Unknown sample image {name!r}; valid names are {', '.join(SAMPLE_IMAGES)}.")
    image = _load_sample(key)
    if size is None:
        return image.copy()
    if isinstance(size, numbers.Integral):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise ValueError(f"size must be None, an int or an (h, w) pair, got {size!r}.")
    height, width = (_positive_int(s, "size", minimum=1) for s in size)
    return _crop_resize(image, height, width)


def _crop_resize(image, height, width):
    """Center-crop ``image`` to the aspect ratio height:width, then resize to (height, width)."""
    h, w = image.shape[:2]
    crop_h, crop_w = min(h, round(w * height / width)), min(w, round(h * width / height))
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    crop = image[top : top + crop_h, left : left + crop_w]
    shrinking = height * width <= crop_h * crop_w
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return np.clip(resized, 0, 1, out=resized)


# ---------------------------------------------------------------------------------------------
# Digits


@dataclass(frozen=True, eq=False)
class Digits:
    """scikit-learn's handwritten digits, split for training (see ``load_digits``).

    x_train, x_test : (n, S, S, 3) float32 in [0, 1]
    y_train, y_test : (n,) int64 in 0..9
    class_names : list of str, "0" to "9"
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list


def load_digits(image_size=32, seed=0, test_fraction=0.25):
    """scikit-learn's bundled 8x8 digits (1797 images), upscaled for a convnet.

    Pixel values 0..16 are scaled to [0, 1], images are bilinearly resized to
    (image_size, image_size) and the grey channel is repeated three times. The split is
    stratified (every digit in the same proportion in both parts) and fixed by ``seed``.

    Returns
    -------
    Digits
        ``x_train``/``x_test`` (n,S,S,3) float32 in [0,1], ``y_train``/``y_test`` (n,) int64,
        ``class_names`` ["0", ..., "9"].
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    size = _positive_int(image_size, "image_size", minimum=8)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction!r}.")
    digits = sklearn_digits()
    small = digits.images.astype(np.float32) / 16.0
    # 1797 resizes of an 8x8 image take a few milliseconds.
    large = np.stack([cv2.resize(img, (size, size), interpolation=cv2.INTER_LINEAR) for img in small])
    images = np.repeat(large[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    return Digits(x_train, y_train, x_test, y_test, [str(d) for d in range(10)])


# ---------------------------------------------------------------------------------------------
# Full profile: tensorflow-datasets

TFDS_DATASETS = ("cats_vs_dogs", "tf_flowers")


def load_dataset(name, split="train", image_size=160, batch_size=32, data_dir=None):
    """A tensorflow-datasets image classification set, ready for a convnet (full profile).

    Downloads and prepares the dataset on first use (cats_vs_dogs is about 800 MB, tf_flowers
    about 220 MB); once it is in the TFDS data directory it loads without network.

    Parameters
    ----------
    name : str
        One of ``TFDS_DATASETS``.
    split : str
        A TFDS split, slicing allowed: ``"train"``, ``"train[:80%]"``. (Both sets only have a
        ``train`` split; slice it for validation.)
    image_size : int
        Images are resized (stretched, bilinear with antialiasing) to (image_size, image_size).
    batch_size : int
    data_dir : str or path, optional
        The TFDS data directory; default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``.

    Returns
    -------
    (dataset, class_names)
        ``dataset`` is a batched, prefetched ``tf.data.Dataset`` of (images (b,S,S,3) float32
        in [0,1], labels (b,) int64), in file order (shuffle it for training);
        ``class_names`` is a list of str.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a bad size.
    DownloadError
        When the dataset is not prepared locally and cannot be downloaded (fails in seconds).
    """
    if name not in TFDS_DATASETS:
        raise ValueError(f"Unknown dataset {name!r}; valid names are {', '.join(TFDS_DATASETS)}.")
    size = _positive_int(image_size, "image_size", minimum=1)
    batch_size = _positive_int(batch_size, "batch_size", minimum=1)

    import tensorflow_datasets as tfds

    from ._tf import tf

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        how = (
            f"Run this once with network access; the prepared data is then kept in "
            f"{builder.data_dir} and later runs work offline. Or copy a prepared "
            f"'{name}' folder from another machine's TFDS data directory into a folder here "
            f"and pass it as data_dir= or set the TFDS_DATA_DIR environment variable."
        )
        with guarded_download(
            what=f"the {name!r} dataset (tensorflow-datasets)",
            how=how,
            urls=list(builder.url_infos or ()),
        ):
            builder.download_and_prepare()

    def prepare(image, label):
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, (size, size), antialias=True)
        return tf.clip_by_value(image, 0.0, 1.0), label

    dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    return dataset, list(builder.info.features["label"].names)


# ---------------------------------------------------------------------------------------------


def _positive_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return int(value)
