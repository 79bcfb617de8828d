r"""How complete is a SCYFI search: exhaustive orders, and an estimate of the cycles missed at the others.

**Exhaustive enumeration.**  A k-cycle of minimal period k visits a region
sequence :math:`d_1, \dots, d_k` that differs from each of its k rotations,
and every rotation gives the same cycle (started at another point).  So the
cycles of order k are found, each exactly once, by solving one representative
of every rotation class of aperiodic sequences: the *Lyndon words* of length k
over the :math:`a = 2^P` region patterns (P pattern bits), the sequences
strictly smaller than all their rotations.  There are

.. math::

    L(k, a) = \frac{1}{k} \sum_{d \mid k} \mu(d)\, a^{k/d} \;\approx\; \frac{a^k}{k}

of them (:math:`\mu`: the Möbius function), about a k-th of the :math:`2^{Pk}`
sequences that :func:`~plrnn_numba.dynamics.brute_force_cycles` solves.  They
are generated in lexicographic order by Duval's algorithm (Duval 1988,
"Génération d'une section des classes de conjugaison et arbre des mots de
Lyndon de longueur bornée") in a numba kernel and solved in batches by the
SCYFI engine's own region solve (:func:`.batched.solve_lanes`: the same LU,
condition estimate and roll-out as the heuristic, on every backend).  The
search is complete by construction: it finds every cycle of that order whose
``I - Z`` passes the condition check and whose points pass the exactness check.

**Completeness estimate of a heuristic order.**  Each random start of SCYFI
(a fresh random candidate followed by its jumps) ends on at most one cycle,
after which the lane restarts; the engine counts for every cycle its *hits*,
the random starts that landed on it (its discovery and every later duplicate).
These are abundance data of a species survey, and the Chao1 estimator (Chao
1984, "Nonparametric estimation of the number of classes in a population")
estimates the cycles never hit from those hit exactly once (:math:`f_1`) and
exactly twice (:math:`f_2`):

.. math::

    \hat N = N_{obs} + \frac{f_1^2}{2 f_2} \quad (f_2 > 0), \qquad
    \hat N = N_{obs} + \frac{f_1 (f_1 - 1)}{2} \quad (f_2 = 0,
    \text{ the bias-corrected form } f_1 (f_1 - 1) / (2 (f_2 + 1))).

Chao1 is a lower bound: it sees the cycles about as easy to reach as those
found, not those much harder to reach -- and at an order where nothing was
hit it estimates nothing.  A second, model-free bound covers that case: every
fresh candidate is a uniform draw of the :math:`N_d` candidate sequences
(:math:`2^{Pk}` with independent bits, :math:`n_{pool}^k` from a pool of
realised patterns), and a cycle is found at once when one of its k rotations
is drawn.  After :math:`n_{fresh}` fresh draws every cycle (with its patterns
in the pool, if one is used) has therefore been found with probability at least

.. math::

    c = 1 - (1 - k / N_d)^{n_{fresh}}

(jumps only add to this), the *direct coverage*.  An order counts as
*estimated complete* when it was enumerated to the end, or when no cycle rests
on a single hit (:math:`f_1 = 0`, so :math:`\hat N = N_{obs}`) **and**
:math:`c \ge` :data:`COVERAGE_MIN` (0.999).  The second condition is
demanding: it needs about seven fresh draws per rotation class, which the
default loop counts give only where the exhaustive mode would be as cheap, so
with the defaults a heuristic order is rarely called complete.  That is the honest
answer: at those orders SCYFI's recall of unstable cycles is not guaranteed
(see ``docs/performance.md``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import types

from .. import config
from ._lu import SOLVE_OK
from ._search import BatchSearch
from .batched import solve_lanes

__all__ = ["lyndon_count", "canonical_sequences", "exhaustive_search", "chao1", "direct_coverage",
           "COVERAGE_MIN", "EXHAUSTIVE_BATCH"]

#: direct coverage an order needs (besides f1 = 0) to count as estimated complete: every cycle
#: then was drawn directly with probability >= 0.999 (-ln(0.001) ~ 6.9 expected draws of its
#: sequences).  0.95 was too lax: over 140 orders of random 2-D systems one missed 4-cycle had
#: coverage 0.98 and f1 = 0 (see docs/performance.md).
COVERAGE_MIN = 0.999

#: region sequences per batch of the enumeration, per system (CPU backends; the GPU takes 16x).
EXHAUSTIVE_BATCH = 4096


def _mobius(n: int) -> int:
    # Möbius function by trial division (n is an order: small)
    result, m, p = 1, n, 2
    while p * p <= m:
        if m % p == 0:
            m //= p
            if m % p == 0:
                return 0
            result = -result
        p += 1
    return -result if m > 1 else result


def lyndon_count(k: int, n_bits: int) -> int:
    r"""Number of rotation classes of aperiodic region sequences of length ``k``: :math:`L(k, 2^P)`.

    Exact (Python integers): :math:`L(k, a) = \frac{1}{k} \sum_{d \mid k} \mu(d)\, a^{k/d}`
    with :math:`a = 2^P` region patterns.  This is the number of solves the
    exhaustive mode spends on order k.
    """
    a = 1 << int(n_bits)
    return sum(_mobius(d) * a ** (k // d) for d in range(1, k + 1) if k % d == 0) // k


@config.jit(types.int64(types.int64[::1], types.int8[:, :, ::1]))
def _next_lyndon_words(state, out):
    # Duval's algorithm, resumable: state = [m, w_0, ..., w_{k-1}] holds the current word
    # w[:m] (every word it visits is a Lyndon word of length m <= k; those of length k are
    # written out).  Start from [1, -1, ...]; m = 0 when all are done.  Symbols are the
    # integers 0 .. 2^P - 1 written as P bits, most significant first, so that their
    # order is the lexicographic order of the pattern rows (a Lyndon word is then the
    # canonical rotation of _cycles.canonical_shift).  Returns the words written.
    n_out, k, P = out.shape
    top = (np.int64(1) << P) - 1
    w = state[1:]
    m = state[0]
    n = 0
    while m > 0 and n < n_out:
        w[m - 1] += 1
        if m == k:
            for j in range(k):
                s = w[j]
                for q in range(P):
                    out[n, j, q] = (s >> (P - 1 - q)) & 1
            n += 1
        # extend periodically to length k, then drop the trailing largest symbols
        for i in range(m, k):
            w[i] = w[i - m]
        m = k
        while m > 0 and w[m - 1] == top:
            m -= 1
    state[0] = m
    return n


class _LyndonWords:
    """The Lyndon words of length ``k`` over ``2^P`` patterns, in lexicographic order, a batch at a time."""

    def __init__(self, k: int, n_bits: int):
        if n_bits > 62:
            raise ValueError(f"exhaustive enumeration supports at most 62 pattern bits; got {n_bits}")
        self.state = np.zeros(k + 1, dtype=np.int64)
        self.state[0], self.state[1] = 1, -1

    def fill(self, out: np.ndarray) -> int:
        """Write the next words into ``out`` ((n, k, P) int8, C-contiguous); returns how many (0: done)."""
        return int(_next_lyndon_words(self.state, out))


def canonical_sequences(k: int, n_bits: int) -> np.ndarray:
    """All Lyndon words of length ``k`` as ``(L(k, 2^P), k, P)`` int8 region sequences (small cases)."""
    out = np.zeros((lyndon_count(k, n_bits), k, n_bits), dtype=np.int8)
    n = _LyndonWords(k, n_bits).fill(out) if out.shape[0] else 0
    return out[:n]


def exhaustive_search(pls, k: int, opts: np.ndarray, backend: str = "cpu", n_threads: int = 1,
                      max_solves: int | None = None) -> list[tuple[list, dict]]:
    """Solve every rotation class of aperiodic region sequences of order ``k``, for each system of ``pls``.

    Parameters
    ----------
    pls : list of PiecewiseLinear
        Systems of one family (one ``meta``); each is enumerated with the same words.
    k : int
        The order.
    opts : (3,) float64
        ``[rcond_min, dup_rtol, accept_rtol]`` (:attr:`ScyfiSettings.engine_options`).
    backend : {"cpu", "parallel", "cuda"}
        A resolved backend (:func:`.batched.solve_lanes`).
    n_threads : int
        Threads of ``"parallel"``.
    max_solves : int, optional
        Stop after this many sequences (then the order is not complete: ``hit_limit``).

    Returns
    -------
    list of (raw, stats), one per system
        ``raw``: the consistent, closed candidates as ``(points, patterns,
        found_at, solves since the previous one)`` in enumeration order;
        ``stats``: ``n_solves``, ``n_singular``, ``n_inexact``, ``hit_limit``,
        ``n_lanes`` (sequences per batch).
    """
    p0 = pls[0]
    M, P, n_sys = p0.dim, p0.n_bits, len(pls)
    total = lyndon_count(k, P)
    n_solve = total if max_solves is None else min(total, int(max_solves))
    width = max(1, min(n_solve, EXHAUSTIVE_BATCH * (16 if backend == "cuda" else 1)))
    ones = np.ones(n_sys, dtype=np.int64)
    batch = BatchSearch(
        p0.kernels, np.stack([pl.p for pl in pls]), p0.meta, M, P,
        {"system": np.arange(n_sys), "order": k * ones, "stream": 0 * ones, "n_outer": ones, "n_inner": ones,
         "max_solves": -ones, "lanes": width * ones},
        [None], opts,
    )
    solver = None
    if backend == "cuda":
        from .gpu_scyfi import CudaSolver

        solver = CudaSolver(batch)
    words = _LyndonWords(k, P)
    cand, state, solved = batch.lanes.cand, batch.lanes.state, batch.solved
    accept = float(opts[2])
    raw: list[list] = [[] for _ in range(n_sys)]
    singular = np.zeros(n_sys, dtype=np.int64)
    inexact = np.zeros(n_sys, dtype=np.int64)
    done = 0
    while done < n_solve:
        n = words.fill(cand[: min(width, n_solve - done)])
        if n == 0:  # pragma: no cover - the count is exact
            break
        for g in range(1, n_sys):
            cand[g * width : g * width + n] = cand[:n]
        lanes = (np.arange(n_sys)[:, None] * width + np.arange(n)[None, :]).ravel()
        solve_lanes(batch, lanes, backend, n_threads, solver)
        for g in range(n_sys):
            rows = np.arange(g * width, g * width + n)
            ok = state["status"][rows] == SOLVE_OK
            consistent = ok & (state["consistent"][rows] == 1)
            # the engine's acceptance test (_absorb_chunks): closure within accept_rtol * scale
            exact = consistent & (state["closure"][rows] <= accept * state["scale"][rows])
            singular[g] += int(np.count_nonzero(~ok))
            inexact[g] += int(np.count_nonzero(consistent & ~exact))
            for i in np.flatnonzero(exact):
                raw[g].append((solved.traj[rows[i], :k].copy(), solved.act[rows[i], :k].copy(), done + int(i) + 1))
        done += n
    out = []
    for g in range(n_sys):
        # found_at -> (found_at, solves since the previous discovery), as BatchSearch.cycles gives
        prev, cycles = 0, []
        for pts, pats, at in raw[g]:
            cycles.append((pts, pats, at, at - prev))
            prev = at
        out.append((cycles, {"n_solves": done, "n_singular": int(singular[g]), "n_inexact": int(inexact[g]),
                             "hit_limit": int(done < total), "n_lanes": width}))
    return out


def chao1(hits) -> tuple[float, int, int]:
    r"""Chao1 estimate of the number of cycles from their hit counts: ``(N_est, f1, f2)``.

    :math:`\hat N = N_{obs} + f_1^2 / (2 f_2)` if :math:`f_2 > 0`, else
    :math:`N_{obs} + f_1 (f_1 - 1) / 2`; :math:`f_1`, :math:`f_2` are the numbers of
    cycles hit exactly once and exactly twice.
    """
    h = np.asarray(hits, dtype=np.int64)
    f1 = int(np.count_nonzero(h == 1))
    f2 = int(np.count_nonzero(h == 2))
    extra = f1 * f1 / (2.0 * f2) if f2 > 0 else f1 * (f1 - 1) / 2.0
    return float(h.size + extra), f1, f2


def direct_coverage(k: int, n_fresh: int, n_bits: int, pool_size: int | None = None) -> float:
    r"""Lower bound on the probability that a given k-cycle was found: :math:`1 - (1 - k / N_d)^{n_{fresh}}`.

    :math:`N_d = 2^{P k}` candidate sequences with independent bits, or
    ``pool_size ** k`` when fresh candidates are drawn from a pool of realised
    patterns (then the bound holds for the cycles whose patterns are all in it).
    """
    if n_fresh <= 0:
        return 0.0
    log_n = k * (math.log(pool_size) if pool_size is not None else n_bits * math.log(2.0))
    p = min(1.0, k * math.exp(-log_n))
    if p >= 1.0:
        return 1.0
    return float(-math.expm1(n_fresh * math.log1p(-p)))
