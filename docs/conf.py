"""Sphinx configuration of the plrnn_numba documentation (``sphinx-build -W -b html docs docs/_build/html``)."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", module="plrnn_numba.config")

import plrnn_numba  # noqa: E402

project = "plrnn_numba"
author = "plrnn_numba developers"
copyright = "2026, plrnn_numba developers"
release = plrnn_numba.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "examples", "generated", "run_page.py", "Thumbs.db", ".DS_Store"]

# MyST: $...$ and $$...$$ math, heading anchors for the pages' cross-links (page.md#section)
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 4

# autodoc + numpydoc: one entry per public name, in the module's __all__ order
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc sections carry the types
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autosummary_generate = False
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "pydata_sphinx_theme"
html_title = "plrnn_numba"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_static_path: list[str] = []
html_last_updated_fmt = None
