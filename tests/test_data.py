"""Tests for plrnn_numba.data: Lorenz-63 and Hodgkin-Huxley training data."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from plrnn_numba import io
from plrnn_numba.data import (
    HHParameters,
    as_array,
    delay_embed,
    hh_rates,
    hh_steady_state,
    hodgkin_huxley,
    lorenz63,
    lorenz63_jacobian,
    lorenz63_rhs,
)

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0


@pytest.fixture(scope="module")
def lorenz_raw():
    return lorenz63(1500, seed=1, transient=100, standardize=False)


@pytest.fixture(scope="module")
def hh_dc():
    """1 s of the classic model at a DC step of 10 uA/cm^2, no noise."""
    return hodgkin_huxley(1000.0, current=10.0, noise_std=0.0, seed=0)


# ------------------------------------------------------------------ Lorenz-63


def test_lorenz_shape_dims_coords_attrs():
    ds = lorenz63(100, seed=0)
    assert ds["x"].dims == ("time", "channel")
    assert ds["x"].shape == (100, 3)
    assert ds["x"].dtype == np.float64
    assert list(ds["channel"].values) == ["x", "y", "z"]
    assert ds["time"].attrs["units"] == "model time units"
    for name in ("x", "x_mean", "x_std", "time", "channel"):
        assert ds[name].attrs["long_name"]
        assert "units" in ds[name].attrs
    for key in (
        "sigma",
        "rho",
        "beta",
        "dt",
        "subsample",
        "transient",
        "standardized",
        "noise_std",
        "seed",
        "producer",
        "arguments",
        "seeds",
        "versions",
        "history",
    ):
        assert key in ds.attrs, key
    assert ds.attrs["producer"] == "plrnn_numba.data.lorenz63"
    assert ds.attrs["standardized"] == 1
    assert ds.attrs["seed"] == 0
    assert (ds.attrs["sigma"], ds.attrs["rho"], ds.attrs["beta"]) == (SIGMA, RHO, BETA)
    # time of sample k is (transient + k) * dt
    np.testing.assert_allclose(ds["time"].values, (1000 + np.arange(100)) * 0.01, rtol=0, atol=1e-12)


def test_lorenz_standardization_and_undo(lorenz_raw):
    ds = lorenz63(1500, seed=1, transient=100)
    x = ds["x"].values
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(x.std(axis=0), 1.0, atol=1e-12)
    raw = x * ds["x_std"].values + ds["x_mean"].values
    np.testing.assert_allclose(raw, lorenz_raw["x"].values, rtol=0, atol=1e-10)
    assert lorenz_raw.attrs["standardized"] == 0
    np.testing.assert_array_equal(lorenz_raw["x_mean"].values, 0.0)
    np.testing.assert_array_equal(lorenz_raw["x_std"].values, 1.0)


def test_lorenz_deterministic_with_seed():
    a = lorenz63(300, seed=7, noise_std=0.1, transient=100)
    b = lorenz63(300, seed=7, noise_std=0.1, transient=100)
    c = lorenz63(300, seed=8, noise_std=0.1, transient=100)
    np.testing.assert_array_equal(a["x"].values, b["x"].values)
    np.testing.assert_array_equal(a.attrs["x0"], b.attrs["x0"])
    assert not np.allclose(a["x"].values, c["x"].values)
    # seed None: a seed is drawn and recorded, and it reproduces the data (so does a Generator)
    d = lorenz63(300, noise_std=0.1, transient=100, seed=None)
    e = lorenz63(300, noise_std=0.1, transient=100, seed=d.attrs["seed"])
    np.testing.assert_array_equal(d["x"].values, e["x"].values)
    g = lorenz63(300, noise_std=0.1, transient=100, seed=np.random.default_rng(1))
    h = lorenz63(300, noise_std=0.1, transient=100, seed=g.attrs["seed"])
    np.testing.assert_array_equal(g["x"].values, h["x"].values)


def test_lorenz_sample_spacing():
    x0 = [1.0, 2.0, 20.0]
    fine = lorenz63(500, dt=0.01, subsample=1, transient=100, x0=x0, standardize=False)
    coarse = lorenz63(100, dt=0.01, subsample=5, transient=100, x0=x0, standardize=False)
    dtime = np.diff(coarse["time"].values)
    np.testing.assert_allclose(dtime, 0.05, rtol=0, atol=1e-12)
    assert coarse.attrs["sample_spacing"] == pytest.approx(0.05)
    np.testing.assert_allclose(coarse["time"].values, fine["time"].values[::5], atol=1e-12)
    # same states at the same times, whatever the output grid
    np.testing.assert_allclose(coarse["x"].values, fine["x"].values[::5], rtol=0, atol=1e-8)


def test_lorenz_stays_on_attractor(lorenz_raw):
    x = lorenz_raw["x"].values
    assert np.all(np.isfinite(x))
    assert np.abs(x[:, 0]).max() < 25 and np.abs(x[:, 1]).max() < 32
    assert 0 < x[:, 2].min() and x[:, 2].max() < 55
    # both lobes visited: x and y change sign, several times
    for c in (0, 1):
        assert (x[:, c] > 0).any() and (x[:, c] < 0).any()
    switches = np.count_nonzero(np.diff(np.sign(x[:, 0])))
    assert switches >= 4
    frac_right = np.mean(x[:, 0] > 0)
    assert 0.15 < frac_right < 0.85


@pytest.mark.parametrize("params", [(SIGMA, RHO, BETA), (16.0, 45.92, 4.0), (3.0, 0.5, 1.0)])
def test_lorenz_jacobian_matches_finite_differences(params):
    rng = np.random.default_rng(0)
    pts = rng.normal(scale=[8.0, 9.0, 9.0], size=(20, 3)) + [0.0, 0.0, 24.0]
    h = 1e-6
    for u in pts:
        J = lorenz63_jacobian(u, *params)
        fd = np.empty((3, 3))
        for j in range(3):
            e = np.zeros(3)
            e[j] = h
            fd[:, j] = (lorenz63_rhs(u + e, *params) - lorenz63_rhs(u - e, *params)) / (2 * h)
        np.testing.assert_allclose(J, fd, rtol=1e-7, atol=1e-6)
    # batched evaluation agrees with pointwise
    np.testing.assert_allclose(lorenz63_jacobian(pts, *params)[3], lorenz63_jacobian(pts[3], *params))
    np.testing.assert_allclose(lorenz63_rhs(pts, *params)[5], lorenz63_rhs(pts[5], *params))
    # known value: trace (= sum of Lyapunov exponents) is -(sigma + 1 + beta) everywhere
    sigma, _, beta = params
    np.testing.assert_allclose(
        np.trace(lorenz63_jacobian(pts, *params), axis1=-2, axis2=-1), -(sigma + 1 + beta), rtol=1e-14
    )


def test_lorenz_volume_contraction_sum_of_exponents():
    """Liouville: det of the tangent flow is exp(-(sigma+1+beta) t); log det / t is the
    sum of the Lyapunov exponents, -41/3 at the classic parameters."""
    T = 1.0

    def rhs(t, w):
        u, Phi = w[:3], w[3:].reshape(3, 3)
        return np.concatenate([lorenz63_rhs(u), (lorenz63_jacobian(u) @ Phi).ravel()])

    w0 = np.concatenate([[1.0, 1.0, 20.0], np.eye(3).ravel()])
    sol = solve_ivp(rhs, (0, T), w0, method="DOP853", rtol=1e-12, atol=1e-14)
    sign, logdet = np.linalg.slogdet(sol.y[3:, -1].reshape(3, 3))
    assert sign > 0
    assert logdet / T == pytest.approx(-(SIGMA + 1 + BETA), rel=1e-6)
    ds = lorenz63(10, seed=0)
    assert ds.attrs["lyapunov_sum"] == pytest.approx(-41.0 / 3.0)


def test_lorenz_integrator_accuracy():
    kw = {"transient": 0, "x0": [1.0, 1.0, 20.0], "standardize": False}
    default = lorenz63(200, **kw)
    tight = lorenz63(200, rtol=1e-13, atol=1e-15, **kw)
    np.testing.assert_allclose(default["x"].values, tight["x"].values, rtol=0, atol=1e-6)
    # LSODA, given the analytic Jacobian, agrees too
    lsoda = lorenz63(200, method="LSODA", **kw)
    np.testing.assert_allclose(lsoda["x"].values, tight["x"].values, rtol=0, atol=1e-5)


def test_lorenz_observation_noise_in_standardized_units():
    kw = {"seed": 3, "transient": 100}
    clean = lorenz63(600, **kw)
    noisy = lorenz63(600, noise_std=0.2, **kw)
    resid = noisy["x"].values - clean["x"].values
    np.testing.assert_allclose(resid.std(axis=0), 0.2, rtol=0.1)
    np.testing.assert_allclose(resid.mean(axis=0), 0.0, atol=0.03)
    raw_clean = lorenz63(600, standardize=False, **kw)
    raw_noisy = lorenz63(600, standardize=False, noise_std=0.2, **kw)
    resid = (raw_noisy["x"].values - raw_clean["x"].values) / raw_clean["x"].values.std(axis=0)
    np.testing.assert_allclose(resid.std(axis=0), 0.2, rtol=0.1)


# ------------------------------------------------------------------ Hodgkin-Huxley


def test_hh_rest_without_current():
    ds = hodgkin_huxley(200.0, current=0.0, noise_std=0.0, seed=0)
    v = ds["v"].values[:, 0]
    assert ds.sizes["spike"] == 0
    assert v[-1] == pytest.approx(-65.0, abs=0.5)
    assert np.abs(v + 65.0).max() < 0.5
    m, h, n = hh_steady_state(-65.0)
    assert ds["m"].values[-1] == pytest.approx(m, abs=1e-3)
    assert ds["h"].values[-1] == pytest.approx(h, abs=1e-3)
    assert ds["n"].values[-1] == pytest.approx(n, abs=1e-3)


def test_hh_repetitive_spiking_at_dc(hh_dc):
    ds = hh_dc
    v = ds["v"].values[:, 0]
    spikes = ds["spike_times"].values
    assert ds["spike_times"].attrs["units"] == "ms"
    assert 60 <= spikes.size <= 75
    assert 60.0 <= ds.attrs["firing_rate_hz"] <= 75.0
    isi = np.diff(spikes)[1:]  # after the onset spike: a limit cycle
    assert isi.std() / isi.mean() < 1e-3
    assert 1000.0 / isi.mean() == pytest.approx(68.0, abs=4.0)
    assert 30.0 <= v.max() <= 45.0
    assert -80.0 < v.min() < -70.0  # after-hyperpolarisation towards E_K
    for g in ("m", "h", "n"):
        assert 0.0 <= ds[g].values.min() and ds[g].values.max() <= 1.0
    # each detected spike is followed by the peak of its action potential within 2 ms
    t = ds["time"].values
    for s in spikes:
        window = (t >= s) & (t <= s + 2.0)
        assert v[window].max() > 20.0
    np.testing.assert_array_equal(ds["i_inj"].values, 10.0)


def test_hh_dataset_layout(hh_dc):
    ds = hh_dc
    assert ds["v"].dims == ("time", "channel")
    assert list(ds["channel"].values) == ["V"]
    for g in ("m", "h", "n", "i_inj"):
        assert ds[g].dims == ("time",)
    assert ds["spike_times"].dims == ("spike",)
    assert ds.sizes["time"] == 10001
    np.testing.assert_allclose(np.diff(ds["time"].values), 0.1, atol=1e-9)
    for name in ("v", "m", "h", "n", "i_inj", "spike_times", "time", "v_mean", "v_std"):
        assert ds[name].attrs["long_name"] and ds[name].attrs["units"], name
    assert ds["v"].attrs["units"] == "mV"
    assert ds["time"].attrs["units"] == "ms"
    assert ds["i_inj"].attrs["units"] == "uA/cm^2"
    assert "not public" in hodgkin_huxley.__doc__ or "non-public" in hodgkin_huxley.__doc__
    for key in (
        "g_Na",
        "g_K",
        "g_L",
        "E_Na",
        "E_K",
        "E_L",
        "C_m",
        "dt_ms",
        "seed",
        "noise_std",
        "producer",
        "arguments",
        "versions",
    ):
        assert key in ds.attrs, key
    assert ds.attrs["producer"] == "plrnn_numba.data.hodgkin_huxley"


def test_hh_noise_gives_variability_and_is_seeded():
    a = hodgkin_huxley(1000.0, seed=0)  # default: DC 10 uA/cm^2 + OU noise
    b = hodgkin_huxley(1000.0, seed=0)
    c = hodgkin_huxley(1000.0, seed=1)
    np.testing.assert_array_equal(a["v"].values, b["v"].values)
    np.testing.assert_array_equal(a["spike_times"].values, b["spike_times"].values)
    assert not np.array_equal(a["v"].values, c["v"].values)
    isi = np.diff(a["spike_times"].values)[1:]
    assert 0.005 < isi.std() / isi.mean() < 0.2
    assert 55.0 <= a.attrs["firing_rate_hz"] <= 80.0
    noise = a["i_inj"].values - 10.0
    assert noise.std() == pytest.approx(a.attrs["noise_std"], rel=0.35)


def test_hh_netcdf_round_trip(tmp_path, hh_dc):
    path = io.save(hh_dc, tmp_path / "hh.nc")
    back = io.open(path)
    for name in hh_dc.variables:
        np.testing.assert_array_equal(back[name].values, hh_dc[name].values)
        assert back[name].attrs.get("units") == hh_dc[name].attrs.get("units")
    for key in ("g_Na", "dt_ms", "seed", "n_spikes", "producer", "arguments"):
        assert back.attrs[key] == hh_dc.attrs[key]
    lz = lorenz63(200, seed=0)
    back = io.open(io.save(lz, tmp_path / "lorenz.nc"))
    np.testing.assert_array_equal(back["x"].values, lz["x"].values)
    assert list(back["channel"].values) == ["x", "y", "z"]
    assert back.attrs["standardized"] == 1


def test_hh_rate_singularities_are_removable():
    r = hh_rates(np.array([-55.0, -40.0]))
    assert r["alpha_n"][0] == pytest.approx(0.1, rel=1e-12)
    assert r["alpha_m"][1] == pytest.approx(1.0, rel=1e-12)
    for name, v0 in (("alpha_n", -55.0), ("alpha_m", -40.0)):
        eps = np.array([1e-9, 1e-7, 1e-5, 1e-3])
        around = np.concatenate([v0 - eps, v0 + eps])
        vals = hh_rates(around)[name]
        assert np.all(np.isfinite(vals))
        # matches the closed form away from the singular point
        a, c = (0.01, 55.0) if name == "alpha_n" else (0.1, 40.0)
        far = np.array([v0 - 1.0, v0 + 1.0])
        closed = a * (far + c) / (1 - np.exp(-(far + c) / 10.0))
        np.testing.assert_allclose(hh_rates(far)[name], closed, rtol=1e-12)
        # and is smooth through it (slope a/2 at the singular point)
        np.testing.assert_allclose(vals, hh_rates(np.array([v0]))[name][0] + a / 2 * (around - v0), rtol=0, atol=1e-6)
    # voltage exactly at the singular points during a simulation stays finite
    ds = hodgkin_huxley(5.0, v0=-55.0, noise_std=0.0, current=0.0)
    assert np.all(np.isfinite(ds["v"].values))


def test_hh_standardize_and_transient(hh_dc):
    ds = hodgkin_huxley(1000.0, current=10.0, noise_std=0.0, standardize=True, seed=0)
    v = ds["v"].values
    np.testing.assert_allclose(v.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(v.std(), 1.0, atol=1e-12)
    np.testing.assert_allclose(v * ds["v_std"].values + ds["v_mean"].values, hh_dc["v"].values, atol=1e-10)
    np.testing.assert_array_equal(ds["m"].values, hh_dc["m"].values)
    assert ds.attrs["standardized"] == 1
    tr = hodgkin_huxley(1000.0, current=10.0, noise_std=0.0, transient_ms=100.0, seed=0)
    assert tr["time"].values[0] == pytest.approx(100.0)
    assert tr.sizes["time"] == 9001
    assert tr["spike_times"].values.min() >= 100.0
    np.testing.assert_array_equal(tr["v"].values, hh_dc["v"].values[1000:])


def test_hh_array_current_and_params():
    n_steps = round(50.0 / 0.025)
    step = np.where(np.arange(n_steps + 1) * 0.025 >= 10.0, 10.0, 0.0)
    ds = hodgkin_huxley(50.0, current=step, noise_std=0.0)
    assert ds["spike_times"].values.min() > 10.0
    assert np.isnan(ds.attrs["current_dc"])
    const = hodgkin_huxley(50.0, current=np.full(n_steps + 1, 10.0), noise_std=0.0)
    ref = hodgkin_huxley(50.0, current=10.0, noise_std=0.0)
    np.testing.assert_array_equal(const["v"].values, ref["v"].values)
    # no sodium: no spikes
    passive = hodgkin_huxley(50.0, current=10.0, noise_std=0.0, params=HHParameters(g_Na=0.0))
    assert passive.sizes["spike"] == 0


def test_hh_is_fast():
    hodgkin_huxley(10.0, seed=0)  # compile / load from cache
    t0 = time.perf_counter()
    hodgkin_huxley(1000.0, seed=0)
    assert time.perf_counter() - t0 < 0.5


# ------------------------------------------------------------------ helpers


def test_as_array(hh_dc):
    lz = lorenz63(100, seed=0)
    x = as_array(lz)
    assert x.shape == (100, 3) and x.dtype == np.float64 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, lz["x"].values)
    v = as_array(hh_dc, "v")
    assert v.shape == (hh_dc.sizes["time"], 1)
    assert as_array(hh_dc, "m").shape == (hh_dc.sizes["time"], 1)
    # works for a channel-first layout too
    np.testing.assert_array_equal(as_array(lz.transpose("channel", "time")), x)
    with pytest.raises(TypeError, match="ds"):
        as_array(lz["x"])
    with pytest.raises(ValueError, match="var"):
        as_array(lz, "v")
    with pytest.raises(ValueError, match="var"):
        as_array(lz, "x_mean")


def test_delay_embed():
    x = np.arange(10.0)
    y = delay_embed(x, dims=3, lag=2)
    assert y.shape == (10 - 4, 3)
    np.testing.assert_array_equal(y[0], [4.0, 2.0, 0.0])
    np.testing.assert_array_equal(y[:, 0], x[4:])
    np.testing.assert_array_equal(y[:, 1], x[2:-2])
    np.testing.assert_array_equal(y[:, 2], x[:-4])
    np.testing.assert_array_equal(delay_embed(x[:, None], 3, 2), y)
    np.testing.assert_array_equal(delay_embed(x, 1, 5), x[:, None])
    two = np.stack([x, -x], axis=1)
    z = delay_embed(two, 2, 3)
    assert z.shape == (7, 4)
    np.testing.assert_array_equal(z[0], [3.0, -3.0, 0.0, -0.0])
    with pytest.raises(ValueError, match="dims"):
        delay_embed(x, 0, 1)
    with pytest.raises(ValueError, match="lag"):
        delay_embed(x, 2, 0)
    with pytest.raises(TypeError, match="lag"):
        delay_embed(x, 2, 1.5)
    with pytest.raises(ValueError, match="too short"):
        delay_embed(x, 4, 4)
    with pytest.raises(ValueError, match="x must have shape"):
        delay_embed(np.zeros((3, 2, 2)), 2, 1)


def test_delay_embed_voltage(hh_dc):
    v = as_array(hh_dc, "v")
    emb = delay_embed(v, dims=4, lag=30)
    assert emb.shape == (v.shape[0] - 90, 4)
    np.testing.assert_array_equal(emb[:, 3], v[:-90, 0])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"n_samples": 1}, ValueError, "n_samples"),
        ({"n_samples": 10.0}, TypeError, "n_samples"),
        ({"dt": 0.0}, ValueError, "dt"),
        ({"dt": -0.01}, ValueError, "dt"),
        ({"dt": float("nan")}, ValueError, "dt"),
        ({"dt": "0.01"}, TypeError, "dt"),
        ({"subsample": 0}, ValueError, "subsample"),
        ({"transient": -1}, ValueError, "transient"),
        ({"sigma": -1.0}, ValueError, "sigma"),
        ({"beta": 0.0}, ValueError, "beta"),
        ({"rho": float("inf")}, ValueError, "rho"),
        ({"x0": [1.0, np.nan, 2.0]}, ValueError, "x0"),
        ({"x0": [1.0, 2.0]}, ValueError, "x0"),
        ({"x0": ["a", "b", "c"]}, TypeError, "x0"),
        ({"noise_std": -0.1}, ValueError, "noise_std"),
        ({"standardize": "yes"}, TypeError, "standardize"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": 1.5}, TypeError, "seed"),
        ({"method": "Euler"}, ValueError, "method"),
        ({"rtol": 0.0}, ValueError, "rtol"),
    ],
)
def test_lorenz_bad_input(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        lorenz63(**{"n_samples": 10, **kwargs})


def test_lorenz_constant_channel_cannot_be_standardized():
    with pytest.raises(ValueError, match="standardize"):
        lorenz63(10, x0=[0.0, 0.0, 0.0], transient=0)


@pytest.mark.parametrize(
    "kwargs, exc, name",
    [
        ({"duration_ms": 0.0}, ValueError, "duration_ms"),
        ({"duration_ms": 0.05}, ValueError, "duration_ms"),
        ({"dt_ms": -0.025}, ValueError, "dt_ms"),
        ({"dt_ms": 0.5}, ValueError, "dt_ms"),
        ({"sample_every": 0}, ValueError, "sample_every"),
        ({"sample_every": 2.0}, TypeError, "sample_every"),
        ({"current": np.nan}, ValueError, "current"),
        ({"current": np.ones(7)}, ValueError, "current"),
        ({"current": "10"}, TypeError, "current"),
        ({"current": True}, TypeError, "current"),
        ({"noise_std": -1.0}, ValueError, "noise_std"),
        ({"noise_tau_ms": 0.0}, ValueError, "noise_tau_ms"),
        ({"seed": "0"}, TypeError, "seed"),
        ({"standardize": 1}, TypeError, "standardize"),
        ({"transient_ms": 20.0}, ValueError, "transient_ms"),
        ({"transient_ms": -1.0}, ValueError, "transient_ms"),
        ({"v0": np.inf}, ValueError, "v0"),
        ({"params": {"g_Na": 120.0}}, TypeError, "params"),
        ({"params": HHParameters(C_m=0.0)}, ValueError, "params"),
    ],
)
def test_hh_bad_input(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        hodgkin_huxley(**{"duration_ms": 10.0, **kwargs})
