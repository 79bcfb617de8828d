"""Plain-NumPy reference implementation of the forward pass and its gradient.

Everything here is written directly from the model equations, one state at a
time, with explicit loops and dense Jacobians, so that each line can be checked
against the mathematics by eye.  It shares no code with the package's numba
kernels: the only things taken from ``plrnn_numba`` are the model and readout
*descriptions* (dimensions and flags) and the forcing objects' settings.

The gradient is computed by **forward-mode** sensitivity propagation

.. math::

    S_t = \\frac{\\partial z_t}{\\partial \\theta}
        = J_z(\\tilde z_{t-1}) \\tilde S_{t-1} + J_\\theta(\\tilde z_{t-1}),
    \\qquad \\tilde S_t = P_t S_t,

with ``P_t = diag(1 - a_t`` on the forced components, ``1`` elsewhere), and
the loss gradient accumulated as ``sum_t (dL/dz_t) S_t``.  This is an
algorithm independent of the package's reverse mode (BPTT).

Conventions: ``relu'(0) = 0`` (the pattern is ``z > 0``); ``theta`` layouts are
those of the package documentation:

* PLRNN: ``A (M) | W (off-diagonal entries row by row, M(M-1); or M*M) | C (M*K) | h (M)``
* ShallowPLRNN: ``A (M) | W1 (M*H) | W2 (H*M) | h1 (M) | h2 (H) | C (M*K)``
* VanillaRNN: ``W (N*N) | V (N*K) | b (N)``
* RateRNN: ``W (N*N) | V (N*K) | b (N)`` (full W), or
  ``m (N*R) | n (R*N) | V (N*K) | b (N)`` with ``W = m n`` (rank R)
* LSTM: ``weight_ih (4N*K) | weight_hh (4N*N) | bias_ih (4N) | bias_hh (4N)``
  (PyTorch's parameters, gate blocks in the order i, f, g, o; no biases with
  ``bias=False``); the state is ``z = (h, c)``
* OrthogonalRNN: ``S (N*N) | V (N*K) | b (N)`` with ``W = expm(S - S^T)``
  (``generator="upper"``: ``S`` replaced by its strict upper triangle)

The rate RNN (Dinc et al., "A ghost mechanism: an analytical model of abrupt
learning") is written from ``x' = (1 - a) x + a tanh(W x + V s + b)`` with the
dense ``W``; its tied readout ``y = c (n_1 . x - kappa*)`` reads ``n_1``, the
first row of ``n``, directly from the layout above.

The orthogonal RNN (expRNN with modReLU) is written from
``h' = modReLU(W h + V s, b)``, ``W = expm(S - S^T)``,
``modReLU(z, b)_i = sign(z_i) relu(|z_i| + b_i)``.  Its parameter Jacobian goes
through the matrix exponential in *forward* mode:
``dW/dS_kl = L_exp(A, E_kl - E_lk)`` (the Fréchet derivative at ``A = S - S^T``
in the direction of the perturbation of ``A``), one direction at a time,
whereas the package uses the adjoint ``L_exp(A^T, G)`` once: the two meet only
through the identity ``<G, L(A, E)> = <L(A^T, G), E>``, so the comparison
checks it.  modReLU's kinks depend on the input, so its kink arguments come
from :func:`naive_orthogonal_kink_arguments` (which takes ``s``), not from
:func:`naive_kink_arguments`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from plrnn_numba import GTF, PLRNN, FreeRunning, LinearReadout, ShallowPLRNN, SparseTF, VanillaRNN
from plrnn_numba.models import LSTM, OrthogonalRNN, RateRNN
from plrnn_numba.readouts import LatentReadout


# -- small helpers -------------------------------------------------------------------
def relu(x):
    """Rectified linear unit ``max(x, 0)``.

    Parameters
    ----------
    x : array_like
        Input.

    Returns
    -------
    ndarray
        ``x`` where ``x > 0``, else 0.
    """
    x = np.asarray(x, dtype=float)
    return np.where(x > 0.0, x, 0.0)


def step_fn(x):
    """Derivative of :func:`relu` with the convention ``relu'(0) = 0``.

    Parameters
    ----------
    x : array_like
        Input.

    Returns
    -------
    ndarray
        1.0 where ``x > 0``, else 0.0.
    """
    return (np.asarray(x) > 0.0).astype(float)


def n_params(model):
    """Length of ``theta`` for ``model``, counted from the documented layout.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.

    Returns
    -------
    int
        Number of free parameters.
    """
    if isinstance(model, PLRNN):
        M, K = model.dim, model.n_inputs
        n_w = M * M if model.full_W else M * (M - 1)
        return M + n_w + M * K + M
    if isinstance(model, ShallowPLRNN):
        M, H, K = model.dim, model.hidden, model.n_inputs
        return M + M * H + H * M + M + H + M * K
    if isinstance(model, VanillaRNN):
        N, K = model.n_hidden, model.n_inputs
        return N * N + N * K + N
    if isinstance(model, RateRNN):
        N, K, R = model.n_units, model.n_inputs, model.rank
        return (N * N if R is None else 2 * N * R) + N * K + N
    if isinstance(model, LSTM):
        N, K = model.n_hidden, model.n_inputs
        return 4 * N * K + 4 * N * N + (8 * N if model.bias else 0)
    if isinstance(model, OrthogonalRNN):
        N, K = model.n_units, model.n_inputs
        return N * N + N * K + N  # S, V, b
    raise TypeError(f"no reference implementation for {type(model).__name__}")


def naive_params(model, theta):
    """Dense named parameter arrays read from ``theta`` by the documented layout.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Flat parameter vector.

    Returns
    -------
    dict of str to ndarray
        PLRNN: ``A (M,), W (M, M), C (M, K), h (M,)`` (W with a zero diagonal
        unless ``full_W``); ShallowPLRNN: ``A, W1 (M, H), W2 (H, M), h1, h2,
        C``; VanillaRNN: ``W (N, N), V (N, K), b (N,)``; RateRNN: ``W (N, N)``
        (for rank R also ``m (N, R), n (R, N)`` and ``W = m n``), ``V, b``;
        LSTM: ``W_ih, W_hh, b_ih, b_hh``; OrthogonalRNN: ``S (N, N), V (N, K),
        b (N,)`` and the derived ``A = S - S^T``, ``W = expm(A)``.
    """
    theta = np.asarray(theta, dtype=float)
    assert theta.shape == (n_params(model),)
    o = 0
    if isinstance(model, PLRNN):
        M, K = model.dim, model.n_inputs
        A = theta[o : o + M].copy()
        o += M
        W = np.zeros((M, M))
        for i in range(M):
            for j in range(M):
                if model.full_W or i != j:
                    W[i, j] = theta[o]
                    o += 1
        C = theta[o : o + M * K].reshape(M, K).copy()
        o += M * K
        h = theta[o : o + M].copy()
        o += M
        out = {"A": A, "W": W, "C": C, "h": h}
    elif isinstance(model, ShallowPLRNN):
        M, H, K = model.dim, model.hidden, model.n_inputs
        A = theta[o : o + M].copy()
        o += M
        W1 = theta[o : o + M * H].reshape(M, H).copy()
        o += M * H
        W2 = theta[o : o + H * M].reshape(H, M).copy()
        o += H * M
        h1 = theta[o : o + M].copy()
        o += M
        h2 = theta[o : o + H].copy()
        o += H
        C = theta[o : o + M * K].reshape(M, K).copy()
        o += M * K
        out = {"A": A, "W1": W1, "W2": W2, "h1": h1, "h2": h2, "C": C}
    elif isinstance(model, RateRNN):
        N, K, R = model.n_units, model.n_inputs, model.rank
        out = {}
        if R is None:
            W = theta[o : o + N * N].reshape(N, N).copy()
            o += N * N
        else:
            m = theta[o : o + N * R].reshape(N, R).copy()
            o += N * R
            n = theta[o : o + R * N].reshape(R, N).copy()
            o += R * N
            W = np.zeros((N, N))
            for i in range(N):
                for j in range(N):
                    W[i, j] = sum(m[i, q] * n[q, j] for q in range(R))
            out.update(m=m, n=n)
        V = theta[o : o + N * K].reshape(N, K).copy()
        o += N * K
        b = theta[o : o + N].copy()
        o += N
        out.update(W=W, V=V, b=b)
    elif isinstance(model, LSTM):
        # weight_ih (4N, K), weight_hh (4N, N), bias_ih, bias_hh (4N,) (zero without biases)
        N, K = model.n_hidden, model.n_inputs
        W_ih = theta[o : o + 4 * N * K].reshape(4 * N, K).copy()
        o += 4 * N * K
        W_hh = theta[o : o + 4 * N * N].reshape(4 * N, N).copy()
        o += 4 * N * N
        b_ih, b_hh = np.zeros(4 * N), np.zeros(4 * N)
        if model.bias:
            b_ih = theta[o : o + 4 * N].copy()
            o += 4 * N
            b_hh = theta[o : o + 4 * N].copy()
            o += 4 * N
        out = {"W_ih": W_ih, "W_hh": W_hh, "b_ih": b_ih, "b_hh": b_hh}
    elif isinstance(model, OrthogonalRNN):
        # S (N, N), V (N, K), b (N,), and the derived A = S - S^T, W = expm(A)
        N, K = model.n_units, model.n_inputs
        S = theta[o : o + N * N].reshape(N, N).copy()
        o += N * N
        V = theta[o : o + N * K].reshape(N, K).copy()
        o += N * K
        b = theta[o : o + N].copy()
        o += N
        U = np.triu(S, 1) if model.generator == "upper" else S  # expRNN reads only the strict upper triangle
        A = U - U.T
        out = {"S": S, "V": V, "b": b, "A": A, "W": scipy.linalg.expm(A)}
    else:
        N, K = model.n_hidden, model.n_inputs
        W = theta[o : o + N * N].reshape(N, N).copy()
        o += N * N
        V = theta[o : o + N * K].reshape(N, K).copy()
        o += N * K
        b = theta[o : o + N].copy()
        o += N
        out = {"W": W, "V": V, "b": b}
    assert o == theta.size
    return out


def _phi(model, x):
    # transfer function of the vanilla RNN
    return np.tanh(x) if model.nonlinearity == "tanh" else relu(x)


def _dphi(model, x):
    return 1.0 - np.tanh(x) ** 2 if model.nonlinearity == "tanh" else step_fn(x)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def _lstm_forward(model, p, z, s):
    """Pre-activations, gates and the new cell state of one LSTM step (PyTorch's equations).

    ``a = W_ih s + b_ih + W_hh h + b_hh`` split into ``(a_i, a_f, a_g, a_o)``;
    ``i, f, o = sigmoid(a_i, a_f, a_o)``, ``g = tanh(a_g)``, ``c' = f c + i g``.
    """
    N = model.n_hidden
    h, c = z[:N], z[N:]
    a = p["W_ih"] @ s + p["b_ih"] + p["W_hh"] @ h + p["b_hh"]
    i, f, g, o = _sigmoid(a[:N]), _sigmoid(a[N : 2 * N]), np.tanh(a[2 * N : 3 * N]), _sigmoid(a[3 * N :])
    c_new = f * c + i * g
    return a, i, f, g, o, c_new


def _lstm_output_by_preactivation(model, p, z, s):
    """``dz'/da`` (2N, 4N) of one LSTM step at fixed ``c``: the chain rule through the gates."""
    N = model.n_hidden
    _, i, f, g, o, c_new = _lstm_forward(model, p, z, s)
    c = z[N:]
    dc_da = np.hstack([np.diag(g * i * (1.0 - i)), np.diag(c * f * (1.0 - f)), np.diag(i * (1.0 - g**2)),
                       np.zeros((N, N))])
    tc = np.tanh(c_new)
    dh_da = np.diag(o * (1.0 - tc**2)) @ dc_da
    dh_da[:, 3 * N :] += np.diag(tc * o * (1.0 - o))
    return np.vstack([dh_da, dc_da])


def modrelu(z, b):
    """modReLU of the orthogonal RNN, ``sign(z) relu(|z| + b)``.

    Parameters
    ----------
    z, b : array_like
        Pre-activations and biases.

    Returns
    -------
    ndarray
        ``sign(z_i) max(|z_i| + b_i, 0)``.
    """
    return np.sign(z) * relu(np.abs(z) + b)


def dmodrelu(z, b):
    """Derivative of :func:`modrelu` with respect to ``z``: ``[|z| + b > 0]`` (the package's convention at the kinks).

    Parameters
    ----------
    z, b : array_like
        Pre-activations and biases.

    Returns
    -------
    ndarray
        1.0 where ``|z| + b > 0``, else 0.0.
    """
    return step_fn(np.abs(z) + b)


def _orthogonal_preactivation(model, p, z, s):
    # h = W z + V s of the orthogonal RNN, and the input as an array
    s = np.zeros(model.n_inputs) if s is None else np.asarray(s, dtype=float)
    return p["W"] @ np.asarray(z, dtype=float) + p["V"] @ s, s


# -- one step of the map and its Jacobians -------------------------------------------
def naive_step(model, theta, z, s=None):
    """One step ``F(z, s)`` of the map for a single state.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State.
    s : (K,) array, optional
        External input (absent or empty for an autonomous model).

    Returns
    -------
    (M,) ndarray
        The next state.
    """
    p = naive_params(model, theta)
    z = np.asarray(z, dtype=float)
    s = np.zeros(model.n_inputs) if s is None else np.asarray(s, dtype=float)
    if isinstance(model, PLRNN):
        return p["A"] * z + p["W"] @ relu(z) + p["C"] @ s + p["h"]
    if isinstance(model, ShallowPLRNN):
        hidden = relu(p["W2"] @ z + p["h2"])
        if model.clipped:
            hidden = hidden - relu(p["W2"] @ z)
        return p["A"] * z + p["W1"] @ hidden + p["h1"] + p["C"] @ s
    if isinstance(model, RateRNN):
        a = model.alpha
        return (1.0 - a) * z + a * np.tanh(p["W"] @ z + p["V"] @ s + p["b"])
    if isinstance(model, LSTM):
        # h' = o tanh(c'), c' = f c + i g
        _, i, f, g, o, c_new = _lstm_forward(model, p, z, s)
        return np.concatenate([o * np.tanh(c_new), c_new])
    if isinstance(model, OrthogonalRNN):
        # modReLU(W z + V s, b)
        h, _ = _orthogonal_preactivation(model, p, z, s)
        return modrelu(h, p["b"])
    return p["W"] @ _phi(model, z) + p["V"] @ s + p["b"]


def naive_state_jacobian(model, theta, z, s=None):
    """Dense one-step state Jacobian ``dF/dz`` at ``z``.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State.
    s : (K,) array, optional
        External input (the Jacobian does not depend on it).

    Returns
    -------
    (M, M) ndarray
        ``J[i, j] = dF_i / dz_j``.
    """
    p = naive_params(model, theta)
    z = np.asarray(z, dtype=float)
    if isinstance(model, PLRNN):
        # A + W diag(z > 0)
        return np.diag(p["A"]) + p["W"] @ np.diag(step_fn(z))
    if isinstance(model, ShallowPLRNN):
        # A + W1 diag(d1 - clipped * d2) W2
        d = step_fn(p["W2"] @ z + p["h2"])
        if model.clipped:
            d = d - step_fn(p["W2"] @ z)
        return np.diag(p["A"]) + p["W1"] @ np.diag(d) @ p["W2"]
    if isinstance(model, RateRNN):
        # (1 - a) I + a diag(1 - tanh^2(h)) W,  h = W z + V s + b
        a = model.alpha
        s = np.zeros(model.n_inputs) if s is None else np.asarray(s, dtype=float)
        h = p["W"] @ z + p["V"] @ s + p["b"]
        return (1.0 - a) * np.eye(model.dim) + a * np.diag(1.0 - np.tanh(h) ** 2) @ p["W"]
    if isinstance(model, LSTM):
        # through the pre-activations (da/dh = W_hh) plus the direct paths of c:
        # dc'/dc = diag(f), dh'/dc = diag(o (1 - tanh^2 c')) diag(f)
        N = model.n_hidden
        s = np.zeros(model.n_inputs) if s is None else np.asarray(s, dtype=float)
        _, i, f, g, o, c_new = _lstm_forward(model, p, z, s)
        J = np.zeros((2 * N, 2 * N))
        J[:, :N] = _lstm_output_by_preactivation(model, p, z, s) @ p["W_hh"]
        J[N:, N:] = np.diag(f)
        J[:N, N:] = np.diag(o * (1.0 - np.tanh(c_new) ** 2) * f)
        return J
    if isinstance(model, OrthogonalRNN):
        # diag([|h| + b > 0]) W,  h = W z + V s
        h, _ = _orthogonal_preactivation(model, p, z, s)
        return np.diag(dmodrelu(h, p["b"])) @ p["W"]
    # W diag(phi'(z))
    return p["W"] @ np.diag(_dphi(model, z))


def naive_param_jacobian(model, theta, z, s=None):
    """Dense one-step parameter Jacobian ``dF/dtheta`` in the layout of ``theta``.

    Written entry by entry from the model equations (partial derivatives of
    ``F_i`` with respect to each free parameter, in the order of ``theta``).

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State.
    s : (K,) array, optional
        External input.

    Returns
    -------
    (M, P) ndarray
        ``J[i, q] = dF_i / dtheta_q``.
    """
    p = naive_params(model, theta)
    z = np.asarray(z, dtype=float)
    K = model.n_inputs
    s = np.zeros(K) if s is None else np.asarray(s, dtype=float)
    M = model.dim
    P = n_params(model)
    J = np.zeros((M, P))
    o = 0
    if isinstance(model, PLRNN):
        r = relu(z)
        for i in range(M):  # dF_i/dA_i = z_i
            J[i, o + i] = z[i]
        o += M
        for i in range(M):  # dF_i/dW_ij = relu(z_j), W stored row by row
            for j in range(M):
                if model.full_W or i != j:
                    J[i, o] = r[j]
                    o += 1
        for i in range(M):  # dF_i/dC_ik = s_k
            for k in range(K):
                J[i, o + i * K + k] = s[k]
        o += M * K
        for i in range(M):  # dF_i/dh_i = 1
            J[i, o + i] = 1.0
        o += M
    elif isinstance(model, ShallowPLRNN):
        H = model.hidden
        W1, W2, h2 = p["W1"], p["W2"], p["h2"]
        u = W2 @ z + h2
        v = relu(u)  # hidden output
        dv = step_fn(u)  # d hidden output / d (W2 z)
        if model.clipped:
            v = v - relu(W2 @ z)
            dv = dv - step_fn(W2 @ z)
        for i in range(M):  # dF_i/dA_i = z_i
            J[i, o + i] = z[i]
        o += M
        for i in range(M):  # dF_i/dW1_ij = v_j
            for j in range(H):
                J[i, o + i * H + j] = v[j]
        o += M * H
        for i in range(M):  # dF_i/dW2_jl = W1_ij dv_j z_l
            for j in range(H):
                for l_ in range(M):
                    J[i, o + j * M + l_] = W1[i, j] * dv[j] * z[l_]
        o += H * M
        for i in range(M):  # dF_i/dh1_i = 1
            J[i, o + i] = 1.0
        o += M
        for i in range(M):  # dF_i/dh2_j = W1_ij relu'(u_j)  (relu(W2 z) does not see h2)
            for j in range(H):
                J[i, o + j] = W1[i, j] * step_fn(u[j])
        o += H
        for i in range(M):  # dF_i/dC_ik = s_k
            for k in range(K):
                J[i, o + i * K + k] = s[k]
        o += M * K
    elif isinstance(model, RateRNN):
        # F_i = (1 - a) z_i + a tanh(h_i): dF_i/dq = a (1 - tanh^2 h_i) dh_i/dq
        a, R = model.alpha, model.rank
        h = p["W"] @ z + p["V"] @ s + p["b"]
        d = a * (1.0 - np.tanh(h) ** 2)
        if R is None:
            for i in range(M):  # dh_i/dW_ij = z_j
                for j in range(M):
                    J[i, o + i * M + j] = d[i] * z[j]
            o += M * M
        else:
            kappa = p["n"] @ z
            for i in range(M):  # dh_i/dm_iq = kappa_q = n_q . z
                for q in range(R):
                    J[i, o + i * R + q] = d[i] * kappa[q]
            o += M * R
            for i in range(M):  # dh_i/dn_qj = m_iq z_j
                for q in range(R):
                    for j in range(M):
                        J[i, o + q * M + j] = d[i] * p["m"][i, q] * z[j]
            o += R * M
        for i in range(M):  # dh_i/dV_ik = s_k
            for k in range(K):
                J[i, o + i * K + k] = d[i] * s[k]
        o += M * K
        for i in range(M):  # dh_i/db_i = 1
            J[i, o + i] = d[i]
        o += M
    elif isinstance(model, LSTM):
        # dF/dtheta = dF/da da/dtheta, a = W_ih s + b_ih + W_hh h + b_hh
        N = model.n_hidden
        h = z[:N]
        D = _lstm_output_by_preactivation(model, p, z, s)  # (2N, 4N)
        for q in range(4 * N):  # da_q/dW_ih[q, k] = s_k
            for k in range(K):
                J[:, o + q * K + k] = D[:, q] * s[k]
        o += 4 * N * K
        for q in range(4 * N):  # da_q/dW_hh[q, j] = h_j
            for j in range(N):
                J[:, o + q * N + j] = D[:, q] * h[j]
        o += 4 * N * N
        if model.bias:
            for _ in range(2):  # da_q/db_ih[q] = da_q/db_hh[q] = 1
                for q in range(4 * N):
                    J[:, o + q] = D[:, q]
                o += 4 * N
    elif isinstance(model, OrthogonalRNN):
        # F_i = modReLU(h_i, b_i), h = W z + V s, W = expm(A), A = S - S^T; with d_i = [|h_i| + b_i > 0]:
        # dF_i/dS_kl = d_i (L_exp(A, E_kl - E_lk) z)_i  (forward Frechet derivative, one direction at a time),
        # dF_i/dV_ik = d_i s_k, dF_i/db_i = sign(h_i) d_i
        h, _ = _orthogonal_preactivation(model, p, z, s)
        d = dmodrelu(h, p["b"])
        for k in range(M):
            for l_ in range(M):
                if model.generator == "upper" and l_ <= k:
                    continue  # A = triu(S, 1) - triu(S, 1)^T does not read S_kl there
                E = np.zeros((M, M))
                E[k, l_] += 1.0
                E[l_, k] -= 1.0
                dW = scipy.linalg.expm_frechet(p["A"], E, compute_expm=False)
                J[:, o + k * M + l_] = d * (dW @ z)
        o += M * M
        for i in range(M):  # dF_i/dV_ik = d_i s_k
            for k in range(K):
                J[i, o + i * K + k] = d[i] * s[k]
        o += M * K
        for i in range(M):  # dF_i/db_i = sign(h_i) d_i
            J[i, o + i] = np.sign(h[i]) * d[i]
        o += M
    else:
        f = _phi(model, z)
        for i in range(M):  # dF_i/dW_ij = phi(z_j)
            for j in range(M):
                J[i, o + i * M + j] = f[j]
        o += M * M
        for i in range(M):  # dF_i/dV_ik = s_k
            for k in range(K):
                J[i, o + i * K + k] = s[k]
        o += M * K
        for i in range(M):  # dF_i/db_i = 1
            J[i, o + i] = 1.0
        o += M
    assert o == P
    return J


def naive_kink_arguments(model, theta, z):
    """Arguments of every ReLU evaluated in one step.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State the step starts from.

    Returns
    -------
    ndarray
        Every ReLU argument (the kink is at 0; empty for a tanh RNN).
    """
    if isinstance(model, OrthogonalRNN):
        raise TypeError("the kinks of OrthogonalRNN depend on the input: use naive_orthogonal_kink_arguments")
    p = naive_params(model, theta)
    if isinstance(model, PLRNN):
        args = z
    elif isinstance(model, (RateRNN, LSTM)):
        args = np.zeros(0)  # tanh and sigmoid units: no kinks
    elif isinstance(model, ShallowPLRNN):
        args = p["W2"] @ z + p["h2"]
        if model.clipped:
            args = np.concatenate([args, p["W2"] @ z])
    elif model.nonlinearity == "relu":
        args = z
    else:
        args = np.zeros(0)
    return np.asarray(args, dtype=float)


def naive_orthogonal_kink_arguments(model, theta, z, s=None):
    """The arguments whose sign changes an OrthogonalRNN step's derivative pattern.

    modReLU has a corner at ``|h_i| + b_i = 0`` and, for ``b_i > 0``, a jump
    at ``h_i = 0`` (``h = W z + V s``).  Unlike the kinks of the models of
    :func:`naive_kink_arguments`, these depend on the input ``s``.

    Parameters
    ----------
    model : OrthogonalRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State the step starts from.
    s : (K,) array, optional
        External input.

    Returns
    -------
    (2M,) ndarray
        ``h`` and ``|h| + b``.
    """
    assert isinstance(model, OrthogonalRNN)
    p = naive_params(model, theta)
    h, _ = _orthogonal_preactivation(model, p, z, s)
    return np.concatenate([h, np.abs(h) + p["b"]])


def naive_kink_distances(model, theta, z):
    """Distance of every ReLU argument of one step to the kink at 0.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State the step starts from.

    Returns
    -------
    ndarray
        ``|x|`` for every ReLU argument ``x`` (empty for a tanh RNN).
    """
    return np.abs(naive_kink_arguments(model, theta, z))


# -- readouts and losses -------------------------------------------------------------
def _latent_readout_vector(model, theta):
    # n_1, the first row of the factor n, from the documented RateRNN layout
    assert isinstance(model, RateRNN) and model.rank is not None
    N, R = model.n_units, model.rank
    return np.asarray(theta, dtype=float)[N * R : N * R + N].copy(), N * R


def naive_readout(readout, ro_params, z, n_data=None, model=None, theta=None):
    """Observation ``y = readout(z)`` and its Jacobians.

    Parameters
    ----------
    readout : IdentityReadout, LinearReadout or LatentReadout
        Readout description.
    ro_params : (R,) array
        Readout parameters (empty for the identity readout; ``[c]`` for a
        LatentReadout with ``train_c``).
    z : (M,) array
        Latent state.
    n_data : int, optional
        Channels of the data: the number of states an identity readout with
        ``n_obs=None`` observes (all states if not given).
    model, theta : optional
        The model and its parameters (needed by a LatentReadout, which reads
        ``y = c (n_1 . z - kappa*)`` with ``n_1`` taken from ``theta``).

    Returns
    -------
    y : (N,) ndarray
        Observation.
    dy_dz : (N, M) ndarray
        Jacobian with respect to the state.
    dy_dro : (N, R) ndarray
        Jacobian with respect to the readout parameters
        (``B`` row-major, then ``c``).
    """
    z = np.asarray(z, dtype=float)
    M = z.size
    ro = np.zeros(0) if ro_params is None else np.asarray(ro_params, dtype=float)
    if isinstance(readout, LatentReadout):
        v, _ = _latent_readout_vector(model, theta)
        c = ro[0] if readout.train_c else readout.c
        kappa = sum(v[j] * z[j] for j in range(M))
        y = np.array([c * (kappa - readout.kappa_star)])
        dy_dro = np.array([[kappa - readout.kappa_star]]) if readout.train_c else np.zeros((1, 0))
        return y, (c * v)[None, :], dy_dro
    if isinstance(readout, LinearReadout):
        # y = B z[:k] + c, B (N, k): k = n_in, or the whole state
        N = readout.n_out
        k = M if readout.n_in is None else readout.n_in
        assert ro.shape == (N * k + N,)
        B = ro[: N * k].reshape(N, k)
        c = ro[N * k :]
        y = B @ z[:k] + c
        dy_dz = np.zeros((N, M))
        dy_dz[:, :k] = B
        dy_dro = np.zeros((N, N * k + N))
        for n in range(N):
            for j in range(k):
                dy_dro[n, n * k + j] = z[j]  # dy_n / dB_nj
            dy_dro[n, N * k + n] = 1.0  # dy_n / dc_n
        return y, dy_dz, dy_dro
    N = getattr(readout, "n_obs", None)
    if N is None:
        N = M if n_data is None else n_data
    dy_dz = np.zeros((N, M))
    for n in range(N):
        dy_dz[n, n] = 1.0
    return z[:N].copy(), dy_dz, np.zeros((N, 0))


def naive_readout_theta_jacobian(readout, ro_params, z, model, theta):
    """Direct dependence of the readout on the model parameters, ``dy/dtheta`` at fixed ``z``.

    Parameters
    ----------
    readout : IdentityReadout, LinearReadout or LatentReadout
        Readout description.
    ro_params : (R,) array
        Readout parameters.
    z : (M,) array
        Latent state.
    model, theta
        The model and its parameters.

    Returns
    -------
    (N, P) ndarray
        Zero except for a LatentReadout: ``dy/dn_1j = c z_j``.
    """
    P = n_params(model)
    if not isinstance(readout, LatentReadout):
        n_out = readout.n_out if isinstance(readout, LinearReadout) else None
        return np.zeros((0 if n_out is None else n_out, P))
    _, offset = _latent_readout_vector(model, theta)
    c = np.asarray(ro_params, dtype=float)[0] if readout.train_c else readout.c
    D = np.zeros((1, P))
    for j in range(model.dim):
        D[0, offset + j] = c * z[j]
    return D


def naive_loss_terms(loss, y, x):
    """Per-entry loss and its derivative with respect to ``y``.

    Parameters
    ----------
    loss : {"mse", "bce", "sigmoid_mse"}
        Squared error, binary cross-entropy on logits, or squared error of
        the sigmoid output.
    y : (N,) array
        Prediction (logits for ``"bce"`` and ``"sigmoid_mse"``).
    x : (N,) array
        Target.

    Returns
    -------
    value : (N,) ndarray
        ``(y - x)^2``, ``log(1 + exp(y)) - x y`` or ``(sigmoid(y) - x)^2``.
    deriv : (N,) ndarray
        ``2 (y - x)``, ``sigmoid(y) - x`` or ``2 (sigmoid(y) - x) sigmoid'(y)``
        with ``sigmoid' = sigmoid (1 - sigmoid)``.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if loss == "mse":
        return (y - x) ** 2, 2.0 * (y - x)
    if loss == "bce":
        return np.logaddexp(0.0, y) - x * y, 1.0 / (1.0 + np.exp(-y)) - x
    if loss == "sigmoid_mse":
        o = 0.5 * (1.0 + np.tanh(0.5 * y))  # the sigmoid, written without overflow
        return (o - x) ** 2, 2.0 * (o - x) * o * (1.0 - o)
    raise ValueError(f"unknown loss {loss!r}")


def naive_alphas(forcing, T):
    """Forcing strengths ``alpha_1 .. alpha_T`` from the forcing settings.

    Parameters
    ----------
    forcing : None, FreeRunning, SparseTF or GTF (constant alpha)
        Forcing mode.
    T : int
        Number of steps.

    Returns
    -------
    (T,) ndarray
        ``alpha_t`` for ``t = 1 .. T`` (before masking).
    """
    if forcing is None or isinstance(forcing, FreeRunning):
        return np.zeros(T)
    if isinstance(forcing, SparseTF):
        return np.array([1.0 if t % forcing.tau == 0 else 0.0 for t in range(1, T + 1)])
    if isinstance(forcing, GTF):
        return np.full(T, float(forcing.alpha))
    raise TypeError(f"unsupported forcing {forcing!r}")


def _unpack_batch(model, batch):
    # plain arrays from a Batch: X (B, T, N), S (B, T, K), z0 (B, M), mask (B, T)
    X = np.asarray(batch.targets, dtype=float)
    Bn, T, _ = X.shape
    S = np.zeros((Bn, T, model.n_inputs)) if batch.inputs is None else np.asarray(batch.inputs, dtype=float)
    z0 = np.zeros((Bn, model.dim)) if batch.z0 is None else np.asarray(batch.z0, dtype=float)
    mask = np.ones((Bn, T)) if batch.mask is None else np.asarray(batch.mask, dtype=float)
    assert S.shape == (Bn, T, model.n_inputs)
    assert z0.shape == (Bn, model.dim)
    assert mask.shape == (Bn, T)
    return X, S, z0, mask


def _n_forced(forcing, N):
    nf = getattr(forcing, "n_forced", None)
    return N if nf is None else nf


# -- forward pass and gradient -------------------------------------------------------
def naive_forward(model, theta, batch, forcing=None):
    """Latent trajectories of the forward pass (with forcing).

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    batch : plrnn_numba.Batch
        Targets, inputs, initial states (``z0``) and mask.
    forcing : None, FreeRunning, SparseTF or GTF, optional
        Forcing mode (identity readout).

    Returns
    -------
    Z : (B, T + 1, M) ndarray
        Unforced states ``z_0 .. z_T`` (``z_0`` the initial state).
    Zt : (B, T + 1, M) ndarray
        Forced states ``z~_0 .. z~_T`` (the inputs of each step).
    """
    X, S, z0, mask = _unpack_batch(model, batch)
    Bn, T, N = X.shape
    alphas = naive_alphas(forcing, T)
    nf = _n_forced(forcing, N)
    Z = np.zeros((Bn, T + 1, model.dim))
    Zt = np.zeros((Bn, T + 1, model.dim))
    for b in range(Bn):
        Z[b, 0] = Zt[b, 0] = z0[b]
        for t in range(T):
            z = naive_step(model, theta, Zt[b, t], S[b, t])
            Z[b, t + 1] = z
            a = alphas[t] if mask[b, t] > 0 else 0.0
            zt = z.copy()
            for i in range(nf):
                zt[i] = (1.0 - a) * z[i] + a * X[b, t, i]
            Zt[b, t + 1] = zt
    return Z, Zt


def naive_kink_argument_param_jacobian(model, theta, z):
    """Partial derivatives of the ReLU arguments of one step with respect to ``theta``.

    Only the direct dependence at fixed ``z`` (the dependence through ``z`` is
    carried by the state sensitivities).

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    z : (M,) array
        State the step starts from.

    Returns
    -------
    (n_args, P) ndarray
        Rows in the order of :func:`naive_kink_arguments`.
    """
    z = np.asarray(z, dtype=float)
    P = n_params(model)
    if not isinstance(model, ShallowPLRNN):
        # the arguments are the state itself (or there are none)
        return np.zeros((naive_kink_arguments(model, theta, z).size, P))
    M, H = model.dim, model.hidden
    o_W2 = M + M * H
    o_h2 = o_W2 + H * M + M
    D = np.zeros((H, P))  # d (W2 z + h2)_j / d theta
    for j in range(H):
        for l_ in range(M):
            D[j, o_W2 + j * M + l_] = z[l_]
        D[j, o_h2 + j] = 1.0
    if model.clipped:
        D2 = D.copy()  # d (W2 z)_j / d theta: no h2
        D2[:, o_h2 : o_h2 + H] = 0.0
        D = np.vstack([D, D2])
    return D


def naive_kink_sensitivity(model, theta, batch, forcing=None):
    """Every ReLU argument of the forward pass and its largest partial derivative.

    The derivatives with respect to each single coordinate of ``theta`` and of
    the initial states are propagated in forward mode (as in
    :func:`naive_loss_and_grad`).  A finite difference with step ``h`` in any
    coordinate moves an argument ``x`` by about ``h * slope``; it does not
    cross the kink when ``|x|`` is well above that.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    batch : plrnn_numba.Batch
        Targets, inputs, ``z0`` and mask.
    forcing : None, FreeRunning, SparseTF or GTF, optional
        Forcing mode.

    Returns
    -------
    args : (n,) ndarray
        All ReLU arguments (every batch item and step).
    slopes : (n,) ndarray
        ``max_q |d args / d q|`` over the coordinates ``q`` of ``theta`` and ``z0``.
    """
    X, S, z0, mask = _unpack_batch(model, batch)
    Bn, T, N = X.shape
    M = model.dim
    P = n_params(model)
    alphas = naive_alphas(forcing, T)
    nf = _n_forced(forcing, N)
    args, slopes = [], []
    for b in range(Bn):
        zt = z0[b].copy()
        St = np.zeros((M, P))  # d z~ / d theta
        Sz = np.eye(M)  # d z~ / d z_0[b]
        for t in range(T):
            a_args = naive_kink_arguments(model, theta, zt)
            if isinstance(model, ShallowPLRNN):
                W2 = naive_params(model, theta)["W2"]
                dz = np.vstack([W2, W2]) if model.clipped else W2  # d args / d z~
            else:
                dz = np.eye(M)[: a_args.size]
            d_theta = dz @ St + naive_kink_argument_param_jacobian(model, theta, zt)
            d_z0 = dz @ Sz
            args.append(a_args)
            slopes.append(np.max(np.abs(np.hstack([d_theta, d_z0])), axis=1, initial=0.0))
            Jz = naive_state_jacobian(model, theta, zt, S[b, t])
            Jp = naive_param_jacobian(model, theta, zt, S[b, t])
            z = naive_step(model, theta, zt, S[b, t])
            a = alphas[t] if mask[b, t] > 0 else 0.0
            Pt = np.eye(M)
            for i in range(nf):
                Pt[i, i] = 1.0 - a
            St = Pt @ (Jz @ St + Jp)
            Sz = Pt @ (Jz @ Sz)
            zt = Pt @ z
            for i in range(nf):
                zt[i] += a * X[b, t, i]
    return np.concatenate(args), np.concatenate(slopes)


def naive_loss(model, theta, batch, readout=None, ro_params=None, loss="mse", forcing=None):
    """Loss of the forward pass, by plain loops over batch items and time.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    batch : plrnn_numba.Batch
        Targets ``x_1 .. x_T``, inputs ``s_1 .. s_T``, ``z0`` and mask.
    readout : IdentityReadout, LinearReadout or LatentReadout, optional
        Observation model (default: identity on all states).
    ro_params : (R,) array, optional
        Linear readout parameters.
    loss : {"mse", "bce", "sigmoid_mse"}
        Loss.
    forcing : None, FreeRunning, SparseTF or GTF, optional
        Forcing mode.

    Returns
    -------
    float
        ``sum_{b,t,n} m_bt l(y, x) / (N sum_{b,t} m_bt)``.
    """
    X, S, z0, mask = _unpack_batch(model, batch)
    Bn, T, N = X.shape
    alphas = naive_alphas(forcing, T)
    nf = _n_forced(forcing, N)
    count = N * mask.sum()
    total = 0.0
    for b in range(Bn):
        zt = z0[b].copy()
        for t in range(T):
            z = naive_step(model, theta, zt, S[b, t])
            y = naive_readout(readout, ro_params, z, N, model, theta)[0]
            val = naive_loss_terms(loss, y, X[b, t])[0]
            total += mask[b, t] * val.sum()
            a = alphas[t] if mask[b, t] > 0 else 0.0
            zt = z.copy()
            for i in range(nf):
                zt[i] = (1.0 - a) * z[i] + a * X[b, t, i]
    return total / count


def naive_loss_and_grad(model, theta, batch, readout=None, ro_params=None, loss="mse", forcing=None):
    """Loss and gradient by forward-mode sensitivities with dense Jacobians.

    For each batch item the sensitivities ``dz~_t/dtheta`` (M x P) and
    ``dz~_t/dz_0`` (M x M) are carried forward through the step Jacobians and
    the forcing map; every loss term adds ``(dL/dy_t)(dy_t/dz_t)`` times them.

    Parameters
    ----------
    model : PLRNN, ShallowPLRNN, VanillaRNN or RateRNN
        Model description.
    theta : (P,) array
        Parameters.
    batch : plrnn_numba.Batch
        Targets, inputs, ``z0`` and mask.
    readout : IdentityReadout, LinearReadout or LatentReadout, optional
        Observation model (default: identity on all states).
    ro_params : (R,) array, optional
        Linear readout parameters.
    loss : {"mse", "bce", "sigmoid_mse"}
        Loss.
    forcing : None, FreeRunning, SparseTF or GTF, optional
        Forcing mode.

    Returns
    -------
    loss : float
        Same value as :func:`naive_loss`.
    grad : (P,) ndarray
        Gradient with respect to ``theta``.
    grad_readout : (R,) ndarray
        Gradient with respect to the readout parameters.
    grad_z0 : (B, M) ndarray
        Gradient with respect to the initial states.
    """
    X, S, z0, mask = _unpack_batch(model, batch)
    Bn, T, N = X.shape
    M = model.dim
    P = n_params(model)
    R = 0 if ro_params is None else np.asarray(ro_params).size
    alphas = naive_alphas(forcing, T)
    nf = _n_forced(forcing, N)
    count = N * mask.sum()
    total = 0.0
    g_theta = np.zeros(P)
    g_ro = np.zeros(R)
    g_z0 = np.zeros((Bn, M))
    for b in range(Bn):
        zt = z0[b].copy()
        St = np.zeros((M, P))  # d z~_t / d theta
        Sz = np.eye(M)  # d z~_t / d z_0[b]
        for t in range(T):
            Jz = naive_state_jacobian(model, theta, zt, S[b, t])
            Jp = naive_param_jacobian(model, theta, zt, S[b, t])
            z = naive_step(model, theta, zt, S[b, t])
            S_theta = Jz @ St + Jp  # d z_t / d theta
            S_z0 = Jz @ Sz  # d z_t / d z_0
            y, dy_dz, dy_dro = naive_readout(readout, ro_params, z, N, model, theta)
            val, dval = naive_loss_terms(loss, y, X[b, t])
            w = mask[b, t] / count
            total += w * val.sum()
            gy = w * dval  # dL/dy_t
            g_theta += gy @ dy_dz @ S_theta
            if isinstance(readout, LatentReadout):  # y also depends on theta directly (its vector n_1)
                g_theta += gy @ naive_readout_theta_jacobian(readout, ro_params, z, model, theta)
            g_ro += gy @ dy_dro
            g_z0[b] += gy @ dy_dz @ S_z0
            # forcing z~_t = P_t z_t + a_t xhat_t, with xhat independent of the parameters
            a = alphas[t] if mask[b, t] > 0 else 0.0
            Pt = np.eye(M)
            for i in range(nf):
                Pt[i, i] = 1.0 - a
            zt = Pt @ z
            for i in range(nf):
                zt[i] += a * X[b, t, i]
            St = Pt @ S_theta
            Sz = Pt @ S_z0
    return total, g_theta, g_ro, g_z0


# -- finite differences --------------------------------------------------------------
def central_fd(f, x, h=1e-6):
    """Gradient (or Jacobian) by central finite differences.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` or ``f(x) -> array``.
    x : (n,) array
        Point of evaluation.
    h : float
        Step size.

    Returns
    -------
    ndarray, shape ``np.shape(f(x)) + (n,)``
        ``(f(x + h e_i) - f(x - h e_i)) / (2 h)`` for every coordinate ``i``
        (in the last axis): the gradient of a scalar ``f``, the Jacobian of a
        vector-valued one.
    """
    x = np.asarray(x, dtype=float)
    cols = []
    for i in range(x.size):
        xp = x.copy()
        xm = x.copy()
        xp[i] += h
        xm[i] -= h
        cols.append((np.asarray(f(xp), dtype=float) - np.asarray(f(xm), dtype=float)) / (2.0 * h))
    return np.stack(cols, axis=-1)
