"""Cycle post-processing shared by SCYFI and the brute-force search.

Everything here runs once per *found* cycle, in plain NumPy: putting a cycle in
canonical order, checking and refining its points with the true map,
eigenvalues and stability class of the cycle Jacobian, and the output
Dataset.  The searches themselves (:mod:`.scyfi`, :mod:`.brute_force`) share
none of their solving code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..models.piecewise import PiecewiseLinear

#: stability classes, in the order they are tested (see :func:`classify_stability`).
STABILITY_CLASSES = (
    "non-hyperbolic",
    "stable node",
    "stable spiral",
    "saddle",
    "unstable node",
    "unstable spiral",
)

#: stability groups (counted per order by the bifurcation tools), and the group of each class.
STABILITY_GROUPS = ("stable", "saddle", "unstable", "non-hyperbolic")
_GROUP_OF = {
    "stable node": 0,
    "stable spiral": 0,
    "saddle": 1,
    "unstable node": 2,
    "unstable spiral": 2,
    "non-hyperbolic": 3,
}


def stability_group(stability: str) -> int:
    """Index in :data:`STABILITY_GROUPS` of a stability class (unknown classes count as non-hyperbolic)."""
    return _GROUP_OF.get(stability, 3)


#: an eigenvalue counts as real when ``|Im| <= REAL_RTOL * |lambda|``.  LAPACK returns
#: exactly zero imaginary parts for well-separated real eigenvalues; the tolerance only
#: absorbs the O(sqrt(eps)) splitting of a (nearly) repeated real eigenvalue.
REAL_RTOL = 1e-7


@dataclass
class Cycle:
    """A verified k-cycle: ``points[j + 1] = F(points[j])``, ``points[0] = F(points[k - 1])``."""

    order: int
    points: np.ndarray  # (k, M)
    patterns: np.ndarray  # (k, P) int8, patterns[j] = region bits of points[j]
    residual: float = np.nan
    n_solves_to_find: int = -1
    found_at_solve: int = -1
    n_hits: int = -1  # random starts of the heuristic that landed on it (-1: enumerated)
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0, complex))
    stability: str = ""


def canonical_shift(patterns: np.ndarray) -> int:
    """Rotation ``s`` that makes ``patterns[(j + s) % k]`` lexicographically smallest.

    A cycle of minimal period k visits k distinct *points*, but may visit a region
    more than once; the whole pattern sequence, though, differs from each of its
    non-trivial rotations (else the cycle would have a shorter period), so the
    smallest rotation is unique.  Both searches report cycles starting there, which
    makes their outputs directly comparable.
    """
    k = patterns.shape[0]
    flat = [np.roll(patterns, -s, axis=0).ravel().tolist() for s in range(k)]
    return int(min(range(k), key=lambda s: flat[s]))


def rotate(cycle_points: np.ndarray, cycle_patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cycle starting at its canonical point (see :func:`canonical_shift`)."""
    s = canonical_shift(cycle_patterns)
    return np.roll(cycle_points, -s, axis=0), np.roll(cycle_patterns, -s, axis=0)


def classify_stability(eigenvalues: np.ndarray, tol_hyperbolic: float) -> str:
    """Stability class of a cycle from the eigenvalues of its Jacobian ``F_k ... F_1``.

    ``"non-hyperbolic"`` if some ``| |lambda| - 1 | <= tol_hyperbolic``; else
    ``"stable node"`` (all ``|lambda| < 1``, all real), ``"stable spiral"`` (all
    ``|lambda| < 1``, some complex), ``"saddle"`` (some inside, some outside the unit
    circle), ``"unstable node"`` / ``"unstable spiral"`` (all ``|lambda| > 1``).

    Parameters
    ----------
    eigenvalues : (M,) complex array
        Eigenvalues of the cycle's Jacobian.
    tol_hyperbolic : float
        Tolerance of ``| |lambda| - 1 |`` below which the cycle is non-hyperbolic.

    Returns
    -------
    str
        One of ``STABILITY_CLASSES``.
    """
    lam = np.asarray(eigenvalues, dtype=complex)
    mod = np.abs(lam)
    if np.any(~np.isfinite(mod)):
        return "unstable node"
    if np.any(np.abs(mod - 1.0) <= tol_hyperbolic):
        return "non-hyperbolic"
    complex_ = np.any(np.abs(lam.imag) > REAL_RTOL * mod)
    if np.all(mod < 1.0):
        return "stable spiral" if complex_ else "stable node"
    if np.all(mod > 1.0):
        return "unstable spiral" if complex_ else "unstable node"
    return "saddle"


def sorted_eigenvalues(J: np.ndarray) -> np.ndarray:
    """Eigenvalues of ``J`` by decreasing modulus (conjugate pairs: positive imaginary part first)."""
    with np.errstate(all="ignore"):
        lam = np.linalg.eigvals(J).astype(complex) if np.all(np.isfinite(J)) else np.full(J.shape[0], np.nan + 0j)
    order = np.lexsort((-lam.imag, -lam.real, -np.round(np.abs(lam), 12)))
    return lam[order]


def _k_step_residuals(system: PiecewiseLinear, points: np.ndarray) -> np.ndarray:
    """``max |F^k(z_j) - z_j|`` for every point of a k-cycle (all points rolled at once)."""
    k = points.shape[0]
    Y = points.copy()
    with np.errstate(all="ignore"):
        for _ in range(k):
            Y = system.step(Y)
        r = np.max(np.abs(Y - points), axis=1)
    return np.where(np.isfinite(r), r, np.inf)


def residual_scale(system: PiecewiseLinear, points: np.ndarray, patterns: np.ndarray) -> float:
    """``max(max_j |z_j|_inf, max_j |c_j|_inf)``: the size of the terms whose rounding makes the residual.

    Relative to this scale, a computed cycle is exact to ~machine precision times
    the conditioning of the cycle; 1 if both are zero (the origin as a fixed point
    of a map without offset, which is exact).
    """
    _, c = system.region(patterns)
    s = max(float(np.max(np.abs(points))), float(np.max(np.abs(c))))
    return s if s > 0.0 else 1.0


def verify_and_refine(
    system: PiecewiseLinear, points: np.ndarray, patterns: np.ndarray, tol: float
) -> tuple[np.ndarray, float, bool]:
    """Check that ``points`` form a k-cycle in ``patterns`` to relative ``tol``; refine if needed.

    The check uses the true map: every point must satisfy
    ``|F^k(z_j) - z_j|_inf <= tol * scale`` (:func:`residual_scale`) and lie in its
    claimed region.  A point that misses is refined by one Newton step on
    ``g(z) = F^k(z) - z`` -- inside the cycle's regions ``F^k(z) = Z_j z + b_j``, so
    the step ``z <- z - (Z_j - I)^{-1} g(z)`` is an exact linear re-solve with a
    residual-based right-hand side (iterative refinement).

    Returns
    -------
    points : (k, M) array
        The (possibly refined) points.
    residual : float
        ``max_j |F^k(z_j) - z_j|_inf / scale``.
    ok : bool
        Whether the residual is within ``tol`` and every point lies in its region.
    """
    points = np.array(points, dtype=np.float64, copy=True)
    k = points.shape[0]
    scale = residual_scale(system, points, patterns)
    res = _k_step_residuals(system, points) / scale
    bad = np.flatnonzero(res > tol * 1e-2)
    if bad.size:
        F, c = system.region(patterns)
        for j in bad:
            # Jacobian of the k-fold map started at point j: F_{j-1} ... F_0 F_{k-1} ... F_j
            Zj = np.eye(system.dim)
            for t in range(k):
                Zj = F[(j + t) % k] @ Zj
            y = points[j]
            with np.errstate(all="ignore"):
                for _ in range(k):
                    y = system.step(y)
                g = y - points[j]
                try:
                    dz = np.linalg.solve(Zj - np.eye(system.dim), g)
                except np.linalg.LinAlgError:
                    continue
            if np.all(np.isfinite(dz)):
                cand = points[j] - dz
                if np.array_equal(system.patterns(cand), patterns[j]):
                    points[j] = cand
        res = _k_step_residuals(system, points) / scale
    in_regions = np.array_equal(system.patterns(points), patterns)
    residual = float(np.max(res))
    return points, residual, bool(in_regions and residual <= tol)


def finish_cycles(system: PiecewiseLinear, cycles: list[Cycle], tol_hyperbolic: float) -> list[Cycle]:
    """Canonical rotation, eigenvalues and stability class; sorted by (order, patterns)."""
    out = []
    for cyc in cycles:
        pts, pats = rotate(cyc.points, cyc.patterns)
        Z, _ = system.cycle_map(pats)
        lam = sorted_eigenvalues(Z)
        out.append(
            Cycle(
                order=cyc.order,
                points=pts,
                patterns=pats,
                residual=cyc.residual,
                n_solves_to_find=cyc.n_solves_to_find,
                found_at_solve=cyc.found_at_solve,
                n_hits=cyc.n_hits,
                eigenvalues=lam,
                stability=classify_stability(lam, tol_hyperbolic),
            )
        )
    out.sort(key=lambda c: (c.order, c.patterns.ravel().tolist()))
    return out


# ============================================================================ Dataset
_ORDER_STATS = {
    "n_solves": ("1", "linear solves (I - Z) z = b attempted at this order"),
    "n_singular": ("1", "solves skipped because I - Z was singular, ill-conditioned or non-finite"),
    "n_found": ("1", "cycles of this order returned"),
    "hit_limit": ("1", "1 if the search stopped on max_solves rather than by its loop counters"),
    "seconds": ("s", "wall-clock time spent on this order"),
}


def build_dataset(
    pl: PiecewiseLinear,
    cycles: list[Cycle],
    orders: np.ndarray,
    max_order: int,
    stats: dict[str, np.ndarray],
    stat_meta: dict[str, tuple[str, str]] | None,
    attrs: dict,
) -> xr.Dataset:
    """Assemble the cycle Dataset (layout documented in :func:`plrnn_numba.dynamics.scyfi`)."""
    n = len(cycles)
    M, P = pl.dim, pl.n_bits
    points = np.full((n, max_order, M), np.nan)
    patterns = np.full((n, max_order, P), -1, dtype=np.int8)
    eig_re = np.full((n, M), np.nan)
    eig_im = np.full((n, M), np.nan)
    for i, c in enumerate(cycles):
        k = c.order
        points[i, :k] = c.points
        patterns[i, :k] = c.patterns
        eig_re[i] = c.eigenvalues.real
        eig_im[i] = c.eigenvalues.imag
    order = np.array([c.order for c in cycles], dtype=np.int64)
    rho = np.array([float(np.max(np.abs(c.eigenvalues))) for c in cycles], dtype=np.float64)
    stability = np.array([c.stability for c in cycles], dtype=str)
    residual = np.array([c.residual for c in cycles], dtype=np.float64)
    to_find = np.array([c.n_solves_to_find for c in cycles], dtype=np.int64)
    found_at = np.array([c.found_at_solve for c in cycles], dtype=np.int64)
    n_hits = np.array([c.n_hits for c in cycles], dtype=np.int64)

    data_vars = {
        "order": (("cycle",), order, {"units": "1", "long_name": "cycle order k (minimal period)"}),
        "points": (
            ("cycle", "point", "state"),
            points,
            {"units": "1", "long_name": "cycle points z_1..z_k, z_{j+1} = F(z_j) (NaN beyond k)"},
        ),
        "patterns": (
            ("cycle", "point", "bit"),
            patterns,
            {"units": "1", "long_name": "region pattern of each cycle point (0/1; -1 beyond k)",
             "definition": "bit q is 1 where its boundary functional is positive (see bit_label)"},
        ),
        "eig_real": (("cycle", "eig"), eig_re,
                     {"units": "1", "long_name": "real part of the eigenvalues of the cycle Jacobian F_k...F_1"}),
        "eig_imag": (("cycle", "eig"), eig_im,
                     {"units": "1", "long_name": "imaginary part of the eigenvalues of the cycle Jacobian"}),
        "spectral_radius": (("cycle",), rho,
                            {"units": "1", "long_name": "largest eigenvalue modulus of the cycle Jacobian"}),
        "stability": (("cycle",), stability,
                      {"units": "1", "long_name": "stability class of the cycle",
                       "classes": ", ".join(STABILITY_CLASSES)}),
        "max_residual": (("cycle",), residual,
                         {"units": "1",
                          "long_name": "max_j |F^k(z_j) - z_j|_inf / max(|z|_inf, |c|_inf) over the cycle points"}),
        "n_solves_to_find": (("cycle",), to_find,
                             {"units": "1",
                              "long_name": "solves at this order since the previous discovery (-1: not recorded)"}),
        "found_at_solve": (("cycle",), found_at,
                           {"units": "1",
                            "long_name": "number of solves at this order when the cycle was found (-1: not recorded)"}),
        "n_hits": (("cycle",), n_hits,
                   {"units": "1",
                    "long_name": "random starts of the heuristic search that landed on this cycle, its discovery "
                                 "included (-1: found by enumeration)"}),
    }
    meta = {**_ORDER_STATS, **(stat_meta or {})}
    for name, values in stats.items():
        u, ln = meta[name]
        data_vars[name] = (("order_k",), np.asarray(values), {"units": u, "long_name": ln})

    coords = {
        "cycle": ("cycle", np.arange(n, dtype=np.int64), {"units": "1", "long_name": "cycle index"}),
        "point": ("point", np.arange(max_order, dtype=np.int64),
                  {"units": "1", "long_name": "index of the point within its cycle"}),
        "state": ("state", np.arange(M, dtype=np.int64), {"units": "1", "long_name": "latent state component"}),
        "eig": ("eig", np.arange(M, dtype=np.int64),
                {"units": "1", "long_name": "eigenvalue index (decreasing modulus)"}),
        "bit": ("bit", np.arange(P, dtype=np.int64), {"units": "1", "long_name": "pattern bit index"}),
        "bit_label": ("bit", np.asarray(pl.bit_labels, dtype=str),
                      {"units": "1", "long_name": "condition under which the pattern bit is 1"}),
        "order_k": ("order_k", np.asarray(orders, dtype=np.int64),
                    {"units": "1", "long_name": "cycle order searched"}),
    }
    ds = xr.Dataset(data_vars=data_vars, coords=coords, attrs=attrs)
    return ds
