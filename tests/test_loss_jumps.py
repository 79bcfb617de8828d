"""Loss jumps: detection on loss curves with known steps, matching to bifurcation events, files and figure.

The synthetic curve: plateaus 1.0 (epochs 0-39), 0.1 (40-79), 0.5 (80-119),
times log-normal noise of 3 % and with one-epoch spikes (x5, x0.1, x8) away
from the steps.  A step between epochs ``e`` and ``e + 1`` is reported at
``e`` (the largest one-step change ``L_e -> L_{e+1}``), so the expected
epochs are 39 and 79, exactly.

Tolerance of the relative changes: ``REL_LOG_TOL`` on the log of the ratio
``loss_after / loss_before``, against the log of the true ratio (0.1, 5).
Each side is the median of 5 noisy epochs, whose log has a standard deviation
of about 1.25 * 0.03 / sqrt(5) = 0.017; their difference about 0.024, so 0.1
is four standard deviations.  Over 300 noise seeds the largest error was 0.06.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba import plot
from plrnn_numba.dynamics import EVENT_KINDS, bifurcations_along_training
from plrnn_numba.training import detect_loss_jumps, jumps, match_jumps_to_events

REL_LOG_TOL = 0.1
STEP_EPOCHS = [39, 79]
STEP_RATIOS = [0.1, 5.0]

TENT = pn.PLRNN(1, full_W=True)


def stepped_loss(seed=0, n=120, noise=0.03, spikes=True):
    rng = np.random.default_rng(seed)
    e = np.arange(n)
    loss = np.where(e < 40, 1.0, np.where(e < 80, 0.1, 0.5)) * np.exp(noise * rng.standard_normal(n))
    if spikes:
        loss[[15, 60, 100]] *= [5.0, 0.1, 8.0]
    return loss


def events_dataset(s, kinds, orders):
    """An events Dataset with the names and dtypes of bifurcations_along_training's."""
    n = len(s)
    return xr.Dataset(
        {
            "kind": ("event", np.asarray(kinds, dtype=str) if n else np.zeros(0, str)),
            "order": ("event", np.asarray(orders, dtype=np.int64)),
            "change": ("event", np.full(n, "appears") if n else np.zeros(0, str)),
            "s_lo": ("event", np.asarray(s, float) - 1e-9),
            "s_hi": ("event", np.asarray(s, float) + 1e-9),
        },
        coords={"event": np.arange(n, dtype=np.int64), "s": ("event", np.asarray(s, float), {"units": "epoch"})},
    )


def toy_history(n_epochs=100):
    model = pn.PLRNN(2)
    x = model.simulate(model.init(100, h_scale=0.3), np.ones(2) * 0.2, n_steps=200)[50:]
    sampler = pn.SubsequenceSampler(x, seq_len=20, batch_size=8)
    theta0 = model.init(0, a_range=(0.9, 0.99), w_scale=1.0)
    hist = pn.train(model, theta0, sampler, n_epochs=n_epochs, snapshot_every=5, seed=1, optimizer=pn.Adam(lr=0.05))
    return model, hist


# ---------------------------------------------------------------------------- detection
@pytest.mark.parametrize("seed", range(5))
def test_steps_are_found_to_the_epoch_and_spikes_are_not(seed):
    j = detect_loss_jumps(stepped_loss(seed))
    assert j.epoch.values.tolist() == STEP_EPOCHS
    assert j.direction.values.tolist() == [-1, 1]
    np.testing.assert_allclose(np.log1p(j.relative_change.values), np.log(STEP_RATIOS), atol=REL_LOG_TOL)
    np.testing.assert_allclose(j.loss_after.values / j.loss_before.values - 1, j.relative_change.values)
    np.testing.assert_allclose(j.peak_log_change.values, np.log(STEP_RATIOS), atol=REL_LOG_TOL)
    # the runs bracket the step: |r_e| is above the threshold from e - lag + 1 to e + lag
    assert np.all(j.start_epoch.values <= j.epoch.values) and np.all(j.epoch.values <= j.end_epoch.values)
    assert np.all(j.end_epoch.values - j.start_epoch.values <= 2 * j.attrs["lag"])
    assert j.epoch.dtype == np.int64 and j.direction.dtype == np.int64
    assert (j.attrs["window"], j.attrs["lag"], j.attrs["threshold"], j.attrs["min_separation"]) == (5, 3, 0.5, 5)


def test_exact_steps_and_the_docstring_examples():
    j = detect_loss_jumps(stepped_loss(noise=0.0, spikes=False))
    np.testing.assert_allclose(j.relative_change.values, [-0.9, 4.0], rtol=1e-12)
    np.testing.assert_array_equal(j.loss_before.values, [1.0, 0.1])
    np.testing.assert_array_equal(j.loss_after.values, [0.1, 0.5])
    # step between 39 and 40, lag 3: r_e is the full step for e = 37 .. 42
    assert j.start_epoch.values.tolist() == [37, 77] and j.end_epoch.values.tolist() == [42, 82]
    assert doctest.testmod(jumps, raise_on_error=False).failed == 0


def test_spikes_longer_than_half_the_window_are_jumps():
    loss = np.ones(60)
    loss[30:33] = 4.0  # three epochs: the median of 5 keeps them
    j = detect_loss_jumps(loss)
    assert j.epoch.values.tolist() == [29, 32] and j.direction.values.tolist() == [1, -1]
    loss[32] = 1.0  # two epochs: gone
    assert detect_loss_jumps(loss).sizes["jump"] == 0
    # with window 1 (no smoothing) and lag 1 a one-epoch spike is two jumps
    loss[31] = 1.0
    j = detect_loss_jumps(loss, window=1, lag=1)
    assert j.epoch.values.tolist() == [29, 30] and j.direction.values.tolist() == [1, -1]


def test_smooth_decay_has_no_jump_and_the_trend_limit():
    e = np.arange(300)
    assert detect_loss_jumps(np.exp(-0.01 * e)).sizes["jump"] == 0  # 1 % per epoch
    assert detect_loss_jumps(np.exp(-0.06 * e)).sizes["jump"] == 0  # below log(1.5) / 6 = 6.76 % per epoch
    assert detect_loss_jumps(np.exp(-0.07 * e)).sizes["jump"] == 1  # above: one long run
    assert detect_loss_jumps(np.exp(-0.07 * e), threshold=1.0).sizes["jump"] == 0


def test_threshold_and_merging():
    loss = stepped_loss(noise=0.0, spikes=False)
    # thresholds are factors both ways: the fall by 10 passes 1 + 5 = 6, the rise by 5 does not
    assert detect_loss_jumps(loss, threshold=5.0).epoch.values.tolist() == [39]
    assert detect_loss_jumps(loss, threshold=3.9).epoch.values.tolist() == [39, 79]
    assert detect_loss_jumps(loss, threshold=10.0).sizes["jump"] == 0
    # a staircase of two drops 12 epochs apart (x0.3, then x0.1): runs 27-32 and 39-44, 7 epochs apart, are two
    # jumps; with min_separation 8 one, placed at the larger drop
    stairs = np.r_[np.ones(30), np.full(12, 0.3), np.full(30, 0.03)]
    two = detect_loss_jumps(stairs)
    assert two.epoch.values.tolist() == [29, 41] and two.start_epoch.values.tolist() == [27, 39]
    assert detect_loss_jumps(stairs, min_separation=7).sizes["jump"] == 2
    merged = detect_loss_jumps(stairs, min_separation=8)
    assert merged.epoch.values.tolist() == [41] and merged.direction.values.tolist() == [-1]
    assert merged.start_epoch.values.tolist() == [27] and merged.end_epoch.values.tolist() == [44]
    np.testing.assert_allclose(merged.relative_change.values, [-0.9])
    # a rise between two drops keeps them apart whatever min_separation
    zigzag = np.r_[np.ones(30), np.full(10, 0.3), np.full(10, 1.0), np.full(30, 0.2)]
    assert detect_loss_jumps(zigzag, min_separation=50).direction.values.tolist() == [-1, 1, -1]


def test_a_nonfinite_loss_ends_the_analysed_range():
    loss = stepped_loss()
    loss[100:] = np.nan  # diverged at epoch 100: both steps lie before it
    j = detect_loss_jumps(loss)
    assert j.epoch.values.tolist() == STEP_EPOCHS
    assert (j.attrs["n_epochs"], j.attrs["n_analysed"], j.attrs["first_nonfinite_epoch"]) == (120, 100, 100)
    loss = stepped_loss()
    loss[70] = np.inf  # finite again afterwards, but the range ends at the first non-finite loss
    j = detect_loss_jumps(loss)
    assert j.epoch.values.tolist() == [39] and j.attrs["first_nonfinite_epoch"] == 70
    loss[0] = np.nan
    assert detect_loss_jumps(loss).sizes["jump"] == 0
    assert detect_loss_jumps(loss).attrs["n_analysed"] == 0
    assert detect_loss_jumps(stepped_loss()).attrs["first_nonfinite_epoch"] == -1


def test_zero_loss_short_curves_and_epochs():
    loss = np.r_[np.ones(30), np.zeros(30)]  # an exact fit: a drop by the largest factor there is
    j = detect_loss_jumps(loss)
    assert j.epoch.values.tolist() == [29] and j.relative_change.values.tolist() == [-1.0]
    assert j.loss_after.values.tolist() == [0.0]
    for n in (0, 1, 6):  # fewer than 2 lag + 1 = 7 epochs: no r_e at all
        assert detect_loss_jumps(np.ones(n)).sizes["jump"] == 0
    # epochs label the entries; window, lag and min_separation count entries
    ep = 1000 + 2 * np.arange(120)
    j = detect_loss_jumps(stepped_loss(), ep)
    assert j.epoch.values.tolist() == [1078, 1158] and j.start_epoch.values.tolist()[0] == 1074
    with pytest.raises(ValueError, match="whole numbers"):
        detect_loss_jumps(stepped_loss(), ep + 0.5)


def test_history_dataset_and_dataarray():
    model, hist = toy_history()
    j = detect_loss_jumps(hist)
    np.testing.assert_array_equal(j.epoch.values, detect_loss_jumps(hist["loss"].values).epoch.values)
    xr.testing.assert_equal(j.drop_attrs(), detect_loss_jumps(hist["loss"]).drop_attrs())
    # a subset of the epochs keeps its epoch numbers (the DataArray's coordinate)
    sub = detect_loss_jumps(hist["loss"][10:])
    assert np.all(sub.epoch.values >= 10)
    assert j.attrs["producer"] == "plrnn_numba.training.detect_loss_jumps"
    assert j.sizes["jump"] >= 1  # the loss of this run oscillates while it falls
    loss = hist["loss"].values
    for k in range(j.sizes["jump"]):
        e, d = int(j.epoch[k]), int(j.direction[k])
        assert d * j.peak_log_change.values[k] > np.log(1.5)
        np.testing.assert_allclose(j.relative_change.values[k], j.loss_after.values[k] / j.loss_before.values[k] - 1)
        # the reported epoch carries a change in its direction at least as large as any inside the run
        s0, s1 = int(j.start_epoch[k]), int(j.end_epoch[k])
        step = d * (np.log(loss[e + 1]) - np.log(loss[e]))
        assert step > 0 and step >= np.max(d * np.diff(np.log(loss[s0 : s1 + 2])))
    assert np.all(np.diff(j.epoch.values) > 0)


# ---------------------------------------------------------------------------- matching
def test_matching_by_hand():
    j = detect_loss_jumps(stepped_loss())  # jumps at 39 (down) and 79 (up)
    ev = events_dataset([10.0, 38.6, 40.2, 95.0], ["fold", "flip", "border collision", "Neimark-Sacker"], [1, 1, 2, 3])
    m = match_jumps_to_events(j, ev, max_distance=2.0)
    np.testing.assert_allclose(m.distance.values, [[-29.0, -0.4, 1.2, 56.0], [-69.0, -40.4, -38.8, 16.0]])
    assert m.nearest_event.values.tolist() == [1, 3]
    np.testing.assert_allclose(m.nearest_distance.values, [-0.4, 16.0])
    assert m.nearest_kind.values.tolist() == ["flip", "Neimark-Sacker"]
    assert m.nearest_order.values.tolist() == [1, 3]
    assert m.matched.values.tolist() == [1, 0]
    assert m.has_jump.values.tolist() == [0, 1, 1, 0]
    assert m.attrs["share_jumps_matched"] == 0.5 and m.attrs["share_events_without_jump"] == 0.5
    assert (m.attrs["n_jumps"], m.attrs["n_events"], m.attrs["max_distance"]) == (2, 4, 2.0)
    # copies on their dims
    np.testing.assert_array_equal(m.epoch.values, j.epoch.values)
    np.testing.assert_array_equal(m.direction.values, j.direction.values)
    np.testing.assert_array_equal(m.relative_change.values, j.relative_change.values)
    np.testing.assert_array_equal(m.s.values, ev.s.values)
    assert m.kind.values.tolist() == ev.kind.values.tolist() and m.order.values.tolist() == [1, 1, 2, 3]
    # the bound is inclusive; a tie goes to the earlier event
    assert match_jumps_to_events(j, ev, max_distance=0.4).matched.values.tolist() == [1, 0]
    tie = match_jumps_to_events(j, events_dataset([38.0, 40.0], ["flip", "fold"], [1, 1]), max_distance=1.0)
    assert tie.nearest_event.values.tolist() == [0, 1] and tie.nearest_kind.values.tolist()[0] == "flip"
    for v in m.variables:
        assert "long_name" in m[v].attrs and m[v].attrs.get("units") in ("1", "epoch"), v


def test_matching_with_no_jumps_or_no_events(tmp_path):
    j0 = detect_loss_jumps(np.ones(50))
    j = detect_loss_jumps(stepped_loss())
    e0 = events_dataset([], [], [])
    e = events_dataset([39.5], ["fold"], [1])
    m = match_jumps_to_events(j, e0, max_distance=1.0)
    assert m.sizes == {"jump": 2, "event": 0}
    assert m.nearest_event.values.tolist() == [-1, -1] and m.nearest_order.values.tolist() == [-1, -1]
    assert m.nearest_kind.values.tolist() == ["", ""] and np.all(np.isnan(m.nearest_distance.values))
    assert m.matched.values.tolist() == [0, 0]
    assert m.attrs["share_jumps_matched"] == 0.0 and np.isnan(m.attrs["share_events_without_jump"])
    m = match_jumps_to_events(j0, e, max_distance=1.0)
    assert m.sizes == {"jump": 0, "event": 1} and m.has_jump.values.tolist() == [0]
    assert np.isnan(m.attrs["share_jumps_matched"]) and m.attrs["share_events_without_jump"] == 1.0
    m = match_jumps_to_events(j0, e0, max_distance=1.0)
    assert m.sizes == {"jump": 0, "event": 0} and m.distance.shape == (0, 0)
    assert np.isnan(m.attrs["share_jumps_matched"]) and np.isnan(m.attrs["share_events_without_jump"])


def test_known_bifurcation_along_a_history():
    # the tent map z' = 0.5 z + 0.3 (z <= 0), a_R z + 0.3 (z > 0) with a_R = 0.85 .. 1.15 over epochs 0 .. 30:
    # its right fixed point escapes to infinity at a_R = 1, epoch 15; the loss of that run drops after it
    snaps = np.stack([TENT.pack(A=[0.5], W=[[a - 0.5]], h=[0.3]) for a in (0.85, 0.95, 1.05, 1.15)])
    epochs = np.arange(31)
    hist = xr.Dataset(
        {"theta_snapshots": (("snapshot", "param"), snaps), "loss": ("epoch", np.where(epochs <= 15, 1.0, 0.2)),
         "grad_norm": ("epoch", np.where(epochs <= 15, 0.3, 0.05))},
        coords={"snapshot_epoch": ("snapshot", [0, 10, 20, 30]), "param": TENT.param_names(), "epoch": epochs},
    )
    _, ev = bifurcations_along_training(TENT, hist, max_order=1)
    j = detect_loss_jumps(hist)
    m = match_jumps_to_events(j, ev, max_distance=10.0)  # one snapshot interval
    assert j.epoch.values.tolist() == [15] and ev.sizes["event"] >= 1
    assert m.matched.values.tolist() == [1] and m.nearest_kind.values.tolist() == ["degenerate transcritical"]
    assert abs(float(m.nearest_distance[0])) <= 1e-6
    assert m.attrs["share_jumps_matched"] == 1.0 and m.attrs["share_events_without_jump"] == 0.0


def test_real_training_run(tmp_path):
    model, hist = toy_history()
    hist = pn.io.open(pn.io.save(hist, tmp_path / "history.nc"))
    _, ev = bifurcations_along_training(model, hist, max_order=2)
    ev = pn.io.open(pn.io.save(ev, tmp_path / "events.nc"))  # strings come back as objects
    j = detect_loss_jumps(hist)
    interval = float(np.diff(hist.snapshot_epoch.values)[0])
    m = match_jumps_to_events(j, ev, max_distance=interval)
    assert m.sizes == {"jump": j.sizes["jump"], "event": ev.sizes["event"]}
    assert set(m.kind.values) <= set(EVENT_KINDS)
    assert ev.sizes["event"] >= 1 and j.sizes["jump"] >= 1  # this run has both (4 border collisions, 17 jumps)
    d = ev.s.values[None, :] - j.epoch.values[:, None]  # by brute force
    np.testing.assert_allclose(m.distance.values, d)
    np.testing.assert_array_equal(m.nearest_event.values, np.argmin(np.abs(d), axis=1))
    np.testing.assert_array_equal(m.nearest_kind.values, ev.kind.values[np.argmin(np.abs(d), axis=1)])
    np.testing.assert_array_equal(m.matched.values, np.abs(d).min(axis=1) <= interval)
    np.testing.assert_array_equal(m.has_jump.values, (np.abs(d) <= interval).any(axis=0))
    assert m.attrs["share_jumps_matched"] == pytest.approx(m.matched.values.mean())
    assert m.attrs["share_events_without_jump"] == pytest.approx(1 - m.has_jump.values.mean())
    back = pn.io.open(pn.io.save(m, tmp_path / "matched.nc"))
    xr.testing.assert_identical(back, pn.io.open(pn.io.save(back, tmp_path / "matched2.nc")))
    fig = plot.loss_jumps_figure(hist, j, ev, tmp_path / "jumps.png")
    assert (tmp_path / "jumps.png").stat().st_size > 1000
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert set(legend) == set(np.asarray(ev.kind.values).astype(str)) | {
        f"loss jump {'up' if d > 0 else 'down'}" for d in j.direction.values}
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------------------- files and figure
@pytest.mark.parametrize("loss", [stepped_loss(), np.ones(30)], ids=["jumps", "none"])
def test_netcdf_round_trip(loss, tmp_path):
    j = detect_loss_jumps(loss)
    back = pn.io.open(pn.io.save(j, tmp_path / "jumps.nc"))
    assert back.sizes["jump"] == j.sizes["jump"]
    for v in j.variables:
        assert back[v].dtype == j[v].dtype, v
        np.testing.assert_array_equal(back[v].values, j[v].values)
        assert "long_name" in j[v].attrs and j[v].attrs["units"] in ("1", "epoch"), v
    for a in ("window", "lag", "threshold", "min_separation", "n_analysed", "first_nonfinite_epoch"):
        assert back.attrs[a] == j.attrs[a]
    for ev in (events_dataset([], [], []), events_dataset([39.5, 70.0], ["fold", "flip"], [1, 2])):
        m = match_jumps_to_events(j, ev, max_distance=1.0)
        back = pn.io.open(pn.io.save(m, tmp_path / "m.nc"))
        for v in m.variables:
            np.testing.assert_array_equal(back[v].values, m[v].values)
        # and what comes back from a file is accepted again
        again = match_jumps_to_events(pn.io.open(pn.io.save(j, tmp_path / "j.nc")), ev, max_distance=1.0)
        xr.testing.assert_equal(again.drop_attrs(), m.drop_attrs())


def test_figure_without_events_or_jumps(tmp_path):
    import matplotlib.pyplot as plt

    _, hist = toy_history(n_epochs=30)
    fig = plot.loss_jumps_figure(hist, None, None, title="nothing marked")
    assert fig.axes[0].get_title() == "nothing marked" and fig.axes[0].get_legend() is None
    plt.close(fig)
    ev = events_dataset([5.0, 12.0, 20.0], ["fold", "fold", "flip"], [1, 1, 2])
    fig = plot.loss_jumps_figure(hist, detect_loss_jumps(np.ones(30)), ev, str(tmp_path / "f.png"))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["fold", "flip"]
    assert len(fig.axes[1].get_lines()) == 1 + 3  # grad_norm and one line per event
    plt.close(fig)
    with pytest.raises(ValueError, match="history must come from"):
        plot.loss_jumps_figure(ev, None, None)
    with pytest.raises(TypeError, match="path"):
        plot.loss_jumps_figure(hist, None, None, 3)
    plt.close("all")


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"loss": np.ones((5, 2))}, ValueError, "loss must be a 1-D"),
        ({"loss": 3.0}, ValueError, "loss must be a 1-D"),
        ({"loss": "abc"}, TypeError, "loss must be"),
        ({"loss": np.ones(5, complex)}, TypeError, "loss must be real"),
        ({"loss": None}, TypeError, "loss must be"),
        ({"loss": np.r_[1.0, -0.5, 1.0]}, ValueError, "loss must be >= 0"),
        ({"loss": xr.Dataset({"x": ("epoch", [1.0])})}, ValueError, "'loss' variable"),
        ({"loss": np.ones(5), "epochs": np.arange(4)}, ValueError, "epochs must be a 1-D array with one epoch"),
        ({"loss": np.ones(3), "epochs": [0, 2, 2]}, ValueError, "epochs must be strictly increasing"),
        ({"loss": np.ones(3), "epochs": [0, 2, 1]}, ValueError, "epochs must be strictly increasing"),
        ({"loss": np.ones(3), "epochs": [0, 1, np.nan]}, ValueError, "epochs contains NaN"),
        ({"loss": np.ones(2), "epochs": [0, 1e300]}, ValueError, "epochs must be whole numbers"),
        ({"loss": np.ones(5), "window": 4}, ValueError, "window must be odd"),
        ({"loss": np.ones(5), "window": 0}, ValueError, "window must be >= 1"),
        ({"loss": np.ones(5), "window": 2.5}, TypeError, "window must be an integer"),
        ({"loss": np.ones(5), "lag": 0}, ValueError, "lag must be >= 1"),
        ({"loss": np.ones(5), "min_separation": 0}, ValueError, "min_separation must be >= 1"),
        ({"loss": np.ones(5), "threshold": 0.0}, ValueError, "threshold must be > 0"),
        ({"loss": np.ones(5), "threshold": -1.0}, ValueError, "threshold must be > 0"),
        ({"loss": np.ones(5), "threshold": np.nan}, ValueError, "threshold must be finite"),
        ({"loss": np.ones(5), "threshold": "1"}, TypeError, "threshold must be a real"),
    ],
)
def test_bad_input_detect(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        detect_loss_jumps(**kwargs)


def test_bad_input_history_and_match():
    _, hist = toy_history(n_epochs=10)
    with pytest.raises(ValueError, match="epochs must be None when loss is a history"):
        detect_loss_jumps(hist, np.arange(10))
    j = detect_loss_jumps(stepped_loss())
    ev = events_dataset([39.5], ["fold"], [1])
    with pytest.raises(TypeError, match="jumps must be an xarray.Dataset"):
        match_jumps_to_events(j.epoch, ev, max_distance=1.0)
    with pytest.raises(ValueError, match=r"events must come from .* \(no 'kind'"):
        match_jumps_to_events(j, ev.drop_vars("kind"), max_distance=1.0)
    with pytest.raises(ValueError, match="jumps must come from"):
        match_jumps_to_events(hist, ev, max_distance=1.0)
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        match_jumps_to_events(j, ev, max_distance=-1.0)
    with pytest.raises(ValueError, match="max_distance must be finite"):
        match_jumps_to_events(j, ev, max_distance=np.inf)
    with pytest.raises(TypeError, match="max_distance must be a real"):
        match_jumps_to_events(j, ev, max_distance="1")
    with pytest.raises(TypeError, match="max_distance"):
        match_jumps_to_events(j, ev)  # keyword-only and required


def test_match_with_span_measures_to_the_jumps_run():
    # a slow descent: 1.0 until epoch 40, then down by 10% per epoch to epoch 70, then flat at the low level
    loss = np.r_[np.ones(41), 0.9 ** np.arange(1, 31), np.full(40, 0.9**30)]
    jumps = detect_loss_jumps(loss)
    assert jumps.sizes["jump"] == 1
    start, end = int(jumps["start_epoch"][0]), int(jumps["end_epoch"][0])
    assert start < end
    inside = 0.5 * (start + end)
    events = xr.Dataset({"kind": ("event", ["Neimark-Sacker", "fold", "flip"]), "order": ("event", [1, 2, 1])},
                        coords={"s": ("event", [inside, start - 3.0, end + 20.0])})
    m = match_jumps_to_events(jumps, events, max_distance=5.0, span=True)
    np.testing.assert_allclose(m["distance"].values[0], [0.0, -3.0, 20.0])
    assert m["nearest_kind"].values.tolist() == ["Neimark-Sacker"] and int(m["matched"][0]) == 1
    assert m["has_jump"].values.tolist() == [1, 1, 0] and m.attrs["distance_to"].startswith("the jump's run")
    # without span: distances to the jump's epoch
    plain = match_jumps_to_events(jumps, events, max_distance=5.0)
    np.testing.assert_allclose(plain["distance"].values[0], events["s"].values - float(jumps["epoch"][0]))
    with pytest.raises(ValueError, match="start_epoch"):
        match_jumps_to_events(jumps.drop_vars("start_epoch"), events, max_distance=5.0, span=True)


def test_range_scale_ignores_the_relative_decay_of_a_converging_run():
    # a plateau at 0.07, a drop to 0.03 over 10 epochs at epoch 100, then 5% per epoch towards 0, with 2% noise
    rng = np.random.default_rng(0)
    loss = np.r_[np.full(100, 0.07), np.linspace(0.07, 0.03, 11)[1:], 0.03 * 0.95 ** np.arange(1, 301)]
    loss = loss * (1 + 0.02 * rng.standard_normal(loss.size))
    rel = detect_loss_jumps(loss, lag=25, threshold=1.0, min_separation=100)
    rng_scale = detect_loss_jumps(loss, lag=25, threshold=0.2, min_separation=100, scale="range")
    assert rel.sizes["jump"] >= 1 and int(rel["end_epoch"].max()) > 200  # the decay reads as jumps
    assert rng_scale.sizes["jump"] == 1 and rng_scale.attrs["scale"] == "range"
    assert int(rng_scale["direction"][0]) == -1 and 95 <= int(rng_scale["epoch"][0]) <= 115
    # on the linear scale a flat curve has no jumps (no division by a zero range)
    assert detect_loss_jumps(np.ones(50), scale="range").sizes["jump"] == 0
    with pytest.raises(ValueError, match="scale"):
        detect_loss_jumps(loss, scale="log")
