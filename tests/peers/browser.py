"""Debian's headless Chromium driven by playwright-core (``tests/js/status_page.mjs``).

What an operator sees of the gateway's status page: the page opened with HTTP basic
credentials, a screenshot of it, the tables read back from the DOM, and (given a job)
that job's Retry button pressed as a person would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._common import PeerCommandError, PeerMissingError, run
from .dcmjs import JS_DIR, node_program

__all__ = ["status_page_in_chromium"]


def status_page_in_chromium(
    url: str,
    user: str,
    password: str,
    workdir: str | os.PathLike[str],
    *,
    retry_job: int | None = None,
    timeout: float = 120.0,
) -> tuple[dict[str, Any], Path]:
    """Open ``url`` in Chromium; return what the DOM shows and the screenshot's path.

    With ``retry_job``, the page's Retry button of that job is pressed afterwards and the
    page it leads to is read into ``["retry"]``. Raises :class:`PeerMissingError` without
    Chromium (``RADBRIDGE_CHROMIUM``, default ``/usr/bin/chromium``) and
    :class:`PeerCommandError` with the browser's error.
    """
    chromium = os.environ.get("RADBRIDGE_CHROMIUM", "/usr/bin/chromium")
    if not Path(chromium).exists():
        raise PeerMissingError(f"{chromium} not found; scripts/install-system.sh installs chromium")
    out = Path(workdir)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "status-page"
    args: list[Any] = [JS_DIR / "status_page.mjs", url, user, password, prefix]
    if retry_job is not None:
        args.append(str(retry_job))
    done = run(node_program("playwright-core"), args, timeout=timeout, cwd=JS_DIR)
    if done.returncode != 0:
        raise PeerCommandError(f"Chromium could not show {url}: {done.stderr[-3000:]}")
    return json.loads(prefix.with_suffix(".json").read_text()), prefix.with_suffix(".png")
