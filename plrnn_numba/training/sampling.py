"""Mini-batches of sub-sequences drawn from long observed time series."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import _validate as V
from ..bptt import Batch


@dataclass
class SubsequenceSampler:
    """Draw ``batch_size`` windows of ``seq_len + 1`` consecutive samples.

    Each window ``x_{s} .. x_{s + seq_len}`` becomes one sequence of a
    :class:`~plrnn_numba.Batch` (``x_s`` initialises the latent state, the
    rest are targets), with matching input windows when ``inputs`` is given.

    Parameters
    ----------
    data : (T, N) array or xarray.DataArray
        The observed time series.
    seq_len : int
        Number of predicted steps per sequence.
    batch_size : int
        Sequences per batch.
    inputs : (T, K) array, optional
        External inputs aligned with ``data`` (``inputs[t]`` drives the step into ``data[t]``).
    """

    data: np.ndarray
    seq_len: int
    batch_size: int
    inputs: np.ndarray | None = None

    def __post_init__(self):
        x = V.as_float_array(getattr(self.data, "values", self.data), "data")
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"data must have shape (time, channels); got {x.shape}")
        V.check_finite(x, "data")
        V.positive_int(self.seq_len, "seq_len")
        V.positive_int(self.batch_size, "batch_size")
        if x.shape[0] < self.seq_len + 1:
            raise ValueError(f"data has {x.shape[0]} samples, fewer than seq_len + 1 = {self.seq_len + 1}")
        self.data = x
        if self.inputs is not None:
            s = V.as_float_array(getattr(self.inputs, "values", self.inputs), "inputs")
            if s.ndim == 1:
                s = s[:, None]
            if s.shape[0] != x.shape[0]:
                raise ValueError(f"inputs must have {x.shape[0]} samples like data; got {s.shape[0]}")
            V.check_finite(s, "inputs")
            self.inputs = s

    def sample(self, rng: np.random.Generator) -> Batch:
        """A random batch of windows.

        Parameters
        ----------
        rng : numpy.random.Generator
            Draws the window starts.

        Returns
        -------
        Batch
            ``batch_size`` sequences of ``seq_len + 1`` samples.
        """
        T = self.data.shape[0]
        starts = rng.integers(0, T - self.seq_len, self.batch_size)
        idx = starts[:, None] + np.arange(self.seq_len + 1)[None, :]
        seqs = self.data[idx]
        inputs = None if self.inputs is None else self.inputs[idx[:, 1:]]
        return Batch.from_sequences(seqs, inputs=inputs)

    def describe(self) -> dict:
        """Settings recorded in a training run's provenance.

        Returns
        -------
        dict
            The sampler's settings and the length of the data.
        """
        return {
            "sampler": "subsequence",
            "seq_len": self.seq_len,
            "batch_size": self.batch_size,
            "n_samples": int(self.data.shape[0]),
        }
