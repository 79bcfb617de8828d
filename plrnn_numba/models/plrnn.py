"""Piecewise-linear RNN (PLRNN).

.. math::

    z_t = A z_{t-1} + W \\,\\mathrm{relu}(z_{t-1}) + C s_t + h

with ``A = diag(a)``.  Inside the linear region given by the sign pattern
``D = diag(z > 0)`` the map is affine: ``z_t = (A + W D) z_{t-1} + C s_t + h``,
so the one-step Jacobian is ``A + W D``.

By default W has a structurally zero diagonal (the self-coupling lives in A)
and ``theta`` holds only its off-diagonal entries; ``full_W=True`` makes the
diagonal free as well (needed e.g. for a 1-D PLRNN with a ReLU self-term: the
skew tent map ``z' = a_L z + mu`` for ``z <= 0`` and ``a_R z + mu`` for
``z > 0`` is ``A = a_L, W = a_R - a_L, h = mu``).

Layout of ``theta``: ``a (M) | W (M*M, or the M*(M-1) off-diagonal entries
row by row) | C (M*K) | h (M)``.  The kernels work on the dense layout
``a | W (M*M) | C | h | W^T`` (the transposed copy is derived, not a parameter).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..config import njit
from ._linalg import acc_at_b, rows_times_transpose, use_blas
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
def _wt_view(p, M, K):
    # W^T, appended to the kernel vector by PLRNN.expand (not a parameter)
    o = 2 * M + M * M + M * K
    return p[o : o + M * M].reshape((M, M))


@njit(inline="always")
def _views(p, M, K):
    a = p[0:M]
    W = p[M : M + M * M].reshape((M, M))
    o = M + M * M
    C = p[o : o + M * K].reshape((M, K))
    h = p[o + M * K : o + M * K + M]
    return a, W, C, h


@step_kernel
def plrnn_step(p, meta, z, s, z_next):
    M, K = meta[0], meta[1]
    a, W, C, h = _views(p, M, K)
    B = z.shape[0]
    if use_blas(M, B):
        r = np.empty((B, M), z.dtype)
        for b in range(B):
            for j in range(M):
                r[b, j] = z[b, j] if z[b, j] > 0.0 else 0.0
        wr = rows_times_transpose(r, W, _wt_view(p, M, K))
        for b in range(B):
            for i in range(M):
                acc = a[i] * z[b, i] + wr[b, i] + h[i]
                for k in range(K):
                    acc += C[i, k] * s[b, k]
                z_next[b, i] = acc
        return
    r = np.empty(M, z.dtype)
    for b in range(B):
        for j in range(M):
            r[j] = z[b, j] if z[b, j] > 0.0 else 0.0
        for i in range(M):
            wi = W[i]
            acc = 0.0
            for j in range(M):
                acc += wi[j] * r[j]
            acc += a[i] * z[b, i] + h[i]
            for k in range(K):
                acc += C[i, k] * s[b, k]
            z_next[b, i] = acc


@state_vjp_kernel
def plrnn_state_vjp(p, meta, z, s, g, g_z):
    # g_z = a * g + D (W^T g), D = diag(z > 0)
    M, K = meta[0], meta[1]
    a, W, C, h = _views(p, M, K)
    B = z.shape[0]
    if use_blas(M, B):
        wg = rows_times_transpose(g, _wt_view(p, M, K), W)
        for b in range(B):
            for j in range(M):
                d = wg[b, j] if z[b, j] > 0.0 else 0.0
                g_z[b, j] = a[j] * g[b, j] + d
        return
    # (W^T g)_j as a dot product with row j of W^T (stored after h by expand)
    WT = _wt_view(p, M, K)
    for b in range(B):
        gb = g[b]
        for j in range(M):
            if z[b, j] > 0.0:
                wj = WT[j]
                acc = 0.0
                for i in range(M):
                    acc += wj[i] * gb[i]
                g_z[b, j] = a[j] * gb[j] + acc
            else:
                g_z[b, j] = a[j] * gb[j]


@param_vjp_kernel
def plrnn_param_vjp(p, meta, Z, S, G, g_p):
    # dL/da_i = sum G_i z_i; dL/dW = G^T relu(Z); dL/dC = G^T S; dL/dh = sum G
    M, K = meta[0], meta[1]
    N = Z.shape[0]
    ga, gW, gC, gh = _views(g_p, M, K)
    R = np.empty((N, M), Z.dtype)
    sa = np.zeros(M)
    sh = np.zeros(M)
    for n in range(N):
        for i in range(M):
            zi = Z[n, i]
            gi = G[n, i]
            R[n, i] = zi if zi > 0.0 else 0.0
            sa[i] += gi * zi
            sh[i] += gi
    acc_at_b(G, R, gW)
    if K > 0:
        acc_at_b(G, S, gC)
    ga += sa
    gh += sh


@jacobian_kernel
def plrnn_jacobian(p, meta, z, s, J):
    M, K = meta[0], meta[1]
    a, W, C, h = _views(p, M, K)
    for i in range(M):
        for j in range(M):
            J[i, j] = W[i, j] if z[j] > 0.0 else 0.0
        J[i, i] += a[i]


@jacobian_vjp_kernel
def plrnn_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # J = diag(a) + W D(z): dJ/da_i = e_i e_i^T, dJ_ij/dW_ij = d_j; D is
    # piecewise constant, so J does not depend on z (almost everywhere)
    M, K = meta[0], meta[1]
    ga, gW, gC, gh = _views(g_p, M, K)
    for i in range(M):
        ga[i] += Jbar[i, i]
        for j in range(M):
            if z[j] > 0.0:
                gW[i, j] += Jbar[i, j]
    for j in range(M):
        g_z[j] = 0.0


PLRNN_KERNELS = build_kernels(plrnn_step, plrnn_state_vjp, plrnn_param_vjp, plrnn_jacobian, plrnn_jacobian_vjp)


# -- region kernels (piecewise-linear protocol) ----------------------------------------
# p = a (M) | W (M*M, row-major) | h_eff (M), meta = [M]; the region of z is d = (z > 0),
# F_d = diag(a) + W diag(d): O(M^2) instead of the normal form's O(M^3).
@regions_kernel
def plrnn_regions(p, meta, pats, F, c):
    # column j of W enters only if unit j is active
    M = meta[0]
    oh = M + M * M
    for s in range(pats.shape[0]):
        for i in range(M):
            row = M + i * M
            for j in range(M):
                F[s, i, j] = p[row + j] if pats[s, j] != 0 else 0.0
            F[s, i, i] += p[i]
            c[s, i] = p[oh + i]


@rollout_kernel
def plrnn_rollout(p, meta, traj, act):
    M = meta[0]
    oh = M + M * M
    for s in range(act.shape[0]):
        for i in range(M):
            act[s, i] = 1 if traj[s, i] > 0.0 else 0
        for i in range(M):
            row = M + i * M
            acc = p[i] * traj[s, i] + p[oh + i]
            for j in range(M):
                zj = traj[s, j]
                acc += p[row + j] * (zj if zj > 0.0 else 0.0)
            traj[s + 1, i] = acc


#: the region kernels of every map ``z' = diag(a) z + W relu(z) + h`` (also the ReLU RNN's, with a = 0).
PLRNN_REGION_KERNELS = RegionKernels(plrnn_regions, plrnn_rollout)


def relu_units_map(model, theta, inputs, a, W, h) -> PiecewiseLinear:
    """The description of ``z' = diag(a) z + W relu(z) + h`` (bits ``z_i > 0``), with its O(M^2) kernels."""
    M = a.shape[0]
    return PiecewiseLinear.from_model(
        model, theta, inputs, L=np.diag(a), c=h, R=W, U=np.eye(M), v=np.zeros(M),
        kernels=PLRNN_REGION_KERNELS, p=np.concatenate([a, W.ravel(), h]), meta=np.array([M], dtype=np.int64),
        bit_labels=[f"z[{i}] > 0" for i in range(M)],
    )


@functools.lru_cache(maxsize=64)
def _offdiag_index(M: int) -> np.ndarray:
    idx = np.flatnonzero(~np.eye(M, dtype=bool).ravel())
    idx.setflags(write=False)
    return idx


@dataclass(frozen=True)
class PLRNN(Model):
    """Piecewise-linear RNN ``z_t = A z_{t-1} + W relu(z_{t-1}) + C s_t + h``.

    Parameters
    ----------
    dim : int
        Latent dimension M.
    n_inputs : int
        Number of external inputs K (0: autonomous).
    full_W : bool
        If False (default) the diagonal of W is structurally zero and not a
        parameter; if True it is free.
    """

    dim: int
    n_inputs: int = 0
    full_W: bool = False

    def __post_init__(self):
        V.positive_int(self.dim, "dim")
        V.positive_int(self.n_inputs, "n_inputs", minimum=0)
        if not isinstance(self.full_W, (bool, np.bool_)):
            raise TypeError(f"full_W must be a bool; got {type(self.full_W).__name__}")

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        M, K = self.dim, self.n_inputs
        n_w = M * M if self.full_W else M * (M - 1)
        return {"A": (M,), "W": (n_w,) if not self.full_W else (M, M), "C": (M, K), "h": (M,)}

    @property
    def dtypes(self) -> tuple[str, ...]:
        return ("float64", "float32")

    @property
    def kernels(self):
        return PLRNN_KERNELS

    # -- theta <-> dense kernel layout ----------------------------------------------
    def _offdiag_index(self) -> np.ndarray:
        return _offdiag_index(self.dim)

    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Dense kernel layout ``a | W (M*M) | C | h | W^T``.

        ``W^T`` is derived: the backward pass reads columns of W as contiguous rows.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        (2 M + 2 M^2 + M K,) array
            The kernel parameter vector.
        """
        M, K = self.dim, self.n_inputs
        n = 2 * M + M * M + M * K
        p = np.empty(n + M * M)
        if self.full_W:
            p[:n] = theta
        else:
            p[:M] = theta[:M]
            Wd = np.zeros(M * M)
            Wd[self._offdiag_index()] = theta[M : M + M * (M - 1)]
            p[M : M + M * M] = Wd
            p[M + M * M : n] = theta[M + M * (M - 1) :]
        p[n:] = p[M : M + M * M].reshape(M, M).T.ravel()
        return p

    def reduce_grad(self, grad_p: np.ndarray) -> np.ndarray:
        M, K = self.dim, self.n_inputs
        n = 2 * M + M * M + M * K
        if self.full_W:
            return grad_p[:n].copy()
        Wd = grad_p[M : M + M * M]
        return np.concatenate([grad_p[:M], Wd[self._offdiag_index()], grad_p[M + M * M : n]])

    def param_names(self) -> list[str]:
        names = super().param_names()
        if self.full_W:
            return names
        M = self.dim
        w_labels = [f"W[{i},{j}]" for i in range(M) for j in range(M) if i != j]
        sl = self.param_slices()["W"]
        return names[: sl.start] + w_labels + names[sl.stop :]

    def unknown_param_hint(self, name: str) -> str:
        if not self.full_W and "".join(name.split()).startswith("W["):
            return (" (the diagonal of W is structurally zero in this PLRNN: use A[i] for the self-coupling, "
                    "or build the model with full_W=True)")
        return ""

    # -- people-facing views ----------------------------------------------------------
    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named arrays: ``A`` (M,), ``W`` (M, M), ``C`` (M, K), ``h`` (M,).

        ``A``, ``C``, ``h`` (and ``W`` when ``full_W``) are views into
        ``theta``; with a zero-diagonal W, ``W`` is a dense copy.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        dict of str to array
            ``{"A", "W", "C", "h"}``.
        """
        theta = self.check_theta(theta)
        M, K = self.dim, self.n_inputs
        W = theta[M : M + M * M].reshape(M, M) if self.full_W else self.expand(theta)[M : M + M * M].reshape(M, M)
        o = M + (M * M if self.full_W else M * (M - 1))
        return {
            "A": theta[:M],
            "W": W,
            "C": theta[o : o + M * K].reshape(M, K),
            "h": theta[o + M * K :],
        }

    def pack(self, A, W, h, C=None) -> np.ndarray:
        """Build ``theta`` from ``A`` (M,) or diagonal (M, M), ``W`` (M, M), ``h``, ``C``.

        Parameters
        ----------
        A : (M,) or (M, M) array
            The diagonal of A, or A as a diagonal matrix.
        W : (M, M) array
            The coupling matrix (zero diagonal unless ``full_W``).
        h : (M,) array
            The bias.
        C : (M, K) array, optional
            The input weights (required when the model has inputs).

        Returns
        -------
        (P,) array
            ``theta``.

        Raises
        ------
        ValueError
            If ``W`` has a non-zero diagonal while the model has a structurally
            zero diagonal (``full_W=False``), or if ``A`` is a matrix with
            off-diagonal entries.
        """
        M, K = self.dim, self.n_inputs
        A = V.as_float_array(A, "A")
        if A.ndim == 2:
            if A.shape != (M, M):
                raise ValueError(f"A must have shape ({M},) or ({M}, {M}); got {A.shape}")
            if np.any(A - np.diag(np.diag(A))):
                raise ValueError("A must be diagonal: pass its diagonal as a vector of length M")
            A = np.diag(A).copy()
        if A.shape != (M,):
            raise ValueError(f"A must have shape ({M},) or ({M}, {M}); got {A.shape}")
        W = V.as_float_array(W, "W")
        if W.shape != (M, M):
            raise ValueError(f"W must be square ({M} x {M}); got shape {W.shape}")
        h = V.as_float_array(h, "h").reshape(-1) if np.ndim(h) <= 1 else V.as_float_array(h, "h")
        if h.shape != (M,):
            raise ValueError(f"h must have shape ({M},); got {h.shape}")
        if C is None:
            if K:
                raise ValueError(f"C (shape ({M}, {K})) is required: the model has {K} inputs")
            C = np.zeros((M, 0))
        C = V.as_float_array(C, "C")
        if C.shape != (M, K):
            raise ValueError(f"C must have shape ({M}, {K}); got {C.shape}")
        for arr, nm in ((A, "A"), (W, "W"), (h, "h"), (C, "C")):
            V.check_finite(arr, nm)
        if self.full_W:
            w = W.ravel()
        else:
            if np.any(np.diag(W) != 0.0):
                raise ValueError(
                    "W has a non-zero diagonal, but this PLRNN's W diagonal is structurally "
                    "zero (self-coupling lives in A): move the diagonal into A, or create the "
                    "model with full_W=True"
                )
            w = W.ravel()[self._offdiag_index()]
        return np.concatenate([A, w, C.ravel(), h])

    def init(
        self,
        seed=0,
        *,
        a_range: tuple[float, float] = (0.5, 0.9),
        w_scale: float = 0.5,
        c_scale: float = 0.1,
        h_scale: float = 0.0,
        max_norm: float | None = 0.99,
    ) -> np.ndarray:
        """Random parameters, stable by construction.

        ``A_ii ~ U(a_range)``, ``W_ij ~ N(0, w_scale^2 / M)`` (off-diagonal
        unless ``full_W``), ``C_ik ~ N(0, c_scale^2 / max(K, 1))``,
        ``h_i ~ N(0, h_scale^2)``; then A and W are scaled together so that
        ``||A||_2 + ||W||_2 <= max_norm`` (Theorem 3's r of Eisenmann et al.
        2023 below 1): every region's Jacobian ``A + W D`` is then a
        contraction, so a free run from any state stays bounded.  Without the
        bound, ``||W||_2`` grows like ``2 w_scale`` and most models with M >= 8
        diverge.  ``max_norm=None`` keeps the raw draw.

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed.
        a_range : (float, float)
            Range of the uniform draw of the diagonal of A.
        w_scale : float
            Scale of W (standard deviation ``w_scale / sqrt(M)``).
        c_scale : float
            Scale of C (standard deviation ``c_scale / sqrt(max(K, 1))``).
        h_scale : float
            Standard deviation of h (0: zeros).
        max_norm : float or None
            Bound on ``||A||_2 + ||W||_2`` (None: no bound).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        rng, _ = V.generator(seed)
        a_range = V.value_range(a_range, "a_range")
        w_scale, c_scale, h_scale = (V.finite_float(x, n, low=0.0) for x, n in
                                     ((w_scale, "w_scale"), (c_scale, "c_scale"), (h_scale, "h_scale")))
        M, K = self.dim, self.n_inputs
        A = rng.uniform(a_range[0], a_range[1], M)
        W = rng.normal(0.0, w_scale / np.sqrt(M), (M, M))
        if not self.full_W:
            np.fill_diagonal(W, 0.0)
        C = rng.normal(0.0, c_scale / np.sqrt(max(K, 1)), (M, K))
        h = rng.normal(0.0, h_scale, M) if h_scale > 0 else np.zeros(M)
        return bound_init(self, self.pack(A=A, W=W, h=h, C=C), max_norm, ("A", "W"))

    @classmethod
    def from_arrays(cls, A, W, h, C=None, **options) -> tuple[PLRNN, np.ndarray]:
        """``(model, theta)`` from arrays: ``A`` (M,) or diagonal (M, M), a full ``W`` (M, M), ``h``, ``C`` (M, K).

        The model has ``full_W=True`` (so any W is accepted), ``n_inputs`` from ``C``
        and further settings from ``options`` (e.g. ``n_relu`` of the ALRNN).

        Parameters
        ----------
        A : (M,) or (M, M) array
            The diagonal of A, or A as a diagonal matrix.
        W : (M, M) array
            The coupling matrix.
        h : (M,) array
            The bias.
        C : (M, K) array, optional
            The input weights (None: no inputs).
        **options
            Further settings of the model class.

        Returns
        -------
        model : PLRNN
            The model (of the class it is called on).
        theta : (P,) array
            Its parameter vector.
        """
        W = V.as_float_array(W, "W")
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise ValueError(f"W must be a square (M, M) matrix; got shape {W.shape}")
        K = 0 if C is None else int(np.shape(C)[1]) if np.ndim(C) == 2 else -1
        if K < 0:
            raise ValueError(f"C must have shape ({W.shape[0]}, K); got {np.shape(C)}")
        model = cls(W.shape[0], n_inputs=K, full_W=True, **options)
        return model, model.pack(A=A, W=W, h=h, C=C)

    def piecewise_linear(self, theta: np.ndarray, inputs: np.ndarray | None = None) -> PiecewiseLinear:
        """Regions ``d = (z > 0)``: ``F_d = A + W D``, ``c_d = h + C s``.

        Normal form ``L = A``, ``R = W``, ``U = I``, ``v = 0``.

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
        h = d["h"] if inputs is None else d["h"] + d["C"] @ inputs
        return relu_units_map(self, theta, inputs, np.ascontiguousarray(d["A"]), np.ascontiguousarray(d["W"]), h)
