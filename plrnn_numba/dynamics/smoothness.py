r"""Smoothness of the cost against the sequence length, and the state map's Lipschitz constant.

Ribeiro, Tiels, Aguirre and Schön (2020), "Beyond exploding and vanishing
gradients: analysing RNN training using attractors and smoothness", bound the
smoothness of the cost

.. math:: V(\theta) = \frac1N \sum_{t=1}^{N} l(y_t, \hat y_t)

by the Lipschitz constant :math:`L_f` of the state map
:math:`x_{t+1} = f(x_t, u_t; \theta)` (their Theorem 1): the Lipschitz
constants of :math:`V` and of :math:`\nabla V` grow like
:math:`L_f^{2N}` and :math:`L_f^{3N}` when :math:`L_f > 1`, like :math:`N` and
:math:`N^3` when :math:`L_f = 1`, and stay bounded when :math:`L_f < 1`.  And
the entropy of the state distribution obeys :math:`H_{t+1} \ge H_t + N_x \log L_f`
(their Eq. 4).

This module measures both sides.

* :func:`state_lipschitz` follows trajectories and records, per step, the
  local Lipschitz constant :math:`\|J_t\|_2` (the largest singular value of
  the one-step Jacobian :math:`J_t = \partial f / \partial x` at the visited
  state; on a convex set :math:`L_f` is the supremum of it) and
  :math:`\log|\det J_t|`, whose running sum is the exact change of the
  differential entropy of a small cloud of states carried along the
  trajectory (:math:`H_{t} - H_0 = \sum_{s<t} \log|\det J_s|` for a
  diffeomorphism).  It lies between :math:`N_x \sum_s \log \sigma_{\min}(J_s)`
  and :math:`N_x \sum_s \log \sigma_{\max}(J_s)`, both recorded.  Eq. 4's
  step :math:`H_{t+1} \ge H_t + N_x \log L_f` holds with :math:`L_f` read as
  the smallest expansion factor, :math:`\|f(x) - f(w)\| \ge L_f \|x - w\|`
  (locally :math:`\sigma_{\min}(J_t)`); with the Lipschitz constant
  (:math:`\sigma_{\max}`) the same expression bounds the change from above.
  Either way, :math:`L_f < 1` everywhere means volumes shrink and the
  information about the initial state is lost, :math:`L_f > 1` the opposite.
* :func:`cost_smoothness` estimates the Lipschitz constants of :math:`V` and
  :math:`\nabla V` for each sequence length, along random unit directions
  :math:`d` in parameter space: on the segment
  :math:`\theta + r\,\tau\, d`, :math:`\tau \in [-1, 1]`, sampled at sorted
  points :math:`\tau_j`, the largest observed difference quotients

  .. math::

      \hat L_V = \max_j \frac{|V(\theta_{j+1}) - V(\theta_j)|}{r\,(\tau_{j+1} - \tau_j)},
      \qquad
      \hat L'_V = \max_j \frac{\|\nabla V(\theta_{j+1}) - \nabla V(\theta_j)\|}{r\,(\tau_{j+1} - \tau_j)} .

  On a line the largest quotient over all pairs is attained by neighbours,
  so adjacent pairs suffice.  These are lower bounds of the true constants
  on the segment (they are observed ratios), and they converge to the
  largest directional derivative as the sampling is refined.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..bptt import Batch, loss_and_grad
from ..models.base import Model, check_model, model_params

__all__ = ["cost_smoothness", "state_lipschitz"]

_U1 = {"units": "1"}


# ------------------------------------------------------------------------------- the state map
def state_lipschitz(
    model: Model,
    theta,
    *,
    n_steps: int = 500,
    n_transient: int = 0,
    z0=None,
    n_init: int = 8,
    inputs=None,
    seed=0,
) -> xr.Dataset:
    r"""Local Lipschitz constants :math:`\|J_t\|_2` and volume growth :math:`\log|\det J_t|` along trajectories.

    .. math::

        L_t = \sigma_{\max}(J_t), \qquad
        \Delta H_t = \sum_{s<t} \log|\det J_s|, \qquad
        N_x \sum_{s<t} \log \sigma_{\min}(J_s) \;\le\; \Delta H_t \;\le\; N_x \sum_{s<t} \log \sigma_{\max}(J_s),

    with :math:`J_t = \partial f/\partial x\,(x_t, u_{t+1})` on the steps
    after the transient; :math:`\hat L_f = \max_{b,t} L_{b,t}` estimates the
    Lipschitz constant :math:`L_f` (module docstring on Eq. 4 of Ribeiro et
    al. 2020).

    Parameters
    ----------
    model : Model
        Any model of the package.
    theta : (P,) array
        Its parameters.
    n_steps : int
        Steps recorded (after the transient).
    n_transient : int
        Steps discarded first (0: the Jacobians from the initial states on).
    z0 : (M,) or (B, M) array, optional
        Initial states; default ``n_init`` draws from N(0, 1) (``seed``).
    n_init : int
        Number of initial states when ``z0`` is not given.
    inputs : (K,), (T, K) or (B, T, K) array, optional
        Inputs of a driven model (a constant vector, or a stream covering
        ``n_transient + n_steps`` steps).
    seed : int, None or numpy.random.Generator
        Seeds the default initial states.

    Returns
    -------
    xarray.Dataset
        Dims ``init``, ``step``: ``local_lipschitz`` :math:`L_t`,
        ``min_singular`` :math:`\sigma_{\min}(J_t)`, ``log_abs_det``
        :math:`\log|\det J_t|`, ``log_volume`` :math:`\Delta H_{t+1}`
        (running sum), ``entropy_lower`` and ``entropy_upper`` (the running
        bounds), ``diverged`` (init); scalars ``lipschitz_max`` (:math:`\hat L_f`),
        ``lipschitz_mean``; the states ``z`` (init, step, state).
    """
    model = check_model(model)
    theta = model.check_theta(theta, "theta")
    n_steps = V.positive_int(n_steps, "n_steps")
    n_transient = V.positive_int(n_transient, "n_transient", minimum=0)
    n_init = V.positive_int(n_init, "n_init")
    rng, recorded = V.generator(seed, "seed")
    M, K = model.dim, model.n_inputs
    total = n_transient + n_steps
    if z0 is None:
        Z0 = rng.normal(size=(n_init, M))
    else:
        Z0 = V.as_state(z0, M, "z0")
        Z0 = Z0[None, :] if Z0.ndim == 1 else Z0
        V.check_finite(Z0, "z0")
    B = Z0.shape[0]
    S = np.array(V.input_stream(inputs, B, total, K)) if K else None  # a writeable copy (kernels need one)
    t0 = time.perf_counter()
    Z = model.simulate(theta, Z0, n_steps=None if K else total, inputs=S)  # (B, total + 1, M)
    p = model_params(model, theta)
    jac = model.kernels.jacobian
    J = np.empty((M, M))
    lip, smin, logdet = (np.full((B, n_steps), np.nan) for _ in range(3))
    diverged = np.zeros(B, dtype=np.int8)
    s_empty = np.zeros(0)
    for b in range(B):
        for i in range(n_steps):
            t = n_transient + i
            z = Z[b, t]
            if not np.all(np.isfinite(z)):
                diverged[b] = 1
                break  # a diverged run: the rest stays NaN
            jac(p, model.meta, np.ascontiguousarray(z), S[b, t] if K else s_empty, J)
            if not np.all(np.isfinite(J)):
                diverged[b] = 1
                break
            sv = np.linalg.svd(J, compute_uv=False)
            lip[b, i], smin[b, i] = sv[0], sv[-1]
            logdet[b, i] = np.linalg.slogdet(J)[1]
    with np.errstate(divide="ignore"):  # a singular Jacobian: -inf, the volume collapses
        volume = np.cumsum(logdet, axis=1)
        lower, upper = M * np.cumsum(np.log(smin), axis=1), M * np.cumsum(np.log(lip), axis=1)
    lmax = float(np.nanmax(lip)) if np.any(np.isfinite(lip)) else np.nan
    args = {"model": model.describe(), "n_steps": n_steps, "n_transient": n_transient, "n_init": B,
            "inputs": None if inputs is None else "given"}
    step = np.arange(n_transient, total)
    return xr.Dataset(
        {
            "local_lipschitz": (("init", "step"), lip, {**_U1, "long_name": "largest singular value of the one-step "
                                                                            "state Jacobian ||J_t||_2"}),
            "log_abs_det": (("init", "step"), logdet, {"units": "nats", "long_name": "log |det J_t|"}),
            "log_volume": (("init", "step"), volume, {"units": "nats", "long_name": "running sum of log |det J_s| "
                                                                                  "up to and including this step: "
                                                                                  "the entropy change H_t+1 - H_t0"}),
            "min_singular": (("init", "step"), smin, {**_U1, "long_name": "smallest singular value of J_t"}),
            "entropy_lower": (("init", "step"), lower, {"units": "nats", "long_name": "N_x x running sum of log "
                                                                                    "sigma_min(J_s): lower bound "
                                                                                    "of log_volume"}),
            "entropy_upper": (("init", "step"), upper, {"units": "nats", "long_name": "N_x x running sum of log "
                                                                                    "||J_s||_2: upper bound of "
                                                                                    "log_volume"}),
            "diverged": ("init", diverged, {**_U1, "long_name": "1 if the trajectory became non-finite (its later "
                                                                "steps are NaN)"}),
            "lipschitz_max": ((), lmax, {**_U1, "long_name": "largest observed ||J_t||_2 (the estimate of L_f)"}),
            "lipschitz_mean": ((), float(np.nanmean(lip)) if np.any(np.isfinite(lip)) else np.nan,
                               {**_U1, "long_name": "mean of ||J_t||_2"}),
            "z": (("init", "step", "state"), Z[:, n_transient:total], {**_U1, "long_name": "state x_t"}),
        },
        coords={"init": ("init", np.arange(B), {**_U1, "long_name": "initial condition"}),
                "step": ("step", step, {"units": "steps", "long_name": "time step t (Jacobian at x_t)"}),
                "state": ("state", np.arange(M), {**_U1, "long_name": "state component"})},
        attrs={**io.provenance("plrnn_numba.dynamics.state_lipschitz", args, seeds=recorded),
               "title": "Local Lipschitz constants and volume growth along trajectories",
               "seconds": time.perf_counter() - t0},
    )


# ------------------------------------------------------------------------------- the cost
def _truncate(batch: Batch, n: int) -> Batch:
    """The first ``n`` steps of every sequence of ``batch``."""
    s = batch.inputs
    if s is not None and s.ndim >= 2:
        s = s[..., :n, :]
    return Batch(targets=batch.targets[:, :n], inputs=s, z0=batch.z0, x0=batch.x0,
                 mask=None if batch.mask is None else batch.mask[:, :n])


def cost_smoothness(
    model: Model,
    theta,
    data,
    lengths,
    *,
    n_directions: int = 8,
    radius: float = 0.1,
    n_points: int = 41,
    readout=None,
    readout_params=None,
    loss: str = "mse",
    seed=0,
) -> xr.Dataset:
    r"""Lipschitz constants of the cost :math:`V` and of :math:`\nabla V` against the sequence length.

    For each length :math:`N` in ``lengths`` and each of ``n_directions``
    random unit directions :math:`d` (uniform on the sphere, the same for
    every length), the cost and gradient of the first :math:`N` steps of
    ``data`` are evaluated at :math:`\theta + r\tau_j d`, :math:`\tau_j` =
    ``n_points`` evenly spaced points of :math:`[-1, 1]`, and the largest
    difference quotients of neighbours are the estimates (module
    docstring):

    .. math::

        \hat L_V(N, d) = \max_j \frac{|V_{j+1} - V_j|}{r\,\Delta\tau}, \qquad
        \hat L'_V(N, d) = \max_j \frac{\|\nabla V_{j+1} - \nabla V_j\|}{r\,\Delta\tau} .

    Parameters
    ----------
    model : Model
        Any model of the package.
    theta : (P,) array
        The centre of the segments.
    data : Batch or callable
        A :class:`~plrnn_numba.Batch` at least ``max(lengths)`` steps long
        (truncated to each length), or ``data(n) -> Batch`` building the data
        of length ``n``.
    lengths : sequence of int
        Sequence lengths :math:`N` (increasing).
    n_directions : int
        Random directions per length.
    radius : float
        Half-length :math:`r > 0` of each segment in parameter space.
    n_points : int
        Points per segment (>= 3); the spacing is :math:`2r/(n_{\rm points} - 1)`.
    readout : IdentityReadout, LinearReadout or LatentReadout, optional
        Observation model, as for :func:`plrnn_numba.loss_and_grad`.
    readout_params : array, optional
        Readout parameters, as for :func:`plrnn_numba.loss_and_grad`.
    loss : {"mse", "bce", "sigmoid_mse", "ce"}
        The cost, as for :func:`plrnn_numba.loss_and_grad`.
    seed : int, None or numpy.random.Generator
        Draws the directions.

    Returns
    -------
    xarray.Dataset
        Dims ``length``, ``direction``, ``point``: ``lipschitz_cost``
        :math:`\hat L_V`, ``lipschitz_grad`` :math:`\hat L'_V` (length,
        direction), their maxima over directions ``lipschitz_cost_max`` and
        ``lipschitz_grad_max`` (length), the ``cost`` along each segment
        (length, direction, point) and ``tau``.  A segment where the cost or
        gradient is not finite gives NaN (counted in ``n_nonfinite``).
    """
    model = check_model(model)
    theta = model.check_theta(theta, "theta")
    lens = np.asarray(lengths)
    if lens.ndim != 1 or lens.size == 0 or lens.dtype.kind not in "iu" or np.any(lens < 1):
        raise ValueError(f"lengths must be a non-empty 1-D sequence of positive integers; got {lengths!r}")
    if np.any(np.diff(lens) <= 0):
        raise ValueError(f"lengths must be strictly increasing; got {lens.tolist()}")
    n_directions = V.positive_int(n_directions, "n_directions")
    radius = V.finite_float(radius, "radius", low=0.0, open_low=True)
    n_points = V.positive_int(n_points, "n_points")
    if n_points < 3:
        raise ValueError(f"n_points must be at least 3 (neighbouring differences along a segment); got {n_points}")
    if isinstance(data, Batch):
        if data.n_steps < lens[-1]:
            raise ValueError(f"data has {data.n_steps} steps; lengths go up to {int(lens[-1])} (pass a longer "
                             "Batch, or a callable data(n) -> Batch)")
        make = lambda n: _truncate(data, int(n))  # noqa: E731
    elif callable(data):
        make = lambda n: data(int(n))  # noqa: E731
    else:
        raise TypeError(f"data must be a plrnn_numba.Batch or a callable data(n) -> Batch; got {type(data).__name__}")
    rng, recorded = V.generator(seed, "seed")
    P = theta.size
    dirs = rng.normal(size=(n_directions, P))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    tau = np.linspace(-1.0, 1.0, n_points)
    dt = radius * (tau[1] - tau[0])
    L, Lg = (np.full((lens.size, n_directions), np.nan) for _ in range(2))
    cost = np.full((lens.size, n_directions, n_points), np.nan)
    n_bad = 0
    t0 = time.perf_counter()
    for i, n in enumerate(lens):
        batch = make(n)
        if not isinstance(batch, Batch):
            raise TypeError(f"data({int(n)}) must return a plrnn_numba.Batch; got {type(batch).__name__}")
        for k in range(n_directions):
            grads = np.empty((n_points, P))
            for j, tj in enumerate(tau):
                res = loss_and_grad(model, theta + radius * tj * dirs[k], batch, readout=readout,
                                    readout_params=readout_params, loss=loss)
                cost[i, k, j] = res.loss
                grads[j] = res.grad
            if not (np.all(np.isfinite(cost[i, k])) and np.all(np.isfinite(grads))):
                n_bad += 1
                continue
            L[i, k] = np.max(np.abs(np.diff(cost[i, k]))) / dt
            Lg[i, k] = np.max(np.linalg.norm(np.diff(grads, axis=0), axis=1)) / dt
    args = {"model": model.describe(), "lengths": lens.tolist(), "n_directions": n_directions, "radius": radius,
            "n_points": n_points, "loss": loss, "readout": type(readout).__name__ if readout is not None else None}

    def fmax(a):
        return np.array([np.nanmax(r) if np.any(np.isfinite(r)) else np.nan for r in a])

    return xr.Dataset(
        {
            "lipschitz_cost": (("length", "direction"), L, {**_U1, "long_name": "largest observed |dV| / |dtheta| "
                                                                               "along the segment"}),
            "lipschitz_grad": (("length", "direction"), Lg, {**_U1, "long_name": "largest observed |d grad V| / "
                                                                                 "|dtheta| along the segment"}),
            "lipschitz_cost_max": ("length", fmax(L), {**_U1, "long_name": "lipschitz_cost, largest over "
                                                                           "directions"}),
            "lipschitz_grad_max": ("length", fmax(Lg), {**_U1, "long_name": "lipschitz_grad, largest over "
                                                                            "directions"}),
            "cost": (("length", "direction", "point"), cost, {**_U1, "long_name": "cost V along the segment"}),
            "n_nonfinite": ((), n_bad, {**_U1, "long_name": "segments with a non-finite cost or gradient (NaN)"}),
        },
        coords={"length": ("length", lens.astype(np.int64), {"units": "steps", "long_name": "sequence length N"}),
                "direction": ("direction", np.arange(n_directions), {**_U1, "long_name": "random unit direction"}),
                "point": ("point", np.arange(n_points), {**_U1, "long_name": "point along the segment"}),
                "tau": ("point", tau * radius, {**_U1, "long_name": "offset r tau along the direction"})},
        attrs={**io.provenance("plrnn_numba.dynamics.cost_smoothness", args, seeds=recorded),
               "title": "Smoothness of the cost against the sequence length", "seconds": time.perf_counter() - t0},
    )
