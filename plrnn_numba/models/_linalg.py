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

from .. import config
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
        return np.zeros((A.shape[0], B.shape[1]), A.dtype)
    return np.dot(A, B)


@njit(inline="always")
def use_blas(n, rows):
    """Whether a step's product of ``rows`` state rows with an ``n x n`` matrix goes to BLAS.

    From ``config.BLAS_MIN_DIM`` units, or from 16 units with a batch of
    ``config.BLAS_MIN_BATCH`` rows; below, loops over the rows avoid the call
    overhead.  A single row always runs as loops: one row times a square
    matrix is a matrix-vector product, which a loop of contiguous dot products
    does faster than OpenBLAS's GEMM call with its copies at every size
    measured (N = 32..512: 0.43 against 0.55-0.69 us at N = 80, 19.6 against
    22.8-24.0 us at N = 512, one thread, both OpenBLAS kernel sets).
    """
    return rows >= 2 and (n >= config.BLAS_MIN_DIM or (rows >= config.BLAS_MIN_BATCH and n >= 16))


#: from this many output rows of ``W`` (and a smaller batch) :func:`rows_times_transpose` runs
#: ``W (M, N) @ R^T (N, B)``: OpenBLAS's kernels run a square matrix times a narrow contiguous
#: block at 1.4-2.7x the speed of the narrow block times a square matrix (measured at B = 16,
#: N = 128 and 256, with the Haswell and the SkylakeX kernels)
COLUMN_MIN_DIM = 64


@njit(inline="always")
def rows_times_transpose(R, W, WT):
    """``R @ W^T`` (B, M) for ``R`` (B, N) and ``W`` (M, N), given also ``WT = W^T`` contiguous."""
    if W.shape[0] >= COLUMN_MIN_DIM and R.shape[0] < W.shape[0]:
        return np.ascontiguousarray(np.dot(W, np.ascontiguousarray(R.T)).T)
    return np.dot(R, WT)
