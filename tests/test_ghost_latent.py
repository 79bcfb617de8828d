"""The latent circuit of low-rank rate networks: flow, fixed points, ghosts, and their tracking along training.

References: the latent map identity ``kappa_{t+1} = kappa_t + a f(kappa_t)`` on
simulations of :class:`RateRNN`; central finite differences for ``Df``; a dense
grid (300001 points) with ``scipy.optimize.brentq`` for the zeros and
``scipy.optimize.minimize_scalar`` for the minima of ``|f|``; a network built
so that its flow is ``f = -kappa + 2 tanh(kappa) + c``, with a ghost at
``kappa = -acosh(sqrt 2)`` of distance exactly ``c - c0`` (``c0 = sqrt 2 -
acosh(sqrt 2)``) for ``c > c0`` and two more fixed points for ``c < c0``; the
fixed points of the full network found by the general slow-point finder.
"""

import numpy as np
import pytest
import scipy.optimize
import xarray as xr

from plrnn_numba.dynamics.slow_points import slow_points
from plrnn_numba.ghost.latent import (
    LATENT_KINDS,
    latent_circuit,
    latent_flow,
    latent_flow_jacobian,
    latent_objects_along_training,
    latent_slow_points,
    low_rank_factors,
    rank_one_objects,
)
from plrnn_numba.models.rate import RateRNN
from plrnn_numba.models.vanilla import VanillaRNN

FIXED, GHOST = 0, 1
KAPPA_GHOST = -np.arccosh(np.sqrt(2.0))  # where f' = -1 + 2 sech^2 = 0 on the left
C0 = np.sqrt(2.0) - np.arccosh(np.sqrt(2.0))  # c at the saddle-node: f(KAPPA_GHOST) = c - C0


def saddle_node_factors(r: float, N: int = 6, seed: int = 0):
    """m, n, b with latent flow f = -kappa + 2 tanh(kappa) + (C0 + r) (other units have n_i = 0)."""
    rng = np.random.default_rng(seed)
    m, n, b = rng.normal(size=N), np.zeros(N), rng.normal(size=N)
    m[0], n[0], b[0] = 1.0, 2.0, 0.0  # 2 tanh(kappa)
    m[1], n[1], b[1] = 0.0, 1.0, np.arctanh(C0 + r)  # the constant c = tanh(b_1)
    return m, n, b


def random_factors(seed: int, N: int = 20):
    rng = np.random.default_rng(seed)
    m = rng.normal(0, 1, N)
    return m, 4 * m / N + rng.normal(0, 1 / np.sqrt(N), N), rng.normal(0, 1, N)


# -------------------------------------------------------------------------------- the flow
@pytest.mark.parametrize("rank", [1, 3])
def test_latent_map_of_the_rate_network(rank):
    # kappa = n x of a simulated RateRNN follows kappa + a f(kappa), the Euler step of the latent flow
    model = RateRNN(12, n_inputs=2, rank=rank, alpha=0.3)
    theta = model.init(1, scale=2.0, b_scale=0.5)
    u = np.array([0.4, -0.2])
    m, n, b_eff = low_rank_factors(model, theta, inputs=u)
    X = model.simulate(theta, np.random.default_rng(0).normal(size=12), inputs=np.tile(u, (30, 1)))
    kappa = X @ n.T
    want = kappa[:-1] + model.alpha * latent_flow(kappa[:-1], m, n, b_eff)
    np.testing.assert_allclose(kappa[1:], want, atol=1e-13)
    d = model.unpack(theta)
    np.testing.assert_allclose(b_eff, d["b"] + d["V"] @ u)


def test_flow_and_jacobian_against_formula_and_finite_differences():
    rng = np.random.default_rng(3)
    N, R = 9, 2
    m, n, b = rng.normal(size=(N, R)), rng.normal(size=(R, N)) / 3, rng.normal(size=N)
    k = rng.normal(size=(4, R))
    f = latent_flow(k, m, n, b)
    np.testing.assert_allclose(f, [-kk + n @ np.tanh(m @ kk + b) for kk in k], atol=1e-14)
    D = latent_flow_jacobian(k, m, n, b)
    h = 1e-6
    for i, kk in enumerate(k):
        fd = np.column_stack([(latent_flow(kk + h * e, m, n, b) - latent_flow(kk - h * e, m, n, b)) / (2 * h)
                              for e in np.eye(R)])
        np.testing.assert_allclose(D[i], fd, atol=1e-8)
    # rank one with vectors: elementwise in kappa, any shape
    m1, n1, b1 = random_factors(0)
    kk = np.linspace(-3, 3, 12).reshape(3, 4)
    np.testing.assert_allclose(latent_flow(kk, m1, n1, b1), -kk + np.tanh(kk[..., None] * m1 + b1) @ n1, atol=1e-14)
    fd = (latent_flow(kk + h, m1, n1, b1) - latent_flow(kk - h, m1, n1, b1)) / (2 * h)
    np.testing.assert_allclose(latent_flow_jacobian(kk, m1, n1, b1), fd, atol=1e-8)


# ------------------------------------------------------------------------------- rank one
@pytest.mark.parametrize("seed", range(6))
def test_rank_one_objects_match_a_dense_grid_with_brentq(seed):
    m, n, b = random_factors(seed)
    f = lambda k: -k + np.tanh(np.multiply.outer(k, m) + b) @ n  # noqa: E731
    g = np.linspace(-15, 15, 300001)
    fg = f(g)
    roots = [scipy.optimize.brentq(f, g[i], g[i + 1], xtol=1e-15, rtol=8.9e-16)
             for i in np.flatnonzero(fg[:-1] * fg[1:] < 0)]
    a = np.abs(fg)
    inner = (a[1:-1] < a[:-2]) & (a[1:-1] < a[2:]) & (fg[1:-1] * fg[:-2] > 0) & (fg[1:-1] * fg[2:] > 0)
    ghosts = [scipy.optimize.minimize_scalar(lambda k: abs(f(k)), bounds=(g[i - 1], g[i + 1]), method="bounded",
                                             options={"xatol": 1e-12}).x for i in np.flatnonzero(inner) + 1]
    ds = rank_one_objects(m, n, b)
    kind, kappa = ds["kind"].values, ds["kappa"].values[:, 0]
    assert (ds.attrs["n_fixed_points"], ds.attrs["n_ghosts"]) == (len(roots), len(ghosts))
    np.testing.assert_allclose(kappa[kind == FIXED], roots, rtol=0, atol=4e-15 * 15)
    np.testing.assert_allclose(kappa[kind == GHOST], ghosts, atol=1e-6)  # |f| fixes its minimum to ~sqrt(eps)
    np.testing.assert_allclose(ds["distance"].values[kind == GHOST], np.abs(f(np.array(ghosts))), rtol=1e-10)
    np.testing.assert_allclose(ds["distance"].values[kind == FIXED], 0.0, atol=1e-14)
    # stability from the slope
    slope = ds["eig_real"].values[:, 0]
    want = np.where(slope < 0, "stable node", "unstable node")
    np.testing.assert_array_equal(ds["stability"].values[kind == FIXED], want[kind == FIXED])
    np.testing.assert_allclose(ds["grid_flow"].values, f(np.linspace(-15, 15, 1000)), atol=1e-14)


@pytest.mark.parametrize("r", [1e-2, 1e-4, 1e-7])
def test_constructed_saddle_node_ghost(r):
    ds = rank_one_objects(*saddle_node_factors(r))
    assert ds.attrs["n_ghosts"] == 1 and ds.attrs["n_fixed_points"] == 1
    ghost = ds.sel(object=ds["kind"] == GHOST)
    np.testing.assert_allclose(float(ghost["kappa"].values[0, 0]), KAPPA_GHOST, atol=1e-14)
    np.testing.assert_allclose(float(ghost["distance"][0]), r, rtol=1e-7, atol=1e-15)
    assert float(ghost["flow"].values[0, 0]) > 0 and abs(float(ghost["eig_real"].values[0, 0])) < 1e-14
    assert str(ghost["stability"].values[0]) == "non-hyperbolic"
    # the one fixed point: the right branch, stable
    fp = ds.sel(object=ds["kind"] == FIXED)
    k = float(fp["kappa"].values[0, 0])
    assert k > 2 and abs(-k + 2 * np.tanh(k) + C0 + r) <= 1e-15 and str(fp["stability"].values[0]) == "stable node"


@pytest.mark.parametrize("r", [-1e-3, -1e-6])
def test_before_and_at_the_saddle_node(r):
    # r = -1e-6: the pair of zeros is 2.4e-3 apart, inside one grid cell (0.03): a sign count on the grid
    # alone would miss it, the inserted extremum brackets both
    ds = rank_one_objects(*saddle_node_factors(r))
    assert ds.attrs["n_ghosts"] == 0 and ds.attrs["n_fixed_points"] == 3
    k = ds["kappa"].values[:, 0]
    f = lambda x: -x + 2 * np.tanh(x) + C0 + r  # noqa: E731
    for lo, hi in ((-2.0, KAPPA_GHOST), (KAPPA_GHOST, 0.0), (2.0, 3.0)):
        ref = scipy.optimize.brentq(f, lo, hi, xtol=1e-15, rtol=8.9e-16)
        assert np.min(np.abs(k - ref)) <= 1e-14
    assert list(ds["stability"].values) == ["stable node", "unstable node", "stable node"]
    # exactly at the bifurcation: the tangential zero is one non-hyperbolic fixed point, not a ghost
    at = rank_one_objects(*saddle_node_factors(0.0))
    assert at.attrs["n_ghosts"] == 0 and at.attrs["n_fixed_points"] == 2
    tangent = np.argmin(np.abs(at["kappa"].values[:, 0] - KAPPA_GHOST))
    assert str(at["stability"].values[tangent]) == "non-hyperbolic"


def test_grid_settings_and_max_distance():
    m, n, b = saddle_node_factors(0.05)
    assert rank_one_objects(m, n, b, max_distance=0.01).attrs["n_ghosts"] == 0
    assert rank_one_objects(m, n, b, max_distance=0.1).attrs["n_ghosts"] == 1
    # a range that excludes the right fixed point sees only the ghost
    ds = rank_one_objects(m, n, b, kappa_range=(-5.0, 1.0), n_grid=50)
    assert (ds.attrs["n_fixed_points"], ds.attrs["n_ghosts"]) == (0, 1) and ds.sizes["grid"] == 50
    # nothing in range: empty object dims, here and along training
    assert rank_one_objects(m, n, b, kappa_range=(20.0, 30.0)).sizes["object"] == 0
    model = RateRNN(6, rank=1)
    empty = latent_objects_along_training(model, _history(model, [0.05, 0.1]), kappa_range=(20.0, 30.0))
    assert empty.sizes["object"] == 0 and np.all(np.isnan(empty["min_ghost_distance"].values))
    # (N, 1) and (1, N) factors are the same network
    xr.testing.assert_allclose(ds.drop_attrs(),
                               rank_one_objects(m[:, None], n[None, :], b, kappa_range=(-5, 1), n_grid=50).drop_attrs())


# ------------------------------------------------------------------------ rank R: many starts
def test_latent_slow_points_rank_one_agrees_with_the_grid():
    for r in (1e-3, -1e-2):
        grid = rank_one_objects(*saddle_node_factors(r))
        sp = latent_slow_points(*saddle_node_factors(r), n_starts=200)
        np.testing.assert_array_equal(sp["kind"].values, grid["kind"].values)
        np.testing.assert_allclose(sp["kappa"].values, grid["kappa"].values, atol=1e-8)
        np.testing.assert_allclose(sp["distance"].values, grid["distance"].values, atol=1e-14, rtol=1e-9)
        np.testing.assert_array_equal(sp["stability"].values, grid["stability"].values)


def test_rank_two_decoupled_flow():
    # units 0, 1 drive kappa_1 (the saddle-node flow), unit 2 drives kappa_2 = -kappa_2 + 0.5 tanh(kappa_2)
    r = 2e-3
    m1, n1, b1 = saddle_node_factors(r, N=2)
    N = 3
    m = np.zeros((N, 2))
    n = np.zeros((2, N))
    b = np.zeros(N)
    m[:2, 0], n[0, :2], b[:2] = m1[:2], n1[:2], b1[:2]
    m[2, 1], n[1, 2] = 1.0, 0.5
    ds = latent_slow_points(m, n, b, n_starts=300, seed=1)
    k_fixed = scipy.optimize.brentq(lambda x: -x + 2 * np.tanh(x) + C0 + r, 2.0, 3.0, xtol=1e-15, rtol=8.9e-16)
    assert (ds.attrs["n_fixed_points"], ds.attrs["n_ghosts"]) == (1, 1)
    fp = ds.sel(object=ds["kind"] == FIXED)
    np.testing.assert_allclose(fp["kappa"].values[0], [k_fixed, 0.0], atol=1e-13)
    assert str(fp["stability"].values[0]) == "stable node"
    gh = ds.sel(object=ds["kind"] == GHOST)
    np.testing.assert_allclose(gh["kappa"].values[0], [KAPPA_GHOST, 0.0], atol=1e-7)
    np.testing.assert_allclose(float(gh["distance"][0]), r, rtol=1e-8)
    # Df at the ghost: 0 along kappa_1 (the slow direction), -1 + 0.5 across
    np.testing.assert_allclose(np.sort(gh["eig_real"].values[0]), [-0.5, 0.0], atol=1e-7)


# ----------------------------------------------------------------------------- from a model
def test_latent_circuit_of_a_rate_network_and_its_full_fixed_points():
    N = 6
    model = RateRNN(N, rank=1)
    m, n, b = saddle_node_factors(-1e-2, N=N)
    theta = model.pack(m=m, n=n, b=b)
    ds = latent_circuit(model, theta)
    assert ds.attrs["method"] == "grid" and ds.attrs["alpha"] == 0.5
    xr.testing.assert_allclose(ds.drop_attrs(), rank_one_objects(m, n, b).drop_attrs())
    # every latent fixed point is a fixed point x* = tanh(m kappa* + b) of the network, and the general finder
    # on the full N-dim map finds exactly these (kappa* = n . x*)
    kappa = ds["kappa"].values[:, 0]
    for k in kappa:
        x = np.tanh(m * k + b)
        np.testing.assert_allclose(model.step(theta, x), x, atol=1e-15)
    full = slow_points(model, theta, n_starts=200, seed=0)
    fixed = full["x"].values[full["kind"].values == FIXED]
    np.testing.assert_allclose(np.sort(fixed @ n), np.sort(kappa), atol=1e-12)
    # ... and with a ghost (r > 0) the full map has a ghost at the same kappa
    m, n, b = saddle_node_factors(1e-3, N=N)
    full = slow_points(model, model.pack(m=m, n=n, b=b), n_starts=100, seed=0)
    gh = full["x"].values[full["kind"].values == GHOST]
    np.testing.assert_allclose(gh @ n, [KAPPA_GHOST], atol=1e-7)


def test_inputs_fold_into_the_bias():
    model = RateRNN(8, n_inputs=1, rank=1)
    theta = model.init(2, scale=3.0)
    u = np.array([0.8])
    m, n, b = low_rank_factors(model, theta, u)
    ds = latent_circuit(model, theta, inputs=u)
    xr.testing.assert_allclose(ds.drop_attrs(), rank_one_objects(m, n, b).drop_attrs())
    assert not np.allclose(ds["kappa"].values, latent_circuit(model, theta)["kappa"].values)


def test_rank_two_model_uses_the_slow_point_search():
    model = RateRNN(10, rank=2)
    theta = model.init(0, scale=2.5, b_scale=0.3)
    ds = latent_circuit(model, theta, n_starts=200)
    assert ds.attrs["method"] == "slow_points" and ds.sizes["latent"] == 2
    m, n, b = low_rank_factors(model, theta)
    fixed = ds["kappa"].values[ds["kind"].values == FIXED]
    assert fixed.shape[0] >= 1
    np.testing.assert_allclose(latent_flow(fixed, m, n, b), 0.0, atol=1e-12)


# -------------------------------------------------------------------------- along training
def _history(model, rs, N=6):
    thetas = np.stack([model.pack(**dict(zip("mnb", saddle_node_factors(r, N=N)))) for r in rs])
    return xr.Dataset({"theta_snapshots": (("snapshot", "param"), thetas),
                       "snapshot_epoch": ("snapshot", 100.0 * np.arange(len(rs)))})


@pytest.mark.parametrize("method", ["grid", "slow_points"])
def test_objects_along_training_see_the_ghost_appear(method, tmp_path):
    model = RateRNN(6, rank=1)
    rs = np.array([-0.02, -0.01, 0.005, 0.01, 0.02])
    ds = latent_objects_along_training(model, _history(model, rs), method=method, n_starts=100)
    assert ds["kappa"].dims == ("epoch", "object", "latent")
    np.testing.assert_array_equal(ds["epoch"].values, 100.0 * np.arange(5))
    np.testing.assert_array_equal(ds["n_fixed_points"].values, [3, 3, 1, 1, 1])
    np.testing.assert_array_equal(ds["n_ghosts"].values, [0, 0, 1, 1, 1])
    np.testing.assert_allclose(ds["min_ghost_distance"].values, [np.nan, np.nan, 0.005, 0.01, 0.02], rtol=1e-8)
    # padding of the object slots
    assert ds.sizes["object"] == 3 and np.all(ds["kind"].values[2:, 2] == -1)
    assert np.all(np.isnan(ds["kappa"].values[2:, 2])) and ds["stability"].values[2, 2] == ""
    assert ds["kind"].attrs["flag_meanings"].split() == [k.replace(" ", "_") for k in LATENT_KINDS]
    assert ("grid_flow" in ds) == (method == "grid")
    ds.to_netcdf(tmp_path / "latent.nc")
    with xr.open_dataset(tmp_path / "latent.nc") as back:
        xr.testing.assert_identical(back.load(), ds)


# ------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: latent_flow(0.0, np.ones(3), np.ones(4), np.zeros(3)), ValueError, "n must have shape"),
        (lambda: latent_flow(0.0, np.ones(3), np.ones(3), np.zeros(2)), ValueError, "b must have shape"),
        (lambda: latent_flow(np.zeros(3), np.ones((3, 2)), np.ones((2, 3)), np.zeros(3)), ValueError, "kappa must"),
        (lambda: latent_flow(0.0, ["a"], np.ones(1), np.zeros(1)), TypeError, "m must be"),
        (lambda: latent_flow(0.0, np.ones(2), np.array([1.0, np.inf]), np.zeros(2)), ValueError, "n contains NaN"),
        (lambda: rank_one_objects(np.ones((3, 2)), np.ones((2, 3)), np.zeros(3)), ValueError, "rank one"),
        (lambda: rank_one_objects(*saddle_node_factors(0.1), kappa_range=(1, -1)), ValueError, "kappa_range"),
        (lambda: rank_one_objects(*saddle_node_factors(0.1), kappa_range=3), TypeError, "kappa_range"),
        (lambda: rank_one_objects(*saddle_node_factors(0.1), n_grid=2), ValueError, "n_grid must be >= 3"),
        (lambda: rank_one_objects(*saddle_node_factors(0.1), max_distance=-1.0), ValueError, "max_distance"),
        (lambda: rank_one_objects(*saddle_node_factors(0.1), max_distance="1"), TypeError, "max_distance"),
        (lambda: rank_one_objects(*saddle_node_factors(0.1), zero_tol=-1.0), ValueError, "zero_tol"),
        (lambda: latent_slow_points(*saddle_node_factors(0.1), n_starts=0), ValueError, "n_starts"),
        (lambda: latent_slow_points(*saddle_node_factors(0.1), seed=1.5), TypeError, "seed"),
        (lambda: latent_slow_points(*saddle_node_factors(0.1), ghost_tol=0.0), ValueError, "ghost_tol"),
        (lambda: latent_circuit("model", np.zeros(3)), TypeError, "model must be"),
        (lambda: latent_circuit(VanillaRNN(3), VanillaRNN(3).init(0)), TypeError, "model must be a low-rank"),
        (lambda: latent_circuit(RateRNN(3), RateRNN(3).init(0)), TypeError, "model must be a low-rank"),
        (lambda: latent_circuit(RateRNN(3, rank=1), np.zeros(2)), ValueError, "theta must be"),
        (lambda: latent_circuit(RateRNN(3, rank=1), RateRNN(3, rank=1).init(0), method="newton"), ValueError,
         "method must be one of"),
        (lambda: latent_circuit(RateRNN(4, rank=2), RateRNN(4, rank=2).init(0), method="grid"), ValueError,
         "method='grid' needs a rank-one model"),
        (lambda: latent_circuit(RateRNN(3, rank=1), RateRNN(3, rank=1).init(0), inputs=[1.0]), ValueError,
         "inputs"),
        (lambda: latent_objects_along_training(RateRNN(3, rank=1), {"theta": 1}), TypeError, "history must be"),
        (lambda: latent_objects_along_training(RateRNN(3, rank=1), _history(RateRNN(6, rank=1), [0.1])),
         ValueError, "theta_snapshots"),
    ],
)
def test_bad_inputs_name_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
