"""A spool file changed or removed between its acknowledgement and the job's run.

The job must run on the contents frozen for its version — the digests recorded when
the instances were received and acknowledged — or not at all: it is dead-lettered
with a reason that names the SOP instance and what to do, and once the sender sends
the series again (identical instances rewrite the same spool files) a retry runs it.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from radbridge.gateway import Gateway

from .conftest import query, receive


def _first_input(gateway):
    row = query(gateway, "SELECT sop_instance_uid, path FROM version_inputs ORDER BY rowid")[0]
    return row["sop_instance_uid"], Path(row["path"])


def _zero_pixels(path):
    """What a script 'fixing' spool files in place does: a valid file, other pixels."""
    ds = pydicom.dcmread(path)
    ds.PixelData = bytes(len(ds.PixelData))
    ds.save_as(path)


@pytest.mark.parametrize("damage", ["changed", "removed"])
def test_a_job_never_runs_on_a_spool_file_that_is_not_what_was_received(
    config, phantom_study, damage
):
    files = sorted(phantom_study.dicom_dir.glob("*.dcm"))
    gateway = Gateway(config)
    try:
        receive(gateway, files)
        assert gateway.assemble_once() == 1
        sop, path = _first_input(gateway)
        _zero_pixels(path) if damage == "changed" else path.unlink()
        gateway.step()
        (job,) = query(gateway, "SELECT id, state, error FROM jobs")
        assert job["state"] == "dead"
        assert sop in job["error"]
        assert ("has changed" if damage == "changed" else "is missing") in job["error"]
        assert f"radbridge gateway retry {job['id']}" in job["error"]
        assert not query(gateway, "SELECT * FROM results")  # nothing made of it
        receive(gateway, files, transfer="again")  # the sender sends the series again
        gateway.retry(job["id"])
        for _ in range(3):
            gateway.step()
        assert [r["state"] for r in query(gateway, "SELECT state FROM jobs")] == ["done"]
        assert pydicom.dcmread(path).PixelData == pydicom.dcmread(files[0]).PixelData
    finally:
        gateway.close()
