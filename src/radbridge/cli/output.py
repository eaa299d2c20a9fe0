"""What the ``radbridge`` commands print: the root options, reports, progress bars and logs.

The root options (``--quiet``, ``--log-file``, ``-v``) hold for one invocation; they
live in a context variable that :func:`configure` sets and :func:`reset` undoes, so
the CLI called in-process (tests, :func:`radbridge.cli.main`) leaves no global state
behind. rich is imported only when a progress bar is really drawn (a terminal on
stderr, no ``--quiet``), so ``radbridge --help`` and piped runs never load it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

__all__ = [
    "Advance",
    "Bar",
    "Settings",
    "configure",
    "emit",
    "progress",
    "reset",
    "say",
    "settings",
]

#: Called with (done, total) as work advances; total None when it is not known.
Advance = Callable[[int, "int | None"], None]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class Settings:
    """The root options of one invocation."""

    quiet: bool = False
    verbose: int = 0
    log_file: Path | None = None
    handlers: list[logging.Handler] = field(default_factory=list)
    warning_filters: list[Any] = field(default_factory=list)
    levels: dict[str, int] = field(default_factory=dict)


_SETTINGS: ContextVar[Settings | None] = ContextVar("radbridge_cli_settings", default=None)


def settings() -> Settings:
    """Return the root options of the running invocation (defaults outside one)."""
    return _SETTINGS.get() or Settings()


def configure(*, quiet: bool, verbose: int, log_file: Path | None) -> Settings:
    """Apply the root options: log levels and handler (radbridge's loggers first).

    ``-v`` shows radbridge's INFO records and ``-vv`` its DEBUG records; other
    libraries' loggers (pynetdicom, urllib3, ...) stay at WARNING until ``-vvv``.
    ``--quiet`` leaves errors only. ``--log-file`` sends the records to FILE
    (appended) instead of stderr. pynetdicom's own lines (a refused connection is
    two ERROR lines before radbridge's one error) appear from ``-v`` on.
    """
    reset()
    state = Settings(quiet=quiet, verbose=verbose, log_file=log_file)
    ours = logging.ERROR if quiet else logging.WARNING - 10 * min(verbose, 2)
    others = logging.ERROR if quiet else (logging.DEBUG if verbose >= 3 else logging.WARNING)
    root, package = logging.getLogger(), logging.getLogger("radbridge")
    network = logging.getLogger("pynetdicom")
    state.levels = {"": root.level, "radbridge": package.level, "pynetdicom": network.level}
    root.setLevel(others)
    package.setLevel(ours)
    # pynetdicom logs a refused connection as two ERROR lines of its own before radbridge's
    # one clear error: shown from -v on
    network.setLevel(logging.CRITICAL if verbose == 0 or quiet else logging.WARNING)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.addFilter(_RedactPydicomValues())
    root.addHandler(handler)
    state.handlers.append(handler)
    # pydicom logs each invalid value (redacted above) and warns with it again on stderr
    state.warning_filters = list(warnings.filters)
    warnings.filterwarnings("ignore", message=_PYDICOM_VALUE_WARNING, category=UserWarning)
    _SETTINGS.set(state)
    return state


#: pydicom's messages about an invalid element value, which quote the value.
_PYDICOM_VALUE_WARNING = r"(?s).*(Invalid value for VR|is not valid for elements with a VR)"
#: A quoted value in a pydicom message (Python's repr quoting, escapes included).
_QUOTED = re.compile(r"'(?:\\.|[^'\\])*'" + r'|"(?:\\.|[^"\\])*"')


class _RedactPydicomValues(logging.Filter):
    """Log pydicom's records with their quoted element values (names, IDs) replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "pydicom" or record.name.startswith("pydicom."):
            record.msg = _QUOTED.sub("<value not logged>", record.getMessage())
            record.args = None
        return True


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now: a progress bar's proxy keeps lines above it."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def reset() -> None:
    """Undo :func:`configure`: remove its handler, restore the log levels."""
    state = settings()
    root = logging.getLogger()
    for handler in state.handlers:
        root.removeHandler(handler)
        handler.close()
    for name, level in state.levels.items():
        logging.getLogger(name or None).setLevel(level)
    if state.handlers:
        warnings.filters[:] = state.warning_filters  # type: ignore[index]
    _SETTINGS.set(None)


def say(text: str, *, err: bool = False) -> None:
    """Print a line of the human-readable report (nothing with ``--quiet``)."""
    if not settings().quiet:
        typer.echo(text, err=err)


def emit(data: Any) -> None:
    """Print ``data`` as JSON on stdout (always: ``--json`` asked for it)."""
    typer.echo(json.dumps(data, indent=2))


def _bar_wanted() -> bool:
    stream = sys.stderr
    return not settings().quiet and hasattr(stream, "isatty") and stream.isatty()


class Bar:
    """A progress bar's handle: call it with (done, total); :meth:`note` sets its text.

    The base class draws nothing (piped output, ``--quiet``).
    """

    def __call__(self, done: int, total: int | None = None) -> None:
        """Record that ``done`` of ``total`` steps are finished."""

    def note(self, text: str) -> None:
        """Show ``text`` after the label (e.g. a count of failures)."""


class _RichBar(Bar):
    def __init__(self, bar: Any, label: str, total: int | None) -> None:
        self.bar, self.label = bar, label
        self.task = bar.add_task(label, total=total)

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.bar.update(self.task, completed=done, total=total)
        else:
            self.bar.update(self.task, completed=done)

    def note(self, text: str) -> None:
        self.bar.update(self.task, description=f"{self.label} ({text})")


@contextlib.contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Bar]:
    """Yield a :class:`Bar`: drawn by rich on stderr, or nothing when not a terminal.

    The bar is drawn only when stderr is a terminal and ``--quiet`` is off; piped and
    logged runs see no control characters. rich is imported only then.
    """
    if not _bar_wanted():
        yield Bar()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield _RichBar(bar, label, total)
