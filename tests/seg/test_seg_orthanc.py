"""Orthanc (a real PACS) accepts our SEGs over C-STORE and STOW-RS and serves them unchanged."""

from __future__ import annotations

import uuid

import pydicom
import pytest

from radbridge.iods.seg import encode_segmentation, read_segmentation
from tests.peers import storescu

from .conftest import descriptions

pytestmark = pytest.mark.peer


def stow(orthanc, data: bytes) -> dict:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return orthanc.post(
        "/dicom-web/studies",
        data=body,
        content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


@pytest.mark.parametrize("seg_type", ["binary", "labelmap"])
def test_orthanc_stores_and_serves_our_seg_unchanged(orthanc, study, tmp_path, seg_type):
    ds = encode_segmentation(
        study.labels,
        study.source,
        descriptions(7),
        segmentation_type=seg_type,
        transfer_syntax="explicit",
    )
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    sent = path.read_bytes()
    if seg_type == "binary":
        # C-STORE with DCMTK's storescu (DCMTK 3.6.7 predates Label Map Segmentation
        # Storage, so storescu cannot send that class; radbridge's own SCU can).
        storescu([path], orthanc.host, orthanc.dicom_port, called_aet=orthanc.aet).check()
        (found,) = orthanc.lookup(str(ds.SOPInstanceUID))
        stored = orthanc.instance_bytes(found["ID"])
        assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored)) == pydicom.dcmread(path)
        tags = orthanc.get(f"/instances/{found['ID']}/simplified-tags")
        assert tags["SegmentationType"] == "BINARY"
        orthanc.delete_all()
    # STOW-RS: the same data set comes back.
    response = stow(orthanc, sent)
    assert "00081190" in response  # RetrieveURL: stored
    (found,) = orthanc.lookup(str(ds.SOPInstanceUID))
    served = read_segmentation(orthanc.instance_bytes(found["ID"]))
    assert served.dataset == pydicom.dcmread(path)
    assert served.label_volume(study.source).array.tolist() == study.labels.tolist()
