"""Dynamics of trained models: exact fixed points and cycles of piecewise-linear RNNs.

* :func:`scyfi` -- SCYFI, the heuristic search for all fixed points and k-cycles
  of a PLRNN or (clipped) shallow PLRNN, numba on the CPU;
* :func:`brute_force_cycles` -- exhaustive enumeration of all region sequences
  (small systems; the reference for tests);
* :func:`solve_region_sequence` -- the linear-algebra core of one candidate
  (``(I - F_k ... F_1) z = b``), a numba kernel;
* :func:`solve_candidates`, :func:`search_many` -- batched region solves and
  many SCYFI searches at once, on numba's threads or a CUDA GPU
  (``backend="parallel"`` / ``"cuda"`` / ``"auto"``, also accepted by
  :func:`scyfi` and :func:`bifurcation_grid`);
* :func:`default_counters`, :func:`classify_stability`, :func:`as_system` --
  SCYFI's default loop counts, its stability classes, and the validated
  piecewise-linear description of a model.
"""

from ._cycles import STABILITY_CLASSES, classify_stability
from ._piecewise import PiecewiseLinearSystem, as_system
from .batched import BACKENDS, cuda_available, solve_candidates
from .brute_force import MAX_BITS, brute_force_cycles
from .scyfi import default_counters, realised_pattern_pool, scyfi, search_many, solve_region_sequence

__all__ = [
    "scyfi",
    "brute_force_cycles",
    "solve_region_sequence",
    "solve_candidates",
    "search_many",
    "cuda_available",
    "BACKENDS",
    "default_counters",
    "realised_pattern_pool",
    "classify_stability",
    "STABILITY_CLASSES",
    "as_system",
    "PiecewiseLinearSystem",
    "MAX_BITS",
]

# bifurcation paths and grids, orbit diagrams
from .bifurcation import (  # noqa: E402
    EVENT_KINDS,
    STABILITY_GROUPS,
    bifurcation_grid,
    bifurcation_path,
    bifurcations_along_training,
    cycle_signature,
    parameter_direction,
)
from .orbits import n_distinct_values, orbit_diagram, orbit_diagram_training  # noqa: E402

__all__ += [
    "bifurcation_path",
    "bifurcations_along_training",
    "bifurcation_grid",
    "cycle_signature",
    "parameter_direction",
    "EVENT_KINDS",
    "STABILITY_GROUPS",
    "orbit_diagram",
    "orbit_diagram_training",
    "n_distinct_values",
]

from .finite_time import condition_number, finite_time_exponents  # noqa: E402
from .flossing import Flossing, floss, flossing_loss_and_grad  # noqa: E402
from .lyapunov import lyapunov_spectrum  # noqa: E402

__all__ += [
    "lyapunov_spectrum",
    "finite_time_exponents",
    "condition_number",
    "Flossing",
    "floss",
    "flossing_loss_and_grad",
]
