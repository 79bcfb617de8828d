"""Matplotlib figures drawn from the package's Datasets (re-plottable from netCDF files)."""

from __future__ import annotations

import os

import numpy as np
import xarray as xr

from . import _validate as V

__all__ = [
    "loss_curve",
    "attractor",
    "training_summary",
    "bifurcation_manifolds",
    "orbit_diagram",
    "loss_jumps_figure",
]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _dataset(ds, name: str, needs: tuple[str, ...], producer: str) -> xr.Dataset:
    """``ds`` if it is a Dataset holding the variables ``needs``, else an error naming ``name`` and ``producer``."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{name} must be an xarray.Dataset from {producer}; got {type(ds).__name__}")
    missing = [v for v in needs if v not in ds.variables]
    if missing:
        raise ValueError(f"{name} must come from {producer} (no {missing[0]!r} variable)")
    return ds


def _trajectory(x, name: str) -> np.ndarray:
    arr = V.as_float_array(getattr(x, "values", x), name)
    if arr.ndim != 2 or 0 in arr.shape:
        raise ValueError(f"{name} must be a non-empty (time, channel) array; got shape {arr.shape}")
    return arr  # NaN/inf (a diverged run) are left out of the plot by matplotlib


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("MPLBACKEND"))


def loss_curve(history: xr.Dataset, ax=None, *, log: bool = True):
    """Training loss (and gradient norm on a twin axis) against epoch; marks non-finite epochs.

    Parameters
    ----------
    history : xarray.Dataset
        From :func:`plrnn_numba.train`.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    log : bool
        Logarithmic loss axis.

    Returns
    -------
    matplotlib.axes.Axes
        The loss axis.
    """
    _dataset(history, "history", ("epoch", "loss", "nonfinite"), "plrnn_numba.train")
    log = V.flag(log, "log")
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    ep = history["epoch"].values
    ax.plot(ep, history["loss"].values, lw=1, color="C0", label="loss")
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(history["loss"].attrs.get("long_name", "loss"))
    bad = history["nonfinite"].values.astype(bool)
    if bad.any():
        for e in ep[bad]:
            ax.axvline(e, color="r", lw=0.8, alpha=0.6)
    if "grad_norm" in history:
        ax2 = ax.twinx()
        ax2.plot(ep, history["grad_norm"].values, lw=0.6, color="C1", alpha=0.6)
        ax2.set_yscale("log")
        ax2.set_ylabel("gradient norm", color="C1")
    ax.set_title(f"training ({history.attrs.get('status', '')})")
    return ax


def attractor(observed, generated, ax=None, *, dims=(0, 2), n_points: int = 5000, labels=("x", "y", "z")):
    """Observed against generated trajectory, projected on two channels.

    Parameters
    ----------
    observed : (T, N) array or xarray.DataArray
        The data.
    generated : (T', N) array or xarray.DataArray
        The model's trajectory.
    ax : pair of matplotlib.axes.Axes, optional
        Where to draw the two panels (default: a new figure).
    dims : (int, int)
        The two channels plotted.
    n_points : int
        Leading samples of each trajectory plotted.
    labels : sequence of str
        Channel names for the axis labels.

    Returns
    -------
    pair of matplotlib.axes.Axes
        The data and the model panel.
    """
    n_points = V.positive_int(n_points, "n_points")
    obs = _trajectory(observed, "observed")[:n_points]
    gen = _trajectory(generated, "generated")[:n_points]
    if obs.shape[1] != gen.shape[1]:
        raise ValueError(f"observed and generated must have the same channels; got {obs.shape[1]} and {gen.shape[1]}")
    if np.ndim(dims) != 1 or len(dims) != 2:
        raise ValueError(f"dims must be two channel indices (i, j); got {dims!r}")
    i, j = (V.positive_int(d, "dims", minimum=0, maximum=obs.shape[1] - 1) for d in dims)
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(8, 3.8), sharex=True, sharey=True)
    ax[0].plot(obs[:, i], obs[:, j], lw=0.3, color="k")
    ax[0].set_title("data")
    ax[1].plot(gen[:, i], gen[:, j], lw=0.3, color="C3")
    ax[1].set_title("generated (free-running model)")
    for a in ax:
        a.set_xlabel(labels[i] if i < len(labels) else f"x{i}")
    ax[0].set_ylabel(labels[j] if j < len(labels) else f"x{j}")
    return ax


def training_summary(ds: xr.Dataset, path=None):
    """Figure for a fitted model: loss curve, data vs generated attractor, time series.

    Parameters
    ----------
    ds : xarray.Dataset
        The training history with the variables ``observed`` and ``generated``
        (dims ``gen_time``, ``channel``), as written by ``scripts/train_plrnn.py``.
    path : str or path-like, optional
        Where to save the figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    _dataset(ds, "ds", ("epoch", "loss", "nonfinite", "observed", "generated"), "scripts/train_plrnn.py")
    plt = _plt()
    fig = plt.figure(figsize=(12, 7))
    gs = fig.add_gridspec(2, 3)
    loss_curve(ds, fig.add_subplot(gs[0, 0]))
    obs = ds["observed"].values
    gen = ds["generated"].values
    labels = [str(c) for c in ds["channel"].values] if "channel" in ds.coords else ["x", "y", "z"]
    attractor(obs, gen, [fig.add_subplot(gs[0, 1]), fig.add_subplot(gs[0, 2])], labels=labels)
    ax = fig.add_subplot(gs[1, :])
    n = min(1000, obs.shape[0])
    ax.plot(obs[:n, 0], color="k", lw=1, label=f"data {labels[0]}")
    ax.plot(gen[:n, 0], color="C3", lw=1, label=f"model {labels[0]} (free run from the same start)")
    ax.set_xlabel("time step")
    ax.legend(loc="upper right", fontsize=8)
    title = ds.attrs.get("title", "")
    if "state_space_divergence" in ds.attrs:
        title += (
            f"  D_stsp = {ds.attrs['state_space_divergence']:.3f}, D_PSE = {ds.attrs['power_spectrum_distance']:.3f}"
        )
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


# ---------------------------------------------------------------------------- bifurcation analyses
def _cell_edges(v: np.ndarray) -> np.ndarray:
    """Cell edges for cell-centred coordinates ``v`` (midpoints; half a spacing beyond the ends)."""
    v = np.asarray(v, dtype=float)
    if v.size == 1:
        return np.array([v[0] - 0.5, v[0] + 0.5])
    mid = 0.5 * (v[1:] + v[:-1])
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _boundary_segments(ids: np.ndarray, xe: np.ndarray, ye: np.ndarray) -> list:
    """Line segments along the cell edges that separate cells with different ids."""
    segs = []
    ny, nx = ids.shape
    for iy in range(ny):
        for ix in range(nx - 1):
            if ids[iy, ix] != ids[iy, ix + 1]:
                segs.append([(xe[ix + 1], ye[iy]), (xe[ix + 1], ye[iy + 1])])
    for iy in range(ny - 1):
        for ix in range(nx):
            if ids[iy, ix] != ids[iy + 1, ix]:
                segs.append([(xe[ix], ye[iy + 1]), (xe[ix + 1], ye[iy + 1])])
    return segs


def bifurcation_manifolds(
    ds: xr.Dataset,
    ax=None,
    order: int | None = None,
    *,
    boundaries: bool = True,
    cmap: str = "viridis",
    boundary_color: str = "k",
):
    """Bifurcation manifolds in a 2-D parameter plane, from :func:`plrnn_numba.dynamics.bifurcation_grid`.

    Colour: with ``order=None`` the lowest order of a stable cycle at each grid
    point (0: no stable cycle up to ``max_order``: divergence, chaos, a longer
    cycle or a quasi-periodic orbit), with ``order=k`` the number of stable
    k-cycles.  Boundaries (drawn along the cell edges) separate cells whose
    stability signature differs: all orders for ``order=None``, order k only
    otherwise.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`plrnn_numba.dynamics.bifurcation_grid`.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    order : int, optional
        The cycle order shown (default: the lowest stable order).
    boundaries : bool
        Draw the boundaries between signatures.
    cmap : str
        Colour map.
    boundary_color : str
        Colour of the boundaries.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    plt = _plt()
    from matplotlib import colors
    from matplotlib.collections import LineCollection

    _dataset(ds, "ds", ("n_stable", "lowest_stable_order", "signature_id"), "plrnn_numba.dynamics.bifurcation_grid")
    boundaries = V.flag(boundaries, "boundaries")
    if order is not None and V.positive_int(order, "order") not in ds["order"].values:
        orders = ds["order"].values.tolist()
        raise ValueError(f"order must be None or one of the Dataset's orders {orders}; got {order}")
    created = ax is None
    if created:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    x, y = ds["x"].values, ds["y"].values
    xe, ye = _cell_edges(x), _cell_edges(y)
    if order is None:
        C = ds["lowest_stable_order"].values
        ids = ds["signature_id"].values
        label = "lowest order of a stable cycle (0: none)"
    else:
        orders = ds["order"].values.tolist()
        if order not in orders:
            raise ValueError(f"order must be one of {orders}; got {order!r}")
        C = ds["n_stable"].sel(order=order).values
        counts = np.stack(
            [ds[v].sel(order=order).values for v in ("n_stable", "n_saddle", "n_unstable", "n_nonhyperbolic")], axis=-1
        )
        _, ids = np.unique(counts.reshape(-1, counts.shape[-1]), axis=0, return_inverse=True)
        ids = ids.reshape(C.shape)
        label = "number of stable fixed points" if order == 1 else f"number of stable {order}-cycles"
    vmax = max(int(np.max(C)), 1)
    norm = colors.BoundaryNorm(np.arange(-0.5, vmax + 1.5), plt.get_cmap(cmap).N)
    mesh = ax.pcolormesh(xe, ye, C, cmap=cmap, norm=norm, shading="flat")
    cb = ax.figure.colorbar(mesh, ax=ax, ticks=np.arange(0, vmax + 1))
    cb.set_label(label)
    if boundaries:
        segs = _boundary_segments(ids, xe, ye)
        if segs:
            ax.add_collection(LineCollection(segs, colors=boundary_color, linewidths=1.5))
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel(ds["x"].attrs.get("long_name", "x"))
    ax.set_ylabel(ds["y"].attrs.get("long_name", "y"))
    ax.set_title("Bifurcation manifolds in parameter space", fontsize=10)
    if created:
        ax.figure.tight_layout()
    return ax


def orbit_diagram(
    ds: xr.Dataset,
    ax=None,
    state: int = 0,
    *,
    objects: xr.Dataset | None = None,
    events: xr.Dataset | None = None,
    color: str = "k",
    size: float = 2.0,
):
    """Orbit diagram: steady-state samples of ``z_state`` against ``s``.

    ``ds`` comes from :func:`plrnn_numba.dynamics.orbit_diagram` (or
    ``orbit_diagram_training``).  Optionally overlays the exact objects of
    :func:`plrnn_numba.dynamics.bifurcation_path` (``objects``: every cycle point;
    stable objects filled, unstable hollow) and marks its ``events`` with dotted
    vertical lines.  Diverged runs are counted in the title.

    Parameters
    ----------
    ds : xarray.Dataset
        The orbit diagram.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    state : int
        The latent component shown.
    objects : xarray.Dataset, optional
        The objects of :func:`plrnn_numba.dynamics.bifurcation_path`.
    events : xarray.Dataset, optional
        Its events.
    color : str
        Colour of the simulated samples.
    size : float
        Marker size of the samples.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    _dataset(ds, "ds", ("z", "s", "state"), "plrnn_numba.dynamics.orbit_diagram")
    state = V.positive_int(state, "state", minimum=0)
    plt = _plt()
    if state not in ds["state"].values:
        raise ValueError(f"state {state} is not in the Dataset; it holds {ds['state'].values.tolist()}")
    created = ax is None
    if created:
        _, ax = plt.subplots(figsize=(6, 4))
    s = ds["s"].values
    z = ds["z"].sel(state=state).values  # (s, init, sample)
    S = np.broadcast_to(s[:, None, None], z.shape)
    ok = np.isfinite(z)
    ax.scatter(S[ok], z[ok], s=size, c=color, marker=".", linewidths=0, label="simulation")
    if objects is not None:
        so = objects["s"].values
        pts = objects["points"].sel(state=state).values  # (s, object, point)
        exists = objects["exists"].values.astype(bool)
        stable = (objects["n_unstable_eig"].values == 0) & exists
        for mask, face, lab in ((stable, "C3", "stable (SCYFI)"), (exists & ~stable, "none", "unstable (SCYFI)")):
            ii, jj = np.nonzero(mask)
            xs = np.repeat(so[ii], pts.shape[2])
            ys = pts[ii, jj].ravel()
            good = np.isfinite(ys)
            if good.any():
                ax.scatter(
                    xs[good], ys[good], s=14, facecolors=face, edgecolors="C3", linewidths=0.8, label=lab, zorder=3
                )
    if events is not None and events.sizes.get("event", 0):
        for sv, kind in zip(events["s"].values, events["kind"].values):
            ax.axvline(sv, color="C0", lw=0.7, ls=":", alpha=0.8)
            ax.annotate(
                str(kind),
                (sv, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=6,
                va="top",
                ha="right",
                color="C0",
            )
    ax.set_xlabel(ds["s"].attrs.get("long_name", "s"))
    ax.set_ylabel(f"z_{state}")
    n_div = int(ds["diverged"].values.sum()) if "diverged" in ds else 0
    title = "Orbit diagram"
    if n_div:
        title += f" ({n_div} of {ds['diverged'].size} runs diverged)"
    ax.set_title(title, fontsize=10)
    if objects is not None:
        ax.legend(fontsize=7, loc="best")
    if created:
        ax.figure.tight_layout()
    return ax


# ---------------------------------------------------------------------------- loss jumps and bifurcations
def _event_colors() -> dict[str, str]:
    """One fixed colour per bifurcation kind, the same in every figure."""
    from .dynamics.events import EVENT_KINDS

    return {kind: f"C{i + 2}" for i, kind in enumerate(EVENT_KINDS)}  # C0, C1: the loss and gradient curves


def loss_jumps_figure(history: xr.Dataset, jumps: xr.Dataset | None, events: xr.Dataset | None, path=None, *,
                      title: str | None = None):
    """Loss and gradient norm of a training run, with its loss jumps and bifurcation events.

    Top: the loss against epoch (log scale), jumps marked by triangles (up:
    the loss jumps up; down: it drops) between the smoothed losses before and
    after; bottom: the gradient norm (log scale).  Both panels draw the events
    as vertical lines coloured by kind, with one legend entry per kind present.

    Parameters
    ----------
    history : xarray.Dataset
        From :func:`plrnn_numba.train` (``epoch``, ``loss``, ``grad_norm``).
    jumps : xarray.Dataset or None
        From :func:`plrnn_numba.training.detect_loss_jumps` (or the matched
        Dataset of :func:`~plrnn_numba.training.match_jumps_to_events`, which
        carries no ``loss_before``/``loss_after``: the triangles then sit on the
        loss curve); None draws none.
    events : xarray.Dataset or None
        From :func:`plrnn_numba.dynamics.bifurcations_along_training`; None draws none.
    path : str or path-like, optional
        Where to save the figure.
    title : str, optional
        Figure title (default: the history's status and the counts).

    Returns
    -------
    matplotlib.figure.Figure
        The figure.
    """
    _dataset(history, "history", ("epoch", "loss", "grad_norm"), "plrnn_numba.train")
    if jumps is not None:
        _dataset(jumps, "jumps", ("epoch", "direction"), "plrnn_numba.training.detect_loss_jumps")
    if events is not None:
        _dataset(events, "events", ("s", "kind"), "plrnn_numba.dynamics.bifurcations_along_training")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be None, a str or path-like; got {type(path).__name__}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be None or a str; got {type(title).__name__}")
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, (ax, ax_g) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True, gridspec_kw={"height_ratios": (2, 1)})
    ep = history["epoch"].values
    loss = np.asarray(history["loss"].values, dtype=float)
    ax.plot(ep, loss, lw=1, color="C0")
    ax_g.plot(ep, history["grad_norm"].values, lw=0.8, color="C1")
    for a in (ax, ax_g):
        a.set_yscale("log")
    ax.set_ylabel(history["loss"].attrs.get("long_name", "loss"))
    ax_g.set_ylabel("gradient norm")
    ax_g.set_xlabel("epoch")
    handles = []

    colors = _event_colors()
    if events is not None and events.sizes.get("event", 0):
        kinds = np.asarray(events["kind"].values).astype(str)
        for kind in dict.fromkeys(kinds):  # the kinds present, in order of first appearance
            color = colors.get(kind, "k")
            for sv in np.asarray(events["s"].values, dtype=float)[kinds == kind]:
                for a in (ax, ax_g):
                    a.axvline(sv, color=color, lw=0.9, ls="--", alpha=0.8)
            handles.append(Line2D([], [], color=color, lw=0.9, ls="--", label=kind))

    n_jumps = 0 if jumps is None else jumps.sizes.get("jump", 0)
    if n_jumps:
        je = np.asarray(jumps["epoch"].values, dtype=float)
        up = np.asarray(jumps["direction"].values) > 0
        if "loss_before" in jumps and "loss_after" in jumps:
            # the geometric mean sits halfway between the two levels on the log axis
            y = np.sqrt(np.asarray(jumps["loss_before"].values) * np.asarray(jumps["loss_after"].values))
        else:
            y = np.interp(je, ep, np.where(np.isfinite(loss), loss, np.nan))
        for mask, marker, label in ((up, "^", "loss jump up"), (~up, "v", "loss jump down")):
            if mask.any():
                ax.scatter(je[mask], y[mask], marker=marker, s=60, color="k", zorder=4)
                handles.append(Line2D([], [], marker=marker, color="k", ls="none", label=label))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="best")
    if title is None:
        n_events = 0 if events is None else events.sizes.get("event", 0)
        title = f"training ({history.attrs.get('status', '')}): {n_jumps} loss jumps, {n_events} bifurcations"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
