r"""SCYFI: exact fixed points and k-cycles of piecewise-linear RNNs (CPU, numba).

Inside a linear region with pattern :math:`d` a PLRNN-family map is affine,
:math:`z' = F(d)\,z + c(d)` (see :mod:`._piecewise`).  A k-cycle visits a
sequence of regions :math:`d_1, \dots, d_k`; through them the k-fold map is

.. math::

    F^k(z) = Z z + b, \qquad Z = F_k \cdots F_1, \qquad
    b = c_k + F_k c_{k-1} + \dots + F_k \cdots F_2\, c_1 ,

so the only candidate cycle point for that sequence solves the linear system
:math:`(I - Z) z = b`.  SCYFI (Eisenmann, Monfared, Göring & Durstewitz) searches
the :math:`2^{Pk}` sequences heuristically, per order k:

1. start from a random candidate sequence;
2. solve :math:`(I - Z) z_1 = b` (singular or ill-conditioned systems are skipped
   and counted), roll :math:`z_1` forward with the *true* map and read the
   patterns :math:`d'_j` it actually visits;
3. if :math:`d' = d` the point is a true k-cycle: keep it unless its pattern
   sequence has a shorter period (then it is a lower-order cycle) or it is a
   cyclic shift of a cycle already found; then start again from a fresh random
   candidate;
4. otherwise jump: the next candidate is :math:`d'`.  If the jumps return to a
   candidate already tried since the last random start (a loop of the jump
   dynamics, which would repeat forever) draw a fresh random candidate;
5. an outer loop of ``n_outer`` random restarts, each with at most ``n_inner``
   solves; **both counters reset to zero whenever a new cycle is found**, so a
   search ends after about ``n_outer * n_inner`` solves without a discovery.

The hot loop (region maps, k-fold products, LU solves, roll-outs, duplicate
checks) is one numba kernel per order; random numbers are drawn with NumPy and
passed in.  The linear algebra of one candidate is the separate kernel
:func:`solve_region_sequence`, which takes the per-region factors and offsets
(so a batched or GPU version can reuse it unchanged).

Every returned cycle is verified with the true map (and refined by one Newton
step if needed) before it is returned.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import xarray as xr
from numba import types

from .. import _validate as V
from .. import config, io
from ._cycles import Cycle, build_dataset, finish_cycles, verify_and_refine
from ._piecewise import REGIONS_TYPE, ROLLOUT_TYPE, PiecewiseLinearSystem, as_system, check_order

__all__ = ["scyfi", "solve_region_sequence", "default_counters", "realised_pattern_pool"]

#: matrix products with at least this many output entries go to BLAS (below: loops).
BLAS_MIN_SIZE = 48 * 48

# ---- search-state vector layout (int64), shared by the kernel and the driver --------
S_OUTER = 0  # outer-loop counter (random restarts without a discovery)
S_INNER = 1  # inner-loop counter (solves since the last restart)
S_SOLVES = 2  # solves attempted
S_SINGULAR = 3  # solves skipped: singular / ill-conditioned / non-finite
S_FOUND = 4  # cycles stored in the found_* arrays
S_FRESH_POS = 5  # next unused entry of the fresh-candidate buffer
S_N_OUT = 6  # n_outer
S_N_IN = 7  # n_inner
S_MAX_SOLVES = 8  # cap on S_SOLVES (-1: none)
S_NEED_NEW = 9  # 1: the next candidate must be a fresh random one
S_SINCE = 10  # solves since the last discovery
S_INEXACT = 11  # consistent candidates whose closure residual was too large
S_LOWER = 12  # consistent candidates with a shorter period (lower-order cycles)
S_DUP = 13  # consistent candidates that were a known cycle
S_LOOPS = 14  # jump sequences that returned to an earlier candidate
S_HCOUNT = 15  # candidates hashed since the last fresh start
N_STATE = 16

# ---- kernel return codes ---------------------------------------------------------------
DONE = 0  # the loop counters ran out
NEED_FRESH = 1  # the fresh-candidate buffer is used up (driver refills, calls again)
FULL = 2  # the found-cycle buffers are full (driver grows them, calls again)
LIMIT = 3  # max_solves reached

# ---- solve statuses ----------------------------------------------------------------------
SOLVE_OK = 0
SOLVE_SINGULAR = 1  # zero pivot, or reciprocal condition number below rcond_min
SOLVE_NONFINITE = 2  # Z, b or the solution overflowed

#: length of the ring buffer of candidate hashes used to detect loops of the jump dynamics.
N_HASH = 32

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i1 = types.int64[::1]
_b2 = types.int8[:, ::1]
_b3 = types.int8[:, :, ::1]


# ============================================================================ linear algebra
# Small systems (the common case: M of 2 to a few tens) are dominated by per-call
# overheads, so the helpers below index arrays directly (row views cost ~20-40 ns
# each when they cross a call boundary) and are inlined into the solve; above
# SMALL_DIM the LU uses row views, which let LLVM vectorise the inner loops, and
# from BLOCKED_LU_DIM on it is blocked with BLAS trailing updates (measured at
# M = 200: 1.45 ms unblocked, 1.05 ms blocked, 0.6 ms for LAPACK's dgesv).
# Hand-written rather than LAPACK so that the kernel keeps the factors for the
# condition estimate and can later be batched or ported to CUDA unchanged.
SMALL_DIM = 16
#: from this dimension on the LU is blocked, with the trailing updates in BLAS.
BLOCKED_LU_DIM = 96
#: panel width of the blocked LU.
LU_BLOCK = 32


@config.njit(inline="always")
def _matmul_into(A, B, out):
    # out = A @ B (square M x M); BLAS above BLAS_MIN_SIZE output entries.
    n = A.shape[0]
    if n * n >= BLAS_MIN_SIZE:
        np.dot(A, B, out)
        return
    for i in range(n):
        for j in range(n):
            out[i, j] = 0.0
        for l in range(n):
            a = A[i, l]
            if a != 0.0:
                for j in range(n):
                    out[i, j] += a * B[l, j]


@config.njit(inline="always")
def _lu_factor(LU, piv):
    # In-place LU with partial pivoting, P A = L U (LAPACK getrf convention: at step
    # `col`, row `col` was swapped with row piv[col]).  False on an exactly zero pivot.
    n = LU.shape[0]
    if n >= BLOCKED_LU_DIM:
        return _lu_factor_blocked(LU, piv)
    for col in range(n):
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
        inv = 1.0 / LU[col, col]
        if n <= SMALL_DIM:
            for r in range(col + 1, n):
                l = LU[r, col] * inv
                LU[r, col] = l
                for j in range(col + 1, n):
                    LU[r, j] -= l * LU[col, j]
        else:
            Uc = LU[col, col + 1 :]
            for r in range(col + 1, n):
                l = LU[r, col] * inv
                LU[r, col] = l
                if l != 0.0:
                    Lr = LU[r, col + 1 :]
                    for j in range(Lr.shape[0]):
                        Lr[j] -= l * Uc[j]
    return True


@config.njit
def _lu_factor_blocked(LU, piv):
    # Right-looking blocked LU (the getrf algorithm): factor a panel of LU_BLOCK
    # columns with row interchanges of whole rows, solve for the block row of U,
    # then update the trailing matrix with one matrix product (BLAS), which is
    # where nearly all the flops go.  About 3x the unblocked loops at M = 200.
    n = LU.shape[0]
    nb = LU_BLOCK
    for j0 in range(0, n, nb):
        j1 = min(j0 + nb, n)
        for col in range(j0, j1):
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
            # A22 -= L21 U12 (explicit copies and loops: numba's slice arithmetic
            # costs ~10 s of compile time, and np.dot wants contiguous operands)
            m = n - j1
            w = j1 - j0
            L21 = np.empty((m, w))
            U12 = np.empty((w, m))
            upd = np.empty((m, m))
            for i in range(m):
                for j in range(w):
                    L21[i, j] = LU[j1 + i, j0 + j]
            for i in range(w):
                for j in range(m):
                    U12[i, j] = LU[j0 + i, j1 + j]
            np.dot(L21, U12, upd)
            for i in range(m):
                for j in range(m):
                    LU[j1 + i, j1 + j] -= upd[i, j]
    return True


@config.njit(inline="always")
def _lu_solve(LU, piv, x):
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


@config.njit(inline="always")
def _lu_solve_t(LU, piv, x):
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


@config.njit(inline="always")
def _inv_norm1_estimate(LU, piv, x, y):
    # Hager's estimate of ||A^{-1}||_1 (the algorithm of LAPACK's xLACON), with
    # Higham's alternating-sign safeguard.  O(n^2) per iteration: cheap next to the LU.
    n = LU.shape[0]
    for i in range(n):
        x[i] = 1.0 / n
    est = 0.0
    for it in range(5):
        for i in range(n):
            y[i] = x[i]
        _lu_solve(LU, piv, y)
        new = 0.0
        for i in range(n):
            new += abs(y[i])
        if it > 0 and new <= est:
            break
        est = new
        # x <- A^{-T} sign(y), keeping the previous x in y for the convergence test
        for i in range(n):
            s = 1.0 if y[i] >= 0.0 else -1.0
            y[i] = x[i]
            x[i] = s
        _lu_solve_t(LU, piv, x)
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
    _lu_solve(LU, piv, y)
    alt = 0.0
    for i in range(n):
        alt += abs(y[i])
    alt = 2.0 * alt / (3.0 * n)
    return est if est > alt else alt


@config.njit
def _solve_region_sequence_ws(F, c, rcond_min, z, Zw, Tw, LU, b, t, u, piv):
    # Workspace version of solve_region_sequence (no allocation: called once per candidate).
    k = F.shape[0]
    M = z.shape[0]
    for i in range(M):
        for j in range(M):
            Zw[i, j] = F[0, i, j]
        b[i] = c[0, i]
    for s in range(1, k):
        # Z <- F_s Z,  b <- F_s b + c_s
        _matmul_into(F[s], Zw, Tw)
        Zw, Tw = Tw, Zw
        for i in range(M):
            acc = c[s, i]
            for j in range(M):
                acc += F[s, i, j] * b[j]
            t[i] = acc
        for i in range(M):
            b[i] = t[i]
    # LU = I - Z and its 1-norm (largest column sum)
    for j in range(M):
        u[j] = 0.0
    finite = True
    for i in range(M):
        for j in range(M):
            v = -Zw[i, j]
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
    if not _lu_factor(LU, piv):
        return SOLVE_SINGULAR
    for i in range(M):
        z[i] = b[i]
    _lu_solve(LU, piv, z)
    for i in range(M):
        if not math.isfinite(z[i]):
            return SOLVE_NONFINITE
    est = _inv_norm1_estimate(LU, piv, t, u)
    # rcond = 1 / (||I - Z||_1 ||(I - Z)^-1||_1) below rcond_min (or NaN): treat as singular
    if not (est * anorm * rcond_min < 1.0):
        return SOLVE_SINGULAR
    return SOLVE_OK


_SOLVE_SIG = types.int64(_f3, _f2, types.float64, _f1)


@config.jit(_SOLVE_SIG)
def solve_region_sequence(F, c, rcond_min, z):
    r"""Solve for the k-cycle point of a region sequence.

    With region maps :math:`z \mapsto F_j z + c_j` (j = 1..k, applied in order),
    form :math:`Z = F_k \cdots F_1`, :math:`b = c_k + F_k c_{k-1} + \dots +
    F_k \cdots F_2 c_1` and solve :math:`(I - Z) z = b` by LU with partial pivoting.

    Parameters
    ----------
    F : (k, M, M) float64, C-contiguous
        Region factors, ``F[j]`` applied at step j (``F[0]`` first).
    c : (k, M) float64
        Region offsets.
    rcond_min : float
        Systems whose estimated reciprocal 1-norm condition number
        ``1 / (||I - Z||_1 ||(I - Z)^{-1}||_1)`` is below this count as singular.
    z : (M,) float64
        Output: the candidate point ``z_1`` (valid only when the status is 0).

    Returns
    -------
    int
        0 solved; 1 singular or ill-conditioned; 2 non-finite (overflow in Z, b
        or z).  Never raises.
    """
    M = z.shape[0]
    Zw = np.empty((M, M))
    Tw = np.empty((M, M))
    LU = np.empty((M, M))
    b = np.empty(M)
    t = np.empty(M)
    u = np.empty(M)
    piv = np.empty(M, dtype=np.int64)
    return _solve_region_sequence_ws(F, c, rcond_min, z, Zw, Tw, LU, b, t, u, piv)


# ============================================================================ search kernel
@config.njit
def _hash(pats):
    # FNV-1a style 64-bit hash of a pattern list (int64 arithmetic wraps on overflow)
    h = np.int64(-3750763034362895579)
    prime = np.int64(1099511628211)
    k, P = pats.shape
    for j in range(k):
        for q in range(P):
            h = (h ^ np.int64(pats[j, q] + 2 * q + 1)) * prime
        h = (h ^ np.int64(j + 7)) * prime
    return h


@config.njit
def _same(a, b):
    k, P = a.shape
    for j in range(k):
        for q in range(P):
            if a[j, q] != b[j, q]:
                return False
    return True


@config.njit
def _has_shorter_period(act):
    # The pattern sequence repeats with a period d < k (d divides k).  Then, since
    # I - Z_k = I - Z_d^(k/d) is invertible, the unique solution is the d-cycle.
    k, P = act.shape
    for d in range(1, k):
        if k % d != 0:
            continue
        periodic = True
        for j in range(d, k):
            for q in range(P):
                if act[j, q] != act[j - d, q]:
                    periodic = False
                    break
            if not periodic:
                break
        if periodic:
            return True
    return False


@config.njit
def _is_duplicate(traj, act, found_z, found_d, n_found, dup_rtol):
    # A consistent candidate is a known cycle if its pattern sequence is a cyclic
    # shift of a known one (exact: one solution per sequence), or if its points
    # match a known cycle's up to a shift within dup_rtol * (norm of the points).
    k, P = act.shape
    M = traj.shape[1]
    nrm = 0.0
    for j in range(k):
        for i in range(M):
            v = abs(traj[j, i])
            if v > nrm:
                nrm = v
    for f in range(n_found):
        for s in range(k):
            same = True
            for j in range(k):
                r = (j + s) % k
                for q in range(P):
                    if act[j, q] != found_d[f, r, q]:
                        same = False
                        break
                if not same:
                    break
            if same:
                return True
        nf = 0.0
        for j in range(k):
            for i in range(M):
                v = abs(found_z[f, j, i])
                if v > nf:
                    nf = v
        tol = dup_rtol * (nrm if nrm > nf else nf)
        for s in range(k):
            close = True
            for j in range(k):
                r = (j + s) % k
                for i in range(M):
                    if abs(traj[j, i] - found_z[f, r, i]) > tol:
                        close = False
                        break
                if not close:
                    break
            if close:
                return True
    return False


_ORDER_SIG = types.int64(
    REGIONS_TYPE, ROLLOUT_TYPE,  # the system's kernels
    _f1, _i1,  # p, meta
    _i1, _f1,  # state, opts
    _b2, _b3, _i1,  # cand (k, P), fresh (n, k, P), hash ring
    _f3, _b3, _i1,  # found_z (cap, k, M), found_d (cap, k, P), found_at (cap,): solve count at discovery
)


@config.jit(_ORDER_SIG)
def _scyfi_order(regions, rollout, p, meta, state, opts, cand, fresh, hbuf, found_z, found_d, found_at):
    # One order k of the SCYFI search, resumable: all loop state lives in `state`,
    # `cand` and `hbuf`, so the driver can refill `fresh` or grow the found_*
    # buffers and call again.  opts = [rcond_min, dup_rtol, accept_rtol].
    k, P = cand.shape[0], cand.shape[1]
    M = found_z.shape[2]
    rcond_min = opts[0]
    dup_rtol = opts[1]
    accept_rtol = opts[2]
    F = np.empty((k, M, M))
    c = np.empty((k, M))
    Zw = np.empty((M, M))
    Tw = np.empty((M, M))
    LU = np.empty((M, M))
    b = np.empty(M)
    t = np.empty(M)
    u = np.empty(M)
    piv = np.empty(M, dtype=np.int64)
    z = np.empty(M)
    traj = np.empty((k + 1, M))
    act = np.empty((k, P), dtype=np.int8)
    L = hbuf.shape[0]
    n_fresh = fresh.shape[0]
    cap = found_z.shape[0]
    while True:
        if state[S_NEED_NEW] != 0:
            if state[S_FRESH_POS] >= n_fresh:
                return NEED_FRESH
            pos = state[S_FRESH_POS]
            for j in range(k):
                for q in range(P):
                    cand[j, q] = fresh[pos, j, q]
            state[S_FRESH_POS] = pos + 1
            state[S_NEED_NEW] = 0
            hbuf[0] = _hash(cand)
            state[S_HCOUNT] = 1
        if state[S_INNER] >= state[S_N_IN]:
            state[S_OUTER] += 1
            state[S_INNER] = 0
            state[S_NEED_NEW] = 1
            if state[S_OUTER] >= state[S_N_OUT]:
                return DONE
            continue
        if state[S_MAX_SOLVES] >= 0 and state[S_SOLVES] >= state[S_MAX_SOLVES]:
            return LIMIT
        if state[S_FOUND] >= cap:
            return FULL

        regions(p, meta, cand, F, c)
        status = _solve_region_sequence_ws(F, c, rcond_min, z, Zw, Tw, LU, b, t, u, piv)
        state[S_SOLVES] += 1
        state[S_INNER] += 1
        state[S_SINCE] += 1
        if status != SOLVE_OK:
            state[S_SINGULAR] += 1
            state[S_NEED_NEW] = 1
            continue

        # roll the candidate with the true map and read the regions it visits
        # (traj[k] = F(z_k) closes the cycle when the regions are consistent)
        for i in range(M):
            traj[0, i] = z[i]
        rollout(p, meta, traj, act)

        if not _same(act, cand):
            # jump to the visited regions, unless the jumps have come back to a
            # candidate tried since the last fresh start (they would loop forever)
            hsh = _hash(act)
            n_h = state[S_HCOUNT] if state[S_HCOUNT] < L else L
            seen = False
            for q in range(n_h):
                if hbuf[q] == hsh:
                    seen = True
                    break
            if seen:
                state[S_LOOPS] += 1
                state[S_NEED_NEW] = 1
                continue
            hbuf[state[S_HCOUNT] % L] = hsh
            state[S_HCOUNT] += 1
            for j in range(k):
                for q in range(P):
                    cand[j, q] = act[j, q]
            continue

        # consistent: a true cycle of period dividing k
        state[S_NEED_NEW] = 1
        if _has_shorter_period(act):
            state[S_LOWER] += 1
            continue
        scale = 0.0
        res = 0.0
        for j in range(k):
            for i in range(M):
                v = abs(traj[j, i])
                if v > scale:
                    scale = v
                v = abs(c[j, i])
                if v > scale:
                    scale = v
        for i in range(M):
            v = abs(traj[k, i] - traj[0, i])
            if v > res:
                res = v
        if scale == 0.0:
            scale = 1.0
        if not (res <= accept_rtol * scale):
            state[S_INEXACT] += 1
            continue
        n = state[S_FOUND]
        if _is_duplicate(traj, act, found_z, found_d, n, dup_rtol):
            state[S_DUP] += 1
            continue
        for j in range(k):
            for i in range(M):
                found_z[n, j, i] = traj[j, i]
            for q in range(P):
                found_d[n, j, q] = act[j, q]
        found_at[n] = state[S_SOLVES]
        state[S_FOUND] = n + 1
        state[S_SINCE] = 0
        state[S_OUTER] = 0
        state[S_INNER] = 0


# ============================================================================ driver
def default_counters(k: int, n_pattern: int) -> tuple[int, int]:
    """Default ``(n_outer, n_inner)`` for order ``k`` and ``n_pattern`` bits per region.

    The authors' 2-D defaults (``N_out = 10 / 40 / 100`` for ``k < 8 / < 30 / else``;
    ``N_in = 20 / 60 / 300 / 1080 / 1115`` for ``k < 3 / < 6 / < 8 / < 20 / else``)
    are multiplied each by ``sqrt(max(1, P / 2))``, with P the number of pattern
    bits (M for the PLRNN, H or 2H for the shallow ones).  The search stops after
    about ``n_outer * n_inner`` solves without a discovery, so this budget grows
    linearly with the dimension: 2-D systems keep the authors' values, M = 10
    gets 5x (for k = 1: 23 x 45 = 1035 unsuccessful solves), M = 200 gets 100x.
    Why linear: the number of regions grows like 2^M, but SCYFI's jumps reach
    the regions of the attracting cycles in far fewer solves (the authors report
    log log M to quadratic growth of the solves to find a fixed point); the
    budget is what is spent after the last discovery to be reasonably sure
    nothing is left, and it must not grow faster than the per-solve cost allows
    (O(k M^3)).  Pass explicit ``n_outer``/``n_inner`` for a more exhaustive search.
    """
    base_out = 10 if k < 8 else 40 if k < 30 else 100
    base_in = 20 if k < 3 else 60 if k < 6 else 300 if k < 8 else 1080 if k < 20 else 1115
    s = math.sqrt(max(1.0, n_pattern / 2.0))
    return int(math.ceil(base_out * s)), int(math.ceil(base_in * s))


def realised_pattern_pool(
    system: PiecewiseLinearSystem, rng: np.random.Generator, n_samples: int = 4096, n_traj: int = 32,
    n_steps: int = 200,
) -> np.ndarray:
    """Region patterns actually realised by sampled states (REFERENCE section 2, item 10).

    For the shallow PLRNNs most of the ``2^H`` hidden patterns are infeasible (no
    state has them: H hyperplanes cut R^M into at most ``sum_{i<=M} C(H, i)``
    regions), so SCYFI starts from patterns of sampled states: ``n_samples``
    states in random directions at log-uniform radii from ``1e-3 R`` to ``3 R``,
    where ``R`` is the largest distance of a hyperplane ``W2_j z + h2_j = 0``
    from the origin (at least 1), which reaches every bounded region and the
    unbounded ones; plus the states of ``n_traj`` trajectories of ``n_steps``
    steps from such states (the regions where the dynamics live).

    Returns
    -------
    (n, P) int8 array of distinct patterns.
    """
    M = system.dim
    if system.kind == "plrnn":
        R = 1.0 + float(np.max(np.abs(system.arrays["h"]), initial=0.0))
    else:
        W2, h2 = system.arrays["W2"], system.arrays["h2"]
        nrm = np.linalg.norm(W2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(nrm > 0, np.abs(h2) / nrm, 0.0)
        R = max(1.0, float(np.max(dist, initial=0.0)))
    dirs = rng.standard_normal((n_samples, M))
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-300)
    radii = R * 10.0 ** rng.uniform(-3.0, math.log10(3.0), n_samples)
    Z = dirs * radii[:, None]
    states = [Z]
    y = Z[:n_traj].copy()
    with np.errstate(all="ignore"):
        for _ in range(n_steps):
            y = system.step(y)
            states.append(y)
    S = np.concatenate(states)
    S = S[np.all(np.isfinite(S), axis=1)]
    return np.unique(system.patterns(S), axis=0)


class _FreshDraws:
    """Fresh random candidates for one order, drawn with NumPy in growing chunks.

    PLRNN: every bit independent (64 bits per raw 64-bit draw, unpacked).  Shallow:
    k independent picks from the pool of realised patterns.  Each candidate uses
    its own raw draws, so the stream does not depend on the chunk sizes.
    """

    #: chunk-size bounds in candidates (the upper one also limited to ~8 MB).
    first_chunk = 64
    max_chunk = 1 << 16

    def __init__(self, rng: np.random.Generator, k: int, P: int, pool: np.ndarray | None):
        self.rng, self.k, self.P, self.pool = rng, k, P, pool
        self.chunk = 0
        self.limit = max(1, min(self.max_chunk, (8 << 20) // max(1, k * P)))

    def draw(self) -> np.ndarray:
        n = self.first_chunk if self.chunk == 0 else min(2 * self.chunk, self.limit)
        n = max(1, min(n, self.limit))
        self.chunk = n
        k, P = self.k, self.P
        if self.pool is None:
            words = (k * P + 63) // 64
            raw = self.rng.integers(0, 2**64, size=(n, words), dtype=np.uint64)
            bits = np.unpackbits(raw.view(np.uint8).reshape(n, words * 8), axis=1, bitorder="little")
            return np.ascontiguousarray(bits[:, : k * P].reshape(n, k, P).astype(np.int8))
        idx = np.minimum((self.rng.random((n, k)) * len(self.pool)).astype(np.int64), len(self.pool) - 1)
        return np.ascontiguousarray(self.pool[idx])


#: initial capacity of the found-cycle buffers (doubled whenever the kernel reports FULL).
_INITIAL_CAPACITY = 8


def _counter(value, k: int, P: int, which: int, name: str) -> int:
    if value is None:
        return default_counters(k, P)[which]
    if callable(value):
        return check_order(value(k), f"{name}({k})")
    return check_order(value, name)


def _search_order(system, k, n_out, n_in, max_solves, rng, pool, opts, kernels):
    """Run the kernel for order k; returns raw (unverified) cycles and the search counters."""
    M, P = system.dim, system.n_pattern
    state = np.zeros(N_STATE, dtype=np.int64)
    state[S_N_OUT] = n_out
    state[S_N_IN] = n_in
    state[S_MAX_SOLVES] = -1 if max_solves is None else max_solves
    state[S_NEED_NEW] = 1
    draws = _FreshDraws(rng, k, P, pool)
    fresh = draws.draw()
    cand = np.zeros((k, P), dtype=np.int8)
    hbuf = np.zeros(N_HASH, dtype=np.int64)
    cap = _INITIAL_CAPACITY
    found_z = np.empty((cap, k, M))
    found_d = np.empty((cap, k, P), dtype=np.int8)
    found_at = np.empty(cap, dtype=np.int64)
    regions_k, rollout_k = kernels
    p, meta = system.p, system.meta
    while True:
        with np.errstate(all="ignore"):
            code = _scyfi_order(regions_k, rollout_k, p, meta, state, opts, cand, fresh, hbuf,
                                found_z, found_d, found_at)
        if code == NEED_FRESH:
            fresh = draws.draw()
            state[S_FRESH_POS] = 0
        elif code == FULL:
            cap *= 2
            found_z = np.concatenate([found_z, np.empty_like(found_z)])
            found_d = np.concatenate([found_d, np.empty_like(found_d)])
            found_at = np.concatenate([found_at, np.empty_like(found_at)])
        else:
            break
    n = int(state[S_FOUND])
    # (points, patterns, solves at discovery, solves since the previous discovery)
    at = found_at[:n]
    since = np.diff(np.concatenate([[0], at]))
    raw = [(found_z[i].copy(), found_d[i].copy(), int(at[i]), int(since[i])) for i in range(n)]
    return raw, state, code == LIMIT


_STAT_META = {
    "n_outer": ("1", "outer-loop count N_out used at this order (random restarts without a discovery)"),
    "n_inner": ("1", "inner-loop count N_in used at this order (solves per restart)"),
    "n_rejected": ("1", "consistent candidates rejected as inexact (closure or verification failed)"),
    "n_lower_order": ("1", "consistent candidates that were cycles of a lower order"),
    "n_duplicates": ("1", "consistent candidates that were cycles already found"),
    "n_loops": ("1", "jump sequences that returned to an earlier candidate (restarted)"),
}


def scyfi(
    model_or_params,
    max_order: int,
    *,
    theta: np.ndarray | None = None,
    inputs: np.ndarray | None = None,
    min_order: int = 1,
    n_outer: int | Callable[[int], int] | None = None,
    n_inner: int | Callable[[int], int] | None = None,
    seed: int | None = 0,
    tol: float = 1e-10,
    max_solves: int | None = None,
    rcond_min: float = 1e-12,
    dup_rtol: float = 1e-8,
    tol_hyperbolic: float = 1e-8,
    pool_samples: int = 4096,
) -> xr.Dataset:
    r"""Find the fixed points and k-cycles (k = ``min_order``..``max_order``) of a PLRNN-family map.

    Maps (``A`` diagonal; ``D`` the 0/1 diagonal of the region pattern):

    * PLRNN :math:`z' = A z + W\,\mathrm{relu}(z) + C s + h`; regions
      ``D = diag(z > 0)``, region map :math:`(A + W D) z + h + C s`.
    * shallow PLRNN :math:`z' = A z + W_1 \mathrm{relu}(W_2 z + h_2) + h_1 + C s`;
      ``D = diag(W2 z + h2 > 0)`` (H bits), region map
      :math:`(A + W_1 D W_2) z + W_1 D h_2 + h_1 + C s`.
    * clipped shallow PLRNN (``relu(W2 z + h2) - relu(W2 z)``): two patterns
      ``D1 = diag(W2 z + h2 > 0)``, ``D2 = diag(W2 z > 0)``; region map
      :math:`(A + W_1 (D_1 - D_2) W_2) z + W_1 D_1 h_2 + h_1 + C s`.

    The search is SCYFI (see the module docstring): per order, region sequences
    are solved as :math:`(I - Z) z = b` with :math:`Z = F_k \cdots F_1`, candidates
    jump to the regions their solution actually visits, and fresh random
    candidates restart the search; it stops after ``n_outer`` restarts of
    ``n_inner`` solves without a new cycle (both counters reset on each
    discovery), or after ``max_solves`` solves.  PLRNN candidates have every
    pattern bit drawn independently; shallow candidates are drawn from a pool
    of realised patterns (:func:`realised_pattern_pool`).

    Parameters
    ----------
    model_or_params : PLRNN, ShallowPLRNN, dict or tuple
        A model with ``theta``, or raw arrays: ``{"A", "W", "h"}`` / ``(A, W, h)``
        for a PLRNN (A a vector or a diagonal matrix; W zero-diagonal or full), or
        ``{"A", "W1", "W2", "h1", "h2"}`` / ``(A, W1, W2, h1, h2)`` for a shallow
        PLRNN (dict key ``"clipped": True`` for the clipped one); dicts may add ``C``.
    max_order : int
        Largest cycle order searched (>= 1).
    theta : (P,) array, optional
        Parameter vector of the model.
    inputs : (K,) array, optional
        Constant input ``s`` (folded into the offset).  None: no input (s = 0).
    min_order : int
        Smallest order searched (default 1).  Orders are searched independently
        (lower-order cycles are recognised from their pattern period), so
        ``min_order=max_order=16`` finds the 16-cycles alone.
    n_outer, n_inner : int or callable(k) -> int, optional
        Loop counts (default :func:`default_counters`).
    seed : int or None
        Seed of the NumPy generators (order k uses ``SeedSequence(seed,
        spawn_key=(k,))``, the shallow pattern pool ``spawn_key=(0,)``); results do
        not depend on which other orders are searched.  None draws fresh entropy
        (recorded in the ``seeds`` attribute).
    tol : float
        Exactness required of every returned cycle:
        ``max_j |F^k(z_j) - z_j|_inf <= tol * max(|z|_inf, |c|_inf)`` with the
        true map, and every point in its claimed region.  Candidates that miss are
        refined by one Newton step; those that still miss are dropped and counted
        in ``n_rejected``.
    max_solves : int, optional
        Cap on the solves per order; ``hit_limit`` records whether it stopped the
        search.
    rcond_min : float
        Solves whose estimated reciprocal condition number of ``I - Z`` is below
        this are skipped and counted in ``n_singular``.
    dup_rtol : float
        Two cycles are the same if their points agree, up to a cyclic shift, within
        ``dup_rtol`` times the larger max-norm of their points (identical pattern
        sequences up to a shift are always the same cycle).
    tol_hyperbolic : float
        A cycle with an eigenvalue modulus within this of 1 is ``"non-hyperbolic"``.
    pool_samples : int
        Number of sampled states for the shallow pattern pool.

    Returns
    -------
    xarray.Dataset
        Dims ``cycle``, ``point`` (= max_order), ``state`` (M), ``eig`` (M), ``unit``
        (M for the PLRNN, H for the shallow ones), ``order_k`` (the orders searched).
        Per cycle: ``order``, ``points`` (cycle, point, state; NaN beyond k),
        ``patterns`` (cycle, point, unit; int8 0/1, -1 beyond k; D1 for the clipped
        model, with D2 in ``patterns_d2``), ``eig_real``/``eig_imag`` (eigenvalues
        of ``F_k ... F_1`` by decreasing modulus), ``spectral_radius``, ``stability``
        (``"stable node"``, ``"stable spiral"``, ``"saddle"``, ``"unstable node"``,
        ``"unstable spiral"``, ``"non-hyperbolic"``), ``max_residual``,
        ``n_solves_to_find`` (solves since the previous discovery at that order),
        ``found_at_solve`` (the solve count at that order when it was found).
        Per order: ``n_solves``, ``n_singular``, ``n_found``, ``hit_limit``,
        ``seconds``, ``n_outer``, ``n_inner``, ``n_rejected``, ``n_lower_order``,
        ``n_duplicates``, ``n_loops``.  Cycles are sorted by order, then by their
        pattern sequence, and start at their lexicographically smallest rotation.
        Provenance attributes (call, arguments as JSON, seeds, versions).

    Raises
    ------
    TypeError, ValueError
        For a model that is not piecewise linear, missing or malformed parameters,
        non-finite values, or bad settings (the message names the argument).

    Notes
    -----
    The search is heuristic: it finds every cycle whose regions the jump
    dynamics reach from the random starts, which in tests is all of them for
    small systems; a missed cycle is possible.  Use
    :func:`plrnn_numba.dynamics.brute_force_cycles` to check small systems.
    """
    max_order = check_order(max_order, "max_order")
    min_order = check_order(min_order, "min_order")
    if min_order > max_order:
        raise ValueError(f"min_order ({min_order}) must be <= max_order ({max_order})")
    system = as_system(model_or_params, theta=theta, inputs=inputs)
    tol = V.finite_float(tol, "tol", low=0.0)
    rcond_min = V.finite_float(rcond_min, "rcond_min", low=0.0, high=1.0)
    dup_rtol = V.finite_float(dup_rtol, "dup_rtol", low=0.0)
    tol_hyperbolic = V.finite_float(tol_hyperbolic, "tol_hyperbolic", low=0.0)
    if max_solves is not None:
        max_solves = check_order(max_solves, "max_solves")
    pool_samples = check_order(pool_samples, "pool_samples")
    for value, name in ((n_outer, "n_outer"), (n_inner, "n_inner")):
        if value is not None and not callable(value):
            check_order(value, name)
    if seed is not None:
        seed = check_order(seed, "seed", minimum=0)
    entropy = np.random.SeedSequence(seed).entropy

    P = system.n_pattern
    kernels = system.kernels()
    if system.dim * system.dim >= BLAS_MIN_SIZE and hasattr(config, "limit_blas_threads"):
        # the k-fold products go to BLAS from inside the kernel: one BLAS thread
        # (see plrnn_numba.config.limit_blas_threads)
        config.limit_blas_threads()
    # a consistent candidate's closure F(z_k) = z_1 is checked in the kernel to a loose
    # tolerance (rounding grows along the roll-out); the strict check comes after.
    opts = np.array([rcond_min, dup_rtol, max(1e-6, tol)], dtype=np.float64)
    pool = None
    if system.kind != "plrnn":
        pool = realised_pattern_pool(
            system, np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(0,))), n_samples=pool_samples
        )

    orders = np.arange(min_order, max_order + 1)
    stat_names = ["n_solves", "n_singular", "n_found", "hit_limit", "seconds", *_STAT_META]
    stats = {name: np.zeros(len(orders), dtype=np.float64 if name == "seconds" else np.int64) for name in stat_names}
    cycles: list[Cycle] = []
    for i, k in enumerate(orders):
        k = int(k)
        t0 = time.perf_counter()
        n_out = _counter(n_outer, k, P, 0, "n_outer")
        n_in = _counter(n_inner, k, P, 1, "n_inner")
        rng = np.random.default_rng(np.random.SeedSequence(entropy, spawn_key=(k,)))
        raw, state, hit = _search_order(system, k, n_out, n_in, max_solves, rng, pool, opts, kernels)
        n_ok = 0
        rejected = 0
        for pts, pats, at, since in raw:
            pts, res, ok = verify_and_refine(system, pts, pats, tol)
            if ok:
                cycles.append(Cycle(order=k, points=pts, patterns=pats, residual=res, n_solves_to_find=since,
                                    found_at_solve=at))
                n_ok += 1
            else:
                rejected += 1
        stats["n_solves"][i] = state[S_SOLVES]
        stats["n_singular"][i] = state[S_SINGULAR]
        stats["n_found"][i] = n_ok
        stats["hit_limit"][i] = int(hit)
        stats["n_outer"][i] = n_out
        stats["n_inner"][i] = n_in
        stats["n_rejected"][i] = state[S_INEXACT] + rejected
        stats["n_lower_order"][i] = state[S_LOWER]
        stats["n_duplicates"][i] = state[S_DUP]
        stats["n_loops"][i] = state[S_LOOPS]
        stats["seconds"][i] = time.perf_counter() - t0

    cycles = finish_cycles(system, cycles, tol_hyperbolic)
    arguments = {
        "model": system.description,
        "max_order": max_order,
        "min_order": min_order,
        "n_outer": n_outer,
        "n_inner": n_inner,
        "seed": seed,
        "tol": tol,
        "max_solves": max_solves,
        "rcond_min": rcond_min,
        "dup_rtol": dup_rtol,
        "tol_hyperbolic": tol_hyperbolic,
        "pool_samples": pool_samples,
        "inputs": None if inputs is None else np.asarray(inputs, dtype=float).tolist(),
    }
    attrs = io.provenance("plrnn_numba.dynamics.scyfi", arguments, seeds=int(entropy))
    attrs.update(
        {
            "title": "Fixed points and k-cycles (SCYFI)",
            "method": "SCYFI (heuristic search over linear-region sequences)",
            "model_kind": system.kind,
            "tol": tol,
            "tol_hyperbolic": tol_hyperbolic,
        }
    )
    return build_dataset(system, cycles, orders, max_order, stats, _STAT_META, attrs)
