"""Lyapunov spectra against known values (one tolerance per kind of check); seeds and input shapes."""

import json

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba.dynamics.lyapunov import lyapunov_spectrum

from .test_custom_model import Henon

EXACT_ATOL = 1e-12  # linear maps: the QR estimate is exact up to rounding
KNOWN_ATOL = 1e-2  # chaotic maps: finite-time estimates against literature values


def test_linear_map_is_exact():
    model = pn.PLRNN(2, full_W=True)
    theta = model.pack(A=[1.1, 0.8], W=np.zeros((2, 2)), h=[0.0, 0.0])
    # the orthonormal-system transient aligns Q with the eigenvectors ((0.8/1.1)^120 ~ 1e-17)
    ds = lyapunov_spectrum(model, theta, n_steps=200, n_transient=0, n_transient_ons=120, t_ons=5)
    np.testing.assert_allclose(ds["mean"].values, [np.log(1.1), np.log(0.8)], atol=EXACT_ATOL)


def test_tent_map_plrnn_has_lyapunov_ln2():
    # z' = 1 - 2|z| on [-1, 1]: a 1-D PLRNN with A = 2 (z <= 0), A + W = -2 (z > 0), h = 1
    model = pn.PLRNN(1, full_W=True)
    theta = model.pack(A=[2.0], W=[[-4.0]], h=[1.0])
    ds = lyapunov_spectrum(model, theta, n_steps=2000, z0=[0.1234])
    np.testing.assert_allclose(ds["mean"].values, [np.log(2.0)], atol=EXACT_ATOL)


def test_henon_spectrum_and_sum_rule():
    model = Henon()
    ds = lyapunov_spectrum(model, model.init(), n_steps=100_000, z0=[0.1, 0.1], trace=True)
    np.testing.assert_allclose(ds["mean"].values, [0.4199, -1.6240], atol=KNOWN_ATOL)
    # the sum equals the mean log|det J| = log 0.3 exactly for the Henon map
    assert ds["mean"].values.sum() == pytest.approx(np.log(0.3), abs=1e-9)
    assert ds["trace"].shape[1] > 100 and np.isfinite(ds["trace"].values[0, -1]).all()


def test_plrnn_and_vanilla_agree_with_numpy_reference():
    for model in (pn.PLRNN(4), pn.VanillaRNN(4, nonlinearity="tanh")):
        theta = model.init(1) if isinstance(model, pn.PLRNN) else model.init(1, g=2.0)
        z0 = np.full(model.dim, 0.3)
        ds = lyapunov_spectrum(model, theta, n_steps=500, n_transient=50, n_transient_ons=0, t_ons=1, z0=z0, seed=3)
        # independent reference: plain NumPy/SciPy QR iteration from the same start
        import scipy.linalg

        rng = np.random.default_rng(3)
        q, r = np.linalg.qr(rng.standard_normal((model.dim, model.dim)))
        Q = q * np.sign(np.diag(r))
        z = z0.copy()
        for _ in range(50):
            z = model.step(theta, z)
        sums = np.zeros(model.dim)
        for _ in range(500):
            Q, R = scipy.linalg.qr(model.jacobian(theta, z) @ Q)
            d = np.sign(np.diag(R))
            Q, R = Q * d, (R.T * d).T
            sums += np.log(np.diag(R))
            z = model.step(theta, z)
        np.testing.assert_allclose(ds["mean"].values, np.sort(sums / 500)[::-1], atol=1e-10)


def test_driven_system_and_batch_of_initial_conditions():
    model = pn.VanillaRNN(5, n_inputs=1)
    theta = model.init(0, g=1.5)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1100 + 100 + 500, 1))
    ds = lyapunov_spectrum(model, theta, k=3, n_steps=500, n_transient=1100, inputs=x, n_init=4)
    assert ds["exponents"].shape == (4, 3)
    assert np.all(np.diff(ds["mean"].values) <= 0)
    # a common input drives all initial conditions to the same spectrum
    assert ds["std"].values.max() < 1e-6


def test_diverging_trajectory_is_flagged_not_raised(tmp_path):
    model = pn.PLRNN(2, full_W=True)
    theta = model.pack(A=[3.0, 3.0], W=np.zeros((2, 2)), h=[1.0, 1.0])
    ds = lyapunov_spectrum(model, theta, n_steps=2000, n_init=2)
    assert ds["diverged"].values.tolist() == [1, 1]
    assert np.isnan(ds["exponents"].values).all()
    back = pn.io.open(pn.io.save(ds, tmp_path / "l.nc"))
    np.testing.assert_array_equal(back["diverged"].values, ds["diverged"].values)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"k": 5}, "k must be <="), ({"t_ons": 0}, "t_ons must be >= 1"), ({"n_steps": 0}, "n_steps must be >= 1")],
)
def test_bad_input(kwargs, match):
    model = pn.PLRNN(3)
    with pytest.raises(ValueError, match=match):
        lyapunov_spectrum(model, model.init(0), **kwargs)
    with pytest.raises(ValueError, match="theta contains NaN"):
        lyapunov_spectrum(model, np.full(model.n_params, np.nan))


@pytest.mark.parametrize("seed", [None, "generator"], ids=["None", "Generator"])
def test_seed_none_or_generator_is_recorded_and_repeats_the_run(seed):
    model = pn.VanillaRNN(4)
    theta = model.init(0, g=2.0)
    seed = np.random.default_rng(2) if seed == "generator" else seed
    a = lyapunov_spectrum(model, theta, n_steps=200, n_transient=20, n_init=2, seed=seed)
    recorded = json.loads(a.attrs["seeds"])
    assert isinstance(recorded, int) and 0 <= recorded < 2**63
    b = lyapunov_spectrum(model, theta, n_steps=200, n_transient=20, n_init=2, seed=recorded)
    np.testing.assert_array_equal(a["exponents"].values, b["exponents"].values)
    assert json.loads(lyapunov_spectrum(model, theta, n_steps=10, seed=3).attrs["seeds"]) == 3


def test_constant_and_shared_inputs_equal_the_explicit_batch_form():
    model = pn.VanillaRNN(4, n_inputs=2)
    theta = model.init(0, g=1.5)
    n_total = 10 + 5 + 100
    kw = dict(k=3, n_steps=100, n_transient=10, n_transient_ons=5, n_init=3, seed=1)
    s = np.array([0.5, -0.1])
    ref = lyapunov_spectrum(model, theta, inputs=np.broadcast_to(s, (3, n_total, 2)), **kw)
    np.testing.assert_array_equal(lyapunov_spectrum(model, theta, inputs=s, **kw)["exponents"].values,
                                  ref["exponents"].values)
    stream = np.random.default_rng(0).normal(size=(n_total, 2))
    ref = lyapunov_spectrum(model, theta, inputs=np.broadcast_to(stream, (3, n_total, 2)), **kw)
    np.testing.assert_array_equal(lyapunov_spectrum(model, theta, inputs=stream, **kw)["exponents"].values,
                                  ref["exponents"].values)
    with pytest.raises(ValueError, match=r"inputs must have shape \(2,\) \(constant\)"):
        lyapunov_spectrum(model, theta, inputs=np.zeros(3), **kw)


def test_parallel_initial_conditions_equal_serial():
    model = pn.VanillaRNN(12)
    theta = model.init(0, g=2.0)
    a, b = (pn.dynamics.lyapunov_spectrum(model, theta, k=4, n_steps=300, n_transient=50, n_transient_ons=20,
                                          n_init=3, seed=1, n_threads=n) for n in (1, 2))
    np.testing.assert_array_equal(a["exponents"].values, b["exponents"].values)
    with pytest.raises(ValueError, match="n_threads"):
        pn.dynamics.lyapunov_spectrum(model, theta, k=2, n_steps=10, n_threads=-1)


def test_results_of_the_same_layout_are_independent(tmp_path):
    # Datasets of one layout are copies of a cached template with each call's own data and attributes
    model = pn.VanillaRNN(6)
    theta = model.init(0, g=2.0)
    kw = dict(k=2, n_steps=300, n_init=2, trace=True)
    a = pn.dynamics.lyapunov_spectrum(model, theta, seed=1, **kw)
    b = pn.dynamics.lyapunov_spectrum(model, theta, seed=2, **kw)
    assert a is not b and a.attrs["seeds"] != b.attrs["seeds"]
    assert not np.array_equal(a["exponents"].values, b["exponents"].values)
    assert a["exponents"].values.flags.writeable
    kept = b["exponents"].values.copy()
    a["exponents"].values[:] = 0.0
    a["exponents"].attrs["note"] = "changed"
    a.attrs["note"] = "changed"
    c = pn.dynamics.lyapunov_spectrum(model, theta, seed=2, **kw)
    np.testing.assert_array_equal(b["exponents"].values, kept)
    np.testing.assert_array_equal(c["exponents"].values, kept)
    assert "note" not in c["exponents"].attrs and "note" not in c.attrs
    # the same Dataset as the constructor makes, through netCDF too
    built = xr.Dataset({name: (v.dims, v.values, v.attrs) for name, v in c.data_vars.items()},
                       coords={name: (v.dims, v.values, v.attrs) for name, v in c.coords.items()}, attrs=c.attrs)
    xr.testing.assert_identical(c, built)
    back = pn.io.open(pn.io.save(c, tmp_path / "spectrum.nc"))
    xr.testing.assert_allclose(back, c)
