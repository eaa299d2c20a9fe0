"""``radbridge wsi``: describe a whole-slide image, write and read SEGs on its levels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from radbridge import cli
from radbridge.cli.coerce import PlainGroup
from radbridge.cli.output import emit, say
from radbridge.errors import ConfigError

if TYPE_CHECKING:
    from radbridge.wsi import Level, Slide

wsi_app = cli.command_group("wsi", "Slide microscopy: whole-slide image info, SEGs on a level.")
seg_app = typer.Typer(
    help="SEGs on a slide level: encode a mask, decode one.",
    no_args_is_help=True,
    rich_markup_mode=None,
    cls=PlainGroup,
)
wsi_app.add_typer(seg_app, name="seg")


def _level_json(level: Level) -> dict[str, Any]:
    return {
        "index": level.index,
        "shape": list(level.shape),
        "tile_shape": list(level.tile_shape),
        "pixel_spacing_mm": list(level.pixel_spacing),
        "tile_organization": level.tile_organization,
        "tiles_stored": level.tile_count,
        "focal_planes": level.focal_planes,
        "samples_per_pixel": level.samples_per_pixel,
        "optical_paths": [path.to_json() for path in level.optical_paths],
        "sop_instance_uids": [str(ds.SOPInstanceUID) for ds in level.datasets],
    }


def slide_json(slide: Slide) -> dict[str, Any]:
    """Return what ``radbridge wsi info --json`` prints: the slide's UIDs and its levels."""
    return {
        "study_instance_uid": slide.study_instance_uid,
        "series_instance_uid": slide.series_instance_uid,
        "frame_of_reference_uid": slide.frame_of_reference_uid,
        "container_identifier": str(slide.context.get("ContainerIdentifier", "") or ""),
        "levels": [_level_json(level) for level in slide.levels],
    }


@wsi_app.command("info")
def info(
    folder: Annotated[
        Path, typer.Argument(metavar="FOLDER", help="Folder (or file) of the slide's images.")
    ],
    series: cli.SeriesOption = None,
    as_json: cli.JsonOption = False,
) -> None:
    """List the pyramid levels of a slide: size, tiles, spacing, optical paths."""
    from radbridge.wsi import read_slide

    slide = read_slide(folder, series_instance_uid=series)
    result = slide_json(slide)
    if as_json:
        emit(result)
        return
    say(f"slide series {result['series_instance_uid']}  {len(result['levels'])} levels")
    for level in result["levels"]:
        rows, columns = level["shape"]
        paths = ", ".join(p["identifier"] for p in level["optical_paths"]) or "-"
        say(
            f"  level {level['index']}  {rows}x{columns} px  tiles "
            f"{level['tile_shape'][0]}x{level['tile_shape'][1]} ({level['tiles_stored']} stored, "
            f"{level['tile_organization']})  {level['pixel_spacing_mm'][0] * 1000:g} µm/px  "
            f"optical paths {paths}"
        )


@wsi_app.command("phantom")
def phantom(
    folder: Annotated[
        Path, typer.Argument(metavar="FOLDER", help="Folder to write level0.dcm, level1.dcm, ...")
    ],
    rows: Annotated[int, typer.Option(min=1, help="Rows of the finest level.")] = 1000,
    columns: Annotated[int, typer.Option(min=1, help="Columns of the finest level.")] = 1500,
    tile: Annotated[int, typer.Option(min=1, help="Tile size (pixels).")] = 256,
    levels: Annotated[int, typer.Option(min=1, help="Pyramid levels.")] = 3,
    blank: Annotated[
        bool, typer.Option("--blank", help="White glass only (fast, any size).")
    ] = False,
    as_json: cli.JsonOption = False,
) -> None:
    """Write a synthetic whole-slide image (TILED_FULL, RLE) to try the wsi commands on."""
    from radbridge.io.slide_phantom import write_slide_phantom

    files = write_slide_phantom(folder, size=(rows, columns), tile=tile, levels=levels, blank=blank)
    if as_json:
        emit({"output": str(folder), "files": [str(f) for f in files]})
        return
    say(f"wrote {len(files)} levels to {folder}")


def _load_mask(path: Path) -> Any:
    if path.suffix.lower() != ".npy":
        raise ConfigError(
            f"cannot read a slide mask from {path.suffix or 'a file without suffix'}",
            path=path,
            hint="save the mask with numpy.save as .npy: [row, column] labels or "
            "[segment, row, column] planes of the level's size",
        )
    from radbridge.io.arrays import load_array

    return load_array(path, mmap_mode="r")


@seg_app.command("encode")
def encode(
    source: cli.SourceOption,
    level: Annotated[int, typer.Option("--level", help="Pyramid level (0: finest).")],
    mask: Annotated[
        Path,
        typer.Option("--mask", help=".npy: [row, column] labels or [segment, row, column]."),
    ],
    labels: Annotated[Path, typer.Option("--labels", help='labels.json: {"1": "tumor", ...}.')],
    output: Annotated[Path, typer.Option("-o", "--output", help="SEG file to write.")],
    seg_type: Annotated[
        Literal["binary", "fractional"],
        typer.Option("--type", case_sensitive=False, help="Segmentation Type."),
    ] = "binary",
    omit_empty_tiles: Annotated[
        bool,
        typer.Option("--omit-empty-tiles", help="Leave out empty tiles (TILED_SPARSE)."),
    ] = False,
    optical_path: Annotated[
        str | None, typer.Option("--optical-path", help="Reference this optical path only.")
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option(help="Algorithm name (default: MANUAL segments).")
    ] = None,
    algorithm_version: cli.AlgorithmVersionOption = "0",
    series: cli.SeriesOption = None,
    as_json: cli.JsonOption = False,
) -> None:
    """Encode MASK on level N of the slide in --source as a tiled DICOM Segmentation.

    It is the slide-seg output kind of radbridge.results, as in the gateway.
    """
    from radbridge.models import AlgorithmInfo, ModelResult
    from radbridge.results import SlideSegOutput
    from radbridge.seg import AlgorithmIdentification, describe_labels, load_labels
    from radbridge.wsi import read_slide

    slide = read_slide(source, series_instance_uid=series)
    named = AlgorithmIdentification(algorithm, algorithm_version) if algorithm else None
    described = describe_labels(
        load_labels(labels), algorithm=named, algorithm_type="AUTOMATIC" if named else "MANUAL"
    )
    segments = {d.segment_number: d for d in described}
    result = (
        ModelResult(segments=segments, algorithm=AlgorithmInfo(algorithm, algorithm_version))
        if algorithm
        else ModelResult(segments=segments)  # no model made it: no Contributing Equipment
    )
    spec = SlideSegOutput(
        mask=_load_mask(mask),
        level=level,
        segmentation_type=seg_type,
        omit_empty_tiles=omit_empty_tiles,
        optical_path=optical_path,
    )
    ds = cli.encode_one(slide, result, spec)
    cli.write_object(
        ds,
        output,
        f"{ds.SegmentationType} SEG on level {level}, {len(ds.SegmentSequence)} segments, "
        f"{ds.NumberOfFrames} tiles ({ds.DimensionOrganizationType})",
        as_json=as_json,
        details={
            "level": level,
            "segmentation_type": str(ds.SegmentationType),
            "segment_count": len(ds.SegmentSequence),
            "frame_count": int(ds.NumberOfFrames),
            "dimension_organization_type": str(ds.DimensionOrganizationType),
        },
    )


@seg_app.command("decode")
def decode(
    seg_file: Annotated[Path, typer.Argument(metavar="SEG", help="SEG made on a slide level.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".npy file to write.")],
    segment: Annotated[
        int | None, typer.Option("--segment", help="Only this segment: [row, column].")
    ] = None,
    as_json: cli.JsonOption = False,
) -> None:
    """Decode a slide SEG to a .npy mask on its level, written a row of tiles at a time.

    BINARY: labels [row, column] (or one segment's 0/1 with --segment). FRACTIONAL:
    stored values 0..Maximum Fractional Value, [segment, row, column] (or one).
    """
    import numpy as np

    from radbridge.wsi import read_slide_segmentation

    if output.suffix.lower() != ".npy":
        raise ConfigError("the output must be a .npy file", path=output, hint="use -o mask.npy")
    seg = read_slide_segmentation(seg_file)
    numbers = [d.segment_number for d in seg.segments]
    fractional = seg.segmentation_type.value == "FRACTIONAL"
    if segment is not None:
        shape: tuple[int, ...] = seg.shape
        dtype: Any = np.uint8 if fractional else np.bool_
    elif fractional:
        shape, dtype = (len(numbers), *seg.shape), np.uint8
    else:
        shape, dtype = seg.shape, np.uint8 if max(numbers) < 256 else np.uint16
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = np.lib.format.open_memmap(output, "w+", dtype, shape)
    except (OSError, ValueError, OverflowError) as exc:
        output.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot create a {'x'.join(map(str, shape))} mask ({exc})",
            path=output,
            hint="check the free disk space, or decode one segment (--segment N)",
        ) from exc
    try:
        seg.mask(segment, out=out)
        out.flush()
    except BaseException:
        del out
        output.unlink(missing_ok=True)
        raise
    scale = f", {seg.max_fractional_value} means 1.0" if fractional else ""
    if as_json:
        emit(
            {
                "output": str(output),
                "segmentation_type": seg.segmentation_type.value,
                "shape": list(shape),
                "dtype": np.dtype(dtype).name,
                "max_fractional_value": seg.max_fractional_value if fractional else None,
            }
        )
        return
    say(f"wrote {output}: {seg.segmentation_type.value} mask {'x'.join(map(str, shape))}{scale}")
