"""The float32 mode (BPTT, training, simulation, Lyapunov spectra, flossing) against float64."""

import json

import numpy as np
import pytest

import plrnn_numba as pn

# float32 rounding (unit roundoff 6e-8) accumulated over T = 30 steps of contracting models
F32_RTOL = 1e-4  # loss, relative; gradients, relative to their largest entry


def _problem(model, seed=0, B=6, T=30, n_obs=2):
    rng = np.random.default_rng(seed)
    theta = model.init(seed)
    inputs = None if model.n_inputs == 0 else rng.standard_normal((B, T, model.n_inputs))
    batch = pn.Batch(targets=rng.standard_normal((B, T, n_obs)), inputs=inputs,
                     z0=0.3 * rng.standard_normal((B, model.dim)))
    return theta, batch


CASES = [
    ("plrnn", pn.PLRNN(dim=5), {}),
    ("plrnn_blas_gtf", pn.PLRNN(dim=70, n_inputs=1), {"forcing": pn.GTF(0.2)}),
    ("tanh", pn.VanillaRNN(n_hidden=6, n_inputs=1), {}),
    ("tanh_blas", pn.VanillaRNN(n_hidden=80, n_inputs=2), {"loss": "bce"}),
    ("relu", pn.VanillaRNN(n_hidden=20, n_inputs=1, nonlinearity="relu"), {}),
    ("lstm", pn.LSTM(n_hidden=4, n_inputs=1), {}),
    ("lstm_wide", pn.LSTM(n_hidden=12, n_inputs=1), {"readout": pn.LinearReadout(2, n_in=12)}),
    # 20 rows (10 a thread with 2 threads): the LSTM kernels' batch lanes below 8 units
    ("lstm_lanes", pn.LSTM(n_hidden=4, n_inputs=1), {"B": 20}),
    # an odd batch of long rows: the row loops' single last row, float32 sums over 4N = 160 terms
    ("lstm_rows", pn.LSTM(n_hidden=40, n_inputs=2), {"B": 5}),
]


@pytest.mark.parametrize("name, model, opts", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_float32_matches_float64(name, model, opts, n_threads):
    theta, batch = _problem(model, B=opts.get("B", 6))
    if opts.get("loss") == "bce":
        batch = pn.Batch(targets=(batch.targets > 0).astype(float), inputs=batch.inputs, z0=batch.z0)
    readout = opts.get("readout", pn.IdentityReadout(2))
    ro = readout.init(model.dim, 0) if isinstance(readout, pn.LinearReadout) else None
    kw = dict(readout=readout, readout_params=ro, loss=opts.get("loss", "mse"), forcing=opts.get("forcing"),
              n_threads=n_threads)
    r64 = pn.loss_and_grad(model, theta, batch, **kw)
    r32 = pn.loss_and_grad(model, theta, batch, dtype="float32", **kw)
    assert r32.finite
    assert r32.grad.dtype == np.float32 and r32.grad_z0.dtype == np.float32
    np.testing.assert_allclose(r32.loss, r64.loss, rtol=F32_RTOL)
    for a, b in ((r32.grad, r64.grad), (r32.grad_z0, r64.grad_z0), (r32.grad_readout, r64.grad_readout)):
        if b.size:
            assert np.max(np.abs(a - b)) <= F32_RTOL * np.max(np.abs(b))


def test_float32_is_not_float64():
    # the mode really runs in single precision: the results differ from float64 by float32 rounding
    model = pn.PLRNN(dim=8)
    theta, batch = _problem(model)
    r64 = pn.loss_and_grad(model, theta, batch, readout=pn.IdentityReadout(2))
    r32 = pn.loss_and_grad(model, theta, batch, readout=pn.IdentityReadout(2), dtype=np.float32)
    assert 1e-9 < np.max(np.abs(r32.grad - r64.grad)) / np.max(np.abs(r64.grad)) < F32_RTOL


def test_bad_dtype_and_unsupported_model():
    model = pn.PLRNN(dim=3)
    theta, batch = _problem(model, n_obs=2)
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        pn.loss_and_grad(model, theta, batch, dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        pn.loss_and_grad(model, theta, batch, dtype="double precision please")
    shallow = pn.ShallowPLRNN(3, 5)
    with pytest.raises(TypeError, match="no float32 kernels"):
        pn.loss_and_grad(shallow, shallow.init(0), batch, dtype="float32")


def test_training_in_float32_keeps_float64_parameters():
    model = pn.PLRNN(dim=4)
    theta, batch = _problem(model, B=4, T=20)
    kw = dict(readout=pn.IdentityReadout(2), n_epochs=15, seed=0, optimizer=pn.Adam(lr=1e-2))
    h32 = pn.train(model, theta, batch, dtype="float32", **kw)
    h64 = pn.train(model, theta, batch, **kw)
    assert h32["theta"].dtype == np.float64
    loss32, loss64 = h32["loss"].values, h64["loss"].values
    assert loss32[-1] < loss32[0]
    np.testing.assert_allclose(loss32, loss64, rtol=1e-3)


@pytest.mark.parametrize("model", [pn.PLRNN(dim=6, n_inputs=1), pn.VanillaRNN(n_hidden=70, n_inputs=1),
                                   pn.LSTM(n_hidden=3, n_inputs=1)], ids=lambda m: type(m).__name__)
def test_simulate_in_float32(model):
    rng = np.random.default_rng(2)
    theta = model.init(0)
    z0, inputs = 0.3 * rng.standard_normal((3, model.dim)), rng.standard_normal((3, 25, 1))
    Z64 = pn.simulate(model, theta, z0, inputs=inputs)
    Z32 = pn.simulate(model, theta, z0, inputs=inputs, dtype="float32")
    assert Z32.dtype == np.float32 and Z32.shape == Z64.shape
    assert np.max(np.abs(Z32 - Z64)) <= F32_RTOL * np.max(np.abs(Z64))
    with pytest.raises(TypeError, match="no float32 kernels"):
        pn.simulate(pn.ShallowPLRNN(2, 4), pn.ShallowPLRNN(2, 4).init(0), np.zeros(2), n_steps=3, dtype="float32")


def test_lyapunov_spectrum_in_float32():
    # a contracting LSTM: the same stable orbit, the same exponents to float32 rounding
    lstm = pn.LSTM(n_hidden=4)
    theta = lstm.init(0)
    kw = dict(k=3, n_steps=2000, n_transient=200, n_init=2, seed=0)
    a = pn.dynamics.lyapunov_spectrum(lstm, theta, **kw)
    b = pn.dynamics.lyapunov_spectrum(lstm, theta, dtype="float32", **kw)
    assert json.loads(b.attrs["arguments"])["dtype"] == "float32"
    np.testing.assert_allclose(b["exponents"].values, a["exponents"].values, rtol=1e-5)
    # a chaotic tanh RNN (tangent kernels): another orbit, the same exponents within their spread
    rnn = pn.VanillaRNN(30)
    theta = rnn.init(0, g=3.0)
    kw = dict(k=2, n_steps=8000, n_init=3, seed=0)
    a = pn.dynamics.lyapunov_spectrum(rnn, theta, **kw)
    b = pn.dynamics.lyapunov_spectrum(rnn, theta, dtype="float32", **kw)
    assert a["exponents"].values[:, 0].min() > 0.05  # chaotic
    spread = 3 * a["exponents"].values.std(axis=0) + 0.01
    assert np.all(np.abs(b["exponents"].values.mean(axis=0) - a["exponents"].values.mean(axis=0)) < spread)


FLOSS_CASES = [
    # tangent kernels: Gram-Schmidt QR and its loop pullback (k = 1), LAPACK and the blocked pullback (k = 5)
    ("tanh_k1", pn.VanillaRNN(n_hidden=20), {"g": 1.5}, 1),
    ("tanh_k5", pn.VanillaRNN(n_hidden=20, n_inputs=1), {"g": 1.5}, 5),
    # the dense Jacobian and its pullback
    ("plrnn", pn.PLRNN(dim=6), {}, 3),
    ("lstm", pn.LSTM(n_hidden=3, n_inputs=1), {}, 2),
]


@pytest.mark.parametrize("name, model, init, k", FLOSS_CASES, ids=[c[0] for c in FLOSS_CASES])
def test_flossing_in_float32(name, model, init, k):
    theta = model.init(1, **init)
    rng = np.random.default_rng(4)
    inputs = rng.standard_normal((3, 40, model.n_inputs)) if model.n_inputs else None
    kw = dict(z0=0.5 * rng.standard_normal((3, model.dim)), n_steps=30, n_transient=10, inputs=inputs, seed=3)
    r64 = pn.dynamics.flossing_loss_and_grad(model, theta, k, target=-0.1, **kw)
    r32 = pn.dynamics.flossing_loss_and_grad(model, theta, k, target=-0.1, dtype="float32", **kw)
    assert r32.finite and r32.grad.dtype == np.float32 and r32.grad_z0.dtype == np.float32
    assert r32.exponents.dtype == np.float64
    np.testing.assert_allclose(r32.loss, r64.loss, rtol=F32_RTOL)
    assert np.max(np.abs(r32.exponents - r64.exponents)) <= F32_RTOL * np.max(np.abs(r64.exponents))
    for a, b in ((r32.grad, r64.grad), (r32.grad_z0, r64.grad_z0)):
        assert np.max(np.abs(a - b)) <= F32_RTOL * np.max(np.abs(b))
    assert np.max(np.abs(r32.grad - r64.grad)) > 1e-10  # really single precision
    # the trajectories on two threads: the same up to the order of the additions, and repeatable
    par, again = (pn.dynamics.flossing_loss_and_grad(model, theta, k, target=-0.1, dtype="float32", n_threads=2, **kw)
                  for _ in range(2))
    for a, b in ((par.grad, r32.grad), (par.grad_z0, r32.grad_z0)):
        assert np.max(np.abs(a - b)) <= 1e-6 * np.max(np.abs(b))
    np.testing.assert_array_equal(par.grad, again.grad)


def test_flossing_settings_in_float32():
    model = pn.VanillaRNN(n_hidden=8)
    theta = model.init(0, g=1.5)
    settings = pn.dynamics.Flossing(k=2, n_steps=20, n_transient=5, dtype=np.float32)
    assert settings.dtype == "float32"
    flossed, hist = pn.dynamics.floss(model, theta, 5, settings, seed=0)
    assert flossed.dtype == np.float64 and hist.attrs["status"] == "completed"
    _, hist64 = pn.dynamics.floss(model, theta, 5, pn.dynamics.Flossing(k=2, n_steps=20, n_transient=5), seed=0)
    np.testing.assert_allclose(hist["loss"].values, hist64["loss"].values, rtol=1e-3)
    with pytest.raises(ValueError, match="dtype must be 'float64' or 'float32'"):
        pn.dynamics.Flossing(dtype="float16")
    shallow = pn.ShallowPLRNN(3, 5)
    with pytest.raises(TypeError, match="no float32 kernels"):
        pn.dynamics.floss(shallow, shallow.init(0), 2, pn.dynamics.Flossing(dtype="float32"))
    with pytest.raises(TypeError, match="no float32 kernels"):
        pn.dynamics.flossing_loss_and_grad(shallow, shallow.init(0), 1, dtype="float32")
