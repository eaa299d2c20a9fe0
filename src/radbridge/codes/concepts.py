"""Coded concepts that several radbridge modules need, each from a named DICOM context group.

Values and meanings are those of DICOM PS3.16 (the context group is named on each
constant); pydicom ships the same tables as ``pydicom.sr.codedict.codes``, and the
tests check these constants against them.

Segmentation Property Categories (CID 7150) changed once: older DICOM editions, 3D
Slicer/dcmqi and TotalSegmentator code "Anatomical Structure" as SCT 123037004,
which SNOMED CT defines as *Body structure*; the current CID 7150 uses SCT 91723000
(*Anatomical structure*). radbridge writes the current code and treats both as the
same category when reading (:func:`is_anatomical_structure`).

Examples
--------
>>> from radbridge.codes import (
...     ANATOMICAL_STRUCTURE, LEFT, LEGACY_ANATOMICAL_STRUCTURE, is_anatomical_structure)
>>> str(ANATOMICAL_STRUCTURE)
"(91723000, SCT, 'Anatomical Structure')"
>>> is_anatomical_structure(LEGACY_ANATOMICAL_STRUCTURE), is_anatomical_structure(LEFT)
(True, False)
"""

from __future__ import annotations

from radbridge.coding import Code, dcm, sct

__all__ = [
    "ANATOMICAL_STRUCTURE",
    "ARTIFICIAL_INTELLIGENCE",
    "BILATERAL",
    "BODY_SUBSTANCE",
    "CATEGORIES",
    "FUNCTION",
    "LEFT",
    "LEGACY_ANATOMICAL_STRUCTURE",
    "MANUAL_PROCESSING",
    "MORPHOLOGICALLY_ABNORMAL_STRUCTURE",
    "MORPHOLOGICALLY_ALTERED_STRUCTURE",
    "PHYSICAL_OBJECT",
    "RIGHT",
    "SEGMENTATION",
    "SOURCE_IMAGE_FOR_IMAGE_PROCESSING_OPERATION",
    "SPATIAL_AND_RELATIONAL_CONCEPT",
    "SUBSTANCE",
    "TISSUE",
    "UNILATERAL",
    "is_anatomical_structure",
]

# CID 7150 Segmentation Property Categories.
ANATOMICAL_STRUCTURE = sct("91723000", "Anatomical Structure")
MORPHOLOGICALLY_ABNORMAL_STRUCTURE = sct("49755003", "Morphologically Abnormal Structure")
TISSUE = sct("85756007", "Tissue")
PHYSICAL_OBJECT = sct("260787004", "Physical object")
BODY_SUBSTANCE = sct("91720002", "Body Substance")
SUBSTANCE = sct("105590001", "Substance")
FUNCTION = sct("246464006", "Function")
SPATIAL_AND_RELATIONAL_CONCEPT = sct("309825002", "Spatial and Relational Concept")

#: The same code as :data:`MORPHOLOGICALLY_ABNORMAL_STRUCTURE` under the meaning older
#: editions of CID 7150 gave it.
MORPHOLOGICALLY_ALTERED_STRUCTURE = sct("49755003", "Morphologically Altered Structure")
#: SCT 123037004 (*Body structure*), the code older editions of CID 7150, dcmqi and
#: TotalSegmentator use for "Anatomical Structure". Accept it when reading; do not write it.
LEGACY_ANATOMICAL_STRUCTURE = sct("123037004", "Anatomical Structure")

#: Every category of CID 7150.
CATEGORIES: tuple[Code, ...] = (
    ANATOMICAL_STRUCTURE,
    MORPHOLOGICALLY_ABNORMAL_STRUCTURE,
    TISSUE,
    PHYSICAL_OBJECT,
    BODY_SUBSTANCE,
    SUBSTANCE,
    FUNCTION,
    SPATIAL_AND_RELATIONAL_CONCEPT,
)

# CID 244 Laterality (Segmented Property Type Modifier, Anatomic Region Modifier).
LEFT = sct("7771000", "Left")
RIGHT = sct("24028007", "Right")
BILATERAL = sct("51440002", "Bilateral")
UNILATERAL = sct("66459002", "Unilateral")

#: CID 7203 Image Derivation: "Segmentation" (Derivation Code Sequence of a SEG).
SEGMENTATION = dcm("113076", "Segmentation")
#: CID 7202 Source Image Purpose of Reference (Purpose of Reference Code Sequence).
SOURCE_IMAGE_FOR_IMAGE_PROCESSING_OPERATION = dcm(
    "121322", "Source image for image processing operation"
)
# CID 7162 Surface Processing Algorithm Families (Algorithm Family Code Sequence).
ARTIFICIAL_INTELLIGENCE = dcm("123110", "Artificial Intelligence")
MANUAL_PROCESSING = dcm("123109", "Manual Processing")


def is_anatomical_structure(code: Code) -> bool:
    """Tell whether a category code means "Anatomical Structure" (current or legacy code).

    Parameters
    ----------
    code
        A Segmented Property Category.

    Examples
    --------
    >>> from radbridge.coding import sct
    >>> is_anatomical_structure(sct("123037004", "Anatomical Structure"))
    True
    """
    return code in (ANATOMICAL_STRUCTURE, LEGACY_ANATOMICAL_STRUCTURE)
