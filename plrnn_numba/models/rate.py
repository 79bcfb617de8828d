r"""Leaky rate RNN with full or low-rank connectivity.

From Dinc et al., "A ghost mechanism: an analytical model of abrupt learning".

The Euler discretisation of ``tau dx/dt = -x + tanh(W x + V u + b)`` with step
``dt`` and ``a = dt / tau``:

.. math::

    x_{t+1} = (1 - a)\, x_t + a \tanh(h_t), \qquad h_t = W x_t + V u_{t+1} + b,

with ``N`` units, ``K`` inputs ``u`` and ``a`` fixed (not trained; the authors
use ``a = 0.5``).  W is either a full trainable matrix, or the product of two
trainable factors of rank R,

.. math::

    W = m\, n = \sum_{q=1}^{R} m_q n_q^\top, \qquad m \in \mathbb{R}^{N \times R},\;
    n \in \mathbb{R}^{R \times N},

so that ``h = m kappa + V u + b`` with the latent variables ``kappa = n x``
(``kappa_q = n_q . x``).  For ``R = 1`` these are the paper's vectors ``m`` and
``n`` and its latent variable ``kappa = n . x``, whose latent circuit is
``tau dkappa/dt = -kappa + n . tanh(m kappa + b)``.  All products with a
low-rank W go through the factors, so a step costs O(N R), not O(N^2).

One-step state Jacobian:

.. math::

    J = \frac{\partial x_{t+1}}{\partial x_t} = (1 - a) I + a\, \mathrm{diag}(1 - \tanh^2 h_t)\, W .

Layout of ``theta`` (row-major blocks):

* full (``rank=None``): ``W (N*N) | V (N*K) | b (N)``
* rank R: ``m (N*R) | n (R*N) | V (N*K) | b (N)``; row ``q`` of ``n`` is the
  vector ``n_q``, contiguous in ``theta``.

The kernels receive ``theta | a`` (and ``m^T`` for low rank; see
:meth:`RateRNN.expand`): the step size travels in the parameter vector because
``meta`` holds only integers.

Tied readout: a low-rank model declares ``n_1`` (the first row of ``n``) as its
*readout vector* (:meth:`RateRNN.readout_vector`), which
:class:`~plrnn_numba.readouts.LatentReadout` uses for the paper's output
``sigmoid(c (kappa_1 - kappa*))``; the gradient through the readout then
reaches ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V_
from .. import config
from ..config import njit
from ._fastmath import _like, _tanh
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

# meta = [N, K, R, P]: units, inputs, rank (0 = full W), length of theta (where a sits in p)


@njit(inline="always")
def _n_conn(N, R):
    # length of the connectivity block: W, or the factors m and n
    return N * N if R == 0 else 2 * N * R


@njit(inline="always")
def _input_views(p, N, K, R):
    o = _n_conn(N, R)
    return p[o : o + N * K].reshape((N, K)), p[o + N * K : o + N * K + N]


@njit(inline="always")
def _blas(N, R, rows):
    # BLAS for products over many rows (batch items, or all time steps in param_vjp).  For a
    # few rows the loops below (contiguous dot products and row updates) are faster: measured at
    # N = 100 (full W, whole BPTT calls), the loops won for 1, 2 and 4 rows (single-threaded
    # OpenBLAS was slowest at 2 rows) and BLAS from 8 rows on.  Work per row: N^2 multiply-adds
    # for a full W, 2 N R through the factors.
    work = N * N if R == 0 else 2 * N * R
    return rows >= 2 * config.BLAS_MIN_BATCH and work >= 256


@njit(inline="always")
def _m_transposed(p, N, R, P):
    # m^T (R, N), appended to the kernel vector by RateRNN.expand so that loops over units are contiguous
    return p[P + 1 : P + 1 + R * N].reshape((R, N))


@njit
def _preactivation(p, meta, Z, S):
    """``H = Z W^T + S V^T + b`` for rows ``Z`` (n, N), ``S`` (n, K); also ``KAP = Z n^T`` (n, R) for low rank."""
    N, K, R = meta[0], meta[1], meta[2]
    rows = Z.shape[0]
    Vm, b = _input_views(p, N, K, R)
    blas = _blas(N, R, rows)
    if R == 0:
        KAP = np.empty((rows, 0))
        W = p[0 : N * N].reshape((N, N))
        if blas:
            H = np.dot(Z, W.T)
        else:
            H = np.empty((rows, N))
            for r in range(rows):
                z = Z[r]
                for i in range(N):
                    w = W[i]
                    acc = 0.0
                    for j in range(N):
                        acc += w[j] * z[j]
                    H[r, i] = acc
    else:
        n = p[N * R : 2 * N * R].reshape((R, N))
        mT = _m_transposed(p, N, R, meta[3])
        if blas:
            KAP = np.dot(Z, n.T)
            H = np.dot(KAP, mT)
        else:
            # one latent variable at a time, so that every inner loop runs over the N units
            KAP = np.empty((rows, R))
            H = np.zeros((rows, N))
            for r in range(rows):
                z = Z[r]
                h = H[r]
                for q in range(R):
                    nq = n[q]
                    kap = 0.0
                    for j in range(N):
                        kap += nq[j] * z[j]
                    KAP[r, q] = kap
                    mq = mT[q]
                    for i in range(N):
                        h[i] += mq[i] * kap
    if K > 0 and blas:
        H += np.dot(S, Vm.T)
        for r in range(rows):
            for i in range(N):
                H[r, i] += b[i]
    else:
        for r in range(rows):
            for i in range(N):
                acc = H[r, i] + b[i]
                for k in range(K):
                    acc += Vm[i, k] * S[r, k]
                H[r, i] = acc
    return H, KAP


@njit(inline="always")
def _add_w_transpose_times(p, meta, U, out):
    """``out += U W`` for rows ``U`` (n, N), i.e. ``out_r += W^T u_r``."""
    N, R = meta[0], meta[2]
    rows = U.shape[0]
    blas = _blas(N, R, rows)
    if R == 0:
        W = p[0 : N * N].reshape((N, N))
        if blas:
            out += np.dot(U, W)
            return
        for r in range(rows):
            o = out[r]
            for i in range(N):
                ui = U[r, i]
                w = W[i]
                for j in range(N):
                    o[j] += ui * w[j]
        return
    # W^T u = n^T (m^T u): two thin products, O(N R)
    n = p[N * R : 2 * N * R].reshape((R, N))
    mT = _m_transposed(p, N, R, meta[3])
    if blas:
        out += np.dot(np.dot(U, mT.T), n)
        return
    for r in range(rows):
        u = U[r]
        o = out[r]
        for q in range(R):
            mq = mT[q]
            mu = 0.0  # (m^T u)_q
            for i in range(N):
                mu += mq[i] * u[i]
            nq = n[q]
            for j in range(N):
                o[j] += mu * nq[j]


@step_kernel
def rate_step(p, meta, z, s, z_next):
    # x' = (1 - a) x + a tanh(W x + V u + b)
    N = meta[0]
    a = p[meta[3]]
    a1 = _like(a, 1.0) - a  # in the arrays' precision
    H, _ = _preactivation(p, meta, z, s)
    for bb in range(z.shape[0]):
        for i in range(N):
            z_next[bb, i] = a1 * z[bb, i] + a * _tanh(H[bb, i])


@njit(inline="always")
def _scaled_adjoint(a, H, G):
    # dL/dh = a (1 - tanh^2 h) * dL/dx'  (overwrites H)
    one = _like(a, 1.0)
    for r in range(H.shape[0]):
        for i in range(H.shape[1]):
            t = _tanh(H[r, i])
            H[r, i] = a * (one - t * t) * G[r, i]
    return H


@state_vjp_kernel
def rate_state_vjp(p, meta, z, s, g, g_z):
    # g_z = (1 - a) g + W^T (a (1 - tanh^2 h) g); h is recomputed from z (the engines store only states)
    a = p[meta[3]]
    H, _ = _preactivation(p, meta, z, s)
    U = _scaled_adjoint(a, H, g)
    a1 = _like(a, 1.0) - a
    for bb in range(g.shape[0]):
        for j in range(g.shape[1]):
            g_z[bb, j] = a1 * g[bb, j]
    _add_w_transpose_times(p, meta, U, g_z)


@param_vjp_kernel
def rate_param_vjp(p, meta, Z, S, G, g_p):
    # with Gh = a (1 - tanh^2 H) G over all rows:
    #   full:     dL/dW = Gh^T Z
    #   low rank: dL/dm = Gh^T KAP (KAP = Z n^T),  dL/dn = (Gh m)^T Z
    #   dL/dV = Gh^T S,  dL/db = column sums of Gh
    N, K, R = meta[0], meta[1], meta[2]
    a = p[meta[3]]
    H, KAP = _preactivation(p, meta, Z, S)
    Gh = _scaled_adjoint(a, H, G)
    if R == 0:
        acc_at_b(Gh, Z, g_p[0 : N * N].reshape((N, N)))
    else:
        acc_at_b(Gh, KAP, g_p[0 : N * R].reshape((N, R)))
        m = p[0 : N * R].reshape((N, R))
        acc_at_b(a_b(Gh, m), Z, g_p[N * R : 2 * N * R].reshape((R, N)))
    gV, gb = _input_views(g_p, N, K, R)
    if K > 0:
        acc_at_b(Gh, S, gV)
    for r in range(Gh.shape[0]):
        for i in range(N):
            gb[i] += Gh[r, i]


@jacobian_kernel
def rate_jacobian(p, meta, z, s, J):
    # J = (1 - a) I + a diag(1 - tanh^2 h) W
    N, K, R = meta[0], meta[1], meta[2]
    a = p[meta[3]]
    H, _ = _preactivation(p, meta, z.reshape((1, N)), s.reshape((1, K)))
    d = np.empty(N)
    for i in range(N):
        t = _tanh(H[0, i])
        d[i] = a * (1.0 - t * t)
    if R == 0:
        W = p[0 : N * N].reshape((N, N))
        for i in range(N):
            for j in range(N):
                J[i, j] = d[i] * W[i, j]
    else:
        m = p[0 : N * R].reshape((N, R))
        n = p[N * R : 2 * N * R].reshape((R, N))
        for i in range(N):
            Ji = J[i]
            for j in range(N):
                Ji[j] = 0.0
            for q in range(R):
                c = d[i] * m[i, q]
                nq = n[q]
                for j in range(N):
                    Ji[j] += c * nq[j]
    for i in range(N):
        J[i, i] += 1.0 - a


@jacobian_vjp_kernel
def rate_jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p):
    # J_ij = (1 - a) delta_ij + a d_i W_ij with d = 1 - tanh^2(h), h = W z + V s + b.
    # Through d: hbar_i = (sum_j Jbar_ij a W_ij) * d'(h_i), d' = -2 tanh d; then
    #   g_z = W^T hbar;  dW_ij += a d_i Jbar_ij + hbar_i z_j;  dV_ik += hbar_i s_k;  db_i += hbar_i.
    # Low rank: dm = dW n^T and dn = m^T dW, formed without building dW.
    N, K, R = meta[0], meta[1], meta[2]
    a = p[meta[3]]
    H, KAP = _preactivation(p, meta, z.reshape((1, N)), s.reshape((1, K)))
    ad = np.empty(N)  # a d_i
    hbar = np.empty((1, N))
    if R == 0:
        W = p[0 : N * N].reshape((N, N))
        gW = g_p[0 : N * N].reshape((N, N))
        for i in range(N):
            t = _tanh(H[0, i])
            d = 1.0 - t * t
            ad[i] = a * d
            acc = 0.0
            for j in range(N):
                acc += Jbar[i, j] * W[i, j]
            hbar[0, i] = a * acc * (-2.0 * t * d)
        for i in range(N):
            hi = hbar[0, i]
            adi = ad[i]
            for j in range(N):
                gW[i, j] += adi * Jbar[i, j] + hi * z[j]
    else:
        m = p[0 : N * R].reshape((N, R))
        n = p[N * R : 2 * N * R].reshape((R, N))
        gm = g_p[0 : N * R].reshape((N, R))
        gn = g_p[N * R : 2 * N * R].reshape((R, N))
        # JN = Jbar n^T (N, R): sum_j Jbar_ij W_ij = sum_q m_iq JN_iq
        JN = np.zeros((N, R))
        for i in range(N):
            for q in range(R):
                nq = n[q]
                acc = 0.0
                for j in range(N):
                    acc += Jbar[i, j] * nq[j]
                JN[i, q] = acc
        for i in range(N):
            t = _tanh(H[0, i])
            d = 1.0 - t * t
            ad[i] = a * d
            acc = 0.0
            for q in range(R):
                acc += m[i, q] * JN[i, q]
            hbar[0, i] = a * acc * (-2.0 * t * d)
        # dm_iq += a d_i JN_iq + hbar_i kappa_q
        for i in range(N):
            for q in range(R):
                gm[i, q] += ad[i] * JN[i, q] + hbar[0, i] * KAP[0, q]
        # dn_qj += sum_i a d_i m_iq Jbar_ij + (m^T hbar)_q z_j
        for q in range(R):
            gq = gn[q]
            mh = 0.0
            for i in range(N):
                mh += m[i, q] * hbar[0, i]
                c = ad[i] * m[i, q]
                Ji = Jbar[i]
                for j in range(N):
                    gq[j] += c * Ji[j]
            for j in range(N):
                gq[j] += mh * z[j]
    gV, gb = _input_views(g_p, N, K, R)
    for i in range(N):
        gb[i] += hbar[0, i]
        for k in range(K):
            gV[i, k] += hbar[0, i] * s[k]
    for j in range(N):
        g_z[j] = 0.0
    _add_w_transpose_times(p, meta, hbar, g_z.reshape((1, N)))


RATE_KERNELS = build_kernels(rate_step, rate_state_vjp, rate_param_vjp, rate_jacobian, rate_jacobian_vjp)


@dataclass(frozen=True)
class RateRNN(Model):
    """Leaky rate RNN ``x' = (1 - a) x + a tanh(W x + V u + b)`` with full or low-rank W.

    Dinc et al., "A ghost mechanism: an analytical model of abrupt learning"
    (eq. 3 discretised with ``a = dt / tau``; W = m n for the low-rank
    networks).  See the module docstring for the equations and the layout of
    ``theta``.

    Parameters
    ----------
    n_units : int
        Number of units N (the state dimension).
    n_inputs : int
        Number of inputs K (0 for the autonomous network of the paper).
    rank : int or None
        None: W is a full trainable N x N matrix.  An int ``1 <= R <= N``:
        ``W = m n`` with trainable factors m (N x R) and n (R x N).
    alpha : float
        The step ``a = dt / tau`` in ``(0, 1]`` (fixed, not trained; the
        authors use 0.5).  ``a = 1`` is the non-leaky RNN ``x' = tanh(W x + ...)``.

    Examples
    --------
    The rank-one network of the paper (N = 100, a = 0.5, m, n ~ N(0, 1/N), b = 0):

    >>> model = RateRNN(n_units=100, rank=1)
    >>> theta = model.init(seed=0)
    >>> model.unpack(theta)["n"].shape
    (1, 100)
    """

    n_units: int
    n_inputs: int = 0
    rank: int | None = None
    alpha: float = 0.5

    def __post_init__(self):
        V_.positive_int(self.n_units, "n_units")
        V_.positive_int(self.n_inputs, "n_inputs", minimum=0)
        if self.rank is not None:
            object.__setattr__(self, "rank", V_.positive_int(self.rank, "rank", maximum=self.n_units))
        a = V_.finite_float(self.alpha, "alpha", low=0.0, high=1.0, open_low=True)
        object.__setattr__(self, "alpha", a)

    @property
    def dim(self) -> int:  # type: ignore[override]
        """The state dimension: ``n_units``."""
        return self.n_units

    @property
    def low_rank(self) -> bool:
        """Whether W is parameterised by the factors m and n."""
        return self.rank is not None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        N, K = self.n_units, self.n_inputs
        if self.rank is None:
            return {"W": (N, N), "V": (N, K), "b": (N,)}
        return {"m": (N, self.rank), "n": (self.rank, N), "V": (N, K), "b": (N,)}

    @property
    def meta(self) -> np.ndarray:
        return np.array([self.n_units, self.n_inputs, self.rank or 0, self.n_params], dtype=np.int64)

    @property
    def kernels(self):
        return RATE_KERNELS

    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Kernel layout ``theta | a`` (the fixed step size), then ``m^T`` (R*N) for a low-rank model.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        array
            The kernel parameter vector.
        """
        if self.rank is None:
            return np.concatenate([theta, [self.alpha]])
        m = theta[: self.n_units * self.rank].reshape(self.n_units, self.rank)
        return np.concatenate([theta, [self.alpha], m.T.ravel()])

    def reduce_grad(self, grad_p: np.ndarray) -> np.ndarray:
        return grad_p[: self.n_params].copy()

    def unknown_param_hint(self, name: str) -> str:
        if self.rank is not None and name.startswith("W"):
            return f" (this RateRNN has rank {self.rank}: W = m @ n, name entries m[i,q] or n[q,j] instead)"
        if self.rank is None and name[:1] in ("m", "n"):
            return " (this RateRNN has a full W (rank=None): name entries W[i,j])"
        return ""

    def readout_vector(self) -> slice | None:
        """Where the readout vector ``n_1`` (the first row of ``n``) lies in ``theta``; None for a full W.

        :class:`~plrnn_numba.readouts.LatentReadout` reads the latent variable
        ``kappa_1 = n_1 . x`` through this slice, so its gradient reaches ``n``.

        Returns
        -------
        slice or None
            The slice of ``n_1`` in ``theta``.
        """
        if self.rank is None:
            return None
        o = self.n_units * self.rank
        return slice(o, o + self.n_units)

    def connectivity(self, theta: np.ndarray) -> np.ndarray:
        """The dense N x N matrix W (``m @ n`` for a low-rank model; a copy).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        (N, N) array
            The connectivity.
        """
        d = self.unpack(theta)
        return d["W"].copy() if self.rank is None else d["m"] @ d["n"]

    def pack(self, *, W=None, m=None, n=None, V=None, b=None) -> np.ndarray:
        """Build ``theta`` from named arrays.

        Parameters
        ----------
        W : (N, N) array
            Full connectivity (``rank=None`` only).
        m, n : (N, R) and (R, N) arrays
            Factors of ``W = m n`` (low rank only); for rank one the paper's
            vectors ``m`` and ``n`` of shape (N,) are accepted too.
        V : (N, K) array, optional
            Input weights (required when the model has inputs).
        b : (N,) array
            Biases.

        Returns
        -------
        (P,) array
            ``theta``.
        """
        N, K, R = self.n_units, self.n_inputs, self.rank
        if b is None:
            raise ValueError(f"b is required: the biases, shape ({N},) (pass np.zeros({N}) for none)")
        if V is None:
            if K:
                raise ValueError(f"V is required: the model has {K} inputs (shape ({N}, {K}))")
            V = np.zeros((N, 0))
        if R is None:
            if m is not None or n is not None:
                raise ValueError("m and n are the factors of a low-rank RateRNN; this one has a full W: pass W")
            if W is None:
                raise ValueError(f"W is required: the ({N}, {N}) connectivity of a full-rank RateRNN")
            return super().pack(W=W, V=V, b=b)
        if W is not None:
            raise ValueError(f"this RateRNN has rank {R}: pass the factors m ({N}, {R}) and n ({R}, {N}), not W")
        if m is None or n is None:
            raise ValueError(f"m and n are required: the factors of W = m @ n, shapes ({N}, {R}) and ({R}, {N})")
        if R == 1:
            # the paper's rank-one vectors
            if np.ndim(m) == 1:
                m = np.reshape(V_.as_float_array(m, "m"), (-1, 1))
            if np.ndim(n) == 1:
                n = np.reshape(V_.as_float_array(n, "n"), (1, -1))
        return super().pack(m=m, n=n, V=V, b=b)

    def init(self, seed=0, *, scale: float = 1.0, v_scale: float = 1.0, b_scale: float = 0.0) -> np.ndarray:
        """Random parameters; the defaults are the authors' initialisation.

        Low rank: every entry of ``m`` and ``n`` ~ N(0, scale^2 / N) (the
        authors' ``randn(N) / sqrt(N)`` for rank one); full W:
        ``W_ij ~ N(0, scale^2 / N)``.  ``V_ik ~ N(0, v_scale^2)`` and
        ``b_i ~ N(0, b_scale^2)`` (``b = 0`` by default, as in the paper).

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed.
        scale : float
            Standard deviation of the connectivity entries times sqrt(N).
        v_scale, b_scale : float
            Standard deviations of the input weights and the biases.

        Returns
        -------
        (P,) array
            ``theta``.
        """
        rng, _ = V_.generator(seed)
        scale, v_scale, b_scale = (V_.finite_float(x, nm, low=0.0) for x, nm in
                                   ((scale, "scale"), (v_scale, "v_scale"), (b_scale, "b_scale")))
        N, K, R = self.n_units, self.n_inputs, self.rank
        sd = scale / np.sqrt(N)
        if R is None:
            conn = {"W": rng.normal(0.0, sd, (N, N))}
        else:
            conn = {"m": rng.normal(0.0, sd, (N, R)), "n": rng.normal(0.0, sd, (R, N))}
        return self.pack(**conn, V=rng.normal(0.0, v_scale, (N, K)), b=rng.normal(0.0, 1.0, N) * b_scale)
