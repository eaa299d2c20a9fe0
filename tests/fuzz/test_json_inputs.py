"""Hostile JSON documents given to every command that reads one: ``error: ...``, no crash.

Binary garbage (not UTF-8), nesting deeper than Python's recursion limit, a bare number
and a truncated object, as labels, measurements, reports, GeoJSON annotations,
manifest options and model cards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radbridge.errors import ConfigError
from radbridge.io.phantom import write_phantom
from radbridge.io.slide_phantom import write_slide_phantom

from .corpus import check, run_reader

DOCUMENTS = {
    "binary": b"\xff\xfe\x00\x81\x9c not text",
    "deep": b"[" * 100_000,
    "number": b"42",
    "cut": b'{"1": {"label": "liver", "category"',
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("json-inputs")
    phantom = write_phantom(folder / "phantom", slices=4, size=16, seed=4, nifti=False)
    np.save(folder / "mask.npy", np.zeros((4, 16, 16), np.uint8))
    write_slide_phantom(folder / "slide", size=(64, 96), tile=32, levels=1, seed=3)
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]}}
    point["properties"] = {"group": "nuclei"}
    (folder / "points.geojson").write_text(
        json.dumps({"type": "FeatureCollection", "features": [point]})
    )
    return phantom.dicom_dir, folder


def commands(source: Path, folder: Path, bad: Path) -> list[list[str]]:
    """Every CLI command with a JSON input, ``bad`` in that input's place."""
    mask, points, out = folder / "mask.npy", folder / "points.geojson", folder / "out.dcm"
    src, slide = ["--source", str(source)], ["--source", str(folder / "slide")]
    return [
        ["seg", "encode", *src, "--mask", str(mask), "--labels", str(bad), "-o", str(out)],
        ["rtstruct", "encode", *src, "--mask", str(mask), "--labels", str(bad), "-o", str(out)],
        ["sr", "encode", str(bad), *src, "-o", str(out)],
        ["ann", "encode", *slide, "--input", str(bad), "-o", str(out)],
        ["ann", "encode", *slide, "--input", str(bad.with_suffix(".geojson")), "-o", str(out)],
        ["ann", "encode", *slide, "--input", str(points), "--labels", str(bad), "-o", str(out)],
        [
            "ann",
            "encode",
            *slide,
            "--input",
            str(points),
            "--measurements",
            str(bad),
            "-o",
            str(out),
        ],
    ]


@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_json_inputs_of_the_cli(study, tmp_path, kind):
    source, folder = study
    bad = tmp_path / "bad.json"
    bad.write_bytes(DOCUMENTS[kind])
    bad.with_suffix(".geojson").write_bytes(DOCUMENTS[kind])
    for argv in commands(source, folder, bad):
        outcome = run_reader(argv)
        check(outcome, [kind, *argv])
        assert outcome.code == 1, (kind, argv, outcome.stdout[-300:])
        assert f"{tmp_path}/bad." in outcome.stderr, (kind, argv, outcome.stderr[-300:])


@pytest.mark.parametrize("kind", sorted(DOCUMENTS))
def test_model_cards_and_manifest_options(tmp_path, kind):
    from radbridge.batch.manifest import read_manifest
    from radbridge.models.onnx import ModelCard

    card = tmp_path / "card.json"
    card.write_bytes(DOCUMENTS[kind])
    with pytest.raises(ConfigError, match="model card cannot be read"):
        ModelCard.load(card)
    options = DOCUMENTS[kind].decode("latin-1").replace('"', '""')
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f'id,source,kind,input,labels,options\na,study,seg,mask.npy,labels.json,"{options}"\n'
    )
    with pytest.raises(ConfigError):
        read_manifest(manifest)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\xff\xfe\x00\x81 not text", "UnicodeDecodeError"),
        (b"id,source,kind,input,labels\na,s,seg," + b"x" * 200_000 + b",l\n", "field larger"),
    ],
)
def test_a_manifest_that_is_no_csv_text_is_refused_by_name(tmp_path, content, reason):
    from radbridge.batch.manifest import read_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_bytes(content)
    with pytest.raises(ConfigError, match=f"cannot read the manifest .*{reason}") as caught:
        read_manifest(manifest)
    assert caught.value.path == str(manifest)
