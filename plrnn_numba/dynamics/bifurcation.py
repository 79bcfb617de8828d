r"""Bifurcations of PLRNN-family maps along one-parameter paths and over 2-D parameter grids.

Parameter paths
---------------
Every analysis here follows the flat parameter vector along a path

.. math::

    \theta(s) = \theta_0 + s\, d ,

with ``d`` a direction vector, a unit vector named after one parameter
(``"A[0]"``, ``"W[0,1]"``, ``"h[1]"``: the labels of ``model.param_names()``) or
a mapping ``{name: coefficient}``; or along a training run, where ``s`` is the
epoch and :math:`\theta(s)` interpolates the parameter snapshots of the
history linearly between consecutive snapshot epochs.

Tracking cycles exactly
-----------------------
Inside a fixed sequence of linear regions :math:`d_1, \dots, d_k` a PLRNN-family
map is affine in every step, :math:`z \mapsto F_j(s) z + c_j(s)`, with
:math:`F_j, c_j` affine in :math:`\theta` and hence in ``s``.  The k-cycle of that
region sequence is therefore an explicit function of ``s``:

.. math::

    Z(s) = F_k \cdots F_1, \qquad b(s) = c_k + F_k c_{k-1} + \dots + F_k \cdots F_2 c_1,
    \qquad z_1(s) = (I - Z(s))^{-1} b(s), \qquad z_{j+1} = F_j z_j + c_j .

It is a true cycle of the map exactly while every point lies in its region
(PLRNN: ``z_{j,i} > 0`` where ``d_{j,i} = 1`` and ``z_{j,i} <= 0`` where
``d_{j,i} = 0``; shallow PLRNNs: the same on the pre-activations
``W2 z + h2``).  Its stability is given by the eigenvalues of ``Z(s)``.  So
between two SCYFI solutions the objects are followed *analytically*, and every
change is located by bisection on ``s`` on the sign of a continuous quantity
of the tracked region sequence:

==============================  ===============================================  ==========================
event                           located where                                    kind
==============================  ===============================================  ==========================
a point reaches a border         a margin ``+-z_{j,i}`` (pre-activation) -> 0      border collision / fold
``det(I - Z)`` changes sign      an eigenvalue of ``Z`` passes +1, ``|z| -> inf``   degenerate transcritical
real eigenvalue through -1       ``|lambda| - 1`` changes sign, ``lambda`` real     flip (period doubling)
complex pair through ``|.|=1``   ``|lambda| - 1`` changes sign, ``lambda`` complex  Neimark-Sacker
==============================  ===============================================  ==========================

Classification of the objects that appear or disappear at a border (with
"appear"/"disappear" meaning as ``s`` increases):

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

Parameter grids
---------------
:func:`bifurcation_grid` counts, at every point of a 2-D parameter grid, the
cycles of each order by stability group (stable / saddle / unstable /
non-hyperbolic) and marks the cells whose signature differs from a neighbour:
those cells trace the bifurcation manifolds.  The per-point work is the
separate function :func:`cycle_signature`, so a batched or GPU backend can
replace the serial loop.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import io
from ..models.base import Model
from ..models.plrnn import PLRNN
from ..models.shallow import ShallowPLRNN
from ._cycles import canonical_shift, classify_stability, sorted_eigenvalues
from ._piecewise import PiecewiseLinearSystem, as_system, check_order
from .batched import resolve_backend
from .scyfi import _Settings, scyfi, search_many

__all__ = [
    "bifurcation_path",
    "bifurcations_along_training",
    "bifurcation_grid",
    "cycle_signature",
    "parameter_direction",
    "EVENT_KINDS",
    "STABILITY_GROUPS",
]

#: the event kinds reported by :func:`bifurcation_path`.
EVENT_KINDS = ("fold", "degenerate transcritical", "border collision", "flip", "Neimark-Sacker", "other")

#: stability groups counted per order by :func:`bifurcation_grid`.
STABILITY_GROUPS = ("stable", "saddle", "unstable", "non-hyperbolic")

_GROUP_OF = {
    "stable node": 0,
    "stable spiral": 0,
    "saddle": 1,
    "unstable node": 2,
    "unstable spiral": 2,
    "non-hyperbolic": 3,
}

#: an eigenvalue at a crossing counts as complex (Neimark-Sacker) when |Im| > this * |lambda|.
_COMPLEX_RTOL = 1e-6


# ============================================================================ parameters and paths
def _normalise_name(name: str) -> str:
    return "".join(name.split())


def parameter_direction(model: Model, direction) -> tuple[np.ndarray, str]:
    r"""Direction vector ``d`` in parameter space, and a label for it.

    Parameters
    ----------
    model : Model
        The model whose ``theta`` the direction lives in.
    direction : str, mapping or (P,) array
        A parameter label from ``model.param_names()`` (``"A[0]"``, ``"W[0,1]"``,
        ``"h[1]"``; spaces are ignored), giving the unit vector :math:`e_i`; a
        mapping ``{label: coefficient}``, giving :math:`\sum c_i e_i`; or a
        vector of length ``model.n_params``.

    Returns
    -------
    d : (P,) array
    label : str
        The name (for a single parameter), ``"a*A[0] + b*W[0,1]"`` for a mapping,
        or ``"direction"`` for a vector.

    Raises
    ------
    ValueError
        Unknown parameter name, wrong length, non-finite or all-zero vector.
    TypeError
        Anything else.
    """
    names = model.param_names()
    index = {_normalise_name(n): i for i, n in enumerate(names)}

    def lookup(name) -> int:
        if not isinstance(name, str):
            raise TypeError(f"direction: parameter names must be strings; got {type(name).__name__}")
        key = _normalise_name(name)
        if key not in index:
            hint = ""
            if isinstance(model, PLRNN) and not model.full_W and key.startswith("W["):
                hint = (
                    " (the diagonal of W is structurally zero in this PLRNN: use A[i] for the self-coupling, "
                    "or build the model with full_W=True)"
                )
            shown = names if len(names) <= 24 else names[:24] + ["..."]
            raise ValueError(f"direction: unknown parameter name {name!r} for {model!r}{hint}; valid names: {shown}")
        return index[key]

    d = np.zeros(model.n_params)
    if isinstance(direction, str):
        d[lookup(direction)] = 1.0
        return d, direction
    if isinstance(direction, Mapping):
        if not direction:
            raise ValueError("direction: the mapping {name: coefficient} is empty")
        parts = []
        for name, coef in direction.items():
            c = V.finite_float(coef, f"direction[{name!r}]")
            d[lookup(name)] += c
            parts.append(f"{c:g}*{name}")
        if not np.any(d):
            raise ValueError("direction: all coefficients are zero")
        return d, " + ".join(parts)
    arr = V.as_float_array(direction, "direction")
    if arr.shape != (model.n_params,):
        raise ValueError(
            f"direction must be a parameter name, a {{name: coefficient}} mapping or a vector of length "
            f"{model.n_params} (model.n_params); got shape {arr.shape}"
        )
    V.check_finite(arr, "direction")
    if not np.any(arr):
        raise ValueError("direction must not be the zero vector")
    return arr.copy(), "direction"


def _as_model(model_or_params, theta0, name: str = "theta0") -> tuple[Model, np.ndarray | None]:
    """A model and its (validated) ``theta0``; raw PLRNN / shallow arrays become a model + theta."""
    if isinstance(model_or_params, Model):
        if theta0 is None:
            return model_or_params, None
        return model_or_params, model_or_params.check_theta(theta0, name).copy()
    if theta0 is not None:
        raise ValueError(f"{name} is only used with a model; with raw parameter arrays leave {name}=None")
    system = as_system(model_or_params)  # validates the arrays
    a = system.arrays
    params = dict(model_or_params) if isinstance(model_or_params, Mapping) else None
    C = None if params is None else params.get("C")
    K = 0 if C is None else int(np.shape(C)[1])
    C = None if C is None else np.asarray(C, dtype=float)
    if system.kind == "plrnn":
        model = PLRNN(system.dim, n_inputs=K, full_W=True)
        theta = model.pack(A=a["A"], W=a["W"], h=a["h"], C=C)
    else:
        model = ShallowPLRNN(system.dim, system.n_units, n_inputs=K, clipped=system.kind == "clipped")
        theta = model.pack(A=a["A"], W1=a["W1"], W2=a["W2"], h1=a["h1"], h2=a["h2"], C=C)
    return model, theta


def _check_s_values(s_values, name: str = "s_values") -> np.ndarray:
    s = V.as_float_array(s_values, name)
    if s.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of path positions; got shape {s.shape}")
    if s.size < 1:
        raise ValueError(f"{name} must hold at least one value")
    V.check_finite(s, name)
    if s.size > 1 and not np.all(np.diff(s) > 0):
        raise ValueError(f"{name} must be strictly increasing (sort them and drop duplicates)")
    return s.copy()


def _history_path(model: Model, history) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, snapshots) of a training history, checked; duplicate epochs keep the last snapshot."""
    if not isinstance(history, xr.Dataset):
        raise TypeError(
            f"history must be the xarray.Dataset returned by plrnn_numba.train; got {type(history).__name__}"
        )
    for var in ("theta_snapshots", "snapshot_epoch"):
        if var not in history.variables:
            raise ValueError(f"history has no {var!r}: pass the Dataset returned by plrnn_numba.train")
    snaps = V.as_float_array(history["theta_snapshots"].values, "history['theta_snapshots']")
    epochs = V.as_float_array(history["snapshot_epoch"].values, "history['snapshot_epoch']")
    if snaps.ndim != 2 or snaps.shape[1] != model.n_params:
        raise ValueError(
            f"history['theta_snapshots'] must have shape (snapshot, {model.n_params}) for {model!r}; got {snaps.shape}"
        )
    if epochs.shape != (snaps.shape[0],):
        raise ValueError("history['snapshot_epoch'] must have one epoch per snapshot")
    if snaps.shape[0] < 1:
        raise ValueError("history holds no parameter snapshots")
    V.check_finite(snaps, "history['theta_snapshots']")
    order = np.argsort(epochs, kind="stable")
    epochs, snaps = epochs[order], snaps[order]
    keep = np.append(np.diff(epochs) > 0, True)  # last of equal epochs
    return epochs[keep].copy(), np.ascontiguousarray(snaps[keep])


class _Path:
    r"""``theta(s)``: ``theta0 + s d`` or the piecewise-linear interpolation of snapshots ``(s_k, theta_k)``."""

    def __init__(self, theta0=None, d=None, knots=None, thetas=None):
        self.theta0, self.d, self.knots, self.thetas = theta0, d, knots, thetas

    def theta(self, s: float) -> np.ndarray:
        if self.knots is None:
            return self.theta0 + s * self.d
        i, w = self._segment(s)
        if w == 0.0:
            return self.thetas[i].copy()
        return (1.0 - w) * self.thetas[i] + w * self.thetas[i + 1]

    def _segment(self, s: float) -> tuple[int, float]:
        kn = self.knots
        if kn.size == 1:
            return 0, 0.0
        i = int(np.clip(np.searchsorted(kn, s, side="right") - 1, 0, kn.size - 2))
        w = (s - kn[i]) / (kn[i + 1] - kn[i])
        if w == 1.0:
            return i + 1, 0.0
        return i, float(w)


class _Family:
    """The piecewise-linear system along a path, evaluated cheaply at any ``s``.

    The effective arrays of a PLRNN-family system (``A``, ``W``, ``h + C s_in``, ...)
    are linear in ``theta``; so along ``theta0 + s d`` they are
    ``arrays(theta0) + s arrays(d)``, and between snapshots they interpolate linearly.
    """

    def __init__(self, model: Model, path: _Path, inputs):
        self.model, self.path, self.inputs = model, path, inputs
        if path.knots is None:
            base = as_system(model, theta=path.theta0, inputs=inputs)
            dirs = as_system(model, theta=path.d, inputs=inputs)
            self.kind, self.description = base.kind, base.description
            self._a0, self._da = base.arrays, dirs.arrays
            self._knot_arrays = None
        else:
            systems = [as_system(model, theta=t, inputs=inputs) for t in path.thetas]
            self.kind, self.description = systems[0].kind, systems[0].description
            self._knot_arrays = [s.arrays for s in systems]
        self.dim = model.dim

    def at(self, s: float) -> PiecewiseLinearSystem:
        if self._knot_arrays is None:
            arrays = {k: self._a0[k] + s * self._da[k] for k in self._a0}
        else:
            i, w = self.path._segment(s)
            a0 = self._knot_arrays[i]
            if w == 0.0:
                arrays = a0
            else:
                a1 = self._knot_arrays[i + 1]
                arrays = {k: (1.0 - w) * a0[k] + w * a1[k] for k in a0}
        return PiecewiseLinearSystem(self.kind, arrays, self.description)


# ============================================================================ one region sequence at one s
@dataclass
class _Eval:
    """The cycle of a fixed region sequence at one ``s`` (valid or not)."""

    s: float
    ok: bool  # I - Z invertible and the solution finite
    valid: bool  # ok and every point in its claimed region
    points: np.ndarray  # (k, M): z_1 = (I - Z)^{-1} b, z_{j+1} = F_j z_j + c_j
    inside: np.ndarray  # (k, P) bool: point j on the claimed side of boundary u
    pre: np.ndarray  # (k, P) boundary coordinates (pre-activations)
    eig: np.ndarray  # (M,) complex, eigenvalues of Z by decreasing modulus
    n_out: int  # eigenvalues with |lambda| > 1
    det_sign: float  # sign of det(I - Z) (0: singular)


def _preactivations(system: PiecewiseLinearSystem, Z: np.ndarray) -> np.ndarray:
    """Boundary coordinates whose signs give the pattern bits (PLRNN: z; shallow: W2 z + h2 [, W2 z])."""
    a = system.arrays
    if system.kind == "plrnn":
        return Z
    V_ = Z @ a["W2"].T
    if system.kind == "clipped":
        return np.concatenate([V_ + a["h2"], V_], axis=-1)
    return V_ + a["h2"]


def _evaluate(system: PiecewiseLinearSystem, pats: np.ndarray, s: float) -> _Eval:
    """Solve the cycle of the region sequence ``pats`` (k, P) exactly at one parameter value."""
    F, c = system.region(pats)
    k, M = pats.shape[0], system.dim
    Z = np.eye(M)
    b = np.zeros(M)
    for j in range(k):
        Z = F[j] @ Z
        b = F[j] @ b + c[j]
    lam = sorted_eigenvalues(Z)
    n_out = int(np.sum(np.abs(lam) > 1.0))
    IZ = np.eye(M) - Z
    points = np.full((k, M), np.nan)
    with np.errstate(all="ignore"):
        sign, _ = np.linalg.slogdet(IZ) if np.all(np.isfinite(IZ)) else (0.0, 0.0)
        ok = bool(sign != 0.0)
        if ok:
            try:
                points[0] = np.linalg.solve(IZ, b)
            except np.linalg.LinAlgError:
                ok = False
        if ok:
            for j in range(k - 1):
                points[j + 1] = F[j] @ points[j] + c[j]
            ok = bool(np.all(np.isfinite(points)))
        pre = _preactivations(system, points)
        inside = np.where(pats == 1, pre > 0.0, pre <= 0.0) if ok else np.zeros(pats.shape, bool)
    return _Eval(float(s), ok, bool(ok and np.all(inside)), points, inside, pre, lam, n_out, float(sign))


# ============================================================================ tracked objects
@dataclass
class _Obs:
    """An object (cycle) present at one grid value of s."""

    order: int
    patterns: np.ndarray  # (k, P) int8, canonical rotation
    points: np.ndarray  # (k, M)
    eig: np.ndarray  # (M,) complex
    stability: str
    n_out: int
    source: int  # 1: SCYFI, 2: analytic continuation from a neighbouring s


@dataclass
class _Crossing:
    """A located change of one tracked object (stability change, appearance or disappearance)."""

    node: tuple  # (grid index, key) of the object it was found from
    order: int
    lo: float
    hi: float
    change: str  # "appears" | "disappears" | "stability"
    reason: str  # "border" | "infinity" | "eigenvalue"
    valid: _Eval  # evaluation on the side where the object exists with its old signature
    other: _Eval  # evaluation on the other side
    eig: complex
    boundary: tuple[int, int]  # (point j, unit u) meeting the border, (-1, -1) if none
    #: stability classes just below / above a stability crossing (a little outside the bracket)
    classes: tuple[str, str] = ("", "")
    #: key (order, pattern bytes) of the tracked region sequence
    key: tuple = ()

    @property
    def s(self) -> float:
        return 0.5 * (self.lo + self.hi)

    def speed(self) -> float:
        """``|dz/ds|`` estimated over the bracket (0 if unavailable)."""
        if not (self.valid.ok and self.other.ok) or self.hi <= self.lo:
            return 0.0
        return float(np.max(np.abs(self.valid.points - self.other.points))) / (self.hi - self.lo)


def _key(order: int, pats: np.ndarray) -> tuple:
    return (int(order), np.ascontiguousarray(pats, dtype=np.int8).tobytes())


def _stab(e: _Eval) -> str:
    return classify_stability(e.eig, 0.0) if e.ok else ""


def _crossing_eigenvalue(e: _Eval, target: float | None) -> complex:
    """Eigenvalue closest to ``target`` (+1 or -1) or, with ``target=None``, to the unit circle."""
    lam = e.eig
    if lam.size == 0 or not np.all(np.isfinite(lam)):
        return complex(np.nan, np.nan)
    if target is None:
        i = int(np.argmin(np.abs(np.abs(lam) - 1.0)))
    else:
        i = int(np.argmin(np.abs(lam - target)))
    z = complex(lam[i])
    return complex(z.real, abs(z.imag)) if abs(z.imag) > 0 else z


def _scan(
    fam: _Family, node, pats: np.ndarray, order: int, n_out: int, s_from: float, s_to: float, n_probe: int, tol: float
):
    """Follow one region sequence from ``s_from`` towards ``s_to``.

    Returns ``(stability_crossings, terminal)``: every change of the number of
    unstable eigenvalues while the object exists, located by bisection to
    ``tol``, and the crossing where it stops existing (None if it reaches
    ``s_to``), classified as ``"border"`` (a point meets its region boundary)
    or ``"infinity"`` (``det(I - Z)`` changes sign: an eigenvalue passes +1 and
    the cycle escapes to infinity).
    """
    forward = s_to > s_from
    cache: dict[float, _Eval] = {}

    def ev(s: float) -> _Eval:
        if s not in cache:
            cache[s] = _evaluate(fam.at(s), pats, s)
        return cache[s]

    span = (min(s_from, s_to), max(s_from, s_to))
    e0 = ev(s_from)
    cur = e0.n_out if e0.valid else n_out
    crossings: list[_Crossing] = []
    prev = s_from
    for j in range(1, n_probe + 1):
        sp = s_to if j == n_probe else s_from + (s_to - s_from) * j / n_probe
        while True:
            e = ev(sp)
            if e.valid and e.n_out == cur:
                break
            a, b = prev, sp  # a: same signature, b: changed
            while abs(b - a) > tol:
                mid = 0.5 * (a + b)
                if mid == a or mid == b:
                    break
                em = ev(mid)
                if em.valid and em.n_out == cur:
                    a = mid
                else:
                    b = mid
            ea, eb = ev(a), ev(b)
            lo, hi = (a, b) if forward else (b, a)
            if eb.valid:  # the object exists on both sides: an eigenvalue crossed the unit circle
                emid = _evaluate(fam.at(0.5 * (a + b)), pats, 0.5 * (a + b))
                lam = _crossing_eigenvalue(emid if emid.ok else ea, None)
                # classes reported a little away from the crossing (at the bracket ends an
                # eigenvalue may sit on the unit circle to rounding)
                step = 16.0 * tol if forward else -16.0 * tol
                pa = min(max(a - step, span[0]), span[1])
                pb = min(max(b + step, span[0]), span[1])
                cls = (_stab(_evaluate(fam.at(pa), pats, pa)), _stab(_evaluate(fam.at(pb), pats, pb)))
                crossings.append(
                    _Crossing(
                        node,
                        order,
                        lo,
                        hi,
                        "stability",
                        "eigenvalue",
                        ea,
                        eb,
                        lam,
                        (-1, -1),
                        cls if forward else cls[::-1],
                    )
                )
                cur = eb.n_out
                prev = b
                continue
            change = "disappears" if forward else "appears"
            if not (ea.ok and eb.ok) or ea.det_sign * eb.det_sign < 0:
                ref = ea if ea.ok else eb
                term = _Crossing(
                    node, order, lo, hi, change, "infinity", ea, eb, _crossing_eigenvalue(ref, 1.0), (-1, -1)
                )
            else:
                viol = ~eb.inside
                dist = np.where(viol, np.abs(ea.pre), np.inf)
                jj, uu = np.unravel_index(int(np.argmin(dist)), dist.shape)
                term = _Crossing(
                    node, order, lo, hi, change, "border", ea, eb, complex(np.nan, np.nan), (int(jj), int(uu))
                )
            return crossings, term
        prev = sp
    return crossings, None


def _cyclic_distance(P: np.ndarray, Q: np.ndarray) -> float:
    """``min_r max |P - roll(Q, r)|`` over cyclic shifts (P, Q: (k, M) with the same k)."""
    k = P.shape[0]
    return min(float(np.max(np.abs(P - np.roll(Q, r, axis=0)))) for r in range(k))


def _meet_distance(big: np.ndarray, small: np.ndarray) -> float:
    """Distance of a k-cycle from a k2-cycle (k2 divides k) traversed k / k2 times."""
    reps = big.shape[0] // small.shape[0]
    return _cyclic_distance(big, np.tile(small, (reps, 1)))


class _UnionFind:
    def __init__(self):
        self.parent: dict = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def _canonical(pats: np.ndarray) -> np.ndarray | None:
    """Canonical rotation of a pattern sequence, or None if its minimal period is shorter than its length."""
    k = pats.shape[0]
    for r in range(1, k):
        if k % r == 0 and np.array_equal(pats, np.roll(pats, -r, axis=0)):
            return None
    return np.ascontiguousarray(np.roll(pats, -canonical_shift(pats), axis=0))


class _Tracker:
    """Follows every object over every interval of the s grid.

    Work items are ``(region sequence, node, start s, direction)``: the objects at
    both ends of each interval, scanned towards the other end, plus the objects
    discovered at border events.  When a tracked cycle meets a border, the region
    sequence with the colliding bit flipped is the only candidate for the object
    it turns into (beyond the event: persistence) or meets (before the event:
    fold); if that cycle exists it is tracked too, even when it exists at no grid
    value.  Coverage bookkeeping (the s ranges already tracked per sequence, and
    the "walls" where a sequence was found not to exist) keeps every stretch of
    every sequence tracked once.
    """

    def __init__(self, fam, s, sets, n_probe, tol, tol_hyp):
        self.fam, self.s, self.sets = fam, s, sets
        self.n_probe, self.tol, self.tol_hyp = n_probe, tol, tol_hyp
        self.eps = 4.0 * tol
        self.uf = _UnionFind()
        self.stab: list[_Crossing] = []
        self.terms: list[_Crossing] = []
        #: node -> (order, key, first s): grid nodes (i, key) and segment nodes ("seg", n)
        self.node_info: dict = {}
        self.added_behind = False  # an object was added at an already-processed grid value
        self._n_seg = 0
        for i, objs in enumerate(sets):
            for key, ob in objs.items():
                self.node_info[(i, key)] = (ob.order, key, float(s[i]))

    def run(self) -> None:
        for i in range(self.s.size - 1):
            self._interval(i)

    def _grid_node(self, g: int, key, pats, order) -> tuple:
        if key not in self.sets[g]:
            sg = float(self.s[g])
            e = _evaluate(self.fam.at(sg), pats, sg)
            self.sets[g][key] = _continued(e, order, pats, self.tol_hyp)
            self.node_info[(g, key)] = (order, key, sg)
            return (g, key), True
        return (g, key), False

    def _interval(self, i: int) -> None:
        s0, s1 = float(self.s[i]), float(self.s[i + 1])
        ranges: dict = {}  # key -> [(lo, hi, node)] stretches tracked (valid)
        walls: dict = {}  # key -> [s] where the sequence was found invalid
        queue = deque()
        for key, ob in self.sets[i].items():
            queue.append((key, ob.patterns, ob.order, ob.n_out, (i, key), s0, 1))
        for key, ob in self.sets[i + 1].items():
            queue.append((key, ob.patterns, ob.order, ob.n_out, (i + 1, key), s1, -1))
        budget = 100 + 50 * len(queue)
        eps = self.eps
        while queue:
            if budget <= 0:
                warnings.warn(
                    f"bifurcation_path: gave up tracking objects in [{s0:g}, {s1:g}] after too many work items; "
                    "refine s_values there",
                    RuntimeWarning,
                    stacklevel=4,
                )
                break
            budget -= 1
            key, pats, order, n_out, node, start, sgn = queue.popleft()
            rk = ranges.setdefault(key, [])
            wk = walls.setdefault(key, [])
            hit = next((nd for lo, hi, nd in rk if lo - eps <= start <= hi + eps), None)
            if hit is not None:
                self.uf.union(node, hit)
                continue
            end = s1 if sgn > 0 else s0
            target, target_node = end, None
            for lo, hi, nd in rk:
                for p in (lo, hi):
                    if (p - start) * sgn > 0 and abs(p - start) < abs(target - start):
                        target, target_node = p, nd
            for w in wk:
                if (w - start) * sgn > 0 and abs(w - start) < abs(target - start):
                    target, target_node = w, None
            crossings, term = _scan(self.fam, node, pats, order, n_out, start, target, self.n_probe, self.tol)
            for c in crossings:
                c.key = key
            self.stab.extend(crossings)
            stop = term.valid.s if term is not None else target
            rk.append((min(start, stop), max(start, stop), node))
            if term is None:
                if target_node is not None:
                    self.uf.union(node, target_node)
                elif target == end:
                    g = i + 1 if sgn > 0 else i
                    gnode, new = self._grid_node(g, key, pats, order)
                    self.uf.union(node, gnode)
                    if new and g == i:
                        self.added_behind = True
                continue
            term.key = key
            wk.append(term.other.s)
            self.terms.append(term)
            if term.reason != "border":
                continue
            # the region sequence on the other side of the border: persistence or fold partner
            j, u = term.boundary
            flipped = pats.copy()
            flipped[j, u] ^= 1
            q = _canonical(flipped)
            if q is None:
                continue
            qkey = _key(order, q)
            for base, back, direction in ((term.other.s, term.valid.s, sgn), (term.valid.s, term.other.s, -sgn)):
                # just off the event on that side (a bracket end may lie exactly on the border)
                away = (base - back) if base != back else direction * self.tol
                e = None
                for mult in (0.0, 1.0, 4.0, 16.0):
                    x = min(max(base + mult * away, s0), s1)
                    e = _evaluate(self.fam.at(x), q, x)
                    if e.valid:
                        break
                if not e.valid:
                    continue
                self._n_seg += 1
                seg = ("seg", self._n_seg)
                self.node_info[seg] = (order, qkey, x)
                # its own crossing at this event (across the final bracket), then the rest of its stretch
                cr, qterm = _scan(self.fam, seg, q, order, e.n_out, x, back, 1, self.tol)
                for c in cr:
                    c.key = qkey
                self.stab.extend(cr)
                if qterm is not None:
                    qterm.key = qkey
                    self.terms.append(qterm)
                queue.append((qkey, q, order, e.n_out, seg, x, direction))


def _dedupe(crossings: list[_Crossing], uf: _UnionFind, tol: float) -> list[_Crossing]:
    """Drop repeated crossings of one sequence at one s (same change), uniting their objects."""
    out: list[_Crossing] = []
    for c in sorted(crossings, key=lambda c: c.s):
        dup = next(
            (o for o in reversed(out) if o.key == c.key and o.change == c.change and abs(o.s - c.s) <= tol), None
        )
        if dup is None:
            out.append(c)
        else:
            uf.union(dup.node, c.node)
    return out


def _branches(uf: _UnionFind, sets, node_info: dict) -> tuple[list[list], dict]:
    """Objects as lists of nodes, ordered by first appearance; node -> object index."""
    comps: dict = {}
    for nd in node_info:
        comps.setdefault(uf.find(nd), []).append(nd)
    branches: list[list] = []
    for nodes in comps.values():
        grid = sorted((nd for nd in nodes if nd[0] != "seg"), key=lambda nd: nd[0])
        segs = [nd for nd in nodes if nd[0] == "seg"]
        cur: list = []
        extra: list = []
        seen = set()
        for nd in grid:
            (extra if nd[0] in seen else cur).append(nd)
            seen.add(nd[0])
        branches.append(cur + segs if cur else segs)
        branches.extend([[nd] for nd in extra])

    def first(b):
        nd = min(b, key=lambda nd: node_info[nd][2])
        order, key, s0 = node_info[nd]
        return (s0, order, key[1])

    branches.sort(key=first)
    branch_of = {nd: bi for bi, b in enumerate(branches) for nd in b}
    return branches, branch_of


def _scyfi_objects(model, theta, max_order, inputs, kw, tol_hyp) -> dict:
    ds = scyfi(model, max_order, theta=theta, inputs=inputs, **kw)
    out = {}
    has_d2 = "patterns_d2" in ds
    for i in range(ds.sizes["cycle"]):
        k = int(ds.order.values[i])
        pats = ds.patterns.values[i, :k]
        if has_d2:
            pats = np.concatenate([pats, ds.patterns_d2.values[i, :k]], axis=1)
        pats = np.ascontiguousarray(pats, dtype=np.int8)
        lam = ds.eig_real.values[i] + 1j * ds.eig_imag.values[i]
        out[_key(k, pats)] = _Obs(
            k,
            pats,
            ds.points.values[i, :k].copy(),
            lam,
            str(ds.stability.values[i]),
            int(np.sum(np.abs(lam) > 1.0)),
            1,
        )
    return out


def _continued(e: _Eval, order: int, pats: np.ndarray, tol_hyp: float) -> _Obs:
    return _Obs(order, pats, e.points.copy(), e.eig.copy(), classify_stability(e.eig, tol_hyp), e.n_out, 2)


def _check_scyfi_kwargs(scyfi_kwargs) -> dict:
    if scyfi_kwargs is None:
        return {}
    if not isinstance(scyfi_kwargs, Mapping):
        raise TypeError(
            f"scyfi_kwargs must be a dict of keyword arguments for scyfi; got {type(scyfi_kwargs).__name__}"
        )
    bad = {"theta", "inputs", "max_order", "model_or_params"} & set(scyfi_kwargs)
    if bad:
        raise ValueError(f"scyfi_kwargs must not contain {sorted(bad)}: pass them as arguments of this function")
    return dict(scyfi_kwargs)


def _grid_objects(model, fam: _Family, s: np.ndarray, thetas: np.ndarray, max_order, inputs, kw, tol_hyp) -> list:
    """SCYFI's objects at every grid value, completed by the objects that exist at a neighbour.

    An object found at ``s_i`` is solved (same region sequence) at ``s_{i +- 1}`` and
    added there if it exists, repeatedly, so SCYFI's misses are not read as bifurcations.
    """
    n = s.size
    sets = [_scyfi_objects(model, thetas[i], max_order, inputs, kw, tol_hyp) for i in range(n)]
    for _ in range(4):
        changed = False
        for order_ in (range(n - 1), range(n - 1, 0, -1)):
            for i in order_:
                j = i + 1 if order_.step > 0 else i - 1
                sys_j = None
                for key, ob in list(sets[i].items()):
                    if key in sets[j]:
                        continue
                    if sys_j is None:
                        sys_j = fam.at(float(s[j]))
                    e = _evaluate(sys_j, ob.patterns, float(s[j]))
                    if e.valid:
                        sets[j][key] = _continued(e, ob.order, ob.patterns, tol_hyp)
                        changed = True
        if not changed:
            break

    return sets


def _meet_tol(a: _Crossing, b: _Crossing, meet_rtol: float) -> float:
    """Distance within which the points of two objects at (nearly) the same event "meet"."""
    scale = max(1.0, float(np.max(np.abs(a.valid.points))), float(np.max(np.abs(b.valid.points))))
    slack = (a.speed() + b.speed()) * (abs(a.s - b.s) + (a.hi - a.lo) + (b.hi - b.lo))
    return meet_rtol * scale + 2.0 * slack


def _pair_terminals(terms: list[_Crossing], uf: _UnionFind, coincide: float, meet_rtol: float):
    """Pair border appearances/disappearances of equal order at one s whose points meet.

    Returns ``(pairs, paired)``: ``("fold", a, b)`` for two disappearances (or two
    appearances), ``("border collision", disappearing, appearing)`` for an object
    that persists into another region sequence (its two nodes are united); and the
    ids of the paired crossings.  Greedy by distance.
    """
    border = [t for t in terms if t.reason == "border" and t.valid.ok]
    cands = []
    for x in range(len(border)):
        for y in range(x + 1, len(border)):
            a, b = border[x], border[y]
            if a.order != b.order or a.key == b.key or abs(a.s - b.s) > coincide:
                continue
            dist = _cyclic_distance(a.valid.points, b.valid.points)
            if dist <= _meet_tol(a, b, meet_rtol):
                cands.append((dist, x, y))
    cands.sort()
    used: set[int] = set()
    pairs = []
    for _, x, y in cands:
        if x in used or y in used:
            continue
        used.update((x, y))
        a, b = border[x], border[y]
        if a.change != b.change:
            dis, app = (a, b) if a.change == "disappears" else (b, a)
            uf.union(dis.node, app.node)
            pairs.append(("border collision", dis, app))
        else:
            pairs.append(("fold", a, b))
    paired = {id(border[x]) for x in used}

    return pairs, paired


def _event_records(pairs, stab, terms, paired, branch_of, coincide: float, meet_rtol: float) -> list[dict]:
    """One record per event (see :func:`bifurcation_path` for the fields), sorted by s."""
    recs: list[dict] = []

    def rec(
        kind,
        change,
        c: _Crossing,
        *,
        before=-1,
        after=-1,
        partner=-1,
        st_before="",
        st_after="",
        st_partner="",
        lo=None,
        hi=None,
        s_=None,
    ):
        j, u = c.boundary
        pt = c.valid.points[j] if j >= 0 else c.valid.points[0]
        recs.append(
            dict(
                s=c.s if s_ is None else s_,
                s_lo=c.lo if lo is None else lo,
                s_hi=c.hi if hi is None else hi,
                kind=kind,
                change=change,
                order=c.order,
                object_before=before,
                object_after=after,
                partner=partner,
                stability_before=st_before,
                stability_after=st_after,
                partner_stability=st_partner,
                eig_real=c.eig.real,
                eig_imag=c.eig.imag,
                boundary_point=j,
                boundary_unit=u,
                point=pt,
            )
        )

    for kind, a, b in pairs:
        lo, hi, s_ = min(a.lo, b.lo), max(a.hi, b.hi), 0.5 * (a.s + b.s)
        if kind == "border collision":
            bid = branch_of[a.node]
            rec(
                kind,
                "persists",
                a,
                before=bid,
                after=branch_of[b.node],
                st_before=_stab(a.valid),
                st_after=_stab(b.valid),
                lo=lo,
                hi=hi,
                s_=s_,
            )
        else:
            p, q = (a, b) if a.valid.n_out <= b.valid.n_out else (b, a)
            if p.change == "disappears":
                rec(
                    kind,
                    "disappears",
                    p,
                    before=branch_of[p.node],
                    partner=branch_of[q.node],
                    st_before=_stab(p.valid),
                    st_partner=_stab(q.valid),
                    lo=lo,
                    hi=hi,
                    s_=s_,
                )
            else:
                rec(
                    kind,
                    "appears",
                    p,
                    after=branch_of[p.node],
                    partner=branch_of[q.node],
                    st_after=_stab(p.valid),
                    st_partner=_stab(q.valid),
                    lo=lo,
                    hi=hi,
                    s_=s_,
                )

    stab_kinds = []
    for c in stab:
        lam = c.eig
        if not np.isfinite(lam.real):
            kind = "other"
        elif abs(lam.imag) > _COMPLEX_RTOL * abs(lam):
            kind = "Neimark-Sacker"
        elif lam.real < 0:
            kind = "flip"
        else:
            kind = "other"
        stab_kinds.append(kind)
        bid = branch_of[c.node]
        rec(kind, "stability", c, before=bid, after=bid, st_before=c.classes[0], st_after=c.classes[1])

    for t in terms:
        if id(t) in paired:
            continue
        bid = branch_of[t.node]
        before, after = (bid, -1) if t.change == "disappears" else (-1, bid)
        st = _stab(t.valid) if t.valid.ok else ""
        sb, sa = (st, "") if t.change == "disappears" else ("", st)
        if t.reason == "infinity":
            rec("degenerate transcritical", t.change, t, before=before, after=after, st_before=sb, st_after=sa)
            continue
        partner, kind, st_p = -1, "border collision", ""
        if t.order % 2 == 0:  # the period-doubled cycle of a flip
            for c, kd in zip(stab, stab_kinds):
                if kd == "flip" and c.order == t.order // 2 and abs(c.s - t.s) <= coincide:
                    # the k-cycle's class on the side where the 2k-cycle exists
                    side = c.classes[0] if t.change == "disappears" else c.classes[1]
                    partner, kind, st_p = branch_of[c.node], "flip", side
                    break
        if partner < 0 and t.valid.ok:  # a lower-order object met at the border
            best = math.inf
            for o in terms:
                if o is t or o.order >= t.order or t.order % o.order or abs(o.s - t.s) > coincide or not o.valid.ok:
                    continue
                dist = _meet_distance(t.valid.points, o.valid.points)
                if dist <= _meet_tol(t, o, meet_rtol) and dist < best:
                    best, partner, st_p = dist, branch_of[o.node], _stab(o.valid)
        rec(kind, t.change, t, before=before, after=after, partner=partner, st_before=sb, st_after=sa, st_partner=st_p)

    recs.sort(key=lambda r: (r["s"], r["order"], r["kind"]))

    return recs


# ============================================================================ the path analysis
def bifurcation_path(
    model,
    theta0: np.ndarray | None = None,
    direction=None,
    s_values=None,
    *,
    max_order: int,
    history: xr.Dataset | None = None,
    inputs: np.ndarray | None = None,
    scyfi_kwargs: dict | None = None,
    locate_tol: float = 1e-8,
    n_probe: int = 4,
    meet_rtol: float = 1e-6,
) -> tuple[xr.Dataset, xr.Dataset]:
    r"""Fixed points, k-cycles and their bifurcations along a one-parameter path.

    The path is :math:`\theta(s) = \theta_0 + s\,d` (``direction`` a name, a
    ``{name: coefficient}`` mapping or a vector; see :func:`parameter_direction`),
    or, with ``history``, the training run: ``s`` is the epoch and
    :math:`\theta(s)` the parameter snapshot at that epoch, interpolated linearly
    between consecutive snapshots (the located events lie on those segments).

    At every ``s`` in ``s_values`` SCYFI finds the cycles of order 1..``max_order``.
    Objects are followed between neighbouring values *exactly*: for a fixed region
    sequence the cycle is :math:`z_1(s) = (I - Z(s))^{-1} b(s)` with
    :math:`Z = F_k \cdots F_1`.  Each change is located by bisection on ``s`` to
    ``locate_tol`` on the sign of a continuous quantity of that sequence: a
    region margin :math:`\pm z_{j,i}` (border), :math:`\det(I - Z)` (an
    eigenvalue through +1, the cycle escaping to infinity), or
    :math:`|\lambda| - 1` (an eigenvalue crossing the unit circle).  See the module
    docstring for the classification into folds, degenerate transcritical
    bifurcations, border collisions, flips and Neimark-Sacker bifurcations.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, dict or tuple
        A piecewise-linear model, or raw arrays ``{"A", "W", "h"}`` / ``(A, W, h)``
        (then the model is ``PLRNN(M, full_W=True)`` with parameter names
        ``A[i]``, ``W[i,j]``, ``h[i]``) or shallow-PLRNN arrays, as for
        :func:`plrnn_numba.dynamics.scyfi`.
    theta0 : (P,) array, optional
        Start of the path (required with a model unless ``history`` is given).
    direction : str, mapping or (P,) array, optional
        Direction ``d`` of the path (required unless ``history`` is given).
    s_values : (n,) array, optional
        Strictly increasing path positions where SCYFI runs (required unless
        ``history`` is given).
    max_order : int
        Largest cycle order (>= 1).
    history : xarray.Dataset, optional
        A training history (``theta_snapshots`` with dims (snapshot, param) and
        ``snapshot_epoch``); then ``theta0``, ``direction`` and ``s_values`` must be
        None and ``s`` is the epoch.  Select snapshots with ``history.isel(snapshot=...)``.
    inputs : (K,) array, optional
        Constant input of the map (see :func:`~plrnn_numba.dynamics.scyfi`).
    scyfi_kwargs : dict, optional
        Further keyword arguments of :func:`~plrnn_numba.dynamics.scyfi` (``seed``,
        ``n_outer``, ``n_inner``, ``tol_hyperbolic``, ...).
    locate_tol : float
        Width of the final bisection bracket of each event in ``s`` (default 1e-8).
    n_probe : int
        Evaluations per interval and object before bisection: changes that undo
        themselves between two probes are missed.
    meet_rtol : float
        Objects "meet" (fold, persistence) when their points agree, up to a cyclic
        shift, within ``meet_rtol * max(1, |z|)`` plus the distance the points move
        over the bisection brackets.

    Returns
    -------
    objects : xarray.Dataset
        Dims ``s``, ``object`` (an object keeps its index along the path, through
        border collisions too; an object found only between two grid values has
        ``exists = 0`` at every ``s`` but appears in ``events``), ``point`` (max_order), ``state``, ``eig``, ``bit``,
        ``order``, ``param``.  Per (s, object): ``exists``, ``stability``,
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
        unit whose boundary it meets; -1 if none) and ``point`` (event, state):
        the cycle point involved at the event.

    Raises
    ------
    TypeError, ValueError
        Bad model or parameters, unknown parameter name, ``s_values`` not a 1-D
        strictly increasing finite array, ``max_order < 1`` (messages name the argument).

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
    >>> theta0 = m.pack(A=[0.5], W=[[-1.4]], h=[0.3])           # a_R = -0.9
    >>> objects, events = bifurcation_path(m, theta0, {"W[0,0]": -1.0}, np.linspace(0, 0.2, 5), max_order=2)
    >>> [(round(float(s), 6), str(k)) for s, k in zip(events.s.values, events.kind.values)]
    [(0.1, 'flip'), (0.1, 'flip')]
    """
    max_order = check_order(max_order, "max_order")
    kw = _check_scyfi_kwargs(scyfi_kwargs)
    locate_tol = V.finite_float(locate_tol, "locate_tol", low=0.0)
    if locate_tol <= 0.0:
        raise ValueError("locate_tol must be > 0")
    n_probe = check_order(n_probe, "n_probe")
    meet_rtol = V.finite_float(meet_rtol, "meet_rtol", low=0.0)
    tol_hyp = float(kw.get("tol_hyperbolic", 1e-8))

    if history is not None:
        if theta0 is not None or direction is not None or s_values is not None:
            raise ValueError("with history=..., leave theta0, direction and s_values unset (s is the epoch)")
        model, _ = _as_model(model, None)
        s, snaps = _history_path(model, history)
        path = _Path(knots=s, thetas=snaps)
        label = "training epoch"
        d = None
    else:
        model, theta0 = _as_model(model, theta0)
        if theta0 is None:
            raise ValueError(f"theta0 is required: pass the parameter vector of {model!r} (or history=...)")
        if direction is None:
            raise ValueError(
                "direction is required: a parameter name such as 'A[0]', a {name: coef} mapping or a vector"
            )
        if s_values is None:
            raise ValueError("s_values is required: the path positions where SCYFI runs")
        d, label = parameter_direction(model, direction)
        s = _check_s_values(s_values)
        path = _Path(theta0=theta0, d=d)
    if not isinstance(model, (PLRNN, ShallowPLRNN)):
        raise TypeError(f"model must be a piecewise-linear model (PLRNN or ShallowPLRNN); got {model.name}")

    t_start = time.perf_counter()
    fam = _Family(model, path, inputs)
    thetas = np.stack([path.theta(float(x)) for x in s])

    # 1. SCYFI at every grid value, 2. completed by analytic continuation to the neighbours
    sets = _grid_objects(model, fam, s, thetas, max_order, inputs, kw, tol_hyp)
    # 3. follow every object over each interval (discovering objects that live between grid values)
    for _ in range(4):
        tr = _Tracker(fam, s, sets, n_probe, locate_tol, tol_hyp)
        tr.run()
        if not tr.added_behind:
            break
    uf, stab, terms = tr.uf, tr.stab, tr.terms
    coincide = 4.0 * locate_tol
    stab = _dedupe(stab, uf, coincide)
    terms = _dedupe(terms, uf, coincide)

    # 4. pair appearances/disappearances: folds and persistent border collisions
    pairs, paired = _pair_terminals(terms, uf, coincide, meet_rtol)

    # 5. objects: union-find components; a second grid node at the same s starts a new object
    branches, branch_of = _branches(uf, sets, tr.node_info)

    # 6. events
    recs = _event_records(pairs, stab, terms, paired, branch_of, coincide, meet_rtol)

    # 7. datasets
    arguments = {
        "model": model.describe(),
        "max_order": max_order,
        "direction": None if d is None else (label if label != "direction" else d.tolist()),
        "theta0": None if theta0 is None else (theta0.tolist() if theta0.size <= 4096 else "omitted (large)"),
        "s_values": s.tolist(),
        "history": None if history is None else str(history.attrs.get("created", "training history")),
        "inputs": None if inputs is None else np.asarray(inputs, dtype=float).tolist(),
        "scyfi_kwargs": {k: (v if not callable(v) else repr(v)) for k, v in kw.items()},
        "locate_tol": locate_tol,
        "n_probe": n_probe,
        "meet_rtol": meet_rtol,
    }
    attrs = io.provenance("plrnn_numba.dynamics.bifurcation_path", arguments, seeds=kw.get("seed", 0))
    attrs.update(
        {
            "path": "training snapshots, linear between snapshot epochs" if history is not None else "theta0 + s * d",
            "direction_label": label,
            "max_order": max_order,
            "locate_tol": locate_tol,
            "seconds": time.perf_counter() - t_start,
        }
    )
    s_attrs = {
        "units": "epoch" if history is not None else "1",
        "long_name": "training epoch"
        if history is not None
        else f"path parameter s (theta = theta0 + s d, d: {label})",
    }
    objects = _objects_dataset(model, fam, s, thetas, d, sets, branches, tr.node_info, max_order, s_attrs, attrs)
    events = _events_dataset(
        recs,
        model.dim,
        s_attrs,
        {**attrs, "title": "Bifurcations along the parameter path", "event_kinds": ", ".join(EVENT_KINDS)},
    )
    return objects, events


def bifurcations_along_training(
    model, history: xr.Dataset, *, max_order: int, **kwargs
) -> tuple[xr.Dataset, xr.Dataset]:
    """Bifurcations during training: :func:`bifurcation_path` along ``history``'s parameter snapshots.

    ``s`` is the epoch; between snapshot epochs the parameters are interpolated
    linearly.  ``kwargs`` go to :func:`bifurcation_path` (``inputs``,
    ``scyfi_kwargs``, ``locate_tol``, ...).
    """
    return bifurcation_path(model, max_order=max_order, history=history, **kwargs)


def _objects_dataset(model, fam, s, thetas, d, sets, branches, node_info, max_order, s_attrs, attrs) -> xr.Dataset:
    n, nb, M = s.size, len(branches), model.dim
    P = fam.at(float(s[0])).n_pattern
    exists = np.zeros((n, nb), np.int8)
    source = np.zeros((n, nb), np.int8)
    stability = np.full((n, nb), "", dtype=object)
    n_unst = np.full((n, nb), -1, np.int64)
    rho = np.full((n, nb), np.nan)
    points = np.full((n, nb, max_order, M), np.nan)
    eig_re = np.full((n, nb, M), np.nan)
    eig_im = np.full((n, nb, M), np.nan)
    patterns = np.full((n, nb, max_order, P), -1, np.int8)
    order = np.zeros(nb, np.int64)
    counts = np.zeros((n, max_order, 4), np.int64)
    for bi, nodes in enumerate(branches):
        order[bi] = node_info[nodes[0]][0]
        for nd in nodes:
            if nd[0] == "seg":
                continue
            i, key = nd
            ob = sets[i][key]
            k = ob.order
            order[bi] = k
            exists[i, bi] = 1
            source[i, bi] = ob.source
            stability[i, bi] = ob.stability
            n_unst[i, bi] = ob.n_out
            rho[i, bi] = float(np.max(np.abs(ob.eig)))
            points[i, bi, :k] = ob.points
            eig_re[i, bi] = ob.eig.real
            eig_im[i, bi] = ob.eig.imag
            patterns[i, bi, :k] = ob.patterns
            counts[i, k - 1, _GROUP_OF.get(ob.stability, 3)] += 1
    stability = stability.astype(str)
    names = np.asarray(model.param_names(), dtype=str)
    u1 = {"units": "1"}
    data_vars = {
        "exists": (("s", "object"), exists, {**u1, "long_name": "1 if the object exists at s"}),
        "object_order": (("object",), order, {**u1, "long_name": "cycle order k of the object"}),
        "stability": (
            ("s", "object"),
            stability,
            {**u1, "long_name": "stability class (empty where the object does not exist)"},
        ),
        "n_unstable_eig": (
            ("s", "object"),
            n_unst,
            {**u1, "long_name": "eigenvalues of the cycle Jacobian with |lambda| > 1 (-1: absent)"},
        ),
        "spectral_radius": (
            ("s", "object"),
            rho,
            {**u1, "long_name": "largest eigenvalue modulus of the cycle Jacobian F_k...F_1"},
        ),
        "first_point": (
            ("s", "object", "state"),
            points[:, :, 0],
            {**u1, "long_name": "first cycle point z_1 (canonical rotation)"},
        ),
        "points": (
            ("s", "object", "point", "state"),
            points,
            {**u1, "long_name": "cycle points z_1..z_k (NaN beyond k)"},
        ),
        "eig_real": (
            ("s", "object", "eig"),
            eig_re,
            {**u1, "long_name": "real part of the cycle-Jacobian eigenvalues"},
        ),
        "eig_imag": (
            ("s", "object", "eig"),
            eig_im,
            {**u1, "long_name": "imaginary part of the cycle-Jacobian eigenvalues"},
        ),
        "patterns": (
            ("s", "object", "point", "bit"),
            patterns,
            {**u1, "long_name": "region pattern bits of each cycle point (-1 beyond k or absent)"},
        ),
        "source": (
            ("s", "object"),
            source,
            {**u1, "long_name": "how the object was found: 1 SCYFI, 2 analytic continuation, 0 absent"},
        ),
        "n_cycles": (("s", "order"), counts.sum(axis=2), {**u1, "long_name": "number of cycles of each order"}),
        "n_stable": (("s", "order"), counts[:, :, 0], {**u1, "long_name": "number of stable cycles of each order"}),
        "n_saddle": (("s", "order"), counts[:, :, 1], {**u1, "long_name": "number of saddle cycles of each order"}),
        "n_unstable": (
            ("s", "order"),
            counts[:, :, 2],
            {**u1, "long_name": "number of fully unstable cycles of each order"},
        ),
        "theta": (("s", "param"), thetas, {**u1, "long_name": "model parameters theta(s)"}),
    }
    if d is not None:
        data_vars["direction"] = (("param",), d, {**u1, "long_name": "direction d of the path theta0 + s d"})
    coords = {
        "s": ("s", s, s_attrs),
        "object": ("object", np.arange(nb, dtype=np.int64), {**u1, "long_name": "tracked object index"}),
        "point": (
            "point",
            np.arange(max_order, dtype=np.int64),
            {**u1, "long_name": "index of the point in its cycle"},
        ),
        "state": ("state", np.arange(M, dtype=np.int64), {**u1, "long_name": "latent state component"}),
        "eig": ("eig", np.arange(M, dtype=np.int64), {**u1, "long_name": "eigenvalue index (decreasing modulus)"}),
        "bit": (
            "bit",
            np.arange(P, dtype=np.int64),
            {**u1, "long_name": "pattern bit (PLRNN: unit; clipped shallow: D1 bits then D2 bits)"},
        ),
        "order": ("order", np.arange(1, max_order + 1, dtype=np.int64), {**u1, "long_name": "cycle order"}),
        "param": ("param", names, {"long_name": "parameter name (entry of theta)"}),
    }
    return xr.Dataset(
        data_vars, coords, {**attrs, "title": "Objects (fixed points and cycles) along the parameter path"}
    )


def _events_dataset(recs, M, s_attrs, attrs) -> xr.Dataset:
    ne = len(recs)

    def col(name, dtype):
        return np.array([r[name] for r in recs], dtype=dtype) if ne else np.zeros(0, dtype=dtype)

    u1 = {"units": "1"}
    su = {"units": s_attrs["units"]}
    pts = np.array([r["point"] for r in recs], dtype=float).reshape(ne, M)
    data_vars = {
        "s_lo": (("event",), col("s_lo", float), {**su, "long_name": "lower end of the final bisection bracket"}),
        "s_hi": (("event",), col("s_hi", float), {**su, "long_name": "upper end of the final bisection bracket"}),
        "kind": (
            ("event",),
            col("kind", str),
            {**u1, "long_name": "bifurcation kind", "kinds": ", ".join(EVENT_KINDS)},
        ),
        "change": (
            ("event",),
            col("change", str),
            {**u1, "long_name": "what happens as s increases: appears, disappears, persists, stability"},
        ),
        "order": (("event",), col("order", np.int64), {**u1, "long_name": "cycle order of the object"}),
        "object_before": (
            ("event",),
            col("object_before", np.int64),
            {**u1, "long_name": "object index below the event (-1: none)"},
        ),
        "object_after": (
            ("event",),
            col("object_after", np.int64),
            {**u1, "long_name": "object index above the event (-1: none)"},
        ),
        "partner": (
            ("event",),
            col("partner", np.int64),
            {**u1, "long_name": "other object involved (fold partner, flip parent, object met; -1: none)"},
        ),
        "stability_before": (
            ("event",),
            col("stability_before", str),
            {**u1, "long_name": "stability below the event"},
        ),
        "stability_after": (("event",), col("stability_after", str), {**u1, "long_name": "stability above the event"}),
        "partner_stability": (
            ("event",),
            col("partner_stability", str),
            {**u1, "long_name": "stability of the partner object at the event"},
        ),
        "eig_real": (
            ("event",),
            col("eig_real", float),
            {**u1, "long_name": "real part of the eigenvalue at the crossing (NaN for border events)"},
        ),
        "eig_imag": (
            ("event",),
            col("eig_imag", float),
            {**u1, "long_name": "imaginary part of the eigenvalue at the crossing (>= 0)"},
        ),
        "boundary_point": (
            ("event",),
            col("boundary_point", np.int64),
            {**u1, "long_name": "index of the cycle point that meets a region boundary (-1: none)"},
        ),
        "boundary_unit": (
            ("event",),
            col("boundary_unit", np.int64),
            {**u1, "long_name": "pattern bit (unit i: boundary z_i = 0) met at the event (-1: none)"},
        ),
        "point": (("event", "state"), pts, {**u1, "long_name": "the cycle point involved, at the event"}),
    }
    coords = {
        "event": ("event", np.arange(ne, dtype=np.int64), {**u1, "long_name": "event index (sorted by s)"}),
        "s": ("event", col("s", float), {**s_attrs, "long_name": "location of the event: " + s_attrs["long_name"]}),
        "state": ("state", np.arange(M, dtype=np.int64), {**u1, "long_name": "latent state component"}),
    }
    return xr.Dataset(data_vars, coords, attrs)


# ============================================================================ 2-D grids
def cycle_signature(model, theta, max_order: int, *, inputs=None, scyfi_kwargs: dict | None = None) -> np.ndarray:
    """Counts of the cycles of each order by stability group at one parameter point.

    Parameters
    ----------
    model, theta
        A piecewise-linear model and its parameters (or raw arrays and ``theta=None``).
    max_order : int
        Largest cycle order.
    inputs, scyfi_kwargs
        As for :func:`bifurcation_path`.

    Returns
    -------
    (max_order, 4) int64 array
        ``counts[k - 1, g]``: cycles of order k in group g of :data:`STABILITY_GROUPS`
        (stable, saddle, unstable, non-hyperbolic).
    """
    max_order = check_order(max_order, "max_order")
    kw = _check_scyfi_kwargs(scyfi_kwargs)
    ds = scyfi(model, max_order, theta=theta, inputs=inputs, **kw)
    counts = np.zeros((max_order, len(STABILITY_GROUPS)), np.int64)
    for k, st in zip(ds.order.values, ds.stability.values):
        counts[int(k) - 1, _GROUP_OF[str(st)]] += 1
    return counts


def _grid_axis(model, theta0, param, values, name):
    vals = _check_s_values(values, name)
    d, label = parameter_direction(model, param)
    absolute = isinstance(param, str)
    if absolute:
        idx = int(np.flatnonzero(d)[0])
        offsets = vals - theta0[idx]
    else:
        offsets = vals
    return vals, offsets, d, label, absolute


def _sanitise(label: str) -> str:
    out = "".join(ch if ch.isalnum() else "_" for ch in label).strip("_")
    while "__" in out:
        out = out.replace("__", "_")
    return out or "param"


def bifurcation_grid(
    model,
    theta0,
    param_x,
    values_x,
    param_y,
    values_y,
    *,
    max_order: int,
    inputs=None,
    scyfi_kwargs: dict | None = None,
    progress: bool = False,
    backend: str = "cpu",
    n_threads: int | None = None,
) -> xr.Dataset:
    r"""Cycle counts and stability signatures over a 2-D parameter grid (bifurcation manifolds).

    At every grid point :math:`\theta = \theta_0 + (x - x_0) e_x + (y - y_0) e_y`
    (for parameter names: ``x``, ``y`` are the parameter *values*) or
    :math:`\theta = \theta_0 + x\,d_x + y\,d_y` (for direction vectors/mappings:
    offsets along them), SCYFI counts the cycles of each order 1..``max_order`` by
    stability group (:func:`cycle_signature`).  Cells whose signature differs from
    a 4-neighbour are marked: the bifurcation manifolds pass between them.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, dict or tuple
        As for :func:`bifurcation_path`.
    theta0 : (P,) array or None
        Base parameters (None with raw arrays).
    param_x, param_y : str, mapping or (P,) array
        The two parameters (names such as ``"A[0]"``, ``"W[0,1]"``) or directions.
    values_x, values_y : 1-D arrays
        Strictly increasing grid values.
    max_order : int
        Largest cycle order.
    inputs, scyfi_kwargs
        As for :func:`bifurcation_path`.
    progress : bool
        Show a progress bar (tqdm; ``backend="cpu"`` only).
    backend : {"cpu", "parallel", "cuda", "auto"}
        ``"cpu"``: one :func:`scyfi` call per grid point.  ``"parallel"`` /
        ``"cuda"``: every (point, order) search at once in batches on numba's
        threads or the GPU (:func:`~plrnn_numba.dynamics.search_many`); the
        same candidate streams, so the same cycles as ``"cpu"``.  ``"auto"``:
        the GPU when present and the grid is large enough, else ``"parallel"``.
    n_threads : int, optional
        Threads for ``"parallel"``.

    Returns
    -------
    xarray.Dataset
        Dims ``y``, ``x``, ``order`` (coordinates ``x``, ``y`` carry the parameter
        names in their ``parameter`` attribute, and aliases named after the
        parameters, e.g. ``A_0``).  ``n_cycles``, ``n_stable``, ``n_saddle``,
        ``n_unstable``, ``n_nonhyperbolic`` (y, x, order); ``signature_id`` (y, x):
        index of the cell's signature in ``signature_table`` (signature, order,
        group); ``lowest_stable_order`` (y, x; 0 if no stable cycle up to
        max_order); ``boundary`` (y, x): 1 where the signature differs from a
        neighbour; ``boundary_order`` (y, x, order): the same per order;
        ``seconds`` (y, x); ``theta0`` (param).
    """
    max_order = check_order(max_order, "max_order")
    kw = _check_scyfi_kwargs(scyfi_kwargs)
    model, theta0 = _as_model(model, theta0)
    if theta0 is None:
        raise ValueError(f"theta0 is required: pass the parameter vector of {model!r}")
    if not isinstance(model, (PLRNN, ShallowPLRNN)):
        raise TypeError(f"model must be a piecewise-linear model (PLRNN or ShallowPLRNN); got {model.name}")
    xv, xo, dx, lx, absx = _grid_axis(model, theta0, param_x, values_x, "values_x")
    yv, yo, dy, ly, absy = _grid_axis(model, theta0, param_y, values_y, "values_y")
    if np.allclose(dx / np.linalg.norm(dx), dy / np.linalg.norm(dy)):
        raise ValueError(f"param_x and param_y must be different parameters/directions; got {lx!r} twice")
    ny, nx = yv.size, xv.size
    G = len(STABILITY_GROUPS)
    sig = np.zeros((ny, nx, max_order, G), np.int64)
    secs = np.zeros((ny, nx))
    it = [(iy, ix) for iy in range(ny) for ix in range(nx)]
    system0 = as_system(model, theta=theta0, inputs=inputs)  # validates the inputs once
    budget = sum(int(np.prod(_Settings(**kw).counters(k, system0.n_pattern))) for k in range(1, max_order + 1))
    be = resolve_backend(backend, dim=system0.dim, work=float(len(it)) * budget * system0.dim**3,
                         batched_cpu=len(it) > 1)
    t_start = time.perf_counter()
    if be == "cpu":
        if progress:
            from tqdm.auto import tqdm

            it = tqdm(it, desc="bifurcation grid", unit="point")
        for iy, ix in it:
            t0 = time.perf_counter()
            theta = theta0 + xo[ix] * dx + yo[iy] * dy
            sig[iy, ix] = cycle_signature(model, theta, max_order, inputs=inputs, scyfi_kwargs=kw)
            secs[iy, ix] = time.perf_counter() - t0
    else:
        systems = [as_system(model, theta=theta0 + xo[ix] * dx + yo[iy] * dy, inputs=inputs) for iy, ix in it]
        found, _ = search_many(systems, max_order, backend=be, n_threads=n_threads, **kw)
        for (iy, ix), cyc in zip(it, found):
            for c in cyc:
                sig[iy, ix, c.order - 1, _GROUP_OF[c.stability]] += 1
        # one batch for the whole grid: the time per point is the mean
        secs[:] = (time.perf_counter() - t_start) / len(it)

    flat = sig.reshape(ny * nx, -1)
    table, sig_id = np.unique(flat, axis=0, return_inverse=True)
    sig_id = sig_id.reshape(ny, nx)
    boundary = _boundary_mask(sig_id)
    b_order = np.zeros((ny, nx, max_order), np.int8)
    for k in range(max_order):
        _, idk = np.unique(sig[:, :, k].reshape(ny * nx, -1), axis=0, return_inverse=True)
        b_order[:, :, k] = _boundary_mask(idk.reshape(ny, nx))
    stable_any = sig[:, :, :, 0] > 0
    lowest = np.where(stable_any.any(axis=2), np.argmax(stable_any, axis=2) + 1, 0)

    u1 = {"units": "1"}

    def axis_attrs(label, absolute):
        return {
            **u1,
            "parameter": label,
            "long_name": label if absolute else f"offset along {label}",
            "values": "parameter value" if absolute else "offset s along the direction",
        }

    data_vars = {
        "n_cycles": (("y", "x", "order"), sig.sum(axis=3), {**u1, "long_name": "number of cycles of each order"}),
        "n_stable": (("y", "x", "order"), sig[..., 0], {**u1, "long_name": "number of stable cycles of each order"}),
        "n_saddle": (("y", "x", "order"), sig[..., 1], {**u1, "long_name": "number of saddle cycles of each order"}),
        "n_unstable": (
            ("y", "x", "order"),
            sig[..., 2],
            {**u1, "long_name": "number of fully unstable cycles of each order"},
        ),
        "n_nonhyperbolic": (
            ("y", "x", "order"),
            sig[..., 3],
            {**u1, "long_name": "number of non-hyperbolic cycles of each order"},
        ),
        "signature_id": (
            ("y", "x"),
            sig_id.astype(np.int64),
            {**u1, "long_name": "index of the cell's stability signature in signature_table"},
        ),
        "signature_table": (
            ("signature", "order", "group"),
            table.reshape(-1, max_order, G),
            {**u1, "long_name": "cycle counts per order and stability group of each signature"},
        ),
        "lowest_stable_order": (
            ("y", "x"),
            lowest.astype(np.int64),
            {**u1, "long_name": "lowest order of a stable cycle (0: none up to max_order)"},
        ),
        "boundary": (
            ("y", "x"),
            boundary,
            {**u1, "long_name": "1 where the signature differs from a 4-neighbour (bifurcation manifold)"},
        ),
        "boundary_order": (
            ("y", "x", "order"),
            b_order,
            {**u1, "long_name": "1 where the counts of this order differ from a 4-neighbour"},
        ),
        "seconds": (
            ("y", "x"),
            secs,
            {"units": "s", "long_name": "SCYFI wall-clock time at the grid point (batched backends: the mean)"},
        ),
        "theta0": (("param",), theta0, {**u1, "long_name": "base parameters"}),
        "direction_x": (("param",), dx, {**u1, "long_name": "parameter direction of x"}),
        "direction_y": (("param",), dy, {**u1, "long_name": "parameter direction of y"}),
    }
    coords = {
        "x": ("x", xv, axis_attrs(lx, absx)),
        "y": ("y", yv, axis_attrs(ly, absy)),
        "order": ("order", np.arange(1, max_order + 1, dtype=np.int64), {**u1, "long_name": "cycle order"}),
        "group": ("group", np.asarray(STABILITY_GROUPS, dtype=str), {"long_name": "stability group"}),
        "signature": ("signature", np.arange(table.shape[0], dtype=np.int64), {**u1, "long_name": "signature index"}),
        "param": ("param", np.asarray(model.param_names(), dtype=str), {"long_name": "parameter name"}),
    }
    for lab, dim, vals, absolute in ((lx, "x", xv, absx), (ly, "y", yv, absy)):
        alias = _sanitise(lab)
        if absolute and alias not in coords and alias not in data_vars:
            coords[alias] = (dim, vals, axis_attrs(lab, absolute))
    arguments = {
        "model": model.describe(),
        "param_x": lx if absx else dx.tolist(),
        "param_y": ly if absy else dy.tolist(),
        "values_x": xv.tolist(),
        "values_y": yv.tolist(),
        "max_order": max_order,
        "inputs": None if inputs is None else np.asarray(inputs, dtype=float).tolist(),
        "scyfi_kwargs": {k: (v if not callable(v) else repr(v)) for k, v in kw.items()},
        "backend": backend,
    }
    attrs = io.provenance("plrnn_numba.dynamics.bifurcation_grid", arguments, seeds=kw.get("seed", 0))
    attrs.update(
        {
            "title": "Bifurcation manifolds: cycle counts and stability over a parameter grid",
            "param_x": lx,
            "param_y": ly,
            "max_order": max_order,
            "stability_groups": ", ".join(STABILITY_GROUPS),
            "seconds": time.perf_counter() - t_start,
            "backend": be,
        }
    )
    return xr.Dataset(data_vars, coords, attrs)


def _boundary_mask(ids: np.ndarray) -> np.ndarray:
    """1 where a cell's id differs from one of its 4-neighbours."""
    b = np.zeros(ids.shape, np.int8)
    dx = ids[:, 1:] != ids[:, :-1]
    dy = ids[1:, :] != ids[:-1, :]
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    b[1:, :] |= dy
    b[:-1, :] |= dy
    return b
