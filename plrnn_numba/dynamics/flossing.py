"""Gradient flossing: the exact gradient of Lyapunov exponents, by hand.

Gradient flossing (Engelken (2023), "Gradient flossing: improving gradient
descent through dynamic control of Jacobians") drives the first ``k``
finite-time Lyapunov exponents of a network towards a target by gradient
descent on the loss below, before task training (:func:`floss`) or in
episodes during it (:class:`FlossingEpisodes`, a hook of
:func:`plrnn_numba.train`).

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

The optimisers come from the neutral :mod:`plrnn_numba.optim`: flossing and
task training share them without depending on each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import xarray as xr
from numba import prange, types
from numpy.typing import ArrayLike

from .. import _validate as V
from .. import config, io
from .._interrupt import interrupt_behind
from ..models.base import (
    Model,
    call_param_vjp,
    call_state_vjp,
    call_step,
    check_model,
    check_precision,
    model_params,
    tangent_addresses,
)
from ..optim import Adam, as_optimizer
from ..simulate import simulate
from ._blas import solve_right_upper_transposed
from ._tangents import QR_LOOP_MAX, initial_tangents, qr_positive, tangent_product, tangent_pullback

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i8 = types.int64

_FLOSS_SIG = types.float64(
    _i8,
    _i8,
    _i8,
    _i8,
    _i8,
    _i8,
    _i8,  # kernel addresses: step, state_vjp, param_vjp, jacobian, jacobian_vjp, tangent, tangent_vjp
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

# float32 mode: parameters, trajectory, inputs, tangent system and both gradients in float32 (the
# kernels' precision); the sums of log R_ii, the exponents and the loss stay float64
_FLOSS_SIG32 = types.float64(
    *_FLOSS_SIG.args[:7],
    types.float32[::1],
    _FLOSS_SIG.args[8],
    types.float32[:, ::1],
    types.float32[:, :, ::1],
    types.float32[:, :, ::1],
    *_FLOSS_SIG.args[12:15],
    types.float32[::1],
    types.float32[:, ::1],
)
_FLOSS_SIGS = {"float64": _FLOSS_SIG, "float32": _FLOSS_SIG32}


@config.njit(inline="always")
def _qr_pullback_loops(Q, R, Qbar, rbar):
    # the same as _qr_pullback in loops, for a few columns (no BLAS calls or temporaries)
    M, k = Q.shape
    if k == 1:
        # one exponent: Mx = R rbar - Qbar . Q is a scalar; two contiguous (vectorised) passes
        dot = 0.0
        for m in range(M):
            dot += Qbar[m, 0] * Q[m, 0]
        c = R[0, 0] * rbar[0] - dot
        X = np.empty((M, 1), Q.dtype)
        for m in range(M):
            X[m, 0] = (Qbar[m, 0] + Q[m, 0] * c) / R[0, 0]
        return X
    Mx = np.zeros((k, k), Q.dtype)
    for m in range(M):
        for i in range(k):
            qb = Qbar[m, i]
            for j in range(i + 1):
                Mx[i, j] -= qb * Q[m, j]
    for j in range(k):
        Mx[j, j] += R[j, j] * rbar[j]
        for i in range(j):
            Mx[i, j] = Mx[j, i]
    X = np.empty((M, k), Q.dtype)
    for m in range(M):
        for j in range(k):
            v = Qbar[m, j]
            for i in range(k):
                v += Q[m, i] * Mx[i, j]
            X[m, j] = v
        # X R^T = (Qbar + Q Mx): back substitution along the row
        for j in range(k - 1, -1, -1):
            v = X[m, j]
            for i in range(j + 1, k):
                v -= X[m, i] * R[j, i]
            X[m, j] = v / R[j, j]
    return X


@config.njit
def _qr_pullback(Q, R, Qbar, rbar):
    # Abar = (Qbar + Q copyltu(R Rbar^T - Qbar^T Q)) R^{-T} for a diagonal Rbar = diag(rbar)
    # (the loss depends on R only through its diagonal): R Rbar^T = R diag(rbar)
    M, k = Q.shape
    if k <= QR_LOOP_MAX:
        return _qr_pullback_loops(Q, R, Qbar, rbar)
    Mx = -(Qbar.T @ Q)
    for i in range(k):
        for j in range(i, k):
            Mx[i, j] += R[i, j] * rbar[j]
    for i in range(k):
        for j in range(i + 1, k):
            Mx[i, j] = Mx[j, i]
    # X = (Qbar + Q Mx) R^{-T}: one BLAS triangular solve, in place
    X = Qbar + Q @ Mx
    solve_right_upper_transposed(R, X)
    return X


@config.njit
def _floss_one(b, step, svjp, pvjp, jac, jvjp, tan, tvjp, p, meta, Z0, S, Q0, t_ons, target, lam, gp, gz0):
    # one trajectory b: writes lam[b], gz0[b], adds its parameter gradient to gp, returns its loss term
    B, M = Z0.shape
    T = S.shape[0]
    K = S.shape[2]
    k = Q0.shape[2]
    dt = Z0.dtype  # the kernels' precision (float64 or float32); the log sums stay float64
    J = np.empty((M, M), dt)
    Sb = np.ascontiguousarray(S[:, b, :])
    zs = np.empty((T + 1, M), dt)
    zs[0] = Z0[b]
    Ys = np.empty((T + 1, M, k), dt)
    Ys[0] = Q0[b]
    Rs = np.zeros((T, k, k), dt)
    is_qr = np.zeros(T, dtype=np.bool_)
    logs = np.zeros(k)
    for t in range(T):
        s2 = Sb[t].reshape((1, K))
        Y = tangent_product(jac, tan, p, meta, zs[t], Sb[t], J, Ys[t])
        call_step(step, p, meta, zs[t].reshape((1, M)), s2, zs[t + 1].reshape((1, M)))
        if (t + 1) % t_ons == 0 or t == T - 1:
            Q, R = qr_positive(Y)
            for i in range(k):
                logs[i] += np.log(R[i, i])
            Ys[t + 1] = Q
            Rs[t] = R
            is_qr[t] = True
        else:
            Ys[t + 1] = Y
    loss = 0.0
    for i in range(k):
        lam[b, i] = logs[i] / T
        d = lam[b, i] - target
        loss += d * d / B
    # backward
    lbar = np.empty(k)
    for i in range(k):
        lbar[i] = 2.0 * (lam[b, i] - target) / B
    Ybar = np.zeros((M, k), dt)
    zbar = np.zeros((1, M), dt)
    gzF = np.empty((1, M), dt)
    gzJ = np.empty(M, dt)
    G = np.empty((T, M), dt)
    rbar = np.empty(k, dt)
    for t in range(T - 1, -1, -1):
        if is_qr[t]:
            R = Rs[t]
            for i in range(k):
                rbar[i] = lbar[i] / (T * R[i, i])
            Abar = _qr_pullback(Ys[t + 1], R, Ybar, rbar)
        else:
            Abar = Ybar
        Ybar = tangent_pullback(jac, jvjp, tvjp, p, meta, zs[t], Sb[t], J, Ys[t], Abar, gzJ, gp)
        G[t] = zbar[0]
        call_state_vjp(svjp, p, meta, zs[t].reshape((1, M)), Sb[t].reshape((1, K)), zbar, gzF)
        for m in range(M):
            zbar[0, m] = gzF[0, m] + gzJ[m]
    call_param_vjp(pvjp, p, meta, np.ascontiguousarray(zs[:T]), Sb, G, gp)
    gz0[b] = zbar[0]
    return loss


@config.jit(_FLOSS_SIG)
def _flossing_kernel(step, svjp, pvjp, jac, jvjp, tan, tvjp, p, meta, Z0, S, Q0, t_ons, target, lam, gp, gz0):
    loss = 0.0
    for b in range(Z0.shape[0]):
        loss += _floss_one(b, step, svjp, pvjp, jac, jvjp, tan, tvjp, p, meta, Z0, S, Q0, t_ons, target, lam, gp, gz0)
    return loss


# the trajectories in parallel: one gradient accumulator per trajectory, summed in order (so the
# result does not depend on the thread schedule)
@config.jit(_FLOSS_SIG, parallel=True)
def _flossing_kernel_parallel(step, svjp, pvjp, jac, jvjp, tan, tvjp, p, meta, Z0, S, Q0, t_ons, target, lam, gp,
                              gz0):
    B = Z0.shape[0]
    gps = np.zeros((B, gp.shape[0]), gp.dtype)
    losses = np.zeros(B)
    for b in prange(B):
        losses[b] = _floss_one(b, step, svjp, pvjp, jac, jvjp, tan, tvjp, p, meta, Z0, S, Q0, t_ons, target, lam,
                               gps[b], gz0)
    loss = 0.0
    for b in range(B):
        loss += losses[b]
        gp += gps[b]
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
    dtype : {"float64", "float32"}
        Precision of the flossing engine (:func:`flossing_loss_and_grad`); the
        parameters and the optimiser stay float64.
    """

    k: int = 1
    target: float = 0.0
    n_steps: int = 55
    n_transient: int = 20
    t_ons: int = 1
    batch: int = 1
    lr: float = 1e-3
    input_prob: float = 0.5
    dtype: str = "float64"

    def __post_init__(self):
        V.positive_int(self.k, "k")
        V.finite_float(self.target, "target")
        V.positive_int(self.n_steps, "n_steps")
        V.positive_int(self.n_transient, "n_transient", minimum=0)
        V.positive_int(self.t_ons, "t_ons")
        V.positive_int(self.batch, "batch")
        V.finite_float(self.lr, "lr", low=0.0)
        V.finite_float(self.input_prob, "input_prob", 0.0, 1.0)
        object.__setattr__(self, "dtype", check_precision(None, self.dtype))

    def sample(self, model: Model, rng: np.random.Generator):
        """Random initial states and (for driven models) input bits for one flossing step.

        Parameters
        ----------
        model : Model
            The model.
        rng : numpy.random.Generator
            Draws the states and inputs.

        Returns
        -------
        z0 : (batch, M) array
            Initial states, N(0, 1).
        inputs : (batch, n_transient + n_steps, K) array or None
            Bernoulli(``input_prob``) input bits; None for an autonomous model.
        """
        z0 = rng.standard_normal((self.batch, model.dim))
        inputs = None
        if model.n_inputs:
            n = self.n_transient + self.n_steps
            inputs = (rng.random((self.batch, n, model.n_inputs)) < self.input_prob).astype(np.float64)
        return z0, inputs

    def loss_and_grad(self, model: Model, theta, rng: np.random.Generator) -> FlossingResult:
        """One flossing evaluation on fresh random trajectories drawn from ``rng``.

        Parameters
        ----------
        model : Model
            The model.
        theta : (P,) array
            Its parameters.
        rng : numpy.random.Generator
            Draws the trajectories (:meth:`sample`) and the initial tangent system.

        Returns
        -------
        FlossingResult
            The loss, its gradient and the exponents.
        """
        z0, inputs = self.sample(model, rng)
        # an int drawn from the same stream seeds the random initial tangent system
        return flossing_loss_and_grad(model, theta, self.k, self.target, z0=z0, n_steps=self.n_steps,
                                      t_ons=self.t_ons, n_transient=self.n_transient, inputs=inputs,
                                      seed=int(rng.integers(2**31)), dtype=self.dtype)

    def check(self, model: Model) -> None:
        """Check that these settings fit ``model``.

        Parameters
        ----------
        model : Model
            The model to be flossed.

        Raises
        ------
        ValueError
            If ``k`` exceeds the state dimension.
        TypeError
            If the model has no kernels of ``dtype``.
        """
        check_precision(model, self.dtype)
        if self.k > model.dim:
            raise ValueError(
                f"flossing.k must be <= the state dimension {model.dim}; got {self.k} (use Flossing(k=...))"
            )


def _flossing_steps(
    flossing: Flossing,
    model: Model,
    theta: np.ndarray,
    optimizer,
    rng: np.random.Generator,
    n_steps: int,
    record: Callable[[FlossingResult], None],
) -> bool:
    """``n_steps`` optimiser steps on the flossing loss, ``theta`` updated in place.

    Each evaluation is passed to ``record`` before its step.  Returns False at
    the first non-finite evaluation (no step is taken from it).
    """
    for _ in range(n_steps):
        res = flossing.loss_and_grad(model, theta, rng)
        record(res)
        if not res.finite:
            return False
        optimizer.step(theta, res.grad)
    return True


def floss(model: Model, theta: ArrayLike, n_epochs: int, flossing: Flossing | None = None, *,
          seed: int | np.random.Generator | None = 0, optimizer=None) -> tuple[np.ndarray, xr.Dataset]:
    """Gradient flossing on its own (e.g. preflossing before task training).

    Minimises the flossing loss

    .. math::  L = \\frac{1}{B} \\sum_b \\sum_{i=1}^{k} (\\lambda_i^{(b)} - \\lambda^*)^2

    of the first ``k`` exponents by optimiser steps on fresh random
    trajectories, one step per epoch (Engelken 2023).

    Parameters
    ----------
    model : Model
        A model with a ``jacobian_vjp`` kernel.
    theta : (P,) array
        Initial parameters (not modified).
    n_epochs : int
        Number of flossing steps.
    flossing : Flossing, optional
        Settings (default ``Flossing()``).
    seed : int, None or numpy.random.Generator
        Seeds the trajectories; the int that repeats the run is recorded in
        the ``seeds`` attribute.
    optimizer : SGD, Adam or AdamW, optional
        Default ``Adam(flossing.lr)``.

    Returns
    -------
    theta : (P,) array
        The flossed parameters.
    history : xarray.Dataset
        ``loss`` (epoch) and ``exponents`` (epoch, exponent: the mean over the
        epoch's trajectories, before the step), ``nonfinite`` (epoch), with
        provenance.  A non-finite evaluation stops the run (``status`` attribute).
    """
    check_model(model)
    flossing = Flossing() if flossing is None else flossing
    if not isinstance(flossing, Flossing):
        raise TypeError(f"flossing must be Flossing(...) settings; got {type(flossing).__name__}")
    theta = model.check_theta(theta).copy()
    n_epochs = V.positive_int(n_epochs, "n_epochs")
    flossing.check(model)
    opt = as_optimizer(Adam(flossing.lr) if optimizer is None else optimizer)
    rng, recorded_seed = V.generator(seed)
    losses, lams, bad = [], [], []

    def record(res: FlossingResult) -> None:
        losses.append(res.loss)
        lams.append(res.exponents.mean(axis=0))
        bad.append(int(not res.finite))

    try:
        status = "completed" if _flossing_steps(flossing, model, theta, opt, rng, n_epochs, record) else "diverged"
    except (KeyboardInterrupt, Exception) as exc:
        # Ctrl-C; during a compiled engine call it can surface as a SystemError with the interrupt behind it
        if interrupt_behind(exc) is None:
            raise
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
                                                           "n_epochs": n_epochs}, seeds=recorded_seed),
    )
    ds.attrs["status"] = status
    return theta, ds


class FlossingEpisodes:
    """Episodes of gradient flossing during task training: a hook of :func:`plrnn_numba.train`.

    Before the task step of each listed epoch, ``n_steps`` flossing steps
    (Adam with ``flossing.lr``; one optimiser for all episodes of a run, its
    moments carried from episode to episode) move the parameters towards the
    target exponents (Engelken 2023).  An episode ends early at a non-finite
    evaluation.  The trajectories come from the hook's own random stream,
    spawned from the run's seed.

    The training history then holds every flossing step: ``floss_loss``
    (floss_step), ``floss_exponents`` (floss_step, floss_exponent; the mean
    over the step's trajectories, before the step), the coordinate
    ``floss_epoch`` (floss_step) and the ``flossing`` attribute (the settings
    as JSON).

    Parameters
    ----------
    flossing : Flossing
        The flossing settings.
    episodes : dict or sequence of (epoch, n_steps)
        When and how long: ``{100: 500, 200: 500}`` runs 500 flossing steps
        before epochs 100 and 200.

    Examples
    --------
    >>> hist = pn.train(model, theta, data, n_epochs=300,
    ...                 hooks=[FlossingEpisodes(Flossing(k=75), {100: 500, 200: 500})])  # doctest: +SKIP
    """

    def __init__(self, flossing: Flossing, episodes):
        if not isinstance(flossing, Flossing):
            raise TypeError(f"flossing must be Flossing(...) settings; got {type(flossing).__name__}")
        self.flossing = flossing
        items = episodes.items() if isinstance(episodes, dict) else episodes
        try:
            pairs = [tuple(item) for item in items]
        except TypeError:
            raise TypeError(
                "episodes must be a dict {epoch: n_steps} or a sequence of (epoch, n_steps) pairs; "
                f"got {type(episodes).__name__}"
            ) from None
        self.episodes: dict[int, int] = {}
        for pair in pairs:
            if len(pair) != 2:
                raise ValueError(f"episodes must hold (epoch, n_steps) pairs; got {pair!r}")
            epoch = V.positive_int(pair[0], f"episodes: the epoch of {tuple(pair)!r}", minimum=0)
            self.episodes[epoch] = V.positive_int(pair[1], f"episodes: the n_steps of {tuple(pair)!r}")
        self._reset()

    def _reset(self) -> None:
        self._optimizer = None
        self._loss: list[float] = []
        self._exponents: list[np.ndarray] = []
        self._epochs: list[int] = []

    def start(self, state) -> None:
        """Hook: a new run (forget the previous run's records and optimiser; check ``k``).

        Parameters
        ----------
        state : HookState
            The run's state.
        """
        self.flossing.check(state.model)
        self._reset()

    def before_epoch(self, state) -> None:
        """Hook: run this epoch's flossing steps on ``state.theta`` (in place).

        Parameters
        ----------
        state : HookState
            The run's state; ``state.theta`` is updated in place.
        """
        n_steps = self.episodes.get(state.epoch)
        if not n_steps:
            return
        if self._optimizer is None:
            self._optimizer = Adam(self.flossing.lr)

        def record(res: FlossingResult) -> None:
            self._loss.append(res.loss)
            self._exponents.append(res.exponents.mean(axis=0))
            self._epochs.append(state.epoch)

        _flossing_steps(self.flossing, state.model, state.theta, self._optimizer, state.rng, n_steps, record)

    def add_to_history(self, ds: xr.Dataset) -> xr.Dataset:
        """Hook: the flossing record as history variables (nothing if no flossing step ran).

        Parameters
        ----------
        ds : xarray.Dataset
            The training history.

        Returns
        -------
        xarray.Dataset
            ``ds`` with ``floss_loss``, ``floss_exponents`` and ``floss_epoch``.
        """
        if not self._loss:
            return ds
        n = len(self._loss)
        ds["floss_loss"] = ("floss_step", np.asarray(self._loss, float),
                            {"long_name": "gradient-flossing loss", "units": "1"})
        ds["floss_exponents"] = (
            ("floss_step", "floss_exponent"),
            np.asarray(self._exponents, float).reshape(n, self.flossing.k),
            {"long_name": "finite-time Lyapunov exponents during flossing", "units": "1/step (natural log)"},
        )
        ds = ds.assign_coords(
            floss_epoch=("floss_step", np.asarray(self._epochs, np.int64),
                         {"long_name": "training epoch of the flossing step", "units": "1"})
        )
        ds.attrs["flossing"] = io.to_json(self.flossing)
        return ds

    def describe(self) -> dict:
        """JSON-serialisable description (for provenance).

        Returns
        -------
        dict
            The settings and the episodes.
        """
        return {"hook": "FlossingEpisodes", "flossing": self.flossing,
                "episodes": {str(e): n for e, n in sorted(self.episodes.items())}}

    def __repr__(self) -> str:
        return f"FlossingEpisodes({self.flossing!r}, {self.episodes!r})"


@dataclass(frozen=True)
class FlossingResult:
    """Result of :func:`flossing_loss_and_grad`.

    Parameters
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
    seed : int
        The seed of the default initial state and orthonormal system: passing
        it back as ``seed`` repeats the evaluation.
    """

    loss: float
    grad: np.ndarray
    exponents: np.ndarray
    grad_z0: np.ndarray
    finite: bool
    seed: int

    @classmethod
    def diverged(cls, n_params: int, batch: int, k: int, dim: int, seed: int) -> FlossingResult:
        """The result of a run whose trajectory or tangent system became non-finite (all NaN).

        Parameters
        ----------
        n_params : int
            Length P of the gradient.
        batch : int
            Number B of trajectories.
        k : int
            Number of exponents.
        dim : int
            State dimension M.
        seed : int
            The evaluation's seed.

        Returns
        -------
        FlossingResult
            NaN loss, gradients and exponents, ``finite=False``.
        """
        nan = np.nan
        return cls(nan, np.full(n_params, nan), np.full((batch, k), nan), np.full((batch, dim), nan), False, seed)


def flossing_loss_and_grad(
    model: Model,
    theta: ArrayLike,
    k: int,
    target: float = 0.0,
    *,
    z0=None,
    n_steps: int = 55,
    t_ons: int = 1,
    n_transient: int = 0,
    inputs=None,
    q0=None,
    seed: int | np.random.Generator | None = 0,
    n_threads: int | None = None,
    dtype="float64",
) -> FlossingResult:
    """Flossing loss ``sum_i (lambda_i - target)^2`` of the first ``k`` exponents and its exact gradient.

    .. math::

        L = \\frac{1}{B} \\sum_b \\sum_{i=1}^{k} (\\lambda_i^{(b)} - \\lambda^*)^2, \\qquad
        \\lambda_i^{(b)} = \\frac{1}{T} \\sum_{\\text{QR steps}} \\log R_{ii}

    (Engelken 2023; the backward pass is described in the module docstring).

    Parameters
    ----------
    model : Model
        A model whose kernels include ``jacobian_vjp`` (PLRNN, ShallowPLRNN,
        VanillaRNN, or a user model that provides it).
    theta : (P,) array
        Its parameters.
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
    n_transient : int
        Undifferentiated steps from ``z0`` before the segment.
    inputs : (K,), (T', K) or (B, T', K) array, optional
        Inputs for the transient and the segment (``T' = n_transient + n_steps``):
        a constant vector, a stream shared by the batch, or one per batch item.
    q0 : (M, k) array, optional
        Initial orthonormal system (default: random from ``seed``).
    seed : int, None or numpy.random.Generator
        Seeds the default ``z0`` and ``q0``; the int that repeats the
        evaluation is returned as ``FlossingResult.seed``.
    n_threads : int, optional
        The trajectories of the batch run in parallel on this many numba
        threads (default: all of them for a batch with enough work, see
        :func:`plrnn_numba.config.parallel_threads`; 1: serially).  Each
        thread sums its own gradient, and the sums are added in a fixed order.
    dtype : {"float64", "float32"}
        Precision of the trajectory, the tangent system, the QR factorisations
        and the backward pass (float32: models whose ``dtypes`` include it, with
        single-precision BLAS and LAPACK).  The sums of ``log R_ii``, the
        exponents and the loss are accumulated in float64 either way; ``grad``
        and ``grad_z0`` are arrays of ``dtype`` (as in
        :func:`plrnn_numba.loss_and_grad`).  A chaotic trajectory in float32
        separates from the float64 one, so the two agree to float32 rounding
        on short segments and statistically on long ones.

    Returns
    -------
    FlossingResult
        The loss, its gradient, the exponents and whether they are finite.
    """
    check_model(model)
    theta = model.check_theta(theta)
    dtype = check_precision(model, dtype)
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
    if z0 is None or q0 is None:
        rng, recorded_seed = V.generator(seed)
    else:  # nothing random to draw: only the seed to record
        rng, recorded_seed = None, V.seed_value(seed)
    Z0 = rng.standard_normal((1, M)) if z0 is None else V.as_state(z0, M, "z0")
    Z0 = Z0[None, :] if Z0.ndim == 1 else Z0
    B = Z0.shape[0]
    s = V.input_stream(inputs, B, n_transient + n_steps, K, "n_transient + n_steps steps")
    if n_transient:
        Z0 = simulate(model, theta, Z0, n_steps=n_transient, inputs=s[:, :n_transient] if K else None,
                      dtype=dtype)[:, -1]
        if not np.all(np.isfinite(Z0)):
            return FlossingResult.diverged(model.n_params, B, k, M, recorded_seed)
    # one initial tangent system shared by the batch (drawn from ``seed`` unless given)
    q0_one, _ = initial_tangents("random" if q0 is None else q0, 1, M, k, rng)
    Q0 = V.carray(q0_one if B == 1 else np.broadcast_to(q0_one[0], (B, M, k)), dtype)
    S = V.carray(np.transpose(s[:, n_transient:], (1, 0, 2)), dtype)
    p = V.carray(model_params(model, theta), dtype)
    addr = kern.addresses(dtype, jacobian_vjp=True)
    tan = tangent_addresses(model, dtype, tangent_vjp=True)
    lam = np.empty((B, k))
    gp = np.zeros(p.size, dtype)
    gz0 = np.empty((B, M), dtype)
    config.prepare_engines()
    # per step and trajectory: the tangent product and its pullback (about 3 x 2 M^2 k), two QR-sized terms
    n_thr = config.parallel_threads(n_threads, B, B * n_steps * (6.0 * M * M * k + 8.0 * M * k * k))
    engine = (_flossing_kernel if n_thr == 1 else _flossing_kernel_parallel).for_signature(_FLOSS_SIGS[dtype])
    with np.errstate(all="ignore"), config.threads_for(n_thr):
        try:
            loss = engine(
                addr.step,
                addr.state_vjp,
                addr.param_vjp,
                addr.jacobian,
                addr.jacobian_vjp,
                tan.tangent,
                tan.tangent_vjp,
                p,
                model.meta,
                V.carray(Z0, dtype),
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
            return FlossingResult.diverged(model.n_params, B, k, M, recorded_seed)
    grad = np.asarray(model.reduce_grad(gp), dtype)
    finite = bool(math.isfinite(loss) and np.isfinite(grad).all())
    return FlossingResult(float(loss), grad, lam, gz0, finite, recorded_seed)
