"""Turn the book's exercise notebook into the version handed to students.

The book version holds each exercise twice: a stub for the student (cell tag ``student``, hidden
on the site by ``remove-cell``) followed by the reference solution (tag ``solution``, shown in a
toggle by ``hide-input``), which overrides the stub when the book runs. The student version
drops every ``solution`` cell (code and markdown), keeps the stubs visible, and clears all
outputs so no solution survives in a stored figure or printout. Its check cells then fail with
"not implemented yet" until the student fills in the stubs.

    python tools/make_student_version.py notebooks/05_exercises.ipynb -o _build/student/

``-o`` is a folder (the notebook keeps its name) or a path ending in ``.ipynb``.
"""

import argparse
import sys
from pathlib import Path

import nbformat

SOLUTION_TAG = "solution"
STUDENT_TAG = "student"
# Tags that only make sense next to a solution: on a student's stub they would hide the cell
# from a site built from the student version.
_BOOK_ONLY_TAGS = {"remove-cell", "hide-input"}


def student_version(notebook):
    """A new notebook: ``notebook`` without solution cells, stubs visible, outputs cleared."""
    result = nbformat.v4.new_notebook(metadata=notebook.metadata, nbformat=notebook.nbformat,
                                      nbformat_minor=notebook.nbformat_minor)
    for cell in notebook.cells:
        tags = list(cell.metadata.get("tags", []))
        if SOLUTION_TAG in tags:
            continue
        cell = nbformat.from_dict(cell)  # a copy: the book's notebook stays as it was
        if STUDENT_TAG in tags:
            cell.metadata["tags"] = [tag for tag in tags if tag not in _BOOK_ONLY_TAGS]
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        result.cells.append(cell)
    return result


def write_student_version(source, output):
    """Read the book notebook ``source``, write its student version to ``output`` (a folder or an
    ``.ipynb`` path); returns the path written. Raises ValueError if ``source`` has no solution
    cells, which almost always means the wrong notebook was given."""
    source, output = Path(source), Path(output)
    notebook = nbformat.read(source, as_version=4)
    if not any(SOLUTION_TAG in cell.metadata.get("tags", []) for cell in notebook.cells):
        raise ValueError(f"{source} has no cells tagged {SOLUTION_TAG!r}: nothing to remove.")
    target = output if output.suffix == ".ipynb" else output / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(student_version(notebook), target)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path, help="book notebooks with solution cells")
    parser.add_argument("-o", "--output", type=Path, default=Path("_build/student"),
                        help="folder for the student versions (default: _build/student)")
    args = parser.parse_args(argv)
    if len(args.notebooks) > 1 and args.output.suffix == ".ipynb":
        parser.error("with several notebooks, -o must be a folder")
    for notebook in args.notebooks:
        try:
            print(write_student_version(notebook, args.output))
        except (OSError, ValueError) as error:
            sys.exit(f"{notebook}: {error}")


if __name__ == "__main__":
    main()
