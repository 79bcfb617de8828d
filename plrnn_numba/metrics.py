r"""Measures of how well a generated trajectory reproduces observed dynamics.

The two measures of dynamical-systems reconstruction used with generalized
teacher forcing (Hess, Monfared, Brenner and Durstewitz 2023, "Generalized
teacher forcing for learning chaotic dynamics"; Eisenmann et al. 2023,
"Bifurcations and loss jumps in RNN training"), defined as in the code that
accompanies those papers:

* **State-space divergence** ``D_stsp``, the Kullback-Leibler divergence
  between the occupation densities of the observed and the generated
  trajectory, :math:`D_{stsp} = KL(p \,\|\, q) = \sum_k p_k \log(p_k / q_k)`.
  For fewer than 6 observed channels the densities are histograms
  (:func:`state_space_divergence_binned`); from 6 channels on, Gaussian
  mixtures with one component per time step, compared by Monte Carlo
  (:func:`state_space_divergence_gmm`).
* **Power-spectrum distance** ``D_H`` (:func:`power_spectrum_distance`): the
  Hellinger distance between the smoothed, normalised power spectra of the
  z-scored channels, averaged over channels.

Both compare a generated trajectory of the same length as the data, taken
from a free run of ``1.25 T`` steps whose first ``0.25 T`` are dropped as
transient (:func:`evaluation_window`).
"""

from __future__ import annotations

import numpy as np

from . import _validate as V

__all__ = [
    "state_space_divergence",
    "state_space_divergence_binned",
    "state_space_divergence_gmm",
    "power_spectrum_distance",
    "smoothed_power_spectra",
    "free_run_measures",
    "evaluation_window",
    "laplace_smoothing",
    "GMM_MIN_CHANNELS",
]

#: channels from which ``state_space_divergence(method="auto")`` uses the Gaussian-mixture estimate
GMM_MIN_CHANNELS = 6


def _pair(x_true, x_gen) -> tuple[np.ndarray, np.ndarray]:
    a = V.as_float_array(x_true, "x_true")
    b = V.as_float_array(x_gen, "x_gen")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or 0 in a.shape or b.shape[0] == 0:
        raise ValueError(f"x_true and x_gen must be non-empty (time, channels) arrays with the same channels; got "
                         f"{a.shape} and {b.shape}")
    V.check_finite(a, "x_true")
    return a, b


def laplace_smoothing(counts: np.ndarray, alpha: float = 1e-5) -> np.ndarray:
    r"""Bin probabilities with additive (Laplace) smoothing: :math:`(c_k + \alpha) / (\sum_j c_j + \alpha K)`.

    ``K`` is the number of bins; an empty bin gets a small positive
    probability, so that the divergence stays finite.

    Parameters
    ----------
    counts : array
        Counts per bin (any shape).
    alpha : float
        Pseudo-count added to every bin.

    Returns
    -------
    array
        Probabilities, the shape of ``counts``, summing to 1.
    """
    c = np.asarray(counts, dtype=float)
    return (c + alpha) / (c.sum() + alpha * c.size)


def state_space_divergence_binned(x_true, x_gen, *, n_bins: int = 30, alpha: float = 1e-5) -> float:
    r"""``D_stsp`` from histograms: KL divergence of the binned occupation densities.

    The grid has ``n_bins`` bins per channel over
    ``[min - 0.1 sigma, max + 0.1 sigma]`` of each observed channel (``sigma``
    its standard deviation, with the ``n - 1`` denominator); points of either
    trajectory outside the grid are not counted.  Both histograms are
    smoothed by :func:`laplace_smoothing` with ``alpha``, and

    .. math:: D_{stsp} = \sum_k p_k \log \frac{p_k}{q_k}

    with ``p`` the observed and ``q`` the generated bin probabilities.

    Parameters
    ----------
    x_true, x_gen : (T, N), (T', N) arrays
        Observed and generated trajectories.
    n_bins : int
        Bins per channel (``n_bins ** N`` bins in all).
    alpha : float
        Laplace smoothing.

    Returns
    -------
    float
        ``D_stsp`` (nats); NaN when no generated point falls on the grid,
        ``inf`` when ``x_gen`` is not finite (a diverged model).
    """
    a, b = _pair(x_true, x_gen)
    n_bins = V.positive_int(n_bins, "n_bins")
    alpha = V.finite_float(alpha, "alpha", low=0.0, open_low=True)
    if not np.all(np.isfinite(b)):
        return float("inf")
    sd = a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.zeros(a.shape[1])
    lo, hi = a.min(axis=0) - 0.1 * sd, a.max(axis=0) + 0.1 * sd
    hi = np.where(hi > lo, hi, lo + 1.0)  # a constant channel: one unit-wide range around it
    edges = [np.linspace(lo[i], hi[i], n_bins + 1) for i in range(a.shape[1])]
    ha, _ = np.histogramdd(a, bins=edges)
    hb, _ = np.histogramdd(b, bins=edges)
    if hb.sum() == 0:
        return float("nan")
    p = laplace_smoothing(ha.ravel(), alpha)
    q = laplace_smoothing(hb.ravel(), alpha)
    return float(np.sum(p * np.log(p / q)))


def _gmm_log_likelihood(samples: np.ndarray, centres: np.ndarray, sigma: float) -> np.ndarray:
    """``log (1/T sum_t exp(-|s - mu_t|^2 / (2 sigma^2)) / sigma^N)`` for every sample ``s`` (no 2 pi factor)."""
    T, N = centres.shape
    # |s - mu|^2 = |s|^2 - 2 s.mu + |mu|^2, in blocks of samples to bound memory
    out = np.empty(samples.shape[0])
    mu2 = np.einsum("tn,tn->t", centres, centres)
    for i0 in range(0, samples.shape[0], 256):
        s = samples[i0 : i0 + 256]
        e = (np.einsum("in,in->i", s, s)[:, None] - 2.0 * s @ centres.T + mu2[None, :]) / (sigma * sigma)
        e = -0.5 * np.maximum(e, 0.0)
        m = e.max(axis=1)
        out[i0 : i0 + 256] = m + np.log(np.exp(e - m[:, None]).sum(axis=1)) - np.log(T) - N * np.log(sigma)
    return out


def state_space_divergence_gmm(x_true, x_gen, *, sigma2: float = 1.0, max_steps: int = 10_000,
                               mc_samples: int = 1000, seed=0) -> float:
    r"""``D_stsp`` from Gaussian mixtures: a Monte-Carlo estimate of the KL divergence.

    Each trajectory's first ``T~ = min(T, max_steps)`` points define a
    mixture :math:`p(x) = \frac{1}{\tilde T} \sum_t \mathcal N(x; x_t,
    \sigma^2 I)` (and ``q`` from the generated points, the same number).
    ``mc_samples`` points are drawn from ``p`` (a random data point plus
    Gaussian noise) and

    .. math:: D_{stsp} \approx \frac{1}{S} \sum_s \left[\log p(x_s) - \log q(x_s)\right]

    (Hershey and Olsen 2007).  The log-likelihoods are computed in log space,
    so no sample is lost to underflow (code working in single precision
    drops samples whose likelihood underflows to 0, which lowers the
    estimate when the model puts no mass near the data).

    Parameters
    ----------
    x_true, x_gen : (T, N), (T', N) arrays
        Observed and generated trajectories; ``T' >= min(T, max_steps)``.
    sigma2 : float
        Variance of each mixture component (1: unit variance, for z-scored data).
    max_steps : int
        Most time steps used.
    mc_samples : int
        Monte-Carlo samples.
    seed : int, None or numpy.random.Generator
        For the samples.

    Returns
    -------
    float
        ``D_stsp`` (nats); ``inf`` when ``x_gen`` is not finite.
    """
    a, b = _pair(x_true, x_gen)
    sigma2 = V.finite_float(sigma2, "sigma2", low=0.0, open_low=True)
    max_steps = V.positive_int(max_steps, "max_steps")
    mc_samples = V.positive_int(mc_samples, "mc_samples")
    T = min(a.shape[0], max_steps)
    if b.shape[0] < T:
        raise ValueError(f"x_gen must have at least {T} time steps (min(len(x_true), max_steps)); got {b.shape[0]}")
    a, b = a[:T], b[:T]
    if not np.all(np.isfinite(b)):
        return float("inf")
    rng, _ = V.generator(seed)
    sigma = float(np.sqrt(sigma2))
    samples = a[rng.integers(0, T, mc_samples)] + sigma * rng.standard_normal((mc_samples, a.shape[1]))
    return float(np.mean(_gmm_log_likelihood(samples, a, sigma) - _gmm_log_likelihood(samples, b, sigma)))


def state_space_divergence(x_true, x_gen, *, method: str = "auto", n_bins: int = 30, alpha: float = 1e-5,
                           sigma2: float = 1.0, max_steps: int = 10_000, mc_samples: int = 1000, seed=0) -> float:
    """``D_stsp``: binned for fewer than 6 channels, Gaussian mixtures from 6 on (``method="auto"``).

    Parameters
    ----------
    x_true, x_gen : (T, N), (T', N) arrays
        Observed and generated trajectories.
    method : {"auto", "bins", "gmm"}
        :func:`state_space_divergence_binned` or :func:`state_space_divergence_gmm`;
        ``"auto"``: by the number of channels (``GMM_MIN_CHANNELS``).
    n_bins : int
        Bins per channel (``"bins"``).
    alpha : float
        Laplace smoothing (``"bins"``).
    sigma2 : float
        Variance of each mixture component (``"gmm"``).
    max_steps : int
        Most time steps used (``"gmm"``).
    mc_samples : int
        Monte-Carlo samples (``"gmm"``).
    seed : int, None or numpy.random.Generator
        For the samples (``"gmm"``).

    Returns
    -------
    float
        ``D_stsp`` (nats).
    """
    V.choice(method, "method", ("auto", "bins", "gmm"))
    n_channels = np.shape(x_true)[-1] if np.ndim(x_true) == 2 else 0
    if method == "bins" or (method == "auto" and n_channels < GMM_MIN_CHANNELS):
        return state_space_divergence_binned(x_true, x_gen, n_bins=n_bins, alpha=alpha)
    return state_space_divergence_gmm(x_true, x_gen, sigma2=sigma2, max_steps=max_steps, mc_samples=mc_samples,
                                      seed=seed)


def smoothed_power_spectra(x, sigma: float = 20.0) -> np.ndarray:
    """Normalised power spectra of the z-scored channels of ``x``, smoothed by a Gaussian of ``sigma`` bins.

    Each channel is z-scored (standard deviation with the ``n - 1``
    denominator), its power spectrum ``|rfft|^2`` is smoothed with a Gaussian
    kernel of standard deviation ``sigma`` frequency bins (radius ``4 sigma``,
    reflecting boundaries: ``scipy.ndimage.gaussian_filter1d``), negative
    rounding residues are set to 0, and the spectrum is normalised to sum 1.

    Parameters
    ----------
    x : (T, N) array
        A trajectory.
    sigma : float
        Standard deviation of the smoothing, in frequency bins (0: no smoothing).

    Returns
    -------
    (T // 2 + 1, N) array
        One spectrum per channel.
    """
    from scipy.ndimage import gaussian_filter1d

    x = np.asarray(x, dtype=float)
    sd = x.std(axis=0, ddof=1)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    ps = np.abs(np.fft.rfft(z, axis=0)) ** 2
    if sigma > 0:
        ps = gaussian_filter1d(ps, sigma, axis=0, mode="reflect", truncate=4.0)
        ps[ps < 0] = 0.0
    total = ps.sum(axis=0)
    return ps / np.where(total > 0, total, 1.0)


def power_spectrum_distance(x_true, x_gen, *, sigma: float = 20.0, per_channel: bool = False):
    r"""``D_H``: mean over channels of the Hellinger distance between smoothed power spectra.

    With ``P`` and ``Q`` the spectra of :func:`smoothed_power_spectra` of one
    observed and one generated channel,

    .. math:: H(P, Q) = \frac{1}{\sqrt 2} \Big(\sum_f \big(\sqrt{P_f} - \sqrt{Q_f}\big)^2\Big)^{1/2} \in [0, 1],

    0 for identical spectra and 1 for disjoint ones.

    Parameters
    ----------
    x_true, x_gen : (T, N) arrays
        Observed and generated trajectories of the same shape.
    sigma : float
        Standard deviation of the Gaussian smoothing, in frequency bins.
    per_channel : bool
        Also return the distance of each channel.

    Returns
    -------
    float, or (float, (N,) array) with ``per_channel``
        1 (the largest distance) for every channel when ``x_gen`` is not finite.
    """
    a, b = _pair(x_true, x_gen)
    if a.shape != b.shape:
        raise ValueError(f"x_true and x_gen must have the same shape; got {a.shape} and {b.shape}")
    sigma = V.finite_float(sigma, "sigma", low=0.0)
    if not np.all(np.isfinite(b)):
        h = np.ones(a.shape[1])
    else:
        pa, pb = smoothed_power_spectra(a, sigma), smoothed_power_spectra(b, sigma)
        h = np.sqrt(np.sum((np.sqrt(pa) - np.sqrt(pb)) ** 2, axis=0)) / np.sqrt(2.0)
    return (float(h.mean()), h) if per_channel else float(h.mean())


def evaluation_window(n_steps: int) -> tuple[int, int]:
    """``(total, drop)``: a free run of ``floor(1.25 T)`` states, of which the first ``floor(0.25 T)`` are dropped.

    The run starts from the state inferred from the first observation; the
    kept ``total - drop`` states are compared with the ``T`` observed ones.

    Parameters
    ----------
    n_steps : int
        Number ``T`` of observed steps.

    Returns
    -------
    total : int
        States of the free run.
    drop : int
        Leading states dropped.
    """
    T = V.positive_int(n_steps, "n_steps")
    return int(np.floor(1.25 * T)), int(np.floor(0.25 * T))


def free_run_measures(model, theta, x_obs, *, z0=None, method: str = "auto", n_bins: int = 30,
                      sigma: float = 20.0, seed=0) -> dict:
    """``D_stsp`` and ``D_H`` of a free run of ``model`` against observations ``x_obs`` (T, N).

    The run starts from ``z0`` (default: the first observation in the first
    ``N`` latent states, zeros elsewhere: the identity-readout convention),
    lasts ``floor(1.25 T)`` states (:func:`evaluation_window`), and its last
    ``T`` states, read on the first ``N`` latent channels, are compared with
    ``x_obs``.

    Parameters
    ----------
    model : Model
        A model without inputs.
    theta : (P,) array
        Its parameters.
    x_obs : (T, N) array
        Observations (``N <= model.dim``).
    z0 : (M,) array, optional
        Initial state of the run.
    method : {"auto", "bins", "gmm"}
        Method of :func:`state_space_divergence`.
    n_bins : int
        Bins per channel of the binned ``D_stsp``.
    sigma : float
        Smoothing of the power spectra of ``D_H``.
    seed : int, None or numpy.random.Generator
        For the Monte-Carlo samples of the mixture ``D_stsp``.

    Returns
    -------
    dict
        ``dstsp`` (:func:`state_space_divergence`, ``method``, ``n_bins``,
        ``seed``), ``dh`` (:func:`power_spectrum_distance`, ``sigma``) and
        ``generated`` ((T, N) array; non-finite when the run diverged, and then
        ``dstsp`` is inf and ``dh`` 1).
    """
    if getattr(model, "n_inputs", 0):
        raise ValueError(f"free_run_measures runs the model freely, without inputs; the model has {model.n_inputs} "
                         "inputs: simulate it with its inputs and call state_space_divergence and "
                         "power_spectrum_distance on the result")
    x = V.as_float_array(x_obs, "x_obs")
    if x.ndim != 2 or 0 in x.shape:
        raise ValueError(f"x_obs must be a non-empty (time, channels) array; got shape {x.shape}")
    V.check_finite(x, "x_obs")
    T, N = x.shape
    if N > model.dim:
        raise ValueError(f"x_obs has {N} channels, more than the model's {model.dim} latent states")
    if z0 is None:
        z0 = np.zeros(model.dim)
        z0[:N] = x[0]
    total, drop = evaluation_window(T)
    with np.errstate(all="ignore"):
        Z = model.simulate(theta, z0, n_steps=total - 1)
    gen = np.asarray(Z[drop:, :N], dtype=float)
    return {"dstsp": state_space_divergence(x, gen, method=method, n_bins=n_bins, seed=seed),
            "dh": power_spectrum_distance(x, gen, sigma=sigma), "generated": gen}
