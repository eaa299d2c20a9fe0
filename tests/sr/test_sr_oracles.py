"""Every numeric value and UCUM unit of our TID 1500 SRs, as outside readers see them.

highdicom and dcmjs (OHIF's library) in the fast tier, dcmqi's ``tid1500reader`` in the
slow tier: each must find exactly the measurements we wrote — concept, value to the
last bit, and unit code in the UCUM scheme.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from radbridge.coding import Code, sct
from radbridge.iods.sr import (
    Measurement,
    MeasurementGroup,
    MeasurementReport,
    encode_measurement_report,
)
from tests.peers import dcmjs_sr_measurements, tid1500reader

from .test_sr import ML, full_report, save, seg  # noqa: F401  (fixtures)

pytestmark = pytest.mark.peer


def _ours(report):
    return sorted(
        (m.concept.value, m.value, m.unit.value, m.unit.scheme)
        for group in report.groups
        for m in group.measurements
    )


@pytest.fixture
def sr_file(full_report, source, tmp_path):  # noqa: F811
    return save(encode_measurement_report(full_report, source), tmp_path / "sr.dcm")


def test_highdicom_reads_every_value_and_unit(full_report, sr_file):  # noqa: F811
    content = hd.sr.srread(sr_file).content
    groups = [
        *content.get_image_measurement_groups(),
        *content.get_planar_roi_measurement_groups(),
        *content.get_volumetric_roi_measurement_groups(),
    ]
    theirs = sorted(
        (m.name.value, float(m.value), m.unit.value, m.unit.scheme_designator)
        for group in groups
        for m in group.get_measurements()
    )
    assert theirs == _ours(full_report)
    assert {unit_scheme for *_, unit_scheme in theirs} == {"UCUM"}


def test_dcmjs_report_adapter_reads_every_value_and_unit(full_report, sr_file, tmp_path):  # noqa: F811
    groups = dcmjs_sr_measurements(sr_file, tmp_path)
    assert [g["trackingUid"] for g in groups] == [g.tracking_uid for g in full_report.groups]
    theirs = sorted(
        (m["concept"]["value"], m["value"], m["unit"]["value"], m["unit"]["scheme"])
        for g in groups
        for m in g["measurements"]
    )
    assert theirs == _ours(full_report)


@pytest.mark.slow
def test_dcmqi_reads_every_value_and_unit(full_report, sr_file, tmp_path):  # noqa: F811
    metadata = tid1500reader(sr_file, tmp_path / "dcmqi.json")
    theirs = sorted(
        (
            item["quantity"]["CodeValue"],
            float(item["value"]),
            item["units"]["CodeValue"],
            item["units"]["CodingSchemeDesignator"],
        )
        for group in metadata["Measurements"]
        for item in group["measurementItems"]
    )
    assert theirs == _ours(full_report)


def test_numpy_values_are_written_as_highdicom_reads_them(source, tmp_path):
    values = (np.float32(1520.5), np.float32(0.1), np.int64(3), np.uint8(200), np.float16(0.5))
    volume = sct("118565006", "Volume")
    group = MeasurementGroup("g", measurements=tuple(Measurement(volume, v, ML) for v in values))
    path = save(
        encode_measurement_report(MeasurementReport(groups=(group,)), source),
        tmp_path / "sr.dcm",
    )
    (theirs,) = hd.sr.srread(path).content.get_image_measurement_groups()
    assert [float(m.value) for m in theirs.get_measurements()] == [float(v) for v in values]


def test_pressure_in_water_and_mercury_columns_is_written_as_highdicom_reads_it(source, tmp_path):
    pressure = sct("75367002", "Blood pressure")
    units = ("cm[H2O]", "mm[H2O]", "cm[Hg]", "[in_i'Hg]")
    group = MeasurementGroup(
        "g", measurements=tuple(Measurement(pressure, 12.0, Code(u, "UCUM", u)) for u in units)
    )
    path = save(
        encode_measurement_report(MeasurementReport(groups=(group,)), source),
        tmp_path / "sr.dcm",
    )
    (theirs,) = hd.sr.srread(path).content.get_image_measurement_groups()
    read = [(m.unit.value, m.unit.scheme_designator) for m in theirs.get_measurements()]
    assert read == [(u, "UCUM") for u in units]
