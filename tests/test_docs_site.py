"""The documentation site builds with warnings as errors, and the project's metadata agrees with the package.

The build is the one ``docs/conf.py`` documents (``sphinx-build -W -b html docs
<out>``): broken cross-references, missing images, invalid reStructuredText in a
docstring and autodoc import failures are all warnings, so all fail here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import plrnn_numba

ROOT = Path(__file__).resolve().parents[1]


def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install '.[docs]')")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(ROOT / "docs"),
         str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-5000:]
    html = tmp_path / "html"
    for page in ("index", "api/models", "user_guide", "changelog", "citing"):
        assert (html / f"{page}.html").is_file(), page
    # every public model class has an entry in the API reference
    models = (html / "api" / "models.html").read_text()
    for name in plrnn_numba.models.__all__:
        if isinstance(getattr(plrnn_numba.models, name), type):
            assert f'id="plrnn_numba.models.{name}"' in models, name


def test_citation_and_changelog_name_this_version():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0"
    assert cff["version"] == plrnn_numba.__version__
    assert {"title", "authors", "message", "license"} <= set(cff)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(plrnn_numba.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    assert "## [Unreleased]" in changelog
