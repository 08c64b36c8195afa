"""The documents listed in _toc.yml, in reading order.

Used by tests/test_toc.py and by the Makefile, which runs nbval over the notebooks in this
order (the training chapter must run before the chapters that load its model):

    python tests/toc_files.py --notebooks     # prints notebooks/00_setup.ipynb ... one a line
"""

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _walk(node):
    # _toc.yml nests parts -> chapters -> sections; every document is a `root` or `file` value,
    # and a depth-first walk in mapping order is the reading order.
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("root", "file"):
                yield value
            elif isinstance(value, (dict, list)):
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def toc_entries(toc=ROOT / "_toc.yml"):
    """Every document path in the toc as written (no suffix), in reading order."""
    return list(_walk(yaml.safe_load(Path(toc).read_text())))


def resolve(entry, root=ROOT):
    """The file behind a toc entry (Jupyter Book allows the suffix to be left out), or None."""
    path = root / entry
    if path.suffix in (".md", ".ipynb") and path.is_file():
        return path
    found = [path.with_name(path.name + s) for s in (".ipynb", ".md")]
    found = [p for p in found if p.is_file()]
    return found[0] if found else None


def toc_notebooks(root=ROOT):
    """The notebooks in the toc, in reading order, relative to the repository root."""
    files = (resolve(entry, root) for entry in toc_entries(root / "_toc.yml"))
    return [p.relative_to(root).as_posix() for p in files if p is not None and p.suffix == ".ipynb"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--notebooks"]:
        sys.exit("usage: python tests/toc_files.py --notebooks")
    print("\n".join(toc_notebooks()))
