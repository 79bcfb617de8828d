r"""The one-dimensional toy model of abrupt learning.

Dinc et al., "A ghost mechanism: an analytical model of abrupt learning",
train the saddle-node normal form

.. math::  \dot x = x^2 + r, \qquad x(0) = 0,

with output :math:`\hat o(x) = \sigma(c\,(x - x^*))` on the delayed-activation
task: target :math:`o(t) = 0` on :math:`[0, T)` and :math:`1` on
:math:`[T, 2T)`.  The only parameter is :math:`r`; the loss is (their eq. 1)

.. math::  \mathcal L(r) = \int_0^{2T} \bigl(\hat o(x(t)) - o(t)\bigr)^2\, dt .

Analytic limit (:math:`c, x^* \to \infty`)
------------------------------------------
For :math:`r > 0` the state is :math:`x(t) = \sqrt r \tan(\sqrt r\, t)` and
escapes to infinity at :math:`t^*(r) = \pi / (2\sqrt r)`; in the limit the
output is 0 before the escape and 1 after it.  The loss counts the time the
output is wrong (eqs. 2 and 12):

.. math::

   \mathcal L(r) = \begin{cases} |T - \pi/(2\sqrt r)|, & r \ge r^*/4, \\
                                 T, & \text{otherwise (escape after } 2T\text{, or none)}, \end{cases}
   \qquad r^* = \frac{\pi^2}{4T^2},

zero at :math:`r = r^*` (escape exactly at :math:`T`).  Its derivative (eq. 13)
is :math:`-\pi/(4 r^{3/2})` on :math:`(r^*/4, r^*)`, :math:`+\pi/(4 r^{3/2})`
for :math:`r > r^*` and 0 below :math:`r^*/4`, the *point of no return*: a
gradient step that lands there never leaves (the no-learning zone).  The
one-sided slopes at the minimum are :math:`\mp 2T^3/\pi^2` (eq. 14).

Critical learning rate, and which loss it belongs to
----------------------------------------------------
Gradient descent :math:`r \leftarrow r - \alpha\, \mathcal L'(r)` from the
right of the minimum moves to :math:`f(r) = r - \alpha \pi / (4 r^{3/2})`.
:math:`f` increases with :math:`r`, so the lowest point reachable from
:math:`r > r^*` is :math:`f(r^{*+}) = r^* - \alpha\, 2T^3/\pi^2`.  It lies
below the point of no return :math:`r^*/4` exactly when

.. math::  \alpha\, \frac{2T^3}{\pi^2} > \frac34 r^* = \frac{3\pi^2}{16 T^2}
           \iff \alpha > \alpha^* = \frac{3\pi^4}{32}\, T^{-5}

(eq. 15).  From the left of the minimum the gradient pushes :math:`r` up, so
below :math:`\alpha^*` gradient descent *never* enters the no-learning zone;
above it, every pass close enough to :math:`r^*` from the right throws it in.
This derivation uses the slope :math:`2T^3/\pi^2` of the **unnormalised**
loss (eq. 1/12, the integral itself): :math:`\alpha^* \approx 9.1 \times
10^{-10}` for :math:`T = 100`, the value the paper reports.  Dividing the
loss by :math:`T` divides its gradient by :math:`T`, so the same argument
gives :math:`\alpha^*_{\rm norm} = T \alpha^* = \frac{3\pi^4}{32} T^{-4}`
(:math:`\approx 9.1 \times 10^{-8}` for :math:`T = 100`).

Every function here takes ``normalised``: ``False`` (default) is the
integral of eq. 1 (units of time, between 0 and :math:`T`), ``True`` is that
integral divided by :math:`T` (between 0 and 1).  Loss and gradient are
scaled together.

Finite confidence, numerically
------------------------------
:func:`euler_loss_and_grad` integrates the model with forward Euler,
:math:`x_{k+1} = x_k + \Delta t\,(x_k^2 + r)` from :math:`x_0 = 0` (the
authors use :math:`\Delta t = 0.1`), and takes the loss as the left Riemann
sum :math:`\Delta t \sum_{k=0}^{2n-1} (\sigma(c(x_k - x^*)) - y_k)^2` with
:math:`n = T/\Delta t` and :math:`y_k = [k \ge n]`.  The gradient is the exact
derivative of that sum, by reverse-mode differentiation through the Euler
steps written by hand: with the adjoint :math:`\bar x_k` of :math:`x_k`,

.. math::  \bar r \mathrel{+}= \Delta t\, \bar x_{k+1}, \qquad
           \bar x_k = \bar x_{k+1}(1 + 2\Delta t\, x_k) + \Delta t\, \partial_x (\hat o_k - y_k)^2 .

*Blow-up.*  For :math:`r > 0` the Euler state passes :math:`x^*` and then
grows doubly exponentially until it overflows.  Once the output's logit
:math:`z_k = c(x_k - x^*)` exceeds ``saturation`` (default 50; at least 37, so
that :math:`\sigma(z)` rounds to exactly 1 in double precision) the
integration stops: every later output is taken as exactly 1 (its error is
below :math:`e^{-z}`), and the gradient terms of those steps, which carry a
factor :math:`\sigma'(z_k) < e^{-z_k}` against a sensitivity
:math:`\partial x_k / \partial r` that grows only polynomially in
:math:`x_k`, are dropped.  The time :math:`k\Delta t` at which this happens is
returned as the numeric escape time (``inf`` if the output never saturates
before :math:`2T`).  A state that overflows to ``+inf`` before reaching the
threshold (only for tiny ``c``) counts as saturated too.  A NaN state (only if
:math:`\Delta t\, r` itself overflows) gives NaN loss, gradient and escape
time instead of an exception.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import xarray as xr

from .. import _validate as V
from .. import config, io

__all__ = [
    "EulerLossGrad",
    "analytic_gradient",
    "analytic_loss",
    "critical_learning_rate",
    "critical_r",
    "escape_time",
    "euler_loss_and_grad",
    "gradient_descent",
    "initial_r",
    "point_of_no_return",
]

#: smallest ``saturation`` logit: sigma(37) rounds to exactly 1.0 in float64.
MIN_SATURATION = 37.0
#: the longest Euler trajectory (2 T / dt steps) a call may ask for (two float64 work buffers of this
#: length: 320 MB at the limit).
MAX_EULER_STEPS = 20_000_000
#: the most epochs :func:`gradient_descent` records (four float64 arrays of this length: 320 MB).
MAX_EPOCHS = 10_000_000
#: T is kept in a range where T**5 and T**-5 are finite doubles.
_T_RANGE = (1e-50, 1e50)


# ----------------------------------------------------------------------------------------------
# validation helpers


def _check_T(T) -> float:
    return V.finite_float(T, "T", low=_T_RANGE[0], high=_T_RANGE[1])


def _r_array(r, name: str = "r") -> tuple[np.ndarray, bool]:
    """``r`` as a finite 1-D float64 array, and whether a scalar was given."""
    arr = V.as_float_array(r, name)
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one value; got an empty array")
    V.check_finite(arr, name)
    return np.ascontiguousarray(arr.ravel()), arr.ndim == 0


def _shaped(values: np.ndarray, like, scalar: bool):
    return float(values[0]) if scalar else values.reshape(np.shape(like))


def _euler_settings(T: float, c, x_star, dt, saturation) -> tuple[int, float, float, float, float]:
    """Validated ``(n, dt, c, x_star, saturation)`` with ``n = T / dt`` steps per phase."""
    c = V.finite_float(c, "c", low=0.0, open_low=True)
    x_star = V.finite_float(x_star, "x_star", low=0.0, open_low=True)
    dt = V.finite_float(dt, "dt", low=0.0, open_low=True)
    saturation = V.finite_float(saturation, "saturation", low=MIN_SATURATION)
    if dt > T:
        raise ValueError(f"dt must be <= T = {T}; got {dt}")
    ratio = T / dt  # may be inf for a subnormal dt
    if not 2 * ratio <= MAX_EULER_STEPS + 0.5:
        raise ValueError(
            f"dt = {dt} asks for 2 T / dt = {2 * ratio:.4g} Euler steps, more than {MAX_EULER_STEPS}; "
            "choose a larger dt"
        )
    n = round(ratio)
    if abs(n * dt - T) > 1e-9 * T:
        raise ValueError(f"dt must divide T = {T} into a whole number of steps; got dt = {dt} (T / dt = {ratio})")
    return n, dt, c, x_star, saturation


# ----------------------------------------------------------------------------------------------
# closed forms


def _r_star(T: float) -> float:
    # pi*pi rather than pi**2: the same rounding in every caller, and the boundary test is done on r itself
    return math.pi * math.pi / (4.0 * T * T)


def critical_r(T: float) -> float:
    r"""The optimal parameter :math:`r^* = \pi^2 / (4T^2)`, the global minimum of the analytic loss.

    At :math:`r^*` the state escapes at :math:`t^* = T`, exactly when the
    target switches.  (The same for both normalisations.)

    Parameters
    ----------
    T : float
        Length of each phase of the task (the delay), > 0.

    Returns
    -------
    float
        :math:`r^*`.
    """
    T = _check_T(T)
    return _r_star(T)


def point_of_no_return(T: float) -> float:
    r"""The boundary :math:`r^*/4 = \pi^2/(16T^2)` of the no-learning zone.

    Below it the analytic state escapes after :math:`2T` (or never), the loss
    is :math:`T` and its gradient exactly 0, so gradient descent cannot leave.

    Parameters
    ----------
    T : float
        Length of each phase of the task, > 0.

    Returns
    -------
    float
        :math:`r^*/4`.
    """
    return critical_r(T) / 4.0


def critical_learning_rate(T: float, *, normalised: bool = False) -> float:
    r"""The largest learning rate with which gradient descent on the analytic loss cannot get stuck.

    Unnormalised loss (eq. 1/12, ``normalised=False``):
    :math:`\alpha^* = \frac{3\pi^4}{32} T^{-5}` (Dinc et al., eq. 15;
    :math:`9.13 \times 10^{-10}` for :math:`T = 100`).  A step from just right
    of the minimum, of length :math:`\alpha \cdot 2T^3/\pi^2`, lands below the
    point of no return :math:`r^*/4` exactly when :math:`\alpha > \alpha^*`.

    Normalised loss (divided by :math:`T`, ``normalised=True``): the gradient
    is :math:`T` times smaller, so :math:`\alpha^*_{\rm norm} = T\alpha^* =
    \frac{3\pi^4}{32} T^{-4}` (:math:`9.13 \times 10^{-8}` for :math:`T = 100`).

    Parameters
    ----------
    T : float
        Length of each phase of the task, > 0.
    normalised : bool
        Whether the loss is divided by ``T`` (default False: the paper's eq. 1).

    Returns
    -------
    float
        :math:`\alpha^*` (or :math:`\alpha^*_{\rm norm}`).
    """
    T = _check_T(T)
    normalised = V.flag(normalised, "normalised")
    alpha = 3.0 * math.pi**4 / 32.0 / T**5
    return alpha * T if normalised else alpha


def escape_time(r) -> float | np.ndarray:
    r"""Escape time :math:`t^*(r) = \pi/(2\sqrt r)` of :math:`\dot x = x^2 + r` from :math:`x(0) = 0`.

    The time at which :math:`x(t) = \sqrt r \tan(\sqrt r\, t)` reaches
    infinity (eq. 7); ``inf`` for :math:`r \le 0` (the state settles at the
    fixed point :math:`-\sqrt{-r}`, or at 0 for :math:`r = 0`).

    Parameters
    ----------
    r : float or array_like
        Parameter value(s), finite.

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``r``.
    """
    rs, scalar = _r_array(r)
    out = np.full(rs.shape, np.inf)
    pos = rs > 0
    out[pos] = math.pi / (2.0 * np.sqrt(rs[pos]))
    return _shaped(out, r, scalar)


@config.njit
def _analytic_point(r, T, r_no_return):
    """(loss, dloss/dr, escape time) of the unnormalised analytic loss at one r.

    ``r_no_return`` = r*/4 is passed in (computed once in Python) so that the zone boundary is the same
    number everywhere: ``r <= r*/4`` is the no-learning zone, whatever the rounding of the escape time.
    """
    if r <= 0.0:
        return T, 0.0, np.inf
    t_esc = math.pi / (2.0 * math.sqrt(r))
    if r <= r_no_return:  # escape at or after 2T: the output is 0 throughout
        return T, 0.0, t_esc
    u = T - t_esc
    # d t_esc / dr = -pi / (4 r^{3/2}) = -t_esc / (2 r);  d|u|/dr = sign(u) t_esc / (2 r)
    slope = t_esc / (2.0 * r)
    if u > 0.0:
        return u, slope, t_esc
    if u < 0.0:
        return -u, -slope, t_esc
    return 0.0, 0.0, t_esc  # exactly at r*: the kink; 0 is a subgradient there


@config.njit
def _analytic_many(rs, T, r_no_return, scale, loss, grad):
    for i in range(rs.size):
        l, g, _ = _analytic_point(rs[i], T, r_no_return)
        loss[i] = scale * l
        grad[i] = scale * g


def _analytic(r, T, normalised):
    rs, scalar = _r_array(r)
    T = _check_T(T)
    normalised = V.flag(normalised, "normalised")
    loss, grad = np.empty_like(rs), np.empty_like(rs)
    _analytic_many(rs, T, _r_star(T) / 4.0, 1.0 / T if normalised else 1.0, loss, grad)
    return _shaped(loss, r, scalar), _shaped(grad, r, scalar)


def analytic_loss(r, T: float, *, normalised: bool = False) -> float | np.ndarray:
    r"""The loss of the toy model in the limit :math:`c, x^* \to \infty` (Dinc et al., eqs. 2 and 12).

    .. math::

       \mathcal L(r) = \begin{cases} |T - \pi/(2\sqrt r)|, & r \ge r^*/4 = \pi^2/(16T^2), \\
                                     T, & \text{otherwise,} \end{cases}

    the time during which the output (0 before the escape at
    :math:`\pi/(2\sqrt r)`, 1 after it) differs from the target (0 before
    :math:`T`, 1 from :math:`T` to :math:`2T`).

    Parameters
    ----------
    r : float or array_like
        Parameter value(s), finite.
    T : float
        Length of each phase of the task, > 0.
    normalised : bool
        ``False`` (default): the integral of eq. 1 itself, in ``[0, T]``.
        ``True``: divided by ``T``, in ``[0, 1]``.

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``r``.
    """
    return _analytic(r, T, normalised)[0]


def analytic_gradient(r, T: float, *, normalised: bool = False) -> float | np.ndarray:
    r"""Derivative of :func:`analytic_loss` with respect to ``r`` (Dinc et al., eq. 13).

    .. math::

       \frac{d\mathcal L}{dr} = \begin{cases} -\pi/(4 r^{3/2}), & r^*/4 < r < r^*, \\
                                              +\pi/(4 r^{3/2}), & r > r^*, \\
                                              0, & r \le r^*/4, \end{cases}

    with the one-sided limits :math:`\mp 2T^3/\pi^2` at :math:`r^*` (eq. 14).
    At the kinks, where the derivative does not exist, this returns 0 (a
    subgradient at the minimum :math:`r^*`; the value inside the no-learning
    zone at its boundary :math:`r^*/4`).

    Parameters
    ----------
    r : float or array_like
        Parameter value(s), finite.
    T : float
        Length of each phase of the task, > 0.
    normalised : bool
        ``False`` (default): derivative of the unnormalised loss (eq. 13 as
        printed; the one :math:`\alpha^* = 3\pi^4/32\, T^{-5}` belongs to).
        ``True``: of the loss divided by ``T`` (the derivative divided by ``T``).

    Returns
    -------
    float or numpy.ndarray
        Same shape as ``r``.
    """
    return _analytic(r, T, normalised)[1]


# ----------------------------------------------------------------------------------------------
# finite c and x*: forward Euler and its exact reverse pass


@config.njit
def _sigmoid_pair(z):
    """``(sigma(z), sigma(-z))``, each accurate in its own tail (no ``1 - sigma`` cancellation)."""
    if z >= 0.0:
        e = math.exp(-z)
        return 1.0 / (1.0 + e), e / (1.0 + e)
    e = math.exp(z)
    return e / (1.0 + e), 1.0 / (1.0 + e)


@config.njit
def _euler_point(r, n, dt, c, x_star, saturation, xs, dls):
    """Unnormalised Euler loss, its exact r-derivative and the saturation time, for one r.

    ``n`` steps per phase; ``xs`` and ``dls`` (length >= 2n) are work buffers
    for the states and the local derivatives d(o_k - y_k)^2 / dx_k.
    """
    n_total = 2 * n
    x = 0.0
    acc = 0.0
    k_stop = n_total
    for k in range(n_total):
        if math.isnan(x):  # only if dt * r overflowed: report, do not raise
            return np.nan, np.nan, np.nan
        z = c * (x - x_star)
        if z > saturation:  # also catches x = +inf
            k_stop = k
            break
        s, s_neg = _sigmoid_pair(z)
        err = s if k < n else -s_neg  # output - target, without cancellation near the target
        acc += err * err
        xs[k] = x
        dls[k] = 2.0 * err * (s * s_neg) * c  # sigma'(z) = sigma(z) sigma(-z)
        x = x + dt * (x * x + r)
    if k_stop < n:
        acc += n - k_stop  # saturated output (exactly 1) while the target is still 0
    # reverse pass; xbar is the adjoint of x_{k+1}: zero for the first saturated state (its terms are dropped)
    xbar = 0.0
    rbar = 0.0
    for k in range(k_stop - 1, -1, -1):
        rbar += dt * xbar
        xbar = xbar * (1.0 + 2.0 * dt * xs[k]) + dt * dls[k]
    t_sat = k_stop * dt if k_stop < n_total else np.inf
    return dt * acc, rbar, t_sat


@config.njit
def _euler_many(rs, n, dt, c, x_star, saturation, scale, loss, grad, t_sat):
    xs = np.empty(2 * n)
    dls = np.empty(2 * n)
    for i in range(rs.size):
        l, g, t = _euler_point(rs[i], n, dt, c, x_star, saturation, xs, dls)
        loss[i] = scale * l
        grad[i] = scale * g
        t_sat[i] = t


class EulerLossGrad(NamedTuple):
    """Result of :func:`euler_loss_and_grad` (each a float, or an array shaped like ``r``).

    Parameters
    ----------
    loss : float or array
        The Euler loss (normalised or not, as asked).
    grad : float or array
        Its exact derivative with respect to r.
    escape_time : float or array
        Time at which the output saturated and integration stopped; inf if it never did.
    """

    #: the Euler loss (normalised or not, as asked)
    loss: float | np.ndarray
    #: its exact derivative with respect to r
    grad: float | np.ndarray
    #: time at which the output saturated (logit > saturation) and integration stopped; inf if it never did
    escape_time: float | np.ndarray


def euler_loss_and_grad(
    r,
    T: float,
    c: float,
    x_star: float,
    *,
    dt: float = 0.1,
    normalised: bool = False,
    saturation: float = 50.0,
) -> EulerLossGrad:
    r"""The toy model's loss at finite ``c`` and ``x*`` by forward Euler, and its exact gradient.

    .. math::

       x_0 = 0, \quad x_{k+1} = x_k + \Delta t\,(x_k^2 + r), \qquad
       L(r) = \Delta t \sum_{k=0}^{2n-1} \bigl(\sigma(c(x_k - x^*)) - y_k\bigr)^2,

    with :math:`n = T/\Delta t` and :math:`y_k = 0` for :math:`k < n`, 1 after:
    the left Riemann sum of eq. 1.  The gradient :math:`dL/dr` is the exact
    derivative of this sum (hand-written reverse pass through the Euler
    steps; see the module docstring), not of the continuous loss.  As
    :math:`c, x^* \to \infty` and :math:`\Delta t \to 0` both approach
    :func:`analytic_loss` and :func:`analytic_gradient` (docs/reproductions/ghost_mechanism.md
    has the table).

    Blow-up is handled, not raised: once the logit :math:`c(x_k - x^*)`
    exceeds ``saturation`` the output is exactly 1 from there on, integration
    stops, and the (below :math:`e^{-\text{saturation}}`) gradient terms of the
    later steps are dropped; ``escape_time`` reports when.

    Parameters
    ----------
    r : float or array_like
        Parameter value(s), finite.
    T : float
        Length of each phase of the task, > 0 and a whole multiple of ``dt``.
    c : float
        Confidence (slope) of the output sigmoid, > 0.
    x_star : float
        Output threshold :math:`x^*`, > 0.
    dt : float
        Euler step (default 0.1, as the authors).
    normalised : bool
        ``False`` (default): the sum approximating the integral of eq. 1 (units
        of time).  ``True``: divided by ``T``.  Loss and gradient alike.
    saturation : float
        Logit beyond which the output counts as exactly 1 and the
        integration stops (default 50; at least 37).

    Returns
    -------
    EulerLossGrad
        ``(loss, grad, escape_time)``: floats for a scalar ``r``, else arrays
        shaped like ``r``.  NaN entries only if the Euler step overflowed
        (``dt * r`` beyond the double range).
    """
    rs, scalar = _r_array(r)
    T = _check_T(T)
    n, dt, c, x_star, saturation = _euler_settings(T, c, x_star, dt, saturation)
    normalised = V.flag(normalised, "normalised")
    loss, grad, t_sat = np.empty_like(rs), np.empty_like(rs), np.empty_like(rs)
    _euler_many(rs, n, dt, c, x_star, saturation, 1.0 / T if normalised else 1.0, loss, grad, t_sat)
    return EulerLossGrad(_shaped(loss, r, scalar), _shaped(grad, r, scalar), _shaped(t_sat, r, scalar))


# ----------------------------------------------------------------------------------------------
# gradient descent


@config.njit
def _descend_analytic(r0, T, r_no_return, lr, scale, r_out, loss_out, grad_out, t_out):
    """Gradient descent on the analytic loss; returns the number of recorded epochs."""
    r = r0
    for e in range(r_out.size):
        l, g, t = _analytic_point(r, T, r_no_return)
        r_out[e], loss_out[e], grad_out[e], t_out[e] = r, scale * l, scale * g, t
        r = r - lr * (scale * g)
        if not math.isfinite(r):
            return e + 1
    return r_out.size


@config.njit
def _descend_euler(r0, n, dt, c, x_star, saturation, lr, scale, r_out, loss_out, grad_out, t_out):
    """Gradient descent on the Euler loss; returns the number of recorded epochs."""
    xs = np.empty(2 * n)
    dls = np.empty(2 * n)
    r = r0
    for e in range(r_out.size):
        l, g, t = _euler_point(r, n, dt, c, x_star, saturation, xs, dls)
        r_out[e], loss_out[e], grad_out[e], t_out[e] = r, scale * l, scale * g, t
        if not (math.isfinite(l) and math.isfinite(g)):
            return e + 1
        r = r - lr * (scale * g)
        if not math.isfinite(r):
            return e + 1
    return r_out.size


def _draw_r0(T: float, rng: np.random.Generator) -> float:
    r_star = critical_r(T)
    return float(10.0 * r_star + (r_star / 10.0) * rng.standard_normal())


def initial_r(T: float, seed=0) -> float:
    r"""The authors' random initialisation :math:`r_0 = 10 r^* + \mathcal N(0, (r^*/10)^2)`.

    Parameters
    ----------
    T : float
        Length of each phase of the task, > 0.
    seed : int, None or numpy.random.Generator
        Random seed (the package's one rule, see ``plrnn_numba._validate.seed_sequence``).

    Returns
    -------
    float
        :math:`r_0`.
    """
    T = _check_T(T)
    rng, _ = V.generator(seed)
    return _draw_r0(T, rng)


def gradient_descent(
    r0: float | None,
    T: float,
    lr: float,
    n_epochs: int,
    *,
    c: float | None = None,
    x_star: float | None = None,
    dt: float = 0.1,
    normalised: bool = False,
    saturation: float = 50.0,
    seed=0,
) -> xr.Dataset:
    r"""Train the toy model's ``r`` by plain gradient descent, :math:`r \leftarrow r - \alpha\, dL/dr`.

    Without ``c`` and ``x_star`` the loss is the analytic limit
    (:func:`analytic_loss`, :func:`analytic_gradient`); with both it is the
    Euler loss at that confidence and threshold (:func:`euler_loss_and_grad`).

    Parameters
    ----------
    r0 : float or None
        Initial parameter.  None draws the authors' initialisation
        :math:`10 r^* + \mathcal N(0, (r^*/10)^2)` from ``seed`` (:func:`initial_r`).
    T : float
        Length of each phase of the task, > 0.
    lr : float
        Learning rate :math:`\alpha` > 0.  Compare with
        :func:`critical_learning_rate` of the same ``normalised``.
    n_epochs : int
        Gradient steps (1 .. 10,000,000).
    c, x_star : float, optional
        Sigmoid confidence and threshold of the finite model (both or neither).
    dt : float
        Euler step of the finite model (default 0.1; unused in the analytic limit).
    normalised : bool
        ``False`` (default): the unnormalised loss of eq. 1 (the one
        :math:`\alpha^* = 3\pi^4/32\,T^{-5}` belongs to).  ``True``: the loss
        divided by ``T``, whose gradient is ``T`` times smaller.
    saturation : float
        See :func:`euler_loss_and_grad` (finite model only).
    seed : int, None or numpy.random.Generator
        Seed of the random ``r0`` (used and recorded only when ``r0`` is None).

    Returns
    -------
    xarray.Dataset
        Dimension ``epoch`` = 0 .. ``n_epochs``: entry ``e`` is the state
        after ``e`` updates (entry 0 the initial one).  Variables ``r``,
        ``loss``, ``grad`` (at that ``r``; the last entry is evaluated but not
        applied) and ``escape_time`` (analytic: :math:`\pi/(2\sqrt r)`; Euler:
        when the output saturated; inf if never).  Attributes: provenance (the
        call, its arguments, the seed), ``model`` ("analytic" or "euler"),
        ``normalised`` (0/1), ``T``, ``lr``, ``r0``, ``critical_r``,
        ``point_of_no_return``, ``critical_learning_rate`` (for the loss
        used), ``status`` ("finished", or "diverged" if r, the loss or the
        gradient became non-finite: later epochs are NaN),
        ``epochs_completed`` and ``final_in_no_learning_zone`` (0/1: the last
        r is at or below :math:`r^*/4`, where the analytic gradient is 0).
    """
    T = _check_T(T)
    lr = V.finite_float(lr, "lr", low=0.0, open_low=True)
    n_epochs = V.positive_int(n_epochs, "n_epochs", maximum=MAX_EPOCHS)
    normalised = V.flag(normalised, "normalised")
    if (c is None) != (x_star is None):
        missing = "x_star" if x_star is None else "c"
        raise ValueError(f"{missing} is missing: give both c and x_star for the finite model, or neither for the "
                         "analytic limit")
    rng, drawn_seed = V.generator(seed, "seed")  # checked even when r0 is given
    seeds = None
    if r0 is None:
        seeds = drawn_seed
        r0 = _draw_r0(T, rng)
    else:
        r0 = V.finite_float(r0, "r0")
    size = n_epochs + 1
    r_out, loss_out, grad_out, t_out = (np.full(size, np.nan) for _ in range(4))
    scale = 1.0 / T if normalised else 1.0
    arguments = {"r0": r0, "T": T, "lr": lr, "n_epochs": n_epochs, "normalised": normalised}
    if c is None:
        model = "analytic"
        done = _descend_analytic(r0, T, _r_star(T) / 4.0, lr, scale, r_out, loss_out, grad_out, t_out)
        escape_desc = "escape time pi / (2 sqrt r) of the analytic model (inf for r <= 0)"
    else:
        model = "euler"
        n, dt, c, x_star, saturation = _euler_settings(T, c, x_star, dt, saturation)
        arguments.update(c=c, x_star=x_star, dt=dt, saturation=saturation)
        done = _descend_euler(r0, n, dt, c, x_star, saturation, lr, scale, r_out, loss_out, grad_out, t_out)
        escape_desc = "time at which the output saturated (logit > saturation); inf if it never did"
    return _history(r_out, loss_out, grad_out, t_out, done, model=model, arguments=arguments, seeds=seeds,
                    escape_desc=escape_desc)


def _history(r, loss, grad, t_esc, done, *, model, arguments, seeds, escape_desc) -> xr.Dataset:
    T, lr, normalised = arguments["T"], arguments["lr"], arguments["normalised"]
    which = "divided by T" if normalised else "not normalised (eq. 1)"
    last = r[done - 1]
    attrs = io.provenance("plrnn_numba.ghost.toy.gradient_descent", arguments, seeds=seeds)
    attrs.update(
        title=f"gradient descent on the toy model of Dinc et al. ({model} loss, {which})",
        model=model,
        normalised=int(normalised),
        T=T,
        lr=lr,
        r0=arguments["r0"],
        critical_r=critical_r(T),
        point_of_no_return=point_of_no_return(T),
        critical_learning_rate=critical_learning_rate(T, normalised=normalised),
        status="finished" if done == r.size else "diverged",
        epochs_completed=int(done - 1),
        final_in_no_learning_zone=int(bool(last <= point_of_no_return(T))),
    )
    return xr.Dataset(
        {
            # the model is dimensionless: times in units of its own clock, r in 1/time^2
            "r": ("epoch", r, {"long_name": "parameter r of dx/dt = x^2 + r (1/time^2)", "units": "1"}),
            "loss": ("epoch", loss, {"long_name": f"loss at r, {model}, {which}", "units": "1"}),
            "grad": ("epoch", grad, {"long_name": f"d loss / d r at r, {model}, {which}", "units": "1"}),
            "escape_time": ("epoch", t_esc, {"long_name": escape_desc, "units": "1"}),
        },
        coords={"epoch": ("epoch", np.arange(r.size), {"long_name": "gradient steps taken", "units": "1"})},
        attrs=attrs,
    )
