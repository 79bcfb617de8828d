"""The training scripts of the attractors-and-smoothness reproduction run (tiny sizes; the real runs are described
in the scripts' docstrings): sine-wave generation (Figs. 4-5) and symbol classification (Table 1, Fig. 6)."""

from __future__ import annotations

import numpy as np
import pytest

from .scripts_loader import load_script as _script
from .scripts_loader import run_script as _run


def test_sine_records_mse_history_and_orbit_diagrams(tmp_path):
    ds = _run("attractors_sine", tmp_path, "--seeds", "1", "--n-hidden", "3", "--epochs", "4", "--snapshot-every", "2",
              "--n-seq", "20", "--n-steps", "30", "--burn-in", "12", "--keep", "5")
    assert list(ds["model"].values) == ["lstm", "slstm", "ornn"]
    assert ds["mse"].dims == ("model", "seed", "epoch") and ds.sizes["epoch"] == 4
    # snapshots at epochs 0, 2 and the last (3); 4 initial states; the kept steps 12..16
    assert ds["y"].dims == ("model", "seed", "snapshot_epoch", "init", "sample")
    np.testing.assert_array_equal(ds["snapshot_epoch"].values, [0, 2, 3])
    np.testing.assert_array_equal(ds["sample"].values, np.arange(12, 17))
    assert ds["dy"].shape == ds["y"].shape and ds.sizes["init"] == 4
    assert np.all(np.isfinite(ds["y"].sel(model="lstm").values))
    # y_t - y_{t-1}: consecutive samples of y agree with dy
    y, dy = ds["y"].values, ds["dy"].values
    np.testing.assert_allclose(dy[..., 1:], np.diff(y, axis=-1), atol=1e-12)
    assert np.all((ds["final_mse"] > 0.1) & (ds["final_mse"] < 2.0))  # 4 epochs: near the 0.5 baseline
    rows = _script("attractors_sine").summary(ds)
    assert [r["model"] for r in rows] == ["lstm", "slstm", "ornn"] and rows[1]["paper_mse"] == 0.49


def test_symbols_records_validation_accuracy_and_table1(tmp_path):
    ds = _run("attractors_symbols", tmp_path, "--models", "lstm", "slstm", "ornn", "--lengths", "50", "60",
              "--n-hidden", "3", "--ornn-hidden", "4", "--epochs", "3", "--milestones", "2", "--n-train", "100",
              "--n-val", "50", "--batch", "50", "--eval-every", "1", "--snapshot-every", "2", "--n-init", "2",
              "--burn-in", "12", "--keep", "5", "--ornn-generator", "upper", "--gamma", "0.25",
              "--batch-order", "fixed", "--readout-init", "uniform")
    assert ds.attrs["ornn_hidden"] == "4" and ds.attrs["encoding"] == "onehot"
    assert ds.attrs["batch_order"] == "fixed" and ds.attrs["readout_init"] == "uniform"
    assert ds.attrs["ornn_generator"] == "upper" and ds.attrs["gamma"] == "0.25"
    assert ds["final_accuracy"].dims == ("model", "length", "seed")
    np.testing.assert_array_equal(ds["length"].values, [50, 60])
    assert ds["val_accuracy"].dims == ("model", "length", "seed", "eval_epoch")
    np.testing.assert_array_equal(ds["eval_epoch"].values, [0, 1, 2])
    acc = ds["final_accuracy"].values
    assert np.all((acc >= 0) & (acc <= 1))
    # accuracies are multiples of 1/50 (50 validation sequences), training accuracies of 1/100
    np.testing.assert_allclose(acc * 50, np.round(acc * 50), atol=1e-9)
    assert ds["train_accuracy"].dims == ds["val_accuracy"].dims
    for train in (ds["final_train_accuracy"].values, ds["train_accuracy"].values):
        assert np.all((train >= 0) & (train <= 1))
        np.testing.assert_allclose(train * 100, np.round(train * 100), atol=1e-9)
    # Fig. 7: orbit diagrams at the snapshots 0, 2 and the last (2), every one-hot symbol, 2 initial states, the
    # kept steps 12..16, the four class logits
    dims = ("model", "length", "seed", "snapshot_epoch", "symbol", "init", "sample", "output")
    assert ds["y"].dims == dims and ds["dy"].dims == dims
    np.testing.assert_array_equal(ds["snapshot_epoch"].values, [0, 2])
    assert list(ds["symbol"].values) == ["p", "q", "a", "b", "c", "d"]
    np.testing.assert_array_equal(ds["sample"].values, np.arange(12, 17))
    assert ds.sizes["init"] == 2 and ds.sizes["output"] == 4 and ds["dy"].shape == ds["y"].shape
    y, dy = ds["y"].values, ds["dy"].values
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dy))
    np.testing.assert_allclose(dy[..., 1:, :], np.diff(y, axis=-2), atol=1e-12)
    assert np.all(ds["orbit_seconds"].values >= 0)
    rows = _script("attractors_symbols").table1(ds)
    assert [r["length"] for r in rows] == [50, 60]
    assert rows[0]["paper_slstm"] == 1.0 and np.isnan(rows[1]["paper_ornn"])  # the paper has no l = 60
    assert rows[0]["ornn_train"] == float(ds["final_train_accuracy"].sel(model="ornn", length=50).mean())


def test_symbols_stops_early_at_validation_accuracy_one(tmp_path):
    # at the paper's rate 1e-2 the LSTM solves l = 50 within a few epochs at N = 16 (seed 0: ~20 epochs)
    ds = _run("attractors_symbols", tmp_path, "--models", "lstm", "--lengths", "50", "--n-hidden", "16",
              "--lr", "1e-2", "--epochs", "40", "--milestones", "--n-train", "500", "--n-val", "200",
              "--eval-every", "1", "--snapshot-every", "5", "--burn-in", "20", "--keep", "5")
    assert ds.sizes["output"] == 4 and "softmax" in ds["output"].attrs["long_name"]
    point = ds.isel(model=0, length=0, seed=0)
    assert str(point["status"].values) == "solved" and float(point["final_accuracy"]) == 1.0
    solved = int(point["solved_epoch"])
    assert 0 <= solved < 40 and int(point["epochs_run"]) == solved + 1
    assert np.all(np.isnan(point["val_accuracy"].values[solved + 1 :]))
    assert np.all(np.isnan(point["loss"].values[solved + 1 :]))
    # the orbit diagrams: on the grid 0, 5, ..., 35, 39; NaN after the stop
    np.testing.assert_array_equal(ds["snapshot_epoch"].values, [*range(0, 40, 5), 39])
    after = ds["snapshot_epoch"].values > solved
    assert np.all(np.isfinite(point["y"].values[~after])) and np.all(np.isnan(point["y"].values[after]))


def test_symbols_trains_two_logistic_bits_with_bits_targets(tmp_path):
    # the default is the paper's 4-class softmax (tested above); --encoding bits: two logistic outputs
    ds = _run("attractors_symbols", tmp_path, "--models", "lstm", "--lengths", "50", "--encoding", "bits",
              "--n-hidden", "3", "--epochs", "2", "--n-train", "100", "--n-val", "50", "--batch", "50",
              "--eval-every", "1", "--snapshot-every", "1", "--n-init", "2", "--burn-in", "12", "--keep", "5")
    assert ds.sizes["output"] == 2 and "bit" in ds["output"].attrs["long_name"]
    acc = ds["val_accuracy"].values
    assert np.all((acc >= 0) & (acc <= 1)) and np.allclose(acc * 50, np.round(acc * 50))


def test_symbols_batch_orders_and_readout_inits():
    mod = _script("attractors_symbols")
    rng = np.random.default_rng(0)
    # the authors' loader: consecutive slices, the same order every epoch (the remainder 250 % 100 left out)
    pick = mod.batch_picker("fixed", 250, 100)
    for _ in range(2):
        for lo in (0, 100):
            np.testing.assert_array_equal(pick(rng), np.arange(lo, lo + 100))
    idx = mod.batch_picker("random", 250, 100)(rng)
    assert idx.size == 100 and np.unique(idx).size == 100 and idx.min() >= 0 and idx.max() < 250
    # the package's readout initialisation unchanged by default; PyTorch's uniform one within +-1/sqrt(k)
    import plrnn_numba as pn

    ro = pn.LinearReadout(4)
    np.testing.assert_array_equal(mod.initial_readout(ro, 200, "normal", 3), ro.init(200, 3))
    u = mod.initial_readout(ro, 200, "uniform", 3)
    assert u.shape == (ro.n_params(200),) and np.all(np.abs(u) <= 200 ** -0.5) and np.all(u[-4:] != 0)
    assert abs(u.std() - 200 ** -0.5 / np.sqrt(3)) < 0.1 * 200 ** -0.5  # the spread of U(-b, b): b / sqrt(3)
    with pytest.raises(ValueError, match="batch_order must be"):
        mod.batch_picker("shuffled", 10, 5)
    with pytest.raises(ValueError, match="readout_init must be"):
        mod.initial_readout(ro, 5, "zeros", 0)


def test_symbols_authors_code_settings():
    mod = _script("attractors_symbols")
    ours, _ = mod.parse_args(["--full"])
    assert (ours.lr, ours.gamma, ours.clip, ours.batch_order, ours.readout_init, ours.ornn_generator) == (
        None, 0.1, 0.25, "random", "normal", None)  # lr and generator: the preset's (1e-2, full)
    code, _ = mod.parse_args(["--full", "--authors-code", "--batch", "50"])
    assert (code.lr, code.gamma, code.clip, code.batch_order, code.readout_init, code.ornn_generator) == (
        1e-3, 0.25, 0.25 / 50, "fixed", "uniform", "upper")
    # options given explicitly win
    mixed, _ = mod.parse_args(["--authors-code", "--lr", "1e-2", "--clip", "0.1", "--batch-order", "random",
                               "--ornn-generator", "full"])
    assert (mixed.lr, mixed.clip, mixed.batch_order, mixed.ornn_generator, mixed.gamma) == (
        1e-2, 0.1, "random", "full", 0.25)


def test_symbols_validation_in_chunks_equals_one_pass():
    import plrnn_numba as pn
    from plrnn_numba.tasks.attractors import class_accuracy, symbol_classification

    mod = _script("attractors_symbols")
    net, theta, _ = mod.build("lstm", 5, 6, seed=1)
    readout = mod.make_readout(net, 4)
    ro = np.random.default_rng(2).normal(size=readout.n_params(net.dim))
    val = symbol_classification(23, 60, seed=3, encoding="onehot")
    y, _ = pn.predict(net, theta, val, readout=readout, readout_params=ro)
    whole = class_accuracy(y, val)
    assert 0 < whole < 1  # random weights: some sequences right, some wrong, so the weighting is checked
    for chunk in (1, 7, 23, 100):
        assert abs(mod.set_accuracy(net, theta, val, readout, ro, chunk=chunk) - whole) < 1e-12
