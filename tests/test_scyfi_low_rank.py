"""SCYFI's fixed points by low-rank updates (:mod:`plrnn_numba.dynamics._low_rank`).

Tolerances:

* ``UPDATE_RTOL``: an update's solution against ``numpy.linalg.solve`` of the same
  region, relative to the solution's max-norm, on regions whose condition number is
  at most ~1e4 (the update's forward error is about eps times the condition numbers of
  the base and of the capacitance matrix: measured <= 1e-12 here);
* ``RESIDUAL_RTOL``: its residual ``|(I - F_d) z - c_d|_inf`` relative to
  ``|I - F_d|_inf |z|_inf + |c_d|_inf`` (a backward-stable solve gives ~1e-16);
* ``POINT_RTOL``: a fixed point found with updates against the one found by
  refactorising (both are verified and refined to the search's ``tol = 1e-10``).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import config
from plrnn_numba.dynamics import ScyfiSettings, brute_force_cycles, scyfi, search_many
from plrnn_numba.dynamics import _low_rank as LR
from plrnn_numba.dynamics._lu_cpu import LU, solve_many
from plrnn_numba.models import PiecewiseLinear, as_piecewise_linear

S = importlib.import_module("plrnn_numba.dynamics.scyfi")

UPDATE_RTOL = 1e-10
RESIDUAL_RTOL = 1e-13
POINT_RTOL = 1e-9
OPTS = np.array([1e-12, 1e-8, 1e-6])


def scaled_plrnn(M, target, seed):
    """Random PLRNN (A ~ U(0, 1), W ~ N(0, 1/M)) scaled to mean region spectral radius ``target``, with a
    planted fixed point (as ``benchmarks/bench_scyfi.py``): contracting for target < 1, many regions without
    a fixed point for target > 1."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.0, 1.0, M)
    W = rng.normal(0.0, 1.0 / np.sqrt(M), (M, M))
    np.fill_diagonal(W, 0.0)
    D = rng.random((16, M)) < 0.5
    rho = np.mean([np.max(np.abs(np.linalg.eigvals(np.diag(a) + W * d))) for d in D])
    a, W = a * target / rho, W * target / rho
    z = rng.normal(0.0, 1.0, M)
    return pn.PLRNN.from_arrays(a, W, z - a * z - W @ np.maximum(z, 0.0))


def selection_normal_form(M, P, seed):
    """A map in normal form whose P bits read a permuted subset of the coordinates, with v != 0
    (exercises j(q) and the offset updates that the PLRNN, with U = I and v = 0, does not)."""
    rng = np.random.default_rng(seed)
    cols = rng.permutation(M)[:P]
    L = np.diag(rng.uniform(0.0, 0.6, M)) + rng.normal(0.0, 0.1 / np.sqrt(M), (M, M))
    R = rng.normal(0.0, 0.6 / np.sqrt(M), (M, P))
    return PiecewiseLinear(L, rng.normal(size=M), R, np.eye(M)[cols], rng.normal(0.0, 0.5, P))


def work(M):
    return dict(z=np.empty(M), c_out=np.empty(M), Zw=np.empty((M, M)), Tw=np.empty((M, M)), rhs=np.empty(M),
                t=np.empty(M), u=np.empty(M), piv=np.empty(M, dtype=np.int64))


def with_base(pl, d_base):
    """A LowRank bundle of one lane whose base is the region of ``d_base`` (built as the engine does)."""
    lr = LR.low_rank_data([pl], 1)
    F, c = pl.region(d_base[None])
    A = np.eye(pl.dim) - F[0]
    LUw = A.copy()
    piv = np.empty(pl.dim, dtype=np.int64)
    assert LU.factor(LUw, piv)
    z = c[0].copy()
    LU.solve(LUw, piv, z)
    code = LR.after_solve(lr, 0, 0, d_base.astype(np.int8), True, 0, 0.0, 1.0, 1e-6, LUw, piv, z, c[0].copy(),
                          np.empty(pl.dim), np.empty(pl.dim))
    assert code == 0 and lr.est[0] > 0 and lr.counts[0, LR.BASES] == 1
    return lr


def update(pl, lr, d, r_max=None, rcond_min=1e-12):
    w = work(pl.dim)
    code = LR.solve(lr, 0, 0, d.astype(np.int8), rcond_min, pl.n_bits if r_max is None else r_max, w["z"],
                    w["c_out"], w["Zw"], w["Tw"], w["rhs"], w["t"], w["u"], w["piv"])
    return code, w["z"], w["c_out"]


# ------------------------------------------------------------------------ the update
@pytest.mark.parametrize("M, target, seed", [(20, 0.9, 0), (50, 1.25, 1), (64, 0.7, 2)])
def test_update_equals_a_fresh_solve(M, target, seed):
    pl = as_piecewise_linear(*scaled_plrnn(M, target, seed))
    rng = np.random.default_rng(seed)
    lr = with_base(pl, (rng.random(M) < 0.5).astype(np.int8))
    for r in (0, 1, 2, 5, M // 4, M // 2, 3 * M // 4, M):
        d = lr.d[0].copy()
        d[rng.choice(M, r, replace=False)] ^= 1
        code, z, c_out = update(pl, lr, d)
        F, c = pl.region(d[None])
        A = np.eye(M) - F[0]
        assert np.linalg.cond(A, 1) < 1e5
        assert code == 0, r
        ref = np.linalg.solve(A, c[0])
        np.testing.assert_allclose(c_out, c[0], rtol=0, atol=1e-14 * np.max(np.abs(c[0])))
        np.testing.assert_allclose(z, ref, rtol=0, atol=UPDATE_RTOL * np.max(np.abs(ref)))
        scale = np.max(np.abs(A).sum(1)) * np.max(np.abs(z)) + np.max(np.abs(c[0]))
        assert np.max(np.abs(A @ z - c[0])) <= RESIDUAL_RTOL * scale, r
    assert lr.counts[0, LR.UPDATES] == 8


def test_update_with_bits_on_a_subset_of_coordinates_and_offsets():
    pl = selection_normal_form(30, 17, 4)
    rng = np.random.default_rng(4)
    lr = with_base(pl, (rng.random(17) < 0.5).astype(np.int8))
    for r in (1, 3, 8, 17):
        d = lr.d[0].copy()
        d[rng.choice(17, r, replace=False)] ^= 1
        code, z, c_out = update(pl, lr, d)
        F, c = pl.region(d[None])
        ref = np.linalg.solve(np.eye(30) - F[0], c[0])
        assert code == 0
        np.testing.assert_allclose(c_out, c[0], rtol=0, atol=1e-13 * np.max(np.abs(c[0])))
        np.testing.assert_allclose(z, ref, rtol=0, atol=UPDATE_RTOL * np.max(np.abs(ref)))
        act, out = np.empty(17, dtype=np.int8), np.empty(30)
        LR.jumps(lr, 0, z, d.astype(np.int8), act, out)
        np.testing.assert_array_equal(act, pl.patterns(z))


def test_solve_many_against_numpy():
    rng = np.random.default_rng(5)
    for n, m in ((7, 3), (40, 65), (130, 97)):  # below and across the block size
        A = rng.normal(size=(n, n)) + np.sqrt(n) * np.eye(n)
        X = rng.normal(size=(n, m))
        LUw, piv = A.copy(), np.empty(n, dtype=np.int64)
        assert LU.factor(LUw, piv)
        Y = X.copy()
        solve_many(LUw, piv, Y)
        np.testing.assert_allclose(A @ Y, X, rtol=0, atol=1e-12 * np.max(np.abs(X)) * np.sqrt(n))


# --------------------------------------------------------------------- the fallbacks
def singular_unit_plrnn(M, seed):
    """A contracting PLRNN whose unit 0 only feeds itself with a + w = 1: in the regions with d_0 = 1 row 0
    of I - F_d vanishes (z_0' = z_0 + h_0), so half of all regions are singular."""
    model, theta = scaled_plrnn(M, 0.8, seed)
    p = model.unpack(theta)
    W = p["W"].copy()
    W[0] = 0.0
    W[0, 0] = 1.0 - p["A"][0]
    return pn.PLRNN.from_arrays(p["A"], W, p["h"])


def test_near_singular_update_is_refused_and_refactorised():
    M = 24
    pl = as_piecewise_linear(*singular_unit_plrnn(M, 6))
    rng = np.random.default_rng(6)
    base = (rng.random(M) < 0.5).astype(np.int8)
    base[0] = 0
    lr = with_base(pl, base)
    d = base.copy()
    d[[0, 3, 7]] ^= 1
    code, _, _ = update(pl, lr, d)
    assert code == LR.FAIL
    d[0] = 0  # the same flips without the singular unit: accepted
    assert update(pl, lr, d)[0] == 0


def test_far_candidates_and_missing_base():
    pl = as_piecewise_linear(*scaled_plrnn(20, 0.9, 7))
    empty = LR.low_rank_data([pl], 1)
    assert update(pl, empty, np.zeros(20, dtype=np.int8))[0] == LR.FAR
    lr = with_base(pl, np.zeros(20, dtype=np.int8))
    d = np.zeros(20, dtype=np.int8)
    d[:6] = 1
    assert update(pl, lr, d, r_max=5)[0] == LR.FAR
    assert update(pl, lr, d, r_max=6)[0] == 0


def test_sharp_estimate_where_the_bound_is_loose():
    # units 0 and 1 only feed themselves with a + w = 1 - 1e-4: the regions with d_0 = 1 (the base) and
    # those with d_1 = 1 (the candidate) have condition numbers ~1e5 in different directions, so the
    # bound ||A_b^{-1}|| ||K|| (~1e10) is too loose and the estimate of ||A_{d'}^{-1}|| decides
    M = 20
    model, theta = scaled_plrnn(M, 0.8, 30)
    p = model.unpack(theta)
    A, W = p["A"], p["W"].copy()
    for j in (0, 1):
        W[j] = 0.0
        W[j, j] = 1.0 - A[j] - 1e-4
    pl = as_piecewise_linear(*pn.PLRNN.from_arrays(A, W, p["h"]))
    base = (np.random.default_rng(0).random(M) < 0.5).astype(np.int8)
    base[:2] = 1, 0
    lr = with_base(pl, base)
    d = base.copy()
    d[[0, 1, 5]] ^= 1
    code, z, _ = update(pl, lr, d)
    assert code == 0 and lr.counts[0, LR.SHARP] == 1
    F, c = pl.region(d[None])
    ref = np.linalg.solve(np.eye(M) - F[0], c[0])
    np.testing.assert_allclose(z, ref, rtol=0, atol=UPDATE_RTOL * np.max(np.abs(ref)))


def test_ill_conditioned_regions_do_not_become_bases():
    M = 20
    model, theta = scaled_plrnn(M, 0.8, 31)
    p = model.unpack(theta)
    W = p["W"].copy()
    W[0] = 0.0
    W[0, 0] = 1.0 - p["A"][0] - 1e-9  # condition ~1e9 where d_0 = 1: above 1 / SCYFI_LOW_RANK_BASE_RCOND
    pl = as_piecewise_linear(*pn.PLRNN.from_arrays(p["A"], W, p["h"]))
    d = np.ones(M, dtype=np.int8)
    F, c = pl.region(d[None])
    LUw, piv = np.eye(M) - F[0], np.empty(M, dtype=np.int64)
    assert LU.factor(LUw, piv)
    z = c[0].copy()
    LU.solve(LUw, piv, z)
    lr = LR.low_rank_data([pl], 1)
    LR.after_solve(lr, 0, 0, d, True, 0, 0.0, 1.0, 1e-6, LUw, piv, z, c[0], np.empty(M), np.empty(M))
    assert lr.est[0] == 0.0 and lr.counts[0, LR.BASES] == 0


def test_rcond_limit_follows_rcond_min():
    # the acceptance bound is min(COND_MAX, RCOND_MARGIN / rcond_min): with a large rcond_min the
    # update hands every candidate to the refactorising path, which decides
    pl = as_piecewise_linear(*scaled_plrnn(20, 0.9, 8))
    lr = with_base(pl, np.zeros(20, dtype=np.int8))
    d = np.zeros(20, dtype=np.int8)
    d[:4] = 1
    assert update(pl, lr, d, rcond_min=1e-12)[0] == 0
    assert update(pl, lr, d, rcond_min=0.5)[0] == LR.FAIL


def test_after_solve_asks_for_refactorisation():
    pl = as_piecewise_linear(*scaled_plrnn(20, 0.9, 9))
    lr = with_base(pl, np.zeros(20, dtype=np.int8))
    args = (np.zeros((20, 20)), np.zeros(20, dtype=np.int64), np.zeros(20), np.zeros(20), np.zeros(20), np.zeros(20))
    d = np.ones(20, dtype=np.int8)
    rtol = config.SCYFI_LOW_RANK_CLOSURE_RTOL
    # an update that lands on a fixed point: too inexact -> FAIL; exact, base not settled -> REBASE
    assert LR.after_solve(lr, 0, 0, d, False, 1, 10 * rtol, 1.0, 1e-6, *args) == LR.FAIL
    assert LR.after_solve(lr, 0, 0, d, False, 1, 0.1 * rtol, 1.0, 1e-6, *args) == LR.REBASE
    assert LR.after_solve(lr, 0, 0, d, False, 0, 1.0, 1.0, 1e-6, *args) == 0  # a jump
    lr.settled[0] = 1
    assert LR.after_solve(lr, 0, 0, d, False, 1, 0.1 * rtol, 1.0, 1e-6, *args) == 0


# ------------------------------------------------------------------------- searches
def same_search(a, b):
    """Two scyfi Datasets of order 1: the same fixed points (patterns, points) after the same solves."""
    np.testing.assert_array_equal(a.patterns.values, b.patterns.values)
    np.testing.assert_allclose(a.points.values, b.points.values, rtol=0,
                               atol=POINT_RTOL * max(1.0, float(np.nanmax(np.abs(a.points.values), initial=0.0))))
    for name in ("n_solves", "n_singular", "n_duplicates", "n_loops", "n_found", "found_at_solve", "n_hits"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


@pytest.mark.parametrize("M, target, seed", [(20, 1.1, 10), (32, 0.9, 11), (50, 1.25, 12), (100, 0.9, 13)])
def test_search_finds_the_same_fixed_points(M, target, seed):
    params = scaled_plrnn(M, target, seed)
    settings = {"n_outer": 10, "n_inner": 40, "exhaustive": False}
    ref = scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=False), seed=seed)
    new = scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=True), seed=seed)
    same_search(ref, new)
    assert ref.sizes["cycle"] >= 1
    assert ref.n_low_rank.values[0] == 0 and new.n_low_rank.values[0] > 0.9 * new.n_solves.values[0]


def test_search_statistics_show_the_updates():
    pl = as_piecewise_linear(*scaled_plrnn(40, 0.9, 14))
    stream = S._FreshDraws(np.random.default_rng(0), 1, 40, None)
    st = S.search_order(pl, 1, 10, 40, None, stream, OPTS, low_rank=True).stats(0)
    # the first solve builds a base, the first fixed point moves it there; the rest are updates
    assert st["n_bases"] == 2 and st["n_low_rank_failed"] == 0
    assert st["n_low_rank"] + st["n_refactored"] == st["n_solves"] + 1  # the fixed point is solved twice
    stream = S._FreshDraws(np.random.default_rng(0), 1, 40, None)
    off = S.search_order(pl, 1, 10, 40, None, stream, OPTS).stats(0)
    assert off["n_low_rank"] == off["n_bases"] == 0 and off["n_solves"] == st["n_solves"]


def test_singular_regions_are_counted_as_by_refactorising():
    params = singular_unit_plrnn(24, 15)
    settings = {"n_outer": 8, "n_inner": 30, "exhaustive": False}
    ref = scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=False))
    new = scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=True))
    same_search(ref, new)
    assert ref.n_singular.values[0] > 0
    pl = as_piecewise_linear(*params)
    stream = S._FreshDraws(np.random.default_rng(0), 1, 24, None)
    st = S.search_order(pl, 1, 8, 30, None, stream, OPTS, low_rank=True).stats(0)
    assert st["n_low_rank_failed"] > 0 and st["n_low_rank"] > 0


def test_other_unit_row_families():
    rng = np.random.default_rng(16)
    M, P = 24, 14
    W = rng.normal(0.0, 0.5 / np.sqrt(M), (M, M))
    alrnn = pn.ALRNN.from_arrays(rng.uniform(0.2, 0.8, M), W, rng.normal(size=M), n_relu=P)
    settings = {"n_outer": 8, "n_inner": 30, "exhaustive": False}
    same_search(scyfi(*alrnn, 1, settings=ScyfiSettings(**settings, low_rank=False)),
                scyfi(*alrnn, 1, settings=ScyfiSettings(**settings, low_rank=True)))
    pl = selection_normal_form(30, 17, 17)
    out = []
    for low_rank in (False, True):
        stream = S._FreshDraws(np.random.default_rng(1), 1, 17, None)
        b = S.search_order(pl, 1, 8, 30, None, stream, OPTS, low_rank=low_rank)
        out.append((b.stats(0), b.cycles(0)))
    (s0, c0), (s1, c1) = out
    assert s0["n_solves"] == s1["n_solves"] and len(c0) == len(c1) >= 1 and s1["n_low_rank"] > 0
    for (z0, d0, *_), (z1, d1, *_) in zip(c0, c1):
        np.testing.assert_array_equal(d0, d1)
        np.testing.assert_allclose(z0, z1, rtol=0, atol=POINT_RTOL * max(1.0, np.max(np.abs(z0))))


@pytest.mark.parametrize("seed", [20, 21, 22])
def test_against_brute_force(seed):
    # M = 12: 4096 regions; expanding systems with several fixed points, a budget large enough to find them all
    params = scaled_plrnn(12, 1.2, seed)
    bf = brute_force_cycles(*params, 1)
    settings = {"n_outer": 40, "n_inner": 60, "exhaustive": False}
    ds = scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=True), seed=seed)
    ref = scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=False), seed=seed)
    same_search(ref, ds)
    np.testing.assert_array_equal(ds.patterns.values, bf.patterns.values)
    np.testing.assert_allclose(ds.points.values, bf.points.values, rtol=0, atol=POINT_RTOL)


def test_batched_backends_and_search_many():
    params = scaled_plrnn(30, 1.1, 23)
    settings = {"n_outer": 6, "n_inner": 30, "exhaustive": False}
    kw = {"backend": "parallel", "lanes": 4, "n_threads": 2}
    same_search(scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=False), **kw),
                scyfi(*params, 1, settings=ScyfiSettings(**settings, low_rank=True), **kw))
    model = params[0]
    thetas = np.stack([params[1], scaled_plrnn(30, 0.9, 24)[1]])
    a = search_many(model, thetas, 2, settings=ScyfiSettings(**settings, low_rank=False), backend="parallel")
    b = search_many(model, thetas, 2, settings=ScyfiSettings(**settings, low_rank=True), backend="cpu")
    for name in a[1]:
        np.testing.assert_array_equal(a[1][name], b[1][name], err_msg=name)
    for ca, cb in zip(a[0], b[0]):
        assert [c.order for c in ca] == [c.order for c in cb]
        for x, y in zip(ca, cb):
            np.testing.assert_array_equal(x.patterns, y.patterns)
            np.testing.assert_allclose(x.points, y.points, rtol=0, atol=POINT_RTOL * max(1.0, np.abs(x.points).max()))


# ------------------------------------------------------------------------- settings
def test_setting_values_and_resolution():
    assert ScyfiSettings().low_rank == "auto"
    assert ScyfiSettings(low_rank=np.bool_(True)).low_rank is True
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="low_rank"):
            ScyfiSettings(low_rank=bad)
    big = as_piecewise_linear(*scaled_plrnn(config.SCYFI_LOW_RANK_MIN_DIM, 0.9, 0))
    small = as_piecewise_linear(*scaled_plrnn(config.SCYFI_LOW_RANK_MIN_DIM - 1, 0.9, 0))
    shallow = pn.ShallowPLRNN(20, 30)
    dense = as_piecewise_linear(shallow, shallow.init(0))
    auto, on, off = ScyfiSettings(), ScyfiSettings(low_rank=True), ScyfiSettings(low_rank=False)
    assert auto.low_rank_for([big], "cpu", 1) and auto.low_rank_for([big], "parallel", 32)
    assert not auto.low_rank_for([small], "cpu", 1) and on.low_rank_for([small], "cpu", 1)
    assert not off.low_rank_for([big], "cpu", 1)
    assert not on.low_rank_for([big], "cuda", 1)  # the CUDA kernel refactorises
    assert not on.low_rank_for([dense], "cpu", 1)  # U with dense rows: no rank-r structure per bit
    too_many = config.SCYFI_LOW_RANK_MAX_BYTES // LR.bytes_per_lane(big.dim, big.n_bits) + 1
    assert not auto.low_rank_for([big], "parallel", too_many) and on.low_rank_for([big], "parallel", too_many)
    with pytest.raises(ValueError, match="unit rows"):
        LR.low_rank_data([dense], 1)
