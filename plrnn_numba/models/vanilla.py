"""Vanilla rate RNN of Engelken (2023), "Gradient flossing" (eq. 9), with tanh or ReLU units.

.. math::

    h_t = W \\,\\phi(h_{t-1}) + V x_t + b, \\qquad \\phi \\in \\{\\tanh, \\mathrm{relu}\\}

One-step Jacobian ``W diag(phi'(h))``.  Backpropagation through time keeps
``r = phi(h)`` of every step on a tape (``tape_width = N``) and takes
``phi'`` from it (``1 - r^2`` for tanh, ``[r > 0]`` for ReLU), so each tanh is
evaluated once per call, by the call-free vectorisable code of ``_fastmath``.  Layout of ``theta``:
``W (N*N) | V (N*K) | b (N)``; the kernels get ``theta | W^T`` (see ``expand``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V_
from ..config import njit
from ._fastmath import _tanh
from ._linalg import acc_at_b, rows_times_transpose, use_blas
from .base import (
    Model,
    TangentKernels,
    TapeKernels,
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
    tangent_kernel,
    tangent_vjp_kernel,
    tape_param_vjp_kernel,
    tape_state_vjp_kernel,
    tape_step_kernel,
)
from .piecewise import bound_init
from .plrnn import relu_units_map

_NONLINEARITIES = {"tanh": 0, "relu": 1}


@njit(inline="always")
def _views(p, N, K):
    """``W (N, N)``, ``V (N, K)``, ``b (N)`` from the layout ``W | V | b`` (shared with the orthogonal RNN)."""
    W = p[0 : N * N].reshape((N, N))
    V = p[N * N : N * N + N * K].reshape((N, K))
    b = p[N * N + N * K : N * N + N * K + N]
    return W, V, b


@njit(inline="always")
def _wt(p, N, K):
    # W^T, appended to the kernel vector by expand
    o = N * N + N * K + N
    return p[o : o + N * N].reshape((N, N))


@njit(inline="always")
def _dphi(x, kind):
    if kind == 0:
        t = _tanh(x)
        return 1.0 - t * t
    return 1.0 if x > 0.0 else 0.0


@njit(inline="always")
def _activations(Z, kind, R):
    """``R = phi(Z)`` row by row; one branch-free loop per row and kind, so that it vectorises."""
    N = Z.shape[1]
    for r in range(Z.shape[0]):
        if kind == 0:
            for j in range(N):
                R[r, j] = _tanh(Z[r, j])
        else:
            for j in range(N):
                x = Z[r, j]
                R[r, j] = x if x > 0.0 else 0.0


@njit(inline="always")
def _step_rows(p, meta, z, s, z_next, R):
    # z' = W phi(z) + V s + b, keeping phi(z) in R (the tape)
    N, K, kind = meta[0], meta[1], meta[2]
    W, V, b = _views(p, N, K)
    B = z.shape[0]
    _activations(z, kind, R)
    if use_blas(N, B):
        wr = rows_times_transpose(R, W, _wt(p, N, K))
        for bb in range(B):
            for i in range(N):
                acc = wr[bb, i] + b[i]
                for k in range(K):
                    acc += V[i, k] * s[bb, k]
                z_next[bb, i] = acc
        return
    for bb in range(B):
        rb = R[bb]
        for i in range(N):
            acc = b[i]
            for j in range(N):
                acc += W[i, j] * rb[j]
            for k in range(K):
                acc += V[i, k] * s[bb, k]
            z_next[bb, i] = acc


@njit(inline="always")
def _state_rows(p, meta, R, g, g_z):
    # g_z = phi'(z) * (W^T g), with phi' from r = phi(z): 1 - r^2 (tanh), [r > 0] (relu)
    N, K, kind = meta[0], meta[1], meta[2]
    W, V, b = _views(p, N, K)
    B = R.shape[0]
    one, zero = R.dtype.type(1), R.dtype.type(0)  # the arrays' precision (no float64 in float32 kernels)
    if use_blas(N, B):
        wg = rows_times_transpose(g, _wt(p, N, K), W)
        for bb in range(B):
            if kind == 0:
                for j in range(N):
                    r = R[bb, j]
                    g_z[bb, j] = (one - r * r) * wg[bb, j]
            else:
                for j in range(N):
                    g_z[bb, j] = wg[bb, j] if R[bb, j] > 0.0 else 0.0
        return
    # (W^T g)_j as a dot product with row j of W^T (appended by expand)
    WT = _wt(p, N, K)
    for bb in range(B):
        gb = g[bb]
        for j in range(N):
            wj = WT[j]
            acc = zero
            for i in range(N):
                acc += wj[i] * gb[i]
            r = R[bb, j]
            if kind == 0:
                g_z[bb, j] = (one - r * r) * acc
            else:
                g_z[bb, j] = acc if r > 0.0 else 0.0


@njit(inline="always")
def _param_rows(meta, R, S, G, g_p):
    # dL/dW = G^T phi(Z); dL/dV = G^T S; dL/db = sum G
    N, K = meta[0], meta[1]
    gW, gV, gb = _views(g_p, N, K)
    sb = np.zeros(N)
    for n in range(G.shape[0]):
        for j in range(N):
            sb[j] += G[n, j]
    acc_at_b(G, R, gW)
    if K > 0:
        acc_at_b(G, S, gV)
    gb += sb


@step_kernel
def vanilla_step(p, meta, z, s, z_next):
    _step_rows(p, meta, z, s, z_next, np.empty(z.shape, z.dtype))


@tape_step_kernel
def vanilla_tape_step(p, meta, z, s, z_next, tape):
    _step_rows(p, meta, z, s, z_next, tape)


@state_vjp_kernel
def vanilla_state_vjp(p, meta, z, s, g, g_z):
    R = np.empty(z.shape, z.dtype)
    _activations(z, meta[2], R)
    _state_rows(p, meta, R, g, g_z)


@tape_state_vjp_kernel
def vanilla_tape_state_vjp(p, meta, z, s, tape, g, g_z):
    _state_rows(p, meta, tape, g, g_z)


@param_vjp_kernel
def vanilla_param_vjp(p, meta, Z, S, G, g_p):
    R = np.empty(Z.shape, Z.dtype)
    _activations(Z, meta[2], R)
    _param_rows(meta, R, S, G, g_p)


@tape_param_vjp_kernel
def vanilla_tape_param_vjp(p, meta, Z, S, TAPE, G, g_p):
    _param_rows(meta, TAPE, S, G, g_p)


@jacobian_kernel
def vanilla_jacobian(p, meta, z, s, J):
    N, K, kind = meta[0], meta[1], meta[2]
    W, V, b = _views(p, N, K)
    for j in range(N):
        d = _dphi(z[j], kind)
        for i in range(N):
            J[i, j] = W[i, j] * d


@jacobian_vjp_kernel
def vanilla_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # J_ij = W_ij phi'(h_j): dJ_ij/dW_ij = phi'(h_j), dJ_ij/dh_j = W_ij phi''(h_j)
    N, K, kind = meta[0], meta[1], meta[2]
    W, V, b = _views(p, N, K)
    gW, gV, gb = _views(g_p, N, K)
    for j in range(N):
        if kind == 0:
            t = _tanh(z[j])
            d1 = 1.0 - t * t
            d2 = -2.0 * t * d1
        else:
            d1 = 1.0 if z[j] > 0.0 else 0.0
            d2 = 0.0
        acc = 0.0
        for i in range(N):
            gW[i, j] += Jbar[i, j] * d1
            acc += Jbar[i, j] * W[i, j]
        g_z[j] = acc * d2


#: up to this many tangent vectors the tangent products and the pullback's update of dL/dW run as
#: loops (dot products and rank-1 updates over contiguous rows) instead of BLAS calls
_RANK_UPDATE_LOOP_MAX = 4


@tangent_kernel
def vanilla_tangent(p, meta, z, s, Y, JY):
    # J Y = W (phi'(z) Y): one (N, N) x (N, k) product, no N x N Jacobian
    N, K, kind = meta[0], meta[1], meta[2]
    W, V, b = _views(p, N, K)
    k = Y.shape[1]
    d1 = np.empty(N, Y.dtype)
    _phi_derivatives(z, kind, d1, d1, False)
    if k <= _RANK_UPDATE_LOOP_MAX:
        # a few columns: dot products with the rows of W over contiguous rows of (D Y)^T (a BLAS call
        # and its temporaries cost more than the product here)
        DYT = np.empty((k, N), Y.dtype)
        for c in range(k):
            for j in range(N):
                DYT[c, j] = d1[j] * Y[j, c]
        _rows_dot(W, DYT, JY)
        return
    DY = np.empty((N, k), Y.dtype)
    for j in range(N):
        for c in range(k):
            DY[j, c] = d1[j] * Y[j, c]
    np.dot(W, DY, JY)


@njit(inline="always")
def _phi_derivatives(z, kind, d1, d2, second):
    # d1 = phi'(z) and (second=True) d2 = phi''(z), elementwise; the branches outside the loops so
    # that each loop vectorises
    if kind == 0:
        if second:
            for j in range(z.shape[0]):
                t = _tanh(z[j])
                e = 1.0 - t * t
                d1[j] = e
                d2[j] = -2.0 * t * e
        else:
            for j in range(z.shape[0]):
                t = _tanh(z[j])
                d1[j] = 1.0 - t * t
        return
    for j in range(z.shape[0]):
        d1[j] = 1.0 if z[j] > 0.0 else 0.0
    if second:
        for j in range(z.shape[0]):
            d2[j] = 0.0


@njit(inline="always")
def _rows_dot(W, XT, out):
    # out[i, c] = W[i] . XT[c]: (W X) for a few columns, given X^T with contiguous rows
    k = XT.shape[0]
    for i in range(W.shape[0]):
        wi = W[i]
        for c in range(k):
            x = XT[c]
            acc = 0.0
            for j in range(wi.shape[0]):
                acc += wi[j] * x[j]
            out[i, c] = acc


@tangent_vjp_kernel
def vanilla_tangent_vjp(p, meta, z, s, Y, A, Ybar, g_z, g_p):
    # <A, W D Y> with D = diag(phi'(z)): Ybar = D (W^T A), g_z_j = phi''(z_j) sum_c Y_jc (W^T A)_jc,
    # dW += A (D Y)^T
    N, K, kind = meta[0], meta[1], meta[2]
    gW, gV, gb = _views(g_p, N, K)
    k = Y.shape[1]
    d1 = np.empty(N, Y.dtype)
    d2 = np.empty(N, Y.dtype)
    _phi_derivatives(z, kind, d1, d2, True)
    if k <= _RANK_UPDATE_LOOP_MAX:
        WTA = np.empty((N, k), A.dtype)
        _rows_dot(_wt(p, N, K), np.ascontiguousarray(A.T), WTA)
    else:
        WTA = np.dot(_wt(p, N, K), A)
    for j in range(N):
        acc = 0.0
        for c in range(k):
            w = WTA[j, c]
            Ybar[j, c] = d1[j] * w
            acc += Y[j, c] * w
        g_z[j] = d2[j] * acc
    if k <= _RANK_UPDATE_LOOP_MAX:
        # a few rank-1 updates in place (a product would allocate and add an N x N temporary), over
        # contiguous rows of (D Y)^T so that the inner loop vectorises
        DYT = np.empty((k, N), Y.dtype)
        for c in range(k):
            for j in range(N):
                DYT[c, j] = d1[j] * Y[j, c]
        for i in range(N):
            gi = gW[i]
            for c in range(k):
                a = A[i, c]
                dy = DYT[c]
                for j in range(N):
                    gi[j] += a * dy[j]
    else:
        DY = np.empty((N, k), Y.dtype)
        for j in range(N):
            for c in range(k):
                DY[j, c] = d1[j] * Y[j, c]
        gW += np.dot(A, DY.T)


VANILLA_KERNELS = build_kernels(
    vanilla_step, vanilla_state_vjp, vanilla_param_vjp, vanilla_jacobian, vanilla_jacobian_vjp
)
VANILLA_TAPE_KERNELS = TapeKernels(vanilla_tape_step, vanilla_tape_state_vjp, vanilla_tape_param_vjp)
VANILLA_TANGENT_KERNELS = TangentKernels(vanilla_tangent, vanilla_tangent_vjp)


@dataclass(frozen=True)
class VanillaRNN(Model):
    """Vanilla RNN ``h_t = W phi(h_{t-1}) + V x_t + b`` (Engelken 2023, eq. 9).

    Parameters
    ----------
    n_hidden : int
        Number of units N (the state dimension).
    n_inputs : int
        Number of inputs K.
    nonlinearity : {"tanh", "relu"}
        The transfer function phi.
    """

    n_hidden: int
    n_inputs: int = 0
    nonlinearity: str = "tanh"

    def __post_init__(self):
        V_.positive_int(self.n_hidden, "n_hidden")
        V_.positive_int(self.n_inputs, "n_inputs", minimum=0)
        V_.choice(self.nonlinearity, "nonlinearity", _NONLINEARITIES)

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The state dimension: ``n_hidden``."""
        return self.n_hidden

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        N, K = self.n_hidden, self.n_inputs
        return {"W": (N, N), "V": (N, K), "b": (N,)}

    @property
    def meta(self) -> np.ndarray:
        return np.array([self.n_hidden, self.n_inputs, _NONLINEARITIES[self.nonlinearity]], dtype=np.int64)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return ("float64", "float32")

    @property
    def kernels(self):
        return VANILLA_KERNELS

    @property
    def tape_width(self) -> int:
        # BPTT keeps phi(h) of every step (N floats per item): each tanh is evaluated once per call
        return self.n_hidden

    @property
    def tape_kernels(self):
        return VANILLA_TAPE_KERNELS

    @property
    def tangent_kernels(self):
        return VANILLA_TANGENT_KERNELS

    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Kernel layout ``W | V | b | W^T`` (W^T derived, for the backward pass).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        (P + N^2,) array
            The kernel parameter vector.
        """
        N = self.n_hidden
        return np.concatenate([theta, theta[: N * N].reshape(N, N).T.ravel()])

    def reduce_grad(self, grad_p: np.ndarray) -> np.ndarray:
        return grad_p[: self.n_params].copy()

    @property
    def is_piecewise_linear(self) -> bool:
        """True for ``nonlinearity="relu"``."""
        return self.nonlinearity == "relu"

    def piecewise_linear(self, theta: np.ndarray, inputs: np.ndarray | None = None):
        """The ReLU RNN's regions: bits ``h_i > 0`` of the pre-activation state, ``F_d = W D``, ``c = b + V s``.

        In pre-activation coordinates the ReLU RNN is a PLRNN with ``A = 0`` and a
        full W (normal form ``L = 0``, ``R = W``, ``U = I``).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        inputs : (K,) array, optional
            A constant input.

        Returns
        -------
        PiecewiseLinear
            The regions of the map and their affine pieces.

        Raises
        ------
        TypeError
            For the tanh network (not piecewise linear).
        """
        if not self.is_piecewise_linear:
            return super().piecewise_linear(theta, inputs)
        d = self.unpack(theta)
        b = d["b"] if inputs is None else d["b"] + d["V"] @ inputs
        return relu_units_map(self, theta, inputs, np.zeros(self.n_hidden), np.ascontiguousarray(d["W"]), b)

    def pack(self, W, b, V=None) -> np.ndarray:
        """Build ``theta`` from ``W`` (N, N), ``b`` (N,) and ``V`` (N, K).

        Parameters
        ----------
        W : (N, N) array
            Recurrent weights.
        b : (N,) array
            Bias.
        V : (N, K) array, optional
            Input weights (required when the model has inputs).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        if V is None:
            if self.n_inputs:
                raise ValueError(f"V is required: the model has {self.n_inputs} inputs")
            V = np.zeros((self.n_hidden, 0))
        return super().pack(W=W, V=V, b=b)

    def init(
        self,
        seed=0,
        *,
        g: float = 1.0,
        v_scale: float = 1.0,
        b_scale: float = 0.1,
        max_norm: float | None = 0.99,
    ) -> np.ndarray:
        """Random parameters as in Engelken's (2023) code.

        ``W ~ N(0, g^2 / N)``, ``V ~ N(0, v_scale^2)``, ``b ~ b_scale * U[0, 1)``.
        A tanh network is bounded whatever W (``|h'| <= ||W|| sqrt(N) + |V x + b|``);
        for ReLU units W is scaled so that ``||W||_2 <= max_norm``, which makes
        every region's Jacobian ``W D`` a contraction and a free run bounded
        (``max_norm=None`` keeps the raw draw).

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed.
        g : float
            Gain of the recurrent weights.
        v_scale : float
            Standard deviation of the input weights.
        b_scale : float
            Scale of the bias.
        max_norm : float or None
            Bound on ``||W||_2`` of a ReLU network (None: no bound).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        rng, _ = V_.generator(seed)
        g, v_scale, b_scale = (V_.finite_float(x, n, low=0.0) for x, n in
                               ((g, "g"), (v_scale, "v_scale"), (b_scale, "b_scale")))
        N, K = self.n_hidden, self.n_inputs
        theta = self.pack(
            W=rng.normal(0.0, g / np.sqrt(N), (N, N)),
            V=rng.normal(0.0, v_scale, (N, K)),
            b=b_scale * rng.random(N),
        )
        if max_norm is not None:
            V_.finite_float(max_norm, "max_norm", low=0.0, open_low=True)
        if self.nonlinearity == "relu":
            theta = bound_init(self, theta, max_norm, ("W",))
        return theta
