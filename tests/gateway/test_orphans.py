"""Files no record names: partial writes are swept, never a live writer's file."""

from __future__ import annotations

from radbridge.io.storage import StreamedFile, remove_stale_temporaries


def test_the_start_sweep_of_temporaries_keeps_a_live_writers_file(tmp_path):
    """`gateway run` starts the C-STORE SCP, then the STOW-RS server sweeps the spool."""
    folder = tmp_path / "spool" / "1.2" / "1.2.3"
    writing = StreamedFile(folder)  # an instance arriving by C-STORE meanwhile
    writing.write(b"DICM" * 100)
    assert remove_stale_temporaries(tmp_path / "spool", grace_s=0.0) == 0
    writing.commit(folder / "1.2.3.4.dcm")  # stored, not refused
    assert (folder / "1.2.3.4.dcm").read_bytes() == b"DICM" * 100
