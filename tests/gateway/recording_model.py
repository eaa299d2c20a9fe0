"""A model that writes down everything it is given, for the de-identification tests.

``RecordingModel`` wraps the reference CT model and, before running it, appends to
``$RADBRIDGE_RECORD_DIR/seen-N.json`` what it was given: the SeriesInfo fields, the
volume's frame of reference and slice references, and every header (as DICOM JSON,
without pixel data). It is marked ``external``, so the gateway de-identifies for it
whatever the rule says. With ``$RADBRIDGE_KILL_ONCE`` naming a file that does not exist
yet, the first call creates it and kills its own process with SIGKILL — a crash after
the series was de-identified and before anything was delivered.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

from radbridge.geometry import Volume
from radbridge.models import ModelResult, SeriesInfo
from radbridge.models.reference_ct import ReferenceCTModel


def _header_json(ds: Any) -> dict[str, Any]:
    return dict(ds.to_json_dict(bulk_data_threshold=1, bulk_data_element_handler=lambda e: ""))


class RecordingModel:
    """The reference CT model, recording its inputs; external."""

    name = "recorder"
    version = "1.0"
    manufacturer = "radbridge tests"
    external = True

    def __call__(self, volume: Volume, series: SeriesInfo) -> ModelResult:
        """Record the inputs, maybe die, then segment."""
        folder = Path(os.environ["RADBRIDGE_RECORD_DIR"])
        folder.mkdir(parents=True, exist_ok=True)
        seen = {
            "info": {
                f.name: getattr(series, f.name)
                for f in dataclasses.fields(series)
                if f.name != "headers"
            },
            "frame_of_reference_uid": volume.frame_of_reference_uid,
            "slice_refs": [dataclasses.asdict(r) for r in volume.slice_refs],
            "headers": [_header_json(h) for h in series.headers],
        }
        number = len(list(folder.glob("seen-*.json"))) + 1
        (folder / f"seen-{number}.json").write_text(json.dumps(seen, default=str))
        marker = os.environ.get("RADBRIDGE_KILL_ONCE")
        if marker and not Path(marker).exists():
            Path(marker).write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        return ReferenceCTModel()(volume, series)
