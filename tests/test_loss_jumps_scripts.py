"""The loss-jump scripts (Eisenmann et al. 2023) run and record what their docs report (small sizes)."""

from __future__ import annotations

import numpy as np
import pytest

from plrnn_numba import io

from .scripts_loader import load_script


def test_theorems_script_fits_the_derived_slope(tmp_path):
    out = tmp_path / "thm.nc"
    assert load_script("loss_jumps_theorems").main(["--out", str(out)]) == 0
    ds = io.open(out)
    assert out.with_suffix(".png").exists()
    assert ds["grad_norm"].dims == ("case", "side", "distance", "n_steps")
    assert list(ds["case"].values) == ["fp_dtb", "cycle_dtb", "fp_border", "cycle_border"]
    # Theorem 1: slope -3 (h: -2) at both degenerate transcritical bifurcations (measured: -3.00 and -3.01)
    np.testing.assert_allclose(ds["fitted_slope"].sel(case=["fp_dtb", "cycle_dtb"]), -3.0, atol=0.05)
    np.testing.assert_allclose(ds["fitted_slope_h"].sel(case=["fp_dtb", "cycle_dtb"]), -2.0, atol=0.05)
    np.testing.assert_allclose(ds["s_star"].sel(case="fp_dtb"), 0.4, atol=1e-7)
    # the border collision of the fixed point: finite limits from both sides, no divergence
    near = ds["grad_norm"].sel(case="fp_border").isel(distance=-1)
    assert np.all(np.isfinite(near)) and float(near.max()) < 10.0


def test_toy_script_matches_jumps_and_bifurcations(tmp_path):
    out = tmp_path / "toy.nc"
    argv = ["--seeds", "1", "--epochs", "600", "--max-order", "2", "--grid", "6", "--out", str(out)]
    assert load_script("loss_jumps_toy").main(argv) == 0
    ds = io.open(out)
    assert out.with_suffix(".png").exists() and (tmp_path / "toy_path.png").exists()
    assert ds["loss"].dims == ("seed", "epoch") and ds.sizes["epoch"] == 600
    match = io.open(tmp_path / "toy_matches" / "seed_0.nc")
    assert match.attrs["n_jumps"] == int(ds["n_jumps"].sel(seed=0))
    assert int(match["matched"].sum()) == int(ds["n_jumps_matched"].sel(seed=0))
    assert 0 <= int(ds["n_jumps_matched"].sel(seed=0)) <= int(ds["n_jumps"].sel(seed=0))


def test_theorem3_script_counts_bifurcations_of_the_forced_map(tmp_path):
    from .scripts_loader import run_script

    ds = run_script("loss_jumps_theorem3", tmp_path, "--alphas", "0", "0.6", "--seeds", "1", "--epochs", "40")
    assert list(ds["forcing"].values) == ["alpha=0", "alpha=0.6", "theorem3"]
    assert ds["dtb_forced"].dims == ("forcing", "seed") and ds["r"].dims == ("forcing", "seed", "snapshot")
    # without forcing the forced map is the model; alpha is 0 at every snapshot
    free = ds.sel(forcing="alpha=0")
    np.testing.assert_array_equal(free["dtb_forced"], free["dtb_model"])
    assert float(free["alpha_at_snapshot"].max()) == 0.0 and int(free["above_bound"].squeeze()) == 0
    # Theorem3Alpha keeps alpha above 1 - 1/r at every snapshot (the margin is 0.05): no DTB of the forced map
    t3 = ds.sel(forcing="theorem3")
    assert int(t3["above_bound"].squeeze()) == 1 and int(t3["dtb_forced"].squeeze()) == 0


def test_membrane_script_records_jumps_events_and_both_backends(tmp_path):
    out = tmp_path / "mem.nc"
    argv = ["--epochs", "60", "--snapshot-every", "20", "--max-order", "2", "--skip", "0", "--lag", "3",
            "--compare-backends", "--out", str(out)]
    assert load_script("loss_jumps_membrane").main(argv) == 0
    ds = io.open(out)
    assert out.with_suffix(".png").exists()
    assert ds["loss"].dims == ("epoch",) and ds.sizes["epoch"] == 60 and ds.attrs["n_snapshots"] == 4
    assert {"jump", "event"} <= set(ds.dims) and ds["distance"].dims == ("jump", "event")
    assert ds.attrs["seconds_per_snapshot_cpu"] > 0 and ds.attrs["seconds_per_snapshot_parallel"] > 0
    assert ds.attrs["alpha"] == 0.07 and "loss_jumps_membrane.py" in ds.attrs["script"]
    # the history is kept before the analysis; analysed again it gives the same jumps and events
    saved = tmp_path / "mem_history.nc"
    assert saved.exists()
    again = tmp_path / "again.nc"
    assert load_script("loss_jumps_membrane").main(["--history", str(saved), "--max-order", "2", "--skip", "0",
                                                    "--lag", "3", "--out", str(again)]) == 0
    ds2 = io.open(again)
    np.testing.assert_array_equal(ds2["loss"].values, ds["loss"].values)
    np.testing.assert_array_equal(ds2["s"].values, ds["s"].values)
    assert ds2.attrs["n_snapshots"] == 4 and ds2.attrs["snapshot_every"] == 20
    with pytest.raises(SystemExit):
        load_script("loss_jumps_membrane").main(["--history", str(again), "--out", str(tmp_path / "bad.nc")])
