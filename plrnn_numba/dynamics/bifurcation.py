r"""Bifurcations of piecewise-linear maps along one-parameter paths and along training.

Parameter paths (:mod:`.paths`): :math:`\theta(s) = \theta_0 + s\, d`, with
``d`` a direction vector, a unit vector named after one parameter (``"A[0]"``,
``"W[0,1]"``: the labels of ``model.param_names()``) or a mapping
``{name: coefficient}``; or a training run, where ``s`` is the epoch and
:math:`\theta(s)` interpolates the parameter snapshots linearly.  The region
maps at every ``s`` are recomputed from :math:`\theta(s)` through
``model.piecewise_linear`` (no assumption that they are linear in theta).

Tracking cycles exactly (:mod:`.continuation`): inside a fixed region
sequence the k-cycle is :math:`z_1(s) = (I - Z(s))^{-1} b(s)`, a true cycle
while every point lies in its region.  Between two SCYFI solutions the objects
are followed this way, and every change is located by bisection on ``s`` on
the sign of a continuous quantity of the tracked region sequence:

==============================  ===============================================  ==========================
event                           located where                                    kind
==============================  ===============================================  ==========================
a point reaches a border         a boundary value ``U_q z_j + v_q`` -> 0             border collision / fold
``det(I - Z)`` changes sign      an eigenvalue of ``Z`` passes +1, ``|z| -> inf``   degenerate transcritical
real eigenvalue through -1       ``|lambda| - 1`` changes sign, ``lambda`` real     flip (period doubling)
complex pair through ``|.|=1``   ``|lambda| - 1`` changes sign, ``lambda`` complex  Neimark-Sacker
==============================  ===============================================  ==========================

Classification (:mod:`.events`) of the objects that appear or disappear at a
border (with "appear"/"disappear" meaning as ``s`` increases):

* two objects of the same order disappear (or appear) at the same ``s`` with
  their points meeting: a **fold** (saddle-node; in a piecewise-linear map it
  is a border-collision fold: the two objects meet at the border and vanish);
* one object disappears and another of the same order appears at the same
  ``s`` with their points meeting: the object **persists** through a **border
  collision** into another region sequence (stability may change); its identity
  (``object`` index) is kept;
* a 2k-cycle appearing/disappearing at a border at the ``s`` of a flip of a
  k-cycle: part of that **flip** (in a piecewise-linear map the period-doubled
  cycle appears at finite amplitude, touching a border);
* any other appearance/disappearance at a border: **border collision** (with
  the lower-order object it meets as ``partner`` when there is one).

What is found, and what can be missed:

* SCYFI is heuristic; before tracking, every object found at one ``s`` is also
  checked (analytically) at the neighbouring ``s`` values and added there when
  it exists, so an object SCYFI missed at one point is not mistaken for a
  bifurcation;
* when a tracked cycle meets a border, the region sequence with the colliding
  bit flipped is solved on both sides of the event; the cycle it turns into
  (persistence) or meets (fold) is then tracked as well, so objects that exist
  only *between* two grid values are found when they are connected to a known
  object through border events;
* not found: objects that exist only between two grid values and connect to
  the known ones through no border event (e.g. arriving from and leaving to
  infinity within one interval), cycles of order above ``max_order``, and
  changes that start and undo themselves between two probes of an interval
  (``n_probe`` per interval).  Refine ``s_values`` to see them.

2-D parameter grids (bifurcation manifolds) are in :mod:`.grid`.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..models.base import check_model
from ..models.piecewise import as_piecewise_linear
from .batched import SCYFI_BACKENDS
from .bifurcation_output import events_dataset, objects_dataset
from .continuation import TrackedPath, object_branches, track_objects
from .events import EVENT_KINDS, dedupe_crossings, event_records, pair_terminals
from .paths import MapAlongPath, ParameterPath, history_snapshots, parameter_direction, path_positions
from .scyfi import ScyfiSettings, as_settings

__all__ = ["bifurcation_path", "bifurcations_along_training", "EVENT_KINDS"]


def bifurcation_path(
    model,
    theta: np.ndarray,
    direction,
    s_values,
    *,
    max_order: int,
    inputs: np.ndarray | None = None,
    settings: ScyfiSettings | None = None,
    seed=0,
    locate_tol: float = 1e-8,
    n_probe: int = 4,
    meet_rtol: float = 1e-6,
    backend: str = "cpu",
    n_threads: int | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    r"""Fixed points, k-cycles and their bifurcations along the path :math:`\theta(s) = \theta + s\,d`.

    At every ``s`` in ``s_values`` SCYFI finds the cycles of order 1..``max_order``.
    Objects are followed between neighbouring values *exactly*: for a fixed region
    sequence the cycle is :math:`z_1(s) = (I - Z(s))^{-1} b(s)` with
    :math:`Z = F_k \cdots F_1`, the region maps recomputed from :math:`\theta(s)`.
    Each change is located by bisection on ``s`` to ``locate_tol`` on the sign of a
    continuous quantity of that sequence: a boundary value :math:`U_q z_j + v_q`
    (border), :math:`\det(I - Z)` (an eigenvalue through +1, the cycle escaping to
    infinity), or :math:`|\lambda| - 1` (an eigenvalue crossing the unit circle).
    See the module docstring for the classification into folds, degenerate
    transcritical bifurcations, border collisions, flips and Neimark-Sacker
    bifurcations.

    Parameters
    ----------
    model : Model
        A piecewise-linear model (see :func:`~plrnn_numba.dynamics.scyfi`).
    theta : (P,) array
        Start of the path (``s = 0``).
    direction : str, mapping or (P,) array
        Direction ``d`` of the path: a parameter name, a ``{name: coefficient}``
        mapping or a vector (:func:`~plrnn_numba.dynamics.parameter_direction`).
    s_values : (n,) array
        Strictly increasing path positions where SCYFI runs.
    max_order : int
        Largest cycle order (>= 1).
    inputs : (K,) array, optional
        Constant input of the map (see :func:`~plrnn_numba.dynamics.scyfi`).
    settings : ScyfiSettings, optional
        The SCYFI settings used at every grid value (its ``tol_hyperbolic`` also
        classifies the continued objects).
    seed : int, None or numpy.random.Generator
        Seed of SCYFI's candidates (the same at every grid value).
    locate_tol : float
        Width of the final bisection bracket of each event in ``s`` (default 1e-8).
    n_probe : int
        Evaluations per interval and object before bisection: changes that undo
        themselves between two probes are missed.
    meet_rtol : float
        Objects "meet" (fold, persistence) when their points agree, up to a cyclic
        shift, within ``meet_rtol * max(1, |z|)`` plus the distance the points move
        over the bisection brackets.
    backend : {"cpu", "parallel", "cuda", "auto"}
        How SCYFI runs at the grid values: ``"cpu"`` one :func:`~plrnn_numba.dynamics.scyfi`
        call per value; the others every value and order in one batch
        (:func:`~plrnn_numba.dynamics.search_many`, the same cycles) on numba's threads
        or the GPU.  The tracking between grid values is serial either way.
    n_threads : int, optional
        Threads for ``"parallel"``.

    Returns
    -------
    objects : xarray.Dataset
        Dims ``s``, ``object`` (an object keeps its index along the path, through
        border collisions too; an object found only between two grid values has
        ``exists = 0`` at every ``s`` but appears in ``events``), ``point``
        (max_order), ``state``, ``eig``, ``bit`` (with ``bit_label``), ``order``,
        ``param``.  Per (s, object): ``exists``, ``stability``,
        ``n_unstable_eig``, ``spectral_radius``, ``first_point``, ``points``,
        ``eig_real``/``eig_imag``, ``patterns``, ``source`` (1 SCYFI, 2 analytic
        continuation); per object ``object_order``; per (s, order) the counts
        ``n_cycles``, ``n_stable``, ``n_saddle``, ``n_unstable``; per s the
        parameters ``theta`` (s, param).
    events : xarray.Dataset
        Dim ``event`` (sorted by ``s``): ``s`` with its bracket ``s_lo``/``s_hi``,
        ``kind`` (see :data:`EVENT_KINDS`), ``change`` (``"appears"``,
        ``"disappears"``, ``"persists"``, ``"stability"``, as ``s`` increases),
        ``order``, ``object_before``/``object_after`` (object index or -1),
        ``partner`` (the other object of a fold, the k-cycle whose flip made a
        2k-cycle, the lower-order object met at a border; -1 if none),
        ``stability_before``/``stability_after``/``partner_stability``,
        ``eig_real``/``eig_imag`` (the eigenvalue at the crossing; NaN for border
        events), ``boundary_point``/``boundary_unit`` (the cycle point and the
        pattern bit whose boundary it meets; -1 if none) and ``point`` (event,
        state): the cycle point involved at the event.

    Raises
    ------
    TypeError, ValueError
        A model that is not piecewise linear, bad parameters, unknown parameter
        name, ``s_values`` not a 1-D strictly increasing finite array,
        ``max_order < 1`` (messages name the argument).

    Notes
    -----
    Events are located on the tracked region sequences, so their accuracy is
    that of the bisection (``locate_tol``), not of the grid.  An event exactly on
    a grid value is found as well (the object is then missing or at a border there).
    The cost is one SCYFI call per grid value plus a few small linear solves per
    object, probe and bisection step.

    Examples
    --------
    The skew tent map ``z' = 0.5 z + 0.3`` (z <= 0), ``a_R z + 0.3`` (z > 0) as a
    1-D PLRNN with a free W diagonal (``A = a_L``, ``W = a_R - a_L``); its fixed
    point ``0.3 / (1 - a_R)`` flips at ``a_R = -1``:

    >>> import numpy as np, plrnn_numba as pn
    >>> from plrnn_numba.dynamics import bifurcation_path
    >>> m = pn.PLRNN(1, full_W=True)
    >>> theta = m.pack(A=[0.5], W=[[-1.4]], h=[0.3])           # a_R = -0.9
    >>> objects, events = bifurcation_path(m, theta, {"W[0,0]": -1.0}, np.linspace(0, 0.2, 5), max_order=2)
    >>> [(round(float(s), 6), str(k)) for s, k in zip(events.s.values, events.kind.values)]
    [(0.1, 'flip'), (0.1, 'flip')]
    """
    as_piecewise_linear(model, theta, inputs)  # validates model, theta and inputs
    theta = model.check_theta(theta).copy()
    d, label = parameter_direction(model, direction)
    s = path_positions(s_values)
    path = ParameterPath(theta0=theta, d=d)
    arguments = {
        "direction": label if label != "direction" else d.tolist(),
        "theta": theta.tolist() if theta.size <= 4096 else "omitted (large)",
        "s_values": s.tolist(),
    }
    s_attrs = {"units": "1", "long_name": f"path parameter s (theta = theta0 + s d, d: {label})"}
    return _analyse(model, path, s, d, inputs, arguments, s_attrs, "theta0 + s * d", label, max_order=max_order,
                    settings=settings, seed=seed, locate_tol=locate_tol, n_probe=n_probe, meet_rtol=meet_rtol,
                    backend=backend, n_threads=n_threads, producer="plrnn_numba.dynamics.bifurcation_path")


def bifurcations_along_training(
    model,
    history: xr.Dataset,
    *,
    max_order: int,
    inputs: np.ndarray | None = None,
    settings: ScyfiSettings | None = None,
    seed=0,
    locate_tol: float = 1e-8,
    n_probe: int = 4,
    meet_rtol: float = 1e-6,
    backend: str = "cpu",
    n_threads: int | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Bifurcations during training: :func:`bifurcation_path` along ``history``'s parameter snapshots.

    ``s`` is the epoch: SCYFI runs at every snapshot epoch
    (``history["snapshot_epoch"]``, parameters ``history["theta_snapshots"]``;
    select snapshots with ``history.isel(snapshot=...)``), and between snapshot
    epochs the parameters are interpolated linearly (the located events lie on
    those segments).  The history must have been recorded for ``model``.

    Parameters
    ----------
    model : Model
        The piecewise-linear model that was trained.
    history : xarray.Dataset
        Its training history (:func:`~plrnn_numba.train`), with at least one snapshot.
    max_order : int
        Largest cycle order (>= 1).
    inputs : (K,) array, optional
        Constant input of the map.
    settings : ScyfiSettings, optional
        The SCYFI settings used at every snapshot.
    seed : int, None or numpy.random.Generator
        Seed of SCYFI's candidates (the same at every snapshot).
    locate_tol : float
        Width of the final bisection bracket of each event, in epochs.
    n_probe : int
        Evaluations per interval and object before bisection.
    meet_rtol : float
        Relative distance at which objects meet, as for :func:`bifurcation_path`.
    backend : {"cpu", "parallel", "cuda", "auto"}
        How SCYFI runs at the snapshots, as for :func:`bifurcation_path`.
    n_threads : int, optional
        Threads for ``"parallel"``.

    Returns
    -------
    objects : xarray.Dataset
        The objects along the path, as for :func:`bifurcation_path` (``s``: the epoch).
    events : xarray.Dataset
        The located bifurcations, as for :func:`bifurcation_path`.
    """
    check_model(model)
    s, snaps = history_snapshots(model, history)
    as_piecewise_linear(model, snaps[0], inputs)  # validates model and inputs
    path = ParameterPath(knots=s, thetas=snaps)
    arguments = {"history": str(history.attrs.get("created", "training history")), "epochs": s.tolist()}
    s_attrs = {"units": "epoch", "long_name": "training epoch"}
    return _analyse(model, path, s, None, inputs, arguments, s_attrs,
                    "training snapshots, linear between snapshot epochs", "training epoch", max_order=max_order,
                    settings=settings, seed=seed, locate_tol=locate_tol, n_probe=n_probe, meet_rtol=meet_rtol,
                    backend=backend, n_threads=n_threads, producer="plrnn_numba.dynamics.bifurcations_along_training")


def _analyse(model, path, s, d, inputs, arguments, s_attrs, path_kind, label, *, max_order, settings, seed,
             locate_tol, n_probe, meet_rtol, backend, n_threads, producer) -> tuple[xr.Dataset, xr.Dataset]:
    """Track, locate, classify and assemble (shared by the two public functions)."""
    max_order = V.positive_int(max_order, "max_order")
    settings = as_settings(settings)
    seed = V.seed_value(seed)
    locate_tol = V.finite_float(locate_tol, "locate_tol", low=0.0)
    if locate_tol <= 0.0:
        raise ValueError("locate_tol must be > 0")
    n_probe = V.positive_int(n_probe, "n_probe")
    meet_rtol = V.finite_float(meet_rtol, "meet_rtol", low=0.0)
    V.choice(backend, "backend", SCYFI_BACKENDS)
    if n_threads is not None:
        n_threads = V.positive_int(n_threads, "n_threads")

    t_start = time.perf_counter()
    fam = MapAlongPath(model, path, V.constant_input(inputs, model.n_inputs))
    thetas = np.stack([path.theta(float(x)) for x in s])
    # 1. SCYFI at every grid value, completed by continuation to the neighbours, and
    # 2. every object followed over each interval (finding objects that live between grid values)
    tr, sets = track_objects(fam, s, thetas, max_order, settings, seed, n_probe, locate_tol, backend, n_threads)
    coincide = 4.0 * locate_tol
    stab = dedupe_crossings(tr.stab, tr.uf, coincide)
    terms = dedupe_crossings(tr.terms, tr.uf, coincide)
    # 3. pair appearances/disappearances: folds and persistent border collisions
    pairs, paired = pair_terminals(terms, tr.uf, coincide, meet_rtol)
    # 4. objects: union-find components; a second grid node at the same s starts a new object
    branches, branch_of = object_branches(tr.uf, sets, tr.node_info)
    # 5. events, 6. datasets
    recs = event_records(pairs, stab, terms, paired, branch_of, coincide, meet_rtol)
    arguments = {
        "model": model.describe(),
        **arguments,
        "max_order": max_order,
        "inputs": None if inputs is None else np.asarray(inputs, dtype=float).tolist(),
        "settings": settings.arguments(),
        "seed": int(seed),
        "locate_tol": locate_tol,
        "n_probe": n_probe,
        "meet_rtol": meet_rtol,
        "backend": backend,
    }
    attrs = io.provenance(producer, arguments, seeds=int(seed))
    attrs.update({"path": path_kind, "direction_label": label, "max_order": max_order, "locate_tol": locate_tol,
                  "seconds": time.perf_counter() - t_start})
    tracked = TrackedPath(fam, s, thetas, d, sets, branches, tr.node_info, max_order)
    objects = objects_dataset(tracked, s_attrs, attrs)
    events = events_dataset(
        recs, model.dim, s_attrs,
        {**attrs, "title": "Bifurcations along the parameter path", "event_kinds": ", ".join(EVENT_KINDS)},
    )
    return objects, events
