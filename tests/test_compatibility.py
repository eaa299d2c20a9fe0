"""The compatibility matrix: every object radbridge writes x every outside reader.

Each cell is measured: ``yes`` means the reader opened the file and found the values
we wrote (voxels, map values within the stated quantisation, SR values and units),
``no`` that it refused or crashed, ``-`` that the reader has no use for that kind of
object. A reader that opens a file but gets the values wrong fails the test outright,
except in the Cornerstone3D and OHIF columns, where such a measured peer defect is the
cell ``wrong`` (explained in the docs); ``n/m`` there marks objects those columns do not
measure (they run the segmentation adapter only).
``EXPECTED`` is the table in docs/compatibility.md (a test keeps them equal), so a new
peer version that reads more (or less) shows up as a failing cell.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radbridge.coding import dcm
from radbridge.io.nifti import volume_from_sitk
from radbridge.io.phantom import write_phantom
from radbridge.io.series import read_source_series, read_volume
from radbridge.iods.pm import encode_parametric_map
from radbridge.iods.rtstruct import encode_rtstruct
from radbridge.iods.sc import encode_overlay_sc, render_overlay
from radbridge.iods.seg import encode_segmentation
from radbridge.iods.sr import MeasurementReport, encode_measurement_report
from radbridge.pr import encode_gsps
from tests.peers import (
    PeerCommandError,
    cornerstone3d_segmentation,
    dciodvfy,
    dcmjs_segmentation,
    dcmjs_sr_measurements,
    ohif_browser_segmentation,
    paramap2itkimage,
    segimage2itkimage,
    tid1500reader,
    validate_instances,
    validate_sr,
)
from tests.seg.test_seg_peers import onto

pytestmark = [pytest.mark.peer, pytest.mark.slow]

READERS = (
    "dcmqi",
    "highdicom",
    "dcmjs",
    "Cornerstone3D",
    "OHIF",
    "Orthanc",
    "dciodvfy",
    "PixelMed",
)
ROOT = Path(__file__).resolve().parents[1]

#: object | one cell per reader, in the order of READERS (measured).
TABLE = """
SEG BINARY (default, ohif: explicit)        | yes | yes | yes | yes   | yes   | yes | yes | no
SEG BINARY deflated (slicer, compact)       | yes | yes | yes | yes   | no    | yes | no  | no
SEG BINARY RLE                              | no  | yes | no  | wrong | wrong | yes | yes | no
SEG BINARY JPEG 2000                        | no  | yes | no  | no    | yes   | yes | yes | no
SEG FRACTIONAL (default: explicit)          | yes | yes | no  | no    | no    | yes | yes | no
SEG FRACTIONAL JPEG-LS (compact)            | no  | yes | no  | no    | no    | yes | yes | no
SEG LABELMAP (default, ohif: RLE)           | yes | yes | no  | yes   | yes   | yes | yes | -
SEG LABELMAP explicit                       | yes | yes | no  | yes   | yes   | yes | yes | -
SEG LABELMAP deflated (slicer)              | yes | yes | no  | yes   | no    | yes | no  | -
SEG LABELMAP JPEG-LS (compact)              | no  | yes | no  | no    | yes   | yes | yes | -
PM float32 (default)                        | yes | yes | -   | n/m   | n/m   | yes | yes | -
PM float64 (kept when float32 would round)  | no  | yes | -   | n/m   | n/m   | yes | yes | -
PM uint16 from floats (--dtype uint16)      | no  | yes | -   | n/m   | n/m   | yes | yes | -
PM uint16 JPEG-LS (compact)                 | no  | yes | -   | n/m   | n/m   | yes | yes | -
SC overlay (default: explicit)              | -   | -   | -   | n/m   | n/m   | yes | yes | -
SC overlay JPEG-LS (compact)                | -   | -   | -   | n/m   | n/m   | yes | yes | -
SR TID 1500 (default)                       | yes | yes | yes | n/m   | n/m   | yes | yes | no
RTSTRUCT (default)                          | -   | -   | -   | n/m   | n/m   | yes | yes | -
GSPS outlines (default)                     | -   | -   | -   | n/m   | n/m   | yes | yes | -
"""
EXPECTED: dict[str, dict[str, str]] = {
    cells[0]: dict(zip(READERS, cells[1:], strict=True))
    for cells in ([c.strip() for c in line.split("|")] for line in TABLE.strip().splitlines())
}


@dataclass
class Written:
    """One object of the matrix: its file, kind and what readers must find in it."""

    kind: str  # seg, pm, sc, sr, rtstruct, gsps
    path: Path
    masks: np.ndarray | None = None  # seg: [segment, slice, row, column] bool
    values: np.ndarray | None = None  # pm: real values on the source grid
    tolerance: float = 0.0  # pm: largest allowed difference
    measurements: list[tuple[str, float, str]] | None = None  # sr


@dataclass
class Study:
    folder: Path
    stack: list[Path]
    source: Any
    labels: np.ndarray


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Study:
    files = write_phantom(tmp_path_factory.mktemp("matrix"), slices=10, size=48, seed=5)
    source = read_source_series(files.dicom_dir)
    by_uid = {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): p
        for p in files.dicom_dir.glob("*.dcm")
    }
    stack = [by_uid[ref.sop_instance_uid] for ref in source.slice_refs]
    labels = np.load(files.labels_npy)
    labels[labels > 6] = 0
    return Study(files.dicom_dir, stack, source, labels)


def _names(n: int) -> dict[int, str]:
    table = ["liver", "spleen", "kidney_left", "kidney_right", "aorta", "stomach"]
    return {k: table[k - 1] for k in range(1, n + 1)}


def _seg(study, folder, name, seg_type, **options) -> Written:
    masks = np.stack([study.labels == k for k in range(1, 7)])
    data: Any = study.labels
    if seg_type == "fractional":
        data = masks.astype(np.float32) * 0.6  # true fractions, not 0/1 only
    ds = encode_segmentation(data, study.source, _names(6), segmentation_type=seg_type, **options)
    path = folder / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return Written("seg", path, masks=masks)


def _pm(study, folder, name, values, tolerance=0.0, **options) -> Written:
    ds = encode_parametric_map(
        values,
        study.source,
        quantity=dcm("113041", "Apparent Diffusion Coefficient"),
        units="mm2/s",
        **options,
    )
    path = folder / f"{name}.dcm"
    ds.save_as(path, enforce_file_format=True)
    if "stored_dtype" in options:
        item = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
        tolerance = float(item.RealWorldValueSlope) / 2 * (1 + 1e-6)
    return Written("pm", path, values=np.asarray(values, np.float64), tolerance=tolerance)


def _objects(study: Study, folder: Path) -> dict[str, Written]:
    shape = study.source.geometry.shape
    adc = np.random.default_rng(3).random(shape).astype(np.float32) * np.float32(0.004)
    adc64 = np.random.default_rng(4).random(shape) * 0.004
    ints = np.random.default_rng(5).integers(0, 3000, shape).astype(np.uint16)
    volume = read_volume(study.folder, rescale=True)
    frames = render_overlay(volume, study.labels, {}, _names(6))
    out: dict[str, Written] = {
        "SEG BINARY (default, ohif: explicit)": _seg(study, folder, "b", "binary"),
        "SEG BINARY deflated (slicer, compact)": _seg(
            study, folder, "bd", "binary", profile="slicer"
        ),
        "SEG BINARY RLE": _seg(study, folder, "br", "binary", transfer_syntax="rle"),
        "SEG BINARY JPEG 2000": _seg(study, folder, "bj", "binary", transfer_syntax="jpeg2000"),
        "SEG FRACTIONAL (default: explicit)": _seg(study, folder, "f", "fractional"),
        "SEG FRACTIONAL JPEG-LS (compact)": _seg(
            study, folder, "fj", "fractional", profile="compact"
        ),
        "SEG LABELMAP (default, ohif: RLE)": _seg(study, folder, "l", "labelmap"),
        "SEG LABELMAP explicit": _seg(study, folder, "le", "labelmap", transfer_syntax="explicit"),
        "SEG LABELMAP deflated (slicer)": _seg(study, folder, "ld", "labelmap", profile="slicer"),
        "SEG LABELMAP JPEG-LS (compact)": _seg(study, folder, "lj", "labelmap", profile="compact"),
        "PM float32 (default)": _pm(study, folder, "pf", adc),
        "PM float64 (kept when float32 would round)": _pm(study, folder, "pd", adc64),
        "PM uint16 from floats (--dtype uint16)": _pm(
            study, folder, "pq", adc, stored_dtype="uint16"
        ),
        "PM uint16 JPEG-LS (compact)": _pm(study, folder, "pj", ints, profile="compact"),
    }
    for name, options in [
        ("SC overlay (default: explicit)", {}),
        ("SC overlay JPEG-LS (compact)", {"profile": "compact"}),
    ]:
        path = folder / f"sc{len(out)}.dcm"
        encode_overlay_sc(frames, study.source, **options).save_as(path, enforce_file_format=True)
        out[name] = Written("sc", path, values=frames)
    from tests.sr.test_sr import image_group, planar_group

    report = MeasurementReport(groups=(image_group(), planar_group(study.source)))
    path = folder / "sr.dcm"
    encode_measurement_report(report, study.source).save_as(path, enforce_file_format=True)
    out["SR TID 1500 (default)"] = Written(
        "sr",
        path,
        measurements=sorted(
            (m.concept.value, m.value, m.unit.value) for g in report.groups for m in g.measurements
        ),
    )
    path = folder / "rt.dcm"
    encode_rtstruct(study.labels, study.source, _names(6)).save_as(path, enforce_file_format=True)
    out["RTSTRUCT (default)"] = Written("rtstruct", path)
    path = folder / "ps.dcm"
    encode_gsps(study.labels, study.source, _names(6)).save_as(path, enforce_file_format=True)
    out["GSPS outlines (default)"] = Written("gsps", path)
    return out


# --- readers: True = read with the right values, False = cannot open -----------------


def _opens(call: Callable[[], Any]) -> bool:
    try:
        call()
    except (PeerCommandError, ValueError, RuntimeError, NotImplementedError, TypeError):
        return False
    return True


def _check_masks(written: Written, placed_per_segment: list[np.ndarray]) -> None:
    assert written.masks is not None
    assert len(placed_per_segment) == len(written.masks), written.path.name
    for k, placed in enumerate(placed_per_segment):
        np.testing.assert_array_equal(placed, written.masks[k], err_msg=f"{written.path} {k + 1}")


def _dcmqi(study: Study, w: Written, tmp: Path) -> bool | None:
    if w.kind == "seg":
        out = tmp / f"dcmqi-{w.path.stem}"
        if not _opens(lambda: segimage2itkimage(w.path, out)):
            return False
        images = segimage2itkimage(w.path, out)
        placed = {}
        for number, image in images.images.items():
            vol = volume_from_sitk(sitk.ReadImage(str(image)))
            placed[number] = onto(study.source.geometry, vol.array, vol.affine)
        if len(placed) == 1 and len(w.masks) > 1:  # a label map comes back merged
            merged = next(iter(placed.values()))
            placed = {k: merged == k for k in range(1, len(w.masks) + 1)}
        _check_masks(w, [placed[k] != 0 for k in sorted(placed)])
        return True
    if w.kind == "pm":
        out = tmp / f"dcmqi-{w.path.stem}"
        if not _opens(lambda: paramap2itkimage(w.path, out)):
            return False
        vol = volume_from_sitk(sitk.ReadImage(str(out / "pmap.nrrd")))
        placed = onto(study.source.geometry, vol.array, vol.affine)
        assert np.abs(placed - w.values).max() <= max(w.tolerance, 0.0), w.path
        return True
    if w.kind == "sr":
        meta = tid1500reader(w.path, tmp / "dcmqi-sr.json")
        theirs = sorted(
            (i["quantity"]["CodeValue"], float(i["value"]), i["units"]["CodeValue"])
            for g in meta["Measurements"]
            for i in g["measurementItems"]
        )
        assert theirs == w.measurements
        return True
    return None


def _highdicom(study: Study, w: Written, tmp: Path) -> bool | None:
    if w.kind == "seg":
        try:
            seg = hd.seg.segread(w.path)
            volume = seg.get_volume(combine_segments=False, rescale_fractional=False)
        except (ValueError, RuntimeError, NotImplementedError):
            return False
        array = np.asarray(volume.array)
        _check_masks(
            w,
            [
                onto(study.source.geometry, array[..., k], volume.affine) != 0
                for k in range(array.shape[-1])
            ],
        )
        return True
    if w.kind == "pm":
        volume = hd.pm.ParametricMap.from_dataset(pydicom.dcmread(w.path)).get_volume()
        placed = onto(study.source.geometry, np.asarray(volume.array), volume.affine)
        assert np.abs(placed - w.values).max() <= w.tolerance, w.path
        return True
    if w.kind == "sr":
        content = hd.sr.srread(w.path).content
        groups = [
            *content.get_image_measurement_groups(),
            *content.get_planar_roi_measurement_groups(),
            *content.get_volumetric_roi_measurement_groups(),
        ]
        theirs = sorted(
            (m.name.value, float(m.value), m.unit.value)
            for g in groups
            for m in g.get_measurements()
        )
        assert theirs == w.measurements
        return True
    return None


def _dcmjs(study: Study, w: Written, tmp: Path) -> bool | None:
    if w.kind == "seg":
        try:
            theirs = dcmjs_segmentation(w.path, study.stack, tmp / f"js-{w.path.stem}")
        except PeerCommandError:
            return False
        rebuilt = [
            np.any([m == k for m in theirs.labelmaps], axis=0) for k in range(1, len(w.masks) + 1)
        ]
        _check_masks(w, rebuilt)
        return True
    if w.kind == "sr":
        groups = dcmjs_sr_measurements(w.path, tmp)
        theirs = sorted(
            (m["concept"]["value"], m["value"], m["unit"]["value"])
            for g in groups
            for m in g["measurements"]
        )
        assert theirs == w.measurements
        return True
    return None


def _cornerstone3d(study: Study, w: Written, tmp: Path, reader: Callable[..., Any]) -> str:
    if w.kind != "seg":
        return "n/m"
    try:
        theirs = reader(w.path, study.stack, tmp / f"{reader.__name__}-{w.path.stem}")
    except PeerCommandError:
        return "no"
    assert w.masks is not None
    rebuilt = [
        np.any([m == k for m in theirs.labelmaps], axis=0) for k in range(1, len(w.masks) + 1)
    ]
    return "yes" if np.array_equal(np.stack(rebuilt), w.masks) else "wrong"


def _cell(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def measure(study: Study, objects: dict[str, Written], tmp: Path, orthanc) -> dict:
    table: dict[str, dict[str, str]] = {}
    instance_files = [w.path for w in objects.values() if w.kind != "sr"]
    instance_results = validate_instances(instance_files)
    sr_results = validate_sr([w.path for w in objects.values() if w.kind == "sr"])
    for name, w in objects.items():
        row = {
            "dcmqi": _cell(_dcmqi(study, w, tmp)),
            "highdicom": _cell(_highdicom(study, w, tmp)),
            "dcmjs": _cell(_dcmjs(study, w, tmp)),
            "Cornerstone3D": _cornerstone3d(study, w, tmp, cornerstone3d_segmentation),
            "OHIF": _cornerstone3d(study, w, tmp, ohif_browser_segmentation),
        }
        answer = orthanc.upload(w.path)
        stored = orthanc.instance_bytes(answer["ID"]) == w.path.read_bytes()
        row["Orthanc"] = _cell(stored)
        row["dciodvfy"] = _cell(dciodvfy(w.path).errors == [])
        pixelmed = (sr_results if w.kind == "sr" else instance_results)[w.path.absolute()]
        if "unrecognized" in pixelmed.output or "No validation" in pixelmed.output:
            row["PixelMed"] = "-"  # PixelMed 20220618 has no rules for this IOD
        else:
            row["PixelMed"] = _cell(pixelmed.errors == [])
        table[name] = row
    return table


def markdown(table: dict[str, dict[str, str]]) -> str:
    lines = ["| object | " + " | ".join(READERS) + " |", "|---" * (len(READERS) + 1) + "|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(row[r] for r in READERS) + " |")
    return "\n".join(lines)


def test_the_matrix_is_as_documented(study, tmp_path, orthanc):
    objects = _objects(study, tmp_path)
    measured = measure(study, objects, tmp_path, orthanc)
    (tmp_path / "measured.json").write_text(json.dumps(measured, indent=1))
    assert measured == EXPECTED, "\n" + markdown(measured)


def test_the_docs_show_the_matrix():
    text = (ROOT / "docs" / "compatibility.md").read_text()
    assert markdown(EXPECTED) in text, "regenerate the table in docs/compatibility.md"


#: Objects a reader opens in no encoding at all (so no default can help).
_NO_ENCODING_HELPS = {
    ("SEG FRACTIONAL (default: explicit)", "dcmjs"),  # "not yet supported" in dcmjs 0.52
    ("SEG LABELMAP (default, ohif: RLE)", "dcmjs"),  # no per-frame segment number to read
    # "not yet supported" in @cornerstonejs/adapters 5.6.8 unless every value is 0 or max
    ("SEG FRACTIONAL (default: explicit)", "Cornerstone3D"),
    ("SEG FRACTIONAL (default: explicit)", "OHIF"),
}


def test_every_default_opens_in_every_reader_of_its_kind():
    readers = [r for r in READERS if r != "PixelMed"]  # see docs/compatibility.md
    for name, row in EXPECTED.items():
        if "default" in name:
            failing = {r for r in readers if row[r] == "no"}
            assert failing <= {r for n, r in _NO_ENCODING_HELPS if n == name}, name
