"""Tangent kernels (``J Y`` and its pullback without the dense Jacobian) against the dense kernels."""

from dataclasses import dataclass

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics.flossing import flossing_loss_and_grad
from plrnn_numba.dynamics.lyapunov import lyapunov_spectrum

EXACT_RTOL = 1e-12  # the same products in another order


@dataclass(frozen=True)
class DenseVanilla(pn.VanillaRNN):
    """The vanilla RNN without tangent kernels: the engines take the dense-Jacobian path."""

    @property
    def tangent_kernels(self):
        return None


MODELS = [
    pn.VanillaRNN(6, n_inputs=2, nonlinearity="tanh"),
    pn.VanillaRNN(5, n_inputs=1, nonlinearity="relu"),
    pn.VanillaRNN(70, n_inputs=0, nonlinearity="tanh"),  # the BLAS sizes
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.nonlinearity}{m.n_hidden}")
@pytest.mark.parametrize("k", [1, 3, 5])  # k <= 4: loops; k = 5: BLAS products
def test_tangent_kernels_equal_dense_jacobian_products(model, k):
    rng = np.random.default_rng(1)
    theta = model.init(0, g=1.5)
    p = model.expand(theta)
    M, K = model.dim, model.n_inputs
    z, s = rng.standard_normal(M), rng.standard_normal(K)
    Y, A = rng.standard_normal((M, k)), rng.standard_normal((M, k))
    kern, tk = model.kernels, model.tangent_kernels
    J = np.empty((M, M))
    kern.jacobian(p, model.meta, z, s, J)
    JY = np.empty((M, k))
    tk.tangent(p, model.meta, z, s, Y, JY)
    np.testing.assert_allclose(JY, J @ Y, rtol=EXACT_RTOL, atol=EXACT_RTOL * np.abs(J @ Y).max())
    # pullback: J^T A, and the second-derivative terms equal jacobian_vjp with Jbar = A Y^T
    gz_dense, gp_dense = np.empty(M), np.full(p.size, 0.5)
    kern.jacobian_vjp(p, model.meta, z, s, np.ascontiguousarray(A @ Y.T), gz_dense, gp_dense)
    Ybar, gz, gp = np.empty((M, k)), np.empty(M), np.full(p.size, 0.5)
    tk.tangent_vjp(p, model.meta, z, s, Y, A, Ybar, gz, gp)
    for got, want in ((Ybar, J.T @ A), (gz, gz_dense), (gp, gp_dense)):
        np.testing.assert_allclose(got, want, rtol=EXACT_RTOL, atol=EXACT_RTOL * (np.abs(want).max() + 1.0))


def test_engines_give_the_same_results_with_and_without_tangent_kernels():
    fast = pn.VanillaRNN(12, n_inputs=1)
    dense = DenseVanilla(12, n_inputs=1)
    theta = fast.init(3, g=2.0)
    rng = np.random.default_rng(0)
    z0, inputs = rng.standard_normal((2, 12)), rng.standard_normal((2, 40, 1))
    a, b = (flossing_loss_and_grad(m, theta, 4, 0.1, z0=z0, n_steps=40, t_ons=2, inputs=inputs)
            for m in (fast, dense))
    np.testing.assert_allclose(a.loss, b.loss, rtol=EXACT_RTOL)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-12 * np.abs(b.grad).max())
    np.testing.assert_allclose(a.grad_z0, b.grad_z0, rtol=1e-10, atol=1e-12 * np.abs(b.grad_z0).max())
    sa, sb = (lyapunov_spectrum(m, theta, n_steps=200, k=5, n_transient=50, n_transient_ons=20,
                                inputs=np.array([0.3]), seed=0, n_init=2) for m in (fast, dense))
    np.testing.assert_allclose(sa["exponents"].values, sb["exponents"].values, rtol=1e-10)


# --- the QR factorisation of a few columns by Gram-Schmidt and its pullback in loops ---------------

FD_RTOL = 1e-6  # pullbacks against central differences (h = 1e-6), as for the BPTT gradients

def _householder_positive(Y):
    Q, R = np.linalg.qr(Y)
    s = np.sign(np.diag(R))
    return Q * s, R * s[:, None]


# Gram-Schmidt (k <= 2), LAPACK's Householder (3 <= k < 96), Householder in panels of 16 columns
# (k >= 96: whole panels, a ragged last panel, square)
@pytest.mark.parametrize("M, k", [(30, 1), (30, 2), (30, 3), (130, 96), (120, 101), (101, 101)])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-4)])
def test_qr_positive_equals_householder_with_positive_diagonal(M, k, dtype, tol):
    from plrnn_numba.dynamics._tangents import qr_positive

    Y = np.random.default_rng(k).standard_normal((M, k)).astype(dtype) * np.logspace(0, -3, k).astype(dtype)
    Q, R = qr_positive(Y)
    Qh, Rh = _householder_positive(Y.astype(np.float64))
    assert Q.dtype == dtype and R.dtype == dtype
    assert np.all(np.diag(R) > 0)
    np.testing.assert_allclose(Q, Qh, atol=tol)
    np.testing.assert_allclose(R, Rh, atol=tol * np.abs(Rh).max())
    np.testing.assert_allclose(Q.T @ Q, np.eye(k), atol=tol)


def test_qr_positive_falls_back_to_householder_for_dependent_columns():
    from plrnn_numba.dynamics._tangents import qr_positive

    y = np.random.default_rng(0).standard_normal(20)
    Q, R = qr_positive(np.column_stack([y, 2.0 * y]))  # rank one: Gram-Schmidt would divide by ~0
    assert np.all(np.isfinite(Q)) and np.all(np.isfinite(R))
    assert abs(R[1, 1]) < 1e-12 * R[0, 0]
    np.testing.assert_allclose(Q @ R, np.column_stack([y, 2.0 * y]), atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError):
        qr_positive(np.full((5, 1), np.nan))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_qr_pullback_matches_central_differences(k):
    # the pullback of f(Y) = <Qbar, Q(Y)> + sum_i rbar_i R_ii(Y) for the positive-diagonal QR, against central
    # differences of f; k <= 2 runs the loop version, k = 3 the blocked (BLAS) one
    from plrnn_numba.dynamics import flossing as F

    rng = np.random.default_rng(k)
    Y = rng.standard_normal((7, k))
    Qbar, rbar = rng.standard_normal((7, k)), rng.standard_normal(k)

    def f(Y):
        Q, R = _householder_positive(Y)
        return float(np.sum(Qbar * Q) + rbar @ np.diag(R))

    Q, R = _householder_positive(Y)
    Abar = F._qr_pullback(np.ascontiguousarray(Q), np.ascontiguousarray(R), Qbar, rbar)
    h = 1e-6
    fd = np.empty_like(Y)
    for idx in np.ndindex(*Y.shape):
        E = np.zeros_like(Y)
        E[idx] = h
        fd[idx] = (f(Y + E) - f(Y - E)) / (2 * h)
    np.testing.assert_allclose(Abar, fd, rtol=FD_RTOL, atol=1e-8)
