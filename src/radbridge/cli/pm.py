"""``radbridge pm``: encode maps as DICOM Parametric Maps, decode them to NIfTI/NRRD/.npy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from radbridge import cli

pm_app = cli.command_group("pm", "DICOM Parametric Map (PM): encode, decode.")


def _parse_code(text: str) -> object:
    """``SCHEME:VALUE:MEANING`` (e.g. ``DCM:113041:Apparent Diffusion Coefficient``)."""
    from radbridge.coding import Code

    return Code.parse(text, attribute="--quantity")


def _check_units(value: str) -> str:
    """Refuse units that are not UCUM while parsing (a bad option value: exit 2)."""
    from radbridge.errors import RadbridgeError
    from radbridge.ucum import parse_units

    try:
        parse_units(value)
    except RadbridgeError as exc:
        raise typer.BadParameter(f"{exc.message} (e.g. '1', 'mm', 'ml', '[hnsf'U]')") from None
    return value


@pm_app.command("encode")
def encode(
    source: cli.SourceOption,
    map_file: Annotated[
        Path, typer.Option("--map", help="NIfTI/NRRD map, or .npy [slice,row,column].")
    ],
    units: Annotated[
        str,
        typer.Option(
            "--units",
            callback=_check_units,
            help="UCUM units, e.g. '{probability}', '1', 'mm2/s'.",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Parametric Map file to write.")],
    quantity: Annotated[
        str, typer.Option(help="SCHEME:VALUE:MEANING of the quantity (CID 7180).")
    ] = "DCM:130402:Class activation",
    nan_policy: Annotated[
        Literal["refuse", "zero", "padding"],
        typer.Option(
            "--nan-policy", case_sensitive=False, help="What NaN becomes (padding: kept as NaN)."
        ),
    ] = "refuse",
    dtype: Annotated[
        Literal["float32", "float64", "uint16", "int16"] | None,
        typer.Option(
            case_sensitive=False,
            help="Stored type (default: the map's type). "
            "Real values stored as integers get a slope/intercept from the data range.",
        ),
    ] = None,
    anatomy: Annotated[
        str | None,
        typer.Option(
            help="Anatomic region (Frame Anatomy): a name from docs/codes.md (liver, "
            "kidney_left, ...) or SCHEME:VALUE:MEANING (default: the source's Body Part "
            "Examined)."
        ),
    ] = None,
    compression: Annotated[
        Literal["none", "deflated-explicit", "rle", "jpegls", "jpeg2000"] | None,
        typer.Option(
            case_sensitive=False,
            help="Lossless; rle, jpegls and jpeg2000 for integer maps only (dcmqi reads none).",
        ),
    ] = None,
    profile: cli.ProfileOption = None,
    series: cli.SeriesOption = None,
    series_description: cli.SeriesDescriptionOption = None,
    series_number: cli.SeriesNumberOption = None,
    content_creator: cli.ContentCreatorOption = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Encode MAP on the series in --source as a DICOM Parametric Map."""
    from radbridge.cli.output import progress
    from radbridge.io.masks import read_map
    from radbridge.pm import open_parametric_map

    with progress("pm encode", total=2) as advance:
        src = cli.read_source(source, series, allow_nonuniform=allow_nonuniform)
        values = read_map(map_file, src.geometry)  # a map of part of the grid keeps its extent
        advance(1, 2)
        ds = _encode(
            src, values, quantity, anatomy, units, nan_policy, compression, dtype, profile,
            series=cli.series_fields(series_description, series_number, content_creator),
        )  # fmt: skip
        advance(2, 2)
    mapping = open_parametric_map(ds).mapping
    stored = "float" if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds else "integer"
    cli.write_object(
        ds,
        output,
        f"Parametric Map, {ds.NumberOfFrames} frames, {int(ds.BitsAllocated)}-bit {stored}, "
        f"units {units}, real = stored x {mapping.slope!r} + {mapping.intercept!r}",
        as_json=as_json,
        details={
            "frame_count": int(ds.NumberOfFrames),
            "bits_allocated": int(ds.BitsAllocated),
            "stored": stored,
            "units": units,
            "slope": mapping.slope,
            "intercept": mapping.intercept,
        },
    )


def _encode(
    src: Any,
    values: Any,
    quantity: str,
    anatomy: str | None,
    units: str,
    nan_policy: str,
    compression: str | None,
    dtype: str | None,
    profile: str | None,
    *,
    series: dict[str, Any],
) -> Any:
    from radbridge.coding import Code
    from radbridge.models import ModelResult
    from radbridge.results import PmOutput

    code = _parse_code(quantity)
    assert isinstance(code, Code)
    region: object = _parse_code(anatomy) if anatomy and anatomy.count(":") >= 2 else anatomy
    assert region is None or isinstance(region, Code | str)
    spec = PmOutput(
        values=values,
        quantity=code,
        units=units,
        nan_policy=nan_policy,
        transfer_syntax=compression,
        stored_dtype=dtype,
        anatomic_region=region,
    )
    return cli.encode_one(src, ModelResult(), spec, profile=profile, series=series)


@pm_app.command("decode")
def decode(
    pm_file: Annotated[Path, typer.Argument(metavar="PM", help="Parametric Map file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".nii.gz, .nrrd or .npy")],
    source: Annotated[
        Path | None, typer.Option("--source", help="Put the map on this series' grid.")
    ] = None,
    as_json: cli.JsonOption = False,
    allow_nonuniform: cli.AllowNonuniformOption = False,
) -> None:
    """Decode a Parametric Map to real-world values on its own grid or the source's."""
    from radbridge.cli.output import emit, say
    from radbridge.pm import open_parametric_map

    pm = open_parametric_map(pm_file)
    target = (
        cli.read_source(source, allow_nonuniform=allow_nonuniform) if source is not None else None
    )
    volume = pm.volume(target)
    cli.write_volume(volume, output)
    units = pm.mapping.units.value if pm.mapping.units is not None else "unknown"
    if as_json:
        emit(
            {
                "output": str(output),
                "shape": list(volume.shape),
                "dtype": str(volume.array.dtype),
                "units": units,
            }
        )
        return
    say(f"wrote {output}: {volume.shape} {volume.array.dtype}, units {units}")
