r"""Orthogonal RNN with modReLU units (expRNN), as studied by Ribeiro et al. (2020).

Ribeiro, Tiels, Aguirre and Schön, "Beyond exploding and vanishing gradients:
analysing RNN training using attractors and smoothness" (AISTATS 2020) train
the orthogonal RNN (oRNN) of Lezcano-Casado and Martínez-Rubio (2019,
"Cheap orthogonal constraints in neural networks"):

.. math::

    h_{t+1} = \mathrm{modReLU}(z_{t+1}, b), \qquad z_{t+1} = W h_t + V u_{t+1},
    \qquad W = \exp(A), \quad A = S - S^\top,

with ``N`` units, ``K`` inputs ``u``, a free ``N x N`` matrix ``S`` (so ``A`` is
skew-symmetric and ``W`` is orthogonal: ``W^T W = exp(-A) exp(A) = I``), and the
real modReLU

.. math::

    \mathrm{modReLU}(z, b)_i = \mathrm{sign}(z_i)\, \mathrm{relu}(|z_i| + b_i)

(the real case of ``z / |z| relu(|z| + b)``; ``sign(0) = 0``, so
``modReLU(0, b) = 0`` for every ``b``).  With ``b = 0`` modReLU is the
identity, and for ``b_i > 0`` it is ``z_i + b_i sign(z_i)``: a unit is "dead"
(outputs 0) only where ``|z_i| + b_i <= 0``, which needs ``b_i < 0``.

Derivatives
-----------
Away from its kinks modReLU is piecewise linear:

.. math::

    \frac{\partial h'_i}{\partial z_i} = d_i := [\,|z_i| + b_i > 0\,], \qquad
    \frac{\partial h'_i}{\partial b_i} = \mathrm{sign}(z_i)\, d_i ,

so the one-step state Jacobian is ``J = diag(d) W`` and the second derivatives
vanish (``dJ/dh = 0``, ``dJ/dV = dJ/db = 0``, ``dJ_ij/dW_ij = d_i``).

*Kinks (convention).*  At ``|z_i| + b_i = 0`` the map is continuous with a
corner; we take ``d_i = 0`` there (the strict inequality, like the ReLU of the
other models).  At ``z_i = 0`` with ``b_i > 0`` modReLU jumps from ``-b_i``
to ``b_i`` (value 0 at the point itself); both one-sided derivatives are 1 and
we use ``d_i = 1`` (PyTorch's autograd of the same expression would give 0 at
exactly ``z_i = 0``).  Both sets have measure zero; nothing else depends on the
choice.

Gradient through the matrix exponential
---------------------------------------
The kernels work with the dense ``W`` (see :meth:`OrthogonalRNN.expand`) and
accumulate ``G = dL/dW``.  :meth:`OrthogonalRNN.reduce_grad` maps it to
``dL/dS`` exactly.  The Fréchet derivative of ``expm`` at ``A`` in the
direction ``E`` is

.. math::

    L(A, E) = \int_0^1 e^{sA} E\, e^{(1-s)A}\, ds ,

and its adjoint in the Frobenius inner product ``<X, Y> = tr(X^T Y)`` is the
Fréchet derivative at ``A^T``:

.. math::

    \langle G, L(A, E)\rangle
    = \int_0^1 \mathrm{tr}\big(e^{(1-s)A} G^\top e^{sA} E\big)\, ds
    = \Big\langle \int_0^1 e^{sA^\top} G\, e^{(1-s)A^\top} ds,\; E\Big\rangle
    = \langle L(A^\top, G), E\rangle ,

so ``dL/dA = L(A^T, G)`` (computed with :func:`scipy.linalg.expm_frechet`,
the algorithm of Al-Mohy and Higham 2009: exact up to rounding, no finite
differences).  Finally ``A = S - S^T`` gives
``dL/dS_kl = <dL/dA, E_kl - E_lk>``, i.e.

.. math::

    \frac{\partial L}{\partial S} = \bar A - \bar A^\top, \qquad \bar A = L(A^\top, G).

The generator from the upper triangle
---------------------------------------
With ``generator="upper"`` only the strict upper triangle of ``S`` is used,
``A = U - U^T`` with ``U = triu(S, 1)``, which is how the expRNN code (and so
Ribeiro et al.) parametrises ``A``; then

.. math::

    \frac{\partial L}{\partial S} = \mathrm{triu}(\bar A - \bar A^\top, 1),

and the diagonal and lower triangle of ``S`` get no gradient.  The two
choices give the same ``W`` and the same loss landscape in ``A``, but not the
same training: with ``A = S - S^T`` an entry ``A_kl`` moves with both
``S_kl`` and ``S_lk``, whose gradients are equal and opposite, so gradient
descent and Adam move ``A`` twice as far per step as with the upper
triangle.  With SGD or Adam, ``generator="upper"`` at learning rate ``eta``
trains ``A`` exactly as ``generator="full"`` would at ``eta / 2`` (the other
parameters keep ``eta``), unless the gradient is clipped by its global norm,
which is ``sqrt(2)`` times longer in ``S`` with ``"full"``.

Layout of ``theta``: ``S (N*N) | V (N*K) | b (N)`` (row-major).  The kernels
get ``W (N*N) | V (N*K) | b (N)``: the same layout with ``S`` replaced by
``W = expm(A)``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import scipy.linalg

from .. import _validate as V_
from ..config import njit
from ._linalg import acc_at_b, use_blas
from .base import (
    Model,
    build_kernels,
    jacobian_kernel,
    jacobian_vjp_kernel,
    param_vjp_kernel,
    state_vjp_kernel,
    step_kernel,
)
from .vanilla import _views  # the same layout W | V | b

_SKEW_INITS = ("henaff", "cayley", "normal")
_GENERATORS = ("full", "upper")


# -- modReLU ---------------------------------------------------------------------------------
@njit(inline="always")
def _modrelu(x, b):
    # sign(x) relu(|x| + b); a NaN passes through (a diverged run must stay visible)
    a = abs(x) + b
    if a > 0.0:
        if x > 0.0:
            return a
        if x < 0.0:
            return -a
        return 0.0
    if a <= 0.0:
        return 0.0
    return a  # NaN


@njit(inline="always")
def _dmodrelu(x, b):
    # d modReLU / dx: 1 where |x| + b > 0 (also at x = 0 when b > 0), else 0
    return 1.0 if abs(x) + b > 0.0 else 0.0


@njit
def _preactivation(p, meta, Z, S):
    """``H = Z W^T + S V^T`` for rows ``Z`` (n, N) and ``S`` (n, K)."""
    N, K = meta[0], meta[1]
    W, V, b = _views(p, N, K)
    rows = Z.shape[0]
    if use_blas(N, rows):
        H = np.dot(Z, W.T)
        if K > 0:
            H += np.dot(S, V.T)
        return H
    H = np.empty((rows, N))
    for r in range(rows):
        z = Z[r]
        for i in range(N):
            w = W[i]
            acc = 0.0
            for j in range(N):
                acc += w[j] * z[j]
            for k in range(K):
                acc += V[i, k] * S[r, k]
            H[r, i] = acc
    return H


@step_kernel
def orthogonal_step(p, meta, z, s, z_next):
    # h' = modReLU(W h + V u, b)
    N, K = meta[0], meta[1]
    b = p[N * N + N * K : N * N + N * K + N]
    H = _preactivation(p, meta, z, s)
    for bb in range(z.shape[0]):
        for i in range(N):
            z_next[bb, i] = _modrelu(H[bb, i], b[i])


@state_vjp_kernel
def orthogonal_state_vjp(p, meta, z, s, g, g_z):
    # g_z = W^T (d * g), d = [|W h + V u| + b > 0]; the pre-activation is recomputed from the state
    N, K = meta[0], meta[1]
    W, V, b = _views(p, N, K)
    H = _preactivation(p, meta, z, s)
    rows = z.shape[0]
    for r in range(rows):
        for i in range(N):
            H[r, i] = _dmodrelu(H[r, i], b[i]) * g[r, i]
    if use_blas(N, rows):
        g_z[:, :] = np.dot(H, W)
        return
    for r in range(rows):
        o = g_z[r]
        for j in range(N):
            o[j] = 0.0
        for i in range(N):
            u = H[r, i]
            w = W[i]
            for j in range(N):
                o[j] += u * w[j]


@param_vjp_kernel
def orthogonal_param_vjp(p, meta, Z, S, G, g_p):
    # with Gz = d * G over all rows:  dL/dW = Gz^T Z,  dL/dV = Gz^T S,  dL/db = colsum(sign(H) * Gz)
    N, K = meta[0], meta[1]
    b = p[N * N + N * K : N * N + N * K + N]
    gW, gV, gb = _views(g_p, N, K)
    H = _preactivation(p, meta, Z, S)
    Gz = np.empty_like(H)
    sb = np.zeros(N)
    for r in range(H.shape[0]):
        for i in range(N):
            x = H[r, i]
            gz = _dmodrelu(x, b[i]) * G[r, i]
            Gz[r, i] = gz
            if x > 0.0:
                sb[i] += gz
            elif x < 0.0:
                sb[i] -= gz
    acc_at_b(Gz, Z, gW)
    if K > 0:
        acc_at_b(Gz, S, gV)
    gb += sb


@jacobian_kernel
def orthogonal_jacobian(p, meta, z, s, J):
    # J = diag(d) W
    N, K = meta[0], meta[1]
    W, V, b = _views(p, N, K)
    H = _preactivation(p, meta, z.reshape((1, N)), s.reshape((1, K)))
    for i in range(N):
        d = _dmodrelu(H[0, i], b[i])
        for j in range(N):
            J[i, j] = d * W[i, j]


@jacobian_vjp_kernel
def orthogonal_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # J_ij = d_i W_ij with d piecewise constant: dJ_ij/dW_ij = d_i, every other derivative is 0
    N, K = meta[0], meta[1]
    W, V, b = _views(p, N, K)
    gW = g_p[0 : N * N].reshape((N, N))
    H = _preactivation(p, meta, z.reshape((1, N)), s.reshape((1, K)))
    for i in range(N):
        if _dmodrelu(H[0, i], b[i]) > 0.0:
            for j in range(N):
                gW[i, j] += Jbar[i, j]
    for j in range(N):
        g_z[j] = 0.0


ORTHOGONAL_KERNELS = build_kernels(
    orthogonal_step,
    orthogonal_state_vjp,
    orthogonal_param_vjp,
    orthogonal_jacobian,
    orthogonal_jacobian_vjp,
)


# -- the matrix exponential and its adjoint ---------------------------------------------------
def skew_generator(S: np.ndarray, generator: str = "full") -> np.ndarray:
    """The skew-symmetric generator ``A`` of ``S``.

    Parameters
    ----------
    S : (N, N) array
        The free parameter matrix.
    generator : {"full", "upper"}
        ``"full"``: ``A = S - S^T``; ``"upper"``: ``A = U - U^T`` with
        ``U = triu(S, 1)`` (only the strict upper triangle of ``S`` is used).

    Returns
    -------
    (N, N) ndarray
        ``A``.
    """
    if generator == "upper":
        S = np.triu(S, 1)
    return S - S.T


def skew_expm(S: np.ndarray, generator: str = "full") -> tuple[np.ndarray, np.ndarray]:
    """The skew-symmetric generator ``A`` of ``S`` and the orthogonal ``W = expm(A)``.

    Parameters
    ----------
    S : (N, N) array
        The free parameter matrix.
    generator : {"full", "upper"}
        How ``A`` is read from ``S`` (:func:`skew_generator`).

    Returns
    -------
    A : (N, N) ndarray
        The skew-symmetric generator.
    W : (N, N) ndarray
        ``expm(A)`` (:func:`scipy.linalg.expm`, scaling and squaring).
    """
    A = skew_generator(S, generator)
    return A, scipy.linalg.expm(A)


def skew_expm_grad(A: np.ndarray, G: np.ndarray, generator: str = "full") -> np.ndarray:
    r"""``dL/dS`` from ``G = dL/dW`` for ``W = expm(A)``, ``A`` the generator of ``S``.

    .. math::

        \bar A = L_{\exp}(A^\top, G), \qquad
        \frac{\partial L}{\partial S} = \bar A - \bar A^\top \ (\text{full}), \quad
        \mathrm{triu}(\bar A - \bar A^\top, 1) \ (\text{upper}),

    where ``L_exp(X, E)`` is the Fréchet derivative of the matrix exponential
    at ``X`` in the direction ``E`` (its adjoint at ``A`` is the derivative at
    ``A^T``; derivation in the module docstring).

    Parameters
    ----------
    A : (N, N) array
        The generator (:func:`skew_generator`).
    G : (N, N) array
        Gradient with respect to ``W``.
    generator : {"full", "upper"}
        How ``A`` was read from ``S``.

    Returns
    -------
    (N, N) ndarray
        Gradient with respect to ``S``.
    """
    Abar = scipy.linalg.expm_frechet(A.T, G, compute_expm=False, check_finite=False)
    grad = Abar - Abar.T
    return np.triu(grad, 1) if generator == "upper" else grad


# Each thread's most recent expansion of each model: {model: (theta, A, p)}.  See OrthogonalRNN.reduce_grad.
_EXPANSIONS = threading.local()
_MAX_CACHED_MODELS = 8


def _expansions() -> dict:
    cache = getattr(_EXPANSIONS, "by_model", None)
    if cache is None:
        cache = _EXPANSIONS.by_model = {}
    return cache


@dataclass(frozen=True)
class OrthogonalRNN(Model):
    r"""Orthogonal RNN ``h' = modReLU(W h + V u, b)`` with ``W = expm(A)``, ``A`` skew (expRNN).

    The oRNN of Ribeiro et al. (2020), which is the expRNN of Lezcano-Casado
    and Martínez-Rubio (2019) with the real modReLU nonlinearity.  See the
    module docstring for the equations, the derivatives, the convention at the
    kinks of modReLU and the gradient through the matrix exponential.

    Parameters
    ----------
    n_units : int
        Number of units N (the state dimension).
    n_inputs : int
        Number of inputs K.
    generator : {"full", "upper"}
        How the skew-symmetric ``A`` is read from the free matrix ``S``:
        ``"full"`` (default), ``A = S - S^T``; ``"upper"``, ``A = U - U^T``
        with ``U`` the strict upper triangle of ``S``, as the expRNN code the
        authors used does.  Same ``W``, but the upper triangle moves ``A``
        half as far per optimiser step (module docstring).

    Notes
    -----
    ``theta = S (N*N) | V (N*K) | b (N)``.  ``S`` is over-parameterised: only
    ``A`` matters.  With ``"full"`` the gradient ``dL/dS = Abar - Abar^T`` is
    itself skew-symmetric, so a gradient step keeps the symmetric part of
    ``S`` (which is 0 after :meth:`init`) unchanged; with ``"upper"`` the
    gradient is zero on the diagonal and below it.

    Examples
    --------
    >>> model = OrthogonalRNN(4, n_inputs=1)
    >>> theta = model.init(seed=0)
    >>> W = model.recurrent_matrix(theta)
    >>> bool(np.allclose(W.T @ W, np.eye(4)))
    True
    """

    n_units: int
    n_inputs: int = 0
    generator: str = "full"

    def __post_init__(self):
        V_.positive_int(self.n_units, "n_units")
        V_.positive_int(self.n_inputs, "n_inputs", minimum=0)
        V_.choice(self.generator, "generator", _GENERATORS)

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The state dimension: ``n_units``."""
        return self.n_units

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        N, K = self.n_units, self.n_inputs
        return {"S": (N, N), "V": (N, K), "b": (N,)}

    @property
    def kernels(self):
        return ORTHOGONAL_KERNELS

    # -- theta <-> kernel layout ------------------------------------------------------
    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Kernel layout ``W (N*N) | V (N*K) | b (N)`` with ``W = expm(A)``.

        The exponential is computed once per engine call.  The expansion is
        also remembered for the calling thread (``theta``, ``A`` and the
        kernel vector), which :meth:`reduce_grad` needs and which makes a
        repeated expansion of the same ``theta`` (dynamics engines that call
        ``model.jacobian`` or ``simulate`` many times) a copy instead of a new
        exponential.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        (P,) array
            The kernel parameter vector.
        """
        theta = np.asarray(theta, dtype=float)
        N = self.n_units
        cache = _expansions()
        hit = cache.get(self)
        if hit is not None and hit[0].shape == theta.shape and np.array_equal(hit[0], theta):
            cache[self] = cache.pop(self)  # most recently used last
            return hit[2].copy()
        A, W = skew_expm(theta[: N * N].reshape(N, N), self.generator)
        p = np.concatenate([W.ravel(), theta[N * N :]])
        cache.pop(self, None)
        cache[self] = (theta.copy(), A, p.copy())
        while len(cache) > _MAX_CACHED_MODELS:
            del cache[next(iter(cache))]
        return p

    def reduce_grad(self, grad_p: np.ndarray) -> np.ndarray:
        """Gradient w.r.t. ``theta`` from the kernel gradient (``dL/dW | dL/dV | dL/db``).

        The map to ``dL/dS`` depends on the generator ``A`` (see :func:`skew_expm_grad`),
        but the engines pass only the kernel gradient.  It therefore uses the
        calling thread's most recent :meth:`expand` of this model, which is the
        engines' contract: :func:`~plrnn_numba.loss_and_grad` and the flossing
        engine call ``expand(theta)`` and then ``reduce_grad`` in the same
        thread, with no other expansion of the model in between.  The record is
        per thread (``threading.local``), so engine calls running in parallel
        threads cannot mix up their parameters.  Code that holds ``theta``
        should call the stateless :meth:`grad_theta` instead.

        Parameters
        ----------
        grad_p : (P,) array
            Gradient with respect to the kernel parameter vector.

        Returns
        -------
        (P,) array
            Gradient with respect to ``theta``.

        Raises
        ------
        RuntimeError
            When this thread has not expanded the model.
        """
        hit = _expansions().get(self)
        if hit is None:
            raise RuntimeError(
                f"{self!r}.reduce_grad needs the parameters the kernel gradient was computed at: call "
                "model.expand(theta) first in this thread, or use model.grad_theta(theta, grad_p)"
            )
        return self._reduce(hit[1], grad_p)

    def grad_theta(self, theta: np.ndarray, grad_p: np.ndarray) -> np.ndarray:
        """Stateless :meth:`reduce_grad`: the gradient w.r.t. ``theta`` at ``theta``.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        grad_p : (P,) array
            Gradient with respect to the kernel parameter vector at ``theta``.

        Returns
        -------
        (P,) array
            Gradient with respect to ``theta``.
        """
        theta = self.check_theta(theta)
        N = self.n_units
        S = theta[: N * N].reshape(N, N)
        return self._reduce(skew_generator(S, self.generator), grad_p)

    def _reduce(self, A: np.ndarray, grad_p: np.ndarray) -> np.ndarray:
        N, P = self.n_units, self.n_params
        grad_p = np.asarray(grad_p, dtype=float)
        if grad_p.shape != (P,):
            raise ValueError(f"the kernel gradient of {self!r} has shape ({P},); got {grad_p.shape}")
        out = grad_p.copy()
        out[: N * N] = skew_expm_grad(A, grad_p[: N * N].reshape(N, N), self.generator).ravel()
        return out

    # -- conveniences -----------------------------------------------------------------
    def recurrent_matrix(self, theta: np.ndarray) -> np.ndarray:
        """The orthogonal recurrent matrix ``W = expm(A)`` (``A = S - S^T``, or from ``triu(S, 1)``).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        (N, N) array
            ``W``.
        """
        theta = self.check_theta(theta)
        N = self.n_units
        return skew_expm(theta[: N * N].reshape(N, N), self.generator)[1]

    def pack(self, S, b, V=None) -> np.ndarray:
        """Build ``theta`` from ``S`` (N, N), ``b`` (N,) and ``V`` (N, K).

        Parameters
        ----------
        S : (N, N) array
            The free matrix of the generator ``A`` of ``W = expm(A)`` (``generator``).
        b : (N,) array
            Biases of modReLU.
        V : (N, K) array, optional
            Input weights (required when the model has inputs).

        Returns
        -------
        (P,) array
            ``theta``.
        """
        if V is None:
            if self.n_inputs:
                raise ValueError(f"V is required: the model has {self.n_inputs} inputs (shape ({self.n_units}, "
                                 f"{self.n_inputs}))")
            V = np.zeros((self.n_units, 0))
        return super().pack(S=S, V=V, b=b)

    def init(self, seed=0, *, skew_init: str = "henaff", v_scale: float | None = None,
             b_range: float = 0.01, scale: float = 1.0) -> np.ndarray:
        r"""Random parameters; the defaults are those of the expRNN code the authors used.

        * ``skew_init="henaff"`` (default): ``A = S - S^T`` block diagonal with
          2 x 2 blocks ``[[0, a_i], [-a_i, 0]]``, ``a_i ~ U[-pi, pi]``
          (Henaff et al. 2016), i.e. ``S[2i, 2i+1] = a_i`` and every other
          entry 0; ``W`` is then a block rotation with uniform angles.
        * ``"cayley"``: the same blocks with ``a_i = -sqrt((1 - cos u)/(1 + cos u))``,
          ``u ~ U[0, pi/2]`` (Helfrich et al. 2018).
        * ``"normal"``: a dense generator, ``S_ij ~ N(0, scale^2 / (2N))``
          (so ``A_ij ~ N(0, scale^2 / N)`` off the diagonal); with
          ``generator="upper"`` the same ``A`` is stored in the upper
          triangle, ``S = triu(S - S^T, 1)``.

        ``V_ik ~ N(0, v_scale^2)`` with ``v_scale = sqrt(2 / K)`` by default
        (Kaiming's normal initialisation for ReLU units, as PyTorch's
        ``kaiming_normal_`` in the expRNN code), and ``b_i ~ U[-b_range, b_range]``
        (expRNN's modReLU: ``U[-0.01, 0.01]``).

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed.
        skew_init : {"henaff", "cayley", "normal"}
            Initialisation of the generator ``S`` (above).
        v_scale : float, optional
            Standard deviation of the input weights (default ``sqrt(2 / K)``).
        b_range : float
            Half-width of the uniform draw of the biases.
        scale : float
            Scale of the dense generator; only for ``skew_init="normal"``.

        Returns
        -------
        (P,) array
            ``theta``.
        """
        rng, _ = V_.generator(seed)
        V_.choice(skew_init, "skew_init", _SKEW_INITS)
        b_range = V_.finite_float(b_range, "b_range", low=0.0)
        scale = V_.finite_float(scale, "scale", low=0.0)
        N, K = self.n_units, self.n_inputs
        if v_scale is None:
            v_scale = np.sqrt(2.0 / K) if K else 0.0
        v_scale = V_.finite_float(v_scale, "v_scale", low=0.0)
        S = np.zeros((N, N))
        if skew_init == "normal":
            S = rng.normal(0.0, scale / np.sqrt(2.0 * N), (N, N))
            if self.generator == "upper":
                S = np.triu(S - S.T, 1)
        else:
            n_blocks = N // 2
            if skew_init == "henaff":
                a = rng.uniform(-np.pi, np.pi, n_blocks)
            else:
                c = np.cos(rng.uniform(0.0, np.pi / 2.0, n_blocks))
                a = -np.sqrt((1.0 - c) / (1.0 + c))
            idx = 2 * np.arange(n_blocks)
            S[idx, idx + 1] = a
        V = rng.normal(0.0, v_scale, (N, K))
        b = rng.uniform(-b_range, b_range, N)
        return self.pack(S=S, V=V, b=b)
