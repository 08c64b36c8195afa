"""Numbers in the prose come from the code: every glue role in a chapter names a stored value.

A chapter's markdown cites computed values with myst-nb's glue roles; the code cells store them
(``convviz_helpers.glue.glue``) in their outputs. If a role names a value that no cell stored
(a renamed variable, a cell not re-executed), the site would show an error instead of the
number: this test fails first, naming the chapter and the value.
"""

import json
import re

import pytest
from toc_files import ROOT

from convviz_helpers import glue as glue_module

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ROLE = re.compile(r"\{glue(?::\w+)?\}`([A-Za-z_]\w*)(?::[^`]*)?`")


def _stored_names(nb):
    names = set()
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            scrap = output.get("metadata", {}).get("scrapbook", {})
            if "name" in scrap:
                names.add(scrap["name"])
    return names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_every_glue_role_names_a_stored_value(path):
    nb = json.loads(path.read_text())
    cited = {name for cell in nb["cells"] if cell["cell_type"] == "markdown"
             for name in ROLE.findall("".join(cell["source"]))}
    missing = sorted(cited - _stored_names(nb))
    assert not missing, f"{path.name}: the prose cites {missing}, which no stored output glued; re-execute it"


def test_role_pattern_reads_names_and_formats():
    text = "p = {glue:text}`cat_p:.2f`, class {glue:text}`cat_name` and {glue}`plain`"
    assert ROLE.findall(text) == ["cat_p", "cat_name", "plain"]


@pytest.mark.parametrize("bad_name", ["two words", "1st", "", None])
def test_glue_refuses_names_the_role_cannot_cite(bad_name):
    with pytest.raises(ValueError, match="identifier"):
        glue_module.glue(bad_name, 1.0)


def test_glue_refuses_values_the_page_cannot_show():
    with pytest.raises(ValueError, match="numbers and strings"):
        glue_module.glue("maps", [1, 2, 3])
