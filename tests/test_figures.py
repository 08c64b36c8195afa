"""Every stored figure fits the page: the figure rule, read from the stored notebooks.

The rule (DESIGN.md, "Notebooks"): at most 760 px wide as stored (80 dpi: a figsize of at most
9.5 in), text at least 9 pt as shown, at most 8 image tiles in a row (6 when the tiles show
224-px images), and a title. The width is read from the stored image itself; fonts, tiles and
titles cannot be, so ``plotting.use_compact_figures()`` (called in every chapter's parameters
cell) stores ``plotting.describe_figure``'s record in each image output's metadata when the
figure is drawn. A figure stored without that record was made by old code: it fails too, and
re-executing the chapter fixes that part.

The second half tests the recorder itself on figures drawn here.
"""

import base64
import io
import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image
from toc_files import ROOT, toc_notebooks

from convviz_helpers import plotting

NOTEBOOKS = toc_notebooks()
IMAGE_TYPES = ("image/png", "image/jpeg")


def stored_figures(nb):
    """(cell index, mime type, stored width in px, record or None) for every stored image."""
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []):
            for mime in IMAGE_TYPES:
                if mime in output.get("data", {}):
                    width = Image.open(io.BytesIO(base64.b64decode(output["data"][mime]))).size[0]
                    record = output.get("metadata", {}).get(mime, {}).get(plotting.FIGURE_METADATA)
                    yield index, mime, width, record


@pytest.mark.parametrize("path", [pytest.param(path, id=path.rsplit("/", 1)[-1]) for path in NOTEBOOKS])
def test_every_stored_figure_fits_the_page(path):
    nb = json.loads((ROOT / path).read_text())
    broken = []
    for index, mime, width, record in stored_figures(nb):
        if record is None:
            broken.append(f"cell {index}: stored without the figure record (drawn by old code, "
                          "or before plotting.use_compact_figures()); re-execute the chapter")
            continue
        problems = plotting.figure_problems({**record, "width_px": width})
        broken += [f"cell {index}: {problem}" for problem in problems]
    assert not broken, f"{path} breaks the figure rule:\n  " + "\n  ".join(broken)


# The recorder, on figures drawn here.

@pytest.fixture
def shell():
    """An IPython shell whose figures are stored as the chapters store them (JPEG, 80 dpi)."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    with matplotlib.rc_context():
        plotting.use_compact_figures()
        shell.display_formatter.formatters["image/jpeg"].enabled = True
        yield shell
    plt.close("all")
    InteractiveShell.clear_instance()  # later tests must see "not a notebook" again


def stored(shell, figure):
    """What a notebook would store for the figure: its record, with the stored width."""
    data, metadata = shell.display_formatter.format(figure)
    width = Image.open(io.BytesIO(base64.b64decode(data["image/jpeg"]))).size[0]
    record = metadata["image/jpeg"][plotting.FIGURE_METADATA]
    assert record["width_px"] == width
    return record


def tiles(shell, count, width, fontsize=10, size=64):
    """A row of ``count`` image tiles in a figure ``width`` inches wide, titled, tight."""
    figure, axes = plt.subplots(1, count, figsize=(width, width / count + 0.6))
    for k, ax in enumerate(np.atleast_1d(axes)):
        ax.imshow(np.zeros((size, size)))
        ax.set_title(f"tile {k}", fontsize=fontsize)
        ax.axis("off")
    figure.suptitle("does every tile show the same thing?")
    figure.tight_layout()
    return stored(shell, figure)


def test_a_full_column_figure_passes(shell):
    record = tiles(shell, 8, 9.5)
    assert record["tile_rows"] == [[8, 64]]
    assert record["min_font_pt"] == 10
    assert plotting.figure_problems(record) == []


def test_ten_inches_is_too_wide(shell):
    record = tiles(shell, 8, 10.0)
    assert record["width_px"] > plotting.COLUMN_PX
    assert [p for p in plotting.figure_problems(record) if "px wide" in p]


def test_ten_tiles_in_a_row_fail_and_224_px_tiles_allow_six(shell):
    assert "10 tiles of 64-px images in one row: at most 8" in plotting.figure_problems(tiles(shell, 10, 9.5))
    assert plotting.figure_problems(tiles(shell, 6, 9.5, size=224)) == []
    assert "7 tiles of 224-px images in one row: at most 6" in plotting.figure_problems(tiles(shell, 7, 9.5, size=224))


def test_a_six_point_label_fails_and_hidden_axes_do_not_count(shell):
    figure, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_xlabel("a label", fontsize=6)
    ax.set_title("does the line rise?")
    record = stored(shell, figure)
    assert record["min_font_pt"] == 6
    assert "text of 6 pt as shown: at least 9 pt" in plotting.figure_problems(record)

    figure, ax = plt.subplots(figsize=(6, 3))
    ax.imshow(np.zeros((8, 8)))
    ax.tick_params(labelsize=5)
    ax.axis("off")  # its 5-pt tick labels are never drawn
    ax.set_title("an image")
    assert stored(shell, figure)["min_font_pt"] == 12  # the title's


def test_an_untitled_figure_fails_and_a_wide_one_shrinks_its_text(shell):
    figure, ax = plt.subplots(figsize=(6, 3))
    ax.plot([0, 1])
    assert "no title" in plotting.figure_problems(stored(shell, figure))[0]
    # A figure twice as wide as the column is shown at half its size: 10-pt ticks read as 5 pt.
    assert plotting.describe_figure(figure, 2 * plotting.COLUMN_PX)["min_font_pt"] == 5
