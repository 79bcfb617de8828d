r"""Orbit diagrams by simulation: steady-state samples of any model along a parameter path.

For every parameter value ``s`` on the path :math:`\theta(s) = \theta_0 + s\,d`
(or every training snapshot), a batch of initial states is iterated,

.. math::

    z_{t+1} = F_{\theta(s)}(z_t, u_t),

the first ``n_transient`` steps are discarded and the next ``n_steps`` states
:math:`z_t,\ t = n_\mathrm{transient}, \dots, n_\mathrm{transient} + n_\mathrm{steps} - 1`
are kept.  Plotted
against ``s`` they show the attractors: one value per ``s`` for a stable fixed
point, k values for a stable k-cycle, a band for chaos or quasi-periodicity.
This works for every model of the package (it only calls ``model.simulate``),
piecewise linear or not; for PLRNNs the exact objects of
:func:`~plrnn_numba.dynamics.bifurcation_path` can be overlaid
(:func:`plrnn_numba.plot.orbit_diagram`).

Runs that diverge (a non-finite state, or ``|z_i| > diverge_threshold``) are
flagged, not errors: their samples are NaN from the step where they diverged.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import config, io
from ..models.base import Model, check_model
from .paths import history_snapshots, parameter_direction, path_positions

__all__ = ["orbit_diagram", "orbit_diagram_training", "n_distinct_values"]

def _initial_states(model: Model, z0, n_init, z0_scale: float, rng) -> np.ndarray:
    M = model.dim
    if z0 is None:
        n = 4 if n_init is None else V.positive_int(n_init, "n_init")
        return rng.normal(0.0, z0_scale, (n, M))
    Z0 = V.as_state(z0, M, "z0")
    Z0 = Z0[None, :] if Z0.ndim == 1 else Z0
    if n_init is not None and V.positive_int(n_init, "n_init") != Z0.shape[0]:
        raise ValueError(f"n_init={n_init} disagrees with z0, which holds {Z0.shape[0]} initial states; drop n_init")
    return Z0.copy()


def _select_states(model: Model, state) -> np.ndarray:
    M = model.dim
    if state is None:
        return np.arange(M)
    idx = np.atleast_1d(np.asarray(state))
    if idx.dtype.kind not in "iu" or idx.ndim != 1 or idx.size == 0:
        raise TypeError(f"state must be None, an integer or a list of integers in [0, {M}); got {state!r}")
    if np.any(idx < 0) or np.any(idx >= M):
        raise ValueError(f"state indices must lie in [0, {M}); got {idx.tolist()}")
    return idx.astype(np.int64)


def _run(model, theta, Z0, n_transient, n_steps, u, states, threshold):
    """Samples (B, n_steps, len(states)) and the first diverged step per run (-1: none).

    ``u`` is the (B, n_transient + n_steps, K) input stream (None: autonomous).
    """
    B = Z0.shape[0]
    first_bad = np.full(B, -1, np.int64)
    z = Z0.copy()
    alive = np.ones(B, bool)

    def check(traj, t0):
        # traj (b, T, M) for the alive runs, states z_{t0}, z_{t0+1}, ...
        bad = ~np.isfinite(traj) | (np.abs(traj) > threshold)
        bad_t = bad.any(axis=2)
        hit = bad_t.any(axis=1)
        idx = np.flatnonzero(alive)
        for i in np.flatnonzero(hit):
            first_bad[idx[i]] = t0 + int(np.argmax(bad_t[i]))
        return hit

    def simulate(z_alive, t0, n):
        kw = {"n_steps": n} if u is None else {"inputs": u[alive, t0 : t0 + n]}
        return model.simulate(theta, z_alive, **kw)  # (b, n + 1, M)

    if check(z[:, None, :], 0).any():
        alive &= first_bad < 0
    t = 0
    with np.errstate(all="ignore"):
        while t < n_transient and alive.any():
            n = min(config.ORBIT_CHUNK, n_transient - t)
            traj = simulate(z[alive], t, n)
            hit = check(traj[:, 1:], t + 1)
            z[alive] = np.where(np.isfinite(traj[:, -1]), traj[:, -1], 0.0)
            alive[np.flatnonzero(alive)[hit]] = False
            t += n
        out = np.full((B, n_steps, states.size), np.nan)
        if alive.any():
            traj = simulate(z[alive], n_transient, n_steps - 1) if n_steps > 1 else z[alive][:, None, :]
            check(traj, n_transient)
            vals = traj[:, :, states]
            idx = np.flatnonzero(alive)
            for j, i in enumerate(idx):
                if first_bad[i] >= 0:
                    vals[j, first_bad[i] - n_transient :] = np.nan
            out[idx] = vals
    return out, first_bad


def _orbit_dataset(model, s, thetas, Z0, n_transient, n_steps, u, states, threshold, s_attrs, attrs, d=None):
    n, B = s.size, Z0.shape[0]
    samples = np.full((n, B, n_steps, states.size), np.nan)
    first_bad = np.full((n, B), -1, np.int64)
    for i in range(n):
        samples[i], first_bad[i] = _run(model, thetas[i], Z0, n_transient, n_steps, u, states, threshold)
    u1 = {"units": "1"}
    data_vars = {
        "z": (
            ("s", "init", "sample", "state"),
            samples,
            {**u1, "long_name": "steady-state samples z_t (t >= n_transient; NaN after divergence)"},
        ),
        "diverged": (
            ("s", "init"),
            (first_bad >= 0).astype(np.int8),
            {**u1, "long_name": f"1 if the run became non-finite or exceeded |z_i| > {threshold:g}"},
        ),
        "diverged_at": (("s", "init"), first_bad, {**u1, "long_name": "first diverged time step (-1: none)"}),
        "z0": (("init", "latent"), Z0, {**u1, "long_name": "initial states (all latent components)"}),
        "theta": (("s", "param"), thetas, {**u1, "long_name": "model parameters at s"}),
    }
    if d is not None:
        data_vars["direction"] = (("param",), d, {**u1, "long_name": "direction d of the path theta0 + s d"})
    coords = {
        "s": ("s", s, s_attrs),
        "init": ("init", np.arange(B, dtype=np.int64), {**u1, "long_name": "initial condition index"}),
        "sample": (
            "sample",
            np.arange(n_transient, n_transient + n_steps, dtype=np.int64),
            {"units": "step", "long_name": "time step t of the sample"},
        ),
        "state": ("state", states, {**u1, "long_name": "latent state component"}),
        "latent": ("latent", np.arange(model.dim, dtype=np.int64), {**u1, "long_name": "latent state component"}),
        "param": ("param", np.asarray(model.param_names(), dtype=str), {"long_name": "parameter name"}),
    }
    return xr.Dataset(data_vars, coords, attrs)


class _RunSettings:
    """Validated settings shared by the two orbit-diagram functions."""

    def __init__(self, model, z0, n_steps, n_transient, n_init, z0_scale, inputs, state, seed, diverge_threshold):
        check_model(model)
        self.n_steps = V.positive_int(n_steps, "n_steps")
        self.n_transient = V.positive_int(n_transient, "n_transient", minimum=0)
        self.threshold = V.finite_float(diverge_threshold, "diverge_threshold", low=0.0)
        if self.threshold <= 0:
            raise ValueError("diverge_threshold must be > 0")
        self.z0_scale = V.finite_float(z0_scale, "z0_scale", low=0.0)
        rng, self.seed = V.generator(seed)
        self.Z0 = _initial_states(model, z0, n_init, self.z0_scale, rng)
        total = self.n_transient + self.n_steps
        self.u = None if model.n_inputs == 0 and inputs is None else np.ascontiguousarray(
            V.input_stream(inputs, self.Z0.shape[0], total, model.n_inputs, "n_transient + n_steps steps"))
        self.states = _select_states(model, state)
        self.arguments = {
            "model": model.describe(),
            "n_steps": self.n_steps,
            "n_transient": self.n_transient,
            "n_init": int(self.Z0.shape[0]),
            "z0_scale": self.z0_scale,
            "z0_given": z0 is not None,
            "inputs": None if inputs is None else np.asarray(inputs, float).tolist(),
            "state": self.states.tolist(),
            "seed": self.seed,
            "diverge_threshold": self.threshold,
        }

    def dataset(self, model, s, thetas, s_attrs, attrs, d=None) -> xr.Dataset:
        return _orbit_dataset(model, s, thetas, self.Z0, self.n_transient, self.n_steps, self.u, self.states,
                              self.threshold, s_attrs, attrs, d)


def orbit_diagram(
    model: Model,
    theta: np.ndarray,
    direction,
    s_values,
    *,
    z0: np.ndarray | None = None,
    n_steps: int = 500,
    n_transient: int = 500,
    n_init: int | None = None,
    z0_scale: float = 1.0,
    inputs: np.ndarray | None = None,
    state=None,
    seed=0,
    diverge_threshold: float = 1e6,
) -> xr.Dataset:
    r"""Orbit (bifurcation) diagram by simulation along :math:`\theta(s) = \theta + s\,d`.

    Parameters
    ----------
    model : Model
        Any model of the package.
    theta : (P,) array
        Start of the path (``s = 0``).
    direction : str, mapping or (P,) array
        Direction ``d``: a parameter name (``"A[0]"``, ``"W[0,1]"``), a
        ``{name: coefficient}`` mapping or a vector
        (:func:`~plrnn_numba.dynamics.parameter_direction`).
    s_values : (n,) array
        Strictly increasing path positions.
    z0 : (M,) or (B, M) array, optional
        Initial states; default ``n_init`` states drawn from N(0, z0_scale^2)
        with the generator of ``seed`` (the same states for every ``s``).
    n_steps : int
        Samples kept per run: the states ``z_t`` for
        ``n_transient <= t < n_transient + n_steps``.
    n_transient : int
        Steps discarded first.
    n_init : int, optional
        Number of random initial states (default 4; with ``z0`` it must match).
    z0_scale : float
        Standard deviation of the random initial states.
    inputs : (K,), (T, K) or (B, T, K) array, optional
        External input (``T = n_transient + n_steps``): a constant vector, one per
        step (row t drives the step from ``z_t`` to ``z_{t+1}``), or one stream per
        initial state; required iff the model has inputs.
    state : int or list of int, optional
        Latent components kept (default all).
    seed : int, None or numpy.random.Generator
        Seed of the initial states (recorded).
    diverge_threshold : float
        A run diverges when a state is non-finite or ``|z_i|`` exceeds this.

    Returns
    -------
    xarray.Dataset
        ``z`` (s, init, sample, state): the samples (NaN after divergence);
        ``diverged`` (s, init) 0/1 and ``diverged_at`` (first diverged step, -1);
        ``z0`` (init, latent); ``theta`` (s, param); ``direction`` (param).
        Provenance attributes.
    """
    run = _RunSettings(model, z0, n_steps, n_transient, n_init, z0_scale, inputs, state, seed, diverge_threshold)
    theta = model.check_theta(theta).copy()
    d, label = parameter_direction(model, direction)
    s = path_positions(s_values)
    thetas = theta[None, :] + s[:, None] * d[None, :]
    t0 = time.perf_counter()
    arguments = {
        **run.arguments,
        "theta": theta.tolist() if theta.size <= 4096 else "omitted (large)",
        "direction": label if label != "direction" else d.tolist(),
        "s_values": s.tolist(),
    }
    attrs = io.provenance("plrnn_numba.dynamics.orbit_diagram", arguments, seeds=run.seed)
    s_attrs = {"units": "1", "long_name": f"path parameter s (theta = theta0 + s d, d: {label})"}
    ds = run.dataset(model, s, thetas, s_attrs, attrs, d)
    ds.attrs.update({"title": "Orbit diagram (simulation)", "direction_label": label, "n_transient": run.n_transient,
                     "n_steps": run.n_steps, "seconds": time.perf_counter() - t0})
    return ds


def orbit_diagram_training(
    model: Model,
    history: xr.Dataset,
    *,
    z0: np.ndarray | None = None,
    n_steps: int = 500,
    n_transient: int = 500,
    n_init: int | None = None,
    z0_scale: float = 1.0,
    inputs: np.ndarray | None = None,
    state=None,
    seed=0,
    diverge_threshold: float = 1e6,
) -> xr.Dataset:
    """Orbit diagram against training epochs: one simulation per parameter snapshot of ``history``.

    ``s`` is the snapshot epoch (``history["snapshot_epoch"]``) and the parameters
    are ``history["theta_snapshots"]``; select snapshots with
    ``history.isel(snapshot=...)``.  The history must have been recorded for
    ``model``.

    Parameters
    ----------
    model : Model
        The model that was trained.
    history : xarray.Dataset
        Its training history (:func:`~plrnn_numba.train`).
    z0 : (M,) or (B, M) array, optional
        Initial states; default ``n_init`` states drawn from N(0, z0_scale^2)
        (the same states for every snapshot).
    n_steps : int
        Samples kept per run.
    n_transient : int
        Steps discarded first.
    n_init : int, optional
        Number of random initial states (default 4; with ``z0`` it must match).
    z0_scale : float
        Standard deviation of the random initial states.
    inputs : (K,), (T, K) or (B, T, K) array, optional
        External input (``T = n_transient + n_steps``), as for :func:`orbit_diagram`.
    state : int or list of int, optional
        Latent components kept (default all).
    seed : int, None or numpy.random.Generator
        Seed of the initial states (recorded).
    diverge_threshold : float
        A run diverges when a state is non-finite or ``|z_i|`` exceeds this.

    Returns
    -------
    xarray.Dataset
        As for :func:`orbit_diagram`, with ``s`` the snapshot epoch.
    """
    s, thetas = history_snapshots(check_model(model), history)  # first: is it this model's history?
    run = _RunSettings(model, z0, n_steps, n_transient, n_init, z0_scale, inputs, state, seed, diverge_threshold)
    t0 = time.perf_counter()
    arguments = {**run.arguments, "history": str(history.attrs.get("created", "training history")),
                 "epochs": s.tolist()}
    attrs = io.provenance("plrnn_numba.dynamics.orbit_diagram_training", arguments, seeds=run.seed)
    ds = run.dataset(model, s, thetas, {"units": "epoch", "long_name": "training epoch"}, attrs)
    ds.attrs.update({"title": "Orbit diagram along training (simulation)", "n_transient": run.n_transient,
                     "n_steps": run.n_steps, "seconds": time.perf_counter() - t0})
    return ds


def n_distinct_values(ds: xr.Dataset, state: int = 0, *, rtol: float = 1e-6, atol: float = 1e-9) -> xr.DataArray:
    """Number of distinct steady-state values of one component per ``s`` (all initial states pooled).

    Sorted finite samples are split where consecutive values differ by more than
    ``atol + rtol * max(|z|)``; a stable k-cycle gives k (if every initial state
    reaches it), a stable fixed point 1, chaos about the number of samples.
    Diverged runs are ignored; 0 where every run diverged.

    Parameters
    ----------
    ds : xarray.Dataset
        An orbit diagram (:func:`orbit_diagram` or :func:`orbit_diagram_training`).
    state : int
        The latent component.
    rtol : float
        Relative tolerance of two values being the same.
    atol : float
        Absolute tolerance of two values being the same.

    Returns
    -------
    xarray.DataArray
        Dim ``s``.
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an orbit-diagram xarray.Dataset; got {type(ds).__name__}")
    if "z" not in ds or "s" not in ds.dims:
        raise ValueError("ds must be an orbit-diagram Dataset (from orbit_diagram or orbit_diagram_training)")
    state = V.positive_int(state, "state", minimum=0)
    if state not in ds["state"].values:
        raise ValueError(f"state {state} is not in the Dataset; it holds {ds['state'].values.tolist()}")
    rtol = V.finite_float(rtol, "rtol", low=0.0)
    atol = V.finite_float(atol, "atol", low=0.0)
    z = ds["z"].sel(state=state).values.copy()  # (s, init, sample)
    if "diverged" in ds:
        z[ds["diverged"].values.astype(bool)] = np.nan
    out = np.zeros(z.shape[0], np.int64)
    for i in range(z.shape[0]):
        v = np.sort(z[i][np.isfinite(z[i])])
        if v.size == 0:
            continue
        tol = atol + rtol * float(np.max(np.abs(v)))
        out[i] = 1 + int(np.sum(np.diff(v) > tol))
    return xr.DataArray(
        out,
        coords={"s": ds["s"]},
        dims=("s",),
        attrs={"units": "1", "long_name": f"number of distinct values of z_{state}"},
    )
