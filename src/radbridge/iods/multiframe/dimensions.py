"""The Multi-frame Dimension Module of a derived object (PS3.3 C.7.6.17).

Frames are indexed by Image Position Patient, and for a SEG that is not a label
map also by Referenced Segment Number (first). The Dimension Organization UID is
derived from the SOP Instance UID, so fixed UIDs give byte-identical files.

Examples
--------
>>> from pydicom import Dataset
>>> ds = Dataset()
>>> ds.SOPInstanceUID = "2.25.1"
>>> add_dimensions(ds, by_segment=True)
>>> [item.DimensionDescriptionLabel for item in ds.DimensionIndexSequence]
['Segment Number', 'Image Position Patient']
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from radbridge.uids import derived_uid

__all__ = ["add_dimensions"]


def _dimension(organisation: str, pointer: int, group: int, label: str) -> Dataset:
    item = Dataset()
    item.DimensionOrganizationUID = organisation
    item.DimensionIndexPointer = pointer
    item.FunctionalGroupPointer = group
    item.DimensionDescriptionLabel = label
    return item


def add_dimensions(ds: Dataset, *, by_segment: bool) -> None:
    """Add the dimension organisation and index to ``ds`` (which has its SOP Instance UID)."""
    organisation = derived_uid(str(ds.SOPInstanceUID), "dimension-organization")
    item = Dataset()
    item.DimensionOrganizationUID = organisation
    ds.DimensionOrganizationSequence = [item]
    ds.DimensionOrganizationType = "3D"
    dims = []
    if by_segment:
        dims.append(_dimension(organisation, 0x0062000B, 0x0062000A, "Segment Number"))
    dims.append(_dimension(organisation, 0x00200032, 0x00209113, "Image Position Patient"))
    ds.DimensionIndexSequence = dims
