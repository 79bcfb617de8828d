r"""Exhaustive search for fixed points and k-cycles: the reference for SCYFI.

Every sequence of k region patterns (``2^(P k)`` of them, P bits per region) is
solved for its candidate cycle point, ``(I - Z) z = b`` with
``Z = F_k ... F_1`` (``numpy.linalg.solve``, vectorised over sequences), and the
point is kept if the true map visits exactly those regions.  This finds *every*
hyperbolic cycle (every one whose ``I - Z`` is invertible) of orders up to
``max_order`` -- at exponential cost, hence the limit on ``P * k``.

It is written independently of SCYFI's engine and of the families' compiled
region kernels: region maps, products, solves and roll-outs are computed in
NumPy from the map's ReLU normal form ``F(z) = L z + c + R relu(U z + v)``
(the NumPy methods of :class:`~plrnn_numba.models.piecewise.PiecewiseLinear`), which
:func:`~plrnn_numba.models.check_piecewise_linear` ties to the model's own step
and Jacobian kernels.  Only the final verification and the Dataset layout are
shared with SCYFI.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..models.piecewise import as_piecewise_linear
from ._cycles import Cycle, build_dataset, finish_cycles, verify_and_refine

__all__ = ["brute_force_cycles", "MAX_BITS"]

#: default limit on P * k (pattern bits times order): 2^20 ~ 1e6 sequences of one order.
MAX_BITS = 20


def _minimal_rotation(seq_bits: np.ndarray) -> np.ndarray:
    """For sequences (n, k, P): True where the sequence is its own smallest rotation
    and has no shorter period (each cycle is then counted once)."""
    n, k, P = seq_bits.shape
    flat = seq_bits.reshape(n, k * P)
    ok = np.ones(n, dtype=bool)
    for s in range(1, k):
        rot = np.roll(seq_bits, -s, axis=1).reshape(n, k * P)
        diff = rot != flat
        first = np.argmax(diff, axis=1)
        any_diff = diff.any(axis=1)
        # rotation equal to the sequence: shorter period -> a lower-order cycle
        ok &= any_diff
        # rotation lexicographically smaller -> not the canonical representative
        smaller = any_diff & (rot[np.arange(n), first] < flat[np.arange(n), first])
        ok &= ~smaller
    return ok


def brute_force_cycles(
    model,
    theta: np.ndarray,
    max_order: int,
    *,
    min_order: int = 1,
    inputs: np.ndarray | None = None,
    max_bits: int = MAX_BITS,
    tol: float = 1e-10,
    rcond_min: float = 1e-12,
    tol_hyperbolic: float = 1e-8,
    chunk: int = 8192,
) -> xr.Dataset:
    """All fixed points and k-cycles of a small piecewise-linear map, by exhaustive enumeration.

    Same arguments (where they apply) and the same output Dataset as
    :func:`plrnn_numba.dynamics.scyfi`; ``n_solves`` counts the region sequences
    solved (all ``2^(P k)``), ``hit_limit`` is always 0 and ``n_solves_to_find``
    is -1.

    Parameters
    ----------
    model : Model
        A piecewise-linear model, as for :func:`~plrnn_numba.dynamics.scyfi`.
    theta : (P,) array
        Its parameters.
    max_order : int
        Largest cycle order (>= 1).
    min_order : int
        Smallest cycle order.
    inputs : (K,) array, optional
        A constant input.
    max_bits : int
        Refuse to enumerate when ``P * max_order`` exceeds this (P pattern bits per
        region: M for the PLRNN, H or 2H for the shallow ones).  The default 20
        means up to ~10^6 sequences for the largest order.
    tol, rcond_min, tol_hyperbolic : float
        As in :class:`~plrnn_numba.dynamics.ScyfiSettings`.
    chunk : int
        Region sequences solved per vectorised batch (memory ~ chunk * k * M^2 * 8 bytes).

    Returns
    -------
    xarray.Dataset
        See :func:`~plrnn_numba.dynamics.scyfi`.

    Raises
    ------
    ValueError
        If ``P * max_order > max_bits``, and for the input errors of ``scyfi``.
    """
    max_order = V.positive_int(max_order, "max_order")
    min_order = V.positive_int(min_order, "min_order")
    if min_order > max_order:
        raise ValueError(f"min_order ({min_order}) must be <= max_order ({max_order})")
    max_bits = V.positive_int(max_bits, "max_bits")
    chunk = V.positive_int(chunk, "chunk")
    system = as_piecewise_linear(model, theta, inputs)
    tol = V.finite_float(tol, "tol", low=0.0)
    rcond_min = V.finite_float(rcond_min, "rcond_min", low=0.0, high=1.0)
    tol_hyperbolic = V.finite_float(tol_hyperbolic, "tol_hyperbolic", low=0.0)
    P, M = system.n_bits, system.dim
    if P * max_order > max_bits:
        raise ValueError(
            f"brute force over {P} pattern bits x order {max_order} = {P * max_order} bits exceeds "
            f"max_bits={max_bits} (2^{P * max_order} region sequences); lower max_order, or raise "
            f"max_bits if you can afford it"
        )

    orders = np.arange(min_order, max_order + 1)
    stats = {
        "n_solves": np.zeros(len(orders), np.int64),
        "n_singular": np.zeros(len(orders), np.int64),
        "n_found": np.zeros(len(orders), np.int64),
        "hit_limit": np.zeros(len(orders), np.int64),
        "seconds": np.zeros(len(orders)),
        "n_rejected": np.zeros(len(orders), np.int64),
    }
    cycles: list[Cycle] = []
    eye = np.eye(M)
    for oi, k in enumerate(orders):
        k = int(k)
        t0 = time.perf_counter()
        nbits = P * k
        total = 1 << nbits
        shifts = np.arange(nbits, dtype=np.int64)
        for start in range(0, total, chunk):
            idx = np.arange(start, min(start + chunk, total), dtype=np.int64)
            n = idx.size
            seq = ((idx[:, None] >> shifts) & 1).astype(np.int8).reshape(n, k, P)
            F, c = system.region(seq)  # (n, k, M, M), (n, k, M)
            Z = np.broadcast_to(eye, (n, M, M)).copy()
            b = np.zeros((n, M))
            with np.errstate(all="ignore"):
                for j in range(k):
                    Z = F[:, j] @ Z
                    b = np.einsum("nij,nj->ni", F[:, j], b) + c[:, j]
                A = eye - Z
                finite = np.all(np.isfinite(A.reshape(n, -1)), axis=1) & np.all(np.isfinite(b), axis=1)
                ok = finite.copy()
                if np.any(finite):
                    cond = np.full(n, np.inf)
                    cond[finite] = np.linalg.cond(A[finite], 1)
                    ok = finite & np.isfinite(cond) & (cond * rcond_min < 1.0)
            stats["n_solves"][oi] += n
            stats["n_singular"][oi] += int(np.sum(~ok))
            if not np.any(ok):
                continue
            sel = np.flatnonzero(ok)
            z = np.linalg.solve(A[sel], b[sel][..., None])[..., 0]
            # roll with the true map and read the visited patterns
            traj = np.empty((sel.size, k, M))
            traj[:, 0] = z
            with np.errstate(all="ignore"):
                for j in range(1, k):
                    traj[:, j] = system.step(traj[:, j - 1])
            visited = system.patterns(traj)
            consistent = np.all(visited.reshape(sel.size, -1) == seq[sel].reshape(sel.size, -1), axis=1)
            consistent &= _minimal_rotation(seq[sel])
            for q in np.flatnonzero(consistent):
                pts, res, good = verify_and_refine(system, traj[q], seq[sel[q]], tol)
                if good:
                    cycles.append(Cycle(order=k, points=pts, patterns=seq[sel[q]].copy(), residual=res))
                    stats["n_found"][oi] += 1
                else:
                    stats["n_rejected"][oi] += 1
        stats["seconds"][oi] = time.perf_counter() - t0

    cycles = finish_cycles(system, cycles, tol_hyperbolic)
    arguments = {
        **system.description,
        "max_order": max_order,
        "min_order": min_order,
        "max_bits": max_bits,
        "tol": tol,
        "rcond_min": rcond_min,
        "tol_hyperbolic": tol_hyperbolic,
    }
    attrs = io.provenance("plrnn_numba.dynamics.brute_force_cycles", arguments, seeds=None)
    attrs.update(
        {
            "title": "Fixed points and k-cycles (exhaustive enumeration)",
            "method": "brute force over all region sequences",
            "model": model.name,
            "tol": tol,
            "tol_hyperbolic": tol_hyperbolic,
        }
    )
    meta = {"n_rejected": ("1", "consistent sequences whose point failed the exactness check")}
    return build_dataset(system, cycles, orders, max_order, stats, meta, attrs)
