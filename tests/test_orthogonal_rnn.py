"""The orthogonal RNN (expRNN with modReLU) of Ribeiro et al. (2020).

``h' = modReLU(W h + V u, b)``, ``W = expm(S - S^T)``
(:class:`plrnn_numba.models.orthogonal.OrthogonalRNN`).

Checked here:

* ``W`` is orthogonal for every initialisation; the authors' (expRNN's)
  initialisation and the layout of ``theta``;
* the step against plain NumPy/SciPy from the equations (loop and BLAS
  branches of the kernels);
* the map ``dL/dW -> dL/dS`` through the matrix exponential (the adjoint
  Fréchet derivative) against central differences of ``sum(G * expm(S - S^T))``;
* BPTT gradients (``pn.loss_and_grad``, LinearReadout, inputs, a mask) against
  central finite differences of ``pn.loss`` and against the forward-mode
  reference of :mod:`tests.naive` (serial and parallel engines);
* the state Jacobian, state VJP, parameter VJP and Jacobian VJP kernels
  against finite differences / dense reference Jacobians;
* exact Lyapunov spectra (all zero whenever ``b >= 0``), the flossing
  gradient against finite differences (and exactly zero when ``b >= 0``),
  orbit diagrams;
* the thread-local expansion record behind ``reduce_grad``, and argument
  validation.
"""

from __future__ import annotations

import pickle
import threading
import zlib

import numpy as np
import pytest
import scipy.linalg

import plrnn_numba as pn
from plrnn_numba import dynamics
from plrnn_numba.models.base import model_params
from plrnn_numba.models.orthogonal import OrthogonalRNN, skew_expm_grad

from . import naive as ref
from .naive import central_fd

# Tolerances, one per kind of check (errors are ||a - b|| / ||b||, b the reference, unless stated).
#: ``max |W^T W - I|``: scipy's expm of a skew matrix of norm <= ~10 is orthogonal to ~1e-14 (measured <= 7e-15).
ORTH_ATOL = 1e-12
#: package (numba, reverse mode) vs plain NumPy/SciPy (forward mode; forward Fréchet derivatives): agree up
#: to rounding, measured <= 1e-15.
REF_RTOL = 1e-10
#: finite-difference step for losses and for ``sum(G * expm(.))`` (O(1) values): about eps^(1/3)
FD_STEP = 1e-5
#: central differences, h = 1e-5: truncation h^2 |f'''| / 6 and rounding eps |f| / h are ~1e-11 per
#: component, relative to gradients of norm >= 1e-2 at most ~1e-8 (measured: losses <= 5e-10,
#: sum(G * expm(S - S^T)) <= 1e-10).  A wrong term
#: or factor shows up at 1e-3 or more.
FD_RTOL = 1e-6
#: smallest distance of a kink argument (h and |h| + b, :func:`tests.naive.naive_orthogonal_kink_arguments`)
#: to 0 along the forward pass of a finite-difference problem (measured >= 3e-4): a step of 1e-5 in one
#: coordinate moves the arguments by 1e-5 times slopes of O(1) (orthogonal W, T = 7), so no difference
#: straddles a kink (one that did would be off by ~b / h = 1e4, not by a little).
KINK_MARGIN = 1e-4
#: Jacobians of a single step by central differences with h = 1e-6 (states O(1)): measured <= 4e-10; the
#: flossing gradient (12 steps) is held to the same tolerance: measured 1.3e-9.
JAC_STEP = 1e-6
JAC_RTOL = 1e-7
#: Lyapunov exponents that are exactly 0 (products of orthogonal matrices): absolute, per exponent;
#: the QR iteration adds ~1e-16 per step to log R_ii (measured <= 2e-15).
LYAP_ATOL = 1e-12

B, T = 3, 7


def rel_err(a, b):
    """``||a - b|| / ||b||`` (``b`` the reference, which must be non-zero)."""
    a, b = np.ravel(a), np.ravel(b)
    nb = np.linalg.norm(b)
    assert nb > 0.0, "reference is zero: the comparison would be vacuous"
    return float(np.linalg.norm(a - b) / nb)


MODELS = {
    "inputs": OrthogonalRNN(5, n_inputs=2),
    "autonomous": OrthogonalRNN(4),
    "odd": OrthogonalRNN(3, n_inputs=1),
    # large enough for the kernels' BLAS branches (batch of 8 rows and N >= 16)
    "blas": OrthogonalRNN(20, n_inputs=1),
    # the generator from the strict upper triangle of S (expRNN's)
    "upper": OrthogonalRNN(5, n_inputs=2, generator="upper"),
}
BLAS_MODELS = {"blas"}


def _theta(model, seed, scale=2.0):
    # a dense generator (every entry of S matters), V ~ N(0, 0.5^2) and biases b ~ U[-0.4, 0.4], so that
    # pre-activations are O(1) and both live and dead units (|z| + b <= 0) occur
    return model.init(seed, skew_init="normal", scale=scale, v_scale=0.5, b_range=0.4)


def make_problem(model_id, masked=True):
    """A deterministic random problem (seeded by its id) with a LinearReadout(1)."""
    model = MODELS[model_id]
    rng = np.random.default_rng(zlib.crc32(f"{model_id}/{masked}".encode()))
    Bn = 8 if model_id in BLAS_MODELS else B
    N, K = model.dim, model.n_inputs
    theta = _theta(model, int(rng.integers(2**31)))
    ro = rng.normal(0.0, 1.0, N + 1)
    mask = None
    if masked:
        mask = np.ones((Bn, T))
        mask[0, 2] = 0.0
        mask[1, 5] = 0.0
        mask[2, 4] = 0.5
    batch = pn.Batch(targets=rng.normal(0.0, 1.0, (Bn, T, 1)),
                     inputs=rng.normal(0.0, 1.0, (Bn, T, K)) if K else None,
                     z0=rng.normal(0.0, 0.5, (Bn, N)), mask=mask)
    return model, theta, batch, pn.LinearReadout(1), ro


def min_kink_distance(model, theta, batch):
    """``min |x|`` over the kink arguments of every step of the forward pass of ``batch``."""
    Bn, Tn = np.shape(batch.targets)[:2]
    S_in = np.zeros((Bn, Tn, model.n_inputs)) if batch.inputs is None else np.asarray(batch.inputs)
    out = np.inf
    for b in range(Bn):
        z = np.asarray(batch.z0[b], dtype=float)
        for t in range(Tn):
            out = min(out, np.min(np.abs(ref.naive_orthogonal_kink_arguments(model, theta, z, S_in[b, t]))))
            z = ref.naive_step(model, theta, z, S_in[b, t])
    return out


def _point(model, seed=0):
    rng = np.random.default_rng(seed)
    theta = _theta(model, seed)
    return theta, rng.normal(0.0, 0.7, model.dim), rng.normal(0.0, 1.0, model.n_inputs)


# -- the parameterisation -----------------------------------------------------------------------
@pytest.mark.parametrize("skew_init", ["henaff", "cayley", "normal"])
@pytest.mark.parametrize("n_units", [1, 2, 7, 40])
def test_w_is_orthogonal(skew_init, n_units):
    model = OrthogonalRNN(n_units, n_inputs=1)
    theta = model.init(3, skew_init=skew_init, scale=3.0)
    W = model.recurrent_matrix(theta)
    assert np.max(np.abs(W.T @ W - np.eye(n_units))) < ORTH_ATOL
    assert np.max(np.abs(W @ W.T - np.eye(n_units))) < ORTH_ATOL
    # the kernel vector carries exactly this W
    np.testing.assert_array_equal(model_params(model, theta)[: n_units**2], W.ravel())
    assert np.linalg.det(W) == pytest.approx(1.0, abs=1e-12)  # exp of a skew matrix: SO(N)


def test_authors_initialisation_and_layout():
    N, K = 6, 3
    model = OrthogonalRNN(N, n_inputs=K)
    assert model.param_shapes() == {"S": (N, N), "V": (N, K), "b": (N,)}
    assert model.n_params == ref.n_params(model) == N * N + N * K + N
    d = model.unpack(model.init(0))
    # Henaff: A = S - S^T block diagonal with 2x2 rotation generators, angles in [-pi, pi]
    S = d["S"]
    idx = np.arange(0, N, 2)
    a = S[idx, idx + 1]
    S_rest = S.copy()
    S_rest[idx, idx + 1] = 0.0
    assert np.all(S_rest == 0.0) and np.all(np.abs(a) <= np.pi) and np.all(a != 0.0)
    W = model.recurrent_matrix(model.pack(S=S, V=d["V"], b=d["b"]))
    for i, ang in zip(idx, a):
        np.testing.assert_allclose(W[i : i + 2, i : i + 2], [[np.cos(ang), np.sin(ang)], [-np.sin(ang), np.cos(ang)]],
                                   atol=1e-14)
    assert np.all(np.abs(d["b"]) <= 0.01)
    # Kaiming normal V: std sqrt(2 / K)
    big = OrthogonalRNN(100, n_inputs=50).unpack(OrthogonalRNN(100, n_inputs=50).init(1))["V"]
    assert np.std(big) == pytest.approx(np.sqrt(2.0 / 50), rel=0.05)
    # Cayley: a_i = -sqrt((1 - cos u) / (1 + cos u)) = -tan(u / 2) in [-1, 0]
    a = model.unpack(model.init(0, skew_init="cayley"))["S"][idx, idx + 1]
    assert np.all((a <= 0.0) & (a >= -1.0))


# -- one step -----------------------------------------------------------------------------------
def _plain_step(theta, model, Z, S_in):
    # from the equations, with scipy's expm: rows Z (n, N), S_in (n, K)
    N, K = model.n_units, model.n_inputs
    S = theta[: N * N].reshape(N, N)
    V = theta[N * N : N * N + N * K].reshape(N, K)
    b = theta[N * N + N * K :]
    W = scipy.linalg.expm(S - S.T)
    H = Z @ W.T + S_in @ V.T
    return np.sign(H) * np.maximum(np.abs(H) + b, 0.0)


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("batch_size", [1, 8])
def test_step_matches_plain_numpy(model_id, batch_size):
    model = MODELS[model_id]
    rng = np.random.default_rng(4)
    theta = _theta(model, 4)
    N, K = model.dim, model.n_inputs
    Z = rng.normal(0.0, 0.3, (batch_size, N))
    S_in = rng.normal(0.0, 0.3, (batch_size, K))
    out = np.empty((batch_size, N))
    model.kernels.step(model_params(model, theta), model.meta, Z, S_in, out)
    want = _plain_step(theta, model, Z, S_in)
    assert rel_err(out, want) < REF_RTOL
    if batch_size > 1:
        assert np.any(want == 0.0), "the points should have dead units (|z| + b <= 0)"
    # and through the public API / the naive reference
    s0 = S_in[0] if K else None
    assert rel_err(model.step(theta, Z[0], s0), want[0]) < REF_RTOL
    assert rel_err(ref.naive_step(model, theta, Z[0], s0), want[0]) < REF_RTOL


def test_modrelu_special_values():
    # b = 0: the identity; b > 0: z + b sign(z), and 0 at z = 0; NaN propagates
    model = OrthogonalRNN(3)
    theta = model.pack(S=np.zeros((3, 3)), b=np.array([0.0, 0.5, -0.5]))  # W = I
    z = np.array([[-0.3, 0.0, 0.2], [0.7, -0.1, -0.9]])
    out = model.step(theta, z)
    np.testing.assert_array_equal(out, [[-0.3, 0.0, 0.0], [0.7, -0.6, -0.4]])
    one = OrthogonalRNN(1)
    theta = one.pack(S=np.zeros((1, 1)), b=[0.5])
    for z, want in ((np.nan, np.nan), (np.inf, np.inf), (-np.inf, -np.inf), (0.0, 0.0), (-1.0, -1.5)):
        out = np.empty((1, 1))
        one.kernels.step(model_params(one, theta), one.meta, np.array([[z]]), np.zeros((1, 0)), out)
        np.testing.assert_array_equal(out[0, 0], want)


# -- the gradient through the matrix exponential ---------------------------------------------------
@pytest.mark.parametrize("n_units, scale", [(1, 1.0), (2, 1.0), (5, 1.0), (6, 4.0), (12, 2.0)])
def test_reduce_grad_vs_finite_differences(n_units, scale):
    # f(S) = sum(G * expm(S - S^T)): the kernel gradient dL/dW = G, the theta gradient by reduce_grad
    model = OrthogonalRNN(n_units, n_inputs=2)
    rng = np.random.default_rng(n_units)
    theta = model.init(n_units, skew_init="normal", scale=scale)
    theta[: n_units**2] += rng.normal(0.0, 0.3, n_units**2)  # a symmetric part too: it must not matter
    G = rng.normal(size=(n_units, n_units))
    NN = n_units**2

    def f(s_flat):
        S = s_flat.reshape(n_units, n_units)
        return float(np.sum(G * scipy.linalg.expm(S - S.T)))

    fd = central_fd(f, theta[:NN], FD_STEP)
    if n_units == 1:
        fd = fd + 1.0  # S - S^T = 0 for every 1 x 1 S: the gradient is exactly 0 (compared shifted by 1)
    grad_p = np.concatenate([G.ravel(), rng.normal(size=model.n_params - NN)])
    model.expand(theta)
    got = model.reduce_grad(grad_p)
    assert rel_err(got[:NN] + (n_units == 1), fd) < FD_RTOL
    np.testing.assert_array_equal(got[NN:], grad_p[NN:])  # V and b pass through
    np.testing.assert_array_equal(got, model.grad_theta(theta, grad_p))
    gS = got[:NN].reshape(n_units, n_units)
    np.testing.assert_allclose(gS, -gS.T, atol=1e-14)  # dL/dS is skew-symmetric
    # the adjoint identity <G, L(A, E)> = <L(A^T, G), E> behind it, for a random direction E
    S = theta[:NN].reshape(n_units, n_units)
    A = S - S.T
    E = rng.normal(size=(n_units, n_units))
    lhs = np.sum(G * scipy.linalg.expm_frechet(A, E - E.T, compute_expm=False))
    assert np.sum(skew_expm_grad(A, G) * E) == pytest.approx(lhs, rel=1e-12, abs=1e-13)


@pytest.mark.parametrize("skew_init", ["henaff", "normal"])
def test_upper_generator_is_the_full_one_on_the_upper_triangle(skew_init):
    # generator="upper" (expRNN's A = triu(S, 1) - triu(S, 1)^T) at S_up = triu(S - S^T, 1) has the same A, W and
    # loss as generator="full" at S, its S gradient is the strict upper triangle of the full one's, and a
    # gradient step of size eta moves A half as far as the full parametrisation's
    N = 6
    full, upper = OrthogonalRNN(N, n_inputs=2), OrthogonalRNN(N, n_inputs=2, generator="upper")
    theta_f = full.init(1, skew_init=skew_init, v_scale=0.5, b_range=0.3, scale=2.0)
    theta_f[: N * N] += np.random.default_rng(2).normal(0.0, 0.3, N * N)  # a symmetric part: must not matter
    S = theta_f[: N * N].reshape(N, N)
    theta_u = theta_f.copy()
    theta_u[: N * N] = np.triu(S - S.T, 1).ravel()
    np.testing.assert_array_equal(full.recurrent_matrix(theta_f), upper.recurrent_matrix(theta_u))
    init_u = upper.init(1, skew_init=skew_init, v_scale=0.5, b_range=0.3, scale=2.0)
    assert np.all(np.tril(init_u[: N * N].reshape(N, N)) == 0.0)
    init_f = full.init(1, skew_init=skew_init, v_scale=0.5, b_range=0.3, scale=2.0)
    np.testing.assert_allclose(upper.recurrent_matrix(init_u), full.recurrent_matrix(init_f), atol=1e-14)
    rng = np.random.default_rng(3)
    batch = pn.Batch(targets=rng.normal(size=(4, 5, 1)), inputs=rng.normal(size=(4, 5, 2)),
                     z0=rng.normal(0.0, 0.5, (4, N)))
    ro = rng.normal(size=N + 1)
    res_f, res_u = package(full, theta_f, batch, ro), package(upper, theta_u, batch, ro)
    loss_f, g_f, loss_u, g_u = res_f.loss, res_f.grad, res_u.loss, res_u.grad
    assert loss_u == pytest.approx(loss_f, rel=1e-14)
    gS_f, gS_u = g_f[: N * N].reshape(N, N), g_u[: N * N].reshape(N, N)
    assert rel_err(gS_u, np.triu(gS_f, 1)) < REF_RTOL
    assert np.all(np.tril(gS_u) == 0.0)
    assert rel_err(g_u[N * N :], g_f[N * N :]) < REF_RTOL
    eta = 1e-3
    A = S - S.T
    step_f = (S - eta * gS_f) - (S - eta * gS_f).T - A
    U = np.triu(theta_u[: N * N].reshape(N, N) - eta * gS_u, 1)
    step_u = U - U.T - A
    assert rel_err(step_f, 2.0 * step_u) < REF_RTOL


# -- BPTT ---------------------------------------------------------------------------------------
def package(model, theta, batch, ro, **kwargs):
    return pn.loss_and_grad(model, theta, batch, readout=pn.LinearReadout(1), readout_params=ro, loss="mse",
                            **kwargs)


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("masked", [True, False])
def test_gradient_vs_finite_differences(model_id, masked):
    model, theta, batch, readout, ro = make_problem(model_id, masked)
    res = package(model, theta, batch, ro)
    assert res.finite
    assert min_kink_distance(model, theta, batch) > KINK_MARGIN
    P = model.n_params

    def loss(x):
        return package(model, x[:P], batch, x[P:]).loss

    fd = central_fd(loss, np.concatenate([theta, ro]), FD_STEP)
    assert rel_err(res.grad, fd[:P]) < FD_RTOL
    assert rel_err(res.grad_readout, fd[P:]) < FD_RTOL
    z0 = np.asarray(batch.z0)

    def loss_z0(z):
        return package(model, theta, pn.Batch(targets=batch.targets, inputs=batch.inputs,
                                               z0=z.reshape(z0.shape), mask=batch.mask), ro).loss

    assert rel_err(res.grad_z0, central_fd(loss_z0, z0.ravel(), FD_STEP).reshape(z0.shape)) < FD_RTOL


@pytest.mark.parametrize("forcing", [pn.GTF(0.3), pn.SparseTF(3)], ids=["gtf", "sparse_tf"])
def test_forced_gradient_vs_finite_differences(forcing):
    # teacher forcing with the identity readout (targets for every unit), differentiated through the forcing
    model = MODELS["inputs"]
    rng = np.random.default_rng(11)
    theta = _theta(model, 11)
    batch = pn.Batch(targets=rng.normal(0.0, 0.5, (B, T, model.dim)), inputs=rng.normal(0.0, 1.0, (B, T, 2)),
                     z0=rng.normal(0.0, 0.5, (B, model.dim)))
    res = pn.loss_and_grad(model, theta, batch, forcing=forcing)
    assert res.finite
    fd = central_fd(lambda th: pn.loss_and_grad(model, th, batch, forcing=forcing).loss, theta, FD_STEP)
    assert rel_err(res.grad, fd) < FD_RTOL


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("n_threads", [1, 2])
def test_gradient_vs_naive_reference(model_id, n_threads):
    model, theta, batch, readout, ro = make_problem(model_id)
    res = package(model, theta, batch, ro, n_threads=n_threads)
    loss, g, g_ro, g_z0 = ref.naive_loss_and_grad(model, theta, batch, readout, ro)
    assert res.loss == pytest.approx(loss, rel=REF_RTOL)
    assert rel_err(res.grad, g) < REF_RTOL
    assert rel_err(res.grad_readout, g_ro) < REF_RTOL
    assert rel_err(res.grad_z0, g_z0) < REF_RTOL


# -- kernels: Jacobian, VJPs --------------------------------------------------------------------------
@pytest.mark.parametrize("model_id", MODELS)
def test_jacobian_and_state_vjp_vs_finite_differences(model_id):
    model = MODELS[model_id]
    for seed in range(5, 100):  # the first point with a dead unit (a zero row of J)
        theta, z, s = _point(model, seed)
        if np.any(np.all(ref.naive_state_jacobian(model, theta, z, s) == 0.0, axis=1)):
            break
    s_arg = s if model.n_inputs else None
    J = model.jacobian(theta, z, s_arg)
    fd = central_fd(lambda x: model.step(theta, x, s_arg), z, JAC_STEP)
    assert rel_err(J, fd) < JAC_RTOL
    assert rel_err(J, ref.naive_state_jacobian(model, theta, z, s)) < REF_RTOL
    assert np.any(np.all(J == 0.0, axis=1)), "the point should have a dead unit"
    # state VJP on a batch (loop and BLAS branches): g_z[b] = J(z_b)^T g[b]
    rng = np.random.default_rng(7)
    for Bn in (1, 8):
        Z = rng.normal(0.0, 0.7, (Bn, model.dim))
        S_in = rng.normal(0.0, 1.0, (Bn, model.n_inputs))
        g = rng.normal(size=(Bn, model.dim))
        g_z = np.full((Bn, model.dim), np.nan)
        model.kernels.state_vjp(model_params(model, theta), model.meta, Z, S_in, g, g_z)
        want = np.stack([ref.naive_state_jacobian(model, theta, Z[i], S_in[i]).T @ g[i] for i in range(Bn)])
        assert rel_err(g_z, want) < REF_RTOL


@pytest.mark.parametrize("model_id", MODELS)
def test_param_vjp_vs_naive_parameter_jacobian(model_id):
    # reduce_grad(param_vjp(rows)) = sum_n (dF/dtheta (Z[n], S[n]))^T G[n], with dF/dtheta in forward mode
    model = MODELS[model_id]
    theta, _, _ = _point(model, 8)
    rng = np.random.default_rng(9)
    n = 9
    Z = rng.normal(0.0, 0.7, (n, model.dim))
    S_in = rng.normal(0.0, 1.0, (n, model.n_inputs))
    G = rng.normal(size=(n, model.dim))
    p = model_params(model, theta)
    g_p = np.zeros(p.size)
    model.kernels.param_vjp(p, model.meta, Z, S_in, G, g_p)
    want = sum(ref.naive_param_jacobian(model, theta, Z[i], S_in[i]).T @ G[i] for i in range(n))
    assert rel_err(model.reduce_grad(g_p), want) < REF_RTOL
    # the naive parameter Jacobian itself against finite differences of the step
    fd = central_fd(lambda th: ref.naive_step(model, th, Z[0], S_in[0]), theta, JAC_STEP)
    assert rel_err(ref.naive_param_jacobian(model, theta, Z[0], S_in[0]), fd) < JAC_RTOL


@pytest.mark.parametrize("model_id", MODELS)
def test_jacobian_vjp_vs_finite_differences(model_id):
    # g_z = d/dz sum(Jbar * J(z)) = 0 (modReLU is piecewise linear) and g_p = d/dtheta sum(Jbar * J)
    model = MODELS[model_id]
    theta, z, s = _point(model, 5)
    Jbar = np.random.default_rng(6).normal(size=(model.dim, model.dim))
    kern, meta = model.kernels, model.meta

    def pairing(th, zz):
        J = np.empty((model.dim, model.dim))
        kern.jacobian(model_params(model, th), meta, zz, s, J)
        return float(np.sum(Jbar * J))

    fd_theta = central_fd(lambda th: pairing(th, z), theta, JAC_STEP)
    fd_z = central_fd(lambda x: pairing(theta, x), z, JAC_STEP)
    g_z = np.full(model.dim, np.nan)  # the kernel must overwrite it
    p = model_params(model, theta)
    g_p = np.zeros(p.size)
    kern.jacobian_vjp(p, meta, z, s, Jbar, g_z, g_p)
    np.testing.assert_array_equal(g_z, 0.0)
    np.testing.assert_allclose(fd_z, 0.0, atol=1e-9)
    assert rel_err(model.grad_theta(theta, g_p), fd_theta) < JAC_RTOL


# -- dynamics engines -----------------------------------------------------------------------------
def test_lyapunov_spectrum_exact_cases():
    # whenever b >= 0, |z_i| + b_i > 0 for every z_i != 0, so J = W: a product of orthogonal matrices,
    # every exponent is exactly 0.  b = 0 is the linear map h' = W h + V u; b > 0 a nonlinear one.
    model = OrthogonalRNN(6, n_inputs=1)
    for b in (np.zeros(6), np.linspace(0.1, 0.6, 6)):
        d = model.unpack(model.init(2, skew_init="normal", scale=3.0))
        theta = model.pack(S=d["S"], V=d["V"], b=b)
        ds = dynamics.lyapunov_spectrum(model, theta, n_steps=300, n_transient=20, n_init=2, inputs=[0.4])
        lam = ds["exponents"].values
        assert lam.shape == (2, 6)
        np.testing.assert_allclose(lam, 0.0, atol=LYAP_ATOL)
    # all units dead (b_i < -max |z_i|): after one step h = 0 and J = 0, every exponent is -inf
    theta = model.pack(S=d["S"], V=d["V"], b=np.full(6, -100.0))
    out = model.simulate(theta, np.ones(6), inputs=np.full((3, 1), 0.4))
    np.testing.assert_array_equal(out[1:], 0.0)
    np.testing.assert_array_equal(model.jacobian(theta, out[1], [0.4]), 0.0)


def test_flossing_gradient_vs_finite_differences():
    model = OrthogonalRNN(5, n_inputs=1)
    theta = model.init(1, skew_init="normal", scale=2.0, b_range=0.5)
    u = np.array([0.3])

    def floss(th):
        return dynamics.flossing_loss_and_grad(model, th, 2, n_steps=12, t_ons=2, inputs=u, seed=1)

    res = floss(theta)
    assert res.finite and res.exponents.shape == (1, 2)
    fd = central_fd(lambda th: floss(th).loss, theta, JAC_STEP)
    assert rel_err(res.grad, fd) < JAC_RTOL
    assert np.linalg.norm(res.grad[: 25]) > 1e-3  # the gradient reaches S through the exponential
    # b >= 0: the exponents are 0 for every S and V, so the flossing gradient vanishes (to rounding)
    d = model.unpack(theta)
    theta_pos = model.pack(S=d["S"], V=d["V"], b=np.abs(d["b"]))
    res = dynamics.flossing_loss_and_grad(model, theta_pos, 3, target=-0.5, n_steps=12, t_ons=2, inputs=u, seed=1)
    np.testing.assert_allclose(res.exponents, 0.0, atol=LYAP_ATOL)
    assert res.loss == pytest.approx(3 * 0.25)
    np.testing.assert_allclose(res.grad, 0.0, atol=1e-12)


def test_orbit_diagram_runs():
    model = OrthogonalRNN(6, n_inputs=1)
    theta = model.init(0, b_range=0.3)
    ds = dynamics.orbit_diagram(model, theta, "b[0]", np.linspace(-0.5, 0.5, 4), n_steps=20, n_transient=30,
                                n_init=2, inputs=[0.5], state=[0, 1])
    assert ds["z"].shape == (4, 2, 20, 2)
    assert np.all(np.isfinite(ds["z"].values)) and not ds["diverged"].values.any()
    ds = dynamics.orbit_diagram(model, theta, "S[0,1]", [0.0, 1.0], n_steps=5, n_transient=5, inputs=[0.5])
    assert np.all(np.isfinite(ds["z"].values))


# -- the expansion record behind reduce_grad ------------------------------------------------------------
def test_reduce_grad_is_per_thread_and_needs_an_expansion():
    model = OrthogonalRNN(7, n_inputs=1)
    errors = []

    def fresh_thread():
        try:
            model.reduce_grad(np.zeros(model.n_params))
        except RuntimeError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=fresh_thread)
    t.start()
    t.join()
    assert len(errors) == 1 and "grad_theta" in errors[0]
    # concurrent gradient computations at different parameters in several threads = serial results
    model, _, batch, _, ro = make_problem("inputs")
    thetas = [_theta(model, s) for s in range(6)]
    serial = [package(model, th, batch, ro).grad for th in thetas]
    results = [None] * len(thetas)

    def work(i):
        for _ in range(20):
            results[i] = package(model, thetas[i], batch, ro).grad

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(thetas))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, serial):
        np.testing.assert_array_equal(got, want)


def test_expand_reuses_the_exponential_for_the_same_theta():
    model = OrthogonalRNN(5)
    theta = _theta(model, 0)
    p1 = model.expand(theta)
    p1[0] = 123.0  # the caller owns the returned vector: the record is not affected
    p2 = model.expand(theta.copy())
    assert p2[0] != 123.0
    np.testing.assert_array_equal(p2, model.expand(theta + 0.0))
    theta2 = theta.copy()
    theta2[1] += 0.1
    assert not np.array_equal(model.expand(theta2), p2)


def test_training_reduces_the_loss_and_the_model_pickles():
    model = OrthogonalRNN(8, n_inputs=1)
    rng = np.random.default_rng(0)
    t = np.arange(40)
    batch = pn.Batch(targets=np.sin(0.3 * t)[None, :, None], inputs=np.ones((1, 40, 1)))
    hist = pn.train(model, model.init(0), batch, n_epochs=200, optimizer=pn.Adam(0.03), readout=pn.LinearReadout(1),
                    readout_params=rng.normal(0.0, 0.1, 9), seed=0)
    loss = hist["loss"].values
    assert np.all(np.isfinite(loss)) and loss[-1] < 0.75 * loss[0]
    theta = hist["theta"].values
    W = model.recurrent_matrix(theta)
    assert np.max(np.abs(W.T @ W - np.eye(8))) < ORTH_ATOL  # orthogonal by construction after training too
    assert pickle.loads(pickle.dumps(model)) == model
    assert model.describe() == {"model": "OrthogonalRNN", "n_units": 8, "n_inputs": 1, "generator": "full"}


# -- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"n_units": 0}, "n_units"),
    ({"n_units": 3, "n_inputs": -1}, "n_inputs"),
    ({"n_units": 3, "generator": "lower"}, "generator"),
])
def test_model_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OrthogonalRNN(**kwargs)


def test_pack_init_and_grad_errors():
    model = OrthogonalRNN(3, n_inputs=2)
    with pytest.raises(ValueError, match="V is required"):
        model.pack(S=np.zeros((3, 3)), b=np.zeros(3))
    with pytest.raises(ValueError, match="skew_init"):
        model.init(0, skew_init="identity")
    with pytest.raises(ValueError, match="b_range"):
        model.init(0, b_range=-1.0)
    with pytest.raises(ValueError, match="shape"):
        model.grad_theta(model.init(0), np.zeros(4))
    auto = OrthogonalRNN(3)
    theta = auto.pack(S=np.zeros((3, 3)), b=np.zeros(3))
    assert theta.size == 12
    np.testing.assert_array_equal(auto.recurrent_matrix(theta), np.eye(3))
