"""What differs between the Legacy Converted Enhanced CT, MR and PET images.

Examples
--------
>>> kind_of("1.2.840.10008.5.1.4.1.1.2").frame_type_sequence
'CTImageFrameTypeSequence'
>>> kind_of("1.2.840.10008.5.1.4.1.1.2").sop_class_uid
'1.2.840.10008.5.1.4.1.1.2.2'
"""

from __future__ import annotations

from dataclasses import dataclass

from radbridge.errors import EncodingError

__all__ = [
    "LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE",
    "LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE",
    "LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE",
    "LegacyKind",
    "kind_of",
]

LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2.2"
LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4.4"
LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128.1"


@dataclass(frozen=True)
class LegacyKind:
    """One classic image storage class and its Legacy Converted Enhanced counterpart.

    Attributes
    ----------
    modality
        The Modality of the images (CT, MR, PT).
    classic_sop_class_uid, sop_class_uid
        The classic (single-frame) and the converted SOP Class UID.
    frame_type_sequence
        Keyword of the per-frame Frame Type functional group of this modality.
    rescale_type
        Rescale Type written when the source gives none (``HU`` for CT, ``US``
        unspecified otherwise).
    needs_window
        Whether the IOD requires the Frame VOI LUT functional group (CT and PET).
    full_bits
        Whether Bits Stored must equal Bits Allocated (PET: 16). The stored values
        do not change: the decoded values are written in the wider field.
    """

    modality: str
    classic_sop_class_uid: str
    sop_class_uid: str
    frame_type_sequence: str
    rescale_type: str
    needs_window: bool
    full_bits: bool = False


_KINDS = (
    LegacyKind(
        "CT",
        "1.2.840.10008.5.1.4.1.1.2",
        LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
        "CTImageFrameTypeSequence",
        "HU",
        True,
    ),
    LegacyKind(
        "MR",
        "1.2.840.10008.5.1.4.1.1.4",
        LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
        "MRImageFrameTypeSequence",
        "US",
        False,
    ),
    LegacyKind(
        "PT",
        "1.2.840.10008.5.1.4.1.1.128",
        LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
        "PETFrameTypeSequence",
        "US",
        True,
        full_bits=True,
    ),
)


def kind_of(sop_class_uid: str) -> LegacyKind:
    """Return the conversion for images of ``sop_class_uid`` (CT, MR or PET Image Storage).

    Raises
    ------
    EncodingError
        The images are of another class: only classic CT, MR and PET images have a
        Legacy Converted Enhanced form.
    """
    for kind in _KINDS:
        if sop_class_uid == kind.classic_sop_class_uid:
            return kind
    raise EncodingError(
        f"images of SOP class {sop_class_uid} have no Legacy Converted Enhanced form",
        attribute="SOPClassUID",
        hint="give a series of classic CT, MR or PET Image Storage instances",
    )
