"""loss_and_grad: conventions, predictions and clear errors for bad input."""

import numpy as np
import pytest

import plrnn_numba as pn


def _setup(M=4, B=3, T=7, K=0, N=2, seed=0):
    model = pn.PLRNN(M, n_inputs=K)
    rng = np.random.default_rng(seed)
    batch = pn.Batch(
        targets=rng.normal(size=(B, T, N)), inputs=rng.normal(size=(B, T, K)) if K else None, z0=rng.normal(size=(B, M))
    )
    return model, model.init(seed), batch


def test_loss_matches_prediction_and_mask_weights():
    model, th, batch = _setup()
    for forcing in (None, pn.GTF(0.25), pn.SparseTF(2)):
        Y, Z = pn.predict(model, th, batch, forcing=forcing)
        res = pn.loss_and_grad(model, th, batch, forcing=forcing)
        assert res.loss == pytest.approx(np.mean((Y - batch.targets) ** 2), rel=1e-12)
    mask = np.zeros((3, 7))
    mask[:, 3:] = 1.0
    masked = pn.Batch(targets=batch.targets, z0=batch.z0, mask=mask)
    Y, _ = pn.predict(model, th, masked)
    res = pn.loss_and_grad(model, th, masked)
    assert res.loss == pytest.approx(np.mean((Y[:, 3:] - batch.targets[:, 3:]) ** 2), rel=1e-12)


def test_from_sequences_sets_observed_initial_state():
    model = pn.PLRNN(4)
    x = np.random.default_rng(1).normal(size=(2, 6, 2))
    batch = pn.Batch.from_sequences(x)
    _, Z = pn.predict(model, model.init(0), batch)
    np.testing.assert_array_equal(Z[:, 0, :2], x[:, 0])
    np.testing.assert_array_equal(Z[:, 0, 2:], 0.0)


def test_full_forcing_makes_one_step_predictions():
    # alpha = 1 replaces the observed states by data: every prediction is one step ahead
    model = pn.PLRNN(2)
    th = model.init(3)
    x = model.simulate(th, np.array([0.3, -0.2]), n_steps=10)[None]
    res = pn.loss_and_grad(model, th, pn.Batch.from_sequences(x), forcing=pn.GTF(1.0))
    assert res.loss < 1e-28


def test_parallel_chunks_equal_serial():
    model = pn.PLRNN(30)
    rng = np.random.default_rng(0)
    batch = pn.Batch(targets=rng.normal(size=(6, 40, 3)), z0=rng.normal(size=(6, 30)))
    th = model.init(0)
    a = pn.loss_and_grad(model, th, batch, forcing=pn.GTF(0.2), n_threads=1)
    b = pn.loss_and_grad(model, th, batch, forcing=pn.GTF(0.2), n_threads=2)
    assert a.loss == pytest.approx(b.loss, rel=1e-12)
    np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(a.grad_z0, b.grad_z0, rtol=1e-10, atol=1e-14)


def test_nonfinite_result_is_flagged_not_raised():
    model = pn.PLRNN(2, full_W=True)
    th = model.pack(A=[3.0, 3.0], W=np.zeros((2, 2)), h=[0.0, 0.0])
    res = pn.loss_and_grad(model, th, pn.Batch(targets=np.zeros((1, 1000, 2)), z0=np.ones((1, 2))))
    assert not res.finite


def test_batch_checks_itself_where_it_is_made():
    with pytest.raises(ValueError, match="targets must have shape"):
        pn.Batch(targets=np.zeros((3, 7)))
    with pytest.raises(ValueError, match="targets contains NaN"):
        pn.Batch(targets=np.full((3, 7, 2), np.nan))
    with pytest.raises(ValueError, match="mask must have shape"):
        pn.Batch(targets=np.zeros((3, 7, 2)), mask=np.ones((3, 6)))
    with pytest.raises(ValueError, match="mask must be non-negative"):
        pn.Batch(targets=np.zeros((3, 7, 2)), mask=-np.ones((3, 7)))


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"batch": pn.Batch(targets=np.zeros((3, 7, 5)))}, ValueError, "observed channels, more than"),
        (
            {"batch": pn.Batch(targets=np.zeros((3, 7, 3))), "readout": pn.IdentityReadout(2)},
            ValueError,
            "readout produces 2",
        ),
        ({"batch": pn.Batch(targets=np.zeros((3, 7, 2)), z0=np.zeros((3, 5)))}, ValueError, "batch.z0 must have shape"),
        (
            {"batch": pn.Batch(targets=np.zeros((3, 7, 2)), inputs=np.zeros((3, 7, 1)))},
            ValueError,
            "batch.inputs must have shape",
        ),
        ({"batch": pn.Batch(targets=np.zeros((3, 7, 2)), mask=np.zeros((3, 7)))}, ValueError, "counts no time step"),
        ({"loss": "mae"}, ValueError, "loss must be one of"),
        ({"loss": "bce", "batch": pn.Batch(targets=np.full((3, 7, 2), 2.0))}, ValueError, r"in \[0, 1\]"),
        (
            {"forcing": pn.GTF(0.5), "readout": pn.LinearReadout(2), "readout_params": np.zeros(10)},
            ValueError,
            "identity readout",
        ),
        ({"readout": pn.LinearReadout(2)}, ValueError, "readout_params are required"),
        ({"readout": pn.LinearReadout(2), "readout_params": np.zeros(3)}, ValueError, "readout_params must have shape"),
        ({"forcing": "gtf"}, TypeError, "forcing must be"),
        ({"readout": "identity"}, TypeError, "readout must be"),
        ({"theta": np.zeros(3)}, ValueError, "theta must be a 1-D vector"),
        ({"batch": np.zeros((3, 7, 2))}, TypeError, "batch must be a plrnn_numba.Batch"),
    ],
)
def test_bad_input(kwargs, exc, match):
    model, th, batch = _setup()
    args = {"theta": th, "batch": batch}
    args.update(kwargs)
    theta, b = args.pop("theta"), args.pop("batch")
    with pytest.raises(exc, match=match):
        pn.loss_and_grad(model, theta, b, **args)


def test_gtf_alpha_out_of_range():
    with pytest.raises(ValueError, match="alpha must be <= 1"):
        pn.GTF(1.5)
    with pytest.raises(ValueError, match="tau must be >= 1"):
        pn.SparseTF(0)


def test_batch_inputs_constant_and_shared_equal_the_explicit_batch_form():
    model, th, batch = _setup(K=2)
    B, T, _ = batch.targets.shape
    s = np.array([0.4, -0.3])
    stream = np.random.default_rng(5).normal(size=(T, 2))
    for short in (s, stream):
        full = np.ascontiguousarray(np.broadcast_to(short, (B, T, 2)))
        a = pn.loss_and_grad(model, th, pn.Batch(targets=batch.targets, inputs=short, z0=batch.z0), forcing=pn.GTF(0.2))
        b = pn.loss_and_grad(model, th, pn.Batch(targets=batch.targets, inputs=full, z0=batch.z0), forcing=pn.GTF(0.2))
        assert a.loss == b.loss
        np.testing.assert_array_equal(a.grad, b.grad)
        np.testing.assert_array_equal(a.grad_z0, b.grad_z0)
        Ya, _ = pn.predict(model, th, pn.Batch(targets=batch.targets, inputs=short, z0=batch.z0))
        Yb, _ = pn.predict(model, th, pn.Batch(targets=batch.targets, inputs=full, z0=batch.z0))
        np.testing.assert_array_equal(Ya, Yb)
    with pytest.raises(ValueError, match=r"inputs must have shape \(K,\), \(7, K\) or \(3, 7, K\)"):
        pn.Batch(targets=batch.targets, inputs=stream[:3], z0=batch.z0)
    bad = pn.Batch(targets=batch.targets, inputs=np.zeros((T, 3)), z0=batch.z0)
    with pytest.raises(ValueError, match=r"batch.inputs must have shape \(2,\) \(constant\), \(7, 2\) or \(3, 7, 2\)"):
        pn.loss_and_grad(model, th, bad)
    with pytest.raises(ValueError, match="batch.inputs are required"):
        pn.loss_and_grad(model, th, pn.Batch(targets=batch.targets, z0=batch.z0))


def test_simulate_inputs_constant_and_shared_equal_the_explicit_batch_form():
    model = pn.PLRNN(3, n_inputs=2)
    th = model.init(0)
    z0 = np.random.default_rng(0).normal(size=(4, 3))
    s = np.array([0.2, -0.5])
    stream = np.random.default_rng(1).normal(size=(6, 2))
    ref = pn.simulate(model, th, z0, inputs=np.broadcast_to(s, (4, 6, 2)))
    np.testing.assert_array_equal(pn.simulate(model, th, z0, n_steps=6, inputs=s), ref)
    ref = pn.simulate(model, th, z0, inputs=np.broadcast_to(stream, (4, 6, 2)))
    np.testing.assert_array_equal(pn.simulate(model, th, z0, inputs=stream), ref)
    np.testing.assert_array_equal(pn.simulate(model, th, z0[0], inputs=stream), ref[0])
    with pytest.raises(ValueError, match="give n_steps for a constant input vector"):
        pn.simulate(model, th, z0, inputs=s)
    with pytest.raises(ValueError, match="n_steps=5 disagrees with inputs of length 6"):
        pn.simulate(model, th, z0, n_steps=5, inputs=stream)
    with pytest.raises(ValueError, match="inputs were given but the model has no inputs"):
        pn.simulate(pn.PLRNN(3), pn.PLRNN(3).init(0), z0, inputs=stream)
