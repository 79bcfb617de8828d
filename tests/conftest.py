"""Fixtures shared by the test modules."""

from __future__ import annotations

import signal

import pytest


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler for the test, whatever this process inherited.

    A process started in the background by a non-interactive shell (``cmd &``,
    ``nohup``) inherits SIGINT ignored, and Python then leaves it ignored: a
    Ctrl-C test run that way would see no KeyboardInterrupt at all.
    """
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)
