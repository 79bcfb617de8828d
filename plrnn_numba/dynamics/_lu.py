r"""Dense LU helpers of SCYFI, written once and compiled for the CPU and for CUDA.

SCYFI's inner step solves :math:`(I - Z) z = b` for a small dense ``Z`` and
estimates the reciprocal condition number of :math:`I - Z` (to skip singular
and ill-conditioned region sequences).  The helpers below are index-only
Python (no NumPy calls, no allocation), so the same source compiles

* for the CPU with ``numba.njit(inline="always")`` (:mod:`.scyfi`, which adds
  a vectorised and a blocked factorisation for larger M), and
* for CUDA with ``numba.cuda.jit(device=True)`` (:mod:`.gpu_scyfi`), where the
  work arrays are slices of per-thread local arrays.

:func:`build_lu` returns the compiled set; helpers call each other through
the closure, so each target gets a self-consistent family.  Both targets use
the same pivot rule (largest modulus in the column, first on ties) and the
same operation order, so they classify the same systems as singular and give
the same solutions up to the rounding of fused multiply-adds.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

# ---- solve statuses (shared by every backend) --------------------------------------
SOLVE_OK = 0
SOLVE_SINGULAR = 1  # zero pivot, or reciprocal condition number below rcond_min
SOLVE_NONFINITE = 2  # Z, b or the solution overflowed


def build_hager(jit, apply):
    r"""Compile Hager's estimate of :math:`\|B\|_1` for an operator B given by its products.

    The algorithm of LAPACK's xLACON (Hager 1984, "Condition estimates"), with
    Higham's alternating-sign vector (Higham 1988, "FORTRAN codes for
    estimating the one-norm of a real or complex matrix, with applications to
    condition estimation"): a lower bound on
    :math:`\|B\|_1` from at most 5 iterations of one product with B and one
    with :math:`B^T`, plus one more product, each O(cost of a product).

    Parameters
    ----------
    jit : decorator
        As for :func:`build_lu`.
    apply : compiled function
        ``apply(A, P, x, transpose)``: ``x <- B x`` (``transpose`` False) or
        ``x <- B^T x`` in place; ``A`` and ``P`` are the operator's data, passed
        through (for :math:`B = A^{-1}`: the LU factors and pivots).

    Returns
    -------
    compiled function
        ``estimate(A, P, n, x, y) -> float`` for B of size n x n; ``x``, ``y``:
        work vectors of length n.
    """

    @jit
    def estimate(A, P, n, x, y):
        for i in range(n):
            x[i] = 1.0 / n
        est = 0.0
        for it in range(5):
            for i in range(n):
                y[i] = x[i]
            apply(A, P, y, False)
            new = 0.0
            for i in range(n):
                new += abs(y[i])
            if it > 0 and new <= est:
                break
            est = new
            # x <- B^T sign(y), keeping the previous x in y for the convergence test
            for i in range(n):
                s = 1.0 if y[i] >= 0.0 else -1.0
                y[i] = x[i]
                x[i] = s
            apply(A, P, x, True)
            jmax = 0
            zmax = -1.0
            dot = 0.0
            for i in range(n):
                dot += x[i] * y[i]
                if abs(x[i]) > zmax:
                    zmax = abs(x[i])
                    jmax = i
            if zmax <= dot:
                break
            for i in range(n):
                x[i] = 0.0
            x[jmax] = 1.0
        # Higham's extra vector x_i = (-1)^i (1 + i / (n - 1))
        for i in range(n):
            sgn = 1.0 if i % 2 == 0 else -1.0
            y[i] = sgn * (1.0 + (i / (n - 1.0) if n > 1 else 0.0))
        apply(A, P, y, False)
        alt = 0.0
        for i in range(n):
            alt += abs(y[i])
        alt = 2.0 * alt / (3.0 * n)
        return est if est > alt else alt

    return estimate


def build_lu(jit, make_large=None, small_dim: int = 0) -> SimpleNamespace:
    """Compile the LU helpers with ``jit``.

    Parameters
    ----------
    jit : decorator
        ``numba.njit(...)`` (CPU) or ``numba.cuda.jit(device=True)`` (CUDA).
    make_large : callable, optional
        ``make_large(pivot) -> factor`` builds the ``factor(LU, piv) -> bool`` used
        for ``n > small_dim`` from this build's ``pivot`` (the CPU passes a
        vectorised / blocked variant); by default the index-only one serves all n.
    small_dim : int
        Largest dimension factorised by the index-only loops when
        ``make_large`` is given.

    Returns
    -------
    SimpleNamespace
        ``pivot(LU, piv, col)``, ``factor(LU, piv)``, ``solve(LU, piv, x)``, ``solve_t(LU, piv, x)``,
        ``inv_norm1_estimate(LU, piv, x, y)`` and
        ``solve_shifted(Z, b, rcond_min, z, LU, t, u, piv) -> status``.
    """

    @jit
    def pivot(LU, piv, col):
        # Partial pivoting at step `col`: the row of largest modulus in column `col`
        # (the first on ties) is swapped with row `col` (whole rows; LAPACK getrf
        # convention, piv[col] = that row).  False if the column is zero.
        n = LU.shape[0]
        p = col
        amax = abs(LU[col, col])
        for r in range(col + 1, n):
            v = abs(LU[r, col])
            if v > amax:
                amax = v
                p = r
        piv[col] = p
        if amax == 0.0:
            return False
        if p != col:
            for j in range(n):
                tmp = LU[col, j]
                LU[col, j] = LU[p, j]
                LU[p, j] = tmp
        return True

    @jit
    def factor_small(LU, piv):
        # In-place LU with partial pivoting, P A = L U.  False on a zero pivot.
        n = LU.shape[0]
        for col in range(n):
            if not pivot(LU, piv, col):
                return False
            inv = 1.0 / LU[col, col]
            for r in range(col + 1, n):
                l = LU[r, col] * inv
                LU[r, col] = l
                for j in range(col + 1, n):
                    LU[r, j] -= l * LU[col, j]
        return True

    big = factor_small if make_large is None else make_large(pivot)

    @jit
    def factor(LU, piv):
        if LU.shape[0] > small_dim:
            return big(LU, piv)
        return factor_small(LU, piv)

    @jit
    def solve(LU, piv, x):
        # x <- A^{-1} x
        n = LU.shape[0]
        for col in range(n):
            p = piv[col]
            if p != col:
                tmp = x[col]
                x[col] = x[p]
                x[p] = tmp
        for i in range(n):
            acc = x[i]
            for j in range(i):
                acc -= LU[i, j] * x[j]
            x[i] = acc
        for i in range(n - 1, -1, -1):
            acc = x[i]
            for j in range(i + 1, n):
                acc -= LU[i, j] * x[j]
            x[i] = acc / LU[i, i]

    @jit
    def solve_t(LU, piv, x):
        # x <- A^{-T} x, with A^T = U^T L^T P:  U^T w = x, L^T v = w, x = P^T v
        # (column-oriented updates, so the inner loops run along rows of LU)
        n = LU.shape[0]
        for i in range(n):
            x[i] /= LU[i, i]
            xi = x[i]
            for j in range(i + 1, n):
                x[j] -= LU[i, j] * xi
        for i in range(n - 1, -1, -1):
            xi = x[i]
            for j in range(i):
                x[j] -= LU[i, j] * xi
        for col in range(n - 1, -1, -1):
            p = piv[col]
            if p != col:
                tmp = x[col]
                x[col] = x[p]
                x[p] = tmp

    @jit
    def apply_inverse(LU, piv, x, transpose):
        # x <- A^{-1} x or A^{-T} x: the operator whose norm inv_norm1_estimate estimates
        if transpose:
            solve_t(LU, piv, x)
        else:
            solve(LU, piv, x)

    hager = build_hager(jit, apply_inverse)

    @jit
    def inv_norm1_estimate(LU, piv, x, y):
        # Hager's estimate of ||A^{-1}||_1; x, y: work vectors (n)
        return hager(LU, piv, LU.shape[0], x, y)

    @jit
    def solve_shifted(Z, b, rcond_min, z, LU, t, u, piv):
        # z <- (I - Z)^{-1} b with the status of the solve; t, u: work vectors (n).
        M = z.shape[0]
        # LU = I - Z and its 1-norm (largest column sum)
        for j in range(M):
            u[j] = 0.0
        finite = True
        for i in range(M):
            for j in range(M):
                v = -Z[i, j]
                if i == j:
                    v += 1.0
                LU[i, j] = v
                u[j] += abs(v)
            if not math.isfinite(b[i]):
                finite = False
        anorm = 0.0
        for j in range(M):
            if u[j] > anorm:
                anorm = u[j]
        if not (finite and math.isfinite(anorm)):
            return SOLVE_NONFINITE
        if not factor(LU, piv):
            return SOLVE_SINGULAR
        for i in range(M):
            z[i] = b[i]
        solve(LU, piv, z)
        for i in range(M):
            if not math.isfinite(z[i]):
                return SOLVE_NONFINITE
        est = inv_norm1_estimate(LU, piv, t, u)
        # rcond = 1 / (||I - Z||_1 ||(I - Z)^-1||_1) below rcond_min (or NaN): singular
        if not (est * anorm * rcond_min < 1.0):
            return SOLVE_SINGULAR
        return SOLVE_OK

    return SimpleNamespace(
        pivot=pivot,
        factor=factor,
        factor_small=factor_small,
        solve=solve,
        solve_t=solve_t,
        inv_norm1_estimate=inv_norm1_estimate,
        solve_shifted=solve_shifted,
    )
