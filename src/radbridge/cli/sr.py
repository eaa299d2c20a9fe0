"""``radbridge sr`` (TID 1500 measurement reports) and ``radbridge ko`` (key images)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radbridge.cli import JsonOption, SourceOption, command_group, encode_one, write_object

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
    as_json: JsonOption = False,
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
    write_object(
        ds,
        output,
        f"{len(parsed.groups)} measurement groups",
        as_json=as_json,
        details={"group_count": len(parsed.groups)},
    )


@sr_app.command("decode")
def decode(
    sr_file: Annotated[Path, typer.Argument(help="SR file.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON form (docs/sr.md).")
    ] = False,
) -> None:
    """Print a TID 1500 report (or the content tree of any other SR)."""
    from radbridge.cli.output import emit, say
    from radbridge.sr import read_structured_report, report_to_json

    sr = read_structured_report(sr_file)
    if as_json:
        emit(report_to_json(sr.report) if sr.report else sr.tree.to_json())
        return
    if sr.report is None:
        say(f"SR with template {sr.template or 'unknown'}: {sr.tree.concept}")
        say("(not TID 1500; use --json for its content tree)")
        return
    say(f"TID 1500 report, {len(sr.report.groups)} groups")
    for group in sr.report.groups:
        say(f"  [{group.template}] {group.tracking_id}:{_group_text(group)}")
        for m in group.measurements:
            say(f"      {_measurement_text(m)}")
        for e in group.evaluations:
            say(f"      {e.concept.meaning}: {e.value.meaning}")


def _site(site: Any, laterality: Any) -> str:
    """``Liver`` or ``Kidney (Left)``: a finding site and its laterality modifier."""
    if site is None:
        return ""
    return str(site.meaning) + (f" ({laterality.meaning})" if laterality is not None else "")


def _group_text(group: Any) -> str:
    """Describe the finding, its category and site, as `sr decode --json` gives them."""
    parts = [group.finding.meaning] if group.finding else []
    if group.finding_category is not None:
        parts.append(f"category {group.finding_category.meaning}")
    if group.finding_site is not None:
        parts.append(f"site {_site(group.finding_site, group.laterality)}")
    return (" " + ", ".join(parts)) if parts else ""


def _measurement_text(m: Any) -> str:
    """``Attenuation Coefficient (Mean) = 41 [hnsf'U]; method ...; site ...``.

    The derivation (mean, standard deviation, ...) qualifies the concept: without it
    two values of one concept are indistinguishable.
    """
    concept = m.concept.meaning + (f" ({m.derivation.meaning})" if m.derivation else "")
    text = f"{concept} = {m.value:g} {m.unit.value}"
    if m.method is not None:
        text += f"; method {m.method.meaning}"
    if m.finding_site is not None:
        text += f"; site {_site(m.finding_site, m.laterality)}"
    if m.region is not None:
        text += f"; on a {m.region.graphic_type}"
    return text


@ko_app.command("encode")
def ko_encode(
    source: SourceOption,
    key: Annotated[list[str], typer.Option("--key", help="SOP Instance UID (repeat).")],
    output: OutputOption,
    description: Annotated[str, typer.Option(help="Key Object Description.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Flag instances of the series in --source as key images."""
    from radbridge.io.series import read_series
    from radbridge.models import ModelResult
    from radbridge.results import KoOutput

    spec = KoOutput(keys=key, description=description)
    ds = encode_one(read_series(source), ModelResult(), spec)
    write_object(
        ds, output, f"{len(key)} key images", as_json=as_json, details={"key_count": len(key)}
    )
