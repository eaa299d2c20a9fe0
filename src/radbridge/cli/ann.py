"""``radbridge ann``: Microscopy Bulk Simple Annotations from and to GeoJSON features."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from radbridge.cli import (
    AlgorithmVersionOption,
    JsonOption,
    SeriesOption,
    SourceOption,
    command_group,
)
from radbridge.cli.output import emit, say
from radbridge.errors import ConfigError

ann_app = command_group("ann", "Microscopy Bulk Simple Annotations: encode, decode.")


def _read_json(path: Path | None, what: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # JSON, text encoding, nesting
        raise ConfigError(f"cannot read {what} ({exc})", path=path) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object", path=path)
    return data


def _measurements(path: Path | None) -> dict[str, Any]:
    from radbridge.ann import MeasurementDescription
    from radbridge.coding import Code

    out = {}
    for name, spec in _read_json(path, "measurements").items():
        try:
            out[name] = MeasurementDescription(
                Code.from_json(spec["name"]), Code.from_json(spec["unit"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"measurement {name!r} needs name and unit codes ({exc})",
                path=path,
                hint='{"area": {"name": {"value": "42798000", "scheme": "SCT", "meaning": '
                '"Area"}, "unit": {"value": "um2", "scheme": "UCUM", "meaning": "um2"}}}',
            ) from exc
    return out


@ann_app.command("encode")
def encode(
    source: SourceOption,
    features: Annotated[
        Path, typer.Option("--input", help=".geojson FeatureCollection or .ndjson features.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Annotation file to write.")],
    level: Annotated[int, typer.Option("--level", help="Level the pixel coordinates are on.")] = 0,
    labels: Annotated[
        Path | None, typer.Option("--labels", help='Group name -> codes: {"nuclei": ...}.')
    ] = None,
    measurements: Annotated[
        Path | None, typer.Option("--measurements", help="Measurement name -> name/unit codes.")
    ] = None,
    algorithm: Annotated[
        str | None, typer.Option(help="Algorithm name (default: MANUAL groups).")
    ] = None,
    algorithm_version: AlgorithmVersionOption = "0",
    single_precision: Annotated[
        bool, typer.Option("--single-precision", help="32-bit coordinates (half the size).")
    ] = False,
    series: SeriesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Encode GeoJSON features on a slide level as Microscopy Bulk Simple Annotations."""
    from radbridge.ann import write_annotations
    from radbridge.io.geojson import features_to_groups
    from radbridge.seg import AlgorithmIdentification
    from radbridge.wsi import read_slide

    slide = read_slide(source, series_instance_uid=series)
    groups = features_to_groups(
        features,
        _read_json(labels, "labels"),
        _measurements(measurements),
        AlgorithmIdentification(algorithm, algorithm_version) if algorithm else None,
    )
    write_annotations(output, slide, groups, level=level, single_precision=single_precision)
    if as_json:
        emit({"output": str(output), "group_count": len(groups), "level": level})
        return
    say(f"wrote {output}: {len(groups)} annotation groups on level {level}")


@ann_app.command("decode")
def decode(
    annotations: Annotated[Path, typer.Argument(metavar="ANNOTATIONS", help="Annotation file.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help=".ndjson (streamed) or .geojson to write.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Decode an annotation file to GeoJSON features (one per annotation)."""
    from radbridge.ann import read_annotations
    from radbridge.io.geojson import write_features

    read = read_annotations(annotations)
    count = write_features(read, output)
    if as_json:
        emit({"output": str(output), "feature_count": count, "group_count": len(read.groups)})
        return
    say(f"wrote {output}: {count} features in {len(read.groups)} groups")
