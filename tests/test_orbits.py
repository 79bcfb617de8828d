"""Orbit diagrams by simulation: the tent-map flip, divergence flags, training snapshots, any model, I/O.

The 1-D PLRNN ``PLRNN(1, full_W=True)`` is the skew tent map ``z' = a_L z + mu``
(z <= 0), ``a_R z + mu`` (z > 0).  With a_L = 0.5, mu = 0.3 and a_R = -0.9 - s the
fixed point ``mu / (1 - a_R)`` is the attractor for s < 0.1 and the LR 2-cycle
``z_L = mu (1 + a_R) / (1 - a_L a_R)``, ``z_R = a_L z_L + mu`` (eigenvalue
``a_L a_R``) after the flip at s = 0.1.  Samples are compared with these closed
forms to ``VALUE_TOL`` (after a burn-in long enough for 0.95^2000 ~ 1e-45).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba.dynamics import bifurcation_path, n_distinct_values, orbit_diagram, orbit_diagram_training

VALUE_TOL = 1e-10

TENT = pn.PLRNN(1, full_W=True)


def tent(a_L, a_R, mu):
    return TENT.pack(A=[a_L], W=[[a_R - a_L]], h=[mu])


def test_tent_flip_one_then_two_values():
    s = np.array([0.0, 0.05, 0.15, 0.2])
    ds = orbit_diagram(TENT, tent(0.5, -0.9, 0.3), {"W[0,0]": -1.0}, s, n_steps=1000, n_transient=2000, n_init=5)
    assert ds.z.dims == ("s", "init", "sample", "state")
    assert ds.z.shape == (4, 5, 1000, 1)
    np.testing.assert_array_equal(ds.sample.values, np.arange(2000, 3000))
    np.testing.assert_array_equal(n_distinct_values(ds).values, [1, 1, 2, 2])
    assert not ds.diverged.values.any()
    for i, si in enumerate(s):
        a_R = -0.9 - si
        z = ds.z.values[i, :, :, 0]
        if si < 0.1:
            np.testing.assert_allclose(z, 0.3 / (1 - a_R), rtol=0, atol=VALUE_TOL)
        else:
            z_L = 0.3 * (1 + a_R) / (1 - 0.5 * a_R)
            vals = np.unique(np.round(z, 8))
            np.testing.assert_allclose(vals, sorted([z_L, 0.5 * z_L + 0.3]), rtol=0, atol=1e-8)
    # samples are the states z_t of the model's own simulation
    Z = TENT.simulate(ds.theta.values[2], ds.z0.values, n_steps=2999)
    np.testing.assert_array_equal(ds.z.values[2, :, :, 0], Z[:, 2000:, 0])


def test_divergence_is_flagged_not_raised(tmp_path):
    # a_R = 0.9 + s: beyond s = 0.1 every orbit escapes to +inf (mu > 0, left branch contracts into the right)
    s = np.array([0.0, 0.3])
    ds = orbit_diagram(
        TENT, tent(0.5, 0.9, 0.3), "W[0,0]", s, n_steps=100, n_transient=300, n_init=3, diverge_threshold=1e6
    )
    np.testing.assert_array_equal(ds.diverged.values, [[0, 0, 0], [1, 1, 1]])
    assert np.all(ds.diverged_at.values[1] > 0) and np.all(ds.diverged_at.values[0] == -1)
    # 1.2^t * 1.5 passes 1e6 near t = 73: within the transient, so every sample is NaN
    assert np.all(np.isnan(ds.z.values[1]))
    assert np.all(np.isfinite(ds.z.values[0]))
    np.testing.assert_array_equal(n_distinct_values(ds).values, [1, 0])
    # overflow to inf (no threshold in reach) is flagged too
    big = orbit_diagram(
        TENT, tent(0.5, 0.9, 0.3), "W[0,0]", [5.0], n_steps=990, n_transient=10, n_init=2, diverge_threshold=1e300
    )
    assert big.diverged.values.all()
    # netCDF round trip
    back = pn.io.open(pn.io.save(ds, tmp_path / "orbits.nc"))
    xr.testing.assert_equal(back, ds)
    assert back.attrs["producer"] == "plrnn_numba.dynamics.orbit_diagram"
    for v in ds.variables:
        assert "long_name" in ds[v].attrs, v


def test_training_snapshots_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from plrnn_numba import plot

    snaps = np.stack([tent(0.5, a, 0.3) for a in (-0.85, -0.95, -1.05, -1.15)])
    hist = xr.Dataset(
        {"theta_snapshots": (("snapshot", "param"), snaps)},
        coords={"snapshot_epoch": ("snapshot", [0, 10, 20, 30]), "param": TENT.param_names()},
    )
    ds = orbit_diagram_training(TENT, hist, n_steps=1000, n_transient=2000, n_init=3)
    np.testing.assert_array_equal(ds.s.values, [0, 10, 20, 30])
    assert ds.s.attrs["units"] == "epoch"
    np.testing.assert_array_equal(n_distinct_values(ds).values, [1, 1, 2, 2])
    # the exact objects overlaid on the simulated diagram
    obj, ev = bifurcation_path(TENT, tent(0.5, -0.9, 0.3), {"W[0,0]": -1.0}, np.linspace(0, 0.2, 5), max_order=2)
    od = orbit_diagram(TENT, tent(0.5, -0.9, 0.3), {"W[0,0]": -1.0}, np.linspace(0, 0.2, 5), n_steps=100,
                       n_transient=500)
    ax = plot.orbit_diagram(od, objects=obj, events=ev)
    assert isinstance(ax, matplotlib.axes.Axes)
    assert isinstance(plot.orbit_diagram(ds), matplotlib.axes.Axes)
    plt.close("all")


def test_any_model_inputs_and_state_selection():
    # a nonlinear model with inputs: a 3-unit tanh RNN driven by a constant input
    m = pn.VanillaRNN(3, n_inputs=1)
    theta = m.init(1)
    ds = orbit_diagram(
        m, theta, np.ones(m.n_params) * 0.01, [0.0, 1.0], n_steps=50, n_transient=150, n_init=2, inputs=[0.5],
        state=[0, 2],
    )
    assert ds.z.shape == (2, 2, 50, 2)
    np.testing.assert_array_equal(ds.state.values, [0, 2])
    # same samples as simulating directly with that constant input
    Z = m.simulate(theta, ds.z0.values, inputs=np.full((199, 1), 0.5))
    np.testing.assert_allclose(ds.z.values[0], Z[:, 150:, [0, 2]], rtol=1e-13, atol=1e-15)
    # a given z0 fixes the initial states (and their number)
    z0 = np.array([[0.1, 0.2, 0.3]])
    ds1 = orbit_diagram(m, theta, "b[0]", [0.0], z0=z0, n_steps=10, n_transient=10, inputs=[0.5])
    np.testing.assert_array_equal(ds1.z0.values, z0)
    # the three input shapes, (K,), (T, K) and (B, T, K), mean the same thing
    for u in (np.full((20, 1), 0.5), np.full((1, 20, 1), 0.5)):
        same = orbit_diagram(m, theta, "b[0]", [0.0], z0=z0, n_steps=10, n_transient=10, inputs=u)
        np.testing.assert_array_equal(same.z.values, ds1.z.values)
    # the seed: a Generator and None are accepted and recorded; the recorded seed repeats the run
    import json

    g = orbit_diagram(m, theta, "b[0]", [0.0], n_steps=5, n_transient=5, inputs=[0.5], seed=np.random.default_rng(1))
    again = orbit_diagram(m, theta, "b[0]", [0.0], n_steps=5, n_transient=5, inputs=[0.5],
                          seed=json.loads(g.attrs["seeds"]))
    np.testing.assert_array_equal(again.z0.values, g.z0.values)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_transient": -1}, ValueError, "n_transient must be >= 0"),
        ({"burn_in": 5}, TypeError, "burn_in"),
        ({"n_steps": 0}, ValueError, "n_steps must be >= 1"),
        ({"s_values": [[0.0]]}, ValueError, "s_values must be a 1-D"),
        ({"s_values": [np.inf]}, ValueError, "s_values contains NaN or inf"),
        ({"param": "W[1,1]"}, ValueError, "unknown parameter name"),
        ({"seed": -2}, ValueError, "seed must be"),
        ({"z0": np.ones((2, 3))}, ValueError, "z0 must have shape"),
        ({"z0": np.ones((2, 1)), "n_init": 3}, ValueError, "n_init=3 disagrees with z0"),
        ({"state": 1}, ValueError, "state indices must lie in"),
        ({"state": 0.5}, TypeError, "state must be"),
        ({"inputs": [1.0]}, ValueError, "has no inputs"),
        ({"diverge_threshold": -1.0}, ValueError, "diverge_threshold"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"param": "h[0]", "s_values": [0.0, 0.1], "n_steps": 50, "n_transient": 50}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        orbit_diagram(TENT, tent(0.5, 0.5, 0.3), args.pop("param"), args.pop("s_values"), **args)


def test_bad_history():
    with pytest.raises(TypeError, match="history must be"):
        orbit_diagram_training(TENT, {"theta_snapshots": 1})
    bad = xr.Dataset(
        {"theta_snapshots": (("snapshot", "param"), np.ones((2, 5)))}, coords={"snapshot_epoch": ("snapshot", [0, 1])}
    )
    with pytest.raises(ValueError, match="must have shape \\(snapshot, 3\\)"):
        orbit_diagram_training(TENT, bad)
