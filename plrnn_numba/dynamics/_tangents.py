"""Tangent systems shared by the Lyapunov-exponent engines: initial systems, products and pullbacks."""

from __future__ import annotations

import numpy as np

from .. import _validate as V
from .. import config
from ..models.base import call_jacobian, call_jacobian_vjp, call_tangent, call_tangent_vjp
from ._blas import fortran_routine
from ._blas import fortran_scalar as _one


def initial_tangents(q0, B: int, M: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Initial orthonormal tangent systems ``Q0`` (B, M, k) for QR-based exponent estimates.

    ``q0`` is ``"random"`` (each batch item: the Q factor of a Gaussian M x k
    matrix from ``rng``, with a positive diagonal of R), ``"identity"`` (the
    first k unit vectors), or an orthonormal (M, k) or (B, M, k) array.
    Returns the array and the kind (``"random"``, ``"identity"``, ``"array"``).
    """
    if isinstance(q0, str):
        V.choice(q0, "q0", {"random", "identity"})
        if q0 == "identity":
            return np.ascontiguousarray(np.broadcast_to(np.eye(M)[:, :k], (B, M, k))), "identity"
        Q0 = np.empty((B, M, k))
        for b in range(B):
            q, r = np.linalg.qr(rng.standard_normal((M, k)))
            Q0[b] = q * np.sign(np.diag(r))[None, :]
        return Q0, "random"
    Q = V.as_float_array(q0, "q0")
    if Q.shape not in ((M, k), (B, M, k)):
        raise ValueError(
            f"q0 must be 'random', 'identity' or an array of shape ({M}, {k}) or ({B}, {M}, {k}); got {Q.shape}"
        )
    V.check_finite(Q, "q0")
    # one Gram matrix per distinct system (a shared (M, k) system is checked once, before broadcasting)
    # as np.allclose(gram, I, atol=1e-10) (off the diagonal 1e-10, on it 1e-10 + 1e-5), but cheaper
    gram = np.swapaxes(Q, -1, -2) @ Q
    diag = gram.reshape(gram.shape[:-2] + (k * k,))[..., :: k + 1]  # a view of the diagonals
    diag_err = np.max(np.abs(diag - 1.0))
    diag[...] = 0.0
    if not (diag_err <= 1e-10 + 1e-5 and np.max(np.abs(gram)) <= 1e-10):
        raise ValueError("q0 must have orthonormal columns (Q^T Q = I); orthonormalise it with np.linalg.qr")
    if Q.ndim == 2:
        Q = Q[None] if B == 1 else np.broadcast_to(Q, (B, M, k))
    return np.ascontiguousarray(Q), "array"


@config.njit(inline="always")
def tangent_product(jac, tan, p, meta, z, s, J, Y):
    """``J(z, s) Y`` for a tangent system ``Y`` (M, k): by the model's tangent kernel when it has one
    (``tan != 0``), else through the dense Jacobian (written to ``J``)."""
    if tan != 0:
        JY = np.empty(Y.shape, Y.dtype)
        call_tangent(tan, p, meta, z, s, Y, JY)
        return JY
    call_jacobian(jac, p, meta, z, s, J)
    return J @ Y


@config.njit(inline="always")
def tangent_pullback(jac, jvjp, tvjp, p, meta, z, s, J, Y, A, g_z, g_p):
    """Pullback of ``JY = J(z, s) Y`` given its adjoint ``A``: returns ``J^T A``, writes
    ``g_z = d<A, J(z) Y>/dz`` and adds ``d<A, J Y>/dp`` to ``g_p``.

    Without tangent kernels (``tvjp == 0``) through the dense Jacobian and its pullback with
    ``Jbar = A Y^T``.
    """
    if tvjp != 0:
        Ybar = np.empty(Y.shape, Y.dtype)
        call_tangent_vjp(tvjp, p, meta, z, s, Y, A, Ybar, g_z, g_p)
        return Ybar
    call_jacobian(jac, p, meta, z, s, J)
    call_jacobian_vjp(jvjp, p, meta, z, s, np.ascontiguousarray(A @ Y.T), g_z, g_p)
    return J.T @ A


#: up to this many columns the QR factorisation and its pullback run as loops (classical
#: Gram-Schmidt with one reorthogonalisation): faster than LAPACK's Householder path there
#: (``benchmarks/bench_qr.py``, in-kernel at N = 80: 0.15 against 0.59 us for k = 1, 0.86
#: against 0.89 us for k = 2; from k = 3 on LAPACK is faster), and as accurate (2e-16)
QR_LOOP_MAX = 2


@config.njit(inline="always")
def _qr_gram_schmidt(Y):
    # CGS2: each column is projected out against the previous ones twice ("twice is enough"),
    # which keeps Q orthonormal to rounding for a numerically full-rank Y; returns ok=False when a
    # column is (nearly) dependent or not finite, and the caller falls back to Householder
    M, k = Y.shape
    Q = np.empty((M, k), Y.dtype)
    R = np.zeros((k, k), Y.dtype)
    c = np.zeros(k, Y.dtype)
    eps = np.finfo(Y.dtype).eps
    for j in range(k):
        norm0 = 0.0
        for m in range(M):
            Q[m, j] = Y[m, j]
            norm0 += Y[m, j] * Y[m, j]
        for _ in range(2):
            for i in range(j):
                c[i] = 0.0
            for m in range(M):
                v = Q[m, j]
                for i in range(j):
                    c[i] += Q[m, i] * v
            for m in range(M):
                v = Q[m, j]
                for i in range(j):
                    v -= Q[m, i] * c[i]
                Q[m, j] = v
            for i in range(j):
                R[i, j] += c[i]
        nrm = 0.0
        for m in range(M):
            nrm += Q[m, j] * Q[m, j]
        # a column that lost more than half its digits to cancellation: Householder instead
        if not (nrm > eps * norm0 and nrm < np.inf):
            return Q, R, False
        nrm = np.sqrt(nrm)
        R[j, j] = nrm
        inv = 1.0 / nrm
        for m in range(M):
            Q[m, j] *= inv
    return Q, R, True


#: from this many columns the Householder QR runs in panels (``_qr_blocked``): LAPACK's ``geqrf``
#: and ``orgqr`` work column by column below 128 columns, and panels of ``QR_PANEL`` columns are
#: faster from about 96 (``benchmarks/bench_qr.py``: 1.1-1.3x with the forced Haswell kernels,
#: 1.4-2x with the processor's own, N x k from 100 x 96 to 400 x 100; slower at 80 x 75 with Haswell)
QR_BLOCKED_MIN = 96
QR_PANEL = 16

_geqrf = fortran_routine("geqrf", 8, "lapack")  # m n a lda tau work lwork info
_orgqr = fortran_routine("orgqr", 9, "lapack")  # m n k a lda tau work lwork info
_geqr2 = fortran_routine("geqr2", 7, "lapack")  # m n a lda tau work info
_larft = fortran_routine("larft", 9, "lapack")  # direct storev n k v ldv tau t ldt
_larfb = fortran_routine("larfb", 15, "lapack")  # side trans direct storev m n k v ldv t ldt c ldc work ldwork
_org2r = fortran_routine("org2r", 8, "lapack")  # m n k a lda tau work info


@config.njit
def _qr_householder(Y):
    # LAPACK's geqrf and orgqr called directly: the same factorisation as np.linalg.qr without its
    # workspace queries and copies (5-15% faster), and Q comes back C-ordered.
    # A holds the column-major M x k matrix (A[j] is column j).
    M, k = Y.shape
    i32 = np.int32
    A = np.ascontiguousarray(Y.T)
    tau = np.empty(k, Y.dtype)
    lwork = 64 * k  # at least k * the routines' block size (32)
    work = np.empty(lwork, Y.dtype)
    info, m, n, lw = _one(0, i32), _one(M, i32), _one(k, i32), _one(lwork, i32)
    _geqrf(Y, m, n, A, m, tau, work, lw, info)
    R = np.zeros((k, k), Y.dtype)
    for j in range(k):
        for i in range(j + 1):
            R[i, j] = A[j, i]
    _orgqr(Y, m, n, n, A, m, tau, work, lw, info)
    return np.ascontiguousarray(A.T), R


@config.njit
def _qr_blocked(Y):
    # Householder QR in panels of QR_PANEL columns, as LAPACK's blocked geqrf / orgqr: each panel
    # by geqr2, its block reflector I - V T V^T (larft) applied to the columns right of it (larfb);
    # then Q = H_1 ... H_p [I; 0] accumulated from the last panel back (larfb, org2r on the panel).
    # The working array A holds the column-major M x k matrix: A[j, i] is element (i, j), and the
    # slice A[j, i:] starts at it.
    M, k = Y.shape
    nb = QR_PANEL
    i32, u8 = np.int32, np.uint8
    A = np.ascontiguousarray(Y.T)
    tau = np.empty(k, Y.dtype)
    ldw = max(M, k)
    work = np.empty(ldw * nb, Y.dtype)
    T = np.empty((nb, nb), Y.dtype)
    info, lda, ldt, ldwork = _one(0, i32), _one(M, i32), _one(nb, i32), _one(ldw, i32)
    fwd, col, left = _one(70, u8), _one(67, u8), _one(76, u8)  # 'F', 'C', 'L'
    trans, notrans = _one(84, u8), _one(78, u8)  # 'T', 'N'
    for j in range(0, k, nb):
        jb = min(nb, k - j)
        m, w = _one(M - j, i32), _one(jb, i32)
        _geqr2(Y, m, w, A[j, j:], lda, tau[j:], work, info)
        if j + jb < k:
            _larft(Y, fwd, col, m, w, A[j, j:], lda, tau[j:], T, ldt)
            _larfb(Y, left, trans, fwd, col, m, _one(k - j - jb, i32), w, A[j, j:], lda, T, ldt, A[j + jb, j:], lda,
                   work, ldwork)
    R = np.zeros((k, k), Y.dtype)
    for j in range(k):
        for i in range(j + 1):
            R[i, j] = A[j, i]
    for j in range(((k - 1) // nb) * nb, -1, -nb):
        jb = min(nb, k - j)
        m, w = _one(M - j, i32), _one(jb, i32)
        if j + jb < k:
            _larft(Y, fwd, col, m, w, A[j, j:], lda, tau[j:], T, ldt)
            _larfb(Y, left, notrans, fwd, col, m, _one(k - j - jb, i32), w, A[j, j:], lda, T, ldt, A[j + jb, j:],
                   lda, work, ldwork)
        _org2r(Y, m, w, w, A[j, j:], lda, tau[j:], work, info)
        for c in range(j, j + jb):
            for i in range(j):
                A[c, i] = 0.0
    return np.ascontiguousarray(A.T), R


@config.njit(inline="always")
def qr_positive(Y):
    """Reduced QR factorisation ``Y = Q R`` (``Y`` (M, k), k <= M) with a non-negative diagonal of ``R``.

    The sign convention makes the factorisation unique for full rank, so ``log R_ii`` are the
    Lyapunov increments and the QR pullback applies.  Up to ``QR_LOOP_MAX`` columns by
    Gram-Schmidt with reorthogonalisation (positive by construction), otherwise by Householder
    QR (LAPACK's, in panels from ``QR_BLOCKED_MIN`` columns) with column i of Q and row i of R
    negated where ``R_ii`` is negative.  ``Q`` is C-contiguous; a non-finite ``Y`` raises
    ``np.linalg.LinAlgError``.
    """
    if Y.shape[1] <= QR_LOOP_MAX:
        Q, R, ok = _qr_gram_schmidt(Y)
        if ok:
            return Q, R
    if Y.shape[1] >= QR_BLOCKED_MIN:
        Q, R = _qr_blocked(Y)
    else:
        Q, R = _qr_householder(Y)
    M = Q.shape[0]
    for i in range(R.shape[0]):
        # a non-finite entry of Y reaches the diagonal of R (every reflector spans its whole column)
        if not np.isfinite(R[i, i]):
            raise np.linalg.LinAlgError("QR factorisation of a tangent system with non-finite entries")
        if R[i, i] < 0.0:
            for j in range(R.shape[1]):
                R[i, j] = -R[i, j]
            for m in range(M):
                Q[m, i] = -Q[m, i]
    return Q, R
