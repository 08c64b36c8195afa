"""The full profile's datasets: tensorflow-datasets image classification sets, downloaded on
first use, as batched ``tf.data`` pipelines of float32 images in [0, 1]."""

from ..downloads import guarded_download
from ._arguments import positive_int

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
    size = positive_int(image_size, "image_size", minimum=1)
    batch_size = positive_int(batch_size, "batch_size", minimum=1)

    import tensorflow_datasets as tfds

    # Here, not at the top: on JAX or PyTorch, importing this module must not load TensorFlow.
    from .._tf import tf

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
