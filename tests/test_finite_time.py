"""Finite-time Lyapunov exponents and the condition number of the long-term Jacobian.

Tolerances, one per kind of check:

* ``EXACT_ATOL`` -- quantities that are exact up to rounding (diagonal maps,
  identities between the two methods, the NumPy reference);
* ``GAP_RTOL`` -- the QR estimate of lambda_1 and the direct one differ by
  ``c / T`` with a constant ``c = log|<v_1, q_1>|`` once the leading singular
  vector has converged; after removing that offset they agree to this
  relative tolerance at T >= 500;
* ``ASYMPTOTIC_ATOL`` -- long-horizon finite-time exponents against
  :func:`lyapunov_spectrum` (a different finite-time window of the same orbit).
"""

import json

import numpy as np
import pytest
import scipy.linalg

import plrnn_numba as pn
from plrnn_numba import io
from plrnn_numba.dynamics.finite_time import condition_number, finite_time_exponents
from plrnn_numba.dynamics.lyapunov import lyapunov_spectrum

EXACT_ATOL = 1e-10
GAP_RTOL = 1e-6
ASYMPTOTIC_ATOL = 3e-3


def _diag_plrnn(a):
    model = pn.PLRNN(len(a), full_W=True)
    return model, model.pack(A=a, W=np.zeros((len(a), len(a))), h=np.zeros(len(a)))


@pytest.fixture(scope="module")
def chaotic():
    model = pn.VanillaRNN(16)
    return model, model.init(1, g=2.0)  # lambda_1 ~ 0.06 per step


def test_diagonal_map_is_exact_at_every_horizon():
    model, theta = _diag_plrnn([1.1, 0.8])
    H = np.array([1, 2, 3, 10, 50, 100, 500, 1000])
    ds = finite_time_exponents(model, theta, H, z0=np.zeros(2), q0="identity", n_transient=0)
    expected = np.broadcast_to(np.log([1.1, 0.8]), (H.size, 1, 2))
    np.testing.assert_allclose(ds["ftle_qr"].values, expected, rtol=0, atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["ftle_direct"].values, expected, rtol=0, atol=EXACT_ATOL)
    kappa = H[:, None] * np.log10(1.1 / 0.8)
    for name in ("log10_condition_qr", "log10_condition_direct"):
        np.testing.assert_allclose(ds[name].values, kappa, rtol=1e-13, atol=EXACT_ATOL)
        assert ds[name].attrs["units"] == "log10"
    assert ds["diverged"].values.tolist() == [0]
    # a random initial tangent system: individual QR exponents carry an O(1/T) offset,
    # but for k = M their sum is log|det| / T exactly
    c, s = np.cos(0.3), np.sin(0.3)
    ds = finite_time_exponents(model, theta, H, z0=np.zeros(2), q0=[[c, -s], [s, c]])
    np.testing.assert_allclose(ds["ftle_qr"].sum("exponent").values, np.log(0.88), atol=EXACT_ATOL)
    # lambda_1^QR(T) = log ||diag(1.1, 0.8)^T q_1|| / T
    expected = (H * np.log(1.1) + 0.5 * np.log(c**2 + (0.8 / 1.1) ** (2 * H) * s**2)) / H
    np.testing.assert_allclose(ds["ftle_qr"].values[:, 0, 0], expected, atol=EXACT_ATOL)


def test_tent_map_plrnn_has_ln2_at_every_horizon():
    # z' = 1 - 2|z| as a 1-D PLRNN: |J| = 2 at every step, so lambda(T) = ln 2 and kappa = 1 exactly
    model = pn.PLRNN(1, full_W=True)
    theta = model.pack(A=[2.0], W=[[-4.0]], h=[1.0])
    ds = finite_time_exponents(model, theta, [1, 10, 1000], z0=[0.1234])
    np.testing.assert_allclose(ds["ftle_qr"].values.ravel(), np.log(2.0), atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["ftle_direct"].values.ravel(), np.log(2.0), atol=EXACT_ATOL)
    assert np.all(ds["log10_condition_direct"].values == 0.0)


def test_expanding_map_does_not_overflow():
    model, theta = _diag_plrnn([1.1, 1.05])  # 1.1^10000 ~ 1e414 would overflow a plain product
    ds = finite_time_exponents(model, theta, [10_000], z0=np.zeros(2), q0="identity")
    np.testing.assert_allclose(ds["ftle_direct"].values[0, 0], np.log([1.1, 1.05]), atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["ftle_qr"].values[0, 0], np.log([1.1, 1.05]), atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["log10_condition_direct"].values, [[1e4 * np.log10(1.1 / 1.05)]], rtol=1e-12)
    # sigma_2 / sigma_1 ~ 1e-202: exact here (diagonal product) but flagged as beyond float64 resolution
    assert ds["direct_resolved"].values[0, 0].tolist() == [1, 0]


@pytest.mark.parametrize(
    "model_seed",
    [(pn.PLRNN(3), 2), (pn.VanillaRNN(3, nonlinearity="tanh"), 3), (pn.ShallowPLRNN(3, 5), 4)],
    ids=["plrnn", "vanilla", "shallow"],
)
def test_against_numpy_reference(model_seed):
    model, seed = model_seed
    theta = model.init(seed, g=2.0) if isinstance(model, pn.VanillaRNN) else model.init(seed)
    z0 = np.array([0.3, -0.2, 0.5])
    rng = np.random.default_rng(seed)
    q0, _ = np.linalg.qr(rng.standard_normal((3, 2)))
    H = [1, 4, 17, 40]
    ds = finite_time_exponents(model, theta, H, k=2, z0=z0, n_transient=7, q0=q0)
    z = z0.copy()
    for _ in range(7):
        z = model.step(theta, z)
    P, Q, sums = np.eye(3), q0.copy(), np.zeros(2)
    ref_qr, ref_dir = [], []
    for t in range(1, H[-1] + 1):
        J = model.jacobian(theta, z)
        P = J @ P
        Q, R = scipy.linalg.qr(J @ Q, mode="economic")
        sums += np.log(np.abs(np.diag(R)))
        Q = Q * np.sign(np.diag(R))
        z = model.step(theta, z)
        if t in H:
            ref_qr.append(sums / t)
            ref_dir.append(np.log(np.linalg.svd(P, compute_uv=False)[:2]) / t)
    np.testing.assert_allclose(ds["ftle_qr"].values[:, 0], ref_qr, atol=EXACT_ATOL)
    np.testing.assert_allclose(ds["ftle_direct"].values[:, 0], ref_dir, atol=EXACT_ATOL)


def test_chaotic_rnn_methods_agree_and_approach_lyapunov_spectrum(chaotic):
    model, theta = chaotic
    H = np.array([1, 2, 3, 200, 500, 1000, 2000, 5000, 10_000])
    ds = finite_time_exponents(model, theta, H, seed=0)
    q, d = ds["ftle_qr"].values[:, 0], ds["ftle_direct"].values[:, 0]
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(d))
    assert d[-1, 0] > 0.03  # chaotic: the long-term Jacobian expands like e^{600}
    resolved = ds["direct_resolved"].values[:, 0] == 1
    # exact for every T: partial sums of the QR exponents never exceed those of
    # the log singular values, with equality for the full sum (log|det| / T)
    excess = (np.cumsum(q, axis=1) - np.cumsum(d, axis=1))[resolved]
    assert excess.max() <= 1e-9
    short = resolved[:3].all(axis=1)
    assert short.all()
    np.testing.assert_allclose(q[:3].sum(axis=1), d[:3].sum(axis=1), atol=EXACT_ATOL)
    # T * (lambda_1^direct - lambda_1^QR) -> log|<v_1, q_1>|, a constant
    c = H[3] * (d[3, 0] - q[3, 0])
    long = H >= 500
    np.testing.assert_allclose(q[long, 0] + c / H[long], d[long, 0], rtol=GAP_RTOL)
    # (the constant depends on the orbit; what holds for every orbit: the gap is positive and shrinks)
    gap = d[long, 0] - q[long, 0]
    assert np.all(gap > 0.0) and np.all(np.diff(gap) < 0.0)
    # the long-horizon exponents approach the Benettin spectrum of the same orbit
    ls = lyapunov_spectrum(model, theta, n_steps=10_000, seed=0)
    lam = ls["exponents"].values[0]
    assert abs(q[-1, 0] - lam[0]) < ASYMPTOTIC_ATOL
    assert abs(d[-1, 0] - lam[0]) < ASYMPTOTIC_ATOL
    assert np.abs(q[-1] - lam).max() < 10 * ASYMPTOTIC_ATOL
    # condition number grows linearly in T at rate (lambda_1 - lambda_M) / ln 10
    cn = condition_number(model, theta, H[3:], seed=0)
    rate = cn["log10_condition_qr"].values[:, 0] / H[3:]
    assert np.all(np.diff(cn["log10_condition_qr"].values[:, 0]) > 0)
    np.testing.assert_allclose(rate[-1], (lam[0] - lam[-1]) / np.log(10), rtol=0.02)
    np.testing.assert_allclose(
        cn["log10_condition_asymptotic"].values[-1], cn["log10_condition_qr"].values[-1], rtol=1e-12
    )


def test_k_smaller_than_dim_uses_the_top_singular_values(chaotic):
    model, theta = chaotic
    H = [5, 50]
    full = finite_time_exponents(model, theta, H, seed=1)
    part = finite_time_exponents(model, theta, H, k=3, seed=1)
    assert part["ftle_qr"].shape == (2, 1, 3)
    np.testing.assert_allclose(part["ftle_direct"].values, full["ftle_direct"].values[:, :, :3], atol=EXACT_ATOL)
    np.testing.assert_allclose(
        part["log10_condition_direct"].values, full["log10_condition_by_dim_direct"].values[:, :, 2], atol=1e-12
    )


def test_driven_model_and_several_initial_conditions():
    model = pn.VanillaRNN(5, n_inputs=1)
    theta = model.init(0, g=1.5)
    x = np.random.default_rng(0).normal(size=(100 + 300, 1))
    ds = finite_time_exponents(model, theta, [100, 300], n_transient=100, inputs=x, n_init=3)
    assert ds["ftle_qr"].shape == (2, 3, 5)
    # a common input synchronises the initial conditions: same long-term Jacobian
    d = ds["ftle_direct"].values[-1]
    resolved = ds["direct_resolved"].values[-1] == 1
    assert resolved[:, 0].all()
    np.testing.assert_allclose(d[resolved], np.broadcast_to(d[:1], d.shape)[resolved], atol=1e-6)
    with pytest.raises(ValueError, match="inputs"):
        finite_time_exponents(model, theta, [100, 300], n_transient=100, inputs=x[:10])
    with pytest.raises(ValueError, match="inputs are required"):
        finite_time_exponents(model, theta, [10])


def test_divergence_is_flagged_not_raised():
    model, theta = _diag_plrnn([3.0, 3.0])
    theta = model.pack(A=[3.0, 3.0], W=np.zeros((2, 2)), h=[1.0, 1.0])
    ds = finite_time_exponents(model, theta, [5, 10, 2000], z0=[[1.0, 1.0], [0.5, 0.5]], n_transient=0)
    assert ds["diverged"].values.tolist() == [1, 1]
    step = ds["diverged_step"].values
    assert np.all((step > 600) & (step < 700))  # 3^t overflows near t = 646
    np.testing.assert_allclose(ds["ftle_direct"].values[:2], np.log(3.0), atol=EXACT_ATOL)
    assert np.all(np.isnan(ds["ftle_qr"].values[2])) and np.all(np.isnan(ds["log10_condition_direct"].values[2]))
    # divergence during the state transient: everything NaN, step 0
    ds = finite_time_exponents(model, theta, [5], z0=[1.0, 1.0], n_transient=2000)
    assert ds["diverged_step"].values.tolist() == [0]
    assert np.all(np.isnan(ds["ftle_qr"].values))


def test_collapsing_product_gives_minus_infinity():
    model, theta = _diag_plrnn([0.0, 0.0])  # J = 0: the product is exactly zero
    ds = finite_time_exponents(model, theta, [1, 3], z0=np.zeros(2), n_transient=0)
    assert np.all(ds["ftle_direct"].values == -np.inf)
    assert np.all(ds["ftle_qr"].values == -np.inf)
    assert ds["diverged"].values.tolist() == [0]


def test_bad_input_raises_clear_errors():
    model, theta = _diag_plrnn([0.5, 0.5])
    with pytest.raises(ValueError, match="k must be <= the state dimension 2"):
        finite_time_exponents(model, theta, [1], k=3)
    with pytest.raises(ValueError, match="strictly increasing"):
        finite_time_exponents(model, theta, [5, 3])
    with pytest.raises(ValueError, match="strictly increasing"):
        finite_time_exponents(model, theta, [3, 3])
    with pytest.raises(ValueError, match="positive"):
        finite_time_exponents(model, theta, [0, 5])
    with pytest.raises(ValueError, match="whole numbers"):
        finite_time_exponents(model, theta, [1.5, 3])
    with pytest.raises(ValueError, match="non-empty"):
        finite_time_exponents(model, theta, [])
    with pytest.raises(TypeError, match="horizons"):
        finite_time_exponents(model, theta, ["a"])
    bad = theta.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="theta contains NaN"):
        finite_time_exponents(model, bad, [1])
    with pytest.raises(ValueError, match="q0"):
        finite_time_exponents(model, theta, [1], q0="orthogonal")
    with pytest.raises(ValueError, match="orthonormal"):
        finite_time_exponents(model, theta, [1], q0=np.ones((2, 2)))
    with pytest.raises(ValueError, match="z0"):
        finite_time_exponents(model, theta, [1], z0=[np.inf, 0.0])
    with pytest.raises(TypeError, match="model"):
        finite_time_exponents("PLRNN", theta, [1])


def test_condition_number_dataset_round_trips(tmp_path):
    model, theta = _diag_plrnn([1.2, 0.9])
    H = [1, 10, 100]
    ds = condition_number(model, theta, H, z0=np.zeros(2), q0="identity", n_transient=0)
    expected = np.array(H)[:, None] * np.log10(1.2 / 0.9)
    for name in ("log10_condition_qr", "log10_condition_direct", "log10_condition_asymptotic"):
        np.testing.assert_allclose(ds[name].values, expected, rtol=1e-13, atol=EXACT_ATOL)
        assert ds[name].attrs["units"] == "log10" and ds[name].attrs["long_name"]
    assert ds.attrs["producer"] == "plrnn_numba.dynamics.condition_number"
    full = finite_time_exponents(model, theta, H, z0=np.zeros(2), q0="identity", n_transient=0)
    assert '"horizons": [1, 10, 100]' in full.attrs["arguments"]
    for obj in (ds, full):
        back = io.open(io.save(obj, tmp_path / "ft.nc"))
        for name in obj.data_vars:
            np.testing.assert_array_equal(back[name].values, obj[name].values)
        assert back["horizon"].attrs["units"] == "steps"


@pytest.mark.parametrize("seed", [None, "generator"], ids=["None", "Generator"])
def test_seed_none_or_generator_is_recorded_and_repeats_the_run(chaotic, seed):
    model, theta = chaotic
    seed = np.random.default_rng(8) if seed == "generator" else seed
    a = finite_time_exponents(model, theta, [5, 20], k=3, n_init=2, n_transient=10, seed=seed)
    recorded = json.loads(a.attrs["seeds"])
    assert isinstance(recorded, int) and 0 <= recorded < 2**63
    b = finite_time_exponents(model, theta, [5, 20], k=3, n_init=2, n_transient=10, seed=recorded)
    np.testing.assert_array_equal(a["ftle_qr"].values, b["ftle_qr"].values)
    c = condition_number(model, theta, [5, 20], k=3, n_init=2, n_transient=10, seed=recorded)
    assert json.loads(c.attrs["seeds"]) == recorded
    np.testing.assert_array_equal(c["log10_condition_qr"].values, a["log10_condition_qr"].values)


def test_constant_input_equals_the_explicit_stream():
    model = pn.VanillaRNN(5, n_inputs=1)
    theta = model.init(0, g=1.5)
    ds = finite_time_exponents(model, theta, [10, 30], n_transient=20, inputs=[0.4], n_init=2)
    ref = finite_time_exponents(model, theta, [10, 30], n_transient=20, inputs=np.full((2, 50, 1), 0.4), n_init=2)
    np.testing.assert_array_equal(ds["ftle_qr"].values, ref["ftle_qr"].values)
