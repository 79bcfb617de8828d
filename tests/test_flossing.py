"""The analytic gradient of Lyapunov exponents (flossing) against finite differences; flossing hooks and seeds."""

import json

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
    logs = torch.zeros(k, dtype=torch.float64)
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
    from plrnn_numba.dynamics.flossing import Flossing, FlossingEpisodes, floss

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
                 hooks=[FlossingEpisodes(Flossing(k=2, n_steps=20), {0: 3, 10: 2})])
    assert h.sizes["floss_step"] == 5 and list(h["floss_epoch"].values) == [0, 0, 0, 10, 10]
    assert h["floss_exponents"].shape == (5, 2)
    with pytest.raises(TypeError, match="flossing must be Flossing"):
        FlossingEpisodes(None, {0: 1})


def _recorded(ds) -> int:
    seed = json.loads(ds.attrs["seeds"])
    assert isinstance(seed, int) and 0 <= seed < 2**63
    return seed


@pytest.mark.parametrize("seed", [None, "generator"], ids=["None", "Generator"])
def test_seed_none_or_generator_is_recorded_and_repeats_the_run(seed):
    from plrnn_numba.dynamics.flossing import Flossing, floss

    model = pn.VanillaRNN(4)
    theta = model.init(0, g=1.5)
    gen = seed == "generator"
    res = flossing_loss_and_grad(model, theta, 2, n_steps=20, seed=np.random.default_rng(3) if gen else None)
    assert isinstance(res.seed, int) and 0 <= res.seed < 2**63
    again = flossing_loss_and_grad(model, theta, 2, n_steps=20, seed=res.seed)
    assert again.loss == res.loss and again.seed == res.seed
    np.testing.assert_array_equal(again.grad, res.grad)
    settings = Flossing(k=2, n_steps=20, lr=0.01)
    th_a, a = floss(model, theta, 4, settings, seed=np.random.default_rng(4) if gen else None)
    th_b, b = floss(model, theta, 4, settings, seed=_recorded(a))
    np.testing.assert_array_equal(th_a, th_b)
    np.testing.assert_array_equal(a["loss"].values, b["loss"].values)
    # an int seed is recorded as given, and gives the same streams as before the seed rule
    assert flossing_loss_and_grad(model, theta, 2, n_steps=20, seed=7).seed == 7
    _, c = floss(model, theta, 2, settings, seed=7)
    assert _recorded(c) == 7
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        flossing_loss_and_grad(model, theta, 2, seed=-3)


def test_constant_and_shared_inputs_equal_the_explicit_batch_form():
    model = pn.PLRNN(3, n_inputs=2)
    theta = model.init(1, h_scale=0.3)
    z0 = np.random.default_rng(0).normal(0, 0.5, (2, 3))
    T, n_tr = 10, 5
    kw = dict(z0=z0, n_steps=T, n_transient=n_tr, seed=2)
    s = np.array([0.3, -0.2])
    stream = np.random.default_rng(1).normal(0, 0.3, (n_tr + T, 2))
    ref = flossing_loss_and_grad(model, theta, 2, inputs=np.broadcast_to(s, (2, n_tr + T, 2)), **kw)
    const = flossing_loss_and_grad(model, theta, 2, inputs=s, **kw)
    assert const.loss == ref.loss
    np.testing.assert_array_equal(const.grad, ref.grad)
    ref = flossing_loss_and_grad(model, theta, 2, inputs=np.stack([stream, stream]), **kw)
    shared = flossing_loss_and_grad(model, theta, 2, inputs=stream, **kw)
    assert shared.loss == ref.loss
    np.testing.assert_array_equal(shared.grad, ref.grad)
    with pytest.raises(ValueError, match=r"inputs must have shape \(2,\) \(constant\), \(15, 2\) or \(2, 15, 2\)"):
        flossing_loss_and_grad(model, theta, 2, inputs=stream[:4], **kw)


def test_flossing_hook_records_the_episodes_it_ran(tmp_path):
    from plrnn_numba.dynamics.flossing import Flossing, FlossingEpisodes

    driven = pn.VanillaRNN(6, n_inputs=1)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (4, 15, 1)).astype(float)
    batch = pn.Batch(targets=x, inputs=x)
    settings = Flossing(k=2, n_steps=20, lr=0.01)
    hook = FlossingEpisodes(settings, [(0, 3), (4, 2)])
    h = pn.train(driven, driven.init(0), batch, n_epochs=6, readout=pn.LinearReadout(1), loss="bce", seed=5,
                 hooks=[hook])
    assert h["floss_loss"].dims == ("floss_step",)
    assert h["floss_exponents"].dims == ("floss_step", "floss_exponent")
    assert list(h["floss_epoch"].values) == [0, 0, 0, 4, 4]
    for v in ("floss_loss", "floss_exponents", "floss_epoch"):
        assert {"long_name", "units"} <= set(h[v].attrs)
    assert json.loads(h.attrs["flossing"])["k"] == 2
    # the first episode runs before any task step: replay it with the hook's stream (the run's first spawned child)
    replay_rng = np.random.default_rng(np.random.SeedSequence(5).spawn(1)[0])
    theta, opt, losses, lams = driven.init(0), pn.Adam(settings.lr), [], []
    for _ in range(3):
        res = settings.loss_and_grad(driven, theta, replay_rng)
        losses.append(res.loss)
        lams.append(res.exponents.mean(axis=0))
        opt.step(theta, res.grad)
    np.testing.assert_array_equal(h["floss_loss"].values[:3], losses)
    np.testing.assert_array_equal(h["floss_exponents"].values[:3], lams)
    # the netCDF round trip keeps the flossing record
    back = pn.io.open(pn.io.save(h, tmp_path / "h.nc"))
    np.testing.assert_array_equal(back["floss_exponents"].values, h["floss_exponents"].values)
    # a hook object is reusable: a second run starts a fresh record
    again = pn.train(driven, driven.init(0), batch, n_epochs=6, readout=pn.LinearReadout(1), loss="bce", seed=5,
                     hooks=[hook])
    np.testing.assert_array_equal(again["floss_loss"].values, h["floss_loss"].values)
    # no episode reached: nothing recorded
    late = pn.train(driven, driven.init(0), batch, n_epochs=2, readout=pn.LinearReadout(1), loss="bce",
                    hooks=[FlossingEpisodes(settings, {10: 5})])
    assert "floss_loss" not in late and "flossing" not in late.attrs
    with pytest.raises(ValueError, match="episodes: the n_steps of .* must be >= 1"):
        FlossingEpisodes(settings, {3: 0})
    with pytest.raises(ValueError, match="flossing.k must be <="):
        pn.train(driven, driven.init(0), batch, n_epochs=1, readout=pn.LinearReadout(1),
                 hooks=[FlossingEpisodes(Flossing(k=7), {0: 1})])


def test_parallel_batch_equals_serial():
    # trajectories on threads, each with its own gradient accumulator, summed in order: the same result
    # up to the order of the additions, and the same from run to run
    model = pn.VanillaRNN(10, n_inputs=1)
    theta = model.init(1, g=1.8)
    rng = np.random.default_rng(3)
    z0, inputs = rng.standard_normal((3, 10)), rng.standard_normal((3, 30, 1))
    a, b, c = (flossing_loss_and_grad(model, theta, 3, 0.0, z0=z0, n_steps=30, inputs=inputs, n_threads=n)
               for n in (1, 2, 2))
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-14)
    np.testing.assert_allclose(b.grad, a.grad, rtol=1e-12, atol=1e-14 * np.abs(a.grad).max())
    np.testing.assert_array_equal(b.grad_z0, a.grad_z0)
    np.testing.assert_array_equal(b.grad, c.grad)
    with pytest.raises(ValueError, match="n_threads"):
        flossing_loss_and_grad(model, theta, 3, z0=z0, n_steps=30, inputs=inputs, n_threads=0)
