"""Query/retrieve and DICOMweb against a real Orthanc: send, find, get/move/WADO, compare."""

from __future__ import annotations

import logging

import pydicom
import pytest

from radbridge.cli import main
from radbridge.config import Peer, parse_peer
from radbridge.errors import AssociationError, NetworkError
from radbridge.net.dicomweb import qido, wado
from radbridge.net.qr import find, get, move
from radbridge.net.scu import send
from tests.net.helpers import dataset_bytes, received_tree, sources_by_uid
from tests.peers._common import free_port

pytestmark = pytest.mark.peer


def dimse(orthanc) -> Peer:
    return parse_peer(f"ORTHANC@127.0.0.1:{orthanc.dicom_port}")


def web(orthanc, **auth) -> Peer:
    return Peer(
        "ORTHANC", "127.0.0.1", orthanc.dicom_port, dicomweb_url=orthanc.dicomweb_url, **auth
    )


@pytest.fixture
def pacs(orthanc_factory):
    """Orthanc that knows our retrieve SCP as a move destination."""
    port = free_port()
    orthanc = orthanc_factory(modalities={"rb": ("RADBRIDGE", "127.0.0.1", port)})
    orthanc.move_port = port
    return orthanc


def test_send_find_and_retrieve_three_ways(pacs, small_study, tmp_path):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    study_uid = small_study.study_instance_uid
    series_uid = small_study.series_instance_uid
    studies = find(dimse(pacs), "STUDY")
    assert [str(s.StudyInstanceUID) for s in studies] == [study_uid]
    series = find(dimse(pacs), "SERIES", keys={"StudyInstanceUID": study_uid})
    assert [str(s.SeriesInstanceUID) for s in series] == [series_uid]
    assert int(series[0].NumberOfSeriesRelatedInstances) == 12
    assert find(dimse(pacs), "STUDY", keys={"StudyInstanceUID": "1.2.3.4.5"}) == []
    assert [str(s.StudyInstanceUID) for s in qido(web(pacs), "STUDY")] == [study_uid]
    assert [str(s.SeriesInstanceUID) for s in qido(web(pacs), "SERIES", study=study_uid)] == [
        series_uid
    ]
    sent = sources_by_uid(small_study.dicom_dir)
    got_get = get(dimse(pacs), tmp_path / "get", study=study_uid)
    got_move = move(
        dimse(pacs), tmp_path / "move", study=study_uid, series=series_uid, port=pacs.move_port
    )
    got_wado = wado(web(pacs), tmp_path / "wado", study=study_uid, series=series_uid)
    for report, folder in ((got_get, "get"), (got_move, "move"), (got_wado, "wado")):
        tree = received_tree(tmp_path / folder)  # layout and no temporary files
        assert tree.keys() == sent.keys() and len(report.files) == 12
        for uid, path in sent.items():
            if folder == "wado":  # re-encoded by the DICOMweb client: compare the data sets
                assert pydicom.dcmread(tree[uid]) == pydicom.dcmread(path)
            else:
                assert dataset_bytes(tree[uid]) == dataset_bytes(path)


def test_faults_are_typed(pacs, small_study, tmp_path, orthanc_factory):
    with pytest.raises(AssociationError, match="cannot open"):
        find(parse_peer(f"ORTHANC@127.0.0.1:{free_port()}"), "STUDY")
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    with pytest.raises(NetworkError):  # Orthanc answers a failure status for an unknown study
        get(dimse(pacs), tmp_path / "nothing", study="1.2.3.4.5")
    assert not list((tmp_path / "nothing").rglob("*"))
    # Orthanc 1.10.1 ends the association instead of answering 0xA801 for an unknown
    # destination; either way it is a NetworkError and nothing is written
    with pytest.raises(NetworkError):
        move(
            dimse(pacs),
            tmp_path / "m",
            study=small_study.study_instance_uid,
            ae_title="STRANGER",
            port=free_port(),
        )
    assert not list((tmp_path / "m").rglob("*.dcm"))


def test_patient_level_find_logs_no_patient_data(pacs, small_study, caplog):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    with caplog.at_level(logging.DEBUG):
        (patient,) = find(dimse(pacs), "PATIENT", model="patient")
    assert str(patient.PatientName) == "Phantom^Radbridge"
    assert "Phantom" not in caplog.text and "RB-PHANTOM" not in caplog.text


def test_query_and_retrieve_cli(pacs, small_study, tmp_path, capsys):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    peer = f"ORTHANC@127.0.0.1:{pacs.dicom_port}"
    assert main(["query", peer, "--level", "series"]) == 0
    out = capsys.readouterr().out
    assert small_study.series_instance_uid in out and "Phantom" not in out
    assert (
        main(
            [
                "retrieve",
                peer,
                "--study",
                small_study.study_instance_uid,
                "--method",
                "get",
                "-o",
                str(tmp_path / "cli"),
            ]
        )
        == 0
    )
    assert len(received_tree(tmp_path / "cli")) == 12
    config = tmp_path / "peers.toml"
    config.write_text(
        f'[peers.pacs]\nae_title = "ORTHANC"\nhost = "127.0.0.1"\nport = {pacs.dicom_port}\n'
        f'dicomweb_url = "{pacs.dicomweb_url}"\n'
    )
    assert main(["query", "pacs", "--config", str(config), "--web"]) == 0
    assert small_study.study_instance_uid in capsys.readouterr().out
    assert (
        main(
            [
                "retrieve",
                "pacs",
                "--config",
                str(config),
                "--study",
                small_study.study_instance_uid,
                "--method",
                "wado",
                "-o",
                str(tmp_path / "w"),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "retrieve",
                peer,
                "--study",
                "1.2.3.4.5",
                "--method",
                "get",
                "-o",
                str(tmp_path / "none"),
            ]
        )
        == 1
    )
