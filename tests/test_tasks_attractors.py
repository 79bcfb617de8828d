"""Sine-wave generation and symbol classification (Ribeiro et al. 2020) against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from plrnn_numba import io, tasks
from plrnn_numba.tasks import class_accuracy, sine_wave, symbol_classification


def test_sine_wave_is_the_authors_task():
    b = sine_wave()
    assert b.inputs.shape == (100, 400, 1) and b.targets.shape == (100, 400, 1) and np.all(b.mask == 1)
    omega = b.inputs[:, 0, 0]
    np.testing.assert_allclose(omega[[0, -1]], [np.pi / 16, np.pi / 8], rtol=0, atol=1e-15)
    assert np.all(np.diff(omega) > 0) and np.all(b.inputs == omega[:, None, None])
    # y_t = sin(omega t), t = 1 .. 400 at array index t - 1
    assert b.targets[3, 0, 0] == np.sin(omega[3]) and b.targets[3, 399, 0] == np.sin(400 * omega[3])


def test_sine_wave_dataset_round_trips(tmp_path):
    ds = sine_wave(5, 20, as_dataset=True)
    io.save(ds, tmp_path / "sine.nc")
    back = io.open(tmp_path / "sine.nc")
    np.testing.assert_array_equal(back["targets"].values, ds["targets"].values)
    assert back["omega"].attrs["units"] == "rad/step"
    b = tasks.batch_from_dataset(back)
    np.testing.assert_array_equal(b.inputs, sine_wave(5, 20).inputs)


@pytest.mark.parametrize("encoding", ["onehot", "bits"])
def test_symbol_sequences_hold_two_relevant_symbols_at_the_drawn_steps(encoding):
    ds = symbol_classification(300, 60, seed=4, encoding=encoding, as_dataset=True)
    x = ds["inputs"].values
    assert np.all(x.sum(axis=2) == 1)  # one symbol per step
    sym = x.argmax(axis=2)
    t1, t2, label = ds["t1"].values, ds["t2"].values, ds["label"].values
    assert t1.min() >= 10 and t1.max() <= 19 and t2.min() >= 40 and t2.max() <= 49
    for b in range(300):
        relevant = np.flatnonzero(sym[b] < 2) + 1  # 1-based steps holding p or q
        assert relevant.tolist() == [t1[b], t2[b]]
        assert label[b] == 2 * sym[b, t1[b] - 1] + sym[b, t2[b] - 1]
    # every class and every position occurs; the mask scores the last step only
    assert set(label) == {0, 1, 2, 3} and len(set(t1)) == 10 and len(set(t2)) == 10
    m = ds["mask"].values
    assert np.all(m[:, -1] == 1) and m[:, :-1].sum() == 0
    y = ds["targets"].values
    assert np.all(y[:, :-1] == 0)
    if encoding == "onehot":
        assert np.array_equal(y[:, -1].argmax(axis=1), label) and np.all(y[:, -1].sum(axis=1) == 1)
    else:
        np.testing.assert_array_equal(y[:, -1], np.stack([label // 2, label % 2], axis=1))


def test_symbol_classification_is_seeded():
    a = symbol_classification(50, 50, seed=1)
    b = symbol_classification(50, 50, seed=1)
    c = symbol_classification(50, 50, seed=2)
    assert np.array_equal(a.inputs, b.inputs) and not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("encoding", ["onehot", "bits"])
def test_class_accuracy(encoding):
    b = symbol_classification(40, 50, seed=0, encoding=encoding)
    perfect = np.where(b.targets > 0.5, 5.0, -5.0)
    assert class_accuracy(perfect, b) == 1.0
    # always (p, p): a quarter of the classes, up to sampling
    pp = np.full_like(b.targets, -5.0)
    if encoding == "onehot":
        pp[..., 0] = 5.0
    labels = b.targets[:, -1].argmax(1) if encoding == "onehot" else 2 * b.targets[:, -1, 0] + b.targets[:, -1, 1]
    assert class_accuracy(pp, b) == pytest.approx(np.mean(labels == 0))
    nan = perfect.copy()
    nan[0, -1] = np.nan
    assert class_accuracy(nan, b) == pytest.approx(39 / 40)


def test_bad_task_arguments_name_the_argument():
    with pytest.raises(ValueError, match="n_steps"):
        symbol_classification(10, 45)
    with pytest.raises(ValueError, match="t1_range"):
        symbol_classification(10, 60, t1_range=(10, 45))
    with pytest.raises(ValueError, match="encoding"):
        symbol_classification(10, 60, encoding="softmax")
    with pytest.raises(ValueError, match="omega_range"):
        sine_wave(omega_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="outputs"):
        class_accuracy(np.zeros((3, 50, 4)), symbol_classification(4, 50))
