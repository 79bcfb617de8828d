"""Plain NumPy forward-mode reference for :class:`plrnn_numba.models.orthogonal.OrthogonalRNN`.

Written from the equations, in the style of :mod:`tests.naive` (and meant to be
folded into it: each function below is the ``isinstance(model, OrthogonalRNN)``
branch of the function of the same name there):

    h' = modReLU(W h + V u, b),  W = expm(S - S^T),  modReLU(z, b)_i = sign(z_i) relu(|z_i| + b_i).

The parameter Jacobian goes through the matrix exponential in *forward* mode:
``dW/dS_kl = L_exp(A, E_kl - E_lk)`` (the Fréchet derivative at ``A`` in the
direction of the perturbation of ``A``), one direction at a time, whereas the
package uses the adjoint ``L_exp(A^T, G)`` once: the two meet only through
the identity ``<G, L(A, E)> = <L(A^T, G), E>``, so the comparison checks it.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from .naive import naive_loss_terms, naive_readout, relu, step_fn


def n_params(model):
    """``N*N + N*K + N``: S, V and b."""
    N, K = model.n_units, model.n_inputs
    return N * N + N * K + N


def naive_params(model, theta):
    """``S (N, N), V (N, K), b (N,)`` from ``theta``, and the derived ``A = S - S^T``, ``W = expm(A)``."""
    theta = np.asarray(theta, dtype=float)
    N, K = model.n_units, model.n_inputs
    assert theta.shape == (n_params(model),)
    S = theta[: N * N].reshape(N, N).copy()
    V = theta[N * N : N * N + N * K].reshape(N, K).copy()
    b = theta[N * N + N * K :].copy()
    A = S - S.T
    return {"S": S, "V": V, "b": b, "A": A, "W": scipy.linalg.expm(A)}


def modrelu(z, b):
    """``sign(z) relu(|z| + b)``."""
    return np.sign(z) * relu(np.abs(z) + b)


def dmodrelu(z, b):
    """``[|z| + b > 0]`` (the package's convention at the kinks)."""
    return step_fn(np.abs(z) + b)


def _preactivation(model, p, z, s):
    s = np.zeros(model.n_inputs) if s is None else np.asarray(s, dtype=float)
    return p["W"] @ np.asarray(z, dtype=float) + p["V"] @ s, s


def naive_step(model, theta, z, s=None):
    """``modReLU(W z + V s, b)``."""
    p = naive_params(model, theta)
    h, _ = _preactivation(model, p, z, s)
    return modrelu(h, p["b"])


def naive_state_jacobian(model, theta, z, s=None):
    """``diag([|h| + b > 0]) W`` with ``h = W z + V s``."""
    p = naive_params(model, theta)
    h, _ = _preactivation(model, p, z, s)
    return np.diag(dmodrelu(h, p["b"])) @ p["W"]


def naive_param_jacobian(model, theta, z, s=None):
    """``dF/dtheta`` (N, P), entry by entry; the S block by forward Fréchet derivatives.

    ``dF_i/dS_kl = d_i (L_exp(A, E_kl - E_lk) z)_i``, ``dF_i/dV_ik = d_i s_k``,
    ``dF_i/db_i = sign(h_i) d_i``.
    """
    p = naive_params(model, theta)
    N, K = model.n_units, model.n_inputs
    z = np.asarray(z, dtype=float)
    h, s = _preactivation(model, p, z, s)
    d = dmodrelu(h, p["b"])
    J = np.zeros((N, n_params(model)))
    for k in range(N):
        for l_ in range(N):
            E = np.zeros((N, N))
            E[k, l_] += 1.0
            E[l_, k] -= 1.0
            dW = scipy.linalg.expm_frechet(p["A"], E, compute_expm=False)
            J[:, k * N + l_] = d * (dW @ z)
    o = N * N
    for i in range(N):
        for k in range(K):
            J[i, o + i * K + k] = d[i] * s[k]
    o += N * K
    for i in range(N):
        J[i, o + i] = np.sign(h[i]) * d[i]
    return J


def naive_kink_arguments(model, theta, z, s=None):
    """The arguments whose sign changes a step's derivative pattern: ``h`` and ``|h| + b`` (h = W z + V s).

    modReLU has a corner at ``|h_i| + b_i = 0`` and, for ``b_i > 0``, a jump at
    ``h_i = 0``.  Unlike the models of :mod:`tests.naive`, the arguments depend
    on the input ``s``.
    """
    p = naive_params(model, theta)
    h, _ = _preactivation(model, p, z, s)
    return np.concatenate([h, np.abs(h) + p["b"]])


def naive_loss_and_grad(model, theta, batch, readout=None, ro_params=None, loss="mse"):
    """Loss and gradients by forward-mode sensitivities (no forcing), as :func:`tests.naive.naive_loss_and_grad`.

    Returns
    -------
    loss : float
    grad : (P,) ndarray
    grad_readout : (R,) ndarray
    grad_z0 : (B, M) ndarray
    """
    X = np.asarray(batch.targets, dtype=float)
    Bn, T, N_out = X.shape
    M, P = model.dim, n_params(model)
    S_in = np.zeros((Bn, T, model.n_inputs)) if batch.inputs is None else np.asarray(batch.inputs, dtype=float)
    z0 = np.zeros((Bn, M)) if batch.z0 is None else np.asarray(batch.z0, dtype=float)
    mask = np.ones((Bn, T)) if batch.mask is None else np.asarray(batch.mask, dtype=float)
    R = 0 if ro_params is None else np.asarray(ro_params).size
    count = N_out * mask.sum()
    total, g_theta, g_ro, g_z0 = 0.0, np.zeros(P), np.zeros(R), np.zeros((Bn, M))
    for b in range(Bn):
        z = z0[b].copy()
        St = np.zeros((M, P))  # d z_t / d theta
        Sz = np.eye(M)  # d z_t / d z_0[b]
        for t in range(T):
            Jz = naive_state_jacobian(model, theta, z, S_in[b, t])
            Jp = naive_param_jacobian(model, theta, z, S_in[b, t])
            z = naive_step(model, theta, z, S_in[b, t])
            St = Jz @ St + Jp
            Sz = Jz @ Sz
            y, dy_dz, dy_dro = naive_readout(readout, ro_params, z, N_out, model, theta)
            val, dval = naive_loss_terms(loss, y, X[b, t])
            w = mask[b, t] / count
            total += w * val.sum()
            gy = w * dval
            g_theta += gy @ dy_dz @ St
            g_ro += gy @ dy_dro
            g_z0[b] += gy @ dy_dz @ Sz
    return total, g_theta, g_ro, g_z0
