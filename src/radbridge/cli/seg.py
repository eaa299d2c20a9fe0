"""``radbridge seg``: encode masks as DICOM Segmentations, decode them, describe them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

import typer

from radbridge import cli

if TYPE_CHECKING:
    from radbridge.seg import Segmentation, StackedMasks

seg_app = cli.command_group("seg", "DICOM Segmentation (SEG): encode, decode, info.")


@seg_app.command("encode")
def encode(
    source: cli.SourceOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="SEG file to write.")],
    mask: Annotated[
        Path | None,
        typer.Option(
            "--mask",
            help="NIfTI/NRRD mask, .npy [slice,row,column], or nnU-Net's .npz probabilities.",
        ),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help='With --mask: labels.json {"1": "liver", ...}, or dcmqi\'s meta.json.',
        ),
    ] = None,
    mask_dir: Annotated[
        Path | None,
        typer.Option(
            "--mask-dir",
            help="Instead of --mask: one NAME.nii.gz per structure (TotalSegmentator's folder), "
            "coded by the name table (docs/codes.md).",
        ),
    ] = None,
    npz_image: Annotated[
        Path | None,
        typer.Option(
            "--npz-image", help="The image an nnU-Net .npz was predicted from (its geometry)."
        ),
    ] = None,
    seg_type: Annotated[
        Literal["binary", "fractional", "labelmap"],
        typer.Option("--type", case_sensitive=False, help="Segmentation Type."),
    ] = "binary",
    compression: Annotated[
        Literal["none", "deflated-explicit", "rle", "jpegls", "jpeg2000"] | None,
        typer.Option(case_sensitive=False, help="Lossless compression (default: the profile's)."),
    ] = None,
    profile: cli.ProfileOption = None,
    keep_empty_frames: Annotated[
        bool,
        typer.Option("--keep-empty-frames", help="Write frames without segmented pixels too."),
    ] = False,
    palette: Annotated[
        bool, typer.Option("--palette", help="LABELMAP: add a colour palette.")
    ] = False,
    algorithm: Annotated[
        str, typer.Option(help="Algorithm name recorded per segment.")
    ] = "unspecified",
    algorithm_version: cli.AlgorithmVersionOption = "0",
    series: cli.SeriesOption = None,
    series_description: cli.SeriesDescriptionOption = None,
    series_number: cli.SeriesNumberOption = None,
    content_creator: cli.ContentCreatorOption = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Encode a mask on the series in --source as a DICOM Segmentation.

    --labels takes radbridge's labels.json or dcmqi's meta.json (segmentAttributes by
    labelID, with their codes, colours and series attributes); the series options given
    here win over the document's. --mask-dir takes TotalSegmentator's folder (empty
    structures are left out). Probabilities with one class more than labels (4-D
    NIfTI, nnU-Net's .npz) lose class 0, the background.
    """
    from radbridge.cli.output import progress
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.results import SegOutput

    given = _Given(mask, labels, mask_dir, npz_image)
    given.check()
    with progress("seg encode", total=3) as advance:
        src = cli.read_source(source, series, allow_nonuniform=allow_nonuniform)
        advance(1, 3)
        inputs = _read_inputs(given, src.geometry, algorithm, algorithm_version)
        spec = SegOutput(
            mask=inputs.array,
            segmentation_type=seg_type,
            transfer_syntax=compression,
            keep_empty_frames=keep_empty_frames,
            palette=palette,
        )
        result = ModelResult(
            segments=inputs.segments, algorithm=AlgorithmInfo(algorithm, algorithm_version)
        )
        advance(2, 3)
        fields = {
            **inputs.series,
            **cli.series_fields(series_description, series_number, content_creator),
        }
        ds = cli.encode_one(src, result, spec, profile=profile, series=fields)
        advance(3, 3)
    cli.write_object(
        ds,
        output,
        f"{ds.SegmentationType} SEG, {len(ds.SegmentSequence)} segments, "
        f"{ds.NumberOfFrames} frames, {_syntax_name(ds)}"
        + (f"; left out empty: {', '.join(inputs.empty)}" if inputs.empty else ""),
        as_json=as_json,
        details={
            "segmentation_type": str(ds.SegmentationType),
            "segment_count": len(ds.SegmentSequence),
            "frame_count": int(ds.NumberOfFrames),
            "transfer_syntax": _syntax_name(ds),
            "left_out_empty": list(inputs.empty),
        },
    )


class _Given(NamedTuple):
    mask: Path | None
    labels: Path | None
    mask_dir: Path | None
    npz_image: Path | None

    def check(self) -> None:
        """Refuse combinations of the mask options (a usage error, before reading)."""
        if (self.mask is None) == (self.mask_dir is None):
            raise typer.BadParameter("give --mask MASK --labels LABELS, or --mask-dir DIR")
        if self.mask_dir is not None and self.labels is not None:
            raise typer.BadParameter(
                "--mask-dir names its structures by file; leave out --labels",
                param_hint="--labels",
            )
        if self.mask is not None and self.labels is None:
            raise typer.BadParameter("--mask needs --labels", param_hint="--labels")


class _Inputs(NamedTuple):
    array: Any
    segments: dict[int, Any]
    series: dict[str, Any]
    empty: tuple[str, ...] = ()


def _read_inputs(given: _Given, geometry: Any, algorithm: str, version: str) -> _Inputs:
    """Read --mask with --labels, or --mask-dir: the array, segments and series fields."""
    from radbridge.io.masks import read_mask
    from radbridge.io.model_outputs import read_mask_folder, read_probabilities

    given.check()
    if given.mask_dir is not None:
        folder = read_mask_folder(given.mask_dir, geometry)
        return _Inputs(folder.array, dict(folder.labels), {}, folder.empty)
    assert given.mask is not None and given.labels is not None
    segments, fields = _labels(given.labels, algorithm, version)
    if given.mask.suffix.lower() == ".npz":
        array = read_probabilities(given.mask, geometry, image=given.npz_image)
    else:
        array = read_mask(given.mask, geometry)
    if array.ndim == 4 and array.shape[0] == len(segments) + 1:
        array = array[1:]  # class 0 is the background (nnU-Net, MONAI one-hot)
    return _Inputs(array, segments, fields)


def _labels(path: Path, algorithm: str, version: str) -> tuple[dict[int, Any], dict[str, Any]]:
    """Return the segments and series fields of labels.json or dcmqi's meta.json."""
    from radbridge.io.dcmqi import is_segmentation_meta, parse_segmentation_meta, read_json
    from radbridge.seg import AlgorithmIdentification, load_labels

    data = read_json(path)
    if not is_segmentation_meta(data):
        return dict(load_labels(path)), {}
    parsed = parse_segmentation_meta(
        data, algorithm=AlgorithmIdentification(algorithm, version), where=str(path)
    )
    return dict(parsed.segments), dict(parsed.series)


def _syntax_name(ds: Any) -> str:
    from radbridge.pixels import TransferSyntax

    return TransferSyntax(str(ds.file_meta.TransferSyntaxUID)).value


@seg_app.command("decode")
def decode(
    seg_file: cli.SegFileArgument,
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help=".nii.gz, .nrrd or .npy; a folder with --per-segment."),
    ],
    source: Annotated[
        Path | None, typer.Option("--source", help="Put the mask on this series' grid.")
    ] = None,
    stacked: Annotated[
        bool,
        typer.Option(
            "--stacked", help="One mask per segment in one file: 4-D NIfTI, NRRD or .npy."
        ),
    ] = False,
    per_segment: Annotated[
        bool,
        typer.Option("--per-segment", help="One file per segment in the folder -o (as dcmqi)."),
    ] = False,
    file_format: Annotated[
        Literal["nii.gz", "nii", "nrrd"],
        typer.Option("--format", case_sensitive=False, help="--per-segment: file format."),
    ] = "nii.gz",
    threshold: cli.ThresholdOption = None,
    dcmqi_json: Annotated[
        Path | None,
        typer.Option(
            "--dcmqi-json",
            help="Also write dcmqi's meta.json for the label map (--per-segment: always, "
            "as meta.json in the folder).",
        ),
    ] = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Decode a SEG to a label map, or one mask per segment, on its own grid or the source's.

    --per-segment writes dcmqi's meta.json beside the files (in their order, each
    labelID 1), as segimage2itkimage does; --dcmqi-json writes it for a label map.

    FRACTIONAL segments become a label map by the threshold rule (0.5 unless given);
    --stacked and --per-segment keep their fractions (float 0..1) unless --threshold
    is given.
    """
    from radbridge.errors import ConfigError
    from radbridge.readahead import ReadAhead

    if stacked and dcmqi_json is not None:
        raise ConfigError(
            "dcmqi has no form for stacked masks",
            attribute="--dcmqi-json",
            hint="use --per-segment (meta.json is written beside the files) or a label map",
        )
    seg_path = ReadAhead(seg_file)  # read while NumPy and pydicom are imported (~0.04 s)
    from radbridge.iods.threshold import DEFAULT_THRESHOLD
    from radbridge.seg import read_segmentation

    seg = read_segmentation(seg_path)
    target = (
        cli.read_source(source, allow_nonuniform=allow_nonuniform) if source is not None else None
    )
    if stacked or per_segment:
        masks = seg.stacked_volume(target, threshold=threshold)
        if per_segment:
            report = _write_per_segment(seg, masks, output, file_format)
            if dcmqi_json is not None:
                _write_meta(seg, dcmqi_json, list(masks.segment_numbers), report)
        else:
            report = _write_stacked(masks, output)
    else:
        volume = seg.label_volume(
            target, threshold=DEFAULT_THRESHOLD if threshold is None else threshold
        )
        cli.write_volume(volume, output)
        numbers = sorted(set(seg.segment_numbers))  # the descriptions need not be parsed
        report = {
            "output": str(output),
            "shape": list(volume.shape),
            "dtype": str(volume.array.dtype),
            "segments": numbers,
            "summary": f"{volume.shape} label map, segments {numbers}",
        }
        if dcmqi_json is not None:
            _write_meta(seg, dcmqi_json, None, report)
    _report(report, as_json)


def _write_meta(
    seg: Segmentation, path: Path, per_segment: list[int] | None, report: dict[str, Any]
) -> None:
    """Write dcmqi's meta.json for what decode wrote (one list per file when per segment)."""
    from radbridge.io.dcmqi import segmentation_meta

    meta = segmentation_meta(seg, per_segment=per_segment)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2) + "\n")
    report["dcmqi_json"] = str(path)
    report["summary"] += f"; dcmqi meta.json {path}"


def _report(report: dict[str, Any], as_json: bool) -> None:
    from radbridge.cli.output import emit, say

    if as_json:
        emit(report)
    else:
        say(f"wrote {report['output']}: {report['summary']}")


def _write_stacked(masks: StackedMasks, output: Path) -> dict[str, Any]:
    import numpy as np

    from radbridge.io.nifti import write_images

    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, masks.array)
    else:
        write_images(masks.array, masks.geometry, output)
    return {
        "output": str(output),
        "shape": list(masks.array.shape),
        "dtype": str(masks.array.dtype),
        "segments": list(masks.segment_numbers),
        "summary": f"{masks.array.shape[0]} masks {masks.array.dtype} [segment, ...], "
        f"segments {list(masks.segment_numbers)}",
    }


def _write_per_segment(
    seg: Segmentation, masks: StackedMasks, folder: Path, suffix: str
) -> dict[str, Any]:
    from radbridge.geometry import Volume
    from radbridge.io.dcmqi import segmentation_meta

    folder.mkdir(parents=True, exist_ok=True)
    for number, mask in zip(masks.segment_numbers, masks.array, strict=True):
        cli.write_volume(
            Volume.from_geometry(mask, masks.geometry), folder / f"segment-{number}.{suffix}"
        )
    described = [d.to_json() for n, d in sorted(seg.segments.items()) if n in masks.segment_numbers]
    files = {n: f"segment-{n}.{suffix}" for n in masks.segment_numbers}
    for entry in described:
        entry["file"] = files[int(str(entry["segment_number"]))]
    (folder / "segments.json").write_text(json.dumps(described, indent=2))
    meta = segmentation_meta(seg, per_segment=list(masks.segment_numbers))
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return {
        "output": str(folder),
        "files": [files[n] for n in masks.segment_numbers] + ["segments.json", "meta.json"],
        "dcmqi_json": str(folder / "meta.json"),
        "segments": list(masks.segment_numbers),
        "summary": f"{len(files)} files segment-N.{suffix}, segments.json and meta.json, "
        f"segments {list(masks.segment_numbers)}",
    }


@seg_app.command("info")
def info(
    seg_file: cli.SegFileArgument,
    as_json: cli.JsonOption = False,
) -> None:
    """Describe a SEG: type, frames, segments and their codes, geometry."""
    from radbridge.errors import RadbridgeError
    from radbridge.seg import read_segmentation

    seg = read_segmentation(seg_file)
    ds = seg.dataset
    result: dict[str, Any] = {
        **cli.identity(ds),
        "segmentation_type": seg.segmentation_type.value,
        "frame_count": len(seg.frames),
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "transfer_syntax_uid": str(getattr(ds, "file_meta", {}).get("TransferSyntaxUID", "")),
        "frame_of_reference_uid": seg.frame_of_reference_uid,
        "source_series_instance_uids": list(seg.source_series_uids),
        "segments": [d.to_json() for d in seg.segments.values()],
        "geometry": None,
    }
    try:
        result["geometry"] = seg.geometry().to_dict()
    except RadbridgeError as exc:
        result["geometry_error"] = str(exc)
    _print_info(result, as_json)


def _print_info(result: dict[str, Any], as_json: bool) -> None:
    from radbridge.cli.output import emit, say

    if as_json:
        emit(result)
        return
    say(
        f"{result['segmentation_type']} SEG {result['sop_instance_uid']}: "
        f"{result['frame_count']} frames of {result['rows']}x{result['columns']}"
    )
    if result["geometry"]:
        shape = "x".join(map(str, result["geometry"]["shape"]))
        say(f"  own grid {shape}, spacing {result['geometry']['spacing']} mm")
    for segment in result["segments"]:
        code = segment["property_type"]
        modifiers = ", ".join(m["meaning"] for m in segment.get("property_type_modifiers", []))
        region = segment.get("anatomic_region")
        text = f"{code['scheme']} {code['value']} {code['meaning']}" if code else "(no codes)"
        text += f" ({modifiers})" if modifiers else ""
        text += f" in {region['meaning']}" if region else ""
        say(f"  {segment['segment_number']:>4}  {segment['label']:<32} {text}")
