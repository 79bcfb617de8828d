"""Delayed copy / XOR tasks of Engelken (2023): definitions checked with plain NumPy loops."""

import numpy as np
import pytest
import xarray as xr

import plrnn_numba as pn
from plrnn_numba import io, tasks
from plrnn_numba.tasks import (
    TaskBatchSource,
    accuracy,
    batch_from_dataset,
    delayed_copy,
    delayed_spatial_xor,
    delayed_temporal_xor,
    make_task,
    task_batch_source,
)


def _first_defined(mask):
    return int(np.argmax(mask[0] > 0))


def test_delayed_copy_definition_shapes_and_mask():
    b = delayed_copy(5, 40, 7, seed=0)
    assert isinstance(b, pn.Batch)
    assert b.targets.shape == (5, 40, 1) and b.inputs.shape == (5, 40, 1) and b.mask.shape == (5, 40)
    assert b.z0 is None
    x, y = b.inputs[..., 0], b.targets[..., 0]
    assert set(np.unique(x)) <= {0.0, 1.0} and set(np.unique(y)) <= {0.0, 1.0}
    for i in range(5):
        for t in range(40):
            if t >= 7:
                assert b.mask[i, t] == 1.0 and y[i, t] == x[i, t - 7]
            else:
                assert b.mask[i, t] == 0.0 and y[i, t] == 0.0
    assert delayed_copy(2, 10, 3, seed=1, dim=4).z0.tolist() == np.zeros((2, 4)).tolist()


@pytest.mark.parametrize("delay", [1, 6, 7])
def test_temporal_xor_paper_and_code_definitions(delay):
    T = 50
    b = delayed_temporal_xor(4, T, delay, seed=delay)
    x, y = b.inputs[..., 0].astype(int), b.targets[..., 0]
    half = delay // 2
    assert _first_defined(b.mask) == delay
    for i in range(4):
        for t in range(delay, T):
            assert y[i, t] == (x[i, t - half] ^ x[i, t - delay])
    c = delayed_temporal_xor(4, T, delay, seed=delay, definition="code")
    x, y = c.inputs[..., 0].astype(int), c.targets[..., 0]
    assert _first_defined(c.mask) == 2 * delay and c.mask[:, : 2 * delay].sum() == 0
    for i in range(4):
        for t in range(2 * delay, T):
            assert y[i, t] == (x[i, t - delay] ^ x[i, t - 2 * delay])
    # the paper's definition is the default
    np.testing.assert_array_equal(
        delayed_temporal_xor(2, T, delay, seed=9).targets,
        delayed_temporal_xor(2, T, delay, seed=9, definition="paper").targets,
    )


def test_spatial_xor_definition():
    b = delayed_spatial_xor(3, 30, 4, seed=2)
    assert b.inputs.shape == (3, 30, 3) and b.targets.shape == (3, 30, 1)
    x, y = b.inputs.astype(int), b.targets[..., 0]
    for i in range(3):
        for t in range(4, 30):
            assert y[i, t] == (x[i, t - 4, 0] ^ x[i, t - 4, 1] ^ x[i, t - 4, 2])
    assert _first_defined(b.mask) == 4
    # inputs are fair coins
    big = delayed_spatial_xor(64, 200, 1, seed=3)
    assert abs(big.inputs.mean() - 0.5) < 0.02 and abs(big.targets[:, 1:].mean() - 0.5) < 0.02


def test_determinism_and_dataset_view(tmp_path):
    a = delayed_spatial_xor(2, 20, 3, seed=11)
    b = delayed_spatial_xor(2, 20, 3, seed=11)
    c = delayed_spatial_xor(2, 20, 3, seed=12)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    assert not np.array_equal(a.inputs, c.inputs)
    ds = make_task("temporal_xor", 2, 20, 4, seed=11, as_dataset=True)
    assert isinstance(ds, xr.Dataset)
    assert dict(ds.sizes) == {"batch": 2, "step": 20, "input": 1, "output": 1}
    assert ds.attrs["definition"] == "paper" and ds.attrs["first_target_index"] == 4
    assert all(ds[v].attrs["units"] and ds[v].attrs["long_name"] for v in ds.data_vars)
    back = batch_from_dataset(io.open(io.save(ds, tmp_path / "task.nc")))
    ref = delayed_temporal_xor(2, 20, 4, seed=11)
    for name in ("inputs", "targets", "mask"):
        np.testing.assert_array_equal(getattr(back, name), getattr(ref, name))


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="delay"):
        delayed_copy(2, 10, 0, seed=0)
    with pytest.raises(ValueError, match="n_steps"):
        delayed_copy(2, 5, 5, seed=0)
    with pytest.raises(ValueError, match="n_steps"):
        delayed_temporal_xor(2, 10, 5, seed=0, definition="code")
    with pytest.raises(ValueError, match="n_batch"):
        delayed_spatial_xor(0, 10, 2, seed=0)
    with pytest.raises(ValueError, match="definition"):
        delayed_temporal_xor(2, 10, 2, seed=0, definition="other")
    with pytest.raises(TypeError, match="delay"):
        delayed_copy(2, 10, 2.5, seed=0)
    with pytest.raises(ValueError, match="task"):
        task_batch_source("parity", 2, 10, 2)
    with pytest.raises(ValueError, match="n_steps"):
        task_batch_source("copy", 2, 3, 3)


def test_accuracy_counts_only_masked_steps():
    b = delayed_copy(3, 12, 4, seed=0)
    perfect = np.where(b.targets > 0.5, 2.0, -2.0)
    perfect[:, :4] = np.nan  # undefined steps are ignored
    assert accuracy(perfect, b) == 1.0
    assert accuracy(-perfect[..., 0], b) == 0.0
    wrong = perfect.copy()
    wrong[0, 4:6] *= -1
    assert accuracy(wrong, b) == pytest.approx(1 - 2 / (3 * 8))
    with pytest.raises(ValueError, match="logits"):
        accuracy(np.zeros((3, 11)), b)


def test_batch_source_draws_fresh_reproducible_batches():
    src = task_batch_source("copy", 4, 20, 2, seed=5)
    assert isinstance(src, TaskBatchSource)
    b0, b1 = src(None, 0), src(None, 1)
    assert not np.array_equal(b0.inputs, b1.inputs)
    again = task_batch_source("copy", 4, 20, 2, seed=5)
    np.testing.assert_array_equal(again(None, 0).inputs, b0.inputs)
    # without a seed, the trainer's generator supplies the bits
    free = task_batch_source("spatial_xor", 4, 20, 2)
    np.testing.assert_array_equal(free(np.random.default_rng(3), 0).inputs, free(np.random.default_rng(3), 7).inputs)
    assert "spatial_xor" in repr(free)


def test_vanilla_rnn_learns_delayed_copy_with_bce():
    model = pn.VanillaRNN(16, n_inputs=1)
    readout = pn.LinearReadout(1)
    hist = pn.train(
        model,
        model.init(0),
        task_batch_source("copy", 16, 30, 2, seed=1),
        n_epochs=300,
        loss="bce",
        readout=readout,
        optimizer=pn.Adam(1e-2),
        seed=0,
    )
    assert hist.attrs["status"] == "completed"
    test = delayed_copy(64, 100, 2, seed=123)
    logits, _ = pn.predict(
        model, hist["theta"].values, test, readout=readout, readout_params=hist["readout_params"].values
    )
    assert accuracy(logits, test) > 0.95


def test_delayed_activation_is_one_trial_from_a_fixed_state():
    b = tasks.delayed_activation(7, n_delay=3, n_active=2, x0=-0.3)
    np.testing.assert_array_equal(b.targets[0, :, 0], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(b.z0, np.full((1, 7), -0.3))
    assert b.inputs is None and b.mask.shape == (1, 5) and b.mask.min() == 1.0
    ds = tasks.delayed_activation(7, n_delay=3, n_active=2, as_dataset=True)
    back = tasks.batch_from_dataset(ds)
    np.testing.assert_array_equal(back.targets, b.targets)
    np.testing.assert_array_equal(back.z0, b.z0)
    assert back.inputs is None
    # a logit on the right side of 0 at every step scores 1, the constant "0" output scores the delay's share
    assert tasks.accuracy(2.0 * b.targets - 1.0, b) == 1.0
    assert tasks.accuracy(-np.ones_like(b.targets), b) == 0.6
    with pytest.raises(ValueError, match="n_delay"):
        tasks.delayed_activation(7, n_delay=0)
