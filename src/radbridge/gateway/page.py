"""The gateway's status page as server-rendered HTML (no script; UIDs, states, counts, times).

:func:`render_status` turns a :class:`StatusView` (gathered by
:mod:`radbridge.gateway.web`) into one HTML page: the queue, the jobs with their
states and latencies, the dead-lettered jobs with a retry button, the series on
hold with their reasons, the series still arriving, the deliveries, the
critical-finding alerts (counts, latency, failures), the disk and the model cards. Every
value is escaped; nothing identifies a patient (the store keeps UIDs only).

Examples
--------
>>> view = StatusView(report={"queue": {}, "deliveries": {}, "received": {"series": 0,
...     "instances": 0}, "latency_s": None, "run_s": None, "held_series": [],
...     "recent_jobs": [], "failures": []}, deliveries=[], disk=Disk(10.0, 100.0, 1.0),
...     models=[], ae_title="RADBRIDGE", now=0.0)
>>> page = render_status(view, csrf=None)
>>> page.startswith("<!DOCTYPE html>"), "<script" in page
(True, False)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from radbridge.gateway.store import DeliveryState

__all__ = ["Disk", "ModelCard", "StatusView", "render_message", "render_status"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#f6f8fa}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:.5em}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#eaeef2}td.time{white-space:nowrap}td.error{min-width:16em}td.uid{font-family:ui-monospace,monospace;font-size:12px;overflow-wrap:anywhere}
.state{font-weight:600}.running{color:#0550ae}.dead,.failed{color:#cf222e}
.done,.delivered{color:#1a7f37}.queued,.pending,.delivering{color:#9a6700}
.cards{display:flex;flex-wrap:wrap;gap:.8em}.card{background:#fff;border:1px solid #d0d7de;
padding:.5em .8em;min-width:16em}.notice{background:#dafbe1;border:1px solid #1a7f37;
padding:.4em .8em}.warn{background:#fff8c5;border:1px solid #9a6700;padding:.4em .8em}
.summary span{display:inline-block;margin-right:1.2em}p.empty{color:#57606a}
"""


@dataclass(frozen=True)
class Disk:
    """Free and total bytes where the spool is, and the low-water mark (bytes)."""

    free: float
    total: float
    min_free: float

    @property
    def accepting(self) -> bool:
        """Whether the receivers accept instances (free space above the mark)."""
        return self.free >= self.min_free


@dataclass(frozen=True)
class ModelCard:
    """A model as the page shows it: spec, rules, outputs; name, version, labels once loaded."""

    spec: str
    rules: tuple[str, ...]
    outputs: tuple[str, ...]
    destinations: tuple[str, ...]
    name: str | None = None
    version: str | None = None
    labels: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusView:
    """Everything the page shows (``report``: :func:`radbridge.gateway.status.status`)."""

    report: dict[str, Any]
    deliveries: list[DeliveryState]
    disk: Disk
    models: list[ModelCard]
    ae_title: str
    now: float = field(default_factory=time.time)
    retry_allowed: bool = False


def _stamp(value: float | None) -> str:
    if value is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value))


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _size(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{value:.0f} B"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


def _table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    """Return a table of already-escaped cells (or ``empty`` when there is no row)."""
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    if not body:
        return f'<p class="empty" id="{table_id}">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any, css: str = "") -> str:
    text = "" if value is None else str(value)
    return f'<td class="{css}">{escape(text)}</td>' if css else f"<td>{escape(text)}</td>"


def _latencies(job: dict[str, Any], now: float) -> tuple[str, str]:
    """Return the job's waiting time (created → started) and run time (so far)."""
    created, started, finished = job["created_at"], job["started_at"], job["finished_at"]
    waited = None if created is None or started is None else started - created
    end = finished if finished is not None else (now if job["state"] == "running" else None)
    ran = None if started is None or end is None else end - started
    return _seconds(waited), _seconds(ran)


def _jobs(view: StatusView) -> str:
    rows = []
    for job in view.report["recent_jobs"]:
        waited, ran = _latencies(job, view.now)
        rows.append(
            [
                f'<td id="job-{int(job["id"])}">{int(job["id"])}</td>',
                _cell(job["state"], f"state {job['state']}"),
                _cell(job["series_instance_uid"], "uid"),
                _cell(job["version"]),
                _cell(job["rule"]),
                _cell(job["model"]),
                _cell(job["attempts"]),
                _cell(_stamp(job["created_at"]), "time"),
                _cell(waited, "time"),
                _cell(ran, "time"),
                _cell((job["error"] or "")[:300], "error"),
            ]
        )
    headers = ("Job", "State", "Series Instance UID", "Version", "Rule", "Model", "Attempts",
               "Queued at", "Waited", "Ran", "Last error")  # fmt: skip
    return _table("jobs", headers, rows, "No job yet.")


def _dead(view: StatusView, csrf: str | None) -> str:
    rows = []
    for job in view.report["failures"]:
        job_id = int(job["id"])
        if view.retry_allowed and csrf:
            button = (
                f'<td><form method="post" action="/jobs/{job_id}/retry">'
                f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
                f'<button type="submit" id="retry-{job_id}">Retry</button></form></td>'
            )
        else:
            button = "<td>needs [gateway.stow_auth]</td>"
        rows.append(
            [
                _cell(job_id),
                _cell(job["series_instance_uid"], "uid"),
                _cell(job["attempts"]),
                _cell((job["error"] or "")[:500]),
                button,
            ]
        )
    headers = ("Job", "Series Instance UID", "Attempts", "Reason", "")
    return _table("dead-lettered", headers, rows, "Nothing is dead-lettered.")


def _held(view: StatusView) -> str:
    rows = [
        [
            _cell(s["series_instance_uid"], "uid"),
            _cell(s["study_instance_uid"], "uid"),
            _cell(s["instances"]),
            _cell(s["reason"]),
            _cell(_stamp(s["held_at"]), "time"),
        ]
        for s in view.report["held_series"]
    ]
    headers = ("Series Instance UID", "Study Instance UID", "Instances", "Reason", "Held at")
    return _table("held", headers, rows, "No series is held.")


def _arriving(view: StatusView) -> str:
    rows = []
    for s in view.report.get("arriving_series", []):
        expected = "" if s["expected"] is None else s["expected"]
        rows.append(
            [
                _cell(s["series_instance_uid"], "uid"),
                _cell(s["study_instance_uid"], "uid"),
                _cell(s["instances"]),
                _cell(expected),
                _cell(s["open_transfers"]),
                _cell(_stamp(s["first_received_at"]), "time"),
                _cell(_seconds(view.now - s["last_received_at"]), "time"),
            ]
        )
    headers = ("Series Instance UID", "Study Instance UID", "Instances", "Expected",
               "Open transfers", "First instance at", "Quiet for")  # fmt: skip
    return _table("arriving", headers, rows, "No series is arriving.")


def _alerts(view: StatusView) -> str:
    report = view.report
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.get("alerts", {}).items()))
    latency = report.get("alert_latency_s")
    taken = (
        f"; last instance → alert taken: median {latency['median']} s, p95 {latency['p95']} s"
        if latency
        else ""
    )
    rows = [
        [
            _cell(a["job"]),
            _cell(a["destination"]),
            _cell(a["attempts"]),
            _cell((a["error"] or "")[:300], "error"),
        ]
        for a in report.get("alert_failures", [])
    ]
    table = _table("alert-failures", ("Job", "Destination", "Attempts", "Reason"), rows,
                   "No alert has failed.")  # fmt: skip
    return f'<p id="alerts">Alerts: {escape(counts or "none")}{escape(taken)}</p>{table}'


def _deliveries(view: StatusView) -> str:
    rows = [
        [
            _cell(d.job_id),
            _cell(d.destination),
            _cell(d.sop_instance_uid, "uid"),
            _cell(d.state, f"state {d.state}"),
            _cell(d.attempts),
            _cell(_stamp(d.delivered_at), "time"),
            _cell((d.error or "")[:300], "error"),
        ]
        for d in view.deliveries
    ]
    headers = ("Job", "Destination", "SOP Instance UID", "State", "Attempts", "Delivered at",
               "Last error")  # fmt: skip
    return _table("deliveries", headers, rows, "Nothing delivered yet.")


def _models(view: StatusView) -> str:
    cards = []
    for card in view.models:
        loaded = (
            f"{escape(card.name or '')} {escape(card.version or '')}"
            if card.name
            else "not loaded yet"
        )
        labels = ", ".join(f"{k}: {v}" for k, v in sorted(card.labels.items()))
        cards.append(
            f'<div class="card"><strong>{escape(card.spec)}</strong><br>model: {loaded}<br>'
            f"rules: {escape(', '.join(card.rules))}<br>"
            f"outputs: {escape(', '.join(card.outputs))}<br>"
            f"destinations: {escape(', '.join(card.destinations))}"
            + (f"<br>labels: {escape(labels)}" if labels else "")
            + "</div>"
        )
    return f'<div class="cards" id="models">{"".join(cards)}</div>'


def _summary(view: StatusView) -> str:
    report, disk = view.report, view.disk
    queue = ", ".join(f"{k} {v}" for k, v in sorted(report["queue"].items())) or "empty"
    deliveries = ", ".join(f"{k} {v}" for k, v in sorted(report["deliveries"].items())) or "none"
    latency = report["latency_s"]
    lat = (
        f"median {latency['median']} s, p95 {latency['p95']} s over {latency['count']} jobs"
        if latency
        else "no job done yet"
    )
    state = "accepting" if disk.accepting else "REFUSING instances (below min_free_disk_mb)"
    purged = report.get("purged") or {}
    removed = (
        f"<span>Purged (retention): {purged['series']} series, {purged['instances']} "
        f"instances, {_size(purged['bytes'])}</span>"
        if purged.get("series")
        else ""
    )
    swept = report.get("swept") or {}
    if swept.get("unrecorded") or swept.get("partial"):
        removed += (
            f"<span>Swept: {swept['unrecorded']} unrecorded, {swept['partial']} partial "
            f"files, {_size(swept['unrecorded_bytes'] + swept['partial_bytes'])}</span>"
        )
    return (
        '<p class="summary" id="summary">'
        f"<span>Received: {report['received']['series']} series, "
        f"{report['received']['instances']} instances</span>{removed}"
        f'<span id="queue">Jobs: {escape(queue)}</span>'
        f"<span>Deliveries: {escape(deliveries)}</span>"
        f"<span>Latency (last instance → done): {escape(lat)}</span></p>"
        f'<p id="disk">Disk: {_size(disk.free)} free of {_size(disk.total)} '
        f"(low-water mark {_size(disk.min_free)}): {state}</p>"
    )


def render_status(view: StatusView, *, csrf: str | None, notice: str | None = None) -> str:
    """Return the status page (``csrf``: the token the retry forms carry)."""
    note = f'<p class="notice" id="notice">{escape(notice)}</p>' if notice else ""
    sections = (
        ("Queue and disk", _summary(view)),
        ("Jobs", _jobs(view)),
        ("Dead-lettered jobs", _dead(view, csrf)),
        ("Arriving series", _arriving(view)),
        ("Held series", _held(view)),
        ("Deliveries", _deliveries(view)),
        ("Critical-finding alerts", _alerts(view)),
        ("Models", _models(view)),
    )
    body = "".join(f"<h2>{escape(title)}</h2>{html}" for title, html in sections)
    return _document(
        f"radbridge gateway {view.ae_title}",
        f"<h1>radbridge gateway {escape(view.ae_title)}</h1>"
        f"<p>As of {_stamp(view.now)} (reload for news)</p>{note}{body}",
    )


def render_message(title: str, message: str) -> str:
    """Return a small page saying ``message`` (errors of the retry action)."""
    return _document(
        title,
        f'<h1>{escape(title)}</h1><p class="warn" id="message">{escape(message)}</p>'
        '<p><a href="/">Back to the status page</a></p>',
    )


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
