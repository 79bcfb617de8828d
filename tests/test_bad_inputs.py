"""A clear error for every bad input, generated systematically over the public API.

Every public function and constructor is described once, by a valid call and
the *kind* of each of its arguments (an array of a given shape, a count, a real
number in a range, an option, a seed, a model, a Dataset, ...).  Each kind
generates its own bad values -- wrong shapes and dimensions, dtypes (int where
a float is meant is fine; complex, object, str are not), NaN and inf, empty
arrays, zero and negative sizes and counts, non-integers, out-of-range
numbers and options, wrong-model objects, extreme magnitudes (+-1e308) -- so the
cases are found by construction, not listed by hand.  Every case must either

* raise ``ValueError`` or ``TypeError`` whose message names the argument
  (or, for extreme magnitudes, an ``OverflowError``-free clear error), or
* for inputs that are valid but make a computation diverge (extreme
  magnitudes), return a result that flags it (the function's documented flag:
  non-finite states, ``finite=False``, a ``diverged`` variable or status).

``hypothesis`` draws further bad numbers for the count and real-valued
arguments.  ``test_summary`` prints the counts quoted in the project notes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import matplotlib
import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plrnn_numba as pn
from plrnn_numba import data, dynamics, forcing, ghost, optim, plot, readouts, sweep, tasks, training
from plrnn_numba.models import as_piecewise_linear, check_piecewise_linear
from plrnn_numba.training.constraints import stable_lstm_projection

matplotlib.use("Agg")

EXTREME = 1e308


# ============================================================================ kinds of arguments
@dataclass
class Kind:
    optional: bool = False  # None is valid

    def bad(self) -> list[tuple[str, object]]:
        raise NotImplementedError

    def none(self) -> list[tuple[str, object]]:
        return [] if self.optional else [("None", None)]


@dataclass
class Array(Kind):
    """A float array of shape ``shape``.

    ``empty_ok``: a zero-length first axis is valid; ``missing_ok``: dropping
    the first axis is valid (a single state where a batch is accepted);
    ``free_last``: any length of the last axis is valid (channels); ``any_shape``:
    every shape is valid (an elementwise function);
    ``extreme``: +-1e308 is valid input that may diverge (the result must flag
    it); ``nonfinite``: what NaN/inf are -- ``"error"``, ``"flag"`` (a
    diverged quantity the result must flag) or ``"valid"`` (documented
    meaning).
    """

    shape: tuple = ()
    any_shape: bool = False  # elementwise: every shape is valid
    empty_ok: bool = False
    missing_ok: bool = False
    free_last: bool = False
    extreme: bool = False
    nonfinite: str = "error"

    def bad(self):
        s = self.shape
        out = [("complex", np.zeros(s, complex)), ("object", np.full(s, object())), ("str", "abc"),
               ("strings", np.full(s, "a"))]
        if not self.any_shape:
            out.append(("extra axis", np.zeros(s + (4,))))
        if self.nonfinite == "error":
            out += self.nonfinite_values()
        if len(s) >= 1 and not self.any_shape:
            if not self.free_last:
                out.append(("wrong size", np.zeros(s[:-1] + (s[-1] + 3,))))
            if not self.missing_ok:
                out.append(("missing axis", np.zeros(s[1:])))
            if not self.empty_ok and s[0] > 0:
                out.append(("empty", np.zeros((0,) + s[1:])))
        return out + self.none()

    def nonfinite_values(self):
        s = self.shape
        return [("nan", np.full(s, np.nan)), ("inf", np.full(s, np.inf)), ("-inf", np.full(s, -np.inf))]

    def extremes(self):
        out = [("+1e308", np.full(self.shape, EXTREME)), ("-1e308", np.full(self.shape, -EXTREME))] \
            if self.extreme else []
        return out + (self.nonfinite_values() if self.nonfinite == "flag" else [])


@dataclass
class Count(Kind):
    """An integer >= minimum."""

    minimum: int = 1
    maximum: int | None = None

    def bad(self):
        out = [(f"{self.minimum - 1}", self.minimum - 1), ("-3", min(-3, self.minimum - 4)), ("2.5", 2.5),
               ("'3'", "3"), ("True", True), ("nan", float("nan")), ("array", np.array([2, 3]))]
        if self.maximum is not None:
            out.append((f"{self.maximum + 1}", self.maximum + 1))
        return out + self.none()


@dataclass
class Real(Kind):
    """A finite real number in [low, high] (``open_low``/``open_high``: that end excluded)."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    infinite_ok: bool = False

    def bad(self):
        out = [("nan", float("nan")), ("'x'", "x"), ("1j", 1j), ("array", np.array([0.1, 0.2]))]
        if not self.infinite_ok:
            out += [("inf", float("inf")), ("-inf", -float("inf"))]
        if self.low is not None:
            out.append(("below", self.low - 1.0))
            if self.open_low:
                out.append(("at low", self.low))
        if self.high is not None:
            out.append(("above", self.high + 1.0))
            if self.open_high:
                out.append(("at high", self.high))
        return out + self.none()


@dataclass
class Option(Kind):
    choices: tuple = ()

    def bad(self):
        return [("'bogus'", "bogus"), ("3", 3), ("upper case", str(self.choices[0]).upper() + "X")] + self.none()


@dataclass
class Flag(Kind):
    def bad(self):
        return [("'yes'", "yes"), ("2", 2), ("array", np.array([True]))] + self.none()


@dataclass
class Seed(Kind):
    optional: bool = True

    def bad(self):
        return [("-1", -1), ("1.5", 1.5), ("'1'", "1"), ("True", True), ("array", np.array([1]))]


@dataclass
class Obj(Kind):
    """An object of some type; ``others`` are objects of the wrong type or model.

    ``str_ok``: any string is valid (a path).
    """

    others: tuple = ()
    str_ok: bool = False

    def bad(self):
        generic = [("3", 3)] if self.str_ok else [("'thing'", "thing"), ("3", 3)]
        return generic + [(f"wrong {type(o).__name__}", o) for o in self.others] + self.none()


# ============================================================================ the API, described
def plrnn():
    return pn.PLRNN(2)


THETA2 = pn.PLRNN(2).init(0)
M2 = pn.PLRNN(2)


def batch(B=2, T=5, N=2, K=0):
    rng = np.random.default_rng(0)
    return pn.Batch(targets=rng.normal(size=(B, T, N)), inputs=None if K == 0 else rng.normal(size=(B, T, K)))


def history(model=M2, theta=THETA2):
    return pn.train(model, theta, batch(), n_epochs=3, snapshot_every=1)


HISTORY = history()
# a history of another model with the same number of parameters (12): only its description tells them apart
M3 = pn.PLRNN(3)
OTHER_HISTORY = pn.train(M3, M3.init(0), batch(N=3), n_epochs=2, snapshot_every=1)
M2_INPUTS3 = pn.PLRNN(2, n_inputs=3)
ORBITS = dynamics.orbit_diagram(M2, THETA2, "A[0]", [0.0, 0.1], n_steps=5, n_transient=5)
TANH = pn.VanillaRNN(2)
RATE = pn.RateRNN(3, rank=1)
RATE_THETA = RATE.init(0)
LSTM2 = pn.LSTM(2, n_inputs=1)
RATE_HISTORY = pn.train(RATE, RATE_THETA, tasks.delayed_activation(3, n_delay=2, n_active=2), n_epochs=2,
                        snapshot_every=1, readout=pn.LatentReadout(), loss="sigmoid_mse")
# the ghost-rnn experiments on the N = 3 rank-one network, at tiny sizes (2 + 2 steps, 2 epochs)
GHOST_TASK = {"n_delay": 2, "n_active": 2}
GHOST_HISTORY = ghost.train_delayed_activation(RATE, RATE_THETA, lr=0.02, n_epochs=2, **GHOST_TASK)
GHOST_MODELS = (TANH, pn.RateRNN(3), pn.RateRNN(3, n_inputs=1, rank=1))  # not a RateRNN, full W, with inputs
GRID = dynamics.bifurcation_grid(M2, THETA2, "A[0]", [0.1, 0.2], "A[1]", [0.1, 0.2], max_order=1)


def _square(x):
    """A sweep point function (module level, so every backend can pickle it)."""
    return {"y": x * x}


def _close(result):
    """Close the figures a plotting call made (the tests draw many)."""
    import matplotlib.pyplot as plt

    plt.close("all")
    return result


def finite(x) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype=float))))


@dataclass
class Spec:
    name: str
    call: Callable  # call(**kwargs)
    valid: Callable[[], dict]  # a valid set of arguments
    kinds: dict  # argument name -> Kind
    flag: Callable | None = None  # result -> True if the result flags a divergence
    aliases: dict = field(default_factory=dict)  # argument -> names accepted in the message
    nan_ok: tuple = ()  # Dataset variables that are NaN by documented meaning (undefined), not by divergence


def _ds(v):
    return v if isinstance(v, xr.Dataset) else None


SPECS = [
    # -- models ---------------------------------------------------------------------------------
    Spec("PLRNN", pn.PLRNN, lambda: {"dim": 2, "n_inputs": 0, "full_W": False},
         {"dim": Count(), "n_inputs": Count(minimum=0), "full_W": Flag()}),
    Spec("ShallowPLRNN", pn.ShallowPLRNN, lambda: {"dim": 2, "hidden": 3, "n_inputs": 0, "clipped": False},
         {"dim": Count(), "hidden": Count(), "n_inputs": Count(minimum=0), "clipped": Flag()}),
    Spec("ALRNN", pn.ALRNN, lambda: {"dim": 3, "n_relu": 2}, {"dim": Count(), "n_relu": Count(maximum=3)}),
    Spec("VanillaRNN", pn.VanillaRNN, lambda: {"n_hidden": 2, "n_inputs": 1, "nonlinearity": "tanh"},
         {"n_hidden": Count(), "n_inputs": Count(minimum=0), "nonlinearity": Option(choices=("tanh", "relu"))}),
    Spec("PLRNN.init", lambda **k: M2.init(**k), lambda: {"seed": 0, "w_scale": 0.5, "max_norm": 0.99},
         {"seed": Seed(), "w_scale": Real(low=0.0), "max_norm": Real(low=0.0, open_low=True, optional=True)}),
    Spec("VanillaRNN.init", lambda **k: TANH.init(**k), lambda: {"seed": 0, "g": 1.0},
         {"seed": Seed(), "g": Real(low=0.0)}),
    Spec("PLRNN.pack", lambda **k: M2.pack(**k), lambda: {"A": [0.5, 0.5], "W": [[0, 1.0], [1.0, 0]], "h": [0, 0]},
         {"A": Array(shape=(2,)), "W": Array(shape=(2, 2)), "h": Array(shape=(2,))}),
    Spec("Model.unpack", lambda **k: M2.unpack(**k), lambda: {"theta": THETA2}, {"theta": Array(shape=(6,))}),
    Spec("Model.simulate", lambda **k: M2.simulate(**k), lambda: {"theta": THETA2, "z0": [0.1, 0.2], "n_steps": 5},
         {"theta": Array(shape=(6,)), "z0": Array(shape=(2,), extreme=True, missing_ok=True),
          "n_steps": Count(minimum=0)}, flag=lambda r: not finite(r)),
    Spec("simulate", pn.simulate, lambda: {"model": M2, "theta": THETA2, "z0": np.zeros((3, 2)), "n_steps": 4},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "z0": Array(shape=(3, 2), missing_ok=True),
          "n_steps": Count(minimum=0)}, flag=lambda r: not finite(r)),
    Spec("simulate (inputs)", pn.simulate,
         lambda: {"model": pn.PLRNN(2, n_inputs=1), "theta": pn.PLRNN(2, n_inputs=1).init(0), "z0": np.zeros(2),
                  "inputs": np.zeros((4, 1))},
         {"inputs": Array(shape=(4, 1), extreme=True, empty_ok=True)}, flag=lambda r: not finite(r)),
    Spec("Model.jacobian", lambda **k: M2.jacobian(**k), lambda: {"theta": THETA2, "z": [0.1, -0.2]},
         {"theta": Array(shape=(6,)), "z": Array(shape=(2,), missing_ok=True)}),
    Spec("as_piecewise_linear", as_piecewise_linear, lambda: {"model": M2, "theta": THETA2},
         {"model": Obj(others=(TANH,)), "theta": Array(shape=(6,))}),
    Spec("check_piecewise_linear", check_piecewise_linear, lambda: {"model": M2, "theta": THETA2, "n_states": 8},
         {"n_states": Count(), "seed": Seed(), "rtol": Real(low=0.0)}),
    # -- data for BPTT, losses, forcing, readouts, optimisers ---------------------------------------
    Spec("Batch", pn.Batch, lambda: {"targets": np.zeros((2, 5, 2))},
         {"targets": Array(shape=(2, 5, 2), free_last=True),
          "z0": Array(shape=(2, 2), optional=True, missing_ok=True, free_last=True),
          "mask": Array(shape=(2, 5), optional=True, missing_ok=True), "x0": Array(shape=(2, 2), optional=True),
          "inputs": Array(shape=(2, 5, 1), optional=True, free_last=True, missing_ok=True)}),
    Spec("Batch.from_sequences", pn.Batch.from_sequences, lambda: {"sequences": np.zeros((2, 6, 2))},
         {"sequences": Array(shape=(2, 6, 2), free_last=True)}),
    Spec("loss_and_grad", pn.loss_and_grad, lambda: {"model": M2, "theta": THETA2, "batch": batch()},
         {"model": Obj(others=(pn.PLRNN(3),)), "theta": Array(shape=(6,), extreme=True),
          "batch": Obj(others=(np.zeros((2, 5, 2)),)), "loss": Option(choices=("mse", "bce")),
          "forcing": Obj(optional=True), "epoch": Count(minimum=0), "n_threads": Count(optional=True),
          "readout": Obj(optional=True, others=(readouts.IdentityReadout(3),)),
          "readout_params": Array(shape=(3,), optional=True, empty_ok=True)},
         flag=lambda r: not r.finite),
    Spec("loss_and_grad (linear readout)", pn.loss_and_grad,
         lambda: {"model": M2, "theta": THETA2, "batch": batch(), "readout": readouts.LinearReadout(2),
                  "readout_params": np.zeros(6)},
         {"readout_params": Array(shape=(6,))}),
    Spec("predict", pn.predict, lambda: {"model": M2, "theta": THETA2, "batch": batch()},
         {"model": Obj(), "theta": Array(shape=(6,)), "batch": Obj()}),
    Spec("GTF", forcing.GTF, lambda: {"alpha": 0.2, "n_forced": 1},
         {"alpha": Real(low=0.0, high=1.0), "n_forced": Count(optional=True)}),
    Spec("SparseTF", forcing.SparseTF, lambda: {"tau": 3}, {"tau": Count(), "n_forced": Count(optional=True)}),
    Spec("FreeRunning", forcing.FreeRunning, lambda: {}, {"n_forced": Count(optional=True)}),
    Spec("ConstantAlpha", forcing.ConstantAlpha, lambda: {"value": 0.3}, {"value": Real(low=0.0, high=1.0)}),
    Spec("LinearAlpha", forcing.LinearAlpha, lambda: {"start": 0.5, "end": 0.1, "n_epochs": 10},
         {"start": Real(low=0.0, high=1.0), "end": Real(low=0.0, high=1.0), "n_epochs": Count()}),
    Spec("ExponentialAlpha", forcing.ExponentialAlpha, lambda: {"start": 0.5, "end": 0.1, "n_epochs": 10},
         {"start": Real(low=0.0, high=1.0, open_low=True), "end": Real(low=0.0, high=1.0, open_low=True),
          "n_epochs": Count()}),
    Spec("Theorem3Alpha", forcing.Theorem3Alpha, lambda: {},
         {"margin": Real(), "alpha_min": Real(low=0.0, high=1.0), "alpha_max": Real(low=0.0, high=1.0)}),
    Spec("IdentityReadout", readouts.IdentityReadout, lambda: {}, {"n_obs": Count(optional=True)}),
    Spec("LinearReadout", readouts.LinearReadout, lambda: {"n_out": 2}, {"n_out": Count()}),
    Spec("LinearReadout.init", lambda **k: readouts.LinearReadout(2).init(**k), lambda: {"dim": 3, "seed": 0},
         {"dim": Count(), "seed": Seed()}),
    Spec("SGD", optim.SGD, lambda: {"lr": 0.1}, {"lr": Real(low=0.0), "momentum": Real(low=0.0, high=1.0),
                                                "weight_decay": Real(low=0.0), "nesterov": Flag()}),
    Spec("Adam", optim.Adam, lambda: {"lr": 0.01},
         {"lr": Real(low=0.0), "beta1": Real(low=0.0, high=1.0), "beta2": Real(low=0.0, high=1.0),
          "eps": Real(low=0.0, open_low=True), "weight_decay": Real(low=0.0)}),
    Spec("AdamW", optim.AdamW, lambda: {"lr": 0.01},
         {"lr": Real(low=0.0), "beta1": Real(low=0.0, high=1.0), "beta2": Real(low=0.0, high=1.0)}),
    Spec("StepLR", training.StepLR, lambda: {"step_size": 10}, {"step_size": Count(), "gamma": Real(low=0.0)}),
    Spec("MultiStepLR", training.MultiStepLR, lambda: {"milestones": [10, 20]},
         {"milestones": Obj(), "gamma": Real(low=0.0)}),
    Spec("clip_by_global_norm", optim.clip_by_global_norm, lambda: {"g": np.ones(3), "max_norm": 1.0},
         {"g": Array(shape=(3,), extreme=True, nonfinite="flag", free_last=True),
          "max_norm": Real(low=0.0, open_low=True, optional=True)},
         flag=lambda r: not np.isfinite(r[1])),
    Spec("SubsequenceSampler", training.SubsequenceSampler, lambda: {"data": np.zeros((50, 2)), "seq_len": 10,
                                                                     "batch_size": 4},
         {"data": Array(shape=(50, 2), free_last=True), "seq_len": Count(), "batch_size": Count()}),
    # -- training ----------------------------------------------------------------------------------
    Spec("train", pn.train, lambda: {"model": M2, "theta": THETA2, "data": batch(), "n_epochs": 2},
         {"model": Obj(others=(pn.PLRNN(3),)), "theta": Array(shape=(6,), extreme=True), "data": Obj(),
          "n_epochs": Count(), "batches_per_epoch": Count(), "optimizer": Obj(optional=True),
          "clip_norm": Real(low=0.0, open_low=True, optional=True), "loss": Option(choices=("mse", "bce")),
          "snapshot_every": Count(), "callback_every": Count(), "on_nonfinite": Option(choices=("stop", "skip")),
          "max_skips": Count(), "checkpoint_every": Count(), "seed": Seed(), "learn_z0": Flag(),
          "callback": Obj(optional=True), "hooks": Obj(optional=True), "progress": Flag(),
          "n_threads": Count(optional=True), "forcing": Obj(optional=True)},
         flag=lambda r: r.attrs["status"] == "diverged"),
    # -- SCYFI and bifurcations ----------------------------------------------------------------------
    Spec("ScyfiSettings", dynamics.ScyfiSettings, lambda: {},
         {"n_outer": Count(optional=True), "n_inner": Count(optional=True), "max_solves": Count(optional=True),
          "tol": Real(low=0.0), "rcond_min": Real(low=0.0, high=1.0), "dup_rtol": Real(low=0.0),
          "tol_hyperbolic": Real(low=0.0), "pool_samples": Count()}),
    Spec("scyfi", dynamics.scyfi, lambda: {"model": M2, "theta": THETA2, "max_order": 2},
         {"model": Obj(others=(TANH,)), "theta": Array(shape=(6,)), "max_order": Count(), "min_order": Count(),
          "inputs": Array(shape=(0,), optional=True), "settings": Obj(optional=True), "seed": Seed(),
          "backend": Option(choices=("cpu",)), "lanes": Count(optional=True), "n_threads": Count(optional=True)}),
    Spec("brute_force_cycles", dynamics.brute_force_cycles, lambda: {"model": M2, "theta": THETA2, "max_order": 2},
         {"model": Obj(others=(TANH,)), "theta": Array(shape=(6,)), "max_order": Count(), "min_order": Count(),
          "max_bits": Count(), "tol": Real(low=0.0), "rcond_min": Real(low=0.0, high=1.0), "chunk": Count()}),
    Spec("search_many", dynamics.search_many, lambda: {"model": M2, "thetas": np.stack([THETA2, THETA2]),
                                                       "max_order": 1, "backend": "cpu"},
         {"model": Obj(others=(TANH,)), "thetas": Array(shape=(2, 6)), "max_order": Count(),
          "backend": Option(choices=("cpu",))}),
    Spec("solve_candidates", dynamics.solve_candidates,
         lambda: {"model": M2, "thetas": THETA2, "candidates": np.zeros((3, 1, 2), int)},
         {"model": Obj(others=(TANH,)), "thetas": Array(shape=(6,)), "candidates": Array(shape=(3, 1, 2)),
          "rcond_min": Real(low=0.0, high=1.0)}),
    Spec("bifurcation_path", dynamics.bifurcation_path,
         lambda: {"model": M2, "theta": THETA2, "direction": "A[0]", "s_values": [0.0, 0.1], "max_order": 1},
         {"model": Obj(others=(TANH,)), "theta": Array(shape=(6,)), "direction": Obj(others=("Q[0]",)),
          "s_values": Array(shape=(2,)), "max_order": Count(), "settings": Obj(optional=True), "seed": Seed(),
          "locate_tol": Real(low=0.0, open_low=True), "n_probe": Count(), "meet_rtol": Real(low=0.0)}),
    Spec("bifurcations_along_training", dynamics.bifurcations_along_training,
         lambda: {"model": M2, "history": HISTORY, "max_order": 1},
         {"model": Obj(others=(pn.ALRNN(2, n_relu=2),)), "history": Obj(others=(xr.Dataset(), ORBITS, OTHER_HISTORY)),
          "max_order": Count()}),
    Spec("bifurcation_grid", dynamics.bifurcation_grid,
         lambda: {"model": M2, "theta": THETA2, "param_x": "A[0]", "values_x": [0.1, 0.2], "param_y": "A[1]",
                  "values_y": [0.1, 0.2], "max_order": 1},
         {"model": Obj(others=(TANH,)), "param_x": Obj(others=("Q",)), "values_x": Array(shape=(2,)),
          "values_y": Array(shape=(2,)), "max_order": Count(), "backend": Option(choices=("cpu",))}),
    Spec("cycle_signature", dynamics.cycle_signature, lambda: {"model": M2, "theta": THETA2, "max_order": 1},
         {"model": Obj(others=(TANH,)), "theta": Array(shape=(6,)), "max_order": Count()}),
    Spec("parameter_direction", dynamics.parameter_direction, lambda: {"model": M2, "direction": "A[0]"},
         {"model": Obj(), "direction": Obj(others=("Q[0]", {"A[0]": np.nan}, {}, np.zeros(6)))},
         aliases={"direction": ("direction", "parameter name")}),
    Spec("orbit_diagram", dynamics.orbit_diagram,
         lambda: {"model": M2, "theta": THETA2, "direction": "A[0]", "s_values": [0.0, 0.1], "n_steps": 5,
                  "n_transient": 5},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "s_values": Array(shape=(2,)),
          "n_steps": Count(), "n_transient": Count(minimum=0), "n_init": Count(optional=True),
          "z0_scale": Real(low=0.0), "seed": Seed(), "diverge_threshold": Real(low=0.0, open_low=True),
          "z0": Array(shape=(2,), optional=True, extreme=True, missing_ok=True)},
         flag=lambda r: bool(r["diverged"].values.any())),
    Spec("orbit_diagram_training", dynamics.orbit_diagram_training,
         lambda: {"model": M2, "history": HISTORY, "n_steps": 3, "n_transient": 2},
         {"model": Obj(others=(pn.ALRNN(2, n_relu=2),)), "history": Obj(others=(xr.Dataset(), OTHER_HISTORY)),
          "n_steps": Count()}),
    Spec("n_distinct_values", dynamics.n_distinct_values, lambda: {"ds": ORBITS},
         {"ds": Obj(others=(HISTORY,)), "state": Count(minimum=0, maximum=1), "rtol": Real(low=0.0),
          "atol": Real(low=0.0)}),
    # -- Lyapunov exponents and flossing ------------------------------------------------------------
    Spec("lyapunov_spectrum", dynamics.lyapunov_spectrum,
         lambda: {"model": M2, "theta": THETA2, "n_steps": 20, "n_transient": 5, "n_transient_ons": 5},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "k": Count(optional=True, maximum=2),
          "n_steps": Count(), "t_ons": Count(), "n_transient": Count(minimum=0), "n_transient_ons": Count(minimum=0),
          "n_init": Count(), "seed": Seed(), "z0": Array(shape=(2,), optional=True, extreme=True, missing_ok=True),
          "trace": Flag(), "n_blocks": Count(minimum=2)},
         flag=lambda r: bool(r["diverged"].values.any()),
         nan_ok=("exponents_sem",)),  # one initial condition: no spread
    Spec("covariant_lyapunov_vectors", dynamics.covariant_lyapunov_vectors,
         lambda: {"model": M2, "theta": THETA2, "n_steps": 10, "n_transient": 5, "n_transient_ons": 5,
                  "n_transient_backward": 5},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "k": Count(optional=True, maximum=2),
          "n_steps": Count(), "n_transient": Count(minimum=0), "n_transient_ons": Count(minimum=0),
          "n_transient_backward": Count(minimum=0), "n_blocks": Count(minimum=2), "seed": Seed(),
          "z0": Array(shape=(2,), optional=True, extreme=True)},
         flag=lambda r: bool(r["diverged"].values),
         nan_ok=("min_angle_unstable_stable",)),  # NaN when no exponent (or every one) is positive
    Spec("state_lipschitz", dynamics.state_lipschitz,
         lambda: {"model": M2, "theta": THETA2, "n_steps": 5, "n_init": 2},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "n_steps": Count(), "n_transient": Count(minimum=0),
          "n_init": Count(), "seed": Seed(), "z0": Array(shape=(2,), optional=True, extreme=True)},
         flag=lambda r: bool(r["diverged"].values.any())),
    Spec("cost_smoothness", dynamics.cost_smoothness,
         lambda: {"model": TANH, "theta": TANH.init(0), "data": pn.Batch(targets=np.zeros((1, 6, 2))),
                  "lengths": [3, 6], "n_directions": 1, "n_points": 3},
         {"model": Obj(others=(pn.VanillaRNN(3),)), "theta": Array(shape=(6,), extreme=True), "n_directions": Count(),
          "radius": Real(low=0.0, open_low=True), "n_points": Count(minimum=3), "seed": Seed()},
         flag=lambda r: int(r["n_nonfinite"]) > 0),
    Spec("finite_time_exponents", dynamics.finite_time_exponents,
         lambda: {"model": M2, "theta": THETA2, "horizons": [5, 10], "n_transient": 5},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "horizons": Array(shape=(2,)),
          "k": Count(optional=True, maximum=2), "n_transient": Count(minimum=0), "rcond": Real(low=0.0, high=1.0),
          "seed": Seed(), "q0": Obj(others=("bogus",))},
         flag=lambda r: bool(r["diverged"].values.any())),
    Spec("condition_number", dynamics.condition_number,
         lambda: {"model": M2, "theta": THETA2, "horizons": [5, 10], "n_transient": 5},
         {"horizons": Array(shape=(2,)), "k": Count(optional=True, maximum=2), "seed": Seed()}),
    Spec("flossing_loss_and_grad", dynamics.flossing_loss_and_grad,
         lambda: {"model": TANH, "theta": TANH.init(0), "k": 1, "n_steps": 5},
         {"model": Obj(), "theta": Array(shape=(6,), extreme=True), "k": Count(maximum=2), "target": Real(),
          "n_steps": Count(), "t_ons": Count(), "n_transient": Count(minimum=0), "seed": Seed(),
          "z0": Array(shape=(2,), optional=True, extreme=True, missing_ok=True)},
         flag=lambda r: not r.finite),
    Spec("Flossing", dynamics.Flossing, lambda: {},
         {"k": Count(), "target": Real(), "n_steps": Count(), "n_transient": Count(minimum=0), "t_ons": Count(),
          "batch": Count(), "lr": Real(low=0.0), "input_prob": Real(low=0.0, high=1.0)}),
    Spec("floss", dynamics.floss, lambda: {"model": TANH, "theta": TANH.init(0), "n_epochs": 2},
         {"model": Obj(), "theta": Array(shape=(6,)), "n_epochs": Count(),
          "flossing": Obj(optional=True, others=(dynamics.Flossing(k=5),)), "seed": Seed(),
          "optimizer": Obj(optional=True)}),
    Spec("FlossingEpisodes", dynamics.FlossingEpisodes, lambda: {"flossing": dynamics.Flossing(), "episodes": {1: 2}},
         {"flossing": Obj(), "episodes": Obj(others=({-1: 2}, {1: 0}, {1.5: 2}))}),
    # -- tasks and data ------------------------------------------------------------------------------
    Spec("delayed_copy", tasks.delayed_copy, lambda: {"n_batch": 2, "n_steps": 10, "delay": 2},
         {"n_batch": Count(), "n_steps": Count(), "delay": Count(maximum=9), "seed": Seed(),
          "as_dataset": Flag()}),
    Spec("delayed_temporal_xor", tasks.delayed_temporal_xor, lambda: {"n_batch": 2, "n_steps": 10, "delay": 2},
         {"n_batch": Count(), "n_steps": Count(), "delay": Count(), "definition": Option(choices=("paper", "code"))}),
    Spec("delayed_spatial_xor", tasks.delayed_spatial_xor, lambda: {"n_batch": 2, "n_steps": 10, "delay": 2},
         {"n_batch": Count(), "n_steps": Count(), "delay": Count()}),
    Spec("make_task", tasks.make_task, lambda: {"task": "copy", "n_batch": 2, "n_steps": 10, "delay": 2},
         {"task": Option(choices=("copy",)), "n_batch": Count()}),
    Spec("accuracy", tasks.accuracy,
         lambda: {"logits": np.zeros((2, 10, 1)), "batch": tasks.delayed_copy(2, 10, 2)},
         {"logits": Array(shape=(2, 10, 1), nonfinite="valid"), "batch": Obj()}),
    Spec("lorenz63", data.lorenz63, lambda: {"n_samples": 20, "transient": 10},
         {"n_samples": Count(), "dt": Real(low=0.0, open_low=True), "subsample": Count(),
          "sigma": Real(), "transient": Count(minimum=0), "noise_std": Real(low=0.0), "seed": Seed(),
          "method": Option(choices=("DOP853",)), "x0": Array(shape=(3,), optional=True), "standardize": Flag()}),
    Spec("hodgkin_huxley", data.hodgkin_huxley, lambda: {"duration_ms": 5.0},
         {"duration_ms": Real(low=0.0, open_low=True), "dt_ms": Real(low=0.0, open_low=True),
          "sample_every": Count(), "noise_std": Real(low=0.0), "noise_tau_ms": Real(low=0.0, open_low=True),
          "seed": Seed()}),
    Spec("delay_embed", data.delay_embed, lambda: {"x": np.zeros((20, 2)), "dims": 2, "lag": 1},
         {"x": Array(shape=(20, 2), free_last=True, missing_ok=True), "dims": Count(), "lag": Count()}),
    Spec("as_array", data.as_array, lambda: {"ds": data.lorenz63(20, transient=10)},
         {"ds": Obj(others=(xr.Dataset(),)), "var": Obj(others=("nope",))}),
    Spec("batch_from_dataset", tasks.batch_from_dataset, lambda: {"ds": tasks.delayed_copy(2, 10, 2, as_dataset=True)},
         {"ds": Obj(others=(xr.Dataset(), data.lorenz63(20, transient=10)))}),
    Spec("task_batch_source", tasks.task_batch_source,
         lambda: {"task": "copy", "n_batch": 2, "n_steps": 10, "delay": 2},
         {"task": Option(choices=("copy",)), "n_batch": Count(), "n_steps": Count(), "delay": Count(), "seed": Seed()}),
    Spec("lorenz63_rhs", data.lorenz63_rhs, lambda: {"state": [1.0, 2.0, 3.0]},
         {"state": Array(shape=(3,)), "sigma": Real(), "rho": Real(), "beta": Real()}),
    Spec("lorenz63_jacobian", data.lorenz63_jacobian, lambda: {"state": [1.0, 2.0, 3.0]},
         {"state": Array(shape=(3,)), "sigma": Real()}),
    Spec("hh_rates", data.hh_rates, lambda: {"v": [-65.0, -60.0]}, {"v": Array(shape=(2,), any_shape=True)}),
    Spec("hh_steady_state", data.hh_steady_state, lambda: {"v": -65.0}, {"v": Real()}),
    # -- helpers that turn arguments into objects ------------------------------------------------
    Spec("as_forcing", forcing.as_forcing, lambda: {"forcing": 0.2},
         {"forcing": Obj(optional=True, others=(1.5, -0.1, float("nan"), True))}),
    Spec("as_readout", readouts.as_readout, lambda: {"readout": None, "dim": 2},
         {"readout": Obj(optional=True, others=(readouts.IdentityReadout(3),)), "dim": Count()}),
    Spec("as_optimizer", optim.as_optimizer, lambda: {"optimizer": "adam"}, {"optimizer": Option(choices=("adam",))}),
    Spec("global_norm", optim.global_norm, lambda: {"g": np.ones(3)},
         {"g": Array(shape=(3,), free_last=True, nonfinite="flag", extreme=True)}, flag=lambda r: not np.isfinite(r)),
    Spec("Model.step", lambda **k: M2.step(**k), lambda: {"theta": THETA2, "z": [0.1, 0.2]},
         {"theta": Array(shape=(6,)), "z": Array(shape=(2,), missing_ok=True, extreme=True)},
         flag=lambda r: not finite(r)),
    # -- plots -----------------------------------------------------------------------------------
    Spec("plot.loss_curve", lambda **k: _close(plot.loss_curve(**k)), lambda: {"history": HISTORY},
         {"history": Obj(others=(xr.Dataset(), ORBITS)), "log": Flag()}),
    Spec("plot.training_summary", lambda **k: _close(plot.training_summary(**k)),
         lambda: {"ds": HISTORY.assign(observed=(("gen_time", "channel"), np.zeros((20, 3))),
                                       generated=(("gen_time", "channel"), np.ones((20, 3))))},
         {"ds": Obj(others=(xr.Dataset(), ORBITS))}),
    Spec("plot.attractor", lambda **k: _close(plot.attractor(**k)),
         lambda: {"observed": np.zeros((20, 3)), "generated": np.ones((20, 3))},
         {"observed": Array(shape=(20, 3), nonfinite="valid"), "generated": Array(shape=(20, 3), nonfinite="valid"),
          "n_points": Count(), "dims": Obj(others=((0, 5), (0,), (0.5, 1)))}),
    Spec("plot.bifurcation_manifolds", lambda **k: _close(plot.bifurcation_manifolds(**k)), lambda: {"ds": GRID},
         {"ds": Obj(others=(xr.Dataset(), HISTORY)), "order": Count(optional=True, maximum=1), "boundaries": Flag()}),
    Spec("plot.orbit_diagram", lambda **k: _close(plot.orbit_diagram(**k)), lambda: {"ds": ORBITS},
         {"ds": Obj(others=(xr.Dataset(), HISTORY)), "state": Count(minimum=0, maximum=1)}),
    # -- ghost mechanism -------------------------------------------------------------------------
    Spec("RateRNN", pn.RateRNN, lambda: {"n_units": 3, "n_inputs": 1, "rank": 1, "alpha": 0.5},
         {"n_units": Count(), "n_inputs": Count(minimum=0), "rank": Count(optional=True, maximum=3),
          "alpha": Real(low=0.0, high=1.0, open_low=True)}),
    Spec("RateRNN.init", lambda **k: RATE.init(**k), lambda: {"seed": 0, "scale": 1.0},
         {"seed": Seed(), "scale": Real(low=0.0), "v_scale": Real(low=0.0), "b_scale": Real(low=0.0)}),
    Spec("RateRNN.pack", lambda **k: RATE.pack(**k),
         lambda: {"m": [0.1, 0.2, 0.3], "n": [0.3, 0.2, 0.1], "b": [0, 0, 0]},
         {"m": Array(shape=(3,)), "n": Array(shape=(3,)), "b": Array(shape=(3,))}),
    # -- LSTM ----------------------------------------------------------------------------------------
    Spec("OrthogonalRNN", pn.OrthogonalRNN, lambda: {"n_units": 2, "n_inputs": 1},
         {"n_units": Count(), "n_inputs": Count(minimum=0)}),
    Spec("OrthogonalRNN.init", lambda **k: pn.OrthogonalRNN(3, 1).init(**k),
         lambda: {"seed": 0, "skew_init": "henaff", "b_range": 0.01, "scale": 1.0},
         {"seed": Seed(), "skew_init": Option(choices=("henaff",)), "b_range": Real(low=0.0),
          "scale": Real(low=0.0)}),
    Spec("OrthogonalRNN.pack", lambda **k: pn.OrthogonalRNN(2, 1).pack(**k),
         lambda: {"S": np.zeros((2, 2)), "b": np.zeros(2), "V": np.zeros((2, 1))},
         {"S": Array(shape=(2, 2)), "b": Array(shape=(2,)), "V": Array(shape=(2, 1))}),
    Spec("stable_lstm_projection", stable_lstm_projection, lambda: {"model": pn.LSTM(2, 1)},
         {"model": Obj(others=(pn.VanillaRNN(2),)), "forget_input_norm": Real(low=0.0),
          "mode": Option(choices=("cap",)), "at_start": Flag()}),
    Spec("LSTM", pn.LSTM, lambda: {"n_hidden": 2, "n_inputs": 1, "bias": True},
         {"n_hidden": Count(), "n_inputs": Count(minimum=0), "bias": Flag()}),
    Spec("LSTM.init", lambda **k: LSTM2.init(**k), lambda: {"seed": 0, "scale": 1.0},
         {"seed": Seed(), "scale": Real(low=0.0)}),
    Spec("LSTM.pack", lambda **k: LSTM2.pack(**k),
         lambda: {"weight_ih": np.zeros((8, 1)), "weight_hh": np.zeros((8, 2)), "bias_ih": np.zeros(8),
                  "bias_hh": np.zeros(8)},
         {"weight_ih": Array(shape=(8, 1)), "weight_hh": Array(shape=(8, 2)), "bias_ih": Array(shape=(8,)),
          "bias_hh": Array(shape=(8,))}),
    Spec("LatentReadout", pn.LatentReadout, lambda: {"c": 10.0, "kappa_star": 1.0, "train_c": False},
         {"c": Real(low=0.0, open_low=True), "kappa_star": Real(), "train_c": Flag()}),
    Spec("loss_and_grad (latent readout)", pn.loss_and_grad,
         lambda: {"model": RATE, "theta": RATE_THETA, "batch": tasks.delayed_activation(3, n_delay=2, n_active=2),
                  "readout": pn.LatentReadout(train_c=True), "readout_params": np.ones(1), "loss": "sigmoid_mse"},
         {"model": Obj(others=(pn.VanillaRNN(3), pn.RateRNN(3))), "theta": Array(shape=(9,), extreme=True),
          "readout_params": Array(shape=(1,), optional=True), "loss": Option(choices=("mse", "bce", "sigmoid_mse"))},
         flag=lambda r: not r.finite),
    Spec("delayed_activation", tasks.delayed_activation, lambda: {"n_units": 3},
         {"n_units": Count(), "n_delay": Count(), "n_active": Count(), "x0": Real(), "as_dataset": Flag()}),
    Spec("sine_wave", tasks.sine_wave, lambda: {"n_seq": 3, "n_steps": 5},
         {"n_seq": Count(), "n_steps": Count(), "omega_range": Array(shape=(2,)), "as_dataset": Flag()}),
    Spec("symbol_classification", tasks.symbol_classification, lambda: {"n_seq": 3, "n_steps": 50},
         {"n_seq": Count(), "n_steps": Count(minimum=49), "seed": Seed(), "encoding": Option(choices=("onehot",)),
          "as_dataset": Flag()}),
    Spec("class_accuracy", tasks.class_accuracy,
         lambda: {"outputs": np.zeros((3, 50, 4)), "batch": tasks.symbol_classification(3, 50)},
         {"outputs": Array(shape=(3, 50, 4), nonfinite="valid"), "batch": Obj(others=(tasks.delayed_copy(2, 10, 2),))}),
    Spec("slow_points", dynamics.slow_points, lambda: {"model": TANH, "theta": TANH.init(0), "n_starts": 4},
         {"model": Obj(), "theta": Array(shape=(6,)), "inputs": Array(shape=(0,), optional=True),
          "starts": Array(shape=(4, 2), optional=True), "around": Array(shape=(4, 2), optional=True, missing_ok=True),
          "n_starts": Count(optional=True), "scale": Real(low=0.0, optional=True), "seed": Seed(),
          "max_iter": Count(minimum=0), "fixed_tol": Real(low=0.0, open_low=True),
          "slow_tol": Real(low=0.0, open_low=True), "ghost_tol": Real(low=0.0, open_low=True),
          "dedup_tol": Real(low=0.0)}),
    Spec("ghost.analytic_loss", ghost.analytic_loss, lambda: {"r": [1e-4, 2e-4], "T": 100.0},
         {"r": Array(shape=(2,), any_shape=True), "T": Real(low=0.0, open_low=True), "normalised": Flag()}),
    Spec("ghost.analytic_gradient", ghost.analytic_gradient, lambda: {"r": 1e-4, "T": 100.0},
         {"r": Array(shape=(), any_shape=True), "T": Real(low=0.0, open_low=True), "normalised": Flag()}),
    Spec("ghost.critical_learning_rate", ghost.critical_learning_rate, lambda: {"T": 100.0},
         {"T": Real(low=0.0, open_low=True), "normalised": Flag()}),
    Spec("ghost.euler_loss_and_grad", ghost.euler_loss_and_grad,
         lambda: {"r": 3e-4, "T": 10.0, "c": 1.0, "x_star": 10.0},
         {"r": Array(shape=(), any_shape=True), "T": Real(low=0.0, open_low=True),
          "c": Real(low=0.0, open_low=True), "x_star": Real(), "dt": Real(low=0.0, open_low=True),
          "normalised": Flag()}),
    Spec("ghost.gradient_descent", ghost.gradient_descent, lambda: {"r0": 3e-3, "T": 10.0, "lr": 1e-6, "n_epochs": 3},
         {"r0": Real(optional=True), "T": Real(low=0.0, open_low=True), "lr": Real(low=0.0), "n_epochs": Count(),
          "c": Real(low=0.0, open_low=True, optional=True), "seed": Seed()}),
    Spec("ghost.initial_r", ghost.initial_r, lambda: {"T": 100.0}, {"T": Real(low=0.0, open_low=True), "seed": Seed()}),
    Spec("ghost.rank_one_objects", ghost.rank_one_objects, lambda: {"m": [1.0, 0.5], "n": [0.5, 1.0], "b": [0.0, 0.1]},
         {"m": Array(shape=(2,)), "n": Array(shape=(2,)), "b": Array(shape=(2,)), "n_grid": Count(minimum=2),
          "kappa_range": Obj(others=((1.0, -1.0), (0.0,), (0.0, float("nan"))))}),
    Spec("ghost.latent_flow", ghost.latent_flow, lambda: {"kappa": [0.0, 0.5], "m": [1.0, 0.5], "n": [0.5, 1.0],
                                                          "b": [0.0, 0.1]},
         {"kappa": Array(shape=(2,), any_shape=True), "m": Array(shape=(2,)), "n": Array(shape=(2,)),
          "b": Array(shape=(2,))}),
    Spec("ghost.latent_circuit", ghost.latent_circuit, lambda: {"model": RATE, "theta": RATE_THETA, "n_grid": 50},
         {"model": Obj(others=(TANH, pn.RateRNN(3))), "theta": Array(shape=(9,)), "n_grid": Count(minimum=2),
          "method": Option(choices=("auto", "grid", "search")), "seed": Seed()}),
    Spec("ghost.latent_objects_along_training", ghost.latent_objects_along_training,
         lambda: {"model": RATE, "history": RATE_HISTORY, "n_grid": 50},
         {"model": Obj(others=(TANH, pn.RateRNN(3, rank=1, alpha=0.3))), "history": Obj(others=(xr.Dataset(), HISTORY)),
          "n_grid": Count(minimum=2)}),
    Spec("ghost.loss_scale", ghost.loss_scale, lambda: {"n_delay": 20, "n_active": 20},
         {"n_delay": Count(), "n_active": Count()}),
    Spec("ghost.package_lr", ghost.package_lr, lambda: {"lr": 0.02},
         {"lr": Real(low=0.0, open_low=True), "n_delay": Count(), "n_active": Count()}),
    Spec("ghost.evaluate", ghost.evaluate, lambda: {"model": RATE, "theta": RATE_THETA, **GHOST_TASK},
         {"model": Obj(others=GHOST_MODELS), "theta": Array(shape=(9,), extreme=True),
          "readout": Option(choices=ghost.rnn.READOUTS), "c": Real(low=0.0, open_low=True), "kappa_star": Real(),
          "readout_params": Array(shape=(1,), optional=True), "n_delay": Count(), "n_active": Count(),
          "x0": Real()}),
    Spec("ghost.evaluate (linear readout)", ghost.evaluate,
         lambda: {"model": RATE, "theta": RATE_THETA, "readout": "linear", "readout_params": np.zeros(4),
                  **GHOST_TASK},
         {"readout_params": Array(shape=(4,))}),
    Spec("ghost.train_delayed_activation", ghost.train_delayed_activation,
         lambda: {"model": RATE, "theta": RATE_THETA, "lr": 0.02, "n_epochs": 2, **GHOST_TASK},
         {"model": Obj(others=GHOST_MODELS), "theta": Array(shape=(9,), extreme=True),
          "lr": Real(low=0.0, open_low=True), "n_epochs": Count(), "readout": Option(choices=ghost.rnn.READOUTS),
          "c": Real(low=0.0, open_low=True), "kappa_star": Real(), "train_c": Flag(), "n_delay": Count(),
          "n_active": Count(), "x0": Real(), "snapshot_every": Count(), "seed": Seed(), "progress": Flag()},
         flag=lambda r: r.attrs["status"] == "diverged"),
    Spec("ghost.train_delayed_activation (train_c)", ghost.train_delayed_activation,
         lambda: {"model": RATE, "theta": RATE_THETA, "lr": 0.02, "n_epochs": 2, "train_c": True,
                  "readout_params": [10.0], **GHOST_TASK},
         {"readout_params": Array(shape=(1,), optional=True)}),
    Spec("ghost.train_delayed_activation (linear readout)", ghost.train_delayed_activation,
         lambda: {"model": RATE, "theta": RATE_THETA, "lr": 0.02, "n_epochs": 2, "readout": "linear",
                  "readout_params": np.zeros(4), **GHOST_TASK},
         {"readout_params": Array(shape=(4,), optional=True)}),
    Spec("ghost.learned_at_some_point", ghost.learned_at_some_point, lambda: {"history": GHOST_HISTORY},
         {"history": Obj(others=(xr.Dataset(), RATE_HISTORY, GHOST_HISTORY.isel(epoch=slice(0, 0)))),
          "above": Real(low=0.0, high=1.0, open_high=True)}),
    Spec("ghost.in_no_learning_zone", ghost.in_no_learning_zone, lambda: {"history": GHOST_HISTORY, "last": 2},
         {"history": Obj(others=(xr.Dataset(), RATE_HISTORY, GHOST_HISTORY.isel(epoch=slice(0, 0)))),
          "last": Count(maximum=2), "max_accuracy": Real(low=0.0, high=1.0)}),
    Spec("ghost.epochs_to_learn", ghost.epochs_to_learn, lambda: {"history": GHOST_HISTORY},
         {"history": Obj(others=(xr.Dataset(), RATE_HISTORY, GHOST_HISTORY.isel(epoch=slice(0, 0)))),
          "threshold": Real(low=0.0, open_low=True)}),
    Spec("ghost.lower_confidence", ghost.lower_confidence,
         lambda: {"model": RATE, "theta": RATE_THETA, "c_values": [0.1, 1.0], "n_epochs": 2, **GHOST_TASK},
         {"model": Obj(others=GHOST_MODELS), "theta": Array(shape=(9,)),
          "c_values": Array(shape=(2,), optional=True, free_last=True), "n_epochs": Count(),
          "lr": Real(low=0.0, open_low=True), "kappa_star": Real(), "c_eval": Real(low=0.0, open_low=True),
          "n_delay": Count(), "n_active": Count(), "x0": Real()}),
    # -- sweeps ----------------------------------------------------------------------------------
    Spec("sweep", sweep.sweep,
         lambda: {"fn": _square, "grid": {"x": [1.0, 2.0]}, "backend": "serial", "progress": False},
         {"fn": Obj(), "grid": Obj(others=({}, {"x": []}, {"x": 3.0}, {3: [1.0]})), "seeds": Obj(optional=True),
          "backend": Option(choices=("serial",), optional=True), "workers": Count(optional=True), "progress": Flag(),
          "resume": Flag(), "retry_failed": Flag(), "seed_mode": Option(choices=("value",)),
          "connect_timeout": Real(low=0.0, open_low=True), "start_method": Option(choices=("spawn",)),
          "name": Obj(optional=True, others=(3.0,), str_ok=True)}),
    Spec("make_grid", sweep.make_grid, lambda: {"grid": {"x": [1.0, 2.0]}, "seeds": None},
         {"grid": Obj(others=({}, {"x": []})), "seed_mode": Option(choices=("value",))}),
    Spec("derived_seed", sweep.derived_seed, lambda: {"seed": 1, "params": {"x": 1.0}},
         {"seed": Count(minimum=0), "params": Obj(others=([1.0],))}),
    Spec("point_key", sweep.point_key, lambda: {"params": {"x": 1.0}}, {"params": Obj(others=([1.0],))}),
    # -- files -----------------------------------------------------------------------------------
    Spec("io.save", pn.io.save, lambda: {"ds": xr.Dataset({"x": ("a", [1.0])}), "path": "bad_inputs_out.nc"},
         {"ds": Obj(others=(xr.DataArray([1.0]),)), "path": Obj(str_ok=True), "mode": Option(choices=("w", "x", "a"))}),
    Spec("io.open", pn.io.open, lambda: {"path": "bad_inputs_missing.nc"}, {"path": Obj()}),
]


# ============================================================================ the checks
def cases():
    out = []
    for spec in SPECS:
        for arg, kind in spec.kinds.items():
            for label, value in kind.bad():
                out.append(pytest.param(spec, arg, value, "error", id=f"{spec.name}-{arg}-{label}"))
            if isinstance(kind, Array):
                for label, value in kind.extremes():
                    out.append(pytest.param(spec, arg, value, "error or flag", id=f"{spec.name}-{arg}-{label}"))
    return out


CASES = cases()


def names_the_argument(message: str, spec: Spec, arg: str) -> bool:
    names = spec.aliases.get(arg, (arg,))
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", message) for n in names)


def outcome(spec: Spec, arg: str, value, expect: str) -> str:
    """``"clear"``, ``"flagged"``, or a description of what went wrong."""
    kwargs = spec.valid()
    kwargs[arg] = value
    try:
        with np.errstate(all="ignore"):
            result = spec.call(**kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        if "unexpected keyword argument" in msg:
            return f"the spec is wrong: {msg}"
        if names_the_argument(msg, spec, arg):
            return "clear"
        return f"obscure {type(exc).__name__}: {msg[:300]}"
    except FileNotFoundError as exc:
        return "clear" if "no such file" in str(exc) else f"obscure FileNotFoundError: {exc}"
    except Exception as exc:  # noqa: BLE001 - any other exception is what this test exists to find
        return f"obscure {type(exc).__name__}: {str(exc)[:300]}"
    if expect == "error or flag":
        if spec.flag is None:
            return "clear"  # nothing to flag: the value was computed with
        return "flagged" if spec.flag(result) else "clear" if finite_result(result, spec.nan_ok) \
            else "silent (not flagged)"
    return f"silent: {type(result).__name__} returned"


def finite_result(result, nan_ok=()) -> bool:
    if isinstance(result, xr.Dataset):
        return all(finite(v.values) for n, v in result.data_vars.items() if v.dtype.kind == "f" and n not in nan_ok)
    if isinstance(result, np.ndarray):
        return finite(result)
    return True


def test_valid_calls_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for spec in SPECS:
        if spec.name == "io.open":
            continue
        try:
            spec.call(**spec.valid())
        except Exception as exc:
            raise AssertionError(f"the valid call of {spec.name} failed: {exc!r}") from exc


@pytest.mark.parametrize("spec, arg, value, expect", CASES)
def test_bad_input(spec, arg, value, expect, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = outcome(spec, arg, value, expect)
    assert result in ("clear", "flagged"), f"{spec.name}({arg}={value!r:.60}): {result}"


# ---------------------------------------------------------------- hypothesis: more bad numbers
COUNT_ARGS = [(s, a, k) for s in SPECS for a, k in s.kinds.items() if isinstance(k, Count)]
REAL_ARGS = [(s, a, k) for s in SPECS for a, k in s.kinds.items() if isinstance(k, Real)]


def bad_counts(kind: Count):
    below = st.integers(max_value=kind.minimum - 1, min_value=-(10**12))
    non_integral = st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not float(x).is_integer())
    above = st.integers(min_value=kind.maximum + 1, max_value=10**6) if kind.maximum is not None else st.nothing()
    return st.one_of(below, non_integral, above, st.text(max_size=3), st.booleans())


def bad_reals(kind: Real):
    options = [st.sampled_from([float("nan")]), st.text(max_size=3), st.complex_numbers(allow_nan=False).filter(
        lambda z: z.imag != 0)]
    if not kind.infinite_ok:
        options.append(st.sampled_from([float("inf"), -float("inf")]))
    if kind.low is not None:
        options.append(st.floats(max_value=kind.low, exclude_max=not kind.open_low, allow_nan=False,
                                 allow_infinity=False, min_value=-1e300))
    if kind.high is not None:
        options.append(st.floats(min_value=kind.high, exclude_min=True, allow_nan=False, allow_infinity=False,
                                 max_value=1e300))
    return st.one_of(*options)


NUMBER_ARGS = [(s, a, k, bad_counts(k) if isinstance(k, Count) else bad_reals(k)) for s, a, k in COUNT_ARGS + REAL_ARGS]


@pytest.mark.parametrize("spec, arg, strategy", [(s, a, b) for s, a, _, b in NUMBER_ARGS],
                         ids=[f"{s.name}-{a}" for s, a, _, _ in NUMBER_ARGS])
def test_bad_numbers_drawn_by_hypothesis(spec, arg, strategy, tmp_path, monkeypatch):
    """Counts: below the minimum, non-integral, above the maximum, text, booleans; reals: NaN, inf, text,
    complex, out of range."""
    monkeypatch.chdir(tmp_path)

    @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(value):
        result = outcome(spec, arg, value, "error")
        assert result == "clear", f"{spec.name}({arg}={value!r}): {result}"

    check()


def test_summary(capsys, tmp_path, monkeypatch):
    """Counts of the generated cases and their outcomes (quoted in the project notes)."""
    monkeypatch.chdir(tmp_path)
    tally: dict[str, int] = {}
    for case in CASES:
        spec, arg, value, expect = case.values
        result = outcome(spec, arg, value, expect)
        key = result if result in ("clear", "flagged") else "other"
        tally[key] = tally.get(key, 0) + 1
    with capsys.disabled():
        print(f"\nbad-input cases: {len(CASES)} over {len(SPECS)} public callables; outcomes {tally}")
    assert tally.get("other", 0) == 0


# ---------------------------------------------------------------- consistency between objects, documented flags
@pytest.mark.parametrize("analysis", ["bifurcations_along_training", "orbit_diagram_training"])
def test_a_history_is_analysed_only_with_the_model_it_records(analysis):
    """Same parameter count (12), different model: the recorded description decides."""
    assert M2_INPUTS3.n_params == M3.n_params
    kwargs = {"max_order": 1} if analysis == "bifurcations_along_training" else {"n_steps": 3}
    with pytest.raises(ValueError, match="history was recorded for the model"):
        getattr(dynamics, analysis)(M2_INPUTS3, OTHER_HISTORY, **kwargs)


def _counting_callback(make):
    calls = []

    def callback(state):
        calls.append(state.epoch)
        return make(len(calls))

    return callback


@pytest.mark.parametrize("make, reason", [
    (lambda n: {"x": np.zeros(n)}, "changed shape"),
    (lambda n: 3.0 if n == 2 else None, "must return a dict"),
    (lambda n: {"x": "abc"} if n == 2 else {"x": 1.0}, "must be a real number"),
    (lambda n: 1 / 0 if n == 2 else {"x": 1.0}, "ZeroDivisionError"),
])
def test_a_failing_callback_stops_the_run_and_keeps_what_it_finished(make, reason):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = pn.train(M2, THETA2, batch(), n_epochs=5, callback=_counting_callback(make))
    assert hist.attrs["status"] == "failed" and reason in hist.attrs["message"]
    assert hist.attrs["epochs_completed"] == 2  # the epoch whose callback failed is finished and kept
    assert any(reason in str(w.message) for w in caught)


def test_nan_logits_score_as_wrong():
    b = tasks.delayed_copy(4, 12, 2)
    assert tasks.accuracy(np.full((4, 12, 1), np.nan), b) == 0.0
    assert tasks.accuracy(np.where(b.targets > 0.5, 1.0, -1.0), b) == 1.0


@pytest.mark.parametrize("beta", ["beta1", "beta2"])
def test_adam_refuses_a_bias_correction_that_divides_by_zero(beta):
    with pytest.raises(ValueError, match=f"{beta} must be < 1"):
        optim.Adam(**{beta: 1.0})
