"""``radbridge query`` and ``radbridge retrieve``: C-FIND/QIDO-RS and C-GET/C-MOVE/WADO-RS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import app

PeerArgument = Annotated[str, typer.Argument(help="AE@HOST:PORT, or a peer name from --config.")]
PeerConfig = Annotated[
    Path | None, typer.Option("--config", help="TOML file with [peers.NAME] tables.")
]
_SHOWN = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "Modality",
    "ModalitiesInStudy",
    "StudyDate",
    "SeriesNumber",
    "NumberOfStudyRelatedInstances",
    "NumberOfSeriesRelatedInstances",
)


@app.command("query")
def query_command(
    peer: PeerArgument,
    config: PeerConfig = None,
    level: Annotated[str, typer.Option(help="patient, study, series or image.")] = "study",
    study: Annotated[str | None, typer.Option("--study", help="Study Instance UID.")] = None,
    patient_id: Annotated[str | None, typer.Option("--patient-id", help="Patient ID.")] = None,
    modality: Annotated[str | None, typer.Option("--modality", help="Modality.")] = None,
    use_web: Annotated[bool, typer.Option("--web", help="Use QIDO-RS, not C-FIND.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print DICOM JSON.")] = False,
    ae: Annotated[str, typer.Option("--ae", help="Our AE title.")] = "RADBRIDGE",
) -> None:
    """Find studies, series or instances; print their UIDs (patient data only with --json)."""
    from radbridge.config import resolve_peer

    target = resolve_peer(peer, config)
    keys: dict[str, str] = {}
    if study:
        keys["StudyInstanceUID"] = study
    if patient_id:
        keys["PatientID"] = patient_id
    if modality:
        keys["Modality" if level.lower() in ("series", "image") else "ModalitiesInStudy"] = modality
    if use_web:
        from radbridge.net.dicomweb import qido

        web_keys = {k: v for k, v in keys.items() if k != "StudyInstanceUID"}
        found = qido(target, level, study=study, keys=web_keys)
    else:
        from radbridge.net.qr import find

        found = find(target, level, keys=keys, ae_title=ae)
    if as_json:
        typer.echo(json.dumps([ds.to_json_dict() for ds in found], indent=2))
        return
    for ds in found:
        fields = [f"{k}={ds.get(k)}" for k in _SHOWN if k in ds and ds.get(k) not in (None, "")]
        typer.echo("  ".join(fields) or "(match without UIDs)")
    typer.echo(f"{len(found)} matches")


@app.command("retrieve")
def retrieve_command(
    peer: PeerArgument,
    study: Annotated[str, typer.Option("--study", help="Study Instance UID.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder to write into.")],
    config: PeerConfig = None,
    series: Annotated[str | None, typer.Option("--series", help="Series Instance UID.")] = None,
    method: Annotated[str, typer.Option(help="get, move or wado.")] = "get",
    ae: Annotated[str, typer.Option("--ae", help="Our AE title (C-MOVE destination).")] = (
        "RADBRIDGE"
    ),
    port: Annotated[int, typer.Option("--port", help="Our port for C-MOVE.")] = 11113,
) -> None:
    """Retrieve a study or series into OUTPUT/<study>/<series>/<sop>.dcm; exit 1 on any failure."""
    from radbridge.config import resolve_peer
    from radbridge.errors import ConfigError

    target = resolve_peer(peer, config)
    if method == "get":
        from radbridge.net.qr import get

        report = get(target, output, study=study, series=series, ae_title=ae)
    elif method == "move":
        from radbridge.net.qr import move

        report = move(target, output, study=study, series=series, ae_title=ae, port=port)
    elif method == "wado":
        from radbridge.net.dicomweb import wado

        report = wado(target, output, study=study, series=series)
    else:
        raise ConfigError(
            f"unknown method {method!r}", attribute="--method", hint="use get, move or wado"
        )
    typer.echo(
        f"retrieved {len(report.files)} instances into {output} "
        f"({report.failed} failed) in {report.seconds:.2f} s"
    )
    if report.failed:
        raise typer.Exit(1)
