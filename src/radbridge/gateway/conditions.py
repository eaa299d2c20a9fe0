"""Log a recurring failure once when it starts, once when it changes, once when it ends.

A full or read-only disk makes every loop of the gateway fail the same way
every ``poll_s``; the log gets one line per change of state instead of a
traceback per round. Expected failures (radbridge errors, OS and database
errors) are logged without a traceback; anything else gets one, once.

Examples
--------
>>> import logging, sys
>>> logger = logging.getLogger("conditions-doctest")
>>> logger.addHandler(logging.StreamHandler(sys.stdout))
>>> logger.propagate = False
>>> conditions = Conditions(logger)
>>> for _ in range(3):
...     conditions.report("sender", OSError(28, "No space left on device"))
sender failing: No space left on device
>>> conditions.clear("sender")
sender working again
>>> conditions.clear("sender")
"""

from __future__ import annotations

import logging
import sqlite3
import threading

from radbridge.errors import RadbridgeError

__all__ = ["Conditions", "describe"]

_EXPECTED = (RadbridgeError, OSError, sqlite3.Error)


def describe(exc: BaseException) -> str:
    """One line for an exception (no traceback, no data)."""
    if isinstance(exc, OSError) and not isinstance(exc, RadbridgeError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Conditions:
    """Failure states by place, logged only when they change."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._active: dict[str, str] = {}
        self._lock = threading.Lock()

    def report(self, where: str, exc: BaseException) -> None:
        """Record that ``where`` failed with ``exc``; log it if that is new."""
        text = describe(exc)
        with self._lock:
            previous = self._active.get(where)
            self._active[where] = text
        if previous == text:
            self._log.debug("%s still failing: %s", where, text)
            return
        self._log.error(
            "%s failing: %s", where, text, exc_info=None if isinstance(exc, _EXPECTED) else exc
        )

    def clear(self, where: str) -> None:
        """Record that ``where`` works; log it if it was failing."""
        with self._lock:
            was = self._active.pop(where, None)
        if was is not None:
            self._log.warning("%s working again", where)

    def active(self) -> dict[str, str]:
        """Return the failures now in effect, by place."""
        with self._lock:
            return dict(self._active)
