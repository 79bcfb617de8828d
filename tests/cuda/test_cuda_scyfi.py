"""CUDA kernels for batched SCYFI region solves, run under the numba CUDA simulator.

Tolerances: ``POINT_ATOL`` (points against ``numpy.linalg.solve`` / the CPU
backend, relative to the points' max-norm; differences are rounding), as in
``tests/test_scyfi.py``.  Kept tiny: the simulator runs every thread in Python.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import config as nconfig

from plrnn_numba.dynamics import ScyfiSettings, bifurcation_grid, cuda_available, scyfi, solve_candidates
from plrnn_numba.models import PLRNN, as_piecewise_linear
from tests.test_batched import check_against_numpy, same_cycle_sets, tiny_clipped
from tests.test_open_protocol import LeakyPLRNN, random_leaky
from tests.test_scyfi import assert_same_cycles, random_plrnn

pytestmark = pytest.mark.cudasim

# the heuristic (exhaustive="auto" would enumerate these small orders; see the test of that path below)
SMALL = {"settings": ScyfiSettings(n_outer=3, n_inner=40, exhaustive=False)}


def test_running_in_the_simulator():
    assert nconfig.ENABLE_CUDASIM
    assert cuda_available() == (True, "simulator")


@pytest.mark.parametrize("family", ["plrnn", "clipped", "leaky (test-file family, its own kernels)",
                                    "leaky (test-file family, normal-form kernels)"])
def test_kernel_matches_numpy_solve_and_the_true_map(family):
    rng = np.random.default_rng(3)
    if family == "plrnn":
        pairs = [random_plrnn(s, 3) for s in (1, 2)]
    elif family == "clipped":
        pairs = [tiny_clipped(s) for s in (1, 2)]
    else:
        pairs = [random_leaky(s, 3, own_kernels="own" in family) for s in (1, 2)]
    model, thetas = pairs[0][0], np.stack([t for _, t in pairs])
    P = as_piecewise_linear(model, thetas[0]).n_bits
    cand = rng.integers(0, 2, (12, 2, P))
    sidx = rng.integers(0, 2, 12)
    g = solve_candidates(model, thetas, cand, system_index=sidx, backend="cuda")
    check_against_numpy(model, thetas, cand, sidx, g)
    c = solve_candidates(model, thetas, cand, system_index=sidx, backend="cpu")
    np.testing.assert_array_equal(g.status.values, c.status.values)
    np.testing.assert_array_equal(g.consistent.values, c.consistent.values)
    np.testing.assert_array_equal(g.patterns.values, c.patterns.values)
    np.testing.assert_allclose(g.points.values, c.points.values, rtol=1e-12, atol=1e-12)


def test_singular_systems_are_flagged_like_the_cpu():
    # A = 1, W = 0: I - Z = 0 for every region
    sys_ = PLRNN.from_arrays(A=[1.0, 1.0], W=[[0.0, 0.0], [0.0, 0.0]], h=[0.1, 0.2])
    cand = np.array([[[0, 0]], [[1, 1]], [[1, 0]]])
    g = solve_candidates(*sys_, cand, backend="cuda")
    assert np.all(g.status.values == 1) and np.all(g.consistent.values == 0)


@pytest.mark.parametrize("seed", [0, 4])
def test_one_lane_gives_exactly_the_cpu_search(seed):
    params = random_plrnn(seed, 2)
    a = scyfi(*params, 2, backend="cpu", **SMALL)
    b = scyfi(*params, 2, backend="cuda", lanes=1, **SMALL)
    assert_same_cycles(b, a)
    np.testing.assert_array_equal(a.stability.values, b.stability.values)
    np.testing.assert_array_equal(a.n_solves.values, b.n_solves.values)
    np.testing.assert_array_equal(a.n_singular.values, b.n_singular.values)
    assert b.attrs["backend"] == "cuda"


def test_enumerated_orders_give_exactly_the_cpu_result():
    params = random_plrnn(3, 2)
    cfg = {"settings": ScyfiSettings(exhaustive=True)}
    a = scyfi(*params, 3, **cfg)
    b = scyfi(*params, 3, backend="cuda", **cfg)
    assert_same_cycles(b, a)
    np.testing.assert_array_equal(a.n_solves.values, b.n_solves.values)
    assert b.exhaustive.values.all() and b.estimated_complete.values.all()


def test_shallow_one_lane_gives_exactly_the_cpu_search():
    model, theta = tiny_clipped(7)
    a = scyfi(model, theta, 2, **SMALL)
    b = scyfi(model, theta, 2, backend="cuda", lanes=1, **SMALL)
    assert_same_cycles(b, a)
    np.testing.assert_array_equal(a.n_solves.values, b.n_solves.values)


def test_a_family_defined_in_a_test_file_runs_on_cuda():
    model, theta = random_leaky(2, 2, own_kernels=False)
    assert isinstance(model, LeakyPLRNN)
    a = scyfi(model, theta, 2, **SMALL)
    b = scyfi(model, theta, 2, backend="cuda", lanes=1, **SMALL)
    assert_same_cycles(b, a)
    np.testing.assert_array_equal(a.n_solves.values, b.n_solves.values)


def test_many_lanes_find_the_same_cycles():
    params = random_plrnn(11, 2)
    a = scyfi(*params, 3)
    b = scyfi(*params, 3, backend="cuda", lanes=16, settings=ScyfiSettings(n_outer=2, n_inner=60))
    same_cycle_sets(a, b)


def test_grid_on_cuda_equals_the_serial_grid():
    model = PLRNN(2)
    theta = model.pack(A=np.array([0.5, 0.3]), W=np.array([[0.0, 0.8], [-1.2, 0.0]]), h=np.array([0.5, -0.3]))
    kw = dict(max_order=2, settings=ScyfiSettings(n_outer=2, n_inner=20))
    a = bifurcation_grid(model, theta, "A[0]", [-0.5, 0.6], "W[1,0]", [-1.2, 1.0], **kw)
    b = bifurcation_grid(model, theta, "A[0]", [-0.5, 0.6], "W[1,0]", [-1.2, 1.0], backend="cuda", **kw)
    for name in ("n_cycles", "n_stable", "n_saddle", "n_unstable", "signature_id", "boundary"):
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    assert b.attrs["backend"] == "cuda"


def test_beyond_max_dim_the_cpu_is_used():
    from plrnn_numba.config import CUDA_MAX_DIM

    M = CUDA_MAX_DIM + 1
    A = np.full(M, 0.5)
    W = np.zeros((M, M))
    h = np.linspace(-1, 1, M)
    with pytest.warns(RuntimeWarning, match="CUDA_MAX_DIM"):
        ds = scyfi(*PLRNN.from_arrays(A, W, h), 1, backend="cuda", settings=ScyfiSettings(n_outer=1, n_inner=4))
    assert ds.attrs["backend"] == "parallel" and ds.sizes["cycle"] == 1
    np.testing.assert_allclose(ds.points.values[0, 0], 2 * h, rtol=1e-12)


def test_auto_never_picks_the_simulator():
    ds = scyfi(*random_plrnn(0, 2), 1, backend="auto", **SMALL)
    assert ds.attrs["backend"] == "cpu"
