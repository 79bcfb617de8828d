"""How dask worker processes died: a nanny plugin that reports their exit codes to the scheduler's event log.

A task that kills its worker reaches the client as ``KilledWorker``, which
names the last worker but not how it died; only its nanny sees the exit
code, and says it in a log line (``"Worker process 123 was killed by signal
11"``).  :class:`ExitReporter` watches for that line on every nanny it is
registered with and posts ``{"pid", "exitcode"}`` as an event of topic
:data:`TOPIC`, which the sweep reads with ``Client.get_events``.  The log
text is matched, not a private attribute, so a dask release that rewords it
costs only the detail in the message (the sweep then says the exit code was
not reported).  This module imports ``distributed``: the dask backend loads
it only when it runs.
"""

from __future__ import annotations

import logging
import re
import weakref

from distributed.diagnostics.plugin import NannyPlugin

#: event topic of the worker exits.
TOPIC = "plrnn_numba.sweep.worker-exit"

_LOGGER = "distributed.nanny"
_DEATH = re.compile(
    r"Worker process (\d+) (?:was killed by signal (\d+)|exited with status (\d+)|was killed by unknown)"
)


class _DeathLogFilter(logging.Filter):
    """Passes every record; posts the exits it reads to the scheduler through a nanny of this process."""

    def __init__(self):
        super().__init__()
        self.nannies: weakref.WeakSet = weakref.WeakSet()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            m = _DEATH.match(record.getMessage())
        except Exception:  # a record whose arguments do not format: not ours
            return True
        if m:
            code = -int(m[2]) if m[2] else int(m[3]) if m[3] else None
            for nanny in list(self.nannies):
                loop = getattr(nanny, "loop", None)
                if loop is not None:
                    # nanny.log_event must run on the nanny's event loop; add_callback is thread-safe
                    loop.add_callback(nanny.log_event, TOPIC, {"pid": int(m[1]), "exitcode": code})
                    break
        return True


_filter: _DeathLogFilter | None = None


class ExitReporter(NannyPlugin):
    """Nanny plugin: report worker-process exits (pid and exit code) as scheduler events of topic :data:`TOPIC`."""

    name = "plrnn_numba-sweep-exit-reporter"
    idempotent = True  # registered again by every sweep on the same cluster: keep the first

    def setup(self, nanny):
        global _filter
        if _filter is None:  # one filter per process, however many nannies it runs
            _filter = _DeathLogFilter()
            logging.getLogger(_LOGGER).addFilter(_filter)
        _filter.nannies.add(nanny)

    def teardown(self, nanny):
        if _filter is not None:
            _filter.nannies.discard(nanny)
