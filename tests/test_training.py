"""Training loop, optimisers, schedules, history Dataset, hooks, seeds and failure handling."""

import json

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba.models import as_piecewise_linear
from plrnn_numba.training import SGD, Adam, AdamW, MultiStepLR, StepLR, clip_by_global_norm


def _toy(seed=0, M=3, T=20, n=400):
    model = pn.PLRNN(M)
    teacher = model.init(seed + 100, h_scale=0.3)
    x = model.simulate(teacher, np.ones(M) * 0.2, n_steps=n)[50:, :2]
    return model, pn.SubsequenceSampler(x, seq_len=T, batch_size=8)


def test_optimisers_match_reference_formulas():
    x0 = np.array([1.0, -2.0, 3.0])
    g = np.array([0.5, -0.1, 0.2])
    # SGD with momentum, two steps
    opt, x = SGD(lr=0.1, momentum=0.9), x0.copy()
    opt.step(x, g)
    opt.step(x, g)
    np.testing.assert_allclose(x, x0 - 0.1 * g - 0.1 * (0.9 * g + g))
    # Adam: the first step moves every coordinate by lr * sign(g)
    opt, x = Adam(lr=0.01), x0.copy()
    opt.step(x, g)
    np.testing.assert_allclose(x, x0 - 0.01 * np.sign(g), rtol=1e-6)
    # AdamW: decoupled decay before the Adam step
    opt, x = AdamW(lr=0.01, weight_decay=0.1), x0.copy()
    opt.step(x, g)
    np.testing.assert_allclose(x, x0 * (1 - 0.001) - 0.01 * np.sign(g), rtol=1e-6)


def test_clipping_and_schedules():
    g, n = clip_by_global_norm(np.array([3.0, 4.0]), 1.0)
    assert n == 5.0 and np.allclose(g, [0.6, 0.8])
    assert StepLR(10, 0.5).factor(25) == 0.25
    assert MultiStepLR([5, 8], 0.1).factor(7) == pytest.approx(0.1)
    assert MultiStepLR([5, 8], 0.1).factor(9) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="milestones"):
        MultiStepLR([8, 5])


def test_training_reduces_loss_and_history_is_complete(tmp_path):
    model, sampler = _toy()
    theta0 = model.init(0)
    hist = pn.train(
        model,
        theta0,
        sampler,
        n_epochs=120,
        optimizer=Adam(0.01),
        lr_schedule=StepLR(60, 0.5),
        clip_norm=5.0,
        forcing=pn.GTF(0.3),
        snapshot_every=25,
        seed=3,
    )
    assert hist.attrs["status"] == "completed" and hist.attrs["epochs_completed"] == 120
    assert hist["loss"].values[-10:].mean() < 0.5 * hist["loss"].values[:10].mean()
    assert hist["lr"].values[0] == 0.01 and hist["lr"].values[-1] == 0.005
    assert list(hist["snapshot_epoch"].values) == [0, 25, 50, 75, 100, 119]
    np.testing.assert_array_equal(hist["theta_snapshots"].values[-1], hist["theta"].values)
    np.testing.assert_array_equal(hist["theta_init"].values, theta0)
    assert hist.sizes["param"] == model.n_params
    for v in ("loss", "grad_norm", "lr", "alpha", "theta"):
        assert "long_name" in hist[v].attrs and "units" in hist[v].attrs
    for a in ("created", "versions", "arguments", "producer", "seeds"):
        assert a in hist.attrs
    path = pn.io.save(hist, tmp_path / "h.nc")
    back = pn.io.open(path)
    xr.testing.assert_identical(back, pn.io.open(pn.io.save(back, tmp_path / "h2.nc")))
    for v in hist.data_vars:
        np.testing.assert_array_equal(back[v].values, hist[v].values)
    assert back.attrs["status"] == "completed"


def test_training_is_deterministic_given_seed():
    model, sampler = _toy()
    a = pn.train(model, model.init(0), sampler, n_epochs=20, seed=5)
    b = pn.train(model, model.init(0), sampler, n_epochs=20, seed=5)
    np.testing.assert_array_equal(a["theta"].values, b["theta"].values)


def test_gtf_schedule_is_recorded():
    model, sampler = _toy()
    hist = pn.train(model, model.init(0), sampler, n_epochs=30, forcing=pn.GTF(pn.LinearAlpha(0.5, 0.1, 20)))
    np.testing.assert_allclose(hist["alpha"].values[[0, 10, 20, 29]], [0.5, 0.3, 0.1, 0.1])
    hist = pn.train(model, model.init(0), sampler, n_epochs=5, forcing=pn.GTF(pn.Theorem3Alpha(margin=0.1)))
    r = as_piecewise_linear(model, model.init(0)).norm_bound()
    assert hist["alpha"].values[0] == pytest.approx(np.clip(max(0, 1 - 1 / r) + 0.1, 0, 0.95))


def test_linear_readout_learned_z0_and_callback():
    model = pn.VanillaRNN(5, n_inputs=1)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (4, 12, 1)).astype(float)
    batch = pn.Batch(targets=x, inputs=x)  # copy task with zero delay
    calls = []

    def cb(state):
        calls.append(state.epoch)
        return {"loss_again": state.loss, "z0_norm": np.linalg.norm(state.z0)}

    hist = pn.train(
        model,
        model.init(0),
        batch,
        n_epochs=40,
        readout=pn.LinearReadout(1),
        loss="bce",
        learn_z0=True,
        optimizer=Adam(0.05),
        callback=cb,
        callback_every=10,
    )
    assert calls == [0, 10, 20, 30]
    assert hist.sizes["checkpoint"] == 4 and "cb_loss_again" in hist
    assert hist["readout_params"].shape == (6,) and hist["z0"].shape == (5,)
    assert hist["loss"].values[-1] < hist["loss"].values[0]


def test_divergence_stops_and_is_recorded():
    model = pn.PLRNN(2, full_W=True)
    theta = model.pack(A=[1.5, 1.5], W=np.zeros((2, 2)), h=[0.0, 0.0])
    batch = pn.Batch(targets=np.zeros((1, 2000, 2)), z0=np.ones((1, 2)))
    hist = pn.train(model, theta, batch, n_epochs=5)
    assert hist.attrs["status"] == "diverged" and hist.attrs["diverged"] == 1
    assert hist["nonfinite"].values[0] == 1 and hist.sizes["epoch"] == 1
    np.testing.assert_array_equal(hist["theta"].values, theta)  # parameters from before the bad step
    hist = pn.train(model, theta, batch, n_epochs=5, on_nonfinite="skip", max_skips=3)
    assert hist.attrs["status"] == "diverged" and hist.sizes["epoch"] == 3
    assert list(hist["skipped"].values) == [1, 1, 1]


def test_skip_continues_after_a_bad_batch():
    model, sampler = _toy()
    good = sampler.sample(np.random.default_rng(0))
    bad = pn.Batch(targets=good.targets, z0=np.full((good.size, model.dim), 1e200))

    def data(rng, epoch):
        return bad if epoch == 2 else good

    hist = pn.train(model, model.init(0), data, n_epochs=6, on_nonfinite="skip")
    assert hist.attrs["status"] == "completed"
    assert list(hist["nonfinite"].values) == [0, 0, 1, 0, 0, 0]


def test_keyboard_interrupt_returns_history_so_far(tmp_path):
    model, sampler = _toy()

    def cb(state):
        if state.epoch == 7:
            raise KeyboardInterrupt

    hist = pn.train(
        model, model.init(0), sampler, n_epochs=50, callback=cb, checkpoint_path=tmp_path / "ck.nc", checkpoint_every=5
    )
    assert hist.attrs["status"] == "interrupted" and hist.sizes["epoch"] == 8
    on_disk = pn.io.open(tmp_path / "ck.nc")
    assert on_disk.attrs["status"] == "interrupted" and on_disk.sizes["epoch"] == 8


def test_training_bad_input():
    model, sampler = _toy()
    th = model.init(0)
    with pytest.raises(ValueError, match="n_epochs must be >= 1"):
        pn.train(model, th, sampler, n_epochs=0)
    with pytest.raises(ValueError, match="on_nonfinite"):
        pn.train(model, th, sampler, n_epochs=1, on_nonfinite="ignore")
    with pytest.raises(TypeError, match="data must be"):
        pn.train(model, th, [1, 2, 3], n_epochs=1)
    with pytest.raises(ValueError, match="theta contains NaN"):
        pn.train(model, np.full_like(th, np.nan), sampler, n_epochs=1)
    with pytest.raises(TypeError, match="optimizer"):
        pn.train(model, th, sampler, n_epochs=1, optimizer="rmsprop")
    with pytest.raises(ValueError, match="clip_norm"):
        pn.train(model, th, sampler, n_epochs=1, clip_norm=0.0)
    with pytest.raises(ValueError, match="fewer than seq_len"):
        pn.SubsequenceSampler(np.zeros((5, 2)), seq_len=10, batch_size=2)


def _recorded_seed(ds) -> int:
    seed = json.loads(ds.attrs["seeds"])
    assert isinstance(seed, int) and 0 <= seed < 2**63
    return seed


@pytest.mark.parametrize("seed", [None, "generator"], ids=["None", "Generator"])
def test_seed_none_or_generator_is_recorded_and_repeats_the_run(seed):
    model, sampler = _toy()
    seed = np.random.default_rng(11) if seed == "generator" else seed
    kw = dict(n_epochs=6, readout=pn.LinearReadout(2), learn_z0=True, optimizer=Adam(0.01))
    a = pn.train(model, model.init(0), sampler, seed=seed, **kw)
    b = pn.train(model, model.init(0), sampler, seed=_recorded_seed(a), **kw)
    np.testing.assert_array_equal(a["theta"].values, b["theta"].values)
    np.testing.assert_array_equal(a["readout_params"].values, b["readout_params"].values)
    assert a.attrs["seeds"] == b.attrs["seeds"]


def test_int_seed_is_recorded_as_given_and_bad_seeds_are_refused():
    model, sampler = _toy()
    assert _recorded_seed(pn.train(model, model.init(0), sampler, n_epochs=1, seed=5)) == 5
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        pn.train(model, model.init(0), sampler, n_epochs=1, seed=-1)
    with pytest.raises(TypeError, match="seed must be a non-negative integer, None or a numpy.random.Generator"):
        pn.train(model, model.init(0), sampler, n_epochs=1, seed=1.5)


def _h_index(model):
    return [i for i, name in enumerate(model.param_names()) if name.startswith("h[")]


class _ShiftBias:
    """A custom hook: sets h before chosen epochs, counts its calls and adds a variable."""

    def __init__(self, at, value):
        self.at, self.value = at, value

    def start(self, state):
        self.starts = getattr(self, "starts", 0) + 1
        self.seen, self.draws = [], []

    def before_epoch(self, state):
        self.seen.append(state.epoch)
        self.draws.append(state.rng.random())
        if state.epoch in self.at:
            state.theta[_h_index(state.model)] = self.value  # in place: the epoch trains on it

    def add_to_history(self, ds):
        ds["hook_epochs"] = ("hook_call", np.asarray(self.seen), {"long_name": "epochs seen by the hook", "units": "1"})
        return ds


def test_custom_hook_changes_parameters_before_an_epoch():
    model, sampler = _toy()
    hook = _ShiftBias(at={3}, value=0.7)
    # lr = 0: the parameters change only through the hook
    hist = pn.train(model, model.init(0), sampler, n_epochs=5, optimizer=SGD(lr=0.0), snapshot_every=1, hooks=[hook])
    h = _h_index(model)
    assert list(hist["snapshot_epoch"].values) == [0, 1, 2, 3, 4]
    for i, epoch in enumerate(hist["snapshot_epoch"].values):
        assert np.allclose(hist["theta_snapshots"].values[i, h], 0.7) == (epoch >= 3)
    np.testing.assert_array_equal(hist["theta"].values[h], 0.7)
    assert hook.starts == 1 and hook.seen == [0, 1, 2, 3, 4]
    assert list(hist["hook_epochs"].values) == [0, 1, 2, 3, 4]
    assert json.loads(hist.attrs["arguments"])["hooks"]  # recorded in the provenance
    # the hook's random stream comes from the run's seed: same seed, same draws; a single hook is accepted too
    draws = hook.draws
    pn.train(model, model.init(0), sampler, n_epochs=5, optimizer=SGD(lr=0.0), hooks=hook)
    assert hook.starts == 2 and hook.draws == draws
    with pytest.raises(TypeError, match="hooks must be objects"):
        pn.train(model, model.init(0), sampler, n_epochs=1, hooks=[object()])


def test_a_callback_stops_training_on_purpose_without_a_warning():
    import warnings

    from plrnn_numba.training import StopTraining

    model = pn.VanillaRNN(3)
    rng = np.random.default_rng(0)
    batch = pn.Batch(targets=rng.normal(size=(2, 8, 3)))

    def stop_at_3(state):
        if state.epoch == 3:
            raise StopTraining("enough at epoch 3")
        return {"epoch_seen": float(state.epoch)}

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = pn.train(model, model.init(0), batch, n_epochs=10, callback=stop_at_3)
    assert h.attrs["status"] == "stopped" and "enough at epoch 3" in str(h.attrs.values())
    assert h.attrs["epochs_completed"] == 4
