"""Dense products over many time steps, shared by the parameter-gradient kernels.

The parameter gradient is one reduction over all (time, batch) pairs, so it is
a tall matrix product; BLAS does it several times faster than a loop.  BLAS
threads, however, are harmful inside numba's threads or next to other busy
processes (a 1 ms product took 50 ms in our measurements), which is why
:func:`plrnn_numba.config.limit_blas_threads` caps the BLAS library numba calls
to one thread by default.
"""

from __future__ import annotations

import numpy as np

from ..config import njit


@njit
def acc_at_b(A, B, out):
    """``out += A^T B`` for ``A`` (N, P) and ``B`` (N, Q), C-contiguous."""
    if A.shape[0] == 0:
        return
    out += np.dot(A.T, B)


@njit
def a_b(A, B):
    """``A @ B`` for ``A`` (N, P) and ``B`` (P, Q), as a new array."""
    if A.shape[0] == 0 or A.shape[1] == 0:
        return np.zeros((A.shape[0], B.shape[1]))
    return np.dot(A, B)
