r"""The latent circuit of a low-rank rate network: its fixed points and ghosts, and how training moves them.

Dinc et al., "A ghost mechanism: an analytical model of abrupt learning",
study the rate network :math:`\tau \dot x = -x + \tanh(W x + V u + b)` with a
low-rank connectivity :math:`W = m\,n`, :math:`m \in \mathbb R^{N\times R}`,
:math:`n \in \mathbb R^{R\times N}` (rank one: :math:`W = m n^\top` with two
vectors).  With the latent variable :math:`\kappa = n x \in \mathbb R^R` and a
constant input (folded into the bias, :math:`b \leftarrow b + V u`),
:math:`W x = m \kappa`, so

.. math::

    \tau \dot\kappa = n\,\tau\dot x = -\kappa + n \tanh(m \kappa + b) =: f(\kappa).

The projection is exact, not an approximation: whatever the part of ``x``
outside the span of the rows of ``n``, it does not enter ``W x``, and it
decays at rate :math:`1/\tau` towards :math:`\tanh(m\kappa + b)`.  Every
fixed point :math:`\kappa^*` of the latent flow is a fixed point
:math:`x^* = \tanh(m\kappa^* + b)` of the network (and conversely,
:math:`\kappa^* = n x^*`); the network's Jacobian has the eigenvalues of
:math:`Df(\kappa^*)` and :math:`-1` (``N - R`` times, in units of
:math:`1/\tau`).

Discrete time.  The Euler step of the network with :math:`a = \Delta t/\tau`
(:class:`~plrnn_numba.models.rate.RateRNN`),
:math:`x_{t+1} = (1-a)x_t + a\tanh(Wx_t + b)`, gives exactly
:math:`\kappa_{t+1} = \kappa_t + a\,f(\kappa_t)`: the same fixed points and
ghosts, with speed :math:`a\,|f|` per step.  A fixed point is stable for the map
iff every eigenvalue :math:`\lambda` of :math:`Df` has :math:`|1 + a\lambda| < 1`;
for real :math:`\lambda` that is :math:`-2/a < \lambda < 0`, so a stable point of
the flow is stable for the map unless some :math:`\lambda < -2/a` (the
authors' :math:`a = 0.5`: below -4).  The stability reported here is the flow's.

Objects
-------
fixed point
    :math:`f(\kappa^*) = 0`.  Rank one: the sign changes of ``f`` on a grid
    (the authors: :math:`\kappa \in [-15, 15]`, 1000 points), each refined by
    bisection to machine precision.  Unlike the authors' count, the sign
    changes are taken over the grid with the extrema of ``f`` inserted, so a
    pair of zeros between two grid points (just past a saddle-node) is not
    missed; a local extremum that touches zero (``|f| <= zero_tol * max(1,
    |kappa|)``, a double root) is one fixed point.
ghost
    a local minimum of :math:`|f|` that is not a zero: the remnant of a
    saddle-node pair (the flow crawls through it, with speed ``|f|``, the
    *distance* of the ghost from the axis).  Rank one: an interior extremum
    of ``f`` on the same side of zero as its value (a minimum of a positive
    ``f``, a maximum of a negative one), found as a sign change of the
    analytic :math:`f'` on the grid and refined by bisection on :math:`f'` to
    machine precision.  Rank ``R > 1``: minima of :math:`\frac12|f|^2` from
    many starts (:func:`plrnn_numba.dynamics.slow_points.slow_points` on the
    map :math:`\kappa \mapsto \kappa + f(\kappa)`), separated by the residual:
    zeros (``|f| <= fixed_tol * max(1, |kappa|)``) are fixed points,
    stationary non-zero minima are ghosts.

Stability is that of the flow (eigenvalues of :math:`Df`; rank one: the
slope :math:`f'`).  The factors are plain arrays, so these functions work for
any source of ``m``, ``n``, ``b``; :func:`latent_circuit` and
:func:`latent_objects_along_training` read them from a model (see
:func:`low_rank_factors` for the block names).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..config import njit
from ..dynamics.paths import history_snapshots
from ..dynamics.slow_points import KIND_FIXED, KIND_GHOST, slow_points
from ..models.base import Model, build_kernels, check_model, jacobian_kernel, step_kernel

__all__ = [
    "LATENT_KINDS",
    "latent_flow",
    "latent_flow_jacobian",
    "rank_one_objects",
    "latent_slow_points",
    "low_rank_factors",
    "latent_circuit",
    "latent_objects_along_training",
]

#: ``kind`` codes of the latent objects (-1 pads the ``object`` dim along training).
LATENT_KINDS = ("fixed point", "ghost")
_FLAGS = {"flag_values": np.arange(len(LATENT_KINDS), dtype=np.int8),
          "flag_meanings": " ".join(k.replace(" ", "_") for k in LATENT_KINDS)}
#: the authors' grid: kappa in [-15, 15] with 1000 points.
DEFAULT_RANGE = (-15.0, 15.0)
DEFAULT_GRID = 1000
_METHODS = ("auto", "grid", "slow_points")


# ---------------------------------------------------------------------------- the factors
def _factors(m, n, b) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Validated ``m`` (N, R), ``n`` (R, N), ``b`` (N,), and whether the rank-one vectors were given."""
    m = V.as_float_array(m, "m")
    n = V.as_float_array(n, "n")
    b = V.as_float_array(b, "b")
    vectors = m.ndim == 1 and n.ndim == 1
    # rank one may come as vectors: m a column, n a row (each checked against the other below)
    m = m[:, None] if m.ndim == 1 else m
    n = n[None, :] if n.ndim == 1 else n
    if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
        raise ValueError(f"m must be a vector (N,) or a matrix (N, R) with N, R >= 1; got shape {np.shape(m)}")
    N, R = m.shape
    if n.shape != (R, N):
        raise ValueError(f"n must have shape ({R}, {N}) to match m {m.shape} (W = m @ n); got {n.shape}")
    if b.shape != (N,):
        raise ValueError(f"b must have shape ({N},) (one bias per unit); got {b.shape}")
    for arr, name in ((m, "m"), (n, "n"), (b, "b")):
        V.check_finite(arr, name)
    return np.ascontiguousarray(m), np.ascontiguousarray(n), np.ascontiguousarray(b), vectors


def _flow(kappa: np.ndarray, m, n, b) -> np.ndarray:
    # f for rows kappa (n_points, R)
    return -kappa + np.tanh(kappa @ m.T + b) @ n.T


def _flow_jacobian(kappa: np.ndarray, m, n, b) -> np.ndarray:
    # Df = -I + n diag(1 - tanh^2(m kappa + b)) m for rows kappa (n_points, R) -> (n_points, R, R)
    d = 1.0 - np.tanh(kappa @ m.T + b) ** 2
    return -np.eye(m.shape[1]) + np.einsum("qi,pi,ir->pqr", n, d, m)


def _kappa_rows(kappa, R: int, vectors: bool) -> tuple[np.ndarray, tuple]:
    k = V.as_float_array(kappa, "kappa")
    V.check_finite(k, "kappa")
    if vectors:
        return k.reshape(-1, 1), k.shape
    if k.ndim < 1 or k.shape[-1] != R:
        raise ValueError(f"kappa must have shape (..., {R}) for factors of rank {R}; got {k.shape}")
    return k.reshape(-1, R), k.shape


def latent_flow(kappa, m, n, b) -> np.ndarray:
    r"""The latent flow :math:`f(\kappa) = -\kappa + n \tanh(m\kappa + b)` (time in units of :math:`\tau`).

    Parameters
    ----------
    kappa : array
        Rank one with vectors ``m``, ``n``: any shape (elementwise).  Otherwise
        ``(..., R)``.
    m : (N,) or (N, R) array
        Left factor of ``W = m @ n`` (the paper's ``m``).
    n : (N,) or (R, N) array
        Right factor (rows ``n_q``; ``kappa = n @ x``).
    b : (N,) array
        Biases (plus ``V @ u`` for a constant input ``u``).

    Returns
    -------
    array
        ``f(kappa)``, the shape of ``kappa``.
    """
    m, n, b, vectors = _factors(m, n, b)
    rows, shape = _kappa_rows(kappa, m.shape[1], vectors)
    return _flow(rows, m, n, b).reshape(shape)


def latent_flow_jacobian(kappa, m, n, b) -> np.ndarray:
    r""":math:`Df(\kappa) = -I + n\,\mathrm{diag}(1 - \tanh^2(m\kappa + b))\,m`.

    Parameters
    ----------
    kappa : array
        Rank one with vectors ``m``, ``n``: any shape (elementwise).  Otherwise
        ``(..., R)``.
    m : (N,) or (N, R) array
        Left factor of ``W = m @ n``.
    n : (N,) or (R, N) array
        Right factor.
    b : (N,) array
        Biases (plus ``V @ u`` for a constant input ``u``).

    Returns
    -------
    array
        Rank one with vectors: the slope :math:`f'(\kappa)`, the shape of
        ``kappa``; otherwise ``(..., R, R)`` for ``kappa`` of shape ``(..., R)``.
    """
    m, n, b, vectors = _factors(m, n, b)
    R = m.shape[1]
    rows, shape = _kappa_rows(kappa, R, vectors)
    D = _flow_jacobian(rows, m, n, b)
    return D.reshape(shape) if vectors else D.reshape(shape + (R,))


# ------------------------------------------------------------------------ rank one, on a grid
def _bisect(func, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Roots of ``func`` in brackets ``[lo, hi]`` (sign change), to the last representable bit.

    Vectorised bisection: halve every bracket until its midpoint rounds to an
    endpoint (at most about 1100 halvings for float64, ~60 from a grid cell),
    then return the endpoint with the smaller ``|func|``.
    """
    lo, hi = lo.copy(), hi.copy()
    flo = func(lo)
    for _ in range(1100):
        mid = 0.5 * (lo + hi)
        active = (mid > lo) & (mid < hi)
        if not active.any():
            break
        fm = func(mid)
        zero = active & (fm == 0.0)
        left = active & ~zero & (np.sign(fm) == np.sign(flo))
        right = active & ~zero & ~left
        lo = np.where(left | zero, mid, lo)
        flo = np.where(left, fm, flo)
        hi = np.where(right | zero, mid, hi)
    return np.where(np.abs(func(lo)) <= np.abs(func(hi)), lo, hi)


def _sign_changes(values: np.ndarray) -> np.ndarray:
    """Indices i with a strict sign change between values[i] and values[i + 1]."""
    return np.flatnonzero(values[:-1] * values[1:] < 0.0)


def _flow_stability(eig: np.ndarray, tol: float) -> str:
    """Stability class of a flow's equilibrium from the eigenvalues of Df (real parts against 0)."""
    re = eig.real
    if not np.all(np.isfinite(eig)) or np.any(np.abs(re) <= tol):
        return "non-hyperbolic"
    spiral = np.any(np.abs(eig.imag) > 1e-7 * np.abs(eig))
    if np.all(re < 0):
        return "stable spiral" if spiral else "stable node"
    if np.all(re > 0):
        return "unstable spiral" if spiral else "unstable node"
    return "saddle"


def _grid_objects(m, n, b, lo, hi, n_grid, zero_tol):
    """Rank-one fixed points and ghosts on the grid: (kappa, kind), plus the grid and the flow on it."""
    f = lambda k: _flow(k[:, None], m, n, b)[:, 0]  # noqa: E731
    fprime = lambda k: _flow_jacobian(k[:, None], m, n, b)[:, 0, 0]  # noqa: E731
    grid = np.linspace(lo, hi, n_grid)
    fg, dg = f(grid), fprime(grid)
    # extrema of f: exact zeros of f' on the grid and sign changes of f', refined by bisection on f'
    ic = _sign_changes(dg)
    inner = np.flatnonzero(dg[1:-1] == 0.0) + 1
    ext = np.concatenate([grid[inner], _bisect(fprime, grid[ic], grid[ic + 1])])
    curvature = np.concatenate([np.sign(dg[inner + 1] - dg[inner - 1]), np.sign(dg[ic + 1] - dg[ic])])
    fe = f(ext)
    tangent = np.abs(fe) <= zero_tol * np.maximum(1.0, np.abs(ext))  # touches zero: a double root
    ghost = ~tangent & (fe * curvature > 0.0)  # a minimum of f > 0 or a maximum of f < 0: a minimum of |f|
    # zeros: sign changes of f over the grid with the (non-tangent) extrema inserted.  f is monotone
    # between consecutive extrema, so this also brackets the two close zeros next to an extremum
    # that crosses zero between two grid points (a saddle-node pair the grid alone would miss)
    pts = np.sort(np.concatenate([grid, ext[~tangent]]))
    fp = f(pts)
    ir = _sign_changes(fp)
    roots = np.concatenate([pts[fp == 0.0], _bisect(f, pts[ir], pts[ir + 1]), ext[tangent]])
    kappa = np.concatenate([roots, ext[ghost]])
    kind = np.concatenate([np.full(roots.size, KIND_FIXED), np.full(int(ghost.sum()), KIND_GHOST)])
    return kappa, kind, grid, fg


def _merge_close(kappa: np.ndarray, kind: np.ndarray, rtol: float = 1e-9):
    """Sort by kappa and drop objects within ``rtol * max(1, |kappa|)`` of a kept one (fixed points first)."""
    order = np.lexsort((kind, kappa))
    kappa, kind = kappa[order], kind[order]
    keep = np.ones(kappa.size, bool)
    last = 0
    for i in range(1, kappa.size):
        if abs(kappa[i] - kappa[last]) <= rtol * max(1.0, abs(kappa[last])):
            keep[i] = False
            if kind[i] < kind[last]:  # a fixed point replaces a ghost at the same place
                kind[last] = kind[i]
        else:
            last = i
    return kappa[keep], kind[keep]


def _objects_dataset(kappa, kind, flow, eig, tol_hyperbolic, attrs, grid=None, grid_flow=None) -> xr.Dataset:
    """The per-snapshot object Dataset (dims object, latent, eigenvalue[, grid])."""
    n_obj, R = kappa.shape
    u1 = {"units": "1"}
    dist = np.linalg.norm(flow, axis=1)
    # a ghost is non-hyperbolic by definition: Df is singular at a stationary non-zero minimum of |f|
    # (its slow direction); at the located point that eigenvalue is zero only to the location error
    stability = np.array([_flow_stability(e, tol_hyperbolic) if k == KIND_FIXED else "non-hyperbolic"
                          for e, k in zip(eig, kind)], dtype=str).reshape(n_obj)
    data = {
        "kappa": (("object", "latent"), kappa, {**u1, "long_name": "location kappa = n x of the object"}),
        "flow": (("object", "latent"), flow,
                 {"units": "1/tau", "long_name": "f(kappa) = -kappa + n tanh(m kappa + b)"}),
        "distance": ("object", dist, {"units": "1/tau", "long_name": "|f(kappa)|: 0 at a fixed point, the "
                                                                     "ghost's distance from zero"}),
        "kind": ("object", kind.astype(np.int8), {**u1, **_FLAGS, "long_name": "fixed point or ghost",
                                                  "legend": io.to_json(dict(enumerate(LATENT_KINDS)))}),
        "stability": ("object", stability, {"long_name": "stability of the flow (eigenvalues of Df)"}),
        "eig_real": (("object", "eigenvalue"), eig.real.reshape(n_obj, R),
                     {"units": "1/tau", "long_name": "real part of the eigenvalues of Df (rank one: f')"}),
        "eig_imag": (("object", "eigenvalue"), eig.imag.reshape(n_obj, R),
                     {"units": "1/tau", "long_name": "imaginary part of the eigenvalues of Df"}),
    }
    coords = {
        "object": ("object", np.arange(n_obj, dtype=np.int64), {**u1, "long_name": "object index"}),
        "latent": ("latent", np.arange(R, dtype=np.int64), {**u1, "long_name": "latent variable kappa_q"}),
        "eigenvalue": ("eigenvalue", np.arange(R, dtype=np.int64), {**u1, "long_name": "eigenvalue index"}),
    }
    if grid is not None:
        data["grid_flow"] = ("grid", grid_flow, {"units": "1/tau", "long_name": "f on the grid"})
        coords["grid"] = ("grid", grid, {**u1, "long_name": "grid of kappa"})
    ds = xr.Dataset(data, coords, attrs)
    ds.attrs.update({"n_fixed_points": int(np.sum(kind == KIND_FIXED)), "n_ghosts": int(np.sum(kind == KIND_GHOST))})
    return ds


def _grid_settings(kappa_range, n_grid) -> tuple[float, float, int]:
    lo, hi = V.value_range(kappa_range, "kappa_range")
    if not lo < hi:
        raise ValueError(f"kappa_range must be (low, high) with low < high; got {kappa_range!r}")
    return lo, hi, V.positive_int(n_grid, "n_grid", minimum=3)


def _eigenvalues(kappa, m, n, b) -> np.ndarray:
    # eigenvalues of Df at rows kappa, by decreasing real part
    if kappa.shape[0] == 0:
        return np.zeros((0, m.shape[1]), complex)
    with np.errstate(all="ignore"):
        D = _flow_jacobian(kappa, m, n, b)
    lam = np.full(kappa.shape, np.nan + 0j)
    ok = np.all(np.isfinite(D), axis=(1, 2))  # overflowing factors: NaN, not a LinAlgError
    if ok.any():
        lam[ok] = -np.sort_complex(-np.linalg.eigvals(D[ok]).astype(complex))
    return lam


def _rank_one(m, n, b, lo, hi, n_grid, zero_tol, max_distance, tol_hyperbolic, attrs) -> xr.Dataset:
    with np.errstate(all="ignore"):  # overflowing factors give inf/NaN flows, which find nothing
        kappa, kind, grid, fg = _grid_objects(m, n, b, lo, hi, n_grid, zero_tol)
        kappa, kind = _merge_close(kappa, kind)
        flow = _flow(kappa[:, None], m, n, b)
    keep = (kind == KIND_FIXED) | (np.abs(flow[:, 0]) <= max_distance)
    kappa, kind, flow = kappa[keep], kind[keep], flow[keep]
    order = np.lexsort((kappa, kind))  # fixed points first, then ghosts, each by kappa
    kappa, kind, flow = kappa[order][:, None], kind[order], flow[order]
    eig = _eigenvalues(kappa, m, n, b)
    return _objects_dataset(kappa, kind, flow, eig, tol_hyperbolic, attrs, grid, fg)


def rank_one_objects(
    m,
    n,
    b,
    *,
    kappa_range=DEFAULT_RANGE,
    n_grid: int = DEFAULT_GRID,
    zero_tol: float = 1e-10,
    max_distance: float = np.inf,
    tol_hyperbolic: float = 1e-9,
) -> xr.Dataset:
    r"""Fixed points and ghosts of the rank-one latent flow :math:`f(\kappa) = -\kappa + n^\top\tanh(m\kappa + b)`.

    The authors' method (Dinc et al.): ``f`` on a grid, fixed points at its
    sign changes and ghosts at the local minima of :math:`|f|` that are not
    zeros; here both are refined to machine precision by bisection (on ``f``
    for the zeros, on the analytic slope :math:`f'` for the ghosts; see the
    module docstring).

    Parameters
    ----------
    m, n : (N,) arrays (or (N, 1) and (1, N))
        The factors of ``W = m n^T``.
    b : (N,) array
        Biases (plus ``V @ u`` for a constant input ``u``).
    kappa_range : (low, high)
        Grid interval (the authors: (-15, 15)); objects outside are not seen.
    n_grid : int
        Grid points (the authors: 1000).  Two objects closer than a grid step
        may be missed, as on the authors' grid.
    zero_tol : float
        An extremum of ``f`` with ``|f| <= zero_tol * max(1, |kappa|)`` is a
        tangential zero (a fixed point at a saddle-node), not a ghost.
    max_distance : float
        Ghosts with ``|f|`` above this are dropped (default: keep all).
    tol_hyperbolic : float
        ``|f'| <= tol_hyperbolic`` makes a fixed point ``"non-hyperbolic"``.

    Returns
    -------
    xarray.Dataset
        Dims ``object`` (fixed points by kappa, then ghosts by kappa),
        ``latent`` (1), ``eigenvalue`` (1), ``grid``.  ``kappa`` (object,
        latent), ``flow`` (signed ``f``), ``distance`` ``|f|``, ``kind``
        (codes of :data:`LATENT_KINDS`), ``stability`` (``"stable node"``:
        ``f' < 0``, ``"unstable node"``, ``"non-hyperbolic"``), ``eig_real``
        (= ``f'``) and ``eig_imag`` (0); ``grid_flow`` (grid).  Attributes:
        ``n_fixed_points``, ``n_ghosts``, settings, provenance.
    """
    m, n, b, _ = _factors(m, n, b)
    if m.shape[1] != 1:
        raise ValueError(f"m and n must be rank one (vectors, or shapes (N, 1) and (1, N)); got rank {m.shape[1]}: "
                         "use latent_slow_points for rank > 1")
    lo, hi, n_grid = _grid_settings(kappa_range, n_grid)
    zero_tol = V.finite_float(zero_tol, "zero_tol", low=0.0)
    max_distance = _max_distance(max_distance)
    tol_hyperbolic = V.finite_float(tol_hyperbolic, "tol_hyperbolic", low=0.0)
    settings = {"method": "grid", "kappa_range": [lo, hi], "n_grid": n_grid, "zero_tol": zero_tol,
                "max_distance": max_distance, "tol_hyperbolic": tol_hyperbolic}
    attrs = io.provenance("plrnn_numba.ghost.latent.rank_one_objects", {"n_units": m.shape[0], **settings})
    ds = _rank_one(m, n, b, lo, hi, n_grid, zero_tol, max_distance, tol_hyperbolic, attrs)
    ds.attrs.update(_settings_attrs(settings))
    return ds


def _max_distance(x) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"max_distance must be a real number (inf: keep every ghost); got {type(x).__name__}")
    x = float(x)
    if np.isnan(x) or x <= 0.0:
        raise ValueError(f"max_distance must be > 0 (inf: keep every ghost); got {x}")
    return x


def _settings_attrs(settings: dict) -> dict:
    # netCDF-safe copies of the settings as attributes (inf is a valid float attribute)
    return {k: (np.asarray(v, float) if isinstance(v, list) else v) for k, v in settings.items()}


# ------------------------------------------------------------ rank R: minima of |f|^2 from many starts
@njit(inline="always")
def _latent_preactivation(p, N, R, kappa, i):
    # h_i = sum_q m_iq kappa_q + b_i, with p = m (N*R) | n (R*N) | b (N)
    acc = p[2 * N * R + i]
    for q in range(R):
        acc += p[i * R + q] * kappa[q]
    return acc


@step_kernel
def _latent_map_step(p, meta, z, s, z_next):
    # the Euler map with a = 1, kappa -> kappa + f(kappa) = n tanh(m kappa + b): its fixed points are
    # the zeros of f and F(kappa) - kappa = f(kappa)
    N, R = meta[0], meta[1]
    t = np.empty(N)
    for bb in range(z.shape[0]):
        for i in range(N):
            t[i] = np.tanh(_latent_preactivation(p, N, R, z[bb], i))
        for q in range(R):
            acc = 0.0
            for i in range(N):
                acc += p[N * R + q * N + i] * t[i]
            z_next[bb, q] = acc


@jacobian_kernel
def _latent_map_jacobian(p, meta, z, s, J):
    # J_F = n diag(1 - tanh^2(m kappa + b)) m = I + Df
    N, R = meta[0], meta[1]
    J[:, :] = 0.0
    for i in range(N):
        t = np.tanh(_latent_preactivation(p, N, R, z, i))
        d = 1.0 - t * t
        for q in range(R):
            c = p[N * R + q * N + i] * d
            for r in range(R):
                J[q, r] += c * p[i * R + r]


_LATENT_KERNELS = build_kernels(_latent_map_step, None, None, _latent_map_jacobian)


@dataclass(frozen=True)
class _LatentMap(Model):
    """The latent map ``kappa -> n tanh(m kappa + b)`` as a model (step and Jacobian kernels only).

    Used to run the general slow-point finder on the latent flow: ``F - I = f``
    and ``J_F - I = Df``.  Not trainable (no vector-Jacobian kernels).
    """

    n_units: int
    rank: int

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.rank

    @property
    def n_inputs(self) -> int:  # type: ignore[override]
        return 0

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"m": (self.n_units, self.rank), "n": (self.rank, self.n_units), "b": (self.n_units,)}

    @property
    def meta(self) -> np.ndarray:
        return np.array([self.n_units, self.rank], dtype=np.int64)

    @property
    def kernels(self):
        return _LATENT_KERNELS


def _box_starts(lo: float, hi: float, R: int, n_starts: int, rng) -> np.ndarray:
    return lo + (hi - lo) * rng.random((n_starts, R))


def _latent_search(m, n, b, starts, fixed_tol, ghost_tol, dedup_tol, max_distance, max_iter, tol_hyperbolic,
                   attrs) -> tuple[xr.Dataset, dict]:
    N, R = m.shape
    model = _LatentMap(N, R)
    # slow_tol huge: every stationary minimum of |f| is reported, max_distance filters afterwards
    sp = slow_points(model, model.pack(m=m, n=n, b=b), starts=starts, max_iter=max_iter, fixed_tol=fixed_tol,
                     slow_tol=1e300, ghost_tol=ghost_tol, dedup_tol=dedup_tol)
    kind = sp["kind"].values.astype(np.int64)
    kappa = sp["x"].values
    with np.errstate(all="ignore"):
        flow = _flow(kappa, m, n, b)
    keep = (kind == KIND_FIXED) | ((kind == KIND_GHOST) & (np.linalg.norm(flow, axis=1) <= max_distance))
    kappa, kind, flow = kappa[keep], kind[keep], flow[keep]
    order = np.lexsort(tuple(kappa.T[::-1]) + (kind,))  # kind, then kappa lexicographically
    kappa, kind, flow = kappa[order], kind[order], flow[order]
    eig = _eigenvalues(kappa, m, n, b)
    ds = _objects_dataset(kappa, kind, flow, eig, tol_hyperbolic, attrs)
    counts = {"n_slow_points_dropped": int(sp.attrs["n_slow_points"] + np.sum(~keep)),
              "n_diverged": int(sp.attrs["n_diverged"]), "search_seconds": float(sp.attrs["seconds"])}
    return ds, counts


def _search_settings(n_starts, kappa_range, fixed_tol, ghost_tol, dedup_tol, max_distance, max_iter,
                     tol_hyperbolic) -> dict:
    lo, hi = V.value_range(kappa_range, "kappa_range")
    if not lo < hi:
        raise ValueError(f"kappa_range must be (low, high) with low < high; got {kappa_range!r}")
    return {
        "method": "slow_points",
        "n_starts": V.positive_int(n_starts, "n_starts"),
        "kappa_range": [lo, hi],
        "fixed_tol": V.finite_float(fixed_tol, "fixed_tol", low=0.0, open_low=True),
        "ghost_tol": V.finite_float(ghost_tol, "ghost_tol", low=0.0, open_low=True),
        "dedup_tol": V.finite_float(dedup_tol, "dedup_tol", low=0.0),
        "max_distance": _max_distance(max_distance),
        "max_iter": V.positive_int(max_iter, "max_iter", minimum=0),
        "tol_hyperbolic": V.finite_float(tol_hyperbolic, "tol_hyperbolic", low=0.0),
    }


def latent_slow_points(
    m,
    n,
    b,
    *,
    n_starts: int = 1000,
    kappa_range=DEFAULT_RANGE,
    seed=0,
    fixed_tol: float = 1e-10,
    ghost_tol: float = 1e-6,
    dedup_tol: float = 1e-6,
    max_distance: float = np.inf,
    max_iter: int = 200,
    tol_hyperbolic: float = 1e-9,
) -> xr.Dataset:
    r"""Fixed points and ghosts of the rank-R latent flow :math:`f(\kappa) = -\kappa + n\tanh(m\kappa + b)`.

    Minimises :math:`\frac12|f(\kappa)|^2` from ``n_starts`` points drawn
    uniformly in the box ``kappa_range^R`` (Levenberg-Marquardt with the
    analytic :math:`Df`, :func:`plrnn_numba.dynamics.slow_points.slow_points`),
    and separates the minima by their residual: fixed points where
    ``|f| <= fixed_tol * max(1, |kappa|)``, ghosts where a non-zero minimum is
    stationary (``|Df^T f| / |f| <= ghost_tol``).  Works for any rank, one included.

    Parameters
    ----------
    m : (N,) or (N, R) array
        Left factor of ``W = m @ n``.
    n : (N,) or (R, N) array
        Right factor.
    b : (N,) array
        Biases (plus ``V @ u`` for a constant input ``u``).
    n_starts : int
        Number of starts.
    kappa_range : (low, high)
        The box of the starts (objects outside can still be found).
    seed : int, None or numpy.random.Generator
        Seeds the starts (recorded).
    fixed_tol : float
        Relative speed ``|f| / max(1, |kappa|)`` below which a minimum is a fixed point.
    ghost_tol : float
        Largest ``|Df^T f| / |f|`` of a ghost, as in :func:`~plrnn_numba.dynamics.slow_points.slow_points`.
    dedup_tol : float
        Points closer than ``dedup_tol * max(1, |kappa|_inf)`` are one.
    max_distance : float
        Ghosts with ``|f|`` above this are dropped (default: keep all).
    max_iter : int
        Jacobian evaluations (accepted steps) per start.
    tol_hyperbolic : float
        An eigenvalue of ``Df`` with ``|Re| <= tol_hyperbolic`` makes a point ``"non-hyperbolic"``.

    Returns
    -------
    xarray.Dataset
        As :func:`rank_one_objects` without the grid; objects sorted by kind,
        then kappa.  Extra attributes ``n_slow_points_dropped`` (minima that
        were neither) and ``n_diverged``.
    """
    m, n, b, _ = _factors(m, n, b)
    cfg = _search_settings(n_starts, kappa_range, fixed_tol, ghost_tol, dedup_tol, max_distance, max_iter,
                           tol_hyperbolic)
    rng, recorded = V.generator(seed)
    starts = _box_starts(*cfg["kappa_range"], m.shape[1], cfg["n_starts"], rng)
    attrs = io.provenance("plrnn_numba.ghost.latent.latent_slow_points",
                          {"n_units": m.shape[0], "rank": m.shape[1], **cfg, "seed": recorded}, seeds=recorded)
    ds, counts = _latent_search(m, n, b, starts, cfg["fixed_tol"], cfg["ghost_tol"], cfg["dedup_tol"],
                                cfg["max_distance"], cfg["max_iter"], cfg["tol_hyperbolic"], attrs)
    ds.attrs.update({**_settings_attrs(cfg), **counts})
    return ds


# ---------------------------------------------------------------------------------- from a model
def low_rank_factors(model: Model, theta, inputs=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The factors ``m`` (N, R), ``n`` (R, N) and the effective bias ``b + V u`` of a low-rank model.

    Reads the named blocks of ``model.unpack(theta)``: ``"m"`` (N, R) and
    ``"n"`` (R, N) with ``W = m @ n``, ``"b"`` (N,), and ``"V"`` (N, K) when
    the model has inputs (the layout of
    :class:`~plrnn_numba.models.rate.RateRNN` with ``rank=R``; any model
    with these blocks and the map ``x -> (1 - a) x + a tanh(W x + V u + b)``
    qualifies).

    Parameters
    ----------
    model : Model
        A low-rank rate network.
    theta : (P,) array
        Its parameters.
    inputs : (K,) array, optional
        A constant input ``u`` (None: zero input).

    Returns
    -------
    m : (N, R) array
        Left factor.
    n : (R, N) array
        Right factor.
    b : (N,) array
        The effective bias ``b + V u``.
    """
    check_model(model)
    theta = model.check_theta(theta)
    s = V.constant_input(inputs, model.n_inputs)
    blocks = model.unpack(theta)
    missing = [k for k in ("m", "n", "b") if k not in blocks]
    if missing:
        raise TypeError(f"model must be a low-rank rate network with parameter blocks 'm' (N, R), 'n' (R, N) and "
                        f"'b' (N,) (e.g. RateRNN(n_units, rank=R)); {model!r} has {list(blocks)}")
    # rank-one models may store the paper's vectors m (N,) and n (N,)
    m = blocks["m"] if blocks["m"].ndim == 2 else blocks["m"][:, None]
    n = blocks["n"] if blocks["n"].ndim == 2 else blocks["n"][None, :]
    b = blocks["b"]
    if s is not None and "V" in blocks:
        b = b + blocks["V"] @ s
    m, n, b, _ = _factors(m, n, b)
    return m.copy(), n.copy(), b.copy()


class _LatentRun:
    """Validated settings shared by latent_circuit and latent_objects_along_training."""

    def __init__(self, model, method, kappa_range, n_grid, n_starts, seed, max_distance):
        check_model(model)
        self.method = V.choice(method, "method", _METHODS)
        self.lo, self.hi, self.n_grid = _grid_settings(kappa_range, n_grid)
        self.n_starts = V.positive_int(n_starts, "n_starts")
        self.max_distance = _max_distance(max_distance)
        self.rng, self.seed = V.generator(seed)
        self.starts = None

    def uses_grid(self, rank: int) -> bool:
        """The grid for rank one unless slow points were asked for (ValueError: the grid for rank > 1)."""
        if self.method == "grid" and rank != 1:
            raise ValueError(f"method='grid' needs a rank-one model; this one has rank {rank} "
                             "(use method='slow_points' or 'auto')")
        return self.method == "grid" or (self.method == "auto" and rank == 1)

    def objects(self, m, n, b, attrs) -> xr.Dataset:
        if self.uses_grid(m.shape[1]):
            return _rank_one(m, n, b, self.lo, self.hi, self.n_grid, 1e-10, self.max_distance, 1e-9, attrs)
        if self.starts is None:  # the same starts for every snapshot
            self.starts = _box_starts(self.lo, self.hi, m.shape[1], self.n_starts, self.rng)
        ds, counts = _latent_search(m, n, b, self.starts, 1e-10, 1e-6, 1e-6, self.max_distance, 200, 1e-9, attrs)
        ds.attrs.update(counts)
        return ds

    def arguments(self, model, inputs, rank: int) -> dict:
        return {"model": model.describe(), "inputs": None if inputs is None else np.asarray(inputs, float).tolist(),
                "method": self.method_name(rank), "kappa_range": [self.lo, self.hi], "n_grid": self.n_grid,
                "n_starts": self.n_starts, "seed": self.seed, "max_distance": self.max_distance}

    def method_name(self, rank: int) -> str:
        return "grid" if self.uses_grid(rank) else "slow_points"

    def attrs(self, model, rank: int) -> dict:
        out = {"method": self.method_name(rank), "kappa_range": np.array([self.lo, self.hi])}
        if hasattr(model, "alpha"):
            out["alpha"] = float(model.alpha)
        return out


def latent_circuit(
    model: Model,
    theta: np.ndarray,
    *,
    inputs: np.ndarray | None = None,
    method: str = "auto",
    kappa_range=DEFAULT_RANGE,
    n_grid: int = DEFAULT_GRID,
    n_starts: int = 1000,
    seed=0,
    max_distance: float = np.inf,
) -> xr.Dataset:
    """Fixed points and ghosts of the latent circuit of a low-rank model (factors from :func:`low_rank_factors`).

    Parameters
    ----------
    model : Model
        A low-rank rate network (blocks ``m``, ``n``, ``b``, and ``V`` with inputs).
    theta : (P,) array
        Its parameters.
    inputs : (K,) array, optional
        Constant input ``u`` (folded into the bias: ``b + V u``); None: zero.
    method : {"auto", "grid", "slow_points"}
        ``"grid"``: :func:`rank_one_objects` (rank one only); ``"slow_points"``:
        :func:`latent_slow_points`; ``"auto"``: the grid for rank one.
    kappa_range : (low, high)
        Range of the grid (or box of the starts).
    n_grid : int
        Number of grid points.
    n_starts : int
        Starts of the slow-point search.
    seed : int, None or numpy.random.Generator
        Seeds the starts (recorded; unused on the grid).
    max_distance : float
        Ghosts with ``|f|`` above this are dropped.

    Returns
    -------
    xarray.Dataset
        As :func:`rank_one_objects` / :func:`latent_slow_points`; the
        attribute ``alpha`` is the model's step ``a = dt / tau`` when it has one
        (the map's speed at an object is ``alpha * distance``).
    """
    run = _LatentRun(model, method, kappa_range, n_grid, n_starts, seed, max_distance)
    m, n, b = low_rank_factors(model, theta, inputs)
    R = m.shape[1]
    attrs = io.provenance("plrnn_numba.ghost.latent.latent_circuit", run.arguments(model, inputs, R),
                          seeds=None if run.uses_grid(R) else run.seed)
    ds = run.objects(m, n, b, attrs)
    ds.attrs.update(run.attrs(model, R))
    return ds


def latent_objects_along_training(
    model: Model,
    history: xr.Dataset,
    *,
    inputs: np.ndarray | None = None,
    method: str = "auto",
    kappa_range=DEFAULT_RANGE,
    n_grid: int = DEFAULT_GRID,
    n_starts: int = 1000,
    seed=0,
    max_distance: float = np.inf,
) -> xr.Dataset:
    """Fixed points and ghosts of the latent circuit at every parameter snapshot of a training history.

    One :func:`latent_circuit` per snapshot (``history["theta_snapshots"]``,
    epochs ``history["snapshot_epoch"]``; select with ``history.isel(snapshot=...)``);
    the slow-point method uses the same starts for every snapshot.

    Parameters
    ----------
    model : Model
        The low-rank rate network that was trained.
    history : xarray.Dataset
        Its training history (:func:`~plrnn_numba.train`).
    inputs : (K,) array, optional
        Constant input ``u`` (None: zero).
    method : {"auto", "grid", "slow_points"}
        As for :func:`latent_circuit`.
    kappa_range : (low, high)
        Range of the grid (or box of the starts).
    n_grid : int
        Number of grid points.
    n_starts : int
        Starts of the slow-point search (the same for every snapshot).
    seed : int, None or numpy.random.Generator
        Seeds the starts (recorded; unused on the grid).
    max_distance : float
        Ghosts with ``|f|`` above this are dropped.

    Returns
    -------
    xarray.Dataset
        Dims ``epoch``, ``object`` (padded to the largest count: ``kind = -1``,
        NaN, ``stability = ""``), ``latent``, ``eigenvalue`` (and ``grid`` for
        the grid method).  ``kappa`` (epoch, object, latent), ``flow``,
        ``distance``, ``kind``, ``stability``, ``eig_real``/``eig_imag``;
        per epoch ``n_fixed_points``, ``n_ghosts``, ``min_ghost_distance``
        (NaN without ghosts); ``grid_flow`` (epoch, grid) for the grid method.
        Objects are ordered per epoch as in :func:`latent_circuit` (fixed
        points by kappa, then ghosts), so ``object`` is a slot, not an identity.
    """
    epochs, thetas = history_snapshots(check_model(model), history)
    run = _LatentRun(model, method, kappa_range, n_grid, n_starts, seed, max_distance)
    t0 = time.perf_counter()
    factors = [low_rank_factors(model, th, inputs) for th in thetas]
    R = factors[0][0].shape[1]
    per_epoch = [run.objects(m, n, b, {}) for m, n, b in factors]
    arguments = {**run.arguments(model, inputs, R), "history": str(history.attrs.get("created", "training history")),
                 "epochs": epochs.tolist()}
    attrs = io.provenance("plrnn_numba.ghost.latent.latent_objects_along_training", arguments,
                          seeds=None if run.uses_grid(R) else run.seed)
    ds = _stack(per_epoch, epochs, attrs)
    ds.attrs.update({"title": "Latent fixed points and ghosts along training", "seconds": time.perf_counter() - t0,
                     **run.attrs(model, R)})
    return ds


def _stack(per_epoch: list[xr.Dataset], epochs: np.ndarray, attrs: dict) -> xr.Dataset:
    """Pad the per-snapshot Datasets to a common ``object`` length and stack them along ``epoch``."""
    n_max = max(ds.sizes["object"] for ds in per_epoch)
    padded = []
    for ds in per_epoch:
        ds = ds.reindex(object=np.arange(n_max), fill_value={"kind": -1, "stability": ""})
        ds["kind"] = ds["kind"].astype(np.int8)
        padded.append(ds)
    out = xr.concat(padded, dim="epoch", data_vars="all", coords="minimal", compat="override",
                    combine_attrs="drop")
    if "grid_flow" not in out:
        out = out.drop_vars("grid", errors="ignore")
    out = out.assign_coords(epoch=("epoch", epochs, {"units": "epoch", "long_name": "training epoch"}))
    for name in ("kappa", "flow", "distance", "kind", "stability", "eig_real", "eig_imag"):
        out[name].attrs = per_epoch[0][name].attrs
    if "grid_flow" in out:
        out["grid_flow"].attrs = per_epoch[0]["grid_flow"].attrs
    kind = out["kind"].values
    u1 = {"units": "1"}
    out["n_fixed_points"] = ("epoch", np.sum(kind == KIND_FIXED, axis=1).astype(np.int64),
                             {**u1, "long_name": "number of fixed points"})
    out["n_ghosts"] = ("epoch", np.sum(kind == KIND_GHOST, axis=1).astype(np.int64),
                       {**u1, "long_name": "number of ghosts"})
    min_dist = np.min(np.where(kind == KIND_GHOST, out["distance"].values, np.inf), axis=1, initial=np.inf)
    min_dist[np.isinf(min_dist)] = np.nan
    out["min_ghost_distance"] = ("epoch", min_dist, {"units": "1/tau", "long_name": "smallest |f| at a ghost"})
    out.attrs = {**attrs}
    return out

