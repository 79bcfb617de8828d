"""Input checks shared by the public wrappers.

Kernels never validate; wrappers do, and their messages name the argument,
what was wrong and how to fix it.
"""

from __future__ import annotations

import numbers

import numpy as np


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array; TypeError for non-numeric input."""
    if isinstance(x, np.ndarray):
        # dtype kinds: f floating, i/u integer, b bool (cheaper than np.issubdtype on every call)
        kind = x.dtype.kind
        if kind not in "fiub":
            if kind == "c":
                raise TypeError(f"{name} must be real-valued; got complex dtype {x.dtype}")
            raise TypeError(f"{name} must be a real numeric array; got dtype {x.dtype}")
        return x if type(x) is np.ndarray and x.dtype == np.float64 else np.asarray(x, dtype=np.float64)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be array-like of real numbers; got {type(x).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"{name} must be array-like of real numbers; got {type(x).__name__}")
    return as_float_array(arr, name)


def check_finite(arr: np.ndarray, name: str) -> None:
    """ValueError if ``arr`` holds NaN or inf."""
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(np.atleast_1d(arr)))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)}); pass finite values"
        )


def as_state(z, dim: int, name: str = "z0") -> np.ndarray:
    """A (M,) or (B, M) finite float64 state array."""
    z = as_float_array(z, name)
    if z.ndim not in (1, 2) or z.shape[-1] != dim or z.shape[0] == 0:
        raise ValueError(f"{name} must have shape ({dim},) or (batch >= 1, {dim}); got {z.shape}")
    check_finite(z, name)
    return np.ascontiguousarray(z)


def as_input_vector(s, n_inputs: int, name: str = "s") -> np.ndarray:
    """A single input vector of length K (zeros when K = 0 and s is None)."""
    if s is None:
        if n_inputs:
            raise ValueError(f"{name} is required: the model has {n_inputs} inputs")
        return np.zeros(0)
    s = as_float_array(s, name).ravel()
    if s.shape[0] != n_inputs:
        raise ValueError(f"{name} must have length {n_inputs}; got {s.shape[0]}")
    check_finite(s, name)
    return np.ascontiguousarray(s)


def positive_int(x, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum] (booleans are not integers here)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {type(x).__name__}")
    if x < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {x}")
    if maximum is not None and x > maximum:
        raise ValueError(f"{name} must be <= {maximum}; got {x}")
    return int(x)


def optional_int(x, name: str, minimum: int = 1, maximum: int | None = None) -> int | None:
    """``None`` or an integer in [minimum, maximum]."""
    return None if x is None else positive_int(x, name, minimum, maximum)


def finite_float(x, name: str, low: float | None = None, high: float | None = None,
                 open_low: bool = False) -> float:
    """A finite real number inside [low, high] (``(low, high]`` with ``open_low``)."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(x).__name__}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite; got {x}")
    if low is not None and (x <= low if open_low else x < low):
        raise ValueError(f"{name} must be {'>' if open_low else '>='} {low}; got {x}")
    if high is not None and x > high:
        raise ValueError(f"{name} must be <= {high}; got {x}")
    return x


def value_range(r, name: str) -> tuple[float, float]:
    """A ``(low, high)`` pair of finite reals with ``low <= high``."""
    if isinstance(r, (str, bytes)) or np.ndim(r) != 1 or len(r) != 2:
        raise TypeError(f"{name} must be a (low, high) pair of real numbers; got {r!r:.60}")
    lo, hi = (finite_float(v, name) for v in r)
    if lo > hi:
        raise ValueError(f"{name} must be (low, high) with low <= high; got {r!r:.60}")
    return lo, hi


def flag(x, name: str) -> bool:
    """A boolean option: ``True``/``False`` only (``0``/``1`` or strings are refused)."""
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {type(x).__name__} {x!r:.40}")
    return bool(x)


def choice(x, name: str, options) -> str:
    """One of the allowed string options."""
    if x not in options:
        raise ValueError(f"{name} must be one of {sorted(options)}; got {x!r}")
    return x


def carray(x, dtype=np.float64) -> np.ndarray:
    """C-contiguous, writeable array of ``dtype`` (float64 by default; copies only when needed).

    Kernels take C-contiguous writeable arrays; broadcast views and read-only
    arrays would not match their signatures.
    """
    if type(x) is np.ndarray and x.dtype == dtype and x.flags.c_contiguous and x.flags.writeable:
        return x  # the common case, without np.require's argument handling
    return np.require(x, dtype=dtype, requirements=["C", "W"])


def seed_sequence(seed, name: str = "seed") -> np.random.SeedSequence:
    """The one rule for ``seed`` arguments: an int >= 0, None or a ``numpy.random.Generator``.

    * an int gives ``SeedSequence(seed)`` (so ``default_rng(seed_sequence(s))`` is
      ``default_rng(s)``);
    * None draws a fresh 63-bit seed from the operating system;
    * a Generator is advanced by one draw, which becomes the seed.

    The returned sequence's ``entropy`` is always an int below ``2**63``: record it
    (it fits a netCDF int64 attribute) and pass it back as ``seed`` to repeat the run.
    """
    if seed is None:
        return np.random.SeedSequence(int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1))
    if isinstance(seed, np.random.Generator):
        return np.random.SeedSequence(int(seed.integers(2**63)))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(
            f"{name} must be a non-negative integer, None or a numpy.random.Generator; got {type(seed).__name__}"
        )
    if seed < 0:
        raise ValueError(f"{name} must be a non-negative integer, None or a numpy.random.Generator; got {seed}")
    return np.random.SeedSequence(int(seed))


def seed_value(seed, name: str = "seed") -> int:
    """The int that :func:`seed_sequence` records for ``seed`` (its ``entropy``), checked the same way.

    For an int this is the int itself, returned without building the sequence
    (callers that draw nothing record only this).
    """
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)) and seed >= 0:
        return int(seed)
    return int(seed_sequence(seed, name).entropy)


def generator(seed, name: str = "seed") -> tuple[np.random.Generator, int]:
    """``(numpy Generator, recorded seed)`` from a ``seed`` argument (see :func:`seed_sequence`)."""
    ss = seed_sequence(seed, name)
    return np.random.default_rng(ss), int(ss.entropy)


def input_stream(inputs, batch: int, n_total: int, n_inputs: int, steps: str = "steps",
                 name: str = "inputs") -> np.ndarray:
    """Validated external inputs of a run, as a (batch, n_total, K) float64 array.

    The one rule for ``inputs`` everywhere in the package: a constant ``(K,)``
    vector (the same input at every step), a ``(T, K)`` stream shared by every
    batch item, or a ``(B, T, K)`` stream per batch item; row ``t`` drives the
    step from ``z_t`` to ``z_{t+1}``.  ``None`` is allowed only for autonomous
    models (K = 0) and gives an empty stream.  ``steps`` names what
    ``n_total`` counts in the error message, ``name`` the argument.  The
    result may be a read-only broadcast view.
    """
    if inputs is None:
        if n_inputs:
            raise ValueError(
                f"{name} are required: the model has {n_inputs} inputs (shape ({n_inputs},), "
                f"({n_total}, {n_inputs}) or ({batch}, {n_total}, {n_inputs}))"
            )
        return np.zeros((batch, n_total, 0))
    if n_inputs == 0:
        raise ValueError(f"{name} were given but the model has no inputs (n_inputs=0); drop {name}")
    s = as_float_array(inputs, name)
    if s.ndim == 1 and s.shape[0] == n_inputs:
        s = np.broadcast_to(s, (batch, n_total, n_inputs))
    elif s.ndim == 2:
        s = np.broadcast_to(s[None], (batch,) + s.shape)
    if s.shape != (batch, n_total, n_inputs):
        raise ValueError(
            f"{name} must have shape ({n_inputs},) (constant), ({n_total}, {n_inputs}) or "
            f"({batch}, {n_total}, {n_inputs}) ({steps}); got {np.shape(inputs)}"
        )
    check_finite(s, name)
    return s


def constant_input(inputs, n_inputs: int, name: str = "inputs") -> np.ndarray | None:
    """A constant input vector (K,) for analyses of the autonomous map ``z -> F(z, s)``; None stays None."""
    if inputs is None:
        return None
    if n_inputs == 0:
        raise ValueError(f"{name} were given but the model has no inputs (n_inputs=0); drop {name}")
    s = as_float_array(inputs, name)
    if s.shape != (n_inputs,):
        raise ValueError(
            f"{name} must be one constant input vector of shape ({n_inputs},): this analysis studies the "
            f"autonomous map z -> F(z, s) for a fixed s; got shape {s.shape}"
        )
    check_finite(s, name)
    return np.ascontiguousarray(s)
