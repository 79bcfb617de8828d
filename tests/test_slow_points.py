"""The general slow-point finder against independent references.

* the saddle-node normal form map ``x -> x + h (x^2 + r)`` (with a contracting
  transverse direction): for r > 0 a ghost at x = 0 with speed h r, for r < 0
  fixed points at +-sqrt(-r) (a saddle and a stable node);
* the Henon map, whose fixed points and Jacobians are known in closed form;
* a tanh RNN: every fixed point satisfies F(x) = x, the set agrees with
  ``scipy.optimize.root`` run from the same starts, and the eigenvalues with
  ``numpy.linalg.eigvals`` of ``model.jacobian``;
* classification, deduplication, reproducibility, netCDF round trip and bad inputs.

Tolerances: locations of zeros 1e-12 (they are polished to machine precision),
ghost locations 1e-8 (the search stops near gamma = 1e-10), eigenvalues 1e-10.
"""

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.optimize
import xarray as xr

import plrnn_numba as pn
from plrnn_numba.dynamics.slow_points import SLOW_POINT_KINDS, START_STATUSES, slow_points
from plrnn_numba.models import Model, build_kernels, jacobian_kernel, step_kernel

FIXED, GHOST, SLOW = 0, 1, 2


# ---------------------------------------------------------------- test maps (step + Jacobian only)
@step_kernel
def saddle_node_step(p, meta, z, s, z_next):
    # x -> x + h (x^2 + r); the other components contract by 1/2
    r, h = p[0], p[1]
    for i in range(z.shape[0]):
        x = z[i, 0]
        z_next[i, 0] = x + h * (x * x + r)
        for j in range(1, z.shape[1]):
            z_next[i, j] = 0.5 * z[i, j]


@jacobian_kernel
def saddle_node_jacobian(p, meta, z, s, J):
    J[:, :] = 0.0
    J[0, 0] = 1.0 + 2.0 * p[1] * z[0]
    for j in range(1, z.shape[0]):
        J[j, j] = 0.5


@dataclass(frozen=True)
class SaddleNode(Model):
    dim: int = 2
    n_inputs: int = 0

    def param_shapes(self):
        return {"r": (), "h": ()}

    @property
    def kernels(self):
        return build_kernels(saddle_node_step, None, None, saddle_node_jacobian)


@step_kernel
def henon_step(p, meta, z, s, z_next):
    for i in range(z.shape[0]):
        x, y = z[i, 0], z[i, 1]
        z_next[i, 0] = 1.0 - p[0] * x * x + y
        z_next[i, 1] = p[1] * x


@jacobian_kernel
def henon_jacobian(p, meta, z, s, J):
    J[0, 0] = -2.0 * p[0] * z[0]
    J[0, 1] = 1.0
    J[1, 0] = p[1]
    J[1, 1] = 0.0


@dataclass(frozen=True)
class Henon(Model):
    dim: int = 2
    n_inputs: int = 0

    def param_shapes(self):
        return {"a": (), "b": ()}

    @property
    def kernels(self):
        return build_kernels(henon_step, None, None, henon_jacobian)


# ------------------------------------------------------------------------- saddle-node / ghost
@pytest.mark.parametrize("r", [1e-2, 1e-3, 1e-5])
def test_ghost_of_the_saddle_node_normal_form(r):
    h = 0.1
    ds = slow_points(SaddleNode(), np.array([r, h]), n_starts=64, seed=1)
    assert ds.sizes["point"] == 1
    assert int(ds["kind"][0]) == GHOST and ds.attrs["n_ghosts"] == 1
    np.testing.assert_allclose(ds["x"].values[0], [0.0, 0.0], atol=1e-8)
    np.testing.assert_allclose(float(ds["speed"][0]), h * r, rtol=1e-10)
    np.testing.assert_allclose(float(ds["q"][0]), 0.5 * (h * r) ** 2, rtol=1e-9)
    assert float(ds["gamma"][0]) <= 1e-9  # well inside ghost_tol (1e-6)
    # J_F has the eigenvalue 1 along the slow direction, 1/2 across: a transversally attracting ghost
    lam = np.sort(ds["eig_real"].values[0])
    np.testing.assert_allclose(lam, [0.5, 1.0], atol=1e-8)
    assert str(ds["stability"].values[0]) == "non-hyperbolic" and int(ds["n_unstable"][0]) == 0
    assert int(ds["n_hits"][0]) == 64 and np.all(ds["start_point"].values == 0)


def test_fixed_points_of_the_saddle_node_normal_form():
    r, h = -0.01, 0.1
    ds = slow_points(SaddleNode(), np.array([r, h]), n_starts=64, seed=2)
    assert ds.attrs["n_fixed_points"] == 2 and ds.attrs["n_ghosts"] == 0
    x = ds["x"].values
    order = np.argsort(x[:, 0])
    np.testing.assert_allclose(x[order], [[-0.1, 0.0], [0.1, 0.0]], atol=1e-14)
    assert np.all(ds["speed"].values <= 1e-15) and np.all(np.isnan(ds["gamma"].values))
    # J = diag(1 + 2 h x, 1/2): stable node at -sqrt(-r), saddle at +sqrt(-r)
    assert list(ds["stability"].values[order]) == ["stable node", "saddle"]
    lam = np.sort(ds["eig_real"].values[order], axis=1)
    np.testing.assert_allclose(lam, [[0.5, 0.98], [0.5, 1.02]], atol=1e-12)
    assert list(ds["n_unstable"].values[order]) == [0, 1]


def test_henon_fixed_points_and_eigenvalues_in_closed_form():
    a, b = 1.4, 0.3
    ds = slow_points(Henon(), np.array([a, b]), n_starts=128, seed=0, scale=2.0)
    xs = np.sort([(-(1 - b) + sgn * np.sqrt((1 - b) ** 2 + 4 * a)) / (2 * a) for sgn in (-1, 1)])
    fixed = ds["kind"].values == FIXED
    assert fixed.sum() == 2
    got = ds["x"].values[fixed]
    got = got[np.argsort(got[:, 0])]
    np.testing.assert_allclose(got, np.c_[xs, b * xs], atol=1e-12)
    for row, x in zip(np.flatnonzero(fixed)[np.argsort(ds["x"].values[fixed][:, 0])], xs):
        want = np.linalg.eigvals(np.array([[-2 * a * x, 1.0], [b, 0.0]]))
        lam = ds["eig_real"].values[row] + 1j * ds["eig_imag"].values[row]
        np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(want), atol=1e-10)
        assert str(ds["stability"].values[row]) == "saddle"


# ------------------------------------------------------------------------------- tanh RNN
@pytest.fixture(scope="module")
def rnn():
    model = pn.VanillaRNN(8)
    theta = model.init(2, g=2.5)
    return model, theta, slow_points(model, theta, n_starts=100, seed=2)


def test_rnn_fixed_points_are_fixed(rnn):
    model, theta, ds = rnn
    fixed = ds["x"].values[ds["kind"].values == FIXED]
    assert fixed.shape[0] == 5
    for x in fixed:
        assert np.linalg.norm(model.step(theta, x) - x) <= 1e-13 * max(1.0, np.linalg.norm(x))


def test_rnn_fixed_points_agree_with_scipy_root_from_the_same_starts(rnn):
    model, theta, ds = rnn
    M = model.dim
    fixed = ds["x"].values[ds["kind"].values == FIXED]
    roots = []
    for x0 in ds["starts"].values:
        sol = scipy.optimize.root(lambda x: model.step(theta, x) - x, x0,
                                  jac=lambda x: model.jacobian(theta, x) - np.eye(M), tol=1e-13)
        if sol.success and np.linalg.norm(model.step(theta, sol.x) - sol.x) < 1e-10:
            roots.append(sol.x)
    roots = np.array(roots)
    assert len(roots) >= 50
    # every root scipy finds is one of ours, and scipy finds every one of ours
    dist = np.max(np.abs(roots[:, None, :] - fixed[None, :, :]), axis=2)
    assert np.all(dist.min(axis=1) <= 1e-10)
    assert set(np.argmin(dist, axis=1)) == set(range(fixed.shape[0]))


def test_rnn_eigenvalues_and_stability(rnn):
    model, theta, ds = rnn
    for i in range(ds.sizes["point"]):
        want = np.linalg.eigvals(model.jacobian(theta, ds["x"].values[i]))
        lam = ds["eig_real"].values[i] + 1j * ds["eig_imag"].values[i]
        np.testing.assert_allclose(np.sort_complex(lam), np.sort_complex(want), atol=1e-10)
        assert np.all(np.diff(np.abs(lam)) <= 1e-12)  # by decreasing modulus
        n_out = int(np.sum(np.abs(want) > 1 + 1e-6))
        assert int(ds["n_unstable"].values[i]) == n_out
        want_class = "stable" if n_out == 0 else ("unstable" if n_out == model.dim else "saddle")
        assert want_class in str(ds["stability"].values[i])


def test_bookkeeping_of_starts_and_points(rnn):
    model, theta, ds = rnn
    sp = ds["start_point"].values
    assert ds.sizes["start"] == 100
    np.testing.assert_array_equal(np.bincount(sp[sp >= 0], minlength=ds.sizes["point"]), ds["n_hits"].values)
    assert int(ds["n_hits"].sum()) + ds.attrs["n_fast"] + ds.attrs["n_diverged"] == 100
    # the representative start of each point reached it
    np.testing.assert_array_equal(sp[ds["from_start"].values], np.arange(ds.sizes["point"]))
    assert set(np.unique(ds["start_status"].values)) <= set(range(len(START_STATUSES)))
    assert ds["kind"].attrs["flag_meanings"].split() == [k.replace(" ", "_") for k in SLOW_POINT_KINDS]
    # ordered by kind, then speed
    key = list(zip(ds["kind"].values, ds["speed"].values))
    assert key == sorted(key)


def test_driven_model_uses_the_constant_input():
    model = pn.VanillaRNN(5, n_inputs=2)
    theta = model.init(4, g=2.0)
    s = np.array([0.7, -0.4])
    ds = slow_points(model, theta, inputs=s, n_starts=32)
    assert ds.attrs["n_fixed_points"] >= 1
    for x in ds["x"].values[ds["kind"].values == FIXED]:
        np.testing.assert_allclose(model.step(theta, x, s), x, atol=1e-13)
        assert np.linalg.norm(model.step(theta, x, np.zeros(2)) - x) > 1e-3  # not the s = 0 fixed point


# ------------------------------------------------------------------------------ classification
def test_slow_points_fast_points_and_given_starts():
    # max_iter = 0: every start stays where it is; the classification alone decides
    h, r = 0.1, 0.001
    starts = np.array([[0.2, 0.0], [3.0, 0.0], [0.0, 0.0], [-0.2, 0.0]])
    ds = slow_points(SaddleNode(), np.array([r, h]), starts=starts, max_iter=0)
    # (0.2, 0): speed h (0.04 + r) = 0.0041 <= 1e-2, gamma = 2 h 0.2 = 0.04: a slow point (and its mirror)
    # (3, 0): speed 0.9: dropped; (0, 0): the ghost itself
    assert ds.attrs["n_fast"] == 1 and ds["start_point"].values[1] == -1
    assert list(ds["kind"].values) == [GHOST, SLOW, SLOW]
    np.testing.assert_allclose(ds["speed"].values, [h * r, h * (0.04 + r), h * (0.04 + r)], rtol=1e-12)
    np.testing.assert_allclose(ds["gamma"].values[1:], [0.04, 0.04], rtol=1e-12)
    np.testing.assert_array_equal(ds["starts"].values, starts)
    assert ds.attrs["seeds"] == "null"  # nothing was drawn
    # a looser slow_tol keeps the fast one as a slow point
    assert slow_points(SaddleNode(), np.array([r, h]), starts=starts, max_iter=0, slow_tol=1.0).attrs["n_fast"] == 0


def test_deduplication_keeps_the_best_kind():
    # many starts that reach the same two zeros give two points; a tolerance wider than their distance merges them
    r, h = -0.01, 0.1
    ds = slow_points(SaddleNode(), np.array([r, h]), n_starts=40, seed=3)
    assert ds.sizes["point"] == 2 and int(ds["n_hits"].sum()) == 40
    loose = slow_points(SaddleNode(), np.array([r, h]), n_starts=40, seed=3, dedup_tol=1.0)
    assert loose.sizes["point"] == 1 and int(loose["n_hits"][0]) == 40


def test_starts_around_states_and_reproducibility():
    model = pn.VanillaRNN(6)
    theta = model.init(0, g=2.0)
    traj = model.simulate(theta, np.full(6, 0.3), n_steps=50)
    a = slow_points(model, theta, around=traj, n_starts=20, scale=0.1, seed=5)
    b = slow_points(model, theta, around=traj[None], n_starts=20, scale=0.1, seed=5)
    xr.testing.assert_equal(a.drop_attrs(), b.drop_attrs())
    assert a.attrs["seeds"] == "5"
    # the starts are trajectory states plus noise of the given size
    d = np.min(np.linalg.norm(a["starts"].values[:, None] - traj[None], axis=2), axis=1)
    assert np.all(d < 0.1 * 6)
    c = slow_points(model, theta, around=traj, n_starts=20, seed=5)
    assert all(np.min(np.abs(traj - s).max(axis=1)) == 0 for s in c["starts"].values)
    # thread count does not change the result
    import numba

    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        d1 = slow_points(model, theta, around=traj, n_starts=20, scale=0.1, seed=5)
    finally:
        numba.set_num_threads(old)
    xr.testing.assert_equal(a.drop_attrs(), d1.drop_attrs())


def test_netcdf_round_trip(tmp_path):
    ds = slow_points(SaddleNode(), np.array([1e-3, 0.1]), n_starts=8)
    ds.to_netcdf(tmp_path / "sp.nc")
    with xr.open_dataset(tmp_path / "sp.nc") as back:
        xr.testing.assert_identical(back.load(), ds)


# ------------------------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"model": "rnn"}, TypeError, "model must be"),
        ({"theta": np.zeros(3)}, ValueError, "theta must be"),
        ({"inputs": np.ones(2)}, ValueError, "inputs"),
        ({"starts": np.ones((4, 3))}, ValueError, "starts must have shape"),
        ({"starts": np.ones((4, 2)), "n_starts": 4}, ValueError, "n_starts must be None"),
        ({"around": np.ones((4, 3))}, ValueError, "around must hold states"),
        ({"around": [[np.nan, 0.0]]}, ValueError, "around contains NaN"),
        ({"n_starts": 0}, ValueError, "n_starts must be >= 1"),
        ({"n_starts": 2.5}, TypeError, "n_starts must be an integer"),
        ({"scale": -1.0}, ValueError, "scale must be >= 0"),
        ({"seed": -1}, ValueError, "seed must be"),
        ({"max_iter": True}, TypeError, "max_iter must be an integer"),
        ({"fixed_tol": 0.0}, ValueError, "fixed_tol must be > 0"),
        ({"slow_tol": 1e-12}, ValueError, "slow_tol must be >= fixed_tol"),
        ({"ghost_tol": np.nan}, ValueError, "ghost_tol must be finite"),
        ({"dedup_tol": "1"}, TypeError, "dedup_tol must be a real number"),
        ({"step_tol": -1.0}, ValueError, "step_tol must be >= 0"),
        ({"tol_hyperbolic": -1.0}, ValueError, "tol_hyperbolic must be >= 0"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, exc, match):
    args = {"model": SaddleNode(), "theta": np.array([1e-3, 0.1])}
    args.update(kwargs)
    model, theta = args.pop("model"), args.pop("theta")
    with pytest.raises(exc, match=match):
        slow_points(model, theta, **args)
