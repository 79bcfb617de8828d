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

1. :func:`_prepare_chunks`: each idle lane takes its next candidate (or
   finishes its search) -- the counter logic of the serial algorithm, lane by
   lane in index order, so the result is deterministic;
2. a batched *solve* of all prepared candidates: form ``Z = F_k ... F_1`` and
   ``b``, solve ``(I - Z) z = b``, roll ``z`` out with the true map, record the
   visited patterns, a consistency flag, the closure residual and its scale.
   On the CPU this is :func:`_solve_chunk` (serial, or ``prange`` over chunks),
   which can solve fixed points (k = 1) by low-rank updates of a factorised
   region instead (:mod:`._low_rank`, ``BatchSearch(low_rank=...)``);
   :mod:`.gpu_scyfi` does it with a CUDA kernel;
3. :func:`_absorb_chunks` and :func:`_store_pending`: each lane acts on its
   result -- skip a singular system, jump (or restart on a loop of the jump
   dynamics), or store a new cycle after the period, exactness and duplicate
   checks.

With one lane per search and the same candidate stream the sequence of
candidates is exactly that of the serial algorithm, so every backend returns
the same cycles; more lanes explore more restarts per round (the total budget
without a discovery stays about ``n_outer * n_inner`` solves per search).

The state is held in a few named bundles passed as single arguments
(:class:`Systems`, :class:`Options`, :class:`Lanes`, :class:`Fresh`,
:class:`Schedule`, :class:`Solved`, :class:`Pool`, :class:`Work`) and in
record arrays whose fields are the counters of each search (:data:`SEARCH`),
lane (:data:`LANE`) and chunk of lanes (:data:`CHUNK`).  Per-lane blocks are
padded to the largest order, so that ``lanes.cand[l, :k]`` (the candidate, k
patterns) and the like are C-contiguous views for the family kernels.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import prange, types

from .. import config
from .._fnptr import kernel_address, make_caller
from ..models.piecewise import REGIONS_SIG, ROLLOUT_SIG
from . import _low_rank
from ._low_rank import COUNTS, LowRank
from ._lu import SOLVE_NONFINITE, SOLVE_OK, SOLVE_SINGULAR
from ._lu_cpu import LU

__all__ = ["SOLVE_OK", "SOLVE_SINGULAR", "SOLVE_NONFINITE", "solve_region_sequence", "BatchSearch"]

# Linear algebra: the CPU build of the shared LU helpers (:mod:`._lu_cpu`, index-only
# loops for small systems, vectorised and blocked variants for larger ones); the k-fold
# products go to BLAS from BLAS_MIN_SIZE output entries on.
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


_solve_shifted = LU.solve_shifted


@config.njit(inline="always")
def _compose2(F, c, Zw, b):
    # _compose for M = 2, with the running product Z and offset b in registers
    z00, z01, z10, z11 = F[0, 0, 0], F[0, 0, 1], F[0, 1, 0], F[0, 1, 1]
    b0, b1 = c[0, 0], c[0, 1]
    for s in range(1, F.shape[0]):
        f00, f01, f10, f11 = F[s, 0, 0], F[s, 0, 1], F[s, 1, 0], F[s, 1, 1]
        z00, z01, z10, z11 = (f00 * z00 + f01 * z10, f00 * z01 + f01 * z11,
                              f10 * z00 + f11 * z10, f10 * z01 + f11 * z11)
        b0, b1 = c[s, 0] + f00 * b0 + f01 * b1, c[s, 1] + f10 * b0 + f11 * b1
    Zw[0, 0], Zw[0, 1], Zw[1, 0], Zw[1, 1] = z00, z01, z10, z11
    b[0], b[1] = b0, b1


@config.njit(inline="always")
def _compose3(F, c, Zw, b):
    # the same for M = 3
    z00, z01, z02 = F[0, 0, 0], F[0, 0, 1], F[0, 0, 2]
    z10, z11, z12 = F[0, 1, 0], F[0, 1, 1], F[0, 1, 2]
    z20, z21, z22 = F[0, 2, 0], F[0, 2, 1], F[0, 2, 2]
    b0, b1, b2 = c[0, 0], c[0, 1], c[0, 2]
    for s in range(1, F.shape[0]):
        f00, f01, f02 = F[s, 0, 0], F[s, 0, 1], F[s, 0, 2]
        f10, f11, f12 = F[s, 1, 0], F[s, 1, 1], F[s, 1, 2]
        f20, f21, f22 = F[s, 2, 0], F[s, 2, 1], F[s, 2, 2]
        z00, z01, z02, z10, z11, z12, z20, z21, z22 = (
            f00 * z00 + f01 * z10 + f02 * z20, f00 * z01 + f01 * z11 + f02 * z21, f00 * z02 + f01 * z12 + f02 * z22,
            f10 * z00 + f11 * z10 + f12 * z20, f10 * z01 + f11 * z11 + f12 * z21, f10 * z02 + f11 * z12 + f12 * z22,
            f20 * z00 + f21 * z10 + f22 * z20, f20 * z01 + f21 * z11 + f22 * z21, f20 * z02 + f21 * z12 + f22 * z22,
        )
        b0, b1, b2 = (c[s, 0] + f00 * b0 + f01 * b1 + f02 * b2, c[s, 1] + f10 * b0 + f11 * b1 + f12 * b2,
                      c[s, 2] + f20 * b0 + f21 * b1 + f22 * b2)
    Zw[0, 0], Zw[0, 1], Zw[0, 2] = z00, z01, z02
    Zw[1, 0], Zw[1, 1], Zw[1, 2] = z10, z11, z12
    Zw[2, 0], Zw[2, 1], Zw[2, 2] = z20, z21, z22
    b[0], b[1], b[2] = b0, b1, b2


@config.njit(inline="always")
def _compose(F, c, Zw, Tw, b, t):
    # Z = F_k ... F_1 and b (see solve_region_sequence); returns the work array that holds Z
    k = F.shape[0]
    M = b.shape[0]
    # two and three dimensions written out (the 2-D examples, a shallow PLRNN's 3 latent states): loops
    # over a run-time dimension cost several times the arithmetic of a long cycle's 2 x 2 or 3 x 3 products
    if M == 2:
        _compose2(F, c, Zw, b)
        return Zw
    if M == 3:
        _compose3(F, c, Zw, b)
        return Zw
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
    return Zw


@config.njit
def _solve_region_sequence_ws(F, c, rcond_min, z, Zw, Tw, LUw, b, t, u, piv):
    # Workspace version of solve_region_sequence (no allocation: called once per candidate).
    # One call of the inlined LU solve (each call site would compile its own copy)
    return _solve_shifted(_compose(F, c, Zw, Tw, b, t), b, rcond_min, z, LUw, t, u, piv)


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
# The engine's state is a few named bundles (the NamedTuple classes below, built on the
# host and passed as single arguments) of plain arrays and of record arrays, whose fields
# name the counters of each search, lane, chunk, list slot, stream and stored cycle.  Both
# go into explicit signatures and numba's disk cache, and a record field compiles to the
# same load or store at a fixed offset as an int64 row indexed by a constant.
#
# Why so few arrays: numba counts references to arrays, and each new name for an array
# (an array argument of an inlined helper, a slice, a view) costs an atomic increment and
# decrement.  In a 2-D search these took about half the time (perf, numba 0.68).  So the
# scalars are record fields, a bundle holds only the arrays its users need, per-lane
# blocks are 3-D so that ``x[l, :k]`` is one view, and the loop-detection ring lives in
# the lane record.  Calling the helpers instead of inlining them avoids the new names but
# pushes every field of every array onto the stack, which measured slower still.

_I8 = np.int64
_F8 = np.float64

#: one record per search (``BatchSearch.searches``): its settings, counters and state.
SEARCH = np.dtype(
    [
        ("outer", _I8),  # outer-loop counter (lane restarts without a discovery)
        ("solves", _I8),  # solves attempted
        ("singular", _I8),  # solves skipped: singular / ill-conditioned / non-finite
        ("found", _I8),  # cycles stored
        ("fresh_pos", _I8),  # absolute index of the next unused candidate in the search's stream
        ("n_outer", _I8),  # outer-loop count
        ("n_inner", _I8),  # inner-loop count (solves per lane restart)
        ("max_solves", _I8),  # cap on `solves` (-1: none)
        ("since_found", _I8),  # solves since the last discovery
        ("inexact", _I8),  # consistent candidates whose closure residual was too large
        ("lower_order", _I8),  # consistent candidates with a shorter period (lower-order cycles)
        ("duplicates", _I8),  # consistent candidates that were a known cycle
        ("loops", _I8),  # jump sequences that returned to an earlier candidate
        ("status", _I8),  # RUNNING, DONE or LIMIT
        ("head", _I8),  # pool index of the last cycle found (-1: none); earlier ones linked by ENTRY.prev
        ("order", _I8),  # the order k
        ("system", _I8),  # row of the parameter array Systems.p
        ("stream", _I8),  # stream of fresh candidates
        ("fresh_solved", _I8),  # solves of fresh random candidates (the random starts; see BatchSearch.stats)
    ],
    align=True,
)

RUNNING = 0
DONE = 1  # the loop counters ran out
LIMIT = 2  # max_solves reached

#: length of the ring buffer of candidate hashes used to detect loops of the jump dynamics.
N_HASH = 32

#: one record per lane (``Lanes.state``): its counters and the result of its last solve.
LANE = np.dtype(
    [
        ("search", _I8),  # the search this lane works for
        ("inner", _I8),  # solves since this lane's last fresh start (the inner counter)
        ("need_new", _I8),  # 1: the next candidate must be a fresh random one
        ("n_hashed", _I8),  # candidates hashed since the last fresh start
        ("hashes", _I8, (N_HASH,)),  # their hashes, a ring: the j-th (from 0) in slot j % N_HASH
        ("stage", _I8),  # IDLE_LANE, READY, SOLVED or FINISHED
        # the solve (the roll-out itself is in Solved.act / Solved.traj):
        ("status", _I8),  # SOLVE_OK, SOLVE_SINGULAR or SOLVE_NONFINITE
        ("consistent", _I8),  # 1 if the roll-out visits exactly the candidate's regions
        ("closure", _F8),  # |F(z_k) - z_1|_inf, the closure residual of the roll-out
        ("scale", _F8),  # max(|z_j|_inf, |c_j|_inf): the size of the terms that make the rounding
        ("pend_hits", _I8),  # while this lane holds a new cycle: other lanes' hits on it this round
    ],
    align=True,
)

IDLE_LANE = 0  # needs its next candidate
READY = 1  # holds a candidate to solve
SOLVED = 2  # holds a result to absorb
FINISHED = 3  # its search is over

# ---- engine return codes -----------------------------------------------------------------
GO = 0  # candidates prepared / results absorbed
NEED_FRESH = 1  # a stream of fresh candidates is used up (host extends it; CONTROL.stream)
FULL = 2  # the cycle pool is full (host grows it, calls again)
ALL_DONE = 3  # every search has finished

#: the round loop's control record (``Schedule.ctl``, an array of one).
CONTROL = np.dtype(
    [
        ("n_work", _I8),  # prepared lanes listed in Schedule.work
        ("stream", _I8),  # the stream to extend after NEED_FRESH
        ("stored", _I8),  # cycles stored in the pool (all searches)
        ("phase", _I8),  # 1 while the results of the listed lanes wait to be absorbed
    ],
    align=True,
)

#: one record per chunk (``Schedule.cinfo``).  A chunk is a range of lanes holding whole
#: searches: chunks share no search state, so their bookkeeping can run on different threads.
CHUNK = np.dtype(
    [
        ("lo", _I8),  # first lane; the chunk's lists are Schedule.lists[lo:lo + n]
        ("n_alive", _I8),  # lanes whose search may still run, in the `alive` list
        ("n_work", _I8),  # lanes prepared this round, in the `cwork` list
        ("need", _I8),  # stream of fresh candidates the chunk is waiting for (-1: none)
        ("n_pend", _I8),  # lanes holding a new cycle, in the `pend` list
    ],
    align=True,
)

#: one record per list slot (``Schedule.lists``): slot lo + j holds entry j of the lane
#: lists of the chunk starting at lane lo (a chunk never lists more lanes than it has).
SLOT = np.dtype([("alive", _I8), ("cwork", _I8), ("pend", _I8)], align=True)

#: one record per stream of fresh candidates (``Fresh.streams``).
STREAM = np.dtype(
    [
        ("base", _I8),  # stream index of the window's first candidate
        ("n_avail", _I8),  # candidates in the window
        ("offset", _I8),  # where the window starts in Fresh.cand (k * P entries per candidate of order k)
    ],
    align=True,
)

#: one record per cycle of the pool (``Pool.entry``).
ENTRY = np.dtype(
    [
        ("found_at", _I8),  # the search's solve count at the discovery
        ("prev", _I8),  # the search's previous cycle (-1: none)
        ("hits", _I8),  # consistent candidates that landed on this cycle (its discovery included)
    ],
    align=True,
)


class Options(NamedTuple):
    """Sizes and tolerances (scalars: free to pass to every helper)."""

    P: int  # pattern bits
    M: int  # state dimension
    rcond_min: float  # systems with a smaller reciprocal condition number count as singular
    dup_rtol: float  # relative tolerance of the duplicate check
    accept_rtol: float  # a consistent candidate is a cycle if closure <= accept_rtol * scale
    lr_max: int  # most flipped bits a fixed point is solved with by a low-rank update (0: no updates)


class Systems(NamedTuple):
    """The family's kernels and the systems' parameters."""

    regions: int  # native address of the family's ``regions`` kernel
    rollout: int  # native address of the family's ``rollout`` kernel
    p: np.ndarray  # (n_systems, n_params) float64: kernel parameter vectors
    meta: np.ndarray  # (n_meta,) int64: the family's kernel settings


class Lanes(NamedTuple):
    """Per-lane state."""

    state: np.ndarray  # (n_lane,) LANE records
    cand: np.ndarray  # (n_lane, kmax, P) int8: the candidate held (its first k rows)


class Fresh(NamedTuple):
    """The windows of the fresh-candidate streams drawn so far by the host."""

    # (n,) int8: the windows of all streams, each its n_avail candidates of k x P bits (k: the stream's
    # order) from streams[s].offset on; ragged, so that a long window of one stream costs no memory in
    # the others (a dense (stream, candidate, kmax, P) array reached 40 GiB for 3240 streams of order <= 40)
    cand: np.ndarray
    streams: np.ndarray  # (n_stream,) STREAM records


class Schedule(NamedTuple):
    """Which lanes each chunk has alive, prepared or pending, and the lanes to solve this round.

    Never name a variable of this type ``sched``: numba's gufuncs for ``prange``
    take their own ``sched`` argument, and a tuple of that name breaks the build.
    """

    ctl: np.ndarray  # (1,) CONTROL record
    cinfo: np.ndarray  # (n_chunk,) CHUNK records
    lists: np.ndarray  # (n_lane,) SLOT records: the chunks' lane lists
    work: np.ndarray  # (n_lane,) int64: the lanes to solve this round (CONTROL.n_work of them)


class Solved(NamedTuple):
    """Per-lane roll-outs of the last solve (status, flags and residuals are in LANE)."""

    act: np.ndarray  # (n_lane, kmax, P) int8: the patterns the roll-out visits
    traj: np.ndarray  # (n_lane, kmax + 1, M) float64: the roll-out z_1 .. z_k, F(z_k)


class Pool(NamedTuple):
    """The cycles found by all searches (each search's list linked from SEARCH.head)."""

    z: np.ndarray  # (cap, kmax, M) float64: points
    d: np.ndarray  # (cap, kmax, P) int8: patterns
    entry: np.ndarray  # (cap,) ENTRY records


class Work(NamedTuple):
    """Work arrays of the solves, one row per chunk of solves (``F[ch]`` etc.)."""

    F: np.ndarray  # (n, kmax, M, M): region factors
    c: np.ndarray  # (n, kmax, M): region offsets
    Z: np.ndarray  # (n, M, M)
    T: np.ndarray  # (n, M, M)
    LU: np.ndarray  # (n, M, M)
    b: np.ndarray  # (n, M)
    t: np.ndarray  # (n, M)
    u: np.ndarray  # (n, M)
    piv: np.ndarray  # (n, M) int64
    z: np.ndarray  # (n, M): the solution


def _bundle(cls, **fields):
    # numba type of a bundle (a NamedUniTuple when every field has one type, as numba.typeof gives)
    if set(fields) != set(cls._fields):
        raise TypeError(f"{cls.__name__}: fields {sorted(fields)} != {sorted(cls._fields)}")
    return types.BaseTuple.from_types([fields[f] for f in cls._fields], cls)


def _records(dtype):
    # numba type of a C-contiguous 1-D array of records (aligned, as numba.typeof gives)
    return numba.from_dtype(dtype)[::1]


_OPTIONS = _bundle(Options, P=types.int64, M=types.int64, rcond_min=types.float64, dup_rtol=types.float64,
                   accept_rtol=types.float64, lr_max=types.int64)
_SYSTEMS = _bundle(Systems, regions=types.int64, rollout=types.int64, p=_f2, meta=_i1)
_SEARCHES = _records(SEARCH)
_LANES = _bundle(Lanes, state=_records(LANE), cand=_b3)
_FRESH = _bundle(Fresh, cand=types.int8[::1], streams=_records(STREAM))
_SCHEDULE = _bundle(Schedule, ctl=_records(CONTROL), cinfo=_records(CHUNK), lists=_records(SLOT), work=_i1)
_SOLVED = _bundle(Solved, act=_b3, traj=_f3)
_POOL = _bundle(Pool, z=_f3, d=_b3, entry=_records(ENTRY))
_WORK = _bundle(Work, F=types.float64[:, :, :, ::1], c=_f3, Z=_f3, T=_f3, LU=_f3, b=_f2, t=_f2, u=_f2, piv=_i2, z=_f2)
_LOW_RANK = _bundle(LowRank, R=_f3, v=_f2, col=_i2, jbit=_i2, anorm=_f3, d=_b2, G=_f3, LU=_f3, piv=_i2, gnorm=_f2,
                    z=_f2, c=_f2, est=_f1, served=_i1, settled=_i1, counts=_i2, sel=_i2)


@config.njit
def _hash(pats, l, k):
    # FNV-1a style 64-bit hash of the pattern list pats[l, :k] (int64 arithmetic wraps on
    # overflow).  A row index rather than a view: see "Why so few arrays" above.
    h = np.int64(-3750763034362895579)
    prime = np.int64(1099511628211)
    for j in range(k):
        for q in range(pats.shape[2]):
            h = (h ^ np.int64(pats[l, j, q] + 2 * q + 1)) * prime
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
def _restart(lane):
    # the lane's next candidate is a fresh random one
    lane.need_new = 1
    lane.stage = IDLE_LANE


@config.njit(inline="always")
def _advance(search, lane):
    # One step of the serial algorithm's loop head for an idle lane (records only): the
    # search is over (FINISHED); or end a restart after n_inner solves, and the search
    # after n_outer restarts without a discovery; or stop at max_solves; or commit one
    # solve of the candidate held (READY).
    if search.status != RUNNING:
        lane.stage = FINISHED
    elif lane.inner >= search.n_inner:
        search.outer += 1
        lane.inner = 0
        lane.need_new = 1
        if search.outer >= search.n_outer:
            search.status = DONE
    elif search.max_solves >= 0 and search.solves >= search.max_solves:
        search.status = LIMIT
    else:
        search.solves += 1
        search.since_found += 1
        # a lane's first candidate since its fresh start is the only one hashed so far:
        # these counts are the random starts the completeness estimate needs
        if lane.n_hashed == 1:
            search.fresh_solved += 1
        lane.inner += 1
        lane.stage = READY


@config.njit
def _take_fresh(search, lane, l, lanes, fresh):
    # Give lane l the search's next fresh candidate; returns -1, or the search's stream
    # if the host must extend it first.
    k = search.order
    s = search.stream
    idx = search.fresh_pos - fresh.streams[s].base
    if idx >= fresh.streams[s].n_avail:
        return s
    P = lanes.cand.shape[2]
    o = fresh.streams[s].offset + idx * k * P
    for j in range(k):
        for q in range(P):
            lanes.cand[l, j, q] = fresh.cand[o + j * P + q]
    search.fresh_pos += 1
    lane.need_new = 0
    lane.hashes[0] = _hash(lanes.cand, l, k)
    lane.n_hashed = 1
    return -1


@config.njit(inline="always")
def _prepare_chunks(c0, c1, options, searches, lanes, fresh, schedule):
    """Give every idle lane of the chunks ``c0 .. c1 - 1`` its next candidate.

    The serial algorithm's loop head, lane by lane in index order
    (:func:`_take_fresh`, :func:`_advance`).  Lanes whose search has ended leave
    the chunk's ``alive`` list; the prepared ones are listed in its ``cwork``.
    If a stream of fresh candidates runs out the chunk stops there (``need``)
    and resumes at that lane after the host has extended the stream.
    """
    for ch in range(c0, c1):
        info = schedule.cinfo[ch]
        lo = info.lo
        n_alive = info.n_alive
        need = -1
        m = 0
        nw = 0
        for i in range(n_alive):
            l = schedule.lists[lo + i].alive
            lane = lanes.state[l]
            search = searches[lane.search]
            while lane.stage == IDLE_LANE:
                if lane.need_new != 0 and search.status == RUNNING:
                    need = _take_fresh(search, lane, l, lanes, fresh)
                    if need >= 0:
                        break
                _advance(search, lane)
            if need >= 0:
                # keep this lane and those not visited yet
                for j in range(i, n_alive):
                    schedule.lists[lo + m].alive = schedule.lists[lo + j].alive
                    m += 1
                break
            if lane.stage == READY:
                schedule.lists[lo + nw].cwork = l
                nw += 1
            if lane.stage != FINISHED:
                schedule.lists[lo + m].alive = l
                m += 1
        info.n_alive = m
        info.n_work = nw
        info.need = need


@config.njit(inline="always")
def _collect_work(schedule):
    """After every chunk is prepared: list the prepared lanes in ``schedule.work`` (chunk order).

    Returns GO, NEED_FRESH (``CONTROL.stream``: the stream to extend) or ALL_DONE.
    """
    ctl = schedule.ctl[0]
    for ch in range(schedule.cinfo.shape[0]):
        if schedule.cinfo[ch].need >= 0:
            ctl.stream = schedule.cinfo[ch].need
            ctl.n_work = 0
            return NEED_FRESH
    nw = 0
    for ch in range(schedule.cinfo.shape[0]):
        info = schedule.cinfo[ch]
        for j in range(info.n_work):
            schedule.work[nw] = schedule.lists[info.lo + j].cwork
            nw += 1
    ctl.n_work = nw
    return GO if nw > 0 else ALL_DONE


@config.njit(inline="always")
def _absorb_chunks(c0, c1, options, searches, lanes, solved, pool, schedule):
    """First pass of the absorb step over the solved lanes of the chunks ``c0 .. c1 - 1``.

    Every outcome except storing a new cycle is applied here; lanes holding a new
    cycle stay SOLVED and are listed in the chunk's ``pend`` (checked against the
    cycles stored and those pending before them, so the second pass stores each once).
    """
    P = options.P
    for ch in range(c0, c1):
        info = schedule.cinfo[ch]
        lo = info.lo
        n_pend = 0
        for w in range(info.n_work):
            l = schedule.lists[lo + w].cwork
            lane = lanes.state[l]
            if lane.stage != SOLVED:
                continue
            search = searches[lane.search]
            k = search.order
            if lane.status != SOLVE_OK:
                search.singular += 1
                _restart(lane)
                continue
            if lane.consistent == 0:
                # jump to the visited regions, unless the jumps have come back to a
                # candidate tried since the last fresh start (they would loop forever)
                hsh = _hash(solved.act, l, k)
                hc = lane.n_hashed
                seen = False
                for q in range(min(hc, N_HASH)):
                    if lane.hashes[q] == hsh:
                        seen = True
                        break
                if seen:
                    search.loops += 1
                    lane.need_new = 1
                else:
                    lane.hashes[hc % N_HASH] = hsh
                    lane.n_hashed = hc + 1
                    for j in range(k):
                        for q in range(P):
                            lanes.cand[l, j, q] = solved.act[l, j, q]
                lane.stage = IDLE_LANE
                continue
            # consistent: a true cycle of period dividing k
            a = solved.act[l, :k]
            if _has_shorter_period(a):
                search.lower_order += 1
                _restart(lane)
                continue
            if not (lane.closure <= options.accept_rtol * lane.scale):
                search.inexact += 1
                _restart(lane)
                continue
            tr = solved.traj[l, : k + 1]
            # a duplicate is a hit on the known cycle: count it there (the hit counts feed
            # the unseen-cycle estimate); a search's cycles and lanes are all in this chunk
            dup = False
            f = search.head
            while f >= 0:
                if _same_cycle(tr, a, pool.z[f], pool.d[f], options.dup_rtol):
                    dup = True
                    pool.entry[f].hits += 1
                    break
                f = pool.entry[f].prev
            for j in range(n_pend):
                if dup:
                    break
                o = schedule.lists[lo + j].pend
                if lanes.state[o].search == lane.search:
                    dup = _same_cycle(tr, a, solved.traj[o, : k + 1], solved.act[o, :k], options.dup_rtol)
                    if dup:
                        lanes.state[o].pend_hits += 1
            if dup:
                search.duplicates += 1
                _restart(lane)
                continue
            schedule.lists[lo + n_pend].pend = l
            n_pend += 1
        info.n_pend = n_pend


@config.njit(inline="always")
def _store_pending(options, searches, lanes, solved, pool, schedule):
    """Second pass of the absorb step: store the new cycles in lane order.

    Pass 1 (:func:`_absorb_chunks`) has applied every other outcome.  Returns GO,
    or FULL when the pool is full (the host grows it and the engine repeats both
    passes: the stored lanes are idle by then, the others still pending).
    """
    P, M = options.P, options.M
    ctl = schedule.ctl[0]
    cap = pool.z.shape[0]
    for ch in range(schedule.cinfo.shape[0]):
        info = schedule.cinfo[ch]
        for j in range(info.n_pend):
            l = schedule.lists[info.lo + j].pend
            lane = lanes.state[l]
            search = searches[lane.search]
            k = search.order
            n = ctl.stored
            if n >= cap:
                return FULL
            for r in range(k):
                for i in range(M):
                    pool.z[n, r, i] = solved.traj[l, r, i]
                for q in range(P):
                    pool.d[n, r, q] = solved.act[l, r, q]
            pool.entry[n].found_at = search.solves
            pool.entry[n].prev = search.head
            pool.entry[n].hits = 1 + lane.pend_hits
            lane.pend_hits = 0
            search.head = n
            ctl.stored = n + 1
            search.found += 1
            search.since_found = 0
            search.outer = 0
            lane.inner = 0
            _restart(lane)
    ctl.phase = 0
    return GO


# the family kernels are called through their native addresses (see plrnn_numba._fnptr):
# passing them as first-class function values cost ~70 us per argument per engine call.
_call_regions = make_caller(REGIONS_SIG)
_call_rollout = make_caller(ROLLOUT_SIG)


def _make_solve_chunk(with_low_rank: bool):
    """Build the solve of a chunk of lanes, without or with the low-rank updates of :mod:`._low_rank`.

    Two builds of one source, ``with_low_rank`` a closure constant that prunes
    the update code from the plain build (whose ``lr`` argument is unused).
    Why two: each array of a bundle passed into an inlined helper costs an
    atomic reference-count increment and decrement per call (see "Why so few
    arrays" above), and the low-rank bundle's 17 arrays made every round of a
    2-D search about 20 % slower; the plain build never sees them.
    """

    def solve_chunk(systems, options, searches, lanes, solved, ws, lr, ch, work, w0, w1):
        """Solve the prepared lanes ``work[w0:w1]`` with the work arrays of row ``ch`` of ``ws``.

        Writes each lane's status, and for solved systems the roll-out and its
        patterns (``solved``), the consistency flag, the closure residual and its
        scale.  With low-rank updates, fixed points (k = 1) are first tried as
        updates of the lane's factorised base region (``lr``); what an update
        cannot decide is solved by refactorising.
        """
        M, P = options.M, options.P
        z, Zw, Tw, LUw = ws.z[ch], ws.Z[ch], ws.T[ch], ws.LU[ch]
        b, t, u, piv = ws.b[ch], ws.t[ch], ws.u[ch], ws.piv[ch]
        for w in range(w0, w1):
            l = work[w]
            lane = lanes.state[l]
            search = searches[lane.search]
            k = search.order
            pr = systems.p[search.system]
            Fk = ws.F[ch, :k]
            ck = ws.c[ch, :k]
            code = _low_rank.FAR
            if with_low_rank:
                if k == 1:
                    code = _low_rank.solve(lr, l, search.system, lanes.cand[l, 0], options.rcond_min,
                                           options.lr_max, z, ck[0], Zw, Tw, b, t, u, piv)
            while True:
                refactored = code != SOLVE_OK
                if refactored:
                    _call_regions(systems.regions, pr, systems.meta, lanes.cand[l, :k], Fk, ck)
                    st = _solve_region_sequence_ws(Fk, ck, options.rcond_min, z, Zw, Tw, LUw, b, t, u, piv)
                    if with_low_rank:
                        if k == 1:
                            _low_rank.refactored(lr, l, code)
                else:
                    st = SOLVE_OK
                lane.status = st
                lane.stage = SOLVED
                if st != SOLVE_OK:
                    break
                jump = False
                if with_low_rank:
                    if not refactored:
                        jump = _low_rank.jumps(lr, search.system, z, lanes.cand[l, 0], solved.act[l, 0],
                                               solved.traj[l, 0])
                if jump:
                    lane.consistent = 0  # the jump target is all the absorb step reads
                else:
                    # roll the candidate out with the true map and read the regions it visits
                    # (traj[k] = F(z_k) closes the cycle when the regions are consistent).  Written
                    # out here: an inlined helper's array arguments cost ~5 % of a 2-D search
                    tr = solved.traj[l, : k + 1]
                    for i in range(M):
                        tr[0, i] = z[i]
                    _call_rollout(systems.rollout, pr, systems.meta, tr, solved.act[l, :k])
                    same = 1
                    for j in range(k):
                        for q in range(P):
                            if solved.act[l, j, q] != lanes.cand[l, j, q]:
                                same = 0
                                break
                        if same == 0:
                            break
                    lane.consistent = same
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
                    lane.closure = clo
                    lane.scale = scale if scale > 0.0 else 1.0
                if with_low_rank:
                    if k == 1:
                        # may ask for the candidate to be refactorised (exactness of a fixed point found
                        # by an update, or to move the lane's base there) and may move the base
                        code = _low_rank.after_solve(lr, l, search.system, lanes.cand[l, 0], refactored,
                                                     lane.consistent, lane.closure, lane.scale, options.accept_rtol,
                                                     LUw, piv, z, ck[0], t, u)
                        if code != SOLVE_OK:
                            continue
                break

    solve_chunk.__name__ = solve_chunk.__qualname__ = "_solve_chunk_low_rank" if with_low_rank else "_solve_chunk"
    return config.njit(inline="always")(solve_chunk)


#: the solve of a chunk of lanes: plain, and with low-rank updates of fixed points.
_solve_chunk = _make_solve_chunk(False)
_solve_chunk_low_rank = _make_solve_chunk(True)


# prange bodies call these copies instead of the inlined helpers: numba's parfor pass drops
# the writes made through a NamedTuple's array fields in code inlined into a prange body
# (numba issues #5872, #7135; seen with numba 0.68), and behind a call they stay.  The
# bodies pass the chunk index as np.int64: numba types a prange body twice, with a signed
# and with an unsigned index, and would compile each copy twice.
@config.njit
def _prepare_called(c0, c1, options, searches, lanes, fresh, schedule):
    _prepare_chunks(c0, c1, options, searches, lanes, fresh, schedule)


@config.njit
def _absorb_called(c0, c1, options, searches, lanes, solved, pool, schedule):
    _absorb_chunks(c0, c1, options, searches, lanes, solved, pool, schedule)


@config.njit
def _solve_called(systems, options, searches, lanes, solved, ws, lr, ch, work, w0, w1):
    # also the low-rank path of the serial round loop: its bundle reaches only this call
    if options.lr_max > 0:
        _solve_chunk_low_rank(systems, options, searches, lanes, solved, ws, lr, ch, work, w0, w1)
    else:
        _solve_chunk(systems, options, searches, lanes, solved, ws, 0, ch, work, w0, w1)


# The host loop of the GPU path calls these two (bookkeeping on numba's threads).
# the round loop (_make_run) repeats their few lines inline: calling a parallel=True function from a
# compiled loop costs ~3 us per call, more than a 2-D solve.
@config.njit(parallel=True)
def _host_prepare(options, searches, lanes, fresh, schedule):
    for ch in prange(schedule.cinfo.shape[0]):
        _prepare_called(np.int64(ch), np.int64(ch) + 1, options, searches, lanes, fresh, schedule)
    return _collect_work(schedule)


@config.njit(parallel=True)
def _host_absorb(options, searches, lanes, solved, pool, schedule):
    for ch in prange(schedule.cinfo.shape[0]):
        _absorb_called(np.int64(ch), np.int64(ch) + 1, options, searches, lanes, solved, pool, schedule)
    return _store_pending(options, searches, lanes, solved, pool, schedule)


_RUN_SIG = types.int64(_SYSTEMS, _OPTIONS, _SEARCHES, _LANES, _FRESH, _SCHEDULE, _SOLVED, _POOL, _WORK, _LOW_RANK)


def _make_run(threads: bool):
    """Compile the round loop, with ``prange`` (``threads``) or as a plain serial loop.

    Two builds of one source: the serial one (``scyfi(backend="cpu")``) compiles in
    about a third of the time of the threaded one, which is only built when a
    batched backend is used.  ``threads`` is a closure constant, so numba prunes
    the ``prange`` branches from the serial build (it is part of the cache key,
    and distinct names keep the two builds' cache entries apart).
    """

    def _run_cpu(systems, options, searches, lanes, fresh, schedule, solved, pool, ws, lr):
        """Run rounds of prepare / solve / absorb until the host must act (or all searches end).

        Returns NEED_FRESH, FULL or ALL_DONE.  In the threaded build the solves of a
        round are split into chunks run on numba's threads (one row of ``ws`` each),
        and so is the bookkeeping of the lane chunks ``schedule.cinfo``.
        """
        ctl = schedule.ctl[0]
        n_solver = ws.z.shape[0]
        n_ch = schedule.cinfo.shape[0]
        while True:
            if ctl.phase == 1:
                # absorb: pass 1 per chunk of searches, pass 2 stores the new cycles in lane order
                if threads and n_ch > 1:
                    for ch in prange(n_ch):
                        c = np.int64(ch)
                        _absorb_called(c, c + 1, options, searches, lanes, solved, pool, schedule)
                else:
                    _absorb_chunks(0, n_ch, options, searches, lanes, solved, pool, schedule)
                code = _store_pending(options, searches, lanes, solved, pool, schedule)
                if code != GO:
                    return code
            # prepare: per chunk of searches, then the list of lanes to solve
            if threads and n_ch > 1:
                for ch in prange(n_ch):
                    c = np.int64(ch)
                    _prepare_called(c, c + 1, options, searches, lanes, fresh, schedule)
            else:
                _prepare_chunks(0, n_ch, options, searches, lanes, fresh, schedule)
            code = _collect_work(schedule)
            if code != GO:
                return code
            nw = ctl.n_work
            if threads and nw >= 2 * n_solver:
                for ch in prange(n_solver):
                    c = np.int64(ch)
                    _solve_called(systems, options, searches, lanes, solved, ws, lr, c, schedule.work,
                                  c * nw // n_solver, (c + 1) * nw // n_solver)
            elif options.lr_max > 0:
                _solve_called(systems, options, searches, lanes, solved, ws, lr, 0, schedule.work, 0, nw)
            else:
                _solve_chunk(systems, options, searches, lanes, solved, ws, 0, 0, schedule.work, 0, nw)
            ctl.phase = 1

    _run_cpu.__name__ = _run_cpu.__qualname__ = "_run_cpu_threads" if threads else "_run_cpu_serial"
    return config.jit(_RUN_SIG, parallel=threads)(_run_cpu)


#: the round loop: serial build (prange loops run as plain loops) and threaded build.
_run_serial = _make_run(False)
_run_threads = _make_run(True)


# ============================================================================ host driver
class BatchSearch:
    """Host side of the engine: the state bundles, fresh-candidate streams, the round loop, results.

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
    low_rank : sequence of PiecewiseLinear, optional
        The systems' descriptions (their U with distinct unit rows): solve the
        fixed-point searches (k = 1) on the CPU by low-rank updates of a
        factorised region (:mod:`._low_rank`).  None (default): refactorise
        every candidate.

    Attributes
    ----------
    systems, options : Systems, Options
        The systems, sizes and tolerances.
    searches : (n_search,) SEARCH records
        Settings, counters and state of each search.
    lanes, fresh, schedule, solved, pool : Lanes, Fresh, Schedule, Solved, Pool
        The engine's state (see their classes).
    low_rank : LowRank
        The low-rank solver's data and per-lane counters (empty when off).
    """

    #: initial capacity of the cycle pool (doubled whenever the engine reports FULL).
    initial_capacity = 16

    def __init__(self, kernels, p, meta, M, P, searches, streams, opts, low_rank=None):
        self.kernels = kernels
        self.M, self.P = int(M), int(P)
        self.systems = Systems(kernel_address(kernels[0], REGIONS_SIG), kernel_address(kernels[1], ROLLOUT_SIG),
                               np.ascontiguousarray(p, dtype=np.float64), np.ascontiguousarray(meta, dtype=np.int64))
        order = np.asarray(searches["order"], dtype=np.int64)
        n_search = order.size
        n_lane = int(np.sum(np.broadcast_to(np.asarray(searches["lanes"], dtype=np.int64), (n_search,))))
        lr_max = 0
        if low_rank is not None and np.any(order == 1):
            self.low_rank = _low_rank.low_rank_data(list(low_rank), n_lane)
            lr_max = _low_rank.max_flips(self.M, self.P)
        else:
            self.low_rank = _low_rank.disabled(self.M, self.P)
        self.options = Options(self.P, self.M, *(float(v) for v in np.asarray(opts, dtype=np.float64)), lr_max)
        self.kmax = int(order.max())
        ss = np.zeros(n_search, dtype=SEARCH)
        for name in ("order", "system", "stream", "n_outer", "n_inner", "max_solves"):
            ss[name] = searches[name]
        ss["head"] = -1
        self.searches = ss
        lanes = np.broadcast_to(np.asarray(searches["lanes"], dtype=np.int64), (n_search,))
        lane_search = np.repeat(np.arange(n_search, dtype=np.int64), lanes)
        n_lane = lane_search.size
        state = np.zeros(n_lane, dtype=LANE)
        state["search"] = lane_search
        state["need_new"] = 1
        K, M, P = self.kmax, self.M, self.P
        self.lanes = Lanes(state, np.zeros((n_lane, K, P), dtype=np.int8))
        self.schedule = Schedule(np.zeros(1, dtype=CONTROL), np.zeros(0, dtype=CHUNK), np.zeros(n_lane, dtype=SLOT),
                                 np.zeros(n_lane, dtype=np.int64))
        self._ctl = self.schedule.ctl[0]  # a structured scalar: a view of the control record
        self._lane_of_search = np.concatenate([[0], np.cumsum(lanes)])
        self.set_chunks(1)
        self.solved = Solved(np.zeros((n_lane, K, P), dtype=np.int8), np.zeros((n_lane, K + 1, M)))
        cap = max(self.initial_capacity, n_search)
        self.pool = Pool(np.empty((cap, self.kmax, self.M)), np.empty((cap, self.kmax, self.P), dtype=np.int8),
                         np.empty(cap, dtype=ENTRY))
        # fresh-candidate streams: per stream a window [base, base + n_avail) of its sequence
        self.streams = list(streams)
        n_stream = len(self.streams)
        # the streams share the batch's budget for drawn candidates (streams without chunks: as they are)
        for st in self.streams:
            if hasattr(st, "cap"):
                st.cap(config.SCYFI_FRESH_BYTES // max(1, n_stream))
        self._stream_k = np.zeros(n_stream, dtype=np.int64)
        self._stream_k[ss["stream"]] = ss["order"]
        self._windows = [np.zeros((0, int(k), P), dtype=np.int8) for k in self._stream_k]
        self.fresh = Fresh(np.zeros(1, dtype=np.int8), np.zeros(n_stream, dtype=STREAM))
        self._fresh_end = 0  # Fresh.cand[:_fresh_end] holds windows (the current ones and replaced ones)
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
        cinfo = np.zeros(edges.size - 1, dtype=CHUNK)
        cinfo["lo"] = edges[:-1]
        cinfo["n_alive"] = np.diff(edges)
        cinfo["need"] = -1
        self.schedule = self.schedule._replace(cinfo=cinfo)
        self.schedule.lists["alive"] = np.arange(n_lane)

    # -- fresh candidates ------------------------------------------------------------
    def _extend(self, stream: int) -> None:
        """Append the stream's next chunk; drop the prefix no running search still needs."""
        ss = self.searches
        win = self.fresh.streams[stream]  # a structured scalar: a view of the stream's record
        users = (ss["stream"] == stream) & (ss["status"] == RUNNING)
        low = int(ss["fresh_pos"][users].min()) if users.any() else int(win["base"])
        kept = self._windows[stream][low - int(win["base"]):]
        window = np.concatenate([kept, np.asarray(self.streams[stream].draw(), dtype=np.int8)])
        self._windows[stream] = window
        win["base"] = low
        win["n_avail"] = window.shape[0]
        # the new window goes after the others; when the array is full, the current windows are
        # copied into a new one with as much room again (replaced windows are dropped then)
        cand, end = self.fresh.cand, self._fresh_end
        if end + window.size <= cand.size:
            cand[end : end + window.size] = window.ravel()
            win["offset"] = end
            self._fresh_end = end + window.size
            return
        live = sum(w.size for w in self._windows)
        cand = np.empty(max(2 * live, 1), dtype=np.int8)
        end = 0
        for s, w in enumerate(self._windows):
            cand[end : end + w.size] = w.ravel()
            self.fresh.streams["offset"][s] = end
            end += w.size
        self._fresh_end = end
        self.fresh = self.fresh._replace(cand=cand)

    def _grow_pool(self) -> None:
        self.pool = Pool(*(np.concatenate([a, np.empty_like(a)]) for a in self.pool))

    # -- running ---------------------------------------------------------------------
    def run_cpu(self, parallel: bool = False, n_chunks: int = 1) -> None:
        """Run every search to its end on the CPU (``parallel``: threads over chunks of lanes)."""
        ws = self._workspace(max(1, int(n_chunks)) if parallel else 1)
        if parallel and not self._started:
            self.set_chunks(2 * n_chunks)
        self._started = True
        run = _run_threads if parallel else _run_serial
        while True:
            with np.errstate(all="ignore"):
                code = run(self.systems, self.options, self.searches, self.lanes, self.fresh, self.schedule,
                           self.solved, self.pool, ws, self.low_rank)
            if code == NEED_FRESH:
                self._extend(int(self._ctl["stream"]))
            elif code == FULL:
                self._grow_pool()
            else:
                return

    def _workspace(self, n_chunks: int) -> Work:
        M, kmax = self.M, self.kmax
        return Work(
            np.empty((n_chunks, kmax, M, M)), np.empty((n_chunks, kmax, M)),
            np.empty((n_chunks, M, M)), np.empty((n_chunks, M, M)), np.empty((n_chunks, M, M)),
            np.empty((n_chunks, M)), np.empty((n_chunks, M)), np.empty((n_chunks, M)),
            np.empty((n_chunks, M), dtype=np.int64), np.empty((n_chunks, M)),
        )

    def solve_cpu(self, lanes: np.ndarray, n_chunks: int = 1) -> None:
        """One batched solve of the candidates held by ``lanes`` on the CPU (the kernel-level interface)."""
        lanes = np.ascontiguousarray(lanes, dtype=np.int64)
        n_chunks = max(1, min(int(n_chunks), lanes.size))
        solve = _solve_lanes if n_chunks > 1 else _solve_lanes_serial
        with np.errstate(all="ignore"):
            solve(self.systems, self.options, self.searches, self.lanes, self.solved, self._workspace(n_chunks),
                  self.low_rank, lanes, lanes.size)

    def run_rounds(self, solve, n_threads: int = 1) -> None:
        """Run every search with an external batched solver (one call per round).

        ``solve(lanes)`` must fill, at the rows ``lanes``, the fields ``status``,
        ``consistent``, ``closure`` and ``scale`` of ``lanes.state`` (:data:`LANE`)
        and the roll-outs ``solved.act`` and ``solved.traj``.  The bookkeeping
        between solves runs on ``n_threads`` numba threads.
        """
        if n_threads > 1 and not self._started:
            self.set_chunks(8 * n_threads)
        self._started = True
        ctl = self._ctl
        while True:
            if ctl["phase"] == 1:
                code = _host_absorb(self.options, self.searches, self.lanes, self.solved, self.pool, self.schedule)
                if code == FULL:
                    self._grow_pool()
                    continue
            code = _host_prepare(self.options, self.searches, self.lanes, self.fresh, self.schedule)
            if code == NEED_FRESH:
                self._extend(int(ctl["stream"]))
                continue
            if code == ALL_DONE:
                return
            lanes = self.schedule.work[: ctl["n_work"]].copy()
            solve(lanes)
            self.lanes.state["stage"][lanes] = SOLVED
            ctl["phase"] = 1
            self.rounds += 1

    # -- results ---------------------------------------------------------------------
    def cycles(self, search: int) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
        """Raw cycles of one search in discovery order: (points, patterns, found_at, solves since previous)."""
        k = int(self.searches["order"][search])
        entry = self.pool.entry
        idx = []
        f = int(self.searches["head"][search])
        while f >= 0:
            idx.append(f)
            f = int(entry["prev"][f])
        idx.reverse()
        out = []
        prev = 0
        for f in idx:
            at = int(entry["found_at"][f])
            out.append((self.pool.z[f, :k].copy(), self.pool.d[f, :k].copy(), at, at - prev))
            prev = at
        return out

    def hits(self, search: int) -> np.ndarray:
        """Hits on each cycle of one search, in the order of :meth:`cycles`.

        A hit is a consistent candidate that lands on the cycle (its discovery and
        every later duplicate); each comes from its own random start, since a lane
        restarts after every consistent candidate.
        """
        entry = self.pool.entry
        out = []
        f = int(self.searches["head"][search])
        while f >= 0:
            out.append(int(entry["hits"][f]))
            f = int(entry["prev"][f])
        return np.array(out[::-1], dtype=np.int64)

    def stats(self, search: int) -> dict[str, int]:
        """Search counters of one search (names as in the scyfi Dataset)."""
        r = self.searches[search]
        lanes = slice(int(self._lane_of_search[search]), int(self._lane_of_search[search + 1]))
        counts = self.low_rank.counts[lanes].sum(axis=0) if self.options.lr_max else np.zeros(len(COUNTS), np.int64)
        return {
            **{name: int(n) for name, n in zip(COUNTS, counts)},
            "n_fresh": int(r["fresh_solved"]),
            "n_solves": int(r["solves"]),
            "n_singular": int(r["singular"]),
            "hit_limit": int(r["status"] == LIMIT),
            "n_lower_order": int(r["lower_order"]),
            "n_duplicates": int(r["duplicates"]),
            "n_loops": int(r["loops"]),
            "n_inexact": int(r["inexact"]),
        }


_SOLVE_LANES_SIG = types.void(_SYSTEMS, _OPTIONS, _SEARCHES, _LANES, _SOLVED, _WORK, _LOW_RANK, _i1, types.int64)


@config.jit(_SOLVE_LANES_SIG, parallel=True)
def _solve_lanes(systems, options, searches, lanes, solved, ws, lr, work, nw):
    # One batched solve of the lanes work[:nw] (chunks on numba's threads), outside the round loop.
    n = ws.z.shape[0]
    for ch in prange(n):
        c = np.int64(ch)
        _solve_called(systems, options, searches, lanes, solved, ws, lr, c, work, c * nw // n, (c + 1) * nw // n)


@config.jit(_SOLVE_LANES_SIG)
def _solve_lanes_serial(systems, options, searches, lanes, solved, ws, lr, work, nw):
    # The same on one thread: entering a parallel region measured ~7 ms per call on the
    # shared 2-core machine, more than a thousand 2-D solves.
    _solve_called(systems, options, searches, lanes, solved, ws, lr, 0, work, 0, nw)
