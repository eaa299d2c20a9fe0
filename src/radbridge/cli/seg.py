"""``radbridge seg``: encode masks as DICOM Segmentations, decode them, describe them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radbridge.cli import app

seg_app = typer.Typer(help="DICOM Segmentation (SEG): encode, decode, info.", no_args_is_help=True)
app.add_typer(seg_app, name="seg")


@seg_app.command("encode")
def encode(
    source: Annotated[Path, typer.Option("--source", help="Folder of the source series.")],
    mask: Annotated[
        Path, typer.Option("--mask", help="NIfTI/NRRD mask, or .npy [slice,row,column].")
    ],
    labels: Annotated[Path, typer.Option("--labels", help='labels.json: {"1": "liver", ...}.')],
    output: Annotated[Path, typer.Option("-o", "--output", help="SEG file to write.")],
    seg_type: Annotated[
        str, typer.Option("--type", help="binary, fractional or labelmap.")
    ] = "binary",
    compression: Annotated[
        str | None, typer.Option(help="none, rle, jpegls or jpeg2000 (default: by type).")
    ] = None,
    keep_empty_frames: Annotated[bool, typer.Option("--keep-empty-frames")] = False,
    palette: Annotated[
        bool, typer.Option("--palette", help="LABELMAP: add a colour palette.")
    ] = False,
    algorithm: Annotated[
        str, typer.Option(help="Algorithm name recorded per segment.")
    ] = "unspecified",
    algorithm_version: Annotated[str, typer.Option(help="Algorithm version.")] = "0",
    series: Annotated[
        str | None, typer.Option(help="Source series UID if DIR holds several.")
    ] = None,
) -> None:
    """Encode MASK on the series in --source as a DICOM Segmentation."""
    from radbridge.io.masks import read_mask
    from radbridge.io.series import read_source_series
    from radbridge.iods.seg import AlgorithmIdentification, encode_segmentation, load_labels

    src = read_source_series(source, series_instance_uid=series)
    array = read_mask(mask, src.geometry)
    ds = encode_segmentation(
        array,
        src,
        load_labels(labels),
        segmentation_type=seg_type,
        transfer_syntax=None if compression is None else compression,
        keep_empty_frames=keep_empty_frames,
        palette=palette,
        algorithm=AlgorithmIdentification(algorithm, algorithm_version),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(output, enforce_file_format=True)
    typer.echo(
        f"wrote {output}: {ds.SegmentationType} SEG, {len(ds.SegmentSequence)} segments, "
        f"{ds.NumberOfFrames} frames, SOP Instance UID {ds.SOPInstanceUID}"
    )


@seg_app.command("decode")
def decode(
    seg_file: Annotated[Path, typer.Argument(help="SEG file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".nii.gz, .nrrd or .npy")],
    source: Annotated[
        Path | None, typer.Option("--source", help="Put the mask on this series' grid.")
    ] = None,
    stacked: Annotated[
        bool, typer.Option("--stacked", help="One mask per segment (.npy only).")
    ] = False,
) -> None:
    """Decode a SEG to a label map (or stacked masks) on its own grid or the source's."""
    import numpy as np

    from radbridge.errors import UnsupportedObjectError
    from radbridge.io.nifti import write_image
    from radbridge.io.series import read_source_series
    from radbridge.iods.seg import read_segmentation

    seg = read_segmentation(seg_file)
    target = None
    if source is not None:
        target = read_source_series(source)
    output.parent.mkdir(parents=True, exist_ok=True)
    if stacked:
        if output.suffix != ".npy":
            raise UnsupportedObjectError(
                "stacked masks are written as .npy [segment, slice, row, column]",
                path=output,
                hint="use an output name ending in .npy",
            )
        masks = seg.stacked_volume(target)
        np.save(output, masks.array)
        typer.echo(f"wrote {output}: segments {list(masks.segment_numbers)}")
        return
    volume = seg.label_volume(target)
    if output.suffix == ".npy":
        np.save(output, volume.array)
    else:
        write_image(volume, output)
    typer.echo(f"wrote {output}: {volume.shape} label map, segments {sorted(seg.segments)}")


@seg_app.command("info")
def info(
    seg_file: Annotated[Path, typer.Argument(help="SEG file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Describe a SEG: type, frames, segments and their codes, geometry."""
    from radbridge.errors import RadbridgeError
    from radbridge.iods.seg import read_segmentation

    seg = read_segmentation(seg_file)
    ds = seg.dataset
    result: dict[str, Any] = {
        "sop_instance_uid": str(ds.SOPInstanceUID),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
        "segmentation_type": seg.segmentation_type.value,
        "frame_count": len(seg.frames),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "transfer_syntax_uid": str(ds.file_meta.TransferSyntaxUID),
        "frame_of_reference_uid": seg.frame_of_reference_uid,
        "source_series_instance_uids": list(seg.source_series_uids),
        "segments": [d.to_json() for d in seg.segments.values()],
        "geometry": None,
    }
    try:
        result["geometry"] = seg.geometry().to_dict()
    except RadbridgeError as exc:
        result["geometry_error"] = str(exc)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    typer.echo(
        f"{result['segmentation_type']} SEG {result['sop_instance_uid']}: "
        f"{result['frame_count']} frames of {result['rows']}x{result['columns']}"
    )
    if result["geometry"]:
        shape = "x".join(map(str, result["geometry"]["shape"]))
        typer.echo(f"  own grid {shape}, spacing {result['geometry']['spacing']} mm")
    for segment in result["segments"]:
        code = segment["property_type"]
        modifiers = ", ".join(m["meaning"] for m in segment.get("property_type_modifiers", []))
        region = segment.get("anatomic_region")
        text = f"{code['scheme']} {code['value']} {code['meaning']}"
        text += f" ({modifiers})" if modifiers else ""
        text += f" in {region['meaning']}" if region else ""
        typer.echo(f"  {segment['segment_number']:>4}  {segment['label']:<32} {text}")
