"""Observation models (readouts) and losses.

* :class:`IdentityReadout` — the first ``n_obs`` latent states are the
  observations (the convention of generalized teacher forcing: those
  components can be replaced by data).
* :class:`LinearReadout` — ``y_t = B z_t + c`` with trainable ``B, c``.
* :class:`LatentReadout` — ``y_t = c (v . z_t - kappa*)`` where ``v`` is a
  block of the *model's own* parameters (its declared readout vector, e.g.
  ``n`` of a rank-one :class:`~plrnn_numba.models.rate.RateRNN`, so that
  ``v . z = kappa``), with ``c`` fixed or trainable.

Losses (averaged over the counted entries, weighted by the mask):

* ``"mse"``: ``L = sum_{b,t,n} m_{bt} (y - x)^2 / sum_{b,t,n} m_{bt}``
* ``"bce"``: binary cross-entropy on logits,
  ``L = sum m_{bt} [log(1 + e^y) - x y] / sum m_{bt}`` (targets in [0, 1]).
* ``"sigmoid_mse"``: squared error of the sigmoid output,
  ``L = sum m_{bt} (sigmoid(y) - x)^2 / sum m_{bt}`` (the loss of Dinc et al.,
  "A ghost mechanism: an analytical model of abrupt learning", with output
  ``o = sigmoid(y)``; for one sequence and one output it is
  ``sum_t (o_t - x_t)^2 / T``).
* ``"ce"``: softmax cross-entropy over the outputs of a step, averaged over
  the counted *steps* (not entries): ``L = sum_{b,t} m_{bt} [logsumexp(y_{bt})
  - x_{bt} . y_{bt}] / sum_{b,t} m_{bt}``, with targets ``x_{bt}`` a
  probability vector (e.g. one-hot) on every counted step, and at least two
  outputs.

A model declares its readout vector with a method ``readout_vector()``
returning the ``slice`` of ``theta`` (of length ``model.dim``) that holds it,
or None when it has none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _validate as V

__all__ = [
    "IdentityReadout",
    "LinearReadout",
    "LatentReadout",
    "LOSSES",
    "as_readout",
    "readout_slice",
]

LOSSES = {"mse": 0, "bce": 1, "sigmoid_mse": 2, "ce": 3}


@dataclass(frozen=True)
class IdentityReadout:
    """``y_t = z_t[:n_obs]`` (no parameters).

    Parameters
    ----------
    n_obs : int, optional
        Number of observed leading states.  None takes as many leading states
        as the data have channels (or all states when there are no data to match).
    """

    n_obs: int | None = None
    kind = 0

    def __post_init__(self):
        V.optional_int(self.n_obs, "n_obs")

    def n_out(self, dim: int, n_data: int | None = None) -> int:
        """Number of outputs for a model of latent dimension ``dim`` and data with ``n_data`` channels.

        Parameters
        ----------
        dim : int
            Latent dimension M.
        n_data : int, optional
            Number of observed channels of the data.

        Returns
        -------
        int
            ``n_obs``, else ``n_data``, else ``dim``.

        Raises
        ------
        ValueError
            If that number is not in ``[1, dim]``.
        """
        n = self.n_obs if self.n_obs is not None else (dim if n_data is None else n_data)
        if not 1 <= n <= dim:
            raise ValueError(
                f"readout: IdentityReadout.n_obs must be in [1, {dim}] (the latent dimension); got {n}"
            )
        return n

    def n_params(self, dim: int) -> int:
        """Number of readout parameters for a model of latent dimension ``dim``.

        Parameters
        ----------
        dim : int
            Latent dimension M.

        Returns
        -------
        int
            0.
        """
        return 0

    def init(self, dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """No parameters: an empty vector (``seed`` is accepted for a uniform interface).

        Parameters
        ----------
        dim : int
            Latent dimension M of the model.
        seed : int, None or numpy.random.Generator
            Random seed (unused).

        Returns
        -------
        (R,) array
            Empty.
        """
        V.positive_int(dim, "dim")
        return np.zeros(0)

    def unpack(self, params: np.ndarray, dim: int) -> dict[str, np.ndarray]:
        """Named readout parameters.

        Parameters
        ----------
        params : (R,) array
            Readout parameter vector.
        dim : int
            Latent dimension M.

        Returns
        -------
        dict of str to array
            Empty.
        """
        return {}

    def apply(self, params: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Observations of states ``z``.

        Parameters
        ----------
        params : (0,) array
            The (empty) readout parameters.
        z : (..., M) array
            States.

        Returns
        -------
        (..., n_obs) array
            The leading states.
        """
        return z[..., : self.n_out(z.shape[-1])]


@dataclass(frozen=True)
class LinearReadout:
    """``y_t = B z_t[:k] + c`` with ``B`` (n_out x k) and ``c`` (n_out), trainable.

    ``k = n_in`` reads the first ``n_in`` state components (the package's
    convention puts the observed part of the state first: the LSTM's hidden
    state ``h`` of ``z = (h, c)`` is ``LinearReadout(n_out, n_in=N)``, as
    PyTorch's ``nn.Linear`` on the LSTM output); ``n_in=None`` (default)
    reads the whole state, ``k = M``.

    Parameter layout: ``B`` row-major, then ``c``.

    Parameters
    ----------
    n_out : int
        Number of outputs.
    n_in : int, optional
        Number ``k`` of leading state components read (default: all).
    """

    n_out: int
    n_in: int | None = None
    kind = 1

    def __post_init__(self):
        V.positive_int(self.n_out, "n_out")
        if self.n_in is not None:
            V.positive_int(self.n_in, "n_in")

    def reads(self, dim: int) -> int:
        """``k``: the number of state components read from a model of dimension ``dim``.

        Parameters
        ----------
        dim : int
            Latent dimension M.

        Returns
        -------
        int
            ``n_in``, or ``dim`` when ``n_in`` is None.

        Raises
        ------
        ValueError
            If ``n_in > dim``.
        """
        if self.n_in is None:
            return dim
        if self.n_in > dim:
            raise ValueError(f"readout: LinearReadout.n_in = {self.n_in} exceeds the latent dimension {dim}; "
                             f"use n_in <= {dim} (or None to read the whole state)")
        return self.n_in

    def n_params(self, dim: int) -> int:
        """Number of readout parameters for a model of latent dimension ``dim``.

        Parameters
        ----------
        dim : int
            Latent dimension M.

        Returns
        -------
        int
            ``n_out * k + n_out``.
        """
        return self.n_out * self.reads(dim) + self.n_out

    def init(self, dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """Initial parameters ``B_ij ~ N(0, 1/k)``, ``c = 0``.

        Parameters
        ----------
        dim : int
            Latent dimension M of the model.
        seed : int, None or numpy.random.Generator
            Random seed.

        Returns
        -------
        (R,) array
            ``B`` row-major, then ``c``.
        """
        dim = V.positive_int(dim, "dim")
        k = self.reads(dim)
        rng, _ = V.generator(seed)
        return np.concatenate([rng.normal(0.0, 1.0 / np.sqrt(k), self.n_out * k), np.zeros(self.n_out)])

    def unpack(self, params: np.ndarray, dim: int) -> dict[str, np.ndarray]:
        """Named readout parameters.

        Parameters
        ----------
        params : (R,) array
            Readout parameter vector.
        dim : int
            Latent dimension M.

        Returns
        -------
        dict of str to array
            ``{"B": (n_out, k), "c": (n_out,)}``, views of ``params``.
        """
        k = self.reads(dim)
        return {"B": params[: self.n_out * k].reshape(self.n_out, k), "c": params[self.n_out * k :]}

    def apply(self, params: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Outputs ``B z[:k] + c`` of states ``z``.

        Parameters
        ----------
        params : (R,) array
            Readout parameters.
        z : (..., M) array
            States.

        Returns
        -------
        (..., n_out) array
            The outputs.
        """
        d = self.unpack(params, z.shape[-1])
        return z[..., : d["B"].shape[1]] @ d["B"].T + d["c"]

    def dense(self, params: np.ndarray, dim: int) -> np.ndarray:
        """The parameters on the whole state: ``B`` padded with zero columns to (n_out x dim), then ``c``.

        Parameters
        ----------
        params : (R,) array
            Readout parameters.
        dim : int
            Latent dimension M.

        Returns
        -------
        (n_out * dim + n_out,) array
            The parameters of the equivalent ``LinearReadout(n_out)``.
        """
        d = self.unpack(params, dim)
        B = np.zeros((self.n_out, dim))
        B[:, : d["B"].shape[1]] = d["B"]
        return np.concatenate([B.ravel(), d["c"]])

    def reduce_dense_grad(self, grad: np.ndarray, dim: int) -> np.ndarray:
        """The gradient of :meth:`dense`'s parameters mapped back to this readout's (the read columns).

        Parameters
        ----------
        grad : (n_out * dim + n_out,) array
            Gradient with respect to the dense parameters.
        dim : int
            Latent dimension M.

        Returns
        -------
        (R,) array
            Gradient with respect to this readout's parameters.
        """
        k = self.reads(dim)
        return np.concatenate([grad[: self.n_out * dim].reshape(self.n_out, dim)[:, :k].ravel(),
                               grad[self.n_out * dim :]])


@dataclass(frozen=True)
class LatentReadout:
    """``y_t = c (v . z_t - kappa*)``: one output read through the model's own parameters ``v``.

    With a rank-one :class:`~plrnn_numba.models.rate.RateRNN`, ``v = n`` and
    ``v . z = kappa`` is the latent variable, and with ``loss="sigmoid_mse"``
    the output is the paper's ``o = sigmoid(c (kappa - kappa*))`` (Dinc et al.,
    "A ghost mechanism: an analytical model of abrupt learning", eq. 5; the
    authors use ``c = 10``, ``kappa* = 1``).  ``v`` is tied to the model: it is
    the slice ``theta[model.readout_vector()]``, and the gradient of the loss
    through the readout is added to the gradient of ``theta`` there.

    Parameters
    ----------
    c : float
        The confidence ``c > 0`` (its initial value when ``train_c``).
    kappa_star : float
        The threshold ``kappa*`` (fixed).
    train_c : bool
        Make ``c`` a trainable readout parameter: the readout parameters are
        then ``[c]`` (default ``[self.c]``) and ``grad_readout`` is ``[dL/dc]``;
        otherwise the readout has no parameters.

    Notes
    -----
    The engines run it as the linear readout ``B = c v``, ``b = -c kappa*``
    and map that readout's gradient back by the chain rule:
    ``dL/dv = c dL/dB`` and ``dL/dc = v . dL/dB - kappa* dL/db``.
    """

    c: float = 10.0
    kappa_star: float = 1.0
    train_c: bool = False
    kind = 1  # runs in the engine as a linear readout (see Notes)
    n_out = 1

    def __post_init__(self):
        object.__setattr__(self, "c", V.finite_float(self.c, "c", low=0.0, open_low=True))
        object.__setattr__(self, "kappa_star", V.finite_float(self.kappa_star, "kappa_star"))
        object.__setattr__(self, "train_c", V.flag(self.train_c, "train_c"))

    def n_params(self, dim: int) -> int:
        """Number of readout parameters for a model of latent dimension ``dim``.

        Parameters
        ----------
        dim : int
            Latent dimension M.

        Returns
        -------
        int
            1 when ``c`` is trained, else 0.
        """
        return 1 if self.train_c else 0

    def init(self, dim: int, seed: int | np.random.Generator | None = 0) -> np.ndarray:
        """``[c]`` when ``c`` is trained, else an empty vector (``seed`` is accepted for a uniform interface).

        Parameters
        ----------
        dim : int
            Latent dimension M of the model.
        seed : int, None or numpy.random.Generator
            Random seed (unused).

        Returns
        -------
        (R,) array
            ``[c]`` or empty.
        """
        V.positive_int(dim, "dim")
        return np.array([self.c]) if self.train_c else np.zeros(0)

    def unpack(self, params: np.ndarray, dim: int) -> dict[str, np.ndarray]:
        """Named readout parameters.

        Parameters
        ----------
        params : (R,) array
            Readout parameter vector.
        dim : int
            Latent dimension M.

        Returns
        -------
        dict of str to array
            ``{"c": (1,)}`` when ``c`` is trained, else empty.
        """
        return {"c": params[:1]} if self.train_c else {}

    def check_params(self, params, name: str = "readout_params") -> np.ndarray:
        """Validated readout parameters: ``[c]`` (None gives ``[self.c]``) or an empty vector.

        Parameters
        ----------
        params : array or None
            The readout parameters as passed by the user.
        name : str
            The argument's name in error messages.

        Returns
        -------
        (1,) or (0,) array
            A copy of the parameters.
        """
        if not self.train_c:
            if params is not None and np.size(params) != 0:
                raise ValueError(
                    f"{name} were given but LatentReadout(train_c=False) has no parameters (c = {self.c:g} is "
                    "fixed); drop them or use LatentReadout(train_c=True)"
                )
            return np.zeros(0)
        if params is None:
            return np.array([self.c])
        ro = V.as_float_array(params, name)
        if ro.shape != (1,):
            raise ValueError(f"{name} must have shape (1,) (the confidence c) for LatentReadout(train_c=True); "
                             f"got {ro.shape}")
        V.check_finite(ro, name)
        return ro.copy()

    def confidence(self, params) -> float:
        """The confidence ``c`` in use: ``params[0]`` when trained, else the fixed ``self.c``.

        Parameters
        ----------
        params : (1,) or (0,) array
            Readout parameters.

        Returns
        -------
        float
            ``c``.
        """
        return float(params[0]) if self.train_c else self.c

    def vector(self, model, theta) -> np.ndarray:
        """The readout vector ``v = theta[model.readout_vector()]`` (a view).

        Parameters
        ----------
        model : Model
            A model that declares a readout vector.
        theta : (P,) array
            Its parameters.

        Returns
        -------
        (M,) array
            ``v``.
        """
        return np.asarray(theta)[readout_slice(model)]

    def linear_params(self, v: np.ndarray, params) -> np.ndarray:
        """Parameters ``[c v, -c kappa*]`` of the equivalent :class:`LinearReadout` ``(1)``.

        Parameters
        ----------
        v : (M,) array
            The readout vector.
        params : (1,) or (0,) array
            Readout parameters.

        Returns
        -------
        (M + 1,) array
            ``B`` then ``c`` of ``LinearReadout(1)``.
        """
        c = self.confidence(params)
        return np.concatenate([c * np.asarray(v, dtype=float), [-c * self.kappa_star]])

    def pull_back(self, v: np.ndarray, params, grad_linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradients ``(dL/dv, dL/d params)`` from the gradient of the equivalent linear readout.

        Parameters
        ----------
        v : (M,) array
            The readout vector.
        params : (1,) or (0,) array
            Readout parameters.
        grad_linear : (M + 1,) array
            Gradient with respect to the parameters of :meth:`linear_params`.

        Returns
        -------
        g_v : (M,) array
            Gradient with respect to ``v``.
        g_params : (1,) or (0,) array
            Gradient with respect to ``params`` (``[dL/dc]`` when ``c`` is trained).
        """
        M = np.size(v)
        gB, gb = grad_linear[:M], grad_linear[M]
        g_v = self.confidence(params) * gB
        g_c = np.array([float(np.dot(v, gB)) - self.kappa_star * gb]) if self.train_c else np.zeros(0)
        return g_v, g_c

    def apply(self, params: np.ndarray, z: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Outputs ``c (z . v - kappa*)`` of states ``z``.

        Parameters
        ----------
        params : (1,) or (0,) array
            Readout parameters.
        z : (..., M) array
            States.
        v : (M,) array
            The readout vector, from :meth:`vector`.

        Returns
        -------
        (..., 1) array
            The outputs.
        """
        return (self.confidence(params) * (np.asarray(z) @ np.asarray(v) - self.kappa_star))[..., None]


def readout_slice(model) -> slice:
    """The slice of ``theta`` holding ``model``'s readout vector.

    Parameters
    ----------
    model : Model
        The model.

    Returns
    -------
    slice
        ``model.readout_vector()``, checked to have length ``model.dim``.

    Raises
    ------
    ValueError
        If the model declares no readout vector.
    """
    sl = model.readout_vector()
    if sl is None:
        raise ValueError(
            f"readout: LatentReadout reads the model's own readout vector, but {model!r} declares none "
            "(a RateRNN has one for rank=1 or more, a full-rank one has none); use LinearReadout(1), or a "
            "model whose readout_vector() returns a slice of theta"
        )
    if not isinstance(sl, slice) or len(range(*sl.indices(model.n_params))) != model.dim:
        raise TypeError(
            f"{type(model).__name__}.readout_vector() must return a slice of theta of length {model.dim} "
            f"(model.dim); got {sl!r}"
        )
    return sl


def _n_out(readout, dim: int) -> int:
    return readout.n_out(dim) if isinstance(readout, IdentityReadout) else readout.n_out


def as_readout(readout, dim: int):
    """Validate a readout object for a model of latent dimension ``dim``.

    Parameters
    ----------
    readout : IdentityReadout, LinearReadout, LatentReadout or None
        The readout (None: ``IdentityReadout()``).
    dim : int
        Latent dimension M.

    Returns
    -------
    IdentityReadout, LinearReadout or LatentReadout
        The readout.
    """
    V.positive_int(dim, "dim")
    if readout is None:
        return IdentityReadout()
    if not isinstance(readout, (IdentityReadout, LinearReadout, LatentReadout)):
        raise TypeError("readout must be IdentityReadout(...), LinearReadout(...) or LatentReadout(...); "
                        f"got {type(readout).__name__}")
    _n_out(readout, dim)
    if isinstance(readout, LinearReadout):
        readout.reads(dim)  # n_in fits the model
    return readout
