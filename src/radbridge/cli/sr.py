"""``radbridge sr`` (TID 1500 measurement reports) and ``radbridge ko`` (key images)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import SourceOption, command_group, encode_one, write_object

sr_app = command_group("sr", "Structured Reports (TID 1500): encode, decode.")
ko_app = command_group("ko", "Key Object Selection (key images): encode.")

OutputOption = Annotated[Path, typer.Option("-o", "--output", help="File to write.")]


@sr_app.command("encode")
def encode(
    report: Annotated[Path, typer.Argument(help="REPORT.json (schema: docs/sr.md).")],
    source: SourceOption,
    output: OutputOption,
    seg: Annotated[
        Path | None, typer.Option("--seg", help='SEG that {"segment": N} refers to.')
    ] = None,
) -> None:
    """Encode a JSON measurement report on the series in --source as a TID 1500 SR."""
    from radbridge.errors import InvalidAttributeError
    from radbridge.io.series import load_datasets, read_series
    from radbridge.models import ModelResult
    from radbridge.results import SrOutput
    from radbridge.sr import report_from_json

    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidAttributeError(
            f"cannot read the report JSON ({exc})", path=report, hint="see docs/sr.md"
        ) from exc
    seg_ds = load_datasets([seg], headers_only=True)[0] if seg is not None else None
    parsed = report_from_json(document, seg=seg_ds)
    ds = encode_one(read_series(source), ModelResult(), SrOutput(report=parsed))
    write_object(ds, output, f"{len(parsed.groups)} measurement groups")


@sr_app.command("decode")
def decode(
    sr_file: Annotated[Path, typer.Argument(help="SR file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON form.")] = False,
) -> None:
    """Print a TID 1500 report (or the content tree of any other SR)."""
    from radbridge.sr import read_structured_report, report_to_json

    sr = read_structured_report(sr_file)
    if as_json:
        data = report_to_json(sr.report) if sr.report else sr.tree.to_json()
        typer.echo(json.dumps(data, indent=2))
        return
    if sr.report is None:
        typer.echo(f"SR with template {sr.template or 'unknown'}: {sr.tree.concept}")
        typer.echo("(not TID 1500; use --json for its content tree)")
        return
    typer.echo(f"TID 1500 report, {len(sr.report.groups)} groups")
    for group in sr.report.groups:
        what = f" {group.finding.meaning}" if group.finding else ""
        typer.echo(f"  [{group.template}] {group.tracking_id}:{what}")
        for m in group.measurements:
            typer.echo(f"      {m.concept.meaning} = {m.value:g} {m.unit.value}")
        for e in group.evaluations:
            typer.echo(f"      {e.concept.meaning}: {e.value.meaning}")


@ko_app.command("encode")
def ko_encode(
    source: SourceOption,
    key: Annotated[list[str], typer.Option("--key", help="SOP Instance UID (repeat).")],
    output: OutputOption,
    description: Annotated[str, typer.Option(help="Key Object Description.")] = "",
) -> None:
    """Flag instances of the series in --source as key images."""
    from radbridge.io.series import read_series
    from radbridge.models import ModelResult
    from radbridge.results import KoOutput

    spec = KoOutput(keys=key, description=description)
    ds = encode_one(read_series(source), ModelResult(), spec)
    write_object(ds, output, f"{len(key)} key images")
