"""SCYFI (exact fixed points and k-cycles) against brute force, closed forms, simulation and the paper's systems.

Tolerances (one per kind of check):

* ``POINT_ATOL``: a cycle point from SCYFI against the same point from the
  brute-force enumeration or a closed form, relative to the point's max-norm
  (both solve the same small linear system; differences are rounding);
* ``EXACT_RTOL``: the exactness guarantee of every returned cycle,
  ``|F^k(z) - z| <= 1e-10 * max(|z|, |c|)``, checked with the model's own
  ``simulate`` (an implementation independent of SCYFI's kernels);
* ``REF_DIGITS``: numbers of the authors' 2-D test systems (Eisenmann et al. 2023),
  quoted to four or so digits.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import (
    STABILITY_CLASSES,
    ScyfiSettings,
    brute_force_cycles,
    classify_stability,
    default_counters,
    scyfi,
    solve_region_sequence,
)

scyfi_module = importlib.import_module("plrnn_numba.dynamics.scyfi")

POINT_ATOL = 1e-9
EXACT_RTOL = 1e-10
REF_DIGITS = 5e-4

# the 2-D test family of the SCYFI authors (Eisenmann et al. 2023)
A2, W2, H1, H2 = 0.96461297, 0.52505308, 0.37298253, -0.97931491


def ref_arrays(a1, w1):
    return {"A": [a1, A2], "W": [[0.0, w1], [W2, 0.0]], "h": [H1, H2]}


def ref_system(a1, w1):
    """(model, theta) of the 2-D test system."""
    return pn.PLRNN.from_arrays(**ref_arrays(a1, w1))


def random_arrays(seed, M, a=1.5, w=3.0):
    """A ~ U(-a, a), W ~ N(0, w^2) with zero diagonal, h ~ N(0, 1): often chaotic, many unstable cycles."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-a, a, M)
    W = rng.normal(0.0, w, (M, M))
    np.fill_diagonal(W, 0.0)
    return A, W, rng.normal(0.0, 1.0, M)


def random_plrnn(seed, M, a=1.5, w=3.0):
    """(model, theta) of :func:`random_arrays`."""
    return pn.PLRNN.from_arrays(*random_arrays(seed, M, a, w))


def cycle_set(ds):
    """{(order, pattern bytes): points} with canonical rotation (as both searches report)."""
    out = {}
    for i in range(ds.sizes["cycle"]):
        k = int(ds.order[i])
        key = ds.patterns.values[i, :k].tobytes()
        out[(k, key)] = ds.points.values[i, :k]
    return out


def assert_same_cycles(ds_a, ds_b):
    a, b = cycle_set(ds_a), cycle_set(ds_b)
    missing = sorted(k for k, _ in set(b) - set(a))
    spurious = sorted(k for k, _ in set(a) - set(b))
    assert not missing and not spurious, f"orders missing {missing}, spurious {spurious}"
    for key in a:
        scale = max(1.0, float(np.max(np.abs(b[key]))))
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=POINT_ATOL * scale)


def assert_exact_with_simulate(model, theta, ds, inputs=None):
    """Every point satisfies F^k(z) = z and F(z_j) = z_{j+1} with the model's own simulate."""
    for i in range(ds.sizes["cycle"]):
        k = int(ds.order[i])
        pts = ds.points.values[i, :k]
        kw = {"inputs": np.tile(inputs, (k, 1))} if inputs is not None else {"n_steps": k}
        traj = model.simulate(theta, pts, **kw)  # (k, k + 1, M): every point rolled k steps
        scale = max(float(np.max(np.abs(pts))), 1e-300)
        np.testing.assert_allclose(traj[:, -1], pts, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(traj[:, 1], np.roll(pts, -1, axis=0), rtol=0, atol=1e-9 * scale)
        assert float(ds.max_residual[i]) <= EXACT_RTOL


# ----------------------------------------------------------------------------- kernel
def test_solve_region_sequence_matches_numpy():
    rng = np.random.default_rng(0)
    for M, k in ((1, 1), (2, 3), (3, 5), (7, 2), (20, 3), (60, 2), (130, 2)):
        F = rng.normal(0, 0.6 / np.sqrt(M), (k, M, M))
        c = rng.normal(size=(k, M))
        Z, b = np.eye(M), np.zeros(M)
        for j in range(k):
            Z, b = F[j] @ Z, F[j] @ b + c[j]
        z = np.empty(M)
        assert solve_region_sequence(F, c, 1e-12, z) == 0
        np.testing.assert_allclose(z, np.linalg.solve(np.eye(M) - Z, b), rtol=1e-10, atol=1e-12)
    # singular: I - Z = 0 (identity region map); ill-conditioned; overflow
    z = np.empty(2)
    assert solve_region_sequence(np.eye(2)[None].copy(), np.ones((1, 2)), 1e-12, z) == 1
    near = np.array([[[1.0 - 1e-15, 0.0], [0.0, 0.5]]])
    assert solve_region_sequence(near, np.ones((1, 2)), 1e-12, z) == 1
    assert solve_region_sequence(near, np.ones((1, 2)), 0.0, z) == 0
    huge = np.full((40, 2, 2), 1e200)
    assert solve_region_sequence(huge, np.ones((40, 2)), 1e-12, z) == 2


# ------------------------------------------------------------------ paper's 2-D systems
def test_reference_fixed_point():
    ds = scyfi(*ref_system(-0.0222311, -0.64375), 1)
    assert ds.sizes["cycle"] == 1
    np.testing.assert_allclose(ds.points.values[0, 0], [0.3649, -22.2606], atol=REF_DIGITS)
    lam = np.sort(ds.eig_real.values[0])
    np.testing.assert_allclose(lam, [-0.0222, 0.9646], atol=REF_DIGITS)
    np.testing.assert_array_equal(ds.eig_imag.values[0], 0.0)
    assert ds.stability.values[0] == "stable node"
    # exact: A z + W relu(z) + h = z
    z = ds.points.values[0, 0]
    sysd = ref_arrays(-0.0222311, -0.64375)
    Fz = np.array(sysd["A"]) * z + np.array(sysd["W"]) @ np.maximum(z, 0) + np.array(sysd["h"])
    np.testing.assert_allclose(Fz, z, rtol=1e-13)


def test_reference_16_cycles():
    ds = scyfi(*ref_system(0.8377689, -0.64375), 16)
    orders = ds.order.values
    assert np.sum(orders == 1) == 1
    assert np.sum(orders == 15) == 0
    assert np.sum(orders == 16) == 2
    assert set(orders) == {1, 16}
    i16 = np.flatnonzero(orders == 16)
    stab = dict(zip(ds.stability.values[i16], i16))
    assert set(stab) == {"stable spiral", "saddle"}
    mod = np.hypot(ds.eig_real.values[stab["stable spiral"]], ds.eig_imag.values[stab["stable spiral"]])
    np.testing.assert_allclose(mod, [0.519, 0.519], atol=REF_DIGITS * 2)
    m = pn.PLRNN(2)
    theta = m.pack(**ref_arrays(0.8377689, -0.64375))
    assert_exact_with_simulate(m, theta, ds)
    # the stable 16-cycle is the attractor a long simulation settles on
    z = m.simulate(theta, np.array([0.5, -1.0]), n_steps=20000)[-1]
    pts = ds.points.values[stab["stable spiral"], :16]
    assert np.min(np.max(np.abs(pts - z), axis=1)) < 1e-8
    # orders are searched independently: the 16-cycles alone, with the same seed, are the same
    only16 = scyfi(*ref_system(0.8377689, -0.64375), 16, min_order=16)
    assert_same_cycles(only16, ds.isel(cycle=np.flatnonzero(orders == 16)))


# ----------------------------------------------------------------------- brute force
@pytest.mark.parametrize("seed", range(30))
def test_matches_brute_force_on_random_plrnns(seed):
    M = 2 if seed % 2 == 0 else 3
    K = 6 if M == 2 else 4
    model, theta = random_plrnn(seed, M)
    ref = brute_force_cycles(model, theta, K)
    # a generous budget (4 * 2^(M k) solves without a discovery): this test is about
    # correctness (every cycle found is real, nothing spurious, points exact), not
    # about how quickly the heuristic finds the last unstable cycle of a chaotic map
    ds = scyfi(model, theta, K, seed=seed, settings=ScyfiSettings(n_outer=4, n_inner=lambda k: 2 ** (M * k)))
    assert_same_cycles(ds, ref)
    np.testing.assert_array_equal(ds.stability.values, ref.stability.values)
    np.testing.assert_allclose(ds.spectral_radius.values, ref.spectral_radius.values, rtol=1e-9)
    assert np.all(ds.max_residual.values <= EXACT_RTOL)


def test_default_counters_find_everything_on_2d_systems():
    # with the default loop counts SCYFI matches brute force on these 2-D systems
    # (orders up to 7, 86 cycles in all, most of them unstable)
    total = 0
    for seed in (1, 7, 19, 31, 51):
        params = random_plrnn(seed, 2)
        ref = brute_force_cycles(*params, 7)
        assert_same_cycles(scyfi(*params, 7, seed=seed), ref)
        total += ref.sizes["cycle"]
    assert total >= 50


def test_default_counters_documented_values():
    assert default_counters(1, 2) == (10, 20)
    assert default_counters(16, 2) == (40, 1080)
    assert default_counters(40, 1) == (100, 1115)
    n_out, n_in = default_counters(1, 200)
    assert (n_out, n_in) == (100, 200)


# ------------------------------------------------------------------------ simulation
def settled_cycles(model, theta, rng, kmax=16, n_ic=20, n_steps=5000):
    """(period, point) of every orbit that settles on a cycle of period <= kmax."""
    Z = model.simulate(theta, rng.normal(0.0, 3.0, (n_ic, model.dim)), n_steps=n_steps + kmax)
    out = []
    for traj in Z:
        z = traj[n_steps]
        if not np.all(np.isfinite(traj[n_steps:])) or np.max(np.abs(z)) > 1e6:
            continue
        tail = traj[n_steps + 1 :]
        hit = np.flatnonzero(np.max(np.abs(tail - z), axis=1) <= 1e-9 * max(1.0, np.max(np.abs(z))))
        if hit.size:
            out.append((int(hit[0]) + 1, z))
    return out


def test_stable_cycles_found_by_simulation_are_found_by_scyfi():
    # seeds chosen so that the set includes settled periods 2, 3, 4, 10, 12 and 15
    n_checked = 0
    periods = set()
    for seed in (0, 1, 2, 22, 33, 53, 61, 83, 102, 141, 158, 169, 195):
        M = 2 + seed % 2
        rng = np.random.default_rng(seed)
        A = rng.uniform(-1, 1, M)
        W = rng.normal(0, 1.5, (M, M))
        np.fill_diagonal(W, 0.0)
        h = rng.normal(0, 1, M)
        model = pn.PLRNN(M)
        theta = model.pack(A=A, W=W, h=h)
        cache = {}
        for p, z in settled_cycles(model, theta, rng):
            if p not in cache:
                cache[p] = scyfi(model, theta, p, min_order=p, seed=seed)
            ds = cache[p]
            pts = ds.points.values[ds.order.values == p][:, :p].reshape(-1, M)
            dist = np.min(np.max(np.abs(pts - z), axis=1)) if len(pts) else np.inf
            assert dist <= 1e-7 * max(1.0, np.max(np.abs(z))), f"seed {seed}: stable {p}-cycle not found"
            i = np.flatnonzero(ds.order.values == p)[np.argmin(
                np.min(np.max(np.abs(ds.points.values[ds.order.values == p][:, :p] - z), axis=2), axis=1))]
            assert ds.stability.values[i].startswith("stable") and ds.spectral_radius.values[i] < 1
            n_checked += 1
            periods.add(p)
    assert n_checked >= 20 and {2, 3, 4, 10, 12, 15} <= periods


# ---------------------------------------------------------------------- 1-D analytic
@pytest.mark.parametrize("aL", [-3.0, -1.5, -0.5, 0.2, 0.7, 1.3])
@pytest.mark.parametrize("aR", [-3.0, -1.5, -0.5, 0.2, 0.7, 1.3])
@pytest.mark.parametrize("mu", [-1.0, 0.5, 2.0])
def test_one_dimensional_closed_forms(aL, aR, mu):
    """z' = aL z + mu (z <= 0), aR z + mu (z > 0): a PLRNN(1, full_W=True) with A = aL, W = aR - aL, h = mu.

    Fixed points z = mu / (1 - aL) if <= 0 and mu / (1 - aR) if > 0; the 2-cycle
    z1 = mu (1 + aR) / (1 - aL aR) <= 0 < z2 = mu (1 + aL) / (1 - aL aR), multiplier aL aR.
    """
    model = pn.PLRNN(1, full_W=True)
    theta = model.pack(A=[aL], W=[[aR - aL]], h=[mu])
    ds = scyfi(model, theta, 2)
    expect = []
    zl, zr = mu / (1 - aL), mu / (1 - aR)
    if zl <= 0:
        expect.append((1, [zl], aL))
    if zr > 0:
        expect.append((1, [zr], aR))
    den = 1 - aL * aR
    z1, z2 = mu * (1 + aR) / den, mu * (1 + aL) / den
    if z1 <= 0 < z2:
        expect.append((2, [z1, z2], aL * aR))
    assert ds.sizes["cycle"] == len(expect)
    for k, pts, lam in expect:
        i = [j for j in range(ds.sizes["cycle"]) if int(ds.order[j]) == k
             and np.allclose(ds.points.values[j, :k, 0], pts, rtol=1e-12, atol=1e-14)]
        assert len(i) == 1, (k, pts)
        i = i[0]
        np.testing.assert_allclose(ds.eig_real.values[i, 0], lam, rtol=1e-12)
        assert ds.stability.values[i] == ("stable node" if abs(lam) < 1 else "unstable node")


# --------------------------------------------------------------------- shallow PLRNN
def tiny_shallow(seed, M, H, clipped):
    model = pn.ShallowPLRNN(M, H, clipped=clipped)
    theta = model.init(seed, a_range=(-0.9, 0.9), w_scale=3.0, max_norm=None)  # rich dynamics, many cycles
    model.unpack(theta)["h1"][:] = np.random.default_rng(seed).normal(0.0, 1.0, M)
    return model, theta


@pytest.mark.parametrize("clipped", [False, True])
def test_shallow_plrnn_against_brute_force_and_simulate(clipped):
    n_cycles = 0
    for seed in range(10):
        M, H = ((2, 3), (3, 2))[seed % 2]
        model, theta = tiny_shallow(seed, M, H, clipped)
        P = 2 * H if clipped else H
        K = max(2, 12 // P)
        ref = brute_force_cycles(model, theta, K)
        ds = scyfi(model, theta, K, seed=seed)
        assert_same_cycles(ds, ref)
        assert_exact_with_simulate(model, theta, ds)
        n_cycles += ds.sizes["cycle"]
        assert ds.sizes["bit"] == P
        assert ds.bit_label.values[0] == "(W2 z + h2)[0] > 0"
        if clipped:
            assert ds.bit_label.values[H] == "(W2 z)[0] > 0"
    assert n_cycles >= 15


def test_shallow_with_constant_input_matches_folded_offset():
    model = pn.ShallowPLRNN(3, 4, n_inputs=2, clipped=True)
    theta = model.init(3, w_scale=2.0)
    s = np.array([0.7, -1.2])
    ds = scyfi(model, theta, 3, inputs=s)
    d = model.unpack(theta)
    raw = {k: d[k] for k in ("A", "W1", "W2", "h2")}
    raw["h1"] = d["h1"] + d["C"] @ s
    assert_same_cycles(ds, scyfi(*pn.ShallowPLRNN.from_arrays(**raw, clipped=True), 3))
    assert ds.sizes["cycle"] >= 1
    assert_exact_with_simulate(model, theta, ds, inputs=s)


# ------------------------------------------------------------------ model interfaces
def test_model_and_raw_arrays_agree_and_inputs_are_folded():
    A, W, h = random_arrays(5, 3)
    C = np.random.default_rng(5).normal(size=(3, 2))
    s = np.array([0.3, -0.8])
    model = pn.PLRNN(3, n_inputs=2)
    theta = model.pack(A=A, W=W, h=h, C=C)
    ds_model = scyfi(model, theta, 3, inputs=s)
    ds_arrays = scyfi(*pn.PLRNN.from_arrays(A=np.diag(A), W=W, h=h, C=C), 3, inputs=s)
    ds_folded = scyfi(*pn.PLRNN.from_arrays(A, W, h + C @ s), 3)
    assert_same_cycles(ds_model, ds_arrays)
    assert_same_cycles(ds_model, ds_folded)
    assert_exact_with_simulate(model, theta, ds_model, inputs=s)
    # a full W (non-zero diagonal) through full_W=True equals moving the diagonal into A
    Wf = W + np.diag([0.3, -0.2, 0.1])
    full = pn.PLRNN(3, full_W=True)
    ds_full = scyfi(full, full.pack(A=A, W=Wf, h=h), 3)
    moved = pn.PLRNN(3)
    assert_same_cycles(ds_full, brute_force_cycles(moved, moved.pack(A=A + np.diag(Wf), W=W, h=h), 3))


def test_large_dimension_contracting_fixed_point():
    # M = 64 exercises the BLAS products and the vectorised LU; a contracting
    # map has one fixed point, which simulation reaches
    M = 64
    rng = np.random.default_rng(1)
    W = rng.normal(0, 0.3 / np.sqrt(M), (M, M))
    np.fill_diagonal(W, 0.0)
    A, h = rng.uniform(0.3, 0.6, M), rng.normal(size=M)
    model = pn.PLRNN(M)
    theta = model.pack(A=A, W=W, h=h)
    ds = scyfi(model, theta, 2, settings=ScyfiSettings(n_outer=3, n_inner=20))
    assert list(ds.order.values) == [1]
    z = model.simulate(theta, np.zeros(M), n_steps=400)[-1]
    np.testing.assert_allclose(ds.points.values[0, 0], z, rtol=1e-10, atol=1e-12)
    assert ds.stability.values[0] in ("stable node", "stable spiral")
    assert_exact_with_simulate(model, theta, ds)


# ------------------------------------------------------------------ edge cases, errors
def test_singular_systems_are_skipped_and_counted():
    ds = scyfi(*pn.PLRNN.from_arrays(A=[1.0, 1.0], W=np.zeros((2, 2)), h=[0.0, 0.0]), 3)
    assert ds.sizes["cycle"] == 0
    np.testing.assert_array_equal(ds.n_singular.values, ds.n_solves.values)
    assert np.all(ds.n_solves.values > 0) and np.all(ds.hit_limit.values == 0)
    # one region singular (z_1 > 0: a_1 + w = 1), the others fine
    ds = scyfi(*pn.PLRNN.from_arrays(A=[0.5, 0.5], W=[[0.0, 0.0], [0.0, 0.0]], h=[1.0, -1.0]), 1)
    assert ds.sizes["cycle"] == 1 and ds.n_singular.values[0] == 0
    full = pn.PLRNN(1, full_W=True)
    ds = scyfi(full, full.pack(A=[0.5], W=[[0.5]], h=[1.0]), 1)  # right branch z' = z + 1
    assert ds.sizes["cycle"] == 0 and ds.n_singular.values[0] > 0


def test_hit_limit_and_counters():
    # the heuristic's counters (exhaustive=False: with "auto" these tiny orders are enumerated)
    params = ref_system(0.8377689, -0.64375)
    ds = scyfi(*params, 3, settings=ScyfiSettings(max_solves=7, exhaustive=False))
    np.testing.assert_array_equal(ds.n_solves.values, 7)
    np.testing.assert_array_equal(ds.hit_limit.values, 1)
    ds = scyfi(*params, 2, settings=ScyfiSettings(n_outer=2, n_inner=5, exhaustive=False))
    np.testing.assert_array_equal(ds.hit_limit.values, 0)
    np.testing.assert_array_equal(ds.n_outer.values, 2)
    # after the last discovery exactly n_outer * n_inner solves are spent
    assert ds.n_solves.values[1] == 10
    assert ds.n_solves.values[0] == 10 + int(ds.n_solves_to_find.values[0])


def test_seed_reproducibility():
    params = random_plrnn(3, 3)
    a = scyfi(*params, 4, seed=11)
    b = scyfi(*params, 4, seed=11)
    for name in ("points", "patterns", "n_solves", "n_solves_to_find", "found_at_solve"):
        np.testing.assert_array_equal(a[name].values, b[name].values)
    assert json.loads(a.attrs["seeds"]) == 11
    c = scyfi(*params, 4, seed=None)
    recorded = json.loads(c.attrs["seeds"])
    assert isinstance(recorded, int) and 0 <= recorded < 2**63
    # the recorded seed repeats the run; a Generator is accepted and recorded the same way
    again = scyfi(*params, 4, seed=recorded)
    np.testing.assert_array_equal(again.found_at_solve.values, c.found_at_solve.values)
    g = scyfi(*params, 4, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(
        scyfi(*params, 4, seed=json.loads(g.attrs["seeds"])).points.values, g.points.values)


def test_classify_stability():
    assert classify_stability(np.array([0.5, -0.2]), 1e-8) == "stable node"
    assert classify_stability(np.array([0.5 + 0.3j, 0.5 - 0.3j]), 1e-8) == "stable spiral"
    assert classify_stability(np.array([1.5, 0.2]), 1e-8) == "saddle"
    assert classify_stability(np.array([1.5, -2.0]), 1e-8) == "unstable node"
    assert classify_stability(np.array([1 + 1j, 1 - 1j]), 1e-8) == "unstable spiral"
    assert classify_stability(np.array([-1.0, 0.3]), 1e-8) == "non-hyperbolic"
    assert classify_stability(np.array([np.exp(0.3j), np.exp(-0.3j)]), 1e-8) == "non-hyperbolic"
    assert set(STABILITY_CLASSES) >= {"stable node", "saddle", "non-hyperbolic"}
    # a non-hyperbolic fixed point: z' = W relu(z) + h with W a rotation by 90 degrees
    # (eigenvalues +-i in the all-active region, the only region with a fixed point)
    ds = scyfi(*pn.PLRNN.from_arrays(A=[0.0, 0.0], W=[[0.0, -1.0], [1.0, 0.0]], h=[0.3, 0.2]), 1)
    assert list(ds.stability.values) == ["non-hyperbolic"]


@pytest.mark.parametrize(
    "arrays, exc, match",
    [
        ({"A": [0.5, 0.5], "W": np.zeros((2, 3)), "h": [0, 0]}, ValueError, "W must be a square"),
        ({"A": [[0.5, 0.1], [0, 0.5]], "W": np.zeros((2, 2)), "h": [0, 0]}, ValueError, "A must be diagonal"),
        ({"A": [0.5, np.nan], "W": np.zeros((2, 2)), "h": [0, 0]}, ValueError, "A contains NaN"),
        ({"A": [0.5, 0.5], "W": np.zeros((2, 2)), "h": [0, np.inf]}, ValueError, "h contains NaN or inf"),
        ({"A": [0.5, 0.5], "W": np.zeros((2, 2)), "h": [0, 0, 0]}, ValueError, r"h must have shape \(2,\)"),
        ({"A": ["a", "b"], "W": np.zeros((2, 2)), "h": [0, 0]}, TypeError, "real"),
    ],
)
def test_bad_arrays(arrays, exc, match):
    with pytest.raises(exc, match=match):
        pn.PLRNN.from_arrays(**arrays)


SYS = ref_system(-0.0222311, -0.64375)


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((*SYS, 0), {}, ValueError, "max_order must be >= 1"),
        ((*SYS, 2.0), {}, TypeError, "max_order must be an integer"),
        ((*SYS, 2), {"min_order": 3}, ValueError, "min_order"),
        ((*SYS, 2), {"settings": {"n_inner": 3}}, TypeError, "settings must be a plrnn_numba.dynamics.ScyfiSettings"),
        ((*SYS, 2), {"inputs": [1.0]}, ValueError, "no inputs"),
        ((*SYS, 2), {"seed": -1}, ValueError, "seed must be a non-negative integer"),
        ((*SYS, 2), {"seed": 1.5}, TypeError, "seed must be"),
        ((*SYS, 2), {"backend": "gpu"}, ValueError, "backend must be one of"),
        ((pn.PLRNN(1, n_inputs=2), np.zeros(4), 2), {"inputs": [1.0, 2.0, 3.0]}, ValueError, r"shape \(2,\)"),
        ((pn.PLRNN(1, n_inputs=2), np.zeros(4), 2), {"inputs": np.ones((5, 2))}, ValueError, "one constant input"),
        (({"A": [0.5], "W": [[0.0]], "h": [0.0]}, None, 2), {}, TypeError, "must be a plrnn_numba model"),
        ((pn.PLRNN(2), None, 2), {}, ValueError, "theta is required"),
        ((pn.VanillaRNN(2), np.zeros(6), 2), {}, TypeError, "piecewise-linear"),
    ],
)
def test_bad_input(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        scyfi(*args, **kwargs)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"n_inner": 0}, ValueError, "n_inner"),
        ({"n_outer": 2.5}, TypeError, "n_outer"),
        ({"tol": np.nan}, ValueError, "tol"),
        ({"rcond_min": 2.0}, ValueError, "rcond_min"),
        ({"max_solves": 0}, ValueError, "max_solves"),
        ({"pool_samples": True}, TypeError, "pool_samples"),
    ],
)
def test_bad_settings(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ScyfiSettings(**kwargs)


def test_model_theta_checks():
    model = pn.PLRNN(2)
    with pytest.raises(ValueError, match="theta must be a 1-D vector"):
        scyfi(model, np.zeros(3), 2)
    with pytest.raises(ValueError, match="has no inputs"):
        scyfi(model, model.init(0), 2, inputs=[1.0])
    shallow = pn.ShallowPLRNN(2, 3)
    with pytest.raises(ValueError, match="W2 must have shape"):
        shallow.pack(A=[0.5, 0.5], W1=np.zeros((2, 3)), W2=np.zeros((2, 2)), h1=[0, 0], h2=[0, 0, 0])


def test_brute_force_limit_and_format():
    params = random_plrnn(2, 3)
    with pytest.raises(ValueError, match="max_bits"):
        brute_force_cycles(*params, 7)
    ds = brute_force_cycles(*params, 2)
    assert ds.attrs["producer"] == "plrnn_numba.dynamics.brute_force_cycles"
    np.testing.assert_array_equal(ds.n_solves.values, [8, 64])
    assert np.all(ds.n_solves_to_find.values == -1)


# ----------------------------------------------------------------------------- output
def _roundtrip(ds, tmp_path, name):
    path = pn.io.save(ds, tmp_path / name)
    back = pn.io.open(path)
    assert set(back.variables) == set(ds.variables)
    for v in ds.variables:
        a, b = ds[v].values, back[v].values
        assert a.shape == b.shape, v
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b)
        else:
            assert a.tolist() == b.tolist(), v
        assert back[v].attrs.get("units") is not None and back[v].attrs.get("long_name"), v
    for key in ("producer", "arguments", "seeds", "versions", "created"):
        assert key in back.attrs
    json.loads(back.attrs["arguments"])
    return back


def test_dataset_layout_and_netcdf_roundtrip(tmp_path):
    params = ref_system(0.8377689, -0.64375)
    ds = scyfi(*params, 16, min_order=15)
    assert dict(ds.sizes) == {"cycle": 2, "point": 16, "state": 2, "eig": 2, "bit": 2, "order_k": 2}
    assert ds.bit_label.values.tolist() == ["z[0] > 0", "z[1] > 0"]
    assert ds.patterns.dtype == np.int8 and ds.patterns.values[0, 16:].size == 0
    back = _roundtrip(ds, tmp_path, "c16.nc")
    assert back.patterns.dtype == np.int8
    args = json.loads(back.attrs["arguments"])
    assert args["max_order"] == 16 and args["min_order"] == 15
    # padding beyond the order
    ds3 = scyfi(*random_plrnn(0, 2), 3)
    short = np.flatnonzero(ds3.order.values < 3)
    assert np.all(np.isnan(ds3.points.values[short, 2])) and np.all(ds3.patterns.values[short, 2] == -1)
    _roundtrip(ds3, tmp_path, "r3.nc")
    # no cycles at all, and the clipped model's two kinds of bits
    _roundtrip(scyfi(*pn.PLRNN.from_arrays(A=[1.0], W=[[0.0]], h=[0.0]), 2), tmp_path, "empty.nc")
    model, theta = tiny_shallow(1, 2, 3, True)
    _roundtrip(scyfi(model, theta, 2), tmp_path, "clipped.nc")


def test_resumable_kernel_gives_the_same_result(monkeypatch):
    # the engine returns to the driver when the fresh candidates run out (NEED_FRESH)
    # or the cycle pool is full (FULL) and is resumed: one candidate per chunk and a
    # capacity of one cycle must give the same search as large buffers
    from plrnn_numba.dynamics import _search as S
    from plrnn_numba.models import as_piecewise_linear

    system = as_piecewise_linear(*random_plrnn(31, 2))
    opts = np.array([1e-12, 1e-8, 1e-6])

    def run(lanes=1):
        batch = S.BatchSearch(
            system.kernels, system.p[None], system.meta, 2, 2,
            {"system": [0], "order": [6], "stream": [0], "n_outer": [10], "n_inner": [300], "max_solves": [-1],
             "lanes": [lanes]},
            [scyfi_module._FreshDraws(np.random.default_rng(5), 6, 2, None)], opts,
        )
        batch.run_cpu()
        return [(z.tobytes(), d.tobytes(), at, s) for z, d, at, s in batch.cycles(0)], batch.searches[0].copy()

    big = run()
    monkeypatch.setattr(scyfi_module._FreshDraws, "first_chunk", 1)
    monkeypatch.setattr(scyfi_module._FreshDraws, "max_chunk", 1)
    monkeypatch.setattr(S.BatchSearch, "initial_capacity", 1)
    small = run()
    assert len(big[0]) >= 3
    assert big[0] == small[0]
    for name in ("solves", "singular", "found", "loops", "duplicates", "lower_order"):
        assert big[1][name] == small[1][name]
    # several lanes: the same cycles (as a set), whatever the buffer sizes
    many = run(lanes=7)

    def rows(cycles):  # rotation-invariant: the sorted region rows of each cycle
        return sorted(tuple(sorted(np.frombuffer(d, np.int8).reshape(6, 2).tolist())) for _, d, _, _ in cycles)

    assert rows(many[0]) == rows(big[0])


def test_fresh_patterns_are_independent_fair_bits():
    # every bit drawn independently: no 128-bit integer trick, no cap on M, high units
    # as often active as low ones
    for k, P in ((1, 200), (3, 7), (2, 130)):
        draws = scyfi_module._FreshDraws(np.random.default_rng(0), k, P, None)
        chunks = []
        while sum(len(c) for c in chunks) < 2000:
            chunks.append(draws.draw())
        bits = np.concatenate(chunks)[:4000].reshape(-1, k * P).astype(float)
        assert bits.shape[0] >= 2000
        freq = bits.mean(axis=0)
        assert np.all(np.abs(freq - 0.5) < 0.06), (k, P, freq.min(), freq.max())
        corr = np.corrcoef(bits[:, : min(40, k * P)].T)
        assert np.max(np.abs(corr - np.eye(corr.shape[0]))) < 0.1
