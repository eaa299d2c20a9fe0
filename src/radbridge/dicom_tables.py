"""pydicom's tables of the standard, read in one place.

pydicom keeps its UID dictionary and its SNOMED-RT to SNOMED CT table in private
modules; radbridge reads them only here, so a pydicom release that moves them
breaks one module, not the network layer, the pixel layer and the SR reader.

Examples
--------
>>> "1.2.840.10008.1.2.1" in transfer_syntax_uids()  # Explicit VR Little Endian
True
>>> srt_to_sct().get("G-C0E3")  # Finding Site
'363698007'
"""

from __future__ import annotations

from functools import cache

__all__ = ["srt_to_sct", "transfer_syntax_uids", "uid_entries"]


@cache
def uid_entries() -> dict[str, tuple[str, str]]:
    """Return every UID pydicom knows: its name and kind (``"SOP Class"``, ...)."""
    from pydicom._uid_dict import UID_dictionary

    return {uid: (str(entry[0]), str(entry[1])) for uid, entry in UID_dictionary.items()}


@cache
def transfer_syntax_uids() -> frozenset[str]:
    """Return every transfer syntax UID pydicom knows."""
    return frozenset(uid for uid, (_, kind) in uid_entries().items() if kind == "Transfer Syntax")


@cache
def srt_to_sct() -> dict[str, str]:
    """Return the retired SNOMED-RT code values and their SNOMED CT ones (empty if unknown)."""
    try:
        from pydicom.sr._snomed_dict import mapping
    except ImportError:  # pragma: no cover - a private module of pydicom
        return {}
    return dict(mapping.get("SRT", {}))
