"""Gradient flossing: the exact gradient of Lyapunov exponents, by hand.

Forward (per sequence, ``t = 1 .. T``): ``J_t = dF/dz (z_{t-1}, s_t)``,
``Y~_t = J_t Y_{t-1}``, ``z_t = F(z_{t-1}, s_t)``; every ``t_ons`` steps
(and at the last step) ``Y~_t = Q_t R_t`` with a positive diagonal of R and
``Y_t = Q_t`` (otherwise ``Y_t = Y~_t``).  The estimates of the first k
exponents are ``lambda_i = (1/T) sum_QR log R_ii`` and the flossing loss is

.. math::  L = \\frac{1}{B} \\sum_b \\sum_{i=1}^{k} (\\lambda_i^{(b)} - \\lambda^*)^2 .

Backward (reverse time), with adjoints ``Ybar`` of ``Y_t`` and ``zbar`` of ``z_t``:

* QR step: ``Rbar = diag(Lbar_i / (T R_ii))``, and the QR pullback (reduced
  QR, R invertible) ``Mx = R Rbar^T - Qbar^T Q``,
  ``Abar = (Qbar + Q copyltu(Mx)) R^{-T}`` gives the adjoint of ``Y~_t``
  (``copyltu`` copies the lower triangle into the upper one);
* ``Y~_t = J_t Y_{t-1}``: ``Ybar_{t-1} = J_t^T Abar``, ``Jbar_t = Abar Y_{t-1}^T``;
* the Jacobian's dependence on state and parameters (the model's
  ``jacobian_vjp`` kernel: second derivatives of the map) adds to ``zbar_{t-1}``
  and ``thetabar``;
* the trajectory: ``zbar_{t-1} += (dF/dz)^T zbar_t`` and
  ``thetabar += (dF/dtheta)^T zbar_t`` (the same kernels as BPTT).

So the gradient includes the trajectory's dependence on the parameters.  The
initial state of the differentiated segment (after an undifferentiated
transient) and the initial orthonormal system are treated as given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import types

from .. import _validate as V
from .. import config
from ..models.base import (
    Model,
    call_jacobian,
    call_jacobian_vjp,
    call_param_vjp,
    call_state_vjp,
    call_step,
    model_params,
)
from ._tangents import initial_tangents

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i8 = types.int64

_FLOSS_SIG = types.float64(
    _i8,
    _i8,
    _i8,
    _i8,
    _i8,  # kernel addresses: step, state_vjp, param_vjp, jacobian, jacobian_vjp
    _f1,
    types.int64[::1],  # p, meta
    _f2,
    _f3,
    _f3,  # Z0 (B, M), S (T, B, K), Q0 (B, M, k)
    _i8,
    types.float64,  # t_ons, target
    _f2,
    _f1,
    _f2,  # out: exponents (B, k), gradient w.r.t. p, gradient w.r.t. z0 (B, M)
)


@config.njit
def _qr_pullback(Q, R, Qbar, Rbar):
    # Abar = (Qbar + Q copyltu(R Rbar^T - Qbar^T Q)) R^{-T}
    M, k = Q.shape
    Mx = R @ Rbar.T - Qbar.T @ Q
    for i in range(k):
        for j in range(i + 1, k):
            Mx[i, j] = Mx[j, i]
    BmT = np.ascontiguousarray((Qbar + Q @ Mx).T)  # (k, M)
    # X = Bm R^{-T}  <=>  R X^T = Bm^T: back substitution on the rows of Y = X^T,
    # each an axpy over the M contiguous entries
    Y = np.empty((k, M))
    for i in range(k - 1, -1, -1):
        yi = Y[i]
        for m in range(M):
            yi[m] = BmT[i, m]
        for j in range(i + 1, k):
            rij = R[i, j]
            if rij != 0.0:
                yj = Y[j]
                for m in range(M):
                    yi[m] -= rij * yj[m]
        inv = 1.0 / R[i, i]
        for m in range(M):
            yi[m] *= inv
    return np.ascontiguousarray(Y.T)


@config.jit(_FLOSS_SIG)
def _flossing_kernel(step, svjp, pvjp, jac, jvjp, p, meta, Z0, S, Q0, t_ons, target, lam, gp, gz0):
    B, M = Z0.shape
    T = S.shape[0]
    K = S.shape[2]
    k = Q0.shape[2]
    loss = 0.0
    J = np.empty((M, M))
    for b in range(B):
        Sb = np.ascontiguousarray(S[:, b, :])
        zs = np.empty((T + 1, M))
        zs[0] = Z0[b]
        Ys = np.empty((T + 1, M, k))
        Ys[0] = Q0[b]
        Rs = np.zeros((T, k, k))
        is_qr = np.zeros(T, dtype=np.bool_)
        logs = np.zeros(k)
        for t in range(T):
            s2 = Sb[t].reshape((1, K))
            call_jacobian(jac, p, meta, zs[t], Sb[t], J)
            Y = J @ Ys[t]
            call_step(step, p, meta, zs[t].reshape((1, M)), s2, zs[t + 1].reshape((1, M)))
            if (t + 1) % t_ons == 0 or t == T - 1:
                Q, R = np.linalg.qr(Y)
                for i in range(k):
                    if R[i, i] < 0.0:
                        for j in range(k):
                            R[i, j] = -R[i, j]
                        for m in range(M):
                            Q[m, i] = -Q[m, i]
                    logs[i] += np.log(R[i, i])
                Ys[t + 1] = Q
                Rs[t] = R
                is_qr[t] = True
            else:
                Ys[t + 1] = Y
        for i in range(k):
            lam[b, i] = logs[i] / T
            d = lam[b, i] - target
            loss += d * d / B
        # backward
        lbar = np.empty(k)
        for i in range(k):
            lbar[i] = 2.0 * (lam[b, i] - target) / B
        Ybar = np.zeros((M, k))
        zbar = np.zeros((1, M))
        gzF = np.empty((1, M))
        gzJ = np.empty(M)
        G = np.empty((T, M))
        Rbar = np.zeros((k, k))
        for t in range(T - 1, -1, -1):
            if is_qr[t]:
                R = Rs[t]
                for i in range(k):
                    Rbar[i, i] = lbar[i] / (T * R[i, i])
                Abar = _qr_pullback(Ys[t + 1], R, Ybar, Rbar)
            else:
                Abar = Ybar
            call_jacobian(jac, p, meta, zs[t], Sb[t], J)
            Ybar = J.T @ Abar
            Jbar = np.ascontiguousarray(Abar @ Ys[t].T)
            call_jacobian_vjp(jvjp, p, meta, zs[t], Sb[t], Jbar, gzJ, gp)
            G[t] = zbar[0]
            call_state_vjp(svjp, p, meta, zs[t].reshape((1, M)), Sb[t].reshape((1, K)), zbar, gzF)
            for m in range(M):
                zbar[0, m] = gzF[0, m] + gzJ[m]
        call_param_vjp(pvjp, p, meta, np.ascontiguousarray(zs[:T]), Sb, G, gp)
        gz0[b] = zbar[0]
    return loss


@dataclass(frozen=True)
class Flossing:
    """Settings of gradient flossing: which exponents, to what target, on which trajectories.

    Parameters
    ----------
    k : int
        Number of leading exponents regularised.
    target : float
        Target of every exponent (natural log per step).
    n_steps : int
        Length of each flossing trajectory (differentiated).
    n_transient : int
        Undifferentiated transient before it.
    t_ons : int
        Steps between QR reorthonormalisations.
    batch : int
        Trajectories (random initial states) per flossing step.
    lr : float
        Adam learning rate of the flossing optimiser.
    input_prob : float
        Inputs of driven models are Bernoulli(input_prob) bits (the tasks' input
        statistics); ignored for autonomous models.
    """

    k: int = 1
    target: float = 0.0
    n_steps: int = 55
    n_transient: int = 20
    t_ons: int = 1
    batch: int = 1
    lr: float = 1e-3
    input_prob: float = 0.5

    def __post_init__(self):
        V.positive_int(self.k, "k")
        V.finite_float(self.target, "target")
        V.positive_int(self.n_steps, "n_steps")
        V.positive_int(self.n_transient, "n_transient", minimum=0)
        V.positive_int(self.t_ons, "t_ons")
        V.positive_int(self.batch, "batch")
        V.finite_float(self.lr, "lr", low=0.0)
        V.finite_float(self.input_prob, "input_prob", 0.0, 1.0)

    def sample(self, model: Model, rng: np.random.Generator):
        """Random initial states and (for driven models) input bits for one flossing step."""
        z0 = rng.standard_normal((self.batch, model.dim))
        inputs = None
        if model.n_inputs:
            n = self.n_transient + self.n_steps
            inputs = (rng.random((self.batch, n, model.n_inputs)) < self.input_prob).astype(np.float64)
        return z0, inputs

    def loss_and_grad(self, model: Model, theta, rng: np.random.Generator) -> FlossingResult:
        """One flossing evaluation on fresh random trajectories."""
        z0, inputs = self.sample(model, rng)
        return flossing_loss_and_grad(model, theta, self.k, self.target, z0=z0, n_steps=self.n_steps,
                                      t_ons=self.t_ons, n_transient=self.n_transient, inputs=inputs,
                                      seed=int(rng.integers(2**31)))


def floss(model: Model, theta0, n_epochs: int, flossing: Flossing | None = None, *, seed: int | None = 0,
          optimizer=None):
    """Gradient flossing on its own (e.g. preflossing before task training).

    Minimises ``sum_i (lambda_i - target)^2`` of the first ``k`` exponents by
    Adam steps on fresh random trajectories, one per epoch.

    Returns
    -------
    theta : (P,) array
        The flossed parameters.
    history : xarray.Dataset
        ``loss`` (epoch) and ``exponents`` (epoch, exponent: the mean over the
        epoch's trajectories, before the step), ``nonfinite`` (epoch), with
        provenance.  A non-finite evaluation stops the run (``status`` attribute).
    """
    import xarray as xr

    from .. import io
    from ..training.optim import Adam

    flossing = Flossing() if flossing is None else flossing
    theta = model.check_theta(theta0, "theta0").copy()
    n_epochs = V.positive_int(n_epochs, "n_epochs")
    if flossing.k > model.dim:
        raise ValueError(f"flossing.k must be <= the state dimension {model.dim}; got {flossing.k}")
    opt = Adam(flossing.lr) if optimizer is None else optimizer
    rng = np.random.default_rng(seed)
    losses, lams, bad = [], [], []
    status = "completed"
    try:
        for _ in range(n_epochs):
            res = flossing.loss_and_grad(model, theta, rng)
            losses.append(res.loss)
            lams.append(res.exponents.mean(axis=0))
            bad.append(int(not res.finite))
            if not res.finite:
                status = "diverged"
                break
            opt.step(theta, res.grad)
    except KeyboardInterrupt:
        status = "interrupted"
    n = len(losses)
    ds = xr.Dataset(
        {
            "loss": ("epoch", np.asarray(losses, float), {"long_name": "flossing loss", "units": "1"}),
            "exponents": (("epoch", "exponent"), np.asarray(lams, float).reshape(n, flossing.k),
                          {"long_name": "finite-time Lyapunov exponents (mean over the epoch's trajectories)",
                           "units": "1/step (natural log)"}),
            "nonfinite": ("epoch", np.asarray(bad, np.int8), {"long_name": "1 if the evaluation diverged",
                                                              "units": "1"}),
            "theta": ("param", theta.copy(), {"long_name": "parameters after flossing", "units": "1"}),
        },
        coords={"epoch": ("epoch", np.arange(n), {"long_name": "flossing epoch", "units": "1"}),
                "exponent": ("exponent", np.arange(1, flossing.k + 1), {"long_name": "exponent index", "units": "1"}),
                "param": ("param", np.asarray(model.param_names(), dtype=str), {"long_name": "parameter name"})},
        attrs=io.provenance("plrnn_numba.dynamics.floss", {"model": model.describe(), "flossing": flossing,
                                                           "n_epochs": n_epochs}, seeds=seed),
    )
    ds.attrs["status"] = status
    return theta, ds


@dataclass(frozen=True)
class FlossingResult:
    """Result of :func:`flossing_loss_and_grad`.

    Attributes
    ----------
    loss : float
        ``mean_b sum_i (lambda_i - target)^2``.
    grad : (P,) array
        Its exact gradient with respect to ``theta``.
    exponents : (B, k) array
        The finite-time exponent estimates (natural log per step).
    grad_z0 : (B, M) array
        Gradient with respect to the initial states of the segment.
    finite : bool
        False when the trajectory, the exponents or the gradient are not finite.
    """

    loss: float
    grad: np.ndarray
    exponents: np.ndarray
    grad_z0: np.ndarray
    finite: bool


def flossing_loss_and_grad(
    model: Model,
    theta,
    k: int,
    target: float = 0.0,
    *,
    z0=None,
    n_steps: int = 55,
    t_ons: int = 1,
    n_transient: int = 0,
    inputs=None,
    q0=None,
    seed: int | None = 0,
) -> FlossingResult:
    """Flossing loss ``sum_i (lambda_i - target)^2`` of the first ``k`` exponents and its exact gradient.

    Parameters
    ----------
    model : Model
        A model whose kernels include ``jacobian_vjp`` (PLRNN, ShallowPLRNN,
        VanillaRNN, or a user model that provides it).
    theta : (P,) array
    k : int
        Number of exponents (1 <= k <= M).
    target : float
        Target value of every exponent.
    z0 : (M,) or (B, M) array, optional
        Initial states (default: one N(0, 1) state from ``seed``).  With
        ``n_transient > 0`` the model first runs that many steps from ``z0``
        (not differentiated).
    n_steps : int
        Length T of the differentiated segment.
    t_ons : int
        Steps between QR reorthonormalisations.
    inputs : (T', K) or (B, T', K) array, optional
        Inputs for the transient and the segment (``T' = n_transient + n_steps``).
    q0 : (M, k) array, optional
        Initial orthonormal system (default: random from ``seed``).

    Returns
    -------
    FlossingResult
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a plrnn_numba model; got {type(model).__name__}")
    theta = model.check_theta(theta)
    M, K = model.dim, model.n_inputs
    k = V.positive_int(k, "k")
    if k > M:
        raise ValueError(f"k must be <= the state dimension {M}; got {k}")
    target = V.finite_float(target, "target")
    n_steps = V.positive_int(n_steps, "n_steps")
    t_ons = V.positive_int(t_ons, "t_ons")
    n_transient = V.positive_int(n_transient, "n_transient", minimum=0)
    kern = model.kernels
    if kern.jacobian_vjp is None:
        raise TypeError(
            f"{model.name} has no jacobian_vjp kernel, which the gradient of Lyapunov exponents needs; "
            "add one with plrnn_numba.models.jacobian_vjp_kernel"
        )
    rng = np.random.default_rng(seed)
    Z0 = rng.standard_normal((1, M)) if z0 is None else V.as_state(z0, M, "z0")
    Z0 = Z0[None, :] if Z0.ndim == 1 else Z0
    B = Z0.shape[0]
    n_total = n_transient + n_steps
    s = V.input_stream(inputs, B, n_total, K, "n_transient + n_steps steps")
    if n_transient:
        Z0 = model.simulate(theta, Z0, inputs=s[:, :n_transient] if K else None, n_steps=None if K else n_transient)[
            :, -1
        ]
        if not np.all(np.isfinite(Z0)):
            return FlossingResult(
                float("nan"), np.full(model.n_params, np.nan), np.full((B, k), np.nan), np.full((B, M), np.nan), False
            )
    # one initial tangent system shared by the batch (drawn from ``seed`` unless given)
    q0_one, _ = initial_tangents("random" if q0 is None else q0, 1, M, k, rng)
    Q0 = V.carray(np.broadcast_to(q0_one[0], (B, M, k)))
    S = V.carray(np.transpose(s[:, n_transient:], (1, 0, 2)))
    p = model_params(model, theta)
    addr = kern.addresses()
    lam = np.empty((B, k))
    gp = np.zeros(p.size)
    gz0 = np.empty((B, M))
    config.prepare_engines()
    with np.errstate(all="ignore"):
        try:
            loss = _flossing_kernel(
                addr.step,
                addr.state_vjp,
                addr.param_vjp,
                addr.jacobian,
                addr.jacobian_vjp,
                p,
                model.meta,
                V.carray(Z0),
                S,
                Q0,
                t_ons,
                target,
                lam,
                gp,
                gz0,
            )
        except np.linalg.LinAlgError:
            # a non-finite tangent matrix reached the QR factorisation: the run diverged
            return FlossingResult(
                float("nan"), np.full(model.n_params, np.nan), np.full((B, k), np.nan), np.full((B, M), np.nan), False
            )
    grad = np.asarray(model.reduce_grad(gp))
    finite = bool(np.isfinite(loss) and np.all(np.isfinite(grad)))
    return FlossingResult(float(loss), grad, lam, gz0, finite)
