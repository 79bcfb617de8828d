"""The toy model of abrupt learning (Dinc et al., "A ghost mechanism: an analytical model of abrupt learning").

References and tolerances, one per kind of check:

* closed forms (r*, alpha*, the slopes of eq. 14, the eq. 15 balance) against
  the formulas evaluated here: ``rel 1e-14``;
* analytic gradient against central differences of the analytic loss, step
  ``1e-6 r``, away from the kinks: ``ANALYTIC_FD_RTOL = 1e-7``;
* Euler loss and gradient against a plain NumPy loop with forward-mode
  sensitivities and no saturation shortcut (``naive_euler``):
  ``REFERENCE_RTOL = 1e-9``;
* Euler gradient against central differences of the Euler loss, step
  ``h = 1e-6 |r|``: ``|fd - g| <= EULER_FD_RTOL |g| + 1e-12 |L| / h``
  (``EULER_FD_RTOL = 1e-5``; the second term is the rounding noise of the
  differenced sums);
* convergence of the Euler loss and gradient to the analytic ones as c and x*
  grow (with dt small enough to resolve the sigmoid's transition): errors
  below ``2 / x*`` for the loss and ``1e-3`` relative for the gradient.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special

from plrnn_numba import io
from plrnn_numba.ghost import toy

from .scripts_loader import load_script as _script

T = 100.0
R_STAR = math.pi**2 / (4 * T**2)
ANALYTIC_FD_RTOL = 1e-7
REFERENCE_RTOL = 1e-9
EULER_FD_RTOL = 1e-5


def naive_euler(r, T, c, x_star, dt):
    """Euler loss and dL/dr by forward-mode sensitivity s_k = dx_k/dr, in a plain loop (the test reference)."""
    n = round(T / dt)
    x, s, loss, grad = 0.0, 0.0, 0.0, 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(2 * n):
            y = 1.0 if k >= n else 0.0
            if not np.isfinite(x):  # blown up: the output is 1 from here on
                loss += dt * max(0, n - k)  # the steps left before T, where the target is 0
                break
            z = c * (x - x_star)
            o, o_neg = scipy.special.expit(z), scipy.special.expit(-z)
            loss += dt * (o - y) ** 2
            if o * o_neg > 0.0:
                grad += dt * 2.0 * (o - y) * o * o_neg * c * s
            s = s * (1.0 + 2.0 * dt * x) + dt
            x = x + dt * (x * x + r)
    return loss, grad


# --------------------------------------------------------------------------------------------
# closed forms


def test_critical_values_and_their_derivation():
    assert toy.critical_r(T) == pytest.approx(math.pi**2 / 4e4, rel=1e-14)
    assert toy.point_of_no_return(T) == pytest.approx(R_STAR / 4, rel=1e-14)
    alpha = toy.critical_learning_rate(T)
    assert alpha == pytest.approx(3 * math.pi**4 / 32 * T**-5, rel=1e-14)
    assert alpha == pytest.approx(9.1321e-10, rel=1e-4)  # "roughly 9e-10" in the paper
    assert toy.critical_learning_rate(T, normalised=True) == pytest.approx(T * alpha, rel=1e-14)
    # eq. 14: one-sided slopes -+ 2 T^3 / pi^2 at r*; eq. 15: one step of alpha* from r*+ lands on r*/4
    slope = 2 * T**3 / math.pi**2
    assert toy.analytic_gradient(R_STAR * (1 + 1e-12), T) == pytest.approx(slope, rel=1e-9)
    assert toy.analytic_gradient(R_STAR * (1 - 1e-12), T) == pytest.approx(-slope, rel=1e-9)
    assert R_STAR - alpha * slope == pytest.approx(R_STAR / 4, rel=1e-14)
    # the normalised loss: T times smaller gradient, so T times larger alpha*
    assert R_STAR - T * alpha * slope / T == pytest.approx(R_STAR / 4, rel=1e-14)


def test_analytic_loss_regimes():
    assert toy.escape_time(R_STAR) == pytest.approx(T, rel=1e-14)
    assert toy.escape_time(-1.0) == np.inf and toy.escape_time(0.0) == np.inf
    assert toy.analytic_loss(R_STAR, T) == pytest.approx(0.0, abs=1e-12)
    for r in (-1.0, 0.0, R_STAR / 10, R_STAR / 4):
        assert toy.analytic_loss(r, T) == pytest.approx(T, rel=1e-14)
        assert toy.analytic_gradient(r, T) == 0.0
    r = np.array([0.3, 0.7, 2.0, 50.0]) * R_STAR
    expect = np.abs(T - math.pi / (2 * np.sqrt(r)))
    np.testing.assert_allclose(toy.analytic_loss(r, T), expect, rtol=1e-14)
    np.testing.assert_allclose(toy.analytic_loss(r, T, normalised=True), expect / T, rtol=1e-14)
    # continuous at the point of no return; the loss tends to T for r >> r*
    assert toy.analytic_loss(R_STAR / 4 * (1 + 1e-9), T) == pytest.approx(T, rel=1e-8)
    assert toy.analytic_loss(1e6 * R_STAR, T) == pytest.approx(T, rel=2e-3)
    # shapes follow r
    assert toy.analytic_loss(np.ones((2, 3)) * R_STAR, T).shape == (2, 3)
    assert isinstance(toy.analytic_gradient(R_STAR, T), float)


@pytest.mark.parametrize("normalised", [False, True])
@pytest.mark.parametrize("T_", [1.0, 100.0])
def test_analytic_gradient_matches_finite_differences(T_, normalised):
    r_star = toy.critical_r(T_)
    r = np.array([0.26, 0.3, 0.6, 0.99, 1.01, 1.5, 4.0, 30.0]) * r_star  # away from the kinks r*/4 and r*
    h = 1e-6 * r
    fd = (toy.analytic_loss(r + h, T_, normalised=normalised) - toy.analytic_loss(r - h, T_, normalised=normalised))
    fd /= 2 * h
    np.testing.assert_allclose(toy.analytic_gradient(r, T_, normalised=normalised), fd, rtol=ANALYTIC_FD_RTOL)


# --------------------------------------------------------------------------------------------
# Euler loss and its exact gradient

SETTINGS = [(0.1, 10.0, 0.1), (1.0, 10.0, 0.1), (1.0, 10.0, 0.01)]  # (c, x*, dt): the authors' two, and a finer dt
R_FACTORS = [-1.0, 0.3, 0.6, 1.2, 3.0, 10.0]


@pytest.mark.parametrize("c, x_star, dt", SETTINGS)
def test_euler_matches_the_naive_reference(c, x_star, dt):
    r = np.array(R_FACTORS) * R_STAR
    got = toy.euler_loss_and_grad(r, T, c, x_star, dt=dt)
    for i, ri in enumerate(r):
        loss, grad = naive_euler(ri, T, c, x_star, dt)
        assert got.loss[i] == pytest.approx(loss, rel=REFERENCE_RTOL)
        assert got.grad[i] == pytest.approx(grad, rel=REFERENCE_RTOL, abs=1e-12)
    norm = toy.euler_loss_and_grad(r, T, c, x_star, dt=dt, normalised=True)
    np.testing.assert_allclose(norm.loss, got.loss / T, rtol=1e-14)
    np.testing.assert_allclose(norm.grad, got.grad / T, rtol=1e-14)


@pytest.mark.parametrize("c, x_star, dt", SETTINGS)
def test_euler_gradient_matches_finite_differences(c, x_star, dt):
    r = np.array(R_FACTORS) * R_STAR
    h = 1e-6 * np.abs(r)
    res = toy.euler_loss_and_grad(r, T, c, x_star, dt=dt)
    fd = (toy.euler_loss_and_grad(r + h, T, c, x_star, dt=dt).loss
          - toy.euler_loss_and_grad(r - h, T, c, x_star, dt=dt).loss) / (2 * h)
    tol = EULER_FD_RTOL * np.abs(res.grad) + 1e-12 * np.abs(res.loss) / h
    assert np.all(np.abs(fd - res.grad) <= tol), (fd, res.grad)


def test_euler_converges_to_the_analytic_limit():
    """Loss error ~ 1/x* (the output switches when x reaches x*, about 1/x* before the escape); the gradient
    needs dt below the sigmoid's transition time 1/(c x*^2) and then agrees to <= 1e-3."""
    r = np.array([0.5, 2.0, 5.0]) * R_STAR
    an_loss, an_grad = toy.analytic_loss(r, T), toy.analytic_gradient(r, T)
    errors = []
    for c, x_star, dt in [(1.0, 10.0, 0.01), (3.0, 30.0, 1e-4)]:
        res = toy.euler_loss_and_grad(r, T, c, x_star, dt=dt)
        loss_err = np.max(np.abs(res.loss - an_loss))
        assert loss_err < 2 / x_star
        assert np.max(np.abs(res.grad / an_grad - 1)) < 1e-3
        errors.append(loss_err)
    assert errors[1] < errors[0]
    # at the authors' coarse step the gradient does not converge: with c = 1 the output switches within one
    # Euler step and the loss is a smoothed staircase in r
    coarse = toy.euler_loss_and_grad(r, T, 1.0, 10.0, dt=0.1)
    assert np.max(np.abs(coarse.grad / an_grad - 1)) > 0.1


def test_blow_up_is_handled_and_reported():
    # the saturation threshold changes nothing but the reported time
    r = np.array([0.5, 2.0, 10.0]) * R_STAR
    ref = toy.euler_loss_and_grad(r, T, 1.0, 10.0)
    for sat in (37.0, 200.0, 700.0):
        other = toy.euler_loss_and_grad(r, T, 1.0, 10.0, saturation=sat)
        np.testing.assert_allclose(other.loss, ref.loss, rtol=1e-13)
        np.testing.assert_allclose(other.grad, ref.grad, rtol=1e-12)
    assert np.all(np.diff(ref.escape_time) < 0) and np.all(np.isfinite(ref.escape_time))
    assert toy.euler_loss_and_grad(0.1 * R_STAR, T, 1.0, 10.0).escape_time == np.inf  # escapes after 2T
    # escape within one step (huge r), a numerically unstable negative r, and x overflowing before the
    # logit saturates (tiny c): finite results, no warnings or exceptions
    with np.errstate(all="raise"):
        for r_, c in [(1e6, 1.0), (-1e6, 1.0), (1e307, 1.0), (-1e307, 1.0), (2 * R_STAR, 1e-300)]:
            res = toy.euler_loss_and_grad(r_, T, c, 10.0)
            assert np.isfinite(res.loss) and np.isfinite(res.grad) and 0 <= res.loss <= 2 * T
    res = toy.euler_loss_and_grad(1e6, T, 1.0, 10.0)
    assert res.escape_time == pytest.approx(0.1) and res.grad == 0.0
    assert res.loss == pytest.approx(T - 0.1, rel=1e-9)  # output 1 from the first step: wrong for T - dt
    # dt * r beyond the double range: NaN, reported rather than raised
    res = toy.euler_loss_and_grad(-1.7e308, 200.0, 1.0, 10.0, dt=2.0)
    assert np.isnan(res.loss) and np.isnan(res.grad) and np.isnan(res.escape_time)


# --------------------------------------------------------------------------------------------
# gradient descent


def test_gradient_descent_learns_below_alpha_star_and_not_above():
    alpha = toy.critical_learning_rate(T)
    for seed in range(4):
        below = toy.gradient_descent(None, T, 0.9 * alpha, 3000, seed=seed)
        # a theorem for the analytic loss: below alpha* no step enters the no-learning zone
        assert np.all(below["r"].values > R_STAR / 4)
        assert below["loss"].min() < 0.05 * T and below.attrs["final_in_no_learning_zone"] == 0
        above = toy.gradient_descent(None, T, 1.5 * alpha, 1000, seed=seed)
        assert above.attrs["final_in_no_learning_zone"] == 1
        assert above["loss"].values[-1] == T and above["grad"].values[-1] == 0.0
        # the loss divided by T has a T times smaller gradient: the same thresholds at T alpha*
        norm = toy.gradient_descent(None, T, 0.9 * T * alpha, 3000, seed=seed, normalised=True)
        assert np.all(norm["r"].values > R_STAR / 4) and norm["loss"].min() < 0.05
        stuck = toy.gradient_descent(None, T, 1.5 * T * alpha, 1000, seed=seed, normalised=True)
        assert stuck.attrs["final_in_no_learning_zone"] == 1 and stuck["loss"].values[-1] == 1.0
        np.testing.assert_allclose(stuck["r"].values[:50], above["r"].values[:50], rtol=1e-12)
    # and 1.5 alpha* on the normalised loss is far too slow to learn in 3000 epochs (final loss near 2/3)
    slow = toy.gradient_descent(None, T, 1.5 * alpha, 3000, normalised=True)
    assert slow["loss"].values[-1] > 0.6


def test_gradient_descent_fig2bc():
    """From r = 10 r*: alpha = 1e-10 learns abruptly (near epoch 1500 in the paper) with r > 0 throughout (no
    bifurcation); alpha = 1e-9 > alpha* oscillates into the no-learning zone."""
    slow = toy.gradient_descent(10 * R_STAR, T, 1e-10, 3000)
    drop = int(np.argmax(slow["loss"].values < 0.5 * T))
    assert 1000 < drop < 2000
    assert np.all(slow["r"].values > 0) and slow["loss"].values[-1] < 0.05 * T
    fast = toy.gradient_descent(10 * R_STAR, T, 1e-9, 3000)
    assert fast.attrs["final_in_no_learning_zone"] == 1 and fast["loss"].values[-1] == T


def test_gradient_descent_dataset(tmp_path):
    ds = toy.gradient_descent(None, T, 1e-10, 50, seed=3)
    assert ds.sizes["epoch"] == 51 and ds.attrs["status"] == "finished" and ds.attrs["epochs_completed"] == 50
    rng = np.random.default_rng(3)
    assert ds["r"].values[0] == 10 * R_STAR + R_STAR / 10 * rng.standard_normal() == toy.initial_r(T, seed=3)
    assert ds.attrs["seeds"] == "3" and ds.attrs["model"] == "analytic" and ds.attrs["normalised"] == 0
    assert ds.attrs["critical_learning_rate"] == toy.critical_learning_rate(T)
    for name in ("r", "loss", "grad", "escape_time", "epoch"):
        assert {"units", "long_name"} <= set(ds[name].attrs)
    # each recorded step is r_{e+1} = r_e - lr * grad(r_e)
    np.testing.assert_allclose(ds["r"].values[1:], ds["r"].values[:-1] - 1e-10 * ds["grad"].values[:-1], rtol=1e-15)
    np.testing.assert_array_equal(ds["loss"].values, toy.analytic_loss(ds["r"].values, T))
    back = io.open(io.save(ds, tmp_path / "gd.nc"))
    np.testing.assert_array_equal(back["r"].values, ds["r"].values)
    assert toy.gradient_descent(2 * R_STAR, T, 1e-10, 5).attrs["seeds"] == "null"  # given r0: no seed used


def test_gradient_descent_on_the_euler_loss():
    ds = toy.gradient_descent(10 * R_STAR, T, 1e-10, 100, c=1.0, x_star=10.0, dt=0.01)
    assert ds.attrs["model"] == "euler" and ds.attrs["status"] == "finished"
    r = ds["r"].values
    ref = toy.euler_loss_and_grad(r, T, 1.0, 10.0, dt=0.01)
    np.testing.assert_allclose(ds["grad"].values, ref.grad, rtol=1e-14)
    np.testing.assert_allclose(ds["loss"].values, ref.loss, rtol=1e-14)
    assert np.all(np.diff(r) < 0) and np.all(np.diff(ds["loss"].values) < 0)
    # a learning rate that throws r to -inf: reported as diverged, later epochs NaN
    bad = toy.gradient_descent(10 * R_STAR, T, 1e307, 5, c=1.0, x_star=10.0)
    assert bad.attrs["status"] == "diverged" and np.isnan(bad["r"].values[-1])


# --------------------------------------------------------------------------------------------
# bad inputs


def _r():
    return 2 * R_STAR


BAD = [
    (lambda: toy.critical_r(0.0), ValueError, "T"),
    (lambda: toy.critical_r(float("nan")), ValueError, "T"),
    (lambda: toy.critical_r("100"), TypeError, "T"),
    (lambda: toy.critical_learning_rate(-1.0), ValueError, "T"),
    (lambda: toy.critical_learning_rate(T, normalised=1), TypeError, "normalised"),
    (lambda: toy.analytic_loss(np.nan, T), ValueError, "r"),
    (lambda: toy.analytic_loss([], T), ValueError, "r"),
    (lambda: toy.analytic_loss("a", T), TypeError, "r"),
    (lambda: toy.analytic_gradient(_r(), T, normalised="yes"), TypeError, "normalised"),
    (lambda: toy.escape_time(np.inf), ValueError, "r"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 0.0, 10.0), ValueError, "c"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 1.0, -1.0), ValueError, "x_star"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 1.0, 10.0, dt=0.3), ValueError, "dt"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 1.0, 10.0, dt=200.0), ValueError, "dt"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 1.0, 10.0, dt=1e-7), ValueError, "dt"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 1.0, 10.0, dt=5e-324), ValueError, "dt"),
    (lambda: toy.critical_r(1e300), ValueError, "T"),
    (lambda: toy.euler_loss_and_grad(_r(), T, 1.0, 10.0, saturation=10.0), ValueError, "saturation"),
    (lambda: toy.euler_loss_and_grad(_r(), T, None, 10.0), TypeError, "c"),
    (lambda: toy.gradient_descent(None, T, 0.0, 10), ValueError, "lr"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 0), ValueError, "n_epochs"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 2.5), TypeError, "n_epochs"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 10**9), ValueError, "n_epochs"),
    (lambda: toy.gradient_descent(_r(), T, 1e-10, 10, seed="x"), TypeError, "seed"),
    (lambda: toy.gradient_descent(np.nan, T, 1e-10, 10), ValueError, "r0"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 10, seed=-1), ValueError, "seed"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 10, c=1.0), ValueError, "x_star"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 10, x_star=10.0), ValueError, "c"),
    (lambda: toy.gradient_descent(None, T, 1e-10, 10, c=1.0, x_star=10.0, dt=0.0), ValueError, "dt"),
    (lambda: toy.initial_r(T, seed="x"), TypeError, "seed"),
]


@pytest.mark.parametrize("call, exc, name", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_inputs_name_the_argument(call, exc, name):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value).startswith(name + " ") or f" {name} " in str(info.value), str(info.value)


# --------------------------------------------------------------------------------------------
# the reproduction scripts run (tiny sizes; their real output is in docs/reproductions/ghost_mechanism.md)


def test_reproduction_scripts_run(tmp_path, monkeypatch):
    fig2a = _script("ghost_fig2a")
    monkeypatch.setitem(fig2a.SETTINGS, "quick", [(1.0, 10.0, 0.1), (1.0, 10.0, 0.01)])
    monkeypatch.setitem(fig2a.N_R, "quick", 20)
    assert fig2a.main(["--out", str(tmp_path)]) == 0
    ds = io.open(tmp_path / "ghost_fig2a.nc")
    assert ds["euler_loss"].dims == ("setting", "r") and (tmp_path / "ghost_fig2a.png").exists()
    assert "| 1 | 10 | 0.01 |" in fig2a.table(ds)

    assert _script("ghost_fig2bc").main(["--out", str(tmp_path), "--epochs", "300"]) == 0
    ds = io.open(tmp_path / "ghost_fig2bc.nc")
    assert ds["loss"].dims == ("lr", "epoch") and list(ds["stuck"].values) == [0, 1]

    fig2d = _script("ghost_fig2d")
    out = tmp_path / "fig2d.nc"
    argv = ["--backend", "serial", "--lr-range", "-10", "-8", "3", "--seeds", "2", "--epochs", "500",
            "--no-progress", "--out", str(out)]
    assert fig2d.main(argv) == 0
    ds = io.open(out)
    assert ds["final_loss"].dims == ("normalisation", "lr", "seed") and np.all(ds["error"] == "")
    # 1e-10 < alpha* < 1e-9, 1e-8 < T alpha*
    assert ds["stuck"].sel(normalisation="none").values.tolist() == [[0, 0], [1, 1], [1, 1]]
    assert not ds["stuck"].sel(normalisation="by_T").any()
    assert (tmp_path / "fig2d.png").exists() and "ghost_fig2d.py" in ds.attrs["script"]
