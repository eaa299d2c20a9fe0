"""Gateway core without the network: assemble, queue, run, outbox, deliver, recover."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pydicom
import pytest

from radbridge.errors import GatewayError
from radbridge.gateway import Gateway
from radbridge.gateway.routing import Match, PriorityRule, Rule
from radbridge.gateway.runner import run_job
from radbridge.gateway.store import JobState
from radbridge.io.phantom import generate_phantom
from radbridge.iods.seg import read_segmentation
from radbridge.iods.source import SourceSeries
from radbridge.models import SeriesInfo, run_model
from radbridge.models.reference_ct import ReferenceCTModel

from .conftest import files_of, query, receive, receive_open, run_until_idle


def run_once_through(config, study):
    """A gateway receives ``study``, does all it can, and closes (the CLI then looks)."""
    gateway = Gateway(config)
    try:
        receive(gateway, files_of(study))
        run_until_idle(gateway)
    finally:
        gateway.close()


def jobs(gateway):
    return [dict(r) for r in query(gateway, "SELECT * FROM jobs ORDER BY id")]


def by_modality_all(folder):
    """Map Modality -> every result file under ``folder``."""
    found: dict[str, list] = {}
    for path in folder.rglob("*.dcm"):
        modality = str(pydicom.dcmread(path, stop_before_pixels=True).Modality)
        found.setdefault(modality, []).append(path)
    return found


def by_modality(folder):
    """Map Modality -> file for the (one per modality) results under ``folder``."""
    found = by_modality_all(folder)
    assert all(len(paths) == 1 for paths in found.values()), found
    return {modality: paths[0] for modality, paths in found.items()}


def test_series_to_seg_in_the_archive(gateway, phantom_study):
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    (job,) = jobs(gateway)
    assert job["state"] == JobState.DONE and job["attempts"] == 1
    archived = by_modality(gateway.config.archive_dir)
    assert set(archived) == {"SEG", "SR", "KO"}
    seg = read_segmentation(archived["SEG"])
    assert seg.dataset.StudyInstanceUID == phantom_study.study_instance_uid
    # The SEG holds what the model found on the received series.
    ph = generate_phantom(slices=24, size=96, seed=1)
    expected = run_model(ReferenceCTModel(), ph.hu, SeriesInfo(modality="CT")).labels.array
    datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in files_of(phantom_study)]
    labels = seg.label_volume(SourceSeries.from_datasets(datasets)).array
    np.testing.assert_array_equal(labels, expected)
    events = [
        json.loads(line)["event"] for line in gateway.config.audit_log.read_text().splitlines()
    ]
    assert events.count("received") == 24 and "delivered" in events
    assert "RB-PHANTOM" not in gateway.config.audit_log.read_text()  # no patient data


def _damage_first(files, tmp_path, frames):
    """Copies of ``files``, the first with Slice Thickness 'abc' (and Number of Frames 'x')."""
    out = []
    for index, path in enumerate(files):
        data = path.read_bytes()
        if index == 0:
            at = data.index(b"\x18\x00\x50\x00DS")  # (0018,0050) Slice Thickness
            size = int.from_bytes(data[at + 6 : at + 8], "little")
            data = data[: at + 8] + b"abc".ljust(size, b" ") + data[at + 8 + size :]
            if frames:
                at = data.index(b"\x28\x00\x10\x00US")  # (0028,0010) Rows: insert before
                data = data[:at] + b"\x28\x00\x08\x00IS\x02\x00x " + data[at:]
        out.append(tmp_path / path.name)
        out[-1].write_bytes(data)
    assert pydicom.dcmread(out[0], stop_before_pixels=True)["SliceThickness"].value == "abc"
    return out


@pytest.mark.parametrize("frames", [False, True])
def test_a_damaged_header_value_never_stops_the_assembler(gateway, phantom_study, tmp_path, frames):
    """Routing takes damaged Slice Thickness / Number of Frames as unknown (the assembler
    raised ValueError on them at every step); the job then runs, or is dead-lettered
    naming the attribute the image reader needs."""
    receive(gateway, _damage_first(files_of(phantom_study), tmp_path, frames))
    run_until_idle(gateway)
    (job,) = jobs(gateway)
    if not frames:
        assert job["state"] == JobState.DONE, job["error"]
        assert set(by_modality(gateway.config.archive_dir)) == {"SEG", "SR", "KO"}
    else:  # the pixel reader needs Number of Frames: refused by name, not retried
        assert job["state"] == JobState.DEAD and "NumberOfFrames is not an integer" in job["error"]


def test_an_interrupted_job_reruns_to_identical_objects(config, phantom_study):
    first = Gateway(config)
    receive(first, files_of(phantom_study))
    first.assemble_once()
    job = first.store.claim_job()
    run_job(job, first.store, config)
    outbox = next(config.outbox_dir.rglob("seg.dcm"))
    written = outbox.read_bytes()
    first.close()  # "crashed" after writing the outbox, before recording it
    again = Gateway(config)  # recovers the running job: queued again
    try:
        run_until_idle(again)
        (done,) = jobs(again)
        assert done["state"] == JobState.DONE and done["attempts"] == 2
        assert outbox.read_bytes() == written  # same inputs, same UIDs, same bytes
        assert by_modality(config.archive_dir)["SEG"].read_bytes() == written
    finally:
        again.close()


def test_results_are_dated_when_their_job_was_queued(gateway, phantom_study):
    """A PACS lists and ages results by their dates: the day they were made, not a fixed one."""
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    (job,) = jobs(gateway)
    queued = datetime.datetime.fromtimestamp(int(job["created_at"]))
    date, time_ = queued.strftime("%Y%m%d"), queued.strftime("%H%M%S")
    results = by_modality(gateway.config.archive_dir)
    assert set(results) == {"SEG", "SR", "KO"}
    for modality, path in results.items():
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert (ds.SeriesDate, ds.SeriesTime) == (date, time_), modality
        assert (ds.ContentDate, ds.InstanceCreationDate) == (date, date), modality


def test_retry_of_a_done_job_needs_force_and_makes_a_new_version(gateway, phantom_study):
    receive(gateway, files_of(phantom_study))
    run_until_idle(gateway)
    (done,) = jobs(gateway)
    with pytest.raises(GatewayError, match="--force"):
        gateway.store.retry_job(done["id"])
    forced = gateway.store.retry_job(done["id"], force=True)
    assert (forced.id, forced.version, forced.state) == (2, 2, JobState.QUEUED)
    run_until_idle(gateway)
    first, second = (pydicom.dcmread(p) for p in sorted(gateway.config.outbox_dir.rglob("seg.dcm")))
    assert first.SOPInstanceUID != second.SOPInstanceUID  # a new version: new UIDs
    assert len(by_modality_all(gateway.config.archive_dir)["SEG"]) == 2  # the first is kept
    inputs = [gateway.store.version_inputs(phantom_study.series_instance_uid, v) for v in (1, 2)]
    assert inputs[0] == inputs[1]  # the same frozen inputs


def test_late_arrivals_make_a_new_version_with_new_uids(gateway, phantom_study):
    files = files_of(phantom_study)
    receive(gateway, files[:-4], "a1")
    run_until_idle(gateway)
    receive(gateway, files[-4:], "a2")
    run_until_idle(gateway)
    first, second = jobs(gateway)
    assert (first["version"], second["version"]) == (1, 2)
    assert second["instance_count"] == 24
    segs = [pydicom.dcmread(p) for p in sorted(gateway.config.outbox_dir.rglob("seg.dcm"))]
    assert segs[0].SOPInstanceUID != segs[1].SOPInstanceUID
    assert int(segs[1].NumberOfFrames) >= int(segs[0].NumberOfFrames)


def test_open_association_holds_the_series(gateway, phantom_study):
    files = files_of(phantom_study)
    gateway.transfer_opened("slow")
    receive(gateway, files[:5], "other")
    receive_open(gateway, files[5:6], "slow")
    assert gateway.assemble_once() == 0
    gateway.transfer_ended("slow", "released")
    assert gateway.assemble_once() == 1


def test_poison_series_is_dead_lettered_and_others_still_run(gateway, phantom_study, tmp_path):
    bad = []
    for index, path in enumerate(files_of(phantom_study)[:6]):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "2.25.4242"
        ds.SOPInstanceUID = f"2.25.4242{index}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if index == 3:
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # mixed orientations
        ds.save_as(tmp_path / f"bad{index}.dcm")
        bad.append(tmp_path / f"bad{index}.dcm")
    receive(gateway, bad, "poison")
    receive(gateway, files_of(phantom_study), "good")
    run_until_idle(gateway)
    states = {
        j["series_instance_uid"]: (j["state"], j["attempts"], j["error"]) for j in jobs(gateway)
    }
    state, attempts, error = states["2.25.4242"]
    assert (state, attempts) == (JobState.DEAD, 1)  # permanent: no pointless retries
    assert "orientation" in error
    assert states[phantom_study.series_instance_uid][0] == JobState.DONE


def test_failing_model_backs_off_then_dies(config, phantom_study, tmp_path, monkeypatch):
    (tmp_path / "flaky.py").write_text(
        "def model(volume, series):\n    raise RuntimeError('GPU lost')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = Rule("flaky", model="flaky:model", match=Match(modality=("CT",)))
    gateway = Gateway(replace(config, rules=(rule,), max_attempts=3, retry_base_s=0.05))
    try:
        receive(gateway, files_of(phantom_study))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            gateway.step()
            if jobs(gateway) and jobs(gateway)[0]["state"] == JobState.DEAD:
                break
            time.sleep(0.02)
        (job,) = jobs(gateway)
        assert job["state"] == JobState.DEAD and job["attempts"] == 3
        assert "GPU lost" in job["error"]
        retried = gateway.store.retry_job(job["id"])
        assert (retried.state, retried.attempts) == (JobState.QUEUED, 0)
    finally:
        gateway.close()


def test_urgent_studies_run_first(config, phantom_study, tmp_path):
    routine_rule = Rule("ct", model="reference-ct", match=Match(modality=("CT",)))
    gateway = Gateway(
        replace(
            config,
            rules=(routine_rule,),
            priorities=(PriorityRule(priority=100, study_description="STROKE"),),
        )
    )
    try:
        urgent = []
        for index, path in enumerate(files_of(phantom_study)):
            ds = pydicom.dcmread(path)
            ds.StudyDescription = "CT HEAD STROKE PROTOCOL"
            ds.StudyInstanceUID = "2.25.777"
            ds.SeriesInstanceUID = "2.25.7771"
            ds.SOPInstanceUID = f"2.25.7772{index}"
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.save_as(tmp_path / f"u{index}.dcm")
            urgent.append(tmp_path / f"u{index}.dcm")
        receive(gateway, files_of(phantom_study), "routine")  # arrives first
        receive(gateway, urgent, "urgent")
        gateway.assemble_once()
        gateway.run_once()
        first_run = query(gateway, "SELECT series_instance_uid FROM jobs WHERE attempts = 1")
        assert [r[0] for r in first_run] == ["2.25.7771"]
    finally:
        gateway.close()


def test_non_matching_series_makes_no_job(config, phantom_study, tmp_path):
    mr_only = Rule("mr", model="reference-ct", match=Match(modality=("MR",)))
    gateway = Gateway(replace(config, rules=(mr_only,)))
    try:
        receive(gateway, files_of(phantom_study))
        assert gateway.assemble_once() == 1
        assert jobs(gateway) == []
    finally:
        gateway.close()


CRASHING_RUNNER = """
import os, sys, time
from dataclasses import replace
from pathlib import Path
from radbridge.gateway import Gateway, GatewayConfig
import radbridge.gateway.runner as runner
config = replace(GatewayConfig.default(sys.argv[1]), quiet_period_s=0.0, retry_base_s=0.01)
if sys.argv[2] == "hang":  # crash window: the SEG is in the outbox, nothing delivered yet
    real = runner.write_bytes_durably
    def slow_write(data, path, **options):
        real(data, path, **options)
        print("ENCODED", flush=True)
        time.sleep(600)
    runner.write_bytes_durably = slow_write
gateway = Gateway(config)
while True:
    if not gateway.step():
        break
print("IDLE", flush=True)
"""


@pytest.mark.slow
def test_kill_9_while_running_resumes_with_the_same_uids(config, phantom_study, tmp_path):
    setup = Gateway(config)
    receive(setup, files_of(phantom_study))
    setup.close()
    script = tmp_path / "runner.py"
    script.write_text(CRASHING_RUNNER)
    process = subprocess.Popen(
        [sys.executable, str(script), str(config.data_dir), "hang"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "ENCODED"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    crashed_seg = next(config.outbox_dir.rglob("seg.dcm")).read_bytes()
    done = subprocess.run(
        [sys.executable, str(script), str(config.data_dir), "run"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "IDLE" in done.stdout
    gateway = Gateway(config)
    try:
        (job,) = jobs(gateway)
        assert job["state"] == JobState.DONE and job["attempts"] == 2
        archived = by_modality(config.archive_dir)
        assert set(archived) == {"SEG", "SR", "KO"}
        assert archived["SEG"].read_bytes() == crashed_seg  # same UIDs and bytes after the crash
        assert not list(config.outbox_dir.rglob("*.tmp"))
    finally:
        gateway.close()


def test_status_and_retry_commands(config, phantom_study, capsys, tmp_path, monkeypatch):
    from radbridge.cli import main

    (tmp_path / "flaky2.py").write_text("def model(v, s):\n    raise RuntimeError('no GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rule = Rule("flaky", model="flaky2:model", match=Match(modality=("CT",)))
    run_once_through(replace(config, rules=(rule,), max_attempts=1), phantom_study)
    toml = tmp_path / "gateway.toml"
    toml.write_text(
        f'[gateway]\ndata_dir = "{config.data_dir}"\n'
        '[[rules]]\nname = "flaky"\nmodel = "flaky2:model"\n[rules.match]\nmodality = ["CT"]\n'
    )
    assert main(["gateway", "status", "--config", str(toml), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queue"] == {"dead": 1}
    assert report["received"] == {"series": 1, "instances": 24}
    assert "no GPU" in report["failures"][0]["error"]
    assert "RB-PHANTOM" not in json.dumps(report)
    job_id = report["failures"][0]["id"]
    assert main(["gateway", "retry", str(job_id), "--config", str(toml)]) == 0
    assert main(["gateway", "status", "--config", str(toml), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n", 1)[1])["queue"] == {"queued": 1}


def test_a_database_of_an_older_gateway_is_refused_with_a_hint(tmp_path):
    import sqlite3

    from radbridge.gateway.store import Store

    old = tmp_path / "gateway.sqlite"
    with sqlite3.connect(old) as db:  # the tables of schema 1, no user_version: too old to upgrade
        db.execute("CREATE TABLE instances (sop_instance_uid TEXT PRIMARY KEY)")
    with pytest.raises(GatewayError, match="schema 0, this radbridge needs 8") as err:
        Store(old)
    assert "new data_dir" in str(err.value)


def test_retry_command_refuses_a_done_job_without_force(config, phantom_study, capsys, tmp_path):
    from radbridge.cli import main

    run_once_through(config, phantom_study)
    toml = tmp_path / "gateway.toml"
    toml.write_text(f'[gateway]\ndata_dir = "{config.data_dir}"\n')
    assert main(["gateway", "retry", "1", "--config", str(toml)]) == 1
    assert "job 1 is done" in capsys.readouterr().err
    assert main(["gateway", "retry", "1", "--force", "--config", str(toml)]) == 0
    assert "version 2" in capsys.readouterr().out
