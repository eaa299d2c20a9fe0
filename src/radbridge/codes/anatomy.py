"""The curated anatomy table: plain names → coded segment descriptions.

The rows live in ``anatomy.tsv`` beside this module and are read once, on first use.
Each row names the source of its codes (keys of :data:`SOURCES`) and may carry a note
that flags a compromise or a correction made to the source.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from radbridge.coding import Code, sct
from radbridge.errors import UnknownTermError

__all__ = ["ALIASES", "SOURCES", "TermEntry", "lookup", "names"]

#: What the keys in the table's ``source`` column stand for.
SOURCES: Mapping[str, str] = MappingProxyType(
    {
        "TotalSegmentator": (
            "wasserth/TotalSegmentator, totalsegmentator/resources/"
            "totalsegmentator_snomed_mapping.csv at commit 0e65a44 (2026-08-13)"
        ),
        "TotalSegmentator#612": (
            "wasserth/TotalSegmentator pull request #612 (2026-09-21): codes for the "
            "subclavian arteries and gluteus maximus muscles"
        ),
        "CID 4": "DICOM PS3.16 CID 4 Anatomic Region (the anatomic region)",
        "CID 244": "DICOM PS3.16 CID 244 Laterality (the modifier)",
        "CID 7159": "DICOM PS3.16 CID 7159 Lesion Segmentation Types",
        "CID 7166": "DICOM PS3.16 CID 7166 Common Tissue Segmentation Types",
        "CID 7192": "DICOM PS3.16 CID 7192 Anatomical Structure Segmentation Property Types",
    }
)

#: Other spellings users write (after normalisation) → the table's name.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "bones": "bone",
        "skeleton": "bone",
        "lungs": "lung",
        "kidneys": "kidney",
        "whole_body": "body",
        "tumour": "tumor",
        "neoplasm": "tumor",
        "pulmonary_nodule": "lung_nodule",
        "small_intestine": "small_bowel",
        "bladder": "urinary_bladder",
        "oesophagus": "esophagus",
    }
)
_SIDES = ("left", "right")


@dataclass(frozen=True)
class TermEntry:
    """One row of the anatomy table: everything a segment description needs.

    Attributes
    ----------
    name
        The table's name for the term (TotalSegmentator's spelling where it has one).
    category
        Segmented Property Category (CID 7150).
    property_type
        Segmented Property Type (SNOMED CT).
    type_modifier
        Segmented Property Type Modifier (laterality, CID 244), if any.
    anatomic_region, anatomic_region_modifier
        Anatomic Region (for findings such as a nodule in a lung) and its modifier.
    rgb
        Recommended display colour (sRGB, 0-255).
    source
        Keys of :data:`SOURCES` separated by ``"; "``: where the codes come from.
    note
        A compromise or a correction to the source, if any.

    Examples
    --------
    >>> term = lookup("kidney_left")
    >>> term.property_type.meaning, term.type_modifier.meaning, term.dicom_lab
    ('Kidney', 'Left', (34298, 40955, 39426))
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

    @property
    def dicom_lab(self) -> tuple[int, int, int]:
        """The colour as DICOM's Recommended Display CIELab Value (three 16-bit integers)."""
        from radbridge.color import rgb_to_dicom_lab

        return rgb_to_dicom_lab(self.rgb)


def _code(row: dict[str, str], prefix: str) -> Code | None:
    value = row[f"{prefix}_value"]
    return sct(value, row[f"{prefix}_meaning"]) if value else None


def _entry(row: dict[str, str]) -> TermEntry:
    red, green, blue = (int(v) for v in row["rgb"].split(","))
    return TermEntry(
        name=row["name"],
        category=sct(row["category_value"], row["category_meaning"]),
        property_type=sct(row["type_value"], row["type_meaning"]),
        type_modifier=_code(row, "type_modifier"),
        anatomic_region=_code(row, "region"),
        anatomic_region_modifier=_code(row, "region_modifier"),
        rgb=(red, green, blue),
        source=row["source"],
        note=row["note"],
    )


@cache
def _table() -> Mapping[str, TermEntry]:
    text = resources.files("radbridge.codes").joinpath("anatomy.tsv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = csv.DictReader(lines, delimiter="\t")
    return MappingProxyType({entry.name: entry for entry in map(_entry, rows)})


@cache
def _index() -> Mapping[str, str]:
    return MappingProxyType({_normalise(name): name for name in _table()})


def _normalise(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return re.sub(r"^vertebra_", "vertebrae_", key)


def names() -> list[str]:
    """Return every name in the table, sorted.

    Examples
    --------
    >>> "vertebrae_L1" in names() and "lung_nodule" in names()
    True
    """
    return sorted(_table())


def lookup(name: str) -> TermEntry:
    """Find a term by name.

    Case, spaces, hyphens and underscores do not matter, the side may come first
    (``"Left kidney"`` finds ``kidney_left``), and a few other spellings are known
    (``"tumour"``, ``"small intestine"``, ``"whole body"``, ...).

    Parameters
    ----------
    name
        The name, e.g. from a ``labels.json`` file.

    Returns
    -------
    TermEntry
        The table's row.

    Raises
    ------
    UnknownTermError
        The name is not in the table (a subclass of ``InvalidAttributeError`` and
        ``ValueError``); the message lists up to five close names and explains how to
        give codes explicitly, and ``suggestions`` holds those names.

    Examples
    --------
    >>> lookup("Left Kidney").name, lookup("vertebra-l1").name, lookup("Tumour").name
    ('kidney_left', 'vertebrae_L1', 'tumor')
    >>> lookup("livr")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    radbridge.errors.UnknownTermError: 'livr' is not in radbridge's anatomy table (close: liver) ...
    """
    index = _index()
    key = _normalise(name)
    key = ALIASES.get(key, key)
    for side in _SIDES:
        if key.startswith(f"{side}_") and key not in index:
            key = f"{key[len(side) + 1 :]}_{side}"
    if key in index:
        return _table()[index[key]]
    close = tuple(index[k] for k in difflib.get_close_matches(key, list(index), n=5, cutoff=0.6))
    err = UnknownTermError(
        f"{name!r} is not in radbridge's anatomy table"
        + (f" (close: {', '.join(close)})" if close else ""),
        attribute="labels",
        hint="use a name listed in docs/codes.md, or give the codes explicitly, e.g. "
        '{"label": "Lesion", "category": {"value": "49755003", "scheme": "SCT", '
        '"meaning": "Morphologically Abnormal Structure"}, "type": {"value": "52988006", '
        '"scheme": "SCT", "meaning": "Lesion"}}',
    )
    err.suggestions = close
    raise err
