"""The piecewise-linear families of the package: conformance, SCYFI against brute force, equivalences.

References: the family kernels against the models' own step and Jacobian
kernels (``check_piecewise_linear``, to ``KERNEL_RTOL``); SCYFI against the
brute-force enumeration (recall 100%, no spurious cycle, points to
``POINT_ATOL``); the ReLU RNN against the equivalent PLRNN (``A = 0``, full W,
``C = V``, ``h = b``); the ALRNN against its definition in plain NumPy and its
gradients against central finite differences.
"""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import ScyfiSettings, brute_force_cycles, scyfi
from plrnn_numba.models import as_piecewise_linear, check_piecewise_linear

from .naive import central_fd
from .test_scyfi import assert_exact_with_simulate, assert_same_cycles

KERNEL_RTOL = 1e-12


def relu_rnn(seed, N):
    """A ReLU RNN with two inputs and a constant input vector: (model, theta, s)."""
    rng = np.random.default_rng(seed)
    m = pn.VanillaRNN(N, n_inputs=2, nonlinearity="relu")
    th = m.pack(W=rng.normal(0, 1.5, (N, N)), V=rng.normal(0, 1, (N, 2)), b=rng.normal(0, 1, N))
    return m, th, rng.normal(0, 1, 2)


def alrnn(seed, M, P=2):
    """An ALRNN with one input: (model, theta, s)."""
    rng = np.random.default_rng(seed)
    m = pn.ALRNN(M, n_relu=P, n_inputs=1)
    W = rng.normal(0, 1.5, (M, M))
    np.fill_diagonal(W, 0)
    th = m.pack(A=rng.uniform(-1, 1, M), W=W, h=rng.normal(0, 1, M), C=rng.normal(0, 1, (M, 1)))
    return m, th, rng.normal(0, 1, 1)


def generous(P):
    """Many restarts (a quarter of the region sequences, plus 8) of short jump chains: with bits drawn at
    random, a region that no jump leads to is still drawn with near certainty (a correctness test, not a
    speed test)."""
    return ScyfiSettings(n_outer=lambda k: 8 + 2 ** (P * k) // 4, n_inner=lambda k: 16 + 4 * k)


# ---------------------------------------------------------------- conformance
FAMILIES = {
    "PLRNN": lambda: (pn.PLRNN(3, n_inputs=2), None, [0.4, -1.0]),
    "PLRNN full W": lambda: (pn.PLRNN(3, full_W=True), None, None),
    "shallow": lambda: (pn.ShallowPLRNN(2, 5, n_inputs=1), None, [0.7]),
    "clipped shallow": lambda: (pn.ShallowPLRNN(3, 4, clipped=True), None, None),
    "ReLU RNN": lambda: (pn.VanillaRNN(4, n_inputs=2, nonlinearity="relu"), None, [0.3, 0.2]),
    "ALRNN": lambda: (pn.ALRNN(5, n_relu=2, n_inputs=1), None, [1.5]),
    "ALRNN all ReLU": lambda: (pn.ALRNN(3, n_relu=3), None, None),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_kernels_agree_with_the_model_kernels(family):
    model, _, s = FAMILIES[family]()
    theta = model.init(1)
    errors = check_piecewise_linear(model, theta, s, n_states=300, seed=2)
    assert max(errors.values()) <= KERNEL_RTOL, errors
    pl = as_piecewise_linear(model, theta, s)
    assert pl.description["model"] == model.describe()
    assert len(pl.bit_labels) == pl.n_bits


def test_tanh_rnn_is_not_piecewise_linear():
    m = pn.VanillaRNN(3)
    assert not m.is_piecewise_linear and pn.VanillaRNN(3, nonlinearity="relu").is_piecewise_linear
    with pytest.raises(TypeError, match="piecewise-linear"):
        scyfi(m, m.init(0), 2)
    with pytest.raises(TypeError, match="not piecewise linear"):
        m.piecewise_linear(m.init(0))


def test_bits_independent_decides_how_candidates_are_drawn():
    assert as_piecewise_linear(pn.PLRNN(4), pn.PLRNN(4).init(0)).bits_independent
    wide = pn.ShallowPLRNN(2, 6)
    assert not as_piecewise_linear(wide, wide.init(0)).bits_independent  # 6 hyperplanes in the plane
    narrow = pn.ShallowPLRNN(4, 3)
    assert as_piecewise_linear(narrow, narrow.init(0)).bits_independent


# ---------------------------------------------------------------- ReLU RNN
RELU_SEEDS = [34, 59, 35, 21, 51, 41, 17, 15]  # 3 to 5 cycles each, of up to 3 orders


@pytest.mark.parametrize("seed", RELU_SEEDS)
def test_relu_rnn_scyfi_equals_brute_force(seed):
    N = 2 + seed % 2
    model, theta, s = relu_rnn(seed, N)
    K = 12 // N
    ref = brute_force_cycles(model, theta, K, inputs=s)
    ds = scyfi(model, theta, K, inputs=s, seed=seed, settings=generous(N))
    assert_same_cycles(ds, ref)
    np.testing.assert_array_equal(ds.stability.values, ref.stability.values)
    assert_exact_with_simulate(model, theta, ds, inputs=s)
    assert ref.sizes["cycle"] >= 3


@pytest.mark.parametrize("seed", RELU_SEEDS[:4])
def test_relu_rnn_cycles_equal_those_of_the_equivalent_plrnn(seed):
    # h' = W relu(h) + V s + b is the PLRNN z' = A z + W relu(z) + C s + h with A = 0, full W
    N = 2 + seed % 2
    model, theta, s = relu_rnn(seed, N)
    d = model.unpack(theta)
    plrnn = pn.PLRNN(N, n_inputs=2, full_W=True)
    th_p = plrnn.pack(A=np.zeros(N), W=d["W"], h=d["b"], C=d["V"])
    Z0 = np.random.default_rng(seed).normal(size=(3, N))
    u = np.random.default_rng(seed + 1).normal(size=(20, 2))
    np.testing.assert_allclose(model.simulate(theta, Z0, inputs=u), plrnn.simulate(th_p, Z0, inputs=u),
                               rtol=1e-13, atol=1e-13)
    a = scyfi(model, theta, 12 // N, inputs=s, seed=seed)
    b = scyfi(plrnn, th_p, 12 // N, inputs=s, seed=seed)
    assert_same_cycles(a, b)
    for name in ("order", "stability", "eig_real", "eig_imag", "n_solves"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


# ---------------------------------------------------------------- ALRNN
ALRNN_SEEDS = [40, 12, 39, 25, 56, 38, 21, 20]  # 4 to 12 cycles each


@pytest.mark.parametrize("seed", ALRNN_SEEDS)
def test_alrnn_scyfi_equals_brute_force(seed):
    M = 3 + seed % 2
    model, theta, s = alrnn(seed, M)
    ref = brute_force_cycles(model, theta, 6, inputs=s)
    ds = scyfi(model, theta, 6, inputs=s, seed=seed, settings=generous(2))
    assert_same_cycles(ds, ref)
    np.testing.assert_array_equal(ds.stability.values, ref.stability.values)
    assert_exact_with_simulate(model, theta, ds, inputs=s)
    assert ds.sizes["bit"] == 2 and ref.sizes["cycle"] >= 4
    assert ds.bit_label.values.tolist() == [f"z[{M - 2}] > 0", f"z[{M - 1}] > 0"]


def test_alrnn_map_and_gradients():
    model, theta, _ = alrnn(3, 4)
    d = model.unpack(theta)
    rng = np.random.default_rng(0)
    z = rng.normal(size=4)
    s = rng.normal(size=1)
    phi = np.concatenate([z[:2], np.maximum(z[2:], 0.0)])
    want = d["A"] * z + d["W"] @ phi + d["C"] @ s + d["h"]
    np.testing.assert_allclose(model.step(theta, z, s), want, rtol=1e-14, atol=1e-14)
    J = np.diag(d["A"]) + d["W"] * np.concatenate([[1.0, 1.0], (z[2:] > 0).astype(float)])[None, :]
    np.testing.assert_array_equal(model.jacobian(theta, z, s), J)
    # with every unit a ReLU the ALRNN is the PLRNN
    full = pn.ALRNN(3, n_relu=3)
    th = full.init(2)
    Z = full.simulate(th, rng.normal(size=(2, 3)), n_steps=15)
    np.testing.assert_allclose(Z, pn.PLRNN(3).simulate(th, Z[:, 0], n_steps=15), rtol=1e-14, atol=1e-14)
    # BPTT against central finite differences, with inputs and teacher forcing
    batch = pn.Batch(targets=rng.normal(0, 0.5, (3, 7, 2)), inputs=rng.normal(0, 1, (3, 7, 1)),
                     z0=rng.normal(0, 0.5, (3, 4)))
    res = pn.loss_and_grad(model, 0.5 * theta, batch, forcing=pn.GTF(0.3))
    fd = central_fd(lambda t: pn.loss_and_grad(model, t, batch, forcing=pn.GTF(0.3)).loss, 0.5 * theta, 1e-6)
    assert np.linalg.norm(fd - res.grad) <= 1e-6 * np.linalg.norm(res.grad)


@pytest.mark.parametrize("n_relu, exc, match", [(0, ValueError, "n_relu must be >= 1"),
                                                 (5, ValueError, "n_relu must be <= dim"),
                                                 (1.0, TypeError, "n_relu must be an integer")])
def test_alrnn_bad_settings(n_relu, exc, match):
    with pytest.raises(exc, match=match):
        pn.ALRNN(4, n_relu=n_relu)


# ---------------------------------------------------------------- Theorem 3 bound
def test_norm_bound_through_the_protocol():
    model = pn.PLRNN(3)
    theta = model.init(0)
    d = model.unpack(theta)
    r = as_piecewise_linear(model, theta).norm_bound()
    np.testing.assert_allclose(r, np.max(np.abs(d["A"])) + np.linalg.norm(d["W"], 2), rtol=1e-14)
    alpha = pn.Theorem3Alpha(margin=0.05, alpha_max=0.99)(0, model, theta)
    np.testing.assert_allclose(alpha, max(1 - 1 / r, 0.0) + 0.05, rtol=1e-14)
    # every family's region Jacobians are bounded by it
    for family in ("shallow", "ALRNN", "ReLU RNN"):
        m, _, s = FAMILIES[family]()
        th = m.init(3)
        pl = as_piecewise_linear(m, th, s)
        pats = np.random.default_rng(1).integers(0, 2, (200, pl.n_bits))
        F, _ = pl.region(pats)
        assert np.max(np.linalg.norm(F, 2, axis=(1, 2))) <= pl.norm_bound() * (1 + 1e-12)
        assert 0.0 <= pn.Theorem3Alpha()(0, m, th) <= 0.95
    with pytest.raises(TypeError, match="piecewise"):
        pn.Theorem3Alpha()(0, pn.VanillaRNN(2), pn.VanillaRNN(2).init(0))
