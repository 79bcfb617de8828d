"""Finite-time Lyapunov exponents and the condition number of the long-term Jacobian.

For the map ``z_t = F(z_{t-1}, s_t)`` with one-step Jacobians
``J_t = dF/dz (z_{t-1}, s_t)``, the long-term Jacobian over ``T`` steps (after
a transient of the state) is

.. math::

    \\mathbf{T}_T = J_T J_{T-1} \\cdots J_1 ,

and the finite-time Lyapunov exponents are the time-averaged logarithms of
its singular values (Engelken (2023), "Gradient flossing: improving gradient
descent through dynamic control of Jacobians", eq. 25),

.. math::

    \\lambda_i(T) = \\frac{1}{T} \\log \\sigma_i(\\mathbf{T}_T),
    \\qquad \\sigma_1 \\ge \\sigma_2 \\ge \\dots

They converge to the Lyapunov exponents as ``T -> inf``.  The condition
number of the long-term Jacobian restricted to ``k`` tangent directions
(Engelken 2023, eq. 10 and Fig. 2) is

.. math::

    \\kappa_2(T) = \\frac{\\sigma_1(\\mathbf{T}_T)}{\\sigma_k(\\mathbf{T}_T)}
    \\approx \\exp\\big((\\lambda_1 - \\lambda_k)\\, T\\big),

reported as :math:`\\log_{10} \\kappa_2` (it grows linearly in ``T``).

Two independent computations
----------------------------
``qr``
    Benettin's QR iteration with reorthonormalisation at every step:
    ``J_t Q_{t-1} = Q_t R_t`` (positive diagonal), starting from an
    orthonormal ``M x k`` matrix ``Q_0``.  Then
    ``T_T Q_0 = Q_T R_T \\cdots R_1`` and the QR estimate is
    :math:`\\lambda^{QR}_i(T) = \\frac{1}{T}\\sum_{t \\le T} \\log R_{t,ii}`,
    the log-diagonal of the accumulated triangular factor, and
    :math:`\\log_{10}\\kappa^{QR} = \\sum_t (\\log R_{t,11} - \\log R_{t,kk}) / \\ln 10`
    (Engelken 2023, eq. 28).
``direct``
    The product itself, kept in log-scaled form: ``P_t = J_t P_{t-1} / 2^{e_t}``
    with ``2^{e_t}`` the power of two nearest above ``max |J_t P_{t-1}|``
    (an exact rescaling: no rounding is added) and the log scale
    ``sum_t e_t ln 2`` accumulated separately, so that horizons of
    ``10^4`` steps and more neither overflow nor underflow the largest
    singular value.  At each horizon
    :math:`\\log\\sigma_i(\\mathbf{T}_T) = \\log\\sigma_i(P_T) + \\sum_t e_t \\ln 2`.

How they relate (and what the tests check):

* exactly, for every ``T``: :math:`\\sum_{i \\le j} \\lambda^{QR}_i(T) \\le
  \\sum_{i \\le j} \\lambda_i(T)` (the volume of ``T_T Q_0[:, :j]`` is at most
  the product of the ``j`` largest singular values), with equality for
  ``j = k = M`` (both are ``log |det T_T| / T``);
* asymptotically: :math:`\\lambda^{QR}_i(T) - \\lambda_i(T) = O(1/T)`; for
  the first exponent the gap is :math:`\\log|\\langle v_1, q_1\\rangle| / T`
  with ``v_1`` the leading right singular vector, so ``T`` times the gap
  tends to a constant;
* for a diagonal map with ``q0="identity"`` both are exact at every horizon
  (``diag(1.1, 0.8)``: :math:`(\\ln 1.1, \\ln 0.8)` and
  :math:`\\log_{10}\\kappa = T \\log_{10}(1.1/0.8)`).

Precision of the direct method
------------------------------
In float64 a singular value of the accumulated product is resolved only while
:math:`\\sigma_i / \\sigma_1` stays well above the rounding level (about
``1e-16``; each step adds errors of order ``eps * sigma_1``).  Beyond that the
computed :math:`\\sigma_i` sits on a noise floor and
:math:`\\lambda_i^{direct}(T)` is meaningless; Engelken (2023) used 256-bit floats for
that reason.  ``direct_resolved`` flags the entries with
:math:`\\sigma_i/\\sigma_1 \\ge` ``rcond``.  Products that stay (block)
diagonal are exact far beyond that limit.  The QR method has no such limit.
"""

from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr
from numba import types
from numpy.typing import ArrayLike

from .. import _validate as V
from .. import config, io
from ..models.base import Model, call_jacobian, call_step, check_model, model_params
from ._tangents import initial_tangents

__all__ = ["finite_time_exponents", "condition_number"]

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i8 = types.int64
_i1 = types.int64[::1]

_FT_SIG = types.void(
    _i8,
    _i8,  # step, jacobian kernel addresses
    _f1,
    _i1,  # p, meta
    _f2,
    _f3,
    _f3,  # z0 (B, M), S (n_total, B, K), Q0 (B, M, k)
    _i8,
    _i1,  # n_transient, horizons (H,), strictly increasing
    _f3,
    _f3,
    _i1,  # out: log R sums (B, H, k), log singular values (B, H, k), diverged step (B,)
)

_LN2 = math.log(2.0)


@config.jit(_FT_SIG)
def _finite_time_kernel(step, jac, p, meta, z0, S, Q0, n_transient, horizons, log_qr, log_dir, div_step):
    B, M = z0.shape
    k = Q0.shape[2]
    K = S.shape[2]
    H = horizons.shape[0]
    n_max = horizons[H - 1]
    z = np.empty((1, M))
    zn = np.empty((1, M))
    s = np.empty((1, K))
    J = np.empty((M, M))
    JQ = np.empty((M, k))
    P = np.empty((M, M))
    JP = np.empty((M, M))
    sums = np.empty(k)
    for b in range(B):
        z[0, :] = z0[b]
        t = 0
        bad = False
        for _ in range(n_transient):
            s[0, :] = S[t, b]
            call_step(step, p, meta, z, s, zn)
            z[0, :] = zn[0]
            t += 1
            if not np.all(np.isfinite(z)):
                bad = True
                break
        if bad:
            div_step[b] = 0
            continue
        Q = np.ascontiguousarray(Q0[b])
        P[:, :] = 0.0
        for i in range(M):
            P[i, i] = 1.0
        e_sum = 0  # the direct product is P * 2^e_sum
        collapsed = False  # the product became exactly zero
        sums[:] = 0.0
        ih = 0
        for tt in range(n_max):
            # z holds z_tt; J_{tt+1} is evaluated there
            if not np.all(np.isfinite(z)):
                bad = True
                div_step[b] = tt
                break
            s[0, :] = S[t, b]
            call_jacobian(jac, p, meta, z[0], s[0], J)
            call_step(step, p, meta, z, s, zn)
            z[0, :] = zn[0]
            t += 1
            if not np.all(np.isfinite(J)):
                bad = True
                div_step[b] = tt
                break
            # QR iteration
            np.dot(J, Q, JQ)
            Qn, R = np.linalg.qr(JQ)
            for i in range(k):
                r = R[i, i]
                if r < 0.0:
                    for m in range(M):
                        Qn[m, i] = -Qn[m, i]
                    r = -r
                sums[i] += np.log(r)
            Q = np.ascontiguousarray(Qn)
            # direct product, rescaled exactly by a power of two
            if not collapsed:
                np.dot(J, P, JP)
                nrm = 0.0
                for i in range(M):
                    for j in range(M):
                        a = abs(JP[i, j])
                        if a > nrm:
                            nrm = a
                if not np.isfinite(nrm):
                    bad = True
                    div_step[b] = tt
                    break
                if nrm == 0.0:
                    collapsed = True
                else:
                    e = math.frexp(nrm)[1]
                    sc = math.ldexp(1.0, -e)
                    for i in range(M):
                        for j in range(M):
                            P[i, j] = JP[i, j] * sc
                    e_sum += e
            if tt + 1 == horizons[ih]:
                for i in range(k):
                    log_qr[b, ih, i] = sums[i]
                if collapsed:
                    for i in range(k):
                        log_dir[b, ih, i] = -np.inf
                else:
                    sv = np.linalg.svd(P)[1]
                    base = e_sum * _LN2
                    for i in range(k):
                        log_dir[b, ih, i] = np.log(sv[i]) + base
                ih += 1


def _check_horizons(horizons) -> np.ndarray:
    h = np.asarray(horizons)
    if h.ndim == 0:
        h = h.reshape(1)
    if h.ndim != 1 or h.size == 0:
        raise ValueError(f"horizons must be a non-empty 1-D sequence of step counts; got shape {h.shape}")
    if h.dtype == bool or not (np.issubdtype(h.dtype, np.integer) or np.issubdtype(h.dtype, np.floating)):
        raise TypeError(f"horizons must be integers (numbers of steps); got dtype {h.dtype}")
    if np.issubdtype(h.dtype, np.floating):
        if not np.all(np.isfinite(h)) or np.any(h != np.round(h)):
            raise ValueError(f"horizons must be whole numbers of steps; got {h.tolist()}")
    h = h.astype(np.int64)
    if h.min() < 1:
        raise ValueError(f"horizons must be positive (>= 1 step); got {h.tolist()}")
    if np.any(np.diff(h) <= 0):
        raise ValueError(f"horizons must be strictly increasing; got {h.tolist()} (use np.unique to sort them)")
    return np.ascontiguousarray(h)


def _log_spectra(
    model: Model,
    theta,
    horizons,
    *,
    k,
    z0,
    n_init,
    inputs,
    n_transient,
    q0,
    seed,
):
    """Validate, run the engine; log R sums and log singular values (B, H, k)."""
    check_model(model)
    theta = model.check_theta(theta)
    M, K = model.dim, model.n_inputs
    k = M if k is None else V.positive_int(k, "k")
    if k > M:
        raise ValueError(f"k must be <= the state dimension {M}; got {k}")
    h = _check_horizons(horizons)
    n_transient = V.positive_int(n_transient, "n_transient", minimum=0)
    rng, recorded_seed = V.generator(seed)
    if z0 is None:
        Z0 = rng.standard_normal((V.positive_int(n_init, "n_init"), M))
    else:
        Z0 = V.as_state(z0, M, "z0")
        Z0 = Z0[None, :] if Z0.ndim == 1 else Z0
    B = Z0.shape[0]
    n_total = n_transient + int(h[-1])
    s = V.input_stream(inputs, B, n_total, K, "n_transient + max(horizons) steps")
    S = V.carray(np.transpose(s, (1, 0, 2)))
    Q0, q0_kind = initial_tangents(q0, B, M, k, rng)
    H = h.size
    log_qr = np.full((B, H, k), np.nan)
    log_dir = np.full((B, H, k), np.nan)
    div = np.full(B, -1, dtype=np.int64)
    kern = model.kernels.addresses()
    config.prepare_engines()
    t0 = time.perf_counter()
    with np.errstate(all="ignore"):
        _finite_time_kernel(
            kern.step,
            kern.jacobian,
            model_params(model, theta),
            model.meta,
            V.carray(Z0),
            S,
            V.carray(Q0),
            n_transient,
            h,
            log_qr,
            log_dir,
            div,
        )
    seconds = time.perf_counter() - t0
    args = {
        "model": model.describe(),
        "horizons": h,
        "k": k,
        "n_transient": n_transient,
        "n_init": B,
        "z0_given": int(z0 is not None),
        "driven": int(inputs is not None),
        "q0": q0_kind,
    }
    return h, k, B, log_qr, log_dir, div, seconds, args, recorded_seed


_EXP_UNITS = "1/step (natural log)"
_LOG10_UNITS = "log10"


def finite_time_exponents(
    model: Model,
    theta: ArrayLike,
    horizons: ArrayLike,
    *,
    k: int | None = None,
    z0=None,
    n_init: int = 1,
    inputs=None,
    n_transient: int = 1_000,
    q0="random",
    rcond: float = 1e-12,
    seed: int | np.random.Generator | None = 0,
) -> xr.Dataset:
    """Finite-time Lyapunov exponents by QR iteration and by direct Jacobian products.

    .. math::

        \\lambda_i(T) = \\frac{1}{T} \\log \\sigma_i\\Big(\\prod_{t=T}^{1} J_t\\Big)

    computed two ways for every horizon ``T`` in ``horizons`` in a single pass
    of ``max(horizons)`` steps (see the module docstring for the methods,
    their exact relations and the float64 limits of the direct product).

    Parameters
    ----------
    model : Model
        Any model of the package or a user-defined one.
    theta : (P,) array
        Parameters (finite).
    horizons : sequence of int
        Strictly increasing positive step counts ``T``, counted after the
        state transient.
    k : int, optional
        Number of exponents (default: all, ``model.dim``).  The QR method
        evolves ``k`` tangent vectors; the direct method reports the ``k``
        largest singular values of the full ``M x M`` product.
    z0 : (M,) or (B, M) array, optional
        Initial state(s); default ``n_init`` draws from N(0, 1) (``seed``).
    n_init : int
        Number of initial conditions when ``z0`` is not given.
    inputs : (K,), (T, K) or (B, T, K) array, optional
        Inputs of a driven model: a constant vector, or a stream (shared by the
        initial conditions, or one per initial condition) covering
        ``T = n_transient + max(horizons)`` steps.
    n_transient : int
        Steps of the state discarded before the product starts.
    q0 : {"random", "identity"} or array
        Initial orthonormal tangent system of the QR method: random (drawn
        from ``seed``; generic), the first ``k`` columns of the identity
        (exact for diagonal maps, but blind to growth outside an invariant
        coordinate subspace), or an explicit ``(M, k)`` / ``(B, M, k)``
        matrix with orthonormal columns.
    rcond : float
        ``direct_resolved`` is 1 where ``sigma_i / sigma_1 >= rcond``.
    seed : int, None or numpy.random.Generator
        Seeds the default initial states and a random ``q0``; the int that
        repeats the run is recorded in the ``seeds`` attribute.

    Returns
    -------
    xarray.Dataset
        Dims ``horizon``, ``init``, ``exponent``.  Variables:
        ``ftle_qr``, ``ftle_direct`` (horizon, init, exponent; 1/step),
        ``log10_condition_qr``, ``log10_condition_direct`` (horizon, init;
        ``log10(sigma_1 / sigma_k)``), ``log10_condition_by_dim_qr``,
        ``log10_condition_by_dim_direct`` (horizon, init, exponent;
        ``log10(sigma_1 / sigma_m)`` for ``m`` = exponent index),
        ``direct_resolved`` (horizon, init, exponent; 0/1),
        ``diverged`` (init; 0/1) and ``diverged_step`` (init; the step after
        the transient at which the state or the product became non-finite,
        -1 if never, 0 if during the transient; ``z_t`` non-finite at step
        ``t`` means ``J_{t+1}`` is undefined).  Horizons beyond
        ``diverged_step`` are NaN, earlier ones keep their values; a product
        that collapses to exactly zero gives ``-inf`` exponents.  Provenance in the attributes.

    Raises
    ------
    ValueError
        ``k`` larger than the state dimension, horizons not strictly
        increasing positive integers, non-finite ``theta``/``z0``/``inputs``,
        inputs of the wrong shape.
    """
    rcond = V.finite_float(rcond, "rcond", low=0.0, high=1.0)
    h, k, B, log_qr, log_dir, div, seconds, args, recorded_seed = _log_spectra(
        model,
        theta,
        horizons,
        k=k,
        z0=z0,
        n_init=n_init,
        inputs=inputs,
        n_transient=n_transient,
        q0=q0,
        seed=seed,
    )
    args["rcond"] = rcond
    # (B, H, k) -> (H, B, k)
    lq = np.transpose(log_qr, (1, 0, 2))
    ld = np.transpose(log_dir, (1, 0, 2))
    T = h.astype(float)[:, None, None]
    ln10 = np.log(10.0)
    with np.errstate(invalid="ignore"):
        by_dim_qr = (lq[:, :, :1] - lq) / ln10
        by_dim_dir = (ld[:, :, :1] - ld) / ln10
        resolved = (ld - ld[:, :, :1]) >= np.log(rcond) if rcond > 0 else np.isfinite(ld)
    resolved = (resolved & np.isfinite(ld)).astype(np.int8)
    data = {
        "ftle_qr": (
            ("horizon", "init", "exponent"),
            lq / T,
            {
                "long_name": "finite-time Lyapunov exponent from the QR iteration (sum of log R_ii / T)",
                "units": _EXP_UNITS,
            },
        ),
        "ftle_direct": (
            ("horizon", "init", "exponent"),
            ld / T,
            {
                "long_name": "finite-time Lyapunov exponent log(sigma_i) / T of the direct long-term Jacobian product",
                "units": _EXP_UNITS,
            },
        ),
        "log10_condition_qr": (
            ("horizon", "init"),
            by_dim_qr[:, :, -1],
            {"long_name": "log10 condition number R_11 / R_kk of the long-term Jacobian (QR)", "units": _LOG10_UNITS},
        ),
        "log10_condition_direct": (
            ("horizon", "init"),
            by_dim_dir[:, :, -1],
            {
                "long_name": "log10 condition number sigma_1 / sigma_k of the long-term Jacobian (direct)",
                "units": _LOG10_UNITS,
            },
        ),
        "log10_condition_by_dim_qr": (
            ("horizon", "init", "exponent"),
            by_dim_qr,
            {"long_name": "log10 R_11 / R_mm for m tangent dimensions (m = exponent index), QR", "units": _LOG10_UNITS},
        ),
        "log10_condition_by_dim_direct": (
            ("horizon", "init", "exponent"),
            by_dim_dir,
            {
                "long_name": "log10 sigma_1 / sigma_m for m tangent dimensions (m = exponent index), direct",
                "units": _LOG10_UNITS,
            },
        ),
        "direct_resolved": (
            ("horizon", "init", "exponent"),
            resolved,
            {
                "long_name": "1 where sigma_i / sigma_1 >= rcond (direct value above the float64 noise floor)",
                "units": "1",
            },
        ),
        "diverged": (
            "init",
            (div >= 0).astype(np.int8),
            {"long_name": "1 if the trajectory or the tangent product became non-finite", "units": "1"},
        ),
        "diverged_step": (
            "init",
            div,
            {
                "long_name": (
                    "step after the transient at which divergence was detected (-1: never, 0: in the transient)"
                ),
                "units": "steps",
            },
        ),
    }
    coords = {
        "horizon": ("horizon", h, {"long_name": "time horizon T of the long-term Jacobian", "units": "steps"}),
        "init": ("init", np.arange(B), {"long_name": "initial condition", "units": "1"}),
        "exponent": ("exponent", np.arange(1, k + 1), {"long_name": "exponent index (largest first)", "units": "1"}),
    }
    attrs = io.provenance("plrnn_numba.dynamics.finite_time_exponents", args, seeds=recorded_seed)
    attrs["seconds"] = seconds
    return xr.Dataset(data, coords=coords, attrs=attrs)


def condition_number(
    model: Model,
    theta: ArrayLike,
    horizons: ArrayLike,
    *,
    k: int | None = None,
    z0=None,
    n_init: int = 1,
    inputs=None,
    n_transient: int = 1_000,
    q0="random",
    rcond: float = 1e-12,
    seed: int | np.random.Generator | None = 0,
) -> xr.Dataset:
    """Condition number of the long-term Jacobian against the time horizon (Engelken 2023, Fig. 2, eq. 10).

    .. math::

        \\log_{10}\\kappa_2(T) = \\log_{10}\\frac{\\sigma_1(\\mathbf{T}_T)}{\\sigma_k(\\mathbf{T}_T)}
        \\approx \\frac{(\\lambda_1 - \\lambda_k)\\, T}{\\ln 10}

    from the QR iteration and from the direct product (see
    :func:`finite_time_exponents`, which takes the same arguments), plus the
    asymptotic estimate of eq. 10 with the QR exponents of the longest
    horizon.  For a linear map ``diag(a_1 .. a_M)`` with ``k = M``,
    ``kappa(T) = (max|a| / min|a|)^T`` exactly.

    Parameters
    ----------
    model : Model
        Any model of the package or a user-defined one.
    theta : (P,) array
        Parameters (finite).
    horizons : sequence of int
        Strictly increasing positive step counts ``T``, counted after the state transient.
    k : int, optional
        Number of exponents; the condition number is ``sigma_1 / sigma_k`` (default: all, ``model.dim``).
    z0 : (M,) or (B, M) array, optional
        Initial state(s); default ``n_init`` draws from N(0, 1) (``seed``).
    n_init : int
        Number of initial conditions when ``z0`` is not given.
    inputs : (K,), (T, K) or (B, T, K) array, optional
        Inputs of a driven model, as for :func:`finite_time_exponents`.
    n_transient : int
        Steps of the state discarded before the product starts.
    q0 : {"random", "identity"} or array
        Initial orthonormal tangent system of the QR method, as for :func:`finite_time_exponents`.
    rcond : float
        ``direct_resolved`` is 1 where ``sigma_i / sigma_1 >= rcond``.
    seed : int, None or numpy.random.Generator
        Seeds the default initial states and a random ``q0``.

    Returns
    -------
    xarray.Dataset
        ``log10_condition_qr``, ``log10_condition_direct``,
        ``log10_condition_asymptotic`` (horizon, init; log10),
        ``log10_condition_by_dim_qr``, ``log10_condition_by_dim_direct``
        (horizon, init, exponent), ``direct_resolved``, ``diverged``,
        ``diverged_step``; provenance in the attributes.
    """
    ds = finite_time_exponents(
        model,
        theta,
        horizons,
        k=k,
        z0=z0,
        n_init=n_init,
        inputs=inputs,
        n_transient=n_transient,
        q0=q0,
        rcond=rcond,
        seed=seed,
    )
    lam = ds["ftle_qr"].isel(horizon=-1)
    gap = (lam.isel(exponent=0) - lam.isel(exponent=-1)).values  # (init,)
    asym = ds["horizon"].values.astype(float)[:, None] * gap[None, :] / np.log(10.0)
    out = ds[
        [
            "log10_condition_qr",
            "log10_condition_direct",
            "log10_condition_by_dim_qr",
            "log10_condition_by_dim_direct",
            "direct_resolved",
            "diverged",
            "diverged_step",
        ]
    ].copy()
    out["log10_condition_asymptotic"] = (
        ("horizon", "init"),
        asym,
        {
            "long_name": "(lambda_1 - lambda_k) T / ln 10 with the QR exponents of the longest horizon (eq. 10)",
            "units": _LOG10_UNITS,
        },
    )
    out.attrs = dict(ds.attrs)
    out.attrs["producer"] = "plrnn_numba.dynamics.condition_number"
    out.attrs["history"] = out.attrs["history"].replace("finite_time_exponents", "condition_number")
    return out
