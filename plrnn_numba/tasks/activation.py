"""The delayed-activation task of the ghost-mechanism paper.

Dinc et al., "A ghost mechanism: an analytical model of abrupt learning":
a network starts from a fixed state and must output 0 during a delay of
``n_delay`` steps, then "activate" and output 1 for ``n_active`` steps.  There
is no input; the whole task is one deterministic trial, trained full batch.
With the paper's time constants (``T = 100 ms`` per phase, ``dt = 5 ms``) a
phase is 20 steps, and every unit starts at ``x(0) = -0.3``.

With array index ``t = 0 .. n_delay + n_active - 1`` (the state after step
``t + 1`` must produce ``targets[:, t]``):

.. math::

    y_t = \\begin{cases} 0, & t < n_{\\rm delay} \\\\ 1, & t \\ge n_{\\rm delay} \\end{cases}

Every step counts (the mask is all ones).  The readout produces a logit
(``sigmoid`` of it is the output), so :func:`plrnn_numba.tasks.accuracy`
scores it by thresholding at 0: the fraction of steps whose output is on
the right side of 1/2.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..bptt import Batch

__all__ = ["delayed_activation"]


def delayed_activation(
    n_units: int,
    *,
    n_delay: int = 20,
    n_active: int = 20,
    x0: float = -0.3,
    as_dataset: bool = False,
) -> Batch | xr.Dataset:
    """The single trial of the delayed-activation task.

    Parameters
    ----------
    n_units : int
        Number of units of the network (the length of the initial state).
    n_delay : int
        Steps with target 0 (default 20: ``T / dt = 100 ms / 5 ms``).
    n_active : int
        Steps with target 1 after the delay (default 20).
    x0 : float
        Initial state of every unit (default -0.3, as the authors).
    as_dataset : bool
        Return an :class:`xarray.Dataset` (targets, mask and initial state
        with units, long names and provenance) instead of a
        :class:`~plrnn_numba.Batch`.

    Returns
    -------
    Batch or xarray.Dataset
        ``targets`` (1, n_delay + n_active, 1), ``mask`` all ones,
        ``z0`` (1, n_units) filled with ``x0``, no inputs.
    """
    n_units = V.positive_int(n_units, "n_units")
    n_delay = V.positive_int(n_delay, "n_delay")
    n_active = V.positive_int(n_active, "n_active")
    x0 = V.finite_float(x0, "x0")
    as_dataset = V.flag(as_dataset, "as_dataset")
    T = n_delay + n_active
    targets = np.zeros((1, T, 1))
    targets[0, n_delay:, 0] = 1.0
    z0 = np.full((1, n_units), x0)
    mask = np.ones((1, T))
    if not as_dataset:
        return Batch(targets=targets, z0=z0, mask=mask)
    args = {"n_units": n_units, "n_delay": n_delay, "n_active": n_active, "x0": x0}
    return xr.Dataset(
        {
            "targets": (("batch", "step", "output"), targets,
                        {"long_name": "target output (0 during the delay, 1 after)", "units": "1"}),
            "mask": (("batch", "step"), mask, {"long_name": "weight of the step in the loss", "units": "1"}),
            "z0": (("batch", "unit"), z0, {"long_name": "initial state of every unit", "units": "1"}),
        },
        coords={"step": ("step", np.arange(1, T + 1), {"long_name": "time step", "units": "1"})},
        attrs=io.provenance("plrnn_numba.tasks.delayed_activation", args),
    )
