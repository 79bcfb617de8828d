"""Analytic backpropagation through time, written once over the model kernels.

Forward pass (step ``t = 1 .. T``, batch item ``b``)::

    z_t   = F(z~_{t-1}, s_t; p)                      (model step kernel)
    y_t   = readout(z_t)                             (identity or B z_t + c; a LatentReadout is the latter)
    L    += m_{bt} * loss(y_t, x_t) / count
    z~_t  = z_t with z~_t[:N] = (1 - a_t) z_t[:N] + a_t x_t[:N]    (forcing)

with ``z~_0 = z_0``.  Backward pass: ``g`` is the adjoint of ``z~_t``;

    gz_t       = dL/dz_t (readout, loss) + P_t^T g,   P_t = diag(1 - a_t on forced, 1 else)
    g          = (dF/dz)(z~_{t-1})^T gz_t             (state_vjp kernel, sequential)
    dL/dp     += (dF/dp)(z~_{t-1})^T gz_t             (param_vjp kernel, once over all t, b)

and ``dL/dz_0 = g`` after the sweep.  The sequential sweep only propagates the
state adjoint; all parameter gradients are reductions over the stored
``(z~_{t-1}, s_t, gz_t)`` done in one call, which lets a model use
matrix-matrix products.  A model that declares a tape (``tape_width`` > 0,
see :mod:`plrnn_numba.models.base`) has its forward step store intermediates
(the LSTM: its gates) in a ``(T, B, tape_width)`` array that both pullbacks
read instead of recomputing them.  The batch is split into chunks processed in
parallel (``prange``) when there is enough work.

A :class:`~plrnn_numba.readouts.LatentReadout` ``y = c (v . z - kappa*)``, whose
``v`` is a slice of ``theta``, runs in the kernels as the linear readout
``B = c v``, ``b = -c kappa*``; :func:`loss_and_grad` then adds
``dL/dv = c dL/dB`` to the gradient of ``theta`` on that slice and returns
``dL/dc = v . dL/dB - kappa* dL/db`` when ``c`` is trained.  The kernels thus
see only the two readouts and the three losses they always had.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import prange, types

from . import _validate as V
from . import config
from ._interrupt import interrupts_surface
from ._validate import carray
from .forcing import as_forcing
from .models.base import (
    Model,
    call_param_vjp,
    call_state_vjp,
    call_step,
    call_tape_param_vjp,
    call_tape_state_vjp,
    call_tape_step,
    check_model,
    check_precision,
    model_params,
    signature_for,
)
from .readouts import LOSSES, IdentityReadout, LatentReadout, LinearReadout, as_readout, readout_slice

__all__ = [
    "Batch",
    "LossGrad",
    "loss_and_grad",
    "predict",
]

_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i8 = types.int64

_BPTT_SIG = types.Tuple((types.float64, _f1, _f1, _f2))(
    _i8,
    _i8,
    _i8,  # kernel addresses: step, state_vjp, param_vjp
    _i8,
    _i8,
    _i8,
    _i8,  # tape kernel addresses (step, state_vjp, param_vjp) and tape width (0: none)
    _f1,
    types.int64[::1],  # p, meta
    _f2,
    _f3,
    _f3,
    _f2,
    _f1,  # z0 (B, M), S (T, B, K), X (T, B, N), mask (T, B), alpha (T,)
    _i8,
    _i8,
    _f1,
    _i8,  # n_forced, readout kind, readout params, loss kind
    types.float64,
    _i8,  # scale (1 / count), n_chunks
)


#: the engines' float32 variant (single-precision mode: arrays in float32, the loss summed in float64)
_BPTT_SIG32 = signature_for(_BPTT_SIG, "float32")
_SIGS = {"float64": _BPTT_SIG, "float32": _BPTT_SIG32}


@config.njit(inline="always")
def _loss_term(y, x, kind):
    # returns (loss, dloss/dy)
    if kind == 0:
        d = y - x
        return d * d, 2.0 * d
    if kind == 2:
        # squared error of the sigmoid output o = sigmoid(y): (o - x)^2, derivative 2 (o - x) o (1 - o)
        # (the two forms of the sigmoid keep exp from overflowing)
        o = 1.0 / (1.0 + np.exp(-y)) if y >= 0.0 else np.exp(y) / (1.0 + np.exp(y))
        d = o - x
        return d * d, 2.0 * d * o * (1.0 - o)
    # binary cross-entropy on logits, numerically stable
    ay = abs(y)
    sp = (y if y > 0.0 else 0.0) + np.log1p(np.exp(-ay))
    sig = 1.0 / (1.0 + np.exp(-y)) if y >= 0.0 else np.exp(y) / (1.0 + np.exp(y))
    return sp - x * y, sig - x


#: rows (steps x batch) of the blocks over which the backward sweep reduces the parameter gradient
_PARAM_ROWS = 256
#: from this size of the states, adjoints and tape (bytes) the parameter gradient is reduced during the
#: backward sweep, and the loss adjoints are not zero-filled first: measured (one thread, same process)
#: 1.16x faster for the PLRNN at M = 32, T = 5000, B = 16 (20 MB), level at T = 200; reducing in the
#: sweep below the limit had cost 2-7% at M = 8, T = 200, B = 16 (0.4 MB), the per-row zeroing 2.5%
_PARAM_SWEEP_BYTES = 1 << 20


@config.njit
def _chunk(step, svjp, pvjp, tstep, tsvjp, tpvjp, width, p, meta, z0, S, X, mask, alpha, n_forced, ro_kind, ro,
           loss_kind, scale, gp, gro):
    T, B, K = S.shape
    M = z0.shape[1]
    N = X.shape[2]
    Zt = np.empty((T + 1, B, M), z0.dtype)  # forced states z~_0 .. z~_T (inputs of each step)
    tape = np.empty((T, B, width), z0.dtype)  # the model's stored intermediates, when it keeps a tape
    # dL/dz_t from the readout and loss, turned in place into the total adjoint gz_t by the
    # backward sweep (one (T, B, M) array instead of two: at T 400, B 100, M 400 each is 128 MB)
    # large arrays are not zero-filled first: every row is written once below (a fill of a few
    # hundred kB costs less than the per-row zeroing, one of tens of MB more)
    fill = T * B * M * z0.itemsize > _PARAM_SWEEP_BYTES
    G = np.empty((T, B, M), z0.dtype) if fill else np.zeros((T, B, M), z0.dtype)
    Zt[0] = z0
    yb = np.empty(N)
    dy = np.empty(N)
    loss = 0.0
    for t in range(T):
        zn = Zt[t + 1]
        if width > 0:
            call_tape_step(tstep, p, meta, Zt[t], S[t], zn, tape[t])
        else:
            call_step(step, p, meta, Zt[t], S[t], zn)
        for b in range(B):
            m = mask[t, b]
            if m == 0.0:
                if fill:
                    for j in range(M):
                        G[t, b, j] = 0.0
                continue
            if ro_kind == 0:
                for n in range(N):
                    yb[n] = zn[b, n]
            else:
                for n in range(N):
                    acc = ro[N * M + n]
                    for j in range(M):
                        acc += ro[n * M + j] * zn[b, j]
                    yb[n] = acc
            w = m * scale
            if loss_kind == 3:
                # softmax cross-entropy over the step's outputs: logsumexp(y) - x . y, gradient softmax(y) sum(x) - x
                ymax = yb[0]
                for n in range(1, N):
                    ymax = max(ymax, yb[n])
                se = 0.0
                for n in range(N):
                    se += np.exp(yb[n] - ymax)
                lse = ymax + np.log(se)
                xsum = 0.0
                xy = 0.0
                for n in range(N):
                    xsum += X[t, b, n]
                    xy += X[t, b, n] * yb[n]
                loss += w * (lse * xsum - xy)
                for n in range(N):
                    dy[n] = w * (np.exp(yb[n] - lse) * xsum - X[t, b, n])
            else:
                for n in range(N):
                    lv, dv = _loss_term(yb[n], X[t, b, n], loss_kind)
                    loss += w * lv
                    dy[n] = w * dv
            if ro_kind == 0:
                for n in range(N):
                    G[t, b, n] = dy[n]
                if fill:
                    for j in range(N, M):
                        G[t, b, j] = 0.0
            else:
                if fill:
                    for j in range(M):
                        G[t, b, j] = 0.0
                for n in range(N):
                    dn = dy[n]
                    gro[N * M + n] += dn
                    for j in range(M):
                        G[t, b, j] += ro[n * M + j] * dn
                        gro[n * M + j] += dn * zn[b, j]
            a = alpha[t]
            if a != 0.0:
                for i in range(n_forced):
                    zn[b, i] = (1.0 - a) * zn[b, i] + a * X[t, b, i]
    # backward sweep over the state adjoint
    g = np.zeros((B, M), z0.dtype)
    gnew = np.empty((B, M), z0.dtype)
    # the parameter gradient is reduced during the sweep, over blocks of the steps whose adjoints
    # are final (about _PARAM_ROWS rows) while their states, tape and adjoints are still in cache,
    # when those arrays outgrow the cache; else in one pass at the end (one call: cheaper for
    # small models)
    steps = T
    if T * B * (2 * M + width) * z0.itemsize > _PARAM_SWEEP_BYTES:
        steps = max(1, _PARAM_ROWS // B)
    e = T
    for t in range(T - 1, -1, -1):
        a = alpha[t]
        for b in range(B):
            keep = 1.0 - a if (a != 0.0 and mask[t, b] != 0.0) else 1.0
            for i in range(n_forced):
                G[t, b, i] += keep * g[b, i]
            for i in range(n_forced, M):
                G[t, b, i] += g[b, i]
        if width > 0:
            call_tape_state_vjp(tsvjp, p, meta, Zt[t], S[t], tape[t], G[t], gnew)
        else:
            call_state_vjp(svjp, p, meta, Zt[t], S[t], G[t], gnew)
        g, gnew = gnew, g
        if e - t >= steps or t == 0:
            n = (e - t) * B
            if width > 0:
                call_tape_param_vjp(
                    tpvjp, p, meta, Zt[t:e].reshape((n, M)), S[t:e].reshape((n, K)), tape[t:e].reshape((n, width)),
                    G[t:e].reshape((n, M)), gp
                )
            else:
                call_param_vjp(pvjp, p, meta, Zt[t:e].reshape((n, M)), S[t:e].reshape((n, K)),
                               G[t:e].reshape((n, M)), gp)
            e = t
    return loss, g


@config.jit(_BPTT_SIG)
def _bptt_serial(step, svjp, pvjp, tstep, tsvjp, tpvjp, width, p, meta, z0, S, X, mask, alpha, n_forced, ro_kind, ro,
                 loss_kind, scale, n_chunks):
    gp = np.zeros(p.shape[0], p.dtype)
    gro = np.zeros(ro.shape[0], ro.dtype)
    loss, gz0 = _chunk(
        step, svjp, pvjp, tstep, tsvjp, tpvjp, width, p, meta, z0, S, X, mask, alpha, n_forced, ro_kind, ro,
        loss_kind, scale, gp, gro
    )
    return loss, gp, gro, gz0


# A separate parallel engine: entering a parallel region costs thread wake-ups
# (and on a busy machine, much more), so small problems use the serial one.
@config.jit(_BPTT_SIG, parallel=True)
def _bptt_parallel(step, svjp, pvjp, tstep, tsvjp, tpvjp, width, p, meta, z0, S, X, mask, alpha, n_forced, ro_kind,
                   ro, loss_kind, scale, n_chunks):
    B = z0.shape[0]
    M = z0.shape[1]
    P = p.shape[0]
    R = ro.shape[0]
    losses = np.zeros(n_chunks)
    gps = np.zeros((n_chunks, P), p.dtype)
    gros = np.zeros((n_chunks, R), ro.dtype)
    gz0 = np.empty((B, M), z0.dtype)
    for c in prange(n_chunks):
        b0 = (c * B) // n_chunks
        b1 = ((c + 1) * B) // n_chunks
        if b1 > b0:
            lc, gc = _chunk(
                step,
                svjp,
                pvjp,
                tstep,
                tsvjp,
                tpvjp,
                width,
                p,
                meta,
                np.ascontiguousarray(z0[b0:b1]),
                np.ascontiguousarray(S[:, b0:b1, :]),
                np.ascontiguousarray(X[:, b0:b1, :]),
                np.ascontiguousarray(mask[:, b0:b1]),
                alpha,
                n_forced,
                ro_kind,
                ro,
                loss_kind,
                scale,
                gps[c],
                gros[c],
            )
            losses[c] = lc
            gz0[b0:b1] = gc
    loss = 0.0
    gp = np.zeros(P, p.dtype)
    gro = np.zeros(R, ro.dtype)
    for c in range(n_chunks):
        loss += losses[c]
        gp += gps[c]
        gro += gros[c]
    return loss, gp, gro, gz0


@dataclass(frozen=True)
class Batch:
    """A batch of sequences for training or evaluation.

    Parameters
    ----------
    targets : (B, T, N) array
        Observations ``x_1 .. x_T`` the readout should produce.
    inputs : (K,), (T, K) or (B, T, K) array, or None
        External inputs ``s_1 .. s_T``: a constant vector, a stream shared by
        every sequence of the batch, or one stream per sequence (broadcast to
        the batch when the model runs).  None for a model without inputs.
    z0 : (B, M) array or None
        Initial latent states.  If None: ``[x0, 0, ..., 0]`` when ``x0`` is
        given (identity readout convention), else zeros.
    x0 : (B, N) array or None
        The observation preceding ``targets[:, 0]`` (used to build ``z0``).
    mask : (B, T) array or None
        Weight of each time step in the loss (0 = not counted, and no forcing
        at that step).  Default: all ones.
    """

    targets: np.ndarray
    inputs: np.ndarray | None = None
    z0: np.ndarray | None = None
    x0: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self):
        # What can be checked without a model is checked here, so a bad batch
        # fails where it is made; model-dependent shapes are checked when it is used.
        X = V.as_float_array(self.targets, "targets")
        if X.ndim != 3 or 0 in X.shape:
            raise ValueError(
                f"targets must have shape (batch, time, n_obs) with every size >= 1; got {X.shape}"
                + (" (a single sequence: add a batch axis, targets[None])" if X.ndim == 2 else "")
            )
        V.check_finite(X, "targets")
        B, T, N = X.shape
        object.__setattr__(self, "targets", X)
        if self.inputs is not None:
            s = V.as_float_array(self.inputs, "inputs")
            if not (s.ndim == 1 or (s.ndim == 2 and s.shape[0] == T) or (s.ndim == 3 and s.shape[:2] == (B, T))):
                raise ValueError(f"inputs must have shape (K,), ({T}, K) or ({B}, {T}, K); got {s.shape}")
            V.check_finite(s, "inputs")
            object.__setattr__(self, "inputs", s)
        if self.z0 is not None:
            z0 = V.as_float_array(self.z0, "z0")
            if not (z0.ndim == 1 or (z0.ndim == 2 and z0.shape[0] == B)) or z0.shape[-1] == 0:
                raise ValueError(f"z0 must have shape (M,) or ({B}, M); got {z0.shape}")
            V.check_finite(z0, "z0")
            object.__setattr__(self, "z0", z0)
        if self.x0 is not None:
            x0 = V.as_float_array(self.x0, "x0")
            if x0.shape != (B, N):
                raise ValueError(f"x0 must have shape ({B}, {N}) (batch, n_obs); got {x0.shape}")
            V.check_finite(x0, "x0")
            object.__setattr__(self, "x0", x0)
        if self.mask is not None:
            mk = V.as_float_array(self.mask, "mask")
            if mk.shape not in {(B, T), (T,)}:
                raise ValueError(f"mask must have shape ({B}, {T}) or ({T},); got {mk.shape}")
            V.check_finite(mk, "mask")
            if mk.min() < 0:
                raise ValueError("mask must be non-negative (0 = step not counted)")
            object.__setattr__(self, "mask", mk)

    @classmethod
    def from_sequences(cls, sequences, inputs=None, mask=None) -> Batch:
        """Batch from observed sequences ``x_0 .. x_T`` of shape (B, T + 1, N).

        ``x_0`` initialises the latent state; ``x_1 .. x_T`` are the targets.

        Parameters
        ----------
        sequences : (B, T + 1, N) array
            Observed sequences, ``T >= 1``.
        inputs : (K,), (T, K) or (B, T, K) array, optional
            External inputs ``s_1 .. s_T`` (see :class:`Batch`).
        mask : (B, T) or (T,) array, optional
            Weight of each target step in the loss (see :class:`Batch`).

        Returns
        -------
        Batch
            ``targets = sequences[:, 1:]`` and ``x0 = sequences[:, 0]``.
        """
        seq = V.as_float_array(sequences, "sequences")
        if seq.ndim != 3 or seq.shape[1] < 2 or 0 in seq.shape:
            raise ValueError(f"sequences must have shape (batch >= 1, time >= 2, n_obs >= 1); got {seq.shape}")
        V.check_finite(seq, "sequences")
        return cls(targets=seq[:, 1:], inputs=inputs, x0=seq[:, 0], mask=mask)

    @property
    def size(self) -> int:
        """Number of sequences ``B``."""
        return int(np.shape(self.targets)[0])

    @property
    def n_steps(self) -> int:
        """Number of target steps ``T``."""
        return int(np.shape(self.targets)[1])


@dataclass(frozen=True)
class LossGrad:
    """Result of :func:`loss_and_grad`.

    Parameters
    ----------
    loss : float
        The loss.
    grad : (P,) array
        Gradient with respect to the model's ``theta``.
    grad_readout : array
        Gradient with respect to the readout parameters.
    grad_z0 : (B, M) array
        Gradient with respect to the initial states.
    finite : bool
        False when the loss or a gradient is NaN/inf (diverged).
    """

    loss: float
    grad: np.ndarray
    grad_readout: np.ndarray
    grad_z0: np.ndarray
    finite: bool


def _prepare(model: Model, batch: Batch, readout, readout_params, loss: str, forcing, alpha_epoch, theta):
    check_model(model)
    if not isinstance(batch, Batch):
        raise TypeError("batch must be a plrnn_numba.Batch (see Batch.from_sequences)")
    M, K = model.dim, model.n_inputs
    readout = as_readout(readout, M)
    V.choice(loss, "loss", LOSSES)
    X = V.as_float_array(batch.targets, "batch.targets")
    if X.ndim != 3:
        raise ValueError(f"batch.targets must have shape (batch, time, n_obs); got {X.shape}")
    B, T, N = X.shape
    if B == 0 or T == 0:
        raise ValueError(f"batch.targets must hold at least one sequence and one step; got shape {X.shape}")
    if isinstance(readout, IdentityReadout) and readout.n_obs is None and N > M:
        raise ValueError(
            f"batch.targets has {N} observed channels, more than the model's {M} latent states; "
            "use a larger model or a LinearReadout"
        )
    n_out = readout.n_out(M, N) if isinstance(readout, IdentityReadout) else readout.n_out
    if N != n_out:
        raise ValueError(f"batch.targets has {N} observed channels but the readout produces {n_out}")
    V.check_finite(X, "batch.targets")
    if loss == "bce" and (X.min() < 0 or X.max() > 1):
        raise ValueError("batch.targets must lie in [0, 1] for loss='bce'")
    S = carray(np.transpose(_batch_inputs(batch.inputs, B, T, K), (1, 0, 2)))
    if batch.mask is None:
        mask = np.ones((T, B))
    else:
        mk = V.as_float_array(batch.mask, "batch.mask")
        if mk.shape == (T,):
            mk = np.broadcast_to(mk, (B, T))
        if mk.shape != (B, T):
            raise ValueError(f"batch.mask must have shape ({B}, {T}) or ({T},); got {mk.shape}")
        V.check_finite(mk, "batch.mask")
        if mk.min() < 0:
            raise ValueError("batch.mask must be non-negative")
        mask = carray(mk.T)
    if batch.z0 is not None:
        z0 = V.as_float_array(batch.z0, "batch.z0")
        if z0.shape == (M,):
            z0 = np.broadcast_to(z0, (B, M))
        if z0.shape != (B, M):
            raise ValueError(f"batch.z0 must have shape ({B}, {M}) or ({M},); got {z0.shape}")
        V.check_finite(z0, "batch.z0")
    else:
        z0 = np.zeros((B, M))
        if batch.x0 is not None:
            x0 = V.as_float_array(batch.x0, "batch.x0")
            if x0.shape != (B, N) or not isinstance(readout, IdentityReadout):
                raise ValueError(f"batch.x0 must have shape ({B}, {N}) and needs an identity readout; got {x0.shape}")
            V.check_finite(x0, "batch.x0")
            z0[:, :N] = x0
    forcing = as_forcing(forcing)
    alpha = carray(forcing.alphas(T, alpha_epoch, model, theta))
    if np.any(alpha != 0.0):
        if not isinstance(readout, IdentityReadout):
            raise ValueError(
                "teacher forcing replaces observed latent states by data and needs an identity readout "
                "(IdentityReadout); use forcing=None with a LinearReadout"
            )
        n_forced = N if forcing.n_forced is None else forcing.n_forced
        if not 0 <= n_forced <= N:
            raise ValueError(f"forcing.n_forced must be in [0, {N}] (observed channels); got {n_forced}")
    else:
        n_forced = 0
    tie = None
    if isinstance(readout, LatentReadout):
        # the kernels run it as LinearReadout(1) with B = c v, b = -c kappa* (see the module docstring)
        sl = readout_slice(model)
        ro_own = readout.check_params(readout_params)
        tie = (readout, sl, np.array(theta[sl]), ro_own)
        readout, readout_params = LinearReadout(1), readout.linear_params(theta[sl], ro_own)
    if isinstance(readout, LinearReadout):
        if readout_params is None:
            raise ValueError("readout_params are required for a LinearReadout (readout.init(model.dim, seed))")
        ro = V.as_float_array(readout_params, "readout_params")
        if ro.shape != (readout.n_params(M),):
            raise ValueError(f"readout_params must have shape ({readout.n_params(M)},); got {ro.shape}")
        if tie is None:
            V.check_finite(ro, "readout_params")
        # else: c v and -c kappa* come from a finite theta and checked c; an overflow there is a diverged
        # model (a non-finite loss, flagged by the caller), not a bad readout_params argument
    else:
        if readout_params is not None and np.size(readout_params) != 0:
            raise ValueError(
                "readout_params were given but an identity readout has no parameters; "
                "drop readout_params or pass readout=LinearReadout(n_out)"
            )
        ro = np.zeros(0)
    if loss == "ce":
        if N < 2:
            raise ValueError("loss='ce' (softmax cross-entropy) needs at least two outputs per step; got 1 (use "
                             "loss='bce' for one logit)")
        counted = mask.T != 0.0  # (B, T)
        rows = X[counted]
        if rows.size and (rows.min() < 0 or not np.allclose(rows.sum(axis=1), 1.0, rtol=0, atol=1e-9)):
            raise ValueError("batch.targets must be probability vectors (entries >= 0 summing to 1, e.g. one-hot) "
                             "on every counted step for loss='ce'")
    # the entries' mean; for the softmax cross-entropy, the steps' mean (its terms are per step)
    count = float(mask.sum()) * (1 if loss == "ce" else N)
    if count <= 0:
        raise ValueError("batch.mask counts no time step: nothing to fit")
    return (readout, carray(z0), S, carray(np.transpose(X, (1, 0, 2))), mask, alpha, n_forced, carray(ro), 1.0 / count,
            tie)


def _batch_inputs(inputs, B: int, T: int, K: int) -> np.ndarray:
    """``batch.inputs`` as a (B, T, K) array: the package's one rule for inputs, errors naming ``batch.inputs``."""
    if K == 0 and inputs is not None:
        # an empty stream of the right length carries no input: accepted as before
        if np.shape(inputs) in {(B, T, 0), (T, 0), (0,)}:
            return np.zeros((B, T, 0))
        raise ValueError(
            f"batch.inputs must have shape ({B}, {T}, 0) or be None: the model has no inputs (n_inputs=0); "
            f"drop batch.inputs (got shape {np.shape(inputs)})"
        )
    return V.input_stream(inputs, B, T, K, "time steps of batch.targets", name="batch.inputs")


def _auto_chunks(model: Model, B: int, T: int, n_threads: int | None) -> int:
    """Number of batch chunks processed in parallel.

    ``n_threads=None``: all numba threads, but only for large problems;
    an explicit ``n_threads`` splits into ``min(n_threads, B)`` chunks.
    """
    if n_threads is not None:
        return int(min(V.positive_int(n_threads, "n_threads"), max(B, 1)))
    nt = config.get_num_threads()
    work = B * T * model.dim * max(model.dim, 8)
    if nt <= 1 or B < 2 or work < config.BPTT_PARALLEL_MIN_WORK:
        return 1
    return int(min(nt, B))


def loss_and_grad(
    model: Model,
    theta,
    batch: Batch,
    *,
    readout=None,
    readout_params=None,
    loss: str = "mse",
    forcing=None,
    epoch: int = 0,
    n_threads: int | None = None,
    dtype="float64",
) -> LossGrad:
    """Loss and its exact gradient by backpropagation through time.

    Parameters
    ----------
    model : Model
        Any plrnn_numba model (PLRNN, ShallowPLRNN, VanillaRNN or your own).
    theta : (P,) array
        Model parameters.
    batch : Batch
        Targets, inputs, initial states and mask.
    readout : IdentityReadout, LinearReadout or LatentReadout, optional
        Observation model (default: identity on all latent states).  A
        :class:`~plrnn_numba.LatentReadout` reads the model's own readout
        vector (e.g. ``n`` of a low-rank RateRNN): its gradient is part of
        ``grad``.
    readout_params : array, optional
        Parameters of a linear readout; ``[c]`` of a LatentReadout with
        ``train_c=True`` (default ``[readout.c]``).
    loss : {"mse", "bce", "sigmoid_mse", "ce"}
        Mean squared error of the readout ``y``; binary cross-entropy on
        logits ``y``; squared error of the sigmoid output,
        ``sum_{b,t,n} m_bt (sigmoid(y) - x)^2 / sum_{b,t,n} m_bt``; or
        softmax cross-entropy over the outputs of each step (targets:
        probability vectors), averaged over the counted steps.
    forcing : None, float, FreeRunning, SparseTF or GTF
        Teacher forcing applied in the forward pass (and differentiated).
    epoch : int
        Passed to an alpha schedule of GTF.
    n_threads : int, optional
        Split the batch into this many chunks processed by parallel threads.
        Default: numba's thread count for large problems
        (``config.BPTT_PARALLEL_MIN_WORK``), one thread otherwise.
    dtype : {"float64", "float32"}
        Precision of the forward and backward pass.  ``"float32"`` (models
        whose ``dtypes`` include it: PLRNN, VanillaRNN, LSTM) runs the same
        kernels compiled for float32 arrays, with single-precision BLAS
        products; the loss is summed in float64, and ``grad``, ``grad_readout``
        and ``grad_z0`` are float32 arrays.  Parameters stay float64 outside
        the call (cast on entry), so a training run keeps float64 master
        weights.  Expect relative differences of about 1e-6 per step from
        float64, growing with T on chaotic trajectories.

    Returns
    -------
    LossGrad
        The loss, its gradients and whether they are finite.
    """
    theta = model.check_theta(theta) if isinstance(model, Model) else theta
    epoch = V.positive_int(epoch, "epoch", minimum=0)
    dtype = check_precision(model, dtype)
    readout, z0, S, X, mask, alpha, n_forced, ro, scale, tie = _prepare(
        model, batch, readout, readout_params, loss, forcing, epoch, theta
    )
    narrow = isinstance(readout, LinearReadout) and readout.reads(model.dim) < model.dim
    if narrow:
        # the kernels read the whole state: B padded with zero columns, its gradient mapped back below
        ro = carray(readout.dense(ro, model.dim))
    kern = model.kernels.addresses(dtype)
    width = int(model.tape_width)
    tape = model.tape_kernels.addresses(dtype) if width > 0 else (0, 0, 0)
    config.prepare_engines()
    T, B = mask.shape
    n_chunks = _auto_chunks(model, B, T, n_threads)
    p = model_params(model, theta)
    if dtype != "float64":
        p, z0, S, X, mask, alpha, ro = (carray(a, dtype) for a in (p, z0, S, X, mask, alpha, ro))
    with np.errstate(all="ignore"), interrupts_surface():
        engine = (_bptt_serial if n_chunks == 1 else _bptt_parallel).for_signature(_SIGS[dtype])
        value, gp, gro, gz0 = engine(
            kern.step,
            kern.state_vjp,
            kern.param_vjp,
            *tape,
            width,
            p,
            model.meta,
            z0,
            S,
            X,
            mask,
            alpha,
            n_forced,
            readout.kind,
            ro,
            LOSSES[loss],
            scale,
            n_chunks,
        )
    grad = np.asarray(model.reduce_grad(gp))
    if narrow:
        gro = readout.reduce_dense_grad(gro, model.dim)
    if tie is not None:
        # the tied readout's gradient: dL/dv into theta's slice, dL/dc (if trained) as grad_readout
        latent, sl, v, ro_own = tie
        g_v, gro = latent.pull_back(v, ro_own, gro)
        grad = grad.copy() if not grad.flags.writeable else grad
        grad[sl] += g_v
    finite = bool(np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(gro)))
    return LossGrad(float(value), grad, gro, gz0, finite)


def predict(model: Model, theta, batch: Batch, *, readout=None, readout_params=None, forcing=None, epoch: int = 0):
    """Forward pass only: predicted observations ``y_1 .. y_T`` (B, T, N) and latent states (B, T+1, M).

    Uses the same forcing as training would (``forcing=None`` gives the free-running prediction).
    ``y`` is the readout before any loss: the logits for ``loss="bce"`` and
    ``loss="sigmoid_mse"`` (the output is then ``sigmoid(y)``).

    Parameters
    ----------
    model : Model
        The model.
    theta : (P,) array
        Model parameters.
    batch : Batch
        Targets (which set the forcing and the number of steps), inputs and initial states.
    readout : IdentityReadout, LinearReadout or LatentReadout, optional
        Observation model (default: identity on all latent states).
    readout_params : array, optional
        Parameters of the readout, as in :func:`loss_and_grad`.
    forcing : None, float, FreeRunning, SparseTF or GTF
        Teacher forcing applied in the forward pass, as in :func:`loss_and_grad`.
    epoch : int
        Passed to an alpha schedule of GTF.

    Returns
    -------
    Y : (B, T, N) array
        Predicted observations ``y_1 .. y_T``.
    Z : (B, T + 1, M) array
        Latent states ``z_0 .. z_T``.
    """
    from .simulate import simulate

    check_model(model)
    theta = model.check_theta(theta)
    epoch = V.positive_int(epoch, "epoch", minimum=0)
    readout, z0, S, X, mask, alpha, n_forced, ro, scale, _ = _prepare(
        model, batch, readout, readout_params, "mse", forcing, epoch, theta
    )
    T, B = mask.shape
    if n_forced == 0:
        inputs = None if model.n_inputs == 0 else np.transpose(S, (1, 0, 2))
        Z = simulate(model, theta, z0, n_steps=None if inputs is not None else T, inputs=inputs)
    else:
        Z = np.empty((B, T + 1, model.dim))
        Z[:, 0] = z0
        z = z0
        for t in range(T):
            zn = simulate(
                model,
                theta,
                z,
                inputs=None if model.n_inputs == 0 else S[t][:, None, :],
                n_steps=1 if model.n_inputs == 0 else None,
            )[:, 1]
            Z[:, t + 1] = zn
            a = alpha[t] * (mask[t] != 0)
            z = zn.copy()
            z[:, :n_forced] = (1 - a[:, None]) * zn[:, :n_forced] + a[:, None] * X[t, :, :n_forced]
    if isinstance(readout, IdentityReadout):
        Y = Z[:, 1:, : X.shape[2]]
    else:
        Y = readout.apply(ro, Z[:, 1:])
    return Y, Z
