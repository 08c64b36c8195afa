"""Every place that names the repository or the release agrees with _config.yml and the package.

The URL and the install tag are typed by hand into each notebook's badge and hidden install
cell, the README, the set-up page and pyproject.toml. A reader on Colab follows those, not
_config.yml, so a moved repository or a new version must not leave one behind: these tests
read every such place (notebook sources from their JSON, no kernel) and compare it with
_config.yml's repository.url / repository.branch and `v` + convviz_helpers.__version__.
"""

import json
import re
import tomllib

import pytest
from book_config import Repository, repository
from toc_files import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

# pip's `git+URL@REF`, Colab's `.../github/OWNER/NAME/blob/BRANCH/PATH`, `git clone URL`, and any
# other github.com link (a Colab link says /github/, not github.com, so it is not one of those).
GIT_INSTALL = re.compile(r"git\+(?P<url>https?://[^\s@\"'`]+?)(?:\.git)?@(?P<ref>[^\s\"'`#)\]]+)")
COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/(?P<owner>[^/\s]+)/(?P<name>[^/\s]+)"
    r"/blob/(?P<branch>[^/\s]+)/(?P<path>[^\s)\"'`]+)"
)
GIT_CLONE = re.compile(r"git clone (?P<url>\S+)")
GITHUB_LINK = re.compile(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)")


def _notebook_text(path):
    """The notebook's cell sources (outputs are data, not links a reader follows)."""
    cells = json.loads(path.read_text())["cells"]
    return "\n".join("".join(cell.get("source", "")) for cell in cells)


def _project_texts():
    """{file: text} of everything that talks to readers or to pip about this repository.

    book/references.bib is left out on purpose: it cites other people's repositories.
    """
    texts = {name: (ROOT / name).read_text() for name in ("README.md", "CONTRIBUTING.md", "pyproject.toml")}
    texts.update({p.relative_to(ROOT).as_posix(): p.read_text() for p in sorted((ROOT / "book").glob("*.md"))})
    texts.update({p.relative_to(ROOT).as_posix(): _notebook_text(p) for p in NOTEBOOKS})
    return texts


def disagreements(texts, repo: Repository):
    """Every link or install line in `texts` ({file: text}) that names another place or tag.

    A function of its inputs, so that test_a_stale_link_is_caught can show it failing.
    """
    found = []
    for name, text in texts.items():
        checked = set()  # where a URL was already judged as an install or a clone: one report each
        for m in GIT_INSTALL.finditer(text):
            checked.add(m.start("url"))
            ref = m["ref"].rstrip(".,;:")  # a sentence may end right after the tag
            if m["url"] != repo.url or ref != repo.tag:
                found.append(f"{name}: installs git+{m['url']}@{ref}, expected git+{repo.url}@{repo.tag}")
        for m in COLAB_LINK.finditer(text):
            if (m["owner"], m["name"], m["branch"]) != (repo.owner, repo.name, repo.branch):
                found.append(
                    f"{name}: Colab link to {m['owner']}/{m['name']} on {m['branch']}, expected "
                    f"{repo.owner}/{repo.name} on {repo.branch}"
                )
        for m in GIT_CLONE.finditer(text):
            checked.add(m.start("url"))
            if m["url"].removesuffix(".git") != repo.url:
                found.append(f"{name}: clones {m['url']}, expected {repo.url}")
        # Links to other projects on GitHub are fine; a link that shares this repository's owner
        # or name but not both is a leftover from a move or a typo.
        for m in GITHUB_LINK.finditer(text):
            if m.start() in checked:
                continue
            link_name = m["name"].removesuffix(".git")
            ours = (m["owner"], link_name) == (repo.owner, repo.name)
            if not ours and (m["owner"] == repo.owner or link_name == repo.name):
                found.append(f"{name}: links {m.group(0)}, expected {repo.url}")
    return found


@pytest.fixture(scope="module")
def repo():
    return repository()


def test_config_names_the_repository_and_branch():
    # Raises with the reason when the URL is not a GitHub repository or the branch is missing.
    repo = repository()
    assert repo.colab_url == "https://colab.research.google.com", (
        f"_config.yml launch_buttons.colab_url is {repo.colab_url!r}"
    )


def test_every_link_and_install_line_agrees_with_config(repo):
    texts = _project_texts()
    found = disagreements(texts, repo)
    assert not found, (
        "These disagree with _config.yml (repository.url / repository.branch) or with the "
        f"package version ({repo.tag}):\n  " + "\n  ".join(found)
    )
    # The scan must have seen what it checks, or a pattern that matches nothing would pass.
    installs = sum(len(GIT_INSTALL.findall(t)) for t in texts.values())
    assert installs >= len(NOTEBOOKS) + 1, f"only {installs} install lines found"


def test_a_stale_link_is_caught(repo):
    # The check above, fed what a half-finished move or release leaves behind.
    stale = {
        "old-install": f"pip install 'convviz-helpers @ git+https://github.com/someone/{repo.name}@{repo.tag}'",
        "old-tag": f"pip install 'convviz-helpers @ git+{repo.url}@v0.0.0-old'",
        "old-branch": f"{repo.colab_url}/github/{repo.owner}/{repo.name}/blob/master/notebooks/x.ipynb",
        "old-clone": f"git clone https://github.com/{repo.owner}/old-name",
        "old-link": f"[issues](https://github.com/someone/{repo.name}/issues)",
    }
    found = disagreements(stale, repo)
    assert [line.split(":")[0] for line in found] == list(stale), found  # each once, in order
    assert not disagreements({"good": f"git+{repo.url}@{repo.tag} {repo.colab_prefix}a.ipynb"}, repo)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_badge_opens_this_notebook(path, repo):
    cells = json.loads(path.read_text())["cells"]
    expected = repo.colab_prefix + path.relative_to(ROOT).as_posix()
    first = "".join(cells[0].get("source", ""))
    assert expected in first, f"{path.name}: the first cell's Open in Colab badge should link {expected}"
    # Any other Colab link in the chapter opens this same notebook too.
    others = {m.group(0) for m in COLAB_LINK.finditer(_notebook_text(path))} - {expected}
    assert not others, f"{path.name}: Colab links that open another notebook: {sorted(others)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_hidden_install_cell_installs_this_release(path, repo):
    cells = json.loads(path.read_text())["cells"]
    setup = [c for c in cells if c["cell_type"] == "code" and "google.colab" in "".join(c["source"])]
    assert setup, f"{path.name}: no Colab set-up cell"
    assert repo.install in "".join(setup[0]["source"]), (
        f"{path.name}: the Colab set-up cell should install {repo.install!r}"
    )


def test_readme_gives_the_install_line(repo):
    # README's "On Colab" section shows what the hidden cell does; readers copy it.
    assert repo.install.split(" @ ", 1)[1] in (ROOT / "README.md").read_text()


def test_pyproject_urls_point_at_the_repository(repo):
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls.get("Homepage") == repo.url, urls
    elsewhere = {k: v for k, v in urls.items() if v != repo.url and not v.startswith(repo.url + "/")}
    assert not elsewhere, f"pyproject.toml [project.urls] outside {repo.url}: {elsewhere}"


def test_install_tag_is_the_package_version(repo):
    import convviz_helpers

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert repo.tag == f"v{convviz_helpers.__version__}" == f"v{version}"
