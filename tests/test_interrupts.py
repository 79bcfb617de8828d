"""Ctrl-C during a compiled engine call stops a long run and keeps what it finished.

Python runs the SIGINT handler only between bytecodes; when the signal comes
during a numba engine call, the handler's KeyboardInterrupt is raised while
numba hands the results back, and the call ends with a SystemError whose
context chain holds the interrupt.  Training, flossing and sweeps must treat
that as the interrupt it is.
"""

from __future__ import annotations

import os
import signal
import threading

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba._interrupt import interrupt_behind
from plrnn_numba.sweep import SweepInterrupted, sweep


def _wrapped_interrupt() -> SystemError:
    """What a compiled call interrupted by Ctrl-C raises: a SystemError raised while handling the interrupt."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemError("<function _numba_unpickle> returned a result with an exception set") from None
    except SystemError as exc:
        # `from None` hides the context from tracebacks but keeps it on the exception
        return exc


def test_interrupt_behind_finds_the_interrupt_in_the_chain():
    ki = KeyboardInterrupt()
    assert interrupt_behind(ki) is ki
    wrapped = _wrapped_interrupt()
    assert isinstance(interrupt_behind(wrapped), KeyboardInterrupt)
    assert interrupt_behind(ValueError("a real failure")) is None
    try:
        try:
            raise ValueError("inner")
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError as exc:
        assert interrupt_behind(exc) is None
    # a cycle in the chain ends the walk
    a, b = ValueError("a"), ValueError("b")
    a.__context__, b.__context__ = b, a
    assert interrupt_behind(a) is None


def _lstm_problem(T=3000, B=16, N=24):
    rng = np.random.default_rng(0)
    model = pn.LSTM(N, n_inputs=1)
    batch = pn.Batch(targets=rng.normal(size=(B, T, 1)), inputs=rng.normal(size=(B, T, 1)), z0=np.zeros((B, 2 * N)))
    return model, batch


def test_ctrl_c_inside_loss_and_grad_raises_keyboard_interrupt(ctrl_c_raises):
    # the real thing: SIGINT while loss_and_grad's engine runs (a call of tens of ms, against microseconds of
    # Python around it, so the signal lands inside the compiled code)
    model, batch = _lstm_problem()
    theta = model.init(0)
    readout = pn.LinearReadout(1)
    ro = readout.init(2 * model.n_hidden, 0)
    pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro)  # compiled or loaded first
    timer = threading.Timer(0.15, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):  # not numba's SystemError with the interrupt behind it
            for _ in range(10_000):
                pn.loss_and_grad(model, theta, batch, readout=readout, readout_params=ro)
    finally:
        timer.join()


def test_training_interrupted_in_a_compiled_call_keeps_its_history(ctrl_c_raises):
    model, batch = _lstm_problem()
    epochs_seen = []

    def source(rng, epoch):
        epochs_seen.append(epoch)
        if epoch == 3:  # the signal arrives during this epoch's BPTT call
            threading.Timer(0.02, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        return batch

    hist = pn.train(model, model.init(0), source, n_epochs=10_000, readout=pn.LinearReadout(1), progress=False)
    assert hist.attrs["status"] == "interrupted", hist.attrs.get("message")
    assert 3 <= hist.sizes["epoch"] <= max(epochs_seen) + 1
    assert np.all(np.isfinite(hist["loss"].values))


def test_training_treats_a_wrapped_interrupt_like_ctrl_c():
    model = pn.PLRNN(3)
    rng = np.random.default_rng(0)
    good = pn.Batch(targets=rng.normal(size=(4, 10, 3)))

    def source(rng, epoch):
        if epoch == 2:
            raise _wrapped_interrupt()
        return good

    hist = pn.train(model, model.init(0), source, n_epochs=20, progress=False)
    assert hist.attrs["status"] == "interrupted" and hist.sizes["epoch"] == 2

    def broken(rng, epoch):
        raise SystemError("a genuine failure")

    with pytest.raises(SystemError, match="genuine"):
        pn.train(model, model.init(0), broken, n_epochs=3, progress=False)


def _point(i, marker):
    if i == 2 and os.path.exists(marker):
        raise _wrapped_interrupt()
    return {"x": float(i)}


def test_serial_sweep_stops_on_a_wrapped_interrupt_and_keeps_the_points(tmp_path):
    store, marker = tmp_path / "store", tmp_path / "interrupt-at-2"
    marker.touch()
    kw = {"fixed": {"marker": str(marker)}, "backend": "serial", "store": store, "progress": False}
    with pytest.raises(SweepInterrupted) as info:
        sweep(_point, {"i": [0, 1, 2, 3]}, **kw)
    assert info.value.n_done == 2
    # the interrupted point is not recorded as failed: going on computes it and the rest
    marker.unlink()
    ds = sweep(_point, {"i": [0, 1, 2, 3]}, **kw)
    assert ds.attrs["n_resumed"] == 2 and ds.attrs["n_computed"] == 2
    np.testing.assert_array_equal(ds["x"], [0.0, 1.0, 2.0, 3.0])


def test_flossing_interrupted_in_a_compiled_call_keeps_its_epochs(ctrl_c_raises):
    model = pn.VanillaRNN(n_hidden=64, n_inputs=1)
    settings = pn.dynamics.Flossing(k=8, n_steps=1000, batch=2)  # about 20 ms an epoch
    pn.dynamics.floss(model, model.init(0), 1, settings, seed=0)  # compiled or loaded first
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        _, ds = pn.dynamics.floss(model, model.init(0), 10_000, settings, seed=0)
    finally:
        timer.join()
    assert ds.attrs["status"] == "interrupted"
    assert 0 < ds.sizes["epoch"] < 10_000 and np.all(np.isfinite(ds["loss"].values))


def test_flossing_treats_a_wrapped_interrupt_like_ctrl_c():
    class StopsAtFourthStep(pn.dynamics.Flossing):
        calls = 0

        def loss_and_grad(self, model, theta, rng):
            type(self).calls += 1
            if type(self).calls == 4:
                raise _wrapped_interrupt()
            return super().loss_and_grad(model, theta, rng)

    model = pn.VanillaRNN(n_hidden=8, n_inputs=1)
    _, ds = pn.dynamics.floss(model, model.init(0), 50, StopsAtFourthStep(n_steps=30), seed=0)
    assert ds.attrs["status"] == "interrupted" and ds.sizes["epoch"] == 3
