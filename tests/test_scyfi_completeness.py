"""How complete is a SCYFI search: the exhaustive orders and the estimate of missed cycles, against brute force.

* (a) with ``exhaustive=True`` SCYFI returns exactly the brute-force cycles;
* (b) with the heuristic (``exhaustive=False``, default loop counts), wherever
  cycles are missing the order is not flagged ``estimated_complete``;
* (c) where the heuristic found everything, the Chao1 estimate stays close to
  the count found.

The systems are strongly coupled 2-D / 3-D PLRNNs like the one where the default
counts find 11 of 15 cycles up to order 7: A ~ U(0.8, 0.9), off-diagonal W ~
-U(3.5, 5), h ~ U(0.5, 1).  With the heuristic they miss 10-30 % of their
highest-order cycles, so (b) is exercised (the test checks that misses occur).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba.dynamics import ScyfiSettings, brute_force_cycles, scyfi, search_many
from plrnn_numba.dynamics._completeness import (
    COVERAGE_MIN,
    canonical_sequences,
    chao1,
    direct_coverage,
    lyndon_count,
)
from plrnn_numba.dynamics.brute_force import _minimal_rotation

# the 2-D system of the task: 15 cycles up to order 7, the default heuristic finds 11
PAPER_LIKE = pn.PLRNN.from_arrays(A=[0.8449, 0.8888], W=[[0.0, -4.4067], [-4.2091, 0.0]], h=[0.6140, 0.9337])
HEURISTIC = ScyfiSettings(exhaustive=False)


def strongly_coupled(seed: int, M: int):
    rng = np.random.default_rng(seed)
    W = -rng.uniform(3.5, 5.0, (M, M))
    np.fill_diagonal(W, 0.0)
    return pn.PLRNN.from_arrays(A=rng.uniform(0.8, 0.9, M), W=W, h=rng.uniform(0.5, 1.0, M))


# (params, max order, seed of the heuristic search): brute force takes ~0.1 s each
SYSTEMS = [(PAPER_LIKE, 7, 0)] + [(strongly_coupled(s, 2), 7, s) for s in (1, 4, 9)] + [
    (strongly_coupled(s, 3), 4, s) for s in (1, 2, 6)
]


@pytest.fixture(scope="module")
def references():
    return [brute_force_cycles(*params, K) for params, K, _ in SYSTEMS]


def cycle_keys(ds, k=None):
    orders = ds.order.values
    return {(int(orders[i]), ds.patterns.values[i, : orders[i]].tobytes()) for i in range(ds.sizes["cycle"])
            if k is None or orders[i] == k}


# ----------------------------------------------------------------------------------- enumeration
@pytest.mark.parametrize("k, P", [(1, 3), (2, 2), (4, 2), (6, 1), (3, 3), (6, 2)])
def test_enumeration_is_one_sequence_per_rotation_class(k, P):
    words = canonical_sequences(k, P)
    assert words.shape == (lyndon_count(k, P), k, P)
    # every sequence that brute force keeps as a canonical aperiodic one, each once, in lexicographic order
    every = np.array(list(itertools.product((0, 1), repeat=k * P)), dtype=np.int8).reshape(-1, k, P)
    keep = every[_minimal_rotation(every)]
    np.testing.assert_array_equal(words, keep)


def test_lyndon_counts():
    # necklace counting: L(k, a) = (1/k) sum_{d | k} mu(d) a^(k/d)
    assert [lyndon_count(k, 1) for k in range(1, 9)] == [2, 1, 2, 3, 6, 9, 18, 30]
    assert lyndon_count(7, 2) == (4**7 - 4) // 7 == 2340
    assert lyndon_count(6, 2) == (4**6 - 4**3 - 4**2 + 4) // 6
    assert lyndon_count(1, 10) == 1024


# --------------------------------------------------------------------- (a) exhaustive = brute force
def test_exhaustive_mode_finds_exactly_the_brute_force_cycles(references):
    for (params, K, _), ref in zip(SYSTEMS, references):
        ds = scyfi(*params, K, settings=ScyfiSettings(exhaustive=True))
        assert cycle_keys(ds) == cycle_keys(ref)
        np.testing.assert_allclose(ds.points.values, ref.points.values, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(ds.stability.values, ref.stability.values)
        assert ds.exhaustive.values.all() and ds.estimated_complete.values.all()
        np.testing.assert_array_equal(ds.n_estimated.values, ds.n_found.values)
        np.testing.assert_array_equal(ds.n_solves.values, [lyndon_count(int(k), params[0].dim)
                                                           for k in ds.order_k.values])
        assert np.all(ds.n_hits.values == -1)


def test_default_auto_enumerates_the_2d_orders_up_to_7_and_finds_all_15():
    ds = scyfi(*PAPER_LIKE, 7)
    assert ds.exhaustive.values.all() and ds.sizes["cycle"] == 15
    assert np.all(ds.n_outer.values == 0)
    # the heuristic alone misses the four 7-cycles
    old = scyfi(*PAPER_LIKE, 7, settings=HEURISTIC)
    assert old.sizes["cycle"] == 11 and not old.exhaustive.values.any()


def test_auto_rule():
    cfg = ScyfiSettings()
    # 2-D: L(9, 4) = 29120 <= 40 x 1080, L(10, 4) = 104754 > 43200
    assert [cfg.exhaustive_at(k, 2) for k in (1, 7, 9, 10, 16)] == [True, True, True, False, False]
    assert [cfg.exhaustive_at(k, 3) for k in (3, 4)] == [True, False]
    assert cfg.exhaustive_at(1, 10) and not cfg.exhaustive_at(1, 11)
    # the budget follows the loop counts and max_solves
    assert not ScyfiSettings(n_outer=2, n_inner=5).exhaustive_at(3, 2)  # L = 20 > 10
    assert not ScyfiSettings(max_solves=100).exhaustive_at(5, 2)  # L = 204 > 100
    assert ScyfiSettings(exhaustive=True).exhaustive_at(12, 2)
    assert not ScyfiSettings(exhaustive=False).exhaustive_at(1, 2)


def test_max_solves_cuts_an_enumeration():
    ds = scyfi(*PAPER_LIKE, 7, min_order=7, settings=ScyfiSettings(exhaustive=True, max_solves=1000))
    assert int(ds.n_solves[0]) == 1000 and int(ds.hit_limit[0]) == 1
    assert bool(ds.exhaustive[0]) and not bool(ds.estimated_complete[0])
    assert float(ds.direct_coverage[0]) == pytest.approx(1000 / 2340)


@pytest.mark.parametrize("value", ["yes", 1, 0, None, "Auto"])
def test_bad_exhaustive_setting(value):
    with pytest.raises(ValueError, match="exhaustive"):
        ScyfiSettings(exhaustive=value)


def test_unaffordable_enumeration_is_refused():
    model = pn.PLRNN(10)
    theta = model.pack(A=np.full(10, 0.5), W=np.zeros((10, 10)), h=np.ones(10))
    with pytest.raises(ValueError, match="exhaustive=True"):
        scyfi(model, theta, 5, min_order=5, settings=ScyfiSettings(exhaustive=True))


def test_search_many_enumerates_the_same_orders():
    model = strongly_coupled(1, 2)[0]
    thetas = np.stack([strongly_coupled(s, 2)[1] for s in (1, 4)])
    found, stats = search_many(model, thetas, 8, min_order=6, backend="cpu")
    np.testing.assert_array_equal(stats["exhaustive"], [[1, 1, 1]] * 2)
    for g in range(2):
        ref = scyfi(model, thetas[g], 8, min_order=6)
        assert {(c.order, c.patterns.tobytes()) for c in found[g]} == cycle_keys(ref)


# ------------------------------------------------------------------ (b), (c): the estimate
def test_estimate_never_claims_a_search_with_missed_cycles_complete(references):
    n_missing = n_complete = 0
    for (params, K, seed), ref in zip(SYSTEMS, references):
        ds = scyfi(*params, K, seed=seed, settings=HEURISTIC)
        for j, k in enumerate(ds.order_k.values):
            present, found = len(cycle_keys(ref, k)), int(ds.n_found[j])
            assert cycle_keys(ds, k) <= cycle_keys(ref, k)
            if found < present:
                n_missing += 1
                assert not bool(ds.estimated_complete[j]), (k, found, present)
            else:
                # (c) a complete order: the Chao1 estimate is close to the count found
                n_complete += 1
                est = float(ds.n_estimated[j])
                assert found <= est <= found + max(1.0, 0.25 * found), (k, found, est)
    # the test means something only if the heuristic missed cycles somewhere (and found all elsewhere)
    assert n_missing >= 8 and n_complete >= 15


def test_flag_rule_and_complete_searches_are_recognised():
    # a generous heuristic finds everything and says so: every cycle hit often, coverage ~ 1
    ds = scyfi(*PAPER_LIKE, 5, seed=1, settings=ScyfiSettings(exhaustive=False, n_outer=40, n_inner=2000))
    assert ds.sizes["cycle"] == 9
    assert ds.estimated_complete.values.all()
    assert np.all(ds.n_singletons.values == 0) and np.all(ds.n_estimated.values == ds.n_found.values)
    assert np.all(ds.direct_coverage.values >= COVERAGE_MIN)
    # the flag is exactly: f1 = 0 and direct_coverage >= COVERAGE_MIN (heuristic orders)
    ds = scyfi(*PAPER_LIKE, 7, seed=0, settings=HEURISTIC)
    want = (ds.n_singletons.values == 0) & (ds.direct_coverage.values >= COVERAGE_MIN)
    np.testing.assert_array_equal(ds.estimated_complete.values, want)


@pytest.mark.parametrize("backend, lanes", [("cpu", None), ("parallel", 12)])
def test_hits_are_the_discoveries_and_the_duplicates(backend, lanes):
    # every consistent, exact, new-or-known candidate is one hit of one cycle (with many lanes
    # also those landing on a cycle another lane found in the same round)
    ds = scyfi(*strongly_coupled(4, 2), 6, seed=3, settings=HEURISTIC, backend=backend, lanes=lanes)
    for j, k in enumerate(ds.order_k.values):
        hits = ds.n_hits.values[ds.order.values == k]
        assert np.all(hits >= 1)
        assert hits.sum() == int(ds.n_found[j]) + int(ds.n_duplicates[j])
        est, f1, f2 = chao1(hits)
        assert (f1, f2) == (int(ds.n_singletons[j]), int(ds.n_doubletons[j]))
        assert est == pytest.approx(float(ds.n_estimated[j]))
    assert np.all(ds.n_fresh.values > 0) and np.all(ds.n_fresh.values <= ds.n_solves.values)


def test_chao1_and_direct_coverage():
    assert chao1([]) == (0.0, 0, 0)
    assert chao1([5, 9]) == (2.0, 0, 0)
    assert chao1([1, 1, 2, 5]) == (4 + 4 / 2, 2, 1)  # N_obs + f1^2 / (2 f2)
    assert chao1([1, 1, 1, 7]) == (4 + 3, 3, 0)  # f2 = 0: N_obs + f1 (f1 - 1) / 2
    assert chao1([1]) == (1.0, 1, 0)
    # 1 - (1 - k / 2^(P k))^n
    assert direct_coverage(1, 10, 2) == pytest.approx(1 - 0.75**10)
    assert direct_coverage(7, 0, 2) == 0.0
    assert direct_coverage(2, 5, 1, pool_size=3) == pytest.approx(1 - (1 - 2 / 9) ** 5)
    assert direct_coverage(40, 10**6, 200) == 0.0


def test_dataset_records_and_netcdf_roundtrip(tmp_path):
    ds = scyfi(*PAPER_LIKE, 11, min_order=8, seed=0)  # 8, 9 enumerated; 10, 11 heuristic
    np.testing.assert_array_equal(ds.exhaustive.values, [True, True, False, False])
    for name in ("exhaustive", "n_fresh", "n_singletons", "n_doubletons", "n_estimated", "direct_coverage",
                 "estimated_complete"):
        assert ds[name].dims == ("order_k",)
        assert ds[name].attrs["units"] == "1" and ds[name].attrs["long_name"]
    assert ds.n_hits.dims == ("cycle",) and ds.n_hits.attrs["long_name"]
    assert ds.exhaustive.dtype == bool and ds.estimated_complete.dtype == bool
    np.testing.assert_array_equal(ds.n_singletons.values[:2], -1)
    path = tmp_path / "c.nc"
    ds.to_netcdf(path)
    import xarray as xr

    back = xr.load_dataset(path)
    for name in ("exhaustive", "estimated_complete", "n_estimated", "n_hits"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
