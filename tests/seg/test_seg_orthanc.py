"""Orthanc (a real PACS) accepts our SEGs over C-STORE and STOW-RS and serves them unchanged."""

from __future__ import annotations

import uuid

import pydicom
import pytest

from radbridge.errors import PresentationContextError
from radbridge.iods.seg import encode_segmentation, read_segmentation
from radbridge.net import Peer, store_file
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


def test_stock_orthanc_refuses_label_map_segs_over_c_store(orthanc_factory, study, tmp_path):
    """Orthanc 1.10.1 as installed (UnknownSopClassAccepted false, DCMTK 3.6.7) takes BINARY
    SEGs over C-STORE but no Label Map SEG: why the ``pacs`` profile refuses LABELMAP."""
    pacs = orthanc_factory(extra={"UnknownSopClassAccepted": False})
    peer = Peer(pacs.aet, pacs.host, pacs.dicom_port)
    for seg_type in ("binary", "labelmap"):
        ds = encode_segmentation(
            study.labels, study.source, descriptions(7), segmentation_type=seg_type
        )
        path = tmp_path / f"{seg_type}.dcm"
        ds.save_as(path, enforce_file_format=True)
        if seg_type == "binary":
            assert store_file(path, peer) == 0
        else:
            with pytest.raises(
                PresentationContextError, match=r"1\.2\.840\.10008\.5\.1\.4\.1\.1\.66\.7"
            ):
                store_file(path, peer)
    assert len(pacs.instances()) == 1
