"""``radbridge query`` and ``radbridge retrieve``: C-FIND/QIDO-RS and C-GET/C-MOVE/WADO-RS."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from radbridge.cli import app

if TYPE_CHECKING:
    from radbridge.net import Peer

PeerArgument = Annotated[
    str, typer.Argument(metavar="PEER", help="AE@HOST:PORT, or a peer name from --config.")
]
PeerConfig = Annotated[
    Path | None, typer.Option("--config", help="TOML file with [peers.NAME] tables.")
]
Timeout = Annotated[
    float | None,
    typer.Option("--timeout", help="Seconds to wait for the peer (default: the peer's timeout_s)."),
]
_SHOWN = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "ModalitiesInStudy",
    "StudyDate",
    "SeriesNumber",
    "InstanceNumber",
    "NumberOfPatientRelatedStudies",
    "NumberOfStudyRelatedInstances",
    "NumberOfSeriesRelatedInstances",
)


def _peer(text: str, config: Path | None, timeout: float | None) -> Peer:
    from dataclasses import replace

    from radbridge.net import resolve_peer

    peer = resolve_peer(text, config)
    return peer if timeout is None else replace(peer, timeout_s=timeout)


@app.command("query")
def query_command(
    peer: PeerArgument,
    config: PeerConfig = None,
    level: Annotated[
        Literal["patient", "study", "series", "image"],
        typer.Option(case_sensitive=False, help="Query level."),
    ] = "study",
    study: Annotated[str | None, typer.Option("--study", help="Study Instance UID.")] = None,
    series: Annotated[str | None, typer.Option("--series", help="Series Instance UID.")] = None,
    patient_id: Annotated[str | None, typer.Option("--patient-id", help="Patient ID.")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality.")] = None,
    use_web: Annotated[bool, typer.Option("--web", help="Use QIDO-RS, not C-FIND.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Show at most N matches (default: all).")
    ] = None,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Skip the first N matches (QIDO-RS only).")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print DICOM JSON.")] = False,
    ae: Annotated[str, typer.Option("--ae", help="Our AE title.")] = "RADBRIDGE",
    timeout: Timeout = None,
) -> None:
    """Find patients, studies, series or instances; print their UIDs and counts.

    All matches are shown, every page of a QIDO-RS answer included; --limit shows the
    first N and says whether the peer has more. Names and IDs are printed only with
    --json (DICOM JSON of what the peer returns).
    """
    from radbridge.cli.output import emit, say

    _check_scope(level.lower(), study, series)
    if offset and not use_web:
        raise typer.BadParameter(
            "C-FIND has no offset: use --web (QIDO-RS), or narrow the search",
            param_hint="--offset",
        )
    keys: dict[str, str] = {}
    if patient_id:
        keys["PatientID"] = patient_id
    if modality:
        keys["Modality" if level.lower() in ("series", "image") else "ModalitiesInStudy"] = modality
    target = _peer(peer, config, timeout)
    found = _search(target, level, study, series, keys, use_web, limit, offset, ae)
    more = limit is not None and len(found) > limit
    found = found[:limit]
    if as_json:
        emit([ds.to_json_dict() for ds in found])
    else:
        for ds in found:
            fields = [f"{k}={ds.get(k)}" for k in _SHOWN if k in ds and ds.get(k) not in (None, "")]
            say("  ".join(fields) or "(match without UIDs)")
    if more:
        nxt = f"--offset {offset + len(found)}" if use_web else "raise --limit"
        say(f"{len(found)} matches shown; the peer has more ({nxt} for the next)", err=as_json)
    elif not as_json:
        say(f"{len(found)} matches")


def _check_scope(level: str, study: str | None, series: str | None) -> None:
    """Refuse --study or --series above the levels that have them (usage errors)."""
    if series and level in ("patient", "study"):
        raise typer.BadParameter(
            f"a {level}-level search cannot be limited to one series: "
            "use --level series or image, or leave --series out",
            param_hint="--series",
        )
    if study and level == "patient":
        raise typer.BadParameter(
            "a patient-level search cannot be limited to one study: "
            "use --level study, series or image, or leave --study out",
            param_hint="--study",
        )


def _search(
    target: Peer,
    level: str,
    study: str | None,
    series: str | None,
    keys: dict[str, str],
    use_web: bool,
    limit: int | None,
    offset: int,
    ae: str,
) -> list[Any]:
    """Run the search; with ``limit``, one match more than it (to tell whether there are more).

    The peer's warnings (a list it cut short) are printed on stderr as they come.
    """
    import warnings

    from radbridge.cli.output import say

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if use_web:
            from radbridge.net import qido

            wanted = None if limit is None else limit + 1
            found = qido(
                target, level, study=study, series=series, keys=keys, limit=wanted, offset=offset
            )
        else:
            from radbridge.net import find

            scope = {"StudyInstanceUID": study, "SeriesInstanceUID": series}
            keys = keys | {k: v for k, v in scope.items() if v}
            found = find(target, level, keys=keys, ae_title=ae)
    for warning in caught:
        say(f"warning: {warning.message}", err=True)
    return found


@app.command("retrieve")
def retrieve_command(
    peer: PeerArgument,
    study: Annotated[str, typer.Option("--study", help="Study Instance UID.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write into.")],
    config: PeerConfig = None,
    series: Annotated[str | None, typer.Option("--series", help="Series Instance UID.")] = None,
    method: Annotated[
        Literal["get", "move", "wado"] | None,
        typer.Option(case_sensitive=False, help="Default: get; wado with --web."),
    ] = None,
    use_web: Annotated[bool, typer.Option("--web", help="Use WADO-RS (--method wado).")] = False,
    ae: Annotated[str, typer.Option("--ae", help="Our AE title (C-MOVE destination).")] = (
        "RADBRIDGE"
    ),
    port: Annotated[int, typer.Option("--port", help="Our port for C-MOVE.")] = 11113,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    timeout: Timeout = None,
) -> None:
    """Retrieve a study or series into OUTPUT/<study>/<series>/<sop>.dcm; exit 1 on any failure."""
    from radbridge.cli.output import emit, progress, say
    from radbridge.errors import ConfigError

    chosen = (method or ("wado" if use_web else "get")).lower()
    if use_web and chosen != "wado":
        raise ConfigError(
            f"--web retrieves by WADO-RS, not {chosen!r}",
            attribute="--method",
            hint="drop --web, or use --method wado",
        )
    target = _peer(peer, config, timeout)
    with progress("retrieve") as advance:
        if chosen == "get":
            from radbridge.net import get

            report = get(target, output, study=study, series=series, ae_title=ae, progress=advance)
        elif chosen == "move":
            from radbridge.net import move

            report = move(
                target,
                output,
                study=study,
                series=series,
                ae_title=ae,
                port=port,
                progress=advance,
            )
        else:
            from radbridge.net import wado

            report = wado(target, output, study=study, series=series, progress=advance)
    if as_json:
        summary = {
            "peer": report.peer,
            "method": chosen,
            "files": [str(p) for p in report.files],
            "failed": report.failed,
            "warnings": report.warnings,
            "seconds": round(report.seconds, 3),
        }
        emit(summary)
    else:
        say(
            f"retrieved {len(report.files)} instances into {output} "
            f"({report.failed} failed) in {report.seconds:.2f} s"
        )
    if report.failed:
        raise typer.Exit(1)
