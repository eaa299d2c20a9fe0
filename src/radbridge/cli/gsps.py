"""``radbridge gsps``: outline segments as a Grayscale Softcopy Presentation State, read one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from radbridge import cli
from radbridge.cli.output import emit, say

if TYPE_CHECKING:
    from pydicom import Dataset

    from radbridge.iods.source import Series
    from radbridge.pr import OutlineOptions, PresentationState

gsps_app = cli.command_group(
    "gsps",
    "Grayscale Softcopy Presentation States (GSPS): outline segments over the source images "
    "for any PACS viewer; decode.",
)

_TOLERANCE = "Simplify outlines within this distance in mm (0: lossless)."


def _window(center: float | None, width: float | None) -> tuple[float, float] | None:
    if center is None and width is None:
        return None
    if center is None or width is None:
        raise typer.BadParameter(
            "give both --window-center and --window-width", param_hint="--window-*"
        )
    return center, width


def _from_mask(
    src: Series, mask: Path, labels: Path, outlines: OutlineOptions, window: Any, empty: bool
) -> Dataset:
    from radbridge.io.masks import read_mask
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.results import GspsOutput
    from radbridge.seg import load_labels

    spec = GspsOutput(
        mask=read_mask(mask, src.geometry), outlines=outlines, window=window, allow_empty=empty
    )
    result = ModelResult(segments=load_labels(labels), algorithm=AlgorithmInfo("unspecified", "0"))
    return cli.encode_one(src, result, spec)


@gsps_app.command("encode")
def encode(
    source: cli.SourceOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="GSPS file to write.")],
    seg: Annotated[Path | None, typer.Option("--seg", help="Outline this SEG's segments.")] = None,
    rtstruct: Annotated[
        Path | None, typer.Option("--rtstruct", help="Outline this RTSTRUCT's ROIs.")
    ] = None,
    mask: Annotated[
        Path | None,
        typer.Option("--mask", help="NIfTI/NRRD label map, or .npy [slice,row,column]."),
    ] = None,
    labels: Annotated[
        Path | None, typer.Option("--labels", help='With --mask: labels.json {"1": "liver"}.')
    ] = None,
    window_center: Annotated[
        float | None, typer.Option(help="Window center for every image (default: each image's).")
    ] = None,
    window_width: Annotated[float | None, typer.Option(help="Window width (> 0).")] = None,
    tolerance_mm: Annotated[float, typer.Option("--tolerance-mm", help=_TOLERANCE)] = 0.0,
    no_labels: Annotated[
        bool, typer.Option("--no-labels", help="Outlines only, no label text.")
    ] = False,
    areas: Annotated[bool, typer.Option("--areas", help="Add each outline's area (mm2).")] = False,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Keep segments without voxels (empty layer).")
    ] = False,
    threshold: Annotated[float | None, typer.Option(help=cli.THRESHOLD_HELP)] = None,
    series: cli.SeriesOption = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Outline a SEG, an RTSTRUCT or a mask on the series in --source as one GSPS."""
    from radbridge.pr import OutlineOptions, rtstruct_to_gsps, seg_to_gsps

    given = [
        name
        for name, value in (("--seg", seg), ("--rtstruct", rtstruct), ("--mask", mask))
        if value is not None
    ]
    if len(given) != 1 or (mask is None) != (labels is None):
        raise typer.BadParameter(
            "give exactly one of --seg SEG, --rtstruct RS or --mask MASK --labels LABELS",
            param_hint="--seg/--rtstruct/--mask",
        )
    outlines = OutlineOptions(
        tolerance_mm=tolerance_mm,
        labels=not no_labels,
        areas=areas,
        **({"level": threshold} if threshold is not None else {}),
    )
    window = _window(window_center, window_width)
    src = cli.read_source(source, series, allow_nonuniform=allow_nonuniform)
    ds: Dataset
    if seg is not None:
        ds = seg_to_gsps(seg, src, outlines=outlines, window=window, allow_empty=allow_empty)
    elif rtstruct is not None:
        ds = rtstruct_to_gsps(
            rtstruct, src, outlines=outlines, window=window, allow_empty=allow_empty
        )
    else:
        assert mask is not None and labels is not None
        ds = _from_mask(src, mask, labels, outlines, window, allow_empty)
    outlined = sum(
        len(a.get("GraphicObjectSequence", [])) for a in ds.get("GraphicAnnotationSequence", [])
    )
    layers = len(ds.GraphicLayerSequence)
    cli.write_object(
        ds,
        output,
        f"GSPS, {layers} segments, {outlined} outlines",
        as_json=as_json,
        details={"segment_count": layers, "outline_count": outlined},
    )


def _describe(ps: PresentationState) -> dict[str, Any]:
    """Everything ``decode --json`` prints: header, layers, windows, graphics per image."""
    images = []
    for (uid, frame), drawn in ps.by_image.items():
        images.append(
            {
                "sop_instance_uid": uid,
                "frame_number": frame,
                "annotations": [
                    {
                        "layer": a.layer,
                        "graphics": [
                            {
                                "graphic_type": str(g.graphic_type),
                                "units": str(g.units),
                                "group_id": g.group_id,
                                "closed": g.closed,
                                "points": g.points.tolist(),
                            }
                            for g in a.graphics
                        ],
                        "texts": [
                            {"text": t.text, "anchor": t.anchor, "group_id": t.group_id}
                            for t in a.texts
                        ],
                    }
                    for a in drawn
                ],
            }
        )
    return {
        **cli.identity(ps.dataset),
        "sop_class": ps.sop_class_name,
        "presentation_label": ps.label,
        "referenced_series": {uid: len(refs) for uid, refs in ps.images.items()},
        "layers": [
            {
                "name": x.name,
                "order": x.order,
                "description": x.description,
                "display_rgb": list(x.display_rgb) if x.display_rgb else None,
            }
            for x in ps.layers
        ],
        "segments": {str(n): label for n, label in ps.segments.items()},
        "windows": [
            {
                "center": w.center,
                "width": w.width,
                "explanation": w.explanation,
                "images": len(refs),
            }
            for w, refs in ps.windows
        ],
        "rescale": list(ps.rescale) if ps.rescale else None,
        "presentation_lut_shape": ps.presentation_lut_shape,
        "images": images,
    }


@gsps_app.command("decode")
def decode(
    gsps_file: Annotated[Path, typer.Argument(metavar="GSPS", help="Presentation state file.")],
    as_json: cli.JsonOption = False,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="With -o: folder of the series it applies to."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Fill the closed outlines: .nii.gz, .nrrd or .npy."),
    ] = None,
    overlap: Annotated[
        Literal["error", "smallest"],
        typer.Option(
            case_sensitive=False,
            help="Label maps: refuse overlaps, or the smaller region wins.",
        ),
    ] = "error",
    series: cli.SeriesOption = None,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Print a presentation state's layers, windows and graphics per image (or --json).

    With --source and -o, also fill its closed outlines back into a label map.
    """
    from radbridge.pr import read_gsps

    ps = read_gsps(gsps_file)
    result = _describe(ps)
    if (source is None) != (output is None):
        raise typer.BadParameter("give --source and -o together", param_hint="--source/-o")
    if source is not None and output is not None:
        _write_masks(
            ps,
            cli.read_source(source, series, allow_nonuniform=allow_nonuniform),
            output,
            overlap,
            quiet=as_json,
        )
    if as_json:
        emit(result)
        return
    graphics = sum(len(a["graphics"]) for i in result["images"] for a in i["annotations"])
    say(
        f"{result['sop_class']} {result['sop_instance_uid']} ({result['presentation_label']}): "
        f"{len(result['layers'])} layers, {graphics} graphics on {len(result['images'])} images"
    )
    for n, label in result["segments"].items():
        say(f"  {n:>4}  {label}")
    for window in result["windows"]:
        say(f"  window {window['center']:g}/{window['width']:g}")


def _write_masks(
    ps: PresentationState, target: Series, output: Path, overlap: str, *, quiet: bool
) -> None:
    volume = ps.label_volume(target, overlap=overlap)
    cli.write_volume(volume, output)
    message = f"wrote {output}: {volume.shape} label map, regions {sorted(ps.segments)}"
    say(message, err=quiet)  # --json: standard output holds the JSON alone
