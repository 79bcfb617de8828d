"""Run the python examples of documentation pages in place, to regenerate their figures.

    python docs/run_page.py docs/tutorials/lorenz_gtf.md [more pages ...]

The examples run exactly as the test suite runs them (the same sybil parsers,
skip markers and scratch working directory, one namespace per page), except
that the scratch directory's ``figures/`` links to docs/figures, so a figure an
example saves as ``figures/name.png`` replaces the one the page shows.  Files an
example writes elsewhere are removed afterwards.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from sybil import Sybil  # noqa: E402

from conftest import MARKDOWN_PARSERS, _enter_scratch, _leave_scratch  # noqa: E402  (the test suite's own)


def run_page(page: Path) -> None:
    """Evaluate every example of ``page`` in a scratch directory whose ``figures/`` links to docs/figures."""
    document = Sybil(parsers=MARKDOWN_PARSERS).parse(page)
    _enter_scratch(document.namespace, figures=str(DOCS / "figures"))
    try:
        examples = list(document.examples())
        for example in examples:
            example.evaluate()
        print(f"{page}: {len(examples)} examples ran")
    finally:
        _leave_scratch(document.namespace)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for arg in sys.argv[1:]:
        run_page(Path(arg).resolve())
