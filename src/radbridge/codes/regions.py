"""Anatomic regions (CID 4) for Body Part Examined values and for plain names.

Body Part Examined (0018,0015) holds defined terms such as ``CHEST``; PS3.16
Annex L pairs each with an SCT anatomic region code. :func:`body_part_region`
knows the common subset below. :func:`anatomic_region` turns a name from
radbridge's anatomy table (``liver``, ``kidney_left``; see docs/codes.md) into a
region code and a frame laterality.

Examples
--------
>>> body_part_region("chest").meaning
'Chest'
>>> region, laterality = anatomic_region("kidney_left")
>>> region.value, region.meaning, laterality
('64033007', 'Kidney', 'L')
"""

from __future__ import annotations

from types import MappingProxyType

from radbridge.codes.anatomy import lookup
from radbridge.coding import Code, sct

__all__ = ["BODY_PART_REGIONS", "anatomic_region", "body_part_region"]

#: Body Part Examined defined term -> anatomic region (subset of PS3.16 Annex L).
BODY_PART_REGIONS = MappingProxyType(
    {
        "ABDOMEN": sct("818981001", "Abdomen"),
        "ABDOMENPELVIS": sct("818982008", "Abdomen and Pelvis"),
        "BRAIN": sct("12738006", "Brain"),
        "BREAST": sct("76752008", "Breast"),
        "CHEST": sct("43799004", "Chest"),
        "CHESTABDOMEN": sct("416550000", "Chest and Abdomen"),
        "CHESTABDPELVIS": sct("416775004", "Chest, Abdomen and Pelvis"),
        "HEAD": sct("69536005", "Head"),
        "HEADNECK": sct("774007", "Head and Neck"),
        "HEART": sct("80891009", "Heart"),
        "KIDNEY": sct("64033007", "Kidney"),
        "KNEE": sct("72696002", "Knee"),
        "LIVER": sct("10200004", "Liver"),
        "LUNG": sct("39607008", "Lung"),
        "NECK": sct("45048000", "Neck"),
        "PELVIS": sct("816092008", "Pelvis"),
        "PROSTATE": sct("41216001", "Prostate"),
        "SPINE": sct("421060004", "Spine"),
        "WHOLEBODY": sct("38266002", "Entire body"),
    }
)

_SIDES = {"7771000": "L", "24028007": "R", "51440002": "B"}


def body_part_region(body_part: str) -> Code | None:
    """Return the anatomic region of a Body Part Examined value, or ``None`` if unknown."""
    return BODY_PART_REGIONS.get(body_part.strip().upper().replace(" ", ""))


def anatomic_region(name: str) -> tuple[Code, str]:
    """Return the region code and frame laterality (``L``, ``R``, ``B`` or ``U``) of a name.

    Raises
    ------
    radbridge.errors.UnknownTermError
        The name is not in the anatomy table (the message lists close names).
    """
    term = lookup(name)
    side = term.type_modifier.value if term.type_modifier is not None else ""
    return term.property_type, _SIDES.get(side, "U")
