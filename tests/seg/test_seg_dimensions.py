"""DimensionIndexValues against the Dimension Index Sequence, checked without radbridge.

Only pydicom and NumPy: every frame's index values must be what its own functional
groups say, in the order the Dimension Index Sequence lists the dimensions —
Referenced Segment Number equal to the frame's segment, and the position index the
frame's 1-based rank along the slice normal (highdicom's convention, so indices grow
from the first slice of the source's slice order).
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest

from radbridge.iods.pm import encode_parametric_map
from radbridge.iods.seg import encode_segmentation

from .conftest import descriptions

_SEGMENT = 0x0062000B
_POSITION = 0x00200032


def _group(frame, shared, keyword):
    for groups in (frame, shared):
        if keyword in groups:
            return groups[keyword][0]
    raise AssertionError(f"no {keyword} for a frame")


def dimension_errors(ds) -> list[str]:
    """Return every disagreement between index values and the frames' own groups."""
    pointers = [int(item.DimensionIndexPointer) for item in ds.DimensionIndexSequence]
    shared = ds.SharedFunctionalGroupsSequence[0]
    orientation = np.array(
        _group(shared, shared, "PlaneOrientationSequence").ImageOrientationPatient, float
    )
    normal = np.cross(orientation[:3], orientation[3:])
    frames = ds.PerFrameFunctionalGroupsSequence
    distance = [
        float(
            np.dot(
                normal,
                np.array(_group(f, shared, "PlanePositionSequence").ImagePositionPatient, float),
            )
        )
        for f in frames
    ]
    ranks = {d: r + 1 for r, d in enumerate(sorted({round(d, 4) for d in distance}))}
    errors = []
    for number, (frame, along) in enumerate(zip(frames, distance, strict=True), start=1):
        values = [int(v) for v in np.atleast_1d(frame.FrameContentSequence[0].DimensionIndexValues)]
        if len(values) != len(pointers):
            errors.append(f"frame {number}: {len(values)} index values for {len(pointers)} dims")
            continue
        for pointer, value in zip(pointers, values, strict=True):
            if pointer == _SEGMENT:
                expected = int(
                    _group(frame, shared, "SegmentIdentificationSequence").ReferencedSegmentNumber
                )
            elif pointer == _POSITION:
                expected = ranks[round(along, 4)]
            else:
                continue
            if value != expected:
                errors.append(f"frame {number}: {pointer:08X} index {value}, expected {expected}")
    return errors


def _reread(ds):
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("seg_type", ["binary", "fractional", "labelmap"])
@pytest.mark.parametrize("keep_empty", [False, True])
def test_seg_index_values_follow_the_dimension_index_sequence(study, seg_type, keep_empty):
    mask = study.labels
    if seg_type == "fractional":
        mask = np.stack([(study.labels == k).astype(np.float32) * 0.8 for k in range(1, 8)])
    ds = _reread(
        encode_segmentation(
            mask,
            study.source,
            descriptions(7),
            segmentation_type=seg_type,
            keep_empty_frames=keep_empty,
        )
    )
    assert dimension_errors(ds) == []
    assert len(
        {
            tuple(np.atleast_1d(f.FrameContentSequence[0].DimensionIndexValues))
            for f in ds.PerFrameFunctionalGroupsSequence
        }
    ) == len(ds.PerFrameFunctionalGroupsSequence)


def test_pm_index_values_follow_the_dimension_index_sequence(study):
    values = np.random.default_rng(0).random(study.source.geometry.shape).astype(np.float32)
    ds = _reread(encode_parametric_map(values, study.source, quantity=_adc(), units="mm2/s"))
    assert dimension_errors(ds) == []


def test_the_check_sees_a_swapped_or_reversed_index(study):
    ds = _reread(encode_segmentation(study.labels, study.source, descriptions(7)))
    contents = [f.FrameContentSequence[0] for f in ds.PerFrameFunctionalGroupsSequence]
    frame = next(c for c in contents if len(set(c.DimensionIndexValues)) == 2)
    segment, position = (int(v) for v in frame.DimensionIndexValues)
    frame.DimensionIndexValues = [position, segment]
    assert dimension_errors(ds)
    frame.DimensionIndexValues = [segment, position]
    assert dimension_errors(ds) == []
    last = len({tuple(c.DimensionIndexValues)[1] for c in contents}) + 1
    for content in contents:  # positions counted from the other end
        values = [int(v) for v in content.DimensionIndexValues]
        content.DimensionIndexValues = [values[0], last - values[1]]
    assert dimension_errors(ds)


def _adc():
    from radbridge.coding import dcm

    return dcm("113041", "Apparent Diffusion Coefficient")
