"""Piecewise-linear descriptions of the PLRNN family, for SCYFI and the brute-force search.

A piecewise-linear (PL) map is described by three things:

* a *pattern* ``d(z)``: a vector of P bits that names the linear region of a state z;
* the *region map* of a pattern: ``F(d)`` (M x M) and ``c(d)`` (M) with
  ``z' = F(d) z + c(d)`` for every z whose pattern is d;
* the map itself, ``z' = F(z)``, which SCYFI uses to roll candidate points forward
  and read the patterns they actually visit.

For the three families (``D = diag(d)``):

* PLRNN ``z' = A z + W relu(z) + C s + h``: ``d = (z > 0)`` (P = M);
  ``F = A + W D``, ``c = h + C s``.
* shallow PLRNN ``z' = A z + W1 relu(W2 z + h2) + h1 + C s``: ``d = (W2 z + h2 > 0)``
  (P = H); ``F = A + W1 D W2``, ``c = W1 D h2 + h1 + C s``.
* clipped shallow PLRNN (``relu(W2 z + h2) - relu(W2 z)``): ``D1 = (W2 z + h2 > 0)``
  in bits ``0..H-1`` and ``D2 = (W2 z > 0)`` in bits ``H..2H-1`` (P = 2H);
  ``F = A + W1 (D1 - D2) W2``, ``c = W1 D1 h2 + h1 + C s``.

A constant input s is folded into the offset, so every system here is autonomous.

This module holds

* :class:`PiecewiseLinearSystem`: the canonical description built from a model
  and its ``theta`` or from raw arrays (:func:`as_system` validates the input),
  with plain NumPy versions of the map, the patterns and the region maps (used to
  verify results);
* two numba kernels per family, compiled with fixed signatures so that one
  compiled SCYFI engine serves all families (it calls them through their
  native addresses, see :mod:`plrnn_numba._fnptr`; on CUDA they are compiled
  as device functions from the same source):
  ``regions`` (the region maps of a whole candidate sequence) and ``rollout``
  (iterate the true map from a point and record the patterns visited).

Kernel parameter layouts (``p``, ``meta``) -- private to this module and SCYFI:

* PLRNN: ``p = a (M) | W (M*M, row-major) | h_eff (M)``, ``meta = [M]``;
* shallow: ``p = a (M) | W1 (M*H) | W2 (H*M) | h1_eff (M) | h2 (H)``,
  ``meta = [M, H, clipped]``.

A new piecewise-linear family needs its two kernels here and a branch in
:func:`as_system` / :meth:`PiecewiseLinearSystem.kernels`; the engine is unchanged.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Mapping

import numpy as np
from numba import types

from .. import _validate as V
from .. import config
from ..models.base import Model
from ..models.plrnn import PLRNN
from ..models.shallow import ShallowPLRNN

# -- kernel signatures ---------------------------------------------------------------
_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_f3 = types.float64[:, :, ::1]
_i1 = types.int64[::1]
_b2 = types.int8[:, ::1]

#: ``regions(p, meta, pats, F, c)``: region maps ``z -> F[j] z + c[j]`` of the patterns
#: ``pats[j]`` (k, P) int8 0/1, for j = 0..k-1.
REGIONS_SIG = types.void(_f1, _i1, _b2, _f3, _f2)
#: ``rollout(p, meta, traj, act)``: with ``traj[0]`` given, ``act[j] = d(traj[j])`` and
#: ``traj[j + 1] = F(traj[j])`` for j = 0..n-1 (traj (n + 1, M), act (n, P)).
ROLLOUT_SIG = types.void(_f1, _i1, _f2, _b2)

REGIONS_TYPE = types.FunctionType(REGIONS_SIG)
ROLLOUT_TYPE = types.FunctionType(ROLLOUT_SIG)

#: parameter vectors larger than this are stored in provenance only as a SHA-256 digest.
MAX_PARAMS_IN_ATTRS = 4096

# Why two kernels that work on whole sequences, not one state: the engine calls
# them indirectly, and each such call costs ~30 ns (no inlining, reference
# counting of the array arguments), as much as the whole region map of a
# 2-D system.  One call per candidate keeps that overhead out of the inner loops.
# Inside, parameters are indexed in the flat vector: ``reshape`` of a slice costs
# ~40 ns per call in numba 0.68, again comparable to the work for small M.


# ============================================================================ kernels
# PLRNN:  z' = a * z + W relu(z) + h;  p = a | W (row-major) | h
@config.jit(REGIONS_SIG)
def plrnn_regions(p, meta, pats, F, c):
    # F = diag(a) + W diag(d): column j of W enters only if unit j is active
    M = meta[0]
    oh = M + M * M
    for s in range(pats.shape[0]):
        for i in range(M):
            row = M + i * M
            for j in range(M):
                F[s, i, j] = p[row + j] if pats[s, j] != 0 else 0.0
            F[s, i, i] += p[i]
            c[s, i] = p[oh + i]


@config.jit(ROLLOUT_SIG)
def plrnn_rollout(p, meta, traj, act):
    M = meta[0]
    oh = M + M * M
    for s in range(act.shape[0]):
        for i in range(M):
            act[s, i] = 1 if traj[s, i] > 0.0 else 0
        for i in range(M):
            row = M + i * M
            acc = p[i] * traj[s, i] + p[oh + i]
            for j in range(M):
                zj = traj[s, j]
                acc += p[row + j] * (zj if zj > 0.0 else 0.0)
            traj[s + 1, i] = acc


# Shallow PLRNN:  z' = a * z + W1 [relu(W2 z + h2) - clipped * relu(W2 z)] + h1
# p = a (M) | W1 (M x H) | W2 (H x M) | h1 (M) | h2 (H)
@config.jit(REGIONS_SIG)
def shallow_regions(p, meta, pats, F, c):
    # F = diag(a) + W1 diag(d1 - d2) W2,  c = h1 + W1 (d1 * h2)
    M, H, clipped = meta[0], meta[1], meta[2]
    oW1 = M
    oW2 = oW1 + M * H
    oh1 = oW2 + H * M
    oh2 = oh1 + M
    for s in range(pats.shape[0]):
        for i in range(M):
            for l in range(M):
                F[s, i, l] = 0.0
            F[s, i, i] = p[i]
            c[s, i] = p[oh1 + i]
        for j in range(H):
            coef = float(pats[s, j])
            if clipped:
                coef -= float(pats[s, H + j])
            if pats[s, j] != 0:
                for i in range(M):
                    c[s, i] += p[oW1 + i * H + j] * p[oh2 + j]
            if coef != 0.0:
                for i in range(M):
                    g = p[oW1 + i * H + j] * coef
                    if g != 0.0:
                        for l in range(M):
                            F[s, i, l] += g * p[oW2 + j * M + l]


@config.jit(ROLLOUT_SIG)
def shallow_rollout(p, meta, traj, act):
    M, H, clipped = meta[0], meta[1], meta[2]
    oW1 = M
    oW2 = oW1 + M * H
    oh1 = oW2 + H * M
    oh2 = oh1 + M
    for s in range(act.shape[0]):
        for i in range(M):
            traj[s + 1, i] = p[i] * traj[s, i] + p[oh1 + i]
        for j in range(H):
            v = 0.0
            for i in range(M):
                v += p[oW2 + j * M + i] * traj[s, i]
            r = v + p[oh2 + j]
            act[s, j] = 1 if r > 0.0 else 0
            u = r if r > 0.0 else 0.0
            if clipped:
                act[s, H + j] = 1 if v > 0.0 else 0
                if v > 0.0:
                    u -= v
            if u != 0.0:
                for i in range(M):
                    traj[s + 1, i] += p[oW1 + i * H + j] * u


# ============================================================================ systems
class PiecewiseLinearSystem:
    """A PLRNN-family map in the canonical form used by SCYFI (autonomous, inputs folded in).

    Build it with :func:`as_system`.  Attributes: ``kind`` (``"plrnn"``,
    ``"shallow"`` or ``"clipped"``), ``dim`` (M), ``n_units`` (size of the
    ``unit`` dimension of the patterns: M or H), ``n_pattern`` (bits per region:
    M, H or 2H), ``arrays`` (the effective parameters as named arrays), ``p`` and
    ``meta`` (kernel layout) and ``description`` (JSON-able, for provenance).
    """

    def __init__(self, kind: str, arrays: dict[str, np.ndarray], description: dict):
        self.kind = kind
        self.arrays = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in arrays.items()}
        self.description = description
        a = self.arrays
        if kind == "plrnn":
            self.dim = a["A"].shape[0]
            self.n_units = self.dim
            self.n_pattern = self.dim
            self.p = np.concatenate([a["A"], a["W"].ravel(), a["h"]])
            self.meta = np.array([self.dim], dtype=np.int64)
        else:
            self.dim = a["A"].shape[0]
            H = a["W2"].shape[0]
            self.n_units = H
            self.n_pattern = 2 * H if kind == "clipped" else H
            self.p = np.concatenate([a["A"], a["W1"].ravel(), a["W2"].ravel(), a["h1"], a["h2"]])
            self.meta = np.array([self.dim, H, int(kind == "clipped")], dtype=np.int64)

    def __repr__(self) -> str:
        return f"<PiecewiseLinearSystem {self.kind} M={self.dim} pattern bits={self.n_pattern}>"

    # -- compiled kernels ------------------------------------------------------------
    def kernels(self):
        """``(regions, rollout)`` compiled dispatchers for this family."""
        ks = (plrnn_regions, plrnn_rollout) if self.kind == "plrnn" else (shallow_regions, shallow_rollout)
        return tuple(k.dispatcher for k in ks)

    # -- plain NumPy versions (verification, brute force) ----------------------------
    def step(self, Z: np.ndarray) -> np.ndarray:
        """The true map ``F`` applied to states ``Z`` (..., M)."""
        a = self.arrays
        if self.kind == "plrnn":
            return Z * a["A"] + np.maximum(Z, 0.0) @ a["W"].T + a["h"]
        V_ = Z @ a["W2"].T
        U = np.maximum(V_ + a["h2"], 0.0)
        if self.kind == "clipped":
            U = U - np.maximum(V_, 0.0)
        return Z * a["A"] + U @ a["W1"].T + a["h1"]

    def patterns(self, Z: np.ndarray) -> np.ndarray:
        """Region bits (..., P) of states ``Z`` (..., M), as int8 0/1."""
        a = self.arrays
        if self.kind == "plrnn":
            return (Z > 0.0).astype(np.int8)
        V_ = Z @ a["W2"].T
        d1 = V_ + a["h2"] > 0.0
        if self.kind == "clipped":
            return np.concatenate([d1, V_ > 0.0], axis=-1).astype(np.int8)
        return d1.astype(np.int8)

    def region(self, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Region map ``(F, c)`` of the pattern(s) ``d`` (..., P): F (..., M, M), c (..., M)."""
        a = self.arrays
        d = np.asarray(d, dtype=np.float64)
        if self.kind == "plrnn":
            F = np.diag(a["A"]) + a["W"] * d[..., None, :]
            c = np.broadcast_to(a["h"], d.shape[:-1] + (self.dim,)).copy()
            return F, c
        H = self.n_units
        d1 = d[..., :H]
        coef = d1 - d[..., H:] if self.kind == "clipped" else d1
        F = np.diag(a["A"]) + (a["W1"] * coef[..., None, :]) @ a["W2"]
        c = (d1 * a["h2"]) @ a["W1"].T + a["h1"]
        return F, c

    def cycle_map(self, pats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Z, b)`` of the k-fold map ``z -> Z z + b`` through the regions ``pats`` (k, P).

        ``Z = F_k ... F_1`` and ``b = c_k + F_k c_{k-1} + ... + F_k ... F_2 c_1``.
        """
        F, c = self.region(pats)
        Z = np.eye(self.dim)
        b = np.zeros(self.dim)
        for j in range(len(pats)):
            Z = F[j] @ Z
            b = F[j] @ b + c[j]
        return Z, b

    def offset_scale(self) -> float:
        """``max |c|`` over the offsets the regions can have (a scale for residuals)."""
        a = self.arrays
        if self.kind == "plrnn":
            return float(np.max(np.abs(a["h"]), initial=0.0))
        return float(np.max(np.abs(a["h1"]), initial=0.0) + np.max(np.abs(a["W1"]) @ np.abs(a["h2"]), initial=0.0))


# ============================================================================ parsing
_PLRNN_KEYS = {"A", "W", "h"}
_SHALLOW_KEYS = {"A", "W1", "W2", "h1", "h2"}


def _array(x, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = V.as_float_array(x, name)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in allowed:
        raise ValueError(f"{name} must be a {' or '.join(f'{n}-D' for n in allowed)} array; got shape {arr.shape}")
    V.check_finite(arr, name)
    return arr


def _diag_A(A, M: int | None = None) -> np.ndarray:
    A = _array(A, "A", (1, 2))
    if A.ndim == 2:
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a vector or a square diagonal matrix; got shape {A.shape}")
        if np.any(A - np.diag(np.diag(A))):
            raise ValueError("A must be diagonal (the PLRNN's A is diag(a)); pass its diagonal as a vector")
        A = np.diag(A).copy()
    if M is not None and A.shape[0] != M:
        raise ValueError(f"A must have length {M}; got {A.shape[0]}")
    return A


def _input_offset(C, inputs, M: int, K: int | None) -> np.ndarray:
    """``C s`` for a constant input ``s`` (zeros when there is no input)."""
    if inputs is None:
        return np.zeros(M)
    if C is None:
        raise ValueError("inputs were given but the parameters have no input matrix C; pass C or drop inputs")
    C = _array(C, "C", 2)
    if C.shape[0] != M or (K is not None and C.shape[1] != K):
        raise ValueError(f"C must have shape ({M}, K); got {C.shape}")
    s = V.as_float_array(inputs, "inputs")
    if s.ndim > 1:
        raise ValueError(
            f"inputs must be one constant input vector of length {C.shape[1]} (SCYFI analyses the "
            f"autonomous map z -> F(z, s) for fixed s); got shape {s.shape}"
        )
    s = s.reshape(-1)
    if s.shape[0] != C.shape[1]:
        raise ValueError(f"inputs must have length {C.shape[1]} (the number of columns of C); got {s.shape[0]}")
    V.check_finite(s, "inputs")
    return C @ s


def _digest(arrays: dict[str, np.ndarray]) -> tuple[str, dict | None]:
    h = hashlib.sha256()
    n = 0
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k], dtype=np.float64).tobytes())
        n += arrays[k].size
    full = {k: v.tolist() for k, v in arrays.items()} if n <= MAX_PARAMS_IN_ATTRS else None
    return h.hexdigest(), full


def _plrnn_system(A, W, h, C=None, inputs=None, origin: dict | None = None) -> PiecewiseLinearSystem:
    A = _diag_A(A)
    M = A.shape[0]
    W = _array(W, "W", 2)
    if W.shape != (M, M):
        raise ValueError(f"W must be square ({M} x {M}) to match A of length {M}; got shape {W.shape}")
    h = _array(h, "h", (1, 2)).reshape(-1)
    if h.shape != (M,):
        raise ValueError(f"h must have length {M}; got {h.shape[0]}")
    h_eff = h + _input_offset(C, inputs, M, None)
    arrays = {"A": A, "W": W, "h": h_eff}
    digest, full = _digest(arrays)
    desc = {**(origin or {"model": "PLRNN (raw arrays)"}), "dim": M, "effective_parameters_sha256": digest}
    if full is not None:
        desc["effective_parameters"] = full
    return PiecewiseLinearSystem("plrnn", arrays, desc)


def _shallow_system(A, W1, W2, h1, h2, C=None, inputs=None, clipped=False, origin=None) -> PiecewiseLinearSystem:
    A = _diag_A(A)
    M = A.shape[0]
    W1 = _array(W1, "W1", 2)
    if W1.shape[0] != M:
        raise ValueError(f"W1 must have shape ({M}, H); got {W1.shape}")
    H = W1.shape[1]
    if H < 1:
        raise ValueError("W1 must have at least one column (H >= 1)")
    W2 = _array(W2, "W2", 2)
    if W2.shape != (H, M):
        raise ValueError(f"W2 must have shape ({H}, {M}) (H x M, with H from W1); got {W2.shape}")
    h1 = _array(h1, "h1", (1, 2)).reshape(-1)
    if h1.shape != (M,):
        raise ValueError(f"h1 must have length {M}; got {h1.shape[0]}")
    h2 = _array(h2, "h2", (1, 2)).reshape(-1)
    if h2.shape != (H,):
        raise ValueError(f"h2 must have length {H}; got {h2.shape[0]}")
    if not isinstance(clipped, (bool, np.bool_)):
        raise TypeError(f"clipped must be a bool; got {type(clipped).__name__}")
    h1_eff = h1 + _input_offset(C, inputs, M, None)
    arrays = {"A": A, "W1": W1, "W2": W2, "h1": h1_eff, "h2": h2}
    kind = "clipped" if clipped else "shallow"
    digest, full = _digest(arrays)
    desc = {
        **(origin or {"model": "ShallowPLRNN (raw arrays)"}),
        "dim": M,
        "hidden": H,
        "clipped": int(bool(clipped)),
        "effective_parameters_sha256": digest,
    }
    if full is not None:
        desc["effective_parameters"] = full
    return PiecewiseLinearSystem(kind, arrays, desc)


def as_system(model_or_params, theta=None, inputs=None) -> PiecewiseLinearSystem:
    """Validate SCYFI's model argument and build the canonical description.

    Parameters
    ----------
    model_or_params : PLRNN, ShallowPLRNN, dict or tuple
        A model (then ``theta`` is required), or raw parameters: a dict with keys
        ``A, W, h`` (PLRNN) or ``A, W1, W2, h1, h2`` (shallow PLRNN; add
        ``"clipped": True`` for the clipped one), each optionally with ``C``; or a
        tuple ``(A, W, h)`` or ``(A, W1, W2, h1, h2)``.  ``A`` may be a vector or a
        diagonal matrix.
    theta : (P,) array, optional
        The model's parameter vector.
    inputs : (K,) array, optional
        A constant input ``s``; the offset becomes ``h + C s``.  None means no
        input (``s = 0``), i.e. the autonomous map.

    Returns
    -------
    PiecewiseLinearSystem
    """
    if isinstance(model_or_params, Model):
        model = model_or_params
        if not isinstance(model, (PLRNN, ShallowPLRNN)):
            raise TypeError(
                f"model_or_params must be a piecewise-linear model (PLRNN or ShallowPLRNN); got {model.name}"
            )
        if theta is None:
            raise ValueError(f"theta is required with a model: pass the parameter vector of {model!r}")
        d = model.unpack(model.check_theta(theta))
        K = model.n_inputs
        C = d["C"]
        if inputs is not None and K == 0:
            raise ValueError(f"inputs were given but {model!r} has no inputs (n_inputs=0)")
        origin = {"model": model.name, **model.describe()}
        if isinstance(model, PLRNN):
            return _plrnn_system(d["A"], d["W"], d["h"], C=C, inputs=inputs, origin=origin)
        return _shallow_system(
            d["A"], d["W1"], d["W2"], d["h1"], d["h2"], C=C, inputs=inputs, clipped=bool(model.clipped), origin=origin
        )
    if theta is not None:
        raise ValueError("theta is only used with a model; with raw parameter arrays leave theta=None")
    if isinstance(model_or_params, Mapping):
        params = dict(model_or_params)
        keys = set(params)
        if _PLRNN_KEYS <= keys:
            extra = keys - _PLRNN_KEYS - {"C"}
            if extra:
                raise ValueError(f"unexpected PLRNN parameters {sorted(extra)}; expected A, W, h and optionally C")
            return _plrnn_system(params["A"], params["W"], params["h"], C=params.get("C"), inputs=inputs)
        if _SHALLOW_KEYS <= keys:
            extra = keys - _SHALLOW_KEYS - {"C", "clipped"}
            if extra:
                raise ValueError(
                    f"unexpected shallow PLRNN parameters {sorted(extra)}; "
                    f"expected A, W1, W2, h1, h2 and optionally C, clipped"
                )
            return _shallow_system(
                params["A"], params["W1"], params["W2"], params["h1"], params["h2"],
                C=params.get("C"), inputs=inputs, clipped=params.get("clipped", False),
            )
        raise ValueError(
            f"model_or_params as a dict needs the keys A, W, h (PLRNN) or A, W1, W2, h1, h2 "
            f"(shallow PLRNN); got {sorted(keys)}"
        )
    if isinstance(model_or_params, (tuple, list)):
        n = len(model_or_params)
        if n == 3:
            return _plrnn_system(*model_or_params, inputs=inputs)
        if n == 5:
            return _shallow_system(*model_or_params, inputs=inputs)
        raise ValueError(
            f"model_or_params as a tuple must be (A, W, h) or (A, W1, W2, h1, h2); got {n} items"
        )
    raise TypeError(
        "model_or_params must be a PLRNN or ShallowPLRNN (with theta), a dict of parameter arrays "
        f"or a tuple (A, W, h); got {type(model_or_params).__name__}"
    )


def check_order(x, name: str, minimum: int = 1) -> int:
    """An integer >= minimum (bools rejected), for orders and loop counts."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {x}")
    return int(x)
