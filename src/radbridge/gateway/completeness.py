"""How many instances a series should have, from what the data (or the PACS) says.

Silence alone never proves that a series is complete; the transfer's end does
(see :mod:`radbridge.net.receiver`). This module adds the counts that some data
carries, so a series that arrived short on a clean transfer still waits:

- **Images in Acquisition** (0020,1002): for each Acquisition Number, when every
  instance of it gives the same value, that many instances are expected.
- **Number of Temporal Positions** (0020,0105): when every instance has a
  Temporal Position Identifier, every temporal position is expected, each with
  as many instances as the fullest one.
- **The source PACS** (optional, ``verify_count_with``): a SERIES-level C-FIND
  for Number of Series Related Instances.

Values that disagree between instances are not trusted (``None``); the largest
trusted expectation wins.

Examples
--------
>>> from pydicom import Dataset
>>> def image(acquisition, images):
...     ds = Dataset()
...     ds.AcquisitionNumber, ds.ImagesInAcquisition = acquisition, images
...     return ds
>>> expected_from_headers([image(1, 60) for _ in range(20)])
(60, 'Images in Acquisition')
>>> expected_from_headers([image(1, 60), image(1, 59)]) is None
True
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Sequence

from pydicom.dataset import Dataset

from radbridge.attributes import number_or_none
from radbridge.errors import NetworkError
from radbridge.net import Peer

__all__ = ["expected_from_headers", "expected_from_pacs"]

log = logging.getLogger(__name__)


def _images_in_acquisition(headers: Sequence[Dataset]) -> int | None:
    groups: dict[int | None, list[int | None]] = defaultdict(list)
    for ds in headers:
        groups[number_or_none(ds, "AcquisitionNumber", int)].append(
            number_or_none(ds, "ImagesInAcquisition", int)
        )
    total, trusted = 0, False
    for values in groups.values():
        distinct = set(values)
        if distinct == {None}:
            total += len(values)
            continue
        if len(distinct) != 1 or None in distinct:
            return None  # instances disagree: not a signal to trust
        (count,) = distinct
        if count is None or count < 1:
            return None
        total += max(count, len(values))
        trusted = True
    return total if trusted else None


def _temporal_positions(headers: Sequence[Dataset]) -> int | None:
    declared = {number_or_none(ds, "NumberOfTemporalPositions", int) for ds in headers}
    positions = [number_or_none(ds, "TemporalPositionIdentifier", int) for ds in headers]
    if len(declared) != 1 or None in declared or None in positions:
        return None
    (count,) = declared
    if count is None or count < 2:
        return None
    fullest = max(Counter(positions).values())
    return count * fullest


def expected_from_headers(headers: Sequence[Dataset]) -> tuple[int, str] | None:
    """Return ``(count, signal)``: how many instances the headers say to expect, or None."""
    found = [
        (count, name)
        for count, name in (
            (_images_in_acquisition(headers), "Images in Acquisition"),
            (_temporal_positions(headers), "Number of Temporal Positions"),
        )
        if count is not None
    ]
    return max(found) if found else None


def expected_from_pacs(
    peer: Peer, study_uid: str, series_uid: str, *, ae_title: str
) -> tuple[int, str] | None:
    """Ask ``peer`` (C-FIND, SERIES level) how many instances the series has there.

    None when the PACS cannot be asked, does not know the series, or gives no
    count: the other signals decide then (logged, never raised).
    """
    from radbridge.net import find

    try:
        matches = find(
            peer,
            "SERIES",
            keys={"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid},
            ae_title=ae_title,
        )
    except NetworkError as exc:
        log.warning("series %s: cannot ask %s for its count (%s)", series_uid, peer.name, exc)
        return None
    counts = [number_or_none(ds, "NumberOfSeriesRelatedInstances", int) for ds in matches]
    known = [c for c in counts if c]
    if not known:
        log.info("series %s: %s gave no instance count", series_uid, peer.name)
        return None
    return max(known), f"C-FIND to {peer.name}"
