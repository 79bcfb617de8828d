"""The LSTM (:class:`plrnn_numba.LSTM`), for Ribeiro et al. (2020), "Beyond exploding and vanishing gradients".

PyTorch's equations and gate order (i, f, g, o), state ``z = (h, c)``:
``c' = f c + i g``, ``h' = o tanh(c')``.

Checked here:

* the step kernel against a plain-NumPy step written below from the equations
  (single states, batches, with and without inputs and biases, both code paths
  of the gates: unit by unit below 8 units, gate by gate from 8 on, and the BLAS
  branch);
* the one-step Jacobian, its pullback (``jacobian_vjp``), the state and
  parameter VJP kernels against central finite differences; the forward-mode
  reference of :mod:`tests.naive` (its LSTM branches) against the kernels and
  against finite differences of itself;
* ``loss_and_grad`` (LinearReadout or identity readout, with inputs, masks)
  against central finite differences and the forward-mode reference, also with
  teacher forcing (of h);
* Lyapunov spectra of the chaotic 2-unit LSTM (positive largest exponent) and
  of the same weights halved (a stable fixed point at 0 whose exponents are
  known in closed form); flossing gradients; orbit diagrams;
* PyTorch: ``from_torch(nn.LSTM)`` gives equal trajectories, and loss and
  gradient equal torch's autograd (optional: skipped without torch);
* the tape kernels (BPTT's forward pass keeps the gates for the pullbacks)
  against the kernels that recompute them, and ``loss_and_grad`` with and
  without the tape; the parameter pullback over many rows (processed in
  blocks) against row-by-row calls;
* PyTorch's default initialisation; argument validation.
"""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import dynamics
from plrnn_numba.models.base import model_params

from .naive import (
    central_fd,
    n_params,
    naive_loss_and_grad,
    naive_param_jacobian,
    naive_state_jacobian,
    naive_step,
)

# Tolerances, one per kind of check (errors are ||a - b|| / ||b||, b the reference).
#: finite-difference step for whole losses: close to the optimal eps^(1/3) for O(1) losses
FD_STEP = 1e-5
# Central differences with h = 1e-5 have truncation and rounding errors of ~1e-11 per component;
# relative to gradients of norm 1e-2 .. 1 that is at most ~1e-8 (measured here: <= 2.3e-8, in the
# gradient of theta of the 10-unit model).
# A missing term or a wrong factor shows up at 1e-3 or more.
FD_RTOL = 1e-6
#: package (reverse mode, numba, fast-math, polynomial exp/tanh) against plain NumPy: rounding only
#: (measured <= 1.6e-15 for losses and gradients)
REF_RTOL = 1e-10
# One-step kernels (Jacobian, its pullback, the VJPs) against central differences with h = 1e-6
# of O(1) states: measured <= 1.3e-9 (also used for the flossing gradient: <= 1e-9).
JAC_RTOL = 1e-7
#: the float32 mode against the float64 reference: float32 rounding over T steps (measured <= 1e-6)
F32_RTOL = 1e-4
#: against torch.nn.LSTM in float64, states, loss and gradients (measured <= 3e-16 for the gradients)
TORCH_RTOL = 1e-10

T = 7


def ref_step(model, theta, z, u=None):
    """One LSTM step in plain NumPy, straight from the equations (PyTorch's documentation)."""
    d = model.unpack(theta)
    N = model.n_hidden
    h, c = z[:N], z[N:]
    a = d["weight_hh"] @ h
    if model.n_inputs:
        a = a + d["weight_ih"] @ u
    if model.bias:
        a = a + d["bias_ih"] + d["bias_hh"]
    sig = 1.0 / (1.0 + np.exp(-a))
    i, f, g, o = sig[:N], sig[N : 2 * N], np.tanh(a[2 * N : 3 * N]), sig[3 * N :]
    c_new = f * c + i * g
    return np.concatenate([o * np.tanh(c_new), c_new])


def rel_err(a, b):
    a, b = np.ravel(a), np.ravel(b)
    nb = np.linalg.norm(b)
    assert nb > 0.0, "reference is zero: the comparison would be vacuous"
    return float(np.linalg.norm(a - b) / nb)


MODELS = {
    "inputs": pn.LSTM(3, n_inputs=2),
    "nobias": pn.LSTM(3, bias=False),
    "one_unit": pn.LSTM(1, n_inputs=1),
    # 8 units and more: the gates are computed gate by gate (vectorised loops)
    "split": pn.LSTM(9, n_inputs=1),
    # with a batch of 16 rows: the BLAS branch of the kernels
    "blas": pn.LSTM(10, n_inputs=1, bias=False),
    # below 8 units with 8 batch rows or more: the kernels work on transposed copies (batch lanes)
    "lanes": pn.LSTM(3, n_inputs=2),
    "lanes_nobias": pn.LSTM(2, bias=False),
}
BATCH = {"blas": 16, "lanes": 12, "lanes_nobias": 9}


def _point(model, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    theta = model.init(seed, scale=scale)
    z = rng.normal(0.0, 0.7, model.dim)
    u = rng.normal(0.0, 1.0, model.n_inputs)
    return theta, z, u


def _rows(model_id, seed):
    """``(n, Z, U, G)``: a batch of states, inputs and output adjoints for the kernels of ``model_id``."""
    model = MODELS[model_id]
    rng = np.random.default_rng(seed)
    n = BATCH.get(model_id, 3)
    return (n, rng.normal(0.0, 0.8, (n, model.dim)), rng.normal(0.0, 1.0, (n, model.n_inputs)),
            rng.normal(0.0, 1.0, (n, model.dim)))


# -- the one-step kernels ---------------------------------------------------------------------
@pytest.mark.parametrize("model_id", MODELS)
def test_step_matches_the_equations(model_id):
    model = MODELS[model_id]
    theta, z, u = _point(model)
    u_arg = u if model.n_inputs else None
    np.testing.assert_allclose(model.step(theta, z, u_arg), ref_step(model, theta, z, u), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(naive_step(model, theta, z, u), ref_step(model, theta, z, u), rtol=1e-13, atol=1e-15)
    # batches of 3 (row loops) and 20 rows (BLAS from 8 units on)
    rng = np.random.default_rng(1)
    for n in (3, 20):
        Z = rng.normal(0.0, 1.0, (n, model.dim))
        U = rng.normal(0.0, 1.0, (n, model.n_inputs))
        got = model.step(theta, Z, U if model.n_inputs else None)
        want = np.stack([ref_step(model, theta, Z[b], U[b]) for b in range(n)])
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)


def test_gates_are_accurate_in_the_tails():
    # sigmoid(a) for |a| up to 700: exp(-|a|) without cancellation, so tiny gates keep their relative accuracy
    model = pn.LSTM(1, n_inputs=1, bias=False)
    a = np.concatenate([np.linspace(-40.0, 40.0, 81), [-700.0, -300.0, 300.0, 700.0]])
    for x in a:
        # i = f = o = sigma(x), g = tanh(x): with c = 0, c' = sigma(x) tanh(x), h' = sigma(x) tanh(c')
        theta = model.pack(weight_ih=np.ones((4, 1)), weight_hh=np.zeros((4, 1)))
        got = model.step(theta, np.zeros(2), [x])
        sig = 0.5 * (1.0 + np.tanh(0.5 * x)) if x > 0 else np.exp(x) / (1.0 + np.exp(x))
        c = sig * np.tanh(x)
        # the kernels' exp reduces its argument u = k ln 2 + r under fast-math reassociation: relative
        # error ~ |x| eps (measured 2.3e-14 at x = -700)
        np.testing.assert_allclose(got, [sig * np.tanh(c), c], rtol=5e-16 * max(abs(x), 20.0), atol=0.0)


@pytest.mark.parametrize("model_id", MODELS)
def test_jacobian_vs_finite_differences_and_naive(model_id):
    model = MODELS[model_id]
    theta, z, u = _point(model, 2)
    u_arg = u if model.n_inputs else None
    J = model.jacobian(theta, z, u_arg)
    assert J.shape == (model.dim, model.dim)
    assert rel_err(J, central_fd(lambda x: model.step(theta, x, u_arg), z, 1e-6)) < JAC_RTOL
    np.testing.assert_allclose(J, naive_state_jacobian(model, theta, z, u), rtol=1e-12, atol=1e-14)
    # the blocks written out: dc'/dc = diag(f), dh'/dc = diag(o (1 - tanh^2 c') f)
    N = model.n_hidden
    g = model.gates(theta, z, u_arg)
    c_new = ref_step(model, theta, z, u)[N:]
    np.testing.assert_allclose(J[N:, N:], np.diag(g["f"]), rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(J[:N, N:], np.diag(g["o"] * (1.0 - np.tanh(c_new) ** 2) * g["f"]), rtol=1e-12,
                               atol=1e-16)


@pytest.mark.parametrize("model_id", MODELS)
def test_vjp_kernels_vs_finite_differences(model_id):
    model = MODELS[model_id]
    theta, _, _ = _point(model, 3)
    n, Z, U, G = _rows(model_id, 4)
    p, meta, kern = model_params(model, theta), model.meta, model.kernels

    def step_b(th, x, b):
        return model.step(th, x, U[b] if model.n_inputs else None)

    g_z = np.full_like(Z, np.nan)  # the kernel must overwrite it
    kern.state_vjp(p, meta, Z, U, G, g_z)
    want = np.stack([central_fd(lambda x, b=b: step_b(theta, x, b), Z[b], 1e-6).T @ G[b] for b in range(n)])
    assert rel_err(g_z, want) < JAC_RTOL
    g_p = np.zeros(p.size)
    kern.param_vjp(p, meta, Z, U, G, g_p)
    want = sum(central_fd(lambda th, b=b: step_b(th, Z[b], b), theta, 1e-6).T @ G[b] for b in range(n))
    assert rel_err(model.reduce_grad(g_p), want) < JAC_RTOL


@pytest.mark.parametrize("model_id", MODELS)
def test_jacobian_vjp_vs_finite_differences(model_id):
    # g_z = d/dz sum(Jbar * J(z)) and g_p += d/dtheta sum(Jbar * J(z)): the kernel behind flossing gradients
    model = MODELS[model_id]
    theta, z, u = _point(model, 5)
    Jbar = np.random.default_rng(6).normal(size=(model.dim, model.dim))
    kern, meta = model.kernels, model.meta

    def pairing(th, zz):
        J = np.empty((model.dim, model.dim))
        kern.jacobian(model_params(model, th), meta, zz, u, J)
        return float(np.sum(Jbar * J))

    g_z = np.full(model.dim, np.nan)
    g_p = np.zeros(model_params(model, theta).size)
    kern.jacobian_vjp(model_params(model, theta), meta, z, u, Jbar, g_z, g_p)
    assert rel_err(g_z, central_fd(lambda x: pairing(theta, x), z, 1e-6)) < JAC_RTOL
    assert rel_err(model.reduce_grad(g_p), central_fd(lambda th: pairing(th, z), theta, 1e-6)) < JAC_RTOL


@pytest.mark.parametrize("model_id", ["inputs", "nobias"])
def test_naive_parameter_jacobian_vs_finite_differences(model_id):
    # the reference checks itself: its dF/dtheta against differences of its own step
    model = MODELS[model_id]
    theta, z, u = _point(model, 7)
    assert n_params(model) == model.n_params
    fd = central_fd(lambda th: naive_step(model, th, z, u), theta, 1e-6)
    assert rel_err(naive_param_jacobian(model, theta, z, u), fd) < JAC_RTOL


# -- loss_and_grad ------------------------------------------------------------------------------
def make_problem(model_id, readout_id, loss="mse"):
    """A deterministic random problem (seeded by its id)."""
    model = MODELS[model_id]
    rng = np.random.default_rng(zlib.crc32(f"{model_id}/{readout_id}/{loss}".encode()))
    Bn = BATCH.get(model_id, 3)
    N, K = model.dim, model.n_inputs
    theta = model.init(seed=int(rng.integers(2**31)), scale=2.0)
    if readout_id == "linear":
        readout, ro = pn.LinearReadout(1), rng.normal(0.0, 1.0, N + 1)
        X = rng.random((Bn, T, 1)) if loss == "bce" else rng.normal(0.0, 1.0, (Bn, T, 1))
    elif readout_id == "hidden":  # a linear readout of h alone, two outputs
        readout, ro = pn.LinearReadout(2, n_in=model.n_hidden), rng.normal(0.0, 1.0, 2 * model.n_hidden + 2)
        X = rng.normal(0.0, 1.0, (Bn, T, 2))
    else:  # identity on the first channels: the hidden state h
        readout, ro = pn.IdentityReadout(), None
        X = rng.normal(0.0, 0.5, (Bn, T, model.n_hidden))
    mask = np.ones((Bn, T))
    mask[0, 2] = 0.0
    mask[1, 5] = 0.5
    batch = pn.Batch(targets=X, inputs=rng.normal(0.0, 1.0, (Bn, T, K)) if K else None,
                     z0=rng.normal(0.0, 0.5, (Bn, N)), mask=mask)
    return model, theta, batch, readout, ro, loss


def package(model, theta, batch, readout, ro, loss, **kwargs):
    return pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro, loss=loss, **kwargs)


CASES = [
    pytest.param(m, r, "mse", id=f"{m}-{r}") for m in MODELS for r in ("linear", "identity")
] + [pytest.param("inputs", "linear", "bce", id="inputs-linear-bce"),
      pytest.param("split", "hidden", "mse", id="split-hidden"),
      pytest.param("blas", "hidden", "mse", id="blas-hidden")]


@pytest.mark.parametrize("model_id, readout_id, loss", CASES)
def test_gradient_vs_finite_differences(model_id, readout_id, loss):
    model, theta, batch, readout, ro, loss = make_problem(model_id, readout_id, loss)
    res = package(model, theta, batch, readout, ro, loss)
    assert res.finite
    P, R = model.n_params, 0 if ro is None else ro.size
    z0 = np.asarray(batch.z0)

    def f(x):
        return package(model, x[:P], replace(batch, z0=x[P + R :].reshape(z0.shape)), readout,
                       x[P : P + R] if R else None, loss).loss

    x = np.concatenate([theta, np.zeros(0) if ro is None else ro, z0.ravel()])
    fd = central_fd(f, x, FD_STEP)
    assert rel_err(res.grad, fd[:P]) < FD_RTOL
    assert rel_err(res.grad_z0.ravel(), fd[P + R :]) < FD_RTOL
    if R:
        assert rel_err(res.grad_readout, fd[P : P + R]) < FD_RTOL


@pytest.mark.parametrize("model_id, readout_id, loss", CASES)
def test_gradient_vs_naive_reference(model_id, readout_id, loss):
    model, theta, batch, readout, ro, loss = make_problem(model_id, readout_id, loss)
    res = package(model, theta, batch, readout, ro, loss)
    ref_loss, ref_grad, ref_gro, ref_gz0 = naive_loss_and_grad(model, theta, batch, readout, ro, loss)
    assert abs(res.loss - ref_loss) <= REF_RTOL * abs(ref_loss)
    assert rel_err(res.grad, ref_grad) < REF_RTOL
    assert rel_err(res.grad_z0, ref_gz0) < REF_RTOL
    if ref_gro.size:
        assert rel_err(res.grad_readout, ref_gro) < REF_RTOL


@pytest.mark.parametrize("model_id", MODELS)
def test_tape_kernels_match_the_recomputing_kernels(model_id):
    model = MODELS[model_id]
    theta, _, _ = _point(model, 5)
    n, Z, U, G = _rows(model_id, 6)
    p, meta, kern, tk = model_params(model, theta), model.meta, model.kernels, model.tape_kernels
    N = model.n_hidden
    zn, zn_tape = np.empty_like(Z), np.empty_like(Z)
    tape = np.full((n, model.tape_width), np.nan)
    kern.step(p, meta, Z, U, zn)
    tk.step(p, meta, Z, U, zn_tape, tape)
    np.testing.assert_array_equal(zn_tape, zn)
    # the tape holds i, f, g, o and tanh(c') of every row
    d = model.gates(theta, Z[0], U[0] if model.n_inputs else None)
    want = np.concatenate([d["i"], d["f"], d["g"], d["o"], np.tanh(zn[0, N:])])
    assert rel_err(tape[0], want) < REF_RTOL
    g_z, g_z_tape = np.empty_like(Z), np.full_like(Z, np.nan)
    kern.state_vjp(p, meta, Z, U, G, g_z)
    tk.state_vjp(p, meta, Z, U, tape, G, g_z_tape)
    assert rel_err(g_z_tape, g_z) < REF_RTOL
    g_p, g_p_tape = np.zeros(p.size), np.zeros(p.size)
    kern.param_vjp(p, meta, Z, U, G, g_p)
    tk.param_vjp(p, meta, Z, U, tape, G, g_p_tape)
    assert rel_err(g_p_tape, g_p) < REF_RTOL


@pytest.mark.parametrize("n_hidden", [9, 3])  # 3: the batch lanes (row by row: the unit loops)
def test_parameter_pullback_over_many_rows_equals_row_by_row_calls(n_hidden):
    # 600 rows: three blocks of the blocked reduction, the last one partial
    model = pn.LSTM(n_hidden, n_inputs=2)
    theta, _, _ = _point(model, 7)
    rng = np.random.default_rng(8)
    Z = rng.normal(0.0, 0.8, (600, model.dim))
    U = rng.normal(0.0, 1.0, (600, 2))
    G = rng.normal(0.0, 1.0, (600, model.dim))
    p, meta, kern = model_params(model, theta), model.meta, model.kernels
    g_all, g_rows = np.zeros(p.size), np.zeros(p.size)
    kern.param_vjp(p, meta, Z, U, G, g_all)
    for r in range(600):
        kern.param_vjp(p, meta, Z[r : r + 1], U[r : r + 1], G[r : r + 1], g_rows)
    assert rel_err(g_all, g_rows) < REF_RTOL
    tape = np.empty((600, model.tape_width))
    model.tape_kernels.step(p, meta, Z, U, np.empty_like(Z), tape)
    g_tape = np.zeros(p.size)
    model.tape_kernels.param_vjp(p, meta, Z, U, tape, G, g_tape)
    assert rel_err(g_tape, g_rows) < REF_RTOL


class _LSTMWithoutTape(pn.LSTM):
    """The LSTM declaring no tape: BPTT then recomputes the gates in the pullbacks."""

    @property
    def tape_width(self):
        return 0


@pytest.mark.parametrize("model_id", ["split", "blas", "lanes"])
def test_bptt_with_and_without_the_tape(model_id):
    model, theta, batch, readout, ro, loss = make_problem(model_id, "linear")
    bare = _LSTMWithoutTape(**{f: getattr(model, f) for f in ("n_hidden", "n_inputs", "bias")})
    r1 = package(model, theta, batch, readout, ro, loss)
    r2 = package(bare, theta, batch, readout, ro, loss)
    assert abs(r1.loss - r2.loss) <= REF_RTOL * abs(r2.loss)
    for a, b in ((r1.grad, r2.grad), (r1.grad_readout, r2.grad_readout), (r1.grad_z0, r2.grad_z0)):
        assert rel_err(a, b) < REF_RTOL


class _LSTMBlasFrom(pn.LSTM):
    """The LSTM with its per-step products on BLAS from a chosen number of batch rows."""

    def __init__(self, *args, blas_rows, **kwargs):
        super().__init__(*args, **kwargs)
        self._blas_rows = blas_rows

    @property
    def meta(self):
        meta = super().meta
        meta[4] = self._blas_rows
        return meta


@pytest.mark.parametrize("blas_rows", [2, 10**6], ids=["blas", "row-loops"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_both_per_step_product_paths_at_a_few_rows(blas_rows, dtype):
    # which path a few rows take depends on the machine's BLAS kernels (blas_min_rows); both must
    # agree with the plain-NumPy reference whichever the machine running the tests picks
    model = _LSTMBlasFrom(32, n_inputs=1, blas_rows=blas_rows)
    rng = np.random.default_rng(11)
    theta = model.init(3, scale=2.0)
    batch = pn.Batch(targets=rng.normal(0.0, 1.0, (3, T, 1)), inputs=rng.normal(0.0, 1.0, (3, T, 1)),
                     z0=rng.normal(0.0, 0.5, (3, model.dim)))
    readout, ro = pn.LinearReadout(1), rng.normal(0.0, 1.0, model.dim + 1)
    res = package(model, theta, batch, readout, ro, "mse", dtype=dtype)
    ref_loss, ref_grad, ref_gro, ref_gz0 = naive_loss_and_grad(model, theta, batch, readout, ro, "mse")
    tol = REF_RTOL if dtype == "float64" else F32_RTOL
    assert abs(res.loss - ref_loss) <= tol * abs(ref_loss)
    for got, want in ((res.grad, ref_grad), (res.grad_readout, ref_gro), (res.grad_z0, ref_gz0)):
        assert rel_err(got, want) < tol


def test_blas_min_rows_follows_the_blas_kernels(monkeypatch):
    from plrnn_numba.models import lstm

    for small, want in ((True, (16, 2)), (False, (16, 16))):
        monkeypatch.setattr(pn.config, "blas_small_matrix_kernels", lambda small=small: small)
        assert (lstm.blas_min_rows(31), lstm.blas_min_rows(32)) == want
        assert pn.LSTM(32).meta[4] == want[1]


def test_parallel_engine_matches_serial():
    model, theta, batch, readout, ro, loss = make_problem("blas", "linear")
    r1 = package(model, theta, batch, readout, ro, loss, n_threads=1)
    r2 = package(model, theta, batch, readout, ro, loss, n_threads=2)
    np.testing.assert_allclose(r2.loss, r1.loss, rtol=1e-13)
    for a, b in ((r2.grad, r1.grad), (r2.grad_readout, r1.grad_readout), (r2.grad_z0, r1.grad_z0)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# -- layout and initialisation --------------------------------------------------------------------
def test_layout_and_pytorch_default_initialisation():
    model = pn.LSTM(50, n_inputs=3)
    assert model.dim == 100 and model.n_params == 200 * 3 + 200 * 50 + 2 * 200
    assert list(model.param_shapes()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    theta = model.init(seed=0)
    d = model.unpack(theta)
    assert d["weight_hh"].shape == (200, 50) and d["weight_ih"].shape == (200, 3) and d["bias_ih"].shape == (200,)
    # U(-1/sqrt(N), 1/sqrt(N)) everywhere: bounded, mean 0, variance k^2 / 3
    k = 1.0 / np.sqrt(50)
    assert np.abs(theta).max() <= k
    assert abs(theta.mean()) < 0.05 * k and abs(theta.std() - k / np.sqrt(3)) < 0.05 * k
    assert model.pack(**d).tobytes() == theta.tobytes()
    assert pn.LSTM(4, bias=False).param_shapes() == {"weight_ih": (16, 0), "weight_hh": (16, 4)}
    assert model.param_names()[600] == "weight_hh[0,0]"
    assert model.describe() == {"model": "LSTM", "n_hidden": 50, "n_inputs": 3, "bias": True}
    np.testing.assert_array_equal(model.init(seed=1), model.init(seed=1))


# -- dynamics engines -------------------------------------------------------------------------------
#: Ribeiro et al.'s chaotic 2-unit LSTM: no biases, zero input weights, recurrent blocks (rows: hidden units)
CHAOTIC = {"i": [[-1, -4], [-3, -2]], "f": [[-2, 6], [0, -6]], "g": [[-1, -6], [6, -9]], "o": [[4, 1], [-9, -7]]}


def chaotic(scale=1.0):
    model = pn.LSTM(2, n_inputs=1, bias=False)
    W_hh = scale * np.vstack([CHAOTIC[k] for k in "ifgo"]).astype(float)
    return model, model.pack(weight_ih=np.zeros((8, 1)), weight_hh=W_hh)


def test_chaotic_lstm_has_a_positive_exponent():
    # measured: 0.1699 (50 000 steps), 0.1726 (10 000), 0.178 (2 000); the next ones -0.38, -1.7, -4.6
    model, theta = chaotic(1.0)
    ds = dynamics.lyapunov_spectrum(model, theta, n_steps=20_000, n_transient=1000, z0=np.full(4, 0.5),
                                    inputs=[0.0])
    lam = ds["exponents"].values[0]
    assert not ds["diverged"].values.any()
    assert 0.12 < lam[0] < 0.22, lam
    assert lam[1] < -0.2 and np.all(np.diff(lam) < 0.0)


def test_halved_chaotic_weights_give_a_stable_fixed_point_with_known_exponents():
    # at s = 0.5 the trajectory from h = c = 0.5 converges to z = 0, where a = 0: i = f = o = 1/2, g = 0,
    # c' = 0, so J = [[X/2], [X]] with X = [W_hg/2, I/2] (h' = c'/2 to first order).  J has rank N; its
    # nonzero eigenvalues are those of X [I/2; I] = W_hg/4 + I/2, a complex pair, and the two leading
    # exponents are log|lambda| = log(det(W_hg/4 + I/2)) / 2 (the other two are -inf: rank 2)
    model, theta = chaotic(0.5)
    ds = dynamics.lyapunov_spectrum(model, theta, n_steps=5000, n_transient=1000, z0=np.full(4, 0.5),
                                    inputs=[0.0])
    lam = ds["exponents"].values[0]
    W_hg = 0.5 * np.array(CHAOTIC["g"], dtype=float)
    exact = 0.5 * np.log(np.linalg.det(W_hg / 4.0 + np.eye(2) / 2.0))  # -0.5572
    assert exact < -0.5
    # a complex pair: QR estimates of the two moduli converge like 1/n_steps (measured: 1e-4)
    np.testing.assert_allclose(lam[:2], exact, atol=2e-3)
    # the other two are -inf, or the log of rounding noise where the QR leaves R_ii ~ 1e-16 instead of 0
    # (which happens depends on the BLAS kernels: measured -inf with OpenBLAS's Haswell kernels, -35.7 and
    # -36.6 with its SkylakeX kernels)
    assert np.all(lam[2:] < np.log(1e-12))


@pytest.mark.parametrize("model_id", ["inputs", "split"])
def test_flossing_gradient_vs_finite_differences(model_id):
    model = MODELS[model_id]
    theta = model.init(1, scale=3.0)
    u = np.full(model.n_inputs, 0.3) if model.n_inputs else None

    def floss(th):
        return dynamics.flossing_loss_and_grad(model, th, 2, n_steps=12, t_ons=2, inputs=u, seed=1)

    res = floss(theta)
    assert res.finite and res.exponents.shape == (1, 2)
    assert rel_err(res.grad, central_fd(lambda th: floss(th).loss, theta, 1e-6)) < JAC_RTOL


def test_orbit_diagram_runs_on_the_lstm():
    model, theta = chaotic(1.0)
    ds = dynamics.orbit_diagram(model, theta, "weight_hh[0,0]", np.linspace(-2.0, 0.0, 4), n_steps=20,
                                n_transient=30, n_init=2, inputs=[0.0], state=[0, 2])
    assert ds["z"].shape == (4, 2, 20, 2)
    assert np.all(np.isfinite(ds["z"].values)) and not ds["diverged"].values.any()
    # h is bounded by 1 (|o tanh(c)| < 1); |c'| <= |c| + 1
    assert np.abs(ds["z"].values[..., 0]).max() < 1.0


# -- PyTorch ---------------------------------------------------------------------------------------------
def _torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


@pytest.mark.parametrize("bias, batch_first", [(True, True), (False, False)])
def test_from_torch_lstm_trajectories_equal_torch(bias, batch_first):
    torch = _torch()
    lstm = torch.nn.LSTM(2, 5, bias=bias, batch_first=batch_first, dtype=torch.float64)
    model, theta = pn.interop.from_torch(lstm)
    assert model == pn.LSTM(5, n_inputs=2, bias=bias) and theta.shape == (model.n_params,)
    rng = np.random.default_rng(0)
    U = rng.normal(size=(3, 11, 2))
    h0, c0 = rng.normal(0.0, 0.5, (3, 5)), rng.normal(0.0, 0.5, (3, 5))
    x = torch.from_numpy(U if batch_first else U.transpose(1, 0, 2).copy())
    with torch.no_grad():
        out, (hT, cT) = lstm(x, (torch.from_numpy(h0)[None], torch.from_numpy(c0)[None]))
    out = out.numpy() if batch_first else out.numpy().transpose(1, 0, 2)
    Z = model.simulate(theta, np.hstack([h0, c0]), inputs=U)
    np.testing.assert_allclose(Z[:, 1:, :5], out, rtol=TORCH_RTOL, atol=1e-14)
    np.testing.assert_allclose(Z[:, -1, 5:], cT.numpy()[0], rtol=TORCH_RTOL, atol=1e-14)
    # an LSTMCell imports the same way
    cell = torch.nn.LSTMCell(2, 5, bias=bias, dtype=torch.float64)
    m2, th2 = pn.interop.from_torch(cell)
    with torch.no_grad():
        h1, c1 = cell(torch.from_numpy(U[:, 0]), (torch.from_numpy(h0), torch.from_numpy(c0)))
    np.testing.assert_allclose(m2.step(th2, np.hstack([h0, c0]), U[:, 0]), np.hstack([h1.numpy(), c1.numpy()]),
                               rtol=TORCH_RTOL, atol=1e-14)


@pytest.mark.parametrize("B", [4, 10])  # 10 rows: the batch lanes of the kernels below 8 units
def test_loss_and_gradient_equal_torch_autograd(B):
    torch = _torch()
    N, K = 6, 2
    lstm = torch.nn.LSTM(K, N, batch_first=True, dtype=torch.float64)
    model, theta = pn.interop.from_torch(lstm)
    rng = np.random.default_rng(1)
    U, X = rng.normal(size=(B, T, K)), rng.normal(size=(B, T, 1))
    h0, c0 = rng.normal(0.0, 0.5, (B, N)), rng.normal(0.0, 0.5, (B, N))
    w, b = rng.normal(size=N), rng.normal(size=1)
    # torch: y = w . h_t + b, mean squared error
    h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (h0, c0))
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    out, _ = lstm(torch.from_numpy(U), (h0t[None], c0t[None]))
    loss_t = ((out @ wt + bt - torch.from_numpy(X[..., 0])) ** 2).mean()
    loss_t.backward()
    grad_t = np.concatenate([p.grad.numpy().ravel() for p in (lstm.weight_ih_l0, lstm.weight_hh_l0,
                                                              lstm.bias_ih_l0, lstm.bias_hh_l0)])
    # the package: a linear readout of z = (h, c) that ignores c
    ro = np.concatenate([w, np.zeros(N), b])
    res = pn.loss_and_grad(model, theta, pn.Batch(targets=X, inputs=U, z0=np.hstack([h0, c0])),
                           readout=pn.LinearReadout(1), readout_params=ro, loss="mse")
    assert abs(res.loss - loss_t.item()) <= TORCH_RTOL * loss_t.item()
    assert rel_err(res.grad, grad_t) < TORCH_RTOL
    assert rel_err(res.grad_z0, np.hstack([h0t.grad.numpy(), c0t.grad.numpy()])) < TORCH_RTOL
    assert rel_err(res.grad_readout[:N], wt.grad.numpy()) < TORCH_RTOL
    assert rel_err(res.grad_readout[-1:], bt.grad.numpy()) < TORCH_RTOL


# -- argument validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, exc, name", [
    ({"n_hidden": 0}, ValueError, "n_hidden"),
    ({"n_hidden": 2.5}, TypeError, "n_hidden"),
    ({"n_hidden": 3, "n_inputs": -1}, ValueError, "n_inputs"),
    ({"n_hidden": 3, "bias": 1}, TypeError, "bias"),
])
def test_model_arguments_are_validated(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        pn.LSTM(**kwargs)


def test_pack_errors_name_the_argument():
    m, nob = pn.LSTM(2, n_inputs=1), pn.LSTM(2, bias=False)
    W = np.zeros((8, 2))
    with pytest.raises(ValueError, match="weight_ih is required"):
        m.pack(weight_hh=W, bias_ih=np.zeros(8), bias_hh=np.zeros(8))
    with pytest.raises(ValueError, match="bias_hh is required"):
        m.pack(weight_ih=np.zeros((8, 1)), weight_hh=W, bias_ih=np.zeros(8))
    with pytest.raises(ValueError, match="bias=False"):
        nob.pack(weight_hh=W, bias_ih=np.zeros(8))
    with pytest.raises(ValueError, match=r"weight_hh must have shape \(8, 2\)"):
        nob.pack(weight_hh=np.zeros((2, 8)))
    with pytest.raises(ValueError, match="NaN or inf"):
        nob.pack(weight_hh=np.full((8, 2), np.nan))
    with pytest.raises(ValueError, match="scale"):
        m.init(0, scale=-1.0)


@pytest.mark.parametrize("forcing", [pn.GTF(0.3), pn.SparseTF(3)], ids=["gtf", "sparse_tf"])
def test_teacher_forcing_gradient_vs_naive_reference(forcing):
    # forcing replaces the observed channels of the state, here h (the first N of z = (h, c))
    model, theta, batch, readout, ro, loss = make_problem("split", "identity")
    res = package(model, theta, batch, readout, ro, loss, forcing=forcing)
    ref_loss, ref_grad, _, ref_gz0 = naive_loss_and_grad(model, theta, batch, readout, ro, loss, forcing=forcing)
    assert abs(res.loss - ref_loss) <= REF_RTOL * abs(ref_loss)
    assert rel_err(res.grad, ref_grad) < REF_RTOL
    assert rel_err(res.grad_z0, ref_gz0) < REF_RTOL


def test_readout_of_h_alone_is_the_full_readout_with_zero_c_columns():
    model, theta, batch, readout, ro, loss = make_problem("split", "hidden")
    M = model.dim
    full = pn.LinearReadout(2)
    ro_full = readout.dense(ro, M)
    assert np.all(ro_full[:2 * M].reshape(2, M)[:, model.n_hidden:] == 0.0)
    r1 = package(model, theta, batch, readout, ro, loss)
    r2 = package(model, theta, batch, full, ro_full, loss)
    assert r1.loss == pytest.approx(r2.loss, rel=REF_RTOL)
    assert rel_err(r1.grad, r2.grad) < REF_RTOL
    want = r2.grad_readout[:2 * M].reshape(2, M)[:, : model.n_hidden].ravel()
    assert rel_err(r1.grad_readout, np.concatenate([want, r2.grad_readout[2 * M:]])) < REF_RTOL
    z = np.random.default_rng(0).normal(size=(4, M))
    np.testing.assert_allclose(readout.apply(ro, z), full.apply(ro_full, z), rtol=1e-14)
    with pytest.raises(ValueError, match="n_in = 19 exceeds the latent dimension 18"):
        package(model, theta, batch, pn.LinearReadout(2, n_in=19), np.zeros(40), loss)
    with pytest.raises(ValueError, match="n_in"):
        pn.LinearReadout(2, n_in=0)


def test_predict_with_a_readout_of_h_alone():
    model, theta, batch, readout, ro, _ = make_problem("split", "hidden")
    y, Z = pn.predict(model, theta, batch, readout=readout, readout_params=ro)
    B = ro[: 2 * model.n_hidden].reshape(2, model.n_hidden)
    np.testing.assert_allclose(y, Z[:, 1:, : model.n_hidden] @ B.T + ro[2 * model.n_hidden:], rtol=1e-13)
