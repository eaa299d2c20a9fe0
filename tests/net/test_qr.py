"""Query/retrieve and DICOMweb against a real Orthanc: send, find, get/move/WADO, compare."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest

import radbridge
from radbridge.cli import main
from radbridge.errors import (
    AssociationError,
    DimseStatusError,
    NetworkError,
    PeerTimeoutError,
)
from radbridge.io.phantom import write_phantom
from radbridge.net import (
    Peer,
    find,
    get,
    move,
    parse_peer,
    qido,
    quiet_pynetdicom,
    send,
    stow,
    wado,
)
from tests.net.helpers import dataset_bytes, pynetdicom_config, received_tree, sources_by_uid
from tests.peers import free_port, interop_dir, stop_process, wait_for_port
from tests.peers.dcmtk import dcmtk_program

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


@pytest.mark.parametrize("way_in", ["C-STORE", "STOW-RS"])
def test_send_find_and_retrieve_three_ways(pacs, small_study, tmp_path, way_in):
    if way_in == "C-STORE":
        assert send([small_study.dicom_dir], dimse(pacs)).ok
    else:
        assert len(stow(sorted(small_study.dicom_dir.glob("*.dcm")), web(pacs)).stored) == 12
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
            assert dataset_bytes(tree[uid]) == dataset_bytes(path)


def test_faults_are_typed(pacs, small_study, tmp_path):
    with pytest.raises(AssociationError, match="cannot open"):
        find(parse_peer(f"ORTHANC@127.0.0.1:{free_port()}"), "STUDY")
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    with pytest.raises(NetworkError):  # Orthanc answers a failure status for an unknown study
        get(dimse(pacs), tmp_path / "nothing", study="1.2.3.4.5")
    assert not list((tmp_path / "nothing").rglob("*"))
    with pytest.raises(DimseStatusError, match="hold the study") as err:  # known destination
        move(dimse(pacs), tmp_path / "none", study="1.2.3.4.5", port=pacs.move_port)
    assert err.value.status == 0xC000  # what Orthanc 1.10.1 answers for an unknown study
    assert not list((tmp_path / "none").rglob("*.dcm"))


def test_move_by_an_unknown_ae_is_refused(pacs, small_study, tmp_path):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    # Orthanc 1.10.1 aborts the association when the calling AE is not in DicomModalities
    with pytest.raises(AssociationError, match="aborted") as err:
        move(
            dimse(pacs),
            tmp_path,
            study=small_study.study_instance_uid,
            ae_title="STRANGER",
            port=free_port(),
        )
    assert "DicomModalities" in str(err.value)
    assert not list(tmp_path.rglob("*.dcm"))


def test_move_to_an_unknown_destination_orthanc(orthanc_factory, small_study, tmp_path):
    # With C-MOVE allowed from anyone, Orthanc 1.10.1 answers 0xC000 (not 0xA801) for a
    # destination it does not know
    pacs = orthanc_factory(extra={"DicomAlwaysAllowMove": True})
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    with pytest.raises(DimseStatusError) as err:
        move(dimse(pacs), tmp_path, study=small_study.study_instance_uid, ae_title="STRANGER")
    assert err.value.status == 0xC000 and "move destination" in str(err.value)
    assert not list(tmp_path.rglob("*.dcm"))


@pytest.fixture
def dcmqrscp(tmp_path_factory):
    """DCMTK's dcmqrscp (AE DCMQR) accepting anyone, knowing no move destination."""
    base = tmp_path_factory.mktemp("dcmqrscp")
    (base / "db").mkdir()
    port = free_port()
    config = base / "dcmqrscp.cfg"
    config.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nDCMQR {base / 'db'} RW (100, 64mb) ANY\nAETable END\n"
    )
    with (base / "log.txt").open("wb") as log:
        proc = subprocess.Popen(
            [str(dcmtk_program("dcmqrscp")), "-c", str(config), str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_for_port("127.0.0.1", port, proc=proc)
        yield parse_peer(f"DCMQR@127.0.0.1:{port}")
    finally:
        stop_process(proc)


def test_move_to_an_unknown_destination_dcmqrscp(dcmqrscp, small_study, tmp_path):
    assert send([small_study.dicom_dir], dcmqrscp).ok
    study_uid = small_study.study_instance_uid
    assert [str(s.StudyInstanceUID) for s in find(dcmqrscp, "STUDY")] == [study_uid]
    with pytest.raises(DimseStatusError, match="move destination") as err:
        move(dcmqrscp, tmp_path, study=study_uid, ae_title="STRANGER")
    assert err.value.status == 0xA801
    assert not list(tmp_path.rglob("*.dcm"))


@pytest.fixture
def pynetdicom_log():
    """pynetdicom's logger, its level restored afterwards (quiet_pynetdicom changes it)."""
    logger = logging.getLogger("pynetdicom")
    level = logger.level
    logger.setLevel(logging.NOTSET)
    yield logger
    logger.setLevel(level)


def _pynetdicom_settings() -> tuple[bool, bool]:
    config = pynetdicom_config()
    return config.LOG_REQUEST_IDENTIFIERS, config.LOG_RESPONSE_IDENTIFIERS


def test_patient_level_find_logs_no_patient_data(pacs, small_study, caplog, pynetdicom_log):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    quiet_pynetdicom()  # what the radbridge command does at its start
    with caplog.at_level(logging.DEBUG):
        (patient,) = find(dimse(pacs), "PATIENT", model="patient")
        # QIDO-RS puts matching keys in the URL, which HTTP libraries log at DEBUG
        keys = {"PatientID": str(patient.PatientID)}
        (study,) = qido(web(pacs), "STUDY", keys=keys)
        assert qido(web(pacs), "STUDY", keys={"PatientID": "someone else"}) == []
    assert str(patient.PatientName) == "Phantom^Radbridge"
    assert str(study.StudyInstanceUID) == small_study.study_instance_uid
    assert "GET /dicom-web/studies?" in caplog.text  # the requests were logged ...
    assert (
        "Phantom" not in caplog.text and str(patient.PatientID) not in caplog.text
    )  # ... not the keys
    assert "someone else" not in caplog.text and "someone%20else" not in caplog.text


def test_queries_leave_pynetdicom_settings_to_the_application(
    pacs, small_study, caplog, pynetdicom_log, tmp_path
):
    # library calls change no process-wide setting of pynetdicom: an application that
    # logs pynetdicom at INFO (or runs its own Q/R SCP) keeps what it chose
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    settings = _pynetdicom_settings()
    with caplog.at_level(logging.INFO):
        (patient,) = find(dimse(pacs), "PATIENT", model="patient")
        report = get(dimse(pacs), tmp_path, study=small_study.study_instance_uid)
    assert pynetdicom_log.level == logging.NOTSET and _pynetdicom_settings() == settings
    assert "Phantom" in caplog.text  # pynetdicom logged its identifiers, as configured
    assert str(patient.PatientName) == "Phantom^Radbridge" and len(report.files) == 12


def test_the_command_keeps_patient_data_out_of_its_debug_log(pacs, small_study):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    peer = f"ORTHANC@127.0.0.1:{pacs.dicom_port}"
    run = subprocess.run(
        [sys.executable, "-m", "radbridge", "-vvv", "query", peer, "--level", "patient"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "DEBUG" in run.stderr and "radbridge" in run.stderr  # it did log at DEBUG ...
    assert "Phantom" not in run.stderr + run.stdout  # ... but no patient name anywhere


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


def test_get_counts_instances_we_could_not_store(pacs, small_study, tmp_path):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    sent = sources_by_uid(small_study.dicom_dir)
    blocked_uid = sorted(sent)[0]
    study, series = small_study.study_instance_uid, small_study.series_instance_uid
    out = tmp_path / "out"
    # a non-empty folder where one file must go: the rename fails, our SCP role answers 0xA700
    (out / study / series / f"{blocked_uid}.dcm" / "x").mkdir(parents=True)
    report = get(dimse(pacs), out, study=study)
    assert report.failed == 1 and len(report.files) == len(sent) - 1
    assert blocked_uid not in {p.stem for p in report.files}
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporaries left
    peer = f"ORTHANC@127.0.0.1:{pacs.dicom_port}"
    args = ["retrieve", peer, "--study", study, "--method", "get", "-o", str(out)]
    assert main(args) == 1


def test_compressed_instances_come_back_as_sent(pacs, tmp_path):
    folder = interop_dir() / "seg" / "pydicom_recoded"
    sources = [folder / "liver_j2k.dcm", folder / "liver_rle.dcm"]  # JPEG 2000 lossless, RLE
    assert send(sources, dimse(pacs)).ok
    sent = {str(pydicom.dcmread(p).SOPInstanceUID): p for p in sources}
    # Orthanc (DCMTK) re-encodes what it stores (e.g. sequence lengths), so the bytes to
    # expect back are its stored files'
    stored = {}
    for uid in sent:
        (match,) = [m for m in pacs.lookup(uid) if m["Type"] == "Instance"]
        stored[uid] = tmp_path / "orthanc" / f"{uid}.dcm"
        stored[uid].parent.mkdir(exist_ok=True)
        stored[uid].write_bytes(pacs.instance_bytes(match["ID"]))
    study = str(pydicom.dcmread(sources[0]).StudyInstanceUID)
    get(dimse(pacs), tmp_path / "get", study=study)
    move(dimse(pacs), tmp_path / "move", study=study, port=pacs.move_port)
    wado(web(pacs), tmp_path / "wado", study=study)
    for method in ("get", "move", "wado"):
        tree = received_tree(tmp_path / method)
        assert tree.keys() == sent.keys(), method
        for uid, path in sent.items():
            assert dataset_bytes(tree[uid]) == dataset_bytes(stored[uid]), (method, path.name)
            got = pydicom.dcmread(tree[uid])
            assert got == pydicom.dcmread(path)
            assert (
                got.file_meta.TransferSyntaxUID == pydicom.dcmread(path).file_meta.TransferSyntaxUID
            )


# Busy for 3 s in Orthanc's own C-FIND handler: a real slow peer, on demand
_SLOW_FIND = """
function IncomingFindRequestFilter(query, origin)
  local started = os.time()
  while os.time() - started < 3 do end
  return query
end
"""


def test_a_slow_find_times_out(orthanc_factory, tmp_path):
    script = tmp_path / "slow.lua"
    script.write_text(_SLOW_FIND)
    pacs = orthanc_factory(
        modalities={"rb": ("RADBRIDGE", "127.0.0.1", free_port())},
        extra={"LuaScripts": [str(script)]},
    )
    slow = Peer("ORTHANC", "127.0.0.1", pacs.dicom_port, timeout_s=1.0)
    # the association opens; the C-FIND answer comes too late: a timeout, not an abort
    with pytest.raises(PeerTimeoutError, match="no C-FIND response within 1 s") as err:
        find(slow, "STUDY")
    assert "timeout_s" in str(err.value)


@contextlib.contextmanager
def frozen(process):
    """Stop a peer process (SIGSTOP): it keeps its sockets and answers nothing."""
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


def test_a_frozen_peer_times_out(pacs, small_study, tmp_path):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    study = small_study.study_instance_uid
    hung = Peer(
        "ORTHANC", "127.0.0.1", pacs.dicom_port, dicomweb_url=pacs.dicomweb_url, timeout_s=1.0
    )
    with frozen(pacs.proc):
        with pytest.raises(PeerTimeoutError, match="within 1 s"):
            find(hung, "STUDY")
        with pytest.raises(PeerTimeoutError, match="within 1 s"):
            get(hung, tmp_path / "get", study=study)
        with pytest.raises(PeerTimeoutError, match="within 1 s"):
            qido(hung, "STUDY")
        with pytest.raises(PeerTimeoutError, match="within 1 s"):
            wado(hung, tmp_path / "wado", study=study)
    assert not list(tmp_path.rglob("*.dcm"))
    assert [str(s.StudyInstanceUID) for s in find(hung, "STUDY")] == [study]  # thawed


def test_query_and_retrieve_cli_options(pacs, small_study, tmp_path, capsys):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    other = write_phantom(tmp_path / "other", slices=2, size=16, seed=11, nifti=False)
    assert send([other.dicom_dir], dimse(pacs)).ok
    study, series = small_study.study_instance_uid, small_study.series_instance_uid
    sent = sources_by_uid(small_study.dicom_dir)
    config = tmp_path / "peers.toml"
    config.write_text(
        f'[peers.pacs]\nae_title = "ORTHANC"\nhost = "127.0.0.1"\nport = {pacs.dicom_port}\n'
        f'dicomweb_url = "{pacs.dicomweb_url}"\n'
    )
    capsys.readouterr()
    for web_flag in ([], ["--web"]):
        # --study narrows a study-level search (both ways), and --series an image-level one
        args = ["query", "pacs", "--config", str(config), *web_flag, "--study", study]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert study in out and other.study_instance_uid not in out and "1 matches" in out
        args = ["query", "pacs", "--config", str(config), *web_flag, "--level", "image"]
        assert main([*args, "--study", study, "--series", series, "--json"]) == 0
        found = json.loads(capsys.readouterr().out)
        assert {item["00080018"]["Value"][0] for item in found} == set(sent)
    out_dir = tmp_path / "web"
    args = ["retrieve", "pacs", "--config", str(config), "--study", study, "--web", "--json"]
    assert main([*args, "-o", str(out_dir)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "wado" and report["failed"] == 0
    assert sorted(report["files"]) == sorted(str(p) for p in received_tree(out_dir).values())
    assert len(report["files"]) == len(sent)
    assert main([*args, "--method", "get", "-o", str(tmp_path / "x")]) == 2  # contradictory
    assert "--web retrieves by WADO-RS" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    move_dir = tmp_path / "move"
    args = ["retrieve", "pacs", "--config", str(config), "--study", study, "--series", series]
    assert (
        main([*args, "--method", "move", "--port", str(pacs.move_port), "-o", str(move_dir)]) == 0
    )
    assert "retrieved 12 instances" in capsys.readouterr().out
    moved = received_tree(move_dir)
    assert moved.keys() == sent.keys()
    assert all(dataset_bytes(moved[uid]) == dataset_bytes(path) for uid, path in sent.items())


def test_get_brings_sop_classes_beyond_the_common_ones(pacs, tmp_path):
    """A study with a Legacy Converted Enhanced CT and a VL Whole Slide Microscopy image.

    Neither class is among the common ones proposed for the SCP role; Orthanc then
    failed the whole C-GET (0xC000) and radbridge wrote nothing. The study's classes
    are now learned by C-FIND first and proposed.
    """
    folder = interop_dir() / "images"
    legacy = folder / "dcmqi_23x38x3" / "multiframe_legacy_enhanced.dcm"
    slide = folder / "highdicom" / "sm_image.dcm"
    pacs.upload_many([legacy, slide])
    for source in (legacy, slide):
        ds = pydicom.dcmread(source, stop_before_pixels=True)
        (match,) = [m for m in pacs.lookup(str(ds.SOPInstanceUID)) if m["Type"] == "Instance"]
        stored = tmp_path / "orthanc" / source.name
        stored.parent.mkdir(exist_ok=True)
        stored.write_bytes(pacs.instance_bytes(match["ID"]))
        report = get(dimse(pacs), tmp_path / "get", study=str(ds.StudyInstanceUID))
        assert report.failed == 0 and len(report.files) == 1, source.name
        assert dataset_bytes(report.files[0]) == dataset_bytes(stored), source.name


def test_find_by_a_name_outside_the_default_repertoire(pacs):
    """Keys were encoded in the default repertoire: each Greek letter became "?", the
    single-character wildcard, so the query matched every long enough name."""
    import io

    from pydicom.uid import generate_uid

    source = interop_dir() / "images" / "dcmqi_23x38x3" / "IMG0001.dcm"
    studies = {}
    for name in ("Διονυσιος^Γιαννης", "Anonymous^Patient"):
        ds = pydicom.dcmread(source)
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName, ds.PatientID = name, name[:4]
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        buffer = io.BytesIO()
        ds.save_as(buffer)
        pacs.upload(buffer.getvalue())
        studies[name] = str(ds.StudyInstanceUID)
    for key in ("Διονυσιος*", "Διονυσιος^Γιαννης"):
        found = find(dimse(pacs), "STUDY", keys={"PatientName": key})
        assert [str(m.StudyInstanceUID) for m in found] == [studies["Διονυσιος^Γιαννης"]], key


def test_a_search_the_peer_cut_short_says_so(orthanc_factory, small_study):
    """Orthanc ends a C-FIND matching more than LimitFindInstances with 0xFE00 (Cancel),
    which radbridge reported as a bare 'Cancel' status we never asked for."""
    pacs = orthanc_factory(
        modalities={"rb": ("RADBRIDGE", "127.0.0.1", 11113)},
        extra={"LimitFindInstances": 3, "LimitFindResults": 3},
    )
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    keys = {
        "StudyInstanceUID": small_study.study_instance_uid,
        "SeriesInstanceUID": small_study.series_instance_uid,
    }
    with pytest.raises(DimseStatusError) as caught:
        find(dimse(pacs), "IMAGE", keys=keys)
    assert caught.value.status == 0xFE00
    assert "not all the matches" in str(caught.value) and "LimitFindInstances" in str(caught.value)


def test_get_brings_implicit_vr_instances_as_stored(pacs, tmp_path):
    """Explicit and Implicit VR Little Endian shared one context, which Orthanc accepted
    with Explicit VR: every instance it stores in Implicit VR was transcoded on C-GET."""
    source = interop_dir() / "images" / "ct-3slice" / "01.dcm"  # Implicit VR Little Endian
    (uploaded,) = pacs.upload_many([source])
    stored = tmp_path / "orthanc.dcm"
    stored.write_bytes(pacs.instance_bytes(uploaded["ID"]))
    study = str(pydicom.dcmread(source, stop_before_pixels=True).StudyInstanceUID)
    (got,) = get(dimse(pacs), tmp_path / "get", study=study).files
    assert pydicom.dcmread(got).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert dataset_bytes(got) == dataset_bytes(stored)


WRITER = """
import os, signal, sys
from pathlib import Path
from radbridge.io.storage import StreamedFile

writing = StreamedFile(Path(sys.argv[1]))  # a retrieve writing an instance
writing.write(b"half an instance")
writing.flush()
print(writing.temporary, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write
sys.stdin.read()  # alive, its temporary file open (locked), until stdin closes
"""


def _writer(folder, mode: str):
    """A process writing into ``folder``, killed mid-write or alive; its temporary file."""
    source = str(Path(radbridge.__file__).parents[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": source},
    )
    path = Path(proc.stdout.readline().strip())
    old = time.time() - 120  # written two minutes ago
    os.utime(path, (old, old))
    return proc, path


@pytest.mark.parametrize("method", ["get", "wado"])
def test_a_retrieve_removes_the_partial_files_a_killed_one_left(
    pacs, small_study, tmp_path, method
):
    assert send([small_study.dicom_dir], dimse(pacs)).ok
    study, series = small_study.study_instance_uid, small_study.series_instance_uid
    out = tmp_path / "out"
    killed, stale = _writer(out / study / series, "kill")
    assert killed.wait(30) == -signal.SIGKILL and stale.exists()
    alive, live = _writer(out / study / series, "alive")
    try:
        if method == "get":
            report = get(dimse(pacs), out, study=study)
        else:
            report = wado(web(pacs), out, study=study)
        assert not stale.exists()  # the partial file of the killed retrieve
        assert live.exists()  # another retrieve, still writing into the same folder
        assert sorted(p.stem for p in report.files) == sorted(sources_by_uid(small_study.dicom_dir))
    finally:
        alive.stdin.close()
        alive.wait(30)
