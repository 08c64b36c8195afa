"""Every chapter is ready for Colab and for the website, read from the stored notebook (no kernel).

What a reader on Colab needs: a badge that opens this notebook on branch main, a set-up cell
that installs only the helper package at the released tag (never TensorFlow) and is hidden on
the site, and notebook metadata that asks Colab for a GPU. What a reader of the site needs:
words for every figure (alt text or a caption), since the image alone says nothing to a
screen reader.
"""

import json
import re

import convviz_helpers
import pytest
from toc_files import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))  # checkpoints live a level down
BADGE = "https://colab.research.google.com/github/convviz/convviz/blob/main/notebooks/{}"
INSTALL = f"convviz-helpers @ git+https://github.com/convviz/convviz@v{convviz_helpers.__version__}"


def _source(cell):
    return "".join(cell.get("source", ""))


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


@pytest.fixture(params=NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def notebook(request):
    return request.param, json.loads(request.param.read_text())


def test_opens_with_title_and_colab_badge(notebook):
    path, nb = notebook
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and _source(first).startswith("# "), (
        f"{path.name}: the first cell should be markdown starting with '# Title'"
    )
    assert BADGE.format(path.name) in _source(first), (
        f"{path.name}: the first cell needs the Open in Colab badge linking {BADGE.format(path.name)}"
    )


def test_colab_setup_cell(notebook):
    path, nb = notebook
    setup = [c for c in nb["cells"] if c["cell_type"] == "code" and "google.colab" in _source(c)]
    assert setup, f"{path.name}: no Colab set-up cell (see CONTRIBUTING.md)"
    cell = setup[0]
    assert "remove-cell" in _tags(cell), f"{path.name}: tag the Colab set-up cell remove-cell"
    assert INSTALL in _source(cell), f"{path.name}: the set-up cell should install {INSTALL!r}"
    assert not re.search(r"\b(tensorflow|keras)\b", _source(cell).split("pip", 1)[-1]), (
        f"{path.name}: the set-up cell must not install TensorFlow or Keras over Colab's"
    )
    assert any("parameters" in _tags(c) for c in nb["cells"]), f"{path.name}: no parameters cell"


def test_asks_colab_for_a_gpu(notebook):
    path, nb = notebook
    assert nb["metadata"].get("accelerator") == "GPU", (
        f'{path.name}: add "accelerator": "GPU" (and "colab": {{"gpuType": "T4"}}) to the '
        "notebook metadata so Colab opens it on a GPU runtime"
    )


def test_figures_have_words(notebook):
    path, nb = notebook
    unlabelled = []
    for index, cell in enumerate(nb["cells"]):
        outputs = cell.get("outputs", [])
        if not any("image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {}) for o in outputs):
            continue
        options = cell.get("metadata", {}).get("mystnb", {})
        if not (options.get("image", {}).get("alt") or options.get("figure", {}).get("caption")):
            unlabelled.append(index)
    assert not unlabelled, (
        f"{path.name}: cells {unlabelled} draw a figure without alt text; add to each cell's "
        'metadata {"mystnb": {"image": {"alt": "what the figure shows"}}}'
    )


def test_stored_notebook_stays_small(notebook):
    # The site, Colab's preview and git all carry every stored figure: chapters keep them as
    # JPEG at the page's resolution (plotting.use_compact_figures in the parameters cell).
    path, _ = notebook
    size = path.stat().st_size
    assert size <= 1.5e6, f"{path.name} is {size / 1e6:.1f} MB; store figures compactly (1.5 MB at most)"
