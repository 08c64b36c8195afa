"""Build the course assignments from their Otter-Grader master notebooks.

The masters are the four chapter assignments (assignments/NN_name.ipynb: not book pages, stored
without outputs) and the exercises chapter (notebooks/05_exercises.ipynb, a page of the book).
Each is an Otter-Grader 7 master notebook: its
raw cells configure the assignment and fence each question, its solutions sit between solution
markers, and its test cells call the graders of ``convviz_helpers.checks``. ``otter assign``
turns it into a student notebook (solutions replaced by ``...``, hidden tests and outputs gone)
and an autograder (all tests, for ``otter run`` or Gradescope); written answers (Otter's manual
questions) keep their prompt and an answer cell, between the HTML comments that ``otter export
--filtering`` keeps for graders. This script runs it on each master, then makes the student
notebook stand on its own:

- cells tagged ``book-only`` (words for readers of the site) are dropped, and so is the title's
  Open-in-Colab badge, which opens the book's version, solutions included;
- a set-up cell after the Colab install cell creates ``grader`` and, where the notebook arrived
  without its ``tests/`` folder (on Colab a notebook is opened alone), writes the public tests
  there first, so ``grader.check("q1")`` works on Colab as it does locally.

    python tools/build_assignment.py                          # every master -> _build/assignments/
    python tools/build_assignment.py assignments/01_shortcut.ipynb -o /tmp/out

Output, for a master notebook NAME.ipynb, in the output folder:

- ``NAME/student/NAME.ipynb`` and ``NAME/student/tests/``: what students get (the notebook alone
  is enough);
- ``NAME/autograder/``: Otter's autograder folder (solution notebook, every test);
- ``NAME-autograder.zip``: the autograder zip (for ``otter run -a`` or Gradescope).
"""

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "notebooks" / "05_exercises.ipynb"
# Chapter order first, then the exercises chapter, which draws on all four.
MASTERS = (*sorted((ROOT / "assignments").glob("[0-9][0-9]_*.ipynb")), EXERCISES)
BOOK_ONLY_TAG = "book-only"
SITE_TAGS = {BOOK_ONLY_TAG, "remove-cell", "remove-input", "hide-input"}
BADGE = re.compile(r"\n*\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)\n*")

GRADER_CELL = '''\
# Otter-Grader: grader.check("q1") runs the tests of question q1. Their files are written into
# tests/ beside this notebook first where they are missing: on Colab the notebook arrives alone.
import pathlib

import otter

PUBLIC_TESTS = {tests}
for _name, _source in PUBLIC_TESTS.items():
    _path = pathlib.Path("tests", _name)
    if not _path.exists():
        _path.parent.mkdir(exist_ok=True)
        _path.write_text(_source)
grader = otter.Notebook()'''


def _literal(text):
    """``text`` as a Python string literal a person can read: triple-quoted where that is exact."""
    if '"""' not in text and "\\" not in text and not text.endswith('"'):
        return '"""\\\n' + text + '"""'
    return repr(text)


def drop_empty_tests(tests_dir):
    """Remove the test files of ``tests_dir`` that hold no test case (a question whose tests are
    all hidden): ``grader.check_all()`` would report them as passed, whatever the answer."""
    for path in Path(tests_dir).glob("*.py"):
        if "@test_case" not in path.read_text():
            path.unlink()


def grader_cell(tests_dir):
    """The set-up cell that creates ``grader`` and writes the test files of ``tests_dir`` beside
    the notebook where they are missing."""
    files = sorted(Path(tests_dir).glob("*.py"))
    if not files:
        raise ValueError(f"{tests_dir} has no test files: did otter assign find any question?")
    entries = "".join(f"    {path.name!r}: {_literal(path.read_text())},\n" for path in files)
    cell = nbformat.v4.new_code_cell(GRADER_CELL.format(tests="{\n" + entries + "}"))
    # Students should not edit it, as Otter's own init cell.
    cell.metadata.update({"deletable": False, "editable": False, "tags": ["otter-setup"]})
    return cell


def finish_notebook(path, tests_dir, *, student):
    """Rewrite the notebook ``path`` that otter assign wrote: drop book-only cells, insert the
    grader cell after the Colab install cell (or first), and for students drop the title's
    badge."""
    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if BOOK_ONLY_TAG not in cell.metadata.get("tags", [])]
    if student and cells and cells[0].cell_type == "markdown":
        cells[0].source = BADGE.sub("\n\n", cells[0].source).strip()
    for cell in cells:
        # The site's tags mean nothing in a notebook a person runs; keep Otter's own.
        tags = [tag for tag in cell.metadata.get("tags", []) if tag not in SITE_TAGS]
        if tags:
            cell.metadata["tags"] = tags
        else:
            cell.metadata.pop("tags", None)
    install = next((i for i, cell in enumerate(cells)
                    if cell.cell_type == "code" and "google.colab" in cell.source), -1)
    cells.insert(install + 1, grader_cell(tests_dir))
    notebook.cells = cells
    nbformat.validate(notebook)
    nbformat.write(notebook, path)


def build(master, output=ROOT / "_build" / "assignments", python=sys.executable):
    """Run ``otter assign`` on ``master`` into ``output``/NAME and finish the notebooks; returns
    ``(student notebook, autograder zip)``. Raises ``subprocess.CalledProcessError`` (with Otter's
    output) if otter assign fails."""
    master, output = Path(master).resolve(), Path(output).resolve()
    target = output / master.stem
    shutil.rmtree(target, ignore_errors=True)  # otter assign adds to a folder; start clean
    output.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-m", "otter", "assign", "--no-pdfs", str(master), str(target)],
                   check=True, capture_output=True, text=True)
    student = target / "student" / master.name
    drop_empty_tests(target / "student" / "tests")
    finish_notebook(student, target / "student" / "tests", student=True)
    finish_notebook(target / "autograder" / master.name, target / "student" / "tests", student=False)
    # The zip's name carries a timestamp; a fixed name is easier to hand on and to script.
    zips = sorted((target / "autograder").glob(f"{master.stem}-autograder_*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"expected one autograder zip in {target / 'autograder'}, found {zips}")
    autograder = output / f"{master.stem}-autograder.zip"
    shutil.copyfile(zips[0], autograder)
    return student, autograder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("masters", nargs="*", type=Path, default=list(MASTERS),
                        help="Otter master notebooks (default: assignments/*.ipynb and notebooks/05_exercises.ipynb)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "_build" / "assignments",
                        help="output folder (default: _build/assignments)")
    args = parser.parse_args(argv)
    for master in args.masters:
        try:
            student, autograder = build(master, args.output)
        except subprocess.CalledProcessError as error:
            sys.exit(f"otter assign failed on {master}:\n{error.stdout}{error.stderr}")
        print(f"{master.stem}\n  student notebook: {student}\n  autograder:       {autograder}")


if __name__ == "__main__":
    main()
