"""Reconstruction measures (:mod:`plrnn_numba.metrics`) against values computed by hand on small inputs.

* ``D_stsp`` binned: a 1-D example whose bins, counts and Laplace-smoothed
  probabilities are written out below; the grid ``[min - 0.1 sd, max + 0.1 sd]``;
  points outside the grid; NaN for an empty generated histogram, inf for a
  diverged one.
* ``D_stsp`` by Gaussian mixtures: against a direct double loop over samples
  and centres (the mixture likelihood written from its definition), with the
  same random samples; 0 for identical trajectories; the KL divergence of two
  single Gaussians for one-point "trajectories" (closed form, by Monte Carlo).
* ``D_H``: the spectrum pipeline against an explicit DFT, z-scoring and a
  Gaussian kernel built here; 0 for equal series, 1 for disjoint spectra.
* The evaluation window: floor(1.25 T) states, the first floor(0.25 T) dropped,
  and ``free_run_measures`` on a model whose free run is known.
"""

from __future__ import annotations

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import metrics

#: hand computations in float64 against the package: rounding only
RTOL = 1e-12
#: Monte-Carlo estimates against closed forms: the standard error of 20,000 samples
MC_ATOL = 0.03


def test_binned_divergence_by_hand():
    # x_true = 0, 1, 2, 3: sd (n - 1) = sqrt(5/3) = 1.2910; the grid [-0.1291, 3.1291] in 3 bins of
    # width 1.0861 has the edges -0.1291, 0.9570, 2.0430, 3.1291, so the data fall 1, 2, 1 into the bins
    # (0 | 1, 2 | 3) and the generated points 2, 0, 2 (0, 0.1 | - | 2.9, 2.95; 10 is off the grid)
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([[0.0], [0.1], [2.9], [2.95], [10.0]])
    cp = np.array([1.0, 2.0, 1.0])
    cq = np.array([2.0, 0.0, 2.0])
    a = 1e-5
    p = (cp + a) / (4 + 3 * a)
    q = (cq + a) / (4 + 3 * a)  # the off-grid point is not counted
    want = float(np.sum(p * np.log(p / q)))
    got = metrics.state_space_divergence_binned(x, y, n_bins=3)
    assert got == pytest.approx(want, rel=RTOL)
    assert metrics.state_space_divergence(x, y, n_bins=3) == got  # 1 channel: "auto" bins
    assert metrics.state_space_divergence_binned(x, x, n_bins=3) == 0.0


def test_binned_divergence_edge_cases():
    x = np.random.default_rng(0).normal(size=(200, 2))
    assert np.isnan(metrics.state_space_divergence_binned(x, x + 100.0))  # nothing on the grid
    bad = x.copy()
    bad[5, 1] = np.inf
    assert metrics.state_space_divergence_binned(x, bad) == np.inf
    with pytest.raises(ValueError, match="same channels"):
        metrics.state_space_divergence_binned(x, x[:, :1])
    with pytest.raises(ValueError, match="x_true"):
        metrics.state_space_divergence_binned(bad, x)
    with pytest.raises(ValueError, match="method"):
        metrics.state_space_divergence(x, x, method="kde")


def _gmm_direct(samples, centres, sigma):
    """log of the mixture likelihood, a plain double loop from the definition (no 2 pi factor)."""
    out = []
    for s in samples:
        acc = 0.0
        for mu in centres:
            acc += np.exp(-0.5 * np.sum((s - mu) ** 2) / sigma**2) / sigma ** len(s)
        out.append(np.log(acc / len(centres)))
    return np.array(out)


def test_gmm_divergence_against_a_direct_double_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6))
    y = rng.normal(0.5, 1.2, size=(50, 6))
    sigma2 = 0.7
    got = metrics.state_space_divergence(x, y, sigma2=sigma2, mc_samples=30, seed=3)  # 6 channels: "auto" GMM
    # the same samples: first the indices, then the noise, from the same generator
    g = np.random.default_rng(3)
    samples = x[g.integers(0, 40, 30)] + np.sqrt(sigma2) * g.standard_normal((30, 6))
    s = np.sqrt(sigma2)
    want = np.mean(_gmm_direct(samples, x, s) - _gmm_direct(samples, y[:40], s))
    assert got == pytest.approx(want, rel=RTOL)
    assert metrics.state_space_divergence_gmm(x, x, mc_samples=50) == pytest.approx(0.0, abs=1e-14)
    # max_steps truncates both trajectories
    short = metrics.state_space_divergence_gmm(x, y, sigma2=sigma2, max_steps=10, mc_samples=30, seed=3)
    g = np.random.default_rng(3)
    samples = x[g.integers(0, 10, 30)] + s * g.standard_normal((30, 6))
    assert short == pytest.approx(np.mean(_gmm_direct(samples, x[:10], s) - _gmm_direct(samples, y[:10], s)),
                                  rel=RTOL)
    with pytest.raises(ValueError, match="at least 40"):
        metrics.state_space_divergence_gmm(x, y[:20])


def test_gmm_divergence_of_two_gaussians():
    # one point each: p = N(0, I), q = N(m, I) in 6-D; KL = |m|^2 / 2
    m = np.array([[0.5, -0.3, 0.2, 0.0, 0.1, 0.4]])
    got = metrics.state_space_divergence_gmm(np.zeros((1, 6)), m, mc_samples=20000, seed=0)
    assert got == pytest.approx(0.5 * np.sum(m**2), abs=MC_ATOL)


def test_power_spectrum_distance_by_hand():
    rng = np.random.default_rng(2)
    T = 64
    x = np.stack([np.sin(0.3 * np.arange(T)) + 0.1 * rng.normal(size=T), rng.normal(size=T)], axis=1)
    y = np.stack([np.sin(0.5 * np.arange(T)), rng.normal(size=T)], axis=1)
    sigma = 2.0

    def spectrum(v):
        z = (v - v.mean()) / v.std(ddof=1)
        f = np.arange(T // 2 + 1)
        dft = np.array([np.sum(z * np.exp(-2j * np.pi * k * np.arange(T) / T)) for k in f])
        ps = np.abs(dft) ** 2
        # Gaussian kernel of radius 4 sigma, reflecting boundaries (... c b a | a b c ... c b a | ...)
        r = int(4 * sigma + 0.5)
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
        k /= k.sum()
        padded = np.concatenate([ps[:r][::-1], ps, ps[-r:][::-1]])
        sm = np.array([np.dot(k, padded[i : i + 2 * r + 1]) for i in range(ps.size)])
        return sm / sm.sum()

    h = [np.sqrt(np.sum((np.sqrt(spectrum(x[:, c])) - np.sqrt(spectrum(y[:, c]))) ** 2) / 2) for c in range(2)]
    got, per = metrics.power_spectrum_distance(x, y, sigma=sigma, per_channel=True)
    np.testing.assert_allclose(per, h, rtol=1e-10)
    assert got == pytest.approx(np.mean(h), rel=1e-10)
    assert metrics.power_spectrum_distance(x, 3.0 * x + 1.0) == pytest.approx(0.0, abs=1e-7)  # z-scored
    # disjoint spectra without smoothing: two pure tones on different frequencies
    t = np.arange(T)
    tone = lambda k: np.cos(2 * np.pi * k * t / T)[:, None]  # noqa: E731
    assert metrics.power_spectrum_distance(tone(3), tone(7), sigma=0.0) == pytest.approx(1.0, abs=1e-12)
    assert metrics.power_spectrum_distance(x, np.full_like(x, np.nan)) == 1.0
    with pytest.raises(ValueError, match="same shape"):
        metrics.power_spectrum_distance(x, y[:10])


def test_evaluation_window_and_free_run_measures():
    assert metrics.evaluation_window(100) == (125, 25)
    assert metrics.evaluation_window(10) == (12, 2)
    assert metrics.evaluation_window(7) == (8, 1)
    # a contracting 2-D PLRNN: its free run from x_0, 49 steps (50 states), the last 40 compared
    model = pn.PLRNN(2)
    theta = model.pack(A=np.array([0.5, 0.5]), W=np.array([[0.0, -0.4], [0.4, 0.0]]), h=np.array([0.3, -0.1]))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 2))
    res = metrics.free_run_measures(model, theta, x, n_bins=5, sigma=2.0)
    Z = model.simulate(theta, x[0], n_steps=49)
    np.testing.assert_array_equal(res["generated"], Z[10:, :2])
    assert res["dstsp"] == metrics.state_space_divergence_binned(x, Z[10:, :2], n_bins=5)
    assert res["dh"] == metrics.power_spectrum_distance(x, Z[10:, :2], sigma=2.0)
    # a diverging free run is reported, not raised
    blow = model.pack(A=np.array([1e10, 1e10]), W=np.zeros((2, 2)), h=np.array([0.0, 0.0]))
    res = metrics.free_run_measures(model, blow, np.abs(x) + 1.0)
    assert not np.all(np.isfinite(res["generated"]))
    assert res["dstsp"] == np.inf and res["dh"] == 1.0
    with pytest.raises(ValueError, match="more than the model's 2 latent states"):
        metrics.free_run_measures(model, theta, np.zeros((5, 3)))
    driven = pn.PLRNN(2, n_inputs=1)
    with pytest.raises(ValueError, match="without inputs; the model has 1 inputs"):
        metrics.free_run_measures(driven, driven.init(0), x)
