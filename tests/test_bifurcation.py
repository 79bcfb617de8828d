"""Bifurcation paths and grids: every event class on small PLRNNs with analytically known locations.

Tolerances:

* ``S_TOL``: a located event against its analytic parameter value (the
  bisection runs to ``locate_tol=1e-8``; the issue asks for 1e-6);
* ``EIG_TOL``: the eigenvalue reported at a crossing against +-1 or the unit
  circle (it moves by O(locate_tol) across the bracket);
* ``POINT_TOL``: a cycle point at a border event against the border (z_i = 0).

The 1-D PLRNN ``PLRNN(1, full_W=True)`` is the skew tent map
``z' = a_L z + mu`` (z <= 0), ``a_R z + mu`` (z > 0) with ``A = a_L``,
``W = a_R - a_L``, ``h = mu``.  Its fixed points are ``mu / (1 - a_L)`` (valid if
<= 0) and ``mu / (1 - a_R)`` (valid if > 0), with eigenvalues a_L and a_R; its
2-cycle through both regions has ``z_L = mu (1 + a_R) / (1 - a_L a_R)``,
``z_R = a_L z_L + mu`` and eigenvalue ``a_L a_R``.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba.dynamics import (
    EVENT_KINDS,
    bifurcation_grid,
    bifurcation_path,
    bifurcations_along_training,
    cycle_signature,
    parameter_direction,
    scyfi,
)

S_TOL = 1e-6
EIG_TOL = 1e-6
POINT_TOL = 1e-6

# the 2-D test family of the SCYFI authors (Eisenmann et al. 2023)
A2, W2, H1, H2 = 0.96461297, 0.52505308, 0.37298253, -0.97931491

TENT = pn.PLRNN(1, full_W=True)


def tent(a_L, a_R, mu):
    return TENT.pack(A=[a_L], W=[[a_R - a_L]], h=[mu])


def ref_theta(a1=-0.0222311, w1=-0.64375):
    m = pn.PLRNN(2)
    return m, m.pack(A=[a1, A2], W=[[0.0, w1], [W2, 0.0]], h=[H1, H2])


def events_of(ev, kind, order=None):
    sel = ev.kind.values == kind
    if order is not None:
        sel &= ev.order.values == order
    return ev.isel(event=np.flatnonzero(sel))


def one_event(ev, kind, order=None):
    e = events_of(ev, kind, order)
    assert e.sizes["event"] == 1, f"expected one {kind} event, got {e.sizes['event']}: {ev.kind.values}"
    return e.isel(event=0)


def assert_counts_consistent(objects, events):
    """Between neighbouring s the change in the number of k-cycles equals appearances - disappearances."""
    s = objects.s.values
    n = objects.n_cycles.values
    for i in range(len(s) - 1):
        inside = (events.s.values > s[i]) & (events.s.values <= s[i + 1])
        for k in objects.order.values:
            delta = 0
            for j in np.flatnonzero(inside & (events.order.values == k)):
                w = 2 if events.kind.values[j] == "fold" else 1
                delta += {"appears": w, "disappears": -w}.get(str(events.change.values[j]), 0)
            assert delta == n[i + 1, k - 1] - n[i, k - 1], (s[i], s[i + 1], k)


# ------------------------------------------------------------------------------------ event classes
def test_degenerate_transcritical_fixed_point():
    # a_R = 0.9 + s: z* = mu / (1 - a_R) -> +inf as a_R -> 1 (s = 0.1); none beyond (a_L = 0.5: left one invalid)
    obj, ev = bifurcation_path(TENT, tent(0.5, 0.9, 0.3), "W[0,0]", np.linspace(0.0, 0.2, 8), max_order=3)
    e = one_event(ev, "degenerate transcritical")
    assert ev.sizes["event"] == 1
    assert abs(float(e.s) - 0.1) <= S_TOL
    assert str(e.change.values) == "disappears" and int(e.order) == 1
    assert abs(complex(float(e.eig_real), float(e.eig_imag)) - 1.0) <= EIG_TOL
    assert abs(float(e.point[0])) > 1e4  # escaping to infinity
    assert str(e.stability_before.values) == "stable node"
    assert int(e.object_before) == 0 and int(e.object_after) == -1
    assert float(e.s_hi) - float(e.s_lo) <= 1e-8
    # objects: the fixed point z* = mu / (1 - a_R) while it exists
    s = obj.s.values
    alive = s < 0.1
    np.testing.assert_array_equal(obj.exists.values[:, 0], alive.astype(np.int8))
    np.testing.assert_allclose(obj.first_point.values[alive, 0, 0], 0.3 / (1 - (0.9 + s[alive])), rtol=1e-12)
    np.testing.assert_allclose(obj.spectral_radius.values[alive, 0], 0.9 + s[alive], rtol=1e-12)
    assert_counts_consistent(obj, ev)


def test_degenerate_transcritical_two_cycle():
    # a_L = -2, mu = -0.3: the LR 2-cycle has eigenvalue a_L a_R = -2 a_R -> +1 at a_R = -0.5 (s = 0.1), where
    # z_L = mu (1 + a_R) / (1 - a_L a_R) -> -inf.  a_R = -0.4 - s.
    obj, ev = bifurcation_path(TENT, tent(-2.0, -0.4, -0.3), {"W[0,0]": -1.0}, np.linspace(0, 0.2, 6), max_order=2)
    e = one_event(ev, "degenerate transcritical", order=2)
    assert abs(float(e.s) - 0.1) <= S_TOL
    assert abs(float(e.eig_real) - 1.0) <= EIG_TOL and float(e.eig_imag) == 0.0
    assert str(e.change.values) == "disappears" and str(e.stability_before.values) == "stable node"
    i2 = int(e.object_before)
    a_R = -0.4 - obj.s.values[0]
    z_L = -0.3 * (1 + a_R) / (1 + 2 * a_R)
    np.testing.assert_allclose(sorted(obj.points.values[0, i2, :2, 0]), sorted([z_L, -2 * z_L - 0.3]), rtol=1e-12)
    assert_counts_consistent(obj, ev)


def test_fold_appearing_and_disappearing():
    # a_L = 1.5 > 1 > a_R = 0.5: for mu > 0 both fixed points mu / (1 - a_L) < 0 (unstable) and
    # mu / (1 - a_R) > 0 (stable) exist, for mu < 0 none: a border-collision fold at mu = 0
    s_values = np.linspace(0.0, 0.61, 9)
    obj, ev = bifurcation_path(TENT, tent(1.5, 0.5, -0.3), "h[0]", s_values, max_order=3)
    assert ev.sizes["event"] == 1
    e = one_event(ev, "fold")
    assert abs(float(e.s) - 0.3) <= S_TOL
    assert str(e.change.values) == "appears" and int(e.order) == 1
    assert {str(e.stability_after.values), str(e.partner_stability.values)} == {"stable node", "unstable node"}
    assert str(e.stability_after.values) == "stable node"  # the more stable object is the primary one
    assert int(e.partner) >= 0 and int(e.partner) != int(e.object_after)
    assert abs(float(e.point[0])) <= POINT_TOL  # they meet on the border z = 0
    assert int(e.boundary_unit) == 0
    # the same fold, walked the other way: two objects disappear together
    _, ev2 = bifurcation_path(TENT, tent(1.5, 0.5, 0.3), {"h[0]": -1.0}, s_values, max_order=3)
    e2 = one_event(ev2, "fold")
    assert abs(float(e2.s) - 0.3) <= S_TOL and str(e2.change.values) == "disappears"
    assert int(e2.object_before) >= 0 and int(e2.object_after) == -1
    assert_counts_consistent(obj, ev)


def test_border_collision_persistence():
    # a_L = 0.5, a_R = -0.5: the fixed point 2 mu (mu < 0) crosses the border at mu = 0 into mu / 1.5 (mu > 0)
    obj, ev = bifurcation_path(TENT, tent(0.5, -0.5, -0.3), "h[0]", np.linspace(0.0, 0.61, 9), max_order=3)
    assert ev.sizes["event"] == 1
    e = one_event(ev, "border collision")
    assert abs(float(e.s) - 0.3) <= S_TOL
    assert str(e.change.values) == "persists"
    assert int(e.object_before) == int(e.object_after) == 0  # one object, kept through the collision
    assert int(e.boundary_point) == 0 and int(e.boundary_unit) == 0
    assert abs(float(e.point[0])) <= POINT_TOL
    assert obj.sizes["object"] == 1 and np.all(obj.exists.values[:, 0] == 1)
    mu = -0.3 + obj.s.values
    expect = np.where(mu <= 0, mu / 0.5, mu / 1.5)
    np.testing.assert_allclose(obj.first_point.values[:, 0, 0], expect, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(obj.patterns.values[:, 0, 0, 0], (mu > 0).astype(np.int8))


def test_border_collision_with_stability_change_and_period_doubling():
    # a_R = -1.5: after the collision the fixed point is unstable and a stable LR 2-cycle
    # (eigenvalue a_L a_R = -0.75) is born from it at the border
    obj, ev = bifurcation_path(TENT, tent(0.5, -1.5, -0.3), "h[0]", np.linspace(0.0, 0.61, 9), max_order=3)
    persist = ev.isel(event=np.flatnonzero(ev.change.values == "persists"))
    assert persist.sizes["event"] == 1
    p = persist.isel(event=0)
    assert abs(float(p.s) - 0.3) <= S_TOL
    assert (str(p.stability_before.values), str(p.stability_after.values)) == ("stable node", "unstable node")
    born = one_event(ev, "border collision", order=2)
    assert str(born.change.values) == "appears" and abs(float(born.s) - 0.3) <= S_TOL
    assert int(born.partner) == int(p.object_before)  # met the fixed point at the border
    assert str(born.stability_after.values) == "stable node"
    assert_counts_consistent(obj, ev)


def test_flip_period_doubling():
    # a_R = -0.9 - s through -1 at s = 0.1 (a_L = 0.5, mu = 0.3): the fixed point mu / (1 - a_R) loses
    # stability and the stable LR 2-cycle appears (in a PWL map at finite amplitude, touching the border)
    s_values = np.linspace(0.0, 0.2, 8)
    obj, ev = bifurcation_path(TENT, tent(0.5, -0.9, 0.3), {"W[0,0]": -1.0}, s_values, max_order=4)
    f = one_event(ev, "flip", order=1)
    assert abs(float(f.s) - 0.1) <= S_TOL
    assert str(f.change.values) == "stability"
    assert abs(complex(float(f.eig_real), float(f.eig_imag)) + 1.0) <= EIG_TOL
    assert (str(f.stability_before.values), str(f.stability_after.values)) == ("stable node", "unstable node")
    child = one_event(ev, "flip", order=2)
    assert abs(float(child.s) - 0.1) <= S_TOL and str(child.change.values) == "appears"
    assert int(child.partner) == int(f.object_before)
    # the 2-cycle against its closed form
    i2 = int(child.object_after)
    for i, s in enumerate(obj.s.values):
        a_R = -0.9 - s
        if s < 0.1:
            assert obj.exists.values[i, i2] == 0
            continue
        z_L = 0.3 * (1 + a_R) / (1 - 0.5 * a_R)
        np.testing.assert_allclose(sorted(obj.points.values[i, i2, :2, 0]), sorted([z_L, 0.5 * z_L + 0.3]), rtol=1e-12)
        assert abs(obj.spectral_radius.values[i, i2] - abs(0.5 * a_R)) < 1e-12
    assert_counts_consistent(obj, ev)


def test_neimark_sacker():
    # full 2-D W: in the positive orthant the Jacobian A + W = r R(phi) (rotation-scaling); h puts the
    # fixed point at (1, 1) for r = 1, and it stays in that orthant for r in [0.9, 1.1]; r = 0.9 + s
    m = pn.PLRNN(2, full_W=True)
    phi = 1.0
    R = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
    A = np.array([0.5, 0.5])
    h = (np.eye(2) - R) @ np.ones(2)
    theta0 = m.pack(A=A, W=0.9 * R - np.diag(A), h=h)
    d = np.zeros(m.n_params)
    d[m.param_slices()["W"]] = R.ravel()  # dr along the rotation
    obj, ev = bifurcation_path(m, theta0, d, np.linspace(0.0, 0.2, 8), max_order=2)
    e = one_event(ev, "Neimark-Sacker")
    assert abs(float(e.s) - 0.1) <= S_TOL
    lam = complex(float(e.eig_real), float(e.eig_imag))
    assert abs(abs(lam) - 1.0) <= EIG_TOL and abs(np.angle(lam) - phi) <= 1e-6
    assert (str(e.stability_before.values), str(e.stability_after.values)) == ("stable spiral", "unstable spiral")
    assert int(e.object_before) == int(e.object_after)
    for i, s in enumerate(obj.s.values):
        z = np.linalg.solve(np.eye(2) - (0.9 + s) * R, h)
        assert np.all(z > 0)
        np.testing.assert_allclose(obj.first_point.values[i, int(e.object_before)], z, rtol=1e-12)


def test_reference_family_along_a1():
    # the authors' 2-D system along a1 = A[0]: the fixed point in region (z1 > 0, z2 <= 0) has Jacobian
    # [[a1, 0], [w2, a2]] and z = (h1 / (1 - a1), (h2 + w2 h1 / (1 - a1)) / (1 - a2)): a flip at a1 = -1,
    # a border collision (z2 = 0) at a1 = 1 + w2 h1 / h2, and a fixed point arriving from infinity
    # (eigenvalue a1 -> +1 in another region) at a1 = 1
    m, theta = ref_theta(a1=0.0)
    obj, ev = bifurcation_path(m, theta, "A[0]", np.linspace(-1.2, 1.2, 13), max_order=2)
    assert set(ev.kind.values) <= set(EVENT_KINDS)
    f = one_event(ev, "flip", order=1)
    assert abs(float(f.s) + 1.0) <= S_TOL
    b = ev.isel(event=np.flatnonzero((ev.change.values == "persists") & (ev.order.values == 1)))
    assert abs(float(b.s[0]) - (1.0 + W2 * H1 / H2)) <= S_TOL
    assert int(b.boundary_unit[0]) == 1
    dtb = one_event(ev, "degenerate transcritical", order=1)
    assert abs(float(dtb.s) - 1.0) <= S_TOL and str(dtb.change.values) == "appears"
    assert_counts_consistent(obj, ev)


def test_training_history_path_and_parameters_from_arrays():
    # snapshots of a_R = 0.85, 0.95, 1.05, 1.15 at epochs 0, 10, 20, 30: a_R = 1 (the escape) at epoch 15
    snaps = np.stack([tent(0.5, a, 0.3) for a in (0.85, 0.95, 1.05, 1.15)])
    hist = xr.Dataset(
        {"theta_snapshots": (("snapshot", "param"), snaps)},
        coords={"snapshot_epoch": ("snapshot", [0, 10, 20, 30]), "param": TENT.param_names()},
    )
    obj, ev = bifurcations_along_training(TENT, hist, max_order=2)
    e = one_event(ev, "degenerate transcritical")
    assert abs(float(e.s) - 15.0) <= S_TOL
    assert obj.s.attrs["units"] == "epoch"
    np.testing.assert_array_equal(obj.s.values, [0, 10, 20, 30])
    np.testing.assert_array_equal(obj.theta.values, snaps)
    assert ev.attrs["producer"] == "plrnn_numba.dynamics.bifurcations_along_training"
    # arrays: PLRNN.from_arrays gives PLRNN(1, full_W=True), names as above
    _, ev_raw = bifurcation_path(*pn.PLRNN.from_arrays(A=[0.5], W=[[0.4]], h=[0.3]), "W[0,0]", [0.0, 0.15],
                                 max_order=1)
    assert abs(float(one_event(ev_raw, "degenerate transcritical").s) - 0.1) <= S_TOL


def test_coarse_grid_gives_the_same_events():
    # the LR 2-cycle of the flip example exists only for s > 0.1: with grid values 0 and 0.3 it is found at 0.3
    # and tracked back to its birth; a coarse grid gives the same events as a fine one
    _, coarse = bifurcation_path(TENT, tent(0.5, -0.9, 0.3), {"W[0,0]": -1.0}, [0.0, 0.3], max_order=2)
    _, fine = bifurcation_path(TENT, tent(0.5, -0.9, 0.3), {"W[0,0]": -1.0}, np.linspace(0, 0.3, 7), max_order=2)
    np.testing.assert_allclose(coarse.s.values, fine.s.values, atol=1e-8)
    np.testing.assert_array_equal(coarse.kind.values, fine.kind.values)


def test_real_training_history(tmp_path):
    # a short real training run; its history goes through netCDF first, as it would from a sweep
    model = pn.PLRNN(3)
    x = model.simulate(model.init(100, h_scale=0.3), np.ones(3) * 0.2, n_steps=400)[50:, :2]
    sampler = pn.SubsequenceSampler(x, seq_len=20, batch_size=8)
    theta0 = model.init(0, a_range=(0.9, 0.99), w_scale=1.0)
    hist = pn.train(model, theta0, sampler, n_epochs=60, snapshot_every=10, seed=1, optimizer=pn.Adam(lr=0.05))
    hist = pn.io.open(pn.io.save(hist, tmp_path / "history.nc"))
    obj, ev = bifurcations_along_training(model, hist, max_order=2)
    np.testing.assert_array_equal(obj.s.values, hist.snapshot_epoch.values)
    np.testing.assert_array_equal(obj.theta.values, hist.theta_snapshots.values)
    assert np.all(np.diff(ev.s.values) >= 0) and np.all((ev.s.values > 0) & (ev.s.values < 59))
    assert np.all(ev.s_hi.values - ev.s_lo.values <= 1e-8)
    assert_counts_consistent(obj, ev)
    # SCYFI batched over the snapshots on numba's threads: the same objects and events
    obj_p, ev_p = bifurcations_along_training(model, hist, max_order=2, backend="parallel", n_threads=2)
    np.testing.assert_array_equal(ev_p.kind.values, ev.kind.values)
    np.testing.assert_allclose(ev_p.s.values, ev.s.values, atol=1e-12)
    np.testing.assert_array_equal(obj_p.exists.values, obj.exists.values)
    assert ev_p.attrs["producer"] == ev.attrs["producer"] and '"backend": "parallel"' in ev_p.attrs["arguments"]
    # every event is confirmed by SCYFI on the straight segment between the two snapshots around it
    for i in range(ev.sizes["event"]):
        e = ev.isel(event=i)
        if str(e.change.values) not in ("appears", "disappears"):
            continue
        k = int(e.order)
        j = int(np.searchsorted(obj.s.values, float(e.s))) - 1
        e0, e1 = obj.s.values[j : j + 2]
        th0, th1 = obj.theta.values[j : j + 2]
        counts = []
        for sv in (float(e.s_lo) - 1e-6, float(e.s_hi) + 1e-6):
            w = (sv - e0) / (e1 - e0)
            ds = scyfi(model, (1 - w) * th0 + w * th1, k, min_order=k)
            counts.append(ds.sizes["cycle"])
        sign = 1 if str(e.change.values) == "appears" else -1
        assert sign * (counts[1] - counts[0]) >= 1


def test_object_living_between_two_grid_values():
    # mu = -0.3 + s, a_R = 0.5 + s, a_L = 1.5: both fixed points appear in a fold at s = 0.3; the stable right
    # one escapes to infinity at s = 0.5 (a_R = 1).  With grid values 0 and 0.6 only the left one is ever
    # seen by SCYFI; the right one is found at the fold (the region sequence across the border) and tracked
    obj, ev = bifurcation_path(TENT, tent(1.5, 0.5, -0.3), {"h[0]": 1.0, "W[0,0]": 1.0}, [0.0, 0.6], max_order=1)
    assert list(ev.kind.values) == ["fold", "degenerate transcritical"]
    fold, dtb = ev.isel(event=0), ev.isel(event=1)
    assert abs(float(fold.s) - 0.3) <= S_TOL and abs(float(dtb.s) - 0.5) <= S_TOL
    inner = int(dtb.object_before)
    assert inner in (int(fold.object_after), int(fold.partner))
    assert obj.sizes["object"] == 2 and np.all(obj.exists.values[:, inner] == 0)  # never at a grid value
    assert int(obj.object_order.values[inner]) == 1


def test_objects_agree_with_direct_scyfi_and_roundtrip(tmp_path):
    m, theta = ref_theta()
    s_values = np.linspace(-0.2, 0.9, 5)
    obj, ev = bifurcation_path(m, theta, "A[0]", s_values, max_order=3, seed=3)
    for i, s in enumerate(s_values):
        ds = scyfi(m, theta + s * parameter_direction(m, "A[0]")[0], 3, seed=3)
        for k in (1, 2, 3):
            assert int(obj.n_cycles.values[i, k - 1]) == int(np.sum(ds.order.values == k))
        pts = obj.first_point.values[i][obj.exists.values[i] == 1]
        np.testing.assert_allclose(np.sort(pts[:, 0]), np.sort(ds.points.values[:, 0, 0]), rtol=1e-10)
    for name, data in (("objects", obj), ("events", ev)):
        path = pn.io.save(data, tmp_path / f"{name}.nc")
        back = pn.io.open(path)
        xr.testing.assert_equal(back, data)
        assert back.attrs["producer"] == "plrnn_numba.dynamics.bifurcation_path"
        for v in data.variables:
            assert "long_name" in data[v].attrs, v
    # a path without events round-trips too (empty event dim)
    _, none = bifurcation_path(TENT, tent(0.5, 0.5, 0.3), "h[0]", [0.0, 0.1], max_order=1)
    assert none.sizes["event"] == 0
    xr.testing.assert_equal(pn.io.open(pn.io.save(none, tmp_path / "none.nc")), none)


# ------------------------------------------------------------------------------------ grid
def test_grid_counts_boundaries_and_plot(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from plrnn_numba import plot

    m, theta = ref_theta()
    xs = np.array([-1.3, -0.9, -0.3, 0.75, 0.85, 1.1])
    ys = np.array([-1.2, -0.64375, 0.3])
    g = bifurcation_grid(m, theta, "A[0]", xs, "W[0,1]", ys, max_order=2)
    assert g.n_stable.dims == ("y", "x", "order")
    np.testing.assert_array_equal(g.x.values, xs)
    assert g.x.attrs["parameter"] == "A[0]" and "A_0" in g.coords and "W_0_1" in g.coords
    # counts agree with direct SCYFI calls (and with the per-point function)
    for iy, ix in ((0, 0), (1, 2), (2, 5), (1, 4)):
        th = theta.copy()
        th[0], th[2] = xs[ix], ys[iy]
        ds = scyfi(m, th, 2)
        for k in (1, 2):
            assert int(g.n_cycles.values[iy, ix, k - 1]) == int(np.sum(ds.order.values == k))
        st = ds.stability.values[ds.order.values == 1]
        assert int(g.n_stable.values[iy, ix, 0]) == int(np.sum(np.char.startswith(st.astype(str), "stable")))
        np.testing.assert_array_equal(
            cycle_signature(m, th, 2),
            np.stack([g[v].values[iy, ix] for v in ("n_stable", "n_saddle", "n_unstable", "n_nonhyperbolic")], axis=1),
        )
    # analytic: the fixed point in region (z1 > 0, z2 <= 0) is stable for -1 < a1 < 1 + w2 h1 / h2, whatever w1
    inside = (xs > -1) & (xs < 1 + W2 * H1 / H2)
    assert np.all(g.n_stable.values[:, inside, 0] >= 1)
    assert np.all(g.lowest_stable_order.values[:, inside] == 1)
    assert np.all(g.n_stable.values[:, 0, 0] == 0)  # a1 = -1.3: that fixed point is a saddle
    # boundary cells: exactly those whose signature differs from a 4-neighbour
    sig = np.stack([g[v].values for v in ("n_stable", "n_saddle", "n_unstable", "n_nonhyperbolic")], axis=-1)
    expect = np.zeros(g.boundary.shape, bool)
    for iy in range(len(ys)):
        for ix in range(len(xs)):
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                jy, jx = iy + dy, ix + dx
                if 0 <= jy < len(ys) and 0 <= jx < len(xs) and not np.array_equal(sig[iy, ix], sig[jy, jx]):
                    expect[iy, ix] = True
    np.testing.assert_array_equal(g.boundary.values.astype(bool), expect)
    assert expect[:, :2].all()  # the flip at a1 = -1 separates the first two columns
    np.testing.assert_array_equal(g.signature_table.values[g.signature_id.values], sig)
    # plot and round trip
    ax = plot.bifurcation_manifolds(g)
    assert isinstance(ax, matplotlib.axes.Axes)
    ax2 = plot.bifurcation_manifolds(g, order=1)
    assert isinstance(ax2, matplotlib.axes.Axes)
    import matplotlib.pyplot as plt

    plt.close("all")
    xr.testing.assert_equal(pn.io.open(pn.io.save(g, tmp_path / "grid.nc")), g)


# ------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"direction": "Q[0]"}, ValueError, "direction: unknown parameter name 'Q\\[0\\]'"),
        ({"direction": np.ones(5)}, ValueError, "direction must be"),
        ({"direction": np.zeros(3)}, ValueError, "direction must not be the zero vector"),
        ({"direction": {"h[0]": 0.0}}, ValueError, "all coefficients are zero"),
        ({"s_values": [[0.0, 0.1]]}, ValueError, "s_values must be a 1-D"),
        ({"s_values": [0.0, np.nan]}, ValueError, "s_values contains NaN"),
        ({"s_values": [0.1, 0.0]}, ValueError, "s_values must be strictly increasing"),
        ({"s_values": ["a", "b"]}, TypeError, "s_values"),
        ({"max_order": 0}, ValueError, "max_order must be >= 1"),
        ({"max_order": 1.5}, TypeError, "max_order must be an integer"),
        ({"locate_tol": 0.0}, ValueError, "locate_tol"),
        ({"settings": {"seed": 1}}, TypeError, "settings must be a plrnn_numba.dynamics.ScyfiSettings"),
        ({"seed": "one"}, TypeError, "seed must be"),
        ({"inputs": [1.0]}, ValueError, "no inputs"),
        ({"theta": np.ones(7)}, ValueError, "theta must be a 1-D vector of length 3"),
        ({"backend": "gpu"}, ValueError, "backend"),
        ({"backend": "parallel", "n_threads": 0}, ValueError, "n_threads"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = {"theta": tent(0.5, 0.5, 0.3), "direction": "h[0]", "s_values": [0.0, 0.1], "max_order": 1}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        bifurcation_path(TENT, args.pop("theta"), args.pop("direction"), args.pop("s_values"), **args)


def test_bad_input_models_and_grids():
    m2 = pn.PLRNN(2)
    _, th = ref_theta()
    with pytest.raises(ValueError, match="structurally zero"):
        bifurcation_path(m2, th, "W[0,0]", [0.0, 0.1], max_order=1)
    v = pn.VanillaRNN(2)
    with pytest.raises(TypeError, match="piecewise-linear"):
        bifurcation_path(v, v.init(0), np.ones(v.n_params), [0.0, 0.1], max_order=1)
    with pytest.raises(ValueError, match="theta_snapshots"):
        bifurcations_along_training(TENT, xr.Dataset(), max_order=1)
    # a history recorded for another model is refused, even when the parameter counts match
    other = pn.ALRNN(1, n_relu=1, full_W=True)
    assert other.n_params == TENT.n_params
    hist = pn.train(other, tent(0.5, 0.5, 0.3), pn.Batch(targets=np.zeros((1, 3, 1))), n_epochs=2)
    with pytest.raises(ValueError, match="history was recorded for the model"):
        bifurcations_along_training(TENT, hist, max_order=1)
    with pytest.raises(ValueError, match="param_x and param_y must be different"):
        bifurcation_grid(m2, th, "A[0]", [0.0, 1.0], "A[0]", [0.0, 1.0], max_order=1)
    with pytest.raises(ValueError, match="unknown parameter name"):
        bifurcation_grid(m2, th, "A[0]", [0.0, 1.0], "a1", [0.0, 1.0], max_order=1)
    with pytest.raises(ValueError, match="values_y must be strictly increasing"):
        bifurcation_grid(m2, th, "A[0]", [0.0, 1.0], "A[1]", [1.0, 0.0], max_order=1)
    with pytest.raises(ValueError, match="max_order must be >= 1"):
        bifurcation_grid(m2, th, "A[0]", [0.0, 1.0], "A[1]", [0.0, 1.0], max_order=0)
