"""The model interface every engine runs on, and the extension point for new maps.

A model is a small immutable description (dimensions, options) plus one flat
float64 parameter vector ``theta``.  Everything numerical goes through four
numba kernels with fixed signatures, which the engines receive as first-class
function values (so one compiled engine serves every model, and the compiled
code is cached across processes):

``step(p, meta, z, s, z_next)``
    One step of the map for a batch: ``z_next[b] = F(z[b], s[b]; p)``.
``state_vjp(p, meta, z, s, g, g_z)``
    The vector-Jacobian product with respect to the state:
    ``g_z[b] = (dF/dz (z[b], s[b]))^T g[b]`` (overwrites ``g_z``).
``param_vjp(p, meta, Z, S, G, g_p)``
    The parameter gradient summed over many independent evaluations:
    ``g_p += sum_n (dF/dp (Z[n], S[n]))^T G[n]``.  The engines call it once
    over all time steps and batch items after the sequential backward sweep,
    so a model can use matrix-matrix products (BLAS) here.
``jacobian(p, meta, z, s, J)``
    The one-step state Jacobian ``J = dF/dz (z, s)`` of a single state.

Optionally, a model whose pullbacks would otherwise recompute expensive
intermediates of the step (the LSTM's gates: a matrix product and five
transcendental functions per unit) declares a *tape*: ``tape_width`` floats per
batch item and step that the forward pass of backpropagation through time
stores, and three kernels that write and read it (:class:`TapeKernels`):

``step(p, meta, z, s, z_next, tape)``
    As ``step``, also writing ``tape[b]`` (shape ``(B, tape_width)``).
``state_vjp(p, meta, z, s, tape, g, g_z)`` and ``param_vjp(p, meta, Z, S, TAPE, G, g_p)``
    As above, given the tape rows of the same evaluations.

Only :func:`~plrnn_numba.loss_and_grad` uses the tape (it holds ``T x B x
tape_width`` floats); every other engine runs the four kernels.

Optionally too, a model whose Jacobian has structure (``J = W diag(phi'(z))``
for the vanilla RNN) declares *tangent kernels* (:class:`TangentKernels`),
which the Lyapunov-exponent engines and gradient flossing use instead of
forming the dense ``M x M`` Jacobian and its adjoint at every step:

``tangent(p, meta, z, s, Y, JY)``
    ``JY = J(z, s) Y`` for a tangent system ``Y`` (M, k).
``tangent_vjp(p, meta, z, s, Y, A, Ybar, g_z, g_p)``
    The pullback of ``JY`` given its adjoint ``A`` (M, k): ``Ybar = J^T A``,
    ``g_z = d<A, J(z) Y>/dz`` (overwritten) and ``g_p += d<A, J Y>/dp``.  It
    equals :func:`jacobian_vjp_kernel` with ``Jbar = A Y^T``.

Shapes: ``z, z_next, g, g_z`` are ``(B, M)``, ``s`` is ``(B, K)``, ``Z, G`` are
``(N, M)`` and ``S`` is ``(N, K)``; all C-contiguous float64.  ``meta`` is an
int64 vector of the model's integer settings (dimensions, flags).

``p`` is the *kernel parameter vector*, produced from ``theta`` by
:meth:`Model.expand`.  It equals ``theta`` for most models; a model whose free
parameters are a subset of a dense layout (the PLRNN with a structurally zero
diagonal of W) expands ``theta`` into the dense layout once per engine call and
maps the kernel gradient back with :meth:`Model.reduce_grad`.

Adding a model
--------------
Write the four kernels with the decorators :func:`step_kernel`,
:func:`state_vjp_kernel`, :func:`param_vjp_kernel` and
:func:`jacobian_kernel` (which compile them with the right signatures), then
subclass :class:`Model`, declaring ``param_shapes`` and ``kernels``.  Training,
BPTT, simulation and every dynamics engine then work for the new model.  See
``tests/test_custom_model.py`` for a complete example.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from numba import types

from .. import _validate as V
from .. import config
from .._fnptr import kernel_address, make_caller
from .._validate import carray

# -- kernel signatures ----------------------------------------------------------
_f1 = types.float64[::1]
_f2 = types.float64[:, ::1]
_i1 = types.int64[::1]

STEP_SIG = types.void(_f1, _i1, _f2, _f2, _f2)
STATE_VJP_SIG = types.void(_f1, _i1, _f2, _f2, _f2, _f2)
PARAM_VJP_SIG = types.void(_f1, _i1, _f2, _f2, _f2, _f1)
JACOBIAN_SIG = types.void(_f1, _i1, _f1, _f1, _f2)
JACOBIAN_VJP_SIG = types.void(_f1, _i1, _f1, _f1, _f2, _f1, _f1)

_SIGS = (STEP_SIG, STATE_VJP_SIG, PARAM_VJP_SIG, JACOBIAN_SIG, JACOBIAN_VJP_SIG)

# the optional tape kernels (see the module docstring)
TAPE_STEP_SIG = types.void(_f1, _i1, _f2, _f2, _f2, _f2)
TAPE_STATE_VJP_SIG = types.void(_f1, _i1, _f2, _f2, _f2, _f2, _f2)
TAPE_PARAM_VJP_SIG = types.void(_f1, _i1, _f2, _f2, _f2, _f2, _f1)
_TAPE_SIGS = (TAPE_STEP_SIG, TAPE_STATE_VJP_SIG, TAPE_PARAM_VJP_SIG)

# the optional tangent kernels (see the module docstring)
TANGENT_SIG = types.void(_f1, _i1, _f1, _f1, _f2, _f2)
TANGENT_VJP_SIG = types.void(_f1, _i1, _f1, _f1, _f2, _f2, _f2, _f1, _f1)
_TANGENT_SIGS = (TANGENT_SIG, TANGENT_VJP_SIG)

#: the floating-point types the kernels can be compiled for (float32: the single-precision mode of BPTT)
FLOAT_TYPES = {"float64": types.float64, "float32": types.float32}


_SIG_VARIANTS: dict[tuple[int, str], tuple] = {}


def signature_for(sig, dtype: str = "float64"):
    """``sig`` with its float64 arrays in ``dtype``: the kernel signatures of that precision.

    Memoised by identity, so that the same object comes back (kernel addresses are cached by it:
    hashing a numba signature costs microseconds of Python per call).
    """
    if dtype == "float64":
        return sig
    hit = _SIG_VARIANTS.get((id(sig), dtype))
    if hit is not None:
        return hit[1]
    ft = FLOAT_TYPES[dtype]

    def conv(t):
        # arrays only: scalars (a loss, a scale) keep float64
        if isinstance(t, types.Array) and t.dtype == types.float64:
            return t.copy(dtype=ft)
        if isinstance(t, types.BaseTuple):
            return types.Tuple(tuple(conv(x) for x in t.types))
        return t

    out = conv(sig.return_type)(*(conv(a) for a in sig.args))
    _SIG_VARIANTS[(id(sig), dtype)] = (sig, out)  # keeps sig alive, so its id stays its own
    return out


# the common spellings, without np.dtype's parsing on every engine call
_PRECISION_NAMES = {"float64": "float64", "float32": "float32", np.float64: "float64", np.float32: "float32"}


def check_precision(model, dtype) -> str:
    """``dtype`` as "float64" / "float32", checked against what the model's kernels support.

    ``model=None`` checks the name only (settings made before the model is known).
    """
    name = _PRECISION_NAMES.get(dtype) if isinstance(dtype, (str, type)) else None
    if name is None:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32' (or the numpy types); got {dtype!r}")
    if model is None:
        return name
    supported = getattr(model, "dtypes", ("float64",))
    if name not in supported:
        raise TypeError(
            f"{type(model).__name__} has no {name} kernels (it supports {', '.join(supported)}); "
            "use dtype='float64'"
        )
    return name


#: intrinsics that call a kernel given its address: ``call_step(addr, p, meta, z, s, z_next)``; every
#: caller also takes float32 arrays (and then calls the float32 variant)
call_step = make_caller(STEP_SIG, signature_for(STEP_SIG, "float32"))
call_state_vjp = make_caller(STATE_VJP_SIG, signature_for(STATE_VJP_SIG, "float32"))
call_param_vjp = make_caller(PARAM_VJP_SIG, signature_for(PARAM_VJP_SIG, "float32"))
call_jacobian = make_caller(JACOBIAN_SIG, signature_for(JACOBIAN_SIG, "float32"))
call_jacobian_vjp = make_caller(JACOBIAN_VJP_SIG, signature_for(JACOBIAN_VJP_SIG, "float32"))
call_tape_step = make_caller(TAPE_STEP_SIG, signature_for(TAPE_STEP_SIG, "float32"))
call_tape_state_vjp = make_caller(TAPE_STATE_VJP_SIG, signature_for(TAPE_STATE_VJP_SIG, "float32"))
call_tape_param_vjp = make_caller(TAPE_PARAM_VJP_SIG, signature_for(TAPE_PARAM_VJP_SIG, "float32"))
call_tangent = make_caller(TANGENT_SIG, signature_for(TANGENT_SIG, "float32"))
call_tangent_vjp = make_caller(TANGENT_VJP_SIG, signature_for(TANGENT_VJP_SIG, "float32"))

STEP_TYPE = types.FunctionType(STEP_SIG)
STATE_VJP_TYPE = types.FunctionType(STATE_VJP_SIG)
PARAM_VJP_TYPE = types.FunctionType(PARAM_VJP_SIG)
JACOBIAN_TYPE = types.FunctionType(JACOBIAN_SIG)


def step_kernel(func):
    """Compile ``func(p, meta, z, s, z_next)`` as a model step kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``STEP_SIG`` on first use.
    """
    return config.jit(STEP_SIG)(func)


def state_vjp_kernel(func):
    """Compile ``func(p, meta, z, s, g, g_z)`` as a state vector-Jacobian kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``STATE_VJP_SIG`` on first use.
    """
    return config.jit(STATE_VJP_SIG)(func)


def param_vjp_kernel(func):
    """Compile ``func(p, meta, Z, S, G, g_p)`` as a parameter vector-Jacobian kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``PARAM_VJP_SIG`` on first use.
    """
    return config.jit(PARAM_VJP_SIG)(func)


def jacobian_kernel(func):
    """Compile ``func(p, meta, z, s, J)`` as a one-step Jacobian kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``JACOBIAN_SIG`` on first use.
    """
    return config.jit(JACOBIAN_SIG)(func)


def tape_step_kernel(func):
    """Compile ``func(p, meta, z, s, z_next, tape)`` as a step kernel that also writes its tape.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``TAPE_STEP_SIG`` on first use.
    """
    return config.jit(TAPE_STEP_SIG)(func)


def tape_state_vjp_kernel(func):
    """Compile ``func(p, meta, z, s, tape, g, g_z)`` as a state pullback kernel reading the tape.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``TAPE_STATE_VJP_SIG`` on first use.
    """
    return config.jit(TAPE_STATE_VJP_SIG)(func)


def tape_param_vjp_kernel(func):
    """Compile ``func(p, meta, Z, S, TAPE, G, g_p)`` as a parameter pullback kernel reading the tape.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``TAPE_PARAM_VJP_SIG`` on first use.
    """
    return config.jit(TAPE_PARAM_VJP_SIG)(func)


def tangent_kernel(func):
    """Compile ``func(p, meta, z, s, Y, JY)`` as a tangent kernel (``JY = J(z, s) Y``).

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``TANGENT_SIG`` on first use.
    """
    return config.jit(TANGENT_SIG)(func)


def tangent_vjp_kernel(func):
    """Compile ``func(p, meta, z, s, Y, A, Ybar, g_z, g_p)`` as the pullback of a tangent kernel.

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``TANGENT_VJP_SIG`` on first use.
    """
    return config.jit(TANGENT_VJP_SIG)(func)


def jacobian_vjp_kernel(func):
    """Compile ``func(p, meta, z, s, Jbar, g_z, g_p)`` as a Jacobian pullback kernel.

    Given the adjoint ``Jbar`` of the one-step Jacobian ``J = dF/dz (z, s)``,
    it writes ``g_z = sum_ij Jbar_ij dJ_ij/dz`` and adds
    ``sum_ij Jbar_ij dJ_ij/dp`` to ``g_p`` (second derivatives of the map;
    needed by the gradient of Lyapunov exponents, i.e. gradient flossing).

    Parameters
    ----------
    func : callable
        The Python function (numba-compilable), with the arguments above.

    Returns
    -------
    LazyKernel
        The kernel, compiled with the signature ``JACOBIAN_VJP_SIG`` on first use.
    """
    return config.jit(JACOBIAN_VJP_SIG)(func)


class Kernels(NamedTuple):
    """The compiled kernels of a model (see the module docstring).

    ``jacobian_vjp`` is optional: only the gradient of Lyapunov exponents
    (gradient flossing) needs it.

    Parameters
    ----------
    step, state_vjp, param_vjp, jacobian : LazyKernel or numba dispatcher
        The four kernels every model has.
    jacobian_vjp : LazyKernel or numba dispatcher, optional
        The Jacobian pullback.
    """

    step: object
    state_vjp: object
    param_vjp: object
    jacobian: object
    jacobian_vjp: object = None

    def dispatchers(self) -> Kernels:
        """The compiled dispatchers.

        Returns
        -------
        Kernels
            Each :class:`~plrnn_numba.config.LazyKernel` replaced by its numba dispatcher.
        """
        return Kernels(*(getattr(k, "dispatcher", k) for k in self))

    def addresses(self, dtype: str = "float64", *, jacobian_vjp: bool = False) -> Kernels:
        """Native addresses (int) of the kernels compiled for ``dtype``, as the engines take them.

        The float32 variant of ``jacobian_vjp``, which only gradient flossing needs, is compiled
        on request (``jacobian_vjp=True``), so that float32 BPTT does not compile it.

        Parameters
        ----------
        dtype : {"float64", "float32"}
            Precision of the compiled variants.
        jacobian_vjp : bool
            Also the float32 ``jacobian_vjp`` (float64: always, when the model has one).

        Returns
        -------
        Kernels
            The addresses (0 for an absent or not requested kernel).
        """
        n = 5 if dtype == "float64" or jacobian_vjp else 4
        out = [0 if k is None else kernel_address(k, signature_for(sig, dtype)) for k, sig in zip(self[:n], _SIGS)]
        return Kernels(*out, *([0] * (5 - n)))


class TapeKernels(NamedTuple):
    """The optional tape kernels of a model (see the module docstring).

    Parameters
    ----------
    step, state_vjp, param_vjp : LazyKernel or numba dispatcher
        The step that writes the tape and the two pullbacks that read it.
    """

    step: object
    state_vjp: object
    param_vjp: object

    def addresses(self, dtype: str = "float64") -> TapeKernels:
        """Native addresses (int) of the kernels compiled for ``dtype``, as the engines take them.

        Parameters
        ----------
        dtype : {"float64", "float32"}
            Precision of the compiled variants.

        Returns
        -------
        TapeKernels
            The addresses.
        """
        return TapeKernels(*(kernel_address(k, signature_for(sig, dtype)) for k, sig in zip(self, _TAPE_SIGS)))


class TangentKernels(NamedTuple):
    """The optional tangent kernels of a model (see the module docstring).

    Parameters
    ----------
    tangent, tangent_vjp : LazyKernel or numba dispatcher
        The product ``J Y`` and its pullback.
    """

    tangent: object
    tangent_vjp: object

    def addresses(self, dtype: str = "float64", *, tangent_vjp: bool = False) -> TangentKernels:
        """Native addresses (int) of the kernels compiled for ``dtype``.

        Parameters
        ----------
        dtype : {"float64", "float32"}
            Precision of the compiled variants.
        tangent_vjp : bool
            Also the float32 ``tangent_vjp`` (only gradient flossing needs it; float64: always).

        Returns
        -------
        TangentKernels
            The addresses (``tangent_vjp`` 0 when not requested).
        """
        out = kernel_address(self.tangent, signature_for(TANGENT_SIG, dtype))
        if dtype == "float64" or tangent_vjp:
            return TangentKernels(out, kernel_address(self.tangent_vjp, signature_for(TANGENT_VJP_SIG, dtype)))
        return TangentKernels(out, 0)


def tangent_addresses(model, dtype: str = "float64", *, tangent_vjp: bool = False) -> TangentKernels:
    """The addresses of ``model``'s tangent kernels, or ``(0, 0)``: the engines then use the dense Jacobian."""
    tk = model.tangent_kernels
    return TangentKernels(0, 0) if tk is None else tk.addresses(dtype, tangent_vjp=tangent_vjp)


class Model:
    """Base class: an immutable model description with a flat parameter vector.

    Subclasses are frozen dataclasses with attributes ``dim`` (state
    dimension M) and ``n_inputs`` (K), and define :meth:`param_shapes`,
    :attr:`kernels` and :meth:`init` (and :attr:`meta` when the kernels need
    more integer settings than ``[dim, n_inputs]``).
    """

    dim: int
    n_inputs: int

    # -- what a subclass provides ---------------------------------------------------
    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Names and shapes of the free parameters, in the order of ``theta``.

        Returns
        -------
        dict of str to tuple of int
            Shape of each named parameter.
        """
        raise NotImplementedError

    @property
    def kernels(self) -> Kernels:
        """The model's compiled kernels."""
        raise NotImplementedError

    @property
    def meta(self) -> np.ndarray:
        """Integer settings passed to every kernel (int64 vector)."""
        return np.array([self.dim, self.n_inputs], dtype=np.int64)

    def init(self, seed=0, **kwargs) -> np.ndarray:
        """A random parameter vector (subclasses document their initialisation).

        Parameters
        ----------
        seed : int, None or numpy.random.Generator
            Random seed, as everywhere in the package.
        **kwargs
            Options of the family's initialisation.

        Returns
        -------
        (P,) array
            ``theta``.
        """
        raise NotImplementedError

    @property
    def tape_width(self) -> int:
        """Floats per batch item and step stored for the pullbacks (0: no tape, the default)."""
        return 0

    @property
    def tape_kernels(self) -> TapeKernels | None:
        """The tape kernels when :attr:`tape_width` > 0 (None by default)."""
        return None

    @property
    def dtypes(self) -> tuple[str, ...]:
        """Precisions the kernels support: ``("float64",)`` by default.

        A model whose kernels allocate in the dtype of their arguments adds
        ``"float32"`` (the ``dtype`` of ``loss_and_grad``, ``simulate``,
        ``lyapunov_spectrum`` and ``flossing_loss_and_grad``).
        """
        return ("float64",)

    @property
    def tangent_kernels(self) -> TangentKernels | None:
        """The tangent kernels, when the model has them (None by default: the dense Jacobian is used)."""
        return None

    def expand(self, theta: np.ndarray) -> np.ndarray:
        """Kernel parameter vector from ``theta`` (identity unless overridden).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        array
            The kernel parameter vector ``p``.
        """
        return theta

    def reduce_grad(self, grad_p: np.ndarray) -> np.ndarray:
        """Gradient with respect to ``theta`` from one w.r.t. the kernel vector.

        Parameters
        ----------
        grad_p : array
            Gradient with respect to the kernel parameter vector ``p`` (:meth:`expand`).

        Returns
        -------
        (P,) array
            Gradient with respect to ``theta``.
        """
        return grad_p

    # -- derived from the above -----------------------------------------------------
    @property
    def name(self) -> str:
        """The family's name (the class name)."""
        return type(self).__name__

    @functools.cached_property
    def n_params(self) -> int:
        """Length of ``theta``."""
        return int(sum(int(np.prod(s)) for s in self.param_shapes().values()))

    def param_slices(self) -> dict[str, slice]:
        """Where each named parameter lives in ``theta``.

        Returns
        -------
        dict of str to slice
            Slice of ``theta`` of each named parameter.
        """
        out, start = {}, 0
        for name, shape in self.param_shapes().items():
            n = int(np.prod(shape))
            out[name] = slice(start, start + n)
            start += n
        return out

    def param_names(self) -> list[str]:
        """A label per entry of ``theta``, e.g. ``"W[0,2]"`` (for the ``param`` dim).

        Returns
        -------
        list of str
            ``n_params`` labels.
        """
        labels: list[str] = []
        for name, shape in self.param_shapes().items():
            for idx in np.ndindex(*shape):
                labels.append(f"{name}[{','.join(map(str, idx))}]" if idx else name)
        return labels

    def unknown_param_hint(self, name: str) -> str:
        """Extra advice when ``name`` is not one of :meth:`param_names` (empty by default).

        Parameters
        ----------
        name : str
            The unknown parameter name.

        Returns
        -------
        str
            A hint appended to the error message.
        """
        return ""

    def unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        """Named views of ``theta`` (reshaped, sharing memory with it).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.

        Returns
        -------
        dict of str to array
            Each named parameter in its shape (:meth:`param_shapes`).
        """
        theta = self.check_theta(theta)
        return {name: theta[sl].reshape(self.param_shapes()[name]) for name, sl in self.param_slices().items()}

    def pack(self, **params: np.ndarray) -> np.ndarray:
        """Build ``theta`` from named arrays (every parameter must be given).

        Parameters
        ----------
        **params : array
            One array per name of :meth:`param_shapes`, in its shape.

        Returns
        -------
        (P,) array
            ``theta``.
        """
        shapes = self.param_shapes()
        missing = [n for n in shapes if n not in params]
        extra = [n for n in params if n not in shapes]
        if missing or extra:
            raise ValueError(
                f"{self.name}.pack needs exactly the parameters {list(shapes)}; missing {missing}, unexpected {extra}"
            )
        parts = []
        for name, shape in shapes.items():
            arr = V.as_float_array(params[name], name)
            if arr.shape != shape:
                if arr.size == int(np.prod(shape)) and arr.ndim <= 1 and len(shape) <= 1:
                    arr = arr.reshape(shape)
                else:
                    raise ValueError(f"{name} must have shape {shape} for {self!r}; got {arr.shape}")
            V.check_finite(arr, name)
            parts.append(arr.ravel())
        return np.concatenate(parts) if parts else np.zeros(0)

    def check_theta(self, theta, name: str = "theta") -> np.ndarray:
        """Validate a parameter vector (dtype, length, finiteness).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        name : str
            The argument's name in error messages.

        Returns
        -------
        (P,) array
            ``theta`` as a C-contiguous float64 array.
        """
        theta = V.as_float_array(theta, name)
        if theta.ndim != 1 or theta.shape[0] != self.n_params:
            raise ValueError(
                f"{name} must be a 1-D vector of length {self.n_params} for {self!r} "
                f"(use model.pack(...) or model.init(...)); got shape {theta.shape}"
            )
        V.check_finite(theta, name)
        return carray(theta)

    # -- convenience wrappers over the kernels ---------------------------------------
    def simulate(
        self,
        theta: np.ndarray,
        z0: np.ndarray,
        n_steps: int | None = None,
        inputs: np.ndarray | None = None,
    ) -> np.ndarray:
        """Iterate the map from ``z0``.

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        z0 : (M,) or (B, M) array
            Initial state(s).
        n_steps : int, optional
            Number of steps for an autonomous run (``inputs`` absent).
        inputs : (T, K) or (B, T, K) array, optional
            External inputs ``s_1 .. s_T``; the run then has T steps.

        Returns
        -------
        (T + 1, M) or (B, T + 1, M) array
            ``z_0 .. z_T``.  A diverging run is not an error: its states become
            inf/NaN from the step where they overflow.
        """
        from ..simulate import simulate

        return simulate(self, theta, z0, n_steps=n_steps, inputs=inputs)

    def step(self, theta: np.ndarray, z: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """One step ``F(z, s)`` of a single state (M,) or a batch of states (B, M).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        z : (M,) or (B, M) array
            State(s).
        s : (K,) or (B, K) array, optional
            Input(s); required when the model has inputs.

        Returns
        -------
        (M,) or (B, M) array
            The next state(s).
        """
        z = V.as_state(z, self.dim, "z")
        if s is None:
            if self.n_inputs:
                raise ValueError(f"s is required: the model has {self.n_inputs} inputs (shape ({self.n_inputs},))")
            return self.simulate(theta, z, n_steps=1)[..., 1, :]
        s = V.as_float_array(s, "s")
        if s.shape not in {(self.n_inputs,), z.shape[:-1] + (self.n_inputs,)}:
            want = z.shape[:-1] + (self.n_inputs,)
            raise ValueError(f"s must have shape ({self.n_inputs},) or {want}; got {s.shape}")
        V.check_finite(s, "s")
        return self.simulate(theta, z, inputs=s[..., None, :])[..., 1, :]

    def jacobian(self, theta: np.ndarray, z: np.ndarray, s: np.ndarray | None = None) -> np.ndarray:
        """One-step state Jacobian ``dF/dz`` at ``z`` (with input ``s``).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        z : (M,) array
            A single state.
        s : (K,) array, optional
            Input (zeros if omitted).

        Returns
        -------
        (M, M) array
            The Jacobian.
        """
        theta = self.check_theta(theta)
        z = V.as_state(z, self.dim, "z")
        if z.ndim != 1:
            raise ValueError(f"z must be a single state of shape ({self.dim},); got {z.shape}")
        s = V.as_input_vector(s, self.n_inputs, "s")
        J = np.empty((self.dim, self.dim))
        self.kernels.jacobian(model_params(self, theta), self.meta, z, s, J)
        return J

    # -- piecewise-linear protocol (see :mod:`.piecewise`) ------------------------------
    @property
    def is_piecewise_linear(self) -> bool:
        """Whether :meth:`piecewise_linear` describes this model's map (SCYFI and bifurcations work on it)."""
        return type(self).piecewise_linear is not Model.piecewise_linear

    def piecewise_linear(self, theta: np.ndarray, inputs: np.ndarray | None = None):
        """The map ``z -> F(z, s)`` as a :class:`~plrnn_numba.models.piecewise.PiecewiseLinear`.

        Piecewise-linear families override this; ``theta`` arrives validated and
        ``inputs`` as None or a constant (K,) vector (engines call it through
        :func:`~plrnn_numba.models.piecewise.as_piecewise_linear`).

        Parameters
        ----------
        theta : (P,) array
            Parameter vector.
        inputs : (K,) array, optional
            A constant input.

        Returns
        -------
        PiecewiseLinear
            The regions of the map and their affine pieces.

        Raises
        ------
        TypeError
            If the family is not piecewise linear.
        """
        raise TypeError(f"{self.name} is not piecewise linear: SCYFI and the bifurcation tools need a model "
                        "with a piecewise_linear method (see plrnn_numba.models.piecewise)")

    # -- readout protocol ------------------------------------------------------------
    def readout_vector(self) -> slice | None:
        """The slice of ``theta`` holding the model's own readout vector ``v``, or None (the default).

        A family whose output is read along one of its parameter vectors (the
        low-rank :class:`~plrnn_numba.RateRNN`: ``kappa = n . x``) returns its
        slice; :class:`~plrnn_numba.LatentReadout` then reads ``y = c (v . x - kappa*)``
        and the loss gradient reaches ``v`` through ``theta``.

        Returns
        -------
        slice or None
            The slice of ``v`` in ``theta``.
        """
        return None

    def describe(self) -> dict:
        """JSON-serialisable description of the model (for provenance attributes).

        Returns
        -------
        dict
            ``{"model": name, **fields}``.
        """
        from dataclasses import asdict

        return {"model": self.name, **asdict(self)}


def build_kernels(step, state_vjp, param_vjp, jacobian, jacobian_vjp=None) -> Kernels:
    """Bundle the compiled kernels (checks they carry the right signatures).

    Parameters
    ----------
    step, state_vjp, param_vjp, jacobian : LazyKernel or numba dispatcher
        The four kernels, made with :func:`step_kernel`, :func:`state_vjp_kernel`,
        :func:`param_vjp_kernel` and :func:`jacobian_kernel`.
    jacobian_vjp : LazyKernel or numba dispatcher, optional
        The Jacobian pullback (:func:`jacobian_vjp_kernel`), needed only by gradient flossing.

    Returns
    -------
    Kernels
        The bundle, for a model's :attr:`Model.kernels`.

    Raises
    ------
    TypeError
        If a kernel was compiled with another signature.
    """
    for kern, sig, label in (
        (step, STEP_SIG, "step"),
        (state_vjp, STATE_VJP_SIG, "state_vjp"),
        (param_vjp, PARAM_VJP_SIG, "param_vjp"),
        (jacobian, JACOBIAN_SIG, "jacobian"),
        (jacobian_vjp, JACOBIAN_VJP_SIG, "jacobian_vjp"),
    ):
        if kern is None:
            continue
        got = getattr(kern, "signature", None)
        if got is None and hasattr(kern, "signatures"):
            sigs = kern.signatures
            got = sigs[0] if len(sigs) == 1 else None
            if got is not None:
                got = types.void(*got)
        if got is not None and tuple(got.args) != tuple(sig.args):
            raise TypeError(
                f"the {label} kernel must be compiled with signature {sig}; got {got}. "
                f"Decorate it with plrnn_numba.models.{label}_kernel."
            )
    return Kernels(step, state_vjp, param_vjp, jacobian, jacobian_vjp)


def as_kernel_tuple(seq: Sequence | Mapping) -> Kernels:
    """Accept a Kernels, a 4-sequence or a mapping with the four kernel names."""
    if isinstance(seq, Kernels):
        return seq
    if isinstance(seq, Mapping):
        return build_kernels(seq["step"], seq["state_vjp"], seq["param_vjp"], seq["jacobian"])
    return build_kernels(*seq)


def model_params(model: Model, theta: np.ndarray) -> np.ndarray:
    """The kernel parameter vector of ``model`` for ``theta`` (C-contiguous float64)."""
    return carray(model.expand(theta))


def check_model(model, name: str = "model") -> Model:
    """``model`` itself if it is a plrnn_numba model, else a TypeError naming ``name``."""
    if not isinstance(model, Model):
        raise TypeError(
            f"{name} must be a plrnn_numba model (PLRNN, ShallowPLRNN, ALRNN, VanillaRNN or a Model "
            f"subclass); got {type(model).__name__}"
        )
    return model
