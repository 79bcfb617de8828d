"""Import a reproduction script from ``scripts/`` as a module, for the tests that run it at small sizes."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

SCRIPTS = str(Path(__file__).resolve().parents[1] / "scripts")


def load_script(name: str):
    """The module ``scripts/<name>.py`` (its ``main(argv)`` runs it as the command line would)."""
    sys.path.insert(0, SCRIPTS)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(SCRIPTS)


def run_script(name: str, tmp_path, *argv):
    """Run ``scripts/<name>.py`` serially into ``tmp_path``; its result Dataset, checked for the common parts.

    Every point must have succeeded, the PNG must exist and the ``script``
    attribute must name the script.
    """
    import numpy as np

    from plrnn_numba import io

    out = tmp_path / f"{name}.nc"
    assert load_script(name).main([*argv, "--backend", "serial", "--no-progress", "--out", str(out)]) == 0
    assert out.with_suffix(".png").exists()
    ds = io.open(out)
    assert np.all(ds["error"] == ""), ds["error"].values
    assert f"{name}.py" in ds.attrs["script"]
    return ds
