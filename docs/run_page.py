"""Run the python examples of documentation pages in place, to regenerate their figures.

    python docs/run_page.py docs/tutorials/lorenz_gtf.md [more pages ...]

The examples run exactly as the test suite runs them (the same sybil parsers
and skip markers, one namespace per page), but with ``docs/`` as the working
directory, so a figure an example saves as ``figures/name.png`` replaces the
one the page shows.  Files an example writes elsewhere are removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from sybil import Sybil  # noqa: E402
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser  # noqa: E402

from conftest import FLAGS  # noqa: E402  (the test suite's parser options)


def run_page(page: Path) -> None:
    """Evaluate every example of ``page`` with a scratch directory whose ``figures/`` is docs/figures."""
    import matplotlib

    matplotlib.use("Agg")
    here = os.getcwd()
    scratch = Path(tempfile.mkdtemp(prefix="plrnn_numba_page_"))
    (scratch / "figures").symlink_to(DOCS / "figures", target_is_directory=True)
    os.chdir(scratch)
    try:
        document = Sybil(parsers=[PythonCodeBlockParser(doctest_optionflags=FLAGS), SkipParser()]).parse(page)
        for example in document.examples():
            example.evaluate()
        print(f"{page}: {len(list(document.examples()))} examples ran")
    finally:
        os.chdir(here)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        run_page(Path(arg).resolve())
