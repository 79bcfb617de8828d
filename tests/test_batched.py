"""Batched SCYFI: region solves in batches, concurrent search lanes, many systems at once.

References: ``numpy.linalg.solve`` and the true map (``PiecewiseLinear.step``)
for single solves; the serial CPU search (same candidate stream) and brute-force
enumeration for whole searches.  Tolerance: ``POINT_ATOL`` from ``test_scyfi``
(relative to the points' max-norm).  The CUDA backend is tested in ``tests/cuda``
under the simulator (``test_cuda_simulator.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import (
    ScyfiSettings,
    bifurcation_grid,
    brute_force_cycles,
    cuda_available,
    scyfi,
    search_many,
    solve_candidates,
)
from plrnn_numba.dynamics.batched import default_lanes, resolve_backend
from plrnn_numba.models import as_piecewise_linear
from tests.test_scyfi import POINT_ATOL, assert_same_cycles, random_plrnn, ref_system


def tiny_clipped(seed):
    """A clipped shallow PLRNN (M = 2, H = 3): (model, theta)."""
    model = pn.ShallowPLRNN(2, 3, clipped=True)
    theta = model.init(seed, a_range=(-0.9, 0.9), w_scale=3.0)
    model.unpack(theta)["h1"][:] = np.random.default_rng(seed).normal(0.0, 1.0, 2)
    return model, theta


def check_against_numpy(model, thetas, cand, sidx, ds):
    """Every solved candidate against numpy.linalg.solve and a roll-out with the true map."""
    n, k, _ = cand.shape
    syss = [as_piecewise_linear(model, t) for t in thetas]
    n_ok = 0
    for i in range(n):
        system = syss[sidx[i]]
        Z, b = system.cycle_map(cand[i])
        I = np.eye(system.dim)
        if ds.status.values[i] != 0:
            # flagged singular/ill-conditioned: numpy agrees it is (nearly) singular
            assert np.linalg.cond(I - Z) > 1e8 or not np.all(np.isfinite(Z))
            continue
        n_ok += 1
        z = np.linalg.solve(I - Z, b)
        pts = ds.points.values[i]
        scale = max(1.0, float(np.max(np.abs(pts))))
        np.testing.assert_allclose(pts[0], z, rtol=0, atol=POINT_ATOL * scale)
        y = pts[0]
        for j in range(k):
            np.testing.assert_array_equal(ds.patterns.values[i, j], system.patterns(y))
            y = system.step(y)
            np.testing.assert_allclose(pts[j + 1], y, rtol=0, atol=POINT_ATOL * scale)
        consistent = np.array_equal(ds.patterns.values[i], cand[i])
        assert ds.consistent.values[i] == int(consistent)
        if consistent:
            assert ds.closure_residual.values[i] <= 1e-9 * ds.scale.values[i]
    assert n_ok >= n // 2


def same_cycle_sets(a, b):
    """The same cycles (orders, stability, points up to rotation) in two scyfi Datasets."""
    assert_same_cycles(a, b)
    np.testing.assert_array_equal(a.order.values, b.order.values)
    np.testing.assert_array_equal(a.stability.values, b.stability.values)


# ---------------------------------------------------------------- single batched solve
@pytest.mark.parametrize("backend", ["cpu", "parallel"])
def test_solve_candidates_matches_numpy_and_the_true_map(backend):
    rng = np.random.default_rng(0)
    model = random_plrnn(0, 3)[0]
    thetas = np.stack([random_plrnn(s, 3)[1] for s in range(3)])
    cand = rng.integers(0, 2, (60, 3, 3))
    sidx = rng.integers(0, 3, 60)
    ds = solve_candidates(model, thetas, cand, system_index=sidx, backend=backend)
    check_against_numpy(model, thetas, cand, sidx, ds)
    assert ds.attrs["backend"] == backend and ds.sizes["point"] == 4


def test_solve_candidates_shallow_and_true_cycles():
    rng = np.random.default_rng(1)
    model = tiny_clipped(2)[0]
    thetas = np.stack([tiny_clipped(s)[1] for s in (2, 3)])
    cand = rng.integers(0, 2, (40, 2, 6))
    sidx = rng.integers(0, 2, 40)
    check_against_numpy(model, thetas, cand, sidx,
                        solve_candidates(model, thetas, cand, system_index=sidx, backend="parallel"))
    # the cycles SCYFI found are consistent candidates of the batched solve
    ds = scyfi(*random_plrnn(3, 2), 2)
    k2 = ds.order.values == 2
    if k2.any():
        pats = ds.patterns.values[k2][:, :2]
        sol = solve_candidates(*random_plrnn(3, 2), pats)
        assert np.all(sol.consistent.values == 1)
        np.testing.assert_allclose(sol.points.values[:, :2], ds.points.values[k2][:, :2], atol=1e-9)


def test_solve_candidates_flags_singular_systems():
    sys_ = pn.PLRNN.from_arrays(A=[1.0, 1.0], W=[[0.0, 0.0], [0.0, 0.0]], h=[0.1, 0.2])
    ds = solve_candidates(*sys_, np.array([[[0, 0]], [[1, 1]]]))
    assert np.all(ds.status.values == 1) and np.all(np.isnan(ds.points.values))


def test_solve_candidates_bad_input():
    p = random_plrnn(0, 2)
    with pytest.raises(ValueError, match="candidates must have shape"):
        solve_candidates(*p, np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="only 0 and 1"):
        solve_candidates(*p, np.full((3, 2, 2), 2))
    with pytest.raises(ValueError, match="system_index"):
        solve_candidates(*p, np.zeros((3, 2, 2)), system_index=np.array([0, 1, 0]))
    with pytest.raises(ValueError, match=r"thetas\[0\] must be a 1-D vector of length 8"):
        solve_candidates(p[0], np.stack([p[1], p[1]])[:, :-1], np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="backend must be one of"):
        solve_candidates(*p, np.zeros((3, 2, 2)), backend="gpu")


# ---------------------------------------------------------------- backends
def test_cuda_backend_without_gpu_raises_a_clear_error():
    if cuda_available()[0]:
        pytest.skip("a CUDA device (or the simulator) is available here")
    with pytest.raises(RuntimeError, match="backend='cuda' needs a CUDA GPU.*backend='parallel'"):
        scyfi(*random_plrnn(0, 2), 1, backend="cuda")
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        bifurcation_grid(pn.PLRNN(2), pn.PLRNN(2).init(0), "A[0]", [0.1, 0.2], "A[1]", [0.1, 0.2], max_order=1,
                         backend="cuda")


def test_auto_backend_uses_the_cpu_without_gpu():
    ds = scyfi(*random_plrnn(0, 2), 2, backend="auto")
    assert ds.attrs["backend"] in ("cpu", "cuda")
    if not cuda_available()[0]:
        assert resolve_backend("auto", dim=2, work=1e12) == "cpu"
        assert resolve_backend("auto", dim=2, work=1e12, batched_cpu=True) == "parallel"
    with pytest.raises(ValueError, match="backend must be one of"):
        scyfi(*random_plrnn(0, 2), 1, backend="GPU")
    assert default_lanes("parallel", 10**6, 2) == 32 and default_lanes("cuda", 80, 2) == 10


# ---------------------------------------------------------------- whole searches
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parallel_one_lane_is_exactly_the_serial_search(seed):
    params = random_plrnn(seed, 3)
    a = scyfi(*params, 3)
    b = scyfi(*params, 3, backend="parallel", lanes=1)
    for name in ("order", "points", "patterns", "stability", "n_solves", "n_singular", "n_loops", "found_at_solve"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_parallel_shallow_one_lane_is_exactly_the_serial_search():
    model, theta = tiny_clipped(5)
    a = scyfi(model, theta, 3)
    b = scyfi(model, theta, 3, backend="parallel", lanes=1)
    for name in ("order", "points", "patterns", "n_solves"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.mark.parametrize("seed", range(6))
def test_many_lanes_against_brute_force(seed):
    M, K = ((2, 5), (3, 3))[seed % 2]
    params = random_plrnn(seed, M)
    ref = brute_force_cycles(*params, K)
    # the heuristic with many lanes (exhaustive="auto" would enumerate these small orders)
    ds = scyfi(*params, K, backend="parallel", lanes=12, seed=seed, settings=ScyfiSettings(exhaustive=False))
    assert_same_cycles(ds, ref)
    assert np.all(ds.n_lanes.values == 12)


def test_many_lanes_find_the_reference_16_cycles():
    # the authors' 2-D system: exactly two 16-cycles (a stable spiral and a saddle)
    ds = scyfi(*ref_system(0.8377689, -0.64375), 16, min_order=16, backend="parallel")
    assert sorted(ds.stability.values) == ["saddle", "stable spiral"]
    same_cycle_sets(ds, scyfi(*ref_system(0.8377689, -0.64375), 16, min_order=16))


def test_search_many_equals_scyfi_per_system():
    model = random_plrnn(0, 2)[0]
    thetas = np.stack([random_plrnn(s, 2)[1] for s in range(5)])
    found, stats = search_many(model, thetas, 3, backend="parallel", n_threads=2)
    for s, cyc in enumerate(found):
        ds = scyfi(*random_plrnn(s, 2), 3)
        assert [c.order for c in cyc] == ds.order.values.tolist()
        assert [c.stability for c in cyc] == ds.stability.values.tolist()
        for c, pts in zip(cyc, ds.points.values):
            np.testing.assert_array_equal(c.points, pts[: c.order])
        np.testing.assert_array_equal(stats["n_solves"][s], ds.n_solves.values)
    with pytest.raises(ValueError, match="non-empty"):
        search_many(model, np.zeros((0, 8)), 2)


@pytest.mark.parametrize("family", ["plrnn", "clipped"])
def test_parallel_grid_equals_the_serial_grid(family):
    if family == "plrnn":
        model = pn.PLRNN(2)
        theta = model.pack(A=np.array([0.5, 0.3]), W=np.array([[0.0, 0.8], [-1.2, 0.0]]), h=np.array([0.5, -0.3]))
        px, py = "A[0]", "W[1,0]"
    else:
        model, theta = tiny_clipped(4)
        px, py = "A[0]", "h1[1]"
    xs, ys = np.linspace(-0.8, 0.9, 4), np.linspace(-1.5, 1.5, 3)
    kw = dict(max_order=3, settings=ScyfiSettings(n_outer=3, n_inner=40))
    a = bifurcation_grid(model, theta, px, xs, py, ys, **kw)
    b = bifurcation_grid(model, theta, px, xs, py, ys, backend="parallel", **kw)
    for name in ("n_cycles", "n_stable", "n_saddle", "n_unstable", "n_nonhyperbolic", "signature_id", "boundary"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert a.attrs["backend"] == "cpu" and b.attrs["backend"] == "parallel"
    assert a.n_cycles.values.sum() > 0


def test_search_many_with_tiny_buffers_gives_the_same_cycles(monkeypatch):
    # the engine returns to the host whenever a candidate stream runs out or the cycle
    # pool is full; with one candidate per refill and a pool of one cycle, the threaded
    # bookkeeping (several chunks of searches) must still give the serial result
    import importlib

    S = importlib.import_module("plrnn_numba.dynamics._search")
    scyfi_module = importlib.import_module("plrnn_numba.dynamics.scyfi")
    model = random_plrnn(0, 2)[0]
    thetas = np.stack([random_plrnn(s, 2)[1] for s in range(6)])
    settings = ScyfiSettings(n_outer=3, n_inner=30)
    ref, ref_stats = search_many(model, thetas, 3, backend="cpu", settings=settings)
    monkeypatch.setattr(scyfi_module._FreshDraws, "first_chunk", 1)
    monkeypatch.setattr(scyfi_module._FreshDraws, "max_chunk", 1)
    monkeypatch.setattr(S.BatchSearch, "initial_capacity", 1)
    got, stats = search_many(model, thetas, 3, backend="parallel", n_threads=2, settings=settings)
    assert sum(len(c) for c in ref) >= 6
    for a, b in zip(ref, got):
        assert [c.order for c in a] == [c.order for c in b]
        for ca, cb in zip(a, b):
            np.testing.assert_array_equal(ca.points, cb.points)
            assert ca.found_at_solve == cb.found_at_solve
    np.testing.assert_array_equal(ref_stats["n_solves"], stats["n_solves"])


def test_fresh_candidate_windows_are_ragged_and_exact(monkeypatch):
    # The fresh candidates of all streams share one flat array, each stream's window at its own
    # offset with k x P entries per candidate (k: the stream's order).  After every extension each
    # window must be intact where the engine reads it, and the array must stay within twice the
    # largest total of the windows (a dense stream x candidate x kmax x P array grew with the
    # number of streams times the longest window: 40 GiB in a long bifurcation analysis).
    import importlib

    S = importlib.import_module("plrnn_numba.dynamics._search")
    scyfi_module = importlib.import_module("plrnn_numba.dynamics.scyfi")
    model, _ = tiny_clipped(0)  # pattern-pool streams: one stream per (system, order)
    thetas = np.stack([tiny_clipped(s)[1] for s in range(4)])
    settings = ScyfiSettings(n_outer=4, n_inner=20)
    ref, ref_stats = search_many(model, thetas, 6, backend="cpu", settings=settings)
    monkeypatch.setattr(scyfi_module._FreshDraws, "first_chunk", 1)
    monkeypatch.setattr(scyfi_module._FreshDraws, "max_chunk", 3)
    extend = S.BatchSearch._extend
    seen = {"extensions": 0, "largest_live": 0}

    def checked_extend(self, stream):
        extend(self, stream)
        live = sum(w.size for w in self._windows)
        seen["extensions"] += 1
        seen["largest_live"] = max(seen["largest_live"], live)
        assert self.fresh.cand.size <= max(2 * seen["largest_live"], 1)
        for s, w in enumerate(self._windows):
            rec = self.fresh.streams[s]
            assert rec["n_avail"] == w.shape[0]
            o = int(rec["offset"])
            np.testing.assert_array_equal(self.fresh.cand[o : o + w.size], w.ravel())

    monkeypatch.setattr(S.BatchSearch, "_extend", checked_extend)
    got, stats = search_many(model, thetas, 6, backend="cpu", settings=settings)
    assert seen["extensions"] > 4 * 6  # every stream extended, most of them several times
    for a, b in zip(ref, got):
        assert [c.order for c in a] == [c.order for c in b]
        for ca, cb in zip(a, b):
            np.testing.assert_array_equal(ca.points, cb.points)
    np.testing.assert_array_equal(ref_stats["n_solves"], stats["n_solves"])


def test_fresh_candidate_chunks_share_the_batch_budget(monkeypatch):
    # with a budget of 72 bytes per stream, no window may hold more than two chunks of that size,
    # and the cycles found must not change (the streams do not depend on the chunk sizes)
    import importlib

    from plrnn_numba import config

    S = importlib.import_module("plrnn_numba.dynamics._search")
    model, _ = tiny_clipped(0)
    thetas = np.stack([tiny_clipped(s)[1] for s in range(4)])
    settings = ScyfiSettings(n_outer=4, n_inner=20)
    ref, ref_stats = search_many(model, thetas, 6, backend="cpu", settings=settings)
    n_stream = 4 * 6  # pattern-pool streams: one per (system, order)
    monkeypatch.setattr(config, "SCYFI_FRESH_BYTES", 72 * n_stream)
    extend = S.BatchSearch._extend
    largest = []

    def checked_extend(self, stream):
        extend(self, stream)
        k, P = int(self._stream_k[stream]), self.P
        largest.append(self._windows[stream].shape[0] / max(1, 72 // (k * P)))

    monkeypatch.setattr(S.BatchSearch, "_extend", checked_extend)
    got, stats = search_many(model, thetas, 6, backend="cpu", settings=settings)
    assert largest and max(largest) <= 2
    np.testing.assert_array_equal(ref_stats["n_solves"], stats["n_solves"])
    for a, b in zip(ref, got):
        assert [c.order for c in a] == [c.order for c in b]
