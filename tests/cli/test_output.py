"""What the commands print: --json beside the text, --quiet, --log-file, -v, progress bars,
one clear line for a missing folder or a peer that is down, text that says what the JSON says.
"""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from radbridge.cli import main
from radbridge.cli.output import configure, reset
from tests.peers import free_port

HU = {"value": "[hnsf'U]", "scheme": "UCUM", "meaning": "Hounsfield unit"}
ATTENUATION = {"value": "112031", "scheme": "DCM", "meaning": "Attenuation Coefficient"}


def _json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("phantom")
    assert main(["-q", "phantom", str(out), "--slices", "8", "--size", "48"]) == 0
    return out


def test_encode_commands_print_json_that_matches_the_file(study, tmp_path, capsys):
    seg = tmp_path / "truth.seg.dcm"
    report = _json(
        ["seg", "encode", "--source", study / "dicom", "--mask", study / "labels.npy",
         "--labels", study / "labels.json", "--type", "labelmap", "-o", seg, "--json"], capsys
    )  # fmt: skip
    ds = pydicom.dcmread(seg)
    assert report["output"] == str(seg) and report["modality"] == "SEG"
    assert report["sop_instance_uid"] == ds.SOPInstanceUID
    assert report["segment_count"] == len(ds.SegmentSequence)
    assert report["frame_count"] == ds.NumberOfFrames
    decoded = _json(["seg", "decode", seg, "-o", tmp_path / "back.npy", "--json"], capsys)
    assert decoded["shape"] == list(np.load(tmp_path / "back.npy").shape)
    assert decoded["segments"] == [s.SegmentNumber for s in ds.SegmentSequence]
    rs = _json(
        ["convert", seg, "--to", "rtstruct", "--source", study / "dicom", "-o",
         tmp_path / "rs.dcm", "--json"], capsys
    )  # fmt: skip
    assert rs["sop_instance_uid"] == pydicom.dcmread(tmp_path / "rs.dcm").SOPInstanceUID
    rendered = _json(
        ["render", seg, "--source", study / "dicom", "-o", tmp_path / "png", "--sc", "--json"],
        capsys,
    )
    assert Path(rendered["montage"]).is_file()
    overlay = pydicom.dcmread(rendered["overlay"]["output"])
    assert rendered["overlay"]["frame_count"] == overlay.NumberOfFrames


def test_phantom_json_and_quiet(tmp_path, capsys):
    report = _json(["phantom", tmp_path / "a", "--slices", "3", "--size", "16", "--json"], capsys)
    assert report["slices"] == 3 and Path(report["dicom_dir"]).is_dir()
    assert report["labels_nifti"] == str(tmp_path / "a" / "labels.nii.gz")
    assert report["skipped"] == []
    assert main(["-q", "phantom", str(tmp_path / "b"), "--slices", "3", "--size", "16"]) == 0
    assert capsys.readouterr() == ("", "")


def test_phantom_without_nibabel_says_what_it_skipped(tmp_path):
    code = (
        "import sys; sys.modules['nibabel'] = None\n"  # as if the nifti extra were missing
        "from radbridge.cli import main\n"
        f"sys.exit(main(['phantom', {str(tmp_path)!r}, '--slices', '3', '--size', '16']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "labels.nii.gz").exists()
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("skipped:")]
    assert "labels.nii.gz" in line and "radbridge[nifti]" in line


def test_sr_decode_text_shows_derivations_and_modifiers(study, tmp_path, capsys):
    def value(number: float, derivation: str, code: str) -> dict:
        return {"concept": ATTENUATION, "value": number, "unit": HU,
                "derivation": {"value": code, "scheme": "DCM", "meaning": derivation}}  # fmt: skip

    report = {"groups": [{
        "tracking_id": "liver",
        "finding_site": {"value": "10200004", "scheme": "SCT", "meaning": "Liver"},
        "measurements": [value(61.0, "Mean", "R-00317"), value(12.5, "Standard Deviation",
                                                                  "R-10047")],
    }]}  # fmt: skip
    (tmp_path / "report.json").write_text(json.dumps(report))
    written = _json(
        ["sr", "encode", tmp_path / "report.json", "--source", study / "dicom", "-o",
         tmp_path / "sr.dcm", "--json"], capsys
    )  # fmt: skip
    assert written["group_count"] == 1
    assert main(["sr", "decode", str(tmp_path / "sr.dcm")]) == 0
    text = capsys.readouterr().out
    assert "Attenuation Coefficient (Mean) = 61 [hnsf'U]" in text
    assert "Attenuation Coefficient (Standard Deviation) = 12.5 [hnsf'U]" in text
    assert "site Liver" in text


def test_send_to_a_missing_folder_says_no_such_file(tmp_path, capsys):
    assert main(["send", str(tmp_path / "nowhere"), "--to", "X@127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no such file" in err and "nowhere" in err


def test_a_peer_that_is_down_is_one_line(study, capsys):
    port = free_port()  # nothing listens there
    argv = ["send", str(study / "dicom"), "--to", f"DOWN@127.0.0.1:{port}", "--retries", "0"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert line.startswith("error: 8 instances not stored") and "cannot open an association" in line
    assert "sent 0 of 8 instances" in out


@pytest.mark.parametrize("command", [["query"], ["echo", "--to"], ["retrieve", "--study", "1.2.3"]])
def test_a_query_to_a_peer_that_is_down_is_one_line(command, tmp_path, capsys):
    peer = f"DOWN@127.0.0.1:{free_port()}"
    argv = [*command, peer] if command[0] != "retrieve" else ["retrieve", peer, *command[1:]]
    assert main([*argv, *(["-o", str(tmp_path)] if command[0] == "retrieve" else [])]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()  # pynetdicom's own lines: -v
    assert line.startswith("error: ") and "cannot open an association" in line


@pytest.mark.parametrize(
    ("level", "flag"), [("study", "--series"), ("patient", "--series"), ("patient", "--study")]
)
@pytest.mark.parametrize("web", [[], ["--web"]])
def test_a_search_limited_below_its_level_is_a_usage_error(level, flag, web, tmp_path, capsys):
    """--series at study level was ignored (QIDO) or sent as a key below the level (C-FIND)."""
    config = tmp_path / "peers.toml"  # nothing listens: the command must stop before connecting
    config.write_text(
        f'[peers.pacs]\nae_title = "PACS"\nhost = "127.0.0.1"\nport = {free_port()}\n'
        f'dicomweb_url = "http://127.0.0.1:{free_port()}/dicom-web"\n'
    )
    argv = ["query", "pacs", "--config", str(config), *web, "--level", level, flag, "1.2.3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert flag in err and f"{level}-level search cannot be limited" in err


def test_echo_json_against_storescp(storescp, capsys):
    report = _json(["echo", "--to", f"{storescp.aet}@127.0.0.1:{storescp.port}", "--json"], capsys)
    assert report["ok"] is True and report["milliseconds"] > 0


def test_verbose_raises_only_radbridge_loggers(tmp_path):
    other = logging.getLogger("urllib3.connectionpool")
    try:
        configure(quiet=False, verbose=1, log_file=None)
        assert logging.getLogger("radbridge.net.scu").isEnabledFor(logging.INFO)
        assert not logging.getLogger("radbridge.net.scu").isEnabledFor(logging.DEBUG)
        assert not other.isEnabledFor(logging.INFO)
        configure(quiet=False, verbose=2, log_file=None)
        assert logging.getLogger("radbridge").isEnabledFor(logging.DEBUG)
        assert not other.isEnabledFor(logging.INFO)
        configure(quiet=False, verbose=3, log_file=None)
        assert other.isEnabledFor(logging.DEBUG)
        configure(quiet=True, verbose=0, log_file=None)
        assert not logging.getLogger("radbridge").isEnabledFor(logging.WARNING)
    finally:
        reset()
    assert not logging.getLogger("radbridge").isEnabledFor(logging.INFO)
    # pynetdicom's INFO/DEBUG lines carry query identifiers: quiet even with -vvv
    assert main(["-vvv", "phantom", str(tmp_path), "--slices", "2", "--size", "16"]) == 0
    assert not logging.getLogger("pynetdicom.assoc").isEnabledFor(logging.INFO)


def test_log_file_takes_the_log(study, tmp_path, capsys):
    log = tmp_path / "logs" / "radbridge.log"
    argv = ["-v", "--log-file", str(log), "send", str(study / "dicom"), "--to",
            f"DOWN@127.0.0.1:{free_port()}", "--retries", "1"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "retrying" not in err  # the log went to the file, the error line to stderr
    text = log.read_text()
    assert re.search(r"INFO radbridge\.net\.[a-z.]*scu: sent 0/8 instances", text)
    assert re.search(r"WARNING radbridge\.net\.[a-z.]*scu: 8 instances not stored", text)
    root = logging.getLogger().handlers  # main() removed its handler again
    assert all(getattr(h, "baseFilename", None) != str(log) for h in root)


def test_pydicom_invalid_value_lines_do_not_quote_the_value(study, tmp_path):
    # a malformed Instance Number holding a name: pydicom logs and warns with the value
    folder = tmp_path / "malformed"
    folder.mkdir()
    ds = pydicom.dcmread(sorted((study / "dicom").glob("*.dcm"))[0])
    ds.add_new("InstanceNumber", "IS", None)
    ds["InstanceNumber"]._value = "DOE^JOHN7F3A"
    ds.save_as(folder / "x.dcm")
    log = tmp_path / "radbridge.log"
    done = subprocess.run(
        [sys.executable, "-m", "radbridge", "--log-file", str(log), "info", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    text = log.read_text()
    assert "Invalid value for VR IS: <value not logged>" in text  # still says what is wrong
    assert "7F3A" not in text + done.stderr


def test_main_puts_the_warning_filters_back(study):
    """The command hides pydicom's value-quoting warnings while it runs, and only then."""
    import warnings

    def hiding() -> list[object]:
        return [f for f in warnings.filters if f[1] is not None and "VR" in f[1].pattern]

    before = list(warnings.filters)
    assert main(["info", str(study / "dicom")]) == 0
    assert warnings.filters == before and hiding() == []


def _run_on_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run radbridge with stderr on a pseudo-terminal; return (exit code, what it drew)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "radbridge", *argv],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(follower)
    drawn = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(leader)
    return proc.wait(timeout=60), drawn.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal_only(tmp_path):
    argv = ["phantom", "out", "--slices", "40", "--size", "64"]
    code, drawn = _run_on_terminal(argv, tmp_path)
    assert code == 0
    assert "phantom" in drawn and "80/80" in drawn  # generate + write, one step per slice
    piped = subprocess.run(
        [sys.executable, "-m", "radbridge", *argv], cwd=tmp_path, capture_output=True, text=True
    )
    assert piped.returncode == 0 and piped.stderr == ""
    quiet_code, quiet = _run_on_terminal(["-q", *argv], tmp_path)
    assert quiet_code == 0 and quiet == ""
    encode = ["seg", "encode", "--source", "out/dicom", "--mask", "out/labels.npy", "--labels",
              "out/labels.json", "-o", "out/s.dcm"]  # fmt: skip
    code, drawn = _run_on_terminal(encode, tmp_path)
    assert code == 0 and "seg encode" in drawn and "3/3" in drawn


def test_piped_runs_do_not_import_rich(tmp_path):
    code = (
        "import sys\n"
        "from radbridge.cli import main\n"
        f"assert main(['phantom', {str(tmp_path)!r}, '--slices', '3', '--size', '16']) == 0\n"
        "print('rich' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_wsi_commands_print_json(tmp_path, capsys):
    written = _json(
        ["wsi", "phantom", tmp_path / "slide", "--rows", "300", "--columns", "400",
         "--tile", "128", "--levels", "2", "--blank", "--json"], capsys
    )  # fmt: skip
    assert len(written["files"]) == 2 and all(Path(f).is_file() for f in written["files"])
    described = _json(["wsi", "info", tmp_path / "slide", "--json"], capsys)
    assert [level["shape"] for level in described["levels"]] == [[300, 400], [150, 200]]
    np.save(tmp_path / "mask.npy", np.eye(150, 200, dtype=np.uint8))
    (tmp_path / "labels.json").write_text(json.dumps({"1": "tumor"}))
    seg = _json(
        ["wsi", "seg", "encode", "--source", tmp_path / "slide", "--level", "1", "--mask",
         tmp_path / "mask.npy", "--labels", tmp_path / "labels.json", "-o", tmp_path / "s.dcm",
         "--json"], capsys
    )  # fmt: skip
    assert seg["frame_count"] == pydicom.dcmread(tmp_path / "s.dcm").NumberOfFrames == 4
    back = _json(["wsi", "seg", "decode", tmp_path / "s.dcm", "-o", tmp_path / "b.npy", "--json"],
                 capsys)  # fmt: skip
    assert back["shape"] == [150, 200]
    assert np.array_equal(np.load(tmp_path / "b.npy"), np.eye(150, 200, dtype=np.uint8))
    point = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [20.0, 30.0]},
             "properties": {"group": "tumor"}}  # fmt: skip
    (tmp_path / "f.ndjson").write_text(json.dumps(point) + "\n" + json.dumps(point) + "\n")
    ann = _json(["ann", "encode", "--source", tmp_path / "slide", "--input", tmp_path / "f.ndjson",
                 "-o", tmp_path / "a.dcm", "--json"], capsys)  # fmt: skip
    assert ann["group_count"] == 1 and (tmp_path / "a.dcm").is_file()
    features = _json(["ann", "decode", tmp_path / "a.dcm", "-o", tmp_path / "a.ndjson", "--json"],
                     capsys)  # fmt: skip
    assert features["feature_count"] == 2
    assert len((tmp_path / "a.ndjson").read_text().splitlines()) == 2


def test_legacy_and_gsps_encode_print_json(study, tmp_path, capsys):
    legacy = _json(["legacy", "encode", "--source", study / "dicom", "-o", tmp_path / "legacy",
                    "--json"], capsys)  # fmt: skip
    (written,) = legacy["objects"]
    ds = pydicom.dcmread(written["output"])
    assert written["sop_instance_uid"] == ds.SOPInstanceUID and written["frame_count"] == 8
    seg = tmp_path / "s.dcm"
    assert main(["-q", "seg", "encode", "--source", str(study / "dicom"), "--mask",
                 str(study / "labels.npy"), "--labels", str(study / "labels.json"),
                 "-o", str(seg)]) == 0  # fmt: skip
    gsps = _json(["gsps", "encode", "--source", study / "dicom", "--seg", seg, "-o",
                  tmp_path / "ps.dcm", "--json"], capsys)  # fmt: skip
    ps = pydicom.dcmread(tmp_path / "ps.dcm")
    assert gsps["sop_instance_uid"] == ps.SOPInstanceUID
    assert gsps["segment_count"] == len(ps.GraphicLayerSequence)
