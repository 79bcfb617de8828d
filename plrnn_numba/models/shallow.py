"""Shallow PLRNN and its clipped variant.

.. math::

    z_t = A z_{t-1} + W_1 \\,\\mathrm{relu}(W_2 z_{t-1} + h_2) + h_1 + C s_t

and, with ``clipped=True``,

.. math::

    z_t = A z_{t-1} + W_1 [\\mathrm{relu}(W_2 z_{t-1} + h_2) - \\mathrm{relu}(W_2 z_{t-1})] + h_1 + C s_t

with ``A = diag(a)`` (M), ``W_1`` (M x H), ``W_2`` (H x M).  In the region with
hidden patterns ``D_1 = diag(W_2 z + h_2 > 0)`` and ``D_2 = diag(W_2 z > 0)``
the Jacobian is ``A + W_1 D_1 W_2`` (``A + W_1 (D_1 - D_2) W_2`` clipped).

Layout of ``theta``: ``a (M) | W1 (M*H) | W2 (H*M) | h1 (M) | h2 (H) | C (M*K)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..config import njit
from ._linalg import a_b, acc_at_b
from .base import (
    Model,
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
)
from .piecewise import PiecewiseLinear, RegionKernels, bound_init, regions_kernel, rollout_kernel


@njit(inline="always")
def _views(p, M, H, K):
    a = p[0:M]
    o = M
    W1 = p[o : o + M * H].reshape((M, H))
    o += M * H
    W2 = p[o : o + H * M].reshape((H, M))
    o += H * M
    h1 = p[o : o + M]
    o += M
    h2 = p[o : o + H]
    o += H
    C = p[o : o + M * K].reshape((M, K))
    return a, W1, W2, h1, h2, C


@njit(inline="always")
def _hidden(W2, h2, z, u, clipped):
    # u[j] = relu(W2 z + h2)_j - clipped * relu(W2 z)_j  (z a single state)
    H, M = W2.shape
    for j in range(H):
        v = 0.0
        for i in range(M):
            v += W2[j, i] * z[i]
        r = v + h2[j]
        x = r if r > 0.0 else 0.0
        if clipped and v > 0.0:
            x -= v
        u[j] = x


@step_kernel
def shallow_step(p, meta, z, s, z_next):
    M, H, K, clipped = meta[0], meta[1], meta[2], meta[3]
    a, W1, W2, h1, h2, C = _views(p, M, H, K)
    u = np.empty(H)
    for b in range(z.shape[0]):
        _hidden(W2, h2, z[b], u, clipped)
        for i in range(M):
            acc = a[i] * z[b, i] + h1[i]
            for j in range(H):
                acc += W1[i, j] * u[j]
            for k in range(K):
                acc += C[i, k] * s[b, k]
            z_next[b, i] = acc


@njit(inline="always")
def _gate(W2, h2, z, j, clipped):
    # diagonal entry j of D1 - clipped * D2: the slope of hidden unit j at z
    v = 0.0
    for i in range(W2.shape[1]):
        v += W2[j, i] * z[i]
    d = 1.0 if v + h2[j] > 0.0 else 0.0
    if clipped and v > 0.0:
        d -= 1.0
    return d


@njit(inline="always")
def _hidden_adjoint(W1, W2, h2, z, g, q, clipped):
    # q[j] = (D1 - clipped * D2)_jj (W1^T g)_j
    H, M = W2.shape
    for j in range(H):
        d = _gate(W2, h2, z, j, clipped)
        if d != 0.0:
            w = 0.0
            for i in range(M):
                w += W1[i, j] * g[i]
            q[j] = d * w
        else:
            q[j] = 0.0


@state_vjp_kernel
def shallow_state_vjp(p, meta, z, s, g, g_z):
    # g_z = a * g + W2^T q,  q = (D1 - c D2) W1^T g
    M, H, K, clipped = meta[0], meta[1], meta[2], meta[3]
    a, W1, W2, h1, h2, C = _views(p, M, H, K)
    q = np.empty(H)
    for b in range(z.shape[0]):
        _hidden_adjoint(W1, W2, h2, z[b], g[b], q, clipped)
        for i in range(M):
            g_z[b, i] = a[i] * g[b, i]
        for j in range(H):
            qj = q[j]
            if qj != 0.0:
                for i in range(M):
                    g_z[b, i] += W2[j, i] * qj


@param_vjp_kernel
def shallow_param_vjp(p, meta, Z, S, G, g_p):
    M, H, K, clipped = meta[0], meta[1], meta[2], meta[3]
    a, W1, W2, h1, h2, C = _views(p, M, H, K)
    ga, gW1, gW2, gh1, gh2, gC = _views(g_p, M, H, K)
    N = Z.shape[0]
    V = a_b(Z, np.ascontiguousarray(W2.T))  # pre-activations without bias (N, H)
    U = np.empty((N, H))  # hidden outputs
    Q1 = np.empty((N, H))  # adjoint through relu(W2 z + h2)
    Q = np.empty((N, H))  # total adjoint w.r.t. W2 z
    GW1 = a_b(G, W1)  # (N, H)
    for n in range(N):
        for j in range(H):
            v = V[n, j]
            r = v + h2[j]
            on1 = r > 0.0
            on2 = clipped and v > 0.0
            U[n, j] = (r if on1 else 0.0) - (v if on2 else 0.0)
            q1 = GW1[n, j] if on1 else 0.0
            Q1[n, j] = q1
            Q[n, j] = q1 - (GW1[n, j] if on2 else 0.0)
    acc_at_b(G, U, gW1)
    acc_at_b(Q, Z, gW2)
    if K > 0:
        acc_at_b(G, S, gC)
    for n in range(N):
        for i in range(M):
            ga[i] += G[n, i] * Z[n, i]
            gh1[i] += G[n, i]
        for j in range(H):
            gh2[j] += Q1[n, j]


@jacobian_kernel
def shallow_jacobian(p, meta, z, s, J):
    M, H, K, clipped = meta[0], meta[1], meta[2], meta[3]
    a, W1, W2, h1, h2, C = _views(p, M, H, K)
    d = np.empty(H)
    for j in range(H):
        dj = _gate(W2, h2, z, j, clipped)
        d[j] = dj
    for i in range(M):
        for k in range(M):
            acc = 0.0
            for j in range(H):
                acc += W1[i, j] * d[j] * W2[j, k]
            J[i, k] = acc
        J[i, i] += a[i]


@jacobian_vjp_kernel
def shallow_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # J = diag(a) + W1 D W2 with D = D1 - c D2 piecewise constant in z:
    # dL/dW1 = Jbar W2^T D, dL/dW2 = D W1^T Jbar, dL/da_i = Jbar_ii
    M, H, K, clipped = meta[0], meta[1], meta[2], meta[3]
    a, W1, W2, h1, h2, C = _views(p, M, H, K)
    ga, gW1, gW2, gh1, gh2, gC = _views(g_p, M, H, K)
    for j in range(H):
        dj = _gate(W2, h2, z, j, clipped)
        if dj == 0.0:
            continue
        for i in range(M):
            acc1 = 0.0
            for k in range(M):
                acc1 += Jbar[i, k] * W2[j, k]
            gW1[i, j] += dj * acc1
        for k in range(M):
            acc2 = 0.0
            for i in range(M):
                acc2 += W1[i, j] * Jbar[i, k]
            gW2[j, k] += dj * acc2
    for i in range(M):
        ga[i] += Jbar[i, i]
        g_z[i] = 0.0


SHALLOW_KERNELS = build_kernels(
    shallow_step, shallow_state_vjp, shallow_param_vjp, shallow_jacobian, shallow_jacobian_vjp
)


# -- region kernels (piecewise-linear protocol) ----------------------------------------
# p = a (M) | W1 (M*H) | W2 (H*M) | h1_eff (M) | h2 (H), meta = [M, H, clipped];
# bits 0..H-1: D1 = (W2 z + h2 > 0), clipped also bits H..2H-1: D2 = (W2 z > 0).
@regions_kernel
def shallow_regions(p, meta, pats, F, c):
    # F = diag(a) + W1 diag(d1 - d2) W2,  c = h1 + W1 (d1 * h2)
    M, H, clipped = meta[0], meta[1], meta[2]
    oW1 = M
    oW2 = oW1 + M * H
    oh1 = oW2 + H * M
    oh2 = oh1 + M
    for s in range(pats.shape[0]):
        for i in range(M):
            for l in range(M):
                F[s, i, l] = 0.0
            F[s, i, i] = p[i]
            c[s, i] = p[oh1 + i]
        for j in range(H):
            coef = float(pats[s, j])
            if clipped:
                coef -= float(pats[s, H + j])
            if pats[s, j] != 0:
                for i in range(M):
                    c[s, i] += p[oW1 + i * H + j] * p[oh2 + j]
            if coef != 0.0:
                for i in range(M):
                    g = p[oW1 + i * H + j] * coef
                    if g != 0.0:
                        for l in range(M):
                            F[s, i, l] += g * p[oW2 + j * M + l]


@rollout_kernel
def shallow_rollout(p, meta, traj, act):
    M, H, clipped = meta[0], meta[1], meta[2]
    oW1 = M
    oW2 = oW1 + M * H
    oh1 = oW2 + H * M
    oh2 = oh1 + M
    for s in range(act.shape[0]):
        for i in range(M):
            traj[s + 1, i] = p[i] * traj[s, i] + p[oh1 + i]
        for j in range(H):
            v = 0.0
            for i in range(M):
                v += p[oW2 + j * M + i] * traj[s, i]
            r = v + p[oh2 + j]
            act[s, j] = 1 if r > 0.0 else 0
            u = r if r > 0.0 else 0.0
            if clipped:
                act[s, H + j] = 1 if v > 0.0 else 0
                if v > 0.0:
                    u -= v
            if u != 0.0:
                for i in range(M):
                    traj[s + 1, i] += p[oW1 + i * H + j] * u


SHALLOW_REGION_KERNELS = RegionKernels(shallow_regions, shallow_rollout)


@dataclass(frozen=True)
class ShallowPLRNN(Model):
    """Shallow PLRNN ``z_t = A z + W1 relu(W2 z + h2) + h1 + C s_t`` (optionally clipped).

    Parameters
    ----------
    dim : int
        Latent dimension M.
    hidden : int
        Hidden (ReLU) layer width H.
    n_inputs : int
        Number of external inputs K.
    clipped : bool
        Use ``relu(W2 z + h2) - relu(W2 z)``, which keeps orbits bounded when
        ``|a_i| < 1``.
    """

    dim: int
    hidden: int
    n_inputs: int = 0
    clipped: bool = False

    def __post_init__(self):
        V.positive_int(self.dim, "dim")
        V.positive_int(self.hidden, "hidden")
        V.positive_int(self.n_inputs, "n_inputs", minimum=0)
        if not isinstance(self.clipped, (bool, np.bool_)):
            raise TypeError(f"clipped must be a bool; got {type(self.clipped).__name__}")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        M, H, K = self.dim, self.hidden, self.n_inputs
        return {"A": (M,), "W1": (M, H), "W2": (H, M), "h1": (M,), "h2": (H,), "C": (M, K)}

    @property
    def meta(self) -> np.ndarray:
        return np.array([self.dim, self.hidden, self.n_inputs, int(self.clipped)], dtype=np.int64)

    @property
    def kernels(self):
        return SHALLOW_KERNELS

    def pack(self, A, W1, W2, h1, h2, C=None) -> np.ndarray:
        """Build ``theta``; ``A`` may be a vector or a diagonal matrix.

        Parameters
        ----------
        A : (M,) or (M, M) array
            The diagonal of A, or A as a diagonal matrix.
        W1 : (M, H) array
            Output weights of the hidden layer.
        W2 : (H, M) array
            Input weights of the hidden layer.
        h1 : (M,) array
            The bias of the state.
        h2 : (H,) array
            The bias of the hidden layer.
        C : (M, K) array, optional
            The input weights (required when the model has inputs).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        A = V.as_float_array(A, "A")
        if A.ndim == 2:
            if A.shape != (self.dim, self.dim) or np.any(A - np.diag(np.diag(A))):
                raise ValueError(f"A must be diagonal: pass a vector of length {self.dim}")
            A = np.diag(A).copy()
        if C is None:
            if self.n_inputs:
                raise ValueError(f"C is required: the model has {self.n_inputs} inputs")
            C = np.zeros((self.dim, 0))
        return super().pack(A=A, W1=W1, W2=W2, h1=h1, h2=h2, C=C)

    @classmethod
    def from_arrays(cls, A, W1, W2, h1, h2, C=None, clipped: bool = False) -> tuple[ShallowPLRNN, np.ndarray]:
        """``(model, theta)`` from arrays ``A`` (M,), ``W1`` (M, H), ``W2`` (H, M), ``h1``, ``h2``, ``C`` (M, K).

        Parameters
        ----------
        A : (M,) or (M, M) array
            The diagonal of A, or A as a diagonal matrix.
        W1 : (M, H) array
            Output weights of the hidden layer.
        W2 : (H, M) array
            Input weights of the hidden layer.
        h1 : (M,) array
            The bias of the state.
        h2 : (H,) array
            The bias of the hidden layer.
        C : (M, K) array, optional
            The input weights (None: no inputs).
        clipped : bool
            Build the clipped model.

        Returns
        -------
        model : ShallowPLRNN
            The model.
        theta : (P,) array
            Its parameter vector.
        """
        W1 = V.as_float_array(W1, "W1")
        if W1.ndim != 2:
            raise ValueError(f"W1 must be an (M, H) matrix; got shape {W1.shape}")
        K = 0 if C is None else int(np.shape(C)[1]) if np.ndim(C) == 2 else -1
        if K < 0:
            raise ValueError(f"C must have shape ({W1.shape[0]}, K); got {np.shape(C)}")
        model = cls(W1.shape[0], W1.shape[1], n_inputs=K, clipped=clipped)
        return model, model.pack(A=A, W1=W1, W2=W2, h1=h1, h2=h2, C=C)

    def piecewise_linear(self, theta: np.ndarray, inputs: np.ndarray | None = None) -> PiecewiseLinear:
        """Bits ``D1 = (W2 z + h2 > 0)`` (and, clipped, ``D2 = (W2 z > 0)``).

        Region maps ``F = A + W1 D1 W2``, ``c = W1 D1 h2 + h1 + C s`` (clipped:
        ``F = A + W1 (D1 - D2) W2``); normal form ``L = A``, ``R = W1``, ``U = W2``,
        ``v = h2`` (clipped: ``R = [W1, -W1]``, ``U = [W2; W2]``, ``v = [h2; 0]``).

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
        M, H = self.dim, self.hidden
        a, W1, W2, h2 = d["A"], d["W1"], d["W2"], d["h2"]
        h1 = d["h1"] if inputs is None else d["h1"] + d["C"] @ inputs
        labels = [f"(W2 z + h2)[{j}] > 0" for j in range(H)]
        if self.clipped:
            R, U, v = np.hstack([W1, -W1]), np.vstack([W2, W2]), np.concatenate([h2, np.zeros(H)])
            labels += [f"(W2 z)[{j}] > 0" for j in range(H)]
        else:
            R, U, v = W1, W2, h2
        p = np.concatenate([a, W1.ravel(), W2.ravel(), h1, h2])
        return PiecewiseLinear.from_model(
            self, theta, inputs, L=np.diag(a), c=h1, R=R, U=U, v=v, kernels=SHALLOW_REGION_KERNELS, p=p,
            meta=np.array([M, H, int(self.clipped)], dtype=np.int64), bit_labels=labels,
        )

    def init(
        self,
        seed=0,
        *,
        a_range: tuple[float, float] = (0.5, 0.9),
        w_scale: float = 0.5,
        h2_range: tuple[float, float] = (-1.0, 1.0),
        c_scale: float = 0.1,
        max_norm: float | None = 0.99,
    ) -> np.ndarray:
        """Random parameters, stable by construction.

        ``A_ii ~ U(a_range)``, ``W1 ~ N(0, w_scale^2 / H)``, ``W2 ~ N(0, 1 / M)``,
        ``h1 = 0``, ``h2 ~ U(h2_range)``, ``C ~ N(0, c_scale^2 / max(K, 1))``.
        Unclipped, A and W1 are then scaled together so that
        ``||A||_2 + ||W1||_2 ||W2||_2 <= max_norm``: every region's Jacobian
        ``A + W1 D W2`` is a contraction, so a free run stays bounded.  The
        clipped model is bounded by construction when ``|a_i| < 1`` (its hidden
        layer is bounded), so it keeps the raw draw.  ``max_norm=None`` keeps
        the raw draw.

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed.
        a_range : (float, float)
            Range of the uniform draw of the diagonal of A.
        w_scale : float
            Scale of W1 (standard deviation ``w_scale / sqrt(H)``).
        h2_range : (float, float)
            Range of the uniform draw of h2.
        c_scale : float
            Scale of C (standard deviation ``c_scale / sqrt(max(K, 1))``).
        max_norm : float or None
            Bound on ``||A||_2 + ||W1||_2 ||W2||_2`` of the unclipped model (None: no bound).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        rng, _ = V.generator(seed)
        a_range, h2_range = V.value_range(a_range, "a_range"), V.value_range(h2_range, "h2_range")
        w_scale = V.finite_float(w_scale, "w_scale", low=0.0)
        c_scale = V.finite_float(c_scale, "c_scale", low=0.0)
        M, H, K = self.dim, self.hidden, self.n_inputs
        theta = self.pack(
            A=rng.uniform(*a_range, M),
            W1=rng.normal(0.0, w_scale / np.sqrt(H), (M, H)),
            W2=rng.normal(0.0, 1.0 / np.sqrt(M), (H, M)),
            h1=np.zeros(M),
            h2=rng.uniform(*h2_range, H),
            C=rng.normal(0.0, c_scale / np.sqrt(max(K, 1)), (M, K)),
        )
        return theta if self.clipped else bound_init(self, theta, max_norm, ("A", "W1"))
