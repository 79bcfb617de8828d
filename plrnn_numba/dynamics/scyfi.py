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

from .. import _validate as V
from .. import config, io
from ._cycles import Cycle, build_dataset, finish_cycles, verify_and_refine
from ._piecewise import PiecewiseLinearSystem, as_system, check_order
from ._search import BLAS_MIN_SIZE, BatchSearch, solve_region_sequence
from .batched import default_lanes, resolve_backend

__all__ = ["scyfi", "search_many", "solve_region_sequence", "default_counters", "realised_pattern_pool"]

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

    def __init__(self, rng: np.random.Generator, k: int, P: int, pool: np.ndarray | None, hint: int = 0):
        self.rng, self.k, self.P, self.pool = rng, k, P, pool
        self.chunk = 0
        self.limit = max(1, min(self.max_chunk, (8 << 20) // max(1, k * P)))
        # a first chunk as large as the expected need saves engine re-entries
        self.first = max(self.first_chunk, min(int(hint), self.max_chunk))

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


def _counter(value, k: int, P: int, which: int, name: str) -> int:
    if value is None:
        return default_counters(k, P)[which]
    if callable(value):
        return check_order(value(k), f"{name}({k})")
    return check_order(value, name)


class _Settings:
    """Validated search settings shared by :func:`scyfi` and the bifurcation grid."""

    def __init__(self, *, n_outer=None, n_inner=None, seed=0, tol=1e-10, max_solves=None, rcond_min=1e-12,
                 dup_rtol=1e-8, tol_hyperbolic=1e-8, pool_samples=4096):
        self.tol = V.finite_float(tol, "tol", low=0.0)
        self.rcond_min = V.finite_float(rcond_min, "rcond_min", low=0.0, high=1.0)
        self.dup_rtol = V.finite_float(dup_rtol, "dup_rtol", low=0.0)
        self.tol_hyperbolic = V.finite_float(tol_hyperbolic, "tol_hyperbolic", low=0.0)
        self.max_solves = None if max_solves is None else check_order(max_solves, "max_solves")
        self.pool_samples = check_order(pool_samples, "pool_samples")
        for value, name in ((n_outer, "n_outer"), (n_inner, "n_inner")):
            if value is not None and not callable(value):
                check_order(value, name)
        self.n_outer, self.n_inner = n_outer, n_inner
        self.seed = None if seed is None else check_order(seed, "seed", minimum=0)
        self.entropy = np.random.SeedSequence(self.seed).entropy
        # a consistent candidate's closure F(z_k) = z_1 is checked in the kernel to a loose
        # tolerance (rounding grows along the roll-out); the strict check comes after.
        self.opts = np.array([self.rcond_min, self.dup_rtol, max(1e-6, self.tol)], dtype=np.float64)

    def counters(self, k: int, P: int) -> tuple[int, int]:
        return _counter(self.n_outer, k, P, 0, "n_outer"), _counter(self.n_inner, k, P, 1, "n_inner")

    def stream(self, k: int, P: int, pool, hint: int = 0) -> _FreshDraws:
        """The fresh candidates of order k (``SeedSequence(seed, spawn_key=(k,))``).

        ``hint``: about how many will be needed (the size of the first chunk drawn;
        the candidates do not depend on it).
        """
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(k,)))
        return _FreshDraws(rng, k, P, pool, hint)

    def pool(self, system: PiecewiseLinearSystem):
        """Realised-pattern pool of a shallow system (None for the PLRNN)."""
        if system.kind == "plrnn":
            return None
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(0,)))
        return realised_pattern_pool(system, rng, n_samples=self.pool_samples)

    def arguments(self) -> dict:
        return {
            "n_outer": self.n_outer,
            "n_inner": self.n_inner,
            "seed": self.seed,
            "tol": self.tol,
            "max_solves": self.max_solves,
            "rcond_min": self.rcond_min,
            "dup_rtol": self.dup_rtol,
            "tol_hyperbolic": self.tol_hyperbolic,
            "pool_samples": self.pool_samples,
        }


def _verified(system: PiecewiseLinearSystem, k: int, raw, tol: float) -> tuple[list[Cycle], int]:
    """Keep the raw cycles of order k that pass the true-map check (refined if needed)."""
    out = []
    rejected = 0
    for pts, pats, at, since in raw:
        pts, res, ok = verify_and_refine(system, pts, pats, tol)
        if ok:
            out.append(Cycle(order=k, points=pts, patterns=pats, residual=res, n_solves_to_find=since,
                             found_at_solve=at))
        else:
            rejected += 1
    return out, rejected


def search_order(system, k, n_out, n_in, max_solves, stream, opts, *, backend="cpu", lanes=1, n_threads=1,
                 kernels=None) -> BatchSearch:
    """Run one SCYFI search (one system, order k) on a resolved backend; returns the finished batch.

    ``stream`` yields the fresh candidates (:class:`_FreshDraws`), ``opts`` is
    ``[rcond_min, dup_rtol, accept_rtol]``; read the results with
    ``batch.cycles(0)`` and ``batch.stats(0)``.
    """
    batch = BatchSearch(
        kernels or system.kernels(), system.p[None, :], system.meta, system.dim, system.n_pattern,
        {"system": [0], "order": [k], "stream": [0], "n_outer": [n_out], "n_inner": [n_in],
         "max_solves": [-1 if max_solves is None else max_solves], "lanes": [lanes]},
        [stream], opts,
    )
    _run(batch, backend, n_threads)
    return batch


def _run(batch: BatchSearch, backend: str, n_threads: int) -> None:
    """Run a batch of searches on the resolved backend."""
    if backend == "cuda":
        from .gpu_scyfi import CudaSolver

        batch.run_rounds(CudaSolver(batch), n_threads=n_threads)
    else:
        batch.run_cpu(parallel=backend == "parallel", n_chunks=4 * n_threads)


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
    backend: str = "cpu",
    lanes: int | None = None,
    n_threads: int | None = None,
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
    backend : {"cpu", "parallel", "cuda", "auto"}
        ``"cpu"`` (default): one search per order on one thread.  ``"parallel"``:
        each order is searched by ``lanes`` concurrent lanes (independent
        restarts sharing the counters, the candidate stream and the cycles
        found) whose solves run in batches on numba's threads.  ``"cuda"``: the
        same batches solved by a CUDA kernel (:mod:`.gpu_scyfi`; needs a GPU and
        M <= :data:`~plrnn_numba.dynamics.batched.MAX_DIM`; raises otherwise).
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
    cfg = _Settings(n_outer=n_outer, n_inner=n_inner, seed=seed, tol=tol, max_solves=max_solves,
                    rcond_min=rcond_min, dup_rtol=dup_rtol, tol_hyperbolic=tol_hyperbolic,
                    pool_samples=pool_samples)
    P = system.n_pattern
    orders = np.arange(min_order, max_order + 1)
    budget = sum(int(np.prod(cfg.counters(int(k), P))) for k in orders)
    be = resolve_backend(backend, dim=system.dim, n_pattern=P, work=budget * system.dim**3)
    n_threads = config.get_num_threads() if n_threads is None else check_order(n_threads, "n_threads")
    if lanes is not None:
        lanes = check_order(lanes, "lanes")
    kernels = system.kernels()
    if system.dim * system.dim >= BLAS_MIN_SIZE and hasattr(config, "limit_blas_threads"):
        # the k-fold products go to BLAS from inside the kernel: one BLAS thread
        # (see plrnn_numba.config.limit_blas_threads)
        config.limit_blas_threads()
    pool = cfg.pool(system)

    stat_names = ["n_solves", "n_singular", "n_found", "hit_limit", "seconds", *_STAT_META]
    stats = {name: np.zeros(len(orders), dtype=np.float64 if name == "seconds" else np.int64) for name in stat_names}
    cycles: list[Cycle] = []
    lanes_used = np.ones(len(orders), dtype=np.int64)
    for i, k in enumerate(orders):
        k = int(k)
        t0 = time.perf_counter()
        n_out, n_in = cfg.counters(k, P)
        n_lanes = 1 if be == "cpu" else (lanes or default_lanes(be, n_out * n_in, n_threads))
        lanes_used[i] = n_lanes
        # at most one fresh candidate per solve until the budget runs out
        stream = cfg.stream(k, P, pool, hint=n_out * n_in)
        batch = search_order(system, k, n_out, n_in, cfg.max_solves, stream, cfg.opts,
                             backend=be, lanes=n_lanes, n_threads=n_threads, kernels=kernels)
        found, rejected = _verified(system, k, batch.cycles(0), cfg.tol)
        cycles.extend(found)
        st = batch.stats(0)
        for name in ("n_solves", "n_singular", "hit_limit", "n_lower_order", "n_duplicates", "n_loops"):
            stats[name][i] = st[name]
        stats["n_found"][i] = len(found)
        stats["n_outer"][i] = n_out
        stats["n_inner"][i] = n_in
        stats["n_rejected"][i] = st["n_inexact"] + rejected
        stats["seconds"][i] = time.perf_counter() - t0

    cycles = finish_cycles(system, cycles, cfg.tol_hyperbolic)
    arguments = {
        "model": system.description,
        "max_order": max_order,
        "min_order": min_order,
        **cfg.arguments(),
        "inputs": None if inputs is None else np.asarray(inputs, dtype=float).tolist(),
        "backend": backend,
        "lanes": lanes,
    }
    attrs = io.provenance("plrnn_numba.dynamics.scyfi", arguments, seeds=int(cfg.entropy))
    attrs.update(
        {
            "title": "Fixed points and k-cycles (SCYFI)",
            "method": "SCYFI (heuristic search over linear-region sequences)",
            "model_kind": system.kind,
            "tol": cfg.tol,
            "tol_hyperbolic": cfg.tol_hyperbolic,
            "backend": be,
        }
    )
    ds = build_dataset(system, cycles, orders, max_order, stats, _STAT_META, attrs)
    ds["n_lanes"] = ("order_k", lanes_used, {"units": "1", "long_name": "concurrent search lanes at this order"})
    return ds


def search_many(
    systems: list[PiecewiseLinearSystem],
    max_order: int,
    *,
    min_order: int = 1,
    backend: str = "parallel",
    n_threads: int | None = None,
    **settings,
) -> tuple[list[list[Cycle]], dict[str, np.ndarray]]:
    """SCYFI for many systems of one family at once (all systems and orders in one batch).

    Every (system, order) pair is one search with one lane, so with the same
    ``seed`` each system gets exactly the cycles that :func:`scyfi` returns for
    it; the batch is solved on numba's threads (``"parallel"``), on the GPU
    (``"cuda"``) or serially (``"cpu"``).  PLRNN searches of the same order share
    one candidate stream (the same as :func:`scyfi` draws); shallow ones each get
    their system's pattern pool.

    Parameters
    ----------
    systems : list of PiecewiseLinearSystem
        Same family and shape (:func:`~plrnn_numba.dynamics.as_system`).
    max_order, min_order : int
        Orders searched.
    backend : {"cpu", "parallel", "cuda", "auto"}
        See :func:`scyfi`.
    n_threads : int, optional
        Threads for ``"parallel"``.
    **settings
        ``n_outer``, ``n_inner``, ``seed``, ``tol``, ``max_solves``, ``rcond_min``,
        ``dup_rtol``, ``tol_hyperbolic``, ``pool_samples`` as for :func:`scyfi`.

    Returns
    -------
    cycles : list of lists of Cycle
        Per system: its verified cycles with eigenvalues and stability, sorted.
    stats : dict of (n_systems, n_orders) int arrays
        ``n_solves``, ``n_singular``, ``n_found``, ``hit_limit``.
    """
    if len(systems) == 0:
        raise ValueError("systems must not be empty")
    s0 = systems[0]
    for i, s in enumerate(systems):
        if s.kind != s0.kind or s.p.shape != s0.p.shape:
            raise ValueError(f"systems[{i}] must be of the same family and shape as systems[0]; got {s!r}")
    max_order = check_order(max_order, "max_order")
    min_order = check_order(min_order, "min_order")
    cfg = _Settings(**settings)
    P, M = s0.n_pattern, s0.dim
    orders = np.arange(min_order, max_order + 1)
    n_sys, n_ord = len(systems), orders.size
    counters = [cfg.counters(int(k), P) for k in orders]
    work = n_sys * sum(a * b for a, b in counters) * M**3
    be = resolve_backend(backend, dim=M, n_pattern=P, work=work, batched_cpu=True)
    n_threads = config.get_num_threads() if n_threads is None else check_order(n_threads, "n_threads")
    if s0.kind == "plrnn":
        streams = [cfg.stream(int(k), P, None) for k in orders]
        stream_of = np.tile(np.arange(n_ord), n_sys)
    else:
        streams = [cfg.stream(int(k), P, cfg.pool(s)) for s in systems for k in orders]
        stream_of = np.arange(n_sys * n_ord)
    batch = BatchSearch(
        s0.kernels(), np.stack([s.p for s in systems]), s0.meta, M, P,
        {
            "system": np.repeat(np.arange(n_sys), n_ord),
            "order": np.tile(orders, n_sys),
            "stream": stream_of,
            "n_outer": np.tile([c[0] for c in counters], n_sys),
            "n_inner": np.tile([c[1] for c in counters], n_sys),
            "max_solves": np.full(n_sys * n_ord, -1 if cfg.max_solves is None else cfg.max_solves),
            "lanes": np.ones(n_sys * n_ord, dtype=np.int64),
        },
        streams, cfg.opts,
    )
    if M * M >= BLAS_MIN_SIZE and hasattr(config, "limit_blas_threads"):
        config.limit_blas_threads()
    _run(batch, be, n_threads)
    out = []
    stats = {name: np.zeros((n_sys, n_ord), np.int64) for name in ("n_solves", "n_singular", "n_found", "hit_limit")}
    for g, system in enumerate(systems):
        cyc: list[Cycle] = []
        for j, k in enumerate(orders):
            srch = g * n_ord + j
            found, _ = _verified(system, int(k), batch.cycles(srch), cfg.tol)
            cyc.extend(found)
            st = batch.stats(srch)
            for name in ("n_solves", "n_singular", "hit_limit"):
                stats[name][g, j] = st[name]
            stats["n_found"][g, j] = len(found)
        out.append(finish_cycles(system, cyc, cfg.tol_hyperbolic))
    return out, stats
