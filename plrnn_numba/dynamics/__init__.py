"""Dynamics of trained models: exact cycles of piecewise-linear maps, bifurcations, Lyapunov spectra.

* :func:`scyfi` -- SCYFI, the heuristic search for all fixed points and k-cycles
  of any piecewise-linear model (``model.piecewise_linear``, see
  :mod:`plrnn_numba.models.piecewise`), settings in one :class:`ScyfiSettings`;
* :func:`brute_force_cycles` -- exhaustive enumeration of all region sequences
  (small systems; the reference for tests);
* :func:`solve_region_sequence` -- the linear-algebra core of one candidate
  (``(I - F_k ... F_1) z = b``), a numba kernel;
* :func:`solve_candidates`, :func:`search_many` -- batched region solves and
  many SCYFI searches at once, on numba's threads or a CUDA GPU
  (``backend=`` one of :data:`SCYFI_BACKENDS`, also accepted by
  :func:`scyfi` and :func:`bifurcation_grid`);
* :func:`bifurcation_path`, :func:`bifurcations_along_training`,
  :func:`bifurcation_grid` -- bifurcations along parameter paths, training
  histories and over 2-D grids; :func:`orbit_diagram` by simulation (any model);
* :func:`lyapunov_spectrum` (with standard errors), :func:`covariant_lyapunov_vectors`
  (Ginelli et al. 2007), :func:`finite_time_exponents`,
  :func:`condition_number`, gradient flossing (:func:`floss`,
  :func:`flossing_loss_and_grad`);
* :func:`state_lipschitz`, :func:`cost_smoothness` -- local Lipschitz constants
  and volume growth along trajectories, and the Lipschitz constants of the
  cost and its gradient against the sequence length (Ribeiro et al. 2020);
* :func:`slow_points` -- fixed points, slow points and ghosts of any model by
  minimising ``q(x) = |F(x) - x|^2 / 2`` from many starts (Levenberg-Marquardt
  with the model's analytic Jacobian).
"""

from ._cycles import STABILITY_CLASSES, STABILITY_GROUPS, classify_stability
from .batched import SCYFI_BACKENDS, cuda_available, solve_candidates
from .bifurcation import EVENT_KINDS, bifurcation_path, bifurcations_along_training
from .bifurcation_gradients import fitted_slope, gradient_near_bifurcation
from .brute_force import MAX_BITS, brute_force_cycles
from .clv import covariant_lyapunov_vectors
from .finite_time import condition_number, finite_time_exponents
from .flossing import Flossing, FlossingEpisodes, FlossingResult, floss, flossing_loss_and_grad
from .grid import bifurcation_grid, cycle_signature
from .lyapunov import lyapunov_spectrum
from .orbits import n_distinct_values, orbit_diagram, orbit_diagram_training
from .paths import parameter_direction
from .scyfi import (
    ScyfiSettings,
    default_counters,
    realised_pattern_pool,
    scyfi,
    search_many,
    solve_region_sequence,
)
from .slow_points import SLOW_POINT_KINDS, START_STATUSES, slow_points
from .smoothness import cost_smoothness, state_lipschitz

__all__ = [
    "scyfi",
    "ScyfiSettings",
    "brute_force_cycles",
    "solve_region_sequence",
    "solve_candidates",
    "search_many",
    "cuda_available",
    "SCYFI_BACKENDS",
    "default_counters",
    "realised_pattern_pool",
    "classify_stability",
    "STABILITY_CLASSES",
    "STABILITY_GROUPS",
    "MAX_BITS",
    "bifurcation_path",
    "bifurcations_along_training",
    "gradient_near_bifurcation",
    "fitted_slope",
    "bifurcation_grid",
    "cycle_signature",
    "parameter_direction",
    "EVENT_KINDS",
    "orbit_diagram",
    "orbit_diagram_training",
    "n_distinct_values",
    "lyapunov_spectrum",
    "covariant_lyapunov_vectors",
    "state_lipschitz",
    "cost_smoothness",
    "finite_time_exponents",
    "condition_number",
    "Flossing",
    "FlossingEpisodes",
    "FlossingResult",
    "floss",
    "flossing_loss_and_grad",
    "slow_points",
    "SLOW_POINT_KINDS",
    "START_STATUSES",
]
