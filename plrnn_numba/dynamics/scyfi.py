r"""SCYFI: exact fixed points and k-cycles of piecewise-linear RNNs (CPU, numba).

Inside a linear region with pattern :math:`d` a piecewise-linear map is affine,
:math:`z' = F(d)\,z + c(d)` (see :mod:`plrnn_numba.models.piecewise`: every model
that describes itself through ``model.piecewise_linear`` can be searched).  A k-cycle visits a
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

Where an order has no more rotation classes of region sequences than that
budget (2-D systems up to k = 9 with the default counts), the heuristic is
replaced by enumerating all of them, which is complete by construction
(``ScyfiSettings.exhaustive``); at the other orders the search's own hit
counts give an estimate of the cycles it missed (:mod:`._completeness`).

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
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import config, io
from ..models.piecewise import PiecewiseLinear, as_piecewise_linear
from ._completeness import COVERAGE_MIN, chao1, direct_coverage, exhaustive_search, lyndon_count
from ._cycles import Cycle, build_dataset, finish_cycles, verify_and_refine
from ._low_rank import bytes_per_lane, unit_rows
from ._search import BLAS_MIN_SIZE, BatchSearch, solve_region_sequence
from .batched import default_lanes, resolve_backend

__all__ = ["scyfi", "search_many", "solve_region_sequence", "default_counters", "realised_pattern_pool",
           "ScyfiSettings"]


# ============================================================================ settings
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

    Parameters
    ----------
    k : int
        Cycle order.
    n_pattern : int
        Number P of pattern bits per region.

    Returns
    -------
    n_outer : int
        Restarts without a discovery.
    n_inner : int
        Solves per restart without a discovery.
    """
    base_out = 10 if k < 8 else 40 if k < 30 else 100
    base_in = 20 if k < 3 else 60 if k < 6 else 300 if k < 8 else 1080 if k < 20 else 1115
    s = math.sqrt(max(1.0, n_pattern / 2.0))
    return int(math.ceil(base_out * s)), int(math.ceil(base_in * s))


def _counter_value(value, k: int, P: int, which: int, name: str) -> int:
    if value is None:
        return default_counters(k, P)[which]
    if callable(value):
        return V.positive_int(value(k), f"{name}({k})")
    return int(value)


@dataclass(frozen=True)
class ScyfiSettings:
    r"""Settings of a SCYFI search, one object wherever SCYFI runs (also inside other tools).

    Parameters
    ----------
    n_outer, n_inner : int or callable(k) -> int, optional
        Loop counts: the search of order k ends after ``n_outer`` restarts of
        ``n_inner`` solves without a discovery (both reset on each discovery).
        Default :func:`default_counters`.
    max_solves : int, optional
        Cap on the solves per order; ``hit_limit`` records whether it stopped the search.
    tol : float
        Exactness required of every returned cycle:
        ``max_j |F^k(z_j) - z_j|_inf <= tol * max(|z|_inf, |c|_inf)`` with the
        true map, and every point in its claimed region.  Candidates that miss are
        refined by one Newton step; those that still miss are dropped and counted
        in ``n_rejected``.
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
        Sampled states for the pool of realised patterns (maps whose bits are
        not independent, see :func:`realised_pattern_pool`).
    exhaustive : {"auto", True, False}
        Whether an order is searched by enumerating every rotation class of
        aperiodic region sequences (``L(k, 2^P) ~ 2^(P k) / k`` of them,
        :func:`~plrnn_numba.dynamics._completeness.lyndon_count`) instead of the
        heuristic.  The enumeration is complete by construction: every cycle of
        that order that passes the condition and exactness checks is found, once.
        ``"auto"`` (default): at the orders where ``L(k, 2^P) <= n_outer * n_inner``
        (and ``<= max_solves`` if set).  The heuristic spends
        at least ``n_outer * n_inner`` solves at an order (its budget after the last
        discovery), each costing as much as one solve of the enumeration, so there
        enumerating costs no more and finds everything; with the default counts
        that is k <= 9 for 2-D maps (4^7 / 7 = 2340 classes at k = 7 against
        10 x 300 solves), k <= 3 for 3-D, k = 1 up to M = 10.  ``True``: every order
        (refused beyond :data:`EXHAUSTIVE_MAX` classes at an order); ``False``:
        the heuristic everywhere (the behaviour of the original algorithm).
        ``max_solves`` also caps an enumeration (the order is then incomplete).
    low_rank : {"auto", True, False}
        Whether the fixed-point search (order 1, CPU backends) solves a candidate
        region by a low-rank update of a factorised one instead of a new LU
        factorisation (:mod:`plrnn_numba.dynamics._low_rank`).  Two regions whose
        patterns differ in r bits differ by a rank-r matrix,
        :math:`(I - F_{d'}) = (I - F_d) - R_S \Sigma U_S`, so with
        :math:`G = (I - F_d)^{-1} R` kept per search lane a candidate costs an
        r x r solve (Sherman-Morrison-Woodbury), :math:`O(r^3 + M r)`, instead of
        :math:`O(M^3)`.  The updates find the same fixed points: a candidate is
        accepted only where the refactorising path would accept it too, everything
        else (a near-singular region, too many flipped bits) is refactorised, and
        a fixed point found by an update is re-solved if its residual is above
        ``SCYFI_LOW_RANK_CLOSURE_RTOL``.  Only for maps whose pattern bits each
        read one coordinate (PLRNN, ALRNN, ReLU RNN: U with unit rows); others
        always refactorise.  ``"auto"`` (default): from ``M >=
        config.SCYFI_LOW_RANK_MIN_DIM`` on, while the lanes' bases (about
        8 (M P + M^2) bytes each) fit ``config.SCYFI_LOW_RANK_MAX_BYTES``; ``True``: wherever
        applicable; ``False``: refactorise every candidate.
    """

    n_outer: int | Callable[[int], int] | None = None
    n_inner: int | Callable[[int], int] | None = None
    max_solves: int | None = None
    tol: float = 1e-10
    rcond_min: float = 1e-12
    dup_rtol: float = 1e-8
    tol_hyperbolic: float = 1e-8
    pool_samples: int = 4096
    exhaustive: bool | str = "auto"
    low_rank: bool | str = "auto"

    def __post_init__(self):
        for name in ("n_outer", "n_inner"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                V.positive_int(value, name)
        if self.max_solves is not None:
            V.positive_int(self.max_solves, "max_solves")
        V.finite_float(self.tol, "tol", low=0.0)
        V.finite_float(self.rcond_min, "rcond_min", low=0.0, high=1.0)
        V.finite_float(self.dup_rtol, "dup_rtol", low=0.0)
        V.finite_float(self.tol_hyperbolic, "tol_hyperbolic", low=0.0)
        V.positive_int(self.pool_samples, "pool_samples")
        for name in ("exhaustive", "low_rank"):
            value = getattr(self, name)
            if isinstance(value, np.bool_):
                object.__setattr__(self, name, bool(value))
                value = bool(value)
            if not (value is True or value is False or (isinstance(value, str) and value == "auto")):
                raise ValueError(f'{name} must be "auto", True or False; got {value!r}')

    def counters(self, k: int, n_pattern: int) -> tuple[int, int]:
        """``(n_outer, n_inner)`` at order ``k`` for ``n_pattern`` bits per region.

        Parameters
        ----------
        k : int
            Cycle order.
        n_pattern : int
            Number P of pattern bits per region.

        Returns
        -------
        n_outer : int
            Restarts without a discovery (:func:`default_counters` where not set).
        n_inner : int
            Solves per restart without a discovery.
        """
        return (_counter_value(self.n_outer, k, n_pattern, 0, "n_outer"),
                _counter_value(self.n_inner, k, n_pattern, 1, "n_inner"))

    def exhaustive_at(self, k: int, n_pattern: int) -> bool:
        """Whether order ``k`` is enumerated (see ``exhaustive``).

        Parameters
        ----------
        k : int
            Cycle order.
        n_pattern : int
            Number P of pattern bits per region.

        Returns
        -------
        bool
            True if the order is searched by enumeration.

        Raises
        ------
        ValueError
            If ``exhaustive=True`` and the order has more than ``EXHAUSTIVE_MAX`` rotation classes.
        """
        if self.exhaustive is False:
            return False
        count = lyndon_count(int(k), n_pattern)
        if self.exhaustive is True:
            if count > EXHAUSTIVE_MAX:
                raise ValueError(
                    f"exhaustive=True: order {k} with {n_pattern} pattern bits has {count:.3g} rotation classes of "
                    f"region sequences to solve (more than EXHAUSTIVE_MAX = 2^{EXHAUSTIVE_MAX.bit_length() - 1}); "
                    'use exhaustive="auto" or False, or a lower max_order'
                )
            return True
        n_out, n_in = self.counters(int(k), n_pattern)
        return count <= n_out * n_in and (self.max_solves is None or count <= self.max_solves)

    def low_rank_for(self, pls, backend: str, n_lanes: int) -> bool:
        """Whether the fixed-point search of the systems ``pls`` on ``backend`` with ``n_lanes`` lanes uses updates.

        Parameters
        ----------
        pls : sequence of PiecewiseLinear
            The maps searched together.
        backend : str
            The resolved backend (``"cpu"``, ``"parallel"`` or ``"cuda"``).
        n_lanes : int
            Total number of search lanes.

        Returns
        -------
        bool
            True if candidates are solved by low-rank updates (see ``low_rank``).
        """
        if self.low_rank is False or backend == "cuda" or any(unit_rows(pl.U) is None for pl in pls):
            return False
        if self.low_rank is True:
            return True
        M, P = pls[0].dim, pls[0].n_bits
        return M >= config.SCYFI_LOW_RANK_MIN_DIM and n_lanes * bytes_per_lane(M, P) <= config.SCYFI_LOW_RANK_MAX_BYTES

    def budget(self, orders, n_pattern: int) -> int:
        """Solves without a discovery summed over ``orders`` (the size of a search).

        Parameters
        ----------
        orders : iterable of int
            Cycle orders.
        n_pattern : int
            Number P of pattern bits per region.

        Returns
        -------
        int
            The sum of ``n_outer * n_inner`` over the orders.
        """
        return sum(int(np.prod(self.counters(int(k), n_pattern))) for k in orders)

    @property
    def engine_options(self) -> np.ndarray:
        """``[rcond_min, dup_rtol, accept_rtol]`` for the engine.

        A consistent candidate's closure ``F(z_k) = z_1`` is checked in the engine to a
        loose tolerance (rounding grows along the roll-out); the strict check comes after.
        """
        return np.array([self.rcond_min, self.dup_rtol, max(1e-6, self.tol)], dtype=np.float64)

    def arguments(self) -> dict:
        """JSON-able record (callables by their repr).

        Returns
        -------
        dict
            The settings by name.
        """
        return {k: (repr(v) if callable(v) else v) for k, v in asdict(self).items()}


#: most rotation classes ``exhaustive=True`` enumerates at one order (2^40 ~ 1e12: days of solves).
EXHAUSTIVE_MAX = 1 << 40


def as_settings(settings) -> ScyfiSettings:
    """``None`` -> the defaults; a :class:`ScyfiSettings` passes through."""
    if settings is None:
        return ScyfiSettings()
    if not isinstance(settings, ScyfiSettings):
        raise TypeError(
            "settings must be a plrnn_numba.dynamics.ScyfiSettings (e.g. ScyfiSettings(n_outer=20, n_inner=200)) "
            f"or None; got {type(settings).__name__}"
        )
    return settings


# ============================================================================ candidates
def realised_pattern_pool(
    pl: PiecewiseLinear, rng: np.random.Generator, n_samples: int = 4096, n_traj: int = 32, n_steps: int = 200,
) -> np.ndarray:
    """Region patterns actually realised by sampled states.

    When the pattern functionals ``U z + v`` are not independent (more bits than
    dimensions, as in the shallow PLRNNs with H > M), most of the ``2^P``
    patterns are infeasible: P hyperplanes cut R^M into at most
    ``sum_{i<=M} C(P, i)`` regions.  The authors of SCYFI therefore start such
    searches from patterns of sampled states: here ``n_samples`` states in
    random directions at log-uniform radii from ``1e-3 R`` to ``3 R``, where ``R``
    is the largest distance of a boundary hyperplane from the origin (at least 1;
    this reaches every bounded region and the unbounded ones), plus the states
    of ``n_traj`` trajectories of ``n_steps`` steps from such states (the regions
    where the dynamics live).

    Parameters
    ----------
    pl : PiecewiseLinear
        The map.
    rng : numpy.random.Generator
        Draws the states.
    n_samples : int
        Number of sampled states.
    n_traj : int
        Number of trajectories (started from the first sampled states).
    n_steps : int
        Length of each trajectory.

    Returns
    -------
    (n, P) int8 array
        The distinct patterns.
    """
    M = pl.dim
    R = pl.boundary_radius()
    dirs = rng.standard_normal((n_samples, M))
    dirs /= np.maximum(np.linalg.norm(dirs, axis=1, keepdims=True), 1e-300)
    radii = R * 10.0 ** rng.uniform(-3.0, math.log10(3.0), n_samples)
    Z = dirs * radii[:, None]
    states = [Z]
    y = Z[:n_traj].copy()
    with np.errstate(all="ignore"):
        for _ in range(n_steps):
            y = pl.step(y)
            states.append(y)
    S = np.concatenate(states)
    S = S[np.all(np.isfinite(S), axis=1)]
    return np.unique(pl.patterns(S), axis=0)


class _FreshDraws:
    """Fresh random candidates for one order, drawn with NumPy in growing chunks.

    Without a pool every bit is independent (64 bits per raw 64-bit draw,
    unpacked); with a pool of realised patterns, k independent picks from it.
    Each candidate uses its own raw draws, so the stream does not depend on the
    chunk sizes.
    """

    #: chunk-size bounds in candidates (the upper one also limited to ~8 MB).
    first_chunk = config.SCYFI_FIRST_CHUNK
    max_chunk = config.SCYFI_MAX_CHUNK

    def __init__(self, rng: np.random.Generator, k: int, P: int, pool: np.ndarray | None, hint: int = 0):
        self.rng, self.k, self.P, self.pool = rng, k, P, pool
        self.chunk = 0
        self.limit = max(1, min(self.max_chunk, (8 << 20) // max(1, k * P)))
        # a first chunk as large as the expected need saves engine re-entries
        self.first = max(self.first_chunk, min(int(hint), self.max_chunk))

    def cap(self, max_bytes: int) -> None:
        """Limit the chunks to about ``max_bytes`` (the batch's share of ``config.SCYFI_FRESH_BYTES``)."""
        self.limit = max(1, min(self.limit, int(max_bytes) // max(1, self.k * self.P)))
        self.first = min(self.first, self.limit)

    def draw(self) -> np.ndarray:
        n = self.first if self.chunk == 0 else min(2 * self.chunk, self.limit)
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


class _Streams:
    """The random candidates of a search, from one seed: order k uses ``SeedSequence(seed, spawn_key=(k,))``
    and the pattern pool ``spawn_key=(0,)``, so results do not depend on which other orders are searched."""

    def __init__(self, entropy: int, settings: ScyfiSettings):
        self.entropy, self.settings = int(entropy), settings

    def pool(self, pl: PiecewiseLinear) -> np.ndarray | None:
        """Realised-pattern pool of a map whose bits are not independent (None otherwise)."""
        if pl.bits_independent:
            return None
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(0,)))
        return realised_pattern_pool(pl, rng, n_samples=self.settings.pool_samples)

    def stream(self, k: int, P: int, pool, hint: int = 0) -> _FreshDraws:
        """The fresh candidates of order k; ``hint``: about how many will be needed (the first chunk)."""
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(k,)))
        return _FreshDraws(rng, k, P, pool, hint)


def _verified(pl: PiecewiseLinear, k: int, raw, tol: float, hits=None) -> tuple[list[Cycle], int]:
    """Keep the raw cycles of order k that pass the true-map check (refined if needed); ``hits`` per raw cycle."""
    out = []
    rejected = 0
    for i, (pts, pats, at, since) in enumerate(raw):
        pts, res, ok = verify_and_refine(pl, pts, pats, tol)
        if ok:
            out.append(Cycle(order=k, points=pts, patterns=pats, residual=res, n_solves_to_find=since,
                             found_at_solve=at, n_hits=-1 if hits is None else int(hits[i])))
        else:
            rejected += 1
    return out, rejected


def search_order(pl: PiecewiseLinear, k, n_out, n_in, max_solves, stream, opts, *, backend="cpu", lanes=1,
                 n_threads=1, low_rank=False) -> BatchSearch:
    """Run one SCYFI search (one map, order k) on a resolved backend; returns the finished batch.

    ``stream`` yields the fresh candidates (:class:`_FreshDraws`), ``opts`` is
    ``[rcond_min, dup_rtol, accept_rtol]``, ``low_rank`` whether a fixed-point
    search solves by low-rank updates (resolved: see :meth:`ScyfiSettings.low_rank_for`);
    read the results with ``batch.cycles(0)`` and ``batch.stats(0)``.
    """
    batch = BatchSearch(
        pl.kernels, pl.p[None, :], pl.meta, pl.dim, pl.n_bits,
        {"system": [0], "order": [k], "stream": [0], "n_outer": [n_out], "n_inner": [n_in],
         "max_solves": [-1 if max_solves is None else max_solves], "lanes": [lanes]},
        [stream], opts, low_rank=[pl] if low_rank else None,
    )
    _run(batch, backend, n_threads)
    return batch


def _run(batch: BatchSearch, backend: str, n_threads: int) -> None:
    """Run a batch of searches on the resolved backend."""
    if batch.M * batch.M >= BLAS_MIN_SIZE:
        # the k-fold products go to BLAS from inside the engine: one BLAS thread
        # (see plrnn_numba.config.limit_blas_threads)
        config.limit_blas_threads()
    if backend == "cuda":
        from .gpu_scyfi import CudaSolver

        batch.run_rounds(CudaSolver(batch), n_threads=n_threads)
    else:
        batch.run_cpu(parallel=backend == "parallel", n_chunks=4 * n_threads)


def _orders(max_order, min_order) -> np.ndarray:
    max_order = V.positive_int(max_order, "max_order")
    min_order = V.positive_int(min_order, "min_order")
    if min_order > max_order:
        raise ValueError(f"min_order ({min_order}) must be <= max_order ({max_order})")
    return np.arange(min_order, max_order + 1)


_STAT_META = {
    "n_outer": ("1", "outer-loop count N_out used at this order (random restarts without a discovery; "
                     "0: enumerated)"),
    "n_inner": ("1", "inner-loop count N_in used at this order (solves per restart; 0: enumerated)"),
    "n_rejected": ("1", "consistent candidates rejected as inexact (closure or verification failed)"),
    "n_lower_order": ("1", "consistent candidates that were cycles of a lower order"),
    "n_duplicates": ("1", "consistent candidates that were cycles already found"),
    "n_loops": ("1", "jump sequences that returned to an earlier candidate (restarted)"),
    "n_lanes": ("1", "concurrent search lanes at this order (enumerated: region sequences per batch)"),
    "n_low_rank": ("1", "solves done by a low-rank update of a factorised region instead of a new factorisation "
                        "(fixed points, ScyfiSettings.low_rank)"),
    "exhaustive": ("1", "True if every rotation class of region sequences of this order was to be solved "
                        "(complete unless hit_limit) rather than searched heuristically"),
    "n_fresh": ("1", "fresh random candidates solved (random starts; 0: enumerated)"),
    "n_singletons": ("1", "f1: cycles of this order hit by exactly one random start (-1: enumerated)"),
    "n_doubletons": ("1", "f2: cycles of this order hit by exactly two random starts (-1: enumerated)"),
    "n_estimated": ("1", "estimated number of cycles of this order: Chao1, n_found + f1^2 / (2 f2), or "
                         "n_found + f1 (f1 - 1) / 2 if f2 = 0 (enumerated: n_found)"),
    "direct_coverage": ("1", "lower bound on the probability that any given cycle of this order was found: "
                             "1 - (1 - k / N_d)^n_fresh for N_d candidate sequences (enumerated: the fraction "
                             "of rotation classes solved)"),
    "estimated_complete": ("1", "True if the order is estimated complete: enumerated to the end, or no cycle "
                                f"hit only once (f1 = 0) and direct_coverage >= {COVERAGE_MIN}"),
}


def _completeness_stats(k: int, n_pattern: int, found: list[Cycle], exhaustive: bool, st: dict,
                        pool: np.ndarray | None) -> dict:
    """Per-order completeness record (see :mod:`._completeness`) from the verified cycles and the counters."""
    if exhaustive:
        return {"exhaustive": True, "n_fresh": 0, "n_singletons": -1, "n_doubletons": -1,
                "n_estimated": float(len(found)),
                "direct_coverage": st["n_solves"] / lyndon_count(k, n_pattern),
                "estimated_complete": not st["hit_limit"]}
    n_est, f1, f2 = chao1([c.n_hits for c in found])
    cov = direct_coverage(k, st["n_fresh"], n_pattern, None if pool is None else len(pool))
    return {"exhaustive": False, "n_fresh": st["n_fresh"], "n_singletons": f1, "n_doubletons": f2,
            "n_estimated": n_est, "direct_coverage": cov, "estimated_complete": f1 == 0 and cov >= COVERAGE_MIN}


def scyfi(
    model,
    theta: np.ndarray,
    max_order: int,
    *,
    min_order: int = 1,
    inputs: np.ndarray | None = None,
    settings: ScyfiSettings | None = None,
    seed=0,
    backend: str = "cpu",
    lanes: int | None = None,
    n_threads: int | None = None,
) -> xr.Dataset:
    r"""Find the fixed points and k-cycles (k = ``min_order``..``max_order``) of a piecewise-linear model.

    The model describes its map through ``model.piecewise_linear`` (see
    :mod:`plrnn_numba.models.piecewise`): P pattern bits ``d_q = [U_q z + v_q > 0]``
    name the linear region of a state z, and in region d the map is
    :math:`z' = F_d z + c_d`.  For the PLRNN :math:`z' = A z + W\,\mathrm{relu}(z) + C s + h`
    the bits are ``z_i > 0`` and :math:`F_d = A + W D`; for the shallow PLRNN
    :math:`z' = A z + W_1 \mathrm{relu}(W_2 z + h_2) + h_1 + C s` they are
    ``(W2 z + h2)_j > 0`` and :math:`F_d = A + W_1 D W_2`.

    The search is SCYFI (see the module docstring): per order, region sequences
    are solved as :math:`(I - Z) z = b` with :math:`Z = F_k \cdots F_1`, candidates
    jump to the regions their solution actually visits, and fresh random
    candidates restart the search; it stops after ``n_outer`` restarts of
    ``n_inner`` solves without a new cycle (both counters reset on each
    discovery), or after ``max_solves`` solves.  When every pattern is
    realisable (the functionals ``U`` independent, as for the PLRNN) candidate
    bits are drawn independently; otherwise from a pool of realised patterns
    (:func:`realised_pattern_pool`).

    Parameters
    ----------
    model : Model
        A piecewise-linear model (``model.is_piecewise_linear``): ``PLRNN``,
        ``ShallowPLRNN``, ``ALRNN``, ``VanillaRNN(nonlinearity="relu")`` or your own.
        Raw arrays: ``PLRNN.from_arrays(A, W, h)`` gives ``(model, theta)``.
    theta : (P,) array
        Its parameters.
    max_order : int
        Largest cycle order searched (>= 1).
    min_order : int
        Smallest order searched (default 1).  Orders are searched independently
        (lower-order cycles are recognised from their pattern period), so
        ``min_order=max_order=16`` finds the 16-cycles alone.
    inputs : (K,) array, optional
        A constant input ``s`` (folded into the offset).  None: no input (s = 0).
    settings : ScyfiSettings, optional
        Loop counts, tolerances, the pattern pool and which orders are enumerated
        instead (``exhaustive``; defaults: :class:`ScyfiSettings`).
    seed : int, None or numpy.random.Generator
        Seed of the random candidates (order k uses ``SeedSequence(seed,
        spawn_key=(k,))``, the pattern pool ``spawn_key=(0,)``); results do not
        depend on which other orders are searched.  Recorded in the ``seeds``
        attribute (also when drawn from None or a Generator).
    backend : {"cpu", "parallel", "cuda", "auto"}
        ``"cpu"`` (default): one search per order on one thread.  ``"parallel"``:
        each order is searched by ``lanes`` concurrent lanes (independent
        restarts sharing the counters, the candidate stream and the cycles
        found) whose solves run in batches on numba's threads.  ``"cuda"``: the
        same batches solved by a CUDA kernel (:mod:`.gpu_scyfi`; needs a GPU and
        M <= ``config.CUDA_MAX_DIM``; raises otherwise).
        ``"auto"``: CUDA when a GPU is present and the search is large enough
        (:func:`~plrnn_numba.dynamics.batched.resolve_backend`), else the CPU.
        With ``lanes=1`` every backend returns exactly the cycles of ``"cpu"``.
    lanes : int, optional
        Concurrent lanes per order for the batched backends (default:
        :func:`~plrnn_numba.dynamics.batched.default_lanes`); ignored by ``"cpu"``.
        The budget without a discovery stays ``n_outer * n_inner`` solves in all.
    n_threads : int, optional
        Threads for ``"parallel"`` (default: numba's thread count).

    Returns
    -------
    xarray.Dataset
        Dims ``cycle``, ``point`` (= max_order), ``state`` (M), ``eig`` (M), ``bit``
        (the P pattern bits, with their meaning in the ``bit_label`` coordinate),
        ``order_k`` (the orders searched).  Per cycle: ``order``, ``points``
        (cycle, point, state; NaN beyond k), ``patterns`` (cycle, point, bit; int8
        0/1, -1 beyond k), ``eig_real``/``eig_imag`` (eigenvalues of
        ``F_k ... F_1`` by decreasing modulus), ``spectral_radius``, ``stability``
        (``"stable node"``, ``"stable spiral"``, ``"saddle"``, ``"unstable node"``,
        ``"unstable spiral"``, ``"non-hyperbolic"``), ``max_residual``,
        ``n_solves_to_find`` (solves since the previous discovery at that order),
        ``found_at_solve`` (the solve count at that order when it was found),
        ``n_hits`` (random starts that landed on it; -1 where enumerated).
        Per order: ``n_solves``, ``n_singular``, ``n_found``, ``hit_limit``,
        ``seconds``, ``n_outer``, ``n_inner``, ``n_rejected``, ``n_lower_order``,
        ``n_duplicates``, ``n_loops``, ``n_lanes``, ``n_low_rank`` (solves done by low-rank
        updates, ``ScyfiSettings.low_rank``), and how complete the order
        is: ``exhaustive`` (bool: enumerated), ``n_fresh`` (random starts),
        ``n_singletons`` / ``n_doubletons`` (f1 / f2: cycles hit once / twice),
        ``n_estimated`` (Chao1 estimate of the cycles of that order),
        ``direct_coverage`` (lower bound on the probability that a given cycle
        was found) and ``estimated_complete`` (bool; see Notes).  Cycles are sorted by order,
        then by their pattern sequence, and start at their lexicographically
        smallest rotation.  Provenance attributes (call, arguments as JSON, seeds, versions).

    Raises
    ------
    TypeError, ValueError
        For a model that is not piecewise linear, a malformed ``theta`` or
        ``inputs``, or bad settings (the message names the argument).

    Notes
    -----
    The heuristic finds every cycle whose regions the jump dynamics reach from
    the random starts; unstable cycles of chaotic maps can be missed (with the
    default counts 2-D systems lost 10-30 % of their 7-cycles).  Therefore, with
    ``settings.exhaustive="auto"``, orders with at most ``n_outer * n_inner``
    rotation classes of region sequences are enumerated instead, which is
    complete and no more expensive (2-D: k <= 9).  At the heuristic orders
    ``n_estimated`` is the Chao1 estimate from the hit counts,
    :math:`\hat N = N_{obs} + f_1^2 / (2 f_2)` (:math:`N_{obs} + f_1 (f_1 - 1) / 2` if
    :math:`f_2 = 0`): a lower bound that cannot see cycles much harder to reach
    than those found.  ``estimated_complete`` is True for an enumerated order,
    and for a heuristic one only if :math:`f_1 = 0` and ``direct_coverage``
    :math:`= 1 - (1 - k / 2^{Pk})^{n_{fresh}} \ge 0.999` (every cycle would have been
    drawn directly with probability 0.999), which the default counts rarely
    give: a False flag says "not shown complete", not "incomplete".  See
    :mod:`plrnn_numba.dynamics._completeness`; use
    :func:`plrnn_numba.dynamics.brute_force_cycles` to check small systems.
    """
    orders = _orders(max_order, min_order)
    pl = as_piecewise_linear(model, theta, inputs)
    cfg = as_settings(settings)
    ss = V.seed_sequence(seed)
    streams = _Streams(ss.entropy, cfg)
    P = pl.n_bits
    be = resolve_backend(backend, dim=pl.dim, n_pattern=P, work=cfg.budget(orders, P) * pl.dim**3)
    n_threads = config.get_num_threads() if n_threads is None else V.positive_int(n_threads, "n_threads")
    if lanes is not None:
        lanes = V.positive_int(lanes, "lanes")
    pool = streams.pool(pl)

    stat_names = ["n_solves", "n_singular", "n_found", "hit_limit", "seconds", *_STAT_META]
    dtypes = {"seconds": np.float64, "n_estimated": np.float64, "direct_coverage": np.float64,
              "exhaustive": bool, "estimated_complete": bool}
    stats = {name: np.zeros(len(orders), dtype=dtypes.get(name, np.int64)) for name in stat_names}
    cycles: list[Cycle] = []
    enumerate_order = [cfg.exhaustive_at(int(k), P) for k in orders]  # raises before any work is done
    for i, k in enumerate(orders):
        k = int(k)
        t0 = time.perf_counter()
        exhaustive = enumerate_order[i]
        if exhaustive:
            ((raw, st),) = exhaustive_search([pl], k, cfg.engine_options, be, n_threads, cfg.max_solves)
            found, rejected = _verified(pl, k, raw, cfg.tol)
            n_out = n_in = 0
            n_lanes = st["n_lanes"]
        else:
            n_out, n_in = cfg.counters(k, P)
            n_lanes = 1 if be == "cpu" else (lanes or default_lanes(be, n_out * n_in, n_threads))
            # at most one fresh candidate per solve until the budget runs out
            stream = streams.stream(k, P, pool, hint=n_out * n_in)
            batch = search_order(pl, k, n_out, n_in, cfg.max_solves, stream, cfg.engine_options,
                                 backend=be, lanes=n_lanes, n_threads=n_threads,
                                 low_rank=k == 1 and cfg.low_rank_for([pl], be, n_lanes))
            found, rejected = _verified(pl, k, batch.cycles(0), cfg.tol, batch.hits(0))
            st = batch.stats(0)
        cycles.extend(found)
        for name in ("n_solves", "n_singular", "hit_limit", "n_lower_order", "n_duplicates", "n_loops", "n_low_rank"):
            stats[name][i] = st.get(name, 0)
        stats["n_found"][i] = len(found)
        stats["n_outer"][i] = n_out
        stats["n_inner"][i] = n_in
        stats["n_rejected"][i] = st["n_inexact"] + rejected
        stats["n_lanes"][i] = n_lanes
        for name, value in _completeness_stats(k, P, found, exhaustive, st, pool).items():
            stats[name][i] = value
        stats["seconds"][i] = time.perf_counter() - t0

    cycles = finish_cycles(pl, cycles, cfg.tol_hyperbolic)
    arguments = {
        **pl.description,
        "max_order": int(orders[-1]),
        "min_order": int(orders[0]),
        "settings": cfg.arguments(),
        "seed": int(ss.entropy),
        "backend": backend,
        "lanes": lanes,
    }
    attrs = io.provenance("plrnn_numba.dynamics.scyfi", arguments, seeds=int(ss.entropy))
    attrs.update(
        {
            "title": "Fixed points and k-cycles (SCYFI)",
            "method": "SCYFI (heuristic search over linear-region sequences)" + (
                "; orders " + ", ".join(str(int(k)) for k, e in zip(orders, enumerate_order) if e)
                + " enumerated exhaustively (one sequence per rotation class)" if any(enumerate_order) else ""),
            "model": model.name,
            "tol": cfg.tol,
            "tol_hyperbolic": cfg.tol_hyperbolic,
            "backend": be,
        }
    )
    return build_dataset(pl, cycles, orders, int(orders[-1]), stats, _STAT_META, attrs)


def search_many(
    model,
    thetas: np.ndarray,
    max_order: int,
    *,
    min_order: int = 1,
    inputs: np.ndarray | None = None,
    settings: ScyfiSettings | None = None,
    seed=0,
    backend: str = "parallel",
    n_threads: int | None = None,
) -> tuple[list[list[Cycle]], dict[str, np.ndarray]]:
    """SCYFI for many parameter vectors of one model at once (all of them and all orders in one batch).

    Every (parameter vector, order) pair is one search with one lane, so with the
    same ``seed`` each gets exactly the cycles that :func:`scyfi` returns for it;
    the batch is solved on numba's threads (``"parallel"``), on the GPU
    (``"cuda"``) or serially (``"cpu"``).  Maps whose pattern bits are
    independent share one candidate stream per order (the same as :func:`scyfi`
    draws); the others each get their own map's pattern pool.  Orders that
    ``settings.exhaustive`` enumerates are solved for all parameter vectors at
    once, with the same sequences.

    Parameters
    ----------
    model : Model
        A piecewise-linear model.
    thetas : (n, P) array
        Its parameter vectors.
    max_order : int
        Largest cycle order searched, as for :func:`scyfi`.
    min_order : int
        Smallest order searched.
    inputs : (K,) array, optional
        A constant input.
    settings : ScyfiSettings, optional
        As for :func:`scyfi`.
    seed : int, None or numpy.random.Generator
        Seed of the random candidates, as for :func:`scyfi`.
    backend : {"cpu", "parallel", "cuda", "auto"}
        See :func:`scyfi`.
    n_threads : int, optional
        Threads for ``"parallel"``.

    Returns
    -------
    cycles : list of lists of Cycle
        Per parameter vector: its verified cycles with eigenvalues and stability, sorted.
    stats : dict of (n, n_orders) int arrays
        ``n_solves``, ``n_singular``, ``n_found``, ``hit_limit``, ``exhaustive``
        and ``estimated_complete`` (0/1; as in the Dataset of :func:`scyfi`).
    """
    thetas = V.as_float_array(thetas, "thetas")
    if thetas.ndim != 2 or thetas.shape[0] == 0:
        raise ValueError(f"thetas must be a non-empty (n, n_params) array of parameter vectors; got {thetas.shape}")
    orders = _orders(max_order, min_order)
    pls = [as_piecewise_linear(model, t, inputs, theta_name=f"thetas[{i}]") for i, t in enumerate(thetas)]
    cfg = as_settings(settings)
    streams = _Streams(V.seed_sequence(seed).entropy, cfg)
    p0 = pls[0]
    P, M = p0.n_bits, p0.dim
    n_sys, n_ord = len(pls), orders.size
    exhaustive = [cfg.exhaustive_at(int(k), P) for k in orders]
    heur = [j for j in range(n_ord) if not exhaustive[j]]  # the orders searched heuristically
    n_h = len(heur)
    counters = [cfg.counters(int(orders[j]), P) for j in heur]
    work = n_sys * (sum(a * b for a, b in counters) + sum(lyndon_count(int(k), P) for k, e in zip(orders, exhaustive)
                                                          if e)) * M**3
    be = resolve_backend(backend, dim=M, n_pattern=P, work=work, batched_cpu=True)
    n_threads = config.get_num_threads() if n_threads is None else V.positive_int(n_threads, "n_threads")
    pools = [streams.pool(pl) for pl in pls]
    batch = None
    if n_h:
        if all(pool is None for pool in pools):
            shared = [streams.stream(int(orders[j]), P, None) for j in heur]
            stream_list, stream_of = shared, np.tile(np.arange(n_h), n_sys)
        else:
            stream_list = [streams.stream(int(orders[j]), P, pool) for pool in pools for j in heur]
            stream_of = np.arange(n_sys * n_h)
        batch = BatchSearch(
            p0.kernels, np.stack([pl.p for pl in pls]), p0.meta, M, P,
            {
                "system": np.repeat(np.arange(n_sys), n_h),
                "order": np.tile(orders[heur], n_sys),
                "stream": stream_of,
                "n_outer": np.tile([c[0] for c in counters], n_sys),
                "n_inner": np.tile([c[1] for c in counters], n_sys),
                "max_solves": np.full(n_sys * n_h, -1 if cfg.max_solves is None else cfg.max_solves),
                "lanes": np.ones(n_sys * n_h, dtype=np.int64),
            },
            stream_list, cfg.engine_options,
            low_rank=pls if 1 in orders[heur] and cfg.low_rank_for(pls, be, n_sys * n_h) else None,
        )
        _run(batch, be, n_threads)
    # the enumerated orders: all systems at once, one order at a time
    enumerated = {j: exhaustive_search(pls, int(orders[j]), cfg.engine_options, be, n_threads, cfg.max_solves)
                  for j in range(n_ord) if exhaustive[j]}
    out = []
    stats = {name: np.zeros((n_sys, n_ord), np.int64)
             for name in ("n_solves", "n_singular", "n_found", "hit_limit", "exhaustive", "estimated_complete")}
    for g, pl in enumerate(pls):
        cyc: list[Cycle] = []
        for j, k in enumerate(orders):
            if exhaustive[j]:
                raw, st = enumerated[j][g]
                found, _ = _verified(pl, int(k), raw, cfg.tol)
            else:
                srch = g * n_h + heur.index(j)
                found, _ = _verified(pl, int(k), batch.cycles(srch), cfg.tol, batch.hits(srch))
                st = batch.stats(srch)
            cyc.extend(found)
            for name in ("n_solves", "n_singular", "hit_limit"):
                stats[name][g, j] = st[name]
            stats["n_found"][g, j] = len(found)
            comp = _completeness_stats(int(k), P, found, exhaustive[j], st, pools[g])
            stats["exhaustive"][g, j] = comp["exhaustive"]
            stats["estimated_complete"][g, j] = comp["estimated_complete"]
        out.append(finish_cycles(pl, cyc, cfg.tol_hyperbolic))
    return out, stats
