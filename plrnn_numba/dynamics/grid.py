r"""Bifurcation manifolds: cycle counts and stability signatures over a 2-D parameter grid.

:func:`bifurcation_grid` counts, at every point of a 2-D parameter grid, the
cycles of each order by stability group (stable / saddle / unstable /
non-hyperbolic) and marks the cells whose signature differs from a neighbour:
those cells trace the bifurcation manifolds.  The per-point work is
:func:`cycle_signature`; the batched backends run every point's searches at
once (:func:`~plrnn_numba.dynamics.search_many`).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..models.piecewise import as_piecewise_linear
from ._cycles import STABILITY_GROUPS, stability_group
from .batched import resolve_backend
from .paths import parameter_direction, path_positions
from .scyfi import ScyfiSettings, as_settings, scyfi, search_many

__all__ = ["bifurcation_grid", "cycle_signature", "STABILITY_GROUPS"]


def cycle_signature(model, theta, max_order: int, *, inputs=None, settings: ScyfiSettings | None = None,
                    seed=0) -> np.ndarray:
    """Counts of the cycles of each order by stability group at one parameter point.

    Parameters
    ----------
    model : Model
        A piecewise-linear model.
    theta : (P,) array
        Its parameters.
    max_order : int
        Largest cycle order.
    inputs : (K,) array, optional
        A constant input.
    settings : ScyfiSettings, optional
        The SCYFI settings.
    seed : int, None or numpy.random.Generator
        Seed of SCYFI's candidates.

    Returns
    -------
    (max_order, 4) int64 array
        ``counts[k - 1, g]``: cycles of order k in group g of :data:`STABILITY_GROUPS`
        (stable, saddle, unstable, non-hyperbolic).
    """
    ds = scyfi(model, theta, max_order, inputs=inputs, settings=settings, seed=seed)
    counts = np.zeros((int(max_order), len(STABILITY_GROUPS)), np.int64)
    for k, st in zip(ds.order.values, ds.stability.values):
        counts[int(k) - 1, stability_group(str(st))] += 1
    return counts


class _Axis(NamedTuple):
    values: np.ndarray  # grid values (parameter values, or offsets along a direction)
    offsets: np.ndarray  # offsets from theta along `direction`
    direction: np.ndarray
    label: str
    absolute: bool  # values are parameter values (a named parameter), not offsets

    def attrs(self) -> dict:
        return {
            "units": "1",
            "parameter": self.label,
            "long_name": self.label if self.absolute else f"offset along {self.label}",
            "values": "parameter value" if self.absolute else "offset s along the direction",
        }


def _grid_axis(model, theta, param, values, name, param_name) -> _Axis:
    vals = path_positions(values, name)
    d, label = parameter_direction(model, param, param_name)
    absolute = isinstance(param, str)
    offsets = vals - theta[int(np.flatnonzero(d)[0])] if absolute else vals
    return _Axis(vals, offsets, d, label, absolute)


def _sanitise(label: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")
    while "__" in out:
        out = out.replace("__", "_")
    return out or "param"


def bifurcation_grid(
    model,
    theta,
    param_x,
    values_x,
    param_y,
    values_y,
    *,
    max_order: int,
    inputs=None,
    settings: ScyfiSettings | None = None,
    seed=0,
    progress: bool = False,
    backend: str = "cpu",
    n_threads: int | None = None,
) -> xr.Dataset:
    r"""Cycle counts and stability signatures over a 2-D parameter grid (bifurcation manifolds).

    At every grid point :math:`\theta' = \theta + (x - x_0) e_x + (y - y_0) e_y`
    (for parameter names: ``x``, ``y`` are the parameter *values*) or
    :math:`\theta' = \theta + x\,d_x + y\,d_y` (for direction vectors/mappings:
    offsets along them), SCYFI counts the cycles of each order 1..``max_order`` by
    stability group (:func:`cycle_signature`).  Cells whose signature differs from
    a 4-neighbour are marked: the bifurcation manifolds pass between them.

    Parameters
    ----------
    model : Model
        A piecewise-linear model (see :func:`~plrnn_numba.dynamics.scyfi`).
    theta : (P,) array
        Base parameters (``x_0``, ``y_0`` are its values of named parameters).
    param_x : str, mapping or (P,) array
        The parameter along x (a name such as ``"A[0]"`` or ``"W[0,1]"``) or a direction.
    values_x : 1-D array
        Strictly increasing grid values along x.
    param_y : str, mapping or (P,) array
        The parameter or direction along y.
    values_y : 1-D array
        Strictly increasing grid values along y.
    max_order : int
        Largest cycle order.
    inputs : (K,) array, optional
        A constant input (the same at every grid point).
    settings : ScyfiSettings, optional
        The SCYFI settings (the same at every grid point).
    seed : int, None or numpy.random.Generator
        Seed of SCYFI's candidates (the same at every grid point).
    progress : bool
        Show a progress bar (tqdm; ``backend="cpu"`` only).
    backend : {"cpu", "parallel", "cuda", "auto"}
        ``"cpu"``: one :func:`scyfi` call per grid point.  ``"parallel"`` /
        ``"cuda"``: every (point, order) search at once in batches on numba's
        threads or the GPU (:func:`~plrnn_numba.dynamics.search_many`); the
        same candidate streams, so the same cycles as ``"cpu"``.  ``"auto"``:
        the GPU when present and the grid is large enough, else ``"parallel"``.
    n_threads : int, optional
        Threads for ``"parallel"``.

    Returns
    -------
    xarray.Dataset
        Dims ``y``, ``x``, ``order`` (coordinates ``x``, ``y`` carry the parameter
        names in their ``parameter`` attribute, and aliases named after the
        parameters, e.g. ``A_0``).  ``n_cycles``, ``n_stable``, ``n_saddle``,
        ``n_unstable``, ``n_nonhyperbolic`` (y, x, order); ``signature_id`` (y, x):
        index of the cell's signature in ``signature_table`` (signature, order,
        group); ``lowest_stable_order`` (y, x; 0 if no stable cycle up to
        max_order); ``boundary`` (y, x): 1 where the signature differs from a
        neighbour; ``boundary_order`` (y, x, order): the same per order;
        ``seconds`` (y, x); ``theta0`` (param).
    """
    max_order = V.positive_int(max_order, "max_order")
    settings = as_settings(settings)
    seed = V.seed_value(seed)
    pl0 = as_piecewise_linear(model, theta, inputs)  # validates model, theta and inputs once
    theta0 = model.check_theta(theta).copy()
    ax = _grid_axis(model, theta0, param_x, values_x, "values_x", "param_x")
    ay = _grid_axis(model, theta0, param_y, values_y, "values_y", "param_y")
    if np.allclose(ax.direction / np.linalg.norm(ax.direction), ay.direction / np.linalg.norm(ay.direction)):
        raise ValueError(f"param_x and param_y must be different parameters/directions; got {ax.label!r} twice")
    cells = [(iy, ix) for iy in range(ay.values.size) for ix in range(ax.values.size)]
    budget = settings.budget(range(1, max_order + 1), pl0.n_bits)
    be = resolve_backend(backend, dim=pl0.dim, work=float(len(cells)) * budget * pl0.dim**3,
                         batched_cpu=len(cells) > 1)
    t_start = time.perf_counter()
    point = [theta0 + ax.offsets[ix] * ax.direction + ay.offsets[iy] * ay.direction for iy, ix in cells]
    sig, secs = _signatures(model, point, cells, (ay.values.size, ax.values.size), max_order, inputs, settings,
                            seed, be, n_threads, progress)
    arguments = {
        "model": model.describe(),
        "param_x": ax.label if ax.absolute else ax.direction.tolist(),
        "param_y": ay.label if ay.absolute else ay.direction.tolist(),
        "values_x": ax.values.tolist(),
        "values_y": ay.values.tolist(),
        "max_order": max_order,
        "inputs": None if inputs is None else np.asarray(inputs, dtype=float).tolist(),
        "settings": settings.arguments(),
        "seed": seed,
        "backend": backend,
    }
    attrs = io.provenance("plrnn_numba.dynamics.bifurcation_grid", arguments, seeds=seed)
    attrs.update(
        {
            "title": "Bifurcation manifolds: cycle counts and stability over a parameter grid",
            "param_x": ax.label,
            "param_y": ay.label,
            "max_order": max_order,
            "stability_groups": ", ".join(STABILITY_GROUPS),
            "seconds": time.perf_counter() - t_start,
            "backend": be,
        }
    )
    return _grid_dataset(model, theta0, ax, ay, sig, secs, attrs)


def _signatures(model, thetas, cells, shape, max_order, inputs, settings, seed, backend, n_threads, progress):
    """Cycle counts ``sig`` (y, x, order, group) and seconds (y, x) at the grid points ``thetas``."""
    sig = np.zeros(shape + (max_order, len(STABILITY_GROUPS)), np.int64)
    secs = np.zeros(shape)
    if backend == "cpu":
        it = zip(cells, thetas)
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, total=len(cells), desc="bifurcation grid", unit="point")
        for (iy, ix), th in it:
            t0 = time.perf_counter()
            sig[iy, ix] = cycle_signature(model, th, max_order, inputs=inputs, settings=settings, seed=seed)
            secs[iy, ix] = time.perf_counter() - t0
        return sig, secs
    t0 = time.perf_counter()
    found, _ = search_many(model, np.stack(thetas), max_order, inputs=inputs, settings=settings, seed=seed,
                           backend=backend, n_threads=n_threads)
    for (iy, ix), cyc in zip(cells, found):
        for c in cyc:
            sig[iy, ix, c.order - 1, stability_group(c.stability)] += 1
    # one batch for the whole grid: the time per point is the mean
    secs[:] = (time.perf_counter() - t0) / len(cells)
    return sig, secs


def _grid_dataset(model, theta0, ax: _Axis, ay: _Axis, sig, secs, attrs) -> xr.Dataset:
    """The grid Dataset (see :func:`bifurcation_grid`): counts, signatures and their boundaries."""
    ny, nx, max_order, G = sig.shape
    table, sig_id = np.unique(sig.reshape(ny * nx, -1), axis=0, return_inverse=True)
    sig_id = sig_id.reshape(ny, nx)
    b_order = np.zeros((ny, nx, max_order), np.int8)
    for k in range(max_order):
        _, idk = np.unique(sig[:, :, k].reshape(ny * nx, -1), axis=0, return_inverse=True)
        b_order[:, :, k] = _boundary_mask(idk.reshape(ny, nx))
    stable_any = sig[:, :, :, 0] > 0
    lowest = np.where(stable_any.any(axis=2), np.argmax(stable_any, axis=2) + 1, 0)
    yx, yxo = ("y", "x"), ("y", "x", "order")
    u1 = {"units": "1"}
    data_vars = {
        "n_cycles": (yxo, sig.sum(axis=3), {**u1, "long_name": "number of cycles of each order"}),
        "n_stable": (yxo, sig[..., 0], {**u1, "long_name": "number of stable cycles of each order"}),
        "n_saddle": (yxo, sig[..., 1], {**u1, "long_name": "number of saddle cycles of each order"}),
        "n_unstable": (yxo, sig[..., 2], {**u1, "long_name": "number of fully unstable cycles of each order"}),
        "n_nonhyperbolic": (yxo, sig[..., 3], {**u1, "long_name": "number of non-hyperbolic cycles of each order"}),
        "signature_id": (yx, sig_id.astype(np.int64),
                         {**u1, "long_name": "index of the cell's stability signature in signature_table"}),
        "signature_table": (("signature", "order", "group"), table.reshape(-1, max_order, G),
                            {**u1, "long_name": "cycle counts per order and stability group of each signature"}),
        "lowest_stable_order": (yx, lowest.astype(np.int64),
                                {**u1, "long_name": "lowest order of a stable cycle (0: none up to max_order)"}),
        "boundary": (yx, _boundary_mask(sig_id),
                     {**u1, "long_name": "1 where the signature differs from a 4-neighbour (bifurcation manifold)"}),
        "boundary_order": (yxo, b_order,
                           {**u1, "long_name": "1 where the counts of this order differ from a 4-neighbour"}),
        "seconds": (yx, secs, {"units": "s",
                               "long_name": "SCYFI wall-clock time at the grid point (batched backends: the mean)"}),
        "theta0": (("param",), theta0, {**u1, "long_name": "base parameters"}),
        "direction_x": (("param",), ax.direction, {**u1, "long_name": "parameter direction of x"}),
        "direction_y": (("param",), ay.direction, {**u1, "long_name": "parameter direction of y"}),
    }
    coords = {
        "x": ("x", ax.values, ax.attrs()),
        "y": ("y", ay.values, ay.attrs()),
        "order": ("order", np.arange(1, max_order + 1, dtype=np.int64), {**u1, "long_name": "cycle order"}),
        "group": ("group", np.asarray(STABILITY_GROUPS, dtype=str), {"long_name": "stability group"}),
        "signature": ("signature", np.arange(table.shape[0], dtype=np.int64), {**u1, "long_name": "signature index"}),
        "param": ("param", np.asarray(model.param_names(), dtype=str), {"long_name": "parameter name"}),
    }
    for axis, dim in ((ax, "x"), (ay, "y")):
        alias = _sanitise(axis.label)
        if axis.absolute and alias not in coords and alias not in data_vars:
            coords[alias] = (dim, axis.values, axis.attrs())
    return xr.Dataset(data_vars, coords, attrs)


def _boundary_mask(ids: np.ndarray) -> np.ndarray:
    """1 where a cell's id differs from one of its 4-neighbours."""
    b = np.zeros(ids.shape, np.int8)
    dx = ids[:, 1:] != ids[:, :-1]
    dy = ids[1:, :] != ids[:-1, :]
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    b[1:, :] |= dy
    b[:-1, :] |= dy
    return b
