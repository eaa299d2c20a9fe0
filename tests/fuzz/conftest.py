"""Seed files for the fuzz tests: radbridge's own objects on a small phantom, and interop files."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from radbridge.ann import (
    Annotation,
    AnnotationGroupDescription,
    MeasurementDescription,
    write_annotations,
)
from radbridge.coding import Code, dcm, sct
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_source_series, read_volume
from radbridge.io.slide_phantom import write_slide_phantom
from radbridge.iods.ko import encode_key_objects
from radbridge.iods.pm import encode_parametric_map
from radbridge.iods.rtstruct import encode_rtstruct
from radbridge.iods.sc import encode_overlay_sc, render_overlay
from radbridge.iods.seg import encode_segmentation
from radbridge.iods.sr import (
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    encode_measurement_report,
)
from radbridge.pr import OutlineOptions, encode_gsps
from radbridge.wsi import encode_slide_segmentation, read_slide

from .corpus import Seed, make_seed

#: Third-party files (../shared/interop) added to the seeds, by kind.
INTEROP = {
    "seg/dcmqi/liver.dcm": "seg",
    "seg/highdicom/seg_image_ct_true_fractional.dcm": "seg",
    "seg/dcmqi/sparse-labelmap-ppv5.dcm": "seg",
    "rtstruct/rt-utils/rt.dcm": "rtstruct",
    "pm/highdicom/parametric_map_float.dcm": "pm",
    "sr/highdicom/sr_document_with_multiple_groups.dcm": "sr",
    "ko/generated/dcmtk-3.6.7_xml2dsr_kos.dcm": "sr",
}


class Corpus:
    """The seeds and the phantom's DICOM folder (for --source); a short repr for reports."""

    def __init__(self, seeds: list[Seed], source: Path) -> None:
        self.seeds = seeds
        self.source = source

    def __repr__(self) -> str:
        return f"Corpus({len(self.seeds)} seeds)"


def _save(ds, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path


def _own_files(folder: Path) -> tuple[list[tuple[str, str, Path]], Path]:
    files = write_phantom(folder / "phantom", slices=4, size=16, seed=4, nifti=False)
    source = read_source_series(files.dicom_dir)
    labels = np.load(files.labels_npy)
    labels[labels > 3] = 3
    names = {1: "body", 2: "lung_left", 3: "lung_right"}
    out = folder / "seeds"
    out.mkdir()
    made = []
    for seg_type, syntax in (("binary", "explicit"), ("labelmap", "rle")):
        ds = encode_segmentation(
            labels, source, names, segmentation_type=seg_type, transfer_syntax=syntax
        )
        made.append((f"seg-{seg_type}", "seg", _save(ds, out / f"seg-{seg_type}.dcm")))
    fractions = np.random.default_rng(0).random((1, *labels.shape)).astype(np.float32)
    ds = encode_segmentation(fractions, source, {1: "liver"}, segmentation_type="fractional")
    made.append(("seg-fractional", "seg", _save(ds, out / "seg-fractional.dcm")))
    ds = encode_parametric_map(
        fractions[0], source, quantity=dcm("130402", "Class activation"), units="{probability}"
    )
    made.append(("pm-float", "pm", _save(ds, out / "pm-float.dcm")))
    ds = encode_parametric_map(
        (fractions[0] * 1000).astype(np.uint16),
        source,
        quantity=dcm("130402", "Class activation"),
        units="1",
        transfer_syntax="rle",
    )
    made.append(("pm-uint16-rle", "pm", _save(ds, out / "pm-uint16.dcm")))
    made.append(
        (
            "rtstruct",
            "rtstruct",
            _save(encode_rtstruct(labels, source, names), out / "rtstruct.dcm"),
        )
    )
    outlines = encode_gsps(labels, source, names, outlines=OutlineOptions(areas=True))
    made.append(("gsps", "gsps", _save(outlines, out / "gsps.dcm")))
    ref = source.slice_refs[1]
    region = ImageRegion("POLYLINE", (2.0, 2.0, 9.0, 9.0), ref.sop_class_uid, ref.sop_instance_uid)
    report = MeasurementReport(
        groups=(
            MeasurementGroup(
                "nodule",
                finding=sct("27925004", "Nodule"),
                region=region,
                measurements=(
                    Measurement(sct("81827009", "Diameter"), 7.5, Code("mm", "UCUM", "mm")),
                ),
            ),
        )
    )
    made.append(("sr", "sr", _save(encode_measurement_report(report, source), out / "sr.dcm")))
    keys = [source.slice_refs[0].sop_instance_uid]
    made.append(("kos", "sr", _save(encode_key_objects(keys, source), out / "kos.dcm")))
    frames = render_overlay(read_volume(files.dicom_dir, rescale=True), labels, {}, names)
    made.append(("sc", "sc", _save(encode_overlay_sc(frames, source), out / "sc.dcm")))
    made += _slide_files(folder, out)
    (out / "names.json").write_text(json.dumps(names))
    return made, files.dicom_dir


def _slide_files(folder: Path, out: Path) -> list[tuple[str, str, Path]]:
    """A slide SEG (TILED_FULL BINARY, TILED_SPARSE FRACTIONAL) and an annotation file."""
    write_slide_phantom(folder / "slide", size=(70, 100), tile=32, levels=1)
    slide = read_slide(folder / "slide")
    labels = np.zeros((70, 100), np.uint8)
    labels[10:40, 20:70] = 1
    labels[50:65, 5:30] = 2
    made = []
    ds = encode_slide_segmentation(labels, slide, {1: "tumor", 2: "liver"})
    made.append(("wsi-seg-full", "wsi-seg", _save(ds, out / "wsi-seg-full.dcm")))
    fractions = np.where(labels == 1, 0.75, 0.0)[None]
    ds = encode_slide_segmentation(
        fractions, slide, {1: "tumor"}, segmentation_type="fractional", omit_empty_tiles=True
    )
    made.append(("wsi-seg-sparse", "wsi-seg", _save(ds, out / "wsi-seg-sparse.dcm")))
    area = MeasurementDescription(sct("42798000", "Area"), Code("um2", "UCUM", "um2"))
    cells = AnnotationGroupDescription(
        1,
        "cells",
        category=sct("91723000", "Anatomical Structure"),
        property_type=sct("4421005", "Cell"),
        algorithm_type="MANUAL",
        measurements=(area,),
    )
    dots = AnnotationGroupDescription(
        2,
        "dots",
        category=sct("91723000", "Anatomical Structure"),
        property_type=sct("4421005", "Cell"),
        graphic_type="point",
        algorithm_type="MANUAL",
    )
    triangles = [
        Annotation(np.array([[x, 5.0], [x + 4, 5.0], [x + 2, 9.0]]), (x if x % 4 else np.nan,))
        for x in np.arange(0.0, 60.0, 6.0)
    ]
    points = [np.array([[float(k), 2.0 * k]]) for k in range(8)]
    path = write_annotations(out / "ann.dcm", slide, [(cells, triangles), (dots, points)])
    made.append(("ann", "ann", path))
    return made


def _repeatable_uuids(seed: int) -> Callable[[], uuid.UUID]:
    rng = random.Random(seed)
    return lambda: uuid.UUID(int=rng.getrandbits(128), version=4)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory, interop) -> Corpus:
    folder = tmp_path_factory.mktemp("fuzz")
    # The same UIDs in every run: the derandomized campaign then damages the same bytes
    # each time (random UIDs of other lengths moved every offset, so each CI run met
    # other cases than the last).
    with mock.patch("radbridge.uids.uuid.uuid4", _repeatable_uuids(2026)):
        made, source = _own_files(folder)
    seeds = [make_seed(name, kind, path) for name, kind, path in made]
    seeds += [
        make_seed("interop-" + name.replace("/", "-"), kind, interop / name)
        for name, kind in INTEROP.items()
    ]
    return Corpus(seeds, source)
