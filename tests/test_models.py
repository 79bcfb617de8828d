"""Model descriptions: packing, views, simulation and Jacobians against plain NumPy."""

import numpy as np
import pytest

import plrnn_numba as pn

RTOL = 1e-12  # kernels vs plain NumPy arithmetic of the same formula


def relu(x):
    return np.maximum(x, 0.0)


def test_plrnn_pack_unpack_roundtrip_and_zero_diagonal():
    m = pn.PLRNN(4, n_inputs=2)
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 4))
    np.fill_diagonal(W, 0.0)
    A, h, C = rng.normal(size=4), rng.normal(size=4), rng.normal(size=(4, 2))
    th = m.pack(A=A, W=W, h=h, C=C)
    assert th.size == m.n_params == 4 + 12 + 8 + 4
    d = m.unpack(th)
    np.testing.assert_array_equal(d["W"], W)
    np.testing.assert_array_equal(d["A"], A)
    np.testing.assert_array_equal(d["C"], C)
    # views share memory with theta (for the parameters stored contiguously)
    d["h"][0] = 42.0
    assert th[-4] == 42.0
    assert len(m.param_names()) == m.n_params and "W[0,1]" in m.param_names() and "W[0,0]" not in m.param_names()
    with pytest.raises(ValueError, match="diagonal"):
        m.pack(A=A, W=W + np.eye(4), h=h, C=C)
    full = pn.PLRNN(4, n_inputs=2, full_W=True)
    assert full.n_params == 4 + 16 + 8 + 4
    np.testing.assert_array_equal(full.unpack(full.pack(A=A, W=W + np.eye(4), h=h, C=C))["W"], W + np.eye(4))


def test_plrnn_simulation_and_jacobian_match_numpy():
    m = pn.PLRNN(5, n_inputs=2)
    th = m.init(1, h_scale=0.3)
    d = m.unpack(th)
    rng = np.random.default_rng(2)
    s = rng.normal(size=(20, 2))
    Z = m.simulate(th, rng.normal(size=5), inputs=s)
    z = Z[0]
    for t in range(20):
        z = d["A"] * z + d["W"] @ relu(z) + d["C"] @ s[t] + d["h"]
        np.testing.assert_allclose(Z[t + 1], z, rtol=RTOL, atol=1e-14)
    J = m.jacobian(th, Z[3], s[3])
    np.testing.assert_allclose(J, np.diag(d["A"]) + d["W"] * (Z[3] > 0)[None, :], rtol=RTOL)


@pytest.mark.parametrize("clipped", [False, True])
def test_shallow_simulation_and_jacobian_match_numpy(clipped):
    m = pn.ShallowPLRNN(3, 7, n_inputs=1, clipped=clipped)
    th = m.init(0)
    d = m.unpack(th)
    rng = np.random.default_rng(0)
    s = rng.normal(size=(15, 1))
    Z = m.simulate(th, rng.normal(size=3), inputs=s)
    z = Z[0]
    for t in range(15):
        u = relu(d["W2"] @ z + d["h2"]) - (relu(d["W2"] @ z) if clipped else 0.0)
        z = d["A"] * z + d["W1"] @ u + d["h1"] + d["C"] @ s[t]
        np.testing.assert_allclose(Z[t + 1], z, rtol=RTOL, atol=1e-14)
    z = Z[5]
    D1 = np.diag((d["W2"] @ z + d["h2"] > 0).astype(float))
    D2 = np.diag((d["W2"] @ z > 0).astype(float)) if clipped else 0.0
    np.testing.assert_allclose(
        m.jacobian(th, z, s[5]), np.diag(d["A"]) + d["W1"] @ (D1 - D2) @ d["W2"], rtol=RTOL, atol=1e-14
    )


@pytest.mark.parametrize("nl", ["tanh", "relu"])
def test_vanilla_simulation_and_jacobian_match_numpy(nl):
    m = pn.VanillaRNN(6, n_inputs=2, nonlinearity=nl)
    th = m.init(0)
    d = m.unpack(th)
    phi = np.tanh if nl == "tanh" else relu
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 2))
    H = m.simulate(th, rng.normal(size=6), inputs=x)
    h = H[0]
    for t in range(10):
        h = d["W"] @ phi(h) + d["V"] @ x[t] + d["b"]
        np.testing.assert_allclose(H[t + 1], h, rtol=RTOL, atol=1e-14)
    dphi = 1 - np.tanh(H[4]) ** 2 if nl == "tanh" else (H[4] > 0).astype(float)
    np.testing.assert_allclose(m.jacobian(th, H[4], x[4]), d["W"] * dphi[None, :], rtol=RTOL)


def test_vanilla_init_statistics():
    m = pn.VanillaRNN(400, n_inputs=1)
    d = m.unpack(m.init(0, g=1.5))
    assert abs(d["W"].std() * np.sqrt(400) - 1.5) < 0.02
    assert 0 <= d["b"].min() and d["b"].max() < 0.1


def test_large_dimension_blas_path_matches_loops():
    # M above the BLAS threshold takes the matrix-matrix path
    m = pn.PLRNN(64)
    th = m.init(0, h_scale=0.2)
    d = m.unpack(th)
    z0 = np.random.default_rng(1).normal(size=(3, 64))
    Z = m.simulate(th, z0, n_steps=5)
    z = z0
    for _ in range(5):
        z = d["A"] * z + relu(z) @ d["W"].T + d["h"]
    np.testing.assert_allclose(Z[:, -1], z, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: pn.PLRNN(64),
    lambda: pn.ALRNN(64, n_relu=40),
    lambda: pn.VanillaRNN(64),
    lambda: pn.VanillaRNN(64, nonlinearity="relu"),
    lambda: pn.OrthogonalRNN(64),
], ids=["plrnn", "alrnn", "tanh", "relu", "orthogonal"])
def test_single_rows_through_loops_match_the_batched_blas_path(make):
    # at 64 units a batch of rows goes to BLAS and a single row through loops (models._linalg.use_blas):
    # each row of a batch must come out the same both ways, forward (step) and backward (state pullback)
    m = make()
    th = m.init(0)
    rng = np.random.default_rng(3)
    B, T = 5, 6
    z0 = rng.normal(0.0, 0.5, (B, m.dim))
    Z = m.simulate(th, z0, n_steps=T)
    targets = rng.normal(0.0, 0.5, (B, T, m.dim))
    full = pn.loss_and_grad(m, th, pn.Batch(targets=targets, z0=z0))
    grads = []
    for b in range(B):
        np.testing.assert_allclose(m.simulate(th, z0[b], n_steps=T), Z[b], rtol=RTOL, atol=RTOL)
        one = pn.loss_and_grad(m, th, pn.Batch(targets=targets[b : b + 1], z0=z0[b : b + 1]))
        np.testing.assert_allclose(one.grad_z0[0], full.grad_z0[b] * B, rtol=1e-10, atol=1e-12)
        grads.append(one.grad)
    np.testing.assert_allclose(np.mean(grads, axis=0), full.grad, rtol=1e-10, atol=1e-12)


def test_batched_simulation_and_divergence_is_reported_not_raised():
    m = pn.PLRNN(2, full_W=True)
    th = m.pack(A=[2.0, 2.0], W=np.zeros((2, 2)), h=[0.0, 0.0])
    Z = m.simulate(th, np.ones((4, 2)), n_steps=2000)
    assert Z.shape == (4, 2001, 2)
    assert not np.all(np.isfinite(Z[:, -1]))


def test_skew_tent_map_as_1d_plrnn():
    # z' = a_L z + mu (z <= 0), a_R z + mu (z > 0): A = a_L, W = a_R - a_L, h = mu
    aL, aR, mu = 0.5, -1.5, 0.3
    m = pn.PLRNN(1, full_W=True)
    th = m.pack(A=[aL], W=[[aR - aL]], h=[mu])
    z = 0.2
    Z = m.simulate(th, [z], n_steps=30)[:, 0]
    for t in range(30):
        z = aL * z + mu if z <= 0 else aR * z + mu
        assert Z[t + 1] == pytest.approx(z, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: pn.PLRNN(3).pack(A=np.ones(3), W=np.ones((3, 4)), h=np.zeros(3)), "W must be square"),
        (lambda: pn.PLRNN(3).pack(A=np.ones(2), W=np.zeros((3, 3)), h=np.zeros(3)), "A must have shape"),
        (lambda: pn.PLRNN(3).pack(A=np.ones(3), W=np.zeros((3, 3)), h=[0, np.nan, 0]), "h contains NaN"),
        (lambda: pn.PLRNN(3).simulate(np.zeros(5), np.zeros(3), n_steps=2), "theta must be a 1-D vector of length"),
        (lambda: pn.PLRNN(3).simulate(pn.PLRNN(3).init(0), np.zeros(4), n_steps=2), "z0 must have shape"),
        (lambda: pn.PLRNN(3).simulate(pn.PLRNN(3).init(0), np.zeros(3)), "n_steps"),
        (
            lambda: pn.PLRNN(3, n_inputs=1).simulate(pn.PLRNN(3, n_inputs=1).init(0), np.zeros(3), n_steps=3),
            "inputs are required",
        ),
        (lambda: pn.PLRNN(0), "dim must be >= 1"),
        (lambda: pn.VanillaRNN(3, nonlinearity="sigmoid"), "nonlinearity must be one of"),
        (lambda: pn.PLRNN(3).jacobian(np.full(pn.PLRNN(3).n_params, np.inf), np.zeros(3)), "theta contains NaN or inf"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_types_raise_type_error():
    with pytest.raises(TypeError, match="dim must be an integer"):
        pn.PLRNN(2.5)
    with pytest.raises(TypeError, match="theta must be a real numeric array"):
        pn.PLRNN(2).simulate(np.array(["a"] * pn.PLRNN(2).n_params), np.zeros(2), n_steps=1)
    with pytest.raises(TypeError, match="complex"):
        pn.PLRNN(2).simulate(np.zeros(pn.PLRNN(2).n_params, complex), np.zeros(2), n_steps=1)


@pytest.mark.parametrize("make", [
    lambda M: pn.PLRNN(M), lambda M: pn.PLRNN(M, n_inputs=2, full_W=True), lambda M: pn.ALRNN(M, n_relu=max(1, M // 3)),
    lambda M: pn.ShallowPLRNN(M, 4 * M), lambda M: pn.VanillaRNN(M, nonlinearity="relu"),
])
@pytest.mark.parametrize("M", [2, 8, 32, 100])
def test_default_initialisations_are_stable(make, M):
    """Default inits bound every region's Jacobian (||L|| + ||R|| ||U|| <= 0.99): free runs stay bounded."""
    from plrnn_numba.models import as_piecewise_linear

    model = make(M)
    for seed in range(5):
        theta = model.init(seed)
        assert as_piecewise_linear(model, theta, np.zeros(model.n_inputs) if model.n_inputs else None
                                   ).norm_bound() <= 0.99 * (1 + 1e-12)
        z0 = np.random.default_rng(seed).normal(0.0, 10.0, (3, model.dim))
        Z = model.simulate(theta, z0, n_steps=2000, inputs=np.zeros(model.n_inputs) if model.n_inputs else None)
        assert np.all(np.isfinite(Z)) and np.abs(Z[:, -1]).max() <= np.abs(z0).max() + 10.0
    # the raw draw is still available, and diverges for most large PLRNNs (why the bound is the default)
    if M == 32 and isinstance(model, pn.PLRNN) and not isinstance(model, pn.ALRNN) and not model.full_W:
        raw = [model.init(s, max_norm=None) for s in range(5)]
        runs = [model.simulate(th, np.ones(M), n_steps=2000)[-1] for th in raw]
        assert sum(not np.all(np.abs(z) < 1e6) for z in runs) >= 3


def test_clipped_shallow_init_is_bounded_by_construction():
    model = pn.ShallowPLRNN(5, 20, clipped=True)
    for seed in range(5):
        Z = model.simulate(model.init(seed), np.random.default_rng(seed).normal(0, 10, (3, 5)), n_steps=3000)
        assert np.all(np.isfinite(Z)) and np.abs(Z[:, -1]).max() < 1e3
