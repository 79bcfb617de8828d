"""The training history: what a run records, and the xarray Dataset built from it.

The history is the record later analyses work from: per-epoch values (losses,
gradient norms, learning rates, forcing strengths, failures, timing),
parameter snapshots (bifurcation analyses follow the parameters along this
trajectory) and the outputs of a training callback.  Every variable carries
``long_name`` and ``units``; the Dataset's attributes carry the provenance and
the run's outcome (``status``, ``message``, ``epochs_completed``, ``diverged``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from .. import io
from ..models.base import Model

STATUS_COMPLETED = "completed"
STATUS_DIVERGED = "diverged"
STATUS_INTERRUPTED = "interrupted"
STATUS_RUNNING = "running"
#: a training callback raised or returned something that cannot be recorded
STATUS_FAILED = "failed"
#: a training callback raised StopTraining: the run ended early on purpose (e.g. the task is solved)
STATUS_STOPPED = "stopped"

#: the per-epoch record: name -> (dtype, long_name, units); ``{loss}`` is the loss kind
EPOCH_VARIABLES = {
    "loss": (float, "mean training loss ({loss})", "1"),
    "grad_norm": (float, "global gradient norm before clipping (mean over the epoch's steps)", "1"),
    "lr": (float, "learning rate", "1"),
    "alpha": (float, "generalized teacher forcing strength (NaN: not GTF)", "1"),
    "nonfinite": (np.int8, "1 if a loss, gradient or parameter update was NaN/inf", "1"),
    "skipped": (np.int32, "optimiser steps skipped because they were non-finite", "1"),
    "wall_time": (float, "epoch wall-clock time", "s"),
}


class History:
    """Records a training run and builds its history Dataset.

    Parameters
    ----------
    model : Model
        The trained model (parameter names, description).
    theta_init : (P,) array
        The initial parameters (copied).
    loss : str
        The loss kind (for the long name of ``loss``).
    arguments : dict
        The run's settings, stored as JSON in the provenance.
    seed : int
        The recorded seed of the run (repeats it).
    """

    def __init__(self, model: Model, theta_init: np.ndarray, *, loss: str, arguments: dict, seed: int):
        self.model = model
        self.theta_init = np.array(theta_init, dtype=float)
        self.loss = loss
        self.arguments = arguments
        self.seed = seed
        self._epochs: dict[str, list] = {name: [] for name in EPOCH_VARIABLES}
        self._snap_epochs: list[int] = []
        self._snaps: list[np.ndarray] = []
        self._readout_snaps: list[np.ndarray] = []
        self._cb_epochs: list[int] = []
        self._cb_records: list[dict] = []

    @property
    def epochs_completed(self) -> int:
        """Number of epochs recorded (the epochs ``0 .. epochs_completed - 1``)."""
        return len(self._epochs["loss"])

    @property
    def last_loss(self) -> float:
        """The mean loss of the last recorded epoch."""
        return self._epochs["loss"][-1]

    def record_epoch(self, **values) -> None:
        """Append one epoch: exactly the variables of :data:`EPOCH_VARIABLES` as keywords.

        Parameters
        ----------
        **values : float or int
            The epoch's value of each variable (``loss``, ``grad_norm``, ``lr``, ...).
        """
        if set(values) != set(EPOCH_VARIABLES):
            raise ValueError(f"record_epoch needs exactly {sorted(EPOCH_VARIABLES)}; got {sorted(values)}")
        for name, value in values.items():
            self._epochs[name].append(value)

    def snapshot(self, epoch: int, theta: np.ndarray, readout_params: np.ndarray) -> None:
        """Store the parameters after ``epoch`` (once per epoch: a repeated call is ignored).

        Parameters
        ----------
        epoch : int
            The epoch just finished.
        theta : (P,) array
            Model parameters (copied).
        readout_params : array
            Readout parameters (copied).
        """
        if self._snap_epochs and self._snap_epochs[-1] == epoch:
            return
        self._snap_epochs.append(int(epoch))
        self._snaps.append(np.array(theta, dtype=float))
        self._readout_snaps.append(np.array(readout_params, dtype=float))

    def record_callback(self, epoch: int, outputs: dict | None) -> None:
        """Store what a callback returned after ``epoch`` (nothing for None or an empty dict).

        Parameters
        ----------
        epoch : int
            The epoch after which the callback ran.
        outputs : dict or None
            What it returned: ``{name: number or array}``.

        Raises
        ------
        TypeError
            ``outputs`` is not a dict of real numbers or arrays.
        ValueError
            A name's array changed shape from an earlier call (a column of the
            history must keep one shape).
        """
        if outputs is None:
            return
        if not isinstance(outputs, Mapping):
            raise TypeError(
                f"callback must return a dict {{name: number or array}} or None; got {type(outputs).__name__} "
                f"{outputs!r:.40}"
            )
        record = {}
        for key, value in outputs.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"callback returned the key {key!r}: names must be non-empty strings")
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise TypeError(
                    f"callback output {key!r} must be a real number or array; got {type(value).__name__} "
                    f"{value!r:.40}"
                ) from None
            for rec_epoch, rec in zip(self._cb_epochs, self._cb_records):
                if key in rec and rec[key].shape != arr.shape:
                    raise ValueError(
                        f"callback output {key!r} changed shape from {rec[key].shape} (epoch {rec_epoch}) to "
                        f"{arr.shape} (epoch {epoch}); return one shape per name"
                    )
            record[key] = arr
        if record:
            self._cb_epochs.append(int(epoch))
            self._cb_records.append(record)

    def to_dataset(
        self, theta: np.ndarray, readout_params: np.ndarray, z0: np.ndarray | None, *, status: str, message: str = ""
    ) -> xr.Dataset:
        """The history Dataset with the current parameters and the run's ``status``.

        Dims ``epoch`` (per-epoch values), ``param``, ``snapshot``,
        ``readout_param`` (linear readout), ``state`` (learned ``z0``) and
        ``checkpoint`` (callback outputs, as ``cb_<name>``).

        Parameters
        ----------
        theta : (P,) array
            Model parameters at the end.
        readout_params : array
            Readout parameters at the end (empty: none stored).
        z0 : (M,) array or None
            The learned initial state, if any.
        status : str
            The run's outcome (``"completed"``, ``"diverged"``, ``"stopped"``, ...).
        message : str
            Why the run ended, when not completed.

        Returns
        -------
        xarray.Dataset
            The history.
        """
        P = np.size(theta)
        data_vars = {
            name: ("epoch", np.asarray(self._epochs[name], dtype), {"long_name": long.format(loss=self.loss),
                                                                     "units": units})
            for name, (dtype, long, units) in EPOCH_VARIABLES.items()
        }
        data_vars["theta"] = ("param", np.array(theta, dtype=float),
                              {"long_name": "model parameters at the end of training", "units": "1"})
        data_vars["theta_init"] = ("param", self.theta_init, {"long_name": "initial model parameters", "units": "1"})
        data_vars["theta_snapshots"] = (
            ("snapshot", "param"),
            np.asarray(self._snaps, float).reshape(len(self._snaps), P),
            {"long_name": "model parameters after the snapshot epoch", "units": "1"},
        )
        coords = {
            "epoch": ("epoch", np.arange(self.epochs_completed),
                      {"long_name": "training epoch (0-based)", "units": "1"}),
            "param": ("param", np.asarray(self.model.param_names(), dtype=str),
                      {"long_name": "parameter name (entry of theta)"}),
            "snapshot_epoch": ("snapshot", np.asarray(self._snap_epochs, np.int64),
                               {"long_name": "epoch after which the snapshot was taken", "units": "1"}),
        }
        R = np.size(readout_params)
        if R:
            data_vars["readout_params"] = ("readout_param", np.array(readout_params, dtype=float),
                                           {"long_name": "readout parameters at the end", "units": "1"})
            data_vars["readout_snapshots"] = (
                ("snapshot", "readout_param"),
                np.asarray(self._readout_snaps, float).reshape(len(self._readout_snaps), R),
                {"long_name": "readout parameters after the snapshot epoch", "units": "1"},
            )
        if z0 is not None:
            data_vars["z0"] = ("state", np.array(z0, dtype=float),
                               {"long_name": "learned initial latent state", "units": "1"})
        if self._cb_records:
            coords["checkpoint_epoch"] = ("checkpoint", np.asarray(self._cb_epochs, np.int64),
                                          {"long_name": "epoch at which the callback ran", "units": "1"})
            data_vars.update(self._callback_variables())
        attrs = io.provenance("plrnn_numba.train", self.arguments, seeds=self.seed)
        attrs.update(
            {
                "model": io.to_json(self.model.describe()),
                "status": status,
                "message": message,
                "epochs_completed": self.epochs_completed,
                "diverged": int(status == STATUS_DIVERGED),
            }
        )
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    def _callback_variables(self) -> dict:
        # One variable per key any call returned, along ``checkpoint``; a call that
        # did not return the key leaves NaN there (shapes are checked when recorded).
        out = {}
        for key in sorted(set().union(*self._cb_records)):
            shape = next(rec[key].shape for rec in self._cb_records if key in rec)
            arr = np.full((len(self._cb_records),) + shape, np.nan)
            for i, rec in enumerate(self._cb_records):
                if key in rec:
                    arr[i] = rec[key]
            dims = ("checkpoint",) + tuple(f"{key}_dim{j}" for j in range(len(shape)))
            out[f"cb_{key}"] = (dims, arr, {"long_name": f"callback output '{key}'"})
        return out
