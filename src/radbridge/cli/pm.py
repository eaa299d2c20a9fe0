"""``radbridge pm``: encode maps as DICOM Parametric Maps, decode them to NIfTI/NRRD/.npy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import (
    ProfileOption,
    SeriesOption,
    SourceOption,
    command_group,
    encode_one,
    write_object,
)

pm_app = command_group("pm", "DICOM Parametric Map (PM): encode, decode.")


def _parse_code(text: str) -> object:
    """``SCHEME:VALUE:MEANING`` (e.g. ``DCM:113041:Apparent Diffusion Coefficient``)."""
    from radbridge.coding import Code

    return Code.parse(text, attribute="--quantity")


@pm_app.command("encode")
def encode(
    source: SourceOption,
    map_file: Annotated[
        Path, typer.Option("--map", help="NIfTI/NRRD map, or .npy [slice,row,column].")
    ],
    units: Annotated[
        str, typer.Option("--units", help="UCUM units, e.g. '{probability}', '1', 'mm2/s'.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Parametric Map file to write.")],
    quantity: Annotated[
        str, typer.Option(help="SCHEME:VALUE:MEANING of the quantity (CID 7180).")
    ] = "DCM:130402:Class activation",
    nan_policy: Annotated[
        str, typer.Option("--nan-policy", help="refuse, zero or padding (NaN kept as NaN).")
    ] = "refuse",
    dtype: Annotated[
        str | None,
        typer.Option(
            help="Store as float32, float64, uint16 or int16 (default: the map's type). "
            "Real values stored as integers get a slope/intercept from the data range."
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
        str | None,
        typer.Option(help="Integer maps: rle, jpegls or jpeg2000 (lossless; dcmqi reads none)."),
    ] = None,
    profile: ProfileOption = None,
    series: SeriesOption = None,
) -> None:
    """Encode MAP on the series in --source as a DICOM Parametric Map."""
    from radbridge.coding import Code
    from radbridge.io.masks import read_mask
    from radbridge.io.series import read_series
    from radbridge.models import ModelResult
    from radbridge.pm import open_parametric_map
    from radbridge.results import PmOutput

    src = read_series(source, series_instance_uid=series)
    values = read_mask(map_file, src.geometry)
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
    ds = encode_one(src, ModelResult(), spec, profile=profile)
    mapping = open_parametric_map(ds).mapping
    stored = "float" if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds else "integer"
    write_object(
        ds,
        output,
        f"Parametric Map, {ds.NumberOfFrames} frames, {int(ds.BitsAllocated)}-bit {stored}, "
        f"units {units}, real = stored x {mapping.slope!r} + {mapping.intercept!r}",
    )


@pm_app.command("decode")
def decode(
    pm_file: Annotated[Path, typer.Argument(help="Parametric Map file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help=".nii.gz, .nrrd or .npy")],
    source: Annotated[
        Path | None, typer.Option("--source", help="Put the map on this series' grid.")
    ] = None,
) -> None:
    """Decode a Parametric Map to real-world values on its own grid or the source's."""
    import numpy as np

    from radbridge.io.nifti import write_image
    from radbridge.io.series import read_series
    from radbridge.pm import open_parametric_map

    pm = open_parametric_map(pm_file)
    target = read_series(source) if source is not None else None
    volume = pm.volume(target)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, volume.array)
    else:
        write_image(volume, output)
    units = pm.mapping.units.value if pm.mapping.units is not None else "unknown"
    typer.echo(f"wrote {output}: {volume.shape} {volume.array.dtype}, units {units}")
