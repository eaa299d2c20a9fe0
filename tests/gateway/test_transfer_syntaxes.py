"""The gateway receives only what it can decode: JPEG Lossless (no codec here) is negotiated away.

radbridge has no JPEG Lossless (Process 14, ``1.2.840.10008.1.2.4.70``) decoder: the
packages that have one are GPL (pylibjpeg-libjpeg) or optional (GDCM). The gateway's
C-STORE receiver rejects presentation contexts in syntaxes it cannot decode, so a PACS
falls back to one it can (PS3.8 presentation context negotiation); its STOW-RS receiver
refuses such a part with Failure Reason 0xC122. Never a series acknowledged and then
dead-lettered because no model can read it.
"""

from __future__ import annotations

import pydicom
import pytest
import requests

from radbridge.gateway.store import JobState
from radbridge.pixels.codecs import decodable_syntaxes
from tests.gateway.conftest import query
from tests.gateway.test_core import files_of, run_until_idle
from tests.peers.dcmtk import dcmcjpeg, storescu

JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


@pytest.fixture(scope="module")
def jpeg_study(phantom_study, tmp_path_factory):
    """The phantom CT series in JPEG Lossless SV1, compressed by DCMTK dcmcjpeg."""
    folder = tmp_path_factory.mktemp("jpeg-lossless")
    files = [dcmcjpeg(path, folder / path.name) for path in files_of(phantom_study)]
    assert pydicom.dcmread(files[0]).file_meta.TransferSyntaxUID == JPEG_LOSSLESS
    return files


def spooled_syntaxes(gateway) -> set[str]:
    paths = [row["path"] for row in query(gateway, "SELECT path FROM instances")]
    return {
        str(pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID) for p in paths
    }


def test_jpeg_lossless_cannot_be_decoded_here():
    assert JPEG_LOSSLESS not in decodable_syntaxes()
    assert decodable_syntaxes() >= UNCOMPRESSED


@pytest.mark.peer
@pytest.mark.slow
def test_a_jpeg_lossless_series_from_orthanc_arrives_uncompressed_and_runs(
    gateway, jpeg_study, orthanc_factory
):
    with gateway.receiver(port=0) as receiver:
        orthanc = orthanc_factory(modalities={"gateway": ("RADBRIDGE", "127.0.0.1", receiver.port)})
        orthanc.upload_many(jpeg_study)
        answer = orthanc.store_to("gateway", orthanc.studies())  # Orthanc transcodes for us
        assert answer["FailedInstancesCount"] == 0 and answer["InstancesCount"] == 24
    assert spooled_syntaxes(gateway) <= UNCOMPRESSED
    run_until_idle(gateway)
    (job,) = query(gateway, "SELECT state, error FROM jobs")
    assert job["state"] == JobState.DONE, job["error"]


@pytest.mark.peer
def test_storescu_that_cannot_convert_its_jpeg_files_stores_nothing(gateway, jpeg_study):
    """DCMTK storescu -xs proposes JPEG Lossless and uncompressed, but cannot decompress.

    The gateway accepts only the uncompressed contexts; storescu cannot convert its
    files to them and reports the failure: nothing is acknowledged, and no job is
    ever dead-lettered for a series it could not read.
    """
    with gateway.receiver(port=0) as receiver:
        sent = storescu(
            jpeg_study[:3], "127.0.0.1", receiver.port, called_aet="RADBRIDGE", extra_args=("-xs",)
        )
    assert sent.returncode != 0 and "unable to convert" in sent.output, sent.output
    run_until_idle(gateway)
    assert query(gateway, "SELECT * FROM instances") == []
    assert query(gateway, "SELECT * FROM jobs") == []


def test_stow_refuses_a_jpeg_lossless_part_with_0xc122(gateway, phantom_study, jpeg_study):
    boundary = "cut-here"
    parts = [files_of(phantom_study)[1], jpeg_study[0]]
    body = (
        b"".join(
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + path.read_bytes()
            + b"\r\n"
            for path in parts
        )
        + f"--{boundary}--\r\n".encode()
    )
    head = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    with gateway.stow_server() as server:
        answer = requests.post(f"{server.url}/studies", data=body, headers=head, timeout=30)
    assert answer.status_code == 202  # one stored, one failed
    (failed,) = answer.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [0xC122]
    ds = pydicom.dcmread(jpeg_study[0], stop_before_pixels=True)
    assert failed["00081155"]["Value"] == [ds.SOPInstanceUID]
    (stored,) = query(gateway, "SELECT sop_instance_uid FROM instances")
    assert stored["sop_instance_uid"] != ds.SOPInstanceUID
    assert gateway.assemble_once() == 0  # the refusal holds the series
    assert "refused" in gateway.store.series_row(phantom_study.series_instance_uid).held_reason
