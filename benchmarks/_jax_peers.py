"""JAX peers for the benchmark scripts: loss and gradient by ``jax.jit(jax.value_and_grad(...))`` over ``lax.scan``.

Each builder takes the package's model, parameters and data (numpy, float64),
copies them to JAX arrays of the requested dtype (``"float64"`` or
``"float32"``; data pre-transposed to time-major outside the timed function)
and returns ``(run, result)``:

* ``run()`` — one call of the jitted loss-and-gradient function, with
  ``jax.block_until_ready`` on the result (the function that is timed; its
  first call traces and compiles);
* ``result()`` — the loss and gradients as float64 numpy arrays in the
  package's layout (the tuple the torch side of the same script returns), for
  the check against the package before timing.

JAX is imported on first use (:func:`jax_modules`), with
``jax_enable_x64`` on so that float64 arrays stay float64; float32 builds
the same function with float32 arrays (weakly typed Python scalars keep it
float32).  Set ``XLA_FLAGS`` before the first use for one XLA thread
(``_common.limit_threads`` does).  :func:`available` says whether JAX is
installed; nothing here imports it otherwise.
"""

from __future__ import annotations

import importlib.util

import numpy as np

_JAX = None


def available() -> bool:
    """Whether JAX is installed (without importing it)."""
    try:
        return importlib.util.find_spec("jax") is not None
    except (ImportError, ValueError):
        return False


def jax_modules():
    """``(jax, jax.numpy)``, imported once, with ``jax_enable_x64`` on."""
    global _JAX
    if _JAX is None:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        _JAX = (jax, jnp)
    return _JAX


def status(skip: bool) -> tuple[bool, str]:
    """``(use_jax, note)`` for a report: JAX's version, or why its columns are skipped (``--no-jax``)."""
    if skip:
        return False, "not run (`--no-jax`)"
    if not available():
        return False, "not installed: the JAX columns are skipped (n/a)"
    return True, version()


def version() -> str:
    jax, _ = jax_modules()
    import jaxlib

    return f"{jax.__version__} (jaxlib {jaxlib.__version__}, backend {jax.default_backend()})"


def _np(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _arrays(dtype, *arrays):
    _, jnp = jax_modules()
    dt = np.dtype(dtype)
    return tuple(jnp.asarray(np.ascontiguousarray(a, dtype=dt)) for a in arrays)


def _time_major(a: np.ndarray) -> np.ndarray:
    """(B, T, ...) -> (T, B, ...), contiguous."""
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))


# ----------------------------------------------------------------------------- BPTT models
def plrnn(model, theta, batch, alpha: float = 0.0, dtype="float64", n_obs: int = 3):
    """PLRNN ``z_t = A * z_{t-1} + relu(z_{t-1}) @ W.T + h`` (zero-diagonal W), MSE on the first ``n_obs`` states.

    ``alpha > 0``: generalized teacher forcing after every step, the first
    ``n_obs`` states replaced by ``(1 - alpha) z + alpha x_t`` (the loss is on
    the unforced prediction).  ``result()`` returns ``(loss, grad_theta, grad_z0)``
    with ``grad_theta = A | off-diagonal W (row-major) | h`` as ``model.unpack``.
    """
    jax, jnp = jax_modules()
    M = model.dim
    d = model.unpack(theta)
    off_idx = np.flatnonzero(~np.eye(M, dtype=bool).ravel())
    A, W, h, z0, X, mask = _arrays(dtype, d["A"], d["W"], d["h"], batch.z0, _time_major(batch.targets),
                                   1.0 - np.eye(M))
    alpha = float(alpha)

    def loss(A, W, h, z0, X):
        WT = (W * mask).T  # the diagonal stays zero: its gradient is masked

        def step(z, x):
            z = A * z + jax.nn.relu(z) @ WT + h
            y = z[:, :n_obs]
            if alpha:
                z = jnp.concatenate(((1.0 - alpha) * y + alpha * x, z[:, n_obs:]), axis=1)
            return z, y

        _, Y = jax.lax.scan(step, z0, X)  # (T, B, n_obs)
        return jnp.mean((Y - X) ** 2)

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))

    def run():
        return jax.block_until_ready(f(A, W, h, z0, X))

    def result():
        val, (gA, gW, gh, gz0) = run()
        g = np.concatenate([_np(gA), _np(gW).ravel()[off_idx], _np(gh)])
        return float(val), g, _np(gz0)

    return run, result


def tanh_rnn(model, theta, batch, dtype="float64", n_obs: int = 3):
    """tanh RNN ``z_t = tanh(z_{t-1}) @ W.T + V x_t + b``, MSE on the first ``n_obs`` states.

    The input term ``V x_t + b`` for all steps is one product before the scan.
    ``result()``: ``(loss, grad_theta = W | V | b, grad_z0)``.
    """
    jax, jnp = jax_modules()
    d = model.unpack(theta)
    W, V, b, z0, S, X = _arrays(dtype, d["W"], d["V"], d["b"], batch.z0, _time_major(batch.inputs),
                                _time_major(batch.targets))

    def loss(W, V, b, z0, S, X):
        U = S @ V.T + b  # (T, B, M)
        WT = W.T

        def step(z, u):
            z = jnp.tanh(z) @ WT + u
            return z, z[:, :n_obs]

        _, Y = jax.lax.scan(step, z0, U)
        return jnp.mean((Y - X) ** 2)

    f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))

    def run():
        return jax.block_until_ready(f(W, V, b, z0, S, X))

    def result():
        val, (gW, gV, gb, gz0) = run()
        return float(val), np.concatenate([_np(gW).ravel(), _np(gV).ravel(), _np(gb)]), _np(gz0)

    return run, result


def lstm(model, theta, batch, ro, dtype="float64"):
    """One-layer LSTM with torch's gates (i, f, g, o); loss ``mean((w . h_t + b_out - y_t)^2)``.

    ``ro`` is the package's ``LinearReadout(1)`` parameters (weights on h,
    weights on c (zero, not used), bias).  The input projection
    ``x_t W_ih^T + b_ih + b_hh`` for all steps is one product before the
    scan; per step one ``h @ W_hh^T``, the gates, and the readout ``h . w``.
    ``result()``: ``(loss, grad_theta = W_ih | W_hh | b_ih | b_hh, grad_readout = (w, b_out),
    grad_z0 = (h0, c0))``, as the torch side of bench_lstm.py.
    """
    jax, jnp = jax_modules()
    N = model.n_hidden
    d = model.unpack(theta)
    Wih, Whh, bih, bhh, w, b_out, h0, c0, U, Y = _arrays(
        dtype, d["weight_ih"], d["weight_hh"], d["bias_ih"], d["bias_hh"], ro[:N], ro[-1:], batch.z0[:, :N],
        batch.z0[:, N:], _time_major(batch.inputs), _time_major(batch.targets[..., 0]))
    sig = jax.nn.sigmoid

    def loss(Wih, Whh, bih, bhh, w, b_out, h0, c0, U, Y):
        P = U @ Wih.T + (bih + bhh)  # (T, B, 4N)
        WhhT = Whh.T

        def step(carry, p):
            h, c = carry
            a = h @ WhhT + p
            i, f, g, o = sig(a[:, :N]), sig(a[:, N:2 * N]), jnp.tanh(a[:, 2 * N:3 * N]), sig(a[:, 3 * N:])
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), h @ w

        _, out = jax.lax.scan(step, (h0, c0), P)  # (T, B)
        return jnp.mean((out + b_out - Y) ** 2)

    f = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(8))))
    args = (Wih, Whh, bih, bhh, w, b_out, h0, c0, U, Y)

    def run():
        return jax.block_until_ready(f(*args))

    def result():
        val, g = run()
        g_theta = np.concatenate([_np(x).ravel() for x in g[:4]])
        g_ro = np.concatenate([_np(g[4]), _np(g[5])])
        return float(val), g_theta, g_ro, np.concatenate([_np(g[6]), _np(g[7])], axis=1)

    return run, result


# ------------------------------------------------------------------------------- flossing
def flossing(W, b, z0, q0, T: int, dtype="float64", grad: bool = True):
    """tanh RNN ``h <- W tanh(h) + b``: k exponents by QR every step over T steps (``jnp.linalg.qr``).

    ``grad=True``: the flossing loss ``sum_i lambda_i^2`` and its gradient
    (``result() -> (loss, grad = W (row-major) | b)``, as bench_flossing.py's
    torch side); ``grad=False``: the forward pass only, the spectrum
    ``lambda`` (``result() -> (loss, None)``).
    """
    jax, jnp = jax_modules()
    W, b, h0, Q0 = _arrays(dtype, W, b, z0, q0)

    def spectrum(W, b, h0, Q0):
        def step(carry, _):
            h, Q, logs = carry
            th = jnp.tanh(h)
            Q, R = jnp.linalg.qr(W @ ((1.0 - th**2)[:, None] * Q))  # the Jacobian W diag(1 - tanh^2) times Q
            r = jnp.diagonal(R)
            Q = Q * jnp.sign(r)[None, :]  # positive diagonal of R
            return (W @ th + b, Q, logs + jnp.log(jnp.abs(r))), None

        (_, _, logs), _ = jax.lax.scan(step, (h0, Q0, jnp.zeros_like(Q0[0])), None, length=T)
        return logs / T

    def loss(W, b, h0, Q0):
        return jnp.sum(spectrum(W, b, h0, Q0) ** 2)

    if grad:
        f = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    else:
        f = jax.jit(spectrum)

    def run():
        return jax.block_until_ready(f(W, b, h0, Q0))

    def result():
        out = run()
        if not grad:
            return float(np.sum(_np(out) ** 2)), None
        val, (gW, gb) = out
        return float(val), np.concatenate([_np(gW).ravel(), _np(gb)])

    return run, result


# ------------------------------------------------------------------------------------ QR
def qr_loop(Y, n: int, dtype="float64"):
    """``n`` QR factorisations of ``Y`` (``jnp.linalg.qr``) inside one jitted ``lax.scan``.

    Each iteration factorises a copy of ``Y`` scaled by a carried factor (so XLA cannot hoist the
    factorisation out of the loop) and adds an entry of each factor to the carry (so that neither is
    dead code), as bench_qr.py's compiled loops use theirs.  ``run()`` makes the n factorisations;
    ``result()`` is ``(Q, R)`` of ``Y`` with a positive diagonal of ``R``.
    """
    jax, jnp = jax_modules()
    (Yj,) = _arrays(dtype, Y)

    def body(carry, _):
        q, r = jnp.linalg.qr(Yj * carry)
        # both factors feed the carry: an unused Q would be dropped by XLA (no orgqr call)
        return carry + 1e-300 * (r[0, 0] + q[-1, -1]), None

    f = jax.jit(lambda: jax.lax.scan(body, jnp.ones((), Yj.dtype), None, length=n)[0])
    qr = jax.jit(jnp.linalg.qr)

    def run():
        return jax.block_until_ready(f())

    def result():
        q, r = (_np(x) for x in qr(Yj))
        s = np.sign(np.diag(r))
        return q * s[None, :], r * s[:, None]

    return run, result
