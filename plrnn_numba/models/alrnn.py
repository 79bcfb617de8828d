r"""Almost-linear RNN (ALRNN; Brenner et al., 2024): a PLRNN in which only the last P of M units are ReLUs.

.. math::

    z_t = A z_{t-1} + W \phi(z_{t-1}) + C s_t + h, \qquad
    \phi(z)_j = \begin{cases} z_j & j < M - P \\ \mathrm{relu}(z_j) & j \ge M - P \end{cases}

with ``A = diag(a)`` and W as in the PLRNN (structurally zero diagonal unless
``full_W``).  With few ReLU units the map has only ``2^P`` linear regions, the
pattern bits ``z_j > 0`` of the last P units:
``F_d = A + W diag(1, ..., 1, d)``, ``c = h + C s``.  The one-step Jacobian is
that ``F_d``.  The parameter layout is the PLRNN's
(``a | W | C | h``; see :mod:`.plrnn`), so ``pack``, ``unpack`` and ``init``
are inherited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import _validate as V
from ..config import njit
from ._linalg import acc_at_b, use_blas
from .base import (
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
)
from .piecewise import PiecewiseLinear, RegionKernels, regions_kernel, rollout_kernel
from .plrnn import PLRNN


@njit(inline="always")
def _views(p, M, K):
    a = p[0:M]
    W = p[M : M + M * M].reshape((M, M))
    o = M + M * M
    C = p[o : o + M * K].reshape((M, K))
    h = p[o + M * K : o + M * K + M]
    WT = p[2 * M + M * M + M * K : 2 * M + 2 * M * M + M * K].reshape((M, M))
    return a, W, C, h, WT


@njit(inline="always")
def _phi(x, j, n_lin):
    # linear units pass through, the last P units are rectified
    if j < n_lin or x > 0.0:
        return x
    return 0.0


@njit(inline="always")
def _dphi(x, j, n_lin):
    return 1.0 if (j < n_lin or x > 0.0) else 0.0


@step_kernel
def alrnn_step(p, meta, z, s, z_next):
    M, K, n_lin = meta[0], meta[1], meta[2]
    a, W, C, h, WT = _views(p, M, K)
    B = z.shape[0]
    r = np.empty((B, M))
    for b in range(B):
        for j in range(M):
            r[b, j] = _phi(z[b, j], j, n_lin)
    if use_blas(M, B):
        wr = np.dot(r, WT)
        for b in range(B):
            for i in range(M):
                acc = a[i] * z[b, i] + wr[b, i] + h[i]
                for k in range(K):
                    acc += C[i, k] * s[b, k]
                z_next[b, i] = acc
        return
    for b in range(B):
        for i in range(M):
            acc = a[i] * z[b, i] + h[i]
            for j in range(M):
                acc += W[i, j] * r[b, j]
            for k in range(K):
                acc += C[i, k] * s[b, k]
            z_next[b, i] = acc


@state_vjp_kernel
def alrnn_state_vjp(p, meta, z, s, g, g_z):
    # g_z = a * g + phi'(z) * (W^T g)
    M, K, n_lin = meta[0], meta[1], meta[2]
    a, W, C, h, WT = _views(p, M, K)
    B = z.shape[0]
    if use_blas(M, B):
        wg = np.dot(g, W)
        for b in range(B):
            for j in range(M):
                g_z[b, j] = a[j] * g[b, j] + _dphi(z[b, j], j, n_lin) * wg[b, j]
        return
    for b in range(B):
        for j in range(M):
            acc = 0.0
            if _dphi(z[b, j], j, n_lin) != 0.0:
                for i in range(M):
                    acc += WT[j, i] * g[b, i]
            g_z[b, j] = a[j] * g[b, j] + acc


@param_vjp_kernel
def alrnn_param_vjp(p, meta, Z, S, G, g_p):
    # dL/da_i = sum G_i z_i; dL/dW = G^T phi(Z); dL/dC = G^T S; dL/dh = sum G
    M, K, n_lin = meta[0], meta[1], meta[2]
    ga, gW, gC, gh, _ = _views(g_p, M, K)
    N = Z.shape[0]
    R = np.empty((N, M))
    for n in range(N):
        for i in range(M):
            R[n, i] = _phi(Z[n, i], i, n_lin)
            ga[i] += G[n, i] * Z[n, i]
            gh[i] += G[n, i]
    acc_at_b(G, R, gW)
    if K > 0:
        acc_at_b(G, S, gC)


@jacobian_kernel
def alrnn_jacobian(p, meta, z, s, J):
    M, K, n_lin = meta[0], meta[1], meta[2]
    a, W, C, h, WT = _views(p, M, K)
    for i in range(M):
        for j in range(M):
            J[i, j] = W[i, j] * _dphi(z[j], j, n_lin)
        J[i, i] += a[i]


@jacobian_vjp_kernel
def alrnn_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # J = diag(a) + W diag(phi'(z)), phi' piecewise constant: no dependence on z
    M, K, n_lin = meta[0], meta[1], meta[2]
    ga, gW, gC, gh, _ = _views(g_p, M, K)
    for i in range(M):
        ga[i] += Jbar[i, i]
        for j in range(M):
            gW[i, j] += Jbar[i, j] * _dphi(z[j], j, n_lin)
    for j in range(M):
        g_z[j] = 0.0


ALRNN_KERNELS = build_kernels(alrnn_step, alrnn_state_vjp, alrnn_param_vjp, alrnn_jacobian, alrnn_jacobian_vjp)


# -- region kernels: p = a (M) | W (M*M) | h_eff (M), meta = [M, n_lin]; bit q is z_{n_lin + q} > 0
@regions_kernel
def alrnn_regions(p, meta, pats, F, c):
    M, n_lin = meta[0], meta[1]
    oh = M + M * M
    for s in range(pats.shape[0]):
        for i in range(M):
            row = M + i * M
            for j in range(M):
                on = j < n_lin or pats[s, j - n_lin] != 0
                F[s, i, j] = p[row + j] if on else 0.0
            F[s, i, i] += p[i]
            c[s, i] = p[oh + i]


@rollout_kernel
def alrnn_rollout(p, meta, traj, act):
    M, n_lin = meta[0], meta[1]
    oh = M + M * M
    for s in range(act.shape[0]):
        for j in range(n_lin, M):
            act[s, j - n_lin] = 1 if traj[s, j] > 0.0 else 0
        for i in range(M):
            row = M + i * M
            acc = p[i] * traj[s, i] + p[oh + i]
            for j in range(M):
                zj = traj[s, j]
                if j < n_lin or zj > 0.0:
                    acc += p[row + j] * zj
            traj[s + 1, i] = acc


ALRNN_REGION_KERNELS = RegionKernels(alrnn_regions, alrnn_rollout)


@dataclass(frozen=True)
class ALRNN(PLRNN):
    """Almost-linear RNN ``z_t = A z + W phi(z) + C s_t + h``: only the last ``n_relu`` units are ReLUs.

    Parameters
    ----------
    dim : int
        Latent dimension M.
    n_inputs : int
        Number of external inputs K.
    full_W : bool
        As for :class:`~plrnn_numba.PLRNN` (default: W has a structurally zero diagonal).
    n_relu : int (keyword)
        Number P of rectified units (the last P of the M); ``1 <= n_relu <= dim``.
        ``n_relu = dim`` is the PLRNN.
    """

    n_relu: int = field(kw_only=True)

    def __post_init__(self):
        super().__post_init__()
        V.positive_int(self.n_relu, "n_relu")
        if self.n_relu > self.dim:
            raise ValueError(f"n_relu must be <= dim ({self.dim}); got {self.n_relu}")

    @property
    def meta(self) -> np.ndarray:
        return np.array([self.dim, self.n_inputs, self.dim - self.n_relu], dtype=np.int64)

    @property
    def kernels(self):
        return ALRNN_KERNELS

    def piecewise_linear(self, theta: np.ndarray, inputs: np.ndarray | None = None) -> PiecewiseLinear:
        """Bits ``z_j > 0`` of the last P units; ``F_d = A + W diag(1, .., 1, d)``, ``c = h + C s``.

        Normal form: ``L = A + W[:, :M-P] E``, ``R = W[:, M-P:]``, ``U`` the rows
        ``M-P .. M-1`` of the identity, ``v = 0``.

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
        """
        d = self.unpack(theta)
        M, P = self.dim, self.n_relu
        n_lin = M - P
        a, W = np.ascontiguousarray(d["A"]), np.ascontiguousarray(d["W"])
        h = d["h"] if inputs is None else d["h"] + d["C"] @ inputs
        L = np.diag(a)
        L[:, :n_lin] += W[:, :n_lin]
        return PiecewiseLinear.from_model(
            self, theta, inputs, L=L, c=h, R=W[:, n_lin:], U=np.eye(M)[n_lin:], v=np.zeros(P),
            kernels=ALRNN_REGION_KERNELS, p=np.concatenate([a, W.ravel(), h]),
            meta=np.array([M, n_lin], dtype=np.int64), bit_labels=[f"z[{j}] > 0" for j in range(n_lin, M)],
        )
