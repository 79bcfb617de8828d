"""Observation models (readouts) and losses.

* :class:`IdentityReadout` — the first ``n_obs`` latent states are the
  observations (the convention of generalized teacher forcing: those
  components can be replaced by data).
* :class:`LinearReadout` — ``y_t = B z_t + c`` with trainable ``B, c``.

Losses (averaged over the counted entries, weighted by the mask):

* ``"mse"``: ``L = sum_{b,t,n} m_{bt} (y - x)^2 / sum_{b,t,n} m_{bt}``
* ``"bce"``: binary cross-entropy on logits,
  ``L = sum m_{bt} [log(1 + e^y) - x y] / sum m_{bt}`` (targets in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as V

LOSSES = {"mse": 0, "bce": 1}


@dataclass(frozen=True)
class IdentityReadout:
    """``y_t = z_t[:n_obs]`` (no parameters).

    ``n_obs=None`` takes as many leading states as the data have channels
    (or all states when there are no data to match).
    """

    n_obs: int | None = None
    kind = 0

    def __post_init__(self):
        V.optional_int(self.n_obs, "n_obs")

    def n_out(self, dim: int, n_data: int | None = None) -> int:
        n = self.n_obs if self.n_obs is not None else (dim if n_data is None else n_data)
        if not 1 <= n <= dim:
            raise ValueError(
                f"readout: IdentityReadout.n_obs must be in [1, {dim}] (the latent dimension); got {n}"
            )
        return n

    def n_params(self, dim: int) -> int:
        return 0

    def init(self, dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """No parameters: an empty vector (``seed`` is accepted for a uniform interface)."""
        V.positive_int(dim, "dim")
        return np.zeros(0)

    def unpack(self, params: np.ndarray, dim: int) -> dict[str, np.ndarray]:
        return {}

    def apply(self, params: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Observations of states ``z`` (..., M)."""
        return z[..., : self.n_out(z.shape[-1])]


@dataclass(frozen=True)
class LinearReadout:
    """``y_t = B z_t + c`` with ``B`` (n_out x M) and ``c`` (n_out), trainable.

    Parameter layout: ``B`` row-major, then ``c``.
    """

    n_out: int
    kind = 1

    def __post_init__(self):
        V.positive_int(self.n_out, "n_out")

    def n_params(self, dim: int) -> int:
        return self.n_out * dim + self.n_out

    def init(self, dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """Initial parameters ``B_ij ~ N(0, 1/M)``, ``c = 0``.

        ``seed``: an int >= 0, None or a ``numpy.random.Generator`` (the package's
        one rule, :func:`plrnn_numba._validate.seed_sequence`).
        """
        dim = V.positive_int(dim, "dim")
        rng, _ = V.generator(seed)
        return np.concatenate([rng.normal(0.0, 1.0 / np.sqrt(dim), self.n_out * dim), np.zeros(self.n_out)])

    def unpack(self, params: np.ndarray, dim: int) -> dict[str, np.ndarray]:
        return {"B": params[: self.n_out * dim].reshape(self.n_out, dim), "c": params[self.n_out * dim :]}

    def apply(self, params: np.ndarray, z: np.ndarray) -> np.ndarray:
        d = self.unpack(params, z.shape[-1])
        return z @ d["B"].T + d["c"]


def _n_out(readout, dim: int) -> int:
    return readout.n_out(dim) if isinstance(readout, IdentityReadout) else readout.n_out


def as_readout(readout, dim: int):
    """Validate a readout object for a model of latent dimension ``dim``."""
    V.positive_int(dim, "dim")
    if readout is None:
        return IdentityReadout()
    if not isinstance(readout, (IdentityReadout, LinearReadout)):
        raise TypeError(f"readout must be IdentityReadout(...) or LinearReadout(...); got {type(readout).__name__}")
    _n_out(readout, dim)
    return readout
