r"""The SCYFI search engine: many concurrent searches, solved in batches (CPU part).

One *search* is SCYFI's heuristic for one system and one order k (see
:mod:`.scyfi`): candidate region sequences are solved, candidates jump to the
regions their solution actually visits, fresh random candidates restart the
search, and it stops after ``n_outer`` restarts of ``n_inner`` solves without
a discovery (both counters reset on each discovery) or after ``max_solves``.

Here a search is run by one or more *lanes*.  A lane holds one candidate and
its own jump history (inner counter, loop-detection ring); the lanes of a
search share its outer counter, its solve count, its stream of fresh random
candidates and its list of cycles found.  The engine advances every lane in
*rounds*:

1. :func:`_prepare`: each idle lane takes its next candidate (or finishes its
   search) -- the counter logic of the serial algorithm, lane by lane in index
   order, so the result is deterministic;
2. a batched *solve* of all prepared candidates: form ``Z = F_k ... F_1`` and
   ``b``, solve ``(I - Z) z = b``, roll ``z`` out with the true map, record the
   visited patterns, a consistency flag, the closure residual and its scale.
   On the CPU this is :func:`_solve_lanes` (serial, or ``prange`` over chunks);
   :mod:`.gpu_scyfi` does it with a CUDA kernel;
3. :func:`_absorb`: each lane acts on its result -- skip a singular system,
   jump (or restart on a loop of the jump dynamics), or store a new cycle
   after the period, exactness and duplicate checks.

With one lane per search and the same candidate stream the sequence of
candidates is exactly that of the serial algorithm, so every backend returns
the same cycles; more lanes explore more restarts per round (the total budget
without a discovery stays about ``n_outer * n_inner`` solves per search).

Arrays are flat per lane (``cand[l, :k*P]`` is the candidate as a (k, P) block)
so that per-lane blocks are C-contiguous views for the family kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange, types

from .. import config
from .._fnptr import kernel_address, make_caller
from ..models.piecewise import REGIONS_SIG, ROLLOUT_SIG
from ._lu import SOLVE_NONFINITE, SOLVE_OK, SOLVE_SINGULAR, build_lu

__all__ = ["SOLVE_OK", "SOLVE_SINGULAR", "SOLVE_NONFINITE", "solve_region_sequence", "BatchSearch"]

# Linear algebra: small systems (the common case: M of 2 to a few tens) are dominated by
# per-call overheads, so the shared helpers (:mod:`._lu`) index arrays directly and are
# inlined into the solve; above config.SCYFI_SMALL_DIM the LU uses row views, which let
# LLVM vectorise the inner loops, and from config.SCYFI_BLOCKED_LU_DIM on it is blocked
# with BLAS trailing updates.  Hand-written rather than LAPACK so that the kernel keeps
# the factors for the condition estimate and the same code runs on CUDA.
BLAS_MIN_SIZE = config.SCYFI_BLAS_MIN_SIZE


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
_solve_shifted = LU.solve_shifted


@config.njit
def _solve_region_sequence_ws(F, c, rcond_min, z, Zw, Tw, LUw, b, t, u, piv):
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
    return _solve_shifted(Zw, b, rcond_min, z, LUw, t, u, piv)


_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i1 = types.int64[::1]
_i2 = types.int64[:, ::1]
_b1 = types.int8[::1]
_b2 = types.int8[:, ::1]
_b3 = types.int8[:, :, ::1]

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
    LUw = np.empty((M, M))
    b = np.empty(M)
    t = np.empty(M)
    u = np.empty(M)
    piv = np.empty(M, dtype=np.int64)
    return _solve_region_sequence_ws(F, c, rcond_min, z, Zw, Tw, LUw, b, t, u, piv)


# ============================================================================ engine state
# ---- per-search state (int64 rows of `sstate`) ----------------------------------------
SS_OUTER = 0  # outer-loop counter (lane restarts without a discovery)
SS_SOLVES = 1  # solves attempted
SS_SINGULAR = 2  # solves skipped: singular / ill-conditioned / non-finite
SS_FOUND = 3  # cycles stored
SS_FRESH_POS = 4  # absolute index of the next unused candidate in the search's stream
SS_N_OUT = 5  # n_outer
SS_N_IN = 6  # n_inner
SS_MAX_SOLVES = 7  # cap on SS_SOLVES (-1: none)
SS_SINCE = 8  # solves since the last discovery
SS_INEXACT = 9  # consistent candidates whose closure residual was too large
SS_LOWER = 10  # consistent candidates with a shorter period (lower-order cycles)
SS_DUP = 11  # consistent candidates that were a known cycle
SS_LOOPS = 12  # jump sequences that returned to an earlier candidate
SS_STATUS = 13  # RUNNING, DONE or LIMIT
SS_HEAD = 14  # pool index of the last cycle found (-1: none); earlier ones linked by found_prev
SS_ORDER = 15  # the order k
SS_SYSTEM = 16  # row of the parameter array p
SS_STREAM = 17  # stream of fresh candidates
N_SS = 18

RUNNING = 0
DONE = 1  # the loop counters ran out
LIMIT = 2  # max_solves reached

# ---- per-lane state (int64 rows of `lstate`) --------------------------------------------
LS_SEARCH = 0  # the search this lane works for
LS_INNER = 1  # solves since this lane's last fresh start (the inner counter)
LS_NEED_NEW = 2  # 1: the next candidate must be a fresh random one
LS_HCOUNT = 3  # candidates hashed since the last fresh start
LS_STAGE = 4  # IDLE_LANE, READY, SOLVED or FINISHED
N_LS = 5

IDLE_LANE = 0  # needs its next candidate
READY = 1  # holds a candidate to solve
SOLVED = 2  # holds a result to absorb
FINISHED = 3  # its search is over

# ---- engine return codes -----------------------------------------------------------------
GO = 0  # candidates prepared / results absorbed
NEED_FRESH = 1  # a stream of fresh candidates is used up (host extends it; ctl[C_STREAM])
FULL = 2  # the cycle pool is full (host grows it, calls again)
ALL_DONE = 3  # every search has finished

# ---- control vector ----------------------------------------------------------------------
C_NWORK = 0  # prepared lanes listed in `work`
C_STREAM = 1  # the stream to extend after NEED_FRESH
C_POOL = 2  # cycles stored in the pool (all searches)
C_PHASE = 3  # 1 while the results of the listed lanes wait to be absorbed
N_CTL = 4

# ---- per-chunk counters (int64 rows of `cinfo`) --------------------------------------------
# A chunk is a range of lanes holding whole searches: chunks share no search state,
# so their bookkeeping can run on different threads.
CI_ALIVE = 0  # lanes of the chunk listed in alive[lo:] (those whose search may still run)
CI_NWORK = 1  # prepared lanes listed in cwork[lo:]
CI_NEED = 2  # stream of fresh candidates the chunk is waiting for (-1: none)
CI_NPEND = 3  # lanes holding a new cycle, listed in pend[lo:]
N_CI = 4

#: length of the ring buffer of candidate hashes used to detect loops of the jump dynamics.
N_HASH = 32

# ---- solve-result layout (float64 `res` columns) ---------------------------------------
R_CLOSURE = 0  # |F(z_k) - z_1|_inf, the closure residual of the roll-out
R_SCALE = 1  # max(|z_j|_inf, |c_j|_inf): the size of the terms that make the rounding
N_RES = 2


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
def _same_cycle(traj, act, fz, fd, dup_rtol):
    # A consistent candidate is a known cycle if its pattern sequence is a cyclic
    # shift of the known one's (exact: one solution per sequence), or if its points
    # match up to a shift within dup_rtol * (the larger max-norm of the points).
    k, P = act.shape
    M = traj.shape[1]
    for s in range(k):
        same = True
        for j in range(k):
            r = (j + s) % k
            for q in range(P):
                if act[j, q] != fd[r, q]:
                    same = False
                    break
            if not same:
                break
        if same:
            return True
    nrm = 0.0
    nf = 0.0
    for j in range(k):
        for i in range(M):
            nrm = max(nrm, abs(traj[j, i]))
            nf = max(nf, abs(fz[j, i]))
    tol = dup_rtol * max(nrm, nf)
    for s in range(k):
        close = True
        for j in range(k):
            r = (j + s) % k
            for i in range(M):
                if abs(traj[j, i] - fz[r, i]) > tol:
                    close = False
                    break
            if not close:
                break
        if close:
            return True
    return False


@config.njit(inline="always")
def _prepare_chunk(sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork, lo, n_alive, P):
    """Give every idle lane of one chunk its next candidate (chunk lanes: ``alive[lo:lo + n_alive]``).

    The serial algorithm's loop head, per lane: take a fresh candidate if needed,
    end a restart after n_inner solves (and the search after n_outer restarts
    without a discovery), stop at max_solves, then commit one solve.  Lanes are
    visited in index order; those whose search has ended leave ``alive``; the
    prepared ones are listed in ``cwork[lo:]``.  Returns ``(n_alive, n_work,
    stream)`` with ``stream >= 0`` if a stream of fresh candidates ran out (the
    chunk stops there and is resumed after the host extends the stream).
    """
    nw = 0
    m = 0
    for i in range(n_alive):
        l = alive[lo + i]
        stage = lstate[l, LS_STAGE]
        if stage == IDLE_LANE:
            s = lstate[l, LS_SEARCH]
            k = sstate[s, SS_ORDER]
            while True:
                if sstate[s, SS_STATUS] != RUNNING:
                    lstate[l, LS_STAGE] = FINISHED
                    break
                if lstate[l, LS_NEED_NEW] != 0:
                    stream = sstate[s, SS_STREAM]
                    pos = sstate[s, SS_FRESH_POS]
                    idx = pos - fresh_base[stream]
                    if idx >= n_avail[stream]:
                        # keep the lanes not visited yet; the host extends the stream
                        for j in range(i, n_alive):
                            alive[lo + m] = alive[lo + j]
                            m += 1
                        return m, nw, stream
                    for q in range(k * P):
                        cand[l, q] = fresh[stream, idx, q]
                    sstate[s, SS_FRESH_POS] = pos + 1
                    lstate[l, LS_NEED_NEW] = 0
                    hbuf[l, 0] = _hash(cand[l][: k * P].reshape((k, P)))
                    lstate[l, LS_HCOUNT] = 1
                if lstate[l, LS_INNER] >= sstate[s, SS_N_IN]:
                    sstate[s, SS_OUTER] += 1
                    lstate[l, LS_INNER] = 0
                    lstate[l, LS_NEED_NEW] = 1
                    if sstate[s, SS_OUTER] >= sstate[s, SS_N_OUT]:
                        sstate[s, SS_STATUS] = DONE
                    continue
                if sstate[s, SS_MAX_SOLVES] >= 0 and sstate[s, SS_SOLVES] >= sstate[s, SS_MAX_SOLVES]:
                    sstate[s, SS_STATUS] = LIMIT
                    continue
                sstate[s, SS_SOLVES] += 1
                sstate[s, SS_SINCE] += 1
                lstate[l, LS_INNER] += 1
                lstate[l, LS_STAGE] = READY
                break
        if lstate[l, LS_STAGE] == READY:
            cwork[lo + nw] = l
            nw += 1
        if lstate[l, LS_STAGE] != FINISHED:
            alive[lo + m] = l
            m += 1
    return m, nw, -1


@config.njit(inline="always")
def _prepare_one(ch, sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork, chunks, cinfo, P):
    # prepare chunk ch and record its counters in cinfo[ch]
    m, nw, need = _prepare_chunk(sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork,
                                 chunks[ch], cinfo[ch, CI_ALIVE], P)
    cinfo[ch, CI_ALIVE] = m
    cinfo[ch, CI_NWORK] = nw
    cinfo[ch, CI_NEED] = need


@config.njit(inline="always")
def _collect_work(cwork, chunks, cinfo, ctl, work):
    """After every chunk is prepared: list the prepared lanes in ``work`` (chunk order).

    Returns GO, NEED_FRESH (``ctl[C_STREAM]``: the stream to extend) or ALL_DONE.
    """
    n_ch = chunks.shape[0] - 1
    for ch in range(n_ch):
        if cinfo[ch, CI_NEED] >= 0:
            ctl[C_STREAM] = cinfo[ch, CI_NEED]
            ctl[C_NWORK] = 0
            return NEED_FRESH
    nw = 0
    for ch in range(n_ch):
        lo = chunks[ch]
        for j in range(cinfo[ch, CI_NWORK]):
            work[nw] = cwork[lo + j]
            nw += 1
    ctl[C_NWORK] = nw
    return GO if nw > 0 else ALL_DONE


@config.njit(inline="always")
def _absorb_chunk(cwork, lo, n_work, pend, sstate, lstate, hbuf, cand, status, consistent, act, traj, res,
                  found_z, found_d, found_prev, opts, P, M):
    """First pass of :func:`_absorb` over one chunk's solved lanes ``cwork[lo:lo + n_work]``.

    Every outcome except storing a new cycle is applied here; lanes holding a new
    cycle stay SOLVED and are listed in ``pend[lo:]`` (checked against the cycles
    stored and those pending before them, so the second pass stores each once).
    Returns the number of pending lanes.
    """
    dup_rtol = opts[1]
    accept_rtol = opts[2]
    L = hbuf.shape[1]
    n_pend = 0
    for w in range(n_work):
        l = cwork[lo + w]
        if lstate[l, LS_STAGE] != SOLVED:
            continue
        s = lstate[l, LS_SEARCH]
        k = sstate[s, SS_ORDER]
        if status[l] != SOLVE_OK:
            sstate[s, SS_SINGULAR] += 1
            lstate[l, LS_NEED_NEW] = 1
            lstate[l, LS_STAGE] = IDLE_LANE
            continue
        a = act[l][: k * P].reshape((k, P))
        if consistent[l] == 0:
            # jump to the visited regions, unless the jumps have come back to a
            # candidate tried since the last fresh start (they would loop forever)
            hsh = _hash(a)
            hc = lstate[l, LS_HCOUNT]
            n_h = hc if hc < L else L
            seen = False
            for q in range(n_h):
                if hbuf[l, q] == hsh:
                    seen = True
                    break
            if seen:
                sstate[s, SS_LOOPS] += 1
                lstate[l, LS_NEED_NEW] = 1
            else:
                hbuf[l, hc % L] = hsh
                lstate[l, LS_HCOUNT] = hc + 1
                for q in range(k * P):
                    cand[l, q] = act[l, q]
            lstate[l, LS_STAGE] = IDLE_LANE
            continue
        # consistent: a true cycle of period dividing k
        if _has_shorter_period(a):
            sstate[s, SS_LOWER] += 1
            lstate[l, LS_NEED_NEW] = 1
            lstate[l, LS_STAGE] = IDLE_LANE
            continue
        if not (res[l, R_CLOSURE] <= accept_rtol * res[l, R_SCALE]):
            sstate[s, SS_INEXACT] += 1
            lstate[l, LS_NEED_NEW] = 1
            lstate[l, LS_STAGE] = IDLE_LANE
            continue
        tr = traj[l][: (k + 1) * M].reshape((k + 1, M))
        dup = False
        f = sstate[s, SS_HEAD]
        while f >= 0 and not dup:
            dup = _same_cycle(tr, a, found_z[f], found_d[f], dup_rtol)
            f = found_prev[f]
        for j in range(n_pend):
            if dup:
                break
            o = pend[lo + j]
            if lstate[o, LS_SEARCH] == s:
                dup = _same_cycle(tr, a, traj[o][: (k + 1) * M].reshape((k + 1, M)),
                                  act[o][: k * P].reshape((k, P)), dup_rtol)
        if dup:
            sstate[s, SS_DUP] += 1
            lstate[l, LS_NEED_NEW] = 1
            lstate[l, LS_STAGE] = IDLE_LANE
            continue
        pend[lo + n_pend] = l
        n_pend += 1
    return n_pend


@config.njit(inline="always")
def _store_pending(sstate, lstate, act, traj, found_z, found_d, found_at, found_prev, pend, chunks, cinfo, ctl, P, M):
    """Second pass of the absorb step: store the new cycles in lane order (resumable after FULL).

    Pass 1 (:func:`_absorb_chunk`, per chunk) has applied every other outcome.
    """
    cap = found_z.shape[0]
    for ch in range(chunks.shape[0] - 1):
        lo = chunks[ch]
        for j in range(cinfo[ch, CI_NPEND]):
            l = pend[lo + j]
            s = lstate[l, LS_SEARCH]
            k = sstate[s, SS_ORDER]
            n = ctl[C_POOL]
            if n >= cap:
                return FULL
            for r in range(k):
                for i in range(M):
                    found_z[n, r, i] = traj[l, r * M + i]
                for q in range(P):
                    found_d[n, r, q] = act[l, r * P + q]
            found_at[n] = sstate[s, SS_SOLVES]
            found_prev[n] = sstate[s, SS_HEAD]
            sstate[s, SS_HEAD] = n
            ctl[C_POOL] = n + 1
            sstate[s, SS_FOUND] += 1
            sstate[s, SS_SINCE] = 0
            sstate[s, SS_OUTER] = 0
            lstate[l, LS_INNER] = 0
            lstate[l, LS_NEED_NEW] = 1
            lstate[l, LS_STAGE] = IDLE_LANE
    ctl[C_PHASE] = 0
    return GO


# The host loop of the GPU path calls these two (bookkeeping on numba's threads).
# the round loop (_make_run) repeats their few lines inline: calling a parallel=True function from a
# compiled loop costs ~3 us per call, more than a 2-D solve.
@config.njit(parallel=True)
def _host_prepare(sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork, chunks, cinfo, ctl, work, P):
    for ch in prange(chunks.shape[0] - 1):
        _prepare_one(ch, sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork, chunks, cinfo, P)
    return _collect_work(cwork, chunks, cinfo, ctl, work)


@config.njit(parallel=True)
def _host_absorb(sstate, lstate, hbuf, cand, status, consistent, act, traj, res, found_z, found_d, found_at,
                 found_prev, cwork, pend, chunks, cinfo, ctl, opts, P, M):
    for ch in prange(chunks.shape[0] - 1):
        cinfo[ch, CI_NPEND] = _absorb_chunk(cwork, chunks[ch], cinfo[ch, CI_NWORK], pend, sstate, lstate, hbuf,
                                            cand, status, consistent, act, traj, res, found_z, found_d,
                                            found_prev, opts, P, M)
    return _store_pending(sstate, lstate, act, traj, found_z, found_d, found_at, found_prev, pend, chunks, cinfo,
                          ctl, P, M)


# the family kernels are called through their native addresses (see plrnn_numba._fnptr):
# passing them as first-class function values cost ~70 us per argument per engine call.
_call_regions = make_caller(REGIONS_SIG)
_call_rollout = make_caller(ROLLOUT_SIG)


@config.njit(inline="always")
def _solve_chunk(regions, rollout, p, meta, work, w0, w1, sstate, lstate, cand, P, rcond_min,
                 status, consistent, act, traj, res, F, c, Zw, Tw, LUw, b, t, u, piv, z):
    # Solve the prepared lanes work[w0:w1] with one set of work arrays.
    M = z.shape[0]
    for w in range(w0, w1):
        l = work[w]
        s = lstate[l, LS_SEARCH]
        k = sstate[s, SS_ORDER]
        pr = p[sstate[s, SS_SYSTEM]]
        pats = cand[l][: k * P].reshape((k, P))
        Fk = F[: k * M * M].reshape((k, M, M))
        ck = c[: k * M].reshape((k, M))
        _call_regions(regions, pr, meta, pats, Fk, ck)
        st = _solve_region_sequence_ws(Fk, ck, rcond_min, z, Zw, Tw, LUw, b, t, u, piv)
        status[l] = st
        lstate[l, LS_STAGE] = SOLVED
        if st != SOLVE_OK:
            continue
        # roll the candidate out with the true map and read the regions it visits
        # (traj[k] = F(z_k) closes the cycle when the regions are consistent)
        tr = traj[l][: (k + 1) * M].reshape((k + 1, M))
        a = act[l][: k * P].reshape((k, P))
        for i in range(M):
            tr[0, i] = z[i]
        _call_rollout(rollout, pr, meta, tr, a)
        same = 1
        for q in range(k * P):
            if act[l, q] != cand[l, q]:
                same = 0
                break
        consistent[l] = same
        scale = 0.0
        clo = 0.0
        for j in range(k):
            for i in range(M):
                scale = max(scale, abs(tr[j, i]), abs(ck[j, i]))
        for i in range(M):
            clo = max(clo, abs(tr[k, i] - tr[0, i]))
        if not (math.isfinite(clo) and math.isfinite(scale)):
            clo = np.inf  # a diverging roll-out is never accepted
            scale = 1.0
        res[l, R_CLOSURE] = clo
        res[l, R_SCALE] = scale if scale > 0.0 else 1.0


_RUN_SIG = types.int64(
    types.int64, types.int64,  # addresses of the family's regions and rollout kernels
    _f2, _i1,  # p (systems, params), meta
    _i2, _i2, _i2, _b2,  # sstate, lstate, hbuf, cand
    _b3, _i1, _i1,  # fresh, fresh_base, n_avail
    _i1, _i1, _i1, _i1, _i1, _i1, _i2,  # ctl, work, alive, cwork, pend, chunks, cinfo
    _b1, _b1, _b2, _f2, _f2,  # status, consistent, act, traj, res
    _f3, _b3, _i1, _i1,  # found_z, found_d, found_at, found_prev
    _f1, types.int64,  # opts, P
    _f2, _f2, _f3, _f3, _f3, _f2, _f2, _f2, _i2, _f2,  # per-chunk work arrays
    types.boolean,  # parallel
)


def _make_run(threads: bool):
    """Compile the round loop, with ``prange`` (``threads``) or as a plain serial loop.

    Two builds of one source: the serial one (``scyfi(backend="cpu")``) compiles in
    about a third of the time of the threaded one, which is only built when a
    batched backend is used.  Distinct names keep their cache entries apart.
    """

    def _run_cpu(regions, rollout, p, meta, sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, ctl, work, alive,
                 cwork, pend, chunks, cinfo, status, consistent, act, traj, res, found_z, found_d, found_at, found_prev,
                 opts, P, wF, wc, wZ, wT, wLU, wb, wt, wu, wpiv, wz, parallel):
        """Run rounds of prepare / solve / absorb until the host must act (or all searches end).

        Returns NEED_FRESH, FULL or ALL_DONE.  With ``parallel`` the solves of a round
        are split into chunks run on numba's threads (one set of work arrays each),
        and so is the bookkeeping of the lane chunks ``chunks``.
        """
        M = wz.shape[1]
        rcond_min = opts[0]
        n_chunk = wF.shape[0]
        n_ch = chunks.shape[0] - 1
        while True:
            if ctl[C_PHASE] == 1:
                # absorb: pass 1 per chunk of searches, pass 2 stores the new cycles in lane order
                if parallel and n_ch > 1:
                    for ch in prange(n_ch):
                        cinfo[ch, CI_NPEND] = _absorb_chunk(
                            cwork, chunks[ch], cinfo[ch, CI_NWORK], pend, sstate, lstate, hbuf, cand, status,
                            consistent, act, traj, res, found_z, found_d, found_prev, opts, P, M)
                else:
                    for ch in range(n_ch):
                        cinfo[ch, CI_NPEND] = _absorb_chunk(
                            cwork, chunks[ch], cinfo[ch, CI_NWORK], pend, sstate, lstate, hbuf, cand, status,
                            consistent, act, traj, res, found_z, found_d, found_prev, opts, P, M)
                code = _store_pending(sstate, lstate, act, traj, found_z, found_d, found_at, found_prev, pend, chunks,
                                      cinfo, ctl, P, M)
                if code != GO:
                    return code
            # prepare: per chunk of searches, then the list of lanes to solve
            if parallel and n_ch > 1:
                for ch in prange(n_ch):
                    _prepare_one(ch, sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork, chunks,
                                 cinfo, P)
            else:
                for ch in range(n_ch):
                    _prepare_one(ch, sstate, lstate, hbuf, cand, fresh, fresh_base, n_avail, alive, cwork, chunks,
                                 cinfo, P)
            code = _collect_work(cwork, chunks, cinfo, ctl, work)
            if code != GO:
                return code
            nw = ctl[C_NWORK]
            if parallel and nw >= 2 * n_chunk:
                for ch in prange(n_chunk):
                    w0 = ch * nw // n_chunk
                    w1 = (ch + 1) * nw // n_chunk
                    _solve_chunk(regions, rollout, p, meta, work, w0, w1, sstate, lstate, cand, P, rcond_min,
                                 status, consistent, act, traj, res,
                                 wF[ch], wc[ch], wZ[ch], wT[ch], wLU[ch], wb[ch], wt[ch], wu[ch], wpiv[ch], wz[ch])
            else:
                _solve_chunk(regions, rollout, p, meta, work, 0, nw, sstate, lstate, cand, P, rcond_min,
                             status, consistent, act, traj, res,
                             wF[0], wc[0], wZ[0], wT[0], wLU[0], wb[0], wt[0], wu[0], wpiv[0], wz[0])
            ctl[C_PHASE] = 1

    _run_cpu.__name__ = _run_cpu.__qualname__ = "_run_cpu_threads" if threads else "_run_cpu_serial"
    return config.jit(_RUN_SIG, parallel=threads)(_run_cpu)


#: the round loop: serial build (prange loops run as plain loops) and threaded build.
_run_serial = _make_run(False)
_run_threads = _make_run(True)


# ============================================================================ host driver
class BatchSearch:
    """Host side of the engine: arrays, fresh-candidate streams, the round loop, results.

    Parameters
    ----------
    kernels : RegionKernels
        The family's compiled ``regions`` / ``rollout`` kernels
        (:class:`~plrnn_numba.models.piecewise.PiecewiseLinear` ``.kernels``).
    p : (n_systems, n_params) float64
        Kernel parameter vectors of the systems (one family, one ``meta``).
    meta : (n_meta,) int64
        The family's kernel settings.
    M, P : int
        State dimension and pattern bits.
    searches : dict of (n_search,) int arrays
        ``system``, ``order``, ``stream``, ``n_outer``, ``n_inner``, ``max_solves``
        (-1: none) and ``lanes`` (lanes per search, >= 1).
    streams : list
        One object per stream with ``draw() -> (n, k, P) int8`` (the next fresh
        candidates, in order); a stream may be shared by searches of the same order.
    opts : (3,) float64
        ``[rcond_min, dup_rtol, accept_rtol]``.
    """

    #: initial capacity of the cycle pool (doubled whenever the engine reports FULL).
    initial_capacity = 16

    def __init__(self, kernels, p, meta, M, P, searches, streams, opts):
        self.kernels = kernels
        self._addresses = (kernel_address(kernels[0], REGIONS_SIG), kernel_address(kernels[1], ROLLOUT_SIG))
        self.p = np.ascontiguousarray(p, dtype=np.float64)
        self.meta = np.ascontiguousarray(meta, dtype=np.int64)
        self.M, self.P = int(M), int(P)
        self.opts = np.ascontiguousarray(opts, dtype=np.float64)
        order = np.asarray(searches["order"], dtype=np.int64)
        n_search = order.size
        self.kmax = int(order.max())
        ss = np.zeros((n_search, N_SS), dtype=np.int64)
        ss[:, SS_ORDER] = order
        ss[:, SS_SYSTEM] = searches["system"]
        ss[:, SS_STREAM] = searches["stream"]
        ss[:, SS_N_OUT] = searches["n_outer"]
        ss[:, SS_N_IN] = searches["n_inner"]
        ss[:, SS_MAX_SOLVES] = searches["max_solves"]
        ss[:, SS_HEAD] = -1
        self.sstate = ss
        lanes = np.broadcast_to(np.asarray(searches["lanes"], dtype=np.int64), (n_search,))
        lane_search = np.repeat(np.arange(n_search, dtype=np.int64), lanes)
        n_lane = lane_search.size
        ls = np.zeros((n_lane, N_LS), dtype=np.int64)
        ls[:, LS_SEARCH] = lane_search
        ls[:, LS_NEED_NEW] = 1
        self.lstate = ls
        kP, kM = self.kmax * self.P, (self.kmax + 1) * self.M
        self.hbuf = np.zeros((n_lane, N_HASH), dtype=np.int64)
        self.cand = np.zeros((n_lane, kP), dtype=np.int8)
        self.work = np.zeros(n_lane, dtype=np.int64)
        self.alive = np.arange(n_lane, dtype=np.int64)
        self.cwork = np.zeros(n_lane, dtype=np.int64)
        self.pend = np.zeros(n_lane, dtype=np.int64)
        self.ctl = np.zeros(N_CTL, dtype=np.int64)
        self._lane_of_search = np.concatenate([[0], np.cumsum(lanes)])
        self.set_chunks(1)
        self.status = np.zeros(n_lane, dtype=np.int8)
        self.consistent = np.zeros(n_lane, dtype=np.int8)
        self.act = np.zeros((n_lane, kP), dtype=np.int8)
        self.traj = np.zeros((n_lane, kM))
        self.res = np.zeros((n_lane, N_RES))
        cap = max(self.initial_capacity, n_search)
        self.found_z = np.empty((cap, self.kmax, self.M))
        self.found_d = np.empty((cap, self.kmax, self.P), dtype=np.int8)
        self.found_at = np.empty(cap, dtype=np.int64)
        self.found_prev = np.empty(cap, dtype=np.int64)
        # fresh-candidate streams: per stream a window [base, base + n_avail) of its sequence
        self.streams = list(streams)
        n_stream = len(self.streams)
        self._stream_k = np.zeros(n_stream, dtype=np.int64)
        for s in range(n_search):
            self._stream_k[ss[s, SS_STREAM]] = ss[s, SS_ORDER]
        self._windows = [np.zeros((0, kP), dtype=np.int8) for _ in range(n_stream)]
        self.fresh_base = np.zeros(n_stream, dtype=np.int64)
        self.n_avail = np.zeros(n_stream, dtype=np.int64)
        self.fresh = np.zeros((n_stream, 1, kP), dtype=np.int8)
        self.rounds = 0  # rounds run by run_rounds
        self._started = False  # chunks can be re-cut only before the first run

    def set_chunks(self, n_chunks: int) -> None:
        """Split the lanes into about ``n_chunks`` chunks of whole searches (bookkeeping on threads).

        Only before the first run (the chunks' alive lists are rebuilt from all lanes).
        """
        starts = self._lane_of_search
        n_lane = int(starts[-1])
        want = np.linspace(0, n_lane, max(1, int(n_chunks)) + 1)
        edges = np.unique(starts[np.searchsorted(starts, want, side="left").clip(0, starts.size - 1)])
        edges = np.unique(np.concatenate([[0], edges, [n_lane]]))
        self.chunks = edges.astype(np.int64)
        self.cinfo = np.zeros((self.chunks.size - 1, N_CI), dtype=np.int64)
        self.cinfo[:, CI_ALIVE] = np.diff(self.chunks)
        self.cinfo[:, CI_NEED] = -1
        self.alive[:] = np.arange(n_lane)

    # -- fresh candidates ------------------------------------------------------------
    def _extend(self, stream: int) -> None:
        """Append the stream's next chunk; drop the prefix no running search still needs."""
        ss = self.sstate
        users = (ss[:, SS_STREAM] == stream) & (ss[:, SS_STATUS] == RUNNING)
        low = int(ss[users, SS_FRESH_POS].min()) if users.any() else int(self.fresh_base[stream])
        win = self._windows[stream][low - int(self.fresh_base[stream]):]
        new = self.streams[stream].draw()
        k = int(self._stream_k[stream])
        block = np.zeros((new.shape[0], self.kmax * self.P), dtype=np.int8)
        block[:, : k * self.P] = new.reshape(new.shape[0], k * self.P)
        self._windows[stream] = np.concatenate([win, block])
        self.fresh_base[stream] = low
        self.n_avail[:] = [w.shape[0] for w in self._windows]
        width = max(1, int(self.n_avail.max()))
        if width > self.fresh.shape[1] or width < self.fresh.shape[1] // 4:
            self.fresh = np.zeros((len(self._windows), width, self.kmax * self.P), dtype=np.int8)
            for s, w in enumerate(self._windows):
                self.fresh[s, : w.shape[0]] = w
        else:
            self.fresh[stream, : self._windows[stream].shape[0]] = self._windows[stream]

    def _grow_pool(self) -> None:
        for name in ("found_z", "found_d", "found_at", "found_prev"):
            a = getattr(self, name)
            setattr(self, name, np.concatenate([a, np.empty_like(a)]))

    # -- running ---------------------------------------------------------------------
    def run_cpu(self, parallel: bool = False, n_chunks: int = 1) -> None:
        """Run every search to its end on the CPU (``parallel``: threads over chunks of lanes)."""
        ws = self._workspace(max(1, int(n_chunks)) if parallel else 1)
        if parallel and not self._started:
            self.set_chunks(2 * n_chunks)
        self._started = True
        regions, rollout = self._addresses
        while True:
            run = _run_threads if parallel else _run_serial
            with np.errstate(all="ignore"):
                code = run(
                    regions, rollout, self.p, self.meta, self.sstate, self.lstate, self.hbuf, self.cand,
                    self.fresh, self.fresh_base, self.n_avail, self.ctl, self.work, self.alive, self.cwork,
                    self.pend, self.chunks, self.cinfo, self.status,
                    self.consistent, self.act, self.traj, self.res, self.found_z, self.found_d,
                    self.found_at, self.found_prev, self.opts, self.P, *ws, bool(parallel),
                )
            if code == NEED_FRESH:
                self._extend(int(self.ctl[C_STREAM]))
            elif code == FULL:
                self._grow_pool()
            else:
                return

    def _workspace(self, n_chunks: int) -> tuple:
        M, kmax = self.M, self.kmax
        return (
            np.empty((n_chunks, kmax * M * M)), np.empty((n_chunks, kmax * M)),
            np.empty((n_chunks, M, M)), np.empty((n_chunks, M, M)), np.empty((n_chunks, M, M)),
            np.empty((n_chunks, M)), np.empty((n_chunks, M)), np.empty((n_chunks, M)),
            np.empty((n_chunks, M), dtype=np.int64), np.empty((n_chunks, M)),
        )

    def solve_cpu(self, lanes: np.ndarray, n_chunks: int = 1) -> None:
        """One batched solve of the candidates held by ``lanes`` on the CPU (the kernel-level interface)."""
        lanes = np.ascontiguousarray(lanes, dtype=np.int64)
        n_chunks = max(1, min(int(n_chunks), lanes.size))
        regions, rollout = self._addresses
        with np.errstate(all="ignore"):
            _solve_lanes(regions, rollout, self.p, self.meta, lanes, lanes.size, self.sstate, self.lstate,
                         self.cand, self.P, float(self.opts[0]), self.status, self.consistent, self.act,
                         self.traj, self.res, *self._workspace(n_chunks))

    def run_rounds(self, solve, n_threads: int = 1) -> None:
        """Run every search with an external batched solver (one call per round).

        ``solve(lanes)`` must fill ``status``, ``consistent``, ``act``, ``traj``
        and ``res`` at the rows ``lanes`` (see :func:`_solve_chunk` for their
        meaning).  The bookkeeping between solves runs on ``n_threads`` numba threads.
        """
        if n_threads > 1 and not self._started:
            self.set_chunks(8 * n_threads)
        self._started = True
        while True:
            if self.ctl[C_PHASE] == 1:
                code = _host_absorb(self.sstate, self.lstate, self.hbuf, self.cand, self.status, self.consistent,
                                    self.act, self.traj, self.res, self.found_z, self.found_d, self.found_at,
                                    self.found_prev, self.cwork, self.pend, self.chunks, self.cinfo, self.ctl,
                                    self.opts, self.P, self.M)
                if code == FULL:
                    self._grow_pool()
                    continue
            code = _host_prepare(self.sstate, self.lstate, self.hbuf, self.cand, self.fresh, self.fresh_base,
                                 self.n_avail, self.alive, self.cwork, self.chunks, self.cinfo, self.ctl, self.work,
                                 self.P)
            if code == NEED_FRESH:
                self._extend(int(self.ctl[C_STREAM]))
                continue
            if code == ALL_DONE:
                return
            lanes = self.work[: self.ctl[C_NWORK]].copy()
            solve(lanes)
            self.lstate[lanes, LS_STAGE] = SOLVED
            self.ctl[C_PHASE] = 1
            self.rounds += 1

    # -- results ---------------------------------------------------------------------
    def cycles(self, search: int) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
        """Raw cycles of one search in discovery order: (points, patterns, found_at, solves since previous)."""
        k = int(self.sstate[search, SS_ORDER])
        idx = []
        f = int(self.sstate[search, SS_HEAD])
        while f >= 0:
            idx.append(f)
            f = int(self.found_prev[f])
        idx.reverse()
        out = []
        prev = 0
        for f in idx:
            at = int(self.found_at[f])
            out.append((self.found_z[f, :k].copy(), self.found_d[f, :k].copy(), at, at - prev))
            prev = at
        return out

    def stats(self, search: int) -> dict[str, int]:
        """Search counters of one search (names as in the scyfi Dataset)."""
        r = self.sstate[search]
        return {
            "n_solves": int(r[SS_SOLVES]),
            "n_singular": int(r[SS_SINGULAR]),
            "hit_limit": int(r[SS_STATUS] == LIMIT),
            "n_lower_order": int(r[SS_LOWER]),
            "n_duplicates": int(r[SS_DUP]),
            "n_loops": int(r[SS_LOOPS]),
            "n_inexact": int(r[SS_INEXACT]),
        }


_SOLVE_LANES_SIG = types.void(
    types.int64, types.int64,
    _f2, _i1, _i1, types.int64, _i2, _i2, _b2, types.int64, types.float64,
    _b1, _b1, _b2, _f2, _f2,
    _f2, _f2, _f3, _f3, _f3, _f2, _f2, _f2, _i2, _f2,
)


@config.jit(_SOLVE_LANES_SIG, parallel=True)
def _solve_lanes(regions, rollout, p, meta, work, nw, sstate, lstate, cand, P, rcond_min,
                 status, consistent, act, traj, res, wF, wc, wZ, wT, wLU, wb, wt, wu, wpiv, wz):
    # One batched solve of the lanes work[:nw] (chunks on numba's threads), outside the round loop.
    n_chunk = wF.shape[0]
    for ch in prange(n_chunk):
        _solve_chunk(regions, rollout, p, meta, work, ch * nw // n_chunk, (ch + 1) * nw // n_chunk, sstate,
                     lstate, cand, P, rcond_min, status, consistent, act, traj, res,
                     wF[ch], wc[ch], wZ[ch], wT[ch], wLU[ch], wb[ch], wt[ch], wu[ch], wpiv[ch], wz[ch])
