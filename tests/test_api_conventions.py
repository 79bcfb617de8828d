"""The public API follows one set of conventions, and the signatures table in docs/design.md says which.

The table (function, first parameters, the names of the steps / transient /
seed / inputs parameters) is parsed and checked against ``inspect.signature``
of every function listed; every function of the package that takes a model
must be listed.  The shared rules behind the names are tested where they are
implemented (``seed`` and ``inputs`` helpers below; each engine's own tests).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import plrnn_numba as pn
from plrnn_numba import _validate as V
from plrnn_numba import dynamics, ghost

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("steps", "transient", "seed", "inputs")
#: the one name each concept has wherever it occurs
CANONICAL = {"steps": "n_steps", "transient": "n_transient", "seed": "seed", "inputs": "inputs"}
#: names that must not be used for these concepts
FORBIDDEN = {"burn_in", "transient", "theta0", "scyfi_kwargs", "model_or_params", "rng"}


def _table() -> dict[str, dict]:
    text = (ROOT / "docs" / "design.md").read_text()
    section = text[text.index("## Signatures"):]
    rows = {}
    for line in section.splitlines()[1:]:
        if line.startswith("## "):
            break
        m = re.match(r"^\| `(\w+)` \| `([^`]*)` \|(.*)\|$", line)
        if m:
            cells = [c.strip().strip("`") for c in m.group(3).split("|")]
            rows[m.group(1)] = {"first": [x.strip() for x in m.group(2).split(",")],
                                **dict(zip(COLUMNS, cells))}
    return rows


TABLE = _table()


def _function(name):
    for mod in (pn, dynamics, ghost):
        if hasattr(mod, name):
            return getattr(mod, name)
    raise AssertionError(
        f"{name} listed in docs/design.md is not exported by plrnn_numba, plrnn_numba.dynamics or plrnn_numba.ghost"
    )


def test_table_lists_every_function_that_takes_a_model():
    assert len(TABLE) >= 19
    public = {n: getattr(m, n) for m in (pn, dynamics, ghost) for n in getattr(m, "__all__", [])}
    takes_model = {n for n, f in public.items()
                   if inspect.isfunction(f) and next(iter(inspect.signature(f).parameters), None) == "model"}
    assert takes_model <= set(TABLE), sorted(takes_model - set(TABLE))


@pytest.mark.parametrize("name", sorted(TABLE))
def test_signature_matches_the_table(name):
    row = TABLE[name]
    params = inspect.signature(_function(name)).parameters
    positional = [p.name for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert positional[: len(row["first"])] == row["first"], (name, positional)
    assert positional[0] == "model"
    for col in COLUMNS:
        cell = row[col]
        if cell == "—":
            assert CANONICAL[col] not in params or col == "steps" and name == "simulate", (name, col)
        else:
            assert cell == CANONICAL[col] and cell in params, (name, col, cell)
    assert not FORBIDDEN & set(params), (name, FORBIDDEN & set(params))
    if "seed" in params:
        assert params["seed"].default == 0, name
    if "settings" in params:
        assert params["settings"].default is None, name


def test_one_seed_rule():
    for seed in (0, 7, None, np.random.default_rng(3)):
        ss = V.seed_sequence(seed)
        assert isinstance(ss.entropy, int) and 0 <= ss.entropy < 2**63
    a = np.random.default_rng(V.seed_sequence(11)).random(3)
    np.testing.assert_array_equal(a, np.random.default_rng(11).random(3))
    for bad, exc in ((-1, ValueError), (1.5, TypeError), (True, TypeError), ("1", TypeError)):
        with pytest.raises(exc, match="seed must be"):
            V.seed_sequence(bad)
        with pytest.raises(exc, match="seed must be"):
            V.seed_value(bad)
    # the recorded seed without the sequence: the same int for ints, a fresh one for None and Generators
    for seed in (0, 7, np.int64(12), 2**63 - 1):
        assert V.seed_value(seed) == V.seed_sequence(seed).entropy and type(V.seed_value(seed)) is int
    assert V.seed_value(np.random.default_rng(3)) == V.seed_sequence(np.random.default_rng(3)).entropy
    assert 0 <= V.seed_value(None) < 2**63


def test_float_arrays_are_plain_ndarrays():
    # the no-copy path returns a float64 ndarray itself, and never a subclass
    x = np.arange(3.0)
    assert V.as_float_array(x, "x") is x
    class Sub(np.ndarray):
        pass

    for sub in (np.ma.masked_array([1.0, 2.0]), np.arange(2.0).view(Sub)):
        out = V.as_float_array(sub, "x")
        assert type(out) is np.ndarray and out.dtype == np.float64
    assert V.as_float_array(np.array([1, 2], np.int32), "x").dtype == np.float64
    assert V.as_float_array(np.array([True]), "x").dtype == np.float64
    for bad, match in ((np.array([1j]), "real-valued"), (np.array(["a"]), "real numeric"),
                       (np.array([None]), "real numeric")):
        with pytest.raises(TypeError, match=match):
            V.as_float_array(bad, "x")
    # carray's no-copy path: only for C-contiguous, writeable arrays of the dtype
    y = np.zeros((2, 3))
    assert V.carray(y) is y
    assert V.carray(y.T).flags.c_contiguous and V.carray(y.T) is not y
    ro = np.zeros(3)
    ro.flags.writeable = False
    assert V.carray(ro).flags.writeable
    assert V.carray(y, np.float32).dtype == np.float32


def test_one_inputs_rule():
    want = np.broadcast_to(np.array([1.0, 2.0]), (3, 4, 2))
    for given in ([1.0, 2.0], np.tile([1.0, 2.0], (4, 1)), np.tile([1.0, 2.0], (3, 4, 1))):
        np.testing.assert_array_equal(V.input_stream(given, 3, 4, 2), want)
    with pytest.raises(ValueError, match=r"inputs must have shape \(2,\) \(constant\), \(4, 2\) or \(3, 4, 2\)"):
        V.input_stream(np.ones((5, 2)), 3, 4, 2)
    with pytest.raises(ValueError, match="inputs are required"):
        V.input_stream(None, 3, 4, 2)
    with pytest.raises(ValueError, match="one constant input vector"):
        V.constant_input(np.ones((4, 2)), 2)
    # the same stream given three ways gives the same simulation
    model = pn.VanillaRNN(3, n_inputs=2)
    theta = model.init(0)
    z0 = np.zeros((2, 3))
    a = model.simulate(theta, z0, n_steps=5, inputs=[0.3, -0.1])
    b = model.simulate(theta, z0, inputs=np.tile([0.3, -0.1], (5, 1)))
    np.testing.assert_array_equal(a, b)


def test_backend_vocabularies():
    from plrnn_numba import cli, sweep

    assert dynamics.SCYFI_BACKENDS == ("cpu", "parallel", "cuda", "auto")
    assert sweep.SWEEP_BACKENDS == ("processes", "serial", "dask")
    assert not hasattr(cli, "BACKENDS")
