"""PyTorch import/export (plrnn_numba.interop): same dynamics, coordinates, cycles, errors, tutorial.

Tolerances: trajectories and single steps of the imported model agree with
torch's float64 module to ``TOL_TRAJ`` (max abs difference relative to
``max(1, |h|)``); cycles found in the package's coordinates close in torch's
to ``TOL_CYCLE`` (SCYFI's own exactness); cycle Jacobian spectra agree to
``TOL_EIG`` (characteristic polynomials, relative to their largest coefficient).
"""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import plrnn_numba as pn  # noqa: E402
from plrnn_numba.interop import (  # noqa: E402
    from_torch,
    from_torch_initial_state,
    from_torch_state,
    to_torch,
    to_torch_states,
)

TOL_TRAJ = 1e-12
TOL_CYCLE = 1e-10
TOL_EIG = 1e-8

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "examples" / "torch_relu_rnn.py"
TUTORIAL = ROOT / "docs" / "tutorials" / "torch_rnn.md"


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def _random_rnn(N, K, nonlinearity, *, bias=True, batch_first=False, seed=0, scale=None):
    """A float64 nn.RNN with reproducible weights (``scale``: N(0, scale^2) entries instead of torch's init)."""
    torch.manual_seed(seed)
    m = torch.nn.RNN(K, N, nonlinearity=nonlinearity, bias=bias, batch_first=batch_first).double()
    if scale is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


def _phi(nonlinearity, z):
    return np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0.0)


# ------------------------------------------------------------------------------ trajectories
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch_first", [True, False])
def test_trajectories_match_torch(nonlinearity, bias, batch_first):
    N, K, B, T = 6, 3, 4, 200
    m = _random_rnn(N, K, nonlinearity, bias=bias, batch_first=batch_first, seed=1)
    model, theta = from_torch(m)
    assert isinstance(model, pn.VanillaRNN)
    assert (model.n_hidden, model.n_inputs, model.nonlinearity) == (N, K, nonlinearity)
    assert theta.dtype == np.float64 and theta.shape == (model.n_params,)

    rng = np.random.default_rng(2)
    x = rng.normal(size=(B, T, K))
    # relu hidden states are non-negative; tanh ones lie in (-1, 1)
    h0 = rng.uniform(0.0, 1.0, (B, N)) if nonlinearity == "relu" else rng.uniform(-0.9, 0.9, (B, N))
    xt = torch.from_numpy(x if batch_first else np.swapaxes(x, 0, 1).copy())
    with torch.no_grad():
        out, h_n = m(xt, torch.from_numpy(h0)[None])
    out = out.numpy() if batch_first else np.swapaxes(out.numpy(), 0, 1)

    z0 = from_torch_initial_state(model, h0)
    np.testing.assert_allclose(_phi(nonlinearity, z0), h0, rtol=1e-15, atol=1e-15)
    Z = model.simulate(theta, z0, inputs=x)  # (B, T + 1, N)
    H = to_torch_states(model, Z[:, 1:])
    assert _rel_err(H, out) <= TOL_TRAJ
    assert _rel_err(H[:, -1], h_n.numpy()[0]) <= TOL_TRAJ
    # the pre-activations themselves are torch's W_ih x_t + W_hh h_{t-1} + b_ih + b_hh
    p = dict(m.named_parameters())
    pre = x[:, 0] @ p["weight_ih_l0"].detach().numpy().T + h0 @ p["weight_hh_l0"].detach().numpy().T
    if bias:
        pre = pre + (p["bias_ih_l0"] + p["bias_hh_l0"]).detach().numpy()
    assert _rel_err(Z[:, 1], pre) <= TOL_TRAJ


def test_parameter_mapping_float32_and_requires_grad():
    m = torch.nn.RNN(2, 4, nonlinearity="tanh")  # float32, parameters require grad
    model, theta = from_torch(m)
    p = model.unpack(theta)
    np.testing.assert_array_equal(p["W"], m.weight_hh_l0.detach().double().numpy())
    np.testing.assert_array_equal(p["V"], m.weight_ih_l0.detach().double().numpy())
    np.testing.assert_array_equal(p["b"], (m.bias_ih_l0.detach().double() + m.bias_hh_l0.detach().double()).numpy())


def test_rnncell_import():
    torch.manual_seed(3)
    cell = torch.nn.RNNCell(2, 5, nonlinearity="relu").double()
    model, theta = from_torch(cell)
    rng = np.random.default_rng(3)
    h, x = rng.uniform(0, 1, (7, 5)), rng.normal(size=(7, 2))
    with torch.no_grad():
        h1 = cell(torch.from_numpy(x), torch.from_numpy(h)).numpy()
    z = from_torch_state(model, theta, h, x)
    assert _rel_err(to_torch_states(model, z), h1) <= TOL_TRAJ
    assert _rel_err(to_torch_states(model, model.step(theta, from_torch_initial_state(model, h), x)), h1) <= TOL_TRAJ


# ------------------------------------------------------------------------------ state helpers
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_from_torch_state_continues_the_run(nonlinearity):
    N, K, T = 5, 2, 50
    m = _random_rnn(N, K, nonlinearity, batch_first=True, seed=4)
    model, theta = from_torch(m)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, T, K))
    with torch.no_grad():
        out, _ = m(torch.from_numpy(x))  # h_0 = 0
    h = out.numpy()
    t = 10
    # z_{t+1} from torch's h_t and x_{t+1}; then the package continues with x_{t+2}..x_T
    z = from_torch_state(model, theta, torch.from_numpy(h[:, t]), x[:, t + 1])
    assert _rel_err(to_torch_states(model, z), h[:, t + 1]) <= TOL_TRAJ
    Z = model.simulate(theta, z, inputs=x[:, t + 2 :])
    assert _rel_err(to_torch_states(model, Z), h[:, t + 1 :]) <= TOL_TRAJ
    with pytest.raises(ValueError, match="x is required"):
        from_torch_state(model, theta, h[:, t])
    with pytest.raises(ValueError, match=r"h_prev must have shape \(\.\.\., 5\)"):
        from_torch_state(model, theta, np.zeros(4), x[0, 0])


def test_initial_state_conditions():
    relu = pn.VanillaRNN(3, 1, "relu")
    tanh = pn.VanillaRNN(3, 1, "tanh")
    h0 = np.array([0.0, 0.5, 2.0])
    np.testing.assert_array_equal(from_torch_initial_state(relu, h0), h0)
    with pytest.raises(ValueError, match="negative"):
        from_torch_initial_state(relu, [0.1, -0.2, 0.0])
    h0 = np.array([-0.999, 0.0, 0.7])
    np.testing.assert_allclose(np.tanh(from_torch_initial_state(tanh, h0)), h0, rtol=1e-15, atol=1e-16)
    # a saturated tanh state (|h| rounds to 1) has no preimage; from_torch_state is the way round
    with pytest.raises(ValueError, match=r"\|h0\| >= 1.*from_torch_state"):
        from_torch_initial_state(tanh, [1.0, 0.0, 0.0])
    theta = tanh.init(seed=0)
    z1 = from_torch_state(tanh, theta, [1.0, 0.0, -1.0], [0.3])
    p = tanh.unpack(theta)
    np.testing.assert_allclose(z1, p["W"] @ [1.0, 0.0, -1.0] + p["V"] @ [0.3] + p["b"], rtol=1e-15)
    # torch's (num_layers, B, N) shape is kept
    assert from_torch_initial_state(relu, torch.zeros(1, 4, 3)).shape == (1, 4, 3)
    with pytest.raises(TypeError, match="VanillaRNN"):
        from_torch_initial_state(pn.PLRNN(3), np.zeros(3))


def test_to_torch_states_dataarray_and_nan():
    import xarray as xr

    model = pn.VanillaRNN(2, 1, "relu")
    pts = xr.DataArray([[[1.0, -1.0], [np.nan, np.nan]]], dims=("cycle", "point", "state"), attrs={"units": "1"})
    H = to_torch_states(model, pts)
    assert isinstance(H, xr.DataArray) and H.dims == pts.dims
    np.testing.assert_array_equal(H.values[0, 0], [1.0, 0.0])
    assert np.all(np.isnan(H.values[0, 1]))  # padding beyond a cycle's order stays NaN
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        to_torch_states(model, np.zeros((4, 3)))


# ------------------------------------------------------------------------------ export
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batch_first", [True, False])
def test_round_trip(nonlinearity, batch_first):
    m = _random_rnn(4, 2, nonlinearity, batch_first=batch_first, seed=5)
    model, theta = from_torch(m)
    back = to_torch(model, theta, batch_first=batch_first)
    assert isinstance(back, torch.nn.RNN) and back.weight_hh_l0.dtype == torch.float64
    assert back.batch_first == batch_first and back.nonlinearity == nonlinearity
    model2, theta2 = from_torch(back)
    assert model2 == model
    np.testing.assert_array_equal(theta2, theta)  # bias_hh = 0: b + 0 is exact
    x = torch.from_numpy(np.random.default_rng(5).normal(size=(3, 40, 2)))
    if not batch_first:
        x = x.transpose(0, 1)
    with torch.no_grad():
        assert _rel_err(back(x)[0].numpy(), m(x)[0].numpy()) <= TOL_TRAJ


def test_to_torch_options_and_errors():
    model = pn.VanillaRNN(3, 2, "relu")
    theta = model.pack(W=np.eye(3), V=np.ones((3, 2)), b=np.zeros(3))
    m = to_torch(model, theta, bias=False, dtype=torch.float32)
    assert m.bias is False and m.weight_hh_l0.dtype == torch.float32
    with pytest.raises(ValueError, match="bias=False needs b = 0"):
        to_torch(model, model.init(seed=0), bias=False)
    with pytest.raises(ValueError, match="input_size >= 1"):
        to_torch(pn.VanillaRNN(3, 0, "tanh"), pn.VanillaRNN(3, 0, "tanh").init(seed=0))
    with pytest.raises(TypeError, match="VanillaRNN"):
        to_torch(pn.PLRNN(3), pn.PLRNN(3).init(seed=0))
    with pytest.raises(ValueError, match="theta must be a 1-D vector"):
        to_torch(model, np.zeros(5))


# ------------------------------------------------------------------------------ rejected modules
@pytest.mark.parametrize(
    ("module", "error", "match"),
    [
        (lambda: torch.nn.LSTM(2, 3, num_layers=2), ValueError, "num_layers=2"),
        (lambda: torch.nn.LSTM(2, 3, bidirectional=True), ValueError, "bidirectional"),
        (lambda: torch.nn.LSTM(2, 3, proj_size=2), ValueError, "proj_size=2"),
        (lambda: torch.nn.GRU(2, 3), TypeError, "GRU"),
        (lambda: torch.nn.GRUCell(2, 3), TypeError, "GRUCell"),
        (lambda: torch.nn.RNN(2, 3, num_layers=2), ValueError, "num_layers=2"),
        (lambda: torch.nn.RNN(2, 3, bidirectional=True), ValueError, "bidirectional"),
        (lambda: torch.nn.Linear(2, 3), TypeError, "Linear"),
        (lambda: {"weight_hh_l0": np.eye(3)}, TypeError, "dict"),
        (lambda: np.eye(3), TypeError, "ndarray"),
    ],
)
def test_bad_modules_rejected(module, error, match):
    with pytest.raises(error, match=match):
        from_torch(module())


def test_nonfinite_weights_rejected():
    m = torch.nn.RNN(2, 3)
    with torch.no_grad():
        m.weight_hh_l0[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        from_torch(m)


def test_missing_torch_message(monkeypatch):
    # sys.modules[name] = None makes `import name` raise ImportError
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=re.escape("pip install plrnn_numba[torch]")):
        from_torch(object())
    with pytest.raises(ImportError, match="optional dependency"):
        to_torch(pn.VanillaRNN(2, 1), pn.VanillaRNN(2, 1).init(seed=0))
    # the state maps are NumPy only and work without torch
    assert to_torch_states(pn.VanillaRNN(2, 1, "relu"), np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]


def test_package_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import plrnn_numba.interop as i\n"
        "try:\n    i.from_torch(None)\nexcept ImportError as e:\n    print(e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "pip install plrnn_numba[torch]" in res.stdout


# ------------------------------------------------------------------------------ cycles
def _torch_cycle_check(m, H, order, s):
    """Iterate the torch module k steps from h_1 (one step at a time): largest relative error."""
    x = torch.from_numpy(np.asarray(s, dtype=np.float64))[None, None, :]
    err = 0.0
    with torch.no_grad():
        h = torch.from_numpy(H[0])[None, None, :]
        for j in range(1, order + 1):
            _, h = m(x, h)
            err = max(err, _rel_err(h[0, 0].numpy(), H[j % order]))
    return err


def _torch_cycle_jacobian(m, h1, order, s):
    """d G^k / d h at h_1 by torch autograd through the module."""
    x = torch.from_numpy(np.asarray(s, dtype=np.float64))[None, None, :]

    def Gk(h):
        for _ in range(order):
            _, hh = m(x, h[None, None, :])
            h = hh[0, 0]
        return h

    return torch.autograd.functional.jacobian(Gk, torch.from_numpy(h1)).numpy()


def _same_spectrum(J, eig):
    # characteristic polynomials: no matching of (complex, possibly repeated) eigenvalues needed
    a, b = np.poly(J), np.real(np.poly(eig))
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b))))) <= TOL_EIG


# small relu systems (N = 3, K = 2) whose enumerated cycles include orders 1, 2 and 4
CYCLE_CASES = [(0, 1.5), (5, 1.5), (6, 1.5)]
S_CONST = np.array([0.5, -0.3])


def _check_dataset_in_torch(m, model, ds):
    H = to_torch_states(model, ds["points"].values)
    for c in range(ds.sizes["cycle"]):
        k = int(ds["order"][c])
        assert np.all(np.isnan(H[c, k:]))
        assert _torch_cycle_check(m, H[c, :k], k, S_CONST) <= TOL_CYCLE
        J = _torch_cycle_jacobian(m, H[c, 0], k, S_CONST)
        eig = ds["eig_real"].values[c] + 1j * ds["eig_imag"].values[c]
        assert _same_spectrum(J, eig)


@pytest.mark.parametrize(("seed", "scale"), CYCLE_CASES)
def test_cycles_of_equivalent_plrnn_are_torch_cycles(seed, scale):
    """The conjugacy, checked with today's SCYFI: relu VanillaRNN == PLRNN(A = 0, full W, C = V, h = b)."""
    from plrnn_numba.dynamics import scyfi

    m = _random_rnn(3, 2, "relu", seed=seed, scale=scale)
    model, theta = from_torch(m)
    p = model.unpack(theta)
    pl = pn.PLRNN(3, 2, full_W=True)
    th = pl.pack(A=np.zeros(3), W=p["W"], C=p["V"], h=p["b"])
    # keywords only: the same call under the old and the new scyfi signature
    ds = scyfi(pl, theta=th, max_order=4, inputs=S_CONST)
    assert ds.sizes["cycle"] > 0
    _check_dataset_in_torch(m, model, ds)


@pytest.mark.parametrize(("seed", "scale"), CYCLE_CASES)
def test_scyfi_on_imported_relu_rnn(seed, scale):
    """SCYFI on the imported model itself (piecewise-linear protocol for VanillaRNN relu)."""
    from plrnn_numba.dynamics import brute_force_cycles, scyfi

    m = _random_rnn(3, 2, "relu", seed=seed, scale=scale)
    model, theta = from_torch(m)
    max_order = 4
    ds = scyfi(model, theta, max_order, inputs=S_CONST)
    bf = brute_force_cycles(model, theta, max_order, inputs=S_CONST)
    assert ds.sizes["cycle"] == bf.sizes["cycle"] > 0
    np.testing.assert_array_equal(np.sort(ds["order"].values), np.sort(bf["order"].values))
    _check_dataset_in_torch(m, model, ds)


# ------------------------------------------------------------------------------ tutorial
@pytest.fixture(scope="module")
def tutorial():
    # run_name other than "__main__": defines the functions without running main()
    return runpy.run_path(str(SCRIPT), run_name="torch_relu_rnn")


def test_tutorial_training_and_import(tutorial):
    x, y = tutorial["flipflop_batch"](np.random.default_rng(0), 3, 50)
    assert x.shape == y.shape == (3, 50, tutorial["N_BITS"])
    assert np.all(np.abs(y) == 1.0) and np.all(y[:, 0] == x[:, 0])
    pulses = x != 0.0
    assert np.all(y[pulses] == x[pulses])  # the target follows each pulse
    rnn, readout, losses = tutorial["train_flipflop"](n_iters=60, seed=0)
    assert losses.shape == (60,) and np.all(np.isfinite(losses)) and losses[-10:].mean() < losses[:10].mean()
    model, theta, err = tutorial["import_and_check"](rnn.double())
    assert model.nonlinearity == "relu" and model.n_hidden == tutorial["N_HIDDEN"]
    assert err <= TOL_TRAJ


def test_tutorial_script_runs(tutorial, tmp_path):
    res = tutorial["main"](["--quick", "--out", str(tmp_path), "--max-order", "4"])
    assert res["figure"].is_file() and res["figure"].stat().st_size > 10_000
    assert res["trajectory_error"] <= TOL_TRAJ
    assert res["cycle_error"] <= TOL_CYCLE
    assert res["cycles"].sizes["cycle"] > 0


def test_tutorial_page_shows_the_script():
    """The page's training functions are the script's, verbatim: the code a reader sees is the code tested here
    (the page itself runs as a documentation example)."""
    page, script = TUTORIAL.read_text(), SCRIPT.read_text()
    for name in ("flipflop_batch", "train_flipflop"):
        m = re.search(rf"^def {name}\(.*?\n(?=\S)", page, re.S | re.M)
        assert m is not None, name
        assert m.group(0).strip() in script, name
    assert "figures/torch_relu_rnn.png" in page
