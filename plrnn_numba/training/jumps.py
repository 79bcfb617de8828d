r"""Loss jumps: abrupt changes of the training loss, and their match to bifurcations of the model.

Eisenmann et al. (2023), "Bifurcations and loss jumps in RNN training", report
that the loss of an RNN often changes abruptly during training, and that these
jumps coincide with bifurcations of the model.  :func:`detect_loss_jumps`
finds the jumps in a loss curve with a robust rule (a running median, then
the change of its logarithm across each epoch), and
:func:`match_jumps_to_events` pairs them with the bifurcation events that
:func:`plrnn_numba.dynamics.bifurcations_along_training` locates along the
same run.  :func:`plrnn_numba.plot.loss_jumps_figure` draws both.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io

__all__ = ["detect_loss_jumps", "match_jumps_to_events"]

#: stands in for a loss (or smoothed loss) of exactly 0 under the logarithm
_TINY = float(np.finfo(float).tiny)

#: epochs are stored as int64; beyond 2**53 a float64 no longer holds every whole number
_MAX_EPOCH = 2.0**53

_U1 = {"units": "1"}
_UE = {"units": "epoch"}


def detect_loss_jumps(
    loss,
    epochs=None,
    *,
    window: int = 5,
    lag: int | None = None,
    threshold: float = 0.5,
    min_separation: int | None = None,
    scale: str = "relative",
) -> xr.Dataset:
    r"""Jumps of a training loss curve: epochs where the loss changes abruptly by a large factor.

    ``scale="relative"`` (the default) measures changes as factors, on a log
    scale (steps 1-5 below).  ``scale="range"`` measures them on the loss
    itself as fractions of the range :math:`R = \max_e \tilde L_e - \min_e
    \tilde L_e` of the smoothed curve: :math:`r_e = (\tilde L_{e+\ell} -
    \tilde L_{e-\ell}) / R`, a jump where :math:`|r_e| >` ``threshold``, placed
    at the largest one-step change of the smoothed curve, :math:`\sigma
    (\tilde L_{e+1} - \tilde L_e)`.  That is the
    jump a linear plot of the loss shows: the steady relative decay of a
    converging run (a factor 2 every few epochs at a loss of 1e-3) is not one.

    With :math:`L_e` the loss of epoch ``e`` (the ``e``-th entry), :math:`h =`
    ``window // 2`` and :math:`\ell` = ``lag``:

    1. smooth with a centred running median (its window is cut at the ends of
       the curve, where fewer than ``window`` epochs exist; an even count takes
       the mean of the two middle values), so that spikes of fewer than
       :math:`h + 1` epochs vanish:

       .. math:: \tilde L_e = \operatorname{median}\{L_j : |j - e| \le h,\ 0 \le j < n\};

    2. the relative change across epoch ``e``, on a log scale, between two
       medians that share no epoch (and do not contain ``e``) when
       :math:`\ell > h` (the default :math:`\ell = h + 1`):

       .. math:: r_e = \log \tilde L_{e+\ell} - \log \tilde L_{e-\ell},
                 \qquad \ell \le e \le n - 1 - \ell;

    3. epoch ``e`` is part of a jump when :math:`|r_e| > \log(1 + \text{threshold})`:
       the smoothed loss grows by more than the factor ``1 + threshold``, or
       falls by more than that factor (to below :math:`\tilde L / (1 +
       \text{threshold})`); runs of consecutive such epochs with the same sign
       of :math:`r_e` are one jump each, and two runs of the same sign with no
       run of the other sign between them merge when the later one starts
       fewer than ``min_separation`` epochs after the earlier one ends
       (:math:`e_{start}' - e_{end} < \text{min\_separation}`);
    4. the jump is placed at the epoch :math:`e^*` where the raw one-step
       change in its direction :math:`\sigma = \operatorname{sign} r` is
       largest, among the epochs whose changes enter :math:`r_e` over the run
       :math:`[e_{start}, e_{end}]`:

       .. math:: e^* = \arg\max_{e_{start} - \ell \le e \le e_{end} + \ell - 1}
                 \sigma\,(\log L_{e+1} - \log L_e),

       i.e. the loss moves most between epochs :math:`e^*` and :math:`e^* + 1`
       (ties: the earliest; the range stops short of the neighbouring runs).
       Searching beyond the run matters for short excursions: after a
       plateau of fewer than :math:`2 \ell` epochs the run starts only
       :math:`\ell` epochs after the plateau began, past the step that ends it;
    5. its size is measured on the smoothed curve on both sides,
       :math:`L_{before} = \tilde L_{e^*-\ell}`, :math:`L_{after} = \tilde
       L_{e^*+\ell}` (indices clipped to the curve), relative change
       :math:`L_{after} / L_{before} - 1`.

    A steady trend of rate :math:`\rho` per epoch gives :math:`|r_e| \approx
    2 \ell \rho`: it counts as a jump only when :math:`\rho > \log(1 +
    \text{threshold}) / (2 \ell)` (about 6.8 % per epoch with the defaults).

    Parameters
    ----------
    loss : (n,) array, xarray.DataArray or xarray.Dataset
        Positive per-epoch losses, or a training history from
        :func:`plrnn_numba.train` (its ``loss`` and ``epoch`` are used).  A
        DataArray along ``epoch`` gives its ``epoch`` coordinate.
    epochs : (n,) array of whole numbers, optional
        Strictly increasing epoch numbers of the entries (default ``0 .. n-1``);
        not with a history Dataset, whose ``epoch`` coordinate is used.
        ``window``, ``lag`` and ``min_separation`` count entries, so the
        epochs should be evenly spaced for them to mean epochs.
    window : int
        Odd length of the running median (default 5; 1 = no smoothing).
    lag : int, optional
        Distance :math:`\ell` of the compared medians from the epoch (>= 1;
        default ``window // 2 + 1``).
    threshold : float
        Relative change that makes a jump (> 0; default 0.5, a factor 1.5 up or
        down); with ``scale="range"`` the change as a fraction of the loss's range.
    min_separation : int, optional
        Runs of the same sign closer than this many epochs are one jump (>= 1;
        default ``window``; 1 never merges).
    scale : {"relative", "range"}
        Changes as factors (log scale) or as fractions of the range of the
        smoothed loss (linear scale; see above).

    Returns
    -------
    xarray.Dataset
        Dim ``jump`` (sorted by epoch; length 0 when there is none), with
        coordinates ``jump`` (index) and ``epoch`` (:math:`e^*`, int), and
        variables ``direction`` (+1 up, -1 down), ``relative_change``,
        ``loss_before``, ``loss_after`` (the smoothed losses above),
        ``start_epoch``/``end_epoch`` (the run: first and last epoch with
        :math:`|r_e|` above the threshold) and ``peak_log_change`` (the
        :math:`r_e` of largest magnitude over the run: beyond :math:`\pm
        \log(1 + \text{threshold})` by construction, while
        ``relative_change``, taken around :math:`e^*`, can be smaller on an
        oscillating curve).  Attributes: the provenance, ``window``, ``lag``,
        ``threshold``, ``log_threshold``, ``min_separation``, ``n_epochs``
        (entries given), ``n_analysed`` (entries analysed) and
        ``first_nonfinite_epoch`` (-1: none).

    Raises
    ------
    TypeError
        Non-numeric ``loss``/``epochs``, non-integer ``window``, ``lag`` or
        ``min_separation``, non-real ``threshold``.
    ValueError
        ``loss`` not 1-D or with a negative value, ``epochs`` of the wrong
        length, not strictly increasing or not whole numbers, ``epochs`` given
        with a history Dataset, ``window`` < 1 or even, ``lag`` or
        ``min_separation`` < 1, ``threshold <= 0`` (messages name the argument).

    Notes
    -----
    Non-finite and zero losses: the first NaN or inf (a diverged run) ends the
    analysed range: only the epochs before it are smoothed and searched, and
    ``first_nonfinite_epoch`` records where it was (with ``on_nonfinite="skip"``
    training an epoch with a skipped step can record NaN and go on; to analyse
    past it pass ``loss=history.loss[history.nonfinite == 0]``, whose epochs
    stay strictly increasing).  A loss of exactly 0 enters the logarithms as the
    smallest positive normal float, so a fall to an exact fit is a (very large)
    downward jump.  Negative losses have no relative change and are refused.

    Where the jump sits relative to the parameters: :func:`plrnn_numba.train`
    evaluates the loss of epoch ``e`` before each of its optimiser steps, so a
    change of the parameters during epoch ``e`` (between the snapshots of
    epochs ``e - 1`` and ``e``) shows in :math:`L_{e+1}` at the latest: with a
    snapshot every epoch, a bifurcation at ``s`` in ``(e - 1, e)`` gives a jump
    at :math:`e^* = e` (or ``e - 1`` with several batches per epoch), a
    distance ``s - e^*`` between -1 and 1.

    Examples
    --------
    >>> import numpy as np
    >>> from plrnn_numba.training import detect_loss_jumps
    >>> loss = np.r_[np.ones(40), np.full(40, 0.1), np.full(40, 0.5)]
    >>> jumps = detect_loss_jumps(loss)
    >>> jumps.epoch.values.tolist(), jumps.direction.values.tolist()
    ([39, 79], [-1, 1])
    >>> np.round(jumps.relative_change.values, 3).tolist()
    [-0.9, 4.0]
    """
    values, ep, source = _loss_and_epochs(loss, epochs)
    window = V.positive_int(window, "window")
    if window % 2 == 0:
        raise ValueError(f"window must be odd (a centred running median); got {window}: pass {window - 1} or "
                         f"{window + 1}")
    h = window // 2
    lag = h + 1 if lag is None else V.positive_int(lag, "lag")
    threshold = V.finite_float(threshold, "threshold", low=0.0, open_low=True)
    min_separation = window if min_separation is None else V.positive_int(min_separation, "min_separation")
    V.choice(scale, "scale", ("relative", "range"))

    n_total = values.size
    bad = np.flatnonzero(~np.isfinite(values))
    n = int(bad[0]) if bad.size else n_total
    values = values[:n]
    if np.any(values < 0):
        i = int(np.flatnonzero(values < 0)[0])
        raise ValueError(
            f"loss must be >= 0 (jumps are relative changes, on a log scale); got {values[i]} at epoch {ep[i]}: "
            "pass a positive loss (e.g. shift a log-likelihood by a lower bound)"
        )

    smooth = _running_median(values, h)
    if scale == "relative":
        log_raw = np.log(np.maximum(values, _TINY))
        log_smooth = np.log(np.maximum(smooth, _TINY))
        log_thr = float(np.log1p(threshold))
    else:
        # the same steps on the loss in units of its range (a flat curve: no jumps); the jump is placed on
        # the smoothed curve too: on a linear scale the noise of a high plateau rivals a gradual drop's steps
        span = float(smooth.max() - smooth.min()) if n else 0.0
        span = span if span > 0.0 else 1.0
        log_raw, log_smooth, log_thr = smooth / span, smooth / span, threshold
    runs, r = _runs(log_smooth, lag, log_thr, min_separation)

    rows = []
    for k, (start, end, sign) in enumerate(runs):
        lo = max(start - lag, runs[k - 1][1] + 1 if k else 0)
        hi = min(end + lag - 1, runs[k + 1][0] - 1 if k + 1 < len(runs) else n - 2)
        step = sign * np.diff(log_raw[lo : hi + 2])  # the one-step changes e -> e + 1, e = lo .. hi
        e = lo + int(np.argmax(step))
        before, after = smooth[max(e - lag, 0)], smooth[min(e + lag, n - 1)]
        rel = after / before - 1.0 if before > 0 else np.inf
        peak = sign * np.max(sign * r[start : end + 1])
        rows.append((ep[e], sign, rel, before, after, ep[start], ep[end], peak))

    arguments = {"loss": source, "epochs": "given" if epochs is not None else "default", "window": window,
                 "lag": lag, "threshold": threshold, "min_separation": min_separation, "scale": scale}  # fmt: skip
    attrs = io.provenance("plrnn_numba.training.detect_loss_jumps", arguments)
    attrs.update(
        {
            "title": "Jumps of the training loss",
            "definition": (
                "r_e = log Lm[e+lag] - log Lm[e-lag], Lm the running median of the loss over window epochs; "
                "a jump is a run of epochs with |r_e| > log(1 + threshold) of one sign, placed at the largest "
                "one-step change log L[e+1] - log L[e] in its direction"
            ) if scale == "relative" else (
                "r_e = (Lm[e+lag] - Lm[e-lag]) / (max Lm - min Lm), Lm the running median of the loss over window "
                "epochs; a jump is a run of epochs with |r_e| > threshold of one sign, placed at the largest "
                "one-step change Lm[e+1] - Lm[e] in its direction"
            ),
            "scale": scale,
            "window": window,
            "lag": lag,
            "threshold": threshold,
            "log_threshold": log_thr,
            "min_separation": min_separation,
            "n_epochs": n_total,
            "n_analysed": n,
            "first_nonfinite_epoch": int(ep[n]) if n < n_total else -1,
        }
    )
    return _jumps_dataset(rows, attrs)


def match_jumps_to_events(jumps: xr.Dataset, events: xr.Dataset, *, max_distance: float,
                          span: bool = False) -> xr.Dataset:
    r"""Pair each loss jump with the nearest bifurcation event, and each event with any jump near it.

    For jump ``j`` at epoch :math:`e_j` and event ``k`` at :math:`s_k` (both in
    epochs) the distance is :math:`d_{jk} = s_k - e_j` (positive: the event
    comes after the jump).  The nearest event of a jump minimises
    :math:`|d_{jk}|` (ties: the earlier event); the jump is *matched* when
    :math:`|d_{jk}| \le` ``max_distance`` for its nearest event, and an event
    *has a jump* when some jump lies within ``max_distance`` of it.  Several
    jumps may share one event and the other way round.

    With ``span=True`` the distance is measured to the jump's whole run
    :math:`[e_{start}, e_{end}]` instead of its epoch: :math:`d_{jk} = s_k -
    e_{start}` before the run, :math:`s_k - e_{end}` after it and 0 inside.
    A slow descent (a loss that falls over many epochs after a bifurcation)
    is then one jump whose run contains the event, wherever its steepest
    epoch lies.

    Parameters
    ----------
    jumps : xarray.Dataset
        From :func:`detect_loss_jumps`.
    events : xarray.Dataset
        The events of :func:`plrnn_numba.dynamics.bifurcations_along_training`
        (``s`` in epochs, ``kind``, ``order``).
    max_distance : float
        Largest distance in epochs (>= 0) at which a jump and an event
        coincide; the paper's criterion is one snapshot interval (the spacing
        of ``history["snapshot_epoch"]``).
    span : bool
        Measure distances to the jump's run (``start_epoch`` .. ``end_epoch``)
        rather than to its epoch.

    Returns
    -------
    xarray.Dataset
        Dims ``jump`` and ``event`` (either may have length 0), with the
        coordinates ``jump``, ``epoch`` (jump) and ``event``, ``s`` (event).
        Per (jump, event): ``distance``.  Per jump: ``direction``,
        ``relative_change`` (copied), ``nearest_event`` (-1: no events),
        ``nearest_distance`` (NaN: none), ``nearest_kind`` (``""``: none),
        ``nearest_order`` (-1: none), ``matched`` (0/1).  Per event: ``kind``,
        ``order`` (copied), ``has_jump`` (0/1).  Attributes: the provenance,
        ``max_distance``, ``n_jumps``, ``n_events``, ``share_jumps_matched``
        (fraction of jumps with a matched event; NaN without jumps) and
        ``share_events_without_jump`` (NaN without events).

    Raises
    ------
    TypeError
        ``jumps`` or ``events`` is not a Dataset, ``max_distance`` not a real number.
    ValueError
        A Dataset without the variables above, ``max_distance`` negative or not finite.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from plrnn_numba.training import detect_loss_jumps, match_jumps_to_events
    >>> jumps = detect_loss_jumps(np.r_[np.ones(40), np.full(40, 0.1)])
    >>> events = xr.Dataset({"kind": ("event", ["flip", "fold"]), "order": ("event", [1, 2])},
    ...                     coords={"s": ("event", [39.4, 70.0])})
    >>> m = match_jumps_to_events(jumps, events, max_distance=5.0)
    >>> m.nearest_kind.values.tolist(), m.matched.values.tolist(), m.has_jump.values.tolist()
    (['flip'], [1], [1, 0])
    """
    jumps = _require(jumps, "jumps", "jump", ("epoch", "direction", "relative_change"),
                     "plrnn_numba.training.detect_loss_jumps")
    events = _require(events, "events", "event", ("s", "kind", "order"),
                      "plrnn_numba.dynamics.bifurcations_along_training")
    max_distance = V.finite_float(max_distance, "max_distance", low=0.0)

    ej = np.asarray(jumps["epoch"].values, dtype=np.int64)
    sk = V.as_float_array(events["s"].values, "events['s']")
    V.check_finite(sk, "events['s']")
    kind = np.asarray(events["kind"].values).astype(str)
    order = np.asarray(events["order"].values, dtype=np.int64)
    nj, ne = ej.size, sk.size

    dist = sk[None, :] - ej[:, None].astype(float)
    if span:
        missing = [v for v in ("start_epoch", "end_epoch") if v not in jumps.variables]
        if missing:
            raise ValueError(f"span=True needs the jumps' runs ({', '.join(missing)} missing): pass the Dataset of "
                             "detect_loss_jumps")
        lo = np.asarray(jumps["start_epoch"].values, float)[:, None]
        hi = np.asarray(jumps["end_epoch"].values, float)[:, None]
        dist = np.where(sk[None, :] < lo, sk[None, :] - lo, np.where(sk[None, :] > hi, sk[None, :] - hi, 0.0))
    if ne:
        nearest = np.argmin(np.abs(dist), axis=1)  # argmin keeps the first (earlier) of equal distances
        near_d = dist[np.arange(nj), nearest]
        near_kind = kind[nearest]
        near_order = order[nearest]
    else:
        nearest = np.full(nj, -1, np.int64)
        near_d = np.full(nj, np.nan)
        near_kind = np.full(nj, "", dtype=str)
        near_order = np.full(nj, -1, np.int64)
    close = np.abs(dist) <= max_distance
    matched = close.any(axis=1).astype(np.int8)  # the nearest event is within reach iff any is
    has_jump = close.any(axis=0).astype(np.int8)

    arguments = {"max_distance": max_distance, "span": bool(span),
                 "jumps": jumps.attrs.get("producer", "jumps Dataset"),
                 "events": events.attrs.get("producer", "events Dataset")}  # fmt: skip
    attrs = io.provenance("plrnn_numba.training.match_jumps_to_events", arguments)
    attrs.update(
        {
            "title": "Loss jumps matched to bifurcation events",
            "max_distance": max_distance,
            "distance_to": "the jump's run (start_epoch .. end_epoch)" if span else "the jump's epoch",
            "n_jumps": nj,
            "n_events": ne,
            "share_jumps_matched": float(matched.mean()) if nj else np.nan,
            "share_events_without_jump": float(1.0 - has_jump.mean()) if ne else np.nan,
        }
    )
    data_vars = {
        "distance": (("jump", "event"), dist,
                     {**_UE, "long_name": ("event location s minus the jump's run (0 inside it)" if span else
                                            "event location s minus jump epoch (positive: event after the jump)")}),
        "direction": (("jump",), np.asarray(jumps["direction"].values, np.int64),
                      {**_U1, "long_name": "direction of the jump: +1 loss up, -1 loss down"}),
        "relative_change": (("jump",), np.asarray(jumps["relative_change"].values, float),
                            {**_U1, "long_name": "relative change of the smoothed loss across the jump"}),
        "nearest_event": (("jump",), np.asarray(nearest, np.int64),
                          {**_U1, "long_name": "index of the nearest event (-1: no events)"}),
        "nearest_distance": (("jump",), np.asarray(near_d, float),
                             {**_UE, "long_name": "s of the nearest event minus jump epoch (NaN: no events)"}),
        "nearest_kind": (("jump",), np.asarray(near_kind, dtype=str),
                         {**_U1, "long_name": "bifurcation kind of the nearest event (empty: no events)"}),
        "nearest_order": (("jump",), np.asarray(near_order, np.int64),
                          {**_U1, "long_name": "cycle order of the nearest event (-1: no events)"}),
        "matched": (("jump",), matched,
                    {**_U1, "long_name": "1 if the nearest event is within max_distance of the jump"}),
        "kind": (("event",), kind, {**_U1, "long_name": "bifurcation kind"}),
        "order": (("event",), order, {**_U1, "long_name": "cycle order of the object"}),
        "has_jump": (("event",), has_jump, {**_U1, "long_name": "1 if a loss jump lies within max_distance"}),
    }  # fmt: skip
    coords = {
        "jump": ("jump", np.arange(nj, dtype=np.int64), {**_U1, "long_name": "jump index (sorted by epoch)"}),
        "epoch": ("jump", ej, {**_UE, "long_name": "epoch of the jump (largest one-step change e -> e + 1)"}),
        "event": ("event", np.arange(ne, dtype=np.int64), {**_U1, "long_name": "event index (sorted by s)"}),
        "s": ("event", sk, {**_UE, "long_name": "location of the event: training epoch"}),
    }
    return xr.Dataset(data_vars, coords, attrs)


# ---------------------------------------------------------------------------- helpers
def _loss_and_epochs(loss, epochs) -> tuple[np.ndarray, np.ndarray, str]:
    """The losses as float64, their epochs as int64, and a short description for the provenance."""
    source = "array"
    if isinstance(loss, xr.Dataset):
        if "loss" not in loss.variables:
            raise ValueError("loss is a Dataset without a 'loss' variable: pass the history returned by "
                             "plrnn_numba.train or a 1-D array of losses")
        if epochs is not None:
            raise ValueError("epochs must be None when loss is a history Dataset (its 'epoch' coordinate is used)")
        source = f"history {loss.attrs.get('created', '')}".strip()
        loss = loss["loss"]
    if isinstance(loss, xr.DataArray):
        if epochs is None and loss.dims == ("epoch",) and "epoch" in loss.coords:
            epochs = loss["epoch"].values
        loss = loss.values
    values = V.as_float_array(loss, "loss")
    if values.ndim != 1:
        raise ValueError(f"loss must be a 1-D array of per-epoch losses; got shape {values.shape}")
    n = values.size
    if epochs is None:
        return values, np.arange(n, dtype=np.int64), source
    ep = V.as_float_array(epochs, "epochs")
    if ep.shape != (n,):
        raise ValueError(f"epochs must be a 1-D array with one epoch per loss ({n}); got shape {ep.shape}")
    V.check_finite(ep, "epochs")
    odd = (ep != np.round(ep)) | (np.abs(ep) > _MAX_EPOCH)
    if odd.any():
        i = int(np.flatnonzero(odd)[0])
        raise ValueError(f"epochs must be whole numbers (epoch indices) of magnitude <= 2**53; got {ep[i]!r} at "
                         f"index {i}")
    if np.any(np.diff(ep) <= 0):
        i = int(np.flatnonzero(np.diff(ep) <= 0)[0])
        raise ValueError(f"epochs must be strictly increasing; got {ep[i]:g} then {ep[i + 1]:g} at index {i}: "
                         "sort the losses by epoch and drop repeated epochs")
    return values, ep.astype(np.int64), source


def _running_median(x: np.ndarray, h: int) -> np.ndarray:
    """Centred running median over ``2 h + 1`` entries, the window cut at the ends."""
    # beyond n - 1 every window already covers the whole curve: capping h only saves memory
    h = min(h, x.size - 1)
    if h <= 0:
        return x.copy()
    # NaN padding: nanmedian then ignores the part of the window outside the curve
    padded = np.pad(x, h, constant_values=np.nan)
    return np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, 2 * h + 1), axis=1)


def _runs(log_smooth: np.ndarray, lag: int, log_thr: float,
          min_separation: int) -> tuple[list[tuple[int, int, int]], np.ndarray]:
    """``(start, end, sign)`` of the runs of epochs with ``|r_e| > log_thr``, same-sign neighbours merged, and r.

    ``r`` has one entry per epoch (NaN where ``e -+ lag`` leaves the curve).
    """
    n = log_smooth.size
    r_all = np.full(n, np.nan)
    if n < 2 * lag + 1:
        return [], r_all
    e = np.arange(lag, n - lag)
    r = r_all[lag : n - lag] = log_smooth[e + lag] - log_smooth[e - lag]
    sign = np.where(r > log_thr, 1, np.where(r < -log_thr, -1, 0))
    runs: list[list[int]] = []
    for i in np.flatnonzero(sign):
        si = int(sign[i])
        epoch = int(e[i])
        if runs and runs[-1][2] == si and epoch - runs[-1][1] < min_separation:
            runs[-1][1] = epoch  # the same run, or one close enough to merge with
        else:
            runs.append([epoch, epoch, si])
    return [(a, b, s) for a, b, s in runs], r_all


def _jumps_dataset(rows: list[tuple], attrs: dict) -> xr.Dataset:
    nj = len(rows)

    def col(i, dtype):
        return np.array([r[i] for r in rows], dtype=dtype) if nj else np.zeros(0, dtype=dtype)

    data_vars = {
        "direction": (("jump",), col(1, np.int64),
                      {**_U1, "long_name": "direction of the jump: +1 loss up, -1 loss down"}),
        "relative_change": (("jump",), col(2, float),
                            {**_U1, "long_name": "relative change of the smoothed loss: loss_after / loss_before - 1"}),
        "loss_before": (("jump",), col(3, float),
                        {**_U1, "long_name": "running median of the loss lag epochs before the jump"}),
        "loss_after": (("jump",), col(4, float),
                       {**_U1, "long_name": "running median of the loss lag epochs after the jump"}),
        "start_epoch": (("jump",), col(5, np.int64),
                        {**_UE, "long_name": "first epoch of the jump's run (|r_e| above the threshold)"}),
        "end_epoch": (("jump",), col(6, np.int64),
                      {**_UE, "long_name": "last epoch of the jump's run (|r_e| above the threshold)"}),
        "peak_log_change": (("jump",), col(7, float),
                            {**_U1, "long_name": "r_e of largest magnitude over the run, "
                                                 "r_e = log Lm[e+lag] - log Lm[e-lag] (the detection statistic)"}),
    }  # fmt: skip
    coords = {
        "jump": ("jump", np.arange(nj, dtype=np.int64), {**_U1, "long_name": "jump index (sorted by epoch)"}),
        "epoch": ("jump", col(0, np.int64),
                  {**_UE, "long_name": "epoch of the jump (largest one-step change e -> e + 1)"}),
    }
    return xr.Dataset(data_vars, coords, attrs)


def _require(ds, name: str, dim: str, needs: tuple[str, ...], producer: str) -> xr.Dataset:
    """``ds`` if it is a Dataset with the variables ``needs`` along ``dim``, else an error naming ``name``."""
    if not isinstance(ds, xr.Dataset):
        raise TypeError(f"{name} must be an xarray.Dataset from {producer}; got {type(ds).__name__}")
    for var in needs:
        if var not in ds.variables:
            raise ValueError(f"{name} must come from {producer} (no {var!r} variable)")
        if ds[var].dims != (dim,):
            raise ValueError(f"{name} must come from {producer} ({name}[{var!r}] must be along the dim {dim!r}; "
                             f"got dims {ds[var].dims})")
    return ds
