"""Curated terminology: plain anatomy names → the codes of a DICOM segment description.

With it a ``labels.json`` can say ``{"1": "liver", "2": "spleen"}`` and radbridge
writes the full coded description: Segmented Property Category and Type, laterality
modifier, Anatomic Region, and a recommended display colour.

The table (``anatomy.tsv`` in this package, listed in ``docs/codes.md``) covers the
117 classes of TotalSegmentator's ``total`` task under TotalSegmentator's own names
(``kidney_left``, ``vertebrae_L1``, ``rib_right_7``, ...), a few more of its classes
(heart chambers, ``body_trunc``, ``liver_tumor``), and the names radbridge's phantom
and reference model use (``body``, ``lung_left``, ``bone``, ``lung_nodule``,
``liver_lesion``, ``nodule``, ``lesion``, ``tumor``). Every row names the source of
its codes; :mod:`radbridge.codes.concepts` holds the common constants (CID 7150
categories, CID 244 laterality, DCM codes of the SEG IOD) and
:func:`is_valid_sctid` checks a SNOMED CT code's check digit.

How to add a term
-----------------
1. Find the codes in an authoritative source: a DICOM PS3.16 context group (CID 7151
   and its sub-groups for property types, CID 4 for regions, CID 244 for laterality)
   or a maintained public mapping such as TotalSegmentator's. Prefer SNOMED CT
   *structure* concepts over *entire* ones, and laterality as a modifier over a
   concept with the side built in.
2. Append a row to ``anatomy.tsv``: lower-case name with underscores (side last,
   ``_left``/``_right``), codes, colour, the source key (add the key to
   :data:`~radbridge.codes.anatomy.SOURCES` if it is new), and a note for any
   compromise.
3. Run ``pytest tests/test_codes.py`` (it checks every row against the DICOM tables
   that pydicom ships) and ``python scripts/gen_codes_doc.py`` to refresh the docs.

Examples
--------
>>> from radbridge.codes import lookup
>>> term = lookup("Left Kidney")
>>> term.name, term.property_type.meaning, term.type_modifier.meaning
('kidney_left', 'Kidney', 'Left')
>>> str(lookup("lung nodule").anatomic_region)
"(39607008, SCT, 'Lung')"
"""

from __future__ import annotations

from radbridge.codes import concepts as _concepts
from radbridge.codes.anatomy import SOURCES, TermEntry, lookup, names
from radbridge.codes.concepts import *  # noqa: F403 - the common constants, listed once there
from radbridge.codes.sctid import is_valid_sctid

__all__ = [*_concepts.__all__, "SOURCES", "TermEntry", "is_valid_sctid", "lookup", "names"]
