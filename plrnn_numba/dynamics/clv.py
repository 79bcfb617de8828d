"""Covariant Lyapunov vectors by Ginelli et al.'s method, for any model.

Ginelli, Poggi, Turchi, Chaté, Livi & Politi (2007), "Characterizing dynamics
with covariant Lyapunov vectors", Phys. Rev. Lett. 99, 130601.

For the map ``z_t = F(z_{t-1}, s_t)`` with one-step Jacobians
``J_t = dF/dz (z_{t-1}, s_t)``:

1. **forward pass** (Benettin's QR iteration, as in
   :func:`~plrnn_numba.dynamics.lyapunov_spectrum`, reorthonormalised at every
   step): ``J_t Q_{t-1} = Q_t R_t`` with ``R_t`` upper triangular with a
   positive diagonal.  After ``n_transient_ons`` steps the columns of ``Q_t``
   are the backward Lyapunov vectors; ``Q_t`` is stored for the ``n_steps``
   output times ``t = 0 .. n_steps - 1`` and ``R_t`` for
   ``t = 1 .. n_steps + n_transient_backward``;
2. **backward pass**: from a random upper-triangular ``C`` at the end of the
   window, ``C_{t-1} = R_t^{-1} C_t`` with the columns normalised to unit
   length.  After ``n_transient_backward`` steps ``C_t`` has converged, and the
   covariant Lyapunov vectors (CLVs) are

   .. math::

       V_t = Q_t C_t, \\qquad J_{t+1} V_t = V_{t+1} \\,\\mathrm{diag}(e^{\\gamma_t}),

   i.e. the tangent dynamics maps CLV ``j`` at ``z_t`` onto CLV ``j`` at
   ``z_{t+1}``, stretched by the local growth factor ``e^{gamma_{t,j}}``
   (``gamma_{t,j} = -log`` of the column norm removed in the backward step).
   The time averages of ``gamma_{t,j}`` are the Lyapunov exponents.

The CLVs are unit vectors with a sign that is consistent along the trajectory
(the growth factors are positive); the overall sign is arbitrary.  They are
not orthogonal: the angles between them (and the minimal angle between the
unstable and stable subspaces, near zero at near-tangencies) are the usual
diagnostics of hyperbolicity.

Cost: the forward pass is that of ``lyapunov_spectrum`` for one initial
condition (``O(M^2 k)`` per step, numba), the backward pass ``O(k^3)`` per
step (numba), the angles ``O(M k^2)`` per output time (NumPy).  Memory:
about ``8 (3 n_steps M k + (2 n_steps + n_transient_backward) k^2)`` bytes
(stored ``Q``, ``R``, ``C``, the CLVs and their pairwise angles) -- 0.25 GB
for ``M = k = 100`` and ``n_steps = 1000``.  Meant for small and moderate
systems and windows; split long windows into several calls.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr
from numba import types
from numpy.typing import ArrayLike

from .. import _validate as V
from .. import config, io
from ..models.base import Model, call_jacobian, call_step, check_model, model_params
from ._tangents import initial_tangents, qr_positive
from .lyapunov import _batch_means_sem

__all__ = ["covariant_lyapunov_vectors"]

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i8 = types.int64

_FORWARD_SIG = types.int64(
    _i8,
    _i8,
    _f1,
    types.int64[::1],  # step, jacobian addresses; p, meta
    _f1,
    _f2,
    _f2,  # z0 (M,), S (n_total, K), Q0 (M, k)
    _i8,
    _i8,
    _i8,
    _i8,  # n_transient, n_transient_ons, n_steps, n_back
    _f2,
    _f3,
    _f3,  # out: Z (n_steps, M), Qs (n_steps, M, k), Rs (n_steps + n_back, k, k)
)


@config.jit(_FORWARD_SIG)
def _clv_forward_kernel(step, jac, p, meta, z0, S, Q0, n_transient, n_transient_ons, n_steps, n_back, Z, Qs, Rs):
    """Forward QR pass; returns 0, or 1 if the trajectory or tangent system became non-finite."""
    M = z0.shape[0]
    K = S.shape[1]
    z = np.empty((1, M))
    zn = np.empty((1, M))
    s = np.empty((1, K))
    J = np.empty((M, M))
    z[0, :] = z0
    Q = Q0.copy()
    t = 0
    for _ in range(n_transient):
        s[0, :] = S[t]
        call_step(step, p, meta, z, s, zn)
        z[0, :] = zn[0]
        t += 1
    if not np.all(np.isfinite(z)):
        return 1
    n_window = n_steps + n_back
    for tt in range(-n_transient_ons, n_window + 1):
        # z holds z_tt, Q holds Q_tt (window times tt >= 0)
        if tt >= 0 and tt < n_steps:
            Z[tt] = z[0]
            Qs[tt] = Q
        if tt == n_window:
            break
        s[0, :] = S[t]
        call_jacobian(jac, p, meta, z[0], s[0], J)
        JQ = J @ Q
        call_step(step, p, meta, z, s, zn)
        z[0, :] = zn[0]
        t += 1
        if not (np.all(np.isfinite(JQ)) and np.all(np.isfinite(z))):
            return 1
        Qn, R = qr_positive(JQ)
        Q = np.ascontiguousarray(Qn)
        if tt >= 0:
            Rs[tt] = R  # R_{tt+1}
    return 0


_BACKWARD_SIG = types.void(_f3, _f2, _i8, _f3, _f2)


@config.jit(_BACKWARD_SIG)
def _clv_backward_kernel(Rs, C_end, n_steps, Cs, growth):
    """Backward pass ``C_{t-1} = R_t^{-1} C_t``, columns normalised; stores C_t and log growth for t < n_steps."""
    T = Rs.shape[0]
    k = C_end.shape[0]
    C = C_end.copy()
    X = np.zeros((k, k))
    for t in range(T, 0, -1):
        R = Rs[t - 1]
        # back substitution, column by column (C and R^{-1} C are upper triangular)
        for j in range(k):
            for i in range(j, -1, -1):
                acc = C[i, j]
                for m in range(i + 1, j + 1):
                    acc -= R[i, m] * X[m, j]
                X[i, j] = acc / R[i, i]
        for j in range(k):
            nrm = 0.0
            for i in range(j + 1):
                nrm += X[i, j] * X[i, j]
            nrm = np.sqrt(nrm)
            for i in range(j + 1):
                C[i, j] = X[i, j] / nrm
            if t - 1 < n_steps:
                # J_t V_{t-1} = V_t / nrm: the growth factor of CLV j from z_{t-1} to z_t
                growth[t - 1, j] = -np.log(nrm)
        if t - 1 < n_steps:
            Cs[t - 1] = C


def _min_subspace_angle(Va: np.ndarray, Vb: np.ndarray) -> np.ndarray:
    """Smallest principal angle between span(Va[t]) and span(Vb[t]) for every t (radians)."""
    qa = np.linalg.qr(Va)[0]
    qb = np.linalg.qr(Vb)[0]
    sv = np.linalg.svd(np.einsum("tmi,tmj->tij", qa, qb), compute_uv=False)
    return np.arccos(np.clip(sv[:, 0], 0.0, 1.0))


def covariant_lyapunov_vectors(
    model: Model,
    theta: ArrayLike,
    *,
    k: int | None = None,
    n_steps: int = 1_000,
    n_transient: int = 1_000,
    n_transient_ons: int = 1_000,
    n_transient_backward: int = 1_000,
    z0=None,
    inputs=None,
    n_blocks: int = 20,
    seed: int | np.random.Generator | None = 0,
) -> xr.Dataset:
    """Covariant Lyapunov vectors along one trajectory (Ginelli et al. 2007).

    The window of one trajectory is ``n_transient_ons`` forward steps (the QR
    system converges to the backward Lyapunov vectors), the ``n_steps`` output
    times, and ``n_transient_backward`` further steps whose ``R`` factors the
    backward pass needs to converge; see :mod:`plrnn_numba.dynamics.clv` for
    the method, cost and memory.

    Parameters
    ----------
    model : Model
        Any model of the package or a user-defined one.
    theta : (P,) array
        Parameters.
    k : int, optional
        Number of leading CLVs (default: all, ``model.dim``).  The first ``k``
        CLVs need only the first ``k`` QR vectors; the unstable/stable angle
        needs ``k = M`` to see the whole stable subspace.
    n_steps : int
        Output times ``t = 0 .. n_steps - 1`` (after all forward transients).
    n_transient : int
        Steps of the state discarded before the orthonormal system starts.
    n_transient_ons : int
        Forward steps of the QR system discarded before the window.
    n_transient_backward : int
        Steps after the window over which the backward pass converges
        (convergence like ``exp(-(lambda_j - lambda_{j+1}) n)``; >= 0).
    z0 : (M,) array, optional
        Initial state; default a draw from N(0, 1) (``seed``).
    inputs : (K,) or (T, K) array, optional
        Inputs of a driven system: a constant vector or a stream covering
        ``T = n_transient + n_transient_ons + n_steps + n_transient_backward`` steps.
    n_blocks : int
        Time blocks for the batch-means standard error of ``exponents``
        (>= 2; as in :func:`~plrnn_numba.dynamics.lyapunov_spectrum`).
    seed : int, None or numpy.random.Generator
        Seeds the default initial state, the initial orthonormal system and
        the random upper-triangular start of the backward pass; the int that
        repeats the run is recorded in the ``seeds`` attribute.

    Returns
    -------
    xarray.Dataset
        Dims ``time`` (n_steps), ``state`` (M), ``vector`` and ``other_vector`` (k).

        * ``clv`` (time, state, vector): unit CLVs ``V_t``, ordered by
          exponent (largest first), signs consistent along the trajectory;
        * ``local_growth`` (time, vector): ``log |J_{t+1} v_{t,j}|``, the
          one-step growth rate of CLV ``j`` (1/step, natural log);
        * ``exponents`` (vector): their time averages, and
          ``exponents_block_sem`` (vector): batch-means standard errors;
        * ``angles`` (time, vector, other_vector): angle between the lines of
          two CLVs, in ``[0, pi/2]`` radians;
        * ``min_angle_unstable_stable`` (time): smallest principal angle
          between span of the CLVs with positive ``exponents`` and span of the
          others (radians; NaN when all or none are positive);
        * ``z`` (time, state): the trajectory ``z_t`` (``J_{t+1}`` is
          evaluated there);
        * ``diverged`` (scalar 0/1): the trajectory or the tangent system
          became non-finite, or a Jacobian was singular (zero ``R_ii``); all
          other variables are NaN then.

        Provenance in the attributes (``n_unstable``, ``seconds``).
    """
    check_model(model)
    theta = model.check_theta(theta)
    M, K = model.dim, model.n_inputs
    k = M if k is None else V.positive_int(k, "k")
    if k > M:
        raise ValueError(f"k must be <= the state dimension {M}; got {k}")
    n_steps = V.positive_int(n_steps, "n_steps")
    n_transient = V.positive_int(n_transient, "n_transient", minimum=0)
    n_transient_ons = V.positive_int(n_transient_ons, "n_transient_ons", minimum=0)
    n_back = V.positive_int(n_transient_backward, "n_transient_backward", minimum=0)
    n_blocks = V.positive_int(n_blocks, "n_blocks", minimum=2)
    rng, recorded_seed = V.generator(seed)
    if z0 is None:
        z = rng.standard_normal(M)
    else:
        z = V.as_state(z0, M, "z0")
        if z.ndim != 1:
            raise ValueError(f"z0 must be one state of shape ({M},) (CLVs follow one trajectory); got {z.shape}")
    n_total = n_transient + n_transient_ons + n_steps + n_back
    s = V.input_stream(inputs, 1, n_total, K, "n_transient + n_transient_ons + n_steps + n_transient_backward steps")
    S = V.carray(s[0])
    Q0 = initial_tangents("random", 1, M, k, rng)[0][0]
    C_end = np.triu(rng.uniform(-1.0, 1.0, (k, k)))
    C_end[np.diag_indices(k)] = rng.uniform(0.5, 1.0, k)
    C_end /= np.linalg.norm(C_end, axis=0)

    Z = np.full((n_steps, M), np.nan)
    Qs = np.full((n_steps, M, k), np.nan)
    Rs = np.full((n_steps + n_back, k, k), np.nan)
    Cs = np.full((n_steps, k, k), np.nan)
    growth = np.full((n_steps, k), np.nan)
    kern = model.kernels.addresses()
    config.prepare_engines()
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        bad = _clv_forward_kernel(
            kern.step,
            kern.jacobian,
            model_params(model, theta),
            model.meta,
            V.carray(z),
            S,
            V.carray(Q0),
            n_transient,
            n_transient_ons,
            n_steps,
            n_back,
            Z,
            Qs,
            Rs,
        )
        if not bad:
            _clv_backward_kernel(Rs, V.carray(C_end), n_steps, Cs, growth)
            bad = int(not (np.all(np.isfinite(Cs)) and np.all(np.isfinite(growth))))
        clv = np.einsum("tmi,tij->tmj", Qs, Cs)
    if bad:
        clv[:] = np.nan
        growth[:] = np.nan
    exponents = growth.mean(axis=0)
    edges = np.linspace(0, n_steps, min(n_blocks, n_steps) + 1).round().astype(int)
    block_means = np.stack([growth[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])])
    block_sem = _batch_means_sem(block_means, axis=0)
    with np.errstate(invalid="ignore"):
        angles = np.arccos(np.clip(np.abs(np.einsum("tmi,tmj->tij", clv, clv)), 0.0, 1.0))
    idx = np.arange(k)
    angles[:, idx, idx] = np.where(bad, np.nan, 0.0)
    n_unstable = int((exponents > 0).sum()) if not bad else 0
    if bad or n_unstable in (0, k):
        min_angle = np.full(n_steps, np.nan)
    else:
        min_angle = _min_subspace_angle(clv[:, :, :n_unstable], clv[:, :, n_unstable:])
    seconds = time.perf_counter() - t0

    units = "1/step (natural log)"
    data = {
        "clv": (
            ("time", "state", "vector"),
            clv,
            {"long_name": "covariant Lyapunov vectors V_t = Q_t C_t (unit length)", "units": "1"},
        ),
        "local_growth": (
            ("time", "vector"),
            growth,
            {"long_name": "local growth rate log|J_{t+1} v_t| of each CLV", "units": units},
        ),
        "exponents": (
            "vector",
            exponents,
            {"long_name": "Lyapunov exponents: time average of local_growth", "units": units},
        ),
        "exponents_block_sem": (
            "vector",
            block_sem,
            {"long_name": "batch-means standard error of exponents", "units": units, "n_blocks": edges.size - 1},
        ),
        "angles": (
            ("time", "vector", "other_vector"),
            angles,
            {"long_name": "angle between the lines of two CLVs", "units": "rad"},
        ),
        "min_angle_unstable_stable": (
            "time",
            min_angle,
            {
                "long_name": "smallest principal angle between the unstable and stable CLV subspaces",
                "units": "rad",
            },
        ),
        "z": (("time", "state"), np.where(bad, np.nan, Z), {"long_name": "trajectory z_t", "units": "1"}),
        "diverged": (
            (),
            np.int8(bad),
            {
                "long_name": "1 if the trajectory or tangent system became non-finite or a Jacobian was singular",
                "units": "1",
            },
        ),
    }
    coords = {
        "time": ("time", np.arange(n_steps), {"long_name": "step after the forward transients", "units": "steps"}),
        "state": ("state", np.arange(M), {"long_name": "state coordinate", "units": "1"}),
        "vector": ("vector", np.arange(1, k + 1), {"long_name": "CLV index (largest exponent first)", "units": "1"}),
        "other_vector": ("other_vector", np.arange(1, k + 1), {"long_name": "CLV index", "units": "1"}),
    }
    attrs = io.provenance(
        "plrnn_numba.dynamics.covariant_lyapunov_vectors",
        {
            "model": model.describe(),
            "k": k,
            "n_steps": n_steps,
            "n_transient": n_transient,
            "n_transient_ons": n_transient_ons,
            "n_transient_backward": n_back,
            "n_blocks": int(edges.size - 1),
            "z0_given": int(z0 is not None),
            "driven": int(inputs is not None),
        },
        seeds=recorded_seed,
    )
    attrs["n_unstable"] = n_unstable
    attrs["seconds"] = seconds
    return xr.Dataset(data, coords=coords, attrs=attrs)
