"""Small dense linear-algebra helpers shared by the model kernels.

Matrix products inside kernels go through these helpers rather than straight
to ``np.dot``: for the small matrices of typical RNNs a plain loop that
vectorises over the contiguous axis is as fast as BLAS and free of its call
overhead and of BLAS threads (which, inside numba's threads or next to other
processes, can make a 1 ms product take 50 ms).  Above ``BLAS_MIN_SIZE``
output entries the helpers call BLAS.
"""

from __future__ import annotations

import numpy as np

from ..config import njit

#: output entries (rows x columns) from which BLAS pays off.
BLAS_MIN_SIZE = 48 * 48


@njit
def acc_at_b(A, B, out):
    """``out += A^T B`` for ``A`` (N, P) and ``B`` (N, Q), all C-contiguous."""
    N, P = A.shape
    Q = B.shape[1]
    if P * Q >= BLAS_MIN_SIZE:
        out += np.dot(A.T, B)
        return
    for n in range(N):
        bn = B[n]
        for i in range(P):
            a = A[n, i]
            if a != 0.0:
                oi = out[i]
                for j in range(Q):
                    oi[j] += a * bn[j]


@njit
def a_b(A, B):
    """``A @ B`` for ``A`` (N, P) and ``B`` (P, Q) C-contiguous (a new array)."""
    N, P = A.shape
    Q = B.shape[1]
    if P * Q >= BLAS_MIN_SIZE:
        return np.dot(A, B)
    out = np.zeros((N, Q))
    for n in range(N):
        on = out[n]
        for p in range(P):
            a = A[n, p]
            if a != 0.0:
                bp = B[p]
                for j in range(Q):
                    on[j] += a * bp[j]
    return out
