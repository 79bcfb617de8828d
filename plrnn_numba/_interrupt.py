"""Ctrl-C and ``SIGTERM`` that arrive while compiled code runs.

Python runs a signal handler between bytecodes.  During a long call into a
numba engine it cannot, so the handler runs when the engine hands its results
back: numba builds some of them with Python code (``_numba_unpickle``), the
handler's ``KeyboardInterrupt`` is raised in there, and the call ends with
``SystemError: ... returned a result with an exception set`` whose
``__context__`` chain holds the interrupt.  Code that keeps a long run's
finished work on Ctrl-C (training, flossing, sweeps) looks for the interrupt
behind such an error with :func:`interrupt_behind`.
"""

from __future__ import annotations

import contextlib

__all__ = ["interrupt_behind", "interrupts_surface"]


def interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The ``KeyboardInterrupt`` that ``exc`` is or was raised while handling, if any.

    Parameters
    ----------
    exc : BaseException
        A caught exception.

    Returns
    -------
    KeyboardInterrupt or None
        The first interrupt along ``exc``, its ``__cause__`` / ``__context__``
        chain; None when there is none (a genuine failure).
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


@contextlib.contextmanager
def interrupts_surface():
    """Inside the block, an interrupt wrapped in a ``SystemError`` is raised as the ``KeyboardInterrupt`` it is.

    Wrapped around an engine call, so that Ctrl-C during it reaches the
    caller (a user's loop, ``pn.train``) as a plain ``KeyboardInterrupt``.
    """
    try:
        yield
    except SystemError as exc:
        interrupt = interrupt_behind(exc)
        if interrupt is None:
            raise
        raise interrupt from None
