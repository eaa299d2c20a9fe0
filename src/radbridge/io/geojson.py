"""Annotations as GeoJSON features (what QuPath and most pathology tools exchange).

Each feature is one annotation: its geometry gives the points (column, row of the
level's Total Pixel Matrix), ``properties.group`` its group (one Annotation Group per
group name and graphic type), ``properties.measurements`` its values by name (``null``:
not measured).

========================  =======================================================
GeoJSON geometry          Graphic Type
========================  =======================================================
``Point``                 POINT
``LineString``            POLYLINE
``Polygon`` (outer ring)  POLYGON (the ring's repeated closing point is dropped)
``MultiPoint`` of 4       ELLIPSE or RECTANGLE, named by ``properties.graphic_type``
========================  =======================================================

A ``.geojson`` file (a FeatureCollection) is read whole; a ``.ndjson`` file (one
feature per line) is streamed, one pass per group, so millions of features need
little memory. :func:`write_features` writes ``.ndjson`` or ``.geojson`` the same way.

Examples
--------
>>> feature = {"type": "Feature", "geometry": {"type": "Polygon",
...            "coordinates": [[[0, 0], [4, 0], [2, 3], [0, 0]]]},
...            "properties": {"group": "tumor", "measurements": {"area": 6.0}}}
>>> parse_feature(feature, 1)
('tumor', 'POLYGON', [[0, 0], [4, 0], [2, 3]], {'area': 6.0})
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from radbridge.ann import (
    Annotation,
    AnnotationGroupDescription,
    MeasurementDescription,
    MicroscopyAnnotations,
)
from radbridge.coding import Code
from radbridge.errors import ConfigError
from radbridge.seg import AlgorithmIdentification, describe_labels

__all__ = ["features_to_groups", "parse_feature", "write_features"]

_BY_GEOMETRY = {"Point": "POINT", "LineString": "POLYLINE", "Polygon": "POLYGON"}


def _bad(path: object, number: int, why: str) -> ConfigError:
    return ConfigError(
        f"feature {number}: {why}",
        path=path if isinstance(path, str | os.PathLike) else None,
        hint='each feature: {"type": "Feature", "geometry": {"type": "Polygon", '
        '"coordinates": [[[x, y], ...]]}, "properties": {"group": "tumor"}}',
    )


def parse_feature(
    feature: Any, number: int, path: object = None
) -> tuple[str, str, list[Any], dict[str, float]]:
    """Return (group, graphic type, points, measurements) of one GeoJSON feature.

    Raises
    ------
    ConfigError
        Not a feature, an unsupported geometry, or no group.
    """
    if not isinstance(feature, Mapping) or not isinstance(feature.get("geometry"), Mapping):
        raise _bad(path, number, "not a GeoJSON Feature with a geometry")
    properties = feature.get("properties") or {}
    group = properties.get("group")
    if not isinstance(group, str) or not group:
        raise _bad(path, number, "properties.group (the annotation group's name) is missing")
    geometry = feature["geometry"]
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind in _BY_GEOMETRY and coordinates is not None:
        graphic = _BY_GEOMETRY[kind]
        points = [coordinates] if kind == "Point" else list(coordinates)
        if kind == "Polygon":
            points = list(coordinates[0]) if coordinates else []
            if len(points) > 1 and points[0] == points[-1]:
                points = points[:-1]
    elif kind == "MultiPoint" and str(properties.get("graphic_type", "")).upper() in (
        "ELLIPSE",
        "RECTANGLE",
    ):
        graphic, points = str(properties["graphic_type"]).upper(), list(coordinates or [])
    else:
        raise _bad(
            path,
            number,
            f"geometry {kind!r} is not Point, LineString, Polygon, or a MultiPoint with "
            "properties.graphic_type ELLIPSE or RECTANGLE",
        )
    values = properties.get("measurements") or {}
    if not isinstance(values, Mapping):
        raise _bad(path, number, "properties.measurements must map names to numbers")
    return group, graphic, points, {str(k): _number(v, k, number, path) for k, v in values.items()}


def _number(value: Any, name: object, number: int, path: object) -> float:
    """Return a measurement's value; ``null`` (GeoJSON has no NaN) means not measured."""
    if value is None:
        return float("nan")
    if not isinstance(value, bool):
        try:
            return float(value)  # a number, or a number written as text
        except (TypeError, ValueError):
            pass
    raise _bad(path, number, f"measurement {str(name)!r} is {value!r}, not a number or null")


def _features(path: Path) -> Iterator[Any]:
    """Yield the features of a .geojson (read whole) or .ndjson file (streamed)."""
    try:
        if path.suffix.lower() in (".ndjson", ".jsonl"):
            with path.open() as handle:
                for line in handle:
                    if line.strip():
                        yield json.loads(line)
            return
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:  # JSON, text encoding, nesting
        raise ConfigError(f"cannot read features ({exc})", path=path) from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("features"), list):
        raise ConfigError(
            "a .geojson file must hold a FeatureCollection",
            path=path,
            hint="or give one feature per line in a .ndjson file",
        )
    yield from data["features"]


def features_to_groups(
    path: str | os.PathLike[str],
    labels: Mapping[str, Any],
    measurements: Mapping[str, MeasurementDescription],
    algorithm: AlgorithmIdentification | None = None,
) -> list[tuple[AnnotationGroupDescription, Iterator[Annotation]]]:
    """Describe the groups a features file holds and stream each group's annotations.

    Parameters
    ----------
    path
        ``.geojson`` or ``.ndjson``.
    labels
        Group name -> a name of the curated table or explicit codes (as labels.json);
        a group missing here is looked up by its own name.
    measurements
        Measurement name -> its coded description.
    algorithm
        Makes the groups AUTOMATIC; MANUAL without it.

    Raises
    ------
    ConfigError
        A malformed feature, an unknown measurement name, an unknown group name.
    """
    source = Path(path)
    keys: dict[tuple[str, str], set[str]] = {}
    for number, feature in enumerate(_features(source), start=1):
        group, graphic, _, values = parse_feature(feature, number, source)
        unknown = set(values) - set(measurements)
        if unknown:
            raise _bad(
                source,
                number,
                f"measurement {sorted(unknown)[0]!r} is not described "
                "(give --measurements with its name and unit codes)",
            )
        keys.setdefault((group, graphic), set()).update(values)
    out = []
    for index, ((group, graphic), names) in enumerate(keys.items(), start=1):
        spec = describe_labels({1: labels.get(group, group)}, algorithm_type="MANUAL")[0]
        if spec.category is None or spec.property_type is None:  # pragma: no cover - coded
            raise ConfigError(f"group {group!r} has no codes", path=source)
        order = [name for name in measurements if name in names]
        description = AnnotationGroupDescription(
            index,
            group[:64],
            category=spec.category,
            property_type=spec.property_type,
            graphic_type=graphic,
            algorithm_type="AUTOMATIC" if algorithm else "MANUAL",
            algorithm=algorithm,
            measurements=tuple(measurements[name] for name in order),
        )
        out.append((description, _annotations(source, group, graphic, order)))
    if not out:
        raise ConfigError("no features found", path=source)
    return out


def _annotations(
    path: Path, group: str, graphic: str, order: Sequence[str]
) -> Iterator[Annotation]:
    for number, feature in enumerate(_features(path), start=1):
        name, kind, points, values = parse_feature(feature, number, path)
        if name == group and kind == graphic:
            yield Annotation(
                np.asarray(points, np.float64), tuple(values.get(k, np.nan) for k in order)
            )


def write_features(annotations: MicroscopyAnnotations, path: str | os.PathLike[str]) -> int:
    """Write every annotation as a GeoJSON feature (``.ndjson`` streamed, or ``.geojson``).

    Returns the number of features written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    collection = target.suffix.lower() not in (".ndjson", ".jsonl")
    count = 0
    with target.open("w") as out:
        if collection:
            out.write('{"type": "FeatureCollection", "features": [\n')
        for group in annotations.groups:
            count = _write_group(group, out, collection, count)
        if collection:
            out.write("\n]}\n")
    return count


def _write_group(group: Any, out: TextIO, collection: bool, count: int) -> int:
    d = group.description
    graphic = str(d.graphic_type)
    names = [m.name.meaning for m in d.measurements]
    values = [group.measurement(k) for k in range(len(names))]
    kind = {"POINT": "Point", "POLYLINE": "LineString", "POLYGON": "Polygon"}.get(graphic)
    for k, points in enumerate(group):
        coordinates: Any = points.tolist()
        if kind == "Point":
            coordinates = coordinates[0]
        elif kind == "Polygon":
            coordinates = [[*coordinates, coordinates[0]]]
        properties: dict[str, Any] = {"group": d.label, "group_number": d.number}
        properties["property_type"] = Code.to_json(d.property_type)
        if kind is None:
            properties["graphic_type"] = graphic
        measured = {n: float(v[k]) for n, v in zip(names, values, strict=True) if v[k] == v[k]}
        if measured:
            properties["measurements"] = measured
        feature = {
            "type": "Feature",
            "geometry": {"type": kind or "MultiPoint", "coordinates": coordinates},
            "properties": properties,
        }
        if collection and count:
            out.write(",\n")
        out.write(json.dumps(feature))
        if not collection:
            out.write("\n")
        count += 1
    return count
