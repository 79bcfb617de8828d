"""Measures of how well a generated trajectory reproduces observed dynamics.

* State-space divergence (Kullback–Leibler divergence between the occupation
  densities of observed and generated trajectories, binned on a common grid),
  the geometric measure used to judge reconstructed attractors:

  .. math:: D_{stsp} = \\sum_k \\hat p_k \\log (\\hat p_k / \\hat q_k)

  with bin probabilities ``p`` (data) and ``q`` (model), each smoothed by a
  small ``eps`` so that empty bins stay finite.
* Hellinger distance between the per-channel power spectra (temporal structure).
"""

from __future__ import annotations

import numpy as np

from . import _validate as V


def state_space_divergence(x_true, x_gen, *, n_bins: int = 20, limit: float | None = None, eps: float = 1e-5) -> float:
    """Binned KL divergence between observed and generated occupation densities.

    Parameters
    ----------
    x_true, x_gen : (T, N) arrays
        Observed and generated trajectories (same channels).
    n_bins : int
        Bins per dimension.
    limit : float, optional
        Half-width of the grid (default: 1.1 x the largest |value| of ``x_true``).
    eps : float
        Added to every bin probability before normalising.

    Returns
    -------
    float
        ``D_stsp`` (nats); ``inf`` when ``x_gen`` is not finite.
    """
    a = V.as_float_array(x_true, "x_true")
    b = V.as_float_array(x_gen, "x_gen")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"x_true and x_gen must be (time, channels) with equal channels; got {a.shape}, {b.shape}")
    V.check_finite(a, "x_true")
    if not np.all(np.isfinite(b)):
        return float("inf")
    lim = 1.1 * np.max(np.abs(a)) if limit is None else float(limit)
    rng = [(-lim, lim)] * a.shape[1]
    ha, _ = np.histogramdd(a, bins=n_bins, range=rng)
    hb, _ = np.histogramdd(b, bins=n_bins, range=rng)
    p = ha.ravel() / max(ha.sum(), 1) + eps
    q = hb.ravel() / max(hb.sum(), 1) + eps
    p /= p.sum()
    q /= q.sum()
    return float(np.sum(p * np.log(p / q)))


def power_spectrum_distance(x_true, x_gen, *, smoothing: int = 5) -> float:
    """Mean Hellinger distance between normalised per-channel power spectra.

    Spectra are smoothed by a moving average of ``smoothing`` bins.  0 means
    identical spectra, 1 disjoint ones.
    """
    a = V.as_float_array(x_true, "x_true")
    b = V.as_float_array(x_gen, "x_gen")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"x_true and x_gen must be (time, channels) with equal channels; got {a.shape}, {b.shape}")
    if not np.all(np.isfinite(b)):
        return 1.0
    n = min(a.shape[0], b.shape[0])
    out = []
    kernel = np.ones(smoothing) / smoothing
    for c in range(a.shape[1]):
        sa = np.abs(np.fft.rfft(a[:n, c] - a[:n, c].mean())) ** 2
        sb = np.abs(np.fft.rfft(b[:n, c] - b[:n, c].mean())) ** 2
        sa = np.convolve(sa, kernel, mode="same")
        sb = np.convolve(sb, kernel, mode="same")
        sa /= max(sa.sum(), 1e-300)
        sb /= max(sb.sum(), 1e-300)
        out.append(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(sa * sb)))))
    return float(np.mean(out))
