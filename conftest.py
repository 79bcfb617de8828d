"""Documentation examples are tests, collected by sybil.

* Every ``python`` code block in README.md and docs/**/*.md runs, in page
  order, in one namespace per page, inside a fresh temporary working directory
  (with an empty ``figures/`` folder) so that examples may write files.  A block
  that needs a GPU or minutes of compute is preceded by
  ``<!-- skip: next "reason" -->``.
* The ``>>>`` examples in the package's docstrings run as doctests (ELLIPSIS
  and NORMALIZE_WHITESPACE), in the namespace of their module.

``pytest`` collects them because setup.cfg lists README.md, docs and
plrnn_numba in ``testpaths``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser
from sybil.parsers.rest import DocTestParser

FLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


def _enter_scratch(namespace: dict, figures: str | None = None) -> None:
    """Run a page's examples in a new temporary directory whose ``figures/`` is empty, or a link to ``figures``."""
    import matplotlib

    matplotlib.use("Agg")
    namespace["_docs_cwd"] = os.getcwd()
    namespace["_docs_tmp"] = tmp = tempfile.mkdtemp(prefix="plrnn_numba_docs_")
    if figures is None:
        os.makedirs(os.path.join(tmp, "figures"))
    else:
        os.symlink(figures, os.path.join(tmp, "figures"), target_is_directory=True)
    os.chdir(tmp)


def _leave_scratch(namespace: dict) -> None:
    """Close the figures, go back to the working directory and remove the scratch directory (not a linked one)."""
    import matplotlib.pyplot as plt

    plt.close("all")
    os.chdir(namespace["_docs_cwd"])
    shutil.rmtree(namespace["_docs_tmp"], ignore_errors=True)


MARKDOWN_PARSERS = [PythonCodeBlockParser(doctest_optionflags=FLAGS), SkipParser()]

markdown_examples = Sybil(
    parsers=MARKDOWN_PARSERS,
    patterns=["*.md"],
    excludes=["_build/*"],
    setup=_enter_scratch,
    teardown=_leave_scratch,
    name="docs",
)
docstring_examples = Sybil(
    parsers=[DocTestParser(optionflags=FLAGS)],
    patterns=["*.py"],
    path="plrnn_numba",
    setup=_enter_scratch,
    teardown=_leave_scratch,
    name="docstrings",
)

pytest_collect_file = (markdown_examples + docstring_examples).pytest()
