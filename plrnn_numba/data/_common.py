"""Helpers shared by the data generators: validation, seeds, standardisation,
conversion to arrays and time-delay embedding."""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from .. import _validate as V

__all__ = ["as_array", "delay_embed"]


def check_bool(x, name: str) -> bool:
    """``x`` as a bool; TypeError for anything but bool / numpy bool."""
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(x).__name__}")
    return bool(x)


def standardize(x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column z-score of a (time, channel) array: ``(z, mean, std)``.

    ``z = (x - mean) / std`` with the population standard deviation (ddof=0),
    so ``z`` has mean 0 and std 1 exactly (up to rounding) in every column.
    """
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    if np.any(~(std > 0.0)):
        bad = int(np.flatnonzero(~(std > 0.0))[0])
        raise ValueError(
            f"cannot standardize {name}: channel {bad} is constant (std = 0); "
            f"pass standardize=False or parameters that give a non-constant trajectory"
        )
    return (x - mean) / std, mean, std


def as_array(ds: xr.Dataset, var: str = "x") -> np.ndarray:
    """Return one variable of a data Dataset as a (time, channel) float64 array.

    Parameters
    ----------
    ds : xarray.Dataset
        A Dataset made by :func:`plrnn_numba.data.lorenz63`,
        :func:`plrnn_numba.data.hodgkin_huxley` or any Dataset whose variable
        ``var`` has a ``"time"`` dimension.
    var : str, default "x"
        Name of the variable (``"x"`` for Lorenz-63, ``"v"`` for
        Hodgkin-Huxley; ``"m"``, ``"h"``, ``"n"``, ``"i_inj"`` also work).

    Returns
    -------
    numpy.ndarray
        C-contiguous float64 array of shape ``(time, channel)``. A variable with
        dims ``("time",)`` gives shape ``(time, 1)``. The values are returned as
        stored (standardised data stay standardised; undo with the ``*_mean``
        and ``*_std`` variables).
    """
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"ds must be an xarray.Dataset; got {type(ds).__name__}")
    if not isinstance(var, str):
        raise TypeError(f"var must be a variable name (str); got {type(var).__name__}")
    if var not in ds.variables:
        raise ValueError(f"var={var!r} is not a variable of ds; available: {sorted(map(str, ds.data_vars))}")
    da = ds[var]
    if "time" not in da.dims:
        raise ValueError(f"var={var!r} has dims {da.dims}; it needs a 'time' dimension")
    if da.ndim == 1:
        arr = da.values[:, None]
    elif da.ndim == 2:
        other = next(d for d in da.dims if d != "time")
        arr = da.transpose("time", other).values
    else:
        raise ValueError(f"var={var!r} must have 1 or 2 dims (time[, channel]); got {da.dims}")
    return V.as_float_array(np.ascontiguousarray(arr), var).copy(order="C")


def delay_embed(x: ArrayLike, dims: int, lag: int) -> np.ndarray:
    r"""Time-delay embedding of a scalar (or multichannel) time series.

    For a scalar series :math:`x_t` (:math:`t = 0, \dots, T-1`) the embedded
    vectors are

    .. math::

        \mathbf{y}_t = \left(x_t,\; x_{t-\tau},\; x_{t-2\tau},\; \dots,\;
        x_{t-(d-1)\tau}\right), \qquad t = (d-1)\tau, \dots, T-1,

    with :math:`d` = ``dims`` and :math:`\tau` = ``lag`` (in samples). By
    Takens' theorem, for a generic observable and
    :math:`d > 2\,\dim_{\mathrm{box}}` the embedding reconstructs the
    attractor up to a diffeomorphism; this is what lets a PLRNN be trained on
    a single recorded membrane voltage.

    Parameters
    ----------
    x : array_like, shape (T,) or (T, C)
        The time series (time first). A (T, 1) array is treated like (T,).
    dims : int
        Embedding dimension :math:`d \ge 1`.
    lag : int
        Delay :math:`\tau \ge 1` in samples.

    Returns
    -------
    numpy.ndarray
        Shape ``(T - (dims-1)*lag, dims * C)``; row ``k`` is the embedding
        vector at original time index ``k + (dims-1)*lag``. For ``C > 1`` the
        columns are grouped by delay: ``[x_t (C columns), x_{t-lag} (C), ...]``.

    Examples
    --------
    >>> delay_embed(np.arange(6.0), dims=3, lag=2)
    array([[4., 2., 0.],
           [5., 3., 1.]])
    """
    x = V.as_float_array(x, "x")
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim != 2:
        raise ValueError(f"x must have shape (T,) or (T, C); got {x.shape}")
    V.check_finite(x, "x")
    dims = V.positive_int(dims, "dims", minimum=1)
    lag = V.positive_int(lag, "lag", minimum=1)
    T = x.shape[0]
    span = (dims - 1) * lag
    if T <= span:
        raise ValueError(
            f"x is too short for dims={dims}, lag={lag}: needs more than (dims-1)*lag = {span} samples, got {T}"
        )
    n = T - span
    cols = [x[span - j * lag : span - j * lag + n] for j in range(dims)]
    return np.ascontiguousarray(np.concatenate(cols, axis=1))
