"""Numbers typed into a chapter's prose are either glued from the code or allowed for a reason.

Glue (tests/test_glue.py) keeps a computed number and its output in step; it cannot stop an
author from typing a number instead. This test lists every number the markdown of a chapter
still types by hand and fails unless ``tests/data/typed_numbers.toml`` allows it, under the
chapter's section, with a reason: a definition, a year, a paper's reported figure with its
citation, a parameter set in code that the prose restates, a fact of a dataset.

What counts as a typed number: digits followed by a unit (%, px, s, ms, min, MB) and any other
number standing on its own in a sentence ("33 layers", "0.05", "1,280 numbers"). What does not:
glue roles, code spans, maths, link targets, citations, HTML, numbered-list markers and the
section numbers of headings, digits inside a word (ReLU6, 2D, 3rd), array sizes written with a
multiplication sign (8×8, 224 × 224) or after a hyphen (stride-2), a digit's name in quotes, numbers right after a word that
names a part of the book or the network (chapter 4, block 3, exercise 2, step 1), and years
(1900-2099). The allow-list is
keyed by the number as it is written, with its unit and no space ("78%", "1,280", "0.05").
"""

import json
import re
import tomllib

import pytest
from toc_files import ROOT, toc_notebooks

ALLOWED = tomllib.loads((ROOT / "tests/data/typed_numbers.toml").read_text())
NOTEBOOKS = toc_notebooks()

_REMOVED = [
    re.compile(r"```.*?```", re.S),                   # fenced code
    re.compile(r"\$\$.*?\$\$", re.S),                 # display maths
    re.compile(r"\{[\w:-]+\}`[^`]*`"),                # roles: glue, cite, ref, ...
    re.compile(r"`[^`]*`"),                           # code spans
    re.compile(r"(?<!\\)\$[^$\n]+\$"),                # inline maths
    re.compile(r"!\[[^\]]*\]\([^)]*\)"),              # images
    re.compile(r"\]\([^)]*\)"),                       # link targets (the link text stays)
    re.compile(r"<[^>\n]+>"),                         # HTML
    re.compile(r"^\s*(?:\d+\.|[*+-])\s", re.M),       # list markers
    re.compile(r"^#+\s*(?:\d+(?:\.\d+)*\.?\s)?", re.M),  # heading marks and section numbers
]
_NUMBER = re.compile(r"(?<![\w.,×-])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s?(%|px|ms|min|MB|s)\b|\s?(%))?")
_PART = re.compile(r"(?:chapters?|sections?|blocks?|exercises?|steps?|parts?|figures?|editions?|rows?|contenders?|"
                   r"columns?|stages?|cells?|versions?|question|q)\s+(?:\d+\s*(?:,|and|to|-|–)\s*)*$", re.I)


def typed_numbers(markdown):
    """The numbers a piece of markdown types by hand: a list of (number as keyed, context)."""
    for pattern in _REMOVED:
        markdown = pattern.sub(" ", markdown)
    found = []
    for match in _NUMBER.finditer(markdown):
        whole, fraction, unit = match.group(1), match.group(2) or "", match.group(3) or match.group(4) or ""
        after = markdown[match.end():match.end() + 4]
        before = markdown[max(0, match.start() - 2):match.start()]
        if not unit and (re.match(r"\s?[×x]\s?\d", after) or re.search(r"(?<![A-Za-z])[×x]\s?$", before)
                         or re.match(r"[A-Za-z_]", after)):
            continue  # an array size (8×8, 224 × 224) or digits inside a word (2D, 3rd)
        if before.endswith('"') and after.startswith('"'):
            continue  # a digit's name ("6" is a "9")
        if _PART.search(markdown[max(0, match.start() - 40):match.start()]):
            continue
        if not unit and not fraction and re.fullmatch(r"(19|20)\d\d", whole):
            continue  # a year
        context = " ".join(markdown[max(0, match.start() - 40):match.end() + 30].split())
        found.append((whole + fraction + unit, context))
    return found


def _params():
    for path in NOTEBOOKS:
        yield pytest.param(path, id=path.rsplit("/", 1)[-1].removesuffix(".ipynb"))


@pytest.mark.parametrize("path", list(_params()))
def test_every_typed_number_is_allowed(path):
    name = path.rsplit("/", 1)[-1].removesuffix(".ipynb")
    allowed = ALLOWED.get(name, {})
    nb = json.loads((ROOT / path).read_text())
    unexplained = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            unexplained += [f"cell {index}: {number!r} in \"…{context}…\""
                            for number, context in typed_numbers("".join(cell["source"]))
                            if number not in allowed]
    assert not unexplained, (
        f"{path} types numbers that are neither glued nor allowed; glue each computed one, or add it "
        f"under [{name}] in tests/data/typed_numbers.toml with the reason it may be typed:\n  "
        + "\n  ".join(unexplained))


def test_every_allowed_number_has_a_reason_and_a_chapter():
    chapters = {path.rsplit("/", 1)[-1].removesuffix(".ipynb") for path in NOTEBOOKS}
    for section, entries in ALLOWED.items():
        assert section in chapters, f"[{section}] names no chapter in _toc.yml"
        for number, reason in entries.items():
            assert isinstance(reason, str) and len(reason.split()) >= 3, f"[{section}] {number!r} needs a reason"


@pytest.mark.parametrize("text, expected", [
    ("about 78 % validation accuracy and 85% later", ["78%", "85%"]),
    ("all 33 ReLU6 layers of Lite0, 1,280 channels, lr 0.05", ["33", "1,280", "0.05"]),
    ("in 49 s, 224 px wide", ["49s", "224px"]),
    ("chapter 4 and block 3, an 8×8 map, 224 × 224 pixels, 2D, a stride-2 stem, since 2015", []),
    ('a rotated "6" is a "9", but 6 stays', ["6"]),
    ("{glue:text}`acc:.2f` and `block4_relu` and $10^{-4}$ {cite}`erhan2009` [link](https://x.org/1)", []),
    ("## 6. Larger bases\n1. first item", []),
])
def test_what_counts_as_typed(text, expected):
    assert [number for number, _ in typed_numbers(text)] == expected
