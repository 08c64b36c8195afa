"""_toc.yml and the files on disk agree, so no chapter is silently left out of the book or nbval."""

from toc_files import ROOT, resolve, toc_entries


def _notebooks_on_disk():
    return sorted(
        p.relative_to(ROOT).with_suffix("").as_posix()
        for p in (ROOT / "notebooks").rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts
    )


def test_every_toc_entry_exists():
    missing = [entry for entry in toc_entries() if resolve(entry) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_every_notebook_is_in_the_toc():
    listed = {str(entry).removesuffix(".ipynb") for entry in toc_entries()}
    unlisted = [nb for nb in _notebooks_on_disk() if nb not in listed]
    assert not unlisted, (
        f"Notebooks missing from _toc.yml (neither built nor run by nbval): {unlisted}"
    )


def test_no_entry_twice():
    entries = [str(entry).removesuffix(".ipynb").removesuffix(".md") for entry in toc_entries()]
    assert len(entries) == len(set(entries)), f"_toc.yml lists a file twice: {entries}"
