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

__all__ = ["add_dimensions", "add_tiled_dimensions"]


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


def add_tiled_dimensions(ds: Dataset, *, sparse: bool) -> None:
    """Add the dimensions of a tiled SEG: TILED_FULL, or TILED_SPARSE indexed by position.

    A ``TILED_FULL`` object's frame order is implicit (PS3.3 C.7.6.17.3) and has no
    Dimension Index; a ``TILED_SPARSE`` SEG indexes its frames by Referenced Segment
    Number, then row and column in the Total Pixel Matrix (Plane Position (Slide)).

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.SOPInstanceUID = "2.25.1"
    >>> add_tiled_dimensions(ds, sparse=True)
    >>> ds.DimensionOrganizationType, len(ds.DimensionIndexSequence)
    ('TILED_SPARSE', 3)
    """
    organisation = derived_uid(str(ds.SOPInstanceUID), "dimension-organization")
    item = Dataset()
    item.DimensionOrganizationUID = organisation
    ds.DimensionOrganizationSequence = [item]
    ds.DimensionOrganizationType = "TILED_SPARSE" if sparse else "TILED_FULL"
    if sparse:
        ds.DimensionIndexSequence = [
            _dimension(organisation, 0x0062000B, 0x0062000A, "Referenced Segment Number"),
            _dimension(organisation, 0x0048021F, 0x0048021A, "Row Position In Total Pixel Matrix"),
            _dimension(
                organisation, 0x0048021E, 0x0048021A, "Column Position In Total Pixel Matrix"
            ),
        ]
