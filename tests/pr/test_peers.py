"""Outside oracles for our presentation states: highdicom, an independent fill, Orthanc.

highdicom 0.28 writes presentation states but has no reader for them, so it is used
as an independent *writer*: from the source images and the graphic values of our
file (read with pydicom only), it builds its own GSPS, checking every graphic on
the way (coordinates inside the image, closed shapes, layer and group names);
its graphic annotations, Modality LUT and windows (which highdicom takes from the
source images itself) must equal ours value for value, and our reader must read its
file back to the same masks. OpenCV's point-in-polygon test fills our outlines
independently of radbridge's own raster code.
"""

from __future__ import annotations

import cv2
import highdicom as hd
import numpy as np
import pydicom
import pytest

from radbridge.pr import OutlineOptions, encode_gsps, read_gsps
from tests.peers import storescu

from .conftest import save

pytestmark = pytest.mark.peer


def _highdicom_twin(ds, datasets):
    """Build highdicom's GSPS of the same graphics, from pydicom values of ours."""
    by_uid = {d.SOPInstanceUID: d for d in datasets}
    groups = {
        g.GraphicGroupID: hd.pr.GraphicGroup(int(g.GraphicGroupID), g.GraphicGroupLabel)
        for g in ds.GraphicGroupSequence
    }
    layers = {
        item.GraphicLayer: hd.pr.GraphicLayer(
            item.GraphicLayer, int(item.GraphicLayerOrder), item.GraphicLayerDescription
        )
        for item in ds.GraphicLayerSequence
    }
    annotations = []
    for item in ds.GraphicAnnotationSequence:
        graphics = [
            hd.pr.GraphicObject(
                g.GraphicType,
                np.reshape(np.asarray(g.GraphicData, float), (-1, 2)),
                g.GraphicAnnotationUnits,
                is_filled=g.GraphicFilled == "Y",
                graphic_group=groups[g.GraphicGroupID],
            )
            for g in item.GraphicObjectSequence
        ]
        texts = [
            hd.pr.TextObject(
                t.UnformattedTextValue,
                t.AnchorPointAnnotationUnits,
                bounding_box=(*t.BoundingBoxTopLeftHandCorner, *t.BoundingBoxBottomRightHandCorner),
                anchor_point=tuple(t.AnchorPoint),
                text_justification=t.BoundingBoxTextHorizontalJustification,
                anchor_point_visible=t.AnchorPointVisibility == "Y",
                graphic_group=groups[t.GraphicGroupID],
            )
            for t in item.get("TextObjectSequence", [])
        ]
        images = [by_uid[r.ReferencedSOPInstanceUID] for r in item.ReferencedImageSequence]
        annotations.append(
            hd.pr.GraphicAnnotation(
                images,
                layers[item.GraphicLayer],
                graphic_objects=graphics,
                text_objects=texts or None,
            )
        )
    return hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=datasets,
        series_instance_uid=hd.UID(),
        series_number=1,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="oracle",
        manufacturer_model_name="highdicom",
        software_versions=hd.__version__,
        device_serial_number="1",
        content_label="ORACLE",
        graphic_annotations=annotations,
        graphic_layers=list(layers.values()),
        graphic_groups=list(groups.values()),
    )


_GRAPHIC = (
    "GraphicAnnotationUnits",
    "GraphicDimensions",
    "NumberOfGraphicPoints",
    "GraphicData",
    "GraphicType",
    "GraphicFilled",
    "GraphicGroupID",
)
_TEXT = (
    "UnformattedTextValue",
    "AnchorPoint",
    "BoundingBoxTopLeftHandCorner",
    "BoundingBoxBottomRightHandCorner",
    "BoundingBoxTextHorizontalJustification",
    "GraphicGroupID",
)


def test_highdicom_builds_the_same_graphics_and_pipeline(study, tmp_path):
    ours = pydicom.dcmread(
        save(
            encode_gsps(
                study.labels, study.source, study.present, outlines=OutlineOptions(areas=True)
            ),
            tmp_path,
        )
    )
    twin = _highdicom_twin(ours, study.datasets)
    assert len(twin.GraphicAnnotationSequence) == len(ours.GraphicAnnotationSequence)
    for mine, theirs in zip(
        ours.GraphicAnnotationSequence, twin.GraphicAnnotationSequence, strict=True
    ):
        assert mine.GraphicLayer == theirs.GraphicLayer
        assert [r.ReferencedSOPInstanceUID for r in mine.ReferencedImageSequence] == [
            r.ReferencedSOPInstanceUID for r in theirs.ReferencedImageSequence
        ]
        for a, b in zip(mine.GraphicObjectSequence, theirs.GraphicObjectSequence, strict=True):
            for keyword in _GRAPHIC:
                assert a.get(keyword) == b.get(keyword), keyword
        for a, b in zip(mine.TextObjectSequence, theirs.TextObjectSequence, strict=True):
            for keyword in _TEXT:
                assert a.get(keyword) == b.get(keyword), keyword
    # Modality LUT and window: highdicom takes them from the source images itself.
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        assert ours.get(keyword) == twin.get(keyword), keyword
    (window,) = ours.SoftcopyVOILUTSequence
    theirs = {(float(v.WindowCenter), float(v.WindowWidth)) for v in twin.SoftcopyVOILUTSequence}
    assert theirs == {(float(window.WindowCenter), float(window.WindowWidth))}
    assert ours.PresentationLUTShape == twin.PresentationLUTShape
    ours_area, twin_area = (
        ours.DisplayedAreaSelectionSequence[0],
        twin.DisplayedAreaSelectionSequence[0],
    )
    for keyword in (
        "DisplayedAreaTopLeftHandCorner",
        "DisplayedAreaBottomRightHandCorner",
        "PresentationSizeMode",
    ):
        assert ours_area[keyword].value == twin_area[keyword].value
    # And our reader reads highdicom's file back to the mask.
    path = tmp_path / "highdicom.dcm"
    twin.save_as(path, enforce_file_format=True)
    back = read_gsps(path)
    assert np.array_equal(back.label_volume(study.source).array, study.labels)


def _even_odd_fill(polygons, shape):
    """Pixels whose centre lies inside an odd number of polygons (OpenCV's test)."""
    rows, columns = shape
    count = np.zeros(shape, int)
    for polygon in polygons:
        contour = polygon.astype(np.float32).reshape(-1, 1, 2)
        left, top = np.floor(polygon.min(axis=0)).astype(int)
        right, bottom = np.ceil(polygon.max(axis=0)).astype(int)
        for r in range(max(top, 0), min(bottom + 1, rows)):
            for c in range(max(left, 0), min(right + 1, columns)):
                side = cv2.pointPolygonTest(contour, (c + 0.5, r + 0.5), False)
                assert side != 0, "a pixel centre lies on an outline"
                count[r, c] += side > 0
    return count % 2 == 1


def test_an_independent_fill_of_the_outlines_gives_the_mask(study, tmp_path):
    ds = pydicom.dcmread(save(encode_gsps(study.labels, study.source, study.present), tmp_path))
    layer_number = {i.GraphicLayer: i.GraphicLayerOrder for i in ds.GraphicLayerSequence}
    uid_to_slice = {r.sop_instance_uid: k for k, r in enumerate(study.source.slice_refs)}
    polygons: dict[tuple[int, int], list[np.ndarray]] = {}
    for item in ds.GraphicAnnotationSequence:
        k = uid_to_slice[item.ReferencedImageSequence[0].ReferencedSOPInstanceUID]
        for g in item.GraphicObjectSequence:
            points = np.reshape(np.asarray(g.GraphicData, float), (-1, 2))
            polygons.setdefault((layer_number[item.GraphicLayer], k), []).append(points[:-1])
    filled = np.zeros(study.labels.shape, np.uint8)
    for (number, k), found in polygons.items():
        inside = _even_odd_fill(found, study.labels.shape[1:])
        assert not (filled[k] & inside).any()
        filled[k][inside] = number
    assert np.array_equal(filled, study.labels)


@pytest.mark.slow
def test_orthanc_stores_and_lists_our_gsps(orthanc, study, tmp_path):
    path = save(encode_gsps(study.labels, study.source, study.present), tmp_path)
    sources = sorted(study.folder.iterdir())
    storescu([*sources, path], orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet).check()
    ds = pydicom.dcmread(path)
    (found,) = orthanc.lookup(str(ds.SOPInstanceUID))
    instance = orthanc.get(f"/instances/{found['ID']}")
    series = orthanc.get(f"/series/{instance['ParentSeries']}")
    assert series["MainDicomTags"]["Modality"] == "PR"
    study_id = series["ParentStudy"]
    listed = orthanc.get(f"/studies/{study_id}/series")
    assert {s["MainDicomTags"]["Modality"] for s in listed} == {"CT", "PR"}
    stored = orthanc.instance_bytes(found["ID"])
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored)) == ds
    back = read_gsps(stored)
    assert np.array_equal(back.label_volume(study.source).array, study.labels)
