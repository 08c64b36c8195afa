"""No module of the package over about 400 lines (issue 21): a module that grows past it
is doing more than one job; split it by job, as ``data/``, ``export/`` and ``filters/`` are."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "convviz_helpers"
LIMIT = 400


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(ROOT)): count for path in sorted(ROOT.rglob("*.py"))
            if (count := len(path.read_text().splitlines())) > LIMIT}
    assert not long, f"Modules over {LIMIT} lines (split each by job): {long}"
