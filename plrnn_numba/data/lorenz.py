r"""Lorenz-63 trajectories as xarray Datasets.

The Lorenz-63 system [1]_

.. math::

    \dot x = \sigma (y - x), \qquad
    \dot y = x (\rho - z) - y, \qquad
    \dot z = x y - \beta z

is the standard chaotic benchmark for dynamical-systems reconstruction with
PLRNNs. At the classic parameters :math:`\sigma = 10`, :math:`\rho = 28`,
:math:`\beta = 8/3` it has a two-lobed strange attractor with Lyapunov
exponents of about :math:`(0.906, 0, -14.572)`.

References
----------
.. [1] E. N. Lorenz, "Deterministic nonperiodic flow", J. Atmos. Sci. 20,
   130-141 (1963).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.integrate import solve_ivp

from .. import _validate as V
from ..io import provenance
from ._common import check_bool
from ._common import standardize as _zscore

__all__ = ["lorenz63", "lorenz63_jacobian", "lorenz63_rhs"]

#: solve_ivp methods accepted by :func:`lorenz63`.
METHODS = ("DOP853", "LSODA", "RK45", "Radau", "BDF")
#: methods that use the analytic Jacobian.
_JAC_METHODS = ("LSODA", "Radau", "BDF")

CHANNELS = ("x", "y", "z")


def lorenz63_rhs(state: ArrayLike, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> np.ndarray:
    r"""Right-hand side :math:`f(\mathbf{u})` of the Lorenz-63 ODE.

    .. math::

        f(x, y, z) = \bigl(\sigma (y - x),\; x(\rho - z) - y,\; x y - \beta z\bigr)

    Parameters
    ----------
    state : array_like, shape (..., 3)
        State(s) :math:`(x, y, z)`, last axis the coordinates.
    sigma, rho, beta : float
        System parameters.

    Returns
    -------
    numpy.ndarray, shape (..., 3)
        Time derivative(s).
    """
    return _rhs(_states(state), *_parameters(sigma, rho, beta))


def _states(state) -> np.ndarray:
    u = V.as_float_array(state, "state")
    if u.shape[-1:] != (3,):
        raise ValueError(f"state must have shape (..., 3); got {u.shape}")
    V.check_finite(u, "state")
    return u


def _parameters(sigma, rho, beta) -> tuple[float, float, float]:
    return V.finite_float(sigma, "sigma"), V.finite_float(rho, "rho"), V.finite_float(beta, "beta")


def _rhs(u: np.ndarray, sigma: float, rho: float, beta: float) -> np.ndarray:
    # unchecked: the integrator calls this thousands of times with checked arguments
    if u.ndim == 1:
        x, y, z = u.tolist()
        return np.array([sigma * (y - x), x * (rho - z) - y, x * y - beta * z])
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    return np.stack([sigma * (y - x), x * (rho - z) - y, x * y - beta * z], axis=-1)


def lorenz63_jacobian(state: ArrayLike, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0) -> np.ndarray:
    r"""Jacobian :math:`\partial f / \partial \mathbf{u}` of the Lorenz-63 vector field.

    .. math::

        J(x, y, z) = \begin{pmatrix}
            -\sigma & \sigma & 0 \\
            \rho - z & -1 & -x \\
            y & x & -\beta
        \end{pmatrix}

    Its trace, :math:`-(\sigma + 1 + \beta)`, is constant: phase-space volumes
    contract at the rate :math:`e^{-(\sigma + 1 + \beta) t}`, so the sum of the
    three Lyapunov exponents is :math:`-(\sigma + 1 + \beta)` (:math:`-41/3`
    at the classic parameters).

    Parameters
    ----------
    state : array_like, shape (..., 3)
        State(s) :math:`(x, y, z)`.
    sigma, rho, beta : float
        System parameters.

    Returns
    -------
    numpy.ndarray, shape (..., 3, 3)
        ``J[..., i, j] = d f_i / d u_j``.
    """
    return _jacobian(_states(state), *_parameters(sigma, rho, beta))


def _jacobian(u: np.ndarray, sigma: float, rho: float, beta: float) -> np.ndarray:
    x, y, z = u[..., 0], u[..., 1], u[..., 2]
    J = np.zeros(u.shape[:-1] + (3, 3))
    J[..., 0, 0] = -sigma
    J[..., 0, 1] = sigma
    J[..., 1, 0] = rho - z
    J[..., 1, 1] = -1.0
    J[..., 1, 2] = -x
    J[..., 2, 0] = y
    J[..., 2, 1] = x
    J[..., 2, 2] = -beta
    return J


def lorenz63(
    n_samples: int = 2000,
    *,
    dt: float = 0.01,
    subsample: int = 1,
    sigma: float = 10.0,
    rho: float = 28.0,
    beta: float = 8.0 / 3.0,
    transient: int = 1000,
    x0: ArrayLike | None = None,
    noise_std: float = 0.0,
    standardize: bool = True,
    seed=0,
    method: str = "DOP853",
    rtol: float = 1e-10,
    atol: float = 1e-12,
) -> xr.Dataset:
    r"""Simulate a Lorenz-63 trajectory and return it as a Dataset.

    The ODE

    .. math::

        \dot x = \sigma (y - x), \qquad
        \dot y = x (\rho - z) - y, \qquad
        \dot z = x y - \beta z

    (right-hand side :func:`lorenz63_rhs`, Jacobian :func:`lorenz63_jacobian`)
    is integrated with :func:`scipy.integrate.solve_ivp` (adaptive step,
    tolerances ``rtol``/``atol``) and evaluated on the grid
    :math:`t_j = j\,\Delta t`. The first ``transient`` grid points are
    dropped, then every ``subsample``-th point is kept, so that sample
    :math:`k` is the state at

    .. math::

        t_k = (\mathrm{transient} + k \cdot \mathrm{subsample})\,\Delta t,
        \qquad k = 0, \dots, n_\mathrm{samples} - 1,

    and samples are :math:`\Delta t \cdot \mathrm{subsample}` apart.

    With ``standardize=True`` each channel is z-scored,
    :math:`\tilde u_c = (u_c - \mu_c) / s_c` (mean and population std of the
    clean trajectory, stored as variables ``x_mean`` and ``x_std``; undo with
    ``x * x_std + x_mean``). Observation noise
    :math:`\varepsilon \sim \mathcal N(0, \mathrm{noise\_std}^2)` is given in
    standardised units: it is added as ``noise_std`` to standardised data and
    as ``noise_std * x_std`` per channel to raw data. (With noise the
    standardised data have std :math:`\sqrt{1 + \mathrm{noise\_std}^2}`.)

    Parameters
    ----------
    n_samples : int, default 2000
        Number of samples returned (>= 2).
    dt : float, default 0.01
        Grid spacing of the integration output, in model time units (> 0).
    subsample : int, default 1
        Keep every ``subsample``-th grid point (>= 1).
    sigma, rho, beta : float
        System parameters (``sigma`` and ``beta`` > 0).
    transient : int, default 1000
        Number of grid points (steps of ``dt``) dropped at the start (>= 0),
        so the data lie on the attractor.
    x0 : array_like of 3 floats, optional
        Initial state. Default: a random point drawn with ``seed`` from a box
        around the attractor, :math:`x, y \sim U(-15, 15)`,
        :math:`z \sim U(5, 40)`.
    noise_std : float, default 0.0
        Standard deviation of the Gaussian observation noise, in standardised
        units (>= 0).
    standardize : bool, default True
        Z-score each channel.
    seed : int, None or numpy.random.Generator, default 0
        Seed for ``x0`` and the noise. None draws a seed from OS entropy (a
        Generator: one draw from it); the seed used is always stored in the
        ``seed`` attribute and reproduces the data.
    method : {"DOP853", "LSODA", "RK45", "Radau", "BDF"}, default "DOP853"
        solve_ivp method. The implicit methods ("LSODA", "Radau", "BDF") are
        given the analytic Jacobian :func:`lorenz63_jacobian`.
    rtol, atol : float
        The tolerances of ``solve_ivp`` (both > 0).

    Returns
    -------
    xarray.Dataset
        ``x`` (time, channel): the trajectory, channel = ["x", "y", "z"];
        ``x_mean``, ``x_std`` (channel): the standardisation constants
        (0 and 1 when ``standardize=False``). Attributes: ``sigma``, ``rho``,
        ``beta``, ``dt``, ``subsample``, ``sample_spacing``, ``transient``,
        ``x0``, ``standardized`` (0/1), ``noise_std``, ``seed``, ``method``,
        ``rtol``, ``atol``, ``lyapunov_sum`` (:math:`-(\sigma+1+\beta)`) and
        the provenance attributes of :func:`plrnn_numba.io.provenance`.

    Raises
    ------
    ValueError
        Out-of-range argument (named in the message).
    TypeError
        Argument of the wrong type.
    RuntimeError
        If the integrator fails.

    Examples
    --------
    >>> ds = lorenz63(1000, seed=0)
    >>> ds.x.shape
    (1000, 3)
    """
    n_samples = V.positive_int(n_samples, "n_samples", minimum=2)
    dt = V.finite_float(dt, "dt")
    if dt <= 0:
        raise ValueError(f"dt must be > 0; got {dt}")
    subsample = V.positive_int(subsample, "subsample", minimum=1)
    sigma = V.finite_float(sigma, "sigma")
    rho = V.finite_float(rho, "rho")
    beta = V.finite_float(beta, "beta")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0; got {sigma}")
    if beta <= 0:
        raise ValueError(f"beta must be > 0; got {beta}")
    transient = V.positive_int(transient, "transient", minimum=0)
    noise_std = V.finite_float(noise_std, "noise_std", low=0.0)
    standardize_ = check_bool(standardize, "standardize")
    V.choice(method, "method", METHODS)
    rtol = V.finite_float(rtol, "rtol")
    atol = V.finite_float(atol, "atol")
    if rtol <= 0:
        raise ValueError(f"rtol must be > 0; got {rtol}")
    if atol <= 0:
        raise ValueError(f"atol must be > 0; got {atol}")
    rng, seed_used = V.generator(seed)
    if x0 is None:
        x0_arr = np.array([rng.uniform(-15.0, 15.0), rng.uniform(-15.0, 15.0), rng.uniform(5.0, 40.0)])
    else:
        x0_arr = V.as_float_array(x0, "x0").ravel()
        if x0_arr.shape != (3,):
            raise ValueError(f"x0 must hold 3 numbers (x, y, z); got shape {np.shape(x0)}")
        V.check_finite(x0_arr, "x0")

    steps = transient + subsample * np.arange(n_samples, dtype=np.int64)
    t_eval = steps * dt
    kwargs = {}
    if method in _JAC_METHODS:
        kwargs["jac"] = lambda t, u: _jacobian(u, sigma, rho, beta)
    sol = solve_ivp(
        lambda t, u: _rhs(u, sigma, rho, beta),
        (0.0, float(t_eval[-1])),
        x0_arr,
        method=method,
        t_eval=t_eval,
        rtol=rtol,
        atol=atol,
        **kwargs,
    )
    if not sol.success or sol.y.shape[1] != n_samples:
        raise RuntimeError(f"Lorenz-63 integration failed ({method}): {sol.message}")
    x = np.ascontiguousarray(sol.y.T)
    if not np.all(np.isfinite(x)):  # pragma: no cover - bounded system
        raise RuntimeError("Lorenz-63 integration produced NaN or inf")

    if standardize_:
        x, mean, std = _zscore(x, "the Lorenz-63 trajectory")
        noise_scale = np.full(3, noise_std)
    else:
        mean, std = np.zeros(3), np.ones(3)
        noise_scale = noise_std * x.std(axis=0)
    if noise_std > 0:
        x = x + rng.standard_normal(x.shape) * noise_scale

    arguments = {
        "n_samples": n_samples,
        "dt": dt,
        "subsample": subsample,
        "sigma": sigma,
        "rho": rho,
        "beta": beta,
        "transient": transient,
        "x0": x0_arr,
        "noise_std": noise_std,
        "standardize": standardize_,
        "seed": seed_used,
        "method": method,
        "rtol": rtol,
        "atol": atol,
    }
    unit = "1 (standardized)" if standardize_ else "1"
    ds = xr.Dataset(
        {
            "x": (
                ("time", "channel"),
                x,
                {
                    "long_name": "Lorenz-63 state" + (" (standardized per channel)" if standardize_ else ""),
                    "units": unit,
                },
            ),
            "x_mean": (
                "channel",
                mean,
                {
                    "long_name": "per-channel mean subtracted in standardization (x_raw = x * x_std + x_mean)",
                    "units": "1",
                },
            ),
            "x_std": (
                "channel",
                std,
                {
                    "long_name": "per-channel standard deviation divided out in standardization",
                    "units": "1",
                },
            ),
        },
        coords={
            "time": ("time", t_eval, {"long_name": "model time", "units": "model time units"}),
            "channel": ("channel", list(CHANNELS), {"long_name": "Lorenz-63 state variable", "units": "1"}),
        },
        attrs={
            "title": "Lorenz-63 trajectory",
            "system": "lorenz63",
            "equations": "dx/dt = sigma*(y - x); dy/dt = x*(rho - z) - y; dz/dt = x*y - beta*z",
            "sigma": sigma,
            "rho": rho,
            "beta": beta,
            "dt": dt,
            "subsample": subsample,
            "sample_spacing": dt * subsample,
            "transient": transient,
            "x0": x0_arr,
            "standardized": int(standardize_),
            "noise_std": noise_std,
            "seed": seed_used,
            "method": method,
            "rtol": rtol,
            "atol": atol,
            "lyapunov_sum": -(sigma + 1.0 + beta),
            **provenance("plrnn_numba.data.lorenz63", arguments, seed_used),
        },
    )
    return ds
