r"""Event location and classification: what happens to the tracked objects along a parameter path.

Every appearance, disappearance and stability change of a tracked object is a
:class:`~.continuation.Crossing`, located by bisection.  This module merges
repeated crossings, pairs border events of objects that meet (folds, and
border collisions through which an object persists into another region
sequence), recognises the period-doubled cycles of flips, and writes one
record per event (see :func:`~plrnn_numba.dynamics.bifurcation_path` for the
fields and :mod:`.bifurcation` for the classification rules).
"""

from __future__ import annotations

import math

import numpy as np

from .continuation import Crossing, UnionFind, cyclic_distance, meet_distance, stability_of

__all__ = ["EVENT_KINDS", "dedupe_crossings", "meet_tolerance", "pair_terminals", "event_records"]

#: the event kinds reported by :func:`~plrnn_numba.dynamics.bifurcation_path`.
EVENT_KINDS = ("fold", "degenerate transcritical", "border collision", "flip", "Neimark-Sacker", "other")

#: an eigenvalue at a crossing counts as complex (Neimark-Sacker) when |Im| > this * |lambda|.
COMPLEX_RTOL = 1e-6


def dedupe_crossings(crossings: list[Crossing], uf: UnionFind, tol: float) -> list[Crossing]:
    """Drop repeated crossings of one sequence at one s (same change), uniting their objects."""
    out: list[Crossing] = []
    for c in sorted(crossings, key=lambda c: c.s):
        dup = next(
            (o for o in reversed(out) if o.key == c.key and o.change == c.change and abs(o.s - c.s) <= tol), None
        )
        if dup is None:
            out.append(c)
        else:
            uf.union(dup.node, c.node)
    return out


def meet_tolerance(a: Crossing, b: Crossing, meet_rtol: float) -> float:
    """Distance within which the points of two objects at (nearly) the same event "meet"."""
    scale = max(1.0, float(np.max(np.abs(a.valid.points))), float(np.max(np.abs(b.valid.points))))
    slack = (a.speed() + b.speed()) * (abs(a.s - b.s) + (a.hi - a.lo) + (b.hi - b.lo))
    return meet_rtol * scale + 2.0 * slack


def pair_terminals(terms: list[Crossing], uf: UnionFind, coincide: float, meet_rtol: float):
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
            dist = cyclic_distance(a.valid.points, b.valid.points)
            if dist <= meet_tolerance(a, b, meet_rtol):
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


def event_records(pairs, stab, terms, paired, branch_of, coincide: float, meet_rtol: float) -> list[dict]:
    """One record per event (see :func:`bifurcation_path` for the fields), sorted by s."""
    recs: list[dict] = []

    def rec(
        kind,
        change,
        c: Crossing,
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
                st_before=stability_of(a.valid),
                st_after=stability_of(b.valid),
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
                    st_before=stability_of(p.valid),
                    st_partner=stability_of(q.valid),
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
                    st_after=stability_of(p.valid),
                    st_partner=stability_of(q.valid),
                    lo=lo,
                    hi=hi,
                    s_=s_,
                )

    stab_kinds = []
    for c in stab:
        lam = c.eig
        if not np.isfinite(lam.real):
            kind = "other"
        elif abs(lam.imag) > COMPLEX_RTOL * abs(lam):
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
        st = stability_of(t.valid) if t.valid.ok else ""
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
                dist = meet_distance(t.valid.points, o.valid.points)
                if dist <= meet_tolerance(t, o, meet_rtol) and dist < best:
                    best, partner, st_p = dist, branch_of[o.node], stability_of(o.valid)
        rec(kind, t.change, t, before=before, after=after, partner=partner, st_before=sb, st_after=sa, st_partner=st_p)

    recs.sort(key=lambda r: (r["s"], r["order"], r["kind"]))

    return recs
