r"""Hodgkin-Huxley membrane-voltage traces as xarray Datasets.

The paper "Bifurcations and loss jumps in RNN training" trains PLRNNs on
membrane-voltage recordings of a cortical cell; those recordings are not
public. :func:`hodgkin_huxley` simulates the classic squid-axon
Hodgkin-Huxley model [1]_ as a stand-in: a repetitively spiking neuron whose
voltage trace has the same character (fast spikes, slow recovery, a limit
cycle perturbed by noise) and which, like a recording, is observed through
one scalar channel (use :func:`plrnn_numba.data.delay_embed` to train a PLRNN
on it).

Model (voltages in mV, time in ms, currents in uA/cm^2, conductances in
mS/cm^2, capacitance in uF/cm^2):

.. math::

    C_m \dot V &= I_\mathrm{inj}(t) - \bar g_\mathrm{Na} m^3 h (V - E_\mathrm{Na})
                  - \bar g_\mathrm{K} n^4 (V - E_\mathrm{K}) - g_L (V - E_L), \\
    \dot x &= \alpha_x(V) (1 - x) - \beta_x(V)\, x, \qquad x \in \{m, h, n\},

with the rate functions (1/ms)

.. math::

    \alpha_n &= \frac{0.01 (V + 55)}{1 - e^{-(V + 55)/10}}, &
    \beta_n &= 0.125\, e^{-(V + 65)/80}, \\
    \alpha_m &= \frac{0.1 (V + 40)}{1 - e^{-(V + 40)/10}}, &
    \beta_m &= 4\, e^{-(V + 65)/18}, \\
    \alpha_h &= 0.07\, e^{-(V + 65)/20}, &
    \beta_h &= \frac{1}{1 + e^{-(V + 35)/10}}.

:math:`\alpha_n` and :math:`\alpha_m` have removable singularities at
:math:`V = -55` and :math:`V = -40` mV (limits 0.1 and 1.0); they are
evaluated as :math:`a\,\mathrm{vtrap}(V - V_0, 10)` with
:math:`\mathrm{vtrap}(x, y) = x / (1 - e^{-x/y})` computed via ``expm1``
and its series :math:`y (1 + u/2 + u^2/12)`, :math:`u = x/y`, near
:math:`x = 0`, so they are smooth and finite everywhere.

References
----------
.. [1] A. L. Hodgkin and A. F. Huxley, "A quantitative description of membrane
   current and its application to conduction and excitation in nerve",
   J. Physiol. 117, 500-544 (1952).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike
from scipy.signal import lfilter

from .. import _validate as V
from ..config import njit
from ..io import provenance
from ._common import check_bool
from ._common import standardize as _zscore

__all__ = ["HHParameters", "hh_rates", "hh_steady_state", "hodgkin_huxley"]


@dataclass(frozen=True)
class HHParameters:
    """Constants of the classic (squid giant axon) Hodgkin-Huxley model.

    Voltages in mV (modern convention: rest near -65 mV), conductances in
    mS/cm^2, capacitance in uF/cm^2.

    Parameters
    ----------
    C_m : float
        Membrane capacitance.
    g_Na, g_K, g_L : float
        Maximal sodium, potassium and leak conductances.
    E_Na, E_K, E_L : float
        Reversal potentials of the three currents.
    """

    C_m: float = 1.0
    g_Na: float = 120.0
    g_K: float = 36.0
    g_L: float = 0.3
    E_Na: float = 50.0
    E_K: float = -77.0
    E_L: float = -54.387

    def as_array(self) -> np.ndarray:
        """The constants in kernel order (C_m, g_Na, g_K, g_L, E_Na, E_K, E_L).

        Returns
        -------
        (7,) array
            The constants.
        """
        return np.array([self.C_m, self.g_Na, self.g_K, self.g_L, self.E_Na, self.E_K, self.E_L])


_UNITS = {
    "C_m": "uF/cm^2",
    "g_Na": "mS/cm^2",
    "g_K": "mS/cm^2",
    "g_L": "mS/cm^2",
    "E_Na": "mV",
    "E_K": "mV",
    "E_L": "mV",
}


# ---------------------------------------------------------------- kernels


@njit
def _vtrap(x, y):
    # x / (1 - exp(-x/y)), smooth through x = 0 (limit y)
    u = x / y
    if abs(u) < 1e-6:
        return y * (1.0 + 0.5 * u + u * u / 12.0)
    return x / (-math.expm1(-u))


@njit
def _rates(v):
    an = 0.01 * _vtrap(v + 55.0, 10.0)
    bn = 0.125 * math.exp(-(v + 65.0) / 80.0)
    am = 0.1 * _vtrap(v + 40.0, 10.0)
    bm = 4.0 * math.exp(-(v + 65.0) / 18.0)
    ah = 0.07 * math.exp(-(v + 65.0) / 20.0)
    bh = 1.0 / (1.0 + math.exp(-(v + 35.0) / 10.0))
    return am, bm, ah, bh, an, bn


@njit
def _rates_array(v, out):
    for i in range(v.shape[0]):
        am, bm, ah, bh, an, bn = _rates(v[i])
        out[0, i] = am
        out[1, i] = bm
        out[2, i] = ah
        out[3, i] = bh
        out[4, i] = an
        out[5, i] = bn


@njit
def _deriv(v, m, h, n, i_inj, p):
    c_m, g_na, g_k, g_l, e_na, e_k, e_l = p[0], p[1], p[2], p[3], p[4], p[5], p[6]
    am, bm, ah, bh, an, bn = _rates(v)
    i_ion = g_na * m * m * m * h * (v - e_na) + g_k * n * n * n * n * (v - e_k) + g_l * (v - e_l)
    dv = (i_inj - i_ion) / c_m
    dm = am * (1.0 - m) - bm * m
    dh = ah * (1.0 - h) - bh * h
    dn = an * (1.0 - n) - bn * n
    return dv, dm, dh, dn


@njit
def _hh_rk4(y0, current, dt, sample_every, p, out, spikes):
    """Classical RK4 with the current held constant over each step.

    ``out[k]`` = state (V, m, h, n) at step ``k * sample_every``; upward
    0 mV crossings are detected at every step and timed by linear
    interpolation. Returns the number of spikes written to ``spikes``.
    """
    v, m, h, n = y0[0], y0[1], y0[2], y0[3]
    n_steps = current.shape[0] - 1
    out[0, 0] = v
    out[0, 1] = m
    out[0, 2] = h
    out[0, 3] = n
    n_spk = 0
    half = 0.5 * dt
    for j in range(n_steps):
        i = current[j]
        k1v, k1m, k1h, k1n = _deriv(v, m, h, n, i, p)
        k2v, k2m, k2h, k2n = _deriv(v + half * k1v, m + half * k1m, h + half * k1h, n + half * k1n, i, p)
        k3v, k3m, k3h, k3n = _deriv(v + half * k2v, m + half * k2m, h + half * k2h, n + half * k2n, i, p)
        k4v, k4m, k4h, k4n = _deriv(v + dt * k3v, m + dt * k3m, h + dt * k3h, n + dt * k3n, i, p)
        v_new = v + dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v)
        m += dt / 6.0 * (k1m + 2.0 * k2m + 2.0 * k3m + k4m)
        h += dt / 6.0 * (k1h + 2.0 * k2h + 2.0 * k3h + k4h)
        n += dt / 6.0 * (k1n + 2.0 * k2n + 2.0 * k3n + k4n)
        if v < 0.0 and v_new >= 0.0 and n_spk < spikes.shape[0]:
            spikes[n_spk] = (j + (-v) / (v_new - v)) * dt
            n_spk += 1
        v = v_new
        if (j + 1) % sample_every == 0:
            r = (j + 1) // sample_every
            out[r, 0] = v
            out[r, 1] = m
            out[r, 2] = h
            out[r, 3] = n
    return n_spk


# ---------------------------------------------------------------- public API


def hh_rates(v: ArrayLike) -> dict[str, np.ndarray]:
    """Hodgkin-Huxley opening/closing rates (1/ms) at membrane voltage(s) ``v`` (mV).

    Parameters
    ----------
    v : array_like
        Voltage(s) in mV.

    Returns
    -------
    dict
        ``alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n``, each an array of
        the shape of ``v`` (see the module docstring for the formulas; the
        removable singularities at -40 and -55 mV are handled).
    """
    varr = V.as_float_array(v, "v")
    V.check_finite(varr, "v")
    flat = np.ascontiguousarray(varr.ravel())
    out = np.empty((6, flat.shape[0]))
    _rates_array(flat, out)
    names = ("alpha_m", "beta_m", "alpha_h", "beta_h", "alpha_n", "beta_n")
    return {k: out[i].reshape(varr.shape) for i, k in enumerate(names)}


def hh_steady_state(v: float) -> tuple[float, float, float]:
    r"""Steady-state gates :math:`x_\infty = \alpha_x / (\alpha_x + \beta_x)` at voltage ``v``.

    Parameters
    ----------
    v : float
        Membrane voltage (mV).

    Returns
    -------
    tuple of float
        ``(m_inf, h_inf, n_inf)``.
    """
    r = hh_rates(np.array([V.finite_float(v, "v")]))
    m = r["alpha_m"][0] / (r["alpha_m"][0] + r["beta_m"][0])
    h = r["alpha_h"][0] / (r["alpha_h"][0] + r["beta_h"][0])
    n = r["alpha_n"][0] / (r["alpha_n"][0] + r["beta_n"][0])
    return float(m), float(h), float(n)


def _positive(x, name: str) -> float:
    x = V.finite_float(x, name)
    if x <= 0:
        raise ValueError(f"{name} must be > 0; got {x}")
    return x


def hodgkin_huxley(
    duration_ms: float = 1000.0,
    *,
    dt_ms: float = 0.025,
    sample_every: int = 4,
    current: float | ArrayLike = 10.0,
    noise_std: float = 0.5,
    noise_tau_ms: float = 5.0,
    seed=0,
    standardize: bool = False,
    transient_ms: float = 0.0,
    v0: float = -65.0,
    params: HHParameters | None = None,
) -> xr.Dataset:
    r"""Simulate a current-driven Hodgkin-Huxley neuron; return voltage, gates and spikes.

    Stand-in for the (non-public) cell membrane-voltage recordings of
    "Bifurcations and loss jumps in RNN training": the classic squid-axon
    Hodgkin-Huxley model (see :mod:`plrnn_numba.data.neuron` for the
    equations; constants in :class:`HHParameters`) driven by

    .. math::

        I_\mathrm{inj}(t) = I_\mathrm{DC} + \eta(t), \qquad
        \tau\, \dot\eta = -\eta + \sigma_\eta \sqrt{2\tau}\, \xi(t),

    a DC current plus an Ornstein-Uhlenbeck noise current :math:`\eta` of
    stationary standard deviation :math:`\sigma_\eta` = ``noise_std`` and
    correlation time :math:`\tau` = ``noise_tau_ms``, sampled exactly on the
    integration grid,
    :math:`\eta_{j+1} = a \eta_j + \sigma_\eta \sqrt{1 - a^2}\, \xi_j`,
    :math:`a = e^{-\Delta t/\tau}`, :math:`\eta_0 \sim \mathcal N(0, \sigma_\eta^2)`.
    At the default 10 uA/cm^2 the neuron fires repetitively at about 68 Hz,
    the noise making the inter-spike intervals vary by a few percent.

    The ODE is integrated with classical fourth-order Runge-Kutta at fixed
    step ``dt_ms`` (a numba kernel; 1 s of model time at the default step
    takes about 20 ms), the current held constant over each step. The state is
    recorded every ``sample_every`` steps. Spikes are the upward crossings of
    0 mV, detected at every integration step and timed by linear
    interpolation. The initial state is :math:`V = v_0` with gates at their
    steady state :math:`x_\infty(v_0)`.

    Parameters
    ----------
    duration_ms : float, default 1000.0
        Simulated time in ms (> 0); rounded down to a whole number of steps.
    dt_ms : float, default 0.025
        Integration step in ms (0 < dt_ms <= 0.1).
    sample_every : int, default 4
        Record every ``sample_every``-th step (>= 1): sample spacing
        ``dt_ms * sample_every`` (0.1 ms by default).
    current : float or array_like, default 10.0
        Injected current in uA/cm^2: a DC value switched on at t = 0, or an
        array with one value per grid point ``t_j = j * dt_ms``,
        ``j = 0, ..., n_steps`` (length ``n_steps + 1``), held over
        ``[t_j, t_j + dt_ms)``. The noise current is added to it.
    noise_std : float, default 0.5
        Stationary std of the OU noise current in uA/cm^2 (>= 0; 0 = none).
    noise_tau_ms : float, default 5.0
        Correlation time of the OU noise current in ms (> 0).
    seed : int, None or numpy.random.Generator, default 0
        Seed for the noise current. None draws a seed from OS entropy (a
        Generator: one draw from it); the seed used is stored in the ``seed``
        attribute and reproduces the data.
    standardize : bool, default False
        Z-score ``v`` (mean and std stored as ``v_mean`` and ``v_std``;
        undo with ``v * v_std + v_mean``). The gates are never standardised.
    transient_ms : float, default 0.0
        Samples and spikes before this time are dropped (0 <= transient_ms <
        duration_ms). The time coordinate keeps the model time.
    v0 : float, default -65.0
        Initial membrane voltage in mV.
    params : HHParameters, optional
        Model constants; default the classic values.

    Returns
    -------
    xarray.Dataset
        ``v`` (time, channel=["V"]): membrane voltage in mV (or standardised);
        ``m``, ``h``, ``n`` (time): gating variables; ``i_inj`` (time):
        injected current (DC + noise) in uA/cm^2; ``spike_times`` (spike):
        spike times in ms; ``v_mean``, ``v_std`` (channel). Attributes: the
        model constants, ``dt_ms``, ``sample_every``, ``sample_spacing_ms``,
        ``current_dc`` (NaN for an array current), ``noise_std``,
        ``noise_tau_ms``, ``seed``, ``standardized`` (0/1), ``transient_ms``,
        ``n_spikes``, ``firing_rate_hz`` and provenance
        (:func:`plrnn_numba.io.provenance`).

    Raises
    ------
    ValueError
        Out-of-range argument (named in the message).
    TypeError
        Argument of the wrong type.
    RuntimeError
        If the simulation diverges (e.g. an absurd current).

    Examples
    --------
    >>> ds = hodgkin_huxley(500.0, seed=0)
    >>> 25 < ds.sizes["spike"] < 40
    True
    """
    duration_ms = _positive(duration_ms, "duration_ms")
    dt_ms = _positive(dt_ms, "dt_ms")
    if dt_ms > 0.1:
        raise ValueError(f"dt_ms must be <= 0.1 ms (RK4 on the Hodgkin-Huxley model is inaccurate above); got {dt_ms}")
    sample_every = V.positive_int(sample_every, "sample_every", minimum=1)
    noise_std = V.finite_float(noise_std, "noise_std", low=0.0)
    noise_tau_ms = _positive(noise_tau_ms, "noise_tau_ms")
    standardize_ = check_bool(standardize, "standardize")
    transient_ms = V.finite_float(transient_ms, "transient_ms", low=0.0)
    v0 = V.finite_float(v0, "v0")
    if params is None:
        params = HHParameters()
    elif not isinstance(params, HHParameters):
        raise TypeError(f"params must be an HHParameters instance or None; got {type(params).__name__}")
    p = params.as_array()
    if not np.all(np.isfinite(p)) or params.C_m <= 0 or min(params.g_Na, params.g_K, params.g_L) < 0:
        raise ValueError(f"params must be finite with C_m > 0 and conductances >= 0; got {params}")

    n_steps = math.floor(duration_ms / dt_ms + 1e-9)
    n_samples = n_steps // sample_every + 1
    if n_samples < 2:
        raise ValueError(
            f"duration_ms={duration_ms} is shorter than one sample interval "
            f"(dt_ms * sample_every = {dt_ms * sample_every} ms)"
        )
    if transient_ms >= (n_samples - 1) * sample_every * dt_ms:
        raise ValueError(f"transient_ms must be < duration_ms ({duration_ms}); got {transient_ms}")

    if isinstance(current, numbers.Real) and not isinstance(current, (bool, np.bool_)):
        i_dc = V.finite_float(current, "current")
        i_base = np.full(n_steps + 1, i_dc)
        current_dc = i_dc
    else:
        if isinstance(current, (bool, np.bool_)):
            raise TypeError("current must be a real number or an array of real numbers; got bool")
        i_base = V.as_float_array(current, "current")
        if i_base.shape != (n_steps + 1,):
            raise ValueError(
                f"current must be a number or a 1-D array of length n_steps + 1 = {n_steps + 1} "
                f"(one value per grid point of dt_ms); got shape {i_base.shape}"
            )
        V.check_finite(i_base, "current")
        current_dc = float("nan")

    rng, seed_used = V.generator(seed)
    if noise_std > 0:
        a = math.exp(-dt_ms / noise_tau_ms)
        xi = rng.standard_normal(n_steps + 1)
        xi[0] /= math.sqrt(1.0 - a * a)  # so that eta_0 ~ N(0, noise_std^2)
        eta = lfilter([noise_std * math.sqrt(1.0 - a * a)], [1.0, -a], xi)
        i_total = np.ascontiguousarray(i_base + eta)
    else:
        i_total = np.ascontiguousarray(i_base, dtype=np.float64)

    y0 = np.array([v0, *hh_steady_state(v0)])
    out = np.empty((n_samples, 4))
    spikes = np.empty(n_steps // 2 + 1)
    n_spk = _hh_rk4(y0, i_total, dt_ms, sample_every, p, out, spikes)
    if not np.all(np.isfinite(out)):
        raise RuntimeError("the Hodgkin-Huxley simulation diverged (NaN/inf); use a smaller dt_ms or a smaller current")

    t = np.arange(n_samples) * (sample_every * dt_ms)
    keep = t >= transient_ms - 1e-9 * dt_ms
    t = t[keep]
    out = out[keep]
    i_samples = i_total[np.arange(n_samples)[keep] * sample_every]
    spike_times = spikes[:n_spk]
    spike_times = spike_times[spike_times >= transient_ms]
    span_s = (t[-1] - transient_ms) / 1000.0

    v = out[:, :1].copy()
    if standardize_:
        v, v_mean, v_std = _zscore(v, "the membrane voltage")
    else:
        v_mean, v_std = np.zeros(1), np.ones(1)

    arguments = {
        "duration_ms": duration_ms,
        "dt_ms": dt_ms,
        "sample_every": sample_every,
        "current": current_dc if np.isfinite(current_dc) else f"array of length {n_steps + 1}",
        "noise_std": noise_std,
        "noise_tau_ms": noise_tau_ms,
        "seed": seed_used,
        "standardize": standardize_,
        "transient_ms": transient_ms,
        "v0": v0,
        "params": asdict(params),
    }
    v_attrs = (
        {"long_name": "membrane voltage (standardized)", "units": "1 (standardized)"}
        if standardize_
        else {"long_name": "membrane voltage", "units": "mV"}
    )
    ds = xr.Dataset(
        {
            "v": (("time", "channel"), v, v_attrs),
            "m": ("time", out[:, 1].copy(), {"long_name": "sodium activation gate m", "units": "1"}),
            "h": ("time", out[:, 2].copy(), {"long_name": "sodium inactivation gate h", "units": "1"}),
            "n": ("time", out[:, 3].copy(), {"long_name": "potassium activation gate n", "units": "1"}),
            "i_inj": (
                "time",
                i_samples,
                {
                    "long_name": "injected current density (DC + noise), held over each integration step",
                    "units": "uA/cm^2",
                },
            ),
            "spike_times": (
                "spike",
                spike_times,
                {
                    "long_name": "spike times (upward crossings of 0 mV)",
                    "units": "ms",
                },
            ),
            "v_mean": (
                "channel",
                v_mean,
                {
                    "long_name": "mean subtracted from v in standardization (v_raw = v * v_std + v_mean)",
                    "units": "mV",
                },
            ),
            "v_std": (
                "channel",
                v_std,
                {
                    "long_name": "standard deviation divided out of v in standardization",
                    "units": "mV",
                },
            ),
        },
        coords={
            "time": ("time", t, {"long_name": "time", "units": "ms"}),
            "channel": ("channel", ["V"], {"long_name": "recorded channel", "units": "1"}),
        },
        attrs={
            "title": "Hodgkin-Huxley membrane voltage (stand-in for cell recordings)",
            "system": "hodgkin_huxley",
            "description": (
                "Classic squid-axon Hodgkin-Huxley model driven by DC + Ornstein-Uhlenbeck current; "
                "stands in for the non-public membrane-voltage recordings of "
                "'Bifurcations and loss jumps in RNN training'"
            ),
            **{k: val for k, val in asdict(params).items()},
            "parameter_units": ", ".join(f"{k}: {u}" for k, u in _UNITS.items()),
            "dt_ms": dt_ms,
            "sample_every": sample_every,
            "sample_spacing_ms": dt_ms * sample_every,
            "duration_ms": n_steps * dt_ms,
            "current_dc": current_dc,
            "noise_std": noise_std,
            "noise_tau_ms": noise_tau_ms,
            "seed": seed_used,
            "standardized": int(standardize_),
            "transient_ms": transient_ms,
            "v0": v0,
            "integrator": "classical RK4, fixed step",
            "n_spikes": int(spike_times.shape[0]),
            "firing_rate_hz": float(spike_times.shape[0] / span_s) if span_s > 0 else float("nan"),
            **provenance("plrnn_numba.data.hodgkin_huxley", arguments, seed_used),
        },
    )
    return ds
