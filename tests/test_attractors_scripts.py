"""The attractors-and-smoothness reproduction scripts run (small sizes; the real runs are in
docs/reproductions/attractors.md)."""

from __future__ import annotations

import numpy as np

from plrnn_numba import io

from .scripts_loader import load_script as _script


def test_fig1_chaotic_lstm(tmp_path):
    out = tmp_path / "fig1.nc"
    argv = ["--n-s", "4", "--n-v", "3", "--backend", "serial", "--no-progress", "--out", str(out)]
    assert _script("attractors_fig1").main(argv) == 0
    ds = io.open(out)
    assert out.with_suffix(".png").exists() and np.all(ds["error"] == "")
    assert ds["h1"].dims == ("s", "sample") and ds["landscape"].dims == ("s", "v")
    at1 = ds.sel(s=1.0)
    assert float(at1["cost"]) == 0.0 and float(at1["landscape"].sel(v=0.0)) == 0.0  # the data-generating weights
    assert float(at1["lyapunov"]) > 0.1  # chaotic at s = 1
    assert float(ds["lyapunov"].sel(s=0.5)) < -0.3 and float(ds["lyapunov"].sel(s=2.0)) < -0.3


def test_smoothness_grows_with_the_length_only_for_the_chaotic_lstm(tmp_path):
    out = tmp_path / "smooth.nc"
    argv = ["--lengths", "10", "100", "--backend", "serial", "--no-progress", "--out", str(out)]
    assert _script("attractors_smoothness").main(argv) == 0
    ds = io.open(out)
    assert np.all(ds["error"] == "") and ds["lipschitz_grad"].dims == ("s", "length", "direction")
    grad = ds["lipschitz_grad"].median("direction")
    assert float(grad.sel(s=1.0, length=100)) > 1e6 * float(grad.sel(s=1.0, length=10))  # exponential in N
    assert float(grad.sel(s=0.5, length=100)) < 2 * float(grad.sel(s=0.5, length=10))  # bounded
