"""Curated terminology: plain anatomy names → SNOMED CT codes for segment descriptions.

``labels.json`` files can then say ``{"1": "liver", "2": "spleen"}`` and radbridge
writes the full coded description (segmented property category and type,
laterality modifier, anatomic region) and a display colour.

The table (``anatomy.tsv`` beside this module) covers the 117 classes of
TotalSegmentator's ``total`` task (spelled as TotalSegmentator spells them,
e.g. ``kidney_left``, ``vertebrae_L1``, ``rib_right_7``), its heart chambers and
pulmonary artery, and the names radbridge's phantom and reference model use
(``body``, ``lung_left``, ``bone``, ``lung_nodule``, ``liver_lesion``, ...).
Every row names the source of its codes.

To add a term, append a row to ``anatomy.tsv`` with codes taken from the DICOM
standard (PS3.16 context groups) or another authoritative mapping, say where
they came from in the ``source`` column, and run the tests (they check every
row); ``scripts/gen_codes_doc.py`` regenerates ``docs/codes.md``.

Examples
--------
>>> term = lookup("Left Kidney")
>>> term.name, term.property_type.meaning, term.type_modifier.meaning
('kidney_left', 'Kidney', 'Left')
>>> lookup("left lung").name
'lung_left'
>>> len(names()) > 117
True
"""

from __future__ import annotations

import csv
import difflib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from radbridge.coding import Code, sct
from radbridge.errors import InvalidAttributeError

__all__ = [
    "ANATOMICAL_STRUCTURE",
    "MORPHOLOGICALLY_ALTERED_STRUCTURE",
    "PHYSICAL_OBJECT",
    "TISSUE",
    "TermEntry",
    "lookup",
    "names",
]

#: Segmented property categories (CID 7150).
ANATOMICAL_STRUCTURE = sct("123037004", "Anatomical Structure")
MORPHOLOGICALLY_ALTERED_STRUCTURE = sct("49755003", "Morphologically Altered Structure")
TISSUE = sct("85756007", "Tissue")
PHYSICAL_OBJECT = sct("260787004", "Physical object")

_ALIASES = {
    "left_lung": "lung_left",
    "right_lung": "lung_right",
    "left_kidney": "kidney_left",
    "right_kidney": "kidney_right",
    "bones": "bone",
    "skeleton": "bone",
    "tumour": "tumor",
    "neoplasm": "tumor",
    "pulmonary_nodule": "lung_nodule",
    "whole_body": "body",
    "small_intestine": "small_bowel",
    "bladder": "urinary_bladder",
    "oesophagus": "esophagus",
}


@dataclass(frozen=True)
class TermEntry:
    """One row of the curated table.

    Attributes
    ----------
    name
        The table's name for the term (lower case, underscores).
    category, property_type
        Segmented Property Category and Type.
    type_modifier
        Segmented Property Type Modifier (laterality), if any.
    anatomic_region, anatomic_region_modifier
        Anatomic Region (for findings such as a nodule in a lung) and its modifier.
    rgb
        Recommended display colour (sRGB 0-255).
    source
        Where the codes come from.
    note
        Remarks (e.g. a correction made to the source).
    """

    name: str
    category: Code
    property_type: Code
    type_modifier: Code | None
    anatomic_region: Code | None
    anatomic_region_modifier: Code | None
    rgb: tuple[int, int, int]
    source: str
    note: str = ""


def _optional(value: str, meaning: str) -> Code | None:
    return sct(value, meaning) if value else None


@cache
def _table() -> dict[str, TermEntry]:
    text = resources.files("radbridge.codes").joinpath("anatomy.tsv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    table: dict[str, TermEntry] = {}
    for row in csv.DictReader(lines, delimiter="\t"):
        red, green, blue = (int(v) for v in row["rgb"].split(","))
        table[row["name"]] = TermEntry(
            name=row["name"],
            category=sct(row["category_value"], row["category_meaning"]),
            property_type=sct(row["type_value"], row["type_meaning"]),
            type_modifier=_optional(row["type_modifier_value"], row["type_modifier_meaning"]),
            anatomic_region=_optional(row["region_value"], row["region_meaning"]),
            anatomic_region_modifier=_optional(
                row["region_modifier_value"], row["region_modifier_meaning"]
            ),
            rgb=(red, green, blue),
            source=row["source"],
            note=row["note"],
        )
    return table


@cache
def _index() -> dict[str, str]:
    return {_normalise(name): name for name in _table()}


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def names() -> list[str]:
    """Return every name in the table, sorted."""
    return sorted(_table())


def lookup(name: str) -> TermEntry:
    """Find a term by name (case, spaces and hyphens do not matter).

    Raises
    ------
    InvalidAttributeError
        The name is not in the table; the message lists the closest names and how
        to give explicit codes instead.
    """
    table = _table()
    index = _index()
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    if key in index:
        return table[index[key]]
    # "Left kidney" style: the table puts laterality last.
    for side in ("left", "right"):
        swapped = f"{key[len(side) + 1 :]}_{side}"
        if key.startswith(side + "_") and swapped in index:
            return table[index[swapped]]
    close = difflib.get_close_matches(name.strip(), list(table), n=5, cutoff=0.5)
    raise InvalidAttributeError(
        f"{name!r} is not in radbridge's anatomy table"
        + (f" (close: {', '.join(close)})" if close else ""),
        attribute="labels",
        hint='use a listed name (docs/codes.md), or give codes explicitly: {"label": ..., '
        '"category": {"value", "scheme", "meaning"}, "type": {...}}',
    )
