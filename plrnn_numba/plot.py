"""Matplotlib figures drawn from the package's Datasets (re-plottable from netCDF files)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg") and not _has_display():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _has_display() -> bool:
    import os

    return bool(os.environ.get("DISPLAY") or os.environ.get("MPLBACKEND"))


def loss_curve(history: xr.Dataset, ax=None, *, log: bool = True):
    """Training loss (and gradient norm on a twin axis) against epoch; marks non-finite epochs."""
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

    ``observed`` and ``generated`` are (time, channel) arrays or DataArrays.
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(8, 3.8), sharex=True, sharey=True)
    obs = np.asarray(observed)[:n_points]
    gen = np.asarray(generated)[:n_points]
    i, j = dims
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

    ``ds`` must hold the training history and the variables ``observed`` and
    ``generated`` (dims ``gen_time``, ``channel``), as written by
    ``scripts/train_plrnn.py``.
    """
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
