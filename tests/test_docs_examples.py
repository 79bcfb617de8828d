"""Examples in the documentation run as written.

Every ``python`` code block that follows the line ``<!-- example: tested -->`` in
README.md or docs/*.md is executed, each in a fresh namespace, in a temporary
working directory (examples may write files).  A failing example fails here with
its file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARK = "<!-- example: tested -->"
_BLOCK = re.compile(r"^" + re.escape(MARK) + r"\s*\n```python\n(.*?)^```", re.S | re.M)


def _examples():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        for m in _BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 3
            yield pytest.param(path, line, m.group(1), id=f"{path.relative_to(ROOT)}:{line}")


EXAMPLES = list(_examples())


def test_examples_are_found():
    assert len(EXAMPLES) >= 3
    # every marker is followed by a python block (a typo in the fence would silently skip it)
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        assert text.count(MARK) == len(_BLOCK.findall(text)), path


@pytest.mark.parametrize("path, line, code", EXAMPLES)
def test_example_runs(path, line, code, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{path.name}:{line}", "exec"), {"__name__": "__docs_example__"})
    import matplotlib.pyplot as plt

    plt.close("all")
