"""Dataset assembly of the bifurcation analyses: the objects along a path and the events.

See :func:`~plrnn_numba.dynamics.bifurcation_path` for the variables.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ._cycles import stability_group
from .continuation import TrackedPath
from .events import EVENT_KINDS

__all__ = ["objects_dataset", "events_dataset"]


def objects_dataset(tp: TrackedPath, s_attrs: dict, attrs: dict) -> xr.Dataset:
    """The objects (fixed points and cycles) along the path: existence, stability, points, counts per order."""
    model, s, thetas, d, sets = tp.fam.model, tp.s, tp.thetas, tp.direction, tp.sets
    branches, node_info, max_order = tp.branches, tp.node_info, tp.max_order
    n, nb, M = s.size, len(branches), model.dim
    pl0 = tp.fam.at(float(s[0]))
    P = pl0.n_bits
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
            counts[i, k - 1, stability_group(ob.stability)] += 1
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
        "bit": ("bit", np.arange(P, dtype=np.int64), {**u1, "long_name": "pattern bit index"}),
        "bit_label": ("bit", np.asarray(pl0.bit_labels, dtype=str),
                      {"units": "1", "long_name": "condition under which the pattern bit is 1"}),
        "order": ("order", np.arange(1, max_order + 1, dtype=np.int64), {**u1, "long_name": "cycle order"}),
        "param": ("param", names, {"long_name": "parameter name (entry of theta)"}),
    }
    return xr.Dataset(
        data_vars, coords, {**attrs, "title": "Objects (fixed points and cycles) along the parameter path"}
    )


def events_dataset(recs: list[dict], M: int, s_attrs: dict, attrs: dict) -> xr.Dataset:
    """One row per located event (records from :func:`~.events.event_records`)."""
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
