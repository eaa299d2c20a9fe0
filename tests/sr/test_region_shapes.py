"""Spatial coordinates have the number of points their graphic type requires.

PS3.3 C.18.6.1.2 (SCOORD) and C.18.9.1.2 (SCOORD3D): POINT 1, CIRCLE 2, ELLIPSE 4,
ELLIPSOID 6 points exactly; POLYLINE at least 2; a SCOORD3D POLYGON is closed (its
last point is its first). radbridge refuses a region exactly when highdicom's
content items do, and what it writes passes dciodvfy.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from radbridge.coding import Code, sct
from radbridge.errors import EncodingError
from radbridge.iods.sr import (
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    encode_measurement_report,
)
from tests.peers.dicom3tools import dciodvfy

AREA = Measurement(sct("42798000", "Area"), 50.0, Code("mm2", "UCUM", "mm2"))
_SQUARE = [(0.0, 0.0, 5.0), (10.0, 0.0, 5.0), (10.0, 10.0, 5.0), (0.0, 10.0, 5.0)]

# (graphic type, points): 2D points are (column, row), 3D ones (x, y, z)
CASES_2D = [
    ("POINT", [(10.0, 10.0)]),
    ("POINT", [(10.0, 10.0), (20.0, 20.0)]),
    ("CIRCLE", [(10.0, 10.0), (20.0, 10.0)]),
    ("CIRCLE", [(10.0, 10.0), (20.0, 10.0), (30.0, 30.0)]),
    ("ELLIPSE", [(10.0, 20.0), (30.0, 20.0), (20.0, 15.0), (20.0, 25.0)]),
    ("ELLIPSE", [(10.0, 20.0), (30.0, 20.0), (20.0, 15.0)]),
    ("ELLIPSE", [(10.0, 20.0), (30.0, 20.0), (20.0, 15.0), (20.0, 25.0), (1.0, 1.0)]),
    ("POLYLINE", [(10.0, 10.0)]),
    ("POLYLINE", [(10.0, 10.0), (20.0, 20.0)]),
    ("POLYLINE", [(10.0, 10.0), (20.0, 20.0), (30.0, 10.0)]),
]
CASES_3D = [
    ("POINT", [(1.0, 2.0, 5.0)]),
    ("POINT", [(1.0, 2.0, 5.0), (3.0, 4.0, 5.0)]),
    ("ELLIPSE", [(0.0, 5.0, 5.0), (10.0, 5.0, 5.0), (5.0, 2.0, 5.0), (5.0, 8.0, 5.0)]),
    ("ELLIPSE", [(0.0, 5.0, 5.0), (10.0, 5.0, 5.0), (5.0, 2.0, 5.0)]),
    (
        "ELLIPSOID",
        [(0, 5, 5), (10, 5, 5), (5, 2, 5), (5, 8, 5), (5, 5, 3), (5, 5, 7)],
    ),
    ("ELLIPSOID", [(0, 5, 5), (10, 5, 5), (5, 2, 5), (5, 8, 5), (5, 5, 3)]),
    (
        "ELLIPSOID",
        [(0, 5, 5), (10, 5, 5), (5, 2, 5), (5, 8, 5), (5, 5, 3), (5, 5, 7), (5, 5, 5)],
    ),
    ("POLYGON", [*_SQUARE, _SQUARE[0]]),
    ("POLYGON", _SQUARE),
    ("POLYGON", _SQUARE[:3]),
    ("POLYLINE", [(1.0, 2.0, 5.0)]),
    ("POLYLINE", [(1.0, 2.0, 5.0), (3.0, 4.0, 5.0)]),
]


def _ids(cases):
    def name(kind, points):
        closed = "-closed" if points[0] == points[-1] else "-open"
        return f"{kind}-{len(points)}" + (closed if kind == "POLYGON" else "")

    return [name(kind, points) for kind, points in cases]


def _highdicom_accepts(kind, points, three_d) -> bool:
    data = np.array(points, dtype=float)
    try:
        if three_d:
            hd.sr.Scoord3DContentItem(
                hd.sr.CodedConcept("111030", "DCM", "Image Region"), kind, data, "1.2.3"
            )
        else:
            hd.sr.ScoordContentItem(hd.sr.CodedConcept("111030", "DCM", "Image Region"), kind, data)
    except ValueError:
        return False
    return True


def _region(source, kind, points, three_d):
    flat = tuple(float(v) for point in points for v in point)
    if three_d:
        return ImageRegion(kind, flat, frame_of_reference_uid=source.frame_of_reference_uid)
    ref = source.slice_refs[0]
    return ImageRegion(kind, flat, ref.sop_class_uid, ref.sop_instance_uid)


def _report(region):
    group = MeasurementGroup("g", finding=sct("27925004", "Nodule"), region=region)
    return MeasurementReport(groups=(group,))


def _we_accept(source, region) -> bool:
    try:
        encode_measurement_report(_report(region), source)
    except EncodingError as err:
        assert err.attribute == "GraphicData" and err.hint, str(err)
        return False
    return True


@pytest.mark.parametrize(("kind", "points"), CASES_2D, ids=_ids(CASES_2D))
def test_2d_regions_are_refused_exactly_when_highdicom_refuses_them(source, kind, points):
    region = _region(source, kind, points, three_d=False)
    assert _we_accept(source, region) == _highdicom_accepts(kind, points, three_d=False)


@pytest.mark.parametrize(("kind", "points"), CASES_3D, ids=_ids(CASES_3D))
def test_3d_regions_are_refused_exactly_when_highdicom_refuses_them(source, kind, points):
    region = _region(source, kind, points, three_d=True)
    assert _we_accept(source, region) == _highdicom_accepts(kind, points, three_d=True)


def test_a_closed_3d_polygon_needs_three_corners(source):
    # highdicom lets (A, B, A) through; it encloses nothing, so we refuse it
    line = [(0.0, 0.0, 5.0), (10.0, 0.0, 5.0), (0.0, 0.0, 5.0)]
    assert not _we_accept(source, _region(source, "POLYGON", line, three_d=True))


@pytest.mark.peer
def test_accepted_regions_pass_dciodvfy(source, tmp_path):
    cases = [(k, p, False) for k, p in CASES_2D] + [(k, p, True) for k, p in CASES_3D]
    groups = []
    for kind, points, three_d in cases:
        if _highdicom_accepts(kind, points, three_d):
            region = _region(source, kind, points, three_d)
            group = MeasurementGroup(f"g{len(groups)}", region=region, measurements=(AREA,))
            groups.append(group)
    path = tmp_path / "regions.dcm"
    sr = encode_measurement_report(MeasurementReport(groups=tuple(groups)), source)
    sr.save_as(path, enforce_file_format=True)
    result = dciodvfy(path, "-new")
    assert len(groups) == 10 and not result.errors, result.errors[:3]
