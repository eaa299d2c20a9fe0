"""The SR writer refuses references it cannot make true, before building anything."""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.coding import Code, sct
from radbridge.errors import EncodingError, InvalidAttributeError
from radbridge.iods.sr import (
    DeviceObserver,
    ImageRegion,
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    SegmentationFrameReference,
    SegmentReference,
    encode_measurement_report,
    report_from_json,
)

NODULE = sct("27925004", "Nodule")
SEG_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def refused(source, attribute, **group):
    report = MeasurementReport(groups=(MeasurementGroup("g", finding=NODULE, **group),))
    with pytest.raises(EncodingError) as err:
        encode_measurement_report(report, source)
    assert err.value.attribute == attribute, str(err.value)
    return err.value


def test_regions_must_be_on_images_of_the_source(source):
    ref = source.slice_refs[2]
    point = (5.0, 5.0)
    error = refused(
        source,
        "ReferencedSOPInstanceUID",
        region=ImageRegion("POINT", point, ref.sop_class_uid, "1.2.826.0.1.3680043.10.1234.99"),
    )
    assert "not an instance of the source series" in str(error)
    refused(  # right image, wrong SOP class
        source,
        "ReferencedSOPInstanceUID",
        region=ImageRegion("POINT", point, "1.2.840.10008.5.1.4.1.1.4", ref.sop_instance_uid),
    )
    good = ImageRegion("POINT", point, ref.sop_class_uid, ref.sop_instance_uid)
    other = ImageRegion("POINT", point, ref.sop_class_uid, "1.2.826.0.1.3680043.10.1234.98")
    refused(source, "ReferencedSOPInstanceUID", region=good, regions=(other,))


def test_3d_regions_must_be_in_the_source_frame_of_reference(source):
    assert source.frame_of_reference_uid
    points = (1.0, 2.0, 3.0)
    refused(
        source,
        "ReferencedFrameOfReferenceUID",
        region=ImageRegion("POINT", points, frame_of_reference_uid="1.2.826.0.1.3680043.10.9"),
    )
    same = ImageRegion("POINT", points, frame_of_reference_uid=source.frame_of_reference_uid)
    report = MeasurementReport(groups=(MeasurementGroup("g", finding=NODULE, region=same),))
    assert encode_measurement_report(report, source).SOPClassUID.endswith(".88.34")


def test_segmentation_frames_must_segment_an_image_of_the_source(source):
    ref = source.slice_refs[0]
    frame = SegmentationFrameReference(
        SEG_CLASS, "1.2.826.0.1.3680043.10.1234.50", 1, ref.sop_class_uid, "1.2.826.0.1.3"
    )
    refused(source, "ReferencedSOPInstanceUID", segmentation_frame=frame)
    zero = SegmentationFrameReference(
        SEG_CLASS, "1.2.826.0.1.3680043.10.1234.50", 0, ref.sop_class_uid, ref.sop_instance_uid
    )
    refused(source, "ReferencedFrameNumber", segmentation_frame=zero)


@pytest.mark.parametrize(
    ("group", "attribute"),
    [
        ({"tracking_uid": "not-a-uid"}, "TrackingUID"),
        ({"tracking_uid": "1.02.3"}, "TrackingUID"),
        ({"segment": SegmentReference(SEG_CLASS, "1.2.3.4", 0)}, "ReferencedSegmentNumber"),
        ({"segment": SegmentReference(SEG_CLASS, "1.2.3.x", 1)}, "ReferencedSOPInstanceUID"),
        (
            {"segment": SegmentReference(SEG_CLASS, "1.2.3.4", 1, source_series_uid="a.b")},
            "SourceSeriesForSegmentation",
        ),
    ],
)
def test_invalid_uids_and_numbers_are_refused(source, group, attribute):
    refused(source, attribute, **group)


def test_invalid_device_uid_is_refused(source):
    volume = Measurement(sct("118565006", "Volume"), 1.0, Code("ml", "UCUM", "ml"))
    report = MeasurementReport(
        groups=(MeasurementGroup("g", finding=NODULE, measurements=(volume,)),),
        device=DeviceObserver(uid="model v1"),
    )
    with pytest.raises(EncodingError) as err:
        encode_measurement_report(report, source)
    assert err.value.attribute == "DeviceObserverUID"


@pytest.mark.parametrize(
    ("group", "attribute"),
    [
        ({"tracking_id": "a", "tracking_uid": ["1.2"], "finding": None}, "groups[0].tracking_uid"),
        ({"tracking_id": 7}, "groups[0].tracking_id"),
        ({"tracking_id": "a", "measurements": None}, "groups[0]"),
        ({"tracking_id": "a", "evaluations": [None]}, "groups[0]"),
        (
            {"tracking_id": "a", "region": {"graphic_type": "POINT", "points": 3}},
            "groups[0].region",
        ),
    ],
)
def test_json_values_of_the_wrong_shape_name_their_field(group, attribute):
    with pytest.raises(InvalidAttributeError) as err:
        report_from_json({"groups": [group]})
    assert err.value.attribute == attribute, str(err.value)


def test_json_device_and_person_of_the_wrong_shape(source):
    group = {"tracking_id": "a", "finding": NODULE.to_json()}
    with pytest.raises(InvalidAttributeError) as err:
        report_from_json({"groups": [group], "device": {"uid": "1.2.3", "colour": "red"}})
    assert err.value.attribute == "device"
    with pytest.raises(InvalidAttributeError) as err:
        report_from_json({"groups": [group], "person": {"name": "x"}})
    assert err.value.attribute == "report.person"


@pytest.mark.parametrize(
    "value",
    [True, np.bool_(False), 10**400, -(10**400), "1.5", None],
    ids=["bool", "numpy-bool", "int-beyond-double", "negative-int-beyond-double", "str", "None"],
)
def test_values_that_are_not_finite_real_numbers_are_refused(source, value):
    volume = Measurement(sct("118565006", "Volume"), value, Code("ml", "UCUM", "ml"))
    error = refused(source, "NumericValue", measurements=(volume,))
    assert "not a finite real number" in str(error) and len(str(error)) < 400


@pytest.mark.parametrize("value", [True, 10**400], ids=["bool", "int-beyond-double"])
def test_json_values_that_are_not_numbers_are_refused(value):
    volume = {"concept": sct("118565006", "Volume").to_json(), "value": value, "unit": "ml"}
    with pytest.raises(InvalidAttributeError) as err:
        report_from_json({"groups": [{"tracking_id": "a", "measurements": [volume]}]})
    assert err.value.attribute == "groups[0].measurements[0].value"
