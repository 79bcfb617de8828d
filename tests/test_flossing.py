"""The analytic gradient of Lyapunov exponents (flossing) against finite differences."""

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics.flossing import flossing_loss_and_grad
from plrnn_numba.dynamics.lyapunov import lyapunov_spectrum

FD_RTOL = 1e-5  # central differences (h = 1e-6) of a loss built from log R_ii over T steps
H = 1e-6


def _fd(f, x, h=H):
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


MODELS = [
    ("plrnn", lambda: pn.PLRNN(4), {"h_scale": 0.3}),
    ("plrnn_input", lambda: pn.PLRNN(3, n_inputs=1), {"h_scale": 0.3}),
    ("tanh", lambda: pn.VanillaRNN(4, nonlinearity="tanh"), {"g": 1.5}),
    # ReLU units that switch off zero columns of J (R_ii -> 0): keep them active with a positive bias
    ("relu", lambda: pn.VanillaRNN(4, nonlinearity="relu"), {"g": 0.8, "b_scale": 4.0}),
    ("shallow_clipped", lambda: pn.ShallowPLRNN(3, 5, clipped=True), {}),
]


@pytest.mark.parametrize("t_ons", [1, 3])
@pytest.mark.parametrize("name, make, init", MODELS, ids=[m[0] for m in MODELS])
def test_flossing_gradient_matches_finite_differences(name, make, init, t_ons):
    model = make()
    theta = model.init(2, **init)
    rng = np.random.default_rng(5)
    z0 = rng.normal(0, 0.5, (2, model.dim))
    T = 12
    inputs = rng.normal(0, 0.3, (T, model.n_inputs)) if model.n_inputs else None
    # ReLU: a unit that is off zeroes a column of J, so only the leading exponents stay finite
    k = 1 if name == "relu" else model.dim - 1
    kw = dict(z0=z0, n_steps=T, t_ons=t_ons, inputs=inputs, seed=1)
    res = flossing_loss_and_grad(model, theta, k, target=-0.1, **kw)
    assert res.finite and res.exponents.shape == (2, k)
    assert np.abs(res.exponents).max() < 5  # a well-conditioned test problem
    fd = _fd(lambda th: flossing_loss_and_grad(model, th, k, target=-0.1, **kw).loss, theta)
    assert np.linalg.norm(fd - res.grad) <= FD_RTOL * np.linalg.norm(fd)
    fdz = _fd(
        lambda zz: flossing_loss_and_grad(model, theta, k, target=-0.1, **{**kw, "z0": zz.reshape(z0.shape)}).loss,
        z0.ravel(),
    )
    np.testing.assert_allclose(res.grad_z0.ravel(), fdz, atol=FD_RTOL * max(np.abs(fdz).max(), 1e-8))


def test_exponents_match_the_spectrum_engine():
    model = pn.VanillaRNN(5)
    theta = model.init(0, g=2.0)
    z0 = np.full(5, 0.2)
    res = flossing_loss_and_grad(model, theta, 5, z0=z0, n_steps=400, n_transient=100, seed=7)
    ds = lyapunov_spectrum(model, theta, n_steps=400, n_transient=100, n_transient_ons=0, z0=z0, seed=7)
    np.testing.assert_allclose(np.sort(res.exponents[0])[::-1], ds["mean"].values, atol=1e-10)


def test_gradient_descent_on_flossing_loss_moves_lambda1_to_target():
    model = pn.VanillaRNN(8)
    theta = model.init(0, g=2.5)
    opt = pn.Adam(2e-2)
    for _ in range(60):
        res = flossing_loss_and_grad(model, theta, 1, target=0.0, n_steps=100, n_transient=50, seed=1)
        opt.step(theta, res.grad)
    assert abs(res.exponents[0, 0]) < 0.05


def test_bad_input_and_missing_kernel():
    model = pn.PLRNN(3)
    th = model.init(0)
    with pytest.raises(ValueError, match="k must be <="):
        flossing_loss_and_grad(model, th, 4)
    with pytest.raises(ValueError, match="t_ons must be >= 1"):
        flossing_loss_and_grad(model, th, 2, t_ons=0)
    with pytest.raises(ValueError, match="theta contains NaN"):
        flossing_loss_and_grad(model, np.full(model.n_params, np.nan), 2)
    from .test_custom_model import Henon

    with pytest.raises(TypeError, match="jacobian_vjp"):
        flossing_loss_and_grad(Henon(), Henon().init(), 1)


def test_diverging_run_is_flagged():
    model = pn.PLRNN(2, full_W=True)
    theta = model.pack(A=[3.0, 3.0], W=np.zeros((2, 2)), h=[1.0, 1.0])
    res = flossing_loss_and_grad(model, theta, 1, n_steps=900, z0=[1.0, 1.0])
    assert not res.finite


def test_flossing_gradient_matches_torch_autograd_through_qr():
    torch = pytest.importorskip("torch")
    torch.set_default_dtype(torch.float64)
    model = pn.VanillaRNN(5, nonlinearity="tanh")
    theta = model.init(3, g=1.8)
    z0 = np.random.default_rng(2).normal(size=5)
    k, T, target = 3, 20, -0.2
    q, r = np.linalg.qr(np.random.default_rng(9).standard_normal((5, k)))
    q0 = q * np.sign(np.diag(r))
    res = flossing_loss_and_grad(model, theta, k, target=target, z0=z0, n_steps=T, q0=q0)

    d = model.unpack(theta)
    W = torch.tensor(d["W"], requires_grad=True)
    b = torch.tensor(d["b"], requires_grad=True)
    h = torch.tensor(z0)
    Q = torch.tensor(q0)
    logs = torch.zeros(k)
    for _ in range(T):
        J = W * (1 - torch.tanh(h) ** 2)[None, :]
        Q, R = torch.linalg.qr(J @ Q)
        sgn = torch.sign(torch.diagonal(R))
        Q, R = Q * sgn[None, :], R * sgn[:, None]
        logs = logs + torch.log(torch.diagonal(R))
        h = W @ torch.tanh(h) + b
    loss = ((logs / T - target) ** 2).sum()
    loss.backward()
    g_torch = np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()])
    assert res.loss == pytest.approx(loss.item(), rel=1e-10)
    np.testing.assert_allclose(res.grad, g_torch, rtol=1e-8, atol=1e-10)


def test_preflossing_reaches_targets_and_training_records_flossing():
    from plrnn_numba.dynamics.flossing import Flossing, floss

    model = pn.VanillaRNN(12)
    theta0 = model.init(0, g=2.0)
    theta, hist = floss(model, theta0, 80, Flossing(k=1, target=-0.5, n_steps=55, lr=0.02), seed=0)
    assert hist.attrs["status"] == "completed" and hist.sizes["epoch"] == 80
    assert abs(hist["exponents"].values[-10:, 0].mean() + 0.5) < 0.1
    # flossing episodes during task training are recorded in the history
    driven = pn.VanillaRNN(6, n_inputs=1)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (4, 15, 1)).astype(float)
    batch = pn.Batch(targets=x, inputs=x)
    h = pn.train(driven, driven.init(0), batch, n_epochs=12, readout=pn.LinearReadout(1), loss="bce",
                 flossing=Flossing(k=2, n_steps=20), flossing_episodes={0: 3, 10: 2})
    assert h.sizes["floss_step"] == 5 and list(h["floss_epoch"].values) == [0, 0, 0, 10, 10]
    assert h["floss_exponents"].shape == (5, 2)
    with pytest.raises(ValueError, match="flossing_episodes need"):
        pn.train(driven, driven.init(0), batch, n_epochs=2, readout=pn.LinearReadout(1), flossing_episodes={0: 1})
