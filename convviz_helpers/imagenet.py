"""The 1000 ImageNet classes, shipped with the package, and reading a classifier's top-k.

Keras's ``decode_predictions`` downloads its class index on first use; the book needs the names
offline, so a copy ships in ``resources/imagenet_classes.tsv`` (WordNet id and name per class,
in the standard order every ``keras.applications`` model and EfficientNet-Lite0 use; taken
from TensorFlow Datasets, Apache License 2.0, attribution in the file's header).
"""

import functools
from importlib import resources

import numpy as np

NUM_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def _table():
    text = resources.files(__package__).joinpath("resources/imagenet_classes.tsv").read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    if len(rows) != NUM_CLASSES:
        raise RuntimeError(f"imagenet_classes.tsv has {len(rows)} classes, expected {NUM_CLASSES}.")
    return tuple(row[0] for row in rows), tuple(row[1] for row in rows)


def class_names():
    """The 1000 class names, index = class id (``class_names()[281] == "tabby, tabby cat"``)."""
    return list(_table()[1])


def wordnet_ids():
    """The 1000 WordNet ids (``"n01440764"``...), index = class id."""
    return list(_table()[0])


def short_name(class_id):
    """The first synonym of a class's name (``"tabby"`` for 281), for titles and legends."""
    _check_id(class_id)
    return _table()[1][int(class_id)].split(",")[0]


def find_class(text):
    """Class ids whose name contains ``text`` (case-insensitive), e.g. ``find_class("tabby")``.

    Returns a list of ints, possibly empty.
    """
    needle = str(text).lower()
    return [i for i, name in enumerate(_table()[1]) if needle in name.lower()]


def _check_id(class_id):
    if not (isinstance(class_id, (int, np.integer)) and 0 <= class_id < NUM_CLASSES):
        raise ValueError(f"ImageNet class ids are integers 0..{NUM_CLASSES - 1}, got {class_id!r}.")


def decode_predictions(scores, top=5):
    """Per image, the ``top`` classes as ``(wordnet_id, name, score)``, highest first.

    ``scores``: (n, 1000) probabilities or logits (any array-like). Offline, unlike
    ``keras.applications.imagenet_utils.decode_predictions``, with the same output layout (names
    use spaces and keep their synonyms: ``"tabby, tabby cat"``). Raises ValueError for another
    shape or a ``top`` outside 1..1000.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != NUM_CLASSES:
        raise ValueError(f"decode_predictions expects (n, {NUM_CLASSES}) scores, got shape {scores.shape}.")
    if not (isinstance(top, (int, np.integer)) and 1 <= top <= NUM_CLASSES):
        raise ValueError(f"top must be an integer in 1..{NUM_CLASSES}, got {top!r}.")
    wnids, names = _table()
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    return [[(wnids[c], names[c], float(row[c])) for c in ranking] for row, ranking in zip(scores, order)]
