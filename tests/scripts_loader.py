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
