r"""The CPU build of SCYFI's dense LU helpers, with the blocked variants that use BLAS.

:mod:`._lu` holds the index-only helpers shared with CUDA; here they are
compiled for the CPU (:data:`LU`), with a factorisation for larger systems
that LLVM can vectorise (row views) and, from ``config.SCYFI_BLOCKED_LU_DIM``
on, a blocked one whose trailing updates are matrix products (BLAS).
:func:`solve_many` solves with many right-hand sides at once, blocked the
same way; the low-rank solves of :mod:`._low_rank` use it to apply the
inverse of a factorised region to all columns of ``R``.

Small systems (the common case: M of 2 to a few tens) are dominated by
per-call overheads, so the shared helpers index arrays directly and are
inlined into the solve.  Hand-written rather than LAPACK so that the kernel
keeps the factors for the condition estimate and the same code runs on CUDA.
"""

from __future__ import annotations

import numpy as np

from .. import config
from ._lu import build_lu

__all__ = ["LU", "solve_many", "solve_upper_many"]


@config.njit
def _subtract_product(dst, r0, c0, A, B):
    # dst[r0:r0 + m, c0:c0 + n] -= A @ B through BLAS (A (m, w) and B (w, n) contiguous).
    # Explicit loops around np.dot: numba's slice arithmetic (`dst[a:, b:] -= ...`) cost
    # ~10 s of compile time.
    upd = np.dot(A, B)
    for i in range(upd.shape[0]):
        for j in range(upd.shape[1]):
            dst[r0 + i, c0 + j] -= upd[i, j]


@config.njit
def _copy_block(src, r0, c0, m, n):
    # a contiguous copy of src[r0:r0 + m, c0:c0 + n] (np.dot wants contiguous operands)
    out = np.empty((m, n), src.dtype)
    for i in range(m):
        for j in range(n):
            out[i, j] = src[r0 + i, c0 + j]
    return out


def _cpu_factors(pivot):
    """The CPU's LU for n > SCYFI_SMALL_DIM: row views (vectorised updates), blocked from SCYFI_BLOCKED_LU_DIM on.

    Same pivots (``pivot`` from :mod:`._lu`) and operations as the index-only
    version; built from ``pivot`` so that the shared code is written once.
    """

    @config.njit  # not inlined: large, and only used from M = SCYFI_BLOCKED_LU_DIM on
    def blocked(LU, piv):
        # Right-looking blocked LU (the getrf algorithm): factor a panel of SCYFI_LU_BLOCK
        # columns with row interchanges of whole rows, solve for the block row of U,
        # then update the trailing matrix with one matrix product (BLAS), which is
        # where nearly all the flops go.  About 3x the unblocked loops at M = 200.
        n = LU.shape[0]
        nb = config.SCYFI_LU_BLOCK
        for j0 in range(0, n, nb):
            j1 = min(j0 + nb, n)
            for col in range(j0, j1):
                if not pivot(LU, piv, col):
                    return False
                inv = 1.0 / LU[col, col]
                Uc = LU[col, col + 1 : j1]
                for r in range(col + 1, n):
                    l = LU[r, col] * inv
                    LU[r, col] = l
                    if l != 0.0:
                        Lr = LU[r, col + 1 : j1]
                        for j in range(Lr.shape[0]):
                            Lr[j] -= l * Uc[j]
            if j1 < n:
                # U12 = L11^{-1} A12 (unit lower triangular, rows j0..j1-1)
                for i in range(j0, j1):
                    Ui = LU[i, j1:]
                    for r in range(i + 1, j1):
                        l = LU[r, i]
                        if l != 0.0:
                            Ur = LU[r, j1:]
                            for j in range(Ur.shape[0]):
                                Ur[j] -= l * Ui[j]
                # A22 -= L21 U12
                m = n - j1
                w = j1 - j0
                _subtract_product(LU, j1, j1, _copy_block(LU, j1, j0, m, w), _copy_block(LU, j0, j1, w, m))
        return True

    @config.njit  # not inlined: a call costs nothing next to an LU of n > SCYFI_SMALL_DIM
    def rows(LU, piv):
        n = LU.shape[0]
        if n >= config.SCYFI_BLOCKED_LU_DIM:
            return blocked(LU, piv)
        for col in range(n):
            if not pivot(LU, piv, col):
                return False
            inv = 1.0 / LU[col, col]
            Uc = LU[col, col + 1 :]
            for r in range(col + 1, n):
                l = LU[r, col] * inv
                LU[r, col] = l
                if l != 0.0:
                    Lr = LU[r, col + 1 :]
                    for j in range(Lr.shape[0]):
                        Lr[j] -= l * Uc[j]
        return True

    return rows


#: the CPU build of the shared LU helpers (see :mod:`._lu`).
LU = build_lu(config.njit(inline="always"), make_large=_cpu_factors, small_dim=config.SCYFI_SMALL_DIM)


@config.njit
def solve_many(LU, piv, X):
    r"""Overwrite ``X`` (n, m) with :math:`A^{-1} X`, for the factors ``P A = L U`` in ``LU``, ``piv``.

    Block rows of ``config.SCYFI_LU_BLOCK``: the diagonal blocks by row
    operations (contiguous rows of X, vectorised), the rest by matrix products
    (BLAS), so that nearly all of the :math:`2 n^2 m` flops run at BLAS speed.
    """
    n = LU.shape[0]
    nb = config.SCYFI_LU_BLOCK
    m = X.shape[1]
    # the row interchanges, in factorisation order
    for col in range(n):
        p = piv[col]
        if p != col:
            for j in range(m):
                tmp = X[col, j]
                X[col, j] = X[p, j]
                X[p, j] = tmp
    # L Y = P X, unit lower triangular, block row by block row
    for j0 in range(0, n, nb):
        j1 = min(j0 + nb, n)
        for i in range(j0 + 1, j1):
            Xi = X[i]
            for r in range(j0, i):
                l = LU[i, r]
                if l != 0.0:
                    Xr = X[r]
                    for j in range(m):
                        Xi[j] -= l * Xr[j]
        if j1 < n:
            _subtract_product(X, j1, 0, _copy_block(LU, j1, j0, n - j1, j1 - j0), X[j0:j1])
    # U X = Y, from the last block row up
    solve_upper_many(LU, X)


@config.njit
def solve_upper_many(U, X):
    r"""Overwrite ``X`` (n, m) with :math:`U^{-1} X` for the upper triangle of ``U`` (n, n).

    Back substitution by block rows of ``config.SCYFI_LU_BLOCK`` from the last
    one up: each diagonal block by row operations on contiguous rows of X, the
    rows above it by one matrix product (BLAS).  Entries of ``U`` below the
    diagonal are not read (an LU factorisation's L may sit there).
    """
    n = U.shape[0]
    nb = config.SCYFI_LU_BLOCK
    m = X.shape[1]
    for j1 in range(n, 0, -nb):
        j0 = max(j1 - nb, 0)
        for i in range(j1 - 1, j0 - 1, -1):
            Xi = X[i]
            for r in range(i + 1, j1):
                u = U[i, r]
                if u != 0.0:
                    Xr = X[r]
                    for j in range(m):
                        Xi[j] -= u * Xr[j]
            inv = 1.0 / U[i, i]
            for j in range(m):
                Xi[j] *= inv
        if j0 > 0:
            _subtract_product(X, 0, 0, _copy_block(U, 0, j0, j0, j1 - j0), X[j0:j1])
