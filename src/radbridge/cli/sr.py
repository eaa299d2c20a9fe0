"""``radbridge sr`` (TID 1500 measurement reports) and ``radbridge ko`` (key images)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radbridge import cli

sr_app = cli.command_group("sr", "Structured Reports (TID 1500): encode, decode, compare visits.")
ko_app = cli.command_group("ko", "Key Object Selection (key images): encode.")

OutputOption = Annotated[Path, typer.Option("-o", "--output", help="File to write.")]


@sr_app.command("encode")
def encode(
    report: Annotated[
        Path,
        typer.Argument(
            metavar="REPORT",
            help="REPORT.json (schema: docs/sr.md), or dcmqi's tid1500writer JSON.",
        ),
    ],
    source: cli.SourceOption,
    output: OutputOption,
    seg: Annotated[
        Path | None,
        typer.Option("--seg", help='SEG that {"segment": N} (dcmqi: ReferencedSegment) refers to.'),
    ] = None,
    series_description: cli.SeriesDescriptionOption = None,
    series_number: cli.SeriesNumberOption = None,
    content_creator: Annotated[
        str | None,
        typer.Option(
            "--content-creator",
            help="The person observer of the report (DICOM PN, e.g. Doe^Jane; dcmqi: "
            "PersonObserverName).",
        ),
    ] = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Encode a JSON measurement report on the series in --source as a TID 1500 SR.

    A dcmqi document (Measurements, measurementItems, qualitativeEvaluations,
    observerContext, procedureReported, series attributes) is read as tid1500writer
    reads it; its imageLibrary and compositeContext file lists give way to --source
    and --seg.
    """
    from radbridge.errors import InvalidAttributeError
    from radbridge.io.dcmqi import is_tid1500_document, report_from_tid1500
    from radbridge.io.series import load_datasets
    from radbridge.models import ModelResult
    from radbridge.results import SrOutput
    from radbridge.sr import report_from_json

    try:
        document = json.loads(report.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: deep nesting
        raise InvalidAttributeError(
            f"cannot read the report JSON ({exc})", path=report, hint="see docs/sr.md"
        ) from exc
    seg_ds = load_datasets([seg], headers_only=True)[0] if seg is not None else None
    fields: dict[str, Any] = {}
    ignored: list[str] = []
    if is_tid1500_document(document):
        dcmqi = report_from_tid1500(document, where=str(report))
        _check_seg(dcmqi.segmentations, seg_ds, report)
        document, fields, ignored = dcmqi.report, dcmqi.series, dcmqi.ignored
    if content_creator is not None:  # an SR has no Content Creator's Name: its observer
        document = {**document, "person": content_creator}
    try:
        parsed = report_from_json(document, seg=seg_ds)
    except InvalidAttributeError as exc:  # the document's fault: name its file
        exc.path = exc.path or str(report)
        raise
    fields.update(cli.series_fields(series_description, series_number, None))
    ds = cli.encode_one(
        cli.read_source(source, allow_nonuniform=allow_nonuniform),
        ModelResult(),
        SrOutput(report=parsed),
        series=fields,
    )
    note = f" (not written: {', '.join(ignored)})" if ignored else ""
    cli.write_object(
        ds,
        output,
        f"{len(parsed.groups)} measurement groups{note}",
        as_json=as_json,
        details={"group_count": len(parsed.groups), "ignored": ignored},
    )


def _check_seg(named: set[str], seg: Any, report: Path) -> None:
    """Refuse a dcmqi document whose groups name another SEG than --seg."""
    from radbridge.errors import ConfigError

    given = str(seg.SOPInstanceUID) if seg is not None else None
    other = sorted(named - {given}) if given else sorted(named)
    if other:
        raise ConfigError(
            f"the report refers to the SEG {other[0]}, "
            + (f"--seg is {given}" if given else "no --seg was given"),
            path=report,
            attribute="--seg",
            hint="give the SEG its segmentationSOPInstanceUID names with --seg",
        )


@sr_app.command("decode")
def decode(
    sr_file: Annotated[Path, typer.Argument(metavar="SR", help="SR file.")],
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


@sr_app.command("compare")
def compare(
    prior: Annotated[Path, typer.Argument(metavar="PRIOR", help="The prior visit's TID 1500 SR.")],
    current: Annotated[
        Path, typer.Argument(metavar="CURRENT", help="The current visit's TID 1500 SR.")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the comparison SR here.")
    ] = None,
    prior_images: Annotated[
        Path | None,
        typer.Option(help="Prior CT series: register it with --current-images (SimpleITK)."),
    ] = None,
    current_images: Annotated[
        Path | None, typer.Option(help="Current CT series (with --prior-images).")
    ] = None,
    stable_within: Annotated[
        float,
        typer.Option(min=0.0, help="Relative volume change still called stable (0.25 = 25%)."),
    ] = 0.25,
    as_json: cli.JsonOption = False,
) -> None:
    """Follow the lesions of PRIOR into CURRENT: changes, new/grown/shrunk/stable/resolved."""
    from radbridge.cli.output import emit, say
    from radbridge.sr import compare_reports, encode_comparison

    transform = _registration(prior_images, current_images)
    comparison = compare_reports(prior, current, transform=transform, stable_within=stable_within)
    data = comparison.to_dict()
    if output is not None:
        ds = encode_comparison(comparison)
        output.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(output, enforce_file_format=True)
        data["output"] = str(output)
        data["sop_instance_uid"] = str(ds.SOPInstanceUID)
    if as_json:
        emit(data)
        return
    days = comparison.interval_days
    apart = f", {days:g} days apart" if days is not None else ""
    say(f"{len(comparison.lesions)} lesions{apart}")
    for lesion in comparison.lesions:
        say(f"  {lesion.tracking_id}: {lesion.status}")
        for change in lesion.changes:
            say(f"      {_change_text(change)}")
    if output is not None:
        say(f"wrote {output}: SOP Instance UID {data['sop_instance_uid']}")


def _registration(prior: Path | None, current: Path | None) -> Any:
    """Register the two CT series when both are given (else None: no transform)."""
    if prior is None and current is None:
        return None
    if prior is None or current is None:
        raise typer.BadParameter("give both --prior-images and --current-images, or neither")
    from radbridge.io.registration import register_rigid
    from radbridge.io.series import read_series

    return register_rigid(
        read_series(prior).volume(rescale=True), read_series(current).volume(rescale=True)
    )


def _change_text(change: Any) -> str:
    before = "-" if change.prior is None else f"{change.prior:g}"
    after = "-" if change.current is None else f"{change.current:g}"
    rel = "" if change.relative is None else f" ({100 * change.relative:+.1f}%)"
    return f"{change.concept.meaning}: {before} -> {after} {change.unit.value}{rel}"


@ko_app.command("encode")
def ko_encode(
    source: cli.SourceOption,
    key: Annotated[list[str], typer.Option("--key", help="SOP Instance UID (repeat).")],
    output: OutputOption,
    description: Annotated[str, typer.Option(help="Key Object Description.")] = "",
    series_description: cli.SeriesDescriptionOption = None,
    series_number: cli.SeriesNumberOption = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Flag instances of the series in --source as key images."""
    from radbridge.models import ModelResult
    from radbridge.results import KoOutput

    spec = KoOutput(keys=key, description=description)
    fields = cli.series_fields(series_description, series_number, None)
    ds = cli.encode_one(
        cli.read_source(source, allow_nonuniform=allow_nonuniform),
        ModelResult(),
        spec,
        series=fields,
    )
    cli.write_object(
        ds, output, f"{len(key)} key images", as_json=as_json, details={"key_count": len(key)}
    )
