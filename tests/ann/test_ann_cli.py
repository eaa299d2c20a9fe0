"""``radbridge ann encode|decode`` with GeoJSON features, and a real Orthanc storing the file."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from radbridge.ann import read_annotations
from radbridge.cli import main
from tests.peers import storescu

MEASUREMENTS = {
    "area": {
        "name": {"value": "42798000", "scheme": "SCT", "meaning": "Area"},
        "unit": {"value": "um2", "scheme": "UCUM", "meaning": "square micrometer"},
    }
}


def features(rng, count=30):
    out = []
    for k in range(count):
        cx, cy = rng.uniform(10, 390, 2)
        ring = [[cx, cy], [cx + 5, cy], [cx + 5, cy + 4], [cx, cy + 4]]
        out.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {"group": "tumor", "measurements": {"area": 20.0 + k}},
            }
        )
        out.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [cx, cy]},
                "properties": {"group": "necrosis"},
            }
        )
        out.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiPoint",
                    "coordinates": [[cx - 3, cy], [cx + 3, cy], [cx, cy - 1], [cx, cy + 1]],
                },
                "properties": {"group": "tumor", "graphic_type": "ELLIPSE"},
            }
        )
    return out


def encode_args(slide_folder, tmp_path, features):
    """``ann encode`` of ``tmp_path/features`` on the slide, with the labels and measurements."""
    return [
        *("ann", "encode", "--source", str(slide_folder), "--input", str(tmp_path / features)),
        *("--labels", str(tmp_path / "labels.json")),
        *("--measurements", str(tmp_path / "measurements.json")),
    ]


@pytest.fixture
def inputs(tmp_path):
    rng = np.random.default_rng(7)
    made = features(rng)
    (tmp_path / "cells.ndjson").write_text("".join(json.dumps(f) + "\n" for f in made))
    (tmp_path / "cells.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": made})
    )
    (tmp_path / "measurements.json").write_text(json.dumps(MEASUREMENTS))
    necrosis = {
        "label": "Necrosis",
        "category": {
            "value": "49755003",
            "scheme": "SCT",
            "meaning": "Morphologically Abnormal Structure",
        },
        "type": {"value": "6574001", "scheme": "SCT", "meaning": "Necrosis"},
    }
    (tmp_path / "labels.json").write_text(json.dumps({"necrosis": necrosis}))
    return made


@pytest.mark.parametrize("suffix", ["ndjson", "geojson"])
def test_encode_then_decode_round_trips(slide_folder, tmp_path, inputs, capsys, suffix):
    out = tmp_path / "ann.dcm"
    args = encode_args(slide_folder, tmp_path, f"cells.{suffix}")
    assert main([*args, "-o", str(out), "--algorithm", "cell-finder"]) == 0, capsys.readouterr().err
    read = read_annotations(out)
    assert [(g.description.label, str(g.description.graphic_type)) for g in read.groups] == [
        ("tumor", "POLYGON"),
        ("necrosis", "POINT"),
        ("tumor", "ELLIPSE"),
    ]
    assert read.groups[1].description.property_type.value == "6574001"
    polygons = [f for f in inputs if f["geometry"]["type"] == "Polygon"]
    np.testing.assert_array_equal(
        read.groups[0].annotation(3), polygons[3]["geometry"]["coordinates"][0][:-1]
    )
    assert read.groups[0].measurement(0).tolist() == [20.0 + k for k in range(30)]
    back = tmp_path / f"back.{suffix}"
    assert main(["ann", "decode", str(out), "-o", str(back)]) == 0
    text = back.read_text()
    decoded = (
        json.loads(text)["features"]
        if suffix == "geojson"
        else [json.loads(x) for x in text.splitlines()]
    )
    assert len(decoded) == len(inputs)
    by_kind = {}
    for feature in decoded:
        by_kind.setdefault(feature["geometry"]["type"], []).append(feature)
    assert (
        by_kind["Polygon"][5]["geometry"]["coordinates"] == polygons[5]["geometry"]["coordinates"]
    )
    assert by_kind["Polygon"][5]["properties"]["measurements"] == {"Area": 25.0}
    assert by_kind["MultiPoint"][0]["properties"]["graphic_type"] == "ELLIPSE"


def test_bad_features_say_what_to_do(slide_folder, tmp_path, inputs, capsys):
    base = ["ann", "encode", "--source", str(slide_folder), "-o", str(tmp_path / "a.dcm")]
    assert main([*base, "--input", str(tmp_path / "cells.ndjson")]) == 1  # no --measurements
    assert "measurement 'area' is not described" in capsys.readouterr().err
    (tmp_path / "bad.ndjson").write_text(
        json.dumps(
            {"type": "Feature", "geometry": {"type": "Circle"}, "properties": {"group": "x"}}
        )
        + "\n"
    )
    assert main([*base, "--input", str(tmp_path / "bad.ndjson")]) == 1
    assert "feature 1: geometry 'Circle'" in capsys.readouterr().err
    (tmp_path / "nogroup.ndjson").write_text(
        json.dumps({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}) + "\n"
    )
    assert main([*base, "--input", str(tmp_path / "nogroup.ndjson")]) == 1
    assert "properties.group" in capsys.readouterr().err
    point = {"type": "Point", "coordinates": [1, 2]}
    for value in ("n/a", True):
        feature = {"geometry": point, "properties": {"group": "x", "measurements": {"area": value}}}
        (tmp_path / "text.ndjson").write_text(json.dumps({"type": "Feature", **feature}) + "\n")
        measured = [
            "--input",
            str(tmp_path / "text.ndjson"),
            "--measurements",
            str(tmp_path / "measurements.json"),
        ]
        assert main([*base, *measured]) == 1
        assert (
            f"feature 1: measurement 'area' is {value!r}, not a number" in capsys.readouterr().err
        )
    assert not (tmp_path / "a.dcm").exists()
    assert (
        main(
            [
                "ann",
                "decode",
                str(next(slide_folder.glob("*.dcm"))),
                "-o",
                str(tmp_path / "x.ndjson"),
            ]
        )
        == 1
    )


def test_a_null_measurement_is_not_measured(slide_folder, tmp_path, inputs, capsys):
    """GeoJSON has no NaN: tools write null for a missing value (it raised a TypeError)."""
    made = [
        *inputs[:3],
        {**inputs[3], "properties": {"group": "tumor", "measurements": {"area": None}}},
    ]
    (tmp_path / "cells.ndjson").write_text("".join(json.dumps(f) + "\n" for f in made))
    out = tmp_path / "ann.dcm"
    args = encode_args(slide_folder, tmp_path, "cells.ndjson")
    assert main([*args, "-o", str(out)]) == 0, capsys.readouterr().err
    values = read_annotations(out).groups[0].measurement(0)
    assert values[0] == 20.0 and np.isnan(values[1])


@pytest.mark.peer
def test_orthanc_stores_and_lists_the_annotations(orthanc, slide_folder, tmp_path, inputs):
    out = tmp_path / "ann.dcm"
    args = encode_args(slide_folder, tmp_path, "cells.ndjson")
    assert main([*args, "-o", str(out)]) == 0
    storescu([out], orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet).check()
    slide = sorted(slide_folder.glob("*.dcm"))  # RLE Lossless: proposed as such
    storescu(
        slide, orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet, extra_args=["-xr"]
    ).check()
    sop = str(pydicom.dcmread(out, stop_before_pixels=True).SOPInstanceUID)
    (found,) = orthanc.lookup(sop)
    stored = pydicom.dcmread(pydicom.filebase.DicomBytesIO(orthanc.instance_bytes(found["ID"])))
    assert stored == pydicom.dcmread(out)
    served = read_annotations(orthanc.instance_bytes(found["ID"]))
    assert [len(g) for g in served.groups] == [30, 30, 30]
    series = orthanc.get(f"/instances/{found['ID']}/series")
    assert series["MainDicomTags"]["Modality"] == "ANN"
    study = orthanc.get(f"/series/{series['ID']}/study")
    modalities = {orthanc.get(f"/series/{s}")["MainDicomTags"]["Modality"] for s in study["Series"]}
    assert modalities == {"ANN", "SM"}
