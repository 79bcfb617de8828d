"""Training data for PLRNNs, as self-describing xarray Datasets.

* :func:`lorenz63` - the chaotic Lorenz-63 benchmark (three channels);
* :func:`hodgkin_huxley` - a noisy, repetitively spiking Hodgkin-Huxley neuron,
  the stand-in for the (non-public) membrane-voltage recordings of
  "Bifurcations and loss jumps in RNN training";
* :func:`as_array` - a Dataset variable as a (time, channel) float64 array;
* :func:`delay_embed` - time-delay embedding of a scalar trace.

Every Dataset carries units and long names on its variables and coordinates,
the generating parameters and seed, and the provenance attributes of
:func:`plrnn_numba.io.provenance`; it round-trips through
:func:`plrnn_numba.io.save` / :func:`plrnn_numba.io.open`.
"""

from ._common import as_array, delay_embed
from .lorenz import lorenz63, lorenz63_jacobian, lorenz63_rhs
from .neuron import HHParameters, hh_rates, hh_steady_state, hodgkin_huxley

__all__ = [
    "HHParameters",
    "as_array",
    "delay_embed",
    "hh_rates",
    "hh_steady_state",
    "hodgkin_huxley",
    "lorenz63",
    "lorenz63_jacobian",
    "lorenz63_rhs",
]
