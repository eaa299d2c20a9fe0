"""Microscopy Bulk Simple Annotations: written streaming, read back exactly by us and by peers.

Outside oracles: dciodvfy (0 errors), highdicom's annread (graphic data and measurement
values, exact), wsidicom (points and polygons with their measurements, read with the slide).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pydicom
import pytest

from radbridge.ann import (
    Annotation,
    AnnotationGroupDescription,
    read_annotations,
    write_annotations,
)
from radbridge.errors import DecodingError, EncodingError, GridMismatchError, UnsupportedObjectError
from radbridge.wsi import read_slide
from tests.peers import dciodvfy

from .conftest import CELL, groups


def _points(annotation):
    return np.asarray(annotation.coordinates if isinstance(annotation, Annotation) else annotation)


def _values(items, k):
    return np.array([a.values[k] for a in items], np.float32)


@pytest.mark.parametrize("single", [False, True], ids=["double", "single"])
def test_every_graphic_type_round_trips(slide_folder, tmp_path, single):
    slide = read_slide(slide_folder)
    made = groups(np.random.default_rng(1))
    path = write_annotations(
        tmp_path / "ann.dcm",
        slide,
        [(d, iter(a)) for d, a in made],
        level=1,
        single_precision=single,
    )
    read = read_annotations(path)
    assert read.coordinate_type == "2D"
    assert read.referenced_sop_instance_uids == (str(slide.level(1).datasets[0].SOPInstanceUID),)
    dtype = np.float32 if single else np.float64
    for group, (description, items) in zip(read.groups, made, strict=True):
        assert group.description.label == description.label
        assert group.description.graphic_type == description.graphic_type
        assert group.description.property_type == description.property_type
        assert group.description.algorithm == description.algorithm
        assert len(group) == len(items)
        for k, annotation in enumerate(items):
            expected = _points(annotation).astype(dtype)
            np.testing.assert_array_equal(group.annotation(k), expected)
        for k, measurement in enumerate(description.measurements):
            assert group.description.measurements[k] == measurement
            np.testing.assert_array_equal(group.measurement(k), _values(items, k))


@pytest.mark.peer
def test_highdicom_and_dciodvfy_read_them(slide_folder, tmp_path):
    import highdicom as hd

    slide = read_slide(slide_folder)
    made = groups(np.random.default_rng(2))
    path = write_annotations(tmp_path / "ann.dcm", slide, made)
    assert dciodvfy(path).errors == []
    theirs = hd.ann.annread(path)
    for group, (description, items) in zip(theirs.get_annotation_groups(), made, strict=True):
        assert group.label == description.label
        assert group.graphic_type.value == description.graphic_type.value
        assert group.annotated_property_type.value == description.property_type.value
        data = group.get_graphic_data("2D")
        for got, annotation in zip(data, items, strict=True):
            np.testing.assert_array_equal(got, _points(annotation))
        names, values, units = group.get_measurements()
        assert [n.value for n in names] == [m.name.value for m in description.measurements]
        assert [u.value for u in units] == [m.unit.value for m in description.measurements]
        for k in range(len(names)):
            np.testing.assert_array_equal(values[:, k], _values(items, k))


def test_a_group_label_with_a_backslash_is_refused_first_and_leaves_no_file(slide_folder, tmp_path):
    first, items = groups(np.random.default_rng(5))[0]
    taken = []

    def annotations():  # a model's generator: refused before the first is asked for
        for item in items:
            taken.append(item)
            yield item

    made = [(replace(first, label="nuclei\\large"), annotations())]
    path = tmp_path / "ann.dcm"
    with pytest.raises(EncodingError, match="AnnotationGroupLabel 'nuclei\\\\large'"):
        write_annotations(path, read_slide(slide_folder), made)
    assert taken == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.peer
def test_a_japanese_group_label_makes_the_file_utf8(slide_folder, tmp_path):
    import highdicom as hd

    label, description = "細胞核", "自動検出された細胞核"
    first, items = groups(np.random.default_rng(4))[0]
    made = [(replace(first, label=label, description=description), items)]
    path = write_annotations(tmp_path / "ann.dcm", read_slide(slide_folder), made)
    ds = pydicom.dcmread(path)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    (item,) = ds.AnnotationGroupSequence
    assert (item.AnnotationGroupLabel, item.AnnotationGroupDescription) == (label, description)
    assert read_annotations(path).groups[0].description.label == label
    assert hd.ann.annread(path).get_annotation_groups()[0].label == label
    assert dciodvfy(path).errors == []


@pytest.mark.peer
def test_wsidicom_reads_points_and_polygons_with_the_slide(slide_folder, tmp_path):
    from wsidicom import WsiDicom

    folder = tmp_path / "slide"
    folder.mkdir()
    for file in slide_folder.glob("*.dcm"):
        (folder / file.name).write_bytes(file.read_bytes())
    made = [
        g for g in groups(np.random.default_rng(3)) if g[0].graphic_type in ("POINT", "POLYGON")
    ]
    made = [(replace(d, number=n), items) for n, (d, items) in enumerate(made, start=1)]
    write_annotations(folder / "ann.dcm", read_slide(folder), made)
    with WsiDicom.open(folder) as theirs:
        (instance,) = theirs.annotations
        for group, (description, items) in zip(instance, made, strict=True):
            assert group.label == description.label
            for got, annotation in zip(group.annotations, items, strict=True):
                np.testing.assert_array_equal(
                    np.array(got.geometry.to_coords()), _points(annotation)
                )
                area = [m.value for m in got.measurements if m.code.value == "42798000"]
                assert np.float32(area[0]) == np.float32(annotation.values[0])


def _cells(kind="polygon", measurements=()):
    return AnnotationGroupDescription(
        1, "cells", **CELL, graphic_type=kind, algorithm_type="manual", measurements=measurements
    )


@pytest.mark.parametrize(
    ("kind", "points", "message"),
    [
        ("point", [[1, 2], [3, 4]], "a POINT needs 1 points, got 2"),
        ("polygon", [[1, 2], [3, 4]], "needs at least 3 points"),
        ("polygon", [[1, 2], [3, 4], [5, 1], [1, 2]], "do not repeat the first point"),
        ("ellipse", [[1, 2], [3, 4], [5, 6]], "an? ELLIPSE needs 4 points"),
        ("polyline", [[1, 2], [np.nan, 4]], "NaN or infinite"),
        ("polyline", [[1, 2, 3], [3, 4, 5]], r"\[point, 2\]"),
    ],
)
def test_bad_annotations_are_refused_and_nothing_is_left(
    slide_folder, tmp_path, kind, points, message
):
    slide = read_slide(slide_folder)
    good = np.array(
        [[1.0, 2.0]] if kind == "point" else [[1.0, 2.0], [3.0, 4.0], [5.0, 1.0], [2.0, 0.0]]
    )
    good = good[:2] if kind == "polyline" else good
    target = tmp_path / "ann.dcm"
    with pytest.raises(EncodingError, match=message):
        write_annotations(target, slide, [(_cells(kind), [good, np.array(points, float)])])
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # spool files removed too


def test_bad_groups_are_refused(slide_folder, tmp_path):
    slide = read_slide(slide_folder)
    triangle = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.0]])
    with pytest.raises(EncodingError, match="has no annotation"):
        write_annotations(tmp_path / "a.dcm", slide, [(_cells(), [])])
    second = AnnotationGroupDescription(2, "x", **CELL, algorithm_type="manual")
    with pytest.raises(EncodingError, match=r"numbered 1\.\.1 in order"):
        write_annotations(tmp_path / "a.dcm", slide, [(second, [triangle])])
    with pytest.raises(EncodingError, match="names no algorithm"):
        automatic = AnnotationGroupDescription(1, "x", **CELL)
        write_annotations(tmp_path / "a.dcm", slide, [(automatic, [triangle])])
    from .conftest import AREA

    with pytest.raises(EncodingError, match="has 0 values for 1 measurements"):
        write_annotations(tmp_path / "a.dcm", slide, [(_cells(measurements=(AREA,)), [triangle])])


def _rewrite(path, change):
    ds = pydicom.dcmread(path)
    change(ds)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_damaged_files_name_the_attribute(slide_folder, tmp_path):
    slide = read_slide(slide_folder)
    made = groups(np.random.default_rng(4), count=5)

    def fresh(name):
        return write_annotations(tmp_path / name, slide, made)

    def index(ds):
        values = np.frombuffer(
            ds.AnnotationGroupSequence[0].LongPrimitivePointIndexList, "<u4"
        ).copy()
        values[2] = values[1]
        ds.AnnotationGroupSequence[0].LongPrimitivePointIndexList = values.tobytes()

    with pytest.raises(DecodingError, match="LongPrimitivePointIndexList"):
        read_annotations(_rewrite(fresh("a.dcm"), index))

    def count(ds):
        ds.AnnotationGroupSequence[1].NumberOfAnnotations = 9

    with pytest.raises(DecodingError, match="NumberOfAnnotations"):
        read_annotations(_rewrite(fresh("b.dcm"), count))

    def values(ds):
        item = ds.AnnotationGroupSequence[2].MeasurementsSequence[0].MeasurementValuesSequence[0]
        item.AnnotationIndexList = np.array([1, 2, 99], "<u4").tobytes()
        item.FloatingPointValues = np.zeros(3, "<f4").tobytes()

    with pytest.raises(DecodingError, match="MeasurementValuesSequence"):
        read_annotations(_rewrite(fresh("c.dcm"), values))

    def graphic(ds):
        ds.AnnotationGroupSequence[0].GraphicType = "CIRCLE"

    with pytest.raises(DecodingError, match="Graphic Type 'CIRCLE'"):
        read_annotations(_rewrite(fresh("d.dcm"), graphic))
    truncated = tmp_path / "e.dcm"
    truncated.write_bytes(fresh("e.dcm").read_bytes()[:-3000])
    with pytest.raises(DecodingError):
        read_annotations(truncated)
    with pytest.raises(UnsupportedObjectError, match="not a Microscopy Bulk Simple Annotations"):
        read_annotations(next(slide_folder.glob("*.dcm")))


def test_reading_keeps_coordinates_in_the_file(slide_folder, tmp_path):
    """Coordinates are views on the mapped file, not copies (bounded memory when reading)."""
    slide = read_slide(slide_folder)
    rng = np.random.default_rng(5)
    many = (rng.uniform(0, 400, (1, 2)) for _ in range(20_000))
    dots = AnnotationGroupDescription(
        1, "dots", **CELL, graphic_type="point", algorithm_type="manual"
    )
    path = write_annotations(tmp_path / "ann.dcm", slide, [(dots, many)])
    group = read_annotations(path).groups[0]
    assert len(group) == 20_000
    assert not group.coordinates.flags.owndata and not group.coordinates.flags.writeable
    assert isinstance(group.coordinates.base, memoryview | np.ndarray)


def _hexagons(count):
    base = np.array([[0, 0], [4, 0], [6, 3], [4, 6], [0, 6], [-2, 3.0]])
    for k in range(count):
        yield Annotation(base + k % 997, (float(k),))


def _write_traced(path, slide, count):
    import tracemalloc

    from .conftest import AREA

    cells = AnnotationGroupDescription(
        1, "cells", **CELL, algorithm_type="manual", measurements=(AREA,)
    )
    tracemalloc.start()
    try:
        write_annotations(path, slide, [(cells, _hexagons(count))])
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_writing_streams_in_bounded_memory(slide_folder, tmp_path, monkeypatch):
    """With chunks of 1,000 annotations, 40,000 hexagons (4 MB of points) need far less."""
    from radbridge.iods.ann import writer

    monkeypatch.setattr(writer, "CHUNK", 1000)
    peak = _write_traced(tmp_path / "ann.dcm", read_slide(slide_folder), 40_000)
    group = read_annotations(tmp_path / "ann.dcm").groups[0]
    assert group.coordinates.nbytes == 40_000 * 6 * 16
    assert peak < 3_000_000, peak
    np.testing.assert_array_equal(
        group.annotation(39_999), next(_hexagons(40_000))[0] + 39_999 % 997
    )
    assert group.measurement(0)[12_345] == 12_345


@pytest.mark.slow
def test_a_million_annotations_in_bounded_memory(slide_folder, tmp_path):
    peak = _write_traced(tmp_path / "ann.dcm", read_slide(slide_folder), 1_000_000)
    group = read_annotations(tmp_path / "ann.dcm").groups[0]
    assert len(group) == 1_000_000 and group.coordinates.nbytes == 96_000_000
    assert peak < 24_000_000, peak  # the points alone are 96 MB
    assert group.measurement(0)[-1] == 999_999


def by_highdicom(source, coordinate_type, annotation_groups):
    """highdicom's Microscopy Bulk Simple Annotations of ``source`` (an oracle's file)."""
    import highdicom as hd

    return hd.ann.MicroscopyBulkSimpleAnnotations(
        source_images=[source],
        annotation_coordinate_type=coordinate_type,
        annotation_groups=annotation_groups,
        series_instance_uid=hd.UID(),
        series_number=2,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="m",
        manufacturer_model_name="m",
        software_versions="1",
        device_serial_number="1",
    )


@pytest.mark.peer
def test_we_read_highdicoms_annotations_exactly(slide_folder, tmp_path):
    """The other direction: highdicom writes (its own layout, float32 points), we read."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    source = pydicom.dcmread(next(slide_folder.glob("level0.dcm")), stop_before_pixels=True)
    rng = np.random.default_rng(8)
    polygons = [rng.uniform(0, 300, (int(n), 2)).astype(np.float32) for n in rng.integers(3, 9, 40)]
    area = rng.uniform(1, 50, 40).astype(np.float32)
    group = hd.ann.AnnotationGroup(
        number=1,
        uid=hd.UID(),
        label="nuclei",
        annotated_property_category=codes.SCT.AnatomicalStructure,
        annotated_property_type=codes.SCT.Nucleus,
        graphic_type="POLYGON",
        graphic_data=polygons,
        algorithm_type="MANUAL",
        measurements=[hd.ann.Measurements(codes.SCT.Area, area, codes.UCUM.SquareMicrometer)],
    )
    theirs = by_highdicom(source, "2D", [group])
    path = tmp_path / "theirs.dcm"
    theirs.save_as(path)
    ours = read_annotations(path).groups[0]
    assert ours.description.property_type.value == codes.SCT.Nucleus.value
    assert len(ours) == 40
    for k, polygon in enumerate(polygons):
        np.testing.assert_array_equal(ours.annotation(k), polygon)
    np.testing.assert_array_equal(ours.measurement(0), area)
    assert (
        read_annotations(path.read_bytes()).groups[0].annotation(3).tolist() == polygons[3].tolist()
    )


@pytest.mark.peer
def test_we_read_highdicoms_3d_groups_with_a_common_z(slide_folder, tmp_path):
    """3D points that share one Z are stored as x, y plus Common Z Coordinate Value.

    Read as x, y, z triples they were refused as damaged, or (3 triangles: 18 values)
    silently regrouped into wrong points.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    source = pydicom.dcmread(next(slide_folder.glob("level0.dcm")), stop_before_pixels=True)
    rng = np.random.default_rng(9)
    flat = [np.column_stack([rng.uniform(20, 21, (3, 2)), np.full(3, 0.004)]) for _ in range(3)]
    tilted = [rng.uniform(0, 1, (int(n), 3)) for n in (3, 5, 4)]

    def group(number, data):
        return hd.ann.AnnotationGroup(
            number=number,
            uid=hd.UID(),
            label=f"group {number}",
            annotated_property_category=codes.SCT.AnatomicalStructure,
            annotated_property_type=codes.SCT.Nucleus,
            graphic_type="POLYGON",
            graphic_data=data,
            algorithm_type="MANUAL",
        )

    theirs = by_highdicom(source, "3D", [group(1, flat), group(2, tilted)])
    assert "CommonZCoordinateValue" in theirs.AnnotationGroupSequence[0]
    path = tmp_path / "theirs3d.dcm"
    theirs.save_as(path)
    read = read_annotations(path)
    assert read.coordinate_type == "3D"
    for ours, written in zip(read.groups, (flat, tilted), strict=True):
        assert len(ours) == len(written)
        for k, points in enumerate(written):
            np.testing.assert_array_equal(ours.annotation(k), points)
    as_highdicom_reads = hd.ann.annread(path).get_annotation_group(number=1).get_graphic_data("3D")
    for k, points in enumerate(as_highdicom_reads):
        np.testing.assert_array_equal(read.groups[0].annotation(k), points)


def test_bulk_reading_refuses_damage_by_name(tmp_path):
    from radbridge.errors import NotDicomError
    from radbridge.iods.bulk import open_bulk_mapped

    (tmp_path / "empty.dcm").write_bytes(b"")
    with pytest.raises(NotDicomError):
        open_bulk_mapped(tmp_path / "empty.dcm")
    (tmp_path / "text.dcm").write_bytes(b"x" * 200)
    with pytest.raises(NotDicomError, match="no DICM prefix"):
        open_bulk_mapped(tmp_path / "text.dcm")
    ds = pydicom.Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.91.1", "2.25.1"
    item = pydicom.Dataset()
    item.DoublePointCoordinatesData = np.arange(100_000, dtype="<f8").tobytes()
    ds.AnnotationGroupSequence = [item]
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(tmp_path / "good.dcm", enforce_file_format=True)
    data = (tmp_path / "good.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-5000])
    with pytest.raises(DecodingError, match=r"cut\.dcm"):
        open_bulk_mapped(tmp_path / "cut.dcm")
    read = open_bulk_mapped(tmp_path / "good.dcm")
    coordinates = read.AnnotationGroupSequence[0].DoublePointCoordinatesData
    assert isinstance(coordinates, memoryview)
    assert np.frombuffer(coordinates, "<f8")[-1] == 99_999


@pytest.mark.peer
def test_groups_on_one_optical_path(tmp_path):
    """A group that applies to one fluorescence channel names it (wsidicom 0.36 ignores it)."""
    from tests.wsi.slides import write_slide

    written = write_slide(tmp_path / "slide", samples=1, optical_paths=2, levels=1)
    slide = read_slide(written.folder)
    dots = [np.array([[5.0, 6.0]]), np.array([[7.5, 1.0]])]
    on_two = AnnotationGroupDescription(
        1,
        "channel 2 spots",
        **CELL,
        graphic_type="point",
        algorithm_type="manual",
        optical_paths=("2",),
    )
    everywhere = replace(on_two, number=2, label="all spots", optical_paths=())
    path = write_annotations(
        written.folder / "ann.dcm", slide, [(on_two, dots), (everywhere, dots)]
    )
    assert dciodvfy(path).errors == []
    read = read_annotations(path)
    assert [g.description.optical_paths for g in read.groups] == [("2",), ()]
    raw = pydicom.dcmread(path).AnnotationGroupSequence  # as pydicom reads the file
    assert raw[0].AnnotationAppliesToAllOpticalPaths == "NO"
    assert raw[0].ReferencedOpticalPathIdentifier == "2"
    assert raw[1].AnnotationAppliesToAllOpticalPaths == "YES"
    assert "ReferencedOpticalPathIdentifier" not in raw[1]
    with pytest.raises(GridMismatchError, match="optical path '7'"):
        write_annotations(
            tmp_path / "x.dcm", slide, [(replace(on_two, optical_paths=("7",)), dots)]
        )
    assert not (tmp_path / "x.dcm").exists()


@pytest.mark.peer
def test_a_level_of_one_image_per_optical_path_refers_to_one(tmp_path):
    """Referenced Image Sequence takes one item (dciodvfy: "1 Required by Module definition").

    All of the level's images stay in Referenced Series Sequence; the one referenced image
    holds the optical path a group names.
    """
    from tests.wsi.slides import split_optical_paths, write_slide

    written = split_optical_paths(
        write_slide(tmp_path / "slide", samples=1, optical_paths=2, levels=1)
    )
    slide = read_slide(written.folder)
    images = [pydicom.dcmread(f, stop_before_pixels=True) for f in written.files[0]]
    assert len(slide.level(0).datasets) == 2
    dots = [np.array([[5.0, 6.0]])]
    spots = AnnotationGroupDescription(
        1, "spots", **CELL, graphic_type="point", algorithm_type="manual", optical_paths=("2",)
    )
    for description, expected in (
        (spots, images[1]),
        (replace(spots, optical_paths=()), images[0]),
    ):
        path = write_annotations(tmp_path / "ann.dcm", slide, [(description, dots)])
        assert dciodvfy(path).errors == []
        ds = pydicom.dcmread(path)
        (image,) = ds.ReferencedImageSequence
        assert image.ReferencedSOPInstanceUID == expected.SOPInstanceUID
        (series,) = ds.ReferencedSeriesSequence
        assert [i.ReferencedSOPInstanceUID for i in series.ReferencedInstanceSequence] == [
            i.SOPInstanceUID for i in images
        ]


def test_an_element_pydicom_cannot_decode_names_its_attribute(slide_folder, tmp_path):
    """Found by the fuzz campaign: an unknown VR crashed in pydicom (NotImplementedError)."""
    from radbridge.errors import InvalidAttributeError

    slide = read_slide(slide_folder)
    path = write_annotations(tmp_path / "a.dcm", slide, groups(np.random.default_rng(5), count=3))
    data = bytearray(path.read_bytes())
    study_uid = b"\x20\x00\x0d\x00UI"  # (0020,000D) in explicit VR little endian
    at = data.index(study_uid)
    data[at + 4 : at + 6] = b"TI"  # a VR that does not exist
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidAttributeError, match=r"StudyInstanceUID|0020,000D") as caught:
        read_annotations(path)
    assert caught.value.path == str(path)
