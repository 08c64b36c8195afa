"""Where the book lives, as _config.yml says: the one source of the repository URL and branch.

Tests compare links against these values instead of typing the URL again:
tests/test_book.py (the built site's Colab buttons), tests/test_repository_links.py (badges,
install cells, README, pyproject) and tests/test_workflows.py (the branch that publishes).
Moving the repository is then an edit of _config.yml, after which these tests list every file
that still names the old place.
"""

import re
from dataclasses import dataclass

import convviz_helpers
import yaml
from toc_files import ROOT

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())

# Colab opens notebooks from GitHub only, so the repository must be a GitHub one.
_GITHUB_URL = re.compile(r"https://github\.com/(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)")


@dataclass(frozen=True)
class Repository:
    url: str  # https://github.com/OWNER/NAME
    owner: str
    name: str
    branch: str  # what Colab links and the publishing workflow use
    colab_url: str  # https://colab.research.google.com

    @property
    def colab_prefix(self):
        """Colab's link to this repository's branch; a notebook's path follows it."""
        return f"{self.colab_url}/github/{self.owner}/{self.name}/blob/{self.branch}/"

    @property
    def tag(self):
        """The release the Colab install cell pins: `v` + the package's version."""
        return f"v{convviz_helpers.__version__}"

    @property
    def install(self):
        """The requirement the Colab set-up cell hands to pip."""
        return f"convviz-helpers @ git+{self.url}@{self.tag}"


def repository():
    section = CONFIG.get("repository") or {}
    url = str(section.get("url", ""))
    match = _GITHUB_URL.fullmatch(url)
    if not match:
        raise ValueError(
            f"_config.yml repository.url should be https://github.com/OWNER/NAME (no trailing "
            f"slash or .git), found {url!r}"
        )
    # Jupyter Book's default branch is master; this book's links all say the branch out loud.
    branch = section.get("branch")
    if not branch:
        raise ValueError("_config.yml repository.branch is missing (Jupyter Book would use master)")
    colab_url = str((CONFIG.get("launch_buttons") or {}).get("colab_url", "")).rstrip("/")
    return Repository(url, match["owner"], match["name"], str(branch), colab_url)
