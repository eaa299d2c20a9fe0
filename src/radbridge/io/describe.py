"""Describe what a folder holds: the data behind ``radbridge info``.

The JSON form (:func:`describe`) is a public contract, documented in
``docs/cli.md``; fields are only ever added, never renamed, and
``info_version`` changes when a field's meaning changes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from radbridge.errors import RadbridgeError
from radbridge.geometry import plan_series
from radbridge.io.scan import SeriesRecord, scan

__all__ = ["INFO_VERSION", "describe", "describe_series"]

INFO_VERSION = 1


def describe_series(
    series: SeriesRecord, *, allow_nonuniform_spacing: bool = False
) -> dict[str, Any]:
    """Describe one series; image series get their volume geometry.

    ``series.headers`` must be filled (``scan(..., keep_headers=True)``).
    """
    frames = sum(i.number_of_frames for i in series.instances)
    out: dict[str, Any] = {
        "series_instance_uid": series.series_instance_uid,
        "modality": series.modality,
        "series_number": series.series_number,
        "series_description": series.series_description,
        "sop_class_uids": sorted({i.sop_class_uid for i in series.instances}),
        "instance_count": len(series.instances),
        "frame_count": frames,
        "frame_of_reference_uid": series.frame_of_reference_uid,
        "volume": None,
        "volume_error": None,
    }
    if not series.is_image:
        return out
    try:
        plan = plan_series(
            series.headers,
            sources=[str(p) for p in series.paths],
            allow_nonuniform_spacing=allow_nonuniform_spacing,
        )
    except RadbridgeError as exc:
        out["volume_error"] = str(exc)
        return out
    geometry = plan.stack.geometry
    refs = plan.slice_refs
    out["volume"] = {
        "index_order": ["slice", "row", "column"],
        "coordinates": "LPS",
        "shape": list(geometry.shape),
        "spacing": [round(s, 6) for s in geometry.spacing],
        "affine": [[float(v) for v in row] for row in geometry.affine],
        "sop_instance_uids": [r.sop_instance_uid for r in refs],
        "frame_numbers": (
            [r.frame_number for r in refs] if any(r.frame_number for r in refs) else None
        ),
        "uniform_spacing": plan.stack.acquired_positions is None,
    }
    return out


def describe(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    allow_nonuniform_spacing: bool = False,
) -> dict[str, Any]:
    """Scan ``paths`` and describe every study and series found.

    Returns
    -------
    dict
        ``{"info_version", "studies": [{"study_instance_uid", "study_date",
        "study_description", "series": [...]}], "skipped": [{"path", "reason"}]}``.
        No patient names or IDs are included.

    Examples
    --------
    >>> from pydicom import examples
    >>> info = describe(examples.get_path("ct"))  # files, folders, or a list of them
    >>> series = info["studies"][0]["series"][0]
    >>> series["modality"], series["volume"]["shape"]
    ('CT', [1, 128, 128])
    """
    index = scan(paths, keep_headers=True)
    return {
        "info_version": INFO_VERSION,
        "studies": [
            {
                "study_instance_uid": study.study_instance_uid,
                "study_date": study.study_date,
                "study_description": study.study_description,
                "series": [
                    describe_series(s, allow_nonuniform_spacing=allow_nonuniform_spacing)
                    for s in study.series.values()
                ],
            }
            for study in index.studies()
        ],
        "skipped": [{"path": str(p), "reason": reason} for p, reason in index.skipped],
    }
