"""The CUDA-simulator tests run in their own pytest process.

``NUMBA_ENABLE_CUDASIM=1`` must be set before numba is first imported, which the
main test session has already done; ``tests/test_cuda_simulator.py`` starts
``python -m pytest tests/cuda`` with the variable set.  Collected in a session
without it, this directory is skipped.
"""

import os

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    collect_ignore_glob = ["test_*.py"]
