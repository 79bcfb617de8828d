r"""Continuation: cycles followed exactly along a parameter path through their region sequences.

Inside a fixed sequence of linear regions :math:`d_1, \dots, d_k` a
piecewise-linear map is affine in every step, :math:`z \mapsto F_j(s) z + c_j(s)`,
with :math:`F_j, c_j` recomputed from :math:`\theta(s)` (``model.piecewise_linear``).
The k-cycle of that region sequence is therefore an explicit function of ``s``:

.. math::

    Z(s) = F_k \cdots F_1, \qquad b(s) = c_k + F_k c_{k-1} + \dots + F_k \cdots F_2 c_1,
    \qquad z_1(s) = (I - Z(s))^{-1} b(s), \qquad z_{j+1} = F_j z_j + c_j .

It is a true cycle of the map exactly while every point lies in its region
(the boundary functionals ``U z + v`` have the signs of the pattern bits), and
its stability is given by the eigenvalues of ``Z(s)``.  Between two SCYFI
solutions the objects are followed this way, and every change is located by
bisection on ``s`` on the sign of a continuous quantity of the tracked region
sequence (see :mod:`.bifurcation` for the table and :mod:`.events` for the
classification).
"""

from __future__ import annotations

import warnings
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..models.piecewise import PiecewiseLinear
from ._cycles import canonical_shift, classify_stability, sorted_eigenvalues
from .paths import MapAlongPath
from .scyfi import scyfi, search_many

__all__ = [
    "SequenceSolution", "solve_sequence", "TrackedObject", "Crossing", "sequence_key", "stability_of",
    "follow_sequence", "cyclic_distance", "UnionFind", "canonical_sequence", "Tracker", "object_branches",
    "scyfi_objects", "continued_object", "objects_on_grid", "TrackedPath", "track_objects",
]


@dataclass
class SequenceSolution:
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


def solve_sequence(system: PiecewiseLinear, pats: np.ndarray, s: float) -> SequenceSolution:
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
        pre = system.boundary_values(points)
        inside = np.where(pats == 1, pre > 0.0, pre <= 0.0) if ok else np.zeros(pats.shape, bool)
    return SequenceSolution(float(s), ok, bool(ok and np.all(inside)), points, inside, pre, lam, n_out, float(sign))


# ============================================================================ tracked objects
@dataclass
class TrackedObject:
    """An object (cycle) present at one grid value of s."""

    order: int
    patterns: np.ndarray  # (k, P) int8, canonical rotation
    points: np.ndarray  # (k, M)
    eig: np.ndarray  # (M,) complex
    stability: str
    n_out: int
    source: int  # 1: SCYFI, 2: analytic continuation from a neighbouring s


@dataclass
class Crossing:
    """A located change of one tracked object (stability change, appearance or disappearance)."""

    node: tuple  # (grid index, key) of the object it was found from
    order: int
    lo: float
    hi: float
    change: str  # "appears" | "disappears" | "stability"
    reason: str  # "border" | "infinity" | "eigenvalue"
    valid: SequenceSolution  # evaluation on the side where the object exists with its old signature
    other: SequenceSolution  # evaluation on the other side
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


def sequence_key(order: int, pats: np.ndarray) -> tuple:
    return (int(order), np.ascontiguousarray(pats, dtype=np.int8).tobytes())


def stability_of(e: SequenceSolution) -> str:
    return classify_stability(e.eig, 0.0) if e.ok else ""


def crossing_eigenvalue(e: SequenceSolution, target: float | None) -> complex:
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


def follow_sequence(
    fam: MapAlongPath, node, pats: np.ndarray, order: int, n_out: int, s_from: float, s_to: float, n_probe: int,
    tol: float,
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
    cache: dict[float, SequenceSolution] = {}

    def ev(s: float) -> SequenceSolution:
        if s not in cache:
            cache[s] = solve_sequence(fam.at(s), pats, s)
        return cache[s]

    span = (min(s_from, s_to), max(s_from, s_to))
    e0 = ev(s_from)
    cur = e0.n_out if e0.valid else n_out
    crossings: list[Crossing] = []
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
                emid = solve_sequence(fam.at(0.5 * (a + b)), pats, 0.5 * (a + b))
                lam = crossing_eigenvalue(emid if emid.ok else ea, None)
                # classes reported a little away from the crossing (at the bracket ends an
                # eigenvalue may sit on the unit circle to rounding)
                step = 16.0 * tol if forward else -16.0 * tol
                pa = min(max(a - step, span[0]), span[1])
                pb = min(max(b + step, span[0]), span[1])
                cls = (stability_of(solve_sequence(fam.at(pa), pats, pa)),
                       stability_of(solve_sequence(fam.at(pb), pats, pb)))
                crossings.append(
                    Crossing(
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
                term = Crossing(
                    node, order, lo, hi, change, "infinity", ea, eb, crossing_eigenvalue(ref, 1.0), (-1, -1)
                )
            else:
                viol = ~eb.inside
                dist = np.where(viol, np.abs(ea.pre), np.inf)
                jj, uu = np.unravel_index(int(np.argmin(dist)), dist.shape)
                term = Crossing(
                    node, order, lo, hi, change, "border", ea, eb, complex(np.nan, np.nan), (int(jj), int(uu))
                )
            return crossings, term
        prev = sp
    return crossings, None


def cyclic_distance(P: np.ndarray, Q: np.ndarray) -> float:
    """``min_r max |P - roll(Q, r)|`` over cyclic shifts (P, Q: (k, M) with the same k)."""
    k = P.shape[0]
    return min(float(np.max(np.abs(P - np.roll(Q, r, axis=0)))) for r in range(k))


def meet_distance(big: np.ndarray, small: np.ndarray) -> float:
    """Distance of a k-cycle from a k2-cycle (k2 divides k) traversed k / k2 times."""
    reps = big.shape[0] // small.shape[0]
    return cyclic_distance(big, np.tile(small, (reps, 1)))


class UnionFind:
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


def canonical_sequence(pats: np.ndarray) -> np.ndarray | None:
    """Canonical rotation of a pattern sequence, or None if its minimal period is shorter than its length."""
    k = pats.shape[0]
    for r in range(1, k):
        if k % r == 0 and np.array_equal(pats, np.roll(pats, -r, axis=0)):
            return None
    return np.ascontiguousarray(np.roll(pats, -canonical_shift(pats), axis=0))


class Tracker:
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
        self.uf = UnionFind()
        self.stab: list[Crossing] = []
        self.terms: list[Crossing] = []
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
            e = solve_sequence(self.fam.at(sg), pats, sg)
            self.sets[g][key] = continued_object(e, order, pats, self.tol_hyp)
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
            crossings, term = follow_sequence(self.fam, node, pats, order, n_out, start, target, self.n_probe, self.tol)
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
            q = canonical_sequence(flipped)
            if q is None:
                continue
            qkey = sequence_key(order, q)
            for base, back, direction in ((term.other.s, term.valid.s, sgn), (term.valid.s, term.other.s, -sgn)):
                # just off the event on that side (a bracket end may lie exactly on the border)
                away = (base - back) if base != back else direction * self.tol
                e = None
                for mult in (0.0, 1.0, 4.0, 16.0):
                    x = min(max(base + mult * away, s0), s1)
                    e = solve_sequence(self.fam.at(x), q, x)
                    if e.valid:
                        break
                if not e.valid:
                    continue
                self._n_seg += 1
                seg = ("seg", self._n_seg)
                self.node_info[seg] = (order, qkey, x)
                # its own crossing at this event (across the final bracket), then the rest of its stretch
                cr, qterm = follow_sequence(self.fam, seg, q, order, e.n_out, x, back, 1, self.tol)
                for c in cr:
                    c.key = qkey
                self.stab.extend(cr)
                if qterm is not None:
                    qterm.key = qkey
                    self.terms.append(qterm)
                queue.append((qkey, q, order, e.n_out, seg, x, direction))


def object_branches(uf: UnionFind, sets, node_info: dict) -> tuple[list[list], dict]:
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


def scyfi_objects(model, theta, max_order, inputs, settings, seed) -> dict:
    """SCYFI's cycles at one parameter vector, as tracked objects keyed by (order, patterns)."""
    ds = scyfi(model, theta, max_order, inputs=inputs, settings=settings, seed=seed)
    out = {}
    for i in range(ds.sizes["cycle"]):
        k = int(ds.order.values[i])
        pats = np.ascontiguousarray(ds.patterns.values[i, :k], dtype=np.int8)
        lam = ds.eig_real.values[i] + 1j * ds.eig_imag.values[i]
        out[sequence_key(k, pats)] = TrackedObject(
            k,
            pats,
            ds.points.values[i, :k].copy(),
            lam,
            str(ds.stability.values[i]),
            int(np.sum(np.abs(lam) > 1.0)),
            1,
        )
    return out


def continued_object(e: SequenceSolution, order: int, pats: np.ndarray, tol_hyp: float) -> TrackedObject:
    """An object found by solving its region sequence (not by SCYFI) at a grid value."""
    return TrackedObject(order, pats, e.points.copy(), e.eig.copy(), classify_stability(e.eig, tol_hyp), e.n_out, 2)


def _batched_objects(fam: MapAlongPath, thetas: np.ndarray, max_order, settings, seed, backend, n_threads) -> list:
    """SCYFI's cycles at every grid value in one batch (:func:`search_many`: the same cycles as per-value calls)."""
    found, _ = search_many(fam.model, thetas, max_order, inputs=fam.inputs, settings=settings, seed=seed,
                           backend=backend, n_threads=n_threads)
    sets = []
    for cycles in found:
        out = {}
        for c in cycles:
            pats = np.ascontiguousarray(c.patterns, dtype=np.int8)
            lam = np.asarray(c.eigenvalues, dtype=complex)
            out[sequence_key(c.order, pats)] = TrackedObject(c.order, pats, np.array(c.points), lam, c.stability,
                                                            int(np.sum(np.abs(lam) > 1.0)), 1)
        sets.append(out)
    return sets


def objects_on_grid(fam: MapAlongPath, s: np.ndarray, thetas: np.ndarray, max_order, settings, seed,
                    backend: str = "cpu", n_threads: int | None = None) -> list:
    """SCYFI's objects at every grid value, completed by the objects that exist at a neighbour.

    An object found at ``s_i`` is solved (same region sequence) at ``s_{i +- 1}`` and
    added there if it exists, repeatedly, so SCYFI's misses are not read as bifurcations.
    ``backend="cpu"`` runs one :func:`scyfi` call per grid value; the others run every
    grid value and order in one :func:`search_many` batch (threads or GPU).
    """
    n = s.size
    tol_hyp = settings.tol_hyperbolic
    if backend == "cpu":
        sets = [scyfi_objects(fam.model, thetas[i], max_order, fam.inputs, settings, seed) for i in range(n)]
    else:
        sets = _batched_objects(fam, thetas, max_order, settings, seed, backend, n_threads)
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
                    e = solve_sequence(sys_j, ob.patterns, float(s[j]))
                    if e.valid:
                        sets[j][key] = continued_object(e, ob.order, ob.patterns, tol_hyp)
                        changed = True
        if not changed:
            break

    return sets


@dataclass
class TrackedPath:
    """Everything known about the objects along a path after tracking (input of the Dataset builders)."""

    fam: MapAlongPath
    s: np.ndarray  # grid values
    thetas: np.ndarray  # (n, P) parameters at the grid values
    direction: np.ndarray | None  # d of theta0 + s d (None for a training history)
    sets: list  # per grid value: {key: TrackedObject}
    branches: list  # objects as lists of nodes
    node_info: dict  # node -> (order, key, first s)
    max_order: int


def track_objects(fam: MapAlongPath, s: np.ndarray, thetas: np.ndarray, max_order: int, settings, seed,
                  n_probe: int, locate_tol: float, backend: str = "cpu",
                  n_threads: int | None = None) -> tuple[Tracker, list]:
    """SCYFI at every grid value, completion from the neighbours, then every object followed over every interval.

    Returns the finished :class:`Tracker` (crossings, union-find of object
    identities) and the per-grid-value object sets.  Tracking may add objects
    at grid values already processed (found through a border event); it is then
    run again, at most four times.
    """
    sets = objects_on_grid(fam, s, thetas, max_order, settings, seed, backend, n_threads)
    for _ in range(4):
        tr = Tracker(fam, s, sets, n_probe, locate_tol, settings.tol_hyperbolic)
        tr.run()
        if not tr.added_behind:
            break
    return tr, sets
