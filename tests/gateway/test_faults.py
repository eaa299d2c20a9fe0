"""The hospital engineer's faults, with real peers: never a result from a partial series.

A real `radbridge gateway run` receives a 60-slice CT from DCMTK `storescu` and sends
its results to a real Orthanc (the PACS). Three ways the transfer is cut after about 20
slices, all at once (one wait serves them all):

- the modality (storescu) is killed mid-series;
- the gateway's spool disk fills up (a small tmpfs of its own, in a private mount
  namespace; the database stays on the test's disk so the hold can be recorded);
- the gateway is killed (`kill -9`) mid-series and restarted.

None may deliver a result within `quiet_period_s` + 30 s; `gateway status` shows each
series held; sending the whole series again gives exactly one result set, built from
all 60 slices. Then a SOP Instance UID re-sent with other content: DCMTK `storescp +uf`
(which keeps every copy it receives) never holds two different files under one UID.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from radbridge.io.phantom import write_phantom
from tests.gateway.processes import (
    GatewayProcess,
    Storescu,
    audit_events,
    copies_by_uid,
    db_rows,
    gateway_status,
    jobs_done,
    wait_until,
    write_config,
)
from tests.peers import free_port

pytestmark = [pytest.mark.peer, pytest.mark.slow]

QUIET_S = 2.0
SLICES = 60
CUT_AFTER = 20
OUTPUTS = ("seg", "sr")


def private_tmpfs_prefix(mount_point: Path, size_kb: int) -> list[str]:
    """A command prefix that runs a program with its own tmpfs at ``mount_point``.

    `unshare -m` (root) or `unshare -rm` (an unprivileged user namespace) gives the
    gateway a private mount namespace, so the tmpfs is invisible to everything else on
    the machine and disappears with the process. The test reaches it through
    /proc/PID/root.
    """
    mount = f'mount -t tmpfs -o size={size_kb}k tmpfs "$0" && exec "$@"'
    for flags in (["-m"], ["-r", "-m"]):
        probe = subprocess.run(
            ["unshare", *flags, "sh", "-c", mount, str(mount_point), "true"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return ["unshare", *flags, "sh", "-c", mount, str(mount_point)]
    pytest.fail(
        "this machine allows no private mount namespace (unshare -m and unshare -rm were "
        f"refused: {probe.stderr.strip()}); the disk-full test needs one for its tmpfs"
    )


@dataclass
class Scenario:
    name: str
    folder: Path
    files: list[Path]
    port: int
    gateway: GatewayProcess

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def series_uid(self) -> str:
        return str(pydicom.dcmread(self.files[0], stop_before_pixels=True).SeriesInstanceUID)

    def status(self) -> dict:
        return gateway_status(self.gateway.config)


def _phantom(base: Path, seed: int) -> list[Path]:
    study = write_phantom(base / f"phantom{seed}", slices=SLICES, size=64, seed=seed)
    return sorted(study.dicom_dir.glob("*.dcm"))


def _start(tmp_path: Path, name: str, seed: int, pacs_port: int, *, extra="", spool_kb=0):
    folder = tmp_path / name
    (folder / "data" / "spool").mkdir(parents=True)
    prefix = private_tmpfs_prefix(folder / "data" / "spool", spool_kb) if spool_kb else ()
    port = free_port()
    config = write_config(
        folder,
        port=port,
        pacs_port=pacs_port,
        pacs_ae="ORTHANC",
        quiet=QUIET_S,
        outputs=OUTPUTS,
        destinations=("pacs",),
        extra=extra,
    )
    gateway = GatewayProcess(config, port, prefix=prefix)
    return Scenario(name, folder, _phantom(tmp_path, seed), port, gateway)


def _fill(data: Path, room_bytes: int) -> Path:
    """Leave ``room_bytes`` free on the file system of ``data``."""
    stats = os.statvfs(data)
    filler = data / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(stats.f_bavail * stats.f_frsize - room_bytes, 0))
    return filler


def test_a_series_cut_after_20_of_60_slices_never_yields_a_result(tmp_path, orthanc_factory):
    pacs = orthanc_factory()
    sent_to = pacs.dicom_port
    aborted = _start(tmp_path, "aborted", 11, sent_to)
    crashed = _start(tmp_path, "crashed", 12, sent_to)
    full = _start(tmp_path, "full", 13, sent_to, extra="min_free_disk_mb = 0", spool_kb=4096)
    spool = full.gateway.root / str(full.data / "spool").lstrip("/")  # its private tmpfs
    page = os.statvfs(spool).f_frsize
    per_slice = -(-aborted.files[0].stat().st_size // page) * page
    filler = _fill(spool, CUT_AFTER * per_slice + page)
    scenarios = (aborted, crashed, full)
    try:
        # 1. the modality dies after 20 acknowledged slices
        modality = Storescu(aborted.files, aborted.port, kill_after=CUT_AFTER)
        modality.wait(120)
        assert modality.acked == CUT_AFTER
        # 2. the gateway dies (kill -9) after 20 received slices, and comes back
        # (storescu is frozen after 20 acknowledgements, so the kill lands mid-series
        # however fast the receiver is)
        sending = Storescu(crashed.files, crashed.port, pause_after=CUT_AFTER)
        assert sending.paused.wait(120), "storescu never reached 20 acknowledgements"
        wait_until(lambda: len(audit_events(crashed.data, "received")) >= CUT_AFTER, 30)
        crashed.gateway.kill9()
        sending.resume()
        sending.wait(120)
        assert CUT_AFTER <= sending.acked < SLICES
        crashed.gateway = GatewayProcess(crashed.gateway.config, crashed.port)
        # 3. the disk fills up: storescu gets 0xA700 and stops
        filling = Storescu(full.files, full.port)
        assert filling.wait(120) != 0 and 5 <= filling.acked < SLICES
        assert "Refused: OutOfResources" in "".join(filling.output)  # 0xA700

        # no result for quiet_period_s + 30 s, and every series is shown held
        wait_until(lambda: all(s.status()["held_series"] for s in scenarios), 60, "series held")
        with pytest.raises(TimeoutError):
            wait_until(lambda: pacs.instances(), QUIET_S + 30, "a result at the PACS")
        for scenario in scenarios:
            (held,) = scenario.status()["held_series"]
            assert held["series_instance_uid"] == scenario.series_uid()
            assert held["instances"] < SLICES
            assert db_rows(scenario.data, "SELECT COUNT(*) FROM jobs") == [(0,)]
        reasons = {s.name: s.status()["held_series"][0]["reason"] for s in scenarios}
        assert reasons["crashed"] == "transfer interrupted by a restart"
        assert "refused" in reasons["full"]

        # the modality sends the whole series again: one result set, from 60 slices
        filler.unlink()
        for scenario in scenarios:
            again = Storescu(scenario.files, scenario.port)
            assert again.wait(120) == 0 and again.acked == SLICES
        for scenario in scenarios:
            wait_until(lambda s=scenario: jobs_done(s.data), 180, f"{scenario.name} done")
            (job,) = db_rows(scenario.data, "SELECT series_instance_uid, version FROM jobs")
            inputs = db_rows(
                scenario.data,
                "SELECT COUNT(*) FROM version_inputs WHERE series_instance_uid = ? AND version = ?",
                *job,
            )
            assert inputs == [(SLICES,)]
        results = wait_until(
            lambda: len(pacs.instances()) == len(OUTPUTS) * 3 and pacs.instances(), 60
        )
        for instance in results:
            ds = pydicom.dcmread(io.BytesIO(pacs.instance_bytes(instance)), stop_before_pixels=True)
            if ds.Modality == "SEG":
                refs = ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence
                assert len(refs) == SLICES
    finally:
        for scenario in scenarios:
            scenario.gateway.stop()


def test_same_uid_other_content_never_gives_two_contents_under_one_uid(tmp_path, storescp_factory):
    pacs = storescp_factory(aet="PACS", extra_args=("+uf",))
    folder = tmp_path / "gw"
    folder.mkdir()
    port = free_port()
    config = write_config(folder, port=port, pacs_port=pacs.port, quiet=1.0, outputs=OUTPUTS)
    files = _phantom(tmp_path, 21)[:24]
    gateway = GatewayProcess(config, port)
    data = folder / "data"
    try:
        assert Storescu(files, port).wait(120) == 0
        wait_until(lambda: jobs_done(data), what="version 1 done")
        # the modality corrects one image and sends the series again under the same UIDs
        changed = tmp_path / "changed"
        changed.mkdir()
        for path in files:
            shutil.copy(path, changed / path.name)
        ds = pydicom.dcmread(changed / files[5].name)
        ds.WindowCenter, ds.WindowWidth = 123, 456  # the phantom has 40/400
        ds.save_as(changed / files[5].name)
        gateway.kill9()  # and the gateway restarts meanwhile, for good measure
        gateway = GatewayProcess(config, port)
        assert Storescu(sorted(changed.iterdir()), port).wait(120) == 0
        wait_until(
            lambda: db_rows(data, "SELECT COUNT(*) FROM jobs WHERE state = 'done'") == [(2,)],
            what="version 2 done",
        )
        assert Storescu(files[:3], port).wait(120) == 0  # identical re-sends change nothing
        wait_until(lambda: len(pacs.received()) >= 2 * len(OUTPUTS), 60)
    finally:
        gateway.stop()
    copies = copies_by_uid(pacs.directory)
    assert len(copies) == 2 * len(OUTPUTS)  # two versions, new UIDs for the second
    assert all(len(contents) == 1 for contents in copies.values())  # one content per UID
    assert db_rows(data, "SELECT MAX(version) FROM jobs") == [(2,)]
    sop = str(pydicom.dcmread(files[5], stop_before_pixels=True).SOPInstanceUID)
    kept = db_rows(data, "SELECT path FROM instances WHERE sop_instance_uid = ?", sop)
    assert len(kept) == 2  # the first content is kept beside the second
    assert audit_events(data, "received")
