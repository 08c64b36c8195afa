"""Computed values into the book's prose: ``glue(name, value)`` in a chapter's code cell, then
myst-nb's ``glue:text`` role with that name (and an optional format such as ``.3f``) in its
markdown.

A number, class name or ranking that a cell computes reaches the text this way, so the prose
cannot disagree with the output it describes. myst-nb (part of Jupyter Book) stores the value
in the cell's outputs and the site renders it in place; ``tests/test_glue.py`` fails if the
markdown names a value that no cell glued.
"""

import numbers

import numpy as np


def glue(name, value):
    """Store ``value`` under ``name`` for the page's glue roles; returns None.

    ``value``: a number, a string or a numpy scalar (numpy scalars are stored as Python numbers,
    so the role's format spec applies). Nothing is shown in the notebook itself. Where myst-nb
    is not installed (Colab), there is no page to render, and nothing is stored.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"A glue name is an identifier such as 'top1_name', got {name!r}.")
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, (numbers.Number, str)):
        raise ValueError(f"glue stores numbers and strings, got {type(value).__name__} for {name!r}.")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)

