r"""Fixed points at large M: SCYFI's solves by low-rank updates of one factorised region.

A fixed point of the region with pattern :math:`d` solves :math:`A_d z = c_d`
with :math:`A_d = I - F_d`, :math:`F_d = L + R D U` and :math:`c_d = c + R D v`
(the normal form of :mod:`plrnn_numba.models.piecewise`).  When every pattern
bit q reads one coordinate, :math:`(U z + v)_q = z_{j(q)} + v_q` (the PLRNN,
the ALRNN and the ReLU RNN: the rows of U are distinct unit vectors), the
regions of two patterns that differ in the bits :math:`S` (r of them) differ
by a matrix of rank r:

.. math::

    A_{d'} = A_b - R_S \Sigma U_S, \qquad c_{d'} = c_b + R_S \Sigma v_S,
    \qquad \Sigma = \mathrm{diag}(d'_S - d_{b,S}) \in \{\pm 1\}^{r \times r},

where :math:`A_b, c_b` are those of a *base* pattern :math:`d_b`, :math:`R_S`
the columns of R and :math:`U_S` the rows of U at the bits S.  With the
base's solution :math:`z_b = A_b^{-1} c_b` and :math:`G = A_b^{-1} R`
(M x P, computed once per base), the Sherman-Morrison-Woodbury formula gives

.. math::

    z_{d'} = z_b + G_S \Sigma (v_S + y), \qquad C y = z_{b, j(S)} + G_{j(S), S} \Sigma v_S,
    \qquad C = I_r - G_{j(S), S} \Sigma ,

an r x r *capacitance* system: :math:`O(r^3 / 3 + M r)` flops per candidate
instead of the :math:`2 M^3 / 3` of a new factorisation and the
:math:`O(M^2)` of its condition estimate.  Nothing accumulates: every update
starts from the same base, so the error does not grow with the number of
updates (no periodic refactorisation is needed for that), and a fresh random
candidate (r about P / 2) is an update as well.  For a candidate whose
solution lies in another region (a jump) the engine reads the pattern
:math:`[z_{j(q)} + v_q > 0]` directly, O(P), instead of rolling the point out
with the family's kernel, O(M^2): only consistent candidates need the
roll-out, for their closure residual.

Acceptance is that of the refactorising path.  The singularity test there is
:math:`\mathrm{est}\|A_{d'}^{-1}\|_1 \|A_{d'}\|_1 \ge 1 / r_{\min}` with
Hager's estimate.  Here, with :math:`A_{d'}^{-1} = K A_b^{-1}` and
:math:`K = I + G_S \Sigma C^{-1} U_S`, first the bound

.. math::

    \|A_{d'}^{-1}\|_1 \le \|A_b^{-1}\|_1 \, \|K\|_1

is evaluated with Hager's estimates (the base's once; K's with products that
cost :math:`O(M r + r^2)`); it exceeds the true norm by at most about the
condition number of the base (measured: 10^2 to 10^4 for random PLRNNs).
Where it is too loose, Hager's estimate of :math:`\|A_{d'}^{-1}\|_1` itself
is taken, with the products :math:`K (A_b^{-1} x)` (a triangular solve pair
with the base's stored factors, :math:`O(M^2)`).  With the exact
:math:`\|A_{d'}\|_1` (from per-column norms), an update is accepted only if
the estimate times the norm is below
:math:`\min(\texttt{SCYFI\_LOW\_RANK\_COND\_MAX}, 10^{-2} / r_{\min})`: the
refactorising path would then accept the system as well (unless the
estimates were off by more than a factor 100; Hager's estimate is a lower
bound, rarely below a third of the norm).  Every other outcome -- a zero
pivot of C, the estimate above the limit, a non-finite result, more than
``r_max`` flipped bits, no base yet -- is decided by the refactorising path
(:data:`FAIL`, :data:`FAR`), so a system is called singular only by the test
of that path.

Accuracy: the update's forward error grows with the condition numbers of the
base and of C; bases are limited to a reciprocal condition number of at least
``SCYFI_LOW_RANK_BASE_RCOND`` and the updates to the condition limit above
(measured errors: below 1e-12 relative for regions of condition up to 1e5).
A consistent candidate's closure residual :math:`\|F(z) - z\|_\infty` is the
residual of its linear system; the engine re-solves it by refactorising when
that exceeds ``SCYFI_LOW_RANK_CLOSURE_RTOL`` times its scale, so that a
stored cycle is as exact as one from the refactorising path.  A jump lands in
the same region as with refactorising unless a component of the solution is
within the rounding error of a boundary, which the refactorising path's own
rounding also decides arbitrarily.

Bases: a lane builds its base at its first refactorised solve, and moves it
to the region of the first fixed point it finds (:data:`REBASE`: one more
refactorised solve there; the random restarts of a search converge to its
attracting fixed points, so their last jumps are then updates of few bits),
or to a region being refactorised (an update failed there, or it had more
flipped bits than ``r_max``) once the base has served
``SCYFI_LOW_RANK_REBUILD_MIN`` updates since it was built.  A base costs about
three refactorised solves (the LU, Hager's estimate and :math:`2 M^2 P`
flops of blocked triangular solves, :func:`._lu_cpu.solve_many`) and
:math:`8 (M P + M^2)` bytes per lane.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .. import config
from ._lu import SOLVE_OK, build_hager
from ._lu_cpu import LU, solve_many

__all__ = ["LowRank", "FAR", "FAIL", "REBASE", "COUNTS", "unit_rows", "low_rank_data", "disabled", "bytes_per_lane",
           "max_flips", "solve", "jumps", "after_solve", "refactored"]

#: return codes of :func:`solve` besides SOLVE_OK: no base, or more flipped bits than allowed
FAR = -1
#: zero pivot of the capacitance matrix, condition bound above the limit, or a non-finite result
#: (also: an update that landed on a fixed point with too large a closure residual)
FAIL = -2
#: an update landed on a fixed point: refactorise it there to move the lane's base to that region
REBASE = -3

#: per-lane counters (``LowRank.counts`` columns): updates accepted, updates handed to the
#: refactorising path (FAIL, or a consistent update re-solved for its closure), other
#: refactorised solves (FAR: no base or too many flipped bits; REBASE), bases built, updates
#: whose condition needed the sharper estimate.
COUNTS = ("n_low_rank", "n_low_rank_failed", "n_refactored", "n_bases", "n_low_rank_sharp")
UPDATES, FAILED, REFACTORED, BASES, SHARP = 0, 1, 2, 3, 4

#: the factor by which Hager's estimates may be off before an accepted update could be
#: a system the refactorising path calls singular (see the module docstring).
RCOND_MARGIN = 1e-2

# the CPU build of the shared LU helpers, as globals that numba can resolve
_factor, _lu_solve, _lu_solve_t, _inv_norm1 = LU.factor, LU.solve, LU.solve_t, LU.inv_norm1_estimate


class LowRank(NamedTuple):
    """Data of the low-rank solves: per system (read-only) and per lane (each lane's base)."""

    R: np.ndarray  # (n_sys, M, P): the normal form's R
    v: np.ndarray  # (n_sys, P): its v
    col: np.ndarray  # (n_sys, P) int64: the coordinate j(q) that bit q reads
    jbit: np.ndarray  # (n_sys, M) int64: the bit reading coordinate j (-1: none)
    anorm: np.ndarray  # (n_sys, 2, M): ||column j of I - F_d||_1 with that bit off / on
    d: np.ndarray  # (n_lane, P) int8: the base pattern
    G: np.ndarray  # (n_lane, M, P): A_b^{-1} R
    LU: np.ndarray  # (n_lane, M, M): the base's LU factors (P A_b = L U)
    piv: np.ndarray  # (n_lane, M) int64: their row interchanges
    gnorm: np.ndarray  # (n_lane, P): column 1-norms of G
    z: np.ndarray  # (n_lane, M): the base's solution
    c: np.ndarray  # (n_lane, M): the base's offset c_b
    est: np.ndarray  # (n_lane,): Hager's estimate of ||A_b^{-1}||_1 (0: no base)
    served: np.ndarray  # (n_lane,) int64: updates since the base was built
    settled: np.ndarray  # (n_lane,) int64: 1 once the base is (or was refused to be) a fixed point's region
    counts: np.ndarray  # (n_lane, len(COUNTS)) int64
    sel: np.ndarray  # (n_lane, 2 P) int64: work: the flipped bits of an update and the coordinates they read


def unit_rows(U: np.ndarray) -> np.ndarray | None:
    """The coordinate each bit reads, ``j(q)``, if U's rows are distinct unit vectors; else None."""
    P, M = U.shape
    cols = np.argmax(U != 0.0, axis=1)
    if np.array_equal(U, np.eye(M)[cols]) and np.unique(cols).size == P:
        return cols.astype(np.int64)
    return None


def bytes_per_lane(M: int, P: int) -> int:
    """Memory of one lane's base: G, the LU factors and pivots, G's column norms, two vectors, the pattern, work."""
    return 8 * (M * P + M * M + 3 * P + 3 * M) + P


def low_rank_data(pls, n_lane: int) -> LowRank:
    """The :class:`LowRank` bundle of the systems ``pls`` (PiecewiseLinear, unit-row U) for ``n_lane`` lanes.

    Raises ValueError if a system's U does not have distinct unit rows.
    """
    M, P = pls[0].dim, pls[0].n_bits
    n = len(pls)
    R = np.empty((n, M, P))
    v = np.empty((n, P))
    col = np.empty((n, P), dtype=np.int64)
    jbit = np.full((n, M), -1, dtype=np.int64)
    anorm = np.empty((n, 2, M))
    for s, pl in enumerate(pls):
        cols = unit_rows(pl.U)
        if cols is None:
            raise ValueError("low-rank solves need pattern bits that each read one coordinate (U with unit rows)")
        R[s], v[s], col[s] = pl.R, pl.v, cols
        jbit[s, cols] = np.arange(P)
        off = np.eye(M) - pl.L
        on = off.copy()
        on[:, cols] -= pl.R
        anorm[s, 0] = np.abs(off).sum(axis=0)
        anorm[s, 1] = np.abs(on).sum(axis=0)
    return _with_lanes(R, v, col, jbit, anorm, n_lane)


def disabled(M: int, P: int) -> LowRank:
    """An empty bundle (no system, no lane), for searches without low-rank solves."""
    i8 = np.int64
    return _with_lanes(np.empty((0, M, P)), np.empty((0, P)), np.empty((0, P), i8), np.empty((0, M), i8),
                       np.empty((0, 2, M)), 0)


def _with_lanes(R, v, col, jbit, anorm, n_lane: int) -> LowRank:
    # the bundle with the systems' data and ``n_lane`` lanes without a base
    M, P = R.shape[1:]
    i8 = np.int64
    return LowRank(R=R, v=v, col=col, jbit=jbit, anorm=anorm, d=np.zeros((n_lane, P), np.int8),
                   G=np.empty((n_lane, M, P)), LU=np.empty((n_lane, M, M)), piv=np.zeros((n_lane, M), i8),
                   gnorm=np.empty((n_lane, P)), z=np.empty((n_lane, M)), c=np.empty((n_lane, M)),
                   est=np.zeros(n_lane), served=np.zeros(n_lane, i8), settled=np.zeros(n_lane, i8),
                   counts=np.zeros((n_lane, len(COUNTS)), i8), sel=np.empty((n_lane, 2 * P), i8))


@config.njit(inline="always")
def _anorm(lr, s, d):
    # ||I - F_d||_1: per column, the norm with its bit's state in d
    anorm = 0.0
    for j in range(lr.anorm.shape[2]):
        q = lr.jbit[s, j]
        a = lr.anorm[s, 1 if q >= 0 and d[q] != 0 else 0, j]
        if not a <= anorm:  # NaN propagates
            anorm = a
    return anorm


@config.njit(inline="always")
def _apply(ops, base, x, transpose):
    # x <- K x or K^T x in place, K = I + (G_S Sigma) C^{-1} U_S (``base``: x <- K A_b^{-1} x or
    # A_b^{-T} K^T x, i.e. A_{d'}^{-1} x or A_{d'}^{-T} x).  ops: GS = G_S Sigma (M, r) contiguous,
    # jS the coordinates j(S), C and pv the factorised capacitance matrix, LUb and pivb the
    # base's factors, w an r-vector.  O(M r + r^2), plus O(M^2) with ``base``.
    GS, jS, C, pv, LUb, pivb, w = ops
    M, r = GS.shape
    if not transpose:
        if base:
            _lu_solve(LUb, pivb, x)
        for a in range(r):
            w[a] = x[jS[a]]
        _lu_solve(C, pv, w)
        for i in range(M):
            acc = x[i]
            Gi = GS[i]
            for b in range(r):
                acc += Gi[b] * w[b]
            x[i] = acc
    else:
        for b in range(r):
            w[b] = 0.0
        for i in range(M):
            xi = x[i]
            Gi = GS[i]
            for b in range(r):
                w[b] += Gi[b] * xi
        _lu_solve_t(C, pv, w)
        for a in range(r):
            x[jS[a]] += w[a]
        if base:
            _lu_solve_t(LUb, pivb, x)


#: Hager's estimate of ||K||_1 (``base`` False) or ||K A_b^{-1}||_1 = ||A_{d'}^{-1}||_1 (True), with
#: K = I + G_S Sigma C^{-1} U_S = A_{d'}^{-1} A_b: ``_norm1_estimate(ops, base, M, x, y)``.
_norm1_estimate = build_hager(config.njit, _apply)


@config.njit
def solve(lr, l, s, d, rcond_min, r_max, z, c_out, Zw, Tw, rhs, t, u, piv):
    """Solve the region of pattern ``d`` (P,) by an update of lane ``l``'s base (system ``s``).

    Writes the solution to ``z`` and the region's offset to ``c_out`` and
    returns SOLVE_OK, or FAR / FAIL (then the refactorising path must solve
    it; ``z`` may have been written).  ``Zw``, ``Tw`` (M, M), ``rhs``, ``t``, ``u``
    (M,) and ``piv`` (M,) int64 are work arrays.
    """
    est_b = lr.est[l]
    if est_b <= 0.0:
        return FAR
    P = d.shape[0]
    M = z.shape[0]
    db = lr.d[l]
    sel = lr.sel[l]
    r = 0
    for q in range(P):
        if d[q] != db[q]:
            if r == r_max:
                return FAR
            sel[r] = q
            r += 1
    G = lr.G[l]
    zb = lr.z[l]
    v = lr.v[s]
    col = lr.col[s]
    # G_S Sigma (M, r), contiguous, and the coordinates j(S) (in the second half of sel)
    GS = Zw.ravel()[: M * r].reshape((M, r))
    jS = sel[P : P + r]
    for b in range(r):
        u[b] = 1.0 if d[sel[b]] != 0 else -1.0
    for i in range(M):
        Gi = G[i]
        GSi = GS[i]
        for b in range(r):
            GSi[b] = Gi[sel[b]] * u[b]
    # the capacitance matrix C = I - (G_S Sigma)[j(S)] and the right-hand side z_b[j(S)] + (G_S Sigma)[j(S)] v_S
    for b in range(r):
        t[b] = v[sel[b]]
    C = Tw.ravel()[: r * r].reshape((r, r))
    pv = piv[:r]
    for a in range(r):
        ia = col[sel[a]]
        GSa = GS[ia]
        acc = zb[ia]
        for b in range(r):
            C[a, b] = -GSa[b]
            acc += GSa[b] * t[b]
        C[a, a] += 1.0
        rhs[a] = acc
    for a in range(r):
        jS[a] = col[sel[a]]
    if not _factor(C, pv):
        return FAIL
    y = rhs[:r]
    _lu_solve(C, pv, y)
    # z = z_b + G_S Sigma (v_S + y)
    for b in range(r):
        t[b] += y[b]
    for i in range(M):
        acc = zb[i]
        GSi = GS[i]
        for b in range(r):
            acc += GSi[b] * t[b]
        if not math.isfinite(acc):
            return FAIL
        z[i] = acc
    # the condition: first the bound ||A_{d'}^{-1}||_1 <= ||A_b^{-1}||_1 ||K||_1 (both by Hager's
    # estimate, O(M r) per product), then, where that is too loose, Hager's estimate of
    # ||A_{d'}^{-1}||_1 itself (a triangular solve pair with the base's factors per product)
    limit = min(config.SCYFI_LOW_RANK_COND_MAX, RCOND_MARGIN / rcond_min) / _anorm(lr, s, d)
    LUb, pivb = lr.LU[l], lr.piv[l]
    if r == 0:
        if not est_b < limit:
            return FAIL
    else:
        ops = (GS, jS, C, pv, LUb, pivb, y)
        if not est_b * _norm1_estimate(ops, False, M, t, u) < limit:
            lr.counts[l, SHARP] += 1
            if not _norm1_estimate(ops, True, M, t, u) < limit:
                return FAIL
    # c_d = c_b + R_S Sigma v_S (only bits with v_q != 0 contribute; none for the PLRNN)
    for i in range(M):
        c_out[i] = lr.c[l, i]
    for b in range(r):
        qb = sel[b]
        w = v[qb] if d[qb] != 0 else -v[qb]
        if w != 0.0:
            for i in range(M):
                c_out[i] += lr.R[s, i, qb] * w
    lr.served[l] += 1
    lr.counts[l, UPDATES] += 1
    return SOLVE_OK


@config.njit(inline="always")
def jumps(lr, s, z, d, act, z_out):
    """Whether the solution ``z`` of an update for pattern ``d`` lies in another region (then a jump).

    Its pattern, :math:`[z_{j(q)} + v_q > 0]` (one addition, rounded as any
    evaluation of :math:`(U z + v)_q` rounds it), goes to ``act`` and ``z``
    to ``z_out``.  For a jump that is all the engine needs: the roll-out
    with the family's kernel, O(M^2), is left to consistent candidates, whose
    closure it measures.
    """
    v = lr.v[s]
    col = lr.col[s]
    other = False
    for q in range(d.shape[0]):
        bit = 1 if z[col[q]] + v[q] > 0.0 else 0
        act[q] = bit
        if bit != d[q]:
            other = True
    for i in range(z.shape[0]):
        z_out[i] = z[i]
    return other


@config.njit
def after_solve(lr, l, s, d, refactored, consistent, closure, scale, accept_rtol, LUf, piv, z, c, t, u):
    """Lane ``l``'s bookkeeping after its candidate ``d`` was solved and rolled out.

    Returns SOLVE_OK, or a code that asks the engine to solve the candidate
    again by refactorising: FAIL if an update landed on a fixed point with a
    closure residual above ``SCYFI_LOW_RANK_CLOSURE_RTOL`` times its scale,
    REBASE if it landed on one and the lane's base is to move there.  After a
    refactorised solve (``LUf``, ``piv``: the factors of :math:`I - F_d`; ``z``,
    ``c``: its solution and offset) the base moves to this region when the
    lane has none, when the region is a fixed point's and the base is not
    settled at one yet, or when the base has served
    ``SCYFI_LOW_RANK_REBUILD_MIN`` updates (only refactorised candidates get
    here: too far from the base or failed updates); and only if the region is
    well enough conditioned.
    """
    cycle = consistent == 1 and closure <= accept_rtol * scale
    if not refactored:
        if consistent == 1 and not closure <= config.SCYFI_LOW_RANK_CLOSURE_RTOL * scale:
            return FAIL
        if cycle and lr.settled[l] == 0:
            return REBASE
        return SOLVE_OK
    if not (lr.est[l] <= 0.0 or (cycle and lr.settled[l] == 0) or lr.served[l] >= config.SCYFI_LOW_RANK_REBUILD_MIN):
        return SOLVE_OK
    if cycle:
        lr.settled[l] = 1  # also if refused below: stop moving the base to cycles
    est = _inv_norm1(LUf, piv, t, u)
    if not (est * _anorm(lr, s, d) * config.SCYFI_LOW_RANK_BASE_RCOND < 1.0):
        return SOLVE_OK
    G = lr.G[l]
    P = d.shape[0]
    M = z.shape[0]
    for i in range(M):
        for q in range(P):
            G[i, q] = lr.R[s, i, q]
    solve_many(LUf, piv, G)
    lr.LU[l] = LUf
    lr.piv[l] = piv
    gn = lr.gnorm[l]
    for q in range(P):
        gn[q] = 0.0
    for i in range(M):
        for q in range(P):
            gn[q] += abs(G[i, q])
    for q in range(P):
        if not math.isfinite(gn[q]):
            lr.est[l] = 0.0
            return SOLVE_OK
        lr.d[l, q] = d[q]
    for i in range(M):
        lr.z[l, i] = z[i]
        lr.c[l, i] = c[i]
    lr.est[l] = est
    lr.served[l] = 0
    lr.settled[l] = 1 if cycle else 0
    lr.counts[l, BASES] += 1
    return SOLVE_OK


@config.njit(inline="always")
def refactored(lr, l, code):
    """Count lane ``l``'s refactorised solve by its reason ``code`` (FAR, FAIL or REBASE)."""
    lr.counts[l, FAILED if code == FAIL else REFACTORED] += 1


def max_flips(M: int, P: int) -> int:
    """Most flipped bits an update may have (``config.SCYFI_LOW_RANK_MAX_FLIPS`` of P, at least 1)."""
    return max(1, min(P, M, int(config.SCYFI_LOW_RANK_MAX_FLIPS * P)))
