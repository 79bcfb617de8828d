"""The rate-RNN reproduction scripts of the ghost-mechanism paper run (small sizes; the real runs are in
docs/reproductions/ghost_mechanism.md)."""

from __future__ import annotations

import numpy as np

from .scripts_loader import load_script as _script
from .scripts_loader import run_script as _run


def test_fig4_counts_a_learned_then_stuck_network_that_a_lowered_confidence_frees(tmp_path):
    # seed 13 reaches accuracy 1 late (epoch 3617 with OpenBLAS's Haswell kernels, 3589 with its SkylakeX ones: 4000
    # epochs amplify the kernels' last-bit differences) and is stuck by epoch 4000
    # (docs/reproductions/ghost_mechanism.md); c = 1 frees it
    ds = _run("ghost_fig4", tmp_path, "--seed", "13", "--seeds", "1", "--epochs", "4000", "--c-range", "0", "0", "1")
    point = ds.isel(lr=0, train_c=0, seed=0)
    assert int(point["learned_at_some_point"]) == 1 and int(point["stuck"]) == 1
    assert 3000 < int(point["first_epoch_learned"]) < 4000
    # recovered (out of the no-learning zone): 1.0 with the Haswell kernels, 0.975 with the SkylakeX ones
    assert float(point["accuracy_after_lowering"].sel(c_lowered=1.0)) > 0.9
    row = _script("ghost_fig4").summary(ds)[0]
    assert (row["learned_at_some_point"], row["learned_then_stuck"], row["recovered_at_best_c"]) == (1, 1, 1.0)


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
