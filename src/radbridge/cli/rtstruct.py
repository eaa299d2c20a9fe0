"""``radbridge rtstruct`` (encode, decode, info) and ``radbridge convert`` (SEG ↔ RTSTRUCT)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from radbridge import cli

if TYPE_CHECKING:
    from radbridge.iods.source import Series
    from radbridge.rtstruct import StructureSet

rtstruct_app = cli.command_group(
    "rtstruct", "RT Structure Sets (RTSTRUCT): encode masks as contours, decode, info."
)

_HOLES = "How holes are written (docs/rtstruct.md)."
HoleStyleChoice = Literal["separate", "keyhole", "xor"]
_TOLERANCE = "Simplify contours within this distance in mm (0: lossless)."


def _check_interpreted_type(value: str | None) -> str | None:
    """Refuse a term PS3.3 does not define while parsing (a bad option value: exit 2)."""
    from radbridge.rtstruct import RTROIInterpretedType

    if value is None:
        return None
    try:
        return RTROIInterpretedType(value).value
    except ValueError:
        terms = ", ".join(t.value for t in RTROIInterpretedType)
        raise typer.BadParameter(f"{value!r} is not an RT ROI Interpreted Type ({terms})") from None


def _referenced_source(
    folder: Path, series: str | None, rs: StructureSet, allow_nonuniform: bool
) -> Series:
    """Return the series the structure set was drawn on, when the folder holds several."""
    from radbridge.errors import MixedSeriesError

    def read(uid: str | None) -> Series:
        return cli.read_source(folder, uid, allow_nonuniform=allow_nonuniform)

    if series is not None:
        return read(series)
    for uid in rs.referenced_series_uids:
        try:
            return read(uid)
        except MixedSeriesError:
            continue
    return read(None)


@rtstruct_app.command("encode")
def encode(
    source: cli.SourceOption,
    mask: Annotated[
        Path,
        typer.Option(
            "--mask", help="NIfTI/NRRD label map, or .npy [slice,row,column] / [roi,slice,...]."
        ),
    ],
    labels: Annotated[
        Path, typer.Option("--labels", help='labels.json: {"1": "liver", "2": {...}}.')
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="RTSTRUCT file to write.")],
    hole_style: Annotated[
        HoleStyleChoice, typer.Option("--hole-style", case_sensitive=False, help=_HOLES)
    ] = "separate",
    tolerance_mm: Annotated[float, typer.Option("--tolerance-mm", min=0.0, help=_TOLERANCE)] = 0.0,
    interpreted_type: Annotated[
        str | None,
        typer.Option(
            "--interpreted-type",
            callback=_check_interpreted_type,
            help="RT ROI Interpreted Type of ROIs that do not say (ORGAN, GTV, PTV, ...).",
        ),
    ] = None,
    algorithm: Annotated[
        str, typer.Option(help="Algorithm name recorded per ROI.")
    ] = "unspecified",
    algorithm_version: cli.AlgorithmVersionOption = "0",
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Write ROIs without voxels (no contours).")
    ] = False,
    label: Annotated[
        str, typer.Option("--label", help="Structure Set Label (up to 16 characters).")
    ] = "RADBRIDGE",
    series: cli.SeriesOption = None,
    series_description: cli.SeriesDescriptionOption = None,
    series_number: cli.SeriesNumberOption = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Encode MASK on the series in --source as an RT Structure Set."""
    from radbridge.cli.output import progress
    from radbridge.io.masks import read_mask
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.results import RtstructOutput
    from radbridge.rtstruct import ContourOptions
    from radbridge.seg import load_labels

    with progress("rtstruct encode", total=2) as advance:
        src = cli.read_source(source, series, allow_nonuniform=allow_nonuniform)
        spec = RtstructOutput(
            mask=read_mask(mask, src.geometry),
            contours=ContourOptions(hole_style=hole_style, tolerance_mm=tolerance_mm),
            interpreted_type=interpreted_type,
            allow_empty=allow_empty,
            structure_set_label=label,
        )
        result = ModelResult(
            segments=load_labels(labels), algorithm=AlgorithmInfo(algorithm, algorithm_version)
        )
        advance(1, 2)
        fields = cli.series_fields(series_description, series_number, None)
        ds = cli.encode_one(src, result, spec, series=fields)
        advance(2, 2)
    contours = sum(len(item.get("ContourSequence", [])) for item in ds.ROIContourSequence)
    rois = len(ds.StructureSetROISequence)
    cli.write_object(
        ds,
        output,
        f"RTSTRUCT, {rois} ROIs, {contours} contours",
        as_json=as_json,
        details={"roi_count": rois, "contour_count": contours},
    )


@rtstruct_app.command("decode")
def decode(
    rs_file: Annotated[Path, typer.Argument(metavar="RTSTRUCT", help="RTSTRUCT file.")],
    source: Annotated[Path, typer.Option("--source", help="Folder of the series it was drawn on.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".nii.gz, .nrrd or .npy")],
    stacked: Annotated[
        bool, typer.Option("--stacked", help="One mask per ROI, .npy [roi,slice,row,column].")
    ] = False,
    overlap: Annotated[
        Literal["error", "smallest"],
        typer.Option(
            case_sensitive=False, help="Label maps: refuse overlaps, or the smaller ROI wins."
        ),
    ] = "error",
    tolerance_mm: Annotated[
        float | None,
        typer.Option(
            "--tolerance-mm", min=0.0, help="Off-plane tolerance (default: slice spacing/4)."
        ),
    ] = None,
    series: Annotated[
        str | None, typer.Option(help="Series UID (default: the referenced series).")
    ] = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Rasterise the ROIs of an RTSTRUCT on its series: a label map, or stacked masks."""
    import numpy as np

    from radbridge.cli.output import emit, say
    from radbridge.errors import UnsupportedObjectError
    from radbridge.rtstruct import read_rtstruct

    rs = read_rtstruct(rs_file)
    target = _referenced_source(source, series, rs, allow_nonuniform)
    output.parent.mkdir(parents=True, exist_ok=True)
    if stacked:
        if output.suffix != ".npy":
            raise UnsupportedObjectError(
                "stacked masks are written as .npy [roi, slice, row, column]",
                path=output,
                hint="use an output name ending in .npy",
            )
        masks = rs.stacked_volume(target, tolerance_mm=tolerance_mm)
        np.save(output, masks.array)
        shape, rois = masks.array.shape, list(masks.segment_numbers)
        summary = f"ROIs {rois}"
    else:
        volume = rs.label_volume(target, overlap=overlap, tolerance_mm=tolerance_mm)
        cli.write_volume(volume, output)
        shape, rois = volume.shape, sorted(rs.rois)
        summary = f"{volume.shape} label map, ROIs {rois}"
    if as_json:
        emit({"output": str(output), "shape": list(shape), "rois": rois, "summary": summary})
    else:
        say(f"wrote {output}: {summary}")


@rtstruct_app.command("info")
def info(
    rs_file: Annotated[Path, typer.Argument(metavar="RTSTRUCT", help="RTSTRUCT file.")],
    as_json: cli.JsonOption = False,
) -> None:
    """Describe an RTSTRUCT: referenced series, ROIs, their types and contour counts."""
    from radbridge.rtstruct import read_rtstruct

    rs = read_rtstruct(rs_file)
    ds = rs.dataset
    result: dict[str, Any] = {
        **cli.identity(ds),
        "structure_set_label": str(ds.get("StructureSetLabel", "")),
        "frame_of_reference_uid": rs.frame_of_reference_uid,
        "referenced_series_instance_uids": list(rs.referenced_series_uids),
        "referenced_image_count": len(rs.referenced_images),
        "rois": [
            {
                "roi_number": roi.number,
                "name": roi.name,
                "interpreted_type": roi.interpreted_type,
                "generation_algorithm": roi.generation_algorithm,
                "display_rgb": list(roi.display_rgb) if roi.display_rgb else None,
                "contour_count": len(roi.contours),
                "point_count": int(sum(len(c.points) for c in roi.contours)),
                "geometric_types": sorted({c.geometric_type for c in roi.contours}),
            }
            for roi in rs.rois.values()
        ],
    }
    _print_info(result, as_json)


def _print_info(result: dict[str, Any], as_json: bool) -> None:
    from radbridge.cli.output import emit, say

    if as_json:
        emit(result)
        return
    say(
        f"RTSTRUCT {result['sop_instance_uid']} ({result['structure_set_label']}): "
        f"{len(result['rois'])} ROIs on {result['referenced_image_count']} images"
    )
    for roi in result["rois"]:
        say(
            f"  {roi['roi_number']:>4}  {roi['name']:<32} {roi['interpreted_type'] or '-':<12} "
            f"{roi['contour_count']} contours"
        )


@cli.app.command("convert")
def convert(
    input_file: Annotated[Path, typer.Argument(metavar="FILE", help="SEG or RTSTRUCT file.")],
    to: Annotated[
        Literal["rtstruct", "seg"],
        typer.Option(
            "--to", case_sensitive=False, help="rtstruct from a SEG, or seg from an RTSTRUCT."
        ),
    ],
    source: cli.SourceOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    seg_type: Annotated[
        Literal["binary", "labelmap"],
        typer.Option("--type", case_sensitive=False, help="--to seg: Segmentation Type."),
    ] = "binary",
    hole_style: Annotated[
        HoleStyleChoice, typer.Option("--hole-style", case_sensitive=False, help=_HOLES)
    ] = "separate",
    tolerance_mm: Annotated[float, typer.Option("--tolerance-mm", min=0.0, help=_TOLERANCE)] = 0.0,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="--to rtstruct: keep empty segments.")
    ] = False,
    series: cli.SeriesOption = None,
    threshold: cli.ThresholdOption = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Convert a SEG to an RTSTRUCT (--to rtstruct) or an RTSTRUCT to a SEG (--to seg)."""
    from radbridge.cli.output import progress
    from radbridge.rtstruct import ContourOptions, read_rtstruct, rtstruct_to_seg, seg_to_rtstruct

    with progress(f"convert to {to}", total=1) as advance:
        if to == "rtstruct":
            ds = seg_to_rtstruct(
                input_file,
                cli.read_source(source, series, allow_nonuniform=allow_nonuniform),
                contours=ContourOptions(hole_style=hole_style, tolerance_mm=tolerance_mm),
                allow_empty=allow_empty,
                threshold=threshold,
            )
            what = f"RTSTRUCT, {len(ds.StructureSetROISequence)} ROIs"
        else:
            rs = read_rtstruct(input_file)
            target = _referenced_source(source, series, rs, allow_nonuniform)
            ds = rtstruct_to_seg(rs, target, segmentation_type=seg_type)
            what = f"{ds.SegmentationType} SEG, {len(ds.SegmentSequence)} segments"
        advance(1, 1)
    cli.write_object(ds, output, what, as_json=as_json)
