"""The rate-RNN reproduction scripts of the ghost-mechanism paper run (small sizes; the real runs are in
docs/reproductions/ghost_mechanism.md)."""

from __future__ import annotations

import numpy as np

from .scripts_loader import load_script as _script
from .scripts_loader import run_script as _run


def test_fig4_counts_its_networks_and_frees_a_stuck_one_by_lowering_c(tmp_path):
    # Seed 13 reaches accuracy 1 late, but when (3575, 3870, or not within 4000 epochs) and whether it is thrown back
    # into the zone move with the last bits of the arithmetic (BLAS kernels; weights changed by 1e-9); so only the
    # bookkeeping is checked on it.  Seed 14 never leaves the zone under every variant measured, and c = 1 frees it
    # while c = 10 does not (docs/reproductions/ghost_mechanism.md).
    ds = _run("ghost_fig4", tmp_path, "--seed", "13", "--seeds", "2", "--epochs", "4000", "--c-range", "0", "1", "2")
    d = ds.isel(lr=0, train_c=0)
    np.testing.assert_array_equal(d["seed"].values, [13, 14])
    learned, stuck, best = d["learned_at_some_point"].values, d["stuck"].values, d["max_accuracy"].values
    first = d["first_epoch_learned"].values
    np.testing.assert_array_equal(learned, best > 0.5)
    np.testing.assert_array_equal(first >= 0, best >= 1.0)
    assert np.all((first == -1) | (first > 1500))  # no seed of 0..299 reaches accuracy 1 within 1500 epochs
    after = d["accuracy_after_lowering"].values
    np.testing.assert_array_equal(np.isfinite(after).all(axis=1), stuck == 1)  # lowered exactly when stuck
    never = d.sel(seed=14)
    assert int(never["learned_at_some_point"]) == 0 and int(never["stuck"]) == 1
    np.testing.assert_array_equal(never["accuracy_after_lowering"].values > 0.5, [True, False])  # c = 1, c = 10
    row = _script("ghost_fig4").summary(ds)[0]
    both = int(((learned == 1) & (stuck == 1)).sum())
    assert (row["networks"], row["learned_at_some_point"], row["stuck"], row["learned_then_stuck"]) == (
        2, int(learned.sum()), int(stuck.sum()), both)
    assert row["never_learned"] == 2 - int(learned.sum()) and row["reached_accuracy_1"] == int((first >= 0).sum())


def test_fig3_records_the_latent_circuit_along_training(tmp_path):
    ds = _run("ghost_fig3", tmp_path, "--seeds", "1", "--epochs", "200", "100", "--snapshots", "4", "--n-units", "20")
    assert ds["flow"].dims == ("panel", "seed", "mark", "kappa_grid")
    assert np.all(ds["n_fixed_points"] >= 1)  # the latent flow -kappa + O(1) always crosses zero
    np.testing.assert_array_equal(ds["mark_epoch"].sel(panel="A").values[0, [0, -1]], [0, 199])


def test_figS1_and_figS2_run(tmp_path):
    s1 = _run("ghost_figS1", tmp_path, "--lr-range", "-2", "-1", "2", "--seeds", "1", "--epochs", "100")
    assert s1["stuck"].dims == ("lr", "seed") and np.all(s1["stuck"] == 1)  # 100 epochs leave no plateau
    s2 = _run("ghost_figS2", tmp_path, "--ranks", "1", "2", "--seeds", "1", "--epochs", "100")
    assert s2["epochs_to_learn"].dims == ("rank", "seed") and np.all(s2["initial_radius"] > 0)
